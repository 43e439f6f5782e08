"""Session-scoped temporary tables (`adbc_ingest(…, temporary=True)`): what the Python package
uploads an entity frame to. Through a real server and ADBC:

- visible to the session that uploaded it only (not to another connection of the same user),
  shadowing a warehouse table of the same name there;
- usable as a training set's entity table; create / append / replace; `DROP TABLE` removes it;
- no privilege needed and nothing written: no registry record, no file in the warehouse;
- charged to the memory pool: an upload over `--memory-limit` is RESOURCE_EXHAUSTED and the
  server keeps serving.
"""
import datetime as dt

import adbc_driver_manager
import pyarrow as pa
import pytest

from conftest import connect


def spine(n=3):
    return pa.table({
        "customer_id": [f"customer_{i}" for i in range(n)],
        "ts": pa.array([dt.datetime(2024, 3, 1)] * n, pa.timestamp("us")),
    })


def one(cur, sql):
    cur.execute(sql)
    return cur.fetchall()


def test_temporary_tables_belong_to_their_session(make_server, tmp_path):
    server = make_server(demo_rows=2000)
    with connect(server) as admin, admin.cursor() as cur:
        cur.execute("CREATE USER ana PASSWORD 'ana-password-1'")
        cur.adbc_ingest("real_spine", spine(4), mode="create")
        cur.execute("CREATE FEATURE GROUP cb ENTITY (customer_id) TIMESTAMP transaction_date "
                    "FROM transactions FEATURES (amount, total = sum(amount) WINDOW '30 days')")
        cur.execute("GRANT SELECT ON FEATURE GROUP cb TO ana")
        cur.execute("CREATE TABLE shadowed AS SELECT 'warehouse' AS who")
        seq = one(cur, "SELECT max(seq) FROM fstore.history")[0][0]

    # ana holds no CREATE privilege, yet uploads her own rows.
    with connect(server, "ana", "ana-password-1") as a, connect(server, "ana", "ana-password-1") as b:
        ca, cb = a.cursor(), b.cursor()
        assert ca.adbc_ingest("my_spine", spine(3), mode="create", temporary=True) == 3
        assert ca.adbc_ingest("my_spine", spine(2), mode="append", temporary=True) == 2
        assert one(ca, "SELECT count(*) FROM my_spine") == [(5,)]
        with pytest.raises(adbc_driver_manager.Error, match="already exists"):
            ca.adbc_ingest("my_spine", spine(1), mode="create", temporary=True)
        assert ca.adbc_ingest("my_spine", spine(4), mode="replace", temporary=True) == 4
        # The other connection (another session of the same user) does not see it.
        with pytest.raises(adbc_driver_manager.Error, match="my_spine"):
            one(cb, "SELECT count(*) FROM my_spine")
        # A training set over it.
        query = "SELECT customer_id, amount, total FROM training_set('cb', '{}', 'ts') ORDER BY 1"
        rows = one(ca, query.format("my_spine"))
        assert len(rows) == 4 and any(r[2] is not None for r in rows)
        with connect(server) as admin, admin.cursor() as cur:
            assert one(cur, query.format("real_spine")) == rows
        # It shadows a warehouse table of the same name, in this session only.
        ca.adbc_ingest("shadowed", pa.table({"who": ["session"]}), mode="create", temporary=True)
        assert one(ca, "SELECT who FROM shadowed") == [("session",)]
        ca.execute("DROP TABLE shadowed")
        with connect(server) as admin, admin.cursor() as cur:
            assert one(cur, "SELECT who FROM shadowed") == [("warehouse",)]
        ca.execute("DROP TABLE my_spine")
        with pytest.raises(adbc_driver_manager.Error, match="my_spine"):
            one(ca, "SELECT count(*) FROM my_spine")
        ca.close()
        cb.close()

    # Nothing was written: no registry record, no data file.
    with connect(server) as admin, admin.cursor() as cur:
        assert one(cur, "SELECT max(seq) FROM fstore.history") == [(seq,)]
    assert not any("my_spine" in p.as_posix() for p in server.warehouse.rglob("*"))


def test_an_upload_over_the_memory_limit_is_refused_and_the_server_keeps_serving(make_server):
    server = make_server("--memory-limit", "64MiB")
    big = pa.table({"i": pa.array(range(12_000_000), pa.int64())})  # ~96 MB
    with connect(server) as conn, conn.cursor() as cur:
        with pytest.raises(adbc_driver_manager.Error, match="(?i)resource|memory limit"):
            cur.adbc_ingest("too_big", big, mode="create", temporary=True)
        assert one(cur, "SELECT 1") == [(1,)]
        assert cur.adbc_ingest("small", big.slice(0, 1000), mode="create", temporary=True) == 1000
        assert one(cur, "SELECT sum(i) FROM small") == [(sum(range(1000)),)]
    assert server.proc.poll() is None
