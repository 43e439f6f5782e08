//! `select_features(source, target, method [, k])`: the k features that score best against a
//! target, one row each: `feature, score, rank`.
//!
//! Features are every column of the source except the target (for a feature group: the group's
//! features except the target). Rows are ordered by score, best first — NULL scores (the
//! statistic is undefined, e.g. a constant feature) last — ties by feature name; `rank` is the
//! row's position (1 = best, no shared ranks), and only the first `k` rows are returned (all
//! when `k` is omitted or NULL). Methods:
//!
//! - `mutual_info`: I(feature; target) in nats, for a discrete target (integer, boolean or
//!   string). Discrete features (strings, booleans, other non-numeric types, and integers with
//!   at most [`DISCRETE_MAX_DISTINCT`] distinct values) use the exact plug-in estimate of the
//!   `mutual_info` aggregate; continuous ones (floats, decimals, integers with more distinct
//!   values) the k-NN estimator of scikit-learn's `mutual_info_classif` (see `knn`), which
//!   holds the feature's values in memory (16 bytes a row) and costs O(n log n).
//! - `correlation`: |Pearson's r| with a numeric (or boolean) target; numeric features only;
//!   one streaming pass.
//! - `chi2`: scikit-learn's `chi2`: per feature, Σ over classes of (O − E)² / E, where O is the
//!   sum of the feature's values in the class and E = (rows of the class / rows) · (sum of the
//!   feature); for a categorical target (integer, boolean or string) and numeric features
//!   without negative values (a feature with a negative value is left out). One streaming pass.
//! - `variance`: the population variance (divisor n, as scikit-learn's `VarianceThreshold`) of
//!   each numeric feature; the target is not used (it may be NULL; when given it must exist
//!   and is not scored). One streaming pass.
//!
//! NULLs: rows with a NULL target are skipped (except for `variance`); a NULL feature value
//! skips that row for that feature only.

use std::collections::HashMap;
use std::sync::Arc;

use arrow_schema::{DataType, Field, Schema, SchemaRef};
use datafusion::arrow::array::{
    Array, ArrayRef, Float64Array, Int64Array, RecordBatch, StringArray,
};
use datafusion::arrow::row::{RowConverter, SortField};
use datafusion::catalog::{TableFunctionArgs, TableFunctionImpl, TableProvider};
use datafusion::common::ScalarValue;
use datafusion::error::Result;
use datafusion::logical_expr::Expr;

use super::exec::{Accumulate, Analysis};
use super::moments::{CoMoments, Moments};
use super::mutual_info::MutualInfoScores;
use super::source::{Source, SourceArg};
use super::{Selection, SelectionTable, as_f64, is_numeric};
use crate::args::{at_most, identify_call, literal};
use crate::args::{required_string, string_arg};
use crate::error::FStoreError;
use crate::registry::Registry;

pub const FUNCTION: &str = "select_features";
const METHODS: &str = "mutual_info, correlation, chi2, variance";
/// An integer feature with at most this many distinct values is discrete for `mutual_info`.
pub const DISCRETE_MAX_DISTINCT: usize = 20;

/// How features are scored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    MutualInfo,
    Correlation,
    Chi2,
    Variance,
}

impl Method {
    pub(super) fn parse(text: &str) -> Result<Method> {
        match text.trim().to_ascii_lowercase().as_str() {
            "mutual_info" => Ok(Method::MutualInfo),
            "correlation" => Ok(Method::Correlation),
            "chi2" => Ok(Method::Chi2),
            "variance" => Ok(Method::Variance),
            _ => Err(FStoreError::invalid(format!(
                "{FUNCTION}: unknown method '{text}'; valid methods: {METHODS}"
            ))
            .into()),
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Method::MutualInfo => "mutual_info",
            Method::Correlation => "correlation",
            Method::Chi2 => "chi2",
            Method::Variance => "variance",
        }
    }

    /// Whether the method scores a feature of this type.
    fn scores(self, t: &DataType) -> bool {
        match self {
            Method::MutualInfo => !t.is_nested() && *t != DataType::Null,
            _ => is_numeric(t),
        }
    }

    /// What the method scores, for messages.
    fn wants(self) -> &'static str {
        match self {
            Method::MutualInfo => "features of any non-nested type",
            _ => "numeric features",
        }
    }
}

/// A target the classification methods accept: integers, booleans, strings.
fn is_categorical(t: &DataType) -> bool {
    t.is_integer()
        || matches!(
            t,
            DataType::Boolean | DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View
        )
}

