//! The online service of an engine: the deployment's store, refreshes (one at a time per
//! set), the schema of each online set, and the queue of refresh requests the scheduler
//! serves (lookups past the cache TTL ask for one).

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};

use arrow_schema::SchemaRef;
use datafusion::error::Result;
use futures::StreamExt;
use tokio::sync::mpsc;

use super::embedded::EmbeddedStore;
use super::{OnlineStoreRef, Snapshot, SnapshotInfo};
use crate::engine::Engine;
use crate::error::FStoreError;
use crate::principal::Principal;
use crate::registry::{
    Change, MaterializationRun, OnlineConfig, RegistryState, RunStatus, SourceMark, now_micros,
};

/// An online set version's output schema and key columns.
/// A set version's online row shape: schema, key columns, and the columns that are 0 for an
/// entity the store does not hold.
pub type Shape = (SchemaRef, Vec<String>, Vec<String>);

/// See the module header.
pub struct OnlineService {
    store: OnlineStoreRef,
    /// The same store when it is the embedded one (synchronous lookups).
    embedded: Option<Arc<EmbeddedStore>>,
    /// One lock per set: refreshes of a set never overlap.
    locks: Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
    /// Sets being refreshed or queued.
    pending: Mutex<HashSet<String>>,
    /// Output schema and key columns per (set, version): versions are immutable, so this
    /// never goes stale.
    shapes: Mutex<HashMap<(String, u64), Shape>>,
    requests: mpsc::UnboundedSender<String>,
    receiver: Mutex<Option<mpsc::UnboundedReceiver<String>>>,
}

impl std::fmt::Debug for OnlineService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OnlineService")
            .field("store", &self.store.kind())
            .finish()
    }
}

impl OnlineService {
    pub fn new(store: OnlineStoreRef, embedded: Option<Arc<EmbeddedStore>>) -> OnlineService {
        let (tx, rx) = mpsc::unbounded_channel();
        OnlineService {
            store,
            embedded,
            locks: Mutex::new(HashMap::new()),
            pending: Mutex::new(HashSet::new()),
            shapes: Mutex::new(HashMap::new()),
            requests: tx,
            receiver: Mutex::new(Some(rx)),
        }
    }

    pub fn store(&self) -> &OnlineStoreRef {
        &self.store
    }

    pub fn embedded(&self) -> Option<&Arc<EmbeddedStore>> {
        self.embedded.as_ref()
    }

    /// The refresh requests of stale lookups (taken once, by the scheduler).
    pub fn take_requests(&self) -> Option<mpsc::UnboundedReceiver<String>> {
        self.receiver
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take()
    }

    /// Asks the scheduler (if one runs) to refresh `set` soon.
    pub fn request_refresh(&self, set: &str) {
        // Without a scheduler (the CLI), nobody would read the request.
        let scheduled = self
            .receiver
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .is_none();
        if scheduled {
            let _ = self.requests.send(set.to_string());
        }
    }

    /// Whether a refresh of `set` is running or queued by the scheduler.
    pub fn is_pending(&self, set: &str) -> bool {
        self.pending
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .contains(set)
    }

    /// Marks `set` pending; false when it already was.
    pub fn mark_pending(&self, set: &str) -> bool {
        self.pending
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(set.to_string())
    }

    pub fn clear_pending(&self, set: &str) {
        self.pending
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(set);
    }

    /// The cached output schema and key columns of a set version.
    pub fn cached_shape(&self, set: &str, version: u64) -> Option<Shape> {
        self.shapes
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(&(set.to_string(), version))
            .cloned()
    }

    pub fn cache_shape(&self, set: &str, version: u64, shape: Shape) {
        self.shapes
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert((set.to_string(), version), shape);
    }

    fn lock_of(&self, set: &str) -> Arc<tokio::sync::Mutex<()>> {
        let mut locks = self.locks.lock().unwrap_or_else(|p| p.into_inner());
        Arc::clone(locks.entry(set.to_string()).or_default())
    }

