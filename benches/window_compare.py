#!/usr/bin/env python3
"""Side by side: 30-day rolling mean / sum / count(non-null) of amount per customer, for every
transaction, in FStore, Polars and DuckDB — each engine in its own process, wall time and peak
RSS, checksums compared across engines.

The window is (t - 30 days, t] everywhere: FStore's definition; Polars `closed="right"`;
DuckDB `RANGE BETWEEN INTERVAL 30 DAYS - 1 µs PRECEDING` (microsecond timestamps).

Data: the same transactions as shared/bench/gen_data.py (seed 42; scale 1 = 10M rows,
100k customers), generated here when `--data DIR` holds no transactions.parquet.

What is timed:
- fstore, fstore_group: the whole `fstore sql` process (start, CREATE EXTERNAL TABLE, the query,
  exit) — `fstore` through the `window_features` table function, `fstore_group` through a
  feature group (CREATE FEATURE GROUP … WINDOW, then SELECT from it), the path users take: the
  per-row features are computed for every row and reduced to the checksums in SQL (the CLI
  has nowhere to keep 10M rows; the features are not materialised).
- polars, duckdb: Parquet on disk -> the full per-row result materialised in memory (as in
  shared/bench/window_peers.py); `duckdb_checksum` runs DuckDB on the same checksum query as
  FStore. Median of `--repeats` runs after a warm-up, inside one process.

Usage:
  python benches/window_compare.py --data /tmp/fsdata/s1 --scale 1 [--engines fstore,polars,duckdb]
  FSTORE_BIN=target/release/fstore (default)
"""
import argparse
import json
import math
import os
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FSTORE_BIN = os.environ.get("FSTORE_BIN", os.path.join(ROOT, "target", "release", "fstore"))

CATEGORIES = [
    "grocery", "electronics", "fashion", "home", "sports", "beauty",
    "toys", "books", "automotive", "health", "travel", "entertainment",
]


def gen_transactions(path, scale, seed=42):
    """Identical to shared/bench/gen_data.py's transactions table."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.parquet as pq

    t0 = np.datetime64("2024-01-01T00:00:00", "us").astype(np.int64)
    t1 = np.datetime64("2024-04-01T00:00:00", "us").astype(np.int64)
    n_cust = int(round(100_000 * scale))
    n_rows = int(round(10_000_000 * scale))
    rng = [np.random.default_rng(s) for s in np.random.SeedSequence(seed).spawn(3)][0]
    names = pa.array([f"customer_{i}" for i in range(n_cust)], type=pa.string())
    cust_cat = rng.choice(len(CATEGORIES), size=n_cust,
                          p=np.array([12, 10, 10, 9, 9, 8, 8, 8, 7, 7, 6, 6]) / 100.0)
    cust = rng.integers(0, n_cust, size=n_rows)
    ts = rng.integers(t0, t1, size=n_rows)
    logamt = rng.normal(3.5, 1.0, size=n_rows)
    amount = np.exp(logamt)
    null_mask = rng.random(n_rows) < 0.005
    p = 1.0 / (1.0 + np.exp(-(1.2 * (logamt - 3.5) - 2.0)))
    conv = (rng.random(n_rows) < p).astype(np.int8)
    conv[null_mask] = 0
    cats = pa.array(CATEGORIES, type=pa.string())
    table = pa.table({
        "customer_id": names.take(pa.array(cust)),
        "transaction_date": pa.array(ts.astype("datetime64[us]"), type=pa.timestamp("us")),
        "amount": pa.array(amount, mask=null_mask, type=pa.float64()),
        "customer_category": cats.take(pa.array(cust_cat[cust])),
        "conversion": pa.array(conv, type=pa.int8()),
    })
    pq.write_table(table, path, row_group_size=1_000_000, compression="snappy")


FSTORE_SQL = """
CREATE EXTERNAL TABLE transactions STORED AS PARQUET LOCATION '{T}';
SELECT count(*) AS rows, count(*) - count(mean_30d) AS null_mean, sum(mean_30d) AS sum_mean,
       sum(sum_30d) AS sum_sum, sum(cnt_30d) AS sum_cnt
