"""No input ends the server: generated deep expressions and a fuzz of FStore's grammar,
through a real Flight SQL client (ADBC), with the server answering `SELECT 1` afterwards."""
import os
import random
import re
import subprocess
import time

import adbc_driver_manager
import pytest

from conftest import assert_idle, connect

# The shapes BI tools and feature pipelines generate, at sizes that used to kill the server.
GENERATED = {
    "or": lambda n: "SELECT count(*) FROM (VALUES (1), (2)) t(x) WHERE "
    + " OR ".join(f"x = {i}" for i in range(n)),
    "and": lambda n: "SELECT count(*) FROM (VALUES (1), (2)) t(x) WHERE "
    + " AND ".join(f"x <> {i + 10}" for i in range(n)),
    "plus": lambda n: "SELECT " + " + ".join(["1"] * n),
    "concat": lambda n: "SELECT " + " || ".join(["'a'"] * n),
}


def alive(server):
    assert server.proc.poll() is None, "server died:\n" + "\n".join(server.stderr_lines[-20:])
    with connect(server) as conn, conn.cursor() as cur:
        cur.execute("SELECT 1")
        assert cur.fetchall() == [(1,)]


def query(conn, sql):
    with conn.cursor() as cur:
        cur.execute(sql)
        return cur.fetchall()


def run(server, sql):
    with connect(server) as conn, conn.cursor() as cur:
        cur.execute(sql)
        return cur.fetchall()


@pytest.mark.parametrize("shape", sorted(GENERATED))
def test_generated_deep_expressions_are_refused_and_the_server_keeps_serving(make_server, shape):
    server = make_server()
    make = GENERATED[shape]
    # Below the limit the statement runs.
    rows = run(server, make(900))
    assert len(rows) == 1
    # At the sizes that crashed the process: a clear InvalidArgument naming the depth.
    for n in (3000, 10000):
        with pytest.raises(adbc_driver_manager.ProgrammingError) as e:
            run(server, make(n))
        assert "INVALID_ARGUMENT" in str(e.value)
        m = re.search(r"expression too deep: (\d+) > 1000", str(e.value))
        assert m and int(m.group(1)) >= n, str(e.value)
        alive(server)
    # Far beyond: refused before a tree is even built.
    with pytest.raises(adbc_driver_manager.Error) as e:
        run(server, make(60000))
    assert re.search(r"expression too large: \d+ operators > 50000|exceeds the limit", str(e.value))
    alive(server)


def test_max_expression_depth_is_configurable(make_server):
    server = make_server("--max-expression-depth", "5000")
    assert run(server, GENERATED["or"](3000)) == [(2,)]
    with pytest.raises(adbc_driver_manager.ProgrammingError, match=r"expression too deep: \d+ > 5000"):
        run(server, GENERATED["plus"](6000))
    alive(server)


