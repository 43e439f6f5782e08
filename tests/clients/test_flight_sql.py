"""FStore over Arrow Flight SQL, through real clients: ADBC (the Go-based Flight SQL driver
behind `adbc-driver-flightsql`) and `pyarrow.flight`, against a real `fstore serve`."""
import threading
import time

import adbc_driver_manager
import pyarrow as pa
import pyarrow.flight as flight
import pytest

from conftest import ADMIN_PASSWORD, assert_idle, connect, wait_until
from flight_sql_proto import (any_message, cancel_flight_info_request, cancel_query_request, field,
                              first_varint_field, statement_query)


def test_adbc_login_query_and_fetch(server):
    with connect(server) as conn, conn.cursor() as cur:
        cur.execute("SELECT customer_category, count(*) AS n FROM transactions GROUP BY 1 ORDER BY 1")
        rows = cur.fetchall()
        assert [r[0] for r in rows] == ["bronze", "gold", "platinum", "silver"]
        assert sum(r[1] for r in rows) == 20000
        cur.execute("SELECT * FROM products ORDER BY product_id, updated_at LIMIT 3")
        table = cur.fetch_arrow_table()
        assert table.column_names == ["product_id", "price", "category", "updated_at"]
        assert table.num_rows == 3
        assert pa.types.is_timestamp(table.schema.field("updated_at").type)


def test_ddl_dml_and_queries_through_cursor_execute(server):
    with connect(server) as conn, conn.cursor() as cur:
        cur.execute("CREATE TABLE ddl_t (id INT, name VARCHAR)")
        cur.execute("INSERT INTO ddl_t VALUES (1, 'a'), (2, 'b')")
        cur.execute("INSERT INTO ddl_t SELECT 3, 'c'")
        cur.execute("CREATE VIEW ddl_v AS SELECT id FROM ddl_t WHERE id > 1")
        cur.execute("SELECT * FROM ddl_v ORDER BY id")
        assert cur.fetchall() == [(2,), (3,)]
        cur.execute("DROP VIEW ddl_v")
        cur.execute("DROP TABLE ddl_t")
        with pytest.raises(adbc_driver_manager.ProgrammingError, match="not found"):
            cur.execute("SELECT * FROM ddl_t")


def test_updates_report_affected_rows(server):
    with connect(server) as conn:
        stmt = adbc_driver_manager.AdbcStatement(conn.adbc_connection)
        stmt.set_sql_query("CREATE TABLE upd AS SELECT * FROM sample_transactions(500)")
        assert stmt.execute_update() == 500
        stmt.set_sql_query("INSERT INTO upd SELECT * FROM sample_transactions(7, 3)")
        assert stmt.execute_update() == 7
        stmt.close()
        with conn.cursor() as cur:
            cur.execute("SELECT count(*) FROM upd")
            assert cur.fetchone() == (507,)


def test_prepared_statements_bind_typed_parameters_repeatedly(server):
    with connect(server) as conn, conn.cursor() as cur:
        for i in range(25):
            cur.execute("SELECT ? + 1 AS x, ? AS s", parameters=(i, f"v{i}"))
            assert cur.fetchall() == [(i + 1, f"v{i}")]
        for cid in ["customer_1", "customer_2", "customer_3"]:
            cur.execute("SELECT count(*) FROM transactions WHERE customer_id = $1", parameters=(cid,))
            (n,) = cur.fetchone()
            cur.execute(f"SELECT count(*) FROM transactions WHERE customer_id = '{cid}'")
            assert cur.fetchone() == (n,)
        cur.execute("SELECT count(*) FROM transactions WHERE amount > ? AND customer_category = ?",
                    parameters=(100.5, "gold"))
        (n,) = cur.fetchone()
        assert 0 < n < 20000
        # Prepared DML, many rows bound at once.
        cur.execute("CREATE TABLE prep_ins (k INT, v VARCHAR)")
        cur.executemany("INSERT INTO prep_ins VALUES (?, ?)", [(1, "a"), (2, "b"), (3, None)])
        cur.execute("SELECT k, v FROM prep_ins ORDER BY k")
        assert cur.fetchall() == [(1, "a"), (2, "b"), (3, None)]


