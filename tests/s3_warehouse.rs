//! A warehouse on S3: the registry and managed tables on an S3-compatible server (moto in
//! server mode on loopback, started by the test command), read back by other processes,
//! written by concurrent writers through conditional creates.
//!
//! The test command exports `FSTORE_TEST_S3_ENDPOINT` and `FSTORE_TEST_S3_BUCKET` and sets
//! `FSTORE_TEST_REQUIRE_S3=1`, so in CI a missing server fails these tests instead of
//! skipping them.

mod common;

use std::process::Command;

use common::fstore;

struct S3 {
    endpoint: String,
    bucket: String,
}

fn s3() -> Option<S3> {
    match (
        std::env::var("FSTORE_TEST_S3_ENDPOINT"),
        std::env::var("FSTORE_TEST_S3_BUCKET"),
    ) {
        (Ok(endpoint), Ok(bucket)) => Some(S3 { endpoint, bucket }),
        _ => {
            assert!(
                std::env::var_os("FSTORE_TEST_REQUIRE_S3").is_none(),
                "FSTORE_TEST_REQUIRE_S3 is set but no S3 endpoint was given"
            );
            eprintln!("no S3 endpoint (run through scripts/test.sh); skipping");
            None
        }
    }
}

impl S3 {
    fn cmd(&self, warehouse: &str) -> Command {
        let mut c = fstore();
        c.env("AWS_ACCESS_KEY_ID", "fstore-test")
            .env("AWS_SECRET_ACCESS_KEY", "fstore-test")
            .env("AWS_REGION", "us-east-1")
            .env("AWS_ENDPOINT_URL", &self.endpoint)
            .env("AWS_ALLOW_HTTP", "true")
            .args(["--warehouse", warehouse]);
        c
    }

    fn sql(&self, warehouse: &str, sql: &str) -> String {
        let out = self
            .cmd(warehouse)
            .args(["sql", "--format", "csv", "-c", sql])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{sql}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    }

    fn scalar(&self, warehouse: &str, sql: &str) -> String {
        self.sql(warehouse, sql)
            .lines()
            .nth(1)
            .unwrap_or_default()
            .to_string()
    }

    fn warehouse(&self, name: &str) -> String {
        format!("s3://{}/{name}-{}", self.bucket, std::process::id())
    }
}

#[test]
fn tables_and_views_on_s3_survive_into_other_processes() {
    let Some(s3) = s3() else { return };
    let wh = s3.warehouse("basic");
    s3.sql(
        &wh,
        "CREATE TABLE tx AS SELECT * FROM sample_transactions(20000)",
    );
    s3.sql(
        &wh,
        "INSERT INTO tx SELECT * FROM sample_transactions(100, 9)",
    );
    s3.sql(
        &wh,
        "CREATE VIEW gold AS SELECT * FROM tx WHERE customer_category = 'gold'",
    );
    assert_eq!(s3.scalar(&wh, "SELECT count(*) FROM tx"), "20100");
    assert_eq!(
        s3.scalar(&wh, "SELECT count(*) FROM gold"),
        s3.scalar(
            &wh,
            "SELECT count(*) FROM tx WHERE customer_category = 'gold'"
        )
    );
    assert_eq!(s3.scalar(&wh, "SELECT count(*) FROM fstore.history"), "3");

    // COPY to another S3 location, then an external table over it.
    let data = format!("s3://{}/data-{}/tx.parquet", s3.bucket, std::process::id());
    s3.sql(
        &wh,
        &format!("COPY (SELECT * FROM tx) TO '{data}' STORED AS PARQUET"),
    );
    s3.sql(
        &wh,
        &format!("CREATE EXTERNAL TABLE ext STORED AS PARQUET LOCATION '{data}'"),
    );
    assert_eq!(s3.scalar(&wh, "SELECT count(*) FROM ext"), "20100");
}

#[test]
fn concurrent_writers_on_s3_never_overwrite_each_other() {
    let Some(s3) = s3() else { return };
    let wh = s3.warehouse("concurrent");
    s3.sql(&wh, "CREATE TABLE hits (writer INT, k INT)");
    let writers: Vec<_> = (0..3)
        .map(|w| {
            let mut cmd = s3.cmd(&wh);
            cmd.arg("sql");
            for k in 0..12 {
                cmd.args(["-c", &format!("INSERT INTO hits VALUES ({w}, {k})")]);
            }
            cmd.stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    for w in writers {
        let out = w.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    assert_eq!(s3.scalar(&wh, "SELECT count(*) FROM hits"), "36");
    assert_eq!(
        s3.scalar(&wh, "SELECT count(DISTINCT writer * 100 + k) FROM hits"),
        "36"
    );
    assert_eq!(s3.scalar(&wh, "SELECT max(seq) FROM fstore.history"), "37");
}

#[test]
fn a_missing_bucket_is_one_clear_error() {
    let Some(s3) = s3() else { return };
    let out = s3
        .cmd("s3://no-such-bucket-fstore/wh")
        .args(["sql", "-c", "SELECT 1"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(
        stderr.starts_with("error: cannot read the registry"),
        "{stderr}"
    );
}
