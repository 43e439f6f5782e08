"""Multi-entity online lookups: entity rows per second with 100-key requests.

    python benches/online_multi_bench.py [--fstore-bin target/release/fstore] [--entities 100000]
        [--keys 100] [--concurrency 1,2,4] [--duration 10] [--repeats 3]

Data and setup as benches/online_bench.py (N customers, the embedded online store, one set
online, refreshed). Each client process holds one ADBC connection and, for --duration
seconds, asks for --keys random customers per request in two ways:
  - bound: the prepared `SELECT * FROM online_features('bench_online') WHERE customer_id = ?`
    bound with a record batch of the keys (one round trip, answered from the store);
  - in-list: the plain statement `… WHERE customer_id IN (k1, …, k100)` (planned and
    executed as a query).
Every answer is checked (all keys found, in bound order for `bound`) before timing. The
figures are entity rows returned per second over all clients and the server's CPU time per
request (from /proc), medians of --repeats runs.
"""
import argparse
import multiprocessing as mp
import os
import statistics
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import online_bench as ob  # noqa: E402

SQL = "SELECT * FROM online_features('bench_online') WHERE customer_id = ?"


def request(cur, mode, keys):
    import pyarrow as pa
    if mode == "bound":
        cur.execute(SQL, pa.record_batch([pa.array(keys, pa.int64())], names=["customer_id"]))
    else:
        cur.execute("SELECT * FROM online_features('bench_online') WHERE customer_id IN ("
                    + ",".join(map(str, keys)) + ")")
    return cur.fetch_arrow_table()


def worker(uri, mode, n_entities, n_keys, duration, seed, out, go):
    import adbc_driver_flightsql.dbapi as flight_sql
    import numpy as np
    rng = np.random.default_rng(seed)
    with flight_sql.connect(uri, autocommit=True) as conn, conn.cursor() as cur:
        request(cur, mode, rng.choice(n_entities, n_keys, replace=False).tolist())  # warm
        go.wait()
        rows, requests = 0, 0
        end = time.perf_counter() + duration
        while time.perf_counter() < end:
            keys = rng.choice(n_entities, n_keys, replace=False).tolist()
            rows += request(cur, mode, keys).num_rows
            requests += 1
        out.put((rows, requests))


def cpu_seconds(pid):
    fields = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def throughput(uri, mode, args, concurrency, seed, server_pid):
    # spawn, not fork: the ADBC driver's Go runtime does not survive a fork.
    ctx = mp.get_context("spawn")
    out, go = ctx.Queue(), ctx.Event()
    procs = [ctx.Process(target=worker, args=(uri, mode, args.entities, args.keys, args.duration,
                                             seed + i, out, go)) for i in range(concurrency)]
    for p in procs:
        p.start()
    time.sleep(1.0)
    started = time.perf_counter()
    cpu = cpu_seconds(server_pid)
    go.set()
    results = [out.get(timeout=args.duration + 120) for _ in procs]
    elapsed = time.perf_counter() - started
    cpu = cpu_seconds(server_pid) - cpu
    for p in procs:
        p.join()
    rows = sum(r for r, _ in results)
    requests = sum(q for _, q in results)
    return rows / elapsed, requests / elapsed, cpu / max(requests, 1)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--fstore-bin", default="target/release/fstore")
    ap.add_argument("--entities", type=int, default=100_000)
    ap.add_argument("--keys", type=int, default=100)
    ap.add_argument("--concurrency", default="1,2,4")
    ap.add_argument("--duration", type=float, default=10.0)
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    work = tempfile.mkdtemp(prefix="online-multi-")
    data = ob.make_data(os.path.join(work, "data"), args.entities)
    proc, uri = ob.start_fstore(args.fstore_bin, os.path.join(work, "wh"), os.path.join(work, "fstore.log"))
    try:
        refresh_s = ob.fstore_setup(uri, data["path"])
        print(f"{args.entities} entities, refresh {refresh_s:.2f} s; {args.keys} keys per request")
        import adbc_driver_flightsql.dbapi as flight_sql
        import numpy as np
        with flight_sql.connect(uri, autocommit=True) as conn, conn.cursor() as cur:
            keys = np.random.default_rng(1).choice(args.entities, args.keys, replace=False).tolist()
            for mode in ("bound", "in-list"):
                got = request(cur, mode, keys).to_pylist()
                ids = [r["customer_id"] for r in got]
                assert sorted(ids) == sorted(keys), mode
                if mode == "bound":
                    assert ids == keys, "bound keys come back in bound order"
                for r in got:
                    want = ob.expected_row(data, r["customer_id"])
                    assert r["orders_30d"] == want["orders_30d"] and r["segment"] == want["segment"]
        for mode in ("bound", "in-list"):
            for c in [int(x) for x in args.concurrency.split(",")]:
                runs = [throughput(uri, mode, args, c, 100 * k, proc.pid) for k in range(args.repeats)]
                rows = [r for r, _, _ in runs]
                print(f"{mode:8} concurrency {c}: {statistics.median(rows):>10,.0f} entity rows/s "
                      f"(median of {args.repeats}: {', '.join(f'{r:,.0f}' for r in rows)}; "
                      f"{statistics.median(q for _, q, _ in runs):,.0f} requests/s; server CPU "
                      f"{statistics.median(c_ for _, _, c_ in runs) * 1e6:,.0f} µs per request)")
    finally:
        ob.stop_process(proc)


if __name__ == "__main__":
    main()
