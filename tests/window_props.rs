//! Property tests of the window operators against a brute-force evaluator: random small
//! event sets (ties on time, NULL values, NULL keys, NULL times, unsorted input split over
//! several partitions and batches, a composite key), every aggregate over two windows, and
//! random spines (duplicates, other time unit, times on and next to window boundaries).
//!
//! The brute force reads the definition literally: the events of the row's entity with time
//! in (t − w, t]; `last` is the latest such event with a non-NULL value, ties going to the
//! later one in input order.

use std::sync::Arc;

use datafusion::arrow::array::{
    Array, ArrayRef, AsArray, Float64Array, Int32Array, Int64Array, RecordBatch, StringArray,
    TimestampMicrosecondArray, TimestampMillisecondArray,
};
use datafusion::arrow::datatypes::{DataType, Field, Float64Type, Int64Type, Schema, TimeUnit};
use datafusion::datasource::MemTable;
use datafusion::prelude::{SessionConfig, SessionContext};
use proptest::prelude::*;

#[derive(Debug, Clone)]
struct Event {
    k1: Option<i32>,
    k2: Option<&'static str>,
    t_ms: Option<i64>,
    v: Option<f64>,
    s: Option<&'static str>,
}

#[derive(Debug, Clone)]
struct SpineRow {
    k1: Option<i32>,
    k2: Option<&'static str>,
    t_us: Option<i64>,
}

#[derive(Debug, Clone, PartialEq)]
enum Val {
    Null,
    I(i64),
    F(f64),
    S(String),
}

fn same(a: &Val, b: &Val) -> bool {
    match (a, b) {
        (Val::F(x), Val::F(y)) => x == y || (x - y).abs() <= 1e-9 * x.abs().max(y.abs()) + 1e-12,
        _ => a == b,
    }
}

const AGGS_V: [&str; 9] = [
    "mean",
    "sum",
    "count",
    "count_star",
    "min",
    "max",
    "stddev",
    "count_distinct",
    "last",
];
const AGGS_S: [&str; 4] = ["min", "max", "last", "count_distinct"];

/// The specs and their output names, for windows `ws` (ms).
fn specs(ws: &[i64]) -> Vec<(String, String, &'static str, &'static str, i64)> {
    let mut out = Vec::new();
    for (i, &w) in ws.iter().enumerate() {
        for agg in AGGS_V {
            let name = format!("{agg}_v_{i}");
            let text = if agg == "count_star" {
                format!("count(*) {w}ms AS {name}")
            } else {
                format!("{agg}(v) {w}ms AS {name}")
            };
            out.push((text, name, agg, "v", w));
        }
        for agg in AGGS_S {
            let name = format!("{agg}_s_{i}");
            out.push((format!("{agg}(s) {w}ms AS {name}"), name, agg, "s", w));
        }
    }
    out
}