def test_a_prepared_statement_executes_many_times_with_one_handle(server):
    with connect(server) as conn:
        stmt = adbc_driver_manager.AdbcStatement(conn.adbc_connection)
        stmt.set_sql_query("SELECT customer_category, count(*) FROM transactions WHERE amount > ? GROUP BY 1")
        stmt.prepare()
        totals = []
        for threshold in [0.0, 50.0, 100.0, 1e9]:
            stmt.bind(pa.record_batch([pa.array([threshold])], names=["p"]))
            handle, _ = stmt.execute_query()
            reader = pa.RecordBatchReader._import_from_c(handle.address)
            totals.append(sum(reader.read_all().column(1).to_pylist()))
        stmt.close()
        assert totals[0] > totals[1] > totals[2] > totals[3] == 0


def test_metadata_get_objects_table_schema_and_info(server):
    with connect(server) as conn:
        objects = conn.adbc_get_objects(depth="tables").read_all().to_pylist()
        tables = {
            (c["catalog_name"], s["db_schema_name"], t["table_name"])
            for c in objects for s in c["catalog_db_schemas"] for t in s["db_schema_tables"]
        }
        assert ("fstore", "public", "transactions") in tables
        assert ("fstore", "fstore", "history") in tables
        only_tx = conn.adbc_get_objects(depth="tables", table_name_filter="trans%").read_all().to_pylist()
        names = [t["table_name"] for c in only_tx for s in c["catalog_db_schemas"] for t in s["db_schema_tables"]]
        assert names == ["transactions"]
        schema = conn.adbc_get_table_schema("transactions")
        assert schema.field("amount").type == pa.float64()
        assert schema.field("customer_id").type == pa.string()
        assert set(conn.adbc_get_table_types()) == {"TABLE", "VIEW", "SYSTEM TABLE", "FEATURE GROUP"}
        info = conn.adbc_get_info()
        assert info["vendor_name"] == "FStore"
        assert info["vendor_arrow_version"].startswith("59")


def test_feature_groups_are_listed_with_their_entity_keys_as_primary_keys(server):
    with connect(server) as conn, conn.cursor() as cur:
        cur.execute("CREATE FEATURE GROUP fg_meta ENTITY (customer_id, product_id) TIMESTAMP transaction_date "
                    "FROM transactions FEATURES (amount, customer_category)")
        objects = conn.adbc_get_objects(depth="tables", table_name_filter="fg_meta").read_all().to_pylist()
        found = [(t["table_name"], t["table_type"])
                 for c in objects for s in c["catalog_db_schemas"] for t in s["db_schema_tables"]]
        assert found == [("fg_meta", "FEATURE GROUP")]
        cur.execute("SELECT count(*) FROM fg_meta")
        assert cur.fetchone() == (20000,)
    client = flight.connect(server.uri)
    token = client.authenticate_basic_token(b"admin", ADMIN_PASSWORD.encode())
    options = flight.FlightCallOptions(headers=[token])
    cmd = any_message("CommandGetPrimaryKeys", field(3, b"fg_meta"))
    info = client.get_flight_info(flight.FlightDescriptor.for_command(cmd), options)
    keys = client.do_get(info.endpoints[0].ticket, options).read_all().to_pydict()
    assert keys["column_name"] == ["customer_id", "product_id"]
    assert keys["key_sequence"] == [1, 2]
    client.close()


def test_bulk_ingest_create_append_replace(server):
    df = pa.table({"entity": ["a", "b", "c"], "ts": pa.array([1, 2, 3], pa.timestamp("us")),
                   "value": [1.0, None, 3.5]})
    with connect(server) as conn, conn.cursor() as cur:
        assert cur.adbc_ingest("spine", df, mode="create") == 3
        assert cur.adbc_ingest("spine", df.slice(0, 1), mode="append") == 1
        cur.execute("SELECT count(*), count(value) FROM spine")
        assert cur.fetchone() == (4, 3)
        with pytest.raises(adbc_driver_manager.Error, match="already exists"):
            cur.adbc_ingest("spine", df, mode="create")
        assert cur.adbc_ingest("spine", df.slice(1), mode="replace") == 2
        cur.execute("SELECT entity FROM spine ORDER BY entity")
        assert cur.fetchall() == [("b",), ("c",)]
        # A large ingest streams into Parquet.
        big = pa.table({"i": pa.array(range(300_000), pa.int64())})
        assert cur.adbc_ingest("big_ingest", big, mode="create") == 300_000
        cur.execute("SELECT sum(i) FROM big_ingest")
        assert cur.fetchone() == (sum(range(300_000)),)


