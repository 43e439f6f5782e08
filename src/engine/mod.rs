//! The engine: one DataFusion `SessionContext` over one warehouse, the foundation every area
//! builds on.
//!
//! [`Engine::open_with`] turns a [`Config`] and a list of [`EngineExtension`]s into a running
//! engine: the warehouse's object store (local or S3) and lazily created S3 stores for other
//! buckets, a memory pool with the configured limit (queries past it fail with "resources
//! exhausted" instead of killing the process), the `fstore` catalog (`public`: user tables,
//! views and feature groups from the registry; `fstore`: system tables), a query planner that
//! composes the extensions' planners, plan codecs that compose their datafusion-proto codecs
//! ([`codec`]), and whatever each extension registers.
//!
//! This module must never import a feature area: areas come in as extensions, listed by the
//! composition root (`crate::compose`). Statement execution lives in `sql`.

pub mod catalog;
pub mod codec;
pub mod options;
pub mod planner;

use std::any::{Any, TypeId};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use datafusion::physical_planner::ExtensionPlanner;

use datafusion::catalog::{CatalogProvider, MemoryCatalogProvider};
use datafusion::error::Result;
use datafusion::execution::context::{SessionContext, SessionState};
use datafusion::execution::object_store::ObjectStoreRegistry;
use datafusion::execution::runtime_env::RuntimeEnvBuilder;
use datafusion::execution::session_state::SessionStateBuilder;
use datafusion::prelude::SessionConfig;
use datafusion_proto::logical_plan::LogicalExtensionCodec;
use datafusion_proto::physical_plan::PhysicalExtensionCodec;

use crate::config::Config;
use crate::providers::system::SystemSchema;
use crate::registry::{Registry, RegistryState};
use crate::warehouse::{FStoreObjectStores, Warehouse};
use catalog::RegistrySchema;
use codec::{CodecSession, FStoreLogicalCodec, FStorePhysicalCodec};

/// The catalog every FStore object lives in.
pub const CATALOG: &str = "fstore";
/// Schema of user tables, views and feature groups.
pub const USER_SCHEMA: &str = "public";
/// Schema of the system tables (`fstore.history`, …).
pub const SYSTEM_SCHEMA: &str = "fstore";

/// One feature area's contribution to the engine: functions, table functions, system
/// tables, rules, plan nodes and shared services. Every area (feature groups, windows, the
/// AS-OF join, online serving, quality, selection, …) is one extension; the composition root
/// (`crate::compose`) lists them. The engine knows the trait, never the areas.
#[async_trait]
pub trait EngineExtension: Send + Sync {
    fn name(&self) -> &'static str;

    /// Additions to the session before it exists: analyzer and optimizer rules, and scalar
    /// functions those rules produce.
    fn configure(&self, builder: SessionStateBuilder) -> Result<SessionStateBuilder> {
        Ok(builder)
    }

    /// Physical planners for this extension's logical nodes (composed by
    /// [`planner::FStoreQueryPlanner`]).
    fn extension_planners(&self) -> Vec<Arc<dyn ExtensionPlanner + Send + Sync>> {
        Vec::new()
    }

    /// The datafusion-proto codec of this extension's logical nodes and table providers
    /// (composed into [`Engine::logical_codec`]); `session` makes providers again.
    fn logical_codec(&self, _session: &CodecSession) -> Option<Arc<dyn LogicalExtensionCodec>> {
        None
    }

    /// The datafusion-proto codec of this extension's operators (composed into
    /// [`Engine::physical_codec`]).
    fn physical_codec(&self, _session: &CodecSession) -> Option<Arc<dyn PhysicalExtensionCodec>> {
        None
    }

    /// Registers functions, table functions, system tables and services.
    async fn register(&self, setup: &mut Setup<'_>) -> Result<()>;

    /// Brings the extension's own state up to the registry's (after every refresh).
    async fn sync(&self, _engine: &Engine, _state: &RegistryState) -> Result<()> {
        Ok(())
    }
}

/// What an extension registers itself with (see [`EngineExtension::register`]).
pub struct Setup<'a> {
    pub config: &'a Config,
    pub ctx: &'a SessionContext,
    pub registry: &'a Arc<Registry>,
    /// The `fstore` system schema.
    pub system: &'a SystemSchema,
    /// The `public` schema of user tables, views and feature groups.
    pub catalog: &'a RegistrySchema,
    pub warehouse: &'a Warehouse,
    services: &'a mut Services,
}