# Valid statements from FStore's grammar over a tiny table; the fuzzer mutates their tokens.
CORPUS = [
    "SELECT * FROM t WHERE k = 'a' AND v > 1",
    "SELECT k, sum(v), count(*) FROM t GROUP BY k HAVING count(*) > 1 ORDER BY 2 DESC LIMIT 3",
    "SELECT a.k, b.v FROM t a JOIN t b ON a.k = b.k AND a.ts >= b.ts",
    "SELECT e.k, f.v FROM t e ASOF JOIN t f MATCH_CONDITION (e.ts >= f.ts) ON e.k = f.k",
    "SELECT e.k, f.v FROM t e ASOF LEFT JOIN t f ON e.k = f.k AND e.ts >= f.ts",
    "SELECT CASE WHEN v > 2 THEN 'hi' ELSE 'lo' END, coalesce(k, 'x') || '-' FROM t",
    "SELECT time_bucket(ts, '1h'), hash_bucket(k, 8), one_hot(k, ARRAY['a', 'b']) FROM t",
    "SELECT ks_statistic(v, v * 2), psi(v, v + 1), null_fraction(v), auc(v, v > 2) FROM t",
    "SELECT k, avg(v) OVER (PARTITION BY k ORDER BY ts RANGE BETWEEN INTERVAL '1 day' PRECEDING AND CURRENT ROW) FROM t",
    "SELECT * FROM sample_transactions(20, 3) WHERE amount > 10",
    "CREATE FEATURE GROUP g ENTITY (k) TIMESTAMP ts FROM t FEATURES (v_mean = mean(v) WINDOW '2 days', v) TTL '9 days'",
    "CREATE FEATURE SET s FEATURES (g.*) WITH (author = 'fuzz') TAGS ('x') DESCRIPTION 'd'",
    "SELECT * FROM training_set('g:*', 't', 'ts')",
    "SELECT * FROM temporal_split('t', 0.2, 'ts')",
    "SELECT * FROM feature_correlation('g', 'spearman')",
    "SELECT * FROM validate('s')",
    "CREATE EXPECTATION ON FEATURE g.v (min_value = 0, max_value = 100, null_percentage = 0.5)",
    "SET DRIFT BASELINE FOR FEATURE SET s FROM '2024-01-01' TO '2024-01-05'",
    "SELECT * FROM check_drift('s', 't', 'ks_test', 0.05)",
    "ALTER FEATURE SET s SET ONLINE (update_frequency = '1h', cache_ttl = '30m')",
    "SELECT * FROM online_features('s') WHERE k = 'a'",
    "DESCRIBE FEATURE SET s",
    "SHOW FEATURE GROUPS",
    "COMMENT ON FEATURE g.v IS 'value'",
    "SELECT * FROM fstore.history ORDER BY seq DESC LIMIT 2",
    "CREATE VIEW w AS SELECT k, v FROM t WHERE v IS NOT NULL",
    "INSERT INTO t VALUES ('c', 4.0, TIMESTAMP '2024-01-04 00:00:00')",
    "SELECT CAST(v AS VARCHAR), v::BIGINT, [1, 2, 3][2], {'a': 1}['a'], NULLIF(v, 1) FROM t",
    "EXPLAIN SELECT k FROM t WHERE v IN (1, 2, 3) UNION ALL SELECT 'z'",
    "DROP VIEW IF EXISTS w",
]
VOCABULARY = [
    "(", ")", ",", "'", "''", "*", "+", "-", "/", "=", "<", ">", "||", "::", ";", ".", "[", "]",
    "SELECT", "FROM", "WHERE", "AND", "OR", "NOT", "NULL", "ASOF", "JOIN", "ON", "MATCH_CONDITION",
    "FEATURE", "GROUP", "SET", "WINDOW", "TTL", "VERSION", "ONLINE", "INTERVAL", "'1 day'", "0",
    "-1", "1e308", "'x'", "k", "v", "ts", "t", "g", "s", "$1", "?", "CAST", "AS", "CASE", "END",
    "OVER", "PARTITION", "BY", "training_set", "online_features", "'g:*'", "@", "%", "\\", "\x00",
    "é", "ARRAY[", "{", "}",
]


def mutate(rng, sql):
    tokens = re.findall(r"'[^']*'|\w+|\S", sql)
    # One statement in four runs as written, so the happy paths (and the objects later
    # statements use) are exercised too.
    for _ in range(rng.choice([0, 1, 1, 2, 3])):
        if not tokens:
            break
        i = rng.randrange(len(tokens))
        op = rng.randrange(6)
        if op == 0:
            del tokens[i]
        elif op == 1:
            tokens.insert(i, rng.choice(VOCABULARY))
        elif op == 2 and i + 1 < len(tokens):
            tokens[i], tokens[i + 1] = tokens[i + 1], tokens[i]
        elif op == 3:
            tokens = tokens[:i]
        elif op == 4:
            # nesting: wrap a token in many parentheses or a long chain
            tokens[i] = "(" * rng.randint(1, 80) + tokens[i] + ")" * rng.randint(1, 80)
        else:
            tokens.insert(i, " OR ".join(["v = 1"] * rng.randint(2, 1500)))
    return " ".join(tokens)


