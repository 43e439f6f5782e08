//! `validate(feature_set [, start, end])`: checks every expectation of every feature of a
//! feature-set version, over the rows of the groups it pins (their TIMESTAMP in
//! [start, end) when given).
//!
//! One pass over the data: for each feature group of the set, one aggregate over the
//! group's pinned plan computes what every expectation of every feature of that group needs
//! (`count(*)`, `count(f)`, `min`, `max`, `count(DISTINCT f)`, the count of values outside an
//! allowed list); the groups' one-row aggregates are cross-joined into one row, which a
//! [`SelectionExec`] turns into the result rows. EXPLAIN shows that plan.
//!
//! Output, one row per feature × expectation (features in the set's order): `feature`
//! (`group.feature`), `expectation`, `expected` (e.g. `>= 0`), `observed` (the minimum, the
//! maximum, the NULL fraction, the number of values outside the allowed list, the number of
//! duplicated values), `passed`, `rows_checked` (the group's rows in the window). When no
//! row was checked, `observed` and `passed` are NULL: nothing was verified.

use std::sync::Arc;

use arrow_schema::{DataType, Field, Schema, SchemaRef};
use async_trait::async_trait;
use datafusion::arrow::array::{Array, BooleanArray, RecordBatch, StringArray, UInt64Array};
use datafusion::catalog::{Session, TableFunctionArgs, TableFunctionImpl, TableProvider};
use datafusion::common::ScalarValue;
use datafusion::error::Result;
use datafusion::execution::context::SessionState;
use datafusion::functions_aggregate::expr_fn::{count, count_distinct, max, min, sum};
use datafusion::logical_expr::{Expr, LogicalPlan, LogicalPlanBuilder, TableType, cast, lit, when};
use datafusion::physical_plan::ExecutionPlan;
use serde::{Deserialize, Serialize};

use crate::args::{at_most, identify_call};
use crate::args::{required_string, string_arg};
use crate::error::{ErrorKind, FStoreError, fail};
use crate::registry::{Expectation, FeatureGroup, Registry};
use crate::selection::exec::{Accumulate, Analysis, SelectionExec};

pub const FUNCTION: &str = "validate";

fn output_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("feature", DataType::Utf8, false),
        Field::new("expectation", DataType::Utf8, false),
        Field::new("expected", DataType::Utf8, false),
        Field::new("observed", DataType::Utf8, true),
        Field::new("passed", DataType::Boolean, true),
        Field::new("rows_checked", DataType::UInt64, false),
    ]))
}

/// One feature to check and its expectations.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct FeatureCheck {
    pub feature: String,
    pub expectations: Vec<Expectation>,
}

/// One pinned group and the features of the set that have expectations.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct GroupCheck {
    pub def: FeatureGroup,
    pub features: Vec<FeatureCheck>,
}

/// The features of `group` among `features` that have expectations in `state`.
pub fn group_check(
    state: &crate::registry::RegistryState,
    group: &FeatureGroup,
    features: &[String],
) -> Option<GroupCheck> {
    let checks: Vec<FeatureCheck> = features
        .iter()
        .filter_map(|f| {
            let e = state.expectations.get(&format!("{}.{f}", group.name))?;
            crate::registry::check_expectations(group, f, &e.expectations).ok()?;
            Some(FeatureCheck {
                feature: f.clone(),
                expectations: e.expectations.clone(),
            })
        })
        .collect();
    (!checks.is_empty()).then(|| GroupCheck {
        def: group.clone(),
        features: checks,
    })
}

/// One expectation's outcome.
#[derive(Debug, Clone, PartialEq)]
pub struct CheckResult {
    /// `group.feature`
    pub feature: String,
    pub expectation: &'static str,
    pub expected: String,
    /// NULL when no row was checked.
    pub observed: Option<String>,
    pub passed: Option<bool>,
    pub rows: u64,
}

/// `validate(feature_set [, start, end])`.
#[derive(Debug)]
pub struct Validate {
    pub registry: Arc<Registry>,
}

