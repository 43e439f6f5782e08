//! The engine: one DataFusion `SessionContext` with everything FStore adds, wired in one place.
//!
//! [`Engine::open`] turns a [`Config`] into a running engine: the warehouse's object store
//! (local or S3) and lazily created S3 stores for other buckets, a memory pool with the
//! configured limit (queries past it fail with "resources exhausted" instead of killing the
//! process), the `fstore` catalog (`public`: user tables and views from the registry;
//! `fstore`: system tables), and the functions of every [`EngineExtension`].
//!
//! Statement execution lives in `sql::exec`; this module only builds and syncs.

pub mod catalog;
pub mod object_stores;

use std::sync::Arc;
use std::time::Duration;

use datafusion::catalog::{CatalogProvider, MemoryCatalogProvider};
use datafusion::error::Result;
use datafusion::execution::context::{SessionContext, SessionState};
use datafusion::execution::object_store::ObjectStoreRegistry;
use datafusion::execution::runtime_env::RuntimeEnvBuilder;
use datafusion::execution::session_state::SessionStateBuilder;
use datafusion::prelude::SessionConfig;

use crate::config::Config;
use crate::providers::system::SystemSchema;
use crate::registry::Registry;
use catalog::RegistrySchema;
use object_stores::{FStoreObjectStores, Warehouse};

/// The catalog every FStore object lives in.
pub const CATALOG: &str = "fstore";
/// Schema of user tables, views and feature groups.
pub const USER_SCHEMA: &str = "public";
/// Schema of the system tables (`fstore.history`, …).
pub const SYSTEM_SCHEMA: &str = "fstore";

/// Something that adds functions, table functions or system tables to the engine. Each
/// feature area (UDFs, feature groups, training sets, …) is one extension.
pub trait EngineExtension: Send + Sync {
    fn name(&self) -> &'static str;
    fn register(
        &self,
        ctx: &SessionContext,
        registry: &Arc<Registry>,
        system: &SystemSchema,
    ) -> Result<()>;
}

/// The functions of the `fstore-udfs` crate.
struct UdfExtension;

impl EngineExtension for UdfExtension {
    fn name(&self) -> &'static str {
        "fstore-udfs"
    }
    fn register(&self, ctx: &SessionContext, _: &Arc<Registry>, _: &SystemSchema) -> Result<()> {
        fstore_udfs::register_all(ctx)
    }
}

/// The sample data set's table functions (`sample_transactions`, `sample_products`).
struct SampleDataExtension;

impl EngineExtension for SampleDataExtension {
    fn name(&self) -> &'static str {
        "sample-data"
    }
    fn register(&self, ctx: &SessionContext, _: &Arc<Registry>, _: &SystemSchema) -> Result<()> {
        crate::sample::register(ctx);
        Ok(())
    }
}

/// Feature groups: their system tables and the optimizer rule for their time filters.
struct FeatureGroupExtension;

impl EngineExtension for FeatureGroupExtension {
    fn name(&self) -> &'static str {
        "feature-groups"
    }
    fn register(
        &self,
        ctx: &SessionContext,
        registry: &Arc<Registry>,
        system: &SystemSchema,
    ) -> Result<()> {
        system.register(Arc::new(crate::features::catalog::FeatureGroupsTable));
        system.register(Arc::new(crate::features::catalog::FeaturesTable));
        system.register(Arc::new(crate::features::sets::LineageTable));
        system.register(Arc::new(crate::features::sets::FeatureSetsTable));
        ctx.register_udtf(
            "feature_set_versions",
            Arc::new(crate::features::sets::FeatureSetVersions {
                registry: Arc::clone(registry),
            }),
        );
        ctx.register_udtf(
            "training_set",
            Arc::new(crate::features::training::TrainingSet {
                registry: Arc::clone(registry),
            }),
        );
        ctx.register_udtf(
            "temporal_split",
            Arc::new(crate::features::training::TemporalSplit),
        );
        ctx.add_optimizer_rule(Arc::new(crate::features::node::TimeBoundsRule));
        Ok(())
    }
}

/// The extensions every engine gets.
pub fn default_extensions() -> Vec<Box<dyn EngineExtension>> {
    vec![
        Box::new(UdfExtension),
        Box::new(SampleDataExtension),
        Box::new(FeatureGroupExtension),
        Box::new(crate::window::WindowExtension),
        Box::new(crate::functions::selection::SelectionExtension),
        Box::new(crate::functions::quality::QualityExtension),
    ]
}

/// A running FStore engine on one warehouse.
pub struct Engine {
    config: Config,
    ctx: SessionContext,
    registry: Arc<Registry>,
    catalog: Arc<RegistrySchema>,
    refresh_interval: Duration,
    progress: std::sync::RwLock<Option<ProgressFn>>,
    online: Arc<crate::online::service::OnlineService>,
}

/// Receives progress of long operations (exports): a short line such as
/// `exported 1200000 rows (45.1 MB) to s3://bucket/x.parquet`.
pub type ProgressFn = Arc<dyn Fn(&str) + Send + Sync>;

impl std::fmt::Debug for Engine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Engine")
            .field("warehouse", &self.registry.warehouse().url().as_str())
            .finish()
    }
}

