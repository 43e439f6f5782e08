//! The registry seen from real processes: what one `fstore` process commits, the next one
//! reads; a process killed with SIGKILL in the middle of commits never corrupts the registry
//! nor loses a statement that returned; concurrent writers never overwrite each other; bad
//! input gets one clear error line and a non-zero exit and changes nothing.

mod common;

use std::collections::BTreeSet;
use std::io::{BufRead, BufReader};
use std::process::Stdio;
use std::time::{Duration, Instant};

use common::{fstore, scalar, sql, sql_ok};

#[test]
fn separate_processes_agree_on_external_tables_ctas_and_views() {
    let dir = tempfile::tempdir().unwrap();
    let wh = dir.path().join("wh");
    let data = dir.path().join("data.parquet");
    sql_ok(
        &wh,
        &format!(
            "COPY (SELECT * FROM sample_transactions(5000)) TO '{}' STORED AS PARQUET",
            data.display()
        ),
    );
    sql_ok(
        &wh,
        &format!(
            "CREATE EXTERNAL TABLE t STORED AS PARQUET LOCATION '{}'",
            data.display()
        ),
    );
    assert_eq!(scalar(&wh, "SELECT count(*) FROM t"), "5000");

    sql_ok(
        &wh,
        "CREATE TABLE gold AS SELECT * FROM t WHERE customer_category = 'gold'",
    );
    let expected = scalar(
        &wh,
        "SELECT count(*) FROM t WHERE customer_category = 'gold'",
    );
    assert_eq!(scalar(&wh, "SELECT count(*) FROM gold"), expected);

    sql_ok(
        &wh,
        "CREATE VIEW per_customer AS SELECT customer_id, count(*) AS n FROM t GROUP BY customer_id",
    );
    assert_eq!(scalar(&wh, "SELECT sum(n) FROM per_customer"), "5000");

    // A relative warehouse and a relative LOCATION, used from another working directory.
    let work = dir.path().join("work");
    std::fs::create_dir_all(&work).unwrap();
    std::fs::copy(&data, work.join("rel.parquet")).unwrap();
    let out = fstore()
        .current_dir(&work)
        .args(["--warehouse", "../wh", "sql", "-c"])
        .arg("CREATE EXTERNAL TABLE rel STORED AS PARQUET LOCATION 'rel.parquet'")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(scalar(&wh, "SELECT count(*) FROM rel"), "5000");
}

/// Starts a writer that runs `statements` one by one, printing `OK` after each one returns.
fn spawn_writer(warehouse: &std::path::Path, statements: &[String]) -> std::process::Child {
    fstore()
        .arg("--warehouse")
        .arg(warehouse)
        .args(["sql", "-c"])
        .args(
            statements
                .iter()
                .flat_map(|s| [s.as_str(), "-c"])
                .take(statements.len() * 2 - 1),
        )
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn writer")
}

