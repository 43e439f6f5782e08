//! The user schema (`fstore.public`) as DataFusion sees it: table providers built from the
//! registry's definitions.
//!
//! The registry is the source of truth; this schema is a cache derived from it, keyed by each
//! relation's version (the sequence number of its last change). [`RegistrySchema::sync`]
//! brings the cache up to a registry state: it rebuilds only what changed, drops what was
//! dropped, and re-plans views (in creation order) whenever anything changed, because a view's
//! plan holds the providers of what it reads. A definition that cannot be built (its files are
//! gone, a view's table was dropped) is still listed, and querying it reports why — it never
//! disappears silently and never blocks start-up.
//!
//! This module never writes the registry: DDL goes through `sql::exec`, which commits and then
//! syncs.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use arrow_schema::{Schema, SchemaRef};
use async_trait::async_trait;
use datafusion::catalog::SchemaProvider;
use datafusion::catalog::{Session, TableProvider};
use datafusion::common::{DFSchema, TableReference};
use datafusion::datasource::empty::EmptyTable;
use datafusion::datasource::listing::{
    ListingOptions, ListingTable, ListingTableConfig, ListingTableUrl,
};
use datafusion::datasource::view::ViewTable;
use datafusion::error::{DataFusionError, Result};
use datafusion::execution::context::SessionState;
use datafusion::logical_expr::{DdlStatement, Expr, LogicalPlan, TableType};
use datafusion::physical_plan::ExecutionPlan;
use tracing::warn;

use crate::error::{ErrorKind, FStoreError};
use crate::registry::{ExternalTable, FeatureGroup, ManagedTable, RegistryState, Relation, View};
use crate::warehouse::Warehouse;

#[derive(Debug, Clone)]
struct Built {
    version: u64,
    provider: Arc<dyn TableProvider>,
}

/// Plans a feature group as a view over its events (the `features` area provides it, so that
/// the catalog, a foundation, never imports an area).
#[async_trait]
pub trait FeatureGroupPlanner: Send + Sync + std::fmt::Debug {
    async fn plan(&self, group: &FeatureGroup, session: &SessionState) -> Result<LogicalPlan>;
}

/// `fstore.public`: every table and view in the registry.
#[derive(Debug)]
pub struct RegistrySchema {
    warehouse: Warehouse,
    built: RwLock<HashMap<String, Built>>,
    synced: tokio::sync::Mutex<u64>,
    groups: std::sync::OnceLock<Arc<dyn FeatureGroupPlanner>>,
}

impl RegistrySchema {
    pub fn new(warehouse: Warehouse) -> Self {
        Self {
            warehouse,
            built: RwLock::new(HashMap::new()),
            synced: tokio::sync::Mutex::new(u64::MAX),
            groups: std::sync::OnceLock::new(),
        }
    }

    /// Sets how feature groups are planned (once, by the `features` extension).
    pub fn set_feature_group_planner(&self, planner: Arc<dyn FeatureGroupPlanner>) {
        let _ = self.groups.set(planner);
    }

    /// Brings the providers up to `state`. Cheap when nothing changed.
    /// Whether the catalog reflects registry sequence `seq` (false while a sync runs).
    pub fn is_synced(&self, seq: u64) -> bool {
        self.synced.try_lock().is_ok_and(|s| *s == seq)
    }