def test_pyarrow_flight_get_flight_info_and_do_get(server):
    client = flight.connect(server.uri)
    token = client.authenticate_basic_token(b"admin", ADMIN_PASSWORD.encode())
    options = flight.FlightCallOptions(headers=[token])
    descriptor = flight.FlightDescriptor.for_command(
        statement_query("SELECT customer_id, sum(amount) AS total FROM transactions GROUP BY 1"))
    info = client.get_flight_info(descriptor, options)
    assert info.schema.names == ["customer_id", "total"]
    assert len(info.endpoints) == 1
    table = client.do_get(info.endpoints[0].ticket, options).read_all()
    assert table.num_rows == 200
    # The same ticket can be redeemed again (it is self-contained).
    again = client.do_get(info.endpoints[0].ticket, options).read_all()
    assert again.num_rows == 200
    client.close()


def test_wrong_password_and_missing_token_are_unauthenticated(server):
    with pytest.raises(adbc_driver_manager.ProgrammingError, match="UNAUTHENTICATED"):
        connect(server, password="wrong").cursor().execute("SELECT 1")
    with pytest.raises(adbc_driver_manager.ProgrammingError, match="UNAUTHENTICATED"):
        connect(server, username="nobody").cursor().execute("SELECT 1")
    client = flight.connect(server.uri)
    with pytest.raises(flight.FlightUnauthenticatedError, match="missing authorization"):
        client.get_flight_info(flight.FlightDescriptor.for_command(statement_query("SELECT 1")))
    bogus = flight.FlightCallOptions(headers=[(b"authorization", b"Bearer v1.forged.token")])
    with pytest.raises(flight.FlightUnauthenticatedError, match="invalid or expired token"):
        client.get_flight_info(flight.FlightDescriptor.for_command(statement_query("SELECT 1")), bogus)
    client.close()


def test_errors_carry_precise_codes_and_messages(server):
    client = flight.connect(server.uri)
    token = client.authenticate_basic_token(b"admin", ADMIN_PASSWORD.encode())
    options = flight.FlightCallOptions(headers=[token])

    def info(sql):
        return client.get_flight_info(flight.FlightDescriptor.for_command(statement_query(sql)), options)

    # pyarrow turns gRPC codes into exception classes, and keeps the code in the message.
    with pytest.raises(pa.ArrowInvalid, match="invalid argument error.*syntax error in SELEC statement"):
        info("SELEC 1")
    with pytest.raises(pa.ArrowKeyError, match="not found error.*table 'fstore.public.nope' not found"):
        info("SELECT * FROM nope")
    with pytest.raises(pa.ArrowException, match="already exists error.*table 'transactions' already exists"):
        info("CREATE TABLE transactions AS SELECT 1")
    with pytest.raises(pa.ArrowNotImplementedError, match="unimplemented error"):
        info("CREATE SCHEMA other")
    with pytest.raises(pa.ArrowInvalid, match="must be a non-negative integer"):
        info("SELECT * FROM sample_transactions(-1)")
    client.close()
    # ADBC reports the gRPC code by name.
    with connect(server) as conn, conn.cursor() as cur:
        with pytest.raises(adbc_driver_manager.ProgrammingError, match=r"INVALID_ARGUMENT.*Expected: an SQL statement, found: SELEC"):
            cur.execute("SELEC 1")
        with pytest.raises(adbc_driver_manager.Error, match="NOT_FOUND"):
            cur.execute("SELECT * FROM nope")