#[test]
fn killed_writers_never_corrupt_the_registry_nor_lose_returned_statements() {
    let dir = tempfile::tempdir().unwrap();
    let wh = dir.path().join("wh");
    sql_ok(&wh, "CREATE TABLE log (round INT, k INT)");
    let mut returned_total = 0;
    // Kill after varying delays, so kills land in every phase: planning, writing Parquet,
    // syncing, creating the log record, writing a checkpoint.
    for round in 0..12 {
        let statements: Vec<String> = (0..400)
            .map(|k| {
                if k % 10 == 9 {
                    format!("CREATE OR REPLACE TABLE snap_{round} AS SELECT * FROM log")
                } else {
                    format!("INSERT INTO log VALUES ({round}, {k})")
                }
            })
            .collect();
        let mut child = spawn_writer(&wh, &statements);
        let stdout = child.stdout.take().unwrap();
        let delay = Duration::from_millis(150 + 97 * round as u64 % 600);
        let reader = std::thread::spawn(move || {
            BufReader::new(stdout)
                .lines()
                .map_while(Result::ok)
                .filter(|l| l.starts_with("OK"))
                .count()
        });
        let started = Instant::now();
        while started.elapsed() < delay {
            std::thread::sleep(Duration::from_millis(5));
        }
        child.kill().expect("SIGKILL the writer");
        child.wait().unwrap();
        let returned = reader.join().unwrap();
        returned_total += returned;
        eprintln!("round {round}: killed after {delay:?}, {returned} statements had returned");

        // The registry loads, and every statement that returned is there: the inserts of this
        // round form a prefix 0..m of the script with m >= what the writer reported.
        let out = sql_ok(
            &wh,
            &format!("SELECT k FROM log WHERE round = {round} ORDER BY k"),
        );
        let ks: Vec<u32> = out.lines().skip(1).map(|l| l.parse().unwrap()).collect();
        let committed_statements = ks.last().map(|&k| k as usize + 1).unwrap_or(0);
        let expected: Vec<u32> = (0..committed_statements as u32)
            .filter(|k| k % 10 != 9)
            .collect();
        assert_eq!(
            ks, expected,
            "round {round}: inserts are not a prefix of the script"
        );
        assert!(
            committed_statements + 1 >= returned,
            "round {round}: {returned} statements returned but only {committed_statements} are committed"
        );
    }
    assert!(
        returned_total > 0,
        "no writer ever committed: the delays are too short to test anything"
    );
    // The history is gap-free and consistent with the data.
    let seqs = sql_ok(&wh, "SELECT seq FROM fstore.history ORDER BY seq");
    let seqs: Vec<u64> = seqs.lines().skip(1).map(|l| l.parse().unwrap()).collect();
    assert_eq!(seqs, (1..=seqs.len() as u64).collect::<Vec<_>>());
    let inserts = scalar(
        &wh,
        "SELECT count(*) FROM fstore.history WHERE action = 'INSERT'",
    );
    assert_eq!(inserts, scalar(&wh, "SELECT count(*) FROM log"));
    // A new writer can go on committing.
    sql_ok(&wh, "INSERT INTO log VALUES (99, 0)");
}