impl TableFunctionImpl for Validate {
    fn call_with_args(&self, args: TableFunctionArgs) -> Result<Arc<dyn TableProvider>> {
        let f = FUNCTION;
        let exprs = args.exprs();
        at_most(exprs, 3, f, "feature_set [, start, end]")?;
        let reference = required_string(exprs, 0, f, "feature_set")?;
        let start = string_arg(exprs, 1, f, "start")?;
        let end = string_arg(exprs, 2, f, "end")?;
        let state = self.registry.state();
        let set = state
            .feature_set(&reference)
            .map_err(|e| FStoreError::new(e.kind, format!("{f}: {}", e.message)))?;
        // Groups in the order their first feature appears in the set.
        let mut groups: Vec<GroupCheck> = Vec::new();
        for r in &set.features {
            let Some(expected) = state.expectations.get(&r.to_string()) else {
                continue;
            };
            let Some(pinned) = set.groups.get(&r.group) else {
                return fail(
                    ErrorKind::Internal,
                    format!(
                        "feature set '{}' does not pin group '{}'",
                        set.name, r.group
                    ),
                );
            };
            let check = FeatureCheck {
                feature: r.feature.clone(),
                expectations: expected.expectations.clone(),
            };
            match groups.iter_mut().find(|g| g.def.name == r.group) {
                Some(g) => g.features.push(check),
                None => groups.push(GroupCheck {
                    def: pinned.def.clone(),
                    features: vec![check],
                }),
            }
        }
        if groups.is_empty() {
            return Err(FStoreError::invalid(format!(
                "{f}: no feature of feature set '{}' version {} has expectations (CREATE EXPECTATION ON FEATURE group.feature (…))",
                set.name, set.version
            ))
            .into());
        }
        // Type checks against the pinned definitions (a group may have changed since).
        for g in &groups {
            for c in &g.features {
                crate::registry::check_expectations(&g.def, &c.feature, &c.expectations)
                    .map_err(|e| FStoreError::new(e.kind, format!("{f}: {}", e.message)))?;
            }
        }
        Ok(Arc::new(ValidateTable {
            schema: identify_call(&output_schema(), f, exprs),
            args: exprs.to_vec(),
            groups,
            start,
            end,
        }))
    }
}

#[derive(Debug)]
pub(super) struct ValidateTable {
    schema: SchemaRef,
    /// The call's arguments (what the codec carries).
    pub(super) args: Vec<Expr>,
    groups: Vec<GroupCheck>,
    start: Option<String>,
    end: Option<String>,
}

fn rows_col(gi: usize) -> String {
    format!("__g{gi}_rows")
}

fn stat_col(gi: usize, fi: usize, what: &str) -> String {
    format!("__g{gi}_f{fi}_{what}")
}

/// The aggregates group `gi`'s checks need, over the feature columns `column(feature)`:
/// `rows` (counted as the group's rows), then each feature's non-NULL count and what each
/// expectation needs. Read back by [`evaluate`].
pub fn group_aggregates(
    gi: usize,
    g: &GroupCheck,
    rows: Expr,
    column: &dyn Fn(&str) -> Expr,
) -> Result<Vec<Expr>> {
    let mut aggs: Vec<Expr> = vec![rows.alias(rows_col(gi))];
    for (fi, c) in g.features.iter().enumerate() {
        let x = column(&c.feature);
        aggs.push(count(x.clone()).alias(stat_col(gi, fi, "nonnull")));
        for e in &c.expectations {
            match e {
                Expectation::MinValue { .. } => aggs
                    .push(min(cast(x.clone(), DataType::Float64)).alias(stat_col(gi, fi, "min"))),
                Expectation::MaxValue { .. } => aggs
                    .push(max(cast(x.clone(), DataType::Float64)).alias(stat_col(gi, fi, "max"))),
                Expectation::AllowedValues { values } => {
                    let list = values.iter().map(|v| lit(v.clone())).collect();
                    let outside = cast(x.clone(), DataType::Utf8).in_list(list, true);
                    aggs.push(
                        sum(when(outside, lit(1i64)).otherwise(lit(0i64))?)
                            .alias(stat_col(gi, fi, "outside")),
                    );
                }
                Expectation::Unique { .. } => {
                    aggs.push(count_distinct(x.clone()).alias(stat_col(gi, fi, "distinct")))
                }
                Expectation::NullPercentage { .. } => {}
            }
        }
    }
    Ok(aggs)
}

/// The one-row aggregate of every group's checks, cross-joined.
async fn plan_checks(
    groups: &[GroupCheck],
    state: &SessionState,
    start: Option<&str>,
    end: Option<&str>,
) -> Result<LogicalPlan> {
    let mut plan: Option<LogicalPlan> = None;
    for (gi, g) in groups.iter().enumerate() {
        let rows = super::group_rows(&g.def, state, FUNCTION, start, end).await?;
        let aggs = group_aggregates(gi, g, count(lit(1i64)), &|f| {
            crate::features::feature_col(f)
        })?;
        let agg = LogicalPlanBuilder::from(rows)
            .aggregate(Vec::<Expr>::new(), aggs)?
            .build()?;
        plan = Some(match plan {
            None => agg,
            Some(p) => LogicalPlanBuilder::from(p).cross_join(agg)?.build()?,
        });
    }
    plan.ok_or_else(|| FStoreError::new(ErrorKind::Internal, "validate: no groups").into())
}

#[async_trait]
impl TableProvider for ValidateTable {
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
        let state = crate::features::training::session_state(session, FUNCTION)?;
        let plan = plan_checks(
            &self.groups,
            state,
            self.start.as_deref(),
            self.end.as_deref(),
        )
        .await?;
        let input = state.create_physical_plan(&plan).await?;
        Ok(Arc::new(SelectionExec::try_new(
            input,
            Arc::new(Checks {
                groups: self.groups.clone(),
            }),
            Arc::clone(&self.schema),
            projection.cloned(),
        )?))
    }
}

