//! Computes a monitor's metrics: one aggregate per feature group of the target, so a run
//! reads each group's rows once whatever its metrics.
//!
//! The aggregate of a group holds: its rows in the window, the non-NULL count of every
//! feature a `missing_values` metric names (or of all its features), the newest event time
//! (`freshness`), the current values of every feature a drift metric compares (collected
//! with `array_agg`, compared in memory against the set's stored baseline, as `check_drift`
//! does), and every aggregate `validate` needs for the expectations of its features
//! (`quality::validate::group_aggregates`, evaluated by `quality::validate::evaluate`).
//! Rows are read up to the run's time; when `freshness` is asked with a window, the window
//! is a filter inside the aggregates (`CASE WHEN ts >= start THEN x END`) so the newest
//! event is found even when the window is empty.

use std::collections::HashMap;
use std::sync::PoisonError;

use arrow_schema::DataType;
use datafusion::arrow::array::RecordBatch;
use datafusion::common::ScalarValue;
use datafusion::error::Result;
use datafusion::execution::context::SessionState;
use datafusion::functions_aggregate::expr_fn::{count, max, sum};
use datafusion::logical_expr::{Expr, LogicalPlanBuilder, cast, lit, when};

use super::define::Target;
use crate::error::FStoreError;
use crate::quality::validate::{self, GroupCheck};
use crate::registry::{
    Comparison, MetricKind, MetricResult, MetricStatus, Monitor, MonitorMetric, Registry,
    RegistryState, RunStatus,
};

/// A run's window: rows with event time in [start, as_of) (no start: every row before).
#[derive(Debug, Clone, Copy)]
pub struct Window {
    pub start: Option<i64>,
    pub as_of: i64,
}

fn timestamp_text(micros: i64) -> String {
    chrono::DateTime::from_timestamp_micros(micros)
        .unwrap_or_default()
        .naive_utc()
        .format("%Y-%m-%dT%H:%M:%S%.6f")
        .to_string()
}

fn quote(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// The SQL condition of a window on a group's event time (for the queries that reproduce a
/// value).
fn where_sql(ts: &str, w: &Window) -> String {
    let end = format!("{} < TIMESTAMP '{}'", quote(ts), timestamp_text(w.as_of));
    match w.start {
        Some(s) => format!(
            "{} >= TIMESTAMP '{}' AND {end}",
            quote(ts),
            timestamp_text(s)
        ),
        None => end,
    }
}

/// What one group's aggregate must compute.
#[derive(Default)]
struct GroupNeeds {
    /// Features whose NULL fraction is measured.
    missing: Vec<String>,
    /// Features compared with the baseline, with how (numeric → Float64 values).
    drift: Vec<(String, bool)>,
    expectations: Option<GroupCheck>,
}

fn micros_of(v: &ScalarValue) -> Option<i64> {
    match v {
        ScalarValue::TimestampSecond(Some(x), _) => Some(x * 1_000_000),
        ScalarValue::TimestampMillisecond(Some(x), _) => Some(x * 1_000),
        ScalarValue::TimestampMicrosecond(Some(x), _) => Some(*x),
        ScalarValue::TimestampNanosecond(Some(x), _) => Some(x.div_euclid(1000)),
        ScalarValue::Date32(Some(d)) => Some(*d as i64 * 86_400_000_000),
        ScalarValue::Date64(Some(d)) => Some(d * 1_000),
        _ => None,
    }
}

fn count_in(row: &RecordBatch, name: &str) -> Result<u64> {
    let i = row.schema().index_of(name)?;
    Ok(
        match ScalarValue::try_from_array(row.column(i), 0)?.cast_to(&DataType::UInt64)? {
            ScalarValue::UInt64(Some(n)) => n,
            _ => 0,
        },
    )
}

fn result(
    m: &MonitorMetric,
    feature: String,
    value: Option<f64>,
    status: Option<MetricStatus>,
    note: Option<String>,
    query: Option<String>,
) -> MetricResult {
    let status = status.unwrap_or(match value {
        None => MetricStatus::NoData,
        Some(v) if v.is_nan() => MetricStatus::Error,
        Some(v) if m.op.crosses(v, m.threshold) => MetricStatus::Alert,
        Some(_) => MetricStatus::Ok,
    });
    MetricResult {
        metric: m.name(),
        feature,
        value,
        op: m.op,
        threshold: m.threshold,
        status,
        note,
        query,
    }
}

/// The baseline feature a drift metric compares `group.feature` with, and whether it is
/// numeric; None when it compares nothing (not in the baseline, or a categorical feature
/// under a numeric method that names no feature).
fn compared<'b>(
    b: &'b crate::registry::DriftBaseline,
    m: &MonitorMetric,
    method: &str,
    group: &str,
    feature: &str,
) -> Option<(&'b crate::registry::BaselineFeature, bool)> {
    let bf = b
        .features
        .iter()
        .find(|x| x.group == group && x.feature == feature)?;
    let numeric = matches!(bf.sketch, crate::registry::BaselineSketch::Numeric { .. });
    let skipped = !numeric && m.feature.is_none() && method != "chi2" && method != "psi";
    (!skipped).then_some((bf, numeric))
}

