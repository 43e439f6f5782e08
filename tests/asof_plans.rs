//! The AS-OF join's plans: what EXPLAIN shows (logical node, physical operator, hash
//! repartitioning of both sides, filter and projection pushdown), the proto codecs' round
//! trips, and the memory limit.

use std::sync::Arc;

use datafusion::arrow::util::pretty::pretty_format_batches;
use datafusion::physical_plan::{collect, displayable};
use datafusion_proto::bytes::{
    logical_plan_from_bytes_with_extension_codec, logical_plan_to_bytes_with_extension_codec,
    physical_plan_from_bytes_with_extension_codec, physical_plan_to_bytes_with_extension_codec,
};
use fstore::asof::codec::{AsOfLogicalCodec, AsOfPhysicalCodec};
use fstore::error::user_message;
use fstore::sql::SqlSession;
use fstore::{Config, Engine, Principal};

const SETUP: &str = "
CREATE VIEW e AS SELECT * FROM (VALUES (1, 10, 'x'), (2, 20, 'y'), (1, 7, 'z')) AS t(k, ts, tag);
CREATE VIEW f AS SELECT * FROM (VALUES (1, 5, 'old', 1), (1, 8, 'new', 2), (2, 19, 'two', 3)) AS t(k, ts, v, c);
";

