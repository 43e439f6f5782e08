//! The embedded online store: per set, one immutable Arrow batch and a hash index from entity
//! key to row, held behind an atomically swapped pointer (readers never lock: a lookup loads
//! the current map, finds the set's snapshot, and takes rows from it).
//!
//! Persistence: a published snapshot is written to the warehouse before it is swapped in, as
//! an Arrow IPC file `_online/<set>/g<generation>.arrow`, then `_online/<set>/current.json`
//! names it (both writes are atomic object puts). A restarted server loads the current
//! snapshot of every online set when it opens, so it serves at once without recomputing.

use std::collections::HashMap;
use std::sync::Arc;

use arc_swap::ArcSwap;
use arrow_schema::SchemaRef;
use async_trait::async_trait;
use bytes::Bytes;
use datafusion::arrow::array::UInt32Array;
use datafusion::arrow::compute::take_record_batch;
use datafusion::arrow::ipc::reader::FileReader;
use datafusion::arrow::ipc::writer::FileWriter;
use futures::TryStreamExt;
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt, PutPayload};
use serde::{Deserialize, Serialize};

use super::key::row_key;
use super::{EntityKey, Lookup, OnlineStore, Result, Snapshot, SnapshotInfo};
use crate::error::{ErrorKind, FStoreError};
use crate::warehouse::Warehouse;

/// One set's snapshot, indexed.
#[derive(Debug)]
struct Indexed {
    snapshot: Snapshot,
    index: HashMap<String, u32>,
}

impl Indexed {
    fn new(snapshot: Snapshot) -> Result<Indexed> {
        let batch = &snapshot.batch;
        let mut key_arrays = Vec::new();
        for k in &snapshot.info.key_columns {
            let i = batch.schema().index_of(k).map_err(|_| {
                FStoreError::new(
                    ErrorKind::Internal,
                    format!(
                        "online snapshot of '{}' has no key column '{k}'",
                        snapshot.info.set
                    ),
                )
            })?;
            key_arrays.push(Arc::clone(batch.column(i)));
        }
        let mut index = HashMap::with_capacity(batch.num_rows());
        for row in 0..batch.num_rows() {
            if let Some(key) = row_key(&key_arrays, row) {
                index.insert(key, row as u32);
            }
        }
        Ok(Indexed { snapshot, index })
    }
}

/// `_online/<set>/current.json`
#[derive(Debug, Serialize, Deserialize)]
struct Pointer {
    info: SnapshotInfo,
    file: String,
}

/// See the module header.
#[derive(Debug)]
pub struct EmbeddedStore {
    sets: ArcSwap<HashMap<String, Arc<Indexed>>>,
    warehouse: Warehouse,
    /// Serializes publications (readers are never blocked).
    writer: tokio::sync::Mutex<()>,
}

fn internal(e: impl std::fmt::Display) -> FStoreError {
    FStoreError::new(ErrorKind::Internal, e.to_string())
}

fn unavailable(what: &str, e: impl std::fmt::Display) -> FStoreError {
    FStoreError::unavailable(format!("online store: {what}: {e}"))
}

impl EmbeddedStore {
    /// The store persisting in `warehouse`.
    pub fn new(warehouse: Warehouse) -> EmbeddedStore {
        EmbeddedStore {
            sets: ArcSwap::from_pointee(HashMap::new()),
            warehouse,
            writer: tokio::sync::Mutex::new(()),
        }
    }

    fn dir(&self, set: &str) -> Path {
        self.warehouse.path(&format!("_online/{set}"))
    }

    fn store(&self) -> &Arc<dyn ObjectStore> {
        self.warehouse.store()
    }

    /// Writes `bytes` at `_online/<set>/<file>`, durably.
    async fn put(&self, set: &str, file: &str, bytes: Vec<u8>) -> Result<()> {
        let rel = format!("_online/{set}/{file}");
        self.store()
            .put(
                &self.warehouse.path(&rel),
                PutPayload::from(Bytes::from(bytes)),
            )
            .await
            .map_err(|e| unavailable(&format!("writing {rel}"), e))?;
        self.warehouse
            .sync(&rel)
            .map_err(|e| unavailable(&format!("syncing {rel}"), e))?;
        Ok(())
    }

    /// Loads the persisted snapshot of `set` (if any) into memory; returns its info.
    pub async fn load(&self, set: &str) -> Result<Option<SnapshotInfo>> {
        let pointer_path = self.dir(set).join("current.json");
        let bytes = match self.store().get(&pointer_path).await {
            Ok(r) => r
                .bytes()
                .await
                .map_err(|e| unavailable("reading the snapshot pointer", e))?,
            Err(object_store::Error::NotFound { .. }) => return Ok(None),
            Err(e) => return Err(unavailable("reading the snapshot pointer", e)),
        };
        let pointer: Pointer = serde_json::from_slice(&bytes).map_err(internal)?;
        if let Some(current) = self.sets.load().get(set)
            && current.snapshot.info.generation >= pointer.info.generation
        {
            return Ok(Some(current.snapshot.info.clone()));
        }
        let data = self
            .store()
            .get(&self.dir(set).join(pointer.file.as_str()))
            .await
            .map_err(|e| unavailable("reading the snapshot", e))?
            .bytes()
            .await
            .map_err(|e| unavailable("reading the snapshot", e))?;
        let reader = FileReader::try_new(std::io::Cursor::new(data), None).map_err(internal)?;
        let schema = reader.schema();
        let batches = reader
            .collect::<std::result::Result<Vec<_>, _>>()
            .map_err(internal)?;
        let batch =
            datafusion::arrow::compute::concat_batches(&schema, &batches).map_err(internal)?;
        let info = pointer.info.clone();
        self.install(Indexed::new(Snapshot {
            info: pointer.info,
            batch,
        })?);
        Ok(Some(info))
    }

