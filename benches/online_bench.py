"""Single-entity online feature lookups: FStore (embedded and Redis online stores) vs Feast.

    python benches/online_bench.py [--fstore-bin target/release/fstore] [--entities 100000]
        [--requests 10000] [--concurrency 16] [--duration 10] [--out peer-results/online.json]
        [--skip-feast] [--skip-redis] [--only-feast] [--feast-workers 1,2] [--warmup 500]

Run it inside a venv that has Feast and the clients (Feast is not a dependency of the
project; keep it out of the system Python):

    python3 -m venv /tmp/online-bench-venv
    /tmp/online-bench-venv/bin/pip install feast pyarrow adbc-driver-flightsql \
        adbc-driver-manager numpy requests pandas
    /tmp/online-bench-venv/bin/python benches/online_bench.py

(measured with feast 0.67.0, pyarrow 26, adbc-driver-flightsql 1.13). The FStore engines
also need `redis-server` on PATH (Debian's redis-server package) unless --skip-redis.

Data, the same for every engine: N customers (customer_id 0..N-1), 3 events each in the 30
days before 2024-06-30T00:00:00 (Parquet, `customer_stats.parquet`); the online value of a
customer is its latest event. Engines:
  - FStore, embedded online store: `fstore serve --no-auth` on loopback; an ADBC prepared
    statement `SELECT * FROM online_features('bench_online') WHERE customer_id = ?`, one
    cursor reused (ADBC's dbapi prepares once and re-binds while the SQL string is unchanged);
  - FStore, Redis online store: the same against a second server started with
    `--online-store redis://127.0.0.1:P` and a redis-server this script starts;
  - Feast feature server: a Feast repo (SQLite online store, file offline source on the same
    Parquet), `feast apply`, `feast materialize`, `feast serve`, and HTTP POST
    /get-online-features over a keep-alive requests.Session;
  - Feast SDK in process (`FeatureStore.get_online_features(...).to_dict()`), for reference.

For each engine: p50 / p99 / p99.9 latency of sequential lookups (random customers, after a
warm-up), and throughput with --concurrency client processes (each with its own connection;
threads would be GIL-bound) for --duration seconds: completed lookups / elapsed. Every
engine's answers are checked against the generated data before timing, and the Redis-backed
server's rows against the embedded one's.

`feast serve` configuration (its best for this test): --no-access-log (the access log costs
a write per request), --max-requests 0 (the default 1000 restarts each gunicorn worker every
~1000 requests: p99.9 ~700 ms here, and now and then a keep-alive client's connection is
reset), a registry cache that never expires
(`cache_ttl_seconds: 0`, and --registry_ttl_sec 3600 so the server does not re-read the
registry during a run). Sequential latency uses 1 worker; throughput is measured with 1 and
with 2 workers (--feast-workers) and the better is reported (both are in the JSON).
Latencies include each client's own work (ADBC: binding the parameter and reading the Arrow
result; HTTP: JSON encoding and parsing); client processes share the machine's cores with
the server, so throughput on a small machine is bounded by both.
"""
import argparse
import glob
import importlib.util
import json
import math
import multiprocessing as mp
import os
import platform
import queue
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import traceback

HERE = os.path.dirname(os.path.abspath(__file__))

AS_OF = "2024-06-30T00:00:00"
EVENTS_PER_CUSTOMER = 3
SEGMENTS = ["bronze", "silver", "gold", "platinum"]
FEATURES = ["spend_7d", "orders_30d", "segment", "score"]
FSTORE_LOOKUP_SQL = "SELECT * FROM online_features('bench_online') WHERE customer_id = ?"
FSTORE_LITERAL_SQL = "SELECT * FROM online_features('bench_online') WHERE customer_id = {cid}"
FEAST_VIEW = "customer_stats"
FEAST_FEATURES = [f"{FEAST_VIEW}:{f}" for f in FEATURES]
THROUGHPUT_WARMUP = 50  # lookups per client process before the clock starts

ENGINES = {  # key -> label in the table, in table order
    "fstore_embedded": "FStore, embedded store (ADBC)",
    "fstore_redis": "FStore, Redis store (ADBC)",
    "fstore_embedded_plain": "FStore, embedded store (ADBC, plain statement)",
    "fstore_embedded_native": "FStore, embedded store (native Flight SQL client)",
    "fstore_redis_native": "FStore, Redis store (native Flight SQL client)",
    "feast_http": "Feast `feast serve`, SQLite (HTTP)",
    "feast_sdk": "Feast SDK in process, SQLite",
    "noop_adbc": "No-op Flight SQL server (ADBC, prepared): the client's floor",
}


