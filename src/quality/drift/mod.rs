//! Drift: `SET DRIFT BASELINE FOR FEATURE SET fs FROM 'start' TO 'end'` and
//! `check_drift(feature_set, current [, method [, threshold]])`.
//!
//! **Baseline.** The window is [start, end) on each group's TIMESTAMP column; an `end`
//! written as a bare date (`'2024-01-31'`) includes that whole day, so `FROM '2024-01-01' TO
//! '2024-01-31'` is January. For every feature of the set version the statement stores:
//! - numeric features: every distinct value (as Float64) with its exact count, sorted, in a
//!   Parquet file of the warehouse (`baselines/…`), written and made durable before the
//!   registry record that names it. The summary is *exact*: KS, PSI and Wasserstein computed
//!   from it are those of the raw baseline values (no approximation), and its size is the
//!   number of distinct values (at most the number of rows, far fewer for prices, counts,
//!   rounded amounts). Checks read this file, never the baseline window again.
//! - other features: the count of every category (as text), in the registry record.
//!
//! Rows and NULLs per feature are recorded too. A window with no rows of some group is an
//! error. Re-setting a baseline replaces it.
//!
//! **Check.** `current` is a table, view or feature group name, or a query text (an argument
//! with whitespace), holding the set's features as columns named by the feature (or
//! `group__feature`, as `training_set` names clashing features). To check a time range of
//! the groups themselves, pass a query: `'SELECT * FROM customer_behavior WHERE
//! transaction_date >= ''2024-03-01'''`. The current data is read once.
//!
//! Methods (one row per feature: feature, method, statistic, p_value, threshold, drifted,
//! note):
//! - `ks_test` (numeric features; default threshold 0.05): SciPy's two-sample KS test
//!   (`ks_2samp`, two-sided, method 'auto': exact p-values when both samples have at most
//!   10,000 values), by `fstore_udfs::stats::kolmogorov` — the code behind `ks_statistic`
//!   and `ks_pvalue`. drifted = p_value < threshold.
//! - `psi` (numeric; default 0.2): the population stability index of the current values
//!   against the baseline, by `fstore_udfs::stats::psi` (the `psi` aggregate's definition:
//!   10 baseline-quantile bins, empty bins at 1e-4). drifted = statistic > threshold.
//! - `wasserstein` (numeric; threshold required, in the feature's unit): the 1-Wasserstein
//!   (earth mover's) distance between the two empirical distributions, as
//!   `scipy.stats.wasserstein_distance`. drifted = statistic > threshold.
//! - `chi2` (every feature; default 0.05): Pearson's chi-square test of homogeneity of the
//!   2 × k table (baseline, current) × categories, no continuity correction
//!   (`scipy.stats.chi2_contingency(…, correction=False)`), p-value from the chi-square
//!   distribution with k − 1 degrees of freedom. drifted = p_value < threshold. A numeric
//!   feature's categories are bins: the baseline's deciles, PSI's bins (equal edges merged).
//!
//! A categorical feature under a numeric method is reported, not dropped: a row with NULL
//! statistic and `note` = why (`skipped: categorical feature; ks_test compares numeric
//! values (use chi2)`). `note` also says how chi2 binned a numeric feature.
//!
//! NULLs are missing values (not compared). A feature with no current value gets NULL
//! statistic, p_value and drifted; a NaN in either sample makes the statistic NaN (as in
//! SciPy) and drifted NULL.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use arrow_schema::{DataType, Field, Schema, SchemaRef};
use async_trait::async_trait;
use datafusion::arrow::array::{
    Array, AsArray, BooleanArray, Float64Array, RecordBatch, StringArray, UInt64Array,
};
use datafusion::arrow::datatypes::{Float64Type, Int64Type};
use datafusion::catalog::{Session, TableFunctionArgs, TableFunctionImpl, TableProvider};
use datafusion::common::ScalarValue;
use datafusion::error::Result;
use datafusion::execution::context::SessionState;
use datafusion::functions_aggregate::expr_fn::count;
use datafusion::logical_expr::{
    Expr, LogicalPlan, LogicalPlanBuilder, SortExpr, TableType, cast, lit,
};
use datafusion::physical_plan::ExecutionPlan;
use datafusion::prelude::{ParquetReadOptions, SessionContext};
use statrs::distribution::{ChiSquared, ContinuousCDF};

