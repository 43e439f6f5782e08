#!/usr/bin/env python3
"""training_set side by side: FStore vs the same training set written for DuckDB.

The task: for every row of the spine (entity_df: customer_id, ts; 1M rows at scale 1), the
features of three feature groups over customer_features (10M rows at scale 1, the data of
benches/asof_compare.py):

  profile  f1..f5 as of the spine time: the latest row at or before ts, ties on time broken
           by the latest created_ts (an AS-OF join)
  spend    mean(f1), sum(f1), count(*) over the 30 days up to ts: (ts - 30 days, ts]
  recent   sum(f3) over 7 days and max(f2) over 30 days up to ts

FStore: `SELECT … FROM training_set('profile:*, spend:*, recent:*', 'entity_df', 'ts')`.
DuckDB (the fastest formulation found): the AS-OF join on the deduplicated features, and the
window features by adding the spine rows to the events as probe rows and evaluating RANGE
frames `BETWEEN INTERVAL 30 DAY - 1 µs PRECEDING AND CURRENT ROW` (exactly (t - 30 days, t]);
then the two joined by spine row. Both return checksums over every feature column, so every
value is computed; each engine runs in its own process; wall time of the whole process and
peak RSS (ru_maxrss), median of N runs after one warm-up.

Usage:
  cargo build --release --bin fstore
  python benches/training_compare.py --scale 0.1
  python benches/training_compare.py --scale 1 --data /tmp/fstore-asof-s1 --repeats 3
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from asof_compare import generate  # noqa: E402  (the shared data generator)

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
COLS = ["f1", "f2", "f3", "f4", "f5", "mean_f1_30d", "sum_f1_30d", "count_30d", "sum_f3_7d",
        "max_f2_30d"]

SETUP = """
CREATE EXTERNAL TABLE IF NOT EXISTS entity_df STORED AS PARQUET LOCATION '{S}';
CREATE EXTERNAL TABLE IF NOT EXISTS customer_features STORED AS PARQUET LOCATION '{F}';
CREATE OR REPLACE FEATURE GROUP profile ENTITY (customer_id) TIMESTAMP event_ts CREATED created_ts
  FROM customer_features FEATURES (f1, f2, f3, f4, f5);
CREATE OR REPLACE FEATURE GROUP spend ENTITY (customer_id) TIMESTAMP event_ts
  FROM customer_features FEATURES (
    mean_f1_30d = mean(f1) WINDOW '30 days',
    sum_f1_30d = sum(f1) WINDOW '30 days',
    count_30d = count(*) WINDOW '30 days');
CREATE OR REPLACE FEATURE GROUP recent ENTITY (customer_id) TIMESTAMP event_ts
  FROM customer_features FEATURES (
    sum_f3_7d = sum(f3) WINDOW '7 days',
    max_f2_30d = max(f2) WINDOW '30 days');
"""


def checksum_sql(source):
    sums = ", ".join(f"sum({c}) AS s_{c}, count({c}) AS n_{c}" for c in COLS)
    return f"SELECT count(*) AS rows, {sums} FROM {source}"


def fstore_query():
    return checksum_sql("training_set('profile:*, spend:*, recent:*', 'entity_df', 'ts')")


def duckdb_query(S, F):
    return f"""
WITH spine AS (SELECT row_number() OVER () AS rid, customer_id, ts FROM read_parquet('{S}')),
feats AS (SELECT * FROM read_parquet('{F}')),
latest AS (SELECT customer_id, event_ts, f1, f2, f3, f4, f5 FROM feats
           QUALIFY row_number() OVER (PARTITION BY customer_id, event_ts ORDER BY created_ts DESC) = 1),
asof_f AS (SELECT s.rid, f.f1, f.f2, f.f3, f.f4, f.f5 FROM spine s
         ASOF LEFT JOIN latest f ON s.customer_id = f.customer_id AND s.ts >= f.event_ts),
probe AS (
  SELECT customer_id, event_ts AS ts, f1, f2, f3, NULL::BIGINT AS rid FROM feats
  UNION ALL
  SELECT customer_id, ts, NULL, NULL, NULL, rid FROM spine),
