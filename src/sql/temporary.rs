//! Session-scoped temporary tables: what a Flight SQL bulk ingest with `temporary = true`
//! (ADBC's `adbc_ingest(…, temporary=True)`) creates.
//!
//! A temporary table belongs to one server session (one login): it is held in the server's
//! memory, charged to the engine's memory pool (an upload that does not fit is refused with
//! `RESOURCE_EXHAUSTED`, never kills the server), visible to that session's statements only
//! — under its bare name, before the tables of the warehouse with the same name — and gone
//! with `DROP TABLE name` or with the session. Nothing is written to the warehouse or the
//! registry: no history, no privilege needed (the rows are the session's own), invisible to
//! every other session and user. It is what the Python package uploads an `entity_df` to.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, PoisonError};

use async_trait::async_trait;
use datafusion::arrow::array::RecordBatch;
use datafusion::catalog::{CatalogProvider, CatalogProviderList, SchemaProvider, TableProvider};
use datafusion::common::TableReference;
use datafusion::datasource::MemTable;
use datafusion::error::Result;
use datafusion::execution::SessionState;
use datafusion::execution::memory_pool::{MemoryConsumer, MemoryReservation};
use datafusion::execution::session_state::SessionStateBuilder;
use datafusion::logical_expr::LogicalPlan;
use futures::StreamExt;

use super::exec::{SqlSession, StatementResult};
use super::settings::Scope;
use crate::engine::{CATALOG, USER_SCHEMA};
use crate::error::FStoreError;

/// Temporary tables a session may hold at once.
pub const MAX_TABLES: usize = 64;

/// One temporary table: its rows and the memory they hold in the engine's pool.
#[derive(Debug)]
struct Temporary {
    batches: Vec<RecordBatch>,
    schema: arrow_schema::SchemaRef,
    _memory: MemoryReservation,
}

/// A session's temporary tables by name.
#[derive(Debug, Default)]
pub struct Temporaries {
    tables: Mutex<BTreeMap<String, Arc<Temporary>>>,
}

impl Temporaries {
    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, Arc<Temporary>>> {
        self.tables.lock().unwrap_or_else(PoisonError::into_inner)
    }

    pub fn is_empty(&self) -> bool {
        self.lock().is_empty()
    }

    fn provider(&self, name: &str) -> Option<Arc<dyn TableProvider>> {
        let t = self.lock().get(name).cloned()?;
        MemTable::try_new(Arc::clone(&t.schema), vec![t.batches.clone()])
            .ok()
            .map(|m| Arc::new(m) as Arc<dyn TableProvider>)
    }

    /// `state` resolving the session's temporary tables before the warehouse's.
    pub fn apply(self: &Arc<Self>, state: &mut SessionState) {
        if self.is_empty() {
            return;
        }
        let inner = Arc::clone(state.catalog_list());
        let list = Arc::new(Catalogs {
            inner,
            temporaries: Arc::clone(self),
        });
        *state = SessionStateBuilder::new_from_existing(state.clone())
            .with_catalog_list(list)
            .build();
    }
}

/// The catalogs, with `fstore.public` seeing the temporary tables first.
#[derive(Debug)]
struct Catalogs {
    inner: Arc<dyn CatalogProviderList>,
    temporaries: Arc<Temporaries>,
}

impl CatalogProviderList for Catalogs {
    fn register_catalog(
        &self,
        name: String,
        catalog: Arc<dyn CatalogProvider>,
    ) -> Option<Arc<dyn CatalogProvider>> {
        self.inner.register_catalog(name, catalog)
    }
    fn catalog_names(&self) -> Vec<String> {
        self.inner.catalog_names()
    }
    fn catalog(&self, name: &str) -> Option<Arc<dyn CatalogProvider>> {
        let catalog = self.inner.catalog(name)?;
        if name != CATALOG {
            return Some(catalog);
        }
        Some(Arc::new(Catalog {
            inner: catalog,
            temporaries: Arc::clone(&self.temporaries),
        }))
    }
}

#[derive(Debug)]
struct Catalog {
    inner: Arc<dyn CatalogProvider>,
    temporaries: Arc<Temporaries>,
}

impl CatalogProvider for Catalog {
    fn schema_names(&self) -> Vec<String> {
        self.inner.schema_names()
    }
    fn schema(&self, name: &str) -> Option<Arc<dyn SchemaProvider>> {
        let schema = self.inner.schema(name)?;
        if name != USER_SCHEMA {
            return Some(schema);
        }
        Some(Arc::new(Schema {
            inner: schema,
            temporaries: Arc::clone(&self.temporaries),
        }))
    }
    fn register_schema(
        &self,
        name: &str,
        schema: Arc<dyn SchemaProvider>,
    ) -> Result<Option<Arc<dyn SchemaProvider>>> {
        self.inner.register_schema(name, schema)
    }
}

