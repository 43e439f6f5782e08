//! The registry: FStore's durable, versioned catalog of definitions.
//!
//! Storage layout, under the warehouse:
//!
//! ```text
//! _registry/log/00000000000000000001.json          one ChangeRecord per commit, never rewritten
//! _registry/checkpoints/00000000000000000064.json  the whole RegistryState at that sequence
//! ```
//!
//! **Commit protocol.** A writer that knows the log up to `n` creates `log/n+1` with a
//! conditional create (`PutMode::Create`: a hard link of a fully written staging file on a
//! local disk, `If-None-Match: *` on S3). Exactly one writer can create a given sequence
//! number; a loser catches up with the records it missed, re-validates its change against the
//! new state and retries, or reports a conflict. A statement returns only after its record is
//! durable (fsync of file and directory on local disks), so a process killed at any point
//! leaves either the whole record or none of it, and every statement that returned is kept.
//!
//! **Loading.** Read the newest checkpoint, then records `n+1, n+2, …` until one is missing.
//! A checkpoint is written every [`CHECKPOINT_EVERY`] commits, so loading reads a bounded
//! number of records however long the history is.
//!
//! The registry never executes anything: it stores and validates definitions. Turning them
//! into tables the engine can query is the engine's job (`engine::catalog`).

pub mod access;
mod alerts;
pub mod feature_group;
pub mod feature_set;
pub mod model;
pub mod monitor;
pub mod online;
pub mod quality;
pub mod relation;

use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use datafusion::error::Result;
use futures::TryStreamExt;
use object_store::{ObjectStore, ObjectStoreExt, PutPayload};
use tracing::{debug, warn};

pub use access::*;
pub use feature_group::*;
pub use feature_set::*;
pub use model::*;
pub use monitor::*;
pub use online::*;
pub use quality::*;
pub use relation::*;

use crate::error::{ErrorKind, FStoreError};
use crate::principal::Principal;
use crate::warehouse::{Warehouse, describe_store_error};

/// A checkpoint is written after every this many commits.
pub const CHECKPOINT_EVERY: u64 = 64;
/// A writer that loses the race for a sequence number retries this many times.
const MAX_COMMIT_ATTEMPTS: usize = 32;

const LOG_DIR: &str = "_registry/log";
const CHECKPOINT_DIR: &str = "_registry/checkpoints";
const TORN_DIR: &str = "_registry/torn";

fn log_rel(seq: u64) -> String {
    format!("{LOG_DIR}/{seq:020}.json")
}

fn checkpoint_rel(seq: u64) -> String {
    format!("{CHECKPOINT_DIR}/{seq:020}.json")
}

/// The durable catalog. Cheap to share (`Arc<Registry>`); readers take a snapshot of the
/// state with [`Registry::state`] and never block writers.
#[derive(Debug)]
pub struct Registry {
    warehouse: Warehouse,
    state: RwLock<Arc<RegistryState>>,
    writer: tokio::sync::Mutex<()>,
    last_refresh: std::sync::Mutex<Instant>,
}

impl Registry {
    /// Loads the registry of a warehouse (an empty one if nothing was ever committed).
    pub async fn open(warehouse: Warehouse) -> Result<Registry> {
        let registry = Registry {
            warehouse,
            state: RwLock::new(Arc::new(RegistryState::default())),
            writer: tokio::sync::Mutex::new(()),
            last_refresh: std::sync::Mutex::new(Instant::now()),
        };
        let mut state = registry.load_checkpoint().await?;
        registry.catch_up(&mut state).await?;
        debug!(seq = state.seq, "registry loaded");
        *registry.state.write().unwrap_or_else(|p| p.into_inner()) = Arc::new(state);
        Ok(registry)
    }

    /// The current state (a consistent snapshot).
    pub fn state(&self) -> Arc<RegistryState> {
        Arc::clone(&self.state.read().unwrap_or_else(|p| p.into_inner()))
    }

    pub fn warehouse(&self) -> &Warehouse {
        &self.warehouse
    }

    /// Picks up records committed by other processes. Returns true when the state changed.
    /// On object stores with per-request latency (S3) it checks at most every `min_interval`.
    pub async fn refresh(&self, min_interval: Duration) -> Result<bool> {
        if !min_interval.is_zero() {
            let mut last = self.last_refresh.lock().unwrap_or_else(|p| p.into_inner());
            if last.elapsed() < min_interval {
                return Ok(false);
            }
            *last = Instant::now();
        }
        let current = self.state();
        let mut next = (*current).clone();
        if self.catch_up(&mut next).await? == 0 {
            return Ok(false);
        }
        self.install(next);
        Ok(true)
    }

    /// Validates `change` against the latest state and appends it to the log. Returns the
    /// committed record once it is durable.
    pub async fn commit(
        &self,
        principal: &Principal,
        statement: &str,
        change: Change,
    ) -> Result<ChangeRecord> {
        let _guard = self.writer.lock().await;
        let mut state = (*self.state()).clone();
        for attempt in 0..MAX_COMMIT_ATTEMPTS {
            self.catch_up(&mut state).await?;
            state.check(&change)?;
            let record = ChangeRecord {
                seq: state.seq + 1,
                committed_at: chrono::Utc::now().timestamp_micros(),
                principal: principal.name.clone(),
                statement: statement.to_string(),
                change: change.clone(),
            };
            let body = serde_json::to_vec(&record).map_err(|e| {
                FStoreError::new(ErrorKind::Internal, format!("cannot encode change: {e}"))
            })?;
            let rel = log_rel(record.seq);
            let put = self.warehouse.create(&rel, body).await;
            match put {
                Ok(_) => {
                    self.warehouse.sync(&rel)?;
                    state.apply(&record)?;
                    let checkpoint = record.seq.is_multiple_of(CHECKPOINT_EVERY);
                    self.install(state);
                    if checkpoint {
                        self.write_checkpoint().await;
                    }
                    return Ok(record);
                }
                Err(object_store::Error::AlreadyExists { .. }) => {
                    debug!(
                        seq = record.seq,
                        attempt, "registry: lost the race, catching up"
                    );
                    continue;
                }
                Err(e) => {
                    return Err(FStoreError::unavailable(format!(
                        "cannot write the registry in {}: {}",
                        self.warehouse.url(),
                        describe_store_error(&e)
                    ))
                    .into());
                }
            }
        }
        Err(FStoreError::new(
            ErrorKind::Conflict,
            "registry conflict: other writers kept committing; try again",
        )
        .into())
    }

