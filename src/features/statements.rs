//! The feature-group and feature-set statements, as the SQL front parses them and this area
//! executes them. Parsing lives in `sql` (it produces these values); what they mean (columns
//! exist, types fit) is checked here, in `features`.

use std::collections::BTreeMap;

use datafusion::sql::sqlparser::ast::{Expr, Value};

/// `CREATE FEATURE GROUP`.
#[derive(Debug, Clone, PartialEq)]
pub struct CreateFeatureGroup {
    pub name: String,
    pub or_replace: bool,
    pub if_not_exists: bool,
    pub entity: Vec<String>,
    pub timestamp: String,
    pub created: Option<String>,
    pub source: SourceClause,
    /// The FEATURES list; None for the general form (every column of the query that is not
    /// an entity key, the timestamp or CREATED is a feature).
    pub features: Option<Vec<FeatureClause>>,
    pub options: GroupOptions,
}

/// Where the events come from.
#[derive(Debug, Clone, PartialEq)]
pub enum SourceClause {
    Relation(String),
    Query(String),
}

/// One entry of FEATURES (…).
#[derive(Debug, Clone, PartialEq)]
pub struct FeatureClause {
    pub name: String,
    pub definition: FeatureDefinition,
}

#[derive(Debug, Clone, PartialEq)]
pub enum FeatureDefinition {
    /// `column`
    Column,
    /// `name = expr`
    Expression(String),
    /// `name = agg(expr) WINDOW 'duration'`; `input` is None for `count(*)`.
    Window {
        agg: String,
        input: Option<String>,
        window: String,
    },
}

/// TTL, DESCRIPTION, TAGS, OWNER.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct GroupOptions {
    pub ttl: Option<String>,
    pub description: Option<String>,
    pub tags: Vec<String>,
    pub owner: Option<String>,
}

/// `ALTER FEATURE GROUP g ADD TRANSFORMATION f USING encoder(args) [AS output]`.
#[derive(Debug, Clone, PartialEq)]
pub struct AddTransformation {
    pub group: String,
    pub feature: String,
    pub encoder: String,
    /// `(name, value)` pairs; positional arguments have no name.
    pub args: Vec<(Option<String>, Expr)>,
    pub output: Option<String>,
}

/// Reads a literal number or string argument.
pub fn literal_text(e: &Expr) -> Option<String> {
    match e {
        Expr::Value(v) => match &v.value {
            Value::Number(n, _) => Some(n.clone()),
            Value::SingleQuotedString(s) => Some(s.clone()),
            _ => None,
        },
        Expr::UnaryOp { op, expr } if op.to_string() == "-" => {
            literal_text(expr).map(|t| format!("-{t}"))
        }
        Expr::Identifier(i) => Some(i.value.to_ascii_lowercase()),
        _ => None,
    }
}

/// `CREATE FEATURE SET`.
#[derive(Debug, Clone, PartialEq)]
pub struct CreateFeatureSet {
    pub name: String,
    pub features: FeatureList,
    pub metadata: BTreeMap<String, String>,
    pub tags: Vec<String>,
    pub description: Option<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum FeatureList {
    /// `(group, feature)`; feature `*` means every feature of the group.
    Listed(Vec<(String, String)>),
    /// `FEATURES FROM (query)`
    Query(String),
}

/// `EXPORT FEATURE SET name [VERSION n] TO 'path' [FORMAT parquet]
/// [FOR ENTITIES 'table' TIMESTAMP 'column']`
#[derive(Debug, Clone, PartialEq)]
pub struct ExportFeatureSet {
    /// `name` or `name@n`.
    pub reference: String,
    pub path: String,
    /// The entity table (name or query) and its timestamp column: export a training set.
    pub entities: Option<(String, String)>,
}