    /// Loads the persisted snapshots of the online sets (embedded store) and reloads those
    /// another process published since (their newest successful run names a generation this
    /// process does not hold).
    pub async fn sync(&self, state: &RegistryState) -> Result<()> {
        let Some(embedded) = &self.embedded else {
            return Ok(());
        };
        for set in state.online.keys() {
            let newest = state
                .materializations
                .get(set)
                .and_then(|runs| {
                    runs.iter()
                        .rev()
                        .find(|r| r.status == RunStatus::Succeeded && r.store == "embedded")
                })
                .map(|r| r.generation);
            let held = embedded.generation(set);
            let stale = match (held, newest) {
                (None, _) => true,
                (Some(h), Some(n)) => n > h,
                (Some(_), None) => false,
            };
            if stale && let Err(e) = embedded.load(set).await {
                tracing::warn!(set, error = %e, "could not load the online snapshot");
            }
        }
        Ok(())
    }

    /// Materializes `set` (its online config's version) at `as_of` (default: now) and
    /// publishes it; records the run in the registry, failed or not. Waits for a refresh
    /// of the same set that is already running.
    pub async fn refresh(
        &self,
        engine: &Engine,
        principal: &Principal,
        set: &str,
        as_of: Option<i64>,
        trigger: &str,
    ) -> Result<MaterializationRun> {
        engine.refresh().await?;
        let Some(config) = engine.registry().state().online.get(set).cloned() else {
            return Err(not_online(set).into());
        };
        let lock = self.lock_of(set);
        let _running = lock.lock().await;
        let started = now_micros();
        let as_of = as_of.unwrap_or(started);
        let previous = self
            .store
            .describe(set)
            .await
            .ok()
            .flatten()
            .map(|(i, _)| i);
        let generation = (started as u64).max(previous.map(|p| p.generation + 1).unwrap_or(0));
        let result = self
            .materialize(engine, &config, as_of, started, generation)
            .await;
        let (mode, sources) = match &result {
            Ok((_, mode, sources)) => (mode.to_string(), sources.clone()),
            Err(_) => ("full".to_string(), vec![]),
        };
        let result = result.map(|(rows, _, _)| rows);
        let finished = now_micros();
        let run = MaterializationRun {
            set: set.to_string(),
            version: config.version,
            trigger: trigger.to_string(),
            mode,
            as_of,
            started,
            finished,
            rows: *result.as_ref().unwrap_or(&0),
            status: if result.is_ok() {
                RunStatus::Succeeded
            } else {
                RunStatus::Failed
            },
            error: result
                .as_ref()
                .err()
                .map(|e| crate::error::user_message(e).to_string()),
            store: self.store.kind().to_string(),
            generation: if result.is_ok() { generation } else { 0 },
            sources,
        };
        let statement = match trigger {
            "refresh" => format!("REFRESH ONLINE FEATURE SET {set}"),
            other => format!("-- {other} refresh of online feature set {set}"),
        };
        let recorded = engine
            .registry()
            .commit(principal, &statement, Change::Materialized(run.clone()))
            .await;
        match &recorded {
            // Extensions see the run now (lineage events), not at the next statement.
            Ok(_) => {
                if let Err(e) = engine.sync().await {
                    tracing::warn!(set, error = %e, "could not sync after a materialization run");
                }
            }
            Err(e) => tracing::warn!(set, error = %e, "could not record a materialization run"),
        }
        match result {
            Ok(rows) => {
                engine.progress(&format!(
                    "online feature set {set}: {rows} entities materialized in {:.2}s",
                    (finished - started) as f64 / 1e6
                ));
                recorded?;
                Ok(run)
            }
            Err(e) => Err(e),
        }
    }