/// Brute force: `agg` of column `col` over the window (t − w, t] of entity `key`, all in µs.
fn brute(
    events: &[Event],
    key: (Option<i32>, Option<&str>),
    t_us: Option<i64>,
    w_us: i64,
    agg: &str,
    col: &str,
) -> Val {
    let (Some(k1), Some(k2), Some(t)) = (key.0, key.1, t_us) else {
        return Val::Null;
    };
    let idx: Vec<usize> = (0..events.len())
        .filter(|&i| {
            let e = &events[i];
            e.k1 == Some(k1)
                && e.k2 == Some(k2)
                && e.t_ms
                    .is_some_and(|et| et * 1000 <= t && et * 1000 > t - w_us)
        })
        .collect();
    if agg == "count_star" {
        return Val::I(idx.len() as i64);
    }
    if col == "s" {
        let vals: Vec<(usize, &str)> = idx
            .iter()
            .filter_map(|&i| events[i].s.map(|s| (i, s)))
            .collect();
        return match agg {
            "min" => vals
                .iter()
                .map(|x| x.1)
                .min()
                .map_or(Val::Null, |s| Val::S(s.into())),
            "max" => vals
                .iter()
                .map(|x| x.1)
                .max()
                .map_or(Val::Null, |s| Val::S(s.into())),
            "last" => vals
                .iter()
                .max_by_key(|(i, _)| (events[*i].t_ms, *i))
                .map_or(Val::Null, |x| Val::S(x.1.into())),
            "count_distinct" => {
                let mut v: Vec<&str> = vals.iter().map(|x| x.1).collect();
                v.sort();
                v.dedup();
                Val::I(v.len() as i64)
            }
            _ => unreachable!(),
        };
    }
    let vals: Vec<(usize, f64)> = idx
        .iter()
        .filter_map(|&i| events[i].v.map(|v| (i, v)))
        .collect();
    let xs: Vec<f64> = vals.iter().map(|x| x.1).collect();
    let n = xs.len() as f64;
    let f = |o: Option<f64>| o.map_or(Val::Null, Val::F);
    match agg {
        "count" => Val::I(xs.len() as i64),
        "sum" => f((!xs.is_empty()).then(|| xs.iter().sum())),
        "mean" => f((!xs.is_empty()).then(|| xs.iter().sum::<f64>() / n)),
        "min" => f(xs.iter().copied().reduce(f64::min)),
        "max" => f(xs.iter().copied().reduce(f64::max)),
        "stddev" => f((xs.len() >= 2).then(|| {
            let m = xs.iter().sum::<f64>() / n;
            (xs.iter().map(|x| (x - m) * (x - m)).sum::<f64>() / (n - 1.0)).sqrt()
        })),
        "count_distinct" => {
            let mut v: Vec<i64> = xs.iter().map(|x| (x * 4.0) as i64).collect();
            v.sort();
            v.dedup();
            Val::I(v.len() as i64)
        }
        "last" => f(vals
            .iter()
            .max_by_key(|(i, _)| (events[*i].t_ms, *i))
            .map(|x| x.1)),
        _ => unreachable!(),
    }
}

fn cell(a: &ArrayRef, r: usize) -> Val {
    if a.is_null(r) {
        return Val::Null;
    }
    match a.data_type() {
        DataType::Int64 => Val::I(a.as_primitive::<Int64Type>().value(r)),
        DataType::Int32 => Val::I(
            a.as_primitive::<datafusion::arrow::datatypes::Int32Type>()
                .value(r) as i64,
        ),
        DataType::Float64 => Val::F(a.as_primitive::<Float64Type>().value(r)),
        DataType::Utf8 => Val::S(a.as_string::<i32>().value(r).to_string()),
        DataType::Utf8View => Val::S(a.as_string_view().value(r).to_string()),
        other => panic!("unexpected output type {other}"),
    }
}

fn events_table(events: &[Event], partitions: usize, batch: usize) -> MemTable {
    let schema = Arc::new(Schema::new(vec![
        Field::new("id", DataType::Int64, false),
        Field::new("k1", DataType::Int32, true),
        Field::new("k2", DataType::Utf8, true),
        Field::new("t", DataType::Timestamp(TimeUnit::Millisecond, None), true),
        Field::new("v", DataType::Float64, true),
        Field::new("s", DataType::Utf8, true),
    ]));
    let make = |range: std::ops::Range<usize>| {
        let es = &events[range.clone()];
        RecordBatch::try_new(
            Arc::clone(&schema),
            vec![
                Arc::new(Int64Array::from_iter_values(range.map(|i| i as i64))),
                Arc::new(Int32Array::from(
                    es.iter().map(|e| e.k1).collect::<Vec<_>>(),
                )),
                Arc::new(StringArray::from(
                    es.iter().map(|e| e.k2).collect::<Vec<_>>(),
                )),
                Arc::new(TimestampMillisecondArray::from(
                    es.iter().map(|e| e.t_ms).collect::<Vec<_>>(),
                )),
                Arc::new(Float64Array::from(
                    es.iter().map(|e| e.v).collect::<Vec<_>>(),
                )),
                Arc::new(StringArray::from(
                    es.iter().map(|e| e.s).collect::<Vec<_>>(),
                )),
            ],
        )
        .unwrap()
    };
    // Contiguous ranges per partition, so partition-major order is the events' order.
    let n = events.len();
    let parts = (0..partitions)
        .map(|p| {
            let (a, b) = (p * n / partitions, (p + 1) * n / partitions);
            (a..b)
                .step_by(batch)
                .map(|s| make(s..(s + batch).min(b)))
                .collect::<Vec<_>>()
        })
        .collect();
    MemTable::try_new(schema, parts).unwrap()
}

