//! The statement front: FStore's own statements on top of DataFusion's SQL.
//!
//! `parser` recognises FStore statements (`SHOW FEATURE GROUPS`, and the grammar of docs/sql-reference.md as
//! it grows) and hands every other statement to DataFusion's `DFParser`. `exec` runs a parsed
//! statement: DDL that defines things is committed to the registry, everything else is planned
//! and executed by DataFusion unchanged.

mod access;
pub mod asof;
mod audit;
mod authorize;
mod duckdb_spelling;
pub mod exec;
pub mod feature_group;
pub mod feature_set;
pub mod limits;
pub mod lookup;
mod monitor;
pub mod parser;
pub mod quality;
mod relations;
pub mod settings;
pub mod temporary;

use datafusion::sql::parser::Statement as DFStatement;

pub use access::AccessStatement;
pub use authorize::Reads;
pub use exec::{ResultKind, SqlSession, StatementResult};
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
    /// `CREATE [OR REPLACE] FEATURE GROUP …`
    CreateFeatureGroup(Box<crate::features::statements::CreateFeatureGroup>),
    /// `ALTER FEATURE GROUP … ADD TRANSFORMATION …`
    AddTransformation(Box<crate::features::statements::AddTransformation>),
    /// `DROP FEATURE GROUP [IF EXISTS] name`
    DropFeatureGroup { name: String, if_exists: bool },
    /// `DESCRIBE FEATURE GROUP name`
    DescribeFeatureGroup { name: String },
    /// `COMMENT ON FEATURE group.feature IS …`
    CommentOnFeature {
        group: String,
        feature: String,
        comment: Option<String>,
    },
    /// `CREATE FEATURE SET …`
    CreateFeatureSet(Box<crate::features::statements::CreateFeatureSet>),
    /// `DESCRIBE FEATURE SET name [VERSION n]` (as `name` or `name@n`)
    DescribeFeatureSet { reference: String },
    /// `EXPORT FEATURE SET …`
    ExportFeatureSet(Box<crate::features::statements::ExportFeatureSet>),
    /// `CREATE EXPECTATION ON FEATURE …`
    CreateExpectation(Box<crate::quality::statements::CreateExpectation>),
    /// `DROP EXPECTATION [IF EXISTS] ON FEATURE …`
    DropExpectation(Box<crate::quality::statements::DropExpectation>),
    /// `SET DRIFT BASELINE FOR FEATURE SET …`
    SetDriftBaseline(Box<crate::quality::statements::SetDriftBaseline>),
    /// `ALTER FEATURE SET … SET ONLINE (…) | SET OFFLINE`
    AlterFeatureSet(Box<crate::online::statements::AlterFeatureSet>),
    /// `REFRESH ONLINE FEATURE SET name [AS OF '…']`
    RefreshOnline(Box<crate::online::statements::RefreshOnline>),
    /// Users, roles and privileges: `CREATE USER`, `GRANT`, `SHOW GRANTS`, … (passwords
    /// masked in its `Display`).
    Access(Box<access::AccessStatement>),
    /// Alert channels and monitors: `CREATE ALERT CHANNEL`, `CREATE MONITOR`, `RUN MONITOR`,
    /// … (secrets masked in its `Display`).
    Monitor(Box<crate::monitor::statements::MonitorStatement>),
}

impl std::fmt::Display for FStoreStatement {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            FStoreStatement::DataFusion(s) => write!(f, "{s}"),
            FStoreStatement::ShowFeatureGroups => f.write_str("SHOW FEATURE GROUPS"),
            FStoreStatement::ShowFeatureSets => f.write_str("SHOW FEATURE SETS"),
            FStoreStatement::CreateFeatureGroup(c) => write!(f, "CREATE FEATURE GROUP {}", c.name),
            FStoreStatement::AddTransformation(a) => {
                write!(
                    f,
                    "ALTER FEATURE GROUP {} ADD TRANSFORMATION {}",
                    a.group, a.feature
                )
            }
            FStoreStatement::DropFeatureGroup { name, .. } => {
                write!(f, "DROP FEATURE GROUP {name}")
            }
            FStoreStatement::DescribeFeatureGroup { name } => {
                write!(f, "DESCRIBE FEATURE GROUP {name}")
            }
            FStoreStatement::CommentOnFeature { group, feature, .. } => {
                write!(f, "COMMENT ON FEATURE {group}.{feature}")
            }
            FStoreStatement::CreateFeatureSet(c) => write!(f, "CREATE FEATURE SET {}", c.name),
            FStoreStatement::DescribeFeatureSet { reference } => {
                write!(f, "DESCRIBE FEATURE SET {reference}")
            }
            FStoreStatement::ExportFeatureSet(e) => {
                write!(f, "EXPORT FEATURE SET {} TO '{}'", e.reference, e.path)
            }
            FStoreStatement::CreateExpectation(c) => {
                write!(f, "CREATE EXPECTATION ON FEATURE {}", c.feature.join("."))
            }
            FStoreStatement::DropExpectation(d) => {
                write!(f, "DROP EXPECTATION ON FEATURE {}", d.feature.join("."))
            }
            FStoreStatement::SetDriftBaseline(b) => {
                write!(f, "SET DRIFT BASELINE FOR FEATURE SET {}", b.set)
            }
            FStoreStatement::AlterFeatureSet(a) => write!(f, "ALTER FEATURE SET {}", a.name()),
            FStoreStatement::RefreshOnline(r) => {
                write!(f, "REFRESH ONLINE FEATURE SET {}", r.name)
            }
            FStoreStatement::Access(a) => write!(f, "{a}"),
            FStoreStatement::Monitor(m) => write!(f, "{m}"),
        }
    }
}
