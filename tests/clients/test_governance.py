"""Access control through a real server and ADBC, with three users as the governance issue
describes them: an administrator, a data scientist with SELECT on one feature set, and an
online service with READ ONLINE only. Every path of the one authorization point is tried:
plain and prepared statements (re-checked at execution), table functions that expand to other
objects, views, the online lookup shortcuts, EXPORT, COPY and Flight SQL metadata. What is
allowed works; what is denied is PERMISSION_DENIED and writes nothing; metadata hides what is
not granted. Also: token revocation, failed-login limits, and a restart keeping users and
grants.
"""
import pytest

from conftest import connect

DS = ("ds", "data-scientist-1")
SVC = ("svc", "online-service-1")


def run(conn, sql, params=None):
    with conn.cursor() as cur:
        cur.execute(sql, params)
        return cur.fetchall()


def denied(conn, sql, *expected):
    """The statement fails with gRPC PERMISSION_DENIED naming what was missing."""
    with conn.cursor() as cur, pytest.raises(Exception) as e:
        cur.execute(sql)
        cur.fetchall()
    msg = str(e.value)
    assert "(PermissionDenied;" in msg, f"{sql}: {msg}"
    for part in expected:
        assert part in msg, f"{sql}: {msg}"
    return msg


def tables_seen(conn):
    """(schema, table) pairs that ADBC's GetObjects lists (GetTables underneath)."""
    out = set()
    for catalog in conn.adbc_get_objects(depth="tables").read_all().to_pylist():
        for schema in catalog["catalog_db_schemas"] or []:
            for table in schema["db_schema_tables"] or []:
                out.add((schema["db_schema_name"], table["table_name"]))
    return out


SETUP = [
    "CREATE TABLE tx AS SELECT * FROM sample_transactions(3000, 7)",
    "CREATE TABLE spine AS SELECT customer_id, max(transaction_date) AS ts FROM tx GROUP BY customer_id",
    "CREATE VIEW gold_tx AS SELECT * FROM tx WHERE customer_category = 'gold'",
    "CREATE FEATURE GROUP cb ENTITY (customer_id) TIMESTAMP transaction_date FROM tx "
    "FEATURES (amount, conversion, total_30d = sum(amount) WINDOW '30 days')",
    "CREATE FEATURE SET fraud FEATURES (cb.amount, cb.total_30d)",
    "CREATE EXPECTATION ON FEATURE cb.amount (min_value = 0)",
    "SET DRIFT BASELINE FOR FEATURE SET fraud FROM '2000-01-01' TO '2100-01-01'",
    "ALTER FEATURE SET fraud SET ONLINE",
    "REFRESH ONLINE FEATURE SET fraud",
    f"CREATE USER {DS[0]} WITH PASSWORD '{DS[1]}'",
    f"CREATE USER {SVC[0]} WITH PASSWORD '{SVC[1]}'",
    "GRANT SELECT ON FEATURE SET fraud TO ds",
    "GRANT SELECT ON TABLE spine TO ds",
    "GRANT SELECT ON VIEW gold_tx TO ds",
    "GRANT READ ONLINE ON FEATURE SET fraud TO svc",
]


@pytest.fixture
def governed(tmp_path, make_server):
    server = make_server(warehouse=tmp_path / "wh")
    admin = connect(server)
    for sql in SETUP:
        run(admin, sql)
    return server, admin


