-- Workflow: Monitoring (user guide, "Produção" § 2 "Monitoramento": monitor.add_metric(
-- "missing_values", threshold=0.05, alert_channel="slack"), then
-- monitor.start_monitoring(feature_set.id, frequency="1h")).
--
-- Monitors of the feature set fraud_detection_v1 that alert a Slack channel. On the demo data,
-- after 01_feature_engineering.sql, 02_training_set.sql and 04_validation_drift.sql
-- (fraud_detection_v1, its expectations and its January drift baseline):
--
--   fstore --warehouse DIR demo --rows 20000
--   fstore --warehouse DIR sql -f sql/workflows/01_feature_engineering.sql
--   fstore --warehouse DIR sql -f sql/workflows/02_training_set.sql
--   fstore --warehouse DIR sql -f sql/workflows/04_validation_drift.sql
--   fstore --warehouse DIR sql -f sql/workflows/08_monitoring.sql
--
-- A server (`fstore serve`) runs each monitor on its schedule and sends the alerts. From the
-- command line, as here, RUN MONITOR runs a monitor once; the alerts it opens are recorded
-- (fstore.alert_deliveries, state 'pending') but nothing is sent. The demo data end on
-- 2024-03-31, so the runs below are AS OF times inside the data (the scheduler uses the
-- current time).

-- 1. The alert channel (guide: alert_channel="slack"): a Slack incoming webhook. The URL is a
--    placeholder in the reserved .example domain, which never resolves: put your webhook's URL
--    here (https://hooks.slack.com/services/…). A server started on this warehouse would try
--    to deliver the pending alerts to it, and fail, for 24 hours. The URL is a secret: it is
--    stored, but shown (here, in fstore.history and in the audit log) only as '***'.
CREATE OR REPLACE ALERT CHANNEL fraud_team_slack TYPE slack
  WEBHOOK 'https://hooks.slack.example/services/T00000000/B00000000/XXXXXXXXXXXXXXXXXXXXXXXX';

SELECT name, type, url, rate_per_second FROM fstore.alert_channels WHERE name = 'fraud_team_slack';

-- TEST ALERT CHANNEL fraud_team_slack;   -- sends a test message now (with a real URL)

-- Monitors are dropped first so that this script can run again from a clean state
-- (DROP MONITOR also removes a monitor's runs and alerts; guide: monitor.stop_monitoring()).
DROP MONITOR IF EXISTS fraud_detection_v1_monitor;
DROP MONITOR IF EXISTS fraud_detection_v1_health;

-- 2. The guide's monitor: missing_values > 0.05 (add_metric("missing_values", threshold=0.05,
--    alert_channel="slack")) on every feature of the set, every hour
--    (start_monitoring(feature_set.id, frequency="1h")). Without VERSION the monitor follows
--    the set's latest version; without WINDOW each run reads every row before its time.
CREATE MONITOR fraud_detection_v1_monitor ON FEATURE SET fraud_detection_v1
  EVERY '1 hour'
  METRICS (missing_values > 0.05)
  ALERT TO fraud_team_slack;

-- Run it now, as of the demo data's last evening: one row per feature, its NULL fraction and
-- its status (amount is 1% NULL on the demo data: ok), with the query that reproduces it.
RUN MONITOR fraud_detection_v1_monitor AS OF '2024-03-31T23:59:59';

-- 3. A richer monitor: the last 7 days of data, checked daily, against the January drift
--    baseline of workflow 04 and the expectations of the set's features.
--    - drift(amount, 'ks') is the KS statistic D (its p-value is in the note);
--    - drift(tx_count_30d, 'psi') alerts: the baseline's January windows were still filling
--      up (see workflow 04), a reason to set a baseline a full window after the data start;
--    - freshness (seconds since the newest event) and row_count (rows in the window) are
--      measured per feature group: customer_behavior (a transaction every few minutes) and
--      product_features (a price update every few days);
--    - expectations_failed counts the failed expectations over the window, as validate does.
--    An alert still open a day later is sent again (RENOTIFY EVERY); without RENOTIFY EVERY
--    it is sent once, and again when it resolves.
CREATE MONITOR fraud_detection_v1_health ON FEATURE SET fraud_detection_v1
  EVERY '1 day' WINDOW '7 days'
  METRICS (
    missing_values(amount) > 0.05,
    drift(amount, 'ks') > 0.1,
    drift(tx_count_30d, 'psi') > 0.2,
    psi(customer_category) > 0.2,
    freshness > '2 days',
    row_count < 1,
    expectations_failed > 0
  )
  ALERT TO fraud_team_slack
  RENOTIFY EVERY '1 day';

SELECT name, target, every, window, metrics, channels, renotify_every, paused
FROM fstore.monitors ORDER BY name;

-- 4. Three daily runs at the end of March, as a server would have run them. Alerts open when
--    a value crosses its threshold and resolve when it comes back.
RUN MONITOR fraud_detection_v1_health AS OF '2024-03-15';
RUN MONITOR fraud_detection_v1_health AS OF '2024-03-24';
RUN MONITOR fraud_detection_v1_health AS OF '2024-03-31T23:59:59';

-- 5. What the runs found: every value of the latest run, then the history of each value as a
--    time series (monitor_history: what a notebook plots).
SELECT metric, feature, round(value, 4) AS value, operator, threshold, status, note
FROM fstore.monitor_runs
WHERE monitor = 'fraud_detection_v1_health'
  AND run = (SELECT max(run) FROM fstore.monitor_runs WHERE monitor = 'fraud_detection_v1_health')
ORDER BY metric, feature;

SELECT as_of, metric, feature, round(value, 4) AS value, threshold, status
FROM monitor_history('fraud_detection_v1_health')
ORDER BY metric, feature, as_of;

-- 6. The alerts (one row per monitor, metric and feature: its latest alert, open or
--    resolved) and the notifications they sent to the channel. From the command line these
--    stay 'pending': a server delivers them (retried until they get through).
SELECT monitor, metric, feature, state, round(value, 4) AS value, operator, threshold,
       opened_run, last_run, notifications
FROM fstore.alerts ORDER BY monitor, metric, feature;

SELECT notification, event, monitor, metric, feature, channel, state
FROM fstore.alert_deliveries ORDER BY created_at, notification;

SELECT name, last_run, last_status, open_alerts FROM fstore.monitors ORDER BY name;

-- 7. Pause a monitor (a paused monitor has no next run; RUN MONITOR still runs it), then
--    resume it: a server runs it at once if a period was missed, once.
ALTER MONITOR fraud_detection_v1_health PAUSE;
SELECT name, paused, next_run FROM fstore.monitors ORDER BY name;
ALTER MONITOR fraud_detection_v1_health RESUME;

-- 8. After workflow 06, the age of the online copy of customer_online is watched the same
--    way (online_staleness: seconds since its last successful materialization, measured
--    against the current time even with AS OF):
--
--   CREATE MONITOR customer_online_staleness ON FEATURE SET customer_online
--     EVERY '15 minutes'
--     METRICS (online_staleness > '90 minutes')
--     ALERT TO fraud_team_slack;
--   RUN MONITOR customer_online_staleness;