impl Engine {
    /// Opens the warehouse named by `config` and builds the engine over it.
    pub async fn open(config: &Config) -> Result<Arc<Engine>> {
        Self::open_with(config, default_extensions()).await
    }

    /// Like [`Engine::open`], with an explicit list of extensions.
    pub async fn open_with(
        config: &Config,
        extensions: Vec<Box<dyn EngineExtension>>,
    ) -> Result<Arc<Engine>> {
        let warehouse = Warehouse::open(&config.warehouse, &config.s3)?;
        let stores = Arc::new(FStoreObjectStores::new(config.s3.clone()));
        stores.register_store(&warehouse.store_url(), Arc::clone(warehouse.store()));
        let runtime = RuntimeEnvBuilder::new()
            .with_memory_limit(config.memory_limit_bytes()?, 1.0)
            .with_object_store_registry(stores)
            .build_arc()?;
        let partitions = config.target_partitions.unwrap_or_else(|| {
            std::thread::available_parallelism()
                .map(|n| n.get())
                .unwrap_or(2)
        });
        let session_config = SessionConfig::new()
            .with_default_catalog_and_schema(CATALOG, USER_SCHEMA)
            .with_create_default_catalog_and_schema(false)
            .with_information_schema(true)
            .with_target_partitions(partitions.max(1));
        let state = crate::asof::register(
            SessionStateBuilder::new()
                .with_config(session_config)
                .with_runtime_env(runtime)
                .with_default_features(),
        )?
        .build();
        let ctx = SessionContext::new_with_state(state);

        let refresh_interval = if warehouse.local_dir().is_some() {
            Duration::ZERO
        } else {
            Duration::from_millis(500)
        };
        let registry = Arc::new(Registry::open(warehouse.clone()).await?);
        let (store, embedded) = crate::online::open_store(config, &warehouse).await?;
        let online = Arc::new(crate::online::service::OnlineService::new(store, embedded));
        let catalog = Arc::new(RegistrySchema::new(warehouse));
        let system = Arc::new(SystemSchema::new(Arc::clone(&registry)));
        let fstore = MemoryCatalogProvider::new();
        fstore.register_schema(USER_SCHEMA, Arc::clone(&catalog) as _)?;
        fstore.register_schema(SYSTEM_SCHEMA, Arc::clone(&system) as _)?;
        ctx.register_catalog(CATALOG, Arc::new(fstore));
        for ext in &extensions {
            ext.register(&ctx, &registry, &system)?;
            tracing::debug!(extension = ext.name(), "extension registered");
        }
        // Online serving needs the deployment's store, so it is wired here.
        system.register(Arc::new(crate::online::tables::MaterializationsTable));
        system.register(Arc::new(crate::online::tables::OnlineSetsTable));
        ctx.register_udtf(
            crate::functions::online::F,
            Arc::new(crate::functions::online::OnlineFeatures {
                registry: Arc::clone(&registry),
                service: Arc::clone(&online),
            }),
        );
        let engine = Arc::new(Engine {
            config: config.clone(),
            ctx,
            registry,
            catalog,
            refresh_interval,
            progress: std::sync::RwLock::new(None),
            online,
        });
        engine.sync().await?;
        Ok(engine)
    }

    pub fn config(&self) -> &Config {
        &self.config
    }

    /// The shared session context.
    pub fn ctx(&self) -> &SessionContext {
        &self.ctx
    }

    /// A snapshot of the session state (for planning).
    pub fn state(&self) -> SessionState {
        self.ctx.state()
    }

    /// Sets where long operations report progress (the CLI's progress line).
    pub fn set_progress(&self, listener: Option<ProgressFn>) {
        *self.progress.write().unwrap_or_else(|e| e.into_inner()) = listener;
    }

    /// Reports progress of a long operation to the listener (and the log).
    pub fn progress(&self, message: &str) {
        tracing::info!("{message}");
        if let Some(f) = self
            .progress
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .as_ref()
        {
            f(message);
        }
    }

    /// Online serving: the store, refreshes, lookups.
    pub fn online(&self) -> &Arc<crate::online::service::OnlineService> {
        &self.online
    }

    pub fn registry(&self) -> &Arc<Registry> {
        &self.registry
    }

    pub fn warehouse(&self) -> &Warehouse {
        self.registry.warehouse()
    }

    /// Picks up registry changes (from this or another process) and rebuilds what changed.
    /// Called before each statement.
    pub async fn refresh(&self) -> Result<()> {
        self.registry.refresh(self.refresh_interval).await?;
        self.sync().await
    }

    /// Like [`Engine::refresh`], reading the registry at most once per `min_interval` (the
    /// online lookup hot path: this process's own changes are visible at once, another
    /// process's within `min_interval`).
    pub async fn refresh_within(&self, min_interval: Duration) -> Result<()> {
        self.registry
            .refresh(min_interval.max(self.refresh_interval))
            .await?;
        self.sync().await
    }

    /// Brings the catalog up to the registry's current state.
    pub async fn sync(&self) -> Result<()> {
        let state = self.registry.state();
        // The common case, on every statement: nothing changed (and no session state to
        // clone for the catalog).
        if !self.catalog.is_synced(state.seq) {
            self.catalog.sync(&state, &self.ctx.state()).await?;
        }
        self.online.sync(&state).await
    }
}
