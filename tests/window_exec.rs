//! The window operators used from Rust, the way feature-group planning will use them:
//! planning through DataFusion's physical optimizer (repartitioning by key when needed, and
//! only then), memory limits, skewed keys, and errors.

use std::sync::Arc;
use std::time::Duration;

use datafusion::arrow::array::{
    Array, AsArray, Float64Array, Int64Array, RecordBatch, StringArray, TimestampSecondArray,
};
use datafusion::arrow::datatypes::{DataType, Field, Int64Type, Schema, TimeUnit};
use datafusion::datasource::MemTable;
use datafusion::error::{DataFusionError, Result};
use datafusion::execution::runtime_env::RuntimeEnvBuilder;
use datafusion::physical_plan::{ExecutionPlan, ExecutionPlanProperties, collect, displayable};
use datafusion::prelude::{SessionConfig, SessionContext};
use fstore::window::{FeatureWindowExec, WindowAgg, WindowAtExec, WindowSpec, parse_duration};

fn spec(agg: WindowAgg, input: Option<&str>, window: &str, output: &str) -> WindowSpec {
    WindowSpec::new(agg, input, parse_duration(window).unwrap(), output)
}

fn events_schema() -> Arc<Schema> {
    Arc::new(Schema::new(vec![
        Field::new("k", DataType::Utf8, true),
        Field::new("ts", DataType::Timestamp(TimeUnit::Second, None), true),
        Field::new("v", DataType::Float64, true),
    ]))
}

/// `n` events: entity `hot` gets every `hot_every`-th event, the rest spread over 50
/// entities; one event per second.
fn events(n: i64, hot_every: i64) -> RecordBatch {
    let keys: Vec<String> = (0..n)
        .map(|i| {
            if i % hot_every == 0 {
                "hot".to_string()
            } else {
                format!("k{}", i % 50)
            }
        })
        .collect();
    RecordBatch::try_new(
        events_schema(),
        vec![
            Arc::new(StringArray::from(keys)),
            Arc::new(TimestampSecondArray::from_iter_values(0..n)),
            Arc::new(Float64Array::from_iter_values(
                (0..n).map(|i| (i % 7) as f64),
            )),
        ],
    )
    .unwrap()
}

fn context(partitions: usize) -> SessionContext {
    let ctx = SessionContext::new_with_config(
        SessionConfig::new()
            .with_target_partitions(partitions)
            .with_batch_size(1024),
    );
    fstore::window::register_table_functions(&ctx);
    ctx
}

/// Runs DataFusion's physical optimizer rules over a hand-built plan, as planning does.
fn optimize(
    ctx: &SessionContext,
    mut plan: Arc<dyn ExecutionPlan>,
) -> Result<Arc<dyn ExecutionPlan>> {
    let state = ctx.state();
    for rule in state.physical_optimizers() {
        plan = rule.optimize(plan, state.config_options())?;
    }
    Ok(plan)
}

fn count_nodes(plan: &Arc<dyn ExecutionPlan>, name: &str) -> usize {
    usize::from(plan.name() == name)
        + plan
            .children()
            .into_iter()
            .map(|c| count_nodes(c, name))
            .sum::<usize>()
}

async fn memory_scan(
    ctx: &SessionContext,
    batch: RecordBatch,
    partitions: usize,
) -> Arc<dyn ExecutionPlan> {
    let rows = batch.num_rows();
    let chunk = rows.div_ceil(partitions).max(1);
    let parts = (0..partitions)
        .map(|p| {
            let start = (p * chunk).min(rows);
            let len = chunk.min(rows - start);
            vec![batch.slice(start, len)]
        })
        .collect();
    let table = MemTable::try_new(batch.schema(), parts).unwrap();
    ctx.register_table("events", Arc::new(table)).unwrap();
    ctx.table("events")
        .await
        .unwrap()
        .create_physical_plan()
        .await
        .unwrap()
}

#[tokio::test]
async fn the_optimizer_repartitions_the_input_by_key_and_all_partitions_work() {
    let ctx = context(4);
    let input = memory_scan(&ctx, events(10_000, 10), 3).await;
    let exec = FeatureWindowExec::try_new(
        input,
        vec!["k".into()],
        "ts".into(),
        vec![
            spec(WindowAgg::CountStar, None, "100s", "n"),
            spec(WindowAgg::Sum, Some("v"), "100s", "s"),
        ],
    )
    .unwrap();
    let plan = optimize(&ctx, Arc::new(exec)).unwrap();
    let text = displayable(plan.as_ref()).indent(true).to_string();
    assert!(
        text.contains("RepartitionExec: partitioning=Hash([k@0], 4)"),
        "{text}"
    );
    assert_eq!(plan.output_partitioning().partition_count(), 4);
    let batches = collect(plan, ctx.task_ctx()).await.unwrap();
    let rows: usize = batches.iter().map(RecordBatch::num_rows).sum();
    assert_eq!(rows, 10_000);
    // Entity "hot": one event every 10 s, so a 100 s window holds min(i/10 + 1, 10) events.
    for b in &batches {
        let k = b.column(0).as_string::<i32>();
        let ts = b
            .column(1)
            .as_primitive::<datafusion::arrow::datatypes::TimestampSecondType>();
        let n = b.column(3).as_primitive::<Int64Type>();
        for r in 0..b.num_rows() {
            if k.value(r) == "hot" {
                assert_eq!(n.value(r), (ts.value(r) / 10 + 1).min(10));
            }
        }
    }
}