def test_fuzzed_statements_never_kill_the_server(make_server):
    server = make_server()
    conn = connect(server)
    cur = conn.cursor()
    cur.execute("CREATE TABLE t (k VARCHAR, v DOUBLE, ts TIMESTAMP)")
    cur.execute(
        "INSERT INTO t VALUES ('a', 1.0, TIMESTAMP '2024-01-01 00:00:00'), "
        "('a', 2.0, TIMESTAMP '2024-01-02 00:00:00'), ('b', 3.0, TIMESTAMP '2024-01-03 00:00:00'), "
        "('b', NULL, TIMESTAMP '2024-01-03 00:00:00'), (NULL, 5.0, TIMESTAMP '2024-01-05 00:00:00')"
    )
    rng = random.Random(20261204)
    outcomes = {"ok": 0, "error": 0}
    codes = {}
    for n in range(2000):
        sql = mutate(rng, rng.choice(CORPUS))
        try:
            cur.execute(sql)
            cur.fetchall()
            outcomes["ok"] += 1
        except adbc_driver_manager.Error as e:
            outcomes["error"] += 1
            code = re.match(r"[A-Z_]+", str(e))
            codes[code.group(0) if code else "?"] = codes.get(code.group(0) if code else "?", 0) + 1
            assert "UNAVAILABLE" not in str(e), f"statement {n} lost the connection: {sql[:300]!r}\n{e}"
            if server.proc.poll() is not None:
                break
            # A failed statement may leave the cursor unusable: start a fresh one.
            cur.close()
            cur = conn.cursor()
        assert server.proc.poll() is None, f"statement {n} killed the server: {sql[:300]!r}"
    print("fuzz outcomes", outcomes, codes)
    cur.close()
    conn.close()
    assert outcomes["ok"] > 100 and outcomes["error"] > 100
    alive(server)


def test_bulk_ingest_cannot_write_outside_the_warehouse(make_server, tmp_path):
    import pyarrow as pa

    server = make_server(warehouse=tmp_path / "wh")
    data = pa.table({"x": [1, 2, 3]})
    with connect(server) as conn, conn.cursor() as cur:
        for name in ["../escaped", "../../escaped", "a/b", "x\\y"]:
            with pytest.raises(adbc_driver_manager.Error) as e:
                cur.adbc_ingest(name, data, mode="create")
            assert "INVALID_ARGUMENT" in str(e.value) and "invalid name" in str(e.value), str(e.value)
        # A legal odd name works, and its files stay under the warehouse's tables/.
        cur.adbc_ingest("Odd.Name", data, mode="create")
        cur.execute('SELECT sum(x) FROM "odd.name"')
        assert cur.fetchall() == [(6,)]
    outside = [p for p in tmp_path.rglob("*.parquet") if (tmp_path / "wh") not in p.parents]
    assert outside == []
    written = list((tmp_path / "wh").rglob("*.parquet"))
    assert written and all((tmp_path / "wh" / "tables") in p.parents for p in written)
    alive(server)


def test_garbage_flight_sql_commands_are_invalid_argument(make_server):
    import pyarrow as pa
    import pyarrow.flight as flight
    from flight_sql_proto import any_message

    server = make_server()
    client = flight.FlightClient(server.uri)
    token = client.authenticate_basic_token("admin", "s3cret-admin")
    options = flight.FlightCallOptions(headers=[token])
    rng = random.Random(7)
    commands = [
        "CommandStatementQuery",
        "CommandPreparedStatementQuery",
        "CommandGetTables",
        "CommandGetSqlInfo",
        "TicketStatementQuery",
    ]
    codes = {}
    for i in range(300):
        garbage = bytes(rng.randrange(256) for _ in range(rng.randrange(1, 64)))
        if i % 2:
            # A well-formed Any whose value is garbage.
            garbage = any_message(rng.choice(commands), garbage)
        try:
            if i % 3 == 0:
                list(client.do_get(flight.Ticket(garbage), options=options))
            else:
                client.get_flight_info(flight.FlightDescriptor.for_command(garbage), options=options)
            codes["ok"] = codes.get("ok", 0) + 1
        except (flight.FlightError, pa.ArrowException) as e:
            # pyarrow raises ArrowInvalid for INVALID_ARGUMENT, ArrowNotImplementedError for
            # UNIMPLEMENTED, FlightError subclasses for the rest.
            name = type(e).__name__
            codes[name] = codes.get(name, 0) + 1
            assert not isinstance(e, (flight.FlightInternalError, flight.FlightUnavailableError)), (
                f"request {i}: {name}: {e}"
            )
            assert "grpc_status:13" not in str(e), f"request {i} answered INTERNAL: {e}"
    print("garbage outcomes", codes)
    alive(server)


# Computed row by row (no statistics shortcut), far longer than any limit below.
LONG = "SELECT sum(value % 7) FROM generate_series(1, 20000000000)"


