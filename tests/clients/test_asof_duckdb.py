"""Differential test: FStore's AS-OF join against DuckDB's, on generated Parquet data with
every edge case (NULL keys and times, duplicate left rows, ties on time, entities missing on
either side, left rows before any right row, composite and string keys, time zones and units,
dates, integers, look-back bounds), through the real `fstore` binary.

    FSTORE_BIN=target/debug/fstore python -m pytest tests/clients/test_asof_duckdb.py

Ties: DuckDB picks any of several right rows with equal key and time, FStore the one with the
greatest CREATED (when named), then the greatest values of the right columns the query reads
(src/asof/mod.rs). To compare answers, DuckDB's right side is first reduced to that row.
"""
import csv
import io
import os
import subprocess

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
FSTORE_BIN = os.environ.get("FSTORE_BIN", os.path.join(ROOT, "target", "debug", "fstore"))

US = 1_000_000
T0 = 1_704_067_200 * US  # 2024-01-01 UTC, in microseconds
HOUR = 3600 * US
DAY = 24 * HOUR


def fstore(warehouse, sql):
    out = subprocess.run(
        [FSTORE_BIN, "--warehouse", str(warehouse), "--target-partitions", "4",
         "sql", "--format", "csv", "-c", sql],
        capture_output=True, text=True, timeout=300,
        env={**os.environ, "FSTORE_LOG": "error"},
    )
    assert out.returncode == 0, f"fstore failed: {out.stderr}\nSQL: {sql}"
    return out.stdout


def fstore_pairs(warehouse, sql):
    """(lid, rid) rows of a two-column result, NULL as None, sorted."""
    rows = list(csv.reader(io.StringIO(fstore(warehouse, sql))))
    assert rows and rows[0] == ["lid", "rid"], rows[:2]
    return sorted((int(a), int(b) if b != "" else None) for a, b in rows[1:])


def duckdb_pairs(sql):
    return sorted((a, b) for a, b in duckdb.sql(sql).fetchall())


def with_nulls(rng, values, frac, pa_type):
    mask = rng.random(len(values)) < frac
    return pa.array(values, type=pa_type, mask=mask)