/// Turns the aggregate row into result rows.
#[derive(Debug)]
pub(super) struct Checks {
    pub(super) groups: Vec<GroupCheck>,
}

impl Analysis for Checks {
    fn describe(&self) -> String {
        let n: usize = self
            .groups
            .iter()
            .flat_map(|g| &g.features)
            .map(|c| c.expectations.len())
            .sum();
        format!(
            "validate: {n} expectations over {} feature groups",
            self.groups.len()
        )
    }

    fn start(&self) -> Result<Box<dyn Accumulate>> {
        Ok(Box::new(CheckRow {
            groups: self.groups.clone(),
            row: None,
        }))
    }
}

struct CheckRow {
    groups: Vec<GroupCheck>,
    row: Option<RecordBatch>,
}

fn value(row: &RecordBatch, name: &str) -> Result<ScalarValue> {
    let i = row.schema().index_of(name)?;
    ScalarValue::try_from_array(row.column(i), 0)
}

fn count_of(row: &RecordBatch, name: &str) -> Result<u64> {
    Ok(match value(row, name)?.cast_to(&DataType::UInt64)? {
        ScalarValue::UInt64(Some(n)) => n,
        _ => 0,
    })
}

fn float_of(row: &RecordBatch, name: &str) -> Result<Option<f64>> {
    Ok(match value(row, name)?.cast_to(&DataType::Float64)? {
        ScalarValue::Float64(v) => v,
        _ => None,
    })
}

/// The outcome of every expectation of `groups` from the aggregate row of
/// [`group_aggregates`] (every group's columns in one row).
pub fn evaluate(groups: &[GroupCheck], row: &RecordBatch) -> Result<Vec<CheckResult>> {
    let mut out = Vec::new();
    for (gi, g) in groups.iter().enumerate() {
        let rows = count_of(row, &rows_col(gi))?;
        for (fi, c) in g.features.iter().enumerate() {
            let nonnull = count_of(row, &stat_col(gi, fi, "nonnull"))?;
            for e in &c.expectations {
                let (obs, ok) = match e {
                    Expectation::MinValue { value } => {
                        let m = float_of(row, &stat_col(gi, fi, "min"))?;
                        // All values NULL: no value breaks a bound.
                        (m.map(|m| m.to_string()), m.is_none_or(|m| m >= *value))
                    }
                    Expectation::MaxValue { value } => {
                        let m = float_of(row, &stat_col(gi, fi, "max"))?;
                        (m.map(|m| m.to_string()), m.is_none_or(|m| m <= *value))
                    }
                    Expectation::NullPercentage { value } => {
                        let fraction = (rows - nonnull) as f64 / rows.max(1) as f64;
                        (Some(fraction.to_string()), fraction <= *value)
                    }
                    Expectation::AllowedValues { .. } => {
                        let n = count_of(row, &stat_col(gi, fi, "outside"))?;
                        (Some(format!("{n} outside")), n == 0)
                    }
                    Expectation::Unique { value } => {
                        let distinct = count_of(row, &stat_col(gi, fi, "distinct"))?;
                        let dup = nonnull - distinct;
                        (Some(format!("{dup} duplicates")), !value || dup == 0)
                    }
                };
                let checked = rows > 0;
                out.push(CheckResult {
                    feature: format!("{}.{}", g.def.name, c.feature),
                    expectation: e.name(),
                    expected: e.expected_text(),
                    observed: if checked { obs } else { None },
                    passed: checked.then_some(ok),
                    rows,
                });
            }
        }
    }
    Ok(out)
}

impl Accumulate for CheckRow {
    fn update(&mut self, batch: &RecordBatch) -> Result<usize> {
        if batch.num_rows() > 0 {
            self.row = Some(batch.clone());
        }
        Ok(0)
    }

    fn finish(self: Box<Self>, schema: SchemaRef) -> Result<RecordBatch> {
        let Some(row) = &self.row else {
            return fail(
                ErrorKind::Internal,
                "validate: the aggregate returned no row",
            );
        };
        let results = evaluate(&self.groups, row)?;
        let columns: Vec<Arc<dyn Array>> = vec![
            Arc::new(StringArray::from_iter_values(
                results.iter().map(|r| r.feature.as_str()),
            )),
            Arc::new(StringArray::from_iter_values(
                results.iter().map(|r| r.expectation),
            )),
            Arc::new(StringArray::from_iter_values(
                results.iter().map(|r| r.expected.as_str()),
            )),
            Arc::new(StringArray::from(
                results
                    .iter()
                    .map(|r| r.observed.clone())
                    .collect::<Vec<_>>(),
            )),
            Arc::new(BooleanArray::from(
                results.iter().map(|r| r.passed).collect::<Vec<_>>(),
            )),
            Arc::new(UInt64Array::from_iter_values(
                results.iter().map(|r| r.rows),
            )),
        ];
        Ok(RecordBatch::try_new(schema, columns)?)
    }
}
