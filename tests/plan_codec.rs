//! Plans with FStore's nodes, operators and table providers survive datafusion-proto with the
//! engine's composed codecs: for each query, the logical plan and the optimized physical plan
//! are encoded, decoded and executed, and give the rows the original plans give.

use std::sync::Arc;

use datafusion::arrow::array::RecordBatch;
use datafusion::arrow::util::pretty::pretty_format_batches;
use datafusion::logical_expr::LogicalPlan;
use datafusion::physical_plan::{collect, displayable};
use datafusion_proto::bytes::{
    logical_plan_from_bytes_with_extension_codec, logical_plan_to_bytes_with_extension_codec,
    physical_plan_from_bytes_with_extension_codec, physical_plan_to_bytes_with_extension_codec,
};
use fstore::sql::SqlSession;
use fstore::{Config, Engine, Principal};

const SETUP: &str = "
CREATE TABLE tx AS SELECT customer_id, product_id, CAST(ts AS TIMESTAMP) AS ts,
  CAST(ts AS TIMESTAMP) AS created, amount, label
FROM (VALUES ('a', 'p1', '2024-01-01T00:00:00', 10.0, 1), ('a', 'p2', '2024-01-10T00:00:00', 20.0, 0),
             ('a', 'p1', '2024-01-10T00:00:00', 25.0, 1), ('b', 'p2', '2024-01-05T00:00:00', 5.0, 0),
             ('b', 'p1', '2024-02-01T00:00:00', 8.0, 1), ('c', 'p2', '2024-01-20T00:00:00', 7.0, 0),
             ('c', 'p1', '2024-03-01T00:00:00', 3.0, 1), ('d', 'p1', '2023-06-01T00:00:00', 1.0, 0))
  AS v(customer_id, product_id, ts, amount, label);
CREATE TABLE products AS SELECT product_id, CAST(ts AS TIMESTAMP) AS updated_at, price
FROM (VALUES ('p1', '2023-12-01T00:00:00', 9.5), ('p1', '2024-01-08T00:00:00', 11.0),
             ('p2', '2024-01-02T00:00:00', 3.0)) AS v(product_id, ts, price);
CREATE FEATURE GROUP cb ENTITY (customer_id) TIMESTAMP ts CREATED created FROM tx
  FEATURES (m = mean(amount) WINDOW '30 days', n = count(*) WINDOW '30 days',
            l = last(amount) WINDOW '30 days', amount)
  TTL '40 days';
CREATE FEATURE GROUP pf ENTITY (product_id) TIMESTAMP updated_at FROM products FEATURES (price);
CREATE FEATURE SET fs FEATURES (cb.m, cb.n, cb.amount);
CREATE EXPECTATION ON FEATURE cb.amount (min_value = 0, max_value = 21);
SET DRIFT BASELINE FOR FEATURE SET fs FROM '2024-01-01' TO '2024-01-15';
ALTER FEATURE SET fs SET ONLINE (cache_ttl = '1000 days');
REFRESH ONLINE FEATURE SET fs AS OF '2024-01-12';
";

async fn engine(dir: &tempfile::TempDir) -> Arc<Engine> {
    let config = Config {
        warehouse: dir.path().to_string_lossy().to_string(),
        target_partitions: Some(2),
        ..Config::default()
    };
    let engine = fstore::open(&config).await.expect("engine");
    for r in SqlSession::new(&engine)
        .run_sql(SETUP, &Principal::trusted("test"))
        .await
        .expect("setup")
    {
        r.df.collect().await.expect("setup statement");
    }
    engine
}

/// The rows of a result as table lines (the header among them), sorted.
fn sorted_rows(batches: &[RecordBatch]) -> Vec<String> {
    let text = pretty_format_batches(batches).unwrap().to_string();
    let mut rows: Vec<String> = text
        .lines()
        .filter(|l| l.starts_with('|'))
        .map(String::from)
        .collect();
    rows.sort();
    rows
}

/// FStore's operators.
const OPERATORS: [&str; 6] = [
    "FeatureWindowExec",
    "WindowAtExec",
    "RowSequenceExec",
    "AsOfJoinExec",
    "SelectionExec",
    "OnlineLookupExec",
];