#[test]
fn concurrent_writers_never_overwrite_each_other() {
    let dir = tempfile::tempdir().unwrap();
    let wh = dir.path().join("wh");
    sql_ok(&wh, "CREATE TABLE hits (writer INT, k INT)");
    let writers: Vec<_> = (0..3)
        .map(|w| {
            let statements: Vec<String> = (0..25)
                .map(|k| format!("INSERT INTO hits VALUES ({w}, {k})"))
                .collect();
            spawn_writer(&wh, &statements)
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
    let rows = sql_ok(&wh, "SELECT writer, k FROM hits ORDER BY writer, k");
    let got: BTreeSet<String> = rows.lines().skip(1).map(String::from).collect();
    let want: BTreeSet<String> = (0..3)
        .flat_map(|w| (0..25).map(move |k| format!("{w},{k}")))
        .collect();
    assert_eq!(got, want);
    assert_eq!(scalar(&wh, "SELECT count(*) FROM fstore.history"), "76");
    assert_eq!(scalar(&wh, "SELECT max(seq) FROM fstore.history"), "76");
}

/// One error line, exit code 1, and the registry untouched.
fn assert_clean_failure(wh: &std::path::Path, query: &str, expected: &str) {
    let before = scalar(wh, "SELECT count(*) FROM fstore.history");
    let out = sql(wh, query);
    assert_eq!(out.status.code(), Some(1), "{query}");
    let stderr = String::from_utf8_lossy(&out.stderr);
    let lines: Vec<&str> = stderr.lines().collect();
    assert_eq!(
        lines.len(),
        1,
        "expected one error line for {query:?}, got: {stderr}"
    );
    assert!(lines[0].starts_with("error: "), "{stderr}");
    assert!(
        lines[0].contains(expected),
        "{query:?}: {stderr} should mention {expected:?}"
    );
    assert_eq!(
        scalar(wh, "SELECT count(*) FROM fstore.history"),
        before,
        "{query} changed the registry"
    );
}

#[test]
fn bad_input_gets_one_clear_error_line_and_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let wh = dir.path().join("wh");
    sql_ok(&wh, "CREATE TABLE t AS SELECT 1 AS x");
    assert_clean_failure(&wh, "SELEC 1", "syntax error in SELEC statement");
    assert_clean_failure(
        &wh,
        "SELECT * FROM missing_table",
        "table 'fstore.public.missing_table' not found",
    );
    assert_clean_failure(
        &wh,
        "CREATE EXTERNAL TABLE e STORED AS PARQUET LOCATION '/no/such/file.parquet'",
        "LOCATION '/no/such/file.parquet' does not exist",
    );
    assert_clean_failure(
        &wh,
        "CREATE TABLE t AS SELECT 2 AS x",
        "table 't' already exists",
    );
    // A script stops at the first failing statement and says which one it was; what ran
    // before it stays committed.
    let out = sql(
        &wh,
        "CREATE TABLE u AS SELECT 1 AS x;\nSELECT * FROM nope; CREATE TABLE w AS SELECT 1 AS x",
    );
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        stderr.trim(),
        "error: statement 2 (line 2): table 'fstore.public.nope' not found"
    );
    assert_eq!(scalar(&wh, "SELECT count(*) FROM u"), "1");
    assert!(!sql(&wh, "SELECT * FROM w").status.success());

    // A warehouse that cannot be used.
    let file = dir.path().join("a-file");
    std::fs::write(&file, "x").unwrap();
    let out = sql(&file.join("wh"), "SELECT 1");
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(stderr.contains("is not writable"), "{stderr}");

    // Bad flags are usage errors (exit 2).
    let out = fstore()
        .args(["sql", "--format", "xml", "-c", "SELECT 1"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let out = fstore()
        .args(["--memory-limit", "lots", "--warehouse"])
        .arg(&wh)
        .args(["sql", "-c", "SELECT 1"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("invalid size 'lots'"));
}

#[test]
fn a_query_past_the_memory_limit_fails_cleanly() {
    let dir = tempfile::tempdir().unwrap();
    let wh = dir.path().join("wh");
    let out = fstore()
        .arg("--warehouse")
        .arg(&wh)
        .args(["--memory-limit", "16MiB", "sql", "-c"])
        .arg("SELECT transaction_id % 7 AS g, array_agg(customer_id) AS all_customers FROM sample_transactions(2000000) GROUP BY 1")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("resources exhausted"), "{stderr}");
    // The process is fine and the warehouse usable afterwards.
    assert_eq!(scalar(&wh, "SELECT 1"), "1");
}

#[test]
fn scripts_run_from_files_and_stdin_with_every_format() {
    let dir = tempfile::tempdir().unwrap();
    let wh = dir.path().join("wh");
    let script = dir.path().join("s.sql");
    std::fs::write(
        &script,
        "-- a comment\nCREATE TABLE s AS SELECT * FROM (VALUES (1, 'a'), (2, NULL)) AS v(id, name);\nSELECT * FROM s ORDER BY id;\n",
    )
    .unwrap();
    let out = fstore()
        .arg("--warehouse")
        .arg(&wh)
        .args(["sql", "-f"])
        .arg(&script)
        .output()
        .unwrap();
    assert!(out.status.success());
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("| id | name |"), "{stdout}");
    assert!(stdout.contains("(2 rows)"), "{stdout}");

    let json = fstore()
        .arg("--warehouse")
        .arg(&wh)
        .args([
            "sql",
            "--format",
            "json",
            "-c",
            "SELECT * FROM s ORDER BY id",
        ])
        .output()
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&json.stdout),
        "{\"id\":1,\"name\":\"a\"}\n{\"id\":2}\n"
    );

    let mut child = fstore()
        .arg("--warehouse")
        .arg(&wh)
        .args(["sql", "--format", "csv"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write;
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b"SELECT count(*) AS n FROM s;")
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout), "n\n2\n");
}

