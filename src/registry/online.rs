//! Online serving as the registry stores it (docs/sql-reference.md): which feature sets are online, with
//! what schedule and cache TTL, and the record of every materialization run.

use serde::{Deserialize, Serialize};

use super::WindowLength;

/// Now, in µs since the epoch (the clock of registry records and online serving).
pub fn now_micros() -> i64 {
    chrono::Utc::now().timestamp_micros()
}

/// `ALTER FEATURE SET name [VERSION n] SET ONLINE (update_frequency = …, cache_ttl = …)`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct OnlineConfig {
    /// The feature set's name: its online copy is served under this name.
    pub set: String,
    /// The version materialized: the one named, else the latest when the statement ran.
    pub version: u64,
    /// Re-materialize on this schedule (None: only on `REFRESH`).
    pub update_frequency: Option<WindowLength>,
    /// A served row is at most this old relative to its materialization (None: no limit).
    pub cache_ttl: Option<WindowLength>,
    /// When it was set online (µs since the epoch; set when applied).
    #[serde(default)]
    pub since: i64,
}

/// How a materialization run ended.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum RunStatus {
    Succeeded,
    Failed,
}

impl RunStatus {
    pub fn as_str(&self) -> &'static str {
        match self {
            RunStatus::Succeeded => "succeeded",
            RunStatus::Failed => "failed",
        }
    }
}

/// One materialization run (`fstore.materializations`).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct MaterializationRun {
    pub set: String,
    pub version: u64,
    /// `refresh` (a REFRESH statement), `schedule` or `stale` (a lookup past the cache TTL).
    pub trigger: String,
    /// `full` or `incremental`.
    pub mode: String,
    /// The time features were computed at (µs).
    pub as_of: i64,
    /// Wall clock, µs since the epoch.
    pub started: i64,
    pub finished: i64,
    /// Entities materialized (0 when failed).
    pub rows: u64,
    pub status: RunStatus,
    pub error: Option<String>,
    /// Which store served it (`embedded`, `redis`).
    #[serde(default)]
    pub store: String,
    /// The published snapshot's generation (0 when failed): other servers on the same
    /// warehouse reload an embedded snapshot when they see a newer one.
    #[serde(default)]
    pub generation: u64,
    /// The source tables as this run saw them (for incremental refreshes).
    #[serde(default)]
    pub sources: Vec<SourceMark>,
}

/// Runs kept per set in the registry state (older ones stay in the log and `fstore.history`).
pub const RUNS_KEPT: usize = 200;

/// A source table as a materialization saw it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SourceMark {
    pub relation: String,
    /// The record that created the table (a re-created table has another).
    pub created: u64,
    /// How many of its files there were.
    pub files: usize,
}

/// When `config`'s set is next due (µs), or None when it has no schedule.
pub fn next_run(state: &super::RegistryState, config: &OnlineConfig) -> Option<i64> {
    let freq = config.update_frequency.as_ref()?.micros;
    let last = state
        .materializations
        .get(&config.set)
        .and_then(|runs| runs.last())
        .map(|r| r.started.max(config.since))
        .unwrap_or(config.since);
    Some(last + freq)
}

/// The job name of a set's scheduled refreshes (see `Change::ClaimRun`).
pub fn refresh_job(set: &str) -> String {
    format!("refresh:{set}")
}

/// When `config`'s scheduled refresh is due at `now` (None: no schedule, or not yet): the
/// latest point of the grid from its last run, claim or start, so missed periods are caught
/// up once.
pub fn refresh_due(state: &super::RegistryState, config: &OnlineConfig, now: i64) -> Option<i64> {
    let freq = config.update_frequency.as_ref()?.micros;
    let next = next_run(state, config)?;
    let claimed = state.claims.get(&refresh_job(&config.set)).map(|c| c.due);
    let last = (next - freq).max(claimed.unwrap_or(i64::MIN));
    super::monitor::due_at(last, freq, now)
}
