"""One monitor run vs the separate checks it replaces (issue 15).

    python benches/monitor_bench.py [--fstore target/release/fstore] [--rows 10000000]
        [--repeats 3] [--data /tmp/fstore-monitor-bench]

Data: --rows events (Parquet, 8 files) of 200,000 customers over 90 days: amount (float),
quantity (integer), score (float, 2 % NULL), category (8 values). A feature group of those 4
features, a feature set of all of them, expectations on 3 of them, and a drift baseline of
the first 30 days.

Compared, on one `fstore serve` through ADBC, alternating, --repeats times:
  - monitor: `RUN MONITOR m` of a monitor with 5 metrics over all features of the set —
    missing_values, drift('ks_test'), freshness, row_count, expectations_failed — over every
    row (one aggregate pass over the group);
  - separate: what a team runs without monitors for the same answers: `validate('s')`, then
    `check_drift('s', 'g', 'ks_test')`, then one query for the row count, the NULL counts and
    the newest event (three statements, three passes).
Both read every row. Printed: the medians and the ratio, and the server's CPU seconds.
"""
import argparse
import os
import statistics
import sys
import tempfile
import time

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from flight_bench import serve  # noqa: E402

CATEGORIES = ["a", "b", "c", "d", "e", "f", "g", "h"]


def generate(directory, rows, files=8, seed=15):
    os.makedirs(directory, exist_ok=True)
    if all(os.path.exists(os.path.join(directory, f"part{f}.parquet")) for f in range(files)):
        return
    rng = np.random.default_rng(seed)
    t0 = np.datetime64("2024-01-01T00:00:00", "us")
    per = rows // files
    for f in range(files):
        ts = t0 + (rng.integers(0, 90 * 86_400, per) * 1_000_000).astype("timedelta64[us]")
        score = rng.normal(0.5, 0.2, per)
        table = pa.table({
            "customer_id": rng.integers(0, 200_000, per),
            "ts": ts,
            "amount": np.round(rng.gamma(2.0, 30.0, per), 2),
            "quantity": rng.integers(1, 10, per),
            "score": pa.array(score, mask=rng.random(per) < 0.02),
            "category": pa.array(rng.choice(CATEGORIES, per)),
        })
        pq.write_table(table, os.path.join(directory, f"part{f}.parquet"), row_group_size=1_000_000)


def cpu_seconds(pid):
    fields = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def run(cur, sql):
    cur.execute(sql)
    return cur.fetch_arrow_table()


SEPARATE = [
    "SELECT * FROM validate('s')",
    "SELECT * FROM check_drift('s', 'g', 'ks_test')",
    "SELECT count(*) AS n, count(*) - count(amount) AS amount_nulls, count(*) - count(quantity) AS quantity_nulls, "
    "count(*) - count(score) AS score_nulls, count(*) - count(category) AS category_nulls, max(ts) AS newest FROM g",
]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--fstore", default="target/release/fstore")
    ap.add_argument("--rows", type=int, default=10_000_000)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--data", default=os.path.join(tempfile.gettempdir(), "fstore-monitor-bench"))
    args = ap.parse_args()
    import adbc_driver_flightsql.dbapi as flight_sql

    data = os.path.join(args.data, f"events-{args.rows}")
    t = time.perf_counter()
    generate(data, args.rows)
    print(f"data: {args.rows:,} rows in {data} ({time.perf_counter() - t:.1f} s)", flush=True)
    with tempfile.TemporaryDirectory() as wh:
        env = dict(os.environ, FSTORE_LOG="warn", FSTORE_ADMIN_PASSWORD="bench-admin")
        proc, uri = serve(args.fstore, wh, env)
        try:
            with flight_sql.connect(uri, autocommit=True,
                                    db_kwargs={"username": "admin", "password": "bench-admin"}) as conn, \
                    conn.cursor() as cur:
                for sql in [
                    f"CREATE EXTERNAL TABLE ev STORED AS PARQUET LOCATION '{data}/'",
                    "CREATE FEATURE GROUP g ENTITY (customer_id) TIMESTAMP ts FROM ev "
                    "FEATURES (amount, quantity, score, category)",
                    "CREATE FEATURE SET s FEATURES (g.amount, g.quantity, g.score, g.category)",
                    "CREATE EXPECTATION ON FEATURE g.amount (min_value = 0, max_value = 10000)",
                    "CREATE EXPECTATION ON FEATURE g.score (null_percentage = 0.05)",
                    "CREATE EXPECTATION ON FEATURE g.category (allowed_values = ('a','b','c','d','e','f','g','h'))",
                    "SET DRIFT BASELINE FOR FEATURE SET s FROM '2024-01-01' TO '2024-01-30'",
                    "CREATE MONITOR m ON FEATURE SET s EVERY '1 day' METRICS (missing_values > 0.05, "
                    "drift('ks_test') > 0.1, freshness > '1 day', row_count < 1000, expectations_failed > 0)",
                ]:
                    run(cur, sql)
                times = {"monitor": [], "separate": []}
                cpu = {"monitor": [], "separate": []}
                monitor_rows = run(cur, "RUN MONITOR m")  # warm
                for sql in SEPARATE:
                    run(cur, sql)
                assert monitor_rows.num_rows == 4 + 3 + 1 + 1 + 1, monitor_rows.num_rows
                for r in range(args.repeats):
                    for kind in (["monitor", "separate"] if r % 2 == 0 else ["separate", "monitor"]):
                        c0, t0 = cpu_seconds(proc.pid), time.perf_counter()
                        if kind == "monitor":
                            run(cur, "RUN MONITOR m")
                        else:
                            for sql in SEPARATE:
                                run(cur, sql)
                        times[kind].append(time.perf_counter() - t0)
                        cpu[kind].append(cpu_seconds(proc.pid) - c0)
                        print(f"  {kind:9s} run {r + 1}: {times[kind][-1]:.2f} s, server CPU {cpu[kind][-1]:.2f} s",
                              flush=True)
                m, s = statistics.median(times["monitor"]), statistics.median(times["separate"])
                print(f"monitor run (5 metrics, all features, one pass): median {m:.2f} s, "
                      f"CPU {statistics.median(cpu['monitor']):.2f} s")
                print(f"validate + check_drift + count (three passes):   median {s:.2f} s, "
                      f"CPU {statistics.median(cpu['separate']):.2f} s")
                print(f"separate / monitor: {s / m:.2f}x")
        finally:
            proc.terminate()
            proc.wait()


if __name__ == "__main__":
    main()