fn spine_table(spine: &[SpineRow], batch: usize) -> MemTable {
    let schema = Arc::new(Schema::new(vec![
        Field::new("sid", DataType::Int64, false),
        Field::new("k1", DataType::Int32, true),
        Field::new("k2", DataType::Utf8, true),
        Field::new("at", DataType::Timestamp(TimeUnit::Microsecond, None), true),
    ]));
    let batches = (0..spine.len())
        .step_by(batch)
        .map(|s| {
            let range = s..(s + batch).min(spine.len());
            let rows = &spine[range.clone()];
            RecordBatch::try_new(
                Arc::clone(&schema),
                vec![
                    Arc::new(Int64Array::from_iter_values(range.map(|i| i as i64))),
                    Arc::new(Int32Array::from(
                        rows.iter().map(|r| r.k1).collect::<Vec<_>>(),
                    )),
                    Arc::new(StringArray::from(
                        rows.iter().map(|r| r.k2).collect::<Vec<_>>(),
                    )),
                    Arc::new(TimestampMicrosecondArray::from(
                        rows.iter().map(|r| r.t_us).collect::<Vec<_>>(),
                    )),
                ],
            )
            .unwrap()
        })
        .collect();
    MemTable::try_new(schema, vec![batches]).unwrap()
}

fn event_strategy() -> impl Strategy<Value = Event> {
    (
        proptest::option::weighted(0.9, 0..3i32),
        proptest::option::weighted(0.9, prop::sample::select(vec!["x", "y"])),
        proptest::option::weighted(
            0.95,
            (0..30i64, 0..2i64).prop_map(|(s, h)| s * 1000 + h * 500),
        ),
        proptest::option::weighted(0.8, (-8..8i32).prop_map(|x| x as f64 / 4.0)),
        proptest::option::weighted(0.8, prop::sample::select(vec!["a", "b", "c", "d"])),
    )
        .prop_map(|(k1, k2, t_ms, v, s)| Event { k1, k2, t_ms, v, s })
}

fn spine_strategy() -> impl Strategy<Value = SpineRow> {
    (
        proptest::option::weighted(0.9, 0..4i32),
        proptest::option::weighted(0.95, prop::sample::select(vec!["x", "y"])),
        proptest::option::weighted(
            0.95,
            (
                -5..40i64,
                prop::sample::select(vec![0i64, 1, -1, 250_000, 500_000]),
            )
                .prop_map(|(s, d)| s * 1_000_000 + d),
        ),
    )
        .prop_map(|(k1, k2, t_us)| SpineRow { k1, k2, t_us })
}

#[derive(Debug, Clone)]
struct Case {
    events: Vec<Event>,
    spine: Vec<SpineRow>,
    windows: Vec<i64>,
    partitions: usize,
    target_partitions: usize,
    batch: usize,
}

fn case_strategy() -> impl Strategy<Value = Case> {
    (
        prop::collection::vec(event_strategy(), 0..40),
        prop::collection::vec(spine_strategy(), 0..25),
        prop::collection::vec(
            prop_oneof![
                1..5_000i64,
                prop::sample::select(vec![500i64, 1_000, 3_000, 10_000, 60_000])
            ],
            2,
        ),
        1..4usize,
        1..5usize,
        1..7usize,
    )
        .prop_map(
            |(events, mut spine, windows, partitions, target_partitions, batch)| {
                // Exact duplicates of spine rows.
                if let Some(first) = spine.first().cloned() {
                    spine.push(first);
                }
                Case {
                    events,
                    spine,
                    windows,
                    partitions,
                    target_partitions,
                    batch,
                }
            },
        )
}

/// The result, per output partition.
fn run(ctx: &SessionContext, sql: &str) -> Vec<Vec<RecordBatch>> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async { ctx.sql(sql).await?.collect_partitioned().await })
        .unwrap_or_else(|e| panic!("{sql}: {e}"))
}