#[derive(Debug)]
struct Schema {
    inner: Arc<dyn SchemaProvider>,
    temporaries: Arc<Temporaries>,
}

#[async_trait]
impl SchemaProvider for Schema {
    fn table_names(&self) -> Vec<String> {
        let mut names = self.inner.table_names();
        for n in self.temporaries.lock().keys() {
            if !names.contains(n) {
                names.push(n.clone());
            }
        }
        names
    }
    async fn table(&self, name: &str) -> Result<Option<Arc<dyn TableProvider>>> {
        match self.temporaries.provider(name) {
            Some(t) => Ok(Some(t)),
            None => self.inner.table(name).await,
        }
    }
    fn table_exist(&self, name: &str) -> bool {
        self.temporaries.lock().contains_key(name) || self.inner.table_exist(name)
    }
}

/// How a bulk ingest treats an existing temporary table.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Mode {
    Create,
    Append,
    Replace,
}

impl SqlSession<'_> {
    fn temporaries(&self, what: &str) -> Result<&Arc<Temporaries>> {
        match self.scope() {
            Scope::Session(s) => Ok(s.temporaries()),
            _ => Err(FStoreError::invalid(format!(
                "{what}: temporary tables belong to a session; log in with Handshake first (this request carries no bearer token)"
            ))
            .into()),
        }
    }

    /// Whether `name` is one of this session's temporary tables.
    pub fn is_temporary(&self, name: &str) -> bool {
        matches!(self.scope(), Scope::Session(s) if s.temporaries().lock().contains_key(name))
    }

    /// A bulk ingest into the session's temporary table `name` (`plan` scans the rows as
    /// they arrive; each batch is charged to the memory pool before it is kept). Returns
    /// the rows added.
    pub async fn ingest_temporary(&self, name: &str, plan: LogicalPlan, mode: Mode) -> Result<u64> {
        let what = format!("temporary table '{name}'");
        let temporaries = self.temporaries(&what)?;
        let existing = temporaries.lock().get(name).cloned();
        match (mode, &existing) {
            (Mode::Create, Some(_)) => {
                return Err(FStoreError::already_exists(format!("{what} already exists")).into());
            }
            (Mode::Append, None) => {
                return Err(FStoreError::not_found(format!("{what} not found")).into());
            }
            _ => {}
        }
        if existing.is_none() && temporaries.lock().len() >= MAX_TABLES {
            return Err(FStoreError::invalid(format!(
                "{what}: a session holds at most {MAX_TABLES} temporary tables; drop some first"
            ))
            .into());
        }
        let pool = &self.ctx().runtime_env().memory_pool;
        let memory = MemoryConsumer::new(format!("temporary table {name}")).register(pool);
        let (mut batches, schema) = match (&existing, mode) {
            (Some(t), Mode::Append) => {
                memory.try_grow(t.batches.iter().map(|b| b.get_array_memory_size()).sum())?;
                (t.batches.clone(), Arc::clone(&t.schema))
            }
            _ => (vec![], Arc::clone(plan.schema().inner())),
        };
        if plan.schema().inner().fields() != schema.fields() {
            return Err(FStoreError::invalid(format!(
                "{what}: the rows' columns ({}) differ from the table's ({})",
                plan.schema().inner(),
                schema
            ))
            .into());
        }
        let state = self.state();
        let physical = state.create_physical_plan(&plan).await?;
        let mut stream = datafusion::physical_plan::execute_stream(physical, state.task_ctx())?;
        let mut rows = 0u64;
        while let Some(batch) = stream.next().await {
            let batch = batch?;
            memory.try_grow(batch.get_array_memory_size()).map_err(|e| {
                FStoreError::new(
                    crate::error::ErrorKind::ResourceExhausted,
                    format!(
                        "{what} does not fit in the server's memory limit ({}); upload fewer rows or use a table (CREATE TABLE)",
                        crate::error::user_message(&e)
                    ),
                )
            })?;
            rows += batch.num_rows() as u64;
            batches.push(batch);
        }
        let table = Arc::new(Temporary {
            batches,
            schema,
            _memory: memory,
        });
        temporaries.lock().insert(name.to_string(), table);
        Ok(rows)
    }

    /// `DROP TABLE` of a temporary table of the session (None: not one).
    pub(super) fn drop_temporary(&self, name: &TableReference) -> Option<Result<StatementResult>> {
        let bare = match name {
            TableReference::Bare { table } => table.to_string(),
            TableReference::Partial { schema, table } if schema.as_ref() == USER_SCHEMA => {
                table.to_string()
            }
            TableReference::Full {
                catalog,
                schema,
                table,
            } if catalog.as_ref() == CATALOG && schema.as_ref() == USER_SCHEMA => table.to_string(),
            _ => return None,
        };
        let Scope::Session(s) = self.scope() else {
            return None;
        };
        s.temporaries().lock().remove(&bare)?;
        Some(self.done(None))
    }
}
