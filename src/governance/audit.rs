//! The audit log: every statement, read or write, allowed or denied, with its principal, peer
//! address, text (passwords masked by the parser), the objects it touched, its outcome and
//! duration. Queryable as `fstore.audit` (administrators only).
//!
//! Records are append-only JSON lines under `<warehouse>/_audit/` (`<YYYY-MM-DD>-….json`), one
//! object per flush, written with a conditional create (never overwritten), so several servers can share
//! a warehouse. Statements append to a bounded in-memory buffer (never blocking: a full
//! buffer drops records and logs how many, so the online hot path never waits on storage); a
//! background task flushes it every second, and on shutdown. Records older than
//! `[audit] retention_days` are deleted a day at a time.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use arrow_schema::{DataType, Field, Schema, SchemaRef, TimeUnit};
use datafusion::catalog::{Session, TableProvider};
use datafusion::datasource::empty::EmptyTable;
use datafusion::datasource::file_format::json::JsonFormat;
use datafusion::datasource::listing::{
    ListingOptions, ListingTable, ListingTableConfig, ListingTableUrl,
};
use datafusion::error::Result;
use datafusion::logical_expr::{Expr, TableType};
use datafusion::physical_plan::ExecutionPlan;
use futures::TryStreamExt;
use object_store::ObjectStoreExt;
use serde::Serialize;

use crate::warehouse::Warehouse;

/// Where the records live, under the warehouse.
pub const AUDIT_DIR: &str = "_audit";
/// Records held in memory at most between flushes; more are dropped (and logged).
const MAX_BUFFERED: usize = 100_000;
const FLUSH_EVERY: Duration = Duration::from_secs(1);

/// One audited statement.
#[derive(Debug, Clone, Serialize)]
pub struct AuditRecord {
    /// When it started, µs since the epoch (UTC).
    pub time: i64,
    pub principal: String,
    pub peer: Option<String>,
    pub statement: String,
    /// `query`, `command` or `lookup`.
    pub kind: &'static str,
    /// What it read or changed, as `kind:name`.
    pub objects: Vec<String>,
    /// `ok`, `denied` or `error`.
    pub outcome: &'static str,
    pub error: Option<String>,
    /// To plan (queries: their rows stream afterwards) or to run (commands, lookups).
    pub duration_us: u64,
}

/// The audit log of one engine.
#[derive(Debug)]
pub struct AuditLog {
    warehouse: Warehouse,
    buffer: std::sync::Mutex<Vec<AuditRecord>>,
    flushing: tokio::sync::Mutex<()>,
    retention_days: u64,
    /// Records dropped because the buffer was full, since the last flush reported them.
    dropped: AtomicU64,
}

impl AuditLog {
    pub fn new(warehouse: Warehouse, retention_days: u64) -> Self {
        Self {
            warehouse,
            buffer: std::sync::Mutex::new(Vec::new()),
            flushing: tokio::sync::Mutex::new(()),
            retention_days,
            dropped: AtomicU64::new(0),
        }
    }

    /// Appends a record (never waits on storage).
    pub fn record(&self, r: AuditRecord) {
        let mut b = self.buffer.lock().unwrap_or_else(|p| p.into_inner());
        if b.len() >= MAX_BUFFERED {
            self.dropped.fetch_add(1, Ordering::Relaxed);
            return;
        }
        b.push(r);
    }

    /// Writes the buffered records (one new object); durable when it returns.
    pub async fn flush(&self) -> Result<()> {
        let _one = self.flushing.lock().await;
        let records = std::mem::take(&mut *self.buffer.lock().unwrap_or_else(|p| p.into_inner()));
        let Some(first) = records.first() else {
            return Ok(());
        };
        let (rel, body) = encode(&records, first.time)?;
        let put = self.warehouse.create(&rel, body).await;
        if let Err(e) = put {
            // Keep them for the next attempt (bounded by MAX_BUFFERED).
            let mut b = self.buffer.lock().unwrap_or_else(|p| p.into_inner());
            let mut records = records;
            records.append(&mut b);
            *b = records;
            return Err(crate::error::FStoreError::unavailable(format!(
                "cannot write the audit log: {}",
                crate::warehouse::describe_store_error(&e)
            ))
            .into());
        }
        self.warehouse.sync(&rel)?;
        let dropped = self.dropped.swap(0, Ordering::Relaxed);
        if dropped > 0 {
            tracing::warn!(
                dropped,
                "audit records dropped: the buffer was full between flushes"
            );
        }
        Ok(())
    }

    /// Deletes the days older than the retention.
    pub async fn expire(&self, now_micros: i64) -> Result<()> {
        if self.retention_days == 0 {
            return Ok(());
        }
        let cutoff = chrono::DateTime::from_timestamp_micros(now_micros).unwrap_or_default()
            - chrono::Duration::days(self.retention_days as i64);
        let cutoff = cutoff.format("%Y-%m-%d").to_string();
        let prefix = self.warehouse.path(AUDIT_DIR);
        let store = self.warehouse.store();
        let old: Vec<_> = store
            .list(Some(&prefix))
            .try_filter(|m| {
                let name = m.location.filename().unwrap_or_default();
                let day = name.get(..10).unwrap_or_default().to_string();
                futures::future::ready(day.as_str() < cutoff.as_str())
            })
            .try_collect()
            .await
            .map_err(|e| crate::error::FStoreError::unavailable(e.to_string()))?;
        for m in old {
            store
                .delete(&m.location)
                .await
                .map_err(|e| crate::error::FStoreError::unavailable(e.to_string()))?;
        }
        Ok(())
    }

