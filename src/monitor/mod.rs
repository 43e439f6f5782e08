//! Monitoring and alerts (docs/sql-reference.md, "Monitoring and alerts"): alert channels,
//! monitors with metrics and thresholds, their runs, the alert lifecycle and the delivery of
//! notifications to Slack and webhooks.
//!
//! - Definitions, runs, alerts, notifications and delivery attempts are registry records
//!   (`registry::monitor`), so they are durable, shared by every server of a warehouse and
//!   survive restarts; the alert lifecycle is computed when a run's record is applied.
//! - [`MonitorService::run`] measures a monitor (`measure`: one aggregate pass per feature
//!   group) and commits the run; the scheduler (`jobs::scheduler`) claims each due period
//!   of each monitor once across servers (`Change::ClaimRun`) and runs it here.
//! - [`MonitorService::deliver`] sends pending notifications (`delivery`), each attempt
//!   claimed in the registry first, in background tasks: a slow or dead channel delays
//!   nothing else.

pub mod collect;
pub mod define;
pub mod delivery;
pub mod measure;
pub mod statements;
pub mod tables;

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};

use datafusion::error::Result;

use crate::engine::{Engine, EngineExtension, Setup};
use crate::principal::Principal;
use crate::registry::{Change, MonitorRun, MonitorWindow};

/// Registers the monitoring system tables, `monitor_history` and the service.
pub struct MonitorExtension;

#[async_trait::async_trait]
impl EngineExtension for MonitorExtension {
    fn name(&self) -> &'static str {
        "monitor"
    }

    async fn register(&self, setup: &mut Setup<'_>) -> Result<()> {
        tables::register(setup);
        setup.provide(Arc::new(MonitorService::new()));
        Ok(())
    }
}

/// The engine's monitoring service.
pub fn service_of(engine: &Engine) -> Result<Arc<MonitorService>> {
    engine.service::<MonitorService>().ok_or_else(|| {
        crate::error::FStoreError::unimplemented("monitoring is not enabled in this engine").into()
    })
}

/// Runs monitors and delivers their notifications for one server.
#[derive(Debug)]
pub struct MonitorService {
    /// This server's id in claims and delivery attempts.
    pub server: String,
    client: reqwest::Client,
    /// Monitors running here now (a run never overlaps itself on one server).
    running: Mutex<HashSet<String>>,
    /// Deliveries being attempted here now, by (notification, channel).
    sending: Mutex<HashSet<(String, String)>>,
    /// When each channel may send next (its rate limit), µs.
    next_send: Mutex<HashMap<String, i64>>,
}

impl Default for MonitorService {
    fn default() -> Self {
        Self::new()
    }
}

impl MonitorService {
    pub fn new() -> Self {
        Self {
            server: uuid::Uuid::new_v4().to_string()[..8].to_string(),
            client: reqwest::Client::builder()
                .timeout(delivery::TIMEOUT)
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .unwrap_or_default(),
            running: Mutex::new(HashSet::new()),
            sending: Mutex::new(HashSet::new()),
            next_send: Mutex::new(HashMap::new()),
        }
    }

    /// Whether `name` is running on this server.
    pub fn is_running(&self, name: &str) -> bool {
        self.running
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .contains(name)
    }

    /// Runs monitor `name` at `as_of` (now when None) and commits the run; `trigger` is
    /// `run` (a statement) or `schedule`. Metric errors are recorded in the run, not
    /// returned: a run that could not read its data is a run with an error.
    pub async fn run(
        &self,
        engine: &Engine,
        principal: &Principal,
        name: &str,
        as_of: Option<i64>,
        trigger: &str,
    ) -> Result<MonitorRun> {
        if !self
            .running
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(name.to_string())
        {
            return Err(crate::error::FStoreError::new(
                crate::error::ErrorKind::Conflict,
                format!(
                    "monitor '{name}' is already running on this server; try again when it ends"
                ),
            )
            .into());
        }
        let result = self.run_now(engine, principal, name, as_of, trigger).await;
        self.running
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(name);
        result
    }

    async fn run_now(
        &self,
        engine: &Engine,
        principal: &Principal,
        name: &str,
        as_of: Option<i64>,
        trigger: &str,
    ) -> Result<MonitorRun> {
        let reg = engine.registry().state();
        let monitor = reg.monitor(name)?.clone();
        let started = crate::registry::now_micros();
        let as_of = as_of.unwrap_or(started);
        let start = match &monitor.window {
            MonitorWindow::All => None,
            MonitorWindow::Last { length } => Some(as_of - length.micros),
            MonitorWindow::SinceLastRun => reg
                .monitor_runs
                .get(name)
                .and_then(|runs| {
                    runs.iter()
                        .rev()
                        .find(|r| r.error.is_none() && r.as_of < as_of)
                })
                .map(|r| r.as_of),
        };
        let window = measure::Window { start, as_of };
        let measured = match define::Target::resolve(&reg, &monitor.target) {
            Ok(target) => {
                let state = engine.state();
                measure::measure(engine.registry(), &state, &reg, &monitor, &target, window)
                    .await
                    .map(|m| (target.label.clone(), m))
            }
            Err(e) => Err(e),
        };
        let mut run = MonitorRun {
            monitor: name.to_string(),
            run: 0,
            trigger: trigger.to_string(),
            target: String::new(),
            as_of,
            window_start: start,
            started,
            finished: 0,
            rows: 0,
            results: vec![],
            error: None,
            server: self.server.clone(),
        };
        match measured {
            Ok((label, (rows, results))) => {
                run.target = label;
                run.rows = rows;
                run.results = results;
            }
            Err(e) => {
                run.target = monitor.target.reference();
                run.error = Some(crate::error::user_message(&e));
            }
        }
        run.finished = crate::registry::now_micros();
        let at = chrono::DateTime::from_timestamp_micros(as_of)
            .unwrap_or_default()
            .naive_utc()
            .format("%Y-%m-%dT%H:%M:%S%.6f");
        let statement = match trigger {
            "schedule" => format!("-- scheduled run of monitor {name} AS OF '{at}'"),
            _ => format!("RUN MONITOR {name} AS OF '{at}'"),
        };
        let record = engine
            .registry()
            .commit(principal, &statement, Change::MonitorRan(run.clone()))
            .await?;
        run.run = record.seq;
        engine.sync().await?;
        Ok(run)
    }

    /// Claims the period of monitor `name` due at `due` for this server. False when another
    /// server (or this one, earlier) has it.
    pub async fn claim(&self, engine: &Engine, job: &str, due: i64) -> Result<bool> {
        let change = Change::ClaimRun {
            job: job.to_string(),
            due,
            server: self.server.clone(),
        };
        let statement = format!("-- claim {job} due at {due}");
        match engine
            .registry()
            .commit(&Principal::trusted("scheduler"), &statement, change)
            .await
        {
            Ok(_) => Ok(true),
            Err(e) if crate::error::ErrorKind::of(&e) == crate::error::ErrorKind::Conflict => {
                Ok(false)
            }
            Err(e) => Err(e),
        }
    }
}
