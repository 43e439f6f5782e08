"""Utilities over training data: the temporal train/test split.

``temporal_split`` is the server's ``temporal_split`` table function: the cut is a time, so
no training row is later than any test row.
"""

from __future__ import annotations

from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from .errors import InvalidArgument
from .frames import Output, check_output, convert, is_frame, output_of
from .sql import literal
from .store import FeatureStore, current_store

__all__ = ["temporal_split"]


def temporal_split(
    data: object,
    test_size: float = 0.2,
    timestamp_column: str | None = None,
    *,
    store: FeatureStore | None = None,
    output: Output | None = None,
) -> tuple[Any, Any]:
    """Splits ``data`` into ``(train, test)`` by time (``SELECT * FROM temporal_split(…)``).

    The latest ``test_size`` fraction of rows by ``timestamp_column`` (plus every row tied with
    them at the cut) is the test set. ``data`` is a frame (uploaded for the query, then
    dropped) or a table, view, feature group or query text on the server. Both parts come back
    as the kind of frame given (pandas for a name, unless ``output`` says). Rows with a NULL
    time are in neither part.
    """
    if isinstance(test_size, bool) or not isinstance(test_size, (int, float)):
        raise InvalidArgument(f"test_size must be a number between 0 and 1, got {test_size!r}")
    if not 0 <= float(test_size) < 1:
        raise InvalidArgument(f"test_size must be between 0 and 1, got {test_size!r}")
    store = store if store is not None else current_store()
    if not isinstance(data, str) and not is_frame(data):
        raise InvalidArgument(
            "temporal_split takes a frame (pandas, Polars, Arrow) or a table name or query text"
        )
    if timestamp_column is None:
        timestamp_column = FeatureStore._frame_timestamp(data, "data")
    kind = check_output(output) if output is not None else output_of(data, store.output)
    call = store._begin()
    with store._session.uploaded(call, data, "data") as relation:
        table = store._session.run(
            call,
            f"SELECT * FROM temporal_split({literal(relation)}, {literal(float(test_size))}, "
            f"{literal(timestamp_column)})",
        )
    split = table.column("split")
    rest = table.drop_columns(["split"])
    train = rest.filter(pc.equal(split, pa.scalar("train")))
    test = rest.filter(pc.equal(split, pa.scalar("test")))
    return convert(train, kind), convert(test, kind)
