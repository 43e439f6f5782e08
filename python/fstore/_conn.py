"""The connection: one ADBC Flight SQL connection per store, and the statements of a call.

Everything the package sends goes through :class:`Session`: statements (recorded, run,
errors mapped to :class:`~fstore.errors.FStoreError`), and uploads of data frames by ADBC bulk
ingest into a table that is dropped when the work is done — also after an error.
"""

from __future__ import annotations

import contextlib
import threading
import uuid
import warnings
from collections.abc import Iterator
from typing import Any

import pyarrow as pa

from .errors import FStoreError, from_driver_error
from .frames import to_arrow
from .sql import Statement, identifier, relation_argument, render

__all__ = ["TEMP_PREFIX", "Call", "Session"]

TEMP_PREFIX = "_fstore_tmp_"
"""Names of the tables that hold uploaded frames start with this."""


class Call:
    """The statements one public call ran, in order (its ``sql``)."""

    def __init__(self) -> None:
        self.statements: list[Statement] = []

    @property
    def sql(self) -> str:
        """The statements as one SQL script."""
        return render(self.statements)


class Session:
    """One ADBC connection, reused by every call of a store (thread-safe: one call at a time)."""

    def __init__(self, connection: Any) -> None:
        self._conn = connection
        self._lock = threading.RLock()
        self.last_call = Call()
        self.history: list[Statement] = []
        self.echo = False

    def begin(self) -> Call:
        """Starts recording a new call; ``last_call`` is that call from now on."""
        call = Call()
        self.last_call = call
        return call

    def _record(self, call: Call, statement: Statement) -> None:
        call.statements.append(statement)
        self.history.append(statement)
        if self.echo:
            print(render([statement]), flush=True)

    def run(
        self,
        call: Call,
        sql: str,
        parameters: tuple[Any, ...] | pa.RecordBatch | None = None,
        note: str | None = None,
        *,
        shown: str | None = None,
    ) -> pa.Table:
        """Runs one statement (binding ``parameters``: one row, or a record batch of rows) and
        returns its rows (an empty table for commands without rows).

        ``shown`` is the statement as recorded and put in errors, when it differs from what is
        sent (secrets masked)."""
        text = shown if shown is not None else sql
        if isinstance(parameters, pa.RecordBatch):
            bound = f"{parameters.num_rows} parameter row(s) bound as an Arrow record batch"
            note = f"{note}\n{bound}" if note else bound
            self._record(call, Statement(text, (), note))
        else:
            self._record(call, Statement(text, tuple(parameters or ()), note))
        with self._lock:
            try:
                cursor = self._conn.cursor()
            except Exception as e:
                raise _mapped(e, text) from None
            try:
                cursor.execute(sql, parameters if parameters else None)
                table = cursor.fetch_arrow_table()
            except Exception as e:
                raise _mapped(e, text) from None
            finally:
                with contextlib.suppress(Exception):
                    cursor.close()
        assert isinstance(table, pa.Table)
        return table

    @contextlib.contextmanager
    def uploaded(self, call: Call, data: object, what: str) -> Iterator[str]:
        """A name the server can read ``data`` by, for the duration of the ``with`` block.

        A ``str`` is already such a name (a table, view or feature group) or a query text, and
        is used as it is (a name holding whitespace as ``SELECT * FROM "name"``). A frame
        (pandas, Polars, Arrow) is uploaded by ADBC bulk ingest into a new temporary table of
        this connection's server session, ``_fstore_tmp_<random>`` (held in the server's memory,
        seen by this session only, no privilege needed, nothing written to the warehouse),
        dropped when the block ends, whether it ends normally or by an error.
        """
        if isinstance(data, str):
            yield relation_argument(data)
            return
        table = to_arrow(data)
        name = TEMP_PREFIX + uuid.uuid4().hex[:16]
        self._record(
            call,
            Statement(
                "",
                (),
                f"{what}: {table.num_rows:,} rows uploaded by ADBC bulk ingest into temporary "
                f"table {name} (cursor.adbc_ingest({name!r}, data, mode='create', "
                "temporary=True))",
            ),
        )
        try:
            with self._lock:
                cursor = self._conn.cursor()
                try:
                    cursor.adbc_ingest(name, table, mode="create", temporary=True)
                except Exception as e:
                    raise _mapped(e, f"-- bulk ingest into {name}") from None
                finally:
                    with contextlib.suppress(Exception):
                        cursor.close()
            yield name
        finally:
            self._drop(call, name)

    def _drop(self, call: Call, name: str) -> None:
        """Drops an upload table; a failure is a warning, never hides the call's own error."""
        try:
            self.run(call, f"DROP TABLE IF EXISTS {identifier(name)}", note="the upload is dropped")
        except FStoreError as e:
            warnings.warn(
                f"fstore: could not drop the upload table {name}: {e}", RuntimeWarning, stacklevel=3
            )

    def close(self) -> None:
        """Closes the connection."""
        with self._lock:
            self._conn.close()


def _mapped(error: Exception, sql: str) -> FStoreError:
    return from_driver_error(error, sql)
