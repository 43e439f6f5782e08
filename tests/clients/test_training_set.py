"""training_set end to end: through `fstore serve` and the ADBC Flight SQL driver, checked
against DuckDB on generated data.

The generated events have ties on (customer, time) broken by a later CREATED time, NULL keys,
NULL amounts, customers with one event and heavy customers; the spine has duplicate rows,
rows before any event, rows past the TTL, customers without events and NULL keys. For every
spine row:

- per-event features must equal DuckDB's `ASOF LEFT JOIN` on the events reduced to the latest
  CREATED per (customer, time), set to NULL when older than the group's TTL;
- window features must equal DuckDB's aggregates over the events in (t - w, t] (a range
  join), at the spine row's own time;
- no per-event value may come from an event later than the spine row (leak test).
"""
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from conftest import connect

duckdb = pytest.importorskip("duckdb")

US = 1_000_000
DAY = 86_400 * US
T0 = int(np.datetime64("2024-01-01T00:00:00", "us").astype(np.int64))
SPAN = 120 * DAY
TTL_DAYS = 20
REL = 1e-9


def make_data(tmp_path, seed=11, n_events=60_000, n_spine=15_000, n_cust=1_500):
    rng = np.random.default_rng(seed)
    weights = rng.pareto(1.3, n_cust) + 1.0
    weights[:5] *= n_cust / 30  # heavy customers
    weights /= weights.sum()
    cust = rng.choice(n_cust, size=n_events, p=weights)
    ts = T0 + rng.integers(0, SPAN // US, size=n_events) * US
    # 3% ties on (customer, time), with distinct CREATED times.
    k = n_events * 3 // 100
    src, dst = rng.integers(0, n_events, size=k), rng.integers(0, n_events, size=k)
    cust[dst], ts[dst] = cust[src], ts[src]
    created = ts + rng.permutation(n_events) * 1000 + 1
    amount = np.round(np.exp(rng.normal(3.5, 1.0, size=n_events)), 2)
    names = np.array([f"c{i}" for i in range(n_cust + 100)], dtype=object)
    key = pa.array(names[cust], mask=rng.random(n_events) < 0.01)
    events = pa.table({
        "customer_id": key,
        "ts": pa.array(ts, pa.timestamp("us")),
        "created": pa.array(created, pa.timestamp("us")),
        "amount": pa.array(amount, mask=rng.random(n_events) < 0.02),
    })
    # Spine: known and unknown customers, times before, inside and after the events.
    s_cust = np.where(rng.random(n_spine) < 0.05, rng.integers(n_cust, n_cust + 100, n_spine),
                      rng.choice(n_cust, size=n_spine, p=weights))
    s_ts = T0 - 10 * DAY + rng.integers(0, (SPAN + 40 * DAY) // US, size=n_spine) * US
    # Some spine rows exactly at an event's time, some duplicated.
    k = n_spine // 10
    src, dst = rng.integers(0, n_events, size=k), rng.integers(0, n_spine, size=k)
    s_cust[dst], s_ts[dst] = cust[src], ts[src]
    k = n_spine // 50
    src, dst = rng.integers(0, n_spine, size=k), rng.integers(0, n_spine, size=k)
    s_cust[dst], s_ts[dst] = s_cust[src], s_ts[src]
    spine = pa.table({
        "rid": pa.array(np.arange(n_spine), pa.int64()),
        "customer_id": pa.array(names[s_cust], mask=rng.random(n_spine) < 0.01),
        "ts": pa.array(s_ts, pa.timestamp("us")),
    })
    ev_path, sp_path = tmp_path / "events.parquet", tmp_path / "spine.parquet"
    pq.write_table(events, ev_path, row_group_size=10_000)
    pq.write_table(spine, sp_path)
    return ev_path, sp_path


def close(a, b):
    if a is None or b is None:
        return a is None and b is None
    return abs(a - b) <= REL * max(1.0, abs(a), abs(b))


def test_training_set_matches_duckdb_through_flight_sql(make_server, tmp_path):
    ev_path, sp_path = make_data(tmp_path)
    server = make_server()
    with connect(server) as conn, conn.cursor() as cur:
        cur.execute(f"CREATE EXTERNAL TABLE events STORED AS PARQUET LOCATION '{ev_path}'")
        cur.execute(f"CREATE EXTERNAL TABLE spine STORED AS PARQUET LOCATION '{sp_path}'")
        cur.execute(f"""
            CREATE FEATURE GROUP behaviour ENTITY (customer_id) TIMESTAMP ts CREATED created
            FROM events FEATURES (
              mean_30d = mean(amount) WINDOW '30 days',
              sum_30d = sum(amount) WINDOW '30 days',
              count_30d = count(*) WINDOW '30 days',
              max_7d = max(amount) WINDOW '7 days',
              amount,
              event_time = ts)
            TTL '{TTL_DAYS} days'""")
        cur.execute("SELECT * FROM training_set('behaviour:*', 'spine', 'ts')")
        got = cur.fetch_arrow_table()
        cur.execute("SELECT count(*) FROM training_set('behaviour:*', 'spine', 'ts') WHERE event_time > ts")
        leaks = cur.fetchone()[0]

    assert leaks == 0
    assert got.column_names == ["rid", "customer_id", "ts", "mean_30d", "sum_30d", "count_30d",
                                "max_7d", "amount", "event_time"]
    assert got.num_rows == pq.read_metadata(sp_path).num_rows

    con = duckdb.connect()
    con.execute(f"CREATE VIEW events AS SELECT * FROM '{ev_path}' WHERE customer_id IS NOT NULL")
    con.execute(f"CREATE VIEW spine AS SELECT * FROM '{sp_path}'")
    asof = con.execute(f"""
        WITH latest AS (
          SELECT * FROM events
          QUALIFY row_number() OVER (PARTITION BY customer_id, ts ORDER BY created DESC) = 1)
        SELECT s.rid,
               CASE WHEN s.ts - f.ts <= INTERVAL {TTL_DAYS} DAY THEN f.amount END,
               CASE WHEN s.ts - f.ts <= INTERVAL {TTL_DAYS} DAY THEN f.ts END
        FROM spine s ASOF LEFT JOIN latest f ON s.customer_id = f.customer_id AND s.ts >= f.ts
    """).fetchall()
    windows = con.execute("""
        SELECT s.rid,
               avg(e.amount) FILTER (WHERE e.ts > s.ts - INTERVAL 30 DAY),
               sum(e.amount) FILTER (WHERE e.ts > s.ts - INTERVAL 30 DAY),
               count(e.ts) FILTER (WHERE e.ts > s.ts - INTERVAL 30 DAY),
               max(e.amount) FILTER (WHERE e.ts > s.ts - INTERVAL 7 DAY),
               s.customer_id IS NULL
        FROM spine s LEFT JOIN events e
          ON e.customer_id = s.customer_id AND e.ts <= s.ts AND e.ts > s.ts - INTERVAL 30 DAY
        GROUP BY s.rid, s.customer_id
    """).fetchall()
    ref_asof = {r[0]: r[1:] for r in asof}
    ref_win = {r[0]: r[1:] for r in windows}

    rows = got.to_pylist()
    mismatches = []
    for row in rows:
        rid = row["rid"]
        amount, event_time = ref_asof[rid]
        mean, total, count, mx, null_key = ref_win[rid]
        if null_key:
            count = None  # a NULL key has no entity: NULL features, counts included
        checks = [
            ("amount", close(row["amount"], amount)),
            ("event_time", row["event_time"] == event_time),
            ("mean_30d", close(row["mean_30d"], mean)),
            ("sum_30d", close(row["sum_30d"], total)),
            ("count_30d", row["count_30d"] == count),
            ("max_7d", close(row["max_7d"], mx)),
        ]
        bad = [name for name, ok in checks if not ok]
        if bad:
            mismatches.append((rid, bad, row, (amount, event_time, mean, total, count, mx)))
    assert not mismatches, f"{len(mismatches)} rows differ, e.g. {mismatches[:3]}"
    # The data exercises what it should.
    assert sum(1 for r in rows if r["count_30d"] == 0) > 100
    assert sum(1 for r in rows if r["amount"] is None and r["count_30d"]) > 10  # past the TTL
    assert len({r["rid"] for r in rows}) == len(rows)


def test_temporal_split_through_flight_sql(make_server, tmp_path):
    _, sp_path = make_data(tmp_path, n_events=1000, n_spine=5000)
    server = make_server()
    with connect(server) as conn, conn.cursor() as cur:
        cur.execute(f"CREATE EXTERNAL TABLE spine STORED AS PARQUET LOCATION '{sp_path}'")
        cur.execute("SELECT split, count(*), min(ts), max(ts) FROM temporal_split('spine', 0.2, 'ts') GROUP BY split ORDER BY split")
        (test_n, test_min, _), (train_n, _, train_max) = [(r[1], r[2], r[3]) for r in cur.fetchall()]
    assert train_max < test_min
    assert test_n >= 1000 and test_n <= 1010  # 20% of 5000, plus rows tied at the cut time
    assert train_n + test_n == 5000
