"""The sandbox, through a real server and ADBC: statements cannot read or write the server's
own files (warehouse registry, token key, managed tables' files, configuration), only
administrators name server-local paths, and `[security] allowed_locations` bounds everyone.

Each attack of the governance issue is tried as a client would, and must fail with
PERMISSION_DENIED, leave nothing written, and leave the server working.
"""
import os
import stat

import pytest

from conftest import ADMIN_PASSWORD, connect

DS_PASSWORD = "ds-password-1"


def write_config(tmp_path, allowed=None):
    config = tmp_path / "fstore.toml"
    text = (
        "[server]\n"
        "[[server.users]]\n"
        'name = "ds"\n'
        f'password = "{DS_PASSWORD}"\n'
        "admin = false\n"
    )
    if allowed is not None:
        text += "[security]\nallowed_locations = [" + ", ".join(f'"{a}"' for a in allowed) + "]\n"
    config.write_text(text)
    return config


def fails(conn, sql, code):
    """The statement fails with the gRPC status whose ADBC name is `code`."""
    with conn.cursor() as cur, pytest.raises(Exception) as e:
        cur.execute(sql)
        cur.fetchall()
    assert f"({code};" in str(e.value), f"{sql}: {e.value}"
    return str(e.value)


def denied(conn, sql):
    """The statement fails with gRPC PERMISSION_DENIED (ADBC: UNAUTHORIZED … PermissionDenied)."""
    return fails(conn, sql, "PermissionDenied")


def run(conn, sql):
    with conn.cursor() as cur:
        cur.execute(sql)
        return cur.fetchall()


@pytest.fixture
def sandboxed(tmp_path, make_server):
    config = write_config(tmp_path)
    data = tmp_path / "data"
    data.mkdir()
    (data / "ok.csv").write_text("a,b\n1,2\n")
    server = make_server("--config", str(config), warehouse=tmp_path / "wh")
    return server, tmp_path, data


def test_the_server_files_are_out_of_reach(sandboxed):
    server, tmp, data = sandboxed
    wh = server.warehouse
    admin = connect(server)
    ds = connect(server, "ds", DS_PASSWORD)
    run(admin, "CREATE TABLE t AS SELECT 1 AS x")
    table_files = sorted(str(p) for p in (wh / "tables").rglob("*.parquet"))
    assert table_files
    log_before = sorted(os.listdir(wh / "_registry" / "log"))

    # A non-admin names no server path at all.
    msg = denied(ds, "CREATE EXTERNAL TABLE shadow STORED AS CSV LOCATION '/etc/shadow'")
    assert "only an administrator" in msg, msg
    denied(ds, f"CREATE EXTERNAL TABLE okcsv STORED AS CSV LOCATION '{data}/ok.csv'")
    denied(ds, f"COPY (SELECT 1 AS x) TO '{data}/out.csv' STORED AS CSV")
    assert not (data / "out.csv").exists()

    # Not even an admin reads or writes the warehouse or the configuration.
    for sql in [
        f"CREATE EXTERNAL TABLE reg STORED AS JSON LOCATION '{wh}/_registry/log/'",
        f"CREATE EXTERNAL TABLE key STORED AS CSV LOCATION '{wh}/_registry/token-key'",
        f"CREATE EXTERNAL TABLE conf STORED AS CSV LOCATION '{tmp}/fstore.toml'",
        f"CREATE EXTERNAL TABLE up STORED AS JSON LOCATION '{tmp}/'",
        f"CREATE EXTERNAL TABLE esc STORED AS JSON LOCATION '{data}/../wh/_registry/log/'",
        f"CREATE EXTERNAL TABLE url STORED AS JSON LOCATION 'file://{data}/%2e%2e/wh/_registry/log/'",
        f"COPY (SELECT 1 AS x) TO '{wh}/_registry/log/99999999.json' STORED AS JSON",
        f"COPY (SELECT 1000 AS x) TO '{table_files[0]}' STORED AS PARQUET",
        f"COPY (SELECT 1 AS x) TO '{data}/../wh/tables/x.parquet' STORED AS PARQUET",
    ]:
        msg = denied(admin, sql)
        assert "warehouse" in msg, msg
    os.symlink(wh, data / "link")
    denied(admin, f"CREATE EXTERNAL TABLE sym STORED AS JSON LOCATION '{data}/link/_registry/log/'")

    # Nothing was written or recorded; the server still works, and admins keep their paths.
    assert sorted(os.listdir(wh / "_registry" / "log")) == log_before
    assert run(admin, "SELECT x FROM t") == [(1,)]
    run(admin, f"CREATE EXTERNAL TABLE okcsv STORED AS CSV LOCATION '{data}/ok.csv'")
    run(admin, "GRANT SELECT ON TABLE okcsv TO ds")
    assert run(ds, "SELECT a, b FROM okcsv") == [(1, 2)]
    for name in ["shadow", "reg", "key", "conf", "up", "esc", "url", "sym"]:
        with pytest.raises(Exception, match="NotFound"):
            run(admin, f"SELECT * FROM {name}")