async fn engine(dir: &tempfile::TempDir, memory_limit: &str) -> Arc<Engine> {
    let config = Config {
        warehouse: dir.path().to_string_lossy().to_string(),
        target_partitions: Some(4),
        memory_limit: Some(memory_limit.into()),
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

#[tokio::test]
async fn explain_shows_the_node_and_the_operator() {
    let dir = tempfile::tempdir().unwrap();
    let engine = engine(&dir, "1GiB").await;
    let (logical, physical) = explain(
        &engine,
        "SELECT e.k, f.v FROM e ASOF JOIN f MATCH_CONDITION (e.ts >= f.ts AND CREATED(f.c)) ON e.k = f.k AND e.ts - f.ts <= 3",
    )
    .await;
    assert!(
        logical.contains(
            "AsOfJoin: type=left, on=[e.k = f.k], match=e.ts >= f.ts, created=f.c, lookback=<= 3"
        ),
        "{logical}"
    );
    assert!(
        physical.contains(
            "AsOfJoinExec: type=left, on=[(k@0, k@0)], match=ts@1 >= ts@1, created=c@3, lookback=<= 3"
        ),
        "{physical}"
    );
    // Neither the marker nor a hash join or window is left.
    for text in [&logical, &physical] {
        assert!(!text.contains("asof_match"), "{text}");
        assert!(
            !text.contains("HashJoin") && !text.contains("Window"),
            "{text}"
        );
    }
}

#[tokio::test]
async fn both_sides_are_hash_partitioned_on_the_keys() {
    let dir = tempfile::tempdir().unwrap();
    let engine = engine(&dir, "1GiB").await;
    let (_, physical) = explain(
        &engine,
        "SELECT * FROM e ASOF JOIN f ON e.k = f.k AND e.ts >= f.ts WHERE e.tag <> 'q'",
    )
    .await;
    let join = physical
        .find("AsOfJoinExec: type=inner")
        .expect("the operator");
    let below = &physical[join..];
    assert_eq!(
        below
            .matches("RepartitionExec: partitioning=Hash([k@0], 4)")
            .count(),
        2,
        "{physical}"
    );
}

#[tokio::test]
async fn filters_on_left_columns_go_below_and_on_right_columns_stay_above() {
    let dir = tempfile::tempdir().unwrap();
    let engine = engine(&dir, "1GiB").await;
    let (logical, _) = explain(
        &engine,
        "SELECT * FROM e ASOF JOIN f MATCH_CONDITION (e.ts >= f.ts) ON e.k = f.k WHERE e.tag = 'x' AND f.v = 'old'",
    )
    .await;
    let join = logical.find("AsOfJoin:").expect("the node");
    let right_filter = logical
        .find("Filter: f.v = Utf8(\"old\")")
        .expect("{logical}");
    let left_filter = logical
        .find("Filter: column3 = Utf8(\"x\")")
        .expect("{logical}");
    assert!(
        right_filter < join,
        "right filter above the join: {logical}"
    );
    assert!(left_filter > join, "left filter below the join: {logical}");
}

#[tokio::test]
async fn only_needed_columns_are_read() {
    let dir = tempfile::tempdir().unwrap();
    let engine = engine(&dir, "1GiB").await;
    let (logical, _) = explain(
        &engine,
        "SELECT f.v FROM e ASOF JOIN f MATCH_CONDITION (e.ts >= f.ts) ON e.k = f.k",
    )
    .await;
    // e.tag and f.c are not read.
    assert!(
        logical.contains("Projection: column1 AS k, column2 AS ts\n")
            || logical.contains("Projection: column1 AS k, column2 AS ts "),
        "{logical}"
    );
    assert!(
        logical.contains("Projection: column1 AS k, column2 AS ts, column3 AS v "),
        "{logical}"
    );
}

const QUERY: &str = "SELECT e.k, e.ts, f.v FROM e ASOF JOIN f MATCH_CONDITION (e.ts >= f.ts AND CREATED(f.c)) ON e.k = f.k AND e.ts - f.ts < 10 ORDER BY e.k, e.ts";

async fn query_plan(engine: &Engine) -> datafusion::dataframe::DataFrame {
    let mut results = SqlSession::new(engine)
        .run_sql(QUERY, &Principal::trusted("test"))
        .await
        .unwrap();
    results.pop().unwrap().df
}

#[tokio::test]
async fn the_logical_node_round_trips_through_protobuf() {
    let dir = tempfile::tempdir().unwrap();
    let engine = engine(&dir, "1GiB").await;
    let df = query_plan(&engine).await;
    let plan = engine.state().optimize(df.logical_plan()).unwrap();
    assert!(
        format!("{}", plan.display_indent()).contains("AsOfJoin:"),
        "{}",
        plan.display_indent()
    );
    let bytes = logical_plan_to_bytes_with_extension_codec(&plan, &AsOfLogicalCodec).unwrap();
    let task_ctx = engine.ctx().task_ctx();
    let decoded =
        logical_plan_from_bytes_with_extension_codec(&bytes, &task_ctx, &AsOfLogicalCodec).unwrap();
    assert_eq!(
        format!("{}", plan.display_indent_schema()),
        format!("{}", decoded.display_indent_schema())
    );
}

#[tokio::test]
async fn the_operator_round_trips_through_protobuf_and_still_runs() {
    let dir = tempfile::tempdir().unwrap();
    let engine = engine(&dir, "1GiB").await;
    let df = query_plan(&engine).await;
    let plan = df.create_physical_plan().await.unwrap();
    let bytes =
        physical_plan_to_bytes_with_extension_codec(Arc::clone(&plan), &AsOfPhysicalCodec).unwrap();
    let task_ctx = engine.ctx().task_ctx();
    let decoded =
        physical_plan_from_bytes_with_extension_codec(&bytes, &task_ctx, &AsOfPhysicalCodec)
            .unwrap();
    let shown = |p| displayable(p).indent(true).to_string();
    assert_eq!(shown(plan.as_ref()), shown(decoded.as_ref()));
    assert!(shown(decoded.as_ref()).contains("AsOfJoinExec"));
    let expected = pretty_format_batches(&collect(plan, Arc::clone(&task_ctx)).await.unwrap())
        .unwrap()
        .to_string();
    let actual = pretty_format_batches(&collect(decoded, task_ctx).await.unwrap())
        .unwrap()
        .to_string();
    assert_eq!(expected, actual);
    assert!(actual.contains("| 1 | 10 | new |"), "{actual}");
}

#[tokio::test]
async fn a_right_side_too_large_for_memory_is_resources_exhausted() {
    let dir = tempfile::tempdir().unwrap();
    let engine = engine(&dir, "20MiB").await;
    let sql = "SELECT count(*) FROM (SELECT value AS k, value AS ts FROM range(10)) l
               ASOF JOIN (SELECT value % 10 AS k, value AS ts, repeat('x', 100) AS pad FROM range(2000000)) r
               MATCH_CONDITION (l.ts >= r.ts) ON l.k = r.k";
    let result = async {
        let mut r = SqlSession::new(&engine)
            .run_sql(sql, &Principal::trusted("test"))
            .await?;
        r.pop().expect("a result").df.collect().await
    }
    .await;
    let err = result.expect_err("the right side cannot fit in 20 MiB");
    let msg = user_message(&err);
    assert_eq!(
        fstore::error::ErrorKind::of(&err),
        fstore::error::ErrorKind::ResourceExhausted,
        "{msg}"
    );
    assert!(msg.starts_with("resources exhausted"), "{msg}");
    assert!(
        msg.contains("ASOF JOIN: the right side of partition"),
        "{msg}"
    );
}
