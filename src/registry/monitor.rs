//! Monitoring as the registry stores it (docs/sql-reference.md, "Monitoring and alerts"):
//! alert channels, monitors, their runs, the alerts runs open and resolve, the notifications
//! those transitions send, and every delivery attempt.
//!
//! The alert lifecycle is a pure function of the log: applying a [`MonitorRun`] record opens
//! an alert for every metric that crossed its threshold and had none open, resolves the open
//! alerts of metrics back within their threshold, and reminds of alerts still open after the
//! monitor's re-notify interval; each transition becomes a [`Notification`] with one
//! [`Delivery`] per alert channel. A delivery is claimed attempt by attempt
//! ([`Change::DeliveryAttempt`], conditional on the attempt number) and its outcome recorded
//! ([`Change::DeliveryResult`]), so whatever the number of servers and restarts a
//! notification is sent by one server at a time and never again once delivered.
//!
//! Scheduled work (monitor runs, online refreshes) is claimed the same way:
//! [`Change::ClaimRun`] for a job and a due time commits only if no claim of that job is as
//! recent, so each period runs once across the servers of a warehouse.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::{Change, ChangeRecord, RegistryState, WindowLength};
use crate::error::{ErrorKind, FStoreError};

/// Runs kept per monitor in the state (older ones stay in the log and `fstore.history`).
pub const MONITOR_RUNS_KEPT: usize = 500;
/// Finished notifications kept in the state (pending ones are always kept).
pub const NOTIFICATIONS_KEPT: usize = 1000;

/// Where alerts go.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum ChannelKind {
    /// A Slack incoming webhook (Slack's `text` + `blocks` payload).
    Slack,
    /// Any HTTP endpoint (FStore's JSON alert document).
    Webhook,
}

impl ChannelKind {
    pub fn as_str(&self) -> &'static str {
        match self {
            ChannelKind::Slack => "slack",
            ChannelKind::Webhook => "webhook",
        }
    }
}

/// `CREATE ALERT CHANNEL`. The URL and header values are secrets: stored, never shown.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct AlertChannel {
    pub name: String,
    pub kind: ChannelKind,
    pub url: String,
    #[serde(default)]
    pub headers: Vec<(String, String)>,
    /// Messages per second at most (Slack accepts about one).
    pub rate_per_second: f64,
    /// Set when applied.
    #[serde(default)]
    pub owner: String,
    #[serde(default)]
    pub created_at: i64,
}

impl AlertChannel {
    /// The URL with everything after the host hidden (`https://hooks.slack.com/***`).
    pub fn masked_url(&self) -> String {
        match url::Url::parse(&self.url) {
            Ok(u) => format!(
                "{}://{}{}/***",
                u.scheme(),
                u.host_str().unwrap_or(""),
                u.port().map(|p| format!(":{p}")).unwrap_or_default()
            ),
            Err(_) => "***".to_string(),
        }
    }
}

/// What a monitor watches.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum MonitorTarget {
    /// A feature-set version (`None`: the latest at each run).
    FeatureSet { name: String, version: Option<u64> },
    FeatureGroup { name: String },
}

impl std::fmt::Display for MonitorTarget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            MonitorTarget::FeatureSet {
                name,
                version: Some(v),
            } => write!(f, "feature set {name} version {v}"),
            MonitorTarget::FeatureSet { name, version: None } => write!(f, "feature set {name}"),
            MonitorTarget::FeatureGroup { name } => write!(f, "feature group {name}"),
        }
    }
}

/// Which rows a run reads (by the target's event time, up to the run's time).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum MonitorWindow {
    /// Every row up to the run's time.
    All,
    /// The rows of the last `length` before the run's time.
    Last { length: WindowLength },
    /// The rows since the previous run's time.
    SinceLastRun,
}

/// A metric of a monitor.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum MetricKind {
    /// The fraction of NULL values of a feature.
    MissingValues,
    /// The drift statistic of a feature against the set's baseline (`ks_test`, `psi`,
    /// `chi2`, `wasserstein`).
    Drift { method: String },
    /// Seconds between the run's time and the newest event.
    Freshness,
    /// Rows in the window.
    RowCount,
    /// Expectations of the target's features that failed in the window.
    ExpectationsFailed,
    /// Seconds since the online copy was last materialized successfully.
    OnlineStaleness,
}

