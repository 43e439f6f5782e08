#!/usr/bin/env python3
"""Validation and drift side by side.

1. validate: a feature group of 5 numeric features over a Parquet table of N rows (10M at
   the default scale), 3 expectations per feature (min_value, max_value, null_percentage).
   `SELECT * FROM validate('s')` against the plain aggregate a user would write by hand,
   `SELECT count(*), count(f1), min(f1), max(f1), … FROM ev` — the floor for one pass.
2. check_drift: KS of ~3M current values against a ~3M-value January baseline:
   `SET DRIFT BASELINE` (once), then `check_drift(…, 'ks_test', 0.05)`, against
   scipy.stats.ks_2samp on NumPy arrays already in memory (and with the Parquet read).

FStore runs as `fstore sql -c …` processes (wall time of the process, so start-up and the
registry load are included); 1 warm-up + N timed runs, median reported. The results of
check_drift and ks_2samp are compared (|ΔD|, |Δp|).

Usage:
  cargo build --release --bin fstore
  python benches/quality_compare.py                       # 10M rows, 3M + 3M drift
  python benches/quality_compare.py --rows 1000000 --drift-rows 300000 --repeats 3
  FSTORE_RELEASE_BIN=target/release/fstore python benches/quality_compare.py
"""
import argparse
import json
import os
import statistics
import subprocess
import tempfile
import time

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FEATS = ["f1", "f2", "f3", "f4", "f5"]


def fstore_bin():
    return os.environ.get("FSTORE_RELEASE_BIN", os.path.join(ROOT, "target", "release", "fstore"))


def run_sql(warehouse, *statements):
    args = [fstore_bin(), "--warehouse", warehouse, "sql", "--format", "json"]
    for s in statements:
        args += ["-c", s]
    started = time.perf_counter()
    done = subprocess.run(args, capture_output=True, text=True)
    elapsed = time.perf_counter() - started
    if done.returncode != 0:
        raise RuntimeError(done.stderr)
    rows = [json.loads(l) for l in done.stdout.splitlines() if l.strip()]
    return rows, elapsed


def timed(warehouse, sql, repeats):
    run_sql(warehouse, sql)  # warm-up
    times, rows = [], None
    for _ in range(repeats):
        rows, t = run_sql(warehouse, sql)
        times.append(t)
    return rows, statistics.median(times)


def times(rng, n, start, days):
    us = np.sort(rng.integers(0, days * 86_400_000_000, n))
    return pa.array(np.datetime64(start, "us") + us.astype("timedelta64[us]"), pa.timestamp("us"))


def write_events(path, rows, seed):
    rng = np.random.default_rng(seed)
    cols = {"id": rng.integers(0, 100_000, rows), "ts": times(rng, rows, "2024-01-01", 90)}
    for i, f in enumerate(FEATS):
        v = rng.lognormal(3 + i * 0.1, 0.7, rows)
        nulls = rng.random(rows) < 0.005
        cols[f] = pa.array(np.where(nulls, np.nan, v), mask=nulls)
    pq.write_table(pa.table(cols), path, row_group_size=1_000_000)