# ---------------------------------------------------------------------------------------
# Environment checks, processes, ports
# ---------------------------------------------------------------------------------------

def require_modules(args):
    needed = {"numpy": "numpy", "pyarrow": "pyarrow", "requests": "requests"}
    if not args.only_feast:
        needed["adbc_driver_flightsql"] = "adbc-driver-flightsql"
        needed["adbc_driver_manager"] = "adbc-driver-manager"
    if not args.skip_feast:
        needed["feast"] = "feast"
    missing = [pkg for mod, pkg in needed.items() if importlib.util.find_spec(mod) is None]
    if missing:
        sys.exit(f"online_bench: missing Python packages: {', '.join(missing)}.\n"
                 "Run it in a bench venv, e.g.:\n"
                 "  python3 -m venv /tmp/online-bench-venv && /tmp/online-bench-venv/bin/pip "
                 "install feast pyarrow adbc-driver-flightsql adbc-driver-manager numpy "
                 "requests pandas\n"
                 f"  /tmp/online-bench-venv/bin/python {sys.argv[0]} ...")
    if not args.only_feast:
        if not os.access(args.fstore_bin, os.X_OK):
            sys.exit(f"online_bench: no FStore binary at {args.fstore_bin} "
                     "(cargo build --release, or --fstore-bin PATH, or --only-feast)")
        if not args.skip_redis and shutil.which("redis-server") is None:
            sys.exit("online_bench: redis-server is not on PATH "
                     "(apt-get install redis-server, or --skip-redis)")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def log_tail(path, lines=30):
    try:
        with open(path, errors="replace") as f:
            return "".join(f.readlines()[-lines:])
    except OSError:
        return ""


def wait_until(ready, proc, what, log_path, timeout=120.0):
    """Poll ready() until it returns true; fail early if proc exits."""
    deadline = time.monotonic() + timeout
    last_error = None
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{what} exited with {proc.returncode}:\n{log_tail(log_path)}")
        try:
            if ready():
                return
        except Exception as e:  # not up yet
            last_error = e
        time.sleep(0.1)
    raise RuntimeError(f"{what} not ready after {timeout:.0f} s ({last_error!r}):\n"
                       f"{log_tail(log_path)}")


def port_open(port):
    with socket.create_connection(("127.0.0.1", port), timeout=1):
        return True


def start_process(cmd, log_path, **kwargs):
    log = open(log_path, "ab")
    try:
        return subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL, **kwargs)
    finally:
        log.close()


def stop_process(proc, grace=5.0, group=False):
    """Terminate, then kill after `grace` seconds. With group=True the process was started in
    a session of its own and its whole process group (e.g. gunicorn's workers) is signalled."""
    if proc is None or proc.poll() is not None:
        return

    def send(sig):
        try:
            if group:
                os.killpg(proc.pid, sig)
            else:
                proc.send_signal(sig)
        except ProcessLookupError:
            pass

    send(signal.SIGTERM)
    try:
        proc.wait(grace)
    except subprocess.TimeoutExpired:
        send(signal.SIGKILL)
        proc.wait(10)


def run_checked(cmd, log_path, **kwargs):
    with open(log_path, "ab") as log:
        r = subprocess.run(cmd, stdout=log, stderr=subprocess.STDOUT,
                           stdin=subprocess.DEVNULL, **kwargs)
    if r.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed ({r.returncode}):\n{log_tail(log_path)}")


# ---------------------------------------------------------------------------------------
# Data
# ---------------------------------------------------------------------------------------