/// How a value is compared with its threshold: the metric alerts when `value op threshold`.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
pub enum Comparison {
    #[serde(rename = ">")]
    Gt,
    #[serde(rename = ">=")]
    Ge,
    #[serde(rename = "<")]
    Lt,
    #[serde(rename = "<=")]
    Le,
}

impl Comparison {
    pub fn as_str(&self) -> &'static str {
        match self {
            Comparison::Gt => ">",
            Comparison::Ge => ">=",
            Comparison::Lt => "<",
            Comparison::Le => "<=",
        }
    }

    /// Whether `value` crosses `threshold`.
    pub fn crosses(&self, value: f64, threshold: f64) -> bool {
        match self {
            Comparison::Gt => value > threshold,
            Comparison::Ge => value >= threshold,
            Comparison::Lt => value < threshold,
            Comparison::Le => value <= threshold,
        }
    }
}

/// One metric of a monitor: `kind[(feature)] op threshold`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct MonitorMetric {
    pub kind: MetricKind,
    /// The feature (`group.feature` or a bare name); None: every feature it applies to.
    pub feature: Option<String>,
    pub op: Comparison,
    /// In the metric's unit (seconds for durations).
    pub threshold: f64,
    /// As written (`0.05`, `'2 hours'`).
    pub threshold_text: String,
}

impl MonitorMetric {
    /// The metric's name in results (`missing_values`, `drift:ks_test`, …).
    pub fn name(&self) -> String {
        match &self.kind {
            MetricKind::MissingValues => "missing_values".into(),
            MetricKind::Drift { method } => format!("drift:{method}"),
            MetricKind::Freshness => "freshness".into(),
            MetricKind::RowCount => "row_count".into(),
            MetricKind::ExpectationsFailed => "expectations_failed".into(),
            MetricKind::OnlineStaleness => "online_staleness".into(),
        }
    }

    /// As SQL (`missing_values(amount) > 0.05`).
    pub fn to_sql(&self) -> String {
        let head = match (&self.kind, &self.feature) {
            (MetricKind::Drift { method }, Some(f)) => format!("drift({f}, '{method}')"),
            (MetricKind::Drift { method }, None) => format!("drift('{method}')"),
            (_, Some(f)) => format!("{}({f})", self.name()),
            (_, None) => self.name(),
        };
        format!("{head} {} {}", self.op.as_str(), self.threshold_text)
    }
}

/// `CREATE MONITOR`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Monitor {
    pub name: String,
    pub target: MonitorTarget,
    pub every: WindowLength,
    pub window: MonitorWindow,
    pub metrics: Vec<MonitorMetric>,
    /// Alert channels (none: alerts open and resolve, visible in `fstore.alerts` and on
    /// `/metrics`, without messages).
    pub channels: Vec<String>,
    /// While an alert stays open, remind this often (None: never).
    pub renotify: Option<WindowLength>,
    #[serde(default)]
    pub paused: bool,
    /// Set when applied.
    #[serde(default)]
    pub owner: String,
    #[serde(default)]
    pub created_at: i64,
}

/// How one metric of one run came out.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum MetricStatus {
    Ok,
    Alert,
    /// Nothing to measure (no rows in the window).
    NoData,
    /// It could not be computed (see the note).
    Error,
}

impl MetricStatus {
    pub fn as_str(&self) -> &'static str {
        match self {
            MetricStatus::Ok => "ok",
            MetricStatus::Alert => "alert",
            MetricStatus::NoData => "no_data",
            MetricStatus::Error => "error",
        }
    }
}

/// One metric value of a run.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct MetricResult {
    /// [`MonitorMetric::name`].
    pub metric: String,
    /// `group.feature`, or empty for metrics of the whole target.
    pub feature: String,
    pub value: Option<f64>,
    pub op: Comparison,
    pub threshold: f64,
    pub status: MetricStatus,
    pub note: Option<String>,
    /// A query that reproduces the value.
    pub query: Option<String>,
}

