"""Differential test of FStore's window features against DuckDB, through the real CLI.

Over ≥ 1M generated events (WINDOW_DIFF_ROWS, default 1,000,000) with NULL amounts, refunds
(negative amounts), equal timestamps, events exactly one window apart, customers with a single
event, a few very heavy customers, and windows longer than the data, every aggregate of
`window_features` (per event) and `window_features_at` (at the times of a spine in another
time unit, with duplicates, unknown customers, times before and after the data) must equal
DuckDB's answer: counts exactly, floats to 1e-9 relative.

DuckDB's RANGE frame is closed at both ends, so the reference frame is
`RANGE BETWEEN (w - 1 µs) PRECEDING AND CURRENT ROW` on microsecond timestamps — exactly
(t - w, t]. `last` is DuckDB's `arg_max(amount, (ts, file position))` over the non-NULL
amounts; spine rows are evaluated by adding them to the events as probe rows that the
aggregates FILTER out.

FSTORE_BIN points to the binary (default target/debug/fstore).
"""
import os
import subprocess
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

duckdb = pytest.importorskip("duckdb")

ROOT = Path(__file__).resolve().parents[2]
FSTORE_BIN = os.environ.get("FSTORE_BIN", str(ROOT / "target" / "debug" / "fstore"))
ROWS = int(os.environ.get("WINDOW_DIFF_ROWS", "1000000"))
US = 1_000_000
DAY = 86_400 * US
T0 = int(np.datetime64("2024-01-01T00:00:00", "us").astype(np.int64))
SPAN = 90 * DAY
WINDOWS = {"7d": 7 * DAY, "30d": 30 * DAY, "400d": 400 * DAY}
AGGS = ["mean", "sum", "count", "rows", "min", "max", "stddev", "distinct", "last"]
REL = 1e-9


def spec_text(agg, w):
    name = f"{agg}_{w}"
    fn = {"rows": "count(*)", "distinct": "count_distinct(amount)"}.get(agg, f"{agg}(amount)")
    return f"{fn} {w} AS {name}", name


