//! Helpers for tests that run the real `fstore` binary.
#![allow(dead_code)]

use std::path::Path;
use std::process::{Command, Output, Stdio};

/// The `fstore` binary built for this test run.
pub fn fstore() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_fstore"));
    cmd.env_remove("FSTORE_WAREHOUSE")
        .env_remove("FSTORE_CONFIG")
        .env("FSTORE_LOG", "error")
        .stdin(Stdio::null());
    cmd
}

/// Runs `fstore --warehouse W sql --format csv -c SQL`.
pub fn sql(warehouse: &Path, sql: &str) -> Output {
    fstore()
        .arg("--warehouse")
        .arg(warehouse)
        .args(["sql", "--format", "csv", "-c", sql])
        .output()
        .expect("run fstore")
}

/// Like [`sql`], failing the test with stderr when the command fails; returns stdout.
pub fn sql_ok(warehouse: &Path, query: &str) -> String {
    let out = sql(warehouse, query);
    assert!(
        out.status.success(),
        "fstore sql -c {query:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("utf8 output")
}

/// The single value of a one-row, one-column CSV result.
pub fn scalar(warehouse: &Path, query: &str) -> String {
    let out = sql_ok(warehouse, query);
    let mut lines = out.lines();
    lines.next().expect("csv header");
    lines.next().unwrap_or_default().to_string()
}