use crate::args::{at_most, identify_call, literal};
use crate::args::{required_string, string_arg};
use crate::error::{ErrorKind, FStoreError, invalid};
use crate::providers::system::SystemTable;
use crate::quality::statements::SetDriftBaseline;
use crate::registry::{
    BaselineFeature, BaselineSketch, DriftBaseline, FeatureSetVersion, Registry, RegistryState,
};
use crate::selection::exec::{Accumulate, Analysis, SelectionExec};
use crate::selection::source::{self, SourceArg};

pub const FUNCTION: &str = "check_drift";
mod baselines_table;
mod stats;
#[cfg(test)]
mod tests;

pub use baselines_table::DriftBaselinesTable;
use stats::*;
pub use stats::{drift_statistic, load_reference};

const STATEMENT: &str = "SET DRIFT BASELINE";

/// The end of the window: a bare date includes its whole day.
fn window_end(to: &str) -> Result<String> {
    match chrono::NaiveDate::parse_from_str(to.trim(), "%Y-%m-%d") {
        Ok(d) => Ok(d
            .succ_opt()
            .ok_or_else(|| invalid(format!("{STATEMENT}: TO '{to}' is out of range")))?
            .format("%Y-%m-%d")
            .to_string()),
        Err(_) => Ok(to.to_string()),
    }
}

fn micros_of(text: &str, what: &str) -> Result<i64> {
    match ScalarValue::Utf8(Some(text.to_string())).cast_to(&DataType::Timestamp(
        arrow_schema::TimeUnit::Microsecond,
        None,
    )) {
        Ok(ScalarValue::TimestampMicrosecond(Some(v), _)) => Ok(v),
        _ => Err(invalid(format!(
            "{STATEMENT}: {what} '{text}' is not a date or timestamp (write e.g. '2024-01-01' or '2024-01-01T12:00:00')"
        ))),
    }
}

fn is_numeric(t: &DataType) -> bool {
    t.is_numeric()
}

