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

use datafusion::common::config::{ConfigField, ConfigOptions};
use datafusion::error::Result;
use datafusion::execution::{FunctionRegistry, SessionState};

use super::exec::{SqlSession, StatementResult};
use crate::engine::options;
use crate::error::FStoreError;

/// The prefix of the settings that belong to the server (memory, disk, caches).
pub const RUNTIME_PREFIX: &str = "datafusion.runtime.";

/// What a session holds: the settings it changed (`SET`), applied over the server's at every
/// statement, and its temporary tables (`super::temporary`).
#[derive(Debug, Default)]
pub struct SessionSettings {
    overrides: Mutex<BTreeMap<String, String>>,
    temporaries: Arc<super::temporary::Temporaries>,
}

impl SessionSettings {
    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, String>> {
        self.overrides
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// Whether the session changed nothing (its statements run exactly as the server's).
    pub fn is_empty(&self) -> bool {
        self.lock().is_empty() && self.temporaries.is_empty()
    }

    /// The session's temporary tables.
    pub fn temporaries(&self) -> &Arc<super::temporary::Temporaries> {
        &self.temporaries
    }

    /// Records `key = value` (already validated).
    pub fn set(&self, key: &str, value: &str) {
        self.lock().insert(key.to_string(), value.to_string());
    }

    /// Forgets the session's value of `key`: the server's applies again.
    pub fn reset(&self, key: &str) {
        self.lock().remove(key);
    }

    /// `state` with the session's settings and temporary tables applied.
    pub fn apply(&self, state: &mut SessionState) {
        let overrides = self.lock();
        if !overrides.is_empty() {
            let options = state.config_mut().options_mut();
            for (key, value) in overrides.iter() {
                // Validated when set; a value the server no longer accepts is skipped.
                if let Err(e) = options.set(key, value) {
                    tracing::warn!(key, error = %e, "session setting no longer applies");
                }
            }
            drop(overrides);
            refresh_functions(state);
        } else {
            drop(overrides);
        }
        self.temporaries.apply(state);
    }
}

/// Where a statement's `SET` and `RESET` go.
#[derive(Debug, Clone)]
pub enum Scope {
    /// The embedded engine, one user: `SET` changes the engine's context.
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

impl SqlSession<'_> {
    /// The DataFusion session state statements are planned and run with: the engine's,
    /// with the session's settings applied.
    pub fn state(&self) -> SessionState {
        let mut state = self.engine.state();
        if let Some(settings) = self.scope.changed() {
            settings.apply(&mut state);
        }
        state
    }

    /// Whether this statement's session changed any setting (plans made for it are not
    /// shared with other sessions).
    pub fn has_own_settings(&self) -> bool {
        self.scope.changed().is_some()
    }

    pub(super) fn scope(&self) -> &Scope {
        &self.scope
    }

    /// Whether `SET`/`RESET` of `key` changes the engine's context (the embedded engine, and
    /// the server settings of a server) rather than one session.
    pub(super) fn sets_engine(&self, key: &str) -> bool {
        matches!(self.scope, Scope::Engine) || key.starts_with(RUNTIME_PREFIX)
    }

    /// `SET key = value` (or `RESET key` when `value` is None) in this statement's session
    /// (already authorized by `check_plan`).
    pub(super) fn set_in_session(&self, key: &str, value: Option<&str>) -> Result<StatementResult> {
        let Scope::Session(settings) = &self.scope else {
            return Err(FStoreError::invalid(format!(
                "SET {key}: this request belongs to no session (it carries no bearer token); log in with Handshake first, settings last as long as its token"
            ))
            .into());
        };
        validate(self.ctx().copied_config().options(), key, value)?;
        match value {
            Some(v) => settings.set(key, v),
            None => settings.reset(key),
        }
        self.done(None)
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
/// applying it to a copy of the server's settings.
fn validate(server: &ConfigOptions, key: &str, value: Option<&str>) -> Result<()> {
    let mut copy = server.clone();
    match value {
        Some(v) => copy.set(key, v)?,
        // DataFusion resets only its own namespace; FStore's settings exist if they can be set.
        None if key.starts_with(options::PREFIX) => copy.set(key, "")?,
        None => copy.reset(key)?,
    }
    Ok(())
}

/// The largest partition count and batch size a non-administrator may set: enough to test a
/// query at 1 and 8 partitions, or to widen it to every core and more, but not a thousand
/// threads' worth of buffers.
fn partition_bound(server: usize) -> usize {
    let cores = std::thread::available_parallelism().map_or(4, |n| n.get());
    server.max(4 * cores).max(16)
}
const MAX_USER_BATCH_SIZE: usize = 1 << 20;

/// Whether a non-administrator may `SET`/`RESET` `key` (to `value`), given the server's
/// partition count.
pub fn check_user_setting(key: &str, value: Option<&str>, server: &ConfigOptions) -> Result<()> {
    const QUERY: [&str; 5] = [
        "datafusion.execution.",
        "datafusion.optimizer.",
        "datafusion.explain.",
        "datafusion.format.",
        "datafusion.sql_parser.",
    ];
    if !QUERY.iter().any(|p| key.starts_with(p)) && key != options::QUERY_TIMEOUT {
        return Err(FStoreError::permission_denied(format!(
            "SET {key}: only an administrator may change it (a user may change the query settings: datafusion.execution.*, optimizer.*, explain.*, format.*, sql_parser.*, and lower fstore.query_timeout)"
        ))
        .into());
    }
    let Some(value) = value else {
        return Ok(());
    };
    if key == options::QUERY_TIMEOUT {
        // A user may shorten the server's limit, not lift it.
        return match (options::query_timeout(server), options::parse_timeout(value)?) {
            (Some(limit), None) => Err(FStoreError::permission_denied(format!(
                "SET {key} = '{value}': the server limits queries to {limit:?}; a user may set a shorter limit, not none"
            ))
            .into()),
            (Some(limit), Some(t)) if t > limit => Err(FStoreError::permission_denied(format!(
                "SET {key} = '{value}': at most {limit:?}, the server's limit (an administrator may set more)"
            ))
            .into()),
            _ => Ok(()),
        };
    }
    let server_partitions = server.execution.target_partitions;
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
