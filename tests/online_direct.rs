//! The online lookup shortcut is taken by the statement executor (so by every front: the
//! CLI, the `.slt` suite, Flight SQL), and answers exactly what the general plan answers.

use std::sync::Arc;

use datafusion::arrow::array::RecordBatch;
use datafusion::arrow::util::pretty::pretty_format_batches;
use fstore::sql::SqlSession;
use fstore::sql::lookup::direct_lookups;
use fstore::{Config, Engine, Principal};

const SETUP: &str = "
CREATE TABLE tx AS SELECT customer_id, CAST(ts AS TIMESTAMP) AS ts, amount
FROM (VALUES ('a', '2024-01-01T00:00:00', 10.0), ('a', '2024-01-10T00:00:00', 20.0),
             ('b', '2024-01-05T00:00:00', 5.0), ('c', '2024-02-20T00:00:00', 7.0),
             ('d', '2023-06-01T00:00:00', 1.0)) AS v(customer_id, ts, amount);
CREATE FEATURE GROUP cb ENTITY (customer_id) TIMESTAMP ts FROM tx
  FEATURES (m = mean(amount) WINDOW '30 days', n = count(*) WINDOW '30 days', amount)
  TTL '20 days';
CREATE FEATURE SET fs FEATURES (cb.m, cb.n, cb.amount);
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

async fn rows(engine: &Engine, sql: &str) -> String {
    let mut results = SqlSession::new(engine)
        .run_sql(sql, &Principal::trusted("test"))
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"));
    let batches: Vec<RecordBatch> = results.pop().expect("a result").df.collect().await.unwrap();
    pretty_format_batches(&batches).unwrap().to_string()
}

#[tokio::test]
async fn direct_lookups_equal_the_general_plan_for_every_key() {
    let dir = tempfile::tempdir().unwrap();
    let engine = engine(&dir).await;
    // Present keys, a key whose only event is past the TTL, a key with no event yet, an
    // unknown key; with every column, a projection, and the key written on the right.
    for key in ["a", "b", "c", "d", "zz"] {
        for (direct, general) in [
            (
                format!("SELECT * FROM online_features('fs') WHERE customer_id = '{key}'"),
                format!(
                    "SELECT * FROM online_features('fs') WHERE customer_id = '{key}' AND 1 = 1"
                ),
            ),
            (
                format!("SELECT n, m FROM online_features('fs') WHERE '{key}' = customer_id"),
                format!(
                    "SELECT n, m FROM online_features('fs') WHERE '{key}' = customer_id AND true"
                ),
            ),
        ] {
            let before = direct_lookups();
            let fast = rows(&engine, &direct).await;
            assert_eq!(
                direct_lookups(),
                before + 1,
                "the executor answers `{direct}` from the store"
            );
            let slow = rows(&engine, &general).await;
            assert_eq!(
                direct_lookups(),
                before + 1,
                "`{general}` takes the general plan"
            );
            assert_eq!(fast, slow, "{direct}");
        }
    }
    // The value itself, so that the comparison above cannot pass on two empty answers.
    let a = rows(
        &engine,
        "SELECT customer_id, m, n, amount FROM online_features('fs') WHERE customer_id = 'a'",
    )
    .await;
    assert!(a.contains("| a           | 15.0 | 2 | 20.0   |"), "{a}");
}