/// One run of a monitor (`fstore.monitor_runs`).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct MonitorRun {
    pub monitor: String,
    /// The run's id: the sequence number of its record (set when applied).
    #[serde(default)]
    pub run: u64,
    /// `schedule` or `run` (a RUN MONITOR statement).
    pub trigger: String,
    /// What was read: `set@version` or the group.
    pub target: String,
    /// The run's time (rows up to it are read) and the window's start, µs.
    pub as_of: i64,
    pub window_start: Option<i64>,
    pub started: i64,
    pub finished: i64,
    pub rows: u64,
    pub results: Vec<MetricResult>,
    /// Why the whole run failed (no results then).
    pub error: Option<String>,
    pub server: String,
}

/// Open or resolved.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum AlertState {
    Open,
    Resolved,
}

/// One alert: a metric of a monitor (for one feature) past its threshold (`fstore.alerts`).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Alert {
    pub monitor: String,
    pub metric: String,
    pub feature: String,
    pub state: AlertState,
    pub opened_at: i64,
    pub resolved_at: Option<i64>,
    /// The run that opened it and the latest run that measured it.
    pub opened_run: u64,
    pub last_run: u64,
    pub value: Option<f64>,
    pub op: Comparison,
    pub threshold: f64,
    pub last_notified: i64,
    pub notifications: u32,
}

/// Why a notification is sent.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum NotificationKind {
    Opened,
    Reminder,
    Resolved,
}

impl NotificationKind {
    pub fn as_str(&self) -> &'static str {
        match self {
            NotificationKind::Opened => "opened",
            NotificationKind::Reminder => "reminder",
            NotificationKind::Resolved => "resolved",
        }
    }
}

/// Where a delivery stands.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum DeliveryState {
    /// Waiting for its next attempt.
    Pending,
    /// An attempt was claimed and has no outcome yet.
    Sending,
    Delivered,
    /// Given up (see [`GIVE_UP_MICROS`]).
    Failed,
}

/// A delivery not delivered this long after its notification is given up.
pub const GIVE_UP_MICROS: i64 = 24 * 3600 * 1_000_000;

/// One attempt to deliver a notification to a channel.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Attempt {
    pub attempt: u32,
    pub server: String,
    pub at: i64,
    /// None while it has no outcome.
    pub ok: Option<bool>,
    pub http_status: Option<u16>,
    pub error: Option<String>,
    pub finished: Option<i64>,
}

/// A notification's delivery to one channel.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Delivery {
    pub channel: String,
    pub state: DeliveryState,
    pub attempts: Vec<Attempt>,
}

/// A message about an alert, to every channel of its monitor.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Notification {
    /// `seq.n`: the record that created it and its position there (the idempotency key).
    pub id: String,
    pub kind: NotificationKind,
    pub created_at: i64,
    pub monitor: String,
    pub target: String,
    pub run: u64,
    pub result: MetricResult,
    pub window_start: Option<i64>,
    pub as_of: i64,
    pub deliveries: Vec<Delivery>,
}

impl Notification {
    /// Whether any delivery still waits.
    pub fn is_pending(&self) -> bool {
        self.deliveries
            .iter()
            .any(|d| matches!(d.state, DeliveryState::Pending | DeliveryState::Sending))
    }
}

/// The latest claim of a scheduled job.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Claim {
    pub due: i64,
    pub server: String,
    pub at: i64,
}

/// The alert key of a metric result.
pub fn alert_key(monitor: &str, metric: &str, feature: &str) -> String {
    format!("{monitor}\u{1f}{metric}\u{1f}{feature}")
}

/// The next due time of a job last claimed (or started) at `last`, every `every` µs, at
/// `now`: the latest point of the grid `last + k·every` not after `now` (so runs missed
/// while no server ran are caught up once), or None before `last + every`.
pub fn due_at(last: i64, every: i64, now: i64) -> Option<i64> {
    if every <= 0 || now < last.saturating_add(every) {
        return None;
    }
    Some(last + (now - last) / every * every)
}