def test_history_records_the_flight_principal(server):
    with connect(server) as conn, conn.cursor() as cur:
        cur.execute("CREATE TABLE who_made_me AS SELECT 1 AS x")
        cur.execute("SELECT principal FROM fstore.history WHERE object_name = 'who_made_me'")
        assert cur.fetchall() == [("admin",)]


def test_a_million_rows_stream_with_bounded_server_memory(make_server):
    server = make_server()  # a fresh process, so its RSS reflects this query alone
    with connect(server) as conn, conn.cursor() as cur:
        cur.execute("SELECT * FROM sample_transactions(10000)")  # warm up allocator and plans
        cur.fetchall()
    rss_before = server.rss_bytes()
    peak = [rss_before]
    stop = threading.Event()

    def sample():
        while not stop.is_set():
            peak[0] = max(peak[0], server.rss_bytes())
            time.sleep(0.02)

    sampler = threading.Thread(target=sample)
    sampler.start()
    received = 0
    with connect(server) as conn, conn.cursor() as cur:
        cur.execute("SELECT * FROM sample_transactions(1000000)")
        reader = cur.fetch_record_batch()
        for batch in reader:
            received += batch.num_rows
            time.sleep(0.0005)  # a slow consumer: back pressure must hold the server back
    stop.set()
    sampler.join()
    assert received == 1_000_000
    growth = peak[0] - rss_before
    result_bytes = 1_000_000 * 80  # ~80 bytes per row of this table in Arrow
    print(f"server RSS before {rss_before / 2**20:.0f} MiB, peak {peak[0] / 2**20:.0f} MiB, "
          f"growth {growth / 2**20:.1f} MiB for a ~{result_bytes / 2**20:.0f} MiB result")
    assert growth < result_bytes / 2, "the server seems to hold the whole result in memory"


def _read_until_cancelled(reader):
    """Reads a stream the server cancels. pyarrow reports a CANCELLED status as
    FlightCancelledError and, because its SignalStopHandler takes any cancellation for Ctrl-C,
    may raise KeyboardInterrupt instead (pyarrow 22 behaviour, not the server's)."""
    try:
        reader.read_all()
    except (flight.FlightCancelledError, KeyboardInterrupt) as exc:
        return exc
    raise AssertionError("the stream was not cancelled")


def _cancel_when(condition, action, timeout=120):
    """Runs `action` from a helper thread once `condition` holds; the stream is read on the
    main thread (see _read_until_cancelled)."""
    outcome = {}

    def run():
        try:
            outcome["ready"] = wait_until(condition, timeout=timeout)
        finally:
            # Whatever happened while waiting, the stream must not be left running.
            outcome["result"] = action()

    t = threading.Thread(target=run)
    t.start()
    return t, outcome


def _long_query(server, sql="SELECT * FROM sample_transactions(30000000) ORDER BY amount DESC, customer_id"):
    client = flight.connect(server.uri)
    token = client.authenticate_basic_token(b"admin", ADMIN_PASSWORD.encode())
    options = flight.FlightCallOptions(headers=[token])
    info = client.get_flight_info(flight.FlightDescriptor.for_command(statement_query(sql)), options)
    return client, options, info


def _memory_reserved(server):
    return server.metrics()["fstore_memory_reserved_bytes"] > 10 * 2**20


def test_cancelling_a_long_query_stops_it_and_frees_its_memory(server):
    # A sort must see every row before it returns the first one: it holds memory meanwhile.
    client, options, info = _long_query(server)
    reader = client.do_get(info.endpoints[0].ticket, options)
    canceller, outcome = _cancel_when(
        lambda: _memory_reserved(server),
        lambda: list(client.do_action(
            flight.Action("CancelFlightInfo", cancel_flight_info_request(info.serialize())), options)))
    exc = _read_until_cancelled(reader)
    canceller.join()
    assert_idle(server)  # the sort stopped within a second of the cancel
    assert isinstance(exc, KeyboardInterrupt) or "query cancelled" in str(exc)
    assert outcome["ready"], "the query never reserved memory"
    assert first_varint_field(outcome["result"][0].body.to_pybytes()) == 1  # CANCELLED
    assert wait_until(lambda: server.metrics()["fstore_active_queries"] == 0, timeout=30)
    assert wait_until(lambda: server.metrics()["fstore_memory_reserved_bytes"] == 0, timeout=30)
    assert server.metrics()["fstore_queries_cancelled_total"] >= 1
    # Cancelling what is no longer running says so: NOT_CANCELLABLE.
    results = list(client.do_action(
        flight.Action("CancelFlightInfo", cancel_flight_info_request(info.serialize())), options))
    assert first_varint_field(results[0].body.to_pybytes()) == 3
    client.close()