    fn install(&self, indexed: Indexed) {
        let indexed = Arc::new(indexed);
        self.sets.rcu(|sets| {
            let mut next = HashMap::clone(sets);
            next.insert(indexed.snapshot.info.set.clone(), Arc::clone(&indexed));
            next
        });
    }

    /// The snapshot of `set` being served.
    pub fn snapshot(&self, set: &str) -> Option<Snapshot> {
        self.sets.load().get(set).map(|s| s.snapshot.clone())
    }

    /// The in-memory generation of `set`.
    pub fn generation(&self, set: &str) -> Option<u64> {
        self.sets
            .load()
            .get(set)
            .map(|s| s.snapshot.info.generation)
    }

    /// Synchronous lookup (the Flight hot path calls this without a runtime hop).
    pub fn lookup_now(&self, set: &str, keys: &[EntityKey]) -> Option<Lookup> {
        let sets = self.sets.load();
        let s = sets.get(set)?;
        let mut found = Vec::with_capacity(keys.len());
        let indices: UInt32Array = keys
            .iter()
            .map(|k| {
                let row = s.index.get(&k.encoded()).copied();
                found.push(row.is_some());
                row
            })
            .collect();
        let batch = take_record_batch(&s.snapshot.batch, &indices).ok()?;
        Some(Lookup {
            info: s.snapshot.info.clone(),
            batch,
            found,
        })
    }
}

#[async_trait]
impl OnlineStore for EmbeddedStore {
    fn kind(&self) -> &'static str {
        "embedded"
    }

    async fn publish(&self, snapshot: Snapshot) -> Result<()> {
        let _guard = self.writer.lock().await;
        let set = snapshot.info.set.clone();
        let indexed = Indexed::new(snapshot)?;
        // 1. The file, then the pointer: a crash in between leaves the old pointer valid.
        let mut buf = Vec::new();
        {
            let batch = &indexed.snapshot.batch;
            let mut w = FileWriter::try_new(&mut buf, &batch.schema()).map_err(internal)?;
            w.write(batch).map_err(internal)?;
            w.finish().map_err(internal)?;
        }
        let file = format!("g{}.arrow", indexed.snapshot.info.generation);
        let dir = self.dir(&set);
        self.put(&set, &file, buf).await?;
        let pointer = Pointer {
            info: indexed.snapshot.info.clone(),
            file: file.clone(),
        };
        let json = serde_json::to_vec(&pointer).map_err(internal)?;
        self.put(&set, "current.json", json).await?;
        // 2. Swap it in.
        self.install(indexed);
        // 3. Older files are garbage (best effort).
        let old: Vec<Path> = self
            .store()
            .list(Some(&dir))
            .try_filter_map(|m| {
                let name = m.location.filename().unwrap_or_default().to_string();
                let keep = name == file || name == "current.json" || !name.ends_with(".arrow");
                futures::future::ready(Ok((!keep).then_some(m.location)))
            })
            .try_collect()
            .await
            .unwrap_or_default();
        for p in old {
            if let Err(e) = self.store().delete(&p).await {
                tracing::warn!(file = %p, error = %e, "could not delete an old online snapshot");
            }
        }
        Ok(())
    }

    async fn lookup(&self, set: &str, keys: &[EntityKey]) -> Result<Option<Lookup>> {
        Ok(self.lookup_now(set, keys))
    }

    async fn describe(&self, set: &str) -> Result<Option<(SnapshotInfo, SchemaRef)>> {
        Ok(self
            .sets
            .load()
            .get(set)
            .map(|s| (s.snapshot.info.clone(), s.snapshot.batch.schema())))
    }

    async fn remove(&self, set: &str) -> Result<()> {
        let _guard = self.writer.lock().await;
        self.sets.rcu(|sets| {
            let mut next = HashMap::clone(sets);
            next.remove(set);
            next
        });
        let files: Vec<Path> = self
            .store()
            .list(Some(&self.dir(set)))
            .map_ok(|m| m.location)
            .try_collect()
            .await
            .map_err(|e| unavailable("listing the snapshot files", e))?;
        // The pointer first: a crash midway leaves no pointer to a missing file.
        let mut files = files;
        files.sort_by_key(|p| p.filename() != Some("current.json"));
        for p in files {
            self.store()
                .delete(&p)
                .await
                .map_err(|e| unavailable("deleting the snapshot", e))?;
        }
        Ok(())
    }
}
