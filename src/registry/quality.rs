//! Data-quality definitions as the registry stores them: expectations on features and drift
//! baselines of feature sets (docs/sql-reference.md).
//!
//! An expectation belongs to a feature of a feature group (`group.feature`), not to a feature
//! set: every set that reads the feature is validated against it. A drift baseline belongs
//! to one feature-set version and carries a compact summary of each feature's distribution
//! over the baseline window (see [`BaselineSketch`]), so checking drift never re-reads the
//! baseline data. Numeric summaries live in a Parquet file of the warehouse written before
//! the record is committed; the record holds its path.

use serde::{Deserialize, Serialize};

/// One expectation on a feature.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Expectation {
    /// Every non-NULL value is >= `value` (numeric features).
    MinValue { value: f64 },
    /// Every non-NULL value is <= `value` (numeric features).
    MaxValue { value: f64 },
    /// The fraction of NULL values is <= `value` (between 0 and 1).
    NullPercentage { value: f64 },
    /// Every non-NULL value, as text, is one of `values`.
    AllowedValues { values: Vec<String> },
    /// `true`: no non-NULL value appears twice. (`false` expects nothing.)
    Unique { value: bool },
}

/// The names users write, in the order results list them.
pub const EXPECTATION_NAMES: &[&str] = &[
    "min_value",
    "max_value",
    "null_percentage",
    "allowed_values",
    "unique",
];

impl Expectation {
    pub fn name(&self) -> &'static str {
        match self {
            Expectation::MinValue { .. } => "min_value",
            Expectation::MaxValue { .. } => "max_value",
            Expectation::NullPercentage { .. } => "null_percentage",
            Expectation::AllowedValues { .. } => "allowed_values",
            Expectation::Unique { .. } => "unique",
        }
    }

    /// Whether it needs a numeric feature.
    pub fn needs_numeric(&self) -> bool {
        matches!(
            self,
            Expectation::MinValue { .. } | Expectation::MaxValue { .. }
        )
    }

    /// What is expected, as shown by `validate` and `fstore.expectations`.
    pub fn expected_text(&self) -> String {
        match self {
            Expectation::MinValue { value } => format!(">= {value}"),
            Expectation::MaxValue { value } => format!("<= {value}"),
            Expectation::NullPercentage { value } => format!("<= {value}"),
            Expectation::AllowedValues { values } => format!(
                "in ({})",
                values
                    .iter()
                    .map(|v| format!("'{}'", v.replace('\'', "''")))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            Expectation::Unique { value } => format!("unique = {value}"),
        }
    }
}

/// The expectations of one feature.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct FeatureExpectations {
    pub group: String,
    pub feature: String,
    /// One per name, in the order of [`EXPECTATION_NAMES`].
    pub expectations: Vec<Expectation>,
}

impl FeatureExpectations {
    /// Adds or replaces expectations by name, keeping the canonical order.
    pub fn merge(&mut self, new: &[Expectation]) {
        for e in new {
            self.expectations.retain(|x| x.name() != e.name());
            self.expectations.push(e.clone());
        }
        self.expectations.sort_by_key(|e| {
            EXPECTATION_NAMES
                .iter()
                .position(|n| *n == e.name())
                .unwrap_or(usize::MAX)
        });
    }
}

/// A drift baseline of one feature-set version.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct DriftBaseline {
    pub set: String,
    pub version: u64,
    /// The window as written (`FROM '2024-01-01' TO '2024-01-31'`).
    pub from: String,
    pub to: String,
    /// The window as applied to the groups' TIMESTAMP columns: [start, end), microseconds
    /// since the epoch (UTC).
    pub start_micros: i64,
    pub end_micros: i64,
    pub features: Vec<BaselineFeature>,
}

/// One feature's summary in a baseline.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct BaselineFeature {
    pub group: String,
    pub feature: String,
    /// Rows of the group in the window (NULLs included).
    pub rows: u64,
    /// NULL values among them.
    pub nulls: u64,
    pub sketch: BaselineSketch,
}

/// The distribution of a feature's non-NULL values in the baseline window.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum BaselineSketch {
    /// Numeric: every distinct value (as Float64) with its exact count, sorted, in a Parquet
    /// file `(value DOUBLE, count BIGINT)` at `path` (relative to the warehouse root). This is
    /// exact — KS, PSI and Wasserstein computed from it equal those on the raw baseline — and
    /// its size is the number of distinct values, not of rows.
    Numeric { path: String, distinct: u64 },
    /// Categorical (anything else, compared as text): the count of every category.
    Categorical { counts: Vec<(String, u64)> },
}

/// Checks expectations against the feature's type: min/max need a numeric feature,
/// null_percentage is a fraction, min_value is not above max_value.
pub fn check_expectations(
    group: &super::FeatureGroup,
    feature: &str,
    expectations: &[Expectation],
) -> Result<(), crate::error::FStoreError> {
    use crate::error::FStoreError;
    let data_type = group
        .schema
        .field_with_name(feature)
        .map(|f| f.data_type().clone())
        .map_err(|_| {
            FStoreError::not_found(format!(
                "feature '{feature}' not found in feature group '{}'",
                group.name
            ))
        })?;
    let (mut min, mut max) = (None, None);
    for e in expectations {
        if e.needs_numeric() && !data_type.is_numeric() {
            return Err(FStoreError::invalid(format!(
                "{} needs a numeric feature; '{}.{feature}' is {data_type}",
                e.name(),
                group.name
            )));
        }
        match e {
            Expectation::NullPercentage { value } if !(0.0..=1.0).contains(value) => {
                return Err(FStoreError::invalid(format!(
                    "null_percentage must be between 0 and 1, got {value}"
                )));
            }
            Expectation::MinValue { value } => min = Some(*value),
            Expectation::MaxValue { value } => max = Some(*value),
            Expectation::AllowedValues { values } if values.is_empty() => {
                return Err(FStoreError::invalid(
                    "allowed_values needs at least one value",
                ));
            }
            _ => {}
        }
    }
    if let (Some(lo), Some(hi)) = (min, max)
        && lo > hi
    {
        return Err(FStoreError::invalid(format!(
            "min_value ({lo}) is greater than max_value ({hi})"
        )));
    }
    Ok(())
}