fn context(case: &Case) -> SessionContext {
    let mut config = SessionConfig::new()
        .with_target_partitions(case.target_partitions)
        .with_batch_size(case.batch);
    // Input order is partition-major; DataFusion would otherwise re-split the memory tables'
    // partitions by batch size (file scans are split into ranges in file order).
    config.options_mut().optimizer.repartition_file_scans = false;
    let ctx = SessionContext::new_with_config(config);
    fstore::window::register_table_functions(&ctx);
    ctx.register_table(
        "ev",
        Arc::new(events_table(&case.events, case.partitions, case.batch)),
    )
    .unwrap();
    ctx.register_table("spine", Arc::new(spine_table(&case.spine, case.batch)))
        .unwrap();
    ctx
}

fn check_per_event(case: &Case) -> Result<(), TestCaseError> {
    let ctx = context(case);
    let specs = specs(&case.windows);
    let list: Vec<String> = specs.iter().map(|s| format!("'{}'", s.0)).collect();
    let sql = format!(
        "SELECT * FROM window_features('ev', 'k1, k2', 't', {})",
        list.join(", ")
    );
    let batches = run(&ctx, &sql);
    let mut seen = vec![0; case.events.len()];
    for b in batches.iter().flatten() {
        prop_assert!(
            b.num_rows() <= case.batch,
            "batch of {} rows > {}",
            b.num_rows(),
            case.batch
        );
        let ids = b.column(0).as_primitive::<Int64Type>();
        for r in 0..b.num_rows() {
            let id = ids.value(r) as usize;
            seen[id] += 1;
            let e = &case.events[id];
            for (_, name, agg, col, w) in &specs {
                let got = cell(b.column_by_name(name).unwrap(), r);
                let want = brute(
                    &case.events,
                    (e.k1, e.k2),
                    e.t_ms.map(|t| t * 1000),
                    w * 1000,
                    agg,
                    col,
                );
                prop_assert!(
                    same(&got, &want),
                    "event {id} {e:?}: {name} (w={w}ms) got {got:?}, want {want:?}"
                );
            }
        }
    }
    prop_assert!(
        seen.iter().all(|&n| n == 1),
        "every event exactly once: {seen:?}"
    );
    Ok(())
}

fn check_spine(case: &Case) -> Result<(), TestCaseError> {
    let ctx = context(case);
    let specs = specs(&case.windows);
    let list: Vec<String> = specs.iter().map(|s| format!("'{}'", s.0)).collect();
    let sql = format!(
        "SELECT * FROM window_features_at('ev', 'k1, k2', 't', 'spine', 'k1, k2', 'at', {})",
        list.join(", ")
    );
    let partitions = run(&ctx, &sql);
    let mut seen = vec![0; case.spine.len()];
    for b in partitions.iter().flatten() {
        prop_assert!(b.num_rows() <= case.batch);
        let ids = b.column(0).as_primitive::<Int64Type>();
        for r in 0..b.num_rows() {
            let sid = ids.value(r) as usize;
            seen[sid] += 1;
            let row = &case.spine[sid];
            for (_, name, agg, col, w) in &specs {
                let got = cell(b.column_by_name(name).unwrap(), r);
                let want = brute(&case.events, (row.k1, row.k2), row.t_us, w * 1000, agg, col);
                prop_assert!(
                    same(&got, &want),
                    "spine row {sid} {row:?}: {name} (w={w}ms) got {got:?}, want {want:?}"
                );
            }
        }
    }
    prop_assert!(
        seen.iter().all(|&n| n == 1),
        "every spine row exactly once: {seen:?}"
    );
    // The spine is one partition, so every output partition keeps its order.
    for part in &partitions {
        let sids: Vec<i64> = part
            .iter()
            .flat_map(|b| b.column(0).as_primitive::<Int64Type>().values().to_vec())
            .collect();
        prop_assert!(
            sids.is_sorted(),
            "spine order within an output partition: {sids:?}"
        );
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 200, ..ProptestConfig::default() })]

    #[test]
    fn per_event_features_match_brute_force(case in case_strategy()) {
        check_per_event(&case)?;
    }

    #[test]
    fn spine_features_match_brute_force(case in case_strategy()) {
        check_spine(&case)?;
    }
}
