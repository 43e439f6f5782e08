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

use super::{Change, RegistryState, WindowLength};

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
    FeatureSet {
        name: String,
        version: Option<u64>,
    },
    FeatureGroup {
        name: String,
    },
}

impl MonitorTarget {
    /// As a reference: `set`, `set@n` or the group's name.
    pub fn reference(&self) -> String {
        match self {
            MonitorTarget::FeatureSet {
                name,
                version: Some(v),
            } => format!("{name}@{v}"),
            MonitorTarget::FeatureSet { name, .. } | MonitorTarget::FeatureGroup { name } => {
                name.clone()
            }
        }
    }
}

impl std::fmt::Display for MonitorTarget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            MonitorTarget::FeatureSet {
                name,
                version: Some(v),
            } => write!(f, "feature set {name} version {v}"),
            MonitorTarget::FeatureSet {
                name,
                version: None,
            } => write!(f, "feature set {name}"),
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

/// Notifications by id (a part of [`RegistryState`]).
pub type Notifications = BTreeMap<String, Notification>;

impl Change {
    /// Whether it is a monitoring change (checked and applied by `registry::alerts`).
    pub fn is_monitoring(&self) -> bool {
        matches!(
            self,
            Change::CreateAlertChannel { .. }
                | Change::DropAlertChannel { .. }
                | Change::CreateMonitor { .. }
                | Change::DropMonitor { .. }
                | Change::AlterMonitor { .. }
                | Change::ClaimRun { .. }
                | Change::MonitorRan(_)
                | Change::DeliveryAttempt { .. }
                | Change::DeliveryResult { .. }
        )
    }
}