def gen_events(rng, n):
    n_cust = max(n // 30, 10)
    # Skew: a few customers get a large share of the rows.
    weights = rng.pareto(1.2, n_cust) + 1.0
    weights[:3] *= n_cust / 20
    weights /= weights.sum()
    n_single = n_cust // 20
    n_main = n - n_single
    cust = rng.choice(n_cust, size=n_main, p=weights)
    ts = T0 + rng.integers(0, SPAN // US, size=n_main) * US + rng.integers(0, 1000, size=n_main)
    # Ties: 3% of rows copy the customer and time of another row.
    k = n_main * 3 // 100
    src = rng.integers(0, n_main, size=k)
    dst = rng.integers(0, n_main, size=k)
    cust[dst] = cust[src]
    ts[dst] = ts[src]
    # Events exactly one window after another event of the same customer (open lower bound).
    for w in (7 * DAY, 30 * DAY):
        k = max(n_main // 100, 1)
        src = rng.integers(0, n_main, size=k)
        dst = rng.integers(0, n_main, size=k)
        cust[dst] = cust[src]
        ts[dst] = ts[src] + w
    # Singleton customers.
    cust = np.concatenate([cust, np.arange(n_cust, n_cust + n_single)])
    ts = np.concatenate([ts, T0 + rng.integers(0, SPAN, size=n_single)])
    amount = np.round(np.exp(rng.normal(3.5, 1.0, size=n)), 2)
    amount[rng.random(n) < 0.05] *= -1  # refunds
    null = rng.random(n) < 0.01
    perm = rng.permutation(n)
    names = np.array([f"customer_{i}" for i in range(n_cust + n_single)], dtype=object)
    return pa.table({
        "id": pa.array(np.arange(n), pa.int64()),
        "customer_id": pa.array(names[cust[perm]], pa.string()),
        "ts": pa.array(ts[perm].astype("datetime64[us]"), pa.timestamp("us")),
        "amount": pa.array(amount[perm], mask=null[perm], type=pa.float64()),
    }), n_cust + n_single


def gen_spine(rng, events, n_cust, n):
    ev_cust = events["customer_id"].to_numpy(zero_copy_only=False)
    ev_ts = events["ts"].cast(pa.int64()).to_numpy()
    k = n // 4
    pick = rng.integers(0, len(ev_cust), size=k)
    # On event times, and exactly one window after them (boundaries), at ms precision.
    cust = list(ev_cust[pick])
    ts = list((ev_ts[pick] // 1000) * 1000)
    pick2 = rng.integers(0, len(ev_cust), size=k)
    cust += list(ev_cust[pick2])
    ts += list(((ev_ts[pick2] + 30 * DAY) // 1000) * 1000)
    rest = n - 2 * k
    cust += [f"customer_{i}" for i in rng.integers(0, int(n_cust * 1.02), size=rest)]  # 2% unknown
    ts += list(((T0 - 10 * DAY + rng.integers(0, SPAN + 20 * DAY, size=rest)) // 1000) * 1000)
    cust = np.array(cust, dtype=object)
    ts = np.array(ts)
    dup = rng.integers(0, len(cust), size=n // 50)  # exact duplicates
    cust = np.concatenate([cust, cust[dup]])
    ts = np.concatenate([ts, ts[dup]])
    null_key = rng.random(len(cust)) < 0.002
    perm = rng.permutation(len(cust))
    return pa.table({
        "sid": pa.array(np.arange(len(cust)), pa.int64()),
        "customer_id": pa.array(cust[perm], mask=null_key[perm], type=pa.string()),
        "at": pa.array((ts[perm] // 1000).astype("datetime64[ms]"), pa.timestamp("ms")),
    })


def fstore_sql(warehouse, sql):
    started = time.perf_counter()
    out = subprocess.run([FSTORE_BIN, "--warehouse", str(warehouse), "sql", "--format", "csv", "-c", sql],
                         capture_output=True, text=True, env=dict(os.environ, FSTORE_LOG="warn"))
    assert out.returncode == 0, f"fstore failed: {out.stderr}"
    return time.perf_counter() - started


def duck_events_sql(path):
    cols = []
    for w, us in WINDOWS.items():
        frame = f"w{w}"
        cols += [
            f"avg(amount) OVER {frame} AS mean_{w}",
            f"sum(amount) OVER {frame} AS sum_{w}",
            f"count(amount) OVER {frame} AS count_{w}",
            f"count(*) OVER {frame} AS rows_{w}",
            f"min(amount) OVER {frame} AS min_{w}",
            f"max(amount) OVER {frame} AS max_{w}",
            f"stddev_samp(amount) OVER {frame} AS stddev_{w}",
            f"count(DISTINCT amount) OVER {frame} AS distinct_{w}",
            f"arg_max(amount, CAST(epoch_us(ts) AS HUGEINT) * 4194304 + id) "
            f"FILTER (WHERE amount IS NOT NULL) OVER {frame} AS last_{w}",
        ]
    frames = ", ".join(
        f"w{w} AS (PARTITION BY customer_id ORDER BY ts RANGE BETWEEN INTERVAL {us - 1} MICROSECONDS PRECEDING AND CURRENT ROW)"
        for w, us in WINDOWS.items())
    return f"SELECT id, {', '.join(cols)} FROM read_parquet('{path}') WINDOW {frames} ORDER BY id"


def duck_spine_sql(events, spine):
    cols = []
    for w in WINDOWS:
        frame = f"w{w}"
        ev = "FILTER (WHERE is_event)"
        cols += [
            f"avg(amount) {ev} OVER {frame} AS mean_{w}",
            f"sum(amount) {ev} OVER {frame} AS sum_{w}",
            f"count(amount) {ev} OVER {frame} AS count_{w}",
            f"count(*) {ev} OVER {frame} AS rows_{w}",
            f"min(amount) {ev} OVER {frame} AS min_{w}",
            f"max(amount) {ev} OVER {frame} AS max_{w}",
            f"stddev_samp(amount) {ev} OVER {frame} AS stddev_{w}",
            f"count(DISTINCT amount) {ev} OVER {frame} AS distinct_{w}",
            f"arg_max(amount, CAST(epoch_us(ts) AS HUGEINT) * 4194304 + id) "
            f"FILTER (WHERE is_event AND amount IS NOT NULL) OVER {frame} AS last_{w}",
        ]
    frames = ", ".join(
        f"w{w} AS (PARTITION BY customer_id ORDER BY ts RANGE BETWEEN INTERVAL {us - 1} MICROSECONDS PRECEDING AND CURRENT ROW)"
        for w, us in WINDOWS.items())
    return f"""
        WITH u AS (
            SELECT customer_id, ts, amount, id, TRUE AS is_event, NULL::BIGINT AS sid
            FROM read_parquet('{events}')
            UNION ALL
            SELECT customer_id, CAST("at" AS TIMESTAMP), NULL::DOUBLE, NULL::BIGINT, FALSE, sid
            FROM read_parquet('{spine}') WHERE customer_id IS NOT NULL AND "at" IS NOT NULL)
        SELECT sid, {', '.join(cols)} FROM u WINDOW {frames}
        QUALIFY NOT is_event ORDER BY sid"""


def compare(name, got, want):
    """Compares two arrays of one feature; returns the largest relative float difference."""
    g_null = np.asarray(got.is_null())
    w_null = np.asarray(want.is_null())
    bad = np.nonzero(g_null != w_null)[0]
    assert len(bad) == 0, f"{name}: NULL mismatch at {len(bad)} rows, e.g. row {bad[:5]}: got {got.take(bad[:5])}, want {want.take(bad[:5])}"
    g = np.asarray(got.fill_null(0).to_numpy(zero_copy_only=False), dtype=np.float64)
    w = np.asarray(want.fill_null(0).to_numpy(zero_copy_only=False), dtype=np.float64)
    if pa.types.is_integer(got.type):
        diff = np.nonzero(g != w)[0]
        assert len(diff) == 0, f"{name}: {len(diff)} rows differ, e.g. {g[diff[:5]]} vs {w[diff[:5]]}"
        return 0.0
    scale = np.maximum(np.abs(g), np.abs(w))
    rel = np.abs(g - w) / np.where(scale > 0, scale, 1.0)
    # stddev of equal values: 0 exactly here, a rounding residue there.
    ok = (rel <= REL) | (np.abs(g - w) <= 1e-9)
    diff = np.nonzero(~ok)[0]
    assert len(diff) == 0, f"{name}: {len(diff)} rows beyond 1e-9 relative, e.g. {g[diff[:5]]} vs {w[diff[:5]]}"
    return float(rel.max()) if len(rel) else 0.0


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("window_diff")
    rng = np.random.default_rng(20240101)
    events, n_cust = gen_events(rng, ROWS)
    spine = gen_spine(rng, events, n_cust, max(ROWS // 5, 1000))
    pq.write_table(events, tmp / "events.parquet", row_group_size=100_000)
    pq.write_table(spine, tmp / "spine.parquet", row_group_size=50_000)
    return tmp, events, spine


def test_per_event_features_equal_duckdb(data):
    tmp, events, _ = data
    specs = [spec_text(a, w) for w in WINDOWS for a in AGGS]
    out = tmp / "fstore_events.parquet"
    secs = fstore_sql(tmp / "wh1", f"""
        CREATE EXTERNAL TABLE tx STORED AS PARQUET LOCATION '{tmp / "events.parquet"}';
        COPY (SELECT id, {', '.join(n for _, n in specs)} FROM window_features('tx', 'customer_id', 'ts',
              {', '.join(repr(t) for t, _ in specs)}) ORDER BY id)
        TO '{out}' STORED AS PARQUET;""")
    got = pq.read_table(out)
    started = time.perf_counter()
    want = duckdb.sql(duck_events_sql(tmp / "events.parquet")).to_arrow_table()
    duck_secs = time.perf_counter() - started
    assert got.num_rows == want.num_rows == events.num_rows
    assert got["id"].to_pylist() == want["id"].to_pylist()
    worst = {}
    for _, name in specs:
        worst[name] = compare(name, got[name].combine_chunks(), want[name].combine_chunks())
    print(f"\nper event: {got.num_rows:,} rows x {len(specs)} features equal to DuckDB "
          f"(max relative float difference {max(worst.values()):.2e}); "
          f"fstore {secs:.1f}s (debug={'debug' in FSTORE_BIN}), duckdb {duck_secs:.1f}s")


def test_spine_features_equal_duckdb(data):
    tmp, _, spine = data
    specs = [spec_text(a, w) for w in WINDOWS for a in AGGS]
    out = tmp / "fstore_spine.parquet"
    secs = fstore_sql(tmp / "wh2", f"""
        CREATE EXTERNAL TABLE tx STORED AS PARQUET LOCATION '{tmp / "events.parquet"}';
        CREATE EXTERNAL TABLE spine STORED AS PARQUET LOCATION '{tmp / "spine.parquet"}';
        COPY (SELECT sid, {', '.join(n for _, n in specs)} FROM window_features_at('tx', 'customer_id', 'ts',
              'spine', 'customer_id', 'at', {', '.join(repr(t) for t, _ in specs)}) ORDER BY sid)
        TO '{out}' STORED AS PARQUET;""")
    got = pq.read_table(out)
    assert got.num_rows == spine.num_rows
    assert got["sid"].to_pylist() == list(range(spine.num_rows))
    # Spine rows without a customer get NULL features (counts included).
    null_key = np.asarray(spine.sort_by("sid")["customer_id"].is_null())
    for _, name in specs:
        assert got[name].combine_chunks().filter(pa.array(null_key)).null_count == int(null_key.sum())
    want = duckdb.sql(duck_spine_sql(tmp / "events.parquet", tmp / "spine.parquet")).to_arrow_table()
    got = got.filter(pa.array(~null_key))
    assert got.num_rows == want.num_rows
    assert got["sid"].to_pylist() == want["sid"].to_pylist()
    worst = {}
    for _, name in specs:
        worst[name] = compare(name, got[name].combine_chunks(), want[name].combine_chunks())
    print(f"\nspine: {got.num_rows:,} rows x {len(specs)} features equal to DuckDB "
          f"(max relative float difference {max(worst.values()):.2e}); fstore {secs:.1f}s")


def test_a_bad_window_is_one_clear_error_line(tmp_path):
    out = subprocess.run([FSTORE_BIN, "--warehouse", str(tmp_path), "sql", "-c",
                          "SELECT * FROM window_features('nope', 'k', 'ts', 'count(*) 0d')"],
                         capture_output=True, text=True)
    assert out.returncode != 0
    # The spec is read first (a zero window is refused by the duration parser), then the table.
    assert out.stderr == "error: window_features: invalid duration '0d': a duration must be positive\n"
    out = subprocess.run([FSTORE_BIN, "--warehouse", str(tmp_path), "sql", "-c",
                          "SELECT * FROM window_features('nope', 'k', 'ts', 'count(*) 1d')"],
                         capture_output=True, text=True)
    assert out.returncode != 0
    assert out.stderr.strip().splitlines() == ["error: window_features: table 'nope' not found"], out.stderr
