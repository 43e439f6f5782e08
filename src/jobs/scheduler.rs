//! The scheduler of a server's background work: online refreshes (every online feature set
//! on its `update_frequency`, and on request when a lookup found its copy past the cache
//! TTL), monitor runs (every monitor on its `EVERY`), and the delivery of alert
//! notifications.
//!
//! **Once per period across servers.** Several servers may share a warehouse; each scheduled
//! run is claimed in the registry first (`Change::ClaimRun`: a conditional commit that
//! fails when the job already has a claim as recent), so exactly one server runs each
//! period. The due time is the latest point of the job's grid (`last + k·every`) not after
//! now: after downtime the missed periods are caught up by one run, not one per period.
//!
//! The schedule lives in the registry, not in memory: a set's next run is its latest run's
//! start (any trigger, successful or not) plus its update frequency — or the time it was set
//! online plus the frequency when it never ran — so a restarted server picks the schedule up
//! where it was. Refreshes of one set never overlap (the online service locks per set); a
//! set whose refresh is still running when its next run is due is skipped until it ends.

use std::sync::Arc;
use std::time::Duration;

use crate::engine::Engine;
use crate::principal::Principal;
use crate::registry::RegistryState;

/// How often the scheduler looks at the registry.
pub const TICK: Duration = Duration::from_millis(500);
/// A refresh asked for by a stale lookup waits at least this long after a failed run (so a
/// broken source does not turn every lookup into a refresh attempt).
pub const STALE_RETRY_MICROS: i64 = 10_000_000;

/// When the latest run of `set` started, if it failed.
fn last_failure(state: &RegistryState, set: &str) -> Option<i64> {
    state
        .materializations
        .get(set)
        .and_then(|r| r.last())
        .filter(|r| r.status == crate::registry::RunStatus::Failed)
        .map(|r| r.started)
}

/// Claims a job's period for this server (false: another server has it, or the registry
/// could not be written).
async fn claim(engine: &Arc<Engine>, job: &str, due: i64) -> bool {
    let Ok(monitors) = crate::monitor::service_of(engine) else {
        return true;
    };
    match monitors.claim(engine, job, due).await {
        Ok(claimed) => claimed,
        Err(e) => {
            tracing::warn!(job, error = %e, "scheduler: cannot claim a run");
            false
        }
    }
}

/// Starts the due run of every monitor that is not running here.
async fn run_monitors(engine: &Arc<Engine>, state: &RegistryState, now: i64) {
    let Ok(monitors) = crate::monitor::service_of(engine) else {
        return;
    };
    for m in state.monitors.values() {
        let Some(at) = crate::registry::monitor_due(state, m, now) else {
            continue;
        };
        if monitors.is_running(&m.name)
            || !claim(engine, &crate::registry::monitor_job(&m.name), at).await
        {
            continue;
        }
        let engine = Arc::clone(engine);
        let monitors = Arc::clone(&monitors);
        let name = m.name.clone();
        let owner = m.owner.clone();
        tokio::spawn(async move {
            // A scheduled run acts for the monitor's owner, with the owner's privileges now.
            let principal = Principal::trusted("scheduler");
            if let Err(e) = check_owner(&engine, &owner, &name) {
                tracing::warn!(monitor = %name, error = %e, "scheduled monitor run refused");
                return;
            }
            if let Err(e) = monitors
                .run(&engine, &principal, &name, Some(at), "schedule")
                .await
            {
                tracing::warn!(monitor = %name, error = %e, "scheduled monitor run failed");
            }
        });
    }
}

/// The owner of a monitor must still be able to read what it watches.
fn check_owner(engine: &Engine, owner: &str, name: &str) -> datafusion::error::Result<()> {
    let state = engine.registry().state();
    let m = state.monitor(name)?;
    if owner.is_empty() || state.is_admin(owner) || !state.users.contains_key(owner) {
        return Ok(());
    }
    let object = match &m.target {
        crate::registry::MonitorTarget::FeatureSet { name, version } => {
            let reference = match version {
                Some(v) => format!("{name}@{v}"),
                None => name.clone(),
            };
            let v = state.feature_set(&reference)?;
            crate::registry::ObjectRef::set_version(&v.name, v.version)
        }
        crate::registry::MonitorTarget::FeatureGroup { name } => {
            crate::registry::ObjectRef::new(crate::registry::ObjectKind::FeatureGroup, name)
        }
    };
    if state.allows(owner, crate::registry::Privilege::Select, Some(&object)) {
        Ok(())
    } else {
        Err(crate::error::FStoreError::permission_denied(format!(
            "the owner of monitor '{name}' ({owner}) may no longer read {object}"
        ))
        .into())
    }
}

/// Runs until the task is dropped (aborted). Refreshes run as the `scheduler` principal.
pub async fn run(engine: Arc<Engine>) {
    let online = match crate::online::service_of(&engine) {
        Ok(online) => online,
        Err(e) => {
            tracing::warn!(error = %e, "no online refreshes are scheduled");
            return;
        }
    };
    let mut requests = online.take_requests();
    let mut tick = tokio::time::interval(TICK);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    loop {
        let mut requested: Vec<String> = Vec::new();
        match requests.as_mut() {
            Some(rx) => tokio::select! {
                _ = tick.tick() => {},
                Some(set) = rx.recv() => requested.push(set),
            },
            None => {
                tick.tick().await;
            }
        }
        if let Err(e) = engine.refresh().await {
            tracing::warn!(error = %e, "scheduler: cannot read the registry");
            continue;
        }
        let state = engine.registry().state();
        let now = crate::registry::now_micros();
        let mut due: Vec<(String, &'static str)> = Vec::new();
        for config in state.online.values() {
            if let Some(at) = crate::registry::refresh_due(&state, config, now)
                && !online.is_pending(&config.set)
                && claim(&engine, &crate::registry::refresh_job(&config.set), at).await
            {
                due.push((config.set.clone(), "schedule"));
            }
        }
        run_monitors(&engine, &state, now).await;
        if let Ok(monitors) = crate::monitor::service_of(&engine) {
            monitors.deliver(&engine);
        }
        for set in requested {
            let recent = last_failure(&state, &set).is_some_and(|t| now - t < STALE_RETRY_MICROS);
            if state.online.contains_key(&set) && !recent {
                due.push((set, "stale"));
            }
        }
        for (set, trigger) in due {
            if !online.mark_pending(&set) {
                continue;
            }
            let engine = Arc::clone(&engine);
            let online = Arc::clone(&online);
            tokio::spawn(async move {
                let principal = Principal::trusted("scheduler");
                if let Err(e) = online
                    .refresh(&engine, &principal, &set, None, trigger)
                    .await
                {
                    tracing::warn!(set, trigger, error = %e, "scheduled refresh failed");
                }
                online.clear_pending(&set);
            });
        }
    }
}