    /// Computes and publishes one snapshot; returns its row count, the refresh mode and
    /// the source marks (see [`super::incremental`]).
    async fn materialize(
        &self,
        engine: &Engine,
        config: &OnlineConfig,
        as_of: i64,
        started: i64,
        generation: u64,
    ) -> Result<(u64, &'static str, Vec<SourceMark>)> {
        let state = engine.registry().state();
        let set = state.feature_set(&format!("{}@{}", config.set, config.version))?;
        let session = engine.state();
        let (groups, keys) = super::materialize::set_groups(&state, set)?;
        let zeros = super::materialize::zero_when_missing(&groups, &keys);
        let marks = super::incremental::source_marks(&state, &groups);
        // Incremental when the previous run of this version is the snapshot served here.
        let incremental = match (&marks, &self.embedded) {
            (Some(marks), Some(embedded)) => {
                let held = embedded.snapshot(&config.set);
                let previous = state
                    .materializations
                    .get(&config.set)
                    .and_then(|runs| runs.iter().rev().find(|r| r.status == RunStatus::Succeeded));
                match (held, previous) {
                    (Some(held), Some(prev))
                        if prev.version == config.version
                            && prev.store == self.store.kind()
                            && prev.generation == held.info.generation
                            && held.info.version == config.version =>
                    {
                        super::incremental::new_files(&state, prev, marks, as_of)
                            .map(|files| (held, prev.as_of, files))
                    }
                    _ => None,
                }
            }
            _ => None,
        };
        let (plan, previous) = match incremental {
            Some((held, previous_as_of, files)) => {
                let urls: Vec<(String, Vec<String>)> = files
                    .iter()
                    .map(|(t, f)| {
                        (
                            t.clone(),
                            f.iter()
                                .map(|d| engine.warehouse().url_of(&d.path))
                                .collect(),
                        )
                    })
                    .collect();
                let lengths = super::incremental::lengths(&groups);
                let only = super::materialize::affected_keys(
                    engine.ctx(),
                    &session,
                    &groups,
                    &keys,
                    &urls,
                    &lengths,
                    previous_as_of,
                    as_of,
                )
                .await?;
                let plan =
                    super::materialize::plan_for(&session, &state, set, as_of, started, Some(only))
                        .await?;
                (plan, Some(held))
            }
            None => (
                super::materialize::plan(&session, &state, set, as_of, started).await?,
                None,
            ),
        };
        let schema = super::materialize::schema_of(&plan);
        let df = datafusion::dataframe::DataFrame::new(session, plan);
        let mut stream = df.execute_stream().await?;
        let mut batches = Vec::new();
        let mut rows = 0usize;
        let mut reported = std::time::Instant::now();
        while let Some(b) = stream.next().await {
            let b = b?;
            rows += b.num_rows();
            batches.push(b);
            if reported.elapsed().as_secs_f64() >= 1.0 {
                engine.progress(&format!(
                    "online feature set {}: {rows} entities computed",
                    config.set
                ));
                reported = std::time::Instant::now();
            }
        }
        let computed = datafusion::arrow::compute::concat_batches(&schema, &batches)?;
        let mode = if previous.is_some() {
            "incremental"
        } else {
            "full"
        };
        let batch = match previous {
            None => computed,
            Some(held) => merge(&schema, &held, computed, &keys, started)?,
        };
        let info = SnapshotInfo {
            set: config.set.clone(),
            version: config.version,
            key_columns: keys,
            as_of,
            materialized_at: started,
            generation,
            rows: batch.num_rows() as u64,
        };
        let rows = batch.num_rows() as u64;
        self.cache_shape(
            &config.set,
            config.version,
            (schema, info.key_columns.clone(), zeros),
        );
        self.store.publish(Snapshot { info, batch }).await?;
        Ok((rows, mode, marks.unwrap_or_default()))
    }
}

