//! Feature-group plans: the window node becomes the sliding-window operator, a time range
//! reaches the source (widened by the longest window) and prunes Parquet, and a CREATED
//! column orders ties for `last`.

use std::sync::Arc;

use datafusion::arrow::util::pretty::pretty_format_batches;
use fstore::sql::SqlSession;
use fstore::{Config, Engine, Principal};

const SETUP: &str = "
CREATE TABLE tx AS SELECT customer_id, CAST(ts AS TIMESTAMP) AS ts, CAST(ts AS TIMESTAMP) AS created, amount
FROM (VALUES ('a', '2024-01-01T00:00:00', 10.0), ('a', '2024-03-01T00:00:00', 20.0)) AS v(customer_id, ts, amount);
CREATE FEATURE GROUP g ENTITY (customer_id) TIMESTAMP ts FROM tx
  FEATURES (m = mean(amount) WINDOW '30 days', n = count(*) WINDOW '10 days', amount);
CREATE FEATURE GROUP gl ENTITY (customer_id) TIMESTAMP ts CREATED created FROM tx
  FEATURES (l = last(amount) WINDOW '30 days');
";

async fn engine(dir: &tempfile::TempDir) -> Arc<Engine> {
    let config = Config {
        warehouse: dir.path().to_string_lossy().to_string(),
        target_partitions: Some(2),
        ..Config::default()
    };
    let engine = fstore::open(&config).await.expect("engine");
    SqlSession::new(&engine)
        .run_sql(SETUP, &Principal::trusted("test"))
        .await
        .expect("setup");
    engine
}

/// The logical and physical plan texts of a query.
async fn explain(engine: &Engine, sql: &str) -> (String, String) {
    let mut results = SqlSession::new(engine)
        .run_sql(&format!("EXPLAIN {sql}"), &Principal::trusted("test"))
        .await
        .expect("explain");
    let batches = results.pop().expect("a result").df.collect().await.unwrap();
    let text = pretty_format_batches(&batches).unwrap().to_string();
    let physical_at = text.find("| physical_plan").expect("a physical plan");
    (
        text[..physical_at].to_string(),
        text[physical_at..].to_string(),
    )
}

/// The line of `text` containing `needle`, and the index of that line.
fn line_of(text: &str, needle: &str) -> (usize, String) {
    text.lines()
        .enumerate()
        .find(|(_, l)| l.contains(needle))
        .map(|(i, l)| (i, l.to_string()))
        .unwrap_or_else(|| panic!("no line with {needle:?} in\n{text}"))
}

#[tokio::test]
async fn window_features_run_on_the_sliding_window_operator() {
    let dir = tempfile::tempdir().unwrap();
    let engine = engine(&dir).await;
    let (logical, physical) = explain(&engine, "SELECT * FROM g").await;
    line_of(&logical, "FeatureWindow: keys=[customer_id], time=ts");
    line_of(&physical, "FeatureWindowExec: keys=[customer_id], time=ts");
    // Its input is hash-partitioned by entity (or one partition, as here: one small file).
    assert!(!physical.contains("RoundRobin"), "{physical}");
    // No DataFusion window sort: the operator sorts per entity itself.
    assert!(!physical.contains("BoundedWindowAggExec") && !physical.contains("SortExec"));
}

#[tokio::test]
async fn a_time_range_prunes_the_source_with_the_window_widened_bound() {
    let dir = tempfile::tempdir().unwrap();
    let engine = engine(&dir).await;
    let (logical, physical) = explain(
        &engine,
        "SELECT m FROM g WHERE ts >= TIMESTAMP '2024-02-01'",
    )
    .await;
    // 2024-02-01 minus the longest window (30 days) = 2024-01-02 = 1704153600 s.
    let (node, _) = line_of(&logical, "FeatureWindow:");
    let (below, _) = line_of(
        &logical,
        "Filter: ts > TimestampNanosecond(1704153600000000000",
    );
    assert!(
        below > node,
        "the widened bound goes below the node:\n{logical}"
    );
    let (above, _) = line_of(
        &logical,
        "Filter: tx.ts >= TimestampNanosecond(1706745600000000000",
    );
    assert!(
        above < node,
        "the query's own filter stays above it:\n{logical}"
    );
    let (_, scan) = line_of(&physical, "DataSourceExec");
    assert!(
        scan.contains("pruning_predicate") && scan.contains("1704153600000000000"),
        "the Parquet scan prunes row groups by the bound:\n{physical}"
    );
    // An upper bound goes below as is; a filter on a feature stays above the node.
    let (logical, _) = explain(
        &engine,
        "SELECT m FROM g WHERE ts < TIMESTAMP '2024-02-01' AND m > 1",
    )
    .await;
    let (node, _) = line_of(&logical, "FeatureWindow:");
    let (below, _) = line_of(
        &logical,
        "Filter: ts < TimestampNanosecond(1706745600000000000",
    );
    assert!(below > node, "{logical}");
    let (m_filter, _) = line_of(&logical, "m > Float64(1)");
    assert!(m_filter < node, "{logical}");
}

#[tokio::test]
async fn entity_filters_go_below_the_node() {
    let dir = tempfile::tempdir().unwrap();
    let engine = engine(&dir).await;
    let (logical, _) = explain(&engine, "SELECT m FROM g WHERE customer_id = 'a'").await;
    let (node, _) = line_of(&logical, "FeatureWindow:");
    let (filter, _) = line_of(&logical, "customer_id = Utf8");
    assert!(filter > node, "{logical}");
}

#[tokio::test]
async fn created_orders_ties_of_last() {
    let dir = tempfile::tempdir().unwrap();
    let engine = engine(&dir).await;
    let (_, physical) = explain(&engine, "SELECT * FROM gl").await;
    let (seq, line) = line_of(&physical, "RowSequenceExec");
    assert!(line.contains("in order created@"), "{physical}");
    let (sort, _) = line_of(&physical, "SortExec: expr=[created@");
    assert!(sort > seq, "{physical}");
}