/// The job name of a monitor's schedule.
pub fn monitor_job(name: &str) -> String {
    format!("monitor:{name}")
}

/// When `monitor` is next due at `now` (None: paused or not yet).
pub fn monitor_due(state: &RegistryState, monitor: &Monitor, now: i64) -> Option<i64> {
    if monitor.paused {
        return None;
    }
    let last = state
        .claims
        .get(&monitor_job(&monitor.name))
        .map(|c| c.due)
        .unwrap_or(monitor.created_at)
        .max(monitor.created_at);
    due_at(last, monitor.every.micros, now)
}

impl RegistryState {
    /// The alert channel called `name`, or NotFound.
    pub fn channel(&self, name: &str) -> Result<&AlertChannel, FStoreError> {
        self.alert_channels
            .get(name)
            .ok_or_else(|| FStoreError::not_found(format!("alert channel '{name}' not found")))
    }

    /// The monitor called `name`, or NotFound.
    pub fn monitor(&self, name: &str) -> Result<&Monitor, FStoreError> {
        self.monitors
            .get(name)
            .ok_or_else(|| FStoreError::not_found(format!("monitor '{name}' not found")))
    }

    fn delivery_mut(&mut self, id: &str, channel: &str) -> Option<&mut Delivery> {
        self.notifications
            .get_mut(id)?
            .deliveries
            .iter_mut()
            .find(|d| d.channel == channel)
    }

    fn delivery(&self, id: &str, channel: &str) -> Result<&Delivery, FStoreError> {
        self.notifications
            .get(id)
            .and_then(|n| n.deliveries.iter().find(|d| d.channel == channel))
            .ok_or_else(|| {
                FStoreError::not_found(format!("notification {id} to '{channel}' not found"))
            })
    }

    /// Checks a monitoring change (see [`RegistryState::check`]).
    pub(super) fn check_monitoring(&self, change: &Change) -> Result<(), FStoreError> {
        match change {
            Change::CreateAlertChannel { channel, replace } => {
                if self.alert_channels.contains_key(&channel.name) && !replace {
                    return Err(FStoreError::already_exists(format!(
                        "alert channel '{}' already exists",
                        channel.name
                    )));
                }
                Ok(())
            }
            Change::DropAlertChannel { name } => {
                self.channel(name)?;
                if let Some(m) = self.monitors.values().find(|m| m.channels.contains(name)) {
                    return Err(FStoreError::invalid(format!(
                        "cannot drop alert channel '{name}': monitor '{}' alerts to it (drop or replace the monitor first)",
                        m.name
                    )));
                }
                Ok(())
            }
            Change::CreateMonitor { monitor, replace } => {
                if self.monitors.contains_key(&monitor.name) && !replace {
                    return Err(FStoreError::already_exists(format!(
                        "monitor '{}' already exists",
                        monitor.name
                    )));
                }
                for c in &monitor.channels {
                    self.channel(c)?;
                }
                match &monitor.target {
                    MonitorTarget::FeatureSet { name, version } => {
                        let reference = match version {
                            Some(v) => format!("{name}@{v}"),
                            None => name.clone(),
                        };
                        self.feature_set(&reference)?;
                    }
                    MonitorTarget::FeatureGroup { name } => {
                        self.group(name)?;
                    }
                }
                Ok(())
            }
            Change::DropMonitor { name } | Change::AlterMonitor { name, .. } => {
                self.monitor(name).map(|_| ())
            }
            Change::ClaimRun { job, due, .. } => match self.claims.get(job) {
                Some(c) if c.due >= *due => Err(FStoreError::new(
                    ErrorKind::Conflict,
                    format!("{job}: the run due at {due} was claimed by server {}", c.server),
                )),
                _ => Ok(()),
            },
            Change::MonitorRan(run) => self.monitor(&run.monitor).map(|_| ()),
            Change::DeliveryAttempt {
                notification,
                channel,
                attempt,
                ..
            } => {
                let d = self.delivery(notification, channel)?;
                if d.state != DeliveryState::Pending && d.state != DeliveryState::Sending
                    || d.attempts.len() as u32 + 1 != *attempt
                {
                    return Err(FStoreError::new(
                        ErrorKind::Conflict,
                        format!(
                            "notification {notification} to '{channel}': attempt {attempt} was taken"
                        ),
                    ));
                }
                Ok(())
            }
            Change::DeliveryResult {
                notification,
                channel,
                ..
            } => self.delivery(notification, channel).map(|_| ()),
            _ => Ok(()),
        }
    }