/// A physical plan's text reduced to its tree of operator names, with FStore's operators in
/// full (DataFusion's own codec leaves out some details of its operators, such as a scan's
/// `sort_order_for_reorder`).
fn shape(text: &str) -> Vec<String> {
    text.lines()
        .map(|l| match l.split_once(':') {
            Some((name, _)) if !OPERATORS.contains(&name.trim()) => name.to_string(),
            _ => l.to_string(),
        })
        .collect()
}

/// Round-trips the logical and the physical plan of `sql` through the engine's codecs, and
/// checks that each decoded plan computes what the original computes. `logical` and
/// `operators` are what the original logical and physical plans must contain (so that the
/// test fails if FStore's nodes were not in the plan at all). Returns the rows.
async fn round_trip(
    engine: &Engine,
    sql: &str,
    logical: &[&str],
    operators: &[&str],
) -> Vec<String> {
    let ctx = engine.ctx();
    let df = ctx.sql(sql).await.unwrap_or_else(|e| panic!("{sql}: {e}"));
    let expected = sorted_rows(&df.clone().collect().await.unwrap());
    assert!(expected.len() > 1, "{sql}: no rows\n{expected:?}");

    // The logical plan, as planned and as optimized (filters pushed into scans and below
    // FStore's nodes).
    let planned = df.logical_plan().clone();
    let optimized = ctx.state().optimize(&planned).unwrap();
    let codec = engine.logical_codec().as_ref();
    let optimize = |p: &LogicalPlan| {
        let optimized = ctx.state().optimize(p).unwrap();
        optimized.display_indent().to_string()
    };
    for (plan, as_planned) in [(planned, true), (optimized, false)] {
        let text = plan.display_indent().to_string();
        for node in logical {
            assert!(text.contains(node), "{sql}: no {node} in\n{text}");
        }
        let bytes = logical_plan_to_bytes_with_extension_codec(&plan, codec)
            .unwrap_or_else(|e| panic!("{sql}: encoding the logical plan: {e}"));
        let decoded = logical_plan_from_bytes_with_extension_codec(&bytes, &ctx.task_ctx(), codec)
            .unwrap_or_else(|e| panic!("{sql}: decoding the logical plan: {e}"));
        if as_planned {
            // (DataFusion qualifies the columns of the filters it decodes, so an optimized
            // plan comes back with `t.x` where it had `x`.)
            assert_eq!(decoded.display_indent().to_string(), text, "{sql}");
            assert_eq!(optimize(&decoded), optimize(&plan), "{sql}");
        }
        let batches = ctx.execute_logical_plan(decoded).await.unwrap().collect();
        let rows = sorted_rows(&batches.await.unwrap());
        assert_eq!(rows, expected, "{sql}: decoded logical plan\n{text}");
    }

    // Optimized physical plan.
    let physical = df.create_physical_plan().await.unwrap();
    let text = displayable(physical.as_ref()).indent(true).to_string();
    for op in operators {
        assert!(text.contains(op), "{sql}: no {op} in\n{text}");
    }
    let codec = engine.physical_codec().as_ref();
    let bytes = physical_plan_to_bytes_with_extension_codec(Arc::clone(&physical), codec)
        .unwrap_or_else(|e| panic!("{sql}: encoding the physical plan: {e}"));
    let decoded = physical_plan_from_bytes_with_extension_codec(&bytes, &ctx.task_ctx(), codec)
        .unwrap_or_else(|e| panic!("{sql}: decoding the physical plan: {e}"));
    let decoded_text = displayable(decoded.as_ref()).indent(true).to_string();
    assert_eq!(shape(&decoded_text), shape(&text), "{sql}");
    let original = collect(physical, ctx.task_ctx()).await.unwrap();
    assert_eq!(
        sorted_rows(&original),
        expected,
        "{sql}: original physical plan"
    );
    let batches = collect(decoded, ctx.task_ctx()).await.unwrap();
    assert_eq!(
        sorted_rows(&batches),
        expected,
        "{sql}: decoded physical plan"
    );
    expected
}

