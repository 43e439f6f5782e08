//! The online store: the latest feature vector per entity of every feature set that is
//! online (`ALTER FEATURE SET … SET ONLINE`), served by key (`online_features`).
//!
//! A materialization ([`materialize`]) computes one [`Snapshot`] of a set at a time T with
//! the same plan as a training set whose spine is every entity at T; a store keeps, per set,
//! the latest published snapshot and answers point lookups from it. Publishing is atomic:
//! readers see the previous snapshot or the new one, never a mix, and a refresh that fails
//! before publishing leaves the previous one serving.
//!
//! Two stores implement [`OnlineStore`]: [`embedded::EmbeddedStore`] (the default: an
//! immutable Arrow batch plus a hash index per set, swapped atomically, persisted in the
//! warehouse so a restarted server serves at once) and [`redis::RedisStore`]
//! (`--online-store redis://host:port`, `rediss://` for TLS, for several serving nodes).

pub mod codec;
pub mod embedded;
pub mod incremental;
pub mod key;
pub mod materialize;
pub mod redis;
pub mod service;
pub mod statements;
pub mod table_function;
pub mod tables;

use std::fmt::Debug;
use std::sync::Arc;

use arrow_schema::SchemaRef;
use async_trait::async_trait;
use datafusion::arrow::array::RecordBatch;
use serde::{Deserialize, Serialize};

use crate::error::FStoreError;
pub use key::EntityKey;

pub type Result<T, E = FStoreError> = std::result::Result<T, E>;

/// Column every online row carries: the time of the latest source event the row reflects.
pub const FEATURE_TS: &str = "_feature_ts";
/// Column every online row carries: when the row was materialized (wall clock).
pub const MATERIALIZED_AT: &str = "_materialized_at";

/// What a snapshot is: which set version, computed at which time.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SnapshotInfo {
    /// The feature set's name (the store's key for it).
    pub set: String,
    pub version: u64,
    /// The entity key columns, in the order lookups give them.
    pub key_columns: Vec<String>,
    /// The time the features were computed at (µs since the epoch, UTC).
    pub as_of: i64,
    /// Wall-clock time of the materialization (µs since the epoch, UTC).
    pub materialized_at: i64,
    /// A number that grows with every publication of the set (the registry sequence at
    /// refresh start, or a clock), naming the snapshot's files / keys.
    pub generation: u64,
    pub rows: u64,
}

/// One materialized copy of a feature set: one row per entity. The batch's columns are the
/// key columns, the features, then [`FEATURE_TS`] and [`MATERIALIZED_AT`]; key tuples are
/// unique.
#[derive(Debug, Clone)]
pub struct Snapshot {
    pub info: SnapshotInfo,
    pub batch: RecordBatch,
}

impl Snapshot {
    pub fn schema(&self) -> SchemaRef {
        self.batch.schema()
    }
}

/// The rows found for a lookup.
#[derive(Debug, Clone)]
pub struct Lookup {
    pub info: SnapshotInfo,
    /// One row per requested key, in request order, with the snapshot's schema; a key that
    /// is not in the snapshot gives a row of NULLs (including its key columns).
    pub batch: RecordBatch,
    /// Which requested keys were found.
    pub found: Vec<bool>,
}

/// Where online features live. Implementations must make [`OnlineStore::publish`] atomic
/// per set and [`OnlineStore::lookup`] a point read (cost independent of the set's size).
#[async_trait]
pub trait OnlineStore: Debug + Send + Sync {
    /// `embedded` or `redis`.
    fn kind(&self) -> &'static str;

    /// Replaces the online copy of `snapshot.info.set`. When this returns Ok, the snapshot
    /// is durable (survives a restart of the server) and every later lookup sees it.
    async fn publish(&self, snapshot: Snapshot) -> Result<()>;

    /// Looks up `keys` (each one value per key column, in `key_columns` order) in the
    /// latest snapshot of `set`. None when the set has never been published.
    async fn lookup(&self, set: &str, keys: &[EntityKey]) -> Result<Option<Lookup>>;

