//! The statement front: FStore's own statements on top of DataFusion's SQL.
//!
//! `parser` recognises FStore statements (`SHOW FEATURE GROUPS`, and the grammar of SQL.md as
//! it grows) and hands every other statement to DataFusion's `DFParser`. `exec` runs a parsed
//! statement: DDL that defines things is committed to the registry, everything else is planned
//! and executed by DataFusion unchanged.

pub mod exec;
pub mod parser;

use datafusion::sql::parser::Statement as DFStatement;

pub use exec::{ResultKind, StatementResult};
pub use parser::{FStoreParser, ParsedStatement};

/// A statement FStore can run.
#[derive(Debug, Clone, PartialEq)]
pub enum FStoreStatement {
    /// Any statement DataFusion understands.
    DataFusion(Box<DFStatement>),
    /// `SHOW FEATURE GROUPS`
    ShowFeatureGroups,
    /// `SHOW FEATURE SETS`
    ShowFeatureSets,
}

impl std::fmt::Display for FStoreStatement {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            FStoreStatement::DataFusion(s) => write!(f, "{s}"),
            FStoreStatement::ShowFeatureGroups => f.write_str("SHOW FEATURE GROUPS"),
            FStoreStatement::ShowFeatureSets => f.write_str("SHOW FEATURE SETS"),
        }
    }
}