def test_three_users_every_path(governed, tmp_path):
    server, admin = governed
    ds = connect(server, *DS)
    svc = connect(server, *SVC)
    customer = run(admin, "SELECT min(customer_id) FROM spine")[0][0]
    training = "SELECT count(*) FROM training_set('fraud', 'spine', 'ts')"
    n_spine = run(admin, "SELECT count(*) FROM spine")[0][0]

    # The data scientist: the granted set through every analysis, the view, not the rest.
    assert run(ds, training) == [(n_spine,)]
    assert run(ds, "SELECT count(*) FROM validate('fraud')")[0][0] >= 1
    drift = "SELECT feature FROM check_drift('fraud', 'SELECT amount, total_30d FROM training_set(''fraud'', ''spine'', ''ts'')')"
    assert sorted(run(ds, drift)) == [("cb.amount",), ("cb.total_30d",)]
    assert run(ds, "SELECT count(*) FROM gold_tx") == run(admin, "SELECT count(*) FROM gold_tx")
    denied(ds, "SELECT * FROM tx", "lacks SELECT on table 'tx'")
    denied(ds, "SELECT * FROM cb", "lacks SELECT on feature group 'cb'")
    denied(ds, "SELECT * FROM training_set('cb:amount', 'spine', 'ts')", "feature group 'cb'")
    denied(ds, "SELECT * FROM training_set('fraud', 'SELECT customer_id, transaction_date AS ts FROM tx', 'ts')",
           "table 'tx'")
    denied(ds, "SELECT * FROM select_features('cb', 'conversion', 'variance')", "feature group 'cb'")
    denied(ds, "SELECT * FROM feature_correlation('tx')", "table 'tx'")
    denied(ds, "SELECT * FROM check_drift('fraud', 'tx')", "table 'tx'")
    denied(ds, f"SELECT * FROM online_features('fraud', '{customer}')", "READ ONLINE")
    denied(ds, f"SELECT * FROM online_features('fraud') WHERE customer_id = '{customer}'", "READ ONLINE")
    denied(ds, f"EXPORT FEATURE SET fraud TO '{tmp_path}/out'", "EXPORT")
    denied(ds, f"COPY (SELECT * FROM tx) TO '{tmp_path}/tx.csv' STORED AS CSV")
    denied(ds, "CREATE TABLE mine AS SELECT 1 AS x", "CREATE")
    denied(ds, "DROP TABLE spine", "owner")
    denied(ds, "DROP FEATURE GROUP cb", "owner")
    assert not (tmp_path / "out").exists() and not (tmp_path / "tx.csv").exists()

    # The online service: lookups (the literal shortcut, prepared, the general path) only.
    expected = run(admin, f"SELECT customer_id, amount FROM online_features('fraud', '{customer}')")
    assert run(svc, f"SELECT customer_id, amount FROM online_features('fraud', '{customer}')") == expected
    literal = f"SELECT customer_id, amount FROM online_features('fraud') WHERE customer_id = '{customer}'"
    assert run(svc, literal) == expected
    prepared = "SELECT customer_id, amount FROM online_features('fraud') WHERE customer_id = ?"
    cur = svc.cursor()
    cur.adbc_prepare(prepared)
    cur.execute(prepared, (customer,))
    assert cur.fetchall() == expected
    denied(svc, training, "lacks SELECT on feature set 'fraud'")
    denied(svc, "SELECT * FROM validate('fraud')", "feature set 'fraud'")
    denied(svc, "SELECT * FROM spine", "table 'spine'")

    # Metadata lists only what a user may read (system tables are listed for everyone).
    assert {("public", t) for t in ["tx", "spine", "gold_tx", "cb"]} <= tables_seen(admin)
    ds_public = {t for s, t in tables_seen(ds) if s == "public"}
    assert ds_public == {"spine", "gold_tx"}, ds_public
    assert {t for s, t in tables_seen(svc) if s == "public"} == set()

    # Revoking takes effect at the next execution of an already prepared statement, and on
    # the literal shortcut whose plan is cached.
    run(admin, "REVOKE READ ONLINE ON FEATURE SET fraud FROM svc")
    with pytest.raises(Exception, match=r"READ ONLINE.*\(PermissionDenied;"):
        cur.execute(prepared, (customer,))
        cur.fetchall()
    cur.close()
    denied(svc, literal, "READ ONLINE")
    run(admin, "REVOKE SELECT ON FEATURE SET fraud FROM ds")
    denied(ds, training, "feature set 'fraud'")

    # Granting a single version: the latest version is then out of reach.
    run(admin, "CREATE FEATURE SET fraud FEATURES (cb.amount)")
    run(admin, "GRANT SELECT ON FEATURE SET fraud VERSION 1 TO ds")
    assert run(ds, "SELECT count(*) FROM training_set('fraud@1', 'spine', 'ts')") == [(n_spine,)]
    denied(ds, training, "feature set 'fraud' version 2")

    # SHOW GRANTS and fstore.grants tell who holds what.
    grants = run(ds, "SHOW GRANTS")
    assert ("SELECT", "feature set", "fraud", 1, "direct") in grants, grants
    denied(ds, "SHOW GRANTS FOR svc", "ADMIN")
    assert ("ds", "SELECT", "feature set", "fraud", 1) in run(admin, "SELECT * FROM fstore.grants")

    # The audit log holds every statement of every path, allowed or denied, with the peer.
    from conftest import wait_until
    denied(ds, "SELECT * FROM fstore.audit", "fstore.audit")
    audit = "SELECT kind, outcome, peer, statement FROM fstore.audit WHERE principal = 'svc'"
    assert wait_until(lambda: any(r[1] == "denied" and r[3] == literal for r in run(admin, audit)), timeout=10)
    rows = run(admin, audit)
    assert all(r[2].startswith("127.0.0.1:") for r in rows), rows
    assert ("lookup", "ok", literal) in {(r[0], r[1], r[3]) for r in rows}, rows
    assert ("lookup", "ok", prepared) in {(r[0], r[1], r[3]) for r in rows}, rows
    assert ("statement", "denied", "SELECT * FROM spine") in {(r[0], r[1], r[3]) for r in rows}, rows
    for c in (ds, svc, admin):
        c.close()


