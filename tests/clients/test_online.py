"""Online serving through `fstore serve` and ADBC, with the embedded store and with a real
Redis (a `redis-server` per test on a loopback port): every test runs against both.

- online == offline: after `REFRESH … AS OF T`, every entity's online row equals its
  `training_set` row at T (window aggregates, TTL'd values, a fitted target encoding);
- the hot paths (a prepared statement bound to a key, the key as a literal) return the same
  rows without planning a query;
- SIGKILL and restart: lookups are served at once, with the same values;
- a refresh that fails (a source file removed) leaves the previous values serving and
  records the error;
- the scheduler refreshes on `update_frequency`, never two runs of a set at once, and goes
  on after a restart; a lookup past `cache_ttl` returns NULL features and triggers a refresh.
"""
import os
import shutil
import signal
import socket
import subprocess
import time

import adbc_driver_manager
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from conftest import Server, connect, wait_until

T = "2024-03-15T00:00:00"
FEATURES = ["mean_30d", "cnt_7d", "amount", "category", "category_te"]


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Redis:
    def __init__(self):
        self.port = free_port()
        self.proc = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

        def up():
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.5) as s:
                    s.sendall(b"PING\r\n")
                    return s.recv(16).startswith(b"+PONG")
            except OSError:
                return False
        assert wait_until(up, timeout=20), "redis-server did not start"

    @property
    def url(self):
        return f"redis://127.0.0.1:{self.port}"

    def stop(self):
        self.proc.terminate()
        self.proc.wait(10)


@pytest.fixture(params=["embedded", "redis"])
def store(request):
    if request.param == "embedded":
        yield []
        return
    if shutil.which("redis-server") is None:
        if os.environ.get("FSTORE_TEST_REQUIRE_REDIS") == "1":
            pytest.fail("redis-server is not installed (scripts/test.sh installs it)")
        pytest.skip("redis-server is not installed")
    r = Redis()
    yield ["--online-store", r.url]
    r.stop()


def write_events(dir, n=40_000, customers=2_000, files=4, seed=11):
    rng = np.random.default_rng(seed)
    t0 = np.datetime64("2024-01-01T00:00:00", "us").astype(np.int64)
    dir.mkdir(parents=True, exist_ok=True)
    per = n // files
    for i in range(files):
        table = pa.table({
            "customer_id": pa.array(rng.integers(0, customers, per), pa.int64()),
            "ts": pa.array(t0 + rng.integers(0, 80 * 86_400, per) * 1_000_000, pa.timestamp("us")),
            "amount": pa.array(np.round(rng.exponential(40, per), 2)),
            "category": pa.array(rng.choice(["a", "b", "c", None], per).tolist(), pa.string()),
            "label": pa.array(rng.integers(0, 2, per), pa.int64()),
        })
        pq.write_table(table, dir / f"part-{i}.parquet")


def setup(cur, dir, online="(cache_ttl = '1000 days')"):
    cur.execute(f"CREATE EXTERNAL TABLE events STORED AS PARQUET LOCATION '{dir}/'")
    cur.execute("""CREATE FEATURE GROUP cb ENTITY (customer_id) TIMESTAMP ts FROM events
                   FEATURES (mean_30d = mean(amount) WINDOW '30 days', cnt_7d = count(*) WINDOW '7 days',
                             amount, category)
                   TTL '20 days'""")
    cur.execute("ALTER FEATURE GROUP cb ADD TRANSFORMATION category USING target_encoding(target => label)")
    cur.execute("CREATE FEATURE SET serving FEATURES (cb.*)")
    cur.execute(f"ALTER FEATURE SET serving SET ONLINE {online}")


def query(cur, sql, params=None):
    cur.execute(sql, params)
    return cur.fetch_arrow_table()


