//! Feature group definitions as the registry stores them.
//!
//! A feature group names a source (a table, a view or a query), its entity key columns, its
//! event-time column (and optionally a CREATED column that breaks ties between events at the
//! same time), and its features: plain columns, per-row expressions, and windowed aggregates
//! over the entity's events. Fitted transformations (encoders, scalers) are stored with their
//! fitted parameters so offline and online values come from the same numbers.
//!
//! Everything here is plain data (strings, numbers, an Arrow schema) so the log stays
//! readable and versions of FStore can read each other's records.

use arrow_schema::Schema;
use serde::{Deserialize, Serialize};

/// A feature group definition.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct FeatureGroup {
    pub name: String,
    /// Entity key columns (one or more).
    pub entity: Vec<String>,
    /// Event-time column.
    pub timestamp: String,
    /// Optional correction / ingestion time: breaks ties between events at the same time.
    #[serde(default)]
    pub created: Option<String>,
    pub source: FeatureSource,
    pub features: Vec<Feature>,
    #[serde(default)]
    pub transformations: Vec<Transformation>,
    /// How stale a matched value may be in a training set or online (e.g. `90 days`).
    #[serde(default)]
    pub ttl: Option<WindowLength>,
    #[serde(default)]
    pub description: Option<String>,
    #[serde(default)]
    pub tags: Vec<String>,
    #[serde(default)]
    pub owner: Option<String>,
    /// Output schema: entity keys, timestamp, created (if any), features, transformations.
    pub schema: Schema,
}

impl FeatureGroup {
    /// Every output column that is a feature (features, then transformations), in order.
    pub fn feature_names(&self) -> Vec<&str> {
        self.features
            .iter()
            .map(|f| f.name.as_str())
            .chain(self.transformations.iter().map(|t| t.output.as_str()))
            .collect()
    }

    pub fn feature(&self, name: &str) -> Option<&Feature> {
        self.features.iter().find(|f| f.name == name)
    }

    /// The longest window of the group (zero when it has none).
    pub fn max_window_micros(&self) -> i64 {
        self.features
            .iter()
            .filter_map(|f| match &f.kind {
                FeatureKind::Window { window, .. } => Some(window.micros),
                _ => None,
            })
            .max()
            .unwrap_or(0)
    }
}

/// Where a feature group reads its events.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum FeatureSource {
    /// `FROM table_or_view`
    Relation { name: String },
    /// `FROM (SELECT …)` or the general form `AS SELECT …`
    Query { sql: String },
}

impl FeatureSource {
    /// The source as a SQL relation, for `FROM`.
    pub fn as_from(&self) -> String {
        match self {
            FeatureSource::Relation { name } => quote_ident(name),
            FeatureSource::Query { sql } => format!("({sql}) AS __source"),
        }
    }

    /// The relations the source reads, by name, for lineage and dependency ordering
    /// (for a query: its text is planned, so the names are resolved there).
    pub fn relation(&self) -> Option<&str> {
        match self {
            FeatureSource::Relation { name } => Some(name),
            FeatureSource::Query { .. } => None,
        }
    }
}

/// A window length as written and in microseconds.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct WindowLength {
    /// As written (`'30 days'`).
    pub text: String,
    pub micros: i64,
}

/// One feature.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Feature {
    pub name: String,
    pub kind: FeatureKind,
    #[serde(default)]
    pub description: Option<String>,
}

/// How a feature is computed.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum FeatureKind {
    /// A column of the source, as is.
    Column { column: String },
    /// A per-row SQL expression over the source's columns.
    Expression { sql: String },
    /// An aggregate over the entity's events in the window (t − window, t].
    Window {
        /// `mean`, `sum`, `count`, `count_star`, `min`, `max`, `stddev`, `count_distinct`, `last`.
        agg: String,
        /// The aggregated expression (SQL); None for `count(*)`.
        input: Option<String>,
        window: WindowLength,
    },
}

impl FeatureKind {
    /// The definition as SQL (for DESCRIBE and `fstore.features`).
    pub fn to_sql(&self) -> String {
        match self {
            FeatureKind::Column { column } => column.clone(),
            FeatureKind::Expression { sql } => sql.clone(),
            FeatureKind::Window { agg, input, window } => match (agg.as_str(), input) {
                ("count_star", _) => format!("count(*) WINDOW '{}'", window.text),
                ("count_distinct", Some(i)) => {
                    format!("count(DISTINCT {i}) WINDOW '{}'", window.text)
                }
                (a, Some(i)) => format!("{a}({i}) WINDOW '{}'", window.text),
                (a, None) => format!("{a}() WINDOW '{}'", window.text),
            },
        }
    }
}

/// A fitted transformation of a feature, adding one output column.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Transformation {
    /// The feature it reads.
    pub feature: String,
    /// The column it adds.
    pub output: String,
    pub encoder: Encoder,
}

/// Encoders and scalers with their fitted parameters.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Encoder {
    /// Smoothed target mean of the category, point-in-time: a row at t uses only labels
    /// observed before t (its fitted state is its definition: target and smoothing).
    TargetEncoding { target: String, smoothing: f64 },
    /// One indicator per fitted category.
    OneHot { categories: Vec<String> },
    /// The position of the value among the fitted categories.
    Label { categories: Vec<String> },
    /// The fitted frequency of each category.
    Frequency {
        categories: Vec<String>,
        frequencies: Vec<f64>,
    },
    /// A stable hash of the value into `buckets` buckets.
    Hash { buckets: i64 },
    /// `(x − mean) / std` with the fitted mean and standard deviation.
    Standard { mean: f64, std: f64 },
    /// `(x − min) / (max − min)` with the fitted range.
    MinMax { min: f64, max: f64 },
}

impl Encoder {
    pub fn name(&self) -> &'static str {
        match self {
            Encoder::TargetEncoding { .. } => "target_encoding",
            Encoder::OneHot { .. } => "one_hot",
            Encoder::Label { .. } => "label",
            Encoder::Frequency { .. } => "frequency",
            Encoder::Hash { .. } => "hash",
            Encoder::Standard { .. } => "standard",
            Encoder::MinMax { .. } => "min_max",
        }
    }
}

/// Quotes an identifier for generated SQL.
pub fn quote_ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}
