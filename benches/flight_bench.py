"""Flight SQL round trips and bulk throughput, through real clients against a real server.

    python benches/flight_bench.py [--fstore target/release/fstore] [--iterations 5000]

Measures, against `fstore serve` on loopback (release build):
  - `SELECT ?` as an ADBC prepared statement, executed repeatedly (bind + GetFlightInfo +
    DoGet per execution): p50 / p99 / p99.9 latency;
  - a point query `SELECT * FROM transactions WHERE transaction_id = ?` (a filtered scan of
    the demo table; no index) through ADBC: p50 / p99;
  - bulk throughput of a large result to pyarrow.flight (`do_get(...).read_all()`), MB/s.
Prints a JSON summary (also written to --out).
"""
import argparse
import json
import os
import re
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time

import adbc_driver_flightsql.dbapi as flight_sql
import pyarrow.flight as flight

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "tests", "clients"))
from flight_sql_proto import statement_query  # noqa: E402

PASSWORD = "bench-password"


def start_server(binary, warehouse, rows):
    env = dict(os.environ, FSTORE_ADMIN_PASSWORD=PASSWORD, FSTORE_LOG="error")
    subprocess.run([binary, "--warehouse", warehouse, "demo", "--rows", str(rows)], check=True,
                   capture_output=True, env=env)
    return serve(binary, warehouse, env)


def serve(binary, warehouse, env):
    """`fstore serve` on a free loopback port; returns the process and its URI."""
    proc = subprocess.Popen([binary, "--warehouse", warehouse, "serve", "--addr", "127.0.0.1:0"],
                            stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True, env=env)
    port = None
    for line in proc.stderr:
        m = re.search(r"listening on grpc://127\.0\.0\.1:(\d+)", line)
        if m:
            port = int(m.group(1))
            break
    threading.Thread(target=lambda: [None for _ in proc.stderr], daemon=True).start()
    return proc, f"grpc://127.0.0.1:{port}"


def percentiles(samples_ms):
    s = sorted(samples_ms)

    def p(q):
        return s[min(len(s) - 1, int(q * len(s)))]

    return {"n": len(s), "p50_ms": p(0.50), "p99_ms": p(0.99), "p999_ms": p(0.999),
            "mean_ms": statistics.fmean(s)}


def timed_executions(cur, sql, params_fn, iterations, warmup=200):
    for i in range(warmup):
        cur.execute(sql, parameters=params_fn(i))
        cur.fetchall()
    samples = []
    for i in range(iterations):
        t0 = time.perf_counter()
        cur.execute(sql, parameters=params_fn(i))
        cur.fetchall()
        samples.append((time.perf_counter() - t0) * 1000)
    return percentiles(samples)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--fstore", default="target/release/fstore")
    ap.add_argument("--iterations", type=int, default=5000)
    ap.add_argument("--rows", type=int, default=100_000, help="rows of the demo table")
    ap.add_argument("--bulk-rows", type=int, default=5_000_000)
    ap.add_argument("--out", default="peer-results/flight.json")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as wh:
        proc, uri = start_server(args.fstore, wh, args.rows)
        try:
            conn = flight_sql.connect(uri, autocommit=True,
                                      db_kwargs={"username": "admin", "password": PASSWORD})
            cur = conn.cursor()
            result = {
                "select_param": timed_executions(cur, "SELECT ?", lambda i: (i,), args.iterations),
                "point_query": timed_executions(
                    cur, "SELECT * FROM transactions WHERE transaction_id = ?",
                    lambda i: (1 + (i * 7919) % args.rows,), max(500, args.iterations // 10)),
            }
            cur.close()
            conn.close()

            client = flight.connect(uri)
            options = flight.FlightCallOptions(headers=[client.authenticate_basic_token(b"admin", PASSWORD.encode())])
            sql = f"SELECT * FROM sample_transactions({args.bulk_rows})"
            best = None
            for _ in range(3):
                t0 = time.perf_counter()
                info = client.get_flight_info(flight.FlightDescriptor.for_command(statement_query(sql)), options)
                table = client.do_get(info.endpoints[0].ticket, options).read_all()
                elapsed = time.perf_counter() - t0
                best = elapsed if best is None else min(best, elapsed)
            result["bulk"] = {"rows": table.num_rows, "bytes": table.nbytes, "seconds": best,
                              "mb_per_s": table.nbytes / best / 1e6,
                              "rows_per_s": table.num_rows / best}
            client.close()
        finally:
            proc.terminate()
            proc.wait(30)
    result["machine"] = {"cpus": os.cpu_count(), "host": socket.gethostname()}
    os.makedirs(os.path.dirname(args.out) or ".", exist_ok=True)
    with open(args.out, "w") as f:
        json.dump(result, f, indent=2)
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
