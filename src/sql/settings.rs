//! Session settings: where `SET` and `RESET` go.
//!
//! A server session is one login (one bearer token; every ADBC/JDBC connection logs in once).
//! `SET key = value` in a session changes that session only: its statements are planned and
//! run with the server's settings overridden by the session's, and no other session sees the
//! change. Settings that belong to the server rather than to a query (`datafusion.runtime.*`:
//! memory limit, spill directory, caches) change the whole server and need an administrator.
//! Non-administrators may set the query settings (`datafusion.execution.*`, `optimizer`,
//! `explain`, `format`, `sql_parser`) within bounds that keep one session from taking the
//! machine (see [`check_user_setting`]); the catalog settings, which change how names
//! resolve, need an administrator.
//!
//! The embedded engine (CLI, `.slt`, the scheduler) has one user: its `SET` changes the
//! engine's own context, as DataFusion does.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, PoisonError};

use datafusion::common::config::ConfigField;
use datafusion::error::Result;
use datafusion::execution::{FunctionRegistry, SessionState};

use crate::error::FStoreError;

/// The prefix of the settings that belong to the server (memory, disk, caches).
pub const RUNTIME_PREFIX: &str = "datafusion.runtime.";

/// The settings a session has changed (`SET`), applied over the server's at every statement.
#[derive(Debug, Default)]
pub struct SessionSettings {
    overrides: Mutex<BTreeMap<String, String>>,
}

impl SessionSettings {
    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, String>> {
        self.overrides
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// Whether the session changed nothing (its statements run exactly as the server's).
    pub fn is_empty(&self) -> bool {
        self.lock().is_empty()
    }

    /// The session's changes, by key.
    pub fn overrides(&self) -> BTreeMap<String, String> {
        self.lock().clone()
    }

    /// Records `key = value` (already validated by [`validate`]).
    pub fn set(&self, key: &str, value: &str) {
        self.lock().insert(key.to_string(), value.to_string());
    }

    /// Forgets the session's value of `key`: the server's applies again.
    pub fn reset(&self, key: &str) {
        self.lock().remove(key);
    }

    /// `state` with the session's settings applied.
    pub fn apply(&self, state: &mut SessionState) {
        let overrides = self.lock();
        if overrides.is_empty() {
            return;
        }
        let options = state.config_mut().options_mut();
        for (key, value) in overrides.iter() {
            // Validated when set; a value the server no longer accepts is skipped.
            if let Err(e) = options.set(key, value) {
                tracing::warn!(key, error = %e, "session setting no longer applies");
            }
        }
        drop(overrides);
        refresh_functions(state);
    }
}

/// Where a statement's `SET` and `RESET` go.
#[derive(Debug, Clone, Default)]
pub enum Scope {
    /// The embedded engine, one user: `SET` changes the engine's context.
    #[default]
    Engine,
    /// A server session: `SET` changes this session only.
    Session(Arc<SessionSettings>),
    /// A server request that belongs to no session (no bearer token): `SET` is refused, as it
    /// would last for this one request only.
    Sessionless,
}

impl Scope {
    /// The session's changes, when the statement runs in a session that made any.
    pub fn changed(&self) -> Option<&SessionSettings> {
        match self {
            Scope::Session(s) if !s.is_empty() => Some(s),
            _ => None,
        }
    }
}

/// Re-initialises the functions whose behaviour depends on the settings (the time zone of
/// `now()`, …), as DataFusion's own `SET` does.
fn refresh_functions(state: &mut SessionState) {
    let options = state.config().options().clone();
    let updated: Vec<_> = state
        .scalar_functions()
        .values()
        .filter_map(|f| f.inner().with_updated_config(&options))
        .collect();
    for f in updated {
        let _ = state.register_udf(Arc::new(f));
    }
}

/// Checks that `key = value` is a setting DataFusion knows with a value it accepts, by
/// applying it to a copy of `state`'s settings.
pub fn validate(state: &SessionState, key: &str, value: Option<&str>) -> Result<()> {
    let mut options = state.config().options().as_ref().clone();
    match value {
        Some(v) => options.set(key, v)?,
        None => options.reset(key)?,
    }
    Ok(())
}

/// The largest partition count and batch size a non-administrator may set: enough to test a
/// query at 1 and 8 partitions, or to widen it to every core and more, but not a thousand
/// threads' worth of buffers.
pub fn partition_bound(server: usize) -> usize {
    let cores = std::thread::available_parallelism().map_or(4, |n| n.get());
    server.max(4 * cores).max(16)
}
pub const MAX_USER_BATCH_SIZE: usize = 1 << 20;

/// Whether a non-administrator may `SET`/`RESET` `key` (to `value`), given the server's
/// partition count.
pub fn check_user_setting(key: &str, value: Option<&str>, server_partitions: usize) -> Result<()> {
    const QUERY: [&str; 5] = [
        "datafusion.execution.",
        "datafusion.optimizer.",
        "datafusion.explain.",
        "datafusion.format.",
        "datafusion.sql_parser.",
    ];
    if !QUERY.iter().any(|p| key.starts_with(p)) {
        return Err(FStoreError::permission_denied(format!(
            "SET {key}: only an administrator may change it (a user may change the query settings: datafusion.execution.*, optimizer.*, explain.*, format.*, sql_parser.*)"
        ))
        .into());
    }
    let Some(value) = value else {
        return Ok(());
    };
    let bounded = |max: usize| -> Result<()> {
        match value.trim().parse::<usize>() {
            Ok(n) if n > max => Err(FStoreError::permission_denied(format!(
                "SET {key} = {n}: at most {max} for a user (an administrator may set more)"
            ))
            .into()),
            _ => Ok(()),
        }
    };
    match key {
        "datafusion.execution.target_partitions" | "datafusion.execution.planning_concurrency" => {
            bounded(partition_bound(server_partitions))
        }
        "datafusion.execution.batch_size" => bounded(MAX_USER_BATCH_SIZE),
        _ => Ok(()),
    }
}