def make_data(data_dir, n, seed=42):
    """Write customer_stats.parquet; return {"path", "latest": per-customer latest values}."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.parquet as pq

    rng = np.random.default_rng(seed)
    rows = n * EVENTS_PER_CUSTOMER
    day_us = 86_400 * 1_000_000
    as_of_us = int(np.datetime64(AS_OF, "us").astype(np.int64))
    slot_us = 30 * day_us // EVENTS_PER_CUSTOMER
    customer_id = np.repeat(np.arange(n, dtype=np.int64), EVENTS_PER_CUSTOMER)
    # One event per 10-day slot of the 30 days before AS_OF, so each customer's latest event
    # is unique (no tie for any engine to break its own way).
    slot = np.tile(np.arange(EVENTS_PER_CUSTOMER, dtype=np.int64), n)
    event_us = as_of_us - 30 * day_us + slot * slot_us + rng.integers(0, slot_us, rows)
    columns = {
        "customer_id": customer_id,
        "event_ts": event_us.astype("datetime64[us]"),
        "spend_7d": rng.gamma(2.0, 60.0, rows).round(2),
        "orders_30d": rng.integers(0, 40, rows, dtype=np.int64),
        "segment": np.array(SEGMENTS, dtype=object)[rng.integers(0, len(SEGMENTS), rows)],
        "score": rng.random(rows),
    }
    order = rng.permutation(rows)  # the file is not sorted by customer or time
    columns = {k: v[order] for k, v in columns.items()}
    table = pa.table({
        "customer_id": pa.array(columns["customer_id"], pa.int64()),
        "event_ts": pa.array(columns["event_ts"], pa.timestamp("us")),
        "spend_7d": pa.array(columns["spend_7d"], pa.float64()),
        "orders_30d": pa.array(columns["orders_30d"], pa.int64()),
        "segment": pa.array(columns["segment"], pa.string()),
        "score": pa.array(columns["score"], pa.float64()),
    })
    os.makedirs(data_dir, exist_ok=True)
    path = os.path.abspath(os.path.join(data_dir, "customer_stats.parquet"))
    pq.write_table(table, path)

    # Latest row per customer: sort by (customer_id, event_ts); each customer has exactly
    # EVENTS_PER_CUSTOMER rows, so its latest is the last of its run.
    idx = np.lexsort((columns["event_ts"], columns["customer_id"]))
    latest = idx[EVENTS_PER_CUSTOMER - 1::EVENTS_PER_CUSTOMER]
    assert (columns["customer_id"][latest] == np.arange(n)).all()
    expected = {f: columns[f][latest] for f in FEATURES}
    return {"path": path, "rows": rows, "expected": expected}


def expected_row(data, cid):
    e = data["expected"]
    return {"spend_7d": float(e["spend_7d"][cid]), "orders_30d": int(e["orders_30d"][cid]),
            "segment": str(e["segment"][cid]), "score": float(e["score"][cid])}


def check_row(engine, cid, got, want):
    for f in FEATURES:
        g, w = got.get(f), want[f]
        ok = (g is not None and math.isclose(g, w, rel_tol=1e-12, abs_tol=0.0)
              if isinstance(w, float) else g == w)
        if not ok:
            raise AssertionError(f"{engine}: customer {cid}: {f} = {g!r}, expected {w!r} "
                                 f"(whole row: {got!r})")


def sample_ids(n, count, seed):
    rng = random.Random(seed)
    return [rng.randrange(n) for _ in range(count)]


# ---------------------------------------------------------------------------------------
# Clients: one lookup function per engine, usable in this process and in worker processes
# ---------------------------------------------------------------------------------------

def feast_request(cid):
    return {"features": FEAST_FEATURES, "entities": {"customer_id": [cid]},
            "full_feature_names": False}


def open_client(kind, target):
    """(lookup(customer_id) -> engine's raw answer, close()) for one engine.
    kind: "fstore" (target: grpc URI), "feast_http" (base URL), "feast_sdk" (repo path)."""
    if kind == "fstore":
        import adbc_driver_flightsql.dbapi as flight_sql
        conn = flight_sql.connect(target, autocommit=True)
        cur = conn.cursor()

        def lookup(cid):
            # Same SQL string on the same cursor: ADBC re-binds the prepared statement.
            cur.execute(FSTORE_LOOKUP_SQL, (cid,))
            return cur.fetch_arrow_table()

        def close():
            cur.close()
            conn.close()
        return lookup, close

    if kind == "fstore_plain":
        # ADBC's low-level API: a plain statement with the key as a literal, not prepared
        # (GetFlightInfo + DoGet; the DB-API cursor would prepare each new SQL text).
        import adbc_driver_flightsql
        import adbc_driver_manager
        import pyarrow as pa
        db = adbc_driver_flightsql.connect(target)
        conn = adbc_driver_manager.AdbcConnection(db)
        stmt = adbc_driver_manager.AdbcStatement(conn)

        def lookup(cid):
            stmt.set_sql_query(FSTORE_LITERAL_SQL.format(cid=int(cid)))
            handle, _ = stmt.execute_query()
            return pa.RecordBatchReader._import_from_c(handle.address).read_all()

        def close():
            stmt.close()
            conn.close()
            db.close()
        return lookup, close

    if kind == "feast_http":
        import requests
        session = requests.Session()
        url = target + "/get-online-features"

        def lookup(cid):
            r = session.post(url, json=feast_request(cid))
            r.raise_for_status()
            return r.json()
        return lookup, session.close

    if kind == "feast_sdk":
        from feast import FeatureStore
        store = FeatureStore(repo_path=target)

        def lookup(cid):
            return store.get_online_features(features=FEAST_FEATURES,
                                             entity_rows=[{"customer_id": cid}]).to_dict()
        return lookup, lambda: None

    raise ValueError(kind)


def fstore_row(table):
    """{feature: value} of a one-row online_features result (columns matched by name or by a
    qualified name ending in .feature / __feature)."""
    if table.num_rows != 1:
        raise AssertionError(f"expected 1 row, got {table.num_rows}: {table.to_pylist()}")
    row = table.to_pylist()[0]
    out = {}
    for f in FEATURES + ["customer_id"]:
        names = [k for k in row if k == f or k.endswith("." + f) or k.endswith("__" + f)]
        if len(names) != 1:
            raise AssertionError(f"no single column for {f} in {list(row)}")
        out[f] = row[names[0]]
    return out


def feast_http_row(resp):
    names = resp["metadata"]["feature_names"]
    row = {}
    for name, result in zip(names, resp["results"]):
        if len(result["values"]) != 1:
            raise AssertionError(f"expected 1 value for {name}: {result}")
        row[name] = result["values"][0]
        status = result.get("statuses", ["PRESENT"])[0]
        if name in FEATURES and status != "PRESENT":
            raise AssertionError(f"{name}: status {status}")
    return row


def feast_sdk_row(d):
    return {k: v[0] for k, v in d.items()}


# ---------------------------------------------------------------------------------------
# Measurements
# ---------------------------------------------------------------------------------------

def percentiles(samples_ms):
    """The same percentile definition as benches/flight_bench.py (imported lazily: it needs
    the client packages that require_modules checks first)."""
    from flight_bench import percentiles as flight_percentiles
    return flight_percentiles(samples_ms)


def measure_latency(lookup, ids, warmup):
    for cid in ids[:warmup]:
        lookup(cid)
    samples = []
    perf = time.perf_counter
    for cid in ids[warmup:]:
        t0 = perf()
        lookup(cid)
        samples.append((perf() - t0) * 1000)
    return percentiles(samples)


def _throughput_worker(kind, target, n_entities, seed, duration, messages, go):
    """One client process: connect, warm up, report ready, then look up random customers
    until `duration` seconds after `go` is set."""
    try:
        lookup, close = open_client(kind, target)
        rng = random.Random(seed)
        for _ in range(THROUGHPUT_WARMUP):
            lookup(rng.randrange(n_entities))
        messages.put(("ready", None))
        go.wait()
        deadline = time.monotonic() + duration
        count = 0
        while time.monotonic() < deadline:
            lookup(rng.randrange(n_entities))
            count += 1
        end = time.monotonic()
        close()
        messages.put(("done", (count, end)))
    except BaseException:
        messages.put(("error", traceback.format_exc()))


def measure_throughput(kind, target, n_entities, concurrency, duration, seed=7):
    ctx = mp.get_context("spawn")  # no forked copies of gRPC / HTTP client state
    messages, go = ctx.Queue(), ctx.Event()
    procs = [ctx.Process(target=_throughput_worker, daemon=True,
                         args=(kind, target, n_entities, seed + i, duration, messages, go))
             for i in range(concurrency)]
    for p in procs:
        p.start()
    try:
        def collect(kind_wanted, timeout):
            got = []
            deadline = time.monotonic() + timeout
            while len(got) < concurrency:
                try:
                    what, payload = messages.get(timeout=max(0.1, deadline - time.monotonic()))
                except queue.Empty:
                    raise RuntimeError(f"throughput: {len(got)}/{concurrency} clients "
                                       f"{kind_wanted} after {timeout:.0f} s")
                if what == "error":
                    raise RuntimeError(f"throughput client failed:\n{payload}")
                got.append(payload)
            return got

        collect("ready", 300)
        start = time.monotonic()
        go.set()
        done = collect("done", duration + 120)
        elapsed = max(end for _, end in done) - start
        total = sum(count for count, _ in done)
        return {"clients": concurrency, "duration_s": elapsed, "lookups": total,
                "lookups_per_s": total / elapsed}
    finally:
        for p in procs:
            p.join(10)
            if p.is_alive():
                p.kill()
                p.join()


def bench_engine(kind, target, ids, args):
    lookup, close = open_client(kind, target)
    try:
        latency = measure_latency(lookup, ids, args.warmup)
    finally:
        close()
    return latency


# ---------------------------------------------------------------------------------------
# FStore
# ---------------------------------------------------------------------------------------

def start_fstore(binary, warehouse, log_path, online_store=None):
    port = free_port()
    cmd = [binary, "serve", "--warehouse", warehouse, "--addr", f"127.0.0.1:{port}",
           "--no-auth"]
    if online_store:
        cmd += ["--online-store", online_store]
    env = dict(os.environ, FSTORE_LOG=os.environ.get("FSTORE_LOG", "error"))
    proc = start_process(cmd, log_path, env=env)
    uri = f"grpc://127.0.0.1:{port}"
    try:
        wait_until(lambda: port_open(port), proc, "fstore serve", log_path)
        wait_until(lambda: fstore_query(uri, "SELECT 1").num_rows == 1, proc,
                   "fstore serve (SELECT 1)", log_path)
    except BaseException:
        stop_process(proc)
        raise
    return proc, uri


def fstore_query(uri, sql, params=None):
    import adbc_driver_flightsql.dbapi as flight_sql
    with flight_sql.connect(uri, autocommit=True) as conn, conn.cursor() as cur:
        cur.execute(sql, params)
        return cur.fetch_arrow_table()


def fstore_setup(uri, parquet_path):
    """Register the data, the feature group and set, make the set online and materialize it.
    Returns the seconds the REFRESH took."""
    import adbc_driver_flightsql.dbapi as flight_sql
    statements = [
        f"CREATE EXTERNAL TABLE customer_stats STORED AS PARQUET LOCATION '{parquet_path}'",
        "CREATE FEATURE GROUP customer_stats_fg ENTITY (customer_id) TIMESTAMP event_ts "
        "FROM customer_stats FEATURES (spend_7d, orders_30d, segment, score)",
        "CREATE FEATURE SET bench_online FEATURES (customer_stats_fg.*)",
        "ALTER FEATURE SET bench_online SET ONLINE (update_frequency = '1h', cache_ttl = '2h')",
    ]
    with flight_sql.connect(uri, autocommit=True) as conn, conn.cursor() as cur:
        for sql in statements:
            cur.execute(sql)
            cur.fetchall()
        t0 = time.perf_counter()
        cur.execute(f"REFRESH ONLINE FEATURE SET bench_online AS OF '{AS_OF}'")
        cur.fetchall()
        return time.perf_counter() - t0


def fstore_check(engine, uri, data, check_ids, kind="fstore"):
    lookup, close = open_client(kind, uri)
    try:
        tables = []
        for cid in check_ids:
            table = lookup(cid)
            row = fstore_row(table)
            if row["customer_id"] != cid:
                raise AssertionError(f"{engine}: asked for {cid}, got row {row}")
            check_row(engine, cid, row, expected_row(data, cid))
            tables.append(table)
        return tables
    finally:
        close()


def comparable(table):
    """A lookup's rows as Python values, without the wall-clock materialization time (the
    two stores may use different Arrow types for the same values)."""
    return [{k: v for k, v in row.items() if k != "_materialized_at"}
            for row in table.to_pylist()]


def bench_fstore(engine, args, data, ids, check_ids, work, online_store=None, reference=None):
    label = engine.replace("fstore_", "")
    log_path = os.path.join(work, f"fstore-{label}.log")
    proc, uri = start_fstore(args.fstore_bin, os.path.join(work, f"wh-{label}"), log_path,
                             online_store)
    try:
        refresh_s = fstore_setup(uri, data["path"])
        tables = fstore_check(engine, uri, data, check_ids)
        if reference is not None:
            for cid, mine, theirs in zip(check_ids, tables, reference):
                if comparable(mine) != comparable(theirs):
                    raise AssertionError(f"{engine}: customer {cid}: {comparable(mine)} != "
                                         f"embedded store's {comparable(theirs)}")
        print(f"  {engine}: REFRESH {refresh_s:.2f} s; {len(check_ids)} lookups checked",
              flush=True)
        result = {"materialize_s": refresh_s, "latency": bench_engine("fstore", uri, ids, args)}
        print(f"  {engine}: latency {fmt_latency(result['latency'])}", flush=True)
        result["throughput"] = measure_throughput("fstore", uri, args.entities,
                                                  args.concurrency, args.duration)
        print(f"  {engine}: {result['throughput']['lookups_per_s']:.0f} lookups/s", flush=True)
        native = native_client(args, uri)
        if native is not None:
            result["native"] = native
            print(f"  {engine}: native client {fmt_latency(native['latency'])}, "
                  f"{native['throughput']['lookups_per_s']:.0f} lookups/s", flush=True)
        if online_store is None:
            # The same lookups as plain statements (two calls instead of three).
            plain = fstore_check(engine, uri, data, check_ids, kind="fstore_plain")
            for cid, mine, prepared in zip(check_ids, plain, tables):
                if comparable(mine) != comparable(prepared):
                    raise AssertionError(f"{engine} plain statement: customer {cid}: "
                                         f"{comparable(mine)} != {comparable(prepared)}")
            result["plain"] = {"materialize_s": refresh_s,
                               "latency": bench_engine("fstore_plain", uri, ids, args)}
            result["plain"]["throughput"] = measure_throughput(
                "fstore_plain", uri, args.entities, args.concurrency, args.duration)
            print(f"  {engine}: plain statement {fmt_latency(result['plain']['latency'])}, "
                  f"{result['plain']['throughput']['lookups_per_s']:.0f} lookups/s", flush=True)
        return result, tables
    finally:
        stop_process(proc)


def native_client(args, uri):
    """The same lookups from benches/online_lookup.rs (arrow-flight's Rust Flight SQL client:
    DoPut, GetFlightInfo, DoGet per lookup, like ADBC) when it is built, else None."""
    binary = args.native_client
    if not binary:
        found = sorted(glob.glob("target/release/deps/online_lookup-*"))
        found = [f for f in found if os.access(f, os.X_OK) and not f.endswith(".d")]
        binary = found[-1] if found else None
    if not binary:
        print("  (native client not built: cargo bench --bench online_lookup --no-run)")
        return None
    out = subprocess.run([binary, "--addr", uri.removeprefix("grpc://"), "--set", "bench_online",
                          "--key", "customer_id", "--entities", str(args.entities),
                          "--requests", str(args.requests), "--concurrency", str(args.concurrency),
                          "--duration", str(args.duration)],
                         check=True, capture_output=True, text=True).stdout
    r = json.loads(out.strip().splitlines()[-1])
    return {"latency": {k: r[k] for k in ("p50_ms", "p99_ms", "p999_ms", "mean_ms")},
            "throughput": {"lookups_per_s": r["throughput_per_s"], "tasks": r["concurrency"]}}


def bench_noop(args, ids, work):
    """The ADBC prepared lookup against benches/noop_flight_sql.py, a server that does no
    work: the client's and the transport's own cost on this machine (latency only: the
    server's handlers are Python, so its throughput says nothing about a real server)."""
    port = free_port()
    log_path = os.path.join(work, "noop.log")
    proc = start_process([sys.executable, os.path.join(HERE, "noop_flight_sql.py"), str(port)],
                         log_path)
    try:
        wait_until(lambda: port_open(port), proc, "noop Flight SQL server", log_path)
        uri = f"grpc://127.0.0.1:{port}"
        if open_client("fstore", uri)[0](1).num_rows != 1:
            raise AssertionError("noop server: expected one row")
        latency = bench_engine("fstore", uri, ids, args)
        print(f"  noop_adbc: latency {fmt_latency(latency)}", flush=True)
        return {"latency": latency}
    finally:
        stop_process(proc)


def start_redis(work):
    port = free_port()
    log_path = os.path.join(work, "redis.log")
    proc = start_process(["redis-server", "--port", str(port), "--bind", "127.0.0.1",
                          "--save", "", "--appendonly", "no"], log_path)

    def ping():
        with socket.create_connection(("127.0.0.1", port), timeout=1) as s:
            s.sendall(b"PING\r\n")
            return s.recv(64).startswith(b"+PONG")

    try:
        wait_until(ping, proc, "redis-server", log_path)
    except BaseException:
        stop_process(proc)
        raise
    return proc, f"redis://127.0.0.1:{port}"


# ---------------------------------------------------------------------------------------
# Feast
# ---------------------------------------------------------------------------------------

FEAST_STORE_YAML = """\
project: bench_online
provider: local
registry:
  registry_type: file
  path: data/registry.db
  cache_ttl_seconds: 0   # never expires: no registry re-read during lookups
online_store:
  type: sqlite
  path: data/online_store.db
offline_store:
  type: file
entity_key_serialization_version: 3
"""

FEAST_DEFINITIONS = """\
from datetime import timedelta

from feast import Entity, FeatureView, Field, FileSource, ValueType
from feast.types import Float64, Int64, String

customer = Entity(name="customer", join_keys=["customer_id"], value_type=ValueType.INT64)

customer_stats_source = FileSource(
    name="customer_stats_source",
    path={path!r},
    timestamp_field="event_ts",
)

customer_stats = FeatureView(
    name={view!r},
    entities=[customer],
    ttl=timedelta(days=3650),
    schema=[
        Field(name="spend_7d", dtype=Float64),
        Field(name="orders_30d", dtype=Int64),
        Field(name="segment", dtype=String),
        Field(name="score", dtype=Float64),
    ],
    online=True,
    source=customer_stats_source,
)
"""


def feast_cli():
    beside = os.path.join(os.path.dirname(sys.executable), "feast")
    return beside if os.access(beside, os.X_OK) else shutil.which("feast")


def feast_setup(work, parquet_path):
    """Create the repo, `feast apply` and `feast materialize`; return (repo, seconds of
    the materialization)."""
    repo = os.path.join(work, "feast_repo")
    os.makedirs(os.path.join(repo, "data"), exist_ok=True)
    with open(os.path.join(repo, "feature_store.yaml"), "w") as f:
        f.write(FEAST_STORE_YAML)
    with open(os.path.join(repo, "definitions.py"), "w") as f:
        f.write(FEAST_DEFINITIONS.format(path=parquet_path, view=FEAST_VIEW))
    log_path = os.path.join(work, "feast-setup.log")
    run_checked([feast_cli(), "apply"], log_path, cwd=repo)
    # [start, end) covers every event: all are in the 30 days before AS_OF.
    t0 = time.perf_counter()
    run_checked([feast_cli(), "materialize", "2024-05-30T00:00:00", AS_OF], log_path, cwd=repo)
    return repo, time.perf_counter() - t0


def start_feast_serve(repo, work, workers):
    import requests
    port = free_port()
    log_path = os.path.join(work, f"feast-serve-w{workers}.log")
    cmd = [feast_cli(), "serve", "--host", "127.0.0.1", "--port", str(port),
           "--workers", str(workers), "--no-access-log", "--max-requests", "0",
           "--max-requests-jitter", "0", "--registry_ttl_sec", "3600"]
    # A session of its own: stopping it signals gunicorn's master and its workers.
    proc = start_process(cmd, log_path, cwd=repo, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until(lambda: requests.get(url + "/health", timeout=2).status_code == 200,
                   proc, "feast serve", log_path, timeout=180)
    except BaseException:
        stop_process(proc, group=True)
        raise
    return proc, url


def feast_check(engine, kind, target, data, check_ids):
    lookup, close = open_client(kind, target)
    to_row = feast_http_row if kind == "feast_http" else feast_sdk_row
    try:
        for cid in check_ids:
            row = to_row(lookup(cid))
            if row.get("customer_id") != cid:
                raise AssertionError(f"{engine}: asked for {cid}, got row {row}")
            check_row(engine, cid, row, expected_row(data, cid))
    finally:
        close()


def bench_feast(args, data, ids, check_ids, work):
    repo, materialize_s = feast_setup(work, data["path"])
    print(f"  feast: apply + materialize done (materialize {materialize_s:.1f} s)", flush=True)
    results = {}

    # Feature server: sequential latency with 1 worker; throughput with each worker count.
    http = {"materialize_s": materialize_s, "throughput_by_workers": {}}
    for workers in args.feast_workers:
        proc, url = start_feast_serve(repo, work, workers)
        try:
            if "latency" not in http:
                feast_check("feast_http", "feast_http", url, data, check_ids)
                http["latency"] = bench_engine("feast_http", url, ids, args)
                http["latency_workers"] = workers
                print(f"  feast_http: {len(check_ids)} lookups checked; latency "
                      f"{fmt_latency(http['latency'])} (workers={workers})", flush=True)
            tp = measure_throughput("feast_http", url, args.entities, args.concurrency,
                                    args.duration)
            http["throughput_by_workers"][str(workers)] = tp
            print(f"  feast_http: {tp['lookups_per_s']:.0f} lookups/s (workers={workers})",
                  flush=True)
        finally:
            stop_process(proc, grace=15, group=True)
    best = max(http["throughput_by_workers"].items(), key=lambda kv: kv[1]["lookups_per_s"])
    http["throughput"] = dict(best[1], server_workers=int(best[0]))
    results["feast_http"] = http

    # SDK in process, for reference.
    feast_check("feast_sdk", "feast_sdk", repo, data, check_ids)
    sdk = {"materialize_s": materialize_s, "latency": bench_engine("feast_sdk", repo, ids, args)}
    print(f"  feast_sdk: latency {fmt_latency(sdk['latency'])}", flush=True)
    sdk["throughput"] = measure_throughput("feast_sdk", repo, args.entities, args.concurrency,
                                           args.duration)
    print(f"  feast_sdk: {sdk['throughput']['lookups_per_s']:.0f} lookups/s", flush=True)
    results["feast_sdk"] = sdk
    return results


# ---------------------------------------------------------------------------------------
# Report
# ---------------------------------------------------------------------------------------

def fmt_latency(lat):
    return (f"p50 {lat['p50_ms']:.3f} ms, p99 {lat['p99_ms']:.3f} ms, "
            f"p99.9 {lat['p999_ms']:.3f} ms")


def markdown_table(engines, args):
    lines = [
        f"| engine | p50 ms | p99 ms | p99.9 ms | mean ms | lookups/s ({args.concurrency} "
        "procs) | materialize s |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for key, label in ENGINES.items():
        r = engines.get(key)
        if r is None:
            continue
        lat, tp = r["latency"], r.get("throughput")
        tput = f"{tp['lookups_per_s']:,.0f}" if tp else "–"
        if tp and "server_workers" in tp:
            tput += f" (w={tp['server_workers']})"
        materialize = f"{r['materialize_s']:.2f}" if "materialize_s" in r else "–"
        lines.append(f"| {label} | {lat['p50_ms']:.3f} | {lat['p99_ms']:.3f} | "
                     f"{lat['p999_ms']:.3f} | {lat['mean_ms']:.3f} | {tput} | {materialize} |")
    return "\n".join(lines)


def versions():
    from importlib.metadata import PackageNotFoundError, version
    out = {"python": platform.python_version()}
    for pkg in ["feast", "pyarrow", "adbc-driver-flightsql", "numpy", "requests"]:
        try:
            out[pkg] = version(pkg)
        except PackageNotFoundError:
            pass
    return out


def parse_args():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--fstore-bin", default="target/release/fstore")
    ap.add_argument("--entities", type=int, default=100_000)
    ap.add_argument("--requests", type=int, default=10_000,
                    help="timed sequential lookups per engine")
    ap.add_argument("--warmup", type=int, default=500)
    ap.add_argument("--concurrency", type=int, default=16, help="client processes")
    ap.add_argument("--duration", type=float, default=10.0, help="seconds of the throughput run")
    ap.add_argument("--feast-workers", default="1,2",
                    help="feast serve worker counts to measure throughput with (latency: first)")
    ap.add_argument("--check", type=int, default=200, help="lookups checked before timing")
    ap.add_argument("--out", default="peer-results/online.json")
    ap.add_argument("--skip-feast", action="store_true")
    ap.add_argument("--skip-redis", action="store_true")
    ap.add_argument("--only-feast", action="store_true")
    ap.add_argument("--native-client", default=None,
                    help="benches/online_lookup.rs binary [default: target/release/deps/online_lookup-*]")
    args = ap.parse_args()
    args.feast_workers = [int(w) for w in args.feast_workers.split(",")]
    if args.only_feast and args.skip_feast:
        ap.error("--only-feast and --skip-feast exclude each other")
    return args


def main():
    args = parse_args()
    require_modules(args)
    ids = sample_ids(args.entities, args.warmup + args.requests, seed=1)
    check_ids = sorted({0, args.entities - 1, *sample_ids(args.entities, args.check, seed=2)})
    engines = {}
    with tempfile.TemporaryDirectory(prefix="online-bench-") as work:
        t0 = time.perf_counter()
        data = make_data(os.path.join(work, "data"), args.entities)
        print(f"data: {args.entities} customers, {data['rows']} rows "
              f"({time.perf_counter() - t0:.1f} s) in {data['path']}", flush=True)

        if not args.only_feast:
            engines["fstore_embedded"], reference = bench_fstore(
                "fstore_embedded", args, data, ids, check_ids, work)
            if "native" in engines["fstore_embedded"]:
                engines["fstore_embedded_native"] = dict(
                    engines["fstore_embedded"].pop("native"),
                    materialize_s=engines["fstore_embedded"]["materialize_s"])
            if not args.skip_redis:
                redis_proc, redis_url = start_redis(work)
                try:
                    engines["fstore_redis"], _ = bench_fstore(
                        "fstore_redis", args, data, ids, check_ids, work,
                        online_store=redis_url, reference=reference)
                    if "native" in engines["fstore_redis"]:
                        engines["fstore_redis_native"] = dict(
                            engines["fstore_redis"].pop("native"),
                            materialize_s=engines["fstore_redis"]["materialize_s"])
                finally:
                    stop_process(redis_proc)
            if "plain" in engines["fstore_embedded"]:
                engines["fstore_embedded_plain"] = engines["fstore_embedded"].pop("plain")
            engines["noop_adbc"] = bench_noop(args, ids, work)
        if not args.skip_feast:
            engines.update(bench_feast(args, data, ids, check_ids, work))

    result = {
        "config": {"entities": args.entities, "events_per_customer": EVENTS_PER_CUSTOMER,
                   "requests": args.requests, "warmup": args.warmup,
                   "concurrency": args.concurrency, "duration_s": args.duration,
                   "as_of": AS_OF, "fstore_sql": FSTORE_LOOKUP_SQL,
                   "feast_features": FEAST_FEATURES},
        "versions": versions(),
        "machine": {"cpus": os.cpu_count(), "host": socket.gethostname()},
        "engines": engines,
    }
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    with open(args.out, "w") as f:
        json.dump(result, f, indent=2)
    print()
    print(markdown_table(engines, args))
    print(f"\n(JSON: {args.out})")


if __name__ == "__main__":
    main()