/// The previous snapshot's rows of entities not recomputed (with the new materialization
/// time), then the recomputed rows.
fn merge(
    schema: &SchemaRef,
    previous: &Snapshot,
    computed: datafusion::arrow::array::RecordBatch,
    keys: &[String],
    materialized_at: i64,
) -> Result<datafusion::arrow::array::RecordBatch> {
    use super::key::row_key;
    use datafusion::arrow::array::{Array, BooleanArray, RecordBatch, TimestampMicrosecondArray};
    // A batch's key columns (a batch without them has no keys: every row is kept).
    let key_columns = |batch: &RecordBatch| -> Option<Vec<datafusion::arrow::array::ArrayRef>> {
        keys.iter()
            .map(|k| batch.column_by_name(k).cloned())
            .collect()
    };
    let recomputed: HashSet<String> = match key_columns(&computed) {
        Some(c) => (0..computed.num_rows())
            .filter_map(|r| row_key(&c, r))
            .collect(),
        None => HashSet::new(),
    };
    let old = &previous.batch;
    let old_keys = key_columns(old);
    let keep: BooleanArray = (0..old.num_rows())
        .map(|r| {
            let key = old_keys.as_ref().and_then(|c| row_key(c, r));
            Some(key.is_none_or(|k| !recomputed.contains(&k)))
        })
        .collect();
    let kept = datafusion::arrow::compute::filter_record_batch(old, &keep)?;
    let mut columns = Vec::with_capacity(schema.fields().len());
    for f in schema.fields() {
        if f.name() == super::MATERIALIZED_AT {
            columns.push(Arc::new(
                TimestampMicrosecondArray::from(vec![materialized_at; kept.num_rows()])
                    .with_timezone("UTC"),
            ) as datafusion::arrow::array::ArrayRef);
        } else {
            let c = kept.column_by_name(f.name()).ok_or_else(|| {
                FStoreError::new(
                    crate::error::ErrorKind::Internal,
                    format!("the previous online snapshot has no column '{}'", f.name()),
                )
            })?;
            columns.push(if c.data_type() == f.data_type() {
                Arc::clone(c)
            } else {
                datafusion::arrow::compute::cast(c, f.data_type())?
            });
        }
    }
    let kept = RecordBatch::try_new(Arc::clone(schema), columns)?;
    Ok(datafusion::arrow::compute::concat_batches(
        schema,
        &[kept, computed],
    )?)
}

pub fn not_online(set: &str) -> FStoreError {
    FStoreError::not_found(format!(
        "feature set '{set}' is not online (ALTER FEATURE SET {set} SET ONLINE (update_frequency = '1h', cache_ttl = '30m'), then REFRESH ONLINE FEATURE SET {set})"
    ))
}

/// A time written in SQL (`'2024-06-30'`, `'2024-06-30T12:00:00'`, with an optional zone)
/// as µs since the epoch.
pub fn parse_time(text: &str) -> Result<i64> {
    let v = datafusion::common::ScalarValue::Utf8(Some(text.to_string()))
        .cast_to(&arrow_schema::DataType::Timestamp(
            arrow_schema::TimeUnit::Microsecond,
            None,
        ))
        .map_err(|_| {
            FStoreError::invalid(format!(
                "'{text}' is not a timestamp (write e.g. '2024-06-30' or '2024-06-30T12:00:00')"
            ))
        })?;
    match v {
        datafusion::common::ScalarValue::TimestampMicrosecond(Some(t), _) => Ok(t),
        _ => Err(FStoreError::invalid(format!("'{text}' is not a timestamp")).into()),
    }
}

/// The one-row result of `REFRESH ONLINE FEATURE SET`.
pub fn run_batch(run: &MaterializationRun) -> Result<datafusion::arrow::array::RecordBatch> {
    use datafusion::arrow::array::{StringArray, TimestampMicrosecondArray, UInt64Array};
    let utc = crate::providers::system::utc_micros();
    let schema = Arc::new(arrow_schema::Schema::new(vec![
        arrow_schema::Field::new("feature_set", arrow_schema::DataType::Utf8, false),
        arrow_schema::Field::new("version", arrow_schema::DataType::UInt64, false),
        arrow_schema::Field::new("rows", arrow_schema::DataType::UInt64, false),
        arrow_schema::Field::new("as_of", utc.clone(), false),
        arrow_schema::Field::new("started", utc.clone(), false),
        arrow_schema::Field::new("finished", utc, false),
        arrow_schema::Field::new("status", arrow_schema::DataType::Utf8, false),
    ]));
    let t = |v: i64| Arc::new(TimestampMicrosecondArray::from(vec![v]).with_timezone("UTC")) as _;
    Ok(datafusion::arrow::array::RecordBatch::try_new(
        schema,
        vec![
            Arc::new(StringArray::from(vec![run.set.clone()])),
            Arc::new(UInt64Array::from(vec![run.version])),
            Arc::new(UInt64Array::from(vec![run.rows])),
            t(run.as_of),
            t(run.started),
            t(run.finished),
            Arc::new(StringArray::from(vec![run.status.as_str()])),
        ],
    )?)
}
