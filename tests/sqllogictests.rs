//! The SQL test suite: runs every `sql/slt/**/*.slt` file against a fresh FStore engine on a
//! temporary warehouse, with fixed settings so output is deterministic.
//!
//! ```text
//! cargo test --test sqllogictests                   # run every file
//! cargo test --test sqllogictests -- registry       # only files whose path contains "registry"
//! cargo test --test sqllogictests -- --complete     # rewrite expected output from actual results
//! ```
//!
//! Conventions (see `sql/slt/README.md`):
//! - The pseudo-statement `RESTART ENGINE` closes the engine and opens a new one on the same
//!   warehouse — a restart, to test that definitions and data survive.
//! - `control substitution on` makes `${__TEST_DIR__}` (a temporary directory of the file) and
//!   `${FSTORE_SAMPLE}` (where the runner writes a small sample Parquet/CSV data set) usable.
//! - NULL prints as `NULL`, the empty string as `(empty)`, floats with at most 10 decimals.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use async_trait::async_trait;
use datafusion::arrow::array::{Array, RecordBatch};
use datafusion::arrow::datatypes::DataType;
use datafusion::arrow::util::display::{ArrayFormatter, FormatOptions};
use fstore::error::user_message;
use fstore::sql::ResultKind;
use fstore::sql::SqlSession;
use fstore::{Config, Engine, Principal};
use sqllogictest::{DBOutput, DefaultColumnType};

/// An error as a user sees it (what `statement error <regex>` matches).
#[derive(Debug)]
struct SqlError(String);

impl std::fmt::Display for SqlError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}
impl std::error::Error for SqlError {}

struct FStoreDb {
    config: Config,
    engine: Option<Arc<Engine>>,
    /// Who runs the statements: the trusted `slt` user, or after
    /// `SET SESSION AUTHORIZATION name` a server user with the registry's privileges.
    principal: Principal,
}

impl FStoreDb {
    async fn engine(&mut self) -> Result<Arc<Engine>, SqlError> {
        if self.engine.is_none() {
            let engine = fstore::open(&self.config)
                .await
                .map_err(|e| SqlError(user_message(&e)))?;
            self.engine = Some(engine);
        }
        Ok(Arc::clone(
            self.engine.as_ref().expect("engine was just opened"),
        ))
    }
}

#[async_trait]
impl sqllogictest::AsyncDB for FStoreDb {
    type Error = SqlError;
    type ColumnType = DefaultColumnType;

    async fn run(&mut self, sql: &str) -> Result<DBOutput<DefaultColumnType>, SqlError> {
        if sql
            .trim()
            .trim_end_matches(';')
            .eq_ignore_ascii_case("RESTART ENGINE")
        {
            self.engine = None;
            self.engine().await?;
            return Ok(DBOutput::StatementComplete(0));
        }
        // PostgreSQL's form: run the next statements as a server user.
        let words: Vec<String> = sql
            .trim()
            .trim_end_matches(';')
            .split_whitespace()
            .map(|w| w.to_ascii_lowercase())
            .collect();
        match words
            .iter()
            .map(String::as_str)
            .collect::<Vec<_>>()
            .as_slice()
        {
            ["set", "session", "authorization", name] => {
                self.principal = Principal::new(name.trim_matches('\''));
                return Ok(DBOutput::StatementComplete(0));
            }
            ["reset", "session", "authorization"] => {
                self.principal = Principal::trusted("slt");
                return Ok(DBOutput::StatementComplete(0));
            }
            _ => {}
        }
        let engine = self.engine().await?;
        let err = |e: datafusion::error::DataFusionError| SqlError(user_message(&e));
        let principal = self.principal.clone();
        let mut results = SqlSession::new(&engine)
            .run_sql(sql, &principal)
            .await
            .map_err(err)?;
        let Some(last) = results.pop() else {
            return Ok(DBOutput::StatementComplete(0));
        };
        match last.kind {
            ResultKind::Command => Ok(DBOutput::StatementComplete(last.affected.unwrap_or(0))),
            ResultKind::Query => {
                let schema = last.df.schema().as_arrow().clone();
                let batches = last.df.collect().await.map_err(err)?;
                let types = schema
                    .fields()
                    .iter()
                    .map(|f| column_type(f.data_type()))
                    .collect();
                let mut rows = Vec::new();
                for batch in &batches {
                    rows.extend(format_rows(batch).map_err(err)?);
                }
                Ok(DBOutput::Rows { types, rows })
            }
        }
    }

    async fn shutdown(&mut self) {
        self.engine = None;
    }

    fn engine_name(&self) -> &str {
        "fstore"
    }

    async fn sleep(dur: std::time::Duration) {
        tokio::time::sleep(dur).await;
    }
}

fn column_type(t: &DataType) -> DefaultColumnType {
    if t.is_integer() {
        DefaultColumnType::Integer
    } else if t.is_floating() || matches!(t, DataType::Decimal128(..) | DataType::Decimal256(..)) {
        DefaultColumnType::FloatingPoint
    } else {
        DefaultColumnType::Text
    }
}