#[test]
fn demo_writes_the_sample_data_set() {
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
    assert_eq!(scalar(&wh, "SELECT count(*) FROM transactions"), "20000");
    assert_eq!(
        scalar(&wh, "SELECT count(DISTINCT customer_id) FROM transactions"),
        "200"
    );
    assert_eq!(
        scalar(&wh, "SELECT count(DISTINCT product_id) FROM products"),
        "20"
    );
    // Running it again replaces the data rather than failing or duplicating it.
    let out = fstore()
        .arg("--warehouse")
        .arg(&wh)
        .args(["demo", "--rows", "1000"])
        .output()
        .unwrap();
    assert!(out.status.success());
    assert_eq!(scalar(&wh, "SELECT count(*) FROM transactions"), "1000");
}

/// Runs `fstore --warehouse W sql --format FORMAT -c SQL`.
fn sql_as(warehouse: &std::path::Path, format: &str, query: &str) -> std::process::Output {
    fstore()
        .arg("--warehouse")
        .arg(warehouse)
        .args(["sql", "--format", format, "-c", query])
        .output()
        .unwrap()
}

#[test]
fn csv_writes_nested_values_as_json_text() {
    let dir = tempfile::tempdir().unwrap();
    let wh = dir.path().join("wh");
    let query = "SELECT make_array('a','b') AS l, named_struct('x', 1, 'y', 'z') AS s, 3 AS n \
                 UNION ALL SELECT make_array('c', NULL), named_struct('x', NULL, 'y', 'w'), 4 \
                 UNION ALL SELECT NULL, NULL, NULL ORDER BY n NULLS LAST";
    assert_eq!(
        sql_ok(&wh, query),
        "l,s,n\n\
         \"[\"\"a\"\",\"\"b\"\"]\",\"{\"\"x\"\":1,\"\"y\"\":\"\"z\"\"}\",3\n\
         \"[\"\"c\"\",null]\",\"{\"\"x\"\":null,\"\"y\"\":\"\"w\"\"}\",4\n\
         ,,\n"
    );
    // Maps (string and non-string keys), large and fixed-size lists, nesting, and text that
    // needs JSON escaping; the columns beside them keep their usual CSV form.
    assert_eq!(
        sql_ok(
            &wh,
            "SELECT map([1, 2], ['a', NULL]) AS m, map(['k'], [1]) AS ms, \
             arrow_cast(make_array(1, NULL), 'LargeList(Int64)') AS ll, \
             arrow_cast(make_array(1, 2), 'FixedSizeList(2, Int64)') AS fl, \
             make_array(named_struct('t', TIMESTAMP '2024-01-01 00:00:00', 'q', 'say \"hi\", ok')) AS ls, \
             TIMESTAMP '2024-01-01 00:00:00' AS ts, 1.5 AS d, 'x,y' AS txt",
        ),
        "m,ms,ll,fl,ls,ts,d,txt\n\
         \"{\"\"1\"\":\"\"a\"\",\"\"2\"\":null}\",\"{\"\"k\"\":1}\",\"[1,null]\",\"[1,2]\",\
         \"[{\"\"t\"\":\"\"2024-01-01T00:00:00\"\",\"\"q\"\":\"\"say \\\"\"hi\\\"\", ok\"\"}]\",\
         2024-01-01T00:00:00,1.5,\"x,y\"\n"
    );
    // JSON lines nest natively; the table shows Arrow's rendering.
    let json = sql_as(&wh, "json", query);
    assert!(json.status.success());
    assert_eq!(
        String::from_utf8_lossy(&json.stdout),
        "{\"l\":[\"a\",\"b\"],\"s\":{\"x\":1,\"y\":\"z\"},\"n\":3}\n\
         {\"l\":[\"c\",null],\"s\":{\"y\":\"w\"},\"n\":4}\n\
         {}\n"
    );
    let table = sql_as(&wh, "table", query);
    assert!(table.status.success());
    let table = String::from_utf8_lossy(&table.stdout);
    assert!(table.contains("| [a, b] | {x: 1, y: z} | 3 |"), "{table}");
    assert!(table.ends_with("(3 rows)\n"), "{table}");
}