/// Computes a baseline: one aggregate per group for rows and NULLs, one grouped count per
/// feature (written to the warehouse for numeric features). `write` writes a plan's rows as
/// a durable Parquet file under a directory and returns its path.
pub async fn compute_baseline<W, Fut>(
    stmt: &SetDriftBaseline,
    set: &FeatureSetVersion,
    state: &SessionState,
    mut write: W,
) -> Result<DriftBaseline>
where
    W: FnMut(String, LogicalPlan) -> Fut,
    Fut: std::future::Future<Output = Result<(String, u64)>>,
{
    let end = window_end(&stmt.to)?;
    let (start_micros, end_micros) = (micros_of(&stmt.from, "FROM")?, micros_of(&end, "TO")?);
    if start_micros >= end_micros {
        return Err(invalid(format!(
            "{STATEMENT}: the window FROM '{}' TO '{}' is empty (FROM must be before TO)",
            stmt.from, stmt.to
        )));
    }
    let dir = format!(
        "baselines/{}-v{}-{}",
        set.name,
        set.version,
        &uuid::Uuid::new_v4().simple().to_string()[..8]
    );
    let mut features = Vec::new();
    for (group, pinned) in &set.groups {
        let names: Vec<&str> = set
            .features
            .iter()
            .filter(|f| &f.group == group)
            .map(|f| f.feature.as_str())
            .collect();
        let rows =
            super::group_rows(&pinned.def, state, STATEMENT, Some(&stmt.from), Some(&end)).await?;
        // Rows and non-NULL counts of every feature, in one pass.
        let mut aggs = vec![count(lit(1i64)).alias("__rows")];
        for (i, n) in names.iter().enumerate() {
            aggs.push(count(crate::features::feature_col(n)).alias(format!("__nonnull{i}")));
        }
        let counts = LogicalPlanBuilder::from(rows.clone())
            .aggregate(Vec::<Expr>::new(), aggs)?
            .build()?;
        let batches = datafusion::dataframe::DataFrame::new(state.clone(), counts)
            .collect()
            .await?;
        let batch = batches
            .iter()
            .find(|b| b.num_rows() > 0)
            .ok_or_else(|| FStoreError::new(ErrorKind::Internal, "no aggregate row"))?;
        let int = |i: usize| -> u64 {
            batch.column(i).as_primitive::<Int64Type>().value(0).max(0) as u64
        };
        let total = int(0);
        if total == 0 {
            return Err(FStoreError::invalid(format!(
                "{STATEMENT}: feature group '{group}' has no rows with {} in [{}, {}) — the baseline window FROM '{}' TO '{}' is empty",
                pinned.def.timestamp, stmt.from, end, stmt.from, stmt.to
            ))
            .into());
        }
        for (i, name) in names.iter().enumerate() {
            let nonnull = int(i + 1);
            let x = crate::features::feature_col(name);
            let data_type = rows
                .schema()
                .field_with_unqualified_name(name)?
                .data_type()
                .clone();
            let numeric = is_numeric(&data_type);
            let value = if numeric {
                cast(x.clone(), DataType::Float64)
            } else {
                cast(x.clone(), DataType::Utf8)
            };
            let distribution = LogicalPlanBuilder::from(rows.clone())
                .filter(x.is_not_null())?
                .aggregate(
                    vec![value.alias("value")],
                    vec![count(lit(1i64)).alias("count")],
                )?
                .sort(vec![SortExpr::new(
                    crate::features::feature_col("value"),
                    true,
                    false,
                )])?
                .build()?;
            let sketch = if numeric {
                let (path, distinct) = write(dir.clone(), distribution).await?;
                BaselineSketch::Numeric { path, distinct }
            } else {
                let batches = datafusion::dataframe::DataFrame::new(state.clone(), distribution)
                    .collect()
                    .await?;
                let mut counts = Vec::new();
                for b in &batches {
                    let v = datafusion::arrow::compute::cast(b.column(0), &DataType::Utf8)?;
                    let v = v.as_string::<i32>();
                    let c = b.column(1).as_primitive::<Int64Type>();
                    for r in 0..b.num_rows() {
                        counts.push((v.value(r).to_string(), c.value(r) as u64));
                    }
                }
                counts.sort();
                BaselineSketch::Categorical { counts }
            };
            features.push(BaselineFeature {
                group: group.clone(),
                feature: name.to_string(),
                rows: total,
                nulls: total - nonnull,
                sketch,
            });
        }
    }
    // The set's feature order.
    features.sort_by_key(|f| {
        set.features
            .iter()
            .position(|r| r.group == f.group && r.feature == f.feature)
    });
    Ok(DriftBaseline {
        set: set.name.clone(),
        version: set.version,
        from: stmt.from.clone(),
        to: stmt.to.clone(),
        start_micros,
        end_micros,
        features,
    })
}

/// The `(value, count)` pairs of a numeric baseline file (at `url`), sorted by value.
async fn read_values(state: &SessionState, url: &str) -> Result<Vec<(f64, u64)>> {
    let ctx = SessionContext::new_with_state(state.clone());
    let batches = ctx
        .read_parquet(url, ParquetReadOptions::default())
        .await?
        .collect()
        .await?;
    let mut out = Vec::new();
    for b in &batches {
        let v = b.column(0).as_primitive::<Float64Type>();
        let c = b.column(1).as_primitive::<Int64Type>();
        for r in 0..b.num_rows() {
            out.push((v.value(r), c.value(r) as u64));
        }
    }
    out.sort_by(|a, b| a.0.total_cmp(&b.0));
    Ok(out)
}

/// A drift method.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) enum Method {
    Ks,
    Psi,
    Chi2,
    Wasserstein,
}

impl Method {
    pub(super) fn parse(s: &str) -> Result<Method> {
        Ok(match s.to_ascii_lowercase().as_str() {
            "ks_test" | "ks" => Method::Ks,
            "psi" => Method::Psi,
            "chi2" => Method::Chi2,
            "wasserstein" => Method::Wasserstein,
            _ => {
                return Err(invalid(format!(
                    "{FUNCTION}: unknown method '{s}'; methods: ks_test, psi, chi2, wasserstein"
                )));
            }
        })
    }