def online_rows(cur, ids):
    rows = []
    for i in range(0, len(ids), 500):
        chunk = ",".join(str(x) for x in ids[i:i + 500])
        rows += query(cur, f"SELECT * FROM online_features('serving') WHERE customer_id IN ({chunk})").to_pylist()
    return {r["customer_id"]: r for r in rows}


def offline_rows(cur, at):
    spine = (f"SELECT DISTINCT customer_id, CAST(''{at}'' AS TIMESTAMP) AS ts FROM events "
             f"WHERE ts <= CAST(''{at}'' AS TIMESTAMP)")
    t = query(cur, f"SELECT * FROM training_set('serving', '{spine}', 'ts')")
    return {r["customer_id"]: r for r in t.to_pylist()}


def same(a, b):
    if a is None or b is None:
        return a is None and b is None
    if isinstance(a, float):
        return abs(a - b) <= 1e-12 * max(1.0, abs(a))
    return a == b


def test_online_equals_training_set_and_prepared_lookups(tmp_path, store):
    write_events(tmp_path / "events")
    s = Server(tmp_path / "wh", "--no-auth", *store)
    try:
        with connect(s) as conn, conn.cursor() as cur:
            setup(cur, tmp_path / "events")
            run = query(cur, f"REFRESH ONLINE FEATURE SET serving AS OF '{T}'").to_pylist()[0]
            offline = offline_rows(cur, T)
            assert run["status"] == "succeeded" and run["rows"] == len(offline) > 1500
            online = online_rows(cur, list(range(0, 2_100)))
            assert set(online) == set(offline)
            nulls = {f: 0 for f in FEATURES}
            for cid, off in offline.items():
                on = online[cid]
                for f in FEATURES:
                    assert same(on[f], off[f]), (cid, f, on[f], off[f])
                    nulls[f] += on[f] is None
                assert on["_feature_ts"] is not None and on["_materialized_at"] is not None
            # The data exercise the TTL (NULL amounts) and the windows (zero counts).
            assert nulls["amount"] > 0 and nulls["amount"] < len(offline)
            assert sum(1 for r in online.values() if r["cnt_7d"] == 0) > 0

            # The hot paths, answered from the store without planning (counted by
            # fstore_online_direct_lookups_total): a prepared statement bound to a key, and
            # the same statement with the key written as a literal. Same rows as the general
            # path, the same schema, and no row for a missing key.
            direct = "fstore_online_direct_lookups_total"
            before = s.metrics()[direct]
            general = query(cur, "SELECT * FROM online_features('serving') WHERE customer_id IN (1, 2)")
            assert s.metrics()[direct] == before
            sql = "SELECT * FROM online_features('serving') WHERE customer_id = ?"
            ids = list(offline)[:300] + [999_999]
            for cid in ids:
                prepared = query(cur, sql, (cid,))
                literal = query(cur, f"SELECT * FROM online_features('serving') WHERE customer_id = {cid}")
                assert prepared.schema == literal.schema == general.schema
                for got in (prepared.to_pylist(), literal.to_pylist()):
                    if cid == 999_999:
                        assert got == []
                        continue
                    assert len(got) == 1
                    for f in FEATURES + ["_feature_ts", "_materialized_at"]:
                        assert same(got[0][f], online[cid][f]), (cid, f)
            assert s.metrics()[direct] == before + 2 * len(ids)
            # A plain statement, not prepared (GetFlightInfo of CommandStatementQuery, then
            # DoGet: ADBC's low-level API sends that).
            stmt = adbc_driver_manager.AdbcStatement(conn.adbc_connection)
            try:
                def plain(sql):
                    stmt.set_sql_query(sql)
                    handle, _ = stmt.execute_query()
                    return pa.RecordBatchReader._import_from_c(handle.address).read_all()

                for cid in ids[:50] + [999_999]:
                    got = plain(f"SELECT * FROM online_features('serving') WHERE customer_id = {cid}")
                    assert got.schema == general.schema
                    assert [r["customer_id"] for r in got.to_pylist()] == ([] if cid == 999_999 else [cid])
                    if cid != 999_999:
                        for f in FEATURES + ["_feature_ts", "_materialized_at"]:
                            assert same(got.to_pylist()[0][f], online[cid][f]), (cid, f)
                # The same shape is planned once and serves every key; a statement with
                # another filter is not a lookup and goes the general way.
                cid = ids[3]
                got = plain(f"SELECT cnt_7d FROM online_features('serving') WHERE customer_id = {cid} AND cnt_7d >= 0").to_pylist()
                assert got == [{"cnt_7d": online[cid]["cnt_7d"]}]
            finally:
                stmt.close()
            before += 51
            assert s.metrics()[direct] == before + 2 * len(ids)
            # A projection, a key written as text, and the key on the left.
            cid = ids[7]
            got = query(cur, f"SELECT amount, customer_id FROM online_features('serving') WHERE '{cid}' = customer_id")
            assert got.column_names == ["amount", "customer_id"]
            assert got.to_pylist() == [{"amount": online[cid]["amount"], "customer_id": cid}]
            assert s.metrics()[direct] == before + 2 * len(ids) + 1
            # Other filters next to the key go the general way, with the same answer.
            for sql_other, params in [
                ("SELECT amount, cnt_7d FROM online_features('serving') WHERE customer_id = ? AND cnt_7d >= 0", (cid,)),
                (f"SELECT amount, cnt_7d FROM online_features('serving') WHERE customer_id = {cid} AND cnt_7d >= 0", None),
            ]:
                got = query(cur, sql_other, params).to_pylist()
                assert got == [{"amount": online[cid]["amount"], "cnt_7d": online[cid]["cnt_7d"]}]
            assert s.metrics()[direct] == before + 2 * len(ids) + 1
            # Multi-entity lookup: the prepared statement bound with a whole column of keys
            # (ADBC binds a record batch) answers every entity in one round trip, in the
            # order the keys were bound, each once; missing keys give no row.
            keys = list(offline)[:100]
            bound = keys[:60] + [999_999] + keys[60:] + keys[:5]
            before_multi = s.metrics()[direct]
            got = query(cur, sql, pa.record_batch([pa.array(bound, pa.int64())], names=["customer_id"]))
            assert got.schema == general.schema
            assert [r["customer_id"] for r in got.to_pylist()] == keys
            for r in got.to_pylist():
                for f in FEATURES + ["_feature_ts", "_materialized_at"]:
                    assert same(r[f], online[r["customer_id"]][f]), (r["customer_id"], f)
            assert s.metrics()[direct] == before_multi + 1
            # A lookup with a NULL key or of a set that is not online is not a fast path.
            assert query(cur, "SELECT * FROM online_features('serving') WHERE customer_id = NULL").num_rows == 0
            with pytest.raises(Exception, match="'nope' not found"):
                query(cur, "SELECT * FROM online_features('nope') WHERE customer_id = 1")
    finally:
        s.stop()