/// Measures every metric of `monitor` over `target` in `window`: the rows read (in the
/// window, summed over groups) and one result per metric and feature.
pub async fn measure(
    registry: &Registry,
    state: &SessionState,
    reg: &RegistryState,
    monitor: &Monitor,
    target: &Target,
    window: Window,
) -> Result<(u64, Vec<MetricResult>)> {
    let baseline = target
        .set
        .as_ref()
        .and_then(|(s, v)| reg.baselines.get(&format!("{s}@{v}")));
    let freshness = monitor
        .metrics
        .iter()
        .any(|m| m.kind == MetricKind::Freshness);
    // What each group computes.
    let mut needs: Vec<GroupNeeds> = target
        .groups
        .iter()
        .map(|_| GroupNeeds::default())
        .collect();
    for m in &monitor.metrics {
        for (gi, (g, features)) in target.groups.iter().enumerate() {
            let named = |f: &str| {
                m.feature
                    .as_deref()
                    .is_none_or(|x| x == format!("{}.{f}", g.name))
            };
            match &m.kind {
                MetricKind::MissingValues => {
                    for f in features.iter().filter(|f| named(f)) {
                        if !needs[gi].missing.contains(f) {
                            needs[gi].missing.push(f.clone());
                        }
                    }
                }
                MetricKind::Drift { method } => {
                    let Some(b) = baseline else { continue };
                    for f in features.iter().filter(|f| named(f)) {
                        let Some((_, numeric)) = compared(b, m, method, &g.name, f) else {
                            continue;
                        };
                        if !needs[gi].drift.iter().any(|(x, _)| x == f) {
                            needs[gi].drift.push((f.clone(), numeric));
                        }
                    }
                }
                MetricKind::ExpectationsFailed => {
                    needs[gi].expectations = validate::group_check(reg, g, features);
                }
                _ => {}
            }
        }
    }
    // One aggregate per group.
    let mut rows_total = 0u64;
    let mut results: Vec<MetricResult> = vec![];
    let mut newest: Vec<Option<i64>> = vec![];
    let mut group_rows: Vec<u64> = vec![];
    let mut drift_values: HashMap<String, (Vec<f64>, HashMap<String, u64>)> = HashMap::new();
    let mut missing: HashMap<String, (u64, u64)> = HashMap::new();
    let mut checks: Vec<validate::CheckResult> = vec![];
    for (gi, (g, _)) in target.groups.iter().enumerate() {
        let need = &needs[gi];
        let plan = crate::features::plan(g, state).await?;
        let ts = crate::features::feature_col(&g.timestamp);
        let ts_type = plan
            .schema()
            .field_with_unqualified_name(&g.timestamp)?
            .data_type()
            .clone();
        let bound = |micros: i64| {
            crate::features::training::time_bound(
                "monitor",
                &timestamp_text(micros),
                &ts_type,
                "time",
            )
        };
        let mut builder =
            LogicalPlanBuilder::from(plan).filter(ts.clone().lt(bound(window.as_of)?))?;
        // The window is a filter of the rows, or (with freshness) of the aggregates.
        let in_window: Option<Expr> = match window.start {
            Some(s) if freshness => Some(ts.clone().gt_eq(bound(s)?)),
            Some(s) => {
                builder = builder.filter(ts.clone().gt_eq(bound(s)?))?;
                None
            }
            None => None,
        };
        let column = |f: &str| -> Expr {
            let x = crate::features::feature_col(f);
            match &in_window {
                Some(c) => when(c.clone(), x)
                    .end()
                    .unwrap_or_else(|_| lit(ScalarValue::Null)),
                None => x,
            }
        };
        let rows_expr = match &in_window {
            Some(c) => cast(
                sum(when(c.clone(), lit(1i64)).otherwise(lit(0i64))?),
                DataType::Int64,
            ),
            None => count(lit(1i64)),
        };
        let mut aggs: Vec<Expr> = vec![
            rows_expr.clone().alias("__rows"),
            max(ts.clone()).alias("__newest"),
        ];
        for (fi, f) in need.missing.iter().enumerate() {
            aggs.push(count(column(f)).alias(format!("__nn{fi}")));
        }
        let mut sinks = vec![];
        for (di, (f, numeric)) in need.drift.iter().enumerate() {
            let t = if *numeric {
                DataType::Float64
            } else {
                DataType::Utf8
            };
            let (collect, sink) = super::collect::Collect::udaf();
            aggs.push(
                collect
                    .call(vec![cast(column(f), t)])
                    .alias(format!("__v{di}")),
            );
            sinks.push(sink);
        }
        let expectations: Vec<GroupCheck> = need.expectations.iter().cloned().collect();
        if let Some(c) = &need.expectations {
            aggs.extend(validate::group_aggregates(0, c, rows_expr, &column)?);
        }
        let plan = builder.aggregate(Vec::<Expr>::new(), aggs)?.build()?;
        let physical = state.create_physical_plan(&plan).await?;
        let batches = datafusion::physical_plan::collect(physical, state.task_ctx()).await?;
        let Some(row) = batches.into_iter().find(|b| b.num_rows() > 0) else {
            return Err(FStoreError::new(
                crate::error::ErrorKind::Internal,
                "monitor: the aggregate returned no row",
            )
            .into());
        };
        let rows = count_in(&row, "__rows")?;
        rows_total += rows;
        group_rows.push(rows);
        let i = row.schema().index_of("__newest")?;
        newest.push(micros_of(&ScalarValue::try_from_array(row.column(i), 0)?));
        for (fi, f) in need.missing.iter().enumerate() {
            missing.insert(
                format!("{}.{f}", g.name),
                (rows, count_in(&row, &format!("__nn{fi}"))?),
            );
        }
        for ((f, _), sink) in need.drift.iter().zip(&sinks) {
            let collected =
                std::mem::take(&mut *sink.lock().unwrap_or_else(PoisonError::into_inner));
            drift_values.insert(
                format!("{}.{f}", g.name),
                (collected.numbers, collected.categories),
            );
        }
        checks.extend(validate::evaluate(&expectations, &row)?);
    }
    let now = crate::registry::now_micros();
    // Per-group metrics name their group when the target has several.
    let group_label = |g: &crate::registry::FeatureGroup| {
        if target.groups.len() > 1 {
            g.name.clone()
        } else {
            String::new()
        }
    };
    for m in &monitor.metrics {
        match &m.kind {
            MetricKind::MissingValues => {
                for (g, features) in &target.groups {
                    for f in features {
                        let key = format!("{}.{f}", g.name);
                        let Some((rows, nn)) = missing.get(&key) else {
                            continue;
                        };
                        if m.feature.as_deref().is_some_and(|x| x != key) {
                            continue;
                        }
                        let value = (*rows > 0).then(|| (rows - nn) as f64 / *rows as f64);
                        let query = format!(
                            "SELECT 1.0 - CAST(count({}) AS DOUBLE) / count(*) AS missing_values FROM {} WHERE {}",
                            quote(f),
                            quote(&g.name),
                            where_sql(&g.timestamp, &window)
                        );
                        results.push(result(m, key, value, None, None, Some(query)));
                    }
                }
            }
            MetricKind::Drift { method } => {
                let Some(b) = baseline else {
                    // A newer version without a baseline: said, not dropped.
                    let note = format!(
                        "{} has no drift baseline (SET DRIFT BASELINE FOR FEATURE SET … FROM '…' TO '…')",
                        target.label
                    );
                    let feature = m.feature.clone().unwrap_or_default();
                    results.push(result(
                        m,
                        feature,
                        None,
                        Some(MetricStatus::Error),
                        Some(note),
                        None,
                    ));
                    continue;
                };
                for (gi, (g, features)) in target.groups.iter().enumerate() {
                    for f in features {
                        let key = format!("{}.{f}", g.name);
                        if m.feature.as_deref().is_some_and(|x| x != key) {
                            continue;
                        }
                        let Some((numbers, categories)) = drift_values.get_mut(&key) else {
                            continue;
                        };
                        let Some((bf, _)) = compared(b, m, method, &g.name, f) else {
                            continue;
                        };
                        let reference =
                            crate::quality::drift::load_reference(registry, state, bf).await?;
                        let (statistic, p) = crate::quality::drift::drift_statistic(
                            method, &reference, numbers, categories,
                        )?;
                        let note = p.map(|p| format!("p_value {p}"));
                        let value = if group_rows[gi] == 0 { None } else { statistic };
                        // The current values the baseline was compared with.
                        let query = format!(
                            "SELECT {} FROM {} WHERE {}",
                            quote(f),
                            quote(&g.name),
                            where_sql(&g.timestamp, &window)
                        );
                        results.push(result(m, key, value, None, note, Some(query)));
                    }
                }
            }
            MetricKind::Freshness => {
                for (gi, (g, _)) in target.groups.iter().enumerate() {
                    let value = newest[gi].map(|t| (window.as_of - t) as f64 / 1e6);
                    let query = format!(
                        "SELECT max({}) AS newest FROM {} WHERE {} < TIMESTAMP '{}'",
                        quote(&g.timestamp),
                        quote(&g.name),
                        quote(&g.timestamp),
                        timestamp_text(window.as_of)
                    );
                    let note = value
                        .is_none()
                        .then(|| "no event before the run's time".to_string());
                    // No event at all is as stale as it gets.
                    let status = value
                        .is_none()
                        .then_some(MetricStatus::Alert)
                        .filter(|_| matches!(m.op, Comparison::Gt | Comparison::Ge));
                    results.push(result(m, group_label(g), value, status, note, Some(query)));
                }
            }
            MetricKind::RowCount => {
                for (gi, (g, _)) in target.groups.iter().enumerate() {
                    let query = format!(
                        "SELECT count(*) FROM {} WHERE {}",
                        quote(&g.name),
                        where_sql(&g.timestamp, &window)
                    );
                    let value = Some(group_rows[gi] as f64);
                    results.push(result(m, group_label(g), value, None, None, Some(query)));
                }
            }
            MetricKind::ExpectationsFailed => {
                let checked: Vec<&validate::CheckResult> =
                    checks.iter().filter(|c| c.passed.is_some()).collect();
                let failed: Vec<String> = checked
                    .iter()
                    .filter(|c| c.passed == Some(false))
                    .map(|c| {
                        format!(
                            "{} {} (observed {})",
                            c.feature,
                            c.expectation,
                            c.observed.as_deref().unwrap_or("")
                        )
                    })
                    .collect();
                let (value, note) = if checks.is_empty() {
                    (
                        None,
                        Some("no feature of the target has expectations".to_string()),
                    )
                } else if checked.is_empty() {
                    (None, None)
                } else {
                    (
                        Some(failed.len() as f64),
                        (!failed.is_empty()).then(|| failed.join("; ")),
                    )
                };
                let query = target.set.as_ref().map(|_| {
                    let start = window
                        .start
                        .map(|s| format!(", '{}'", timestamp_text(s)))
                        .unwrap_or_else(|| ", '0001-01-01'".into());
                    format!(
                        "SELECT * FROM validate('{}'{start}, '{}') WHERE NOT passed",
                        target.label,
                        timestamp_text(window.as_of)
                    )
                });
                results.push(result(m, String::new(), value, None, note, query));
            }
            MetricKind::OnlineStaleness => {
                let set = target
                    .set
                    .as_ref()
                    .map(|(s, _)| s.clone())
                    .unwrap_or_default();
                let query = Some(format!(
                    "SELECT * FROM fstore.materializations WHERE feature_set = '{set}' ORDER BY started DESC LIMIT 1"
                ));
                if !reg.online.contains_key(&set) {
                    results.push(result(
                        m,
                        String::new(),
                        None,
                        Some(MetricStatus::Error),
                        Some(format!("feature set '{set}' is not online")),
                        query,
                    ));
                    continue;
                }
                let last = reg
                    .materializations
                    .get(&set)
                    .and_then(|runs| runs.iter().rev().find(|r| r.status == RunStatus::Succeeded))
                    .map(|r| r.finished);
                let value = last.map(|t| (now - t) as f64 / 1e6);
                let (status, note) = match value {
                    Some(_) => (None, None),
                    None => (
                        matches!(m.op, Comparison::Gt | Comparison::Ge)
                            .then_some(MetricStatus::Alert),
                        Some("never materialized successfully".to_string()),
                    ),
                };
                results.push(result(m, String::new(), value, status, note, query));
            }
        }
    }
    Ok((rows_total, results))
}