win AS (
  SELECT rid,
    avg(f1) OVER w30 AS mean_f1_30d, sum(f1) OVER w30 AS sum_f1_30d,
    count(*) FILTER (WHERE rid IS NULL) OVER w30 AS count_30d,
    sum(f3) OVER w7 AS sum_f3_7d, max(f2) OVER w30 AS max_f2_30d
  FROM probe
  WINDOW w30 AS (PARTITION BY customer_id ORDER BY ts
                 RANGE BETWEEN INTERVAL 30 DAY - INTERVAL 1 MICROSECOND PRECEDING AND CURRENT ROW),
         w7 AS (PARTITION BY customer_id ORDER BY ts
                RANGE BETWEEN INTERVAL 7 DAY - INTERVAL 1 MICROSECOND PRECEDING AND CURRENT ROW)
  QUALIFY rid IS NOT NULL)
{checksum_sql("(SELECT a.*, w.mean_f1_30d, w.sum_f1_30d, w.count_30d, w.sum_f3_7d, w.max_f2_30d FROM asof_f a JOIN win w USING (rid))")}
"""


def timed(argv, env=None):
    t = time.perf_counter()
    p = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
    _, status, ru = os.wait4(p.pid, 0)
    wall = time.perf_counter() - t
    out, err = p.stdout.read().decode(), p.stderr.read().decode()
    if os.waitstatus_to_exitcode(status) != 0:
        raise RuntimeError(f"{argv[0]} failed: {err[-3000:]}")
    return wall, ru.ru_maxrss * 1024, out


def normalise(row):
    return {k: (round(float(v), 3) if v is not None else None) for k, v in row.items()}


def run_fstore(data, repeats, binary, warehouse):
    S = os.path.join(data, "entity_df.parquet")
    F = os.path.join(data, "customer_features.parquet")
    env = {**os.environ, "FSTORE_LOG": "error"}
    subprocess.run([binary, "--warehouse", warehouse, "sql", "-c", SETUP.format(S=S, F=F)],
                   check=True, env=env, capture_output=True)
    with tempfile.NamedTemporaryFile("w", suffix=".sql", delete=False) as f:
        f.write(fstore_query() + ";\n")
        script = f.name
    times, rss, out = [], [], None
    for i in range(repeats + 1):
        wall, peak, out = timed([binary, "--warehouse", warehouse, "sql", "--format", "json",
                                 "-f", script], env)
        if i > 0:
            times.append(wall)
            rss.append(peak)
    line = out.strip().splitlines()[-1]
    row = json.loads(line)
    if isinstance(row, list):
        row = row[0]
    return times, max(rss), normalise(row)


def duckdb_child(data, repeats):
    import duckdb
    S = os.path.join(data, "entity_df.parquet")
    F = os.path.join(data, "customer_features.parquet")
    con = duckdb.connect()
    sql = duckdb_query(S, F)
    con.sql(sql).fetchall()  # warm-up
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        rel = con.sql(sql)
        row = dict(zip(rel.columns, rel.fetchall()[0]))
        times.append(time.perf_counter() - t)
    print("RESULT " + json.dumps({"times": times, "row": normalise(row)}), flush=True)


def run_duckdb(data, repeats):
    _, peak, out = timed([sys.executable, os.path.abspath(__file__), "--child", "duckdb",
                          "--data", data, "--repeats", str(repeats)])
    res = json.loads([ln for ln in out.splitlines() if ln.startswith("RESULT ")][-1][7:])
    return res["times"], peak, res["row"]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--scale", type=float, default=0.1)
    ap.add_argument("--data")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--engines", default="fstore,duckdb")
    ap.add_argument("--child")
    a = ap.parse_args()
    data = a.data or os.path.join(tempfile.gettempdir(), f"fstore-asof-s{a.scale:g}")
    if a.child:
        return duckdb_child(data, a.repeats)
    if not os.path.exists(os.path.join(data, "entity_df.parquet")):
        os.makedirs(data, exist_ok=True)
        print(f"generating scale {a.scale:g} data in {data} ...", flush=True)
        generate(data, a.scale)
    binary = os.environ.get("FSTORE_RELEASE_BIN", os.path.join(ROOT, "target", "release", "fstore"))
    warehouse = tempfile.mkdtemp(prefix="fstore-training-bench-")
    results = []
    for engine in a.engines.split(","):
        print(f"== {engine} (scale {a.scale:g})", flush=True)
        if engine == "fstore":
            times, rss, row = run_fstore(data, a.repeats, binary, warehouse)
        else:
            times, rss, row = run_duckdb(data, a.repeats)
        r = {"engine": engine, "scale": a.scale, "median_s": round(statistics.median(times), 3),
             "runs_s": [round(t, 3) for t in times], "peak_rss_mb": round(rss / 2**20),
             "checksums": row}
        print(f"   {r}", flush=True)
        results.append(r)
    if len(results) == 2:
        a_, b_ = results[0]["checksums"], results[1]["checksums"]
        diff = {k: (a_.get(k), b_.get(k)) for k in a_
                if a_.get(k) is None or b_.get(k) is None
                or abs(a_[k] - b_[k]) > 1e-6 * max(1.0, abs(a_[k]))}
        print("checksums: " + ("AGREE" if not diff else f"DIFFER {diff}"))
        print(f"ratio duckdb/fstore: {results[1]['median_s'] / results[0]['median_s']:.2f}x time, "
              f"{results[1]['peak_rss_mb'] / results[0]['peak_rss_mb']:.2f}x peak memory")


if __name__ == "__main__":
    main()