def refreshed_server(tmp_path, store, ids):
    """A server over 8k events of 400 customers whose set was refreshed at T; returns it
    and the online rows of `ids`."""
    write_events(tmp_path / "events", n=8_000, customers=400)
    s = Server(tmp_path / "wh", "--no-auth", *store)
    try:
        with connect(s) as conn, conn.cursor() as cur:
            setup(cur, tmp_path / "events")
            cur.execute(f"REFRESH ONLINE FEATURE SET serving AS OF '{T}'")
            return s, online_rows(cur, ids)
    except BaseException:
        s.stop()
        raise


def test_sigkill_restart_serves_at_once(tmp_path, store):
    ids = list(range(400))
    s, before = refreshed_server(tmp_path, store, ids)
    assert s.stop(sig=signal.SIGKILL) == -signal.SIGKILL
    s2 = Server(tmp_path / "wh", "--no-auth", *store)
    try:
        with connect(s2) as conn, conn.cursor() as cur:
            started = time.time()
            after = online_rows(cur, ids)
            assert time.time() - started < 10
            assert after == before
            runs = query(cur, "SELECT count(*) AS n FROM fstore.materializations").to_pylist()
            assert runs == [{"n": 1}]
    finally:
        s2.stop()


def test_failed_refresh_keeps_previous_values(tmp_path, store):
    ids = list(range(400))
    s, before = refreshed_server(tmp_path, store, ids)
    try:
        with connect(s) as conn, conn.cursor() as cur:
            (tmp_path / "events" / "part-2.parquet").unlink()
            with pytest.raises(Exception) as e:
                cur.execute("REFRESH ONLINE FEATURE SET serving AS OF '2024-03-20'")
            assert "part-2.parquet" in str(e.value)
            assert online_rows(cur, ids) == before
            runs = query(cur, "SELECT status, error, rows FROM fstore.materializations ORDER BY started").to_pylist()
            assert [r["status"] for r in runs] == ["succeeded", "failed"]
            assert "part-2.parquet" in runs[1]["error"] and runs[1]["rows"] == 0
            last = query(cur, "SELECT last_status FROM fstore.online_sets").to_pylist()
            assert last == [{"last_status": "failed"}]
    finally:
        s.stop()