/// The result columns.
pub fn schema() -> Schema {
    Schema::new(vec![
        Field::new("feature", DataType::Utf8, false),
        Field::new("score", DataType::Float64, true),
        Field::new("rank", DataType::Int64, false),
    ])
}

/// `select_features(source, target, method [, k])`
#[derive(Debug)]
pub struct SelectFeatures {
    registry: Arc<Registry>,
}

impl SelectFeatures {
    pub fn new(registry: Arc<Registry>) -> Self {
        Self { registry }
    }
}

/// `k`: a positive integer; None (every feature) when absent or NULL.
fn k_arg(args: &[Expr]) -> Result<Option<usize>> {
    let bad = |got: String| -> datafusion::error::DataFusionError {
        FStoreError::invalid(format!(
            "{FUNCTION}: k must be a positive integer, got {got}"
        ))
        .into()
    };
    let Some(v) = literal(args, 3, FUNCTION, "k")? else {
        return Ok(None);
    };
    if v.is_null() {
        return Ok(None);
    }
    let n: i128 = match v {
        ScalarValue::Int8(Some(n)) => *n as i128,
        ScalarValue::Int16(Some(n)) => *n as i128,
        ScalarValue::Int32(Some(n)) => *n as i128,
        ScalarValue::Int64(Some(n)) => *n as i128,
        ScalarValue::UInt8(Some(n)) => *n as i128,
        ScalarValue::UInt16(Some(n)) => *n as i128,
        ScalarValue::UInt32(Some(n)) => *n as i128,
        ScalarValue::UInt64(Some(n)) => *n as i128,
        other => return Err(bad(format!("{other} ({})", other.data_type()))),
    };
    if n <= 0 {
        return Err(bad(n.to_string()));
    }
    Ok(Some(usize::try_from(n).unwrap_or(usize::MAX)))
}

impl TableFunctionImpl for SelectFeatures {
    fn call_with_args(&self, args: TableFunctionArgs) -> Result<Arc<dyn TableProvider>> {
        let exprs = args.exprs();
        at_most(exprs, 4, FUNCTION, "table, target, method [, k]")?;
        let source = SourceArg::parse(exprs, FUNCTION)?;
        let target = string_arg(exprs, 1, FUNCTION, "target")?;
        let method = Method::parse(&required_string(exprs, 2, FUNCTION, "method")?)?;
        let k = k_arg(exprs)?;
        if target.is_none() && method != Method::Variance {
            return Err(FStoreError::invalid(format!(
                "{FUNCTION}: method '{}' needs a target column (argument 2)",
                method.name()
            ))
            .into());
        }
        Ok(Arc::new(SelectionTable::new(
            identify_call(&schema(), FUNCTION, exprs),
            Arc::clone(&self.registry),
            Arc::new(SelectCall {
                source,
                target,
                method,
                k,
            }),
            exprs,
        )))
    }
}

#[derive(Debug)]
struct SelectCall {
    source: SourceArg,
    target: Option<String>,
    method: Method,
    k: Option<usize>,
}

impl Selection for SelectCall {
    fn function(&self) -> &'static str {
        FUNCTION
    }

    fn source(&self) -> &SourceArg {
        &self.source
    }

    fn label(&self) -> Option<&str> {
        self.target.as_deref()
    }

    fn prepare(&self, source: &Source) -> Result<(Vec<usize>, Arc<dyn Analysis>)> {
        let label = self.source.label();
        let fields = source.plan.schema().fields().clone();
        let target = match &self.target {
            None => None,
            Some(t) => Some(source.column_index(t).ok_or_else(|| {
                FStoreError::invalid(format!(
                    "{FUNCTION}: unknown target column '{t}' in {label} (columns: {}{})",
                    source.column_names(),
                    if source.group.is_some() {
                        "; nor is it a column of the group's source"
                    } else {
                        ""
                    }
                ))
            })?),
        };
        if let Some(t) = target {
            let (name, ty) = (fields[t].name(), fields[t].data_type());
            let fits = match self.method {
                Method::MutualInfo | Method::Chi2 => is_categorical(ty),
                Method::Correlation => is_numeric(ty),
                Method::Variance => true,
            };
            if !fits {
                let wants = match self.method {
                    Method::Correlation => "a numeric target",
                    _ => "a categorical target (integer, boolean or string)",
                };
                return Err(FStoreError::invalid(format!(
                    "{FUNCTION}: {} needs {wants}; '{name}' is {ty}",
                    self.method.name()
                ))
                .into());
            }
        }
        let features: Vec<usize> = source
            .candidates
            .iter()
            .copied()
            .filter(|&i| Some(i) != target && self.method.scores(fields[i].data_type()))
            .collect();
        if features.is_empty() {
            return Err(FStoreError::invalid(format!(
                "{FUNCTION}: no usable features in {label} for {} (it scores {}, other than the target)",
                self.method.name(),
                self.method.wants()
            ))
            .into());
        }
        let analysis = Scoring {
            method: self.method,
            k: self.k,
            label,
            features: features
                .iter()
                .map(|&i| (fields[i].name().clone(), fields[i].data_type().clone()))
                .collect(),
            target: target.map(|t| (fields[t].name().clone(), fields[t].data_type().clone())),
        };
        // The features, then the target (not read by `variance`).
        let mut columns = features;
        if self.method != Method::Variance {
            columns.extend(target);
        }
        Ok((columns, Arc::new(analysis)))
    }
}