    /// The latest snapshot's description and schema, without reading rows.
    async fn describe(&self, set: &str) -> Result<Option<(SnapshotInfo, SchemaRef)>>;

    /// Removes the set's online copy (`SET OFFLINE`). Not an error when there is none.
    async fn remove(&self, set: &str) -> Result<()>;
}

/// Shared handle to the deployment's store.
pub type OnlineStoreRef = Arc<dyn OnlineStore>;

/// The store `config` selects (`online_store`: `embedded` or absent, or a `redis://` or
/// `rediss://` URL), and the embedded store itself when it is that one.
pub async fn open_store(
    config: &crate::config::Config,
    warehouse: &crate::warehouse::Warehouse,
) -> Result<(OnlineStoreRef, Option<Arc<embedded::EmbeddedStore>>)> {
    match config.online_store.as_deref().map(str::trim) {
        None | Some("") | Some("embedded") => {
            let e = Arc::new(embedded::EmbeddedStore::new(warehouse.clone()));
            Ok((Arc::clone(&e) as OnlineStoreRef, Some(e)))
        }
        Some(url) if url.starts_with("redis://") || url.starts_with("rediss://") => {
            let r = redis::RedisStore::connect(url).await?;
            Ok((Arc::new(r) as OnlineStoreRef, None))
        }
        Some(other) => Err(FStoreError::invalid(format!(
            "unknown online store '{other}': use 'embedded', 'redis://host:port' or 'rediss://host:port' (TLS)"
        ))),
    }
}

/// Online serving as an engine extension: opens the deployment's store (embedded or Redis),
/// provides the [`service::OnlineService`], and registers `online_features` and the
/// `fstore.materializations` / `fstore.online_sets` tables.
pub struct OnlineExtension;

#[async_trait]
impl crate::engine::EngineExtension for OnlineExtension {
    fn name(&self) -> &'static str {
        "online"
    }
    fn logical_codec(
        &self,
        session: &crate::engine::codec::CodecSession,
    ) -> Option<Arc<dyn datafusion_proto::logical_plan::LogicalExtensionCodec>> {
        Some(Arc::new(crate::engine::codec::CallCodec::new(
            session,
            "online",
            codec::call_of,
        )))
    }
    fn physical_codec(
        &self,
        session: &crate::engine::codec::CodecSession,
    ) -> Option<Arc<dyn datafusion_proto::physical_plan::PhysicalExtensionCodec>> {
        Some(Arc::new(codec::OnlinePhysicalCodec::new(session)))
    }
    async fn register(
        &self,
        setup: &mut crate::engine::Setup<'_>,
    ) -> datafusion::error::Result<()> {
        let (store, embedded) = open_store(setup.config, setup.warehouse).await?;
        let online = Arc::new(service::OnlineService::new(store, embedded));
        setup
            .system
            .register(Arc::new(tables::MaterializationsTable));
        setup.system.register(Arc::new(tables::OnlineSetsTable));
        setup.ctx.register_udtf(
            table_function::F,
            Arc::new(table_function::OnlineFeatures {
                registry: Arc::clone(setup.registry),
                service: Arc::clone(&online),
            }),
        );
        setup.provide(online);
        Ok(())
    }
    async fn sync(
        &self,
        engine: &crate::engine::Engine,
        state: &crate::registry::RegistryState,
    ) -> datafusion::error::Result<()> {
        service_of(engine)?.sync(state).await
    }
}

/// The engine's online service (every engine built by `crate::compose` has one).
pub fn service_of(
    engine: &crate::engine::Engine,
) -> datafusion::error::Result<Arc<service::OnlineService>> {
    engine.service::<service::OnlineService>().ok_or_else(|| {
        crate::error::FStoreError::unimplemented("online serving is not enabled in this engine")
            .into()
    })
}
