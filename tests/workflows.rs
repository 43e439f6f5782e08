//! Every script of `sql/workflows/` runs with `fstore sql -f` on the demo data (in file
//! order, on one warehouse, as a user following the guide would), and what each one defines
//! is checked against an independent computation over the raw transactions.

mod common;

use std::path::{Path, PathBuf};

use common::{fstore, scalar};

fn workflows() -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("sql/workflows");
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .expect("sql/workflows")
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "sql"))
        .collect();
    files.sort();
    files
}

#[test]
fn every_workflow_runs_on_the_demo_data() {
    let dir = tempfile::tempdir().unwrap();
    let wh = dir.path().join("wh");
    let out = fstore()
        .arg("--warehouse")
        .arg(&wh)
        .args(["demo", "--rows", "20000"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let files = workflows();
    assert!(!files.is_empty());
    for file in &files {
        let out = fstore()
            .arg("--warehouse")
            .arg(&wh)
            .args(["sql", "-f"])
            .arg(file)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{} failed:\n{}",
            file.display(),
            String::from_utf8_lossy(&out.stderr)
        );
        check(&wh, file);
    }
}

/// What a workflow defined, recomputed another way.
fn check(wh: &Path, file: &Path) {
    let name = file.file_name().unwrap().to_string_lossy();
    if name.starts_with("01_") {
        // The 30-day features equal a correlated aggregate over the raw transactions, for
        // every transaction (window (t - 30 days, t]).
        let mismatches = scalar(
            wh,
            "WITH f AS (SELECT *, row_number() OVER () AS rn FROM customer_behavior),
             raw AS (
               SELECT f.rn, any_value(f.tx_count_30d) AS n, any_value(f.amount_sum_30d) AS s,
                      any_value(f.amount_mean_30d) AS m,
                      count(*) AS raw_n, sum(t.amount) AS raw_s, avg(t.amount) AS raw_m
               FROM f JOIN transactions t
                 ON t.customer_id = f.customer_id
                AND t.transaction_date <= f.transaction_date
                AND t.transaction_date > f.transaction_date - INTERVAL '30 days'
               GROUP BY f.rn)
             SELECT count(*) FROM raw
             WHERE n <> raw_n OR abs(coalesce(s, 0) - coalesce(raw_s, 0)) > 1e-6
                OR abs(coalesce(m, 0) - coalesce(raw_m, 0)) > 1e-9
                OR (m IS NULL) <> (raw_m IS NULL)",
        );
        assert_eq!(
            mismatches, "0",
            "01: window features differ from the raw data"
        );
        assert_eq!(
            scalar(wh, "SELECT count(*) FROM customer_behavior"),
            "20000"
        );
    }
}
