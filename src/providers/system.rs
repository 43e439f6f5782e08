//! `fstore.*` system tables: read-only views of the registry, computed at scan time from a
//! consistent registry snapshot (so they reflect the latest commit, including other
//! processes' once the engine has refreshed).
//!
//! A system table is a [`SystemTable`]: a schema and a function from [`RegistryState`] to one
//! record batch. Later issues add their tables with [`SystemSchema::register`].

use std::collections::BTreeMap;
use std::fmt::Debug;
use std::sync::{Arc, RwLock};

use arrow_schema::{DataType, Field, Schema, SchemaRef, TimeUnit};
use async_trait::async_trait;
use datafusion::arrow::array::{
    ArrayRef, RecordBatch, StringArray, TimestampMicrosecondArray, UInt64Array,
};
use datafusion::catalog::{SchemaProvider, Session, TableProvider};
use datafusion::datasource::memory::MemorySourceConfig;
use datafusion::error::Result;
use datafusion::logical_expr::{Expr, TableType};
use datafusion::physical_plan::ExecutionPlan;

use crate::registry::{Registry, RegistryState};

/// A read-only table computed from the registry.
pub trait SystemTable: Debug + Send + Sync {
    fn name(&self) -> &'static str;
    fn schema(&self) -> SchemaRef;
    fn rows(&self, state: &RegistryState) -> Result<RecordBatch>;
}

/// The `fstore` schema of system tables.
#[derive(Debug)]
pub struct SystemSchema {
    registry: Arc<Registry>,
    tables: RwLock<BTreeMap<&'static str, Arc<dyn SystemTable>>>,
    /// System tables that read storage at scan time (e.g. `fstore.audit`).
    providers: RwLock<BTreeMap<&'static str, Arc<dyn TableProvider>>>,
}

impl SystemSchema {
    /// The schema with FStore's built-in system tables.
    pub fn new(registry: Arc<Registry>) -> Self {
        let schema = Self {
            registry,
            tables: RwLock::new(BTreeMap::new()),
            providers: RwLock::new(BTreeMap::new()),
        };
        schema.register(Arc::new(History));
        schema
    }

    /// Registers a system table that is a table provider of its own.
    pub fn register_provider(&self, name: &'static str, provider: Arc<dyn TableProvider>) {
        self.providers
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .insert(name, provider);
    }

    pub fn register(&self, table: Arc<dyn SystemTable>) {
        self.tables
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .insert(table.name(), table);
    }
}

#[async_trait]
impl SchemaProvider for SystemSchema {
    fn table_names(&self) -> Vec<String> {
        let tables = self.tables.read().unwrap_or_else(|p| p.into_inner());
        let providers = self.providers.read().unwrap_or_else(|p| p.into_inner());
        let mut names: Vec<String> = tables
            .keys()
            .chain(providers.keys())
            .map(|k| k.to_string())
            .collect();
        names.sort();
        names
    }

    async fn table(&self, name: &str) -> Result<Option<Arc<dyn TableProvider>>> {
        if let Some(p) = self
            .providers
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .get(name)
        {
            return Ok(Some(Arc::clone(p)));
        }
        let tables = self.tables.read().unwrap_or_else(|p| p.into_inner());
        Ok(tables.get(name).map(|t| {
            Arc::new(SystemTableProvider {
                table: Arc::clone(t),
                registry: Arc::clone(&self.registry),
            }) as Arc<dyn TableProvider>
        }))
    }

    fn table_exist(&self, name: &str) -> bool {
        let tables = self.tables.read().unwrap_or_else(|p| p.into_inner());
        let providers = self.providers.read().unwrap_or_else(|p| p.into_inner());
        tables.contains_key(name) || providers.contains_key(name)
    }
}

#[derive(Debug)]
struct SystemTableProvider {
    table: Arc<dyn SystemTable>,
    registry: Arc<Registry>,
}

#[async_trait]
impl TableProvider for SystemTableProvider {
    fn schema(&self) -> SchemaRef {
        self.table.schema()
    }
    fn table_type(&self) -> TableType {
        TableType::View
    }
    async fn scan(
        &self,
        _state: &dyn Session,
        projection: Option<&Vec<usize>>,
        _filters: &[Expr],
        _limit: Option<usize>,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        let batch = self.table.rows(&self.registry.state())?;
        let exec =
            MemorySourceConfig::try_new_exec(&[vec![batch]], self.schema(), projection.cloned())?;
        Ok(exec)
    }
}

/// UTC microsecond timestamps, as every system table reports times.
pub fn utc_micros() -> DataType {
    DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into()))
}

/// `fstore.history`: every registry change — who, what, when.
#[derive(Debug)]
struct History;

impl SystemTable for History {
    fn name(&self) -> &'static str {
        "history"
    }

    fn schema(&self) -> SchemaRef {
        Arc::new(Schema::new(vec![
            Field::new("seq", DataType::UInt64, false),
            Field::new("committed_at", utc_micros(), false),
            Field::new("principal", DataType::Utf8, false),
            Field::new("action", DataType::Utf8, false),
            Field::new("object_kind", DataType::Utf8, false),
            Field::new("object_name", DataType::Utf8, false),
            Field::new("statement", DataType::Utf8, false),
        ]))
    }

    fn rows(&self, state: &RegistryState) -> Result<RecordBatch> {
        let h = &state.history;
        let strings = |f: fn(&crate::registry::HistoryEntry) -> &str| -> ArrayRef {
            Arc::new(StringArray::from_iter_values(h.iter().map(f)))
        };
        let columns: Vec<ArrayRef> = vec![
            Arc::new(UInt64Array::from_iter_values(h.iter().map(|e| e.seq))),
            Arc::new(
                TimestampMicrosecondArray::from_iter_values(h.iter().map(|e| e.committed_at))
                    .with_timezone("UTC"),
            ),
            strings(|e| &e.principal),
            strings(|e| &e.action),
            strings(|e| &e.object_kind),
            strings(|e| &e.object_name),
            strings(|e| &e.statement),
        ];
        Ok(RecordBatch::try_new(self.schema(), columns)?)
    }
}
