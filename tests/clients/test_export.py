"""EXPORT FEATURE SET through `fstore serve` and ADBC: to a local directory and to a real
S3-compatible server (moto on loopback, started by scripts/test.sh); the files read back by
pyarrow carry the set's name, version and definition and hold exactly the query's rows.
"""
import json
import os

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from conftest import connect

S3_ENDPOINT = os.environ.get("FSTORE_TEST_S3_ENDPOINT")
S3_BUCKET = os.environ.get("FSTORE_TEST_S3_BUCKET")
S3_ENV = {
    "AWS_ACCESS_KEY_ID": "fstore-test",
    "AWS_SECRET_ACCESS_KEY": "fstore-test",
    "AWS_REGION": "us-east-1",
    "AWS_ENDPOINT_URL": S3_ENDPOINT or "",
    "AWS_ALLOW_HTTP": "true",
}


def setup(cur, tmp_path, n=50_000):
    rng = np.random.default_rng(3)
    t0 = np.datetime64("2024-01-01T00:00:00", "us").astype(np.int64)
    events = pa.table({
        "customer_id": pa.array([f"c{i}" for i in rng.integers(0, 500, n)]),
        "ts": pa.array(t0 + rng.integers(0, 90 * 86_400, n) * 1_000_000, pa.timestamp("us")),
        "amount": pa.array(np.round(rng.exponential(50, n), 2)),
    })
    spine = pa.table({
        "customer_id": pa.array([f"c{i}" for i in rng.integers(0, 520, 5000)]),
        "ts": pa.array(t0 + rng.integers(0, 100 * 86_400, 5000) * 1_000_000, pa.timestamp("us")),
    })
    pq.write_table(events, tmp_path / "events.parquet")
    pq.write_table(spine, tmp_path / "spine.parquet")
    cur.execute(f"CREATE EXTERNAL TABLE events STORED AS PARQUET LOCATION '{tmp_path / 'events.parquet'}'")
    cur.execute(f"CREATE EXTERNAL TABLE spine STORED AS PARQUET LOCATION '{tmp_path / 'spine.parquet'}'")
    cur.execute("""CREATE FEATURE GROUP cb ENTITY (customer_id) TIMESTAMP ts FROM events
                   FEATURES (mean_30d = mean(amount) WINDOW '30 days', amount)""")
    cur.execute("CREATE FEATURE SET fraud FEATURES (cb.mean_30d, cb.amount) WITH (author = 'team_ml')")


def sorted_rows(table, keys):
    return table.sort_by([(k, "ascending") for k in keys]).to_pylist()


def check_metadata(table, version=1):
    md = table.schema.metadata
    assert md[b"fstore.feature_set"] == b"fraud"
    assert md[b"fstore.version"] == str(version).encode()
    assert md[b"fstore.features"] == b"cb.mean_30d,cb.amount"
    definition = json.loads(md[b"fstore.definition"])
    assert definition["name"] == "fraud" and definition["version"] == version
    assert definition["metadata"]["author"] == "team_ml"


def test_export_to_a_local_directory(make_server, tmp_path):
    server = make_server()
    out = tmp_path / "exports"
    with connect(server) as conn, conn.cursor() as cur:
        setup(cur, tmp_path)
        cur.execute(f"EXPORT FEATURE SET fraud TO '{out}' FOR ENTITIES 'spine' TIMESTAMP 'ts'")
        files = cur.fetchall()
        cur.execute("SELECT * FROM training_set('fraud', 'spine', 'ts')")
        expected = cur.fetch_arrow_table()
        # Without FOR ENTITIES: one file per group, one row per event.
        cur.execute(f"EXPORT FEATURE SET fraud VERSION 1 TO '{out}'")
        group_files = cur.fetchall()
        cur.execute("SELECT customer_id, ts, mean_30d, amount FROM cb")
        expected_group = cur.fetch_arrow_table()

    path = out / "fraud_v1.parquet"
    assert files == [(f"file://{path}", 5000, path.stat().st_size)]
    got = pq.read_table(path)
    check_metadata(got)
    assert got.column_names == expected.column_names
    keys = ["customer_id", "ts", "amount", "mean_30d"]
    assert sorted_rows(got, keys) == sorted_rows(expected.cast(got.schema), keys)

    gpath = out / "fraud_v1" / "cb.parquet"
    assert [f[0] for f in group_files] == [f"file://{gpath}"]
    got = pq.read_table(gpath)
    check_metadata(got)
    assert got.num_rows == 50_000
    assert sorted_rows(got, keys) == sorted_rows(expected_group.cast(got.schema), keys)
    # Nothing but the finished files is left behind.
    assert sorted(p.name for p in out.iterdir()) == ["fraud_v1", "fraud_v1.parquet"]


def test_export_to_s3(make_server, tmp_path):
    if not S3_ENDPOINT:
        assert not os.environ.get("FSTORE_TEST_REQUIRE_S3"), "FSTORE_TEST_REQUIRE_S3 set without an endpoint"
        pytest.skip("no S3 endpoint (run through scripts/test.sh)")
    from pyarrow import fs
    server = make_server(env=S3_ENV)
    prefix = f"exports-{os.getpid()}"
    with connect(server) as conn, conn.cursor() as cur:
        setup(cur, tmp_path)
        cur.execute(f"EXPORT FEATURE SET fraud TO 's3://{S3_BUCKET}/{prefix}/' FORMAT parquet "
                    "FOR ENTITIES 'spine' TIMESTAMP 'ts'")
        (file, rows, size), = cur.fetchall()
        cur.execute("SELECT * FROM training_set('fraud@1', 'spine', 'ts')")
        expected = cur.fetch_arrow_table()
        # A bucket that does not exist: a clear error, nothing written.
        with pytest.raises(Exception) as err:
            cur.execute("EXPORT FEATURE SET fraud TO 's3://no-such-bucket-fstore/x/' "
                        "FOR ENTITIES 'spine' TIMESTAMP 'ts'")
        assert "no-such-bucket-fstore" in str(err.value)
    assert file == f"s3://{S3_BUCKET}/{prefix}/fraud_v1.parquet" and rows == 5000
    s3 = fs.S3FileSystem(access_key="fstore-test", secret_key="fstore-test", region="us-east-1",
                         endpoint_override=S3_ENDPOINT, scheme="http")
    info = s3.get_file_info(f"{S3_BUCKET}/{prefix}/fraud_v1.parquet")
    assert info.size == size
    got = pq.read_table(f"{S3_BUCKET}/{prefix}/fraud_v1.parquet", filesystem=s3)
    check_metadata(got)
    keys = ["customer_id", "ts", "amount", "mean_30d"]
    assert sorted_rows(got, keys) == sorted_rows(expected.cast(got.schema), keys)


def test_export_errors(make_server, tmp_path):
    server = make_server()
    with connect(server) as conn, conn.cursor() as cur:
        setup(cur, tmp_path, n=1000)
        for sql, message in [
            ("EXPORT FEATURE SET nope TO '/tmp/x'", "feature set 'nope' not found"),
            ("EXPORT FEATURE SET fraud VERSION 7 TO '/tmp/x'", "has no version 7"),
            ("EXPORT FEATURE SET fraud TO '/tmp/x' FORMAT csv", "format 'csv' is not supported"),
            ("EXPORT FEATURE SET fraud TO 'ftp://host/x'", "unsupported location"),
        ]:
            with pytest.raises(Exception) as err:
                cur.execute(sql)
            assert message in str(err.value), (sql, str(err.value))