FROM window_features('transactions', 'customer_id', 'transaction_date',
     'mean(amount) 30 days AS mean_30d', 'sum(amount) 30 days AS sum_30d',
     'count(amount) 30 days AS cnt_30d');
"""

# The same features as a feature group (the path users take: CREATE FEATURE GROUP, then query it).
FSTORE_GROUP_SQL = """
CREATE EXTERNAL TABLE transactions STORED AS PARQUET LOCATION '{T}';
CREATE FEATURE GROUP customer_behavior ENTITY (customer_id) TIMESTAMP transaction_date
  FROM transactions FEATURES (
    mean_30d = mean(amount) WINDOW '30 days',
    sum_30d = sum(amount) WINDOW '30 days',
    cnt_30d = count(amount) WINDOW '30 days');
SELECT count(*) AS rows, count(*) - count(mean_30d) AS null_mean, sum(mean_30d) AS sum_mean,
       sum(sum_30d) AS sum_sum, sum(cnt_30d) AS sum_cnt
FROM customer_behavior;
"""

DUCK_WINDOW = """
SELECT customer_id, transaction_date, amount,
       avg(amount)   OVER w AS mean_30d,
       sum(amount)   OVER w AS sum_30d,
       count(amount) OVER w AS cnt_30d
FROM read_parquet('{T}')
WINDOW w AS (PARTITION BY customer_id ORDER BY transaction_date
             RANGE BETWEEN INTERVAL 30 DAYS - INTERVAL 1 MICROSECOND PRECEDING AND CURRENT ROW)
"""

DUCK_CHECKSUM = """
SELECT count(*) AS rows, count(*) - count(mean_30d) AS null_mean, sum(mean_30d) AS sum_mean,
       sum(sum_30d) AS sum_sum, sum(cnt_30d) AS sum_cnt FROM ({q})
