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
            .current_dir(dir.path())
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{} failed:\n{}",
            file.display(),
            String::from_utf8_lossy(&out.stderr)
        );
        check(&wh, file, dir.path());
    }
}

/// What a workflow defined, recomputed another way.
fn check(wh: &Path, file: &Path, cwd: &Path) {
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
    if name.starts_with("06_") {
        // Every customer's online row equals its training-set row at the materialization
        // time, and every customer with transactions is online.
        let at = "CAST(''2024-03-31T23:59:59'' AS TIMESTAMP)";
        let offline = format!(
            "SELECT * EXCLUDE (ts)
             FROM training_set('customer_online', 'SELECT DISTINCT customer_id, {at} AS ts FROM transactions', 'ts')"
        );
        // Lookups take key values (a lookup is never a scan or a join).
        let keys = scalar(
            wh,
            "SELECT string_agg('''' || customer_id || '''', ',') FROM (SELECT DISTINCT customer_id FROM transactions)",
        );
        // (a CSV cell: quoted, quotes doubled)
        let keys = keys.trim_matches('"').replace("\"\"", "\"");
        let online = format!(
            "SELECT * EXCLUDE (_feature_ts, _materialized_at)
             FROM online_features('customer_online') WHERE customer_id IN ({keys})"
        );
        assert_eq!(
            scalar(
                wh,
                &format!(
                    "SELECT (SELECT count(*) FROM ({online} EXCEPT {offline})) + (SELECT count(*) FROM ({offline} EXCEPT {online}))"
                )
            ),
            "0",
            "06: online rows differ from the training set at the same time"
        );
        assert_eq!(
            scalar(
                wh,
                "SELECT rows FROM fstore.materializations WHERE feature_set = 'customer_online'"
            ),
            scalar(wh, "SELECT count(DISTINCT customer_id) FROM transactions")
        );
    }
    if name.starts_with("07_") {
        // The documented features are documented, the grants are in place, lineage reaches
        // the raw transactions from the set, and the statements are in the audit log.
        assert_eq!(
            scalar(
                wh,
                "SELECT count(*) FROM fstore.features WHERE feature_group = 'customer_behavior' AND feature IN ('amount_sum_30d', 'tx_count_30d') AND description IS NOT NULL"
            ),
            "2"
        );
        assert_eq!(
            scalar(
                wh,
                "SELECT string_agg(grantee || ':' || privilege || ':' || object_name, ',' ORDER BY grantee, object_name) FROM fstore.grants WHERE privilege <> 'OWNER'"
            )
            .trim_matches('"'),
            "data_scientists:SELECT:fraud_detection_v1,data_scientists:SELECT:transactions,fraud_service:READ ONLINE:customer_online"
        );
        assert_eq!(
            scalar(
                wh,
                "SELECT count(*) FROM lineage('fraud_detection_v1', 'upstream') WHERE from_name = 'transactions'"
            ),
            "1"
        );
        assert_eq!(
            scalar(
                wh,
                "SELECT count(*) FROM fstore.audit WHERE statement LIKE 'GRANT%' AND outcome = 'ok'"
            ),
            "4"
        );
    }
    if name.starts_with("04_") {
        // validate: the observed values are those of the raw transactions.
        let jan = "transaction_date >= TIMESTAMP '2024-01-01' AND transaction_date < TIMESTAMP '2024-02-01'";
        let mar = "transaction_date >= TIMESTAMP '2024-03-01' AND transaction_date < TIMESTAMP '2024-04-01'";
        assert_eq!(
            scalar(
                wh,
                "WITH v AS (SELECT * FROM validate('fraud_detection_v1') WHERE feature = 'customer_behavior.amount'),
                      raw AS (SELECT min(amount) AS lo, max(amount) AS hi,
                                     (count(*) - count(amount)) / CAST(count(*) AS DOUBLE) AS nulls,
                                     count(*) AS n FROM transactions)
                 SELECT count(*) FROM v, raw WHERE v.rows_checked = raw.n AND (
                      (v.expectation = 'min_value' AND CAST(v.observed AS DOUBLE) = raw.lo AND v.passed = (raw.lo >= 0))
                   OR (v.expectation = 'max_value' AND CAST(v.observed AS DOUBLE) = raw.hi AND v.passed = (raw.hi <= 10000))
                   OR (v.expectation = 'null_percentage' AND abs(CAST(v.observed AS DOUBLE) - raw.nulls) < 1e-12
                       AND v.passed = (raw.nulls <= 0.01)))"
            ),
            "3",
            "04: validate differs from the raw transactions"
        );
        // March only: amount's NULL fraction decides whether it is listed as a failure.
        assert_eq!(
            scalar(
                wh,
                &format!(
                    "SELECT (SELECT count(*) FROM validate('fraud_detection_v1', '2024-03-01', '2024-04-01')
                             WHERE feature = 'customer_behavior.amount' AND expectation = 'null_percentage' AND NOT passed)
                          = (SELECT CASE WHEN (count(*) - count(amount)) / CAST(count(*) AS DOUBLE) > 0.01 THEN 1 ELSE 0 END
                             FROM transactions WHERE {mar})"
                )
            ),
            "true"
        );
        // The baseline summarises January.
        assert_eq!(
            scalar(
                wh,
                &format!(
                    "SELECT b.rows = t.n AND b.nulls = t.n - t.nn FROM fstore.drift_baselines b,
                       (SELECT count(*) AS n, count(amount) AS nn FROM transactions WHERE {jan}) t
                     WHERE b.feature = 'customer_behavior.amount'"
                )
            ),
            "true"
        );
        // check_drift (from the stored summary) equals the ks_statistic / ks_pvalue / psi
        // aggregates over the January rows of the group and the March test set.
        for feature in ["amount", "tx_count_30d", "amount_mean_30d"] {
            let same = scalar(
                wh,
                &format!(
                    "WITH ks AS (SELECT statistic, p_value FROM check_drift('fraud_detection_v1', 'test_df', 'ks_test', 0.05)
                                 WHERE feature = 'customer_behavior.{feature}'),
                          psi AS (SELECT statistic FROM check_drift('fraud_detection_v1', 'test_df', 'psi', 0.2)
                                 WHERE feature = 'customer_behavior.{feature}'),
                          raw AS (SELECT ks_statistic(b, c) AS s, ks_pvalue(b, c) AS p, psi(b, c) AS psi FROM (
                                    SELECT CAST({feature} AS DOUBLE) AS b, CAST(NULL AS DOUBLE) AS c FROM customer_behavior WHERE {jan}
                                    UNION ALL SELECT NULL, CAST({feature} AS DOUBLE) FROM test_df))
                     SELECT abs(ks.statistic - raw.s) < 1e-12 AND abs(ks.p_value - raw.p) <= 1e-12 * greatest(1, raw.p)
                            AND abs(psi.statistic - raw.psi) < 1e-9
                     FROM ks, psi, raw"
                ),
            );
            assert_eq!(same, "true", "04: check_drift differs for {feature}");
        }
    }
    if name.starts_with("02_") {
        // One example per January transaction, each feature as of its own time.
        assert_eq!(
            scalar(wh, "SELECT count(*) FROM training_data"),
            scalar(
                wh,
                "SELECT count(*) FROM transactions WHERE transaction_date >= TIMESTAMP '2024-01-01' AND transaction_date < TIMESTAMP '2024-02-01'"
            )
        );
        // The price is the product's latest update at or before the transaction, computed
        // here with a join and ROW_NUMBER instead of the AS-OF operator.
        let wrong_prices = scalar(
            wh,
            "WITH ref AS (
               SELECT transaction_id, price FROM (
                 SELECT t.transaction_id, p.price,
                        row_number() OVER (PARTITION BY t.transaction_id ORDER BY p.updated_at DESC) AS rn
                 FROM transactions t JOIN products p
                   ON p.product_id = t.product_id AND p.updated_at <= t.transaction_date)
               WHERE rn = 1)
             SELECT count(*) FROM training_data d LEFT JOIN ref USING (transaction_id)
             WHERE d.price IS DISTINCT FROM ref.price",
        );
        assert_eq!(wrong_prices, "0", "02: prices are not the as-of prices");
        // Window features at the transaction's time equal the group's per-event values.
        let wrong_windows = scalar(
            wh,
            "SELECT count(*) FROM training_data d JOIN customer_behavior c
               ON c.customer_id = d.customer_id AND c.transaction_date = d.transaction_date
             WHERE c.tx_count_30d <> d.tx_count_30d",
        );
        assert_eq!(wrong_windows, "0", "02: window features differ");
        // The split is by time.
        assert_eq!(
            scalar(
                wh,
                "SELECT max(transaction_date) FILTER (WHERE split = 'train') <= min(transaction_date) FILTER (WHERE split = 'test')
                 FROM temporal_split('training_data', 0.2, 'transaction_date')"
            ),
            "true"
        );
    }
    if name.starts_with("03_") {
        use datafusion::parquet::file::reader::{FileReader, SerializedFileReader};
        let read = |p: PathBuf| {
            let f = std::fs::File::open(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
            let r = SerializedFileReader::new(f).unwrap();
            let md = r.metadata().file_metadata();
            let kv: std::collections::BTreeMap<String, String> = md
                .key_value_metadata()
                .into_iter()
                .flatten()
                .map(|k| (k.key.clone(), k.value.clone().unwrap_or_default()))
                .collect();
            (md.num_rows(), kv)
        };
        let out = cwd.join("fstore-exports");
        let (rows, kv) = read(out.join("fraud_detection_v1_v1.parquet"));
        assert_eq!(kv["fstore.feature_set"], "fraud_detection_v1");
        assert_eq!(kv["fstore.version"], "1");
        assert!(kv["fstore.definition"].contains("\"purpose\":\"fraud_detection\""));
        let january = scalar(
            wh,
            "SELECT count(*) FROM transactions WHERE transaction_date < TIMESTAMP '2024-02-01'",
        );
        assert_eq!(rows.to_string(), january);
        let (rows, _) = read(
            out.join("fraud_detection_v1_v1")
                .join("customer_behavior.parquet"),
        );
        assert_eq!(
            rows.to_string(),
            scalar(wh, "SELECT count(*) FROM transactions")
        );
        let (rows, _) = read(
            out.join("fraud_detection_v1_v1")
                .join("product_features.parquet"),
        );
        assert_eq!(
            rows.to_string(),
            scalar(wh, "SELECT count(*) FROM products")
        );
    }
}