#[tokio::test]
async fn an_input_already_partitioned_by_key_is_not_repartitioned() {
    // A window operator over another one: the inner one's output is already hash-partitioned
    // by the key, so only one repartition is planned.
    let ctx = context(4);
    let input = memory_scan(&ctx, events(5_000, 10), 2).await;
    let inner = FeatureWindowExec::try_new(
        input,
        vec!["k".into()],
        "ts".into(),
        vec![spec(WindowAgg::CountStar, None, "1h", "n")],
    )
    .unwrap();
    let outer = FeatureWindowExec::try_new(
        Arc::new(inner),
        vec!["k".into()],
        "ts".into(),
        vec![spec(WindowAgg::Mean, Some("v"), "1h", "m")],
    )
    .unwrap();
    let plan = optimize(&ctx, Arc::new(outer)).unwrap();
    let text = displayable(plan.as_ref()).indent(true).to_string();
    assert_eq!(count_nodes(&plan, "RepartitionExec"), 1, "{text}");
    let rows: usize = collect(plan, ctx.task_ctx())
        .await
        .unwrap()
        .iter()
        .map(RecordBatch::num_rows)
        .sum();
    assert_eq!(rows, 5_000);
}

#[tokio::test]
async fn a_skewed_key_is_one_long_sweep() {
    // 200k events, half of them on one entity.
    let ctx = context(2);
    let input = memory_scan(&ctx, events(200_000, 2), 2).await;
    let exec = FeatureWindowExec::try_new(
        input,
        vec!["k".into()],
        "ts".into(),
        vec![
            spec(WindowAgg::CountStar, None, "1000s", "n"),
            spec(WindowAgg::Max, Some("v"), "1000s", "mx"),
            spec(WindowAgg::CountDistinct, Some("v"), "10s", "d"),
        ],
    )
    .unwrap();
    let plan = optimize(&ctx, Arc::new(exec)).unwrap();
    let started = std::time::Instant::now();
    let batches = collect(plan, ctx.task_ctx()).await.unwrap();
    let mut hot = 0;
    for b in &batches {
        let k = b.column(0).as_string::<i32>();
        let ts = b
            .column(1)
            .as_primitive::<datafusion::arrow::datatypes::TimestampSecondType>();
        let n = b.column_by_name("n").unwrap().as_primitive::<Int64Type>();
        for r in 0..b.num_rows() {
            if k.value(r) == "hot" {
                hot += 1;
                assert_eq!(n.value(r), (ts.value(r) / 2 + 1).min(500));
            }
        }
    }
    assert_eq!(hot, 100_000);
    // Generous even for an unoptimised build on a busy machine: it is one linear pass.
    assert!(started.elapsed() < Duration::from_secs(60));
}

#[tokio::test]
async fn a_partition_that_does_not_fit_is_a_resources_exhausted_error() {
    let runtime = RuntimeEnvBuilder::new()
        .with_memory_limit(256 * 1024, 1.0)
        .build_arc()
        .unwrap();
    let ctx =
        SessionContext::new_with_config_rt(SessionConfig::new().with_target_partitions(2), runtime);
    fstore::window::register_table_functions(&ctx);
    ctx.register_batch("events", events(100_000, 3)).unwrap();
    let err = ctx
        .sql("SELECT count(*) FROM window_features('events', 'k', 'ts', 'count(*) 1h AS n')")
        .await
        .unwrap()
        .collect()
        .await
        .unwrap_err();
    let root = err.find_root();
    assert!(
        matches!(root, DataFusionError::ResourcesExhausted(_)),
        "{err}"
    );
    let msg = err.to_string();
    assert!(
        msg.contains("FeatureWindowExec") && msg.contains("do not fit in memory"),
        "{msg}"
    );
}