    pub(super) fn name(&self) -> &'static str {
        match self {
            Method::Ks => "ks_test",
            Method::Psi => "psi",
            Method::Chi2 => "chi2",
            Method::Wasserstein => "wasserstein",
        }
    }

    fn default_threshold(&self) -> Option<f64> {
        match self {
            Method::Ks | Method::Chi2 => Some(0.05),
            Method::Psi => Some(0.2),
            Method::Wasserstein => None,
        }
    }

    /// Whether a small p-value (rather than a large statistic) means drift.
    fn by_p_value(&self) -> bool {
        matches!(self, Method::Ks | Method::Chi2)
    }
}

fn output_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("feature", DataType::Utf8, false),
        Field::new("method", DataType::Utf8, false),
        Field::new("statistic", DataType::Float64, true),
        Field::new("p_value", DataType::Float64, true),
        Field::new("threshold", DataType::Float64, false),
        Field::new("drifted", DataType::Boolean, true),
        // How the feature was compared, or why it was not.
        Field::new("note", DataType::Utf8, true),
    ]))
}

/// `check_drift(feature_set, current [, method [, threshold]])`.
#[derive(Debug)]
pub struct CheckDrift {
    pub registry: Arc<Registry>,
}

impl TableFunctionImpl for CheckDrift {
    fn call_with_args(&self, args: TableFunctionArgs) -> Result<Arc<dyn TableProvider>> {
        let f = FUNCTION;
        let exprs = args.exprs();
        at_most(exprs, 4, f, "feature_set, current [, method [, threshold]]")?;
        let reference = required_string(exprs, 0, f, "feature_set")?;
        let current = required_string(exprs, 1, f, "current")?;
        let current = match current.trim() {
            "" => {
                return Err(invalid(format!(
                    "{f}: argument 2 (current) is empty; give a table, view or feature group name, or a query"
                )));
            }
            t if t.contains(char::is_whitespace) => SourceArg::Query(t.to_string()),
            t => SourceArg::Relation(t.to_string()),
        };
        let method =
            Method::parse(&string_arg(exprs, 2, f, "method")?.unwrap_or("ks_test".into()))?;
        let threshold = match literal(exprs, 3, f, "threshold")? {
            Some(v) if !v.is_null() => match v.cast_to(&DataType::Float64) {
                Ok(ScalarValue::Float64(Some(x))) if x.is_finite() && x >= 0.0 => x,
                _ => {
                    return Err(invalid(format!(
                        "{f}: argument 4 (threshold) must be a non-negative number, got {v}"
                    )));
                }
            },
            _ => method.default_threshold().ok_or_else(|| {
                invalid(format!(
                    "{f}: method '{}' needs a threshold (argument 4), in the feature's unit",
                    method.name()
                ))
            })?,
        };
        let state = self.registry.state();
        let baseline = baseline_of(&state, &reference)?;
        let features: Vec<BaselineFeature> = baseline.features.clone();
        if !features
            .iter()
            .any(|b| method == Method::Chi2 || matches!(b.sketch, BaselineSketch::Numeric { .. }))
        {
            return Err(invalid(format!(
                "{f}: feature set '{}' has no numeric feature for method '{}' (use chi2 for categorical features)",
                baseline.set,
                method.name()
            )));
        }
        Ok(Arc::new(DriftTable {
            schema: identify_call(&output_schema(), f, exprs),
            args: exprs.to_vec(),
            registry: Arc::clone(&self.registry),
            current,
            method,
            threshold,
            features,
        }))
    }
}

/// The baseline of a set reference (`name` = latest version, `name@v`).
fn baseline_of<'a>(state: &'a RegistryState, reference: &str) -> Result<&'a DriftBaseline> {
    let set = state
        .feature_set(reference)
        .map_err(|e| FStoreError::new(e.kind, format!("{FUNCTION}: {}", e.message)))?;
    state
        .baselines
        .get(&format!("{}@{}", set.name, set.version))
        .ok_or_else(|| {
            FStoreError::not_found(format!(
                "{FUNCTION}: feature set '{}' version {} has no drift baseline (SET DRIFT BASELINE FOR FEATURE SET {} FROM '…' TO '…')",
                set.name, set.version, set.name
            ))
            .into()
        })
}