    /// Applies a monitoring change; returns its history line (action, kind, name).
    pub(super) fn apply_monitoring(&mut self, rec: &ChangeRecord) -> (&'static str, &'static str, String) {
        match &rec.change {
            Change::CreateAlertChannel { channel, .. } => {
                let mut c = channel.clone();
                c.owner = rec.principal.clone();
                c.created_at = rec.committed_at;
                self.alert_channels.insert(c.name.clone(), c);
                ("CREATE ALERT CHANNEL", "alert_channel", channel.name.clone())
            }
            Change::DropAlertChannel { name } => {
                self.alert_channels.remove(name);
                ("DROP ALERT CHANNEL", "alert_channel", name.clone())
            }
            Change::CreateMonitor { monitor, .. } => {
                let mut m = monitor.clone();
                m.owner = rec.principal.clone();
                m.created_at = rec.committed_at;
                // A replaced monitor starts its schedule again.
                self.claims.remove(&monitor_job(&m.name));
                self.monitors.insert(m.name.clone(), m);
                ("CREATE MONITOR", "monitor", monitor.name.clone())
            }
            Change::DropMonitor { name } => {
                self.monitors.remove(name);
                self.monitor_runs.remove(name);
                self.claims.remove(&monitor_job(name));
                self.alerts.retain(|_, a| a.monitor != *name);
                self.notifications.retain(|_, n| n.monitor != *name);
                ("DROP MONITOR", "monitor", name.clone())
            }
            Change::AlterMonitor { name, paused } => {
                if let Some(m) = self.monitors.get_mut(name) {
                    m.paused = *paused;
                }
                let action = if *paused { "PAUSE MONITOR" } else { "RESUME MONITOR" };
                (action, "monitor", name.clone())
            }
            Change::ClaimRun { job, due, server } => {
                self.claims.insert(
                    job.clone(),
                    Claim {
                        due: *due,
                        server: server.clone(),
                        at: rec.committed_at,
                    },
                );
                ("CLAIM RUN", "job", job.clone())
            }
            Change::MonitorRan(run) => {
                let mut run = run.clone();
                run.run = rec.seq;
                self.open_and_resolve(rec, &run);
                let runs = self.monitor_runs.entry(run.monitor.clone()).or_default();
                let name = format!("{}#{}", run.monitor, run.run);
                runs.push(run);
                if runs.len() > MONITOR_RUNS_KEPT {
                    runs.drain(..runs.len() - MONITOR_RUNS_KEPT);
                }
                ("RUN MONITOR", "monitor", name)
            }
            Change::DeliveryAttempt {
                notification,
                channel,
                attempt,
                server,
            } => {
                if let Some(d) = self.delivery_mut(notification, channel) {
                    d.state = DeliveryState::Sending;
                    d.attempts.push(Attempt {
                        attempt: *attempt,
                        server: server.clone(),
                        at: rec.committed_at,
                        ok: None,
                        http_status: None,
                        error: None,
                        finished: None,
                    });
                }
                ("ALERT DELIVERY", "alert_channel", format!("{channel} {notification}"))
            }
            Change::DeliveryResult {
                notification,
                channel,
                attempt,
                ok,
                http_status,
                error,
            } => {
                let created = self.notifications.get(notification).map(|n| n.created_at);
                if let Some(d) = self.delivery_mut(notification, channel) {
                    if let Some(a) = d.attempts.iter_mut().find(|a| a.attempt == *attempt) {
                        a.ok = Some(*ok);
                        a.http_status = *http_status;
                        a.error = error.clone();
                        a.finished = Some(rec.committed_at);
                    }
                    if d.state != DeliveryState::Delivered {
                        d.state = if *ok {
                            DeliveryState::Delivered
                        } else if created.is_some_and(|c| rec.committed_at - c > GIVE_UP_MICROS) {
                            DeliveryState::Failed
                        } else {
                            DeliveryState::Pending
                        };
                    }
                }
                self.trim_notifications();
                let outcome = if *ok { "delivered" } else { "failed" };
                ("ALERT DELIVERY", "alert_channel", format!("{channel} {notification} {outcome}"))
            }
            _ => ("", "", String::new()),
        }
    }