def timed_out(conn, sql, limit):
    """The query fails with its time limit named, and the server stops working on it: over
    the two seconds after the error it burns almost no CPU (a running query burns two cores)."""
    started = time.time()
    with conn.cursor() as cur, pytest.raises(adbc_driver_manager.Error) as e:
        cur.execute(sql)
        cur.fetchall()
    elapsed = time.time() - started
    assert f"time limit of {limit}" in str(e.value), str(e.value)
    assert elapsed < 30, elapsed
    return str(e.value), elapsed


def test_query_timeout_stops_the_query_and_its_work(make_server):
    server = make_server("--query-timeout", "3s")
    with connect(server) as admin, admin.cursor() as cur:
        cur.execute("CREATE USER ds WITH PASSWORD 'ds-password-1'")
    with connect(server, "ds", "ds-password-1") as ds, connect(server, "ds", "ds-password-1") as other:
        assert query(ds, "SHOW fstore.query_timeout") == [("fstore.query_timeout", "3s")]
        assert query(ds, "SELECT sum(value) FROM generate_series(1, 1000)") == [(500500,)]
        msg, elapsed = timed_out(ds, LONG, "3s")
        assert elapsed >= 2.9, elapsed
        assert_idle(server)

        # A session may shorten its limit, not lift or lengthen it; other sessions keep theirs.
        query(ds, "SET fstore.query_timeout = '1s'")
        assert query(ds, "SHOW fstore.query_timeout") == [("fstore.query_timeout", "1s")]
        assert query(other, "SHOW fstore.query_timeout") == [("fstore.query_timeout", "3s")]
        _, elapsed = timed_out(ds, LONG, "1s")
        assert elapsed < 2.9, elapsed
        assert_idle(server)
        for value in ("1h", "none"):
            with pytest.raises(adbc_driver_manager.Error, match=r"(server's limit|server limits).*PermissionDenied"):
                query(ds, f"SET fstore.query_timeout = '{value}'")
        with pytest.raises(adbc_driver_manager.Error, match=r"soon.*InvalidArgument"):
            query(ds, "SET fstore.query_timeout = 'soon'")
        query(ds, "RESET fstore.query_timeout")
        assert query(ds, "SHOW fstore.query_timeout") == [("fstore.query_timeout", "3s")]
    # An administrator may lift it for a session.
    with connect(server) as admin:
        query(admin, "SET fstore.query_timeout = 'none'")
        assert query(admin, "SHOW fstore.query_timeout") == [("fstore.query_timeout", "none")]
    assert server.metrics()["fstore_queries_timed_out_total"] == 2
    alive(server)


def test_the_cli_applies_the_query_timeout(tmp_path):
    from conftest import FSTORE_BIN
    started = time.time()
    r = subprocess.run([FSTORE_BIN, "--warehouse", str(tmp_path / "wh"), "--query-timeout", "1s",
                        "sql", "-c", LONG], capture_output=True, text=True, timeout=120)
    assert r.returncode != 0 and "time limit of 1s" in r.stderr, r.stderr
    assert r.stdout == ""
    assert time.time() - started < 30
    r = subprocess.run([FSTORE_BIN, "--warehouse", str(tmp_path / "wh"), "--query-timeout", "later",
                        "sql", "-c", "SELECT 1"], capture_output=True, text=True, timeout=120)
    assert r.returncode != 0 and "query timeout" in r.stderr and "later" in r.stderr, r.stderr


def test_shutdown_does_not_wait_for_an_abandoned_query(make_server):
    """A client that gave up on a long query leaves no work behind: SIGTERM ends the server
    at once (a query still being read gets the grace period, then is cancelled)."""
    import signal

    import pyarrow.flight as flight

    from conftest import ADMIN_PASSWORD
    from flight_sql_proto import statement_query

    server = make_server()
    client = flight.connect(server.uri)
    token = client.authenticate_basic_token(b"admin", ADMIN_PASSWORD.encode())
    options = flight.FlightCallOptions(headers=[token], timeout=1.5)
    info = client.get_flight_info(flight.FlightDescriptor.for_command(statement_query(LONG)), options)
    with pytest.raises(flight.FlightTimedOutError):
        client.do_get(info.endpoints[0].ticket, options).read_all()
    assert_idle(server)
    started = time.time()
    server.proc.send_signal(signal.SIGTERM)
    server.proc.wait(timeout=30)
    assert time.time() - started < 3, time.time() - started
    assert server.proc.returncode == 0