#[derive(Debug)]
pub(super) struct DriftTable {
    schema: SchemaRef,
    /// The call's arguments (what the codec carries).
    pub(super) args: Vec<Expr>,
    registry: Arc<Registry>,
    current: SourceArg,
    method: Method,
    threshold: f64,
    features: Vec<BaselineFeature>,
}

/// What a feature is compared with.
#[derive(Debug)]
pub enum Reference {
    /// Sorted (value, count).
    Numeric(Vec<(f64, u64)>),
    Categorical(Vec<(String, u64)>),
    /// Not compared by this method, and why.
    Skipped(String),
}

#[async_trait]
impl TableProvider for DriftTable {
    fn schema(&self) -> SchemaRef {
        Arc::clone(&self.schema)
    }

    fn table_type(&self) -> TableType {
        TableType::Temporary
    }

    async fn scan(
        &self,
        session: &dyn Session,
        projection: Option<&Vec<usize>>,
        _filters: &[Expr],
        _limit: Option<usize>,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        let f = FUNCTION;
        let state = crate::features::training::session_state(session, f)?;
        let src = source::resolve(&self.current, state, &self.registry, f).await?;
        let schema = src.plan.schema().clone();
        let mut select = Vec::new();
        let mut checks = Vec::new();
        for b in &self.features {
            // `group__feature` first: training_set's name for a feature whose name clashes.
            let feature = format!("{}.{}", b.group, b.feature);
            if matches!(b.sketch, BaselineSketch::Categorical { .. }) && self.method != Method::Chi2
            {
                // Reported, not dropped: the method does not apply to categories.
                select.push(lit(ScalarValue::Utf8(None)).alias(format!("__c{}", checks.len())));
                checks.push(Check {
                    feature,
                    reference: Reference::Skipped(format!(
                        "skipped: categorical feature; {} compares numeric values (use chi2)",
                        self.method.name()
                    )),
                });
                continue;
            }
            let candidates = [format!("{}__{}", b.group, b.feature), b.feature.clone()];
            let Some(i) = candidates.iter().find_map(|c| src.column_index(c)) else {
                return Err(invalid(format!(
                    "{f}: {} has no column '{}' (feature {}.{}); its columns: {}",
                    self.current.label(),
                    b.feature,
                    b.group,
                    b.feature,
                    src.column_names()
                )));
            };
            let column = Expr::Column(datafusion::common::Column::from(schema.qualified_field(i)));
            let (expr, reference) = match &b.sketch {
                BaselineSketch::Numeric { path, .. } => {
                    let url = self.registry.warehouse().url_of(path);
                    let values = read_values(state, &url).await?;
                    if !is_numeric(schema.field(i).data_type()) {
                        return Err(invalid(format!(
                            "{f}: column '{}' of {} is {}, but feature {}.{} is numeric",
                            schema.field(i).name(),
                            self.current.label(),
                            schema.field(i).data_type(),
                            b.group,
                            b.feature
                        )));
                    }
                    (cast(column, DataType::Float64), Reference::Numeric(values))
                }
                BaselineSketch::Categorical { counts } => (
                    cast(column, DataType::Utf8),
                    Reference::Categorical(counts.clone()),
                ),
            };
            select.push(expr.alias(format!("__c{}", checks.len())));
            checks.push(Check { feature, reference });
        }
        let plan = LogicalPlanBuilder::from(src.plan)
            .project(select)?
            .build()?;
        let input = state.create_physical_plan(&plan).await?;
        Ok(Arc::new(SelectionExec::try_new(
            input,
            Arc::new(Drift {
                method: self.method,
                threshold: self.threshold,
                checks: Arc::new(checks),
            }),
            Arc::clone(&self.schema),
            projection.cloned(),
        )?))
    }
}

#[derive(Debug)]
pub(super) struct Check {
    pub(super) feature: String,
    pub(super) reference: Reference,
}

#[derive(Debug)]
pub(super) struct Drift {
    pub(super) method: Method,
    pub(super) threshold: f64,
    pub(super) checks: Arc<Vec<Check>>,
}

impl Analysis for Drift {
    fn describe(&self) -> String {
        let skipped = self
            .checks
            .iter()
            .filter(|c| matches!(c.reference, Reference::Skipped(_)))
            .count();
        let compared = self.checks.len() - skipped;
        let method = self.method.name();
        match skipped {
            0 => {
                format!("check_drift: {method} of {compared} features against the stored baseline")
            }
            n => format!(
                "check_drift: {method} of {compared} features, {n} skipped, against the stored baseline"
            ),
        }
    }