    /// Flushes every second (and expires old days every hour) for as long as the log lives.
    pub fn start(self: &Arc<Self>) {
        let weak = Arc::downgrade(self);
        let Ok(handle) = tokio::runtime::Handle::try_current() else {
            return;
        };
        handle.spawn(async move {
            let mut ticks: u64 = 0;
            loop {
                tokio::time::sleep(FLUSH_EVERY).await;
                let Some(log) = weak.upgrade() else { return };
                if let Err(e) = log.flush().await {
                    tracing::warn!(error = %crate::error::user_message(&e), "audit flush failed");
                }
                if ticks.is_multiple_of(3600)
                    && let Err(e) = log.expire(chrono::Utc::now().timestamp_micros()).await
                {
                    tracing::warn!(error = %crate::error::user_message(&e), "audit expiry failed");
                }
                ticks += 1;
            }
        });
    }
}

/// The object a flush writes, and its JSON lines.
fn encode(records: &[AuditRecord], first: i64) -> Result<(String, Vec<u8>)> {
    let mut body = Vec::new();
    for r in records {
        serde_json::to_writer(&mut body, r).map_err(|e| {
            crate::error::FStoreError::new(crate::error::ErrorKind::Internal, e.to_string())
        })?;
        body.push(b'\n');
    }
    let day = chrono::DateTime::from_timestamp_micros(first)
        .unwrap_or_default()
        .format("%Y-%m-%d");
    // One flat directory (DataFusion's listing ignores subdirectories); the day leads the
    // name, so retention deletes by name.
    let rel = format!(
        "{AUDIT_DIR}/{day}-{first:020}-{}.json",
        uuid::Uuid::new_v4().simple()
    );
    Ok((rel, body))
}

impl Drop for AuditLog {
    /// What the last flush did not write yet is written now on a local warehouse (the
    /// process is ending: an embedded CLI run, a restart); on an object store it is lost,
    /// and said so.
    fn drop(&mut self) {
        let records = std::mem::take(&mut *self.buffer.lock().unwrap_or_else(|p| p.into_inner()));
        let Some(first) = records.first() else {
            return;
        };
        let written = match (self.warehouse.local_dir(), encode(&records, first.time)) {
            (Some(dir), Ok((rel, body))) => {
                let path = dir.join(&rel);
                path.parent()
                    .map_or(Ok(()), std::fs::create_dir_all)
                    .and_then(|_| std::fs::write(&path, body))
                    .and_then(|_| std::fs::File::open(&path)?.sync_all())
                    .is_ok()
            }
            _ => false,
        };
        if !written {
            tracing::warn!(
                records = records.len(),
                "audit records not written at shutdown"
            );
        }
    }
}

/// The schema of `fstore.audit`.
pub fn schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new(
            "time",
            DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())),
            false,
        ),
        Field::new("principal", DataType::Utf8, false),
        Field::new("peer", DataType::Utf8, true),
        Field::new("statement", DataType::Utf8, false),
        Field::new("kind", DataType::Utf8, false),
        Field::new(
            "objects",
            DataType::List(Arc::new(Field::new("item", DataType::Utf8, true))),
            true,
        ),
        Field::new("outcome", DataType::Utf8, false),
        Field::new("error", DataType::Utf8, true),
        Field::new("duration_us", DataType::UInt64, false),
    ]))
}

/// `fstore.audit`: the JSON lines under `_audit/`, listed afresh at every scan (a listing
/// table over the directory would keep the first listing it made, and never see a later
/// flush).
#[derive(Debug)]
pub struct AuditTable {
    warehouse: Warehouse,
}

impl AuditTable {
    pub fn new(warehouse: Warehouse) -> Self {
        Self { warehouse }
    }
}

#[async_trait::async_trait]
impl TableProvider for AuditTable {
    fn schema(&self) -> SchemaRef {
        schema()
    }
    fn table_type(&self) -> TableType {
        TableType::View
    }
    async fn scan(
        &self,
        state: &dyn Session,
        projection: Option<&Vec<usize>>,
        filters: &[Expr],
        limit: Option<usize>,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        let files: Vec<_> = self
            .warehouse
            .store()
            .list(Some(&self.warehouse.path(AUDIT_DIR)))
            .try_collect()
            .await
            .map_err(|e| crate::error::FStoreError::unavailable(e.to_string()))?;
        let mut urls = files
            .iter()
            .filter(|m| m.location.as_ref().ends_with(".json"))
            .map(|m| {
                ListingTableUrl::parse(
                    self.warehouse.url_of(
                        m.location
                            .as_ref()
                            .strip_prefix(self.warehouse.path("").as_ref())
                            .unwrap_or(m.location.as_ref()),
                    ),
                )
            })
            .collect::<Result<Vec<_>>>()?;
        if urls.is_empty() {
            return EmptyTable::new(schema())
                .scan(state, projection, filters, limit)
                .await;
        }
        urls.sort_by(|a, b| a.as_str().cmp(b.as_str()));
        let options =
            ListingOptions::new(Arc::new(JsonFormat::default())).with_file_extension(".json");
        let config = ListingTableConfig::new_with_multi_paths(urls)
            .with_listing_options(options)
            .with_schema(schema());
        ListingTable::try_new(config)?
            .scan(state, projection, filters, limit)
            .await
    }
}
