//! The materialization scheduler: refreshes every online feature set on its
//! `update_frequency`, and on request when a lookup found its copy past the cache TTL.
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
            if let Some(next) = crate::registry::next_run(&state, config)
                && now >= next
            {
                due.push((config.set.clone(), "schedule"));
            }
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