def make_data(tmp_path, seed=7, n_left=3000, n_right=8000, n_keys=60, spread=400):
    """Left (spine) and right (feature) tables as Parquet, with every edge case.

    Keys: strings 'k0'.. plus an int sub-key (composite key tests); left keys include keys
    the right side never has and vice versa. Times: few distinct values so that ties on time
    are common; 3% NULL keys and times on both sides; left rows duplicated; some left rows
    before any right row.
    """
    rng = np.random.default_rng(seed)
    rk = rng.integers(0, n_keys, n_right)              # right keys 0..n_keys-1
    lk = rng.integers(5, n_keys + 10, n_left)          # left keys include missing ones
    rt = T0 + rng.integers(0, spread, n_right) * HOUR  # hour granularity: many ties
    lt = T0 + rng.integers(-20, spread + 20, n_left) * HOUR + rng.integers(0, 2, n_left) * 1800 * US
    dup = rng.integers(0, n_left, n_left // 20)        # duplicate 5% of left rows
    lk, lt = np.concatenate([lk, lk[dup]]), np.concatenate([lt, lt[dup]])
    created = rt + rng.integers(0, 5, n_right) * HOUR  # ties on (key, time, created) happen too
    names = np.array([f"k{i}" for i in range(n_keys + 10)])
    left = pa.table({
        "lid": pa.array(np.arange(len(lk)), pa.int64()),
        "k": with_nulls(rng, names[lk], 0.03, pa.string()),
        "k2": pa.array(lk % 3, pa.int32()),
        "ts": with_nulls(rng, lt, 0.03, pa.timestamp("us")),
        "ts_ny": pa.array(lt, pa.timestamp("us", tz="America/New_York")),
        "d": pa.array((lt // DAY).astype("int32"), pa.date32()),
        "n": pa.array(lt // HOUR, pa.int64()),
    })
    right = pa.table({
        "rid": pa.array(np.arange(n_right), pa.int64()),
        "k": with_nulls(rng, names[rk], 0.03, pa.string()),
        "k2": pa.array(rk % 3, pa.int64()),
        "ts": with_nulls(rng, rt, 0.03, pa.timestamp("us")),
        "ts_ms_utc": pa.array(rt // 1000, pa.timestamp("ms", tz="UTC")),
        "d": pa.array((rt // DAY).astype("int32"), pa.date32()),
        "n": pa.array(rt // HOUR, pa.int32()),
        "created": with_nulls(rng, created, 0.05, pa.timestamp("us")),
        "f": pa.array(rng.normal(size=n_right), pa.float64()),
    })
    lp, rp = str(tmp_path / "left.parquet"), str(tmp_path / "right.parquet")
    # several row groups, so the scan runs in several partitions
    pq.write_table(left, lp, row_group_size=700)
    pq.write_table(right, rp, row_group_size=1500)
    warehouse = tmp_path / "warehouse"
    fstore(warehouse, f"CREATE EXTERNAL TABLE l STORED AS PARQUET LOCATION '{lp}';"
                      f"CREATE EXTERNAL TABLE r STORED AS PARQUET LOCATION '{rp}'")
    return warehouse, lp, rp


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    return make_data(tmp_path_factory.mktemp("asof"))


def dedup(rp, time_col, keys, order):
    """DuckDB's right side reduced to the row FStore picks among ties on (keys, time)."""
    part = ", ".join(keys + [time_col])
    return (f"(SELECT * FROM read_parquet('{rp}') "
            f"QUALIFY row_number() OVER (PARTITION BY {part} ORDER BY {order}) = 1)")


OPS = [">=", ">", "<=", "<"]


@pytest.mark.parametrize("op", OPS)
def test_left_join_every_operator(data, op):
    warehouse, lp, rp = data
    ours = fstore_pairs(warehouse, f"""
        SELECT l.lid, r.rid FROM l ASOF JOIN r MATCH_CONDITION (l.ts {op} r.ts) ON l.k = r.k""")
    theirs = duckdb_pairs(f"""
        SELECT l.lid, r.rid FROM read_parquet('{lp}') l
        ASOF LEFT JOIN {dedup(rp, 'ts', ['k'], 'rid DESC')} r ON l.k = r.k AND l.ts {op} r.ts""")
    assert len(ours) == len(theirs) == pq.read_metadata(lp).num_rows
    assert ours == theirs


@pytest.mark.parametrize("op", OPS)
def test_inner_join_duckdb_spelling(data, op):
    warehouse, lp, rp = data
    ours = fstore_pairs(warehouse, f"""
        SELECT l.lid, r.rid FROM l ASOF JOIN r ON l.k = r.k AND l.ts {op} r.ts""")
    theirs = duckdb_pairs(f"""
        SELECT l.lid, r.rid FROM read_parquet('{lp}') l
        ASOF JOIN {dedup(rp, 'ts', ['k'], 'rid DESC')} r ON l.k = r.k AND l.ts {op} r.ts""")
    assert ours == theirs
    assert all(rid is not None for _, rid in ours)


def test_ties_broken_by_created(data):
    warehouse, lp, rp = data
    ours = fstore_pairs(warehouse, """
        SELECT l.lid, r.rid FROM l
        ASOF JOIN r MATCH_CONDITION (l.ts >= r.ts AND CREATED(r.created)) ON l.k = r.k""")
    theirs = duckdb_pairs(f"""
        SELECT l.lid, r.rid FROM read_parquet('{lp}') l
        ASOF LEFT JOIN {dedup(rp, 'ts', ['k'], 'created DESC NULLS LAST, rid DESC')} r
        ON l.k = r.k AND l.ts >= r.ts""")
    assert ours == theirs


def test_composite_keys_of_different_int_types(data):
    warehouse, lp, rp = data
    ours = fstore_pairs(warehouse, """
        SELECT l.lid, r.rid FROM l ASOF LEFT JOIN r ON l.k = r.k AND l.k2 = r.k2 AND l.ts > r.ts""")
    theirs = duckdb_pairs(f"""
        SELECT l.lid, r.rid FROM read_parquet('{lp}') l
        ASOF LEFT JOIN {dedup(rp, 'ts', ['k', 'k2'], 'rid DESC')} r
        ON l.k = r.k AND l.k2 = r.k2 AND l.ts > r.ts""")
    assert ours == theirs


def test_time_zones_and_units(data):
    """Left: microseconds in America/New_York; right: milliseconds in UTC."""
    warehouse, lp, rp = data
    ours = fstore_pairs(warehouse, """
        SELECT l.lid, r.rid FROM l ASOF JOIN r MATCH_CONDITION (l.ts_ny >= r.ts_ms_utc) ON l.k = r.k""")
    theirs = duckdb_pairs(f"""
        SELECT l.lid, r.rid FROM read_parquet('{lp}') l
        ASOF LEFT JOIN {dedup(rp, 'ts_ms_utc', ['k'], 'rid DESC')} r ON l.k = r.k AND l.ts_ny >= r.ts_ms_utc""")
    assert ours == theirs


def test_dates(data):
    warehouse, lp, rp = data
    ours = fstore_pairs(warehouse, """
        SELECT l.lid, r.rid FROM l ASOF JOIN r MATCH_CONDITION (l.d > r.d) ON l.k = r.k""")
    theirs = duckdb_pairs(f"""
        SELECT l.lid, r.rid FROM read_parquet('{lp}') l
        ASOF LEFT JOIN {dedup(rp, 'd', ['k'], 'rid DESC')} r ON l.k = r.k AND l.d > r.d""")
    assert ours == theirs


def test_integer_times(data):
    warehouse, lp, rp = data
    ours = fstore_pairs(warehouse, """
        SELECT l.lid, r.rid FROM l ASOF JOIN r MATCH_CONDITION (l.n <= r.n) ON l.k = r.k""")
    theirs = duckdb_pairs(f"""
        SELECT l.lid, r.rid FROM read_parquet('{lp}') l
        ASOF LEFT JOIN {dedup(rp, 'n', ['k'], 'rid DESC')} r ON l.k = r.k AND l.n <= r.n""")
    assert ours == theirs


@pytest.mark.parametrize("cmp", ["<=", "<"])
def test_look_back_bound(data, cmp):
    """DuckDB has no look-back bound: its nearest match, dropped when too old, is the same."""
    warehouse, lp, rp = data
    ours = fstore_pairs(warehouse, f"""
        SELECT l.lid, r.rid FROM l ASOF JOIN r MATCH_CONDITION (l.ts >= r.ts)
        ON l.k = r.k AND l.ts - r.ts {cmp} INTERVAL '2 days'""")
    theirs = duckdb_pairs(f"""
        SELECT l.lid, CASE WHEN l.ts - r.ts {cmp} INTERVAL 2 DAY THEN r.rid END
        FROM read_parquet('{lp}') l
        ASOF LEFT JOIN {dedup(rp, 'ts', ['k'], 'rid DESC')} r ON l.k = r.k AND l.ts >= r.ts""")
    assert ours == theirs
    assert any(rid is None for _, rid in ours) and any(rid is not None for _, rid in ours)


def test_no_match_is_later_than_its_left_row(data):
    """Point-in-time correctness: with >=, no matched right row is in the left row's future."""
    warehouse, _, _ = data
    out = fstore(warehouse, """
        SELECT count(*) AS n FROM l ASOF JOIN r MATCH_CONDITION (l.ts >= r.ts) ON l.k = r.k
        WHERE r.ts > l.ts""")
    assert out.strip().splitlines()[-1] == "0"
