//! The command-line front: output formats, the interactive shell, and the commands that
//! `main.rs` dispatches to. Every command reports an error as one line and a non-zero exit.

pub mod catalog;
pub mod output;
pub mod repl;

use std::io::Write;
use std::time::Duration;

use datafusion::error::Result;
use indicatif::{ProgressBar, ProgressStyle};

use crate::engine::Engine;
use crate::error::{FStoreError, user_message};
use crate::principal::Principal;
use crate::sql::ResultKind;
use output::Format;

/// Runs every statement of `sql` and prints each result. Parses the whole text first, so a
/// syntax error anywhere runs nothing. On failure the error names the statement; what the
/// statements before it printed stays on `out`, the failing one prints nothing (unless
/// its result had already outgrown [`output::HOLD_BYTES`] and was streaming; see [`output`]).
pub async fn run_script(
    engine: &Engine,
    sql: &str,
    format: Format,
    out: &mut dyn Write,
) -> Result<()> {
    let statements = crate::sql::SqlSession::new(engine).parse(sql)?;
    let principal = Principal::local_user();
    let many = statements.len() > 1;
    for (i, stmt) in statements.iter().enumerate() {
        let spinner = spinner(&format!("statement {} …", i + 1));
        let bar = spinner.clone();
        engine.set_progress(Some(std::sync::Arc::new(move |m: &str| {
            bar.set_message(m.to_string())
        })));
        let result = async {
            let result = crate::sql::SqlSession::new(engine)
                .execute(stmt, &principal)
                .await?;
            match result.kind {
                ResultKind::Query => {
                    let (df, limit) = crate::engine::options::query_timeout_of(result.df);
                    let print = output::print_query(df, format, out);
                    match limit {
                        Some(limit) => tokio::time::timeout(limit, print).await.unwrap_or_else(|_| {
                            Err(FStoreError::new(
                                crate::error::ErrorKind::Cancelled,
                                format!("query stopped: it ran longer than its time limit of {limit:?} (fstore.query_timeout, --query-timeout)"),
                            )
                            .into())
                        }),
                        None => print.await,
                    }
                }
                ResultKind::Command => output::print_command(result.affected, format, out),
            }
        }
        .await;
        engine.set_progress(None);
        spinner.finish_and_clear();
        if let Err(e) = result {
            if many {
                return Err(FStoreError::new(
                    crate::error::ErrorKind::of(&e),
                    format!(
                        "statement {} (line {}): {}",
                        i + 1,
                        stmt.line,
                        user_message(&e)
                    ),
                )
                .into());
            }
            return Err(e);
        }
    }
    Ok(())
}

/// A spinner on stderr for long statements; invisible when stderr is not a terminal.
pub fn spinner(message: &str) -> ProgressBar {
    let pb = ProgressBar::new_spinner();
    pb.set_style(
        ProgressStyle::with_template("{spinner} {msg} {elapsed}")
            .unwrap_or_else(|_| ProgressStyle::default_spinner()),
    );
    pb.set_message(message.to_string());
    pb.enable_steady_tick(Duration::from_millis(120));
    pb
}

/// `fstore demo`: the sample data set as tables `transactions` and `products`.
pub async fn demo(engine: &Engine, rows: u64, seed: u64, out: &mut dyn Write) -> Result<()> {
    let principal = Principal::local_user();
    let statements =
        crate::sql::SqlSession::new(engine).parse(&crate::sample::demo_sql(rows, seed))?;
    let pb = spinner(&format!("generating {rows} transactions"));
    for stmt in &statements {
        let r = crate::sql::SqlSession::new(engine)
            .execute(stmt, &principal)
            .await;
        if let Err(e) = r {
            pb.finish_and_clear();
            return Err(e);
        }
        pb.set_message("generating products".to_string());
    }
    pb.finish_and_clear();
    let products = crate::sample::products_for(rows);
    let _ = writeln!(
        out,
        "sample data written to {}: transactions ({rows} rows, {} customers), products ({products} products with price history)",
        engine.warehouse().url(),
        crate::sample::customers_for(rows)
    );
    Ok(())
}