    fn start(&self) -> Result<Box<dyn Accumulate>> {
        Ok(Box::new(DriftState {
            method: self.method,
            threshold: self.threshold,
            checks: Arc::clone(&self.checks),
            numbers: vec![Vec::new(); self.checks.len()],
            categories: vec![HashMap::new(); self.checks.len()],
        }))
    }
}

struct DriftState {
    method: Method,
    threshold: f64,
    checks: Arc<Vec<Check>>,
    /// Current values of numeric features (compared as samples).
    numbers: Vec<Vec<f64>>,
    /// Current category counts of categorical features (chi2).
    categories: Vec<HashMap<String, u64>>,
}

impl Accumulate for DriftState {
    fn update(&mut self, batch: &RecordBatch) -> Result<usize> {
        let mut grown = 0;
        for (i, check) in self.checks.iter().enumerate() {
            let column = batch.column(i);
            match (&check.reference, self.method) {
                (Reference::Skipped(_), _) => {}
                (Reference::Numeric(_), _) => {
                    let a = column.as_primitive::<Float64Type>();
                    let before = self.numbers[i].len();
                    self.numbers[i].extend(a.iter().flatten());
                    grown += (self.numbers[i].len() - before) * 8;
                }
                (Reference::Categorical(_), _) => {
                    let a = column.as_string::<i32>();
                    for v in a.iter().flatten() {
                        if let Some(c) = self.categories[i].get_mut(v) {
                            *c += 1;
                        } else {
                            grown += v.len() + 48;
                            self.categories[i].insert(v.to_string(), 1);
                        }
                    }
                }
            }
        }
        Ok(grown)
    }

    fn finish(mut self: Box<Self>, schema: SchemaRef) -> Result<RecordBatch> {
        let mut statistic = Vec::new();
        let mut p_value = Vec::new();
        let mut notes: Vec<Option<String>> = Vec::new();
        for (i, check) in self.checks.iter().enumerate() {
            let (s, p, note) = match (&check.reference, self.method) {
                (Reference::Skipped(why), _) => (None, None, Some(why.clone())),
                (Reference::Numeric(base), Method::Chi2) => {
                    let current = &mut self.numbers[i];
                    current.sort_unstable_by(f64::total_cmp);
                    let (s, p, bins) = binned_chi2(base, current);
                    (
                        s,
                        p,
                        Some(format!(
                            "numeric feature: values binned by the baseline's deciles ({bins} bins)"
                        )),
                    )
                }
                (Reference::Categorical(base), _) => {
                    let (s, p) = chi2(base, &self.categories[i]);
                    (s, p, None)
                }
                (Reference::Numeric(base), method) => {
                    let current = &mut self.numbers[i];
                    current.sort_unstable_by(f64::total_cmp);
                    let (s, p) = numeric_test(method, base, current);
                    (s, p, None)
                }
            };
            statistic.push(s);
            p_value.push(p);
            notes.push(note);
        }
        let drifted: Vec<Option<bool>> = statistic
            .iter()
            .zip(&p_value)
            .map(|(s, p)| {
                if self.method.by_p_value() {
                    p.filter(|p| !p.is_nan()).map(|p| p < self.threshold)
                } else {
                    s.filter(|s| !s.is_nan()).map(|s| s > self.threshold)
                }
            })
            .collect();
        let n = self.checks.len();
        let columns: Vec<Arc<dyn Array>> = vec![
            Arc::new(StringArray::from_iter_values(
                self.checks.iter().map(|c| c.feature.as_str()),
            )),
            Arc::new(StringArray::from_iter_values(std::iter::repeat_n(
                self.method.name(),
                n,
            ))),
            Arc::new(Float64Array::from(statistic)),
            Arc::new(Float64Array::from(p_value)),
            Arc::new(Float64Array::from(vec![self.threshold; n])),
            Arc::new(BooleanArray::from(drifted)),
            Arc::new(StringArray::from(notes)),
        ];
        Ok(RecordBatch::try_new(schema, columns)?)
    }
}
