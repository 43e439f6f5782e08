//! Tables and views as the registry records them.

use arrow_schema::Schema;
use serde::{Deserialize, Serialize};

/// Kinds of named relations a query can read.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum RelationKind {
    Table,
    View,
}

impl RelationKind {
    pub fn as_str(&self) -> &'static str {
        match self {
            RelationKind::Table => "table",
            RelationKind::View => "view",
        }
    }
}

/// A table over files FStore does not own.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ExternalTable {
    pub name: String,
    /// The `CREATE EXTERNAL TABLE` statement as written (format options, partitioning, …).
    pub sql: String,
    /// Resolved locations (absolute URLs, with the glob DataFusion chose for directories).
    pub locations: Vec<String>,
    /// The schema inferred or declared at creation, so a restart needs no inference.
    pub schema: Schema,
    pub replace: bool,
}

/// A table whose data lives in the warehouse, as a list of committed Parquet files.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ManagedTable {
    pub name: String,
    pub schema: Schema,
    /// Directory of the table's files, relative to the warehouse root.
    pub dir: String,
    pub files: Vec<DataFile>,
    pub replace: bool,
}

/// One Parquet file of a managed table.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct DataFile {
    /// Path relative to the warehouse root.
    pub path: String,
    pub size: u64,
    pub rows: u64,
}

/// A view: its defining query, re-planned at start-up and whenever what it reads changes.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct View {
    pub name: String,
    /// The `CREATE VIEW` statement.
    pub sql: String,
    pub replace: bool,
}

/// A named relation in the current state.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Relation {
    External(ExternalTable),
    Managed(ManagedTable),
    View(View),
}

impl Relation {
    pub fn kind(&self) -> RelationKind {
        match self {
            Relation::External(_) | Relation::Managed(_) => RelationKind::Table,
            Relation::View(_) => RelationKind::View,
        }
    }
}