/// The analysis: scores of the input's feature columns (the last column is the target, except
/// for `variance`).
#[derive(Debug, Clone)]
pub(super) struct Scoring {
    pub method: Method,
    pub k: Option<usize>,
    /// The source, for messages.
    pub label: String,
    pub features: Vec<(String, DataType)>,
    pub target: Option<(String, DataType)>,
}

impl Scoring {
    fn target_name(&self) -> &str {
        self.target.as_ref().map(|t| t.0.as_str()).unwrap_or("")
    }

    /// Fails unless the target has at least two classes.
    pub(super) fn check_classes(&self, classes: usize) -> Result<()> {
        let target = self.target_name();
        let method = self.method.name();
        match classes {
            0 => Err(FStoreError::invalid(format!(
                "{FUNCTION}: target '{target}' has no non-NULL values; {method} needs at least two classes"
            ))
            .into()),
            1 => Err(FStoreError::invalid(format!(
                "{FUNCTION}: target '{target}' has a single class; {method} needs at least two"
            ))
            .into()),
            _ => Ok(()),
        }
    }
}

impl Analysis for Scoring {
    fn describe(&self) -> String {
        let names: Vec<&str> = self.features.iter().map(|f| f.0.as_str()).collect();
        format!(
            "{FUNCTION}(method={}, target={}, k={}, features=[{}])",
            self.method.name(),
            self.target.as_ref().map(|t| t.0.as_str()).unwrap_or("NULL"),
            self.k
                .map(|k| k.to_string())
                .unwrap_or_else(|| "all".into()),
            names.join(", ")
        )
    }

    fn start(&self) -> Result<Box<dyn Accumulate>> {
        let p = self.features.len();
        let scoring = self.clone();
        Ok(match self.method {
            Method::Variance => Box::new(VarianceScores {
                scoring,
                moments: vec![Moments::default(); p],
            }),
            Method::Correlation => Box::new(CorrelationScores {
                scoring,
                moments: vec![CoMoments::default(); p],
            }),
            Method::Chi2 => {
                let target = self.target_type()?;
                Box::new(Chi2Scores {
                    classes: ClassIndex::try_new(&target)?,
                    sums: vec![Vec::new(); p],
                    counts: vec![Vec::new(); p],
                    negative: vec![false; p],
                    scoring,
                })
            }
            Method::MutualInfo => {
                let target = self.target_type()?;
                Box::new(MutualInfoScores::try_new(
                    scoring,
                    ClassIndex::try_new(&target)?,
                )?)
            }
        })
    }
}

impl Scoring {
    fn target_type(&self) -> Result<DataType> {
        self.target.as_ref().map(|t| t.1.clone()).ok_or_else(|| {
            FStoreError::invalid(format!(
                "{FUNCTION}: method '{}' needs a target column",
                self.method.name()
            ))
            .into()
        })
    }