#[tokio::test]
async fn training_sets_with_window_and_point_in_time_groups() {
    let dir = tempfile::tempdir().unwrap();
    let engine = engine(&dir).await;
    round_trip(
        &engine,
        "SELECT * FROM training_set('cb:*, pf:price', 'tx', 'ts')",
        &["WindowAt:", "AsOfJoin"],
        &[
            "WindowAtExec",
            "AsOfJoinExec",
            "RowSequenceExec: __fstore_seq in order",
        ],
    )
    .await;
    round_trip(
        &engine,
        "SELECT * FROM training_set('fs', 'tx', 'ts', '2024-01-05', '2024-02-15')",
        &["WindowAt:", "AsOfJoin"],
        &["WindowAtExec", "AsOfJoinExec"],
    )
    .await;
}

#[tokio::test]
async fn feature_group_scans() {
    let dir = tempfile::tempdir().unwrap();
    let engine = engine(&dir).await;
    round_trip(
        &engine,
        "SELECT * FROM cb",
        &["FeatureWindow:"],
        &["FeatureWindowExec", "RowSequenceExec"],
    )
    .await;
    // A time range: bounds pushed below the node, a projection absorbed by the operator.
    round_trip(
        &engine,
        "SELECT customer_id, m, l FROM cb WHERE ts >= TIMESTAMP '2024-01-10'",
        &["FeatureWindow:"],
        &["FeatureWindowExec"],
    )
    .await;
    round_trip(
        &engine,
        "SELECT * FROM window_features('tx', 'customer_id', 'ts', \
         'sum(amount) 7 days AS s7', 'count(*) 30d AS c30')",
        &["window_features()"],
        &["FeatureWindowExec"],
    )
    .await;
}

#[tokio::test]
async fn feature_selection() {
    let dir = tempfile::tempdir().unwrap();
    let engine = engine(&dir).await;
    // Scores rounded: partitions merge in any order, and float sums with them.
    for sql in [
        "SELECT feature, round(score, 9), rank FROM select_features('cb', 'amount', 'correlation')",
        "SELECT feature, rank FROM select_features('tx', 'label', 'chi2', 2)",
        "SELECT feature_a, feature_b, round(correlation, 9) FROM feature_correlation('cb', 'spearman')",
    ] {
        round_trip(&engine, sql, &["TableScan"], &["SelectionExec"]).await;
    }
}

#[tokio::test]
async fn validation_and_drift() {
    let dir = tempfile::tempdir().unwrap();
    let engine = engine(&dir).await;
    let rows = round_trip(
        &engine,
        "SELECT * FROM validate('fs')",
        &["validate()"],
        &["SelectionExec: validate"],
    )
    .await;
    assert!(rows.iter().any(|r| r.contains("false")), "{rows:?}");
    round_trip(
        &engine,
        "SELECT * FROM check_drift('fs', 'cb')",
        &["check_drift()"],
        &["SelectionExec: check_drift"],
    )
    .await;
}

#[tokio::test]
async fn online_lookups() {
    let dir = tempfile::tempdir().unwrap();
    let engine = engine(&dir).await;
    let rows = round_trip(
        &engine,
        "SELECT * FROM online_features('fs') WHERE customer_id IN ('a', 'b', 'zz')",
        &["online_features()"],
        &["OnlineLookupExec: set=fs@1, keys=3"],
    )
    .await;
    assert_eq!(rows.len(), 3, "a and b are online, zz is not: {rows:?}");
    round_trip(
        &engine,
        "SELECT n, m FROM online_features('fs', 'a', 'zz')",
        &["online_features()"],
        &["OnlineLookupExec: set=fs@1, keys=2"],
    )
    .await;
}

#[tokio::test]
async fn catalog_tables_travel_by_name() {
    let dir = tempfile::tempdir().unwrap();
    let engine = engine(&dir).await;
    round_trip(
        &engine,
        "SELECT name, entity FROM fstore.feature_groups",
        &["TableScan: fstore.feature_groups"],
        &[],
    )
    .await;
}

#[tokio::test]
async fn providers_no_codec_carries_are_named_in_the_error() {
    let dir = tempfile::tempdir().unwrap();
    let engine = engine(&dir).await;
    let df = engine
        .ctx()
        .sql("SELECT * FROM sample_transactions(10)")
        .await
        .unwrap();
    let err = logical_plan_to_bytes_with_extension_codec(
        df.logical_plan(),
        engine.logical_codec().as_ref(),
    )
    .unwrap_err()
    .to_string();
    assert!(
        err.contains("no FStore codec can encode table provider 'sample_transactions()'"),
        "{err}"
    );
}
