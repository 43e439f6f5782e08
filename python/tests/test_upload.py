"""Frames in and out: an uploaded frame lives in a table only while its statement runs, and is
dropped afterwards — after a success, after a failed statement, after a failed upload — and
results come back as pandas, Arrow or Polars."""

import warnings

import pandas as pd
import polars as pl
import pyarrow as pa
import pytest

from fstore import FStoreError, InvalidArgument, NotFound
from fstore._conn import TEMP_PREFIX, Session
from fstore.utils import temporal_split


def upload_tables(store):
    names = store.sql("SELECT table_name FROM information_schema.tables", output="arrow")
    return [n for n in names.column("table_name").to_pylist() if n.startswith(TEMP_PREFIX)]


@pytest.fixture
def spine(store):
    return store.sql(
        "SELECT transaction_id, customer_id, transaction_date FROM transactions "
        "WHERE transaction_date < TIMESTAMP '2024-01-08'",
        output="arrow",
    )


@pytest.fixture
def group(store):
    store.sql("DROP FEATURE GROUP IF EXISTS upload_cb")
    store.create_feature_group(
        "upload_cb", "transactions", entity="customer", features=["amount"], replace=True
    )
    return "upload_cb"


def test_an_uploaded_frame_is_dropped_after_the_query(store, spine, group):
    expected = store.sql(
        "SELECT * FROM training_set('upload_cb:*', 'SELECT transaction_id, customer_id, "
        "transaction_date FROM transactions WHERE transaction_date < TIMESTAMP ''2024-01-08''', "
        "'transaction_date')",
        output="arrow",
    ).sort_by("transaction_id")
    for frame in (spine, spine.to_pandas(), pl.from_arrow(spine)):
        got = store.get_training_features(["upload_cb:*"], entity_df=frame, output="arrow")
        assert got.sort_by("transaction_id").to_pylist() == expected.to_pylist()
        script = store.last_sql
        assert "uploaded by ADBC bulk ingest into temporary table _fstore_tmp_" in script
        assert script.splitlines()[-1].startswith("DROP TABLE IF EXISTS _fstore_tmp_")
        assert upload_tables(store) == []


def test_the_upload_is_dropped_after_a_failed_statement(store, spine, group):
    with pytest.raises(InvalidArgument, match="has no column 'nope'"):
        store.get_training_features(["upload_cb:*"], entity_df=spine, timestamp_column="nope")
    assert upload_tables(store) == []
    with pytest.raises(NotFound):
        store.get_training_features(["ghost_group:*"], entity_df=spine.to_pandas())
    # The failing statement is in last_sql, followed by the drop.
    assert store.last_sql.splitlines()[-1].startswith("DROP TABLE IF EXISTS")
    assert upload_tables(store) == []


def test_the_upload_is_dropped_after_a_failed_upload(store):
    # A frame without rows fails the ingest itself (the server refuses an ingest without data).
    empty = pa.table({"ts": pa.array([], pa.timestamp("us"))})
    with pytest.raises(InvalidArgument, match=r"without (any data|a command)"):
        temporal_split(empty, test_size=0.5, timestamp_column="ts", store=store)
    assert store.last_sql.splitlines()[-1].startswith("DROP TABLE IF EXISTS")
    assert upload_tables(store) == []


def test_a_split_returns_the_kind_of_frame_it_was_given(store, spine):
    for frame, kind in (
        (spine, pa.Table),
        (spine.to_pandas(), pd.DataFrame),
        (pl.from_arrow(spine), pl.DataFrame),
    ):
        train, test = temporal_split(
            frame, test_size=0.25, timestamp_column="transaction_date", store=store
        )
        assert isinstance(train, kind) and isinstance(test, kind)
        assert len(train) + len(test) == spine.num_rows
    assert upload_tables(store) == []


def test_results_as_pandas_arrow_and_polars(store):
    sql = "SELECT customer_category, count(*) AS n FROM transactions GROUP BY 1 ORDER BY 1"
    assert isinstance(store.sql(sql), pd.DataFrame)
    assert isinstance(store.sql(sql, output="arrow"), pa.Table)
    assert isinstance(store.sql(sql, output="polars"), pl.DataFrame)
    with pytest.raises(InvalidArgument):
        store.sql(sql, output="excel")


class FakeCursor:
    def __init__(self, log, fail_on):
        self.log, self.fail_on = log, fail_on

    def execute(self, sql, parameters=None):
        self.log.append(sql)
        if any(word in sql for word in self.fail_on):
            raise RuntimeError("INVALID_ARGUMENT: [FlightSQL] it failed (InvalidArgument; Prepare)")

    def fetch_arrow_table(self):
        return pa.table({"x": [1]})

    def adbc_ingest(self, name, data, mode, temporary=False):
        assert temporary, "uploads are temporary tables of the session"
        self.log.append(f"INGEST {name}")
        if "INGEST" in self.fail_on:
            raise RuntimeError("INVALID_ARGUMENT: [FlightSQL] bad batch (InvalidArgument; DoPut)")

    def close(self):
        pass


class FakeConnection:
    def __init__(self, fail_on=()):
        self.log, self.fail_on = [], fail_on

    def cursor(self):
        return FakeCursor(self.log, self.fail_on)


@pytest.mark.parametrize("fail_on", [(), ("SELECT",), ("INGEST",)])
def test_every_upload_is_followed_by_its_drop(fail_on):
    conn = FakeConnection(fail_on)
    session = Session(conn)
    call = session.begin()
    try:
        with session.uploaded(call, pa.table({"a": [1, 2]}), "data") as name:
            session.run(call, f"SELECT * FROM temporal_split('{name}', 0.5, 'a')")
    except FStoreError as e:
        assert "it failed" in str(e) or "bad batch" in str(e)
    assert conn.log[0].startswith(f"INGEST {TEMP_PREFIX}")
    assert conn.log[-1] == f"DROP TABLE IF EXISTS {conn.log[0][7:]}"


def test_a_failed_drop_warns_and_keeps_the_original_error():
    conn = FakeConnection(("SELECT", "DROP"))
    session = Session(conn)
    call = session.begin()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with (
            pytest.raises(InvalidArgument, match="it failed"),
            session.uploaded(call, pa.table({"a": [1]}), "data"),
        ):
            session.run(call, "SELECT 1")
    assert any("could not drop the upload table" in str(w.message) for w in caught)