    /// Installs `next` unless a newer state was installed meanwhile.
    fn install(&self, next: RegistryState) {
        let mut guard = self.state.write().unwrap_or_else(|p| p.into_inner());
        if next.seq > guard.seq {
            *guard = Arc::new(next);
        }
    }

    /// Applies every record after `state.seq`. Returns how many were applied.
    async fn catch_up(&self, state: &mut RegistryState) -> Result<usize> {
        let mut applied = 0;
        loop {
            match self.read_record(state.seq + 1).await? {
                Some(rec) => {
                    state.apply(&rec)?;
                    applied += 1;
                }
                None => return Ok(applied),
            }
        }
    }

    async fn read_record(&self, seq: u64) -> Result<Option<ChangeRecord>> {
        let rel = log_rel(seq);
        let bytes = match self.warehouse.store().get(&self.warehouse.path(&rel)).await {
            Ok(r) => r.bytes().await.map_err(|e| self.storage_error(&rel, e))?,
            Err(object_store::Error::NotFound { .. }) => return Ok(None),
            Err(e) => return Err(self.storage_error(&rel, e)),
        };
        match serde_json::from_slice::<ChangeRecord>(&bytes) {
            Ok(rec) if rec.seq == seq => Ok(Some(rec)),
            parsed => {
                // A record that does not parse can only be the torn tail of a commit that
                // never returned (e.g. power loss before its fsync). If something follows it,
                // the log is damaged and we must not guess.
                let next = self.warehouse.path(&log_rel(seq + 1));
                if self.warehouse.store().head(&next).await.is_ok() {
                    return Err(FStoreError::unavailable(format!(
                        "registry record {seq} in {} is corrupt ({}); refusing to load",
                        self.warehouse.url(),
                        match parsed {
                            Err(e) => e.to_string(),
                            Ok(r) => format!("it claims sequence {}", r.seq),
                        }
                    ))
                    .into());
                }
                warn!(seq, "registry: moving aside a torn, uncommitted record");
                let from = self.warehouse.path(&rel);
                let to = self.warehouse.path(&format!(
                    "{TORN_DIR}/{seq:020}-{}.json",
                    uuid::Uuid::new_v4()
                ));
                self.warehouse
                    .store()
                    .rename(&from, &to)
                    .await
                    .map_err(|e| self.storage_error(&rel, e))?;
                Ok(None)
            }
        }
    }

    async fn load_checkpoint(&self) -> Result<RegistryState> {
        let prefix = self.warehouse.path(CHECKPOINT_DIR);
        let mut seqs: Vec<u64> = self
            .warehouse
            .store()
            .list(Some(&prefix))
            .map_ok(|meta| meta.location)
            .try_collect::<Vec<_>>()
            .await
            .map_err(|e| self.storage_error(CHECKPOINT_DIR, e))?
            .iter()
            .filter_map(|p| p.filename()?.strip_suffix(".json")?.parse::<u64>().ok())
            .collect();
        seqs.sort_unstable_by(|a, b| b.cmp(a));
        for seq in seqs {
            let rel = checkpoint_rel(seq);
            let got = self.warehouse.store().get(&self.warehouse.path(&rel)).await;
            let parsed = match got {
                Ok(r) => r
                    .bytes()
                    .await
                    .ok()
                    .and_then(|b| serde_json::from_slice::<RegistryState>(&b).ok()),
                Err(_) => None,
            };
            match parsed {
                Some(state) if state.seq == seq => return Ok(state),
                _ => warn!(seq, "registry: ignoring unreadable checkpoint"),
            }
        }
        Ok(RegistryState::default())
    }

    /// Best effort: a missing checkpoint only makes the next start-up read more records.
    async fn write_checkpoint(&self) {
        let state = self.state();
        let rel = checkpoint_rel(state.seq);
        let result = async {
            let body = serde_json::to_vec(&*state).map_err(std::io::Error::other)?;
            self.warehouse
                .store()
                .put(&self.warehouse.path(&rel), PutPayload::from(body))
                .await
                .map_err(std::io::Error::other)?;
            Ok::<_, std::io::Error>(())
        }
        .await;
        match result {
            Ok(()) => {
                if let Err(e) = self.warehouse.sync(&rel) {
                    warn!(error = %e, "registry: checkpoint not synced");
                }
            }
            Err(e) => warn!(error = %e, "registry: checkpoint not written"),
        }
    }

    fn storage_error(
        &self,
        what: &str,
        e: object_store::Error,
    ) -> datafusion::error::DataFusionError {
        FStoreError::unavailable(format!(
            "cannot read the registry ({what}) in {}: {}",
            self.warehouse.url(),
            describe_store_error(&e)
        ))
        .into()
    }
}
