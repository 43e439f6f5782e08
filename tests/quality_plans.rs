//! Plans of the quality functions: `validate` reads each feature group once (one aggregate
//! per group computing every expectation of every feature), a time range reaches the scan,
//! and `check_drift` reads only the current data (the baseline is a stored summary).

use std::sync::Arc;

use datafusion::arrow::util::pretty::pretty_format_batches;
use fstore::sql::SqlSession;
use fstore::{Config, Engine, Principal};

const SETUP: &str = "
CREATE TABLE tx AS SELECT customer_id, CAST(ts AS TIMESTAMP) AS ts, amount, category
FROM (VALUES ('a', '2024-01-01T00:00:00', 10.0, 'gold'), ('b', '2024-02-01T00:00:00', 20.0, 'silver')) AS v(customer_id, ts, amount, category);
CREATE TABLE products AS SELECT product_id, CAST(ts AS TIMESTAMP) AS updated_at, price
FROM (VALUES ('p', '2024-01-01T00:00:00', 9.5)) AS v(product_id, ts, price);
CREATE FEATURE GROUP cb ENTITY (customer_id) TIMESTAMP ts FROM tx
  FEATURES (amount, category, n = count(*) WINDOW '30 days');
CREATE FEATURE GROUP pf ENTITY (product_id) TIMESTAMP updated_at FROM products FEATURES (price);
CREATE FEATURE SET fs FEATURES (cb.*, pf.price);
CREATE EXPECTATION ON FEATURE cb.amount (min_value = 0, max_value = 100, null_percentage = 0.1, unique = true);
CREATE EXPECTATION ON FEATURE cb.category (allowed_values = ('gold', 'silver'));
CREATE EXPECTATION ON FEATURE cb.n (min_value = 1);
CREATE EXPECTATION ON FEATURE pf.price (min_value = 0, null_percentage = 0);
SET DRIFT BASELINE FOR FEATURE SET fs FROM '2024-01-01' TO '2024-01-31';
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

async fn physical_plan(engine: &Engine, sql: &str) -> String {
    let mut results = SqlSession::new(engine)
        .run_sql(&format!("EXPLAIN {sql}"), &Principal::trusted("test"))
        .await
        .expect("explain");
    let batches = results.pop().expect("a result").df.collect().await.unwrap();
    let text = pretty_format_batches(&batches).unwrap().to_string();
    let at = text.find("| physical_plan").expect("a physical plan");
    text[at..].to_string()
}

fn count(text: &str, needle: &str) -> usize {
    text.lines().filter(|l| l.contains(needle)).count()
}

#[tokio::test]
async fn validate_reads_each_group_once_with_one_aggregate() {
    let dir = tempfile::tempdir().unwrap();
    let engine = engine(&dir).await;
    let plan = physical_plan(&engine, "SELECT * FROM validate('fs')").await;
    assert_eq!(
        count(
            &plan,
            "SelectionExec: validate: 8 expectations over 2 feature groups"
        ),
        1,
        "{plan}"
    );
    // One aggregate for cb (in partial and final phases) and one read of its source; pf's
    // aggregate may be answered from Parquet statistics without reading (it is here).
    let finals = plan
        .lines()
        .filter(|l| {
            l.contains("__g0_rows") && (l.contains("mode=Final") || l.contains("mode=Single"))
        })
        .count();
    assert_eq!(finals, 1, "{plan}");
    assert_eq!(count(&plan, "tables/tx-"), 1, "{plan}");
    assert!(count(&plan, "tables/products-") <= 1, "{plan}");
    assert!(count(&plan, "__g1_rows") >= 1, "{plan}");
    // The group's aggregate computes every expectation of every feature.
    let cb = plan
        .lines()
        .find(|l| l.contains("AggregateExec") && l.contains("__g0_rows"))
        .expect("cb's aggregate");
    for needle in [
        "as __g0_f0_min",
        "as __g0_f0_max",
        "as __g0_f0_distinct",
        "as __g0_f0_nonnull",
        "as __g0_f1_outside",
        "as __g0_f2_min",
    ] {
        assert!(cb.contains(needle), "{needle} not in {cb}");
    }
}

#[tokio::test]
async fn validate_time_range_reaches_the_scan() {
    let dir = tempfile::tempdir().unwrap();
    let engine = engine(&dir).await;
    let plan = physical_plan(
        &engine,
        "SELECT * FROM validate('fs', '2024-01-15', '2024-03-01')",
    )
    .await;
    let scan = plan
        .lines()
        .find(|l| l.contains("DataSourceExec") && l.contains("tables/tx-"))
        .expect("the tx scan");
    // The group has a 30-day window, so the scan's lower bound is widened by 30 days.
    assert!(scan.contains("predicate="), "{plan}");
}

#[tokio::test]
async fn check_drift_reads_only_the_current_data() {
    let dir = tempfile::tempdir().unwrap();
    let engine = engine(&dir).await;
    SqlSession::new(&engine)
        .run_sql(
            "CREATE VIEW cur AS SELECT amount, category, n, 1.0 AS price FROM cb",
            &Principal::trusted("test"),
        )
        .await
        .unwrap();
    let plan = physical_plan(
        &engine,
        "SELECT * FROM check_drift('fs', 'cur', 'ks_test', 0.05)",
    )
    .await;
    assert_eq!(
        count(&plan, "SelectionExec: check_drift: ks_test of 3 features"),
        1,
        "{plan}"
    );
    assert_eq!(count(&plan, "DataSourceExec"), 1, "{plan}");
    assert_eq!(count(&plan, "baselines/"), 0, "{plan}");
}