    /// The alert transitions of a run (see the module docs).
    fn open_and_resolve(&mut self, rec: &ChangeRecord, run: &MonitorRun) {
        let Some(monitor) = self.monitors.get(&run.monitor).cloned() else {
            return;
        };
        let now = rec.committed_at;
        let mut sent = 0usize;
        for r in &run.results {
            let key = alert_key(&run.monitor, &r.metric, &r.feature);
            let open = self
                .alerts
                .get(&key)
                .filter(|a| a.state == AlertState::Open)
                .cloned();
            let kind = match (r.status, &open) {
                (MetricStatus::Alert, None) => {
                    self.alerts.insert(
                        key.clone(),
                        Alert {
                            monitor: run.monitor.clone(),
                            metric: r.metric.clone(),
                            feature: r.feature.clone(),
                            state: AlertState::Open,
                            opened_at: now,
                            resolved_at: None,
                            opened_run: run.run,
                            last_run: run.run,
                            value: r.value,
                            op: r.op,
                            threshold: r.threshold,
                            last_notified: now,
                            notifications: 1,
                        },
                    );
                    Some(NotificationKind::Opened)
                }
                (MetricStatus::Alert, Some(a)) => {
                    let remind = monitor
                        .renotify
                        .as_ref()
                        .is_some_and(|every| now - a.last_notified >= every.micros);
                    if let Some(alert) = self.alerts.get_mut(&key) {
                        alert.last_run = run.run;
                        alert.value = r.value;
                        if remind {
                            alert.last_notified = now;
                            alert.notifications += 1;
                        }
                    }
                    remind.then_some(NotificationKind::Reminder)
                }
                (MetricStatus::Ok, Some(_)) => {
                    if let Some(alert) = self.alerts.get_mut(&key) {
                        alert.state = AlertState::Resolved;
                        alert.resolved_at = Some(now);
                        alert.last_run = run.run;
                        alert.value = r.value;
                        alert.last_notified = now;
                        alert.notifications += 1;
                    }
                    Some(NotificationKind::Resolved)
                }
                _ => None,
            };
            let Some(kind) = kind else { continue };
            if monitor.channels.is_empty() {
                continue;
            }
            let id = format!("{}.{sent}", rec.seq);
            sent += 1;
            self.notifications.insert(
                id.clone(),
                Notification {
                    id,
                    kind,
                    created_at: now,
                    monitor: run.monitor.clone(),
                    target: run.target.clone(),
                    run: run.run,
                    result: r.clone(),
                    window_start: run.window_start,
                    as_of: run.as_of,
                    deliveries: monitor
                        .channels
                        .iter()
                        .map(|c| Delivery {
                            channel: c.clone(),
                            state: DeliveryState::Pending,
                            attempts: vec![],
                        })
                        .collect(),
                },
            );
        }
    }

    /// Keeps every pending notification and the newest finished ones.
    fn trim_notifications(&mut self) {
        let finished: Vec<String> = self
            .notifications
            .values()
            .filter(|n| !n.is_pending())
            .map(|n| n.id.clone())
            .collect();
        if finished.len() > NOTIFICATIONS_KEPT {
            let mut by_age: Vec<(i64, String)> = finished
                .into_iter()
                .filter_map(|id| self.notifications.get(&id).map(|n| (n.created_at, id)))
                .collect();
            by_age.sort();
            let drop = by_age.len() - NOTIFICATIONS_KEPT;
            for (_, id) in by_age.into_iter().take(drop) {
                self.notifications.remove(&id);
            }
        }
    }
}

/// Monitoring parts of the state (flattened into [`RegistryState`]).
pub type Notifications = BTreeMap<String, Notification>;
