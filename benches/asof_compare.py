#!/usr/bin/env python3
"""AS-OF join side by side: FStore vs DuckDB `ASOF LEFT JOIN` vs Polars `join_asof`.

The task (the feature store's point-in-time join): for every row of a spine
(entity_df: customer_id, ts), the latest row of customer_features with the same customer
and event_ts <= ts; spine rows without one are kept with NULL features; duplicate spine
rows are kept. Two variants:
  plain    ties on (customer_id, event_ts) broken however the engine likes
  created  ties broken by the latest created_ts (FStore: CREATED(f.created_ts);
           DuckDB: QUALIFY row_number() ... ORDER BY created_ts DESC before the join;
           Polars: sort by created_ts and keep the last row per (customer, event_ts))

Each engine runs in its own process, on the same Parquet files; wall time is the child's
whole run (FStore: the `fstore sql -f` process, from Parquet to the full joined result),
peak RSS its ru_maxrss. 1 warm-up + N timed runs, median reported. FStore computes the full
join (all five features) and returns checksums; DuckDB and Polars materialise the full
result as Arrow / a DataFrame and the checksums are computed outside the timed region.

Usage:
  python benches/asof_compare.py --scale 0.1                  # generates data, runs all
  python benches/asof_compare.py --scale 1 --data /tmp/asof-s1 --repeats 3
  FSTORE_RELEASE_BIN=target/release/fstore python benches/asof_compare.py ...

The data generator below reproduces the peer benchmarks' customer_features and entity_df
(seed 42): scale 1 is 100k customers, 10M feature rows (5% of customers have none; 1% of
rows tie on (customer, event_ts) with a later created_ts) and a 1M-row spine from a week
before to a week after the feature range, 1% exact duplicates.
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FEATS = ["f1", "f2", "f3", "f4", "f5"]

# ----------------------------------------------------------------------------- data


def generate(out_dir, scale, seed=42):
    import numpy as np
    import pyarrow as pa
    import pyarrow.parquet as pq

    US = 1_000_000
    T0 = np.datetime64("2024-01-01T00:00:00", "us").astype(np.int64)
    T1 = np.datetime64("2024-04-01T00:00:00", "us").astype(np.int64)
    DAY = 86_400 * US

    def ts_array(micros):
        return pa.array(micros.astype("datetime64[us]"), type=pa.timestamp("us"))

    n_cust = int(round(100_000 * scale))
    names = pa.array([f"customer_{i}" for i in range(n_cust)], type=pa.string())
    # the peers' generator draws three independent streams; the features use the second
    # and the spine the third (the first made the transactions table, not needed here)
    ss = np.random.SeedSequence(seed)
    _, r_f, r_s = [np.random.default_rng(s) for s in ss.spawn(3)]

    n_rows = int(round(10_000_000 * scale))
    present = np.sort(r_f.permutation(n_cust)[: int(round(n_cust * 0.95))])
    n_dup = int(n_rows * 0.01)
    n_base = n_rows - n_dup
    cust = present[r_f.integers(0, len(present), size=n_base)]
    ev = r_f.integers(T0, T1, size=n_base)
    cr = ev + r_f.integers(0, 3600 * US, size=n_base)
    src = r_f.choice(n_base, size=n_dup, replace=False)
    cust = np.concatenate([cust, cust[src]])
    ev = np.concatenate([ev, ev[src]])
    cr = np.concatenate([cr, cr[src] + r_f.integers(1, 3600 * US, size=n_dup)])
    perm = r_f.permutation(n_rows)
    cust, ev, cr = cust[perm], ev[perm], cr[perm]
    cols = {"customer_id": names.take(pa.array(cust)), "event_ts": ts_array(ev)}
    for k in range(1, 6):
        cols[f"f{k}"] = pa.array(r_f.normal(k, 1.0, size=n_rows), type=pa.float64())
    cols["created_ts"] = ts_array(cr)
    pq.write_table(pa.table(cols), os.path.join(out_dir, "customer_features.parquet"),
                   row_group_size=1_000_000, compression="snappy")
    del cols, cust, ev, cr, perm

    n_rows = int(round(1_000_000 * scale))
    n_dup = int(n_rows * 0.01)
    n_base = n_rows - n_dup
    cust = r_s.integers(0, n_cust, size=n_base)
    ts = r_s.integers(T0 - 7 * DAY, T1 + 7 * DAY, size=n_base)
    src = r_s.choice(n_base, size=n_dup, replace=False)
    cust = np.concatenate([cust, cust[src]])
    ts = np.concatenate([ts, ts[src]])
    perm = r_s.permutation(n_rows)
    spine = pa.table({"customer_id": names.take(pa.array(cust[perm])), "ts": ts_array(ts[perm])})
    pq.write_table(spine, os.path.join(out_dir, "entity_df.parquet"),
                   row_group_size=1_000_000, compression="snappy")


# ----------------------------------------------------------------------------- engines

def fstore_sql(data, variant):
    created = " AND CREATED(f.created_ts)" if variant == "created" else ""
    sums = ", ".join(f"sum(f.{c}) AS sum_{c}" for c in FEATS)
    return f"""SELECT count(*) AS rows, count(f.f1) AS matched, {sums}
