//! OpenLineage run events for exports and online materializations, POSTed to the endpoint
//! of `[lineage] openlineage_url` (Marquez, DataHub, any OpenLineage consumer).
//!
//! Events come from the registry's log, not from the code paths that export or materialize:
//! after every sync the emitter looks at the records it has not seen (`EXPORT`,
//! `MATERIALIZE`) and sends one `COMPLETE` (or `FAIL`) run event each, with the feature-set
//! version as input and the export location or the online store as output. Sending is
//! asynchronous and bounded: a slow or absent receiver never delays a statement; failures
//! are logged.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use serde_json::{Value, json};

use crate::config::LineageConfig;
use crate::registry::{RegistryState, RunStatus};

/// Events in flight at most; more are dropped (and counted).
const MAX_IN_FLIGHT: usize = 64;
const PRODUCER: &str = "https://github.com/fstore/fstore";
const SCHEMA_URL: &str = "https://openlineage.io/spec/2-0-2/OpenLineage.json#/definitions/RunEvent";

/// Sends lineage events for new registry records.
#[derive(Debug)]
pub struct Emitter {
    url: String,
    namespace: String,
    client: reqwest::Client,
    /// The last registry sequence looked at.
    seen: AtomicU64,
    in_flight: Arc<tokio::sync::Semaphore>,
}

impl Emitter {
    /// An emitter for `config`, or None when no endpoint is configured. Records up to
    /// `seq` (the state at start-up) are not sent again.
    pub fn new(config: &LineageConfig, seq: u64) -> Option<Self> {
        let url = config.openlineage_url.clone()?;
        Some(Self {
            url,
            namespace: config.namespace.clone(),
            client: reqwest::Client::builder()
                .timeout(Duration::from_secs(10))
                .build()
                .unwrap_or_default(),
            seen: AtomicU64::new(seq),
            in_flight: Arc::new(tokio::sync::Semaphore::new(MAX_IN_FLIGHT)),
        })
    }

    /// Sends the events of records after the last seen one.
    pub fn sync(&self, state: &RegistryState) {
        let from = self.seen.swap(state.seq, Ordering::SeqCst);
        if from >= state.seq {
            return;
        }
        for event in events(state, from, &self.namespace) {
            let Ok(permit) = Arc::clone(&self.in_flight).try_acquire_owned() else {
                tracing::warn!("OpenLineage: too many events in flight; one dropped");
                continue;
            };
            let request = self
                .client
                .post(&self.url)
                .header("content-type", "application/json")
                .body(event.to_string());
            tokio::spawn(async move {
                let _permit = permit;
                if let Err(e) = request.send().await.and_then(|r| r.error_for_status()) {
                    tracing::warn!(error = %e, "OpenLineage: event not delivered");
                }
            });
        }
    }
}

/// An OpenLineage dataset for a location: `s3://bucket/key` is namespace `s3://bucket`,
/// name `key`; a local path is namespace `file`.
fn location_dataset(path: &str) -> Value {
    match url::Url::parse(path) {
        Ok(u) if u.scheme() != "file" && u.has_host() => json!({
            "namespace": format!("{}://{}", u.scheme(), u.host_str().unwrap_or_default()),
            "name": u.path().trim_start_matches('/'),
        }),
        Ok(u) if u.scheme() == "file" => json!({"namespace": "file", "name": u.path()}),
        _ => json!({"namespace": "file", "name": path}),
    }
}

fn time(micros: i64) -> String {
    chrono::DateTime::from_timestamp_micros(micros)
        .unwrap_or_default()
        .to_rfc3339_opts(chrono::SecondsFormat::Micros, true)
}

/// One OpenLineage run event: a run (a fresh id, FStore's `facets`) of `job` at `at`
/// (microseconds), reading `input` and writing `output`.
fn run_event(kind: &str, at: i64, facets: Value, job: Value, input: Value, output: Value) -> Value {
    let mut fstore = json!({"_producer": PRODUCER, "_schemaURL": SCHEMA_URL});
    if let (Some(f), Value::Object(extra)) = (fstore.as_object_mut(), facets) {
        f.extend(extra);
    }
    json!({
        "eventType": kind,
        "eventTime": time(at),
        "producer": PRODUCER,
        "schemaURL": SCHEMA_URL,
        "run": {"runId": uuid::Uuid::new_v4().to_string(), "facets": {"fstore": fstore}},
        "job": job,
        "inputs": [input],
        "outputs": [output],
    })
}

/// The run events of the records after `from` (pure: what [`Emitter::sync`] sends).
pub fn events(state: &RegistryState, from: u64, namespace: &str) -> Vec<Value> {
    let set_dataset = |set: &str, version: u64| json!({"namespace": namespace, "name": format!("feature_set.{set}@{version}")});
    let mut out = vec![];
    let mut materialized: std::collections::HashMap<&str, usize> = Default::default();
    let new: Vec<_> = state.history.iter().filter(|h| h.seq > from).collect();
    // Materializations: the last runs of each set, as many as new records name it.
    for h in &new {
        if h.action == "MATERIALIZE"
            && let Some((set, _)) = h.object_name.split_once('@')
        {
            *materialized.entry(set).or_default() += 1;
        }
    }
    for (set, n) in materialized {
        let runs = state
            .materializations
            .get(set)
            .map(Vec::as_slice)
            .unwrap_or(&[]);
        for r in &runs[runs.len().saturating_sub(n)..] {
            let failed = r.status != RunStatus::Succeeded;
            let facets = json!({"trigger": r.trigger, "mode": r.mode, "rows": r.rows});
            out.push(run_event(
                if failed { "FAIL" } else { "COMPLETE" },
                r.finished,
                facets,
                json!({"namespace": namespace, "name": format!("materialize.{set}")}),
                set_dataset(set, r.version),
                json!({"namespace": namespace, "name": format!("online.{set}@{}", r.version)}),
            ));
        }
    }
    for h in &new {
        if h.action != "EXPORT" {
            continue;
        }
        for e in state.exports.iter().filter(|e| e.at == h.committed_at) {
            let facets = json!({"rows": e.rows, "files": e.files, "principal": h.principal});
            out.push(run_event(
                "COMPLETE",
                e.at,
                facets,
                json!({"namespace": namespace, "name": format!("export.{}", e.set)}),
                set_dataset(&e.set, e.version),
                location_dataset(&e.path),
            ));
        }
    }
    out
}