    pub async fn sync(&self, state: &RegistryState, session: &SessionState) -> Result<()> {
        let mut synced = self.synced.lock().await;
        if *synced == state.seq {
            return Ok(());
        }
        let current: HashMap<String, u64> = self
            .read()
            .iter()
            .map(|(k, v)| (k.clone(), v.version))
            .collect();

        // Tables first: rebuild what changed.
        for (name, rel) in &state.relations {
            if matches!(rel.def, Relation::View(_)) || current.get(name) == Some(&rel.version) {
                continue;
            }
            let provider = match &rel.def {
                Relation::External(t) => build_external(t, session).await,
                Relation::Managed(t) => build_managed(t, &self.warehouse, session),
                Relation::View(_) => continue,
            };
            let provider = provider.unwrap_or_else(|e| {
                warn!(table = %name, error = %e, "table definition cannot be loaded");
                unavailable(name, schema_of(&rel.def), &e)
            });
            self.write().insert(
                name.clone(),
                Built {
                    version: rel.version,
                    provider,
                },
            );
        }
        self.write()
            .retain(|name, _| state.relations.contains_key(name));

        // Views and feature groups last. One may read another, in any creation order (a view
        // can be replaced after a view that reads it was created), so plan them to a fixed
        // point: each round plans everything whose inputs are planned; what is left at the end
        // cannot be planned and is registered as unavailable, with its error.
        let mut pending: Vec<(&String, u64, Derived)> = state
            .relations
            .iter()
            .filter_map(|(name, rel)| match &rel.def {
                Relation::View(v) => Some((name, rel.version, Derived::View(v))),
                _ => None,
            })
            .chain(
                state
                    .feature_groups
                    .iter()
                    .map(|(name, g)| (name, g.version, Derived::Group(&g.def))),
            )
            .collect();
        // Drop every view and group before re-planning, so none resolves a stale one.
        self.write()
            .retain(|name, _| pending.iter().all(|(v, ..)| *v != name));
        let mut errors = HashMap::new();
        loop {
            let before = pending.len();
            let mut still = Vec::new();
            for (name, version, derived) in pending {
                let built = match derived {
                    Derived::View(view) => build_view(view, session).await,
                    Derived::Group(group) => build_group(self.groups.get(), group, session).await,
                };
                match built {
                    Ok(provider) => {
                        self.write()
                            .insert(name.clone(), Built { version, provider });
                    }
                    Err(e) => {
                        errors.insert(name.clone(), e);
                        still.push((name, version, derived));
                    }
                }
            }
            pending = still;
            if pending.is_empty() || pending.len() == before {
                break;
            }
        }
        for (name, version, _) in pending {
            let e = errors.remove(name).unwrap_or_else(|| {
                FStoreError::new(ErrorKind::Internal, "view not planned").into()
            });
            warn!(view = %name, error = %e, "view definition cannot be loaded");
            let provider = unavailable(name, None, &e);
            self.write()
                .insert(name.clone(), Built { version, provider });
        }
        *synced = state.seq;
        Ok(())
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, HashMap<String, Built>> {
        self.built.read().unwrap_or_else(|p| p.into_inner())
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, HashMap<String, Built>> {
        self.built.write().unwrap_or_else(|p| p.into_inner())
    }
}

#[async_trait]
impl SchemaProvider for RegistrySchema {
    fn table_names(&self) -> Vec<String> {
        let mut names: Vec<String> = self.read().keys().cloned().collect();
        names.sort();
        names
    }

    async fn table(&self, name: &str) -> Result<Option<Arc<dyn TableProvider>>> {
        Ok(self.read().get(name).map(|b| Arc::clone(&b.provider)))
    }

    fn table_exist(&self, name: &str) -> bool {
        self.read().contains_key(name)
    }
}

fn schema_of(rel: &Relation) -> Option<SchemaRef> {
    match rel {
        Relation::External(t) => Some(Arc::new(t.schema.clone())),
        Relation::Managed(t) => Some(Arc::new(t.schema.clone())),
        Relation::View(_) => None,
    }
}

/// Re-creates an external table from its stored definition without inferring anything.
pub async fn build_external(
    t: &ExternalTable,
    session: &SessionState,
) -> Result<Arc<dyn TableProvider>> {
    let stmt = parse_one(&t.sql)?;
    let plan = session.statement_to_plan(stmt).await?;
    let LogicalPlan::Ddl(DdlStatement::CreateExternalTable(mut cmd)) = plan else {
        return Err(FStoreError::new(
            ErrorKind::Internal,
            format!(
                "stored definition of '{}' is not CREATE EXTERNAL TABLE",
                t.name
            ),
        )
        .into());
    };
    cmd.locations = t.locations.clone();
    cmd.schema = Arc::new(DFSchema::try_from(t.schema.clone())?);
    let factory = session
        .table_factories()
        .get(&cmd.file_type.to_uppercase())
        .ok_or_else(|| {
            FStoreError::invalid(format!("unsupported table format '{}'", cmd.file_type))
        })?;
    factory.create(session, &cmd).await
}

/// The resolved locations of a listing table (with the glob DataFusion chose, if any), so
/// that re-creating it reads exactly the same files.
pub fn resolved_locations(provider: &Arc<dyn TableProvider>) -> Option<Vec<String>> {
    let listing = provider.downcast_ref::<ListingTable>()?;
    Some(
        listing
            .table_paths()
            .iter()
            .map(|p| match p.get_glob() {
                // DataFusion honours globs on file-system paths only, not on file:// URLs.
                Some(glob) => {
                    let base = url::Url::parse(p.as_str())
                        .ok()
                        .filter(|u| u.scheme() == "file")
                        .and_then(|u| u.to_file_path().ok())
                        .map(|path| {
                            let mut s = path.to_string_lossy().to_string();
                            if !s.ends_with('/') {
                                s.push('/');
                            }
                            s
                        })
                        .unwrap_or_else(|| p.as_str().to_string());
                    format!("{base}{}", glob.as_str())
                }
                None => p.as_str().to_string(),
            })
            .collect(),
    )
}

/// A managed table reads exactly its committed files, never a directory listing: a file
/// written by a writer that died before committing is invisible.
pub fn build_managed(
    t: &ManagedTable,
    warehouse: &Warehouse,
    session: &SessionState,
) -> Result<Arc<dyn TableProvider>> {
    let schema: SchemaRef = Arc::new(t.schema.clone());
    if t.files.is_empty() {
        return Ok(Arc::new(EmptyTable::new(schema)));
    }
    let urls = t
        .files
        .iter()
        .map(|f| ListingTableUrl::parse(warehouse.url_of(&f.path)))
        .collect::<Result<Vec<_>>>()?;
    let format = session
        .get_file_format_factory("parquet")
        .ok_or_else(|| FStoreError::new(ErrorKind::Internal, "parquet support is missing"))?
        .create(session, &HashMap::new())?;
    let options = ListingOptions::new(format).with_file_extension(".parquet");
    let config = ListingTableConfig::new_with_multi_paths(urls)
        .with_listing_options(options)
        .with_schema(schema);
    Ok(Arc::new(ListingTable::try_new(config)?))
}

/// Relations computed from other relations.
#[derive(Clone, Copy)]
enum Derived<'a> {
    View(&'a View),
    Group(&'a FeatureGroup),
}

/// A feature group is a view over its plan (see `features`).
async fn build_group(
    planner: Option<&Arc<dyn FeatureGroupPlanner>>,
    g: &FeatureGroup,
    session: &SessionState,
) -> Result<Arc<dyn TableProvider>> {
    let Some(planner) = planner else {
        return Err(FStoreError::unimplemented(format!(
            "feature group '{}' cannot be read: this engine has no feature groups",
            g.name
        ))
        .into());
    };
    let plan = planner.plan(g, session).await?;
    Ok(Arc::new(ViewTable::new(
        plan,
        Some(format!("FEATURE GROUP {}", g.name)),
    )))
}

async fn build_view(v: &View, session: &SessionState) -> Result<Arc<dyn TableProvider>> {
    let stmt = parse_one(&v.sql)?;
    let plan = session.statement_to_plan(stmt).await?;
    view_from_plan(plan, &v.name)
}

/// Turns a planned `CREATE VIEW` into its provider.
pub fn view_from_plan(plan: LogicalPlan, name: &str) -> Result<Arc<dyn TableProvider>> {
    let LogicalPlan::Ddl(DdlStatement::CreateView(cmd)) = plan else {
        return Err(FStoreError::new(
            ErrorKind::Internal,
            format!("stored definition of '{name}' is not CREATE VIEW"),
        )
        .into());
    };
    let input = Arc::unwrap_or_clone(cmd.input);
    let input = input.recompute_schema()?;
    Ok(Arc::new(ViewTable::new(input, cmd.definition)))
}

/// A relation whose definition cannot be loaded right now. It keeps its name (and schema when
/// known) so the catalog stays truthful, and every scan says what is wrong.
fn unavailable(
    name: &str,
    schema: Option<SchemaRef>,
    err: &DataFusionError,
) -> Arc<dyn TableProvider> {
    Arc::new(UnavailableTable {
        name: name.to_string(),
        schema: schema.unwrap_or_else(|| Arc::new(Schema::empty())),
        reason: crate::error::user_message(err),
    })
}

#[derive(Debug)]
struct UnavailableTable {
    name: String,
    schema: SchemaRef,
    reason: String,
}

#[async_trait]
impl TableProvider for UnavailableTable {
    fn schema(&self) -> SchemaRef {
        Arc::clone(&self.schema)
    }
    fn table_type(&self) -> TableType {
        TableType::Base
    }
    async fn scan(
        &self,
        _state: &dyn Session,
        _projection: Option<&Vec<usize>>,
        _filters: &[Expr],
        _limit: Option<usize>,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        Err(
            FStoreError::unavailable(format!("'{}' cannot be read: {}", self.name, self.reason))
                .into(),
        )
    }
}

/// Parses one stored statement.
fn parse_one(sql: &str) -> Result<datafusion::sql::parser::Statement> {
    let mut stmts = datafusion::sql::parser::DFParser::parse_sql(sql)?;
    match (stmts.pop_front(), stmts.is_empty()) {
        (Some(s), true) => Ok(s),
        _ => Err(FStoreError::new(
            ErrorKind::Internal,
            format!("stored definition is not one statement: {sql}"),
        )
        .into()),
    }
}

/// The bare name of a relation in the user schema, or an error for other schemas.
pub fn user_relation_name(table: &TableReference) -> Result<String> {
    match (table.catalog(), table.schema()) {
        (None | Some(super::CATALOG), None | Some(super::USER_SCHEMA)) => {
            let name = table.table();
            if name.is_empty()
                || name
                    .chars()
                    .any(|c| c == '/' || c == '\\' || c.is_control())
            {
                return Err(FStoreError::invalid(format!(
                    "invalid name {name:?}: names of tables and views cannot be empty or hold \
                     '/', '\\' or control characters"
                ))
                .into());
            }
            Ok(name.to_string())
        }
        _ => Err(FStoreError::invalid(format!(
            "cannot define '{table}': tables and views live in schema {}.{}",
            super::CATALOG,
            super::USER_SCHEMA
        ))
        .into()),
    }
}