"""


def checksum_of_table(res):
    import pyarrow as pa
    import pyarrow.compute as pc
    if not isinstance(res, pa.Table):
        res = res.to_arrow()
    m = res.column("mean_30d")
    return {"rows": res.num_rows, "null_mean": m.null_count, "sum_mean": pc.sum(m).as_py(),
            "sum_sum": pc.sum(res.column("sum_30d")).as_py(),
            "sum_cnt": int(pc.sum(res.column("cnt_30d")).as_py())}


def engine_polars(T):
    import polars as pl
    kw = dict(by="transaction_date", window_size="30d", closed="right")

    def run():
        a = pl.col("amount")
        return (pl.scan_parquet(T).select(["customer_id", "transaction_date", "amount"])
                .with_columns(
                    a.rolling_mean_by(**kw).over("customer_id").alias("mean_30d"),
                    a.rolling_sum_by(**kw).over("customer_id").alias("sum_30d"),
                    a.is_not_null().cast(pl.UInt32).rolling_sum_by(**kw).over("customer_id").alias("cnt_30d"),
                ).collect())
    return run, checksum_of_table


def engine_duckdb(T):
    import duckdb
    con = duckdb.connect()
    q = DUCK_WINDOW.format(T=T)
    return (lambda: con.sql(q).to_arrow_table()), checksum_of_table


def engine_duckdb_checksum(T):
    import duckdb
    con = duckdb.connect()
    q = DUCK_CHECKSUM.format(q=DUCK_WINDOW.format(T=T))

    def run():
        return con.sql(q).fetchall()[0]

    def cs(row):
        return dict(zip(["rows", "null_mean", "sum_mean", "sum_sum", "sum_cnt"], row))
    return run, cs


PY_ENGINES = {"polars": engine_polars, "duckdb": engine_duckdb, "duckdb_checksum": engine_duckdb_checksum}


def child(name, T, repeats):
    """Runs one Python engine in this process: a warm-up, then `repeats` timed runs."""
    run, cs = PY_ENGINES[name](T)
    t = time.perf_counter()
    res = run()
    warm = time.perf_counter() - t
    times = []
    for _ in range(repeats):
        res = None
        t = time.perf_counter()
        res = run()
        times.append(time.perf_counter() - t)
    print("RESULT " + json.dumps({"engine": name, "median_s": statistics.median(times) if times else warm,
                                  "runs_s": [round(x, 3) for x in times], "warmup_s": round(warm, 3),
                                  **cs(res)}), flush=True)


def wait_child(argv, env=None):
    """Runs argv to completion; returns (wall_s, peak_rss_mb, stdout, stderr, exit code)."""
    t = time.perf_counter()
    p = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    out, err = [], []
    import threading
    threads = [threading.Thread(target=lambda s=s, b=b: b.extend(s), daemon=True)
               for s, b in ((p.stdout, out), (p.stderr, err))]
    for th in threads:
        th.start()
    _, status, ru = os.wait4(p.pid, 0)
    wall = time.perf_counter() - t
    for th in threads:
        th.join(timeout=5)
    return wall, ru.ru_maxrss / 1024, "".join(out), "".join(err), os.waitstatus_to_exitcode(status)


def run_fstore(T, repeats, engine="fstore"):
    sql = (FSTORE_GROUP_SQL if engine == "fstore_group" else FSTORE_SQL).format(T=T)
    walls, rss, cs = [], [], None
    for i in range(repeats + 1):
        with tempfile.TemporaryDirectory() as wh:
            wall, peak, out, err, code = wait_child(
                [FSTORE_BIN, "--warehouse", wh, "sql", "--format", "json", "-c", sql],
                env=dict(os.environ, FSTORE_LOG="warn"))
        if code != 0:
            return {"engine": engine, "error": err.strip()[-800:]}
        cs = json.loads(out.strip().splitlines()[-1])
        if i > 0:  # the first run warms the page cache, like the peers' warm-up
            walls.append(wall)
            rss.append(peak)
    return {"engine": engine, "median_s": statistics.median(walls), "runs_s": [round(w, 3) for w in walls],
            "peak_rss_mb": round(max(rss)), **cs}


def run_py(name, T, repeats):
    wall, peak, out, err, code = wait_child([sys.executable, os.path.abspath(__file__), "--child", name,
                                             "--table", T, "--repeats", str(repeats)])
    for line in out.splitlines():
        if line.startswith("RESULT "):
            r = json.loads(line[7:])
            r["peak_rss_mb"] = round(peak)
            return r
    return {"engine": name, "error": (err or out).strip()[-800:]}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", default="/tmp/fsdata/s1")
    ap.add_argument("--scale", type=float, default=1.0)
    ap.add_argument("--engines", default="fstore,fstore_group,polars,duckdb,duckdb_checksum")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--child")
    ap.add_argument("--table")
    a = ap.parse_args()
    if a.child:
        return child(a.child, a.table, a.repeats)
    os.makedirs(a.data, exist_ok=True)
    T = os.path.join(a.data, "transactions.parquet")
    if not os.path.exists(T):
        print(f"generating {T} (scale {a.scale})", flush=True)
        gen_transactions(T, a.scale)
    results = []
    for name in a.engines.split(","):
        print(f"== {name}", flush=True)
        r = run_fstore(T, a.repeats, name) if name.startswith("fstore") else run_py(name, T, a.repeats)
        print(f"   {r}", flush=True)
        results.append(r)
    cols = ["engine", "median_s", "peak_rss_mb", "rows", "null_mean", "sum_mean", "sum_sum", "sum_cnt", "runs_s", "error"]
    print(" | ".join(cols))
    for r in results:
        print(" | ".join(str(round(r[c], 6) if isinstance(r.get(c), float) else r.get(c, "")) for c in cols))
    ok = [r for r in results if "rows" in r]
    if ok:
        ref = ok[0]
        agree = all(r["rows"] == ref["rows"] and r["sum_cnt"] == ref["sum_cnt"] and r["null_mean"] == ref["null_mean"]
                    and math.isclose(r["sum_mean"], ref["sum_mean"], rel_tol=1e-9)
                    and math.isclose(r["sum_sum"], ref["sum_sum"], rel_tol=1e-9) for r in ok)
        print(f"checksums (exact counts, 1e-9 relative sums): {'AGREE' if agree else 'DISAGREE'} "
              f"across {[r['engine'] for r in ok]}")


if __name__ == "__main__":
    main()