def test_the_token_key_is_private(sandboxed):
    server, _, _ = sandboxed
    mode = stat.S_IMODE(os.stat(server.warehouse / "_registry" / "token-key").st_mode)
    assert mode == 0o600, oct(mode)


def test_allowed_locations_bound_everyone(tmp_path, make_server):
    landing = tmp_path / "landing"
    landing.mkdir()
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    config = write_config(tmp_path, allowed=[str(landing)])
    server = make_server("--config", str(config), warehouse=tmp_path / "wh")
    admin = connect(server)
    run(admin, f"COPY (SELECT 1 AS x) TO '{landing}/out.csv' STORED AS CSV")
    assert (landing / "out.csv").exists()
    msg = denied(admin, f"COPY (SELECT 1 AS x) TO '{elsewhere}/out.csv' STORED AS CSV")
    assert "outside the allowed locations" in msg, msg
    denied(admin, f"COPY (SELECT 1 AS x) TO '{landing}/../elsewhere/out.csv' STORED AS CSV")
    denied(admin, "CREATE EXTERNAL TABLE p STORED AS CSV LOCATION '/etc/passwd'")
    assert not (elsewhere / "out.csv").exists()


def invalid(conn, sql):
    return fails(conn, sql, "InvalidArgument")


def batch_rows(conn, sql):
    """The row counts of the batches a query streams (they follow the session's batch size)."""
    with conn.cursor() as cur:
        cur.execute(sql)
        return [b.num_rows for b in cur.fetch_record_batch()]


BATCH = "SELECT value FROM information_schema.df_settings WHERE name = 'datafusion.execution.batch_size'"
SERIES = "SELECT value FROM generate_series(1, 100) ORDER BY value"


def test_settings_are_per_session(sandboxed):
    """`SET` applies to the session (the login) that sent it, never to another connection,
    even of the same user; server settings need an administrator."""
    server, _, _ = sandboxed
    admin = connect(server)
    ds1 = connect(server, "ds", DS_PASSWORD)
    ds2 = connect(server, "ds", DS_PASSWORD)
    default = run(admin, BATCH)
    assert default == [("8192",)], default

    run(ds1, "SET datafusion.execution.batch_size = 7")
    assert run(ds1, BATCH) == [("7",)]
    assert run(ds1, "SHOW datafusion.execution.batch_size") == [("datafusion.execution.batch_size", "7")]
    # Its queries run with it; the other session of the same user and the admin's do not.
    assert max(batch_rows(ds1, SERIES)) <= 7 and sum(batch_rows(ds1, SERIES)) == 100
    assert batch_rows(ds2, SERIES) == [100]
    assert run(ds2, BATCH) == default and run(admin, BATCH) == default
    # The same statement text, prepared by both sessions, runs with each session's settings.
    assert max(batch_rows(ds1, SERIES)) <= 7 and batch_rows(ds2, SERIES) == [100]

    # An administrator's SET is per session too.
    run(admin, "SET datafusion.execution.batch_size = 50")
    assert run(admin, BATCH) == [("50",)] and run(ds2, BATCH) == default
    assert run(ds1, BATCH) == [("7",)]
    run(ds1, "RESET datafusion.execution.batch_size")
    assert run(ds1, BATCH) == default and batch_rows(ds1, SERIES) == [100]

    # Settings of the server, or that change how names resolve, need an administrator;
    # users stay within bounds; a setting that does not exist is a bad request.
    msg = denied(ds1, "SET datafusion.runtime.memory_limit = '1G'")
    assert "server setting" in msg, msg
    denied(ds1, "SET datafusion.catalog.default_schema = 'fstore'")
    msg = denied(ds1, "SET datafusion.execution.target_partitions = 100000")
    assert "at most" in msg, msg
    invalid(ds1, "SET datafusion.execution.batch_size = 0")
    invalid(ds1, "SET datafusion.execution.no_such_setting = 1")
    run(ds1, "SET datafusion.execution.target_partitions = 1")
    assert run(ds1, "SELECT count(*) FROM generate_series(1, 1000)") == [(1000,)]
    # Nothing leaked: after all this the other sessions still run with the server's settings.
    assert run(ds2, BATCH) == default
    assert run(ds2, "SHOW datafusion.execution.target_partitions") == \
        run(connect(server), "SHOW datafusion.execution.target_partitions")


def test_a_request_without_a_session_cannot_set(sandboxed):
    """Basic credentials on every call (no login, no bearer token): no session to keep a
    setting in, so SET is refused instead of lasting one request."""
    import base64

    import pyarrow as pa
    from pyarrow import flight

    from flight_sql_proto import statement_query

    server, _, _ = sandboxed
    client = flight.connect(server.uri)
    basic = base64.b64encode(f"ds:{DS_PASSWORD}".encode()).decode()
    options = flight.FlightCallOptions(headers=[(b"authorization", f"Basic {basic}".encode())])

    def info(sql):
        return client.get_flight_info(flight.FlightDescriptor.for_command(statement_query(sql)), options)

    with pytest.raises(pa.ArrowInvalid, match="no session"):
        info("SET datafusion.execution.batch_size = 5")
    assert client.do_get(info("SELECT 1 AS one").endpoints[0].ticket, options).read_all().num_rows == 1
    client.close()