def test_tokens_are_revoked_and_logins_limited(governed):
    server, admin = governed
    ds = connect(server, *DS)
    assert run(ds, "SELECT count(*) FROM spine")[0][0] > 0
    # A user changes their own password: their earlier token stops working.
    run(ds, "ALTER USER ds PASSWORD 'a-brand-new-one'")
    with pytest.raises(Exception, match="token revoked"):
        run(ds, "SELECT 1")
    with pytest.raises(Exception, match="invalid username or password"):
        connect(server, *DS).cursor().execute("SELECT 1")
    ds = connect(server, "ds", "a-brand-new-one")
    assert run(ds, "SELECT 1") == [(1,)]
    # Only an administrator changes someone else's password; dropping a user revokes too.
    denied(ds, "ALTER USER admin PASSWORD 'taken-over-now'", "ADMIN")
    run(admin, "DROP USER ds")
    with pytest.raises(Exception, match="token revoked"):
        run(ds, "SELECT 1")
    assert ("ds",) not in run(admin, "SELECT name FROM fstore.users")

    # Failed logins: 5 per user per minute, then even the right password waits.
    for _ in range(5):
        with pytest.raises(Exception, match="invalid username or password"):
            connect(server, "svc", "wrong-password").cursor().execute("SELECT 1")
    with pytest.raises(Exception, match="too many failed logins for user svc"):
        connect(server, *SVC).cursor().execute("SELECT 1")
    # Other users are not affected until the peer address reaches its own limit (20 failed
    # logins; 6 so far: ds's old password and svc's 5).
    assert run(connect(server), "SELECT 1") == [(1,)]
    for i in range(20 - 6):
        with pytest.raises(Exception, match="invalid username or password"):
            connect(server, f"guess{i}", "wrong-password").cursor().execute("SELECT 1")
    with pytest.raises(Exception, match="too many failed logins for peer 127.0.0.1"):
        connect(server).cursor().execute("SELECT 1")
    # Tokens issued before keep working: the limit is on logins.
    assert run(admin, "SELECT 1") == [(1,)]


def test_users_and_grants_survive_a_restart(governed, make_server):
    server, admin = governed
    run(admin, "CREATE ROLE analysts")
    run(admin, "GRANT analysts TO ds")
    run(admin, "GRANT SELECT ON TABLE tx TO analysts")
    grants = sorted(run(admin, "SELECT * FROM fstore.grants"))
    admin.close()
    server.stop()
    again = make_server(warehouse=server.warehouse)
    ds = connect(again, *DS)
    assert run(ds, "SELECT count(*) FROM tx") == [(3000,)]
    assert sorted(run(connect(again), "SELECT * FROM fstore.grants")) == grants
    assert run(ds, "SELECT roles FROM fstore.users WHERE name = 'ds'") == [("analysts",)]
    denied(ds, "SELECT * FROM cb", "feature group 'cb'")


def test_openlineage_events_reach_a_receiver(tmp_path, make_server):
    """Exports and materializations are sent as OpenLineage run events to a real HTTP
    receiver on loopback, with the set version as input and the location or online store
    as output."""
    import json
    import threading
    from http.server import BaseHTTPRequestHandler, HTTPServer

    from conftest import wait_until

    received = []

    class Receiver(BaseHTTPRequestHandler):
        def do_POST(self):
            body = self.rfile.read(int(self.headers["Content-Length"]))
            received.append((self.path, self.headers["Content-Type"], json.loads(body)))
            self.send_response(201)
            self.end_headers()

        def log_message(self, *args):
            pass

    http = HTTPServer(("127.0.0.1", 0), Receiver)
    threading.Thread(target=http.serve_forever, daemon=True).start()
    try:
        config = tmp_path / "fstore.toml"
        config.write_text(
            "[lineage]\n"
            f'openlineage_url = "http://127.0.0.1:{http.server_port}/api/v1/lineage"\n'
            'namespace = "team-ml"\n'
        )
        server = make_server("--config", str(config), warehouse=tmp_path / "wh")
        admin = connect(server)
        for sql in SETUP[:5]:
            run(admin, sql)
        out = tmp_path / "exported"
        exported = run(admin, f"EXPORT FEATURE SET fraud TO '{out}'")
        run(admin, "ALTER FEATURE SET fraud SET ONLINE")
        run(admin, "REFRESH ONLINE FEATURE SET fraud")
        assert wait_until(lambda: len(received) >= 2, timeout=30), received
        events = {e["job"]["name"]: (path, ctype, e) for path, ctype, e in received}
        assert set(events) == {"export.fraud", "materialize.fraud"}, events.keys()
        path, ctype, export = events["export.fraud"]
        assert path == "/api/v1/lineage" and ctype == "application/json"
        assert export["eventType"] == "COMPLETE"
        assert export["job"]["namespace"] == "team-ml"
        assert export["inputs"] == [{"namespace": "team-ml", "name": "feature_set.fraud@1"}]
        assert export["outputs"] == [{"namespace": "file", "name": str(out)}]
        assert export["run"]["facets"]["fstore"]["rows"] == sum(r[1] for r in exported) > 0
        assert export["run"]["facets"]["fstore"]["files"] == [r[0] for r in exported]
        online = events["materialize.fraud"][2]
        assert online["inputs"] == [{"namespace": "team-ml", "name": "feature_set.fraud@1"}]
        assert online["outputs"] == [{"namespace": "team-ml", "name": "online.fraud@1"}]
        assert online["run"]["facets"]["fstore"]["trigger"] == "refresh"
        # Nothing is sent twice.
        run(admin, "SELECT 1")
        assert len(received) == 2
    finally:
        http.shutdown()