    /// The result rows: best first, NULL (and NaN) scores last, ties by name; the first k.
    pub(super) fn ranked(
        &self,
        schema: SchemaRef,
        scores: Vec<(String, Option<f64>)>,
    ) -> Result<RecordBatch> {
        let mut scores: Vec<(String, Option<f64>)> = scores
            .into_iter()
            .map(|(name, s)| (name, s.filter(|v| !v.is_nan())))
            .collect();
        scores.sort_by(|a, b| match (a.1, b.1) {
            (Some(x), Some(y)) => y.total_cmp(&x).then_with(|| a.0.cmp(&b.0)),
            (Some(_), None) => std::cmp::Ordering::Less,
            (None, Some(_)) => std::cmp::Ordering::Greater,
            (None, None) => a.0.cmp(&b.0),
        });
        scores.truncate(self.k.unwrap_or(usize::MAX));
        let names = StringArray::from_iter_values(scores.iter().map(|s| s.0.as_str()));
        let values: Float64Array = scores.iter().map(|s| s.1).collect();
        let ranks = Int64Array::from_iter_values(1..=scores.len() as i64);
        Ok(RecordBatch::try_new(
            schema,
            vec![Arc::new(names), Arc::new(values), Arc::new(ranks)],
        )?)
    }

    fn names(&self) -> impl Iterator<Item = String> + '_ {
        self.features.iter().map(|f| f.0.clone())
    }
}

/// Dense ids for the distinct values of a target (any type, compared by value).
pub(super) struct ClassIndex {
    converter: RowConverter,
    ids: HashMap<Box<[u8]>, u32>,
}

impl ClassIndex {
    pub fn try_new(t: &DataType) -> Result<Self> {
        Ok(Self {
            converter: RowConverter::new(vec![SortField::new(t.clone())])?,
            ids: HashMap::new(),
        })
    }

    /// The class of each row (None for a NULL target).
    pub fn classes(&mut self, target: &ArrayRef) -> Result<Vec<Option<u32>>> {
        let rows = self
            .converter
            .convert_columns(std::slice::from_ref(target))?;
        let nulls = target.logical_nulls();
        Ok((0..target.len())
            .map(|i| {
                if nulls.as_ref().is_some_and(|n| n.is_null(i)) {
                    return None;
                }
                let key = rows.row(i);
                if let Some(id) = self.ids.get(key.as_ref()) {
                    return Some(*id);
                }
                let id = self.ids.len() as u32;
                self.ids.insert(key.as_ref().into(), id);
                Some(id)
            })
            .collect())
    }

    pub fn len(&self) -> usize {
        self.ids.len()
    }
}

struct VarianceScores {
    scoring: Scoring,
    moments: Vec<Moments>,
}

impl Accumulate for VarianceScores {
    fn update(&mut self, batch: &RecordBatch) -> Result<usize> {
        for (m, column) in self.moments.iter_mut().zip(batch.columns()) {
            m.merge(&Moments::of(&as_f64(column)?));
        }
        Ok(0)
    }

    fn finish(self: Box<Self>, schema: SchemaRef) -> Result<RecordBatch> {
        let scores = self
            .scoring
            .names()
            .zip(self.moments.iter().map(Moments::population_variance))
            .collect();
        self.scoring.ranked(schema, scores)
    }
}

struct CorrelationScores {
    scoring: Scoring,
    moments: Vec<CoMoments>,
}

impl Accumulate for CorrelationScores {
    fn update(&mut self, batch: &RecordBatch) -> Result<usize> {
        let p = self.moments.len();
        let target = as_f64(batch.column(p))?;
        for (m, column) in self.moments.iter_mut().zip(batch.columns()) {
            m.merge(&CoMoments::of(&as_f64(column)?, &target, None));
        }
        Ok(0)
    }

    fn finish(self: Box<Self>, schema: SchemaRef) -> Result<RecordBatch> {
        let scores = self
            .scoring
            .names()
            .zip(self.moments.iter().map(|m| m.pearson().map(f64::abs)))
            .collect();
        self.scoring.ranked(schema, scores)
    }
}

/// Neumaier's compensated sum: the sum of many values, correct to the last bit or two.
#[derive(Debug, Clone, Copy, Default)]
struct Sum {
    sum: f64,
    compensation: f64,
}

impl Sum {
    fn add(&mut self, x: f64) {
        let t = self.sum + x;
        if self.sum.abs() >= x.abs() {
            self.compensation += (self.sum - t) + x;
        } else {
            self.compensation += (x - t) + self.sum;
        }
        self.sum = t;
    }

    fn value(&self) -> f64 {
        self.sum + self.compensation
    }
}

struct Chi2Scores {
    scoring: Scoring,
    classes: ClassIndex,
    /// Per feature, per class: the sum of the feature's values.
    sums: Vec<Vec<Sum>>,
    /// Per feature, per class: the rows counted.
    counts: Vec<Vec<u64>>,
    /// Per feature: whether a negative value was seen (the feature is then left out).
    negative: Vec<bool>,
}