def test_flight_sql_cancel_query_action_cancels_too(server):
    client, options, info = _long_query(server, "SELECT * FROM sample_transactions(30000000) ORDER BY amount")
    reader = client.do_get(info.endpoints[0].ticket, options)
    canceller, outcome = _cancel_when(
        lambda: server.metrics()["fstore_active_queries"] == 1,
        lambda: list(client.do_action(flight.Action("CancelQuery", cancel_query_request(info.serialize())), options)))
    _read_until_cancelled(reader)
    canceller.join()
    # ActionCancelQueryResult comes back as an Any whose value holds result = 1 (CANCELLED).
    assert outcome["result"][0].body.to_pybytes().endswith(b"\x08\x01")
    assert wait_until(lambda: server.metrics()["fstore_active_queries"] == 0, timeout=30)
    client.close()


def test_client_disconnect_stops_the_query(server):
    client, options, info = _long_query(server)
    reader = client.do_get(info.endpoints[0].ticket, options)
    canceller, outcome = _cancel_when(lambda: _memory_reserved(server), reader.cancel)
    _read_until_cancelled(reader)
    canceller.join()
    assert_idle(server)  # the sort stopped within a second of the disconnect
    assert outcome["ready"]
    client.close()
    assert wait_until(lambda: server.metrics()["fstore_active_queries"] == 0, timeout=30)
    assert wait_until(lambda: server.metrics()["fstore_memory_reserved_bytes"] == 0, timeout=30)


def test_too_many_concurrent_queries_is_resource_exhausted(make_server):
    s = make_server("--max-concurrent-queries", "2")
    client = flight.connect(s.uri)
    token = client.authenticate_basic_token(b"admin", ADMIN_PASSWORD.encode())
    options = flight.FlightCallOptions(headers=[token])
    readers = []
    for _ in range(2):
        info = client.get_flight_info(
            flight.FlightDescriptor.for_command(statement_query("SELECT * FROM sample_transactions(5000000)")), options)
        reader = client.do_get(info.endpoints[0].ticket, options)
        reader.read_chunk()  # the stream is open and holds its slot
        readers.append(reader)
    assert s.metrics()["fstore_active_queries"] == 2
    with pytest.raises(pa.ArrowException, match="resource exhausted error.*too many concurrent queries"):
        client.get_flight_info(flight.FlightDescriptor.for_command(statement_query("SELECT 1")), options)
    for r in readers:
        r.cancel()
    assert wait_until(lambda: s.metrics()["fstore_active_queries"] == 0, timeout=30)
    info = client.get_flight_info(flight.FlightDescriptor.for_command(statement_query("SELECT 1 AS one")), options)
    assert client.do_get(info.endpoints[0].ticket, options).read_all().to_pydict() == {"one": [1]}
    client.close()