#[test]
fn system_tables_with_list_columns_print_as_csv() {
    let dir = tempfile::tempdir().unwrap();
    let wh = dir.path().join("wh");
    sql_ok(
        &wh,
        "CREATE TABLE tx AS SELECT 'a' AS k, TIMESTAMP '2024-01-01 00:00:00' AS ts, 1.5 AS v; \
         CREATE FEATURE GROUP g ENTITY (k) TIMESTAMP ts FROM tx FEATURES (v) TAGS ('team:ml', 'pii:no')",
    );
    assert_eq!(
        sql_ok(&wh, "SELECT * FROM fstore.features"),
        "feature_group,feature,kind,data_type,definition,window,description,tags,owner\n\
         g,v,column,Float64,v,,,\"[\"\"team:ml\"\",\"\"pii:no\"\"]\",\n"
    );
}

#[test]
fn a_failing_statement_prints_nothing_of_its_result() {
    let dir = tempfile::tempdir().unwrap();
    let wh = dir.path().join("wh");
    // Fails while planning (the cast is folded), and while executing: the first batches of
    // 8192 rows succeed, a later one fails.
    let failing = [
        ("SELECT CAST('x' AS INT)", "Cannot cast string 'x'"),
        (
            "SELECT CAST(CASE WHEN value <= 90000 THEN '1' ELSE 'x' END AS INT) AS n \
             FROM generate_series(1, 100000)",
            "Cannot cast string 'x'",
        ),
    ];
    for format in ["csv", "json", "table"] {
        let first = sql_as(&wh, format, "SELECT 1 AS a");
        assert!(first.status.success());
        for (statement, message) in failing {
            let out = sql_as(&wh, format, &format!("SELECT 1 AS a; {statement}"));
            assert_eq!(out.status.code(), Some(1), "{format}: {statement}");
            let stdout = String::from_utf8_lossy(&out.stdout);
            assert!(
                out.stdout == first.stdout,
                "{format}: {statement} left part of its result on stdout ({} lines): {:.200}",
                stdout.lines().count(),
                stdout
            );
            let stderr = String::from_utf8_lossy(&out.stderr);
            assert_eq!(stderr.lines().count(), 1, "{stderr}");
            assert!(
                stderr.starts_with("error: statement 2 (line 1): ") && stderr.contains(message),
                "{format}: {stderr}"
            );
        }
    }
}

/// Every file under `dir`, by relative path, with its bytes.
fn read_tree(dir: &std::path::Path) -> std::collections::BTreeMap<String, Vec<u8>> {
    let mut out = std::collections::BTreeMap::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
            } else {
                let rel = path
                    .strip_prefix(dir)
                    .unwrap()
                    .to_string_lossy()
                    .replace('\\', "/");
                out.insert(rel, std::fs::read(&path).unwrap());
            }
        }
    }
    out
}