def test_scheduler_runs_on_frequency_and_survives_restart(tmp_path, store):
    write_events(tmp_path / "events", n=4_000, customers=200)
    s = Server(tmp_path / "wh", "--no-auth", *store)
    runs_sql = "SELECT trigger, status, started, finished FROM fstore.materializations ORDER BY started"
    try:
        with connect(s) as conn, conn.cursor() as cur:
            setup(cur, tmp_path / "events", online="(update_frequency = '1s', cache_ttl = '1h')")
            assert wait_until(lambda: len(query(cur, runs_sql)) >= 3, timeout=60)
            runs = query(cur, runs_sql).to_pylist()
            assert all(r["trigger"] == "schedule" and r["status"] == "succeeded" for r in runs)
            # Never two at once, and about one per second.
            for a, b in zip(runs, runs[1:]):
                assert b["started"] >= a["finished"]
            rows = query(cur, "SELECT customer_id FROM online_features('serving') WHERE customer_id IN (1, 2, 3)")
            assert rows.num_rows > 0
            n = len(runs)
    finally:
        s.stop()
    s2 = Server(tmp_path / "wh", "--no-auth", *store)
    try:
        with connect(s2) as conn, conn.cursor() as cur:
            assert wait_until(lambda: len(query(cur, runs_sql)) >= n + 2, timeout=60)
    finally:
        s2.stop()


def test_stale_lookup_returns_nulls_and_triggers_a_refresh(tmp_path, store):
    write_events(tmp_path / "events", n=4_000, customers=200)
    s = Server(tmp_path / "wh", "--no-auth", *store)
    sql = "SELECT customer_id, cnt_7d, _materialized_at FROM online_features('serving') WHERE customer_id = 7"
    try:
        with connect(s) as conn, conn.cursor() as cur:
            setup(cur, tmp_path / "events", online="(cache_ttl = '3s')")
            cur.execute(f"REFRESH ONLINE FEATURE SET serving AS OF '{T}'")
            fresh = query(cur, sql).to_pylist()[0]
            assert fresh["cnt_7d"] is not None
            time.sleep(3.5)
            stale = query(cur, sql).to_pylist()[0]
            assert stale["cnt_7d"] is None and stale["_materialized_at"] == fresh["_materialized_at"]
            triggers = lambda: [r["trigger"] for r in query(cur, "SELECT trigger FROM fstore.materializations").to_pylist()]
            assert wait_until(lambda: "stale" in triggers(), timeout=30)
            again = query(cur, sql).to_pylist()[0]
            assert again["_materialized_at"] > fresh["_materialized_at"] and again["cnt_7d"] is not None
    finally:
        s.stop()
