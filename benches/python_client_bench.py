#!/usr/bin/env python3
"""The Python package's cost: `get_training_features` vs the same `training_set` SQL by ADBC.

The training benchmark's task (benches/training_compare.py: 1M spine rows, three feature
groups over 10M feature rows at scale 1), through `fstore serve` on loopback, two ways:

  adbc     cursor.execute("SELECT * FROM training_set('profile:*, spend:*, recent:*',
           'entity_df', 'ts')") + fetch_arrow_table() — the raw client;
  package  store.get_training_features(["profile:*", "spend:*", "recent:*"], entity_df=…,
           timestamp_column="ts", output="arrow") — the fstore package (python/).

Two cases, each timed both ways in alternating order, after a warm-up:

  table    the spine is a table on the server (entity_df="entity_df"): the package adds
           nothing but building the statement;
  frame    the spine is an Arrow table in the client (1M rows): both upload it by ADBC bulk
           ingest into a new table, run the query and drop the table (what the package does
           for a DataFrame).

With --pandas the results are also converted to pandas on both sides (the package's default
output). Both paths must return the same rows (checked by per-column checksums). Prints the
median and minimum of each and the package's overhead.

Usage:
  cargo build --release --bin fstore
  .venv-test/bin/pip install ./python
  .venv-test/bin/python benches/python_client_bench.py --scale 1 --data /tmp/fstore-asof-s1 --repeats 5
  # smoke test (debug build, tiny data):
  .venv-test/bin/python benches/python_client_bench.py --fstore target/debug/fstore --scale 0.01 --repeats 1
"""
import argparse
import os
import statistics
import sys
import tempfile
import time
import uuid

import adbc_driver_flightsql.dbapi as flight_sql
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, HERE)
from asof_compare import generate  # noqa: E402  (the shared data generator)
from flight_bench import start_server  # noqa: E402
from training_compare import SETUP  # noqa: E402  (the three feature groups)

PASSWORD = "bench-password"
FEATURES = ["profile:*", "spend:*", "recent:*"]
QUERY = "SELECT * FROM training_set('profile:*, spend:*, recent:*', '{spine}', 'ts')"


def checksum(table):
    """Row count and, per numeric column, sum and non-NULL count (order-independent)."""
    out = {"rows": table.num_rows}
    for name in table.column_names:
        col = table.column(name)
        if pa.types.is_floating(col.type) or pa.types.is_integer(col.type):
            out[name] = (round(pc.sum(col).as_py() or 0.0, 3), pc.count(col).as_py())
    return out


def adbc_table(conn):
    with conn.cursor() as cur:
        cur.execute(QUERY.format(spine="entity_df"))
        return cur.fetch_arrow_table()


def adbc_frame(conn, spine):
    name = "_bench_" + uuid.uuid4().hex[:12]
    with conn.cursor() as cur:
        cur.adbc_ingest(name, spine, mode="create", temporary=True)
        try:
            cur.execute(QUERY.format(spine=name))
            return cur.fetch_arrow_table()
        finally:
            cur.execute(f"DROP TABLE IF EXISTS {name}")
            cur.fetch_arrow_table()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--fstore", default=os.environ.get(
        "FSTORE_RELEASE_BIN", os.path.join(ROOT, "target", "release", "fstore")))
    ap.add_argument("--scale", type=float, default=1.0)
    ap.add_argument("--data")
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--pandas", action="store_true", help="also convert results to pandas")
    a = ap.parse_args()

    try:
        from fstore import FeatureStore
    except ImportError:
        sys.path.insert(0, os.path.join(ROOT, "python"))
        from fstore import FeatureStore

    data = a.data or os.path.join(tempfile.gettempdir(), f"fstore-asof-s{a.scale:g}")
    if not os.path.exists(os.path.join(data, "entity_df.parquet")):
        os.makedirs(data, exist_ok=True)
        print(f"generating scale {a.scale:g} data in {data} ...", flush=True)
        generate(data, a.scale)
    spine_path = os.path.join(data, "entity_df.parquet")
    features_path = os.path.join(data, "customer_features.parquet")
    spine = pq.read_table(spine_path)

    warehouse = tempfile.mkdtemp(prefix="fstore-python-bench-")
    proc, uri = start_server(a.fstore, warehouse, 1000)
    try:
        conn = flight_sql.connect(uri, db_kwargs={"username": "admin", "password": PASSWORD},
                                  autocommit=True)
        with conn.cursor() as cur:
            for stmt in SETUP.format(S=spine_path, F=features_path).split(";"):
                if stmt.strip():
                    cur.execute(stmt)
                    cur.fetch_arrow_table()
        store = FeatureStore(uri, "admin", PASSWORD)
        output = "pandas" if a.pandas else "arrow"

        def convert(table):
            return table.to_pandas() if a.pandas else table

        runs = {
            ("table", "adbc"): lambda: convert(adbc_table(conn)),
            ("table", "package"): lambda: store.get_training_features(
                FEATURES, entity_df="entity_df", timestamp_column="ts", output=output),
            ("frame", "adbc"): lambda: convert(adbc_frame(conn, spine)),
            ("frame", "package"): lambda: store.get_training_features(
                FEATURES, entity_df=spine, timestamp_column="ts", output=output),
        }

        # Warm-up, and the same rows both ways.
        for case in ("table", "frame"):
            sums = []
            for path in ("adbc", "package"):
                result = runs[(case, path)]()
                table = result if isinstance(result, pa.Table) else pa.Table.from_pandas(
                    result, preserve_index=False)
                sums.append(checksum(table))
            assert sums[0] == sums[1], f"{case}: the two paths differ:\n{sums[0]}\n{sums[1]}"
            print(f"{case}: same rows both ways ({sums[0]['rows']:,} rows)", flush=True)

        times = {k: [] for k in runs}
        for r in range(a.repeats):
            for case in ("table", "frame"):
                order = ("adbc", "package") if r % 2 == 0 else ("package", "adbc")
                for path in order:
                    t = time.perf_counter()
                    runs[(case, path)]()
                    times[(case, path)].append(time.perf_counter() - t)
        store.close()
        conn.close()
    finally:
        proc.terminate()
        proc.wait(30)

    print(f"\nscale {a.scale:g}: {spine.num_rows:,} spine rows, {a.repeats} timed runs each, "
          f"output {'pandas' if a.pandas else 'arrow'}, server {a.fstore}")
    print(f"{'case':6} {'path':8} {'median s':>9} {'min s':>8}  runs")
    for case in ("table", "frame"):
        for path in ("adbc", "package"):
            ts = times[(case, path)]
            print(f"{case:6} {path:8} {statistics.median(ts):9.3f} {min(ts):8.3f}  "
                  + " ".join(f"{t:.3f}" for t in ts))
        base = statistics.median(times[(case, "adbc")])
        pkg = statistics.median(times[(case, "package")])
        print(f"{case:6} package overhead: {100 * (pkg - base) / base:+.1f} % (medians)")


if __name__ == "__main__":
    main()