fn format_rows(batch: &RecordBatch) -> datafusion::error::Result<Vec<Vec<String>>> {
    let options = FormatOptions::default().with_null("NULL");
    let formatters = batch
        .columns()
        .iter()
        .map(|c| ArrayFormatter::try_new(c.as_ref(), &options))
        .collect::<Result<Vec<_>, _>>()?;
    let mut rows = Vec::with_capacity(batch.num_rows());
    for r in 0..batch.num_rows() {
        let mut row = Vec::with_capacity(batch.num_columns());
        for (c, col) in batch.columns().iter().enumerate() {
            let cell = if col.is_null(r) {
                "NULL".to_string()
            } else if col.data_type().is_floating() {
                format_float(formatters[c].value(r).to_string())
            } else {
                formatters[c].value(r).to_string()
            };
            row.push(if cell.is_empty() {
                "(empty)".to_string()
            } else {
                cell
            });
        }
        rows.push(row);
    }
    Ok(rows)
}

/// At most 10 decimals, no trailing zeros: stable across platforms and summation orders.
fn format_float(s: String) -> String {
    match s.parse::<f64>() {
        Ok(v) if v.is_finite() => {
            let r = format!("{v:.10}");
            let r = r.trim_end_matches('0').trim_end_matches('.');
            if r == "-0" {
                "0".to_string()
            } else {
                r.to_string()
            }
        }
        _ => s,
    }
}

fn slt_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    let mut entries: Vec<_> = entries.flatten().map(|e| e.path()).collect();
    entries.sort();
    for p in entries {
        if p.is_dir() {
            slt_files(&p, out);
        } else if p.extension().is_some_and(|e| e == "slt") {
            out.push(p);
        }
    }
}

/// A small data set on disk for tests of external tables.
async fn write_sample_files(dir: &Path) -> datafusion::error::Result<()> {
    let config = Config {
        warehouse: dir.join("scratch-warehouse").to_string_lossy().to_string(),
        target_partitions: Some(1),
        ..Config::default()
    };
    let engine = fstore::open(&config).await?;
    let p = Principal::trusted("setup");
    let d = dir.display();
    SqlSession::new(&engine)
        .run_sql(
            &format!(
                "COPY (SELECT * FROM sample_transactions(1000, 7) ORDER BY transaction_id) TO '{d}/transactions.parquet' STORED AS PARQUET;
                 COPY (SELECT * FROM sample_products(20, 7)) TO '{d}/products.csv' STORED AS CSV OPTIONS ('format.has_header' 'true');
                 COPY (SELECT * FROM sample_transactions(1000, 7) WHERE customer_category = 'gold') TO '{d}/partitioned/category=gold/part.parquet' STORED AS PARQUET;
                 COPY (SELECT * FROM sample_transactions(1000, 7) WHERE customer_category = 'silver') TO '{d}/partitioned/category=silver/part.parquet' STORED AS PARQUET;"
            ),
            &p,
        )
        .await?;
    Ok(())
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> std::process::ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let complete = args.iter().any(|a| a == "--complete");
    let filters: Vec<&String> = args.iter().filter(|a| !a.starts_with('-')).collect();
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("sql/slt");
    let mut files = Vec::new();
    slt_files(&root, &mut files);
    files.retain(|f| {
        filters.is_empty()
            || filters
                .iter()
                .any(|flt| f.to_string_lossy().contains(flt.as_str()))
    });

    let sample_dir = tempfile::tempdir().expect("temp dir");
    if let Err(e) = write_sample_files(sample_dir.path()).await {
        eprintln!("cannot write the sample files: {}", user_message(&e));
        return std::process::ExitCode::FAILURE;
    }

    let mut failures = 0;
    for file in &files {
        let rel = file
            .strip_prefix(&root)
            .unwrap_or(file)
            .display()
            .to_string();
        let warehouse = tempfile::tempdir().expect("temp dir");
        let config = Config {
            warehouse: warehouse.path().to_string_lossy().to_string(),
            target_partitions: Some(4),
            memory_limit: Some("4GiB".into()),
            ..Config::default()
        };
        let make = {
            let config = config.clone();
            move || {
                let config = config.clone();
                async move {
                    Ok::<_, SqlError>(FStoreDb {
                        config,
                        engine: None,
                        principal: Principal::trusted("slt"),
                    })
                }
            }
        };
        let mut runner = sqllogictest::Runner::new(make);
        runner.set_var(
            "FSTORE_SAMPLE".to_string(),
            sample_dir.path().to_string_lossy().to_string(),
        );
        runner.with_column_validator(sqllogictest::strict_column_validator);
        let started = std::time::Instant::now();
        let outcome = if complete {
            runner
                .update_test_file(
                    file,
                    " ",
                    sqllogictest::default_validator,
                    sqllogictest::default_normalizer,
                    sqllogictest::strict_column_validator,
                )
                .await
                .map_err(|e| e.to_string())
        } else {
            runner
                .run_file_async(file)
                .await
                .map_err(|e| e.display(false).to_string())
        };
        match outcome {
            Ok(()) => println!("ok    {rel} ({:.1?})", started.elapsed()),
            Err(e) => {
                failures += 1;
                println!("FAIL  {rel}\n{e}\n");
            }
        }
    }
    println!("{} files, {failures} failed", files.len());
    if failures > 0 || files.is_empty() {
        std::process::ExitCode::FAILURE
    } else {
        std::process::ExitCode::SUCCESS
    }
}
