-- Workflow: Online serving (user guide, "Produção" § 1: configure_online_serving with
-- update_frequency="1h", cache_ttl="30m", then get_online_features by entity key).
--
-- On the demo data, after 01_feature_engineering.sql (customer_behavior):
--
--   fstore --warehouse DIR demo --rows 20000
--   fstore --warehouse DIR sql -f sql/workflows/01_feature_engineering.sql
--   fstore --warehouse DIR sql -f sql/workflows/06_online_serving.sql
--
-- A server (`fstore serve`) re-materializes the set every hour; the statements below also
-- work from the CLI. Services look features up over Flight SQL with a prepared statement:
--   SELECT * FROM online_features('customer_online') WHERE customer_id = ?

-- 1. What is served online: one entity (the customer), so one row per customer.
CREATE FEATURE SET customer_online
  FEATURES (customer_behavior.*)
  WITH (author = 'team_ml', purpose = 'online_scoring')
  DESCRIPTION 'Customer features served to the fraud scoring service';

-- 2. Online, refreshed every hour; a served row is at most 30 minutes older than its
--    materialization (past that its features come back NULL and a refresh is started).
ALTER FEATURE SET customer_online SET ONLINE (update_frequency = '1h', cache_ttl = '30m');

-- 3. Materialize now. The demo data end on 2024-03-31, so materialize as of that evening
--    (the scheduler always uses the current time: the 30-day windows would be empty today).
REFRESH ONLINE FEATURE SET customer_online AS OF '2024-03-31T23:59:59';

-- 4. Lookups by entity key (guide: get_online_features(entity_keys=["customer_123"])). An
--    unknown key gives a row of NULLs.
SELECT * FROM online_features('customer_online', 'customer_123', 'customer_unknown');

-- 5. The table form: key filters are pushed down to the store as point lookups.
SELECT customer_id, amount_mean_30d, amount_sum_30d, tx_count_30d, _feature_ts, _materialized_at
FROM online_features('customer_online')
WHERE customer_id IN ('customer_1', 'customer_2', 'customer_3')
ORDER BY customer_id;

-- 6. The same values as a training set at that time (training/serving consistency).
SELECT customer_id, amount_mean_30d, tx_count_30d
FROM training_set('customer_online',
  'SELECT ''customer_123'' AS customer_id, CAST(''2024-03-31T23:59:59'' AS TIMESTAMP) AS ts', 'ts');

-- 7. What is online, when it runs next, and every materialization.
SELECT feature_set, version, update_frequency, cache_ttl, last_status, rows, next_run
FROM fstore.online_sets;
SELECT feature_set, version, trigger, mode, store, as_of, rows, status, error
FROM fstore.materializations ORDER BY started;