#[test]
fn catalog_writes_a_markdown_page_per_group_and_set() {
    let dir = tempfile::tempdir().unwrap();
    let wh = dir.path().join("wh");
    sql_ok(
        &wh,
        "CREATE TABLE tx AS SELECT customer_id, CAST(ts AS TIMESTAMP) AS ts, amount \
         FROM (VALUES ('a', '2024-01-01T00:00:00', 10.0), ('b', '2024-01-05T00:00:00', 5.0)) \
         AS v(customer_id, ts, amount)",
    );
    sql_ok(
        &wh,
        "CREATE FEATURE GROUP cb ENTITY (customer_id) TIMESTAMP ts FROM tx \
         FEATURES (amount, amount_sum_30d = sum(amount) WINDOW '30 days') \
         DESCRIPTION 'Customer spending'",
    );
    sql_ok(
        &wh,
        "COMMENT ON FEATURE cb.amount IS 'Amount of the transaction, in EUR'",
    );
    sql_ok(
        &wh,
        "CREATE EXPECTATION ON FEATURE cb.amount (min_value = 0)",
    );
    sql_ok(
        &wh,
        "CREATE FEATURE SET fs FEATURES (cb.amount, cb.amount_sum_30d) \
         WITH (purpose = 'fraud') DESCRIPTION 'First cut'",
    );

    let out_dir = dir.path().join("catalog");
    let run = || {
        fstore()
            .arg("--warehouse")
            .arg(&wh)
            .arg("catalog")
            .arg("--out")
            .arg(&out_dir)
            .output()
            .unwrap()
    };
    let out = run();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        format!(
            "catalog written to {}: 1 feature groups, 1 feature sets, 1 undocumented features\n",
            out_dir.display()
        )
    );
    let files = read_tree(&out_dir);
    assert_eq!(
        files.keys().map(String::as_str).collect::<Vec<_>>(),
        ["README.md", "groups/cb.md", "sets/fs.md"]
    );
    let text = |p: &str| String::from_utf8(files[p].clone()).unwrap();

    let readme = text("README.md");
    let undocumented = readme
        .split("## Undocumented features")
        .nth(1)
        .expect("section");
    assert!(undocumented.contains("`cb.amount_sum_30d`"), "{readme}");
    assert!(!undocumented.contains("`cb.amount`"), "{readme}");
    assert!(readme.contains("[`cb`](groups/cb.md)") && readme.contains("[`fs`](sets/fs.md)"));

    let group = text("groups/cb.md");
    assert!(
        group.contains("Amount of the transaction, in EUR"),
        "{group}"
    );
    assert!(group.contains("`sum(amount) WINDOW '30 days'`"), "{group}");
    assert!(
        group.contains("| `amount` | `min_value` | `>= 0` |"),
        "{group}"
    );
    let mermaid = group.split("```mermaid\n").nth(1).expect("a mermaid block");
    let mermaid = mermaid.split("```").next().unwrap();
    assert!(mermaid.starts_with("flowchart LR\n"), "{mermaid}");
    assert!(mermaid.contains("table_tx[\"table: tx\"]"), "{mermaid}");
    assert!(
        mermaid.contains("table_tx -->|source| feature_group_cb_"),
        "{mermaid}"
    );
    assert!(mermaid.contains("-->|pins| feature_set_fs_1"), "{mermaid}");

    let set = text("sets/fs.md");
    assert!(
        set.contains("### Version 1") && set.contains("| description | First cut |"),
        "{set}"
    );
    assert!(set.contains("| `purpose` | fraud |"), "{set}");
    assert!(
        set.contains("Offline: the set is not served online."),
        "{set}"
    );
    assert!(set.contains("```mermaid\nflowchart LR\n"), "{set}");

    // A second run on the same registry writes the same bytes, and leaves other files be.
    std::fs::write(out_dir.join("notes.txt"), "ours").unwrap();
    let again = run();
    assert!(
        again.status.success(),
        "{}",
        String::from_utf8_lossy(&again.stderr)
    );
    let mut second = read_tree(&out_dir);
    assert_eq!(second.remove("notes.txt").as_deref(), Some(&b"ours"[..]));
    assert_eq!(second, files);

    // An output path that is a file: one error line, non-zero exit.
    let not_dir = dir.path().join("file.txt");
    std::fs::write(&not_dir, "x").unwrap();
    let bad = fstore()
        .arg("--warehouse")
        .arg(&wh)
        .args(["catalog", "--out"])
        .arg(&not_dir)
        .output()
        .unwrap();
    assert!(!bad.status.success());
    let stderr = String::from_utf8_lossy(&bad.stderr);
    assert!(
        stderr.starts_with("error: cannot create directory"),
        "{stderr}"
    );
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
}