def bench_validate(tmp, rows, repeats):
    path = os.path.join(tmp, "events.parquet")
    write_events(path, rows, 42)
    wh = os.path.join(tmp, "wh-validate")
    setup = [
        f"CREATE EXTERNAL TABLE ev STORED AS PARQUET LOCATION '{path}'",
        f"CREATE FEATURE GROUP g ENTITY (id) TIMESTAMP ts FROM ev FEATURES ({', '.join(FEATS)})",
        f"CREATE FEATURE SET s FEATURES ({', '.join('g.' + f for f in FEATS)})",
    ] + [
        f"CREATE EXPECTATION ON FEATURE g.{f} (min_value = 0, max_value = 10000, null_percentage = 0.01)"
        for f in FEATS
    ]
    run_sql(wh, *setup)
    validate_rows, t_validate = timed(wh, "SELECT * FROM validate('s')", repeats)
    plain = ", ".join(
        ["count(*) AS n"] + [f"count({f}) AS c_{f}, min({f}) AS lo_{f}, max({f}) AS hi_{f}" for f in FEATS]
    )
    [plain_row], t_plain = timed(wh, f"SELECT {plain} FROM ev", repeats)
    # Same answers.
    for r in validate_rows:
        f = r["feature"].split(".")[1]
        if r["expectation"] == "min_value":
            assert float(r["observed"]) == plain_row[f"lo_{f}"], r
        if r["expectation"] == "max_value":
            assert float(r["observed"]) == plain_row[f"hi_{f}"], r
        assert r["rows_checked"] == plain_row["n"]
    print(f"validate: {rows:,} rows x {len(FEATS)} features x 3 expectations: "
          f"validate {t_validate:.2f}s, plain count/min/max {t_plain:.2f}s "
          f"(ratio {t_validate / t_plain:.2f}); {len(validate_rows)} result rows, answers equal")


def bench_drift(tmp, n, repeats):
    rng = np.random.default_rng(7)
    base = rng.normal(100, 15, n)
    cur = rng.normal(100.2, 15, n)
    path = os.path.join(tmp, "drift.parquet")
    pq.write_table(pa.table({
        "id": rng.integers(0, 100_000, 2 * n),
        "ts": pa.concat_arrays([times(rng, n, "2024-01-01", 31), times(rng, n, "2024-02-01", 29)]),
        "x": np.concatenate([base, cur]),
    }), path, row_group_size=1_000_000)
    wh = os.path.join(tmp, "wh-drift")
    run_sql(wh,
            f"CREATE EXTERNAL TABLE ev STORED AS PARQUET LOCATION '{path}'",
            "CREATE FEATURE GROUP g ENTITY (id) TIMESTAMP ts FROM ev FEATURES (x)",
            "CREATE FEATURE SET s FEATURES (g.x)",
            "CREATE VIEW feb AS SELECT x FROM ev WHERE ts >= '2024-02-01'")
    _, t_baseline = run_sql(wh, "SET DRIFT BASELINE FOR FEATURE SET s FROM '2024-01-01' TO '2024-01-31'")
    [row], t_check = timed(wh, "SELECT * FROM check_drift('s', 'feb', 'ks_test', 0.05)", repeats)
    from scipy import stats
    t0 = time.perf_counter()
    want = stats.ks_2samp(base, cur)
    t_scipy = time.perf_counter() - t0
    t0 = time.perf_counter()
    t = pq.read_table(path, columns=["ts", "x"])
    ts = t["ts"].to_numpy()
    x = t["x"].to_numpy()
    cut = np.datetime64("2024-02-01", "us")
    jan, feb = x[ts < cut], x[ts >= cut]
    stats.ks_2samp(jan, feb)
    t_scipy_read = time.perf_counter() - t0
    print(f"check_drift ks_test: {n:,} baseline vs {n:,} current values: SET DRIFT BASELINE "
          f"{t_baseline:.2f}s (once), check_drift {t_check:.2f}s; scipy ks_2samp {t_scipy:.2f}s "
          f"in memory, {t_scipy_read:.2f}s with the Parquet read; "
          f"|dD| {abs(row['statistic'] - want.statistic):.1e}, |dp| {abs(row['p_value'] - want.pvalue):.1e}")


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--rows", type=int, default=10_000_000)
    p.add_argument("--drift-rows", type=int, default=3_000_000)
    p.add_argument("--repeats", type=int, default=3)
    a = p.parse_args()
    if not os.path.exists(fstore_bin()):
        raise SystemExit(f"no fstore binary at {fstore_bin()} (cargo build --release --bin fstore)")
    with tempfile.TemporaryDirectory() as tmp:
        bench_validate(tmp, a.rows, a.repeats)
        bench_drift(tmp, a.drift_rows, a.repeats)


if __name__ == "__main__":
    main()