def test_thirty_two_clients_for_thirty_seconds_without_errors_or_leaks(server):
    queries = [
        ("SELECT count(*) FROM transactions WHERE customer_category = ?", ("gold",)),
        ("SELECT customer_id, avg(amount) FROM transactions GROUP BY 1 ORDER BY 2 DESC LIMIT 5", None),
        ("SELECT * FROM products WHERE product_id = ?", ("product_3",)),
        ("SELECT ?", (7,)),
        ("SELECT count(*) FROM fstore.history", None),
    ]
    # Warm up, then measure RSS from a steady state.
    with connect(server) as conn, conn.cursor() as cur:
        for q, p in queries:
            cur.execute(q, parameters=p)
            cur.fetchall()
    rss_before = server.rss_bytes()
    errors, counts = [], [0] * 32
    deadline = time.time() + 30

    def client(i):
        try:
            with connect(server) as conn, conn.cursor() as cur:
                k = i
                while time.time() < deadline:
                    q, p = queries[k % len(queries)]
                    cur.execute(q, parameters=p)
                    cur.fetchall()
                    counts[i] += 1
                    k += 1
        except Exception as exc:  # noqa: BLE001
            errors.append(exc)

    threads = [threading.Thread(target=client, args=(i,)) for i in range(32)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors[:3]
    assert all(c > 0 for c in counts)
    time.sleep(1)
    rss_after = server.rss_bytes()
    print(f"32 clients, 30 s: {sum(counts)} queries ({sum(counts) / 30:.0f}/s); "
          f"server RSS {rss_before / 2**20:.0f} -> {rss_after / 2**20:.0f} MiB")
    assert rss_after < rss_before * 1.5 + 64 * 2**20, "server memory grew: a leak?"
    assert server.metrics()["fstore_active_queries"] == 0


def test_sigterm_lets_an_in_flight_query_finish_then_exits(make_server):
    s = make_server()
    client = flight.connect(s.uri)
    token = client.authenticate_basic_token(b"admin", ADMIN_PASSWORD.encode())
    options = flight.FlightCallOptions(headers=[token])
    info = client.get_flight_info(
        flight.FlightDescriptor.for_command(statement_query("SELECT * FROM sample_transactions(200000)")), options)
    reader = client.do_get(info.endpoints[0].ticket, options)
    first = reader.read_chunk()
    s.proc.send_signal(15)
    rest = reader.read_all()
    assert first.data.num_rows + rest.num_rows == 200000
    assert s.proc.wait(30) == 0
    assert any("shutting down" in line for line in s.stderr_lines)
    client.close()


def test_tls_serves_encrypted_connections(make_server, tmp_path):
    import shutil
    import subprocess
    if shutil.which("openssl") is None:
        pytest.fail("openssl is required (scripts/test.sh installs it)")
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
                    "-subj", "/CN=localhost", "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost",
                    "-keyout", str(key), "-out", str(cert)], check=True, capture_output=True)
    s = make_server("--tls-cert", str(cert), "--tls-key", str(key))
    assert s.uri.startswith("grpc+tls://")
    client = flight.connect(s.uri, tls_root_certs=cert.read_bytes())
    token = client.authenticate_basic_token(b"admin", ADMIN_PASSWORD.encode())
    options = flight.FlightCallOptions(headers=[token])
    info = client.get_flight_info(flight.FlightDescriptor.for_command(statement_query("SELECT 42 AS x")), options)
    assert client.do_get(info.endpoints[0].ticket, options).read_all().to_pydict() == {"x": [42]}
    client.close()
    plain = flight.connect(f"grpc://127.0.0.1:{s.port}")
    with pytest.raises(flight.FlightError):
        plain.authenticate_basic_token(b"admin", ADMIN_PASSWORD.encode())


def test_no_auth_mode_warns_and_serves(make_server):
    s = make_server("--no-auth")
    assert any("authentication is disabled" in line for line in s.stderr_lines)
    client = flight.connect(s.uri)
    info = client.get_flight_info(flight.FlightDescriptor.for_command(statement_query("SELECT 1 AS x")))
    assert client.do_get(info.endpoints[0].ticket).read_all().num_rows == 1
    client.close()


def test_a_generated_admin_password_is_printed_once(make_server, tmp_path):
    s = make_server(env={"FSTORE_ADMIN_PASSWORD": ""}, warehouse=tmp_path / "gen")
    lines = [line for line in s.stderr_lines if "created user 'admin' with password" in line]
    assert len(lines) == 1
    password = lines[0].split("with password ")[1].split(" ")[0]
    with connect(s, password=password) as conn, conn.cursor() as cur:
        cur.execute("SELECT 1")
        assert cur.fetchone() == (1,)
    s.stop()
    again = make_server(env={"FSTORE_ADMIN_PASSWORD": ""}, warehouse=tmp_path / "gen")
    assert not any("created user" in line for line in again.stderr_lines)
    with connect(again, password=password) as conn, conn.cursor() as cur:
        cur.execute("SELECT 2")
        assert cur.fetchone() == (2,)