impl Setup<'_> {
    /// Makes `service` available to every layer through [`Engine::service`].
    pub fn provide<T: Any + Send + Sync>(&mut self, service: Arc<T>) {
        self.services.insert(TypeId::of::<T>(), service);
    }
}

type Services = HashMap<TypeId, Arc<dyn Any + Send + Sync>>;

/// A running FStore engine on one warehouse.
pub struct Engine {
    config: Config,
    ctx: SessionContext,
    registry: Arc<Registry>,
    catalog: Arc<RegistrySchema>,
    refresh_interval: Duration,
    progress: std::sync::RwLock<Option<ProgressFn>>,
    extensions: Vec<Box<dyn EngineExtension>>,
    services: Services,
    logical_codec: Arc<FStoreLogicalCodec>,
    physical_codec: Arc<FStorePhysicalCodec>,
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
    /// Opens the warehouse named by `config` and builds the engine over it with
    /// `extensions` (`crate::compose::open` passes every area's).
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
            .with_target_partitions(partitions.max(1))
            .with_option_extension(options::FStoreOptions {
                query_timeout: config.query_timeout.clone().unwrap_or_default(),
            });
        let mut builder = SessionStateBuilder::new()
            .with_config(session_config)
            .with_runtime_env(runtime)
            .with_default_features();
        let mut planners = Vec::new();
        for ext in &extensions {
            builder = ext.configure(builder)?;
            planners.extend(ext.extension_planners());
        }
        let state = builder
            .with_query_planner(Arc::new(planner::FStoreQueryPlanner::new(planners)))
            .build();
        let ctx = SessionContext::new_with_state(state);

        let refresh_interval = if warehouse.local_dir().is_some() {
            Duration::ZERO
        } else {
            Duration::from_millis(500)
        };
        let registry = Arc::new(Registry::open(warehouse.clone()).await?);
        let catalog = Arc::new(RegistrySchema::new(warehouse.clone()));
        let system = Arc::new(SystemSchema::new(Arc::clone(&registry)));
        let fstore = MemoryCatalogProvider::new();
        fstore.register_schema(USER_SCHEMA, Arc::clone(&catalog) as _)?;
        fstore.register_schema(SYSTEM_SCHEMA, Arc::clone(&system) as _)?;
        ctx.register_catalog(CATALOG, Arc::new(fstore));
        let mut services = Services::new();
        for ext in &extensions {
            let mut setup = Setup {
                config,
                ctx: &ctx,
                registry: &registry,
                system: &system,
                catalog: &catalog,
                warehouse: &warehouse,
                services: &mut services,
            };
            ext.register(&mut setup).await?;
            tracing::debug!(extension = ext.name(), "extension registered");
        }
        let session = CodecSession::new(&ctx);
        let logical_codec = Arc::new(FStoreLogicalCodec::new(&extensions, &session));
        let physical_codec = Arc::new(FStorePhysicalCodec::new(&extensions, &session));
        let engine = Arc::new(Engine {
            config: config.clone(),
            ctx,
            registry,
            catalog,
            refresh_interval,
            progress: std::sync::RwLock::new(None),
            extensions,
            services,
            logical_codec,
            physical_codec,
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

    /// The service of type `T` an extension provided ([`Setup::provide`]), if any.
    pub fn service<T: Any + Send + Sync>(&self) -> Option<Arc<T>> {
        let s = self.services.get(&TypeId::of::<T>())?;
        Arc::clone(s).downcast::<T>().ok()
    }

    /// The datafusion-proto codec of every extension's logical nodes and table providers.
    pub fn logical_codec(&self) -> &Arc<FStoreLogicalCodec> {
        &self.logical_codec
    }

    /// The datafusion-proto codec of every extension's operators.
    pub fn physical_codec(&self) -> &Arc<FStorePhysicalCodec> {
        &self.physical_codec
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
        for ext in &self.extensions {
            ext.sync(self, &state).await?;
        }
        Ok(())
    }
}