#[tokio::test]
async fn spine_evaluation_from_rust_keeps_spine_order() {
    let ctx = context(3);
    let events = memory_scan(&ctx, events(5_000, 5), 2).await;
    let spine_schema = Arc::new(Schema::new(vec![
        Field::new("id", DataType::Int64, false),
        Field::new("who", DataType::Utf8, true),
        Field::new("at", DataType::Timestamp(TimeUnit::Second, None), true),
    ]));
    let n = 3_000i64;
    let spine = RecordBatch::try_new(
        Arc::clone(&spine_schema),
        vec![
            Arc::new(Int64Array::from_iter_values(0..n)),
            Arc::new(StringArray::from_iter_values((0..n).map(|i| {
                if i % 3 == 0 {
                    "hot".to_string()
                } else {
                    format!("k{}", i % 60)
                }
            }))),
            Arc::new(TimestampSecondArray::from_iter_values(
                (0..n).map(|i| (i * 7919) % 6_000),
            )),
        ],
    )
    .unwrap();
    let spine_plan = datafusion::datasource::memory::MemorySourceConfig::try_new_exec(
        &[vec![spine]],
        spine_schema,
        None,
    )
    .unwrap();
    let exec = WindowAtExec::try_new(
        events,
        vec!["k".into()],
        "ts".into(),
        spine_plan,
        vec!["who".into()],
        "at".into(),
        vec![
            spec(WindowAgg::CountStar, None, "50s", "n"),
            spec(WindowAgg::Last, Some("v"), "50s", "l"),
        ],
    )
    .unwrap();
    let plan = optimize(&ctx, Arc::new(exec)).unwrap();
    let task = ctx.task_ctx();
    let mut total = 0;
    for p in 0..plan.output_partitioning().partition_count() {
        let stream = plan.execute(p, Arc::clone(&task)).unwrap();
        let batches = datafusion::physical_plan::common::collect(stream)
            .await
            .unwrap();
        let ids: Vec<i64> = batches
            .iter()
            .flat_map(|b| b.column(0).as_primitive::<Int64Type>().values().to_vec())
            .collect();
        assert!(ids.is_sorted(), "partition {p} is not in spine order");
        for b in &batches {
            let who = b.column(1).as_string::<i32>();
            let at = b
                .column(2)
                .as_primitive::<datafusion::arrow::datatypes::TimestampSecondType>();
            let cnt = b.column(3).as_primitive::<Int64Type>();
            for r in 0..b.num_rows() {
                if who.value(r) == "hot" {
                    // events of "hot": t = 0, 5, 10, … < 5000; window (t-50, t].
                    let t = at.value(r);
                    let hi = t.min(4_995) / 5;
                    let lo = if t - 50 < 0 { -1 } else { (t - 50) / 5 };
                    let want = if t < 0 { 0 } else { hi - lo };
                    assert_eq!(cnt.value(r), want.max(0), "t={t}");
                }
            }
            assert!(b.column(4).null_count() <= b.num_rows());
        }
        total += ids.len();
    }
    assert_eq!(total, n as usize);
}

#[test]
fn planning_errors_are_clear() {
    let schema = events_schema();
    let empty = || -> Arc<dyn ExecutionPlan> {
        Arc::new(datafusion::physical_plan::empty::EmptyExec::new(
            events_schema(),
        ))
    };
    let err = |r: Result<FeatureWindowExec>| r.unwrap_err().strip_backtrace();
    assert_eq!(
        err(FeatureWindowExec::try_new(
            empty(),
            vec!["k".into()],
            "ts".into(),
            vec![WindowSpec::new(
                WindowAgg::Sum,
                Some("v"),
                std::time::Duration::ZERO,
                "s"
            )]
        )),
        "Error during planning: FeatureWindowExec: the window of 's' must be positive, got 0s"
    );
    assert_eq!(
        err(FeatureWindowExec::try_new(
            empty(),
            vec!["k".into()],
            "ts".into(),
            vec![spec(WindowAgg::Sum, Some("k"), "1s", "s")]
        )),
        "Error during planning: FeatureWindowExec: sum(k) needs a numeric column, but 'k' is Utf8"
    );
    assert_eq!(
        err(FeatureWindowExec::try_new(
            empty(),
            vec!["nope".into()],
            "ts".into(),
            vec![spec(WindowAgg::CountStar, None, "1s", "n")]
        )),
        "Error during planning: FeatureWindowExec: unknown column 'nope' (columns: k, ts, v)"
    );
    assert_eq!(
        err(FeatureWindowExec::try_new(
            empty(),
            vec!["k".into()],
            "v".into(),
            vec![spec(WindowAgg::CountStar, None, "1s", "n")]
        )),
        "Error during planning: FeatureWindowExec: time column 'v' has type Float64; expected a timestamp, date or integer column"
    );
    let spine_schema = Arc::new(Schema::new(vec![
        Field::new("who", DataType::Int64, true),
        Field::new("at", DataType::Timestamp(TimeUnit::Second, None), true),
    ]));
    let spine = Arc::new(datafusion::physical_plan::empty::EmptyExec::new(
        spine_schema,
    ));
    let e = WindowAtExec::try_new(
        empty(),
        vec!["k".into()],
        "ts".into(),
        spine,
        vec!["who".into()],
        "at".into(),
        vec![spec(WindowAgg::CountStar, None, "1s", "n")],
    )
    .unwrap_err()
    .strip_backtrace();
    assert_eq!(
        e,
        "Error during planning: WindowAtExec: spine key 'who' is Int64 but event key 'k' is Utf8; cast one of them so the types match"
    );
    let _ = schema;
}
