"""Data frames in and out: pandas, Polars and Arrow, converted at the edge only.

Data going to the server (an ``entity_df``, ``current_data``) is turned into an Arrow table
once (:func:`to_arrow`); results come back from the server as Arrow and are handed to the user
as pandas (the default), Arrow or Polars (:func:`convert`). pandas and Polars are optional:
each is imported only when a frame of that kind is asked for or given.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Literal, TypeAlias

import pyarrow as pa

from .errors import InvalidArgument

if TYPE_CHECKING:
    import pandas
    import polars

__all__ = ["Frame", "Output", "convert", "is_frame", "output_of", "to_arrow"]

Output: TypeAlias = Literal["pandas", "arrow", "polars"]
"""The kinds of frame a result can be returned as."""

Frame: TypeAlias = "pandas.DataFrame | polars.DataFrame | pa.Table"
"""A data frame the package accepts or returns."""

OUTPUTS: tuple[str, ...] = ("pandas", "arrow", "polars")


def _module_name(obj: object) -> str:
    return type(obj).__module__.split(".")[0]


def is_frame(data: object) -> bool:
    """Whether ``data`` is a frame the package can upload (pandas, Polars or Arrow)."""
    if isinstance(data, (pa.Table, pa.RecordBatch, pa.RecordBatchReader)):
        return True
    module = _module_name(data)
    return (module == "pandas" and type(data).__name__ == "DataFrame") or (
        module == "polars" and type(data).__name__ in ("DataFrame", "LazyFrame")
    )


def to_arrow(data: object) -> pa.Table:
    """An Arrow table of a pandas, Polars or Arrow frame (pandas: without its index)."""
    if isinstance(data, pa.Table):
        return data
    if isinstance(data, pa.RecordBatch):
        return pa.Table.from_batches([data])
    if isinstance(data, pa.RecordBatchReader):
        return data.read_all()
    module = _module_name(data)
    if module == "pandas" and type(data).__name__ == "DataFrame":
        pandas_frame: Any = data
        return pa.Table.from_pandas(pandas_frame, preserve_index=False)
    if module == "polars":
        frame: Any = data
        if type(data).__name__ == "LazyFrame":
            frame = frame.collect()
        table = frame.to_arrow()
        if isinstance(table, pa.Table):
            return table
    raise InvalidArgument(
        f"expected a pandas DataFrame, a Polars DataFrame or a pyarrow Table, got "
        f"{type(data).__module__}.{type(data).__name__}"
    )


def output_of(data: object, default: Output) -> Output:
    """The output kind matching an input frame's kind (so a split returns what it was given)."""
    if isinstance(data, (pa.Table, pa.RecordBatch, pa.RecordBatchReader)):
        return "arrow"
    module = _module_name(data)
    if module == "pandas":
        return "pandas"
    if module == "polars":
        return "polars"
    return default


def check_output(output: str) -> Output:
    """``output`` if it names a kind of frame, else :class:`InvalidArgument`."""
    if output == "pandas":
        return "pandas"
    if output == "arrow":
        return "arrow"
    if output == "polars":
        return "polars"
    raise InvalidArgument(f"output must be one of {', '.join(OUTPUTS)}, got {output!r}")


def convert(table: pa.Table, output: Output) -> Any:
    """``table`` as the frame kind ``output`` names: pandas, Arrow (as is) or Polars."""
    if output == "arrow":
        return table
    if output == "pandas":
        return to_pandas(table)
    if output == "polars":
        return to_polars(table)
    raise InvalidArgument(f"output must be one of {', '.join(OUTPUTS)}, got {output!r}")


def to_pandas(table: pa.Table) -> pandas.DataFrame:
    """A pandas frame of an Arrow table (timestamps keep their unit)."""
    try:
        import pandas  # noqa: F401
    except ImportError as e:  # pragma: no cover - depends on the environment
        raise InvalidArgument(
            "pandas is not installed: pip install 'fstore[pandas]', or ask for output='arrow'"
        ) from e
    return table.to_pandas()


def to_polars(table: pa.Table) -> polars.DataFrame:
    """A Polars frame of an Arrow table."""
    try:
        import polars
    except ImportError as e:  # pragma: no cover - depends on the environment
        raise InvalidArgument(
            "polars is not installed: pip install 'fstore[polars]', or ask for output='arrow'"
        ) from e
    frame = polars.from_arrow(table)
    assert isinstance(frame, polars.DataFrame)
    return frame