FROM entity_df s
ASOF JOIN customer_features f MATCH_CONDITION (s.ts >= f.event_ts{created})
  ON s.customer_id = f.customer_id"""


def run_fstore(data, variant, repeats, binary, warehouse):
    """Times `fstore sql -f` processes (the tables are defined once, untimed)."""
    S = os.path.join(data, "entity_df.parquet")
    F = os.path.join(data, "customer_features.parquet")
    env = {**os.environ, "FSTORE_LOG": "error"}
    setup = (f"CREATE EXTERNAL TABLE IF NOT EXISTS entity_df STORED AS PARQUET LOCATION '{S}';\n"
             f"CREATE EXTERNAL TABLE IF NOT EXISTS customer_features STORED AS PARQUET LOCATION '{F}';\n")
    subprocess.run([binary, "--warehouse", warehouse, "sql", "-c", setup], check=True, env=env,
                   capture_output=True)
    with tempfile.NamedTemporaryFile("w", suffix=".sql", delete=False) as f:
        f.write(fstore_sql(data, variant) + ";\n")
        script = f.name
    times, rss, out = [], [], None
    for i in range(repeats + 1):
        t = time.perf_counter()
        p = subprocess.Popen([binary, "--warehouse", warehouse, "sql", "--format", "json", "-f", script],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
        _, status, ru = os.wait4(p.pid, 0)
        wall = time.perf_counter() - t
        stdout, stderr = p.stdout.read(), p.stderr.read()
        if os.waitstatus_to_exitcode(status) != 0:
            raise RuntimeError(f"fstore failed: {stderr.decode()}")
        if i > 0:
            times.append(wall)
            rss.append(ru.ru_maxrss * 1024)
        out = stdout
    row = json.loads(out.decode().strip().splitlines()[-1]) if out.strip().startswith(b"{") \
        else json.loads(out.decode())[0]
    cs = {"rows": int(row["rows"]), "null_f1": int(row["rows"]) - int(row["matched"]),
          "sum_f1": round(float(row["sum_f1"]), 4), "sum_f5": round(float(row["sum_f5"]), 4)}
    return times, max(rss), cs


def duckdb_child(data, variant):
    import duckdb
    S = os.path.join(data, "entity_df.parquet")
    F = os.path.join(data, "customer_features.parquet")
    con = duckdb.connect()
    fcols = ", ".join(FEATS)
    fsrc = (f"""(SELECT customer_id, event_ts, {fcols} FROM read_parquet('{F}')
             QUALIFY row_number() OVER (PARTITION BY customer_id, event_ts ORDER BY created_ts DESC) = 1)"""
            if variant == "created" else f"(SELECT customer_id, event_ts, {fcols} FROM read_parquet('{F}'))")
    sel = ", ".join(f"f.{c}" for c in FEATS)
    sql = f"""SELECT s.customer_id, s.ts, {sel} FROM read_parquet('{S}') s
              ASOF LEFT JOIN {fsrc} f ON s.customer_id = f.customer_id AND s.ts >= f.event_ts"""
    return lambda: con.sql(sql).to_arrow_table()


def polars_child(data, variant):
    import polars as pl
    S = os.path.join(data, "entity_df.parquet")
    F = os.path.join(data, "customer_features.parquet")

    def run():
        spine = pl.scan_parquet(S).sort("ts")
        feat = pl.scan_parquet(F)
        if variant == "created":
            feat = (feat.sort(["event_ts", "created_ts"])
                    .unique(subset=["customer_id", "event_ts"], keep="last", maintain_order=True))
        else:
            feat = feat.sort("event_ts")
        feat = feat.select(["customer_id", "event_ts"] + FEATS)
        j = spine.join_asof(feat, left_on="ts", right_on="event_ts", by="customer_id",
                            strategy="backward")
        return j.select(["customer_id", "ts"] + FEATS).collect()
    return run


def child_main(engine, data, variant, repeats):
    """Runs in the child process: warm-up, timed runs, checksum; prints one JSON line."""
    import pyarrow as pa
    import pyarrow.compute as pc
    fn = {"duckdb": duckdb_child, "polars": polars_child}[engine](data, variant)
    res = fn()
    times = []
    for _ in range(repeats):
        res = None
        t = time.perf_counter()
        res = fn()
        times.append(time.perf_counter() - t)
    if not isinstance(res, pa.Table):
        res = res.to_arrow()
    f1 = res.column("f1")
    cs = {"rows": res.num_rows, "null_f1": f1.null_count,
          "sum_f1": round(pc.sum(f1).as_py() or 0.0, 4),
          "sum_f5": round(pc.sum(res.column("f5")).as_py() or 0.0, 4)}
    print("RESULT " + json.dumps({"times": times, **cs}), flush=True)


def run_child(engine, data, variant, repeats):
    p = subprocess.Popen([sys.executable, os.path.abspath(__file__), "--child", engine,
                          "--data", data, "--variant", variant, "--repeats", str(repeats)],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    _, status, ru = os.wait4(p.pid, 0)
    out, err = p.stdout.read().decode(), p.stderr.read().decode()
    if os.waitstatus_to_exitcode(status) != 0:
        raise RuntimeError(f"{engine} failed: {err[-2000:]}")
    res = json.loads([ln for ln in out.splitlines() if ln.startswith("RESULT ")][-1][7:])
    times = res.pop("times")
    return times, ru.ru_maxrss * 1024, res


# ----------------------------------------------------------------------------- main

def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--scale", type=float, default=0.1)
    ap.add_argument("--data", help="directory for the Parquet files (generated if missing)")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--engines", default="fstore,duckdb,polars")
    ap.add_argument("--variants", default="plain,created")
    ap.add_argument("--child")
    ap.add_argument("--variant")
    a = ap.parse_args()
    if a.child:
        return child_main(a.child, a.data, a.variant, a.repeats)

    data = a.data or os.path.join(tempfile.gettempdir(), f"fstore-asof-s{a.scale:g}")
    if not os.path.exists(os.path.join(data, "entity_df.parquet")):
        os.makedirs(data, exist_ok=True)
        t = time.perf_counter()
        print(f"generating scale {a.scale:g} data in {data} ...", flush=True)
        generate(data, a.scale)
        print(f"  done in {time.perf_counter() - t:.0f}s", flush=True)
    binary = os.environ.get("FSTORE_RELEASE_BIN", os.path.join(ROOT, "target", "release", "fstore"))
    warehouse = tempfile.mkdtemp(prefix="fstore-asof-bench-")

    results = []
    for variant in a.variants.split(","):
        for engine in a.engines.split(","):
            print(f"== {engine} {variant} (scale {a.scale:g})", flush=True)
            if engine == "fstore":
                times, rss, cs = run_fstore(data, variant, a.repeats, binary, warehouse)
            else:
                times, rss, cs = run_child(engine, data, variant, a.repeats)
            r = {"engine": engine, "variant": variant, "scale": a.scale,
                 "median_s": round(statistics.median(times), 3),
                 "runs_s": [round(t, 3) for t in times],
                 "peak_rss_mb": round(rss / 2**20), **cs}
            print(f"   {r}", flush=True)
            results.append(r)

    cols = ["engine", "variant", "median_s", "peak_rss_mb", "rows", "null_f1", "sum_f1", "sum_f5"]
    w = {c: max(len(c), *(len(str(r[c])) for r in results)) for c in cols}
    print("\n" + " | ".join(c.ljust(w[c]) for c in cols))
    print("-|-".join("-" * w[c] for c in cols))
    for r in results:
        print(" | ".join(str(r[c]).ljust(w[c]) for c in cols))
    for variant in a.variants.split(","):
        rs = [r for r in results if r["variant"] == variant]
        keys = {(r["rows"], r["null_f1"], round(r["sum_f1"], 2), round(r["sum_f5"], 2)) for r in rs}
        print(f"checksums [{variant}]: {'AGREE' if len(keys) == 1 else 'DIFFER'} {sorted(keys)}")
    out = os.environ.get("ASOF_BENCH_RESULTS", os.path.join(ROOT, "target", "asof-bench"))
    os.makedirs(out, exist_ok=True)
    path = os.path.join(out, f"asof_scale{a.scale:g}.json")
    with open(path, "w") as f:
        json.dump(results, f, indent=1)
    print(f"saved {path}")


if __name__ == "__main__":
    main()