impl Accumulate for Chi2Scores {
    fn update(&mut self, batch: &RecordBatch) -> Result<usize> {
        let p = self.sums.len();
        let classes = self.classes.classes(batch.column(p))?;
        let k = self.classes.len();
        for f in 0..p {
            let values = as_f64(batch.column(f))?;
            let (sums, counts) = (&mut self.sums[f], &mut self.counts[f]);
            sums.resize(k, Sum::default());
            counts.resize(k, 0);
            for (i, class) in classes.iter().enumerate() {
                let Some(c) = class else { continue };
                if values.is_null(i) {
                    continue;
                }
                let x = values.value(i);
                if x < 0.0 {
                    self.negative[f] = true;
                }
                sums[*c as usize].add(x);
                counts[*c as usize] += 1;
            }
        }
        Ok(0)
    }

    fn finish(self: Box<Self>, schema: SchemaRef) -> Result<RecordBatch> {
        self.scoring.check_classes(self.classes.len())?;
        let mut scores = Vec::new();
        for (f, name) in self.scoring.names().enumerate() {
            if self.negative[f] {
                continue;
            }
            let rows: u64 = self.counts[f].iter().sum();
            let total: f64 = {
                let mut s = Sum::default();
                for c in &self.sums[f] {
                    s.add(c.value());
                }
                s.value()
            };
            let score = (rows > 0 && total != 0.0).then(|| {
                self.counts[f]
                    .iter()
                    .zip(&self.sums[f])
                    .filter(|(n, _)| **n > 0)
                    .map(|(&n, observed)| {
                        let expected = (n as f64 / rows as f64) * total;
                        (observed.value() - expected).powi(2) / expected
                    })
                    .sum::<f64>()
            });
            scores.push((name, score));
        }
        if scores.is_empty() {
            return Err(FStoreError::invalid(format!(
                "{FUNCTION}: no usable features in {} for chi2: every numeric feature has negative values",
                self.scoring.label
            ))
            .into());
        }
        self.scoring.ranked(schema, scores)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scoring(method: Method, k: Option<usize>) -> Scoring {
        Scoring {
            method,
            k,
            label: "'t'".into(),
            features: vec![],
            target: Some(("y".into(), DataType::Int64)),
        }
    }

    #[test]
    fn ranking_puts_nulls_last_and_breaks_ties_by_name() {
        let schema = Arc::new(schema());
        let batch = scoring(Method::Variance, Some(3))
            .ranked(
                schema,
                vec![
                    ("b".into(), Some(1.0)),
                    ("z".into(), None),
                    ("a".into(), Some(1.0)),
                    ("c".into(), Some(2.0)),
                    ("n".into(), Some(f64::NAN)),
                ],
            )
            .unwrap();
        let names = batch
            .column(0)
            .as_any()
            .downcast_ref::<StringArray>()
            .unwrap();
        assert_eq!(
            names.iter().flatten().collect::<Vec<_>>(),
            vec!["c", "a", "b"]
        );
    }

    #[test]
    fn chi2_matches_the_definition() {
        // Feature x = [1, 2, 3, 4], classes [a, a, b, b]: O = (3, 7), E = (5, 5),
        // chi2 = (4 + 4) / 5 = 1.6.
        let mut s = Scoring {
            features: vec![("x".into(), DataType::Float64)],
            ..scoring(Method::Chi2, None)
        };
        s.target = Some(("y".into(), DataType::Utf8));
        let mut acc = s.start().unwrap();
        let schema = Arc::new(Schema::new(vec![
            Field::new("x", DataType::Float64, true),
            Field::new("y", DataType::Utf8, true),
        ]));
        let batch = RecordBatch::try_new(
            schema,
            vec![
                Arc::new(Float64Array::from(vec![1.0, 2.0, 3.0, 4.0])),
                Arc::new(StringArray::from(vec!["a", "a", "b", "b"])),
            ],
        )
        .unwrap();
        acc.update(&batch).unwrap();
        let out = acc.finish(Arc::new(super::schema())).unwrap();
        let score = out
            .column(1)
            .as_any()
            .downcast_ref::<Float64Array>()
            .unwrap();
        assert!((score.value(0) - 1.6).abs() < 1e-15);
    }

    #[test]
    fn compensated_sums_keep_small_addends() {
        let mut s = Sum::default();
        s.add(1e16);
        for _ in 0..10 {
            s.add(1.0);
        }
        s.add(-1e16);
        assert_eq!(s.value(), 10.0);
    }
}
