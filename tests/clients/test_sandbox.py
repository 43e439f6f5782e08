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


def denied(conn, sql):
    """The statement fails with gRPC PERMISSION_DENIED (ADBC: UNAUTHORIZED … PermissionDenied)."""
    with conn.cursor() as cur, pytest.raises(Exception) as e:
        cur.execute(sql)
        cur.fetchall()
    assert "(PermissionDenied;" in str(e.value), f"{sql}: {e.value}"
    return str(e.value)


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


def test_only_administrators_change_the_servers_settings(sandboxed):
    server, _, _ = sandboxed
    admin = connect(server)
    ds = connect(server, "ds", DS_PASSWORD)
    msg = denied(ds, "SET datafusion.execution.batch_size = 1")
    assert "only an administrator" in msg, msg
    denied(ds, "RESET datafusion.execution.batch_size")
    show = "SELECT value FROM information_schema.df_settings WHERE name = 'datafusion.execution.batch_size'"
    before = run(admin, show)
    assert before != [("1",)], before
    run(admin, "SET datafusion.execution.batch_size = 4096")
    assert run(ds, show) == [("4096",)]
