"""Feature transformations: windowed aggregates and encoders, as FStore SQL fragments.

- :class:`WindowAggregator` becomes window features of ``CREATE FEATURE GROUP`` —
  ``amount_mean_30d = mean(amount) WINDOW '30 days'`` — evaluated per event over the window
  (t − w, t].
- :class:`Encoder` becomes ``ALTER FEATURE GROUP … ADD TRANSFORMATION feature USING
  encoder(…)``, fitted once on the server and stored with the group.

Both only describe; :class:`fstore.FeatureStore` runs them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from .errors import InvalidArgument
from .sql import duration, duration_suffix, identifier, literal

__all__ = ["ENCODERS", "WINDOW_AGGREGATES", "Encoder", "WindowAggregator", "WindowFeature"]

WINDOW_AGGREGATES: dict[str, str] = {
    "mean": "mean",
    "avg": "mean",
    "sum": "sum",
    "count": "count",
    "count_distinct": "count_distinct",
    "min": "min",
    "max": "max",
    "stddev": "stddev",
    "std": "stddev",
    "last": "last",
}
"""The aggregates a window feature may use (aliases → FStore's name)."""

ENCODERS: dict[str, str] = {
    "target_encoding": "te",
    "one_hot": "onehot",
    "label": "label",
    "frequency": "freq",
    "hash": "hash",
    "standard": "std",
    "min_max": "minmax",
}
"""FStore's encoders and scalers, with the suffix of the column each one adds."""


@dataclass(frozen=True)
class WindowFeature:
    """One window feature: ``name = aggregate(column) WINDOW 'window'`` (``column`` None for
    ``count(*)``)."""

    name: str
    aggregate: str
    column: str | None
    window: str

    def sql(self) -> str:
        """The feature as it appears in a ``FEATURES (…)`` list."""
        argument = "*" if self.column is None else identifier(self.column)
        return (
            f"{identifier(self.name)} = {self.aggregate}({argument}) "
            f"WINDOW {literal(duration(self.window))}"
        )


@dataclass(frozen=True)
class WindowAggregator:
    """Aggregates of a source's columns over a sliding time window, per entity.

    ``WindowAggregator(window_size="30d", aggregations=["mean", "sum", "count"])`` applied to
    the guide's transactions gives ``amount_mean_30d = mean(amount) WINDOW '30 days'``,
    ``amount_sum_30d = sum(amount) WINDOW '30 days'`` and ``tx_count_30d = count(*) WINDOW
    '30 days'``:

    - ``columns``: the columns to aggregate; by default the source's floating-point and
      decimal columns other than the entity key and the timestamp (its measures: ``amount``);
    - ``count`` counts events (``count(*)``, rows with NULLs included), once, named
      ``<count_name>_<window>`` (``tx_count_30d``; ``tx``: the source's events);
      ``count_distinct`` counts distinct values of each column;
    - the other aggregates (``mean``, ``sum``, ``min``, ``max``, ``stddev``, ``last``) apply to
      each column, named ``<column>_<aggregate>_<window>``.
    """

    window_size: str
    aggregations: Sequence[str] = ("mean", "sum", "count")
    columns: Sequence[str] | None = None
    count_name: str = "tx_count"

    def __post_init__(self) -> None:
        duration(self.window_size)
        if isinstance(self.aggregations, str):
            raise InvalidArgument("aggregations must be a list of names, e.g. ['mean', 'count']")
        if not self.aggregations:
            raise InvalidArgument("aggregations needs at least one aggregate")
        for a in self.aggregations:
            if a not in WINDOW_AGGREGATES:
                raise InvalidArgument(
                    f"unknown window aggregate {a!r}; use one of {', '.join(WINDOW_AGGREGATES)}"
                )
        if isinstance(self.columns, str):
            raise InvalidArgument("columns must be a list of column names")

    def features(self, measures: Sequence[str]) -> list[WindowFeature]:
        """The window features over ``measures`` (used when ``columns`` is not given)."""
        columns = list(self.columns) if self.columns is not None else list(measures)
        suffix = duration_suffix(self.window_size)
        out: list[WindowFeature] = []
        for a in self.aggregations:
            aggregate = WINDOW_AGGREGATES[a]
            if aggregate == "count":
                out.append(
                    WindowFeature(f"{self.count_name}_{suffix}", "count", None, self.window_size)
                )
                continue
            if not columns:
                raise InvalidArgument(
                    f"WindowAggregator: no column to compute {a} over: the source has no "
                    "floating-point or decimal column; name them with columns=[...]"
                )
            out.extend(
                WindowFeature(f"{c}_{a}_{suffix}", aggregate, c, self.window_size) for c in columns
            )
        return out


@dataclass(frozen=True)
class Encoder:
    """An encoder or scaler of one feature, fitted once on the server
    (``ALTER FEATURE GROUP … ADD TRANSFORMATION feature USING method(…)``).

    ``method``: ``target_encoding``, ``one_hot``, ``label``, ``frequency``, ``hash``,
    ``standard`` or ``min_max``. ``target`` is target encoding's label column; left out, it is
    the group source's label: its one integer or boolean column that is not an identifier
    (``conversion`` in the guide). ``params`` are the encoder's other arguments
    (``smoothing``, ``buckets``); ``output`` names the new column (default
    ``<feature>_<suffix>``, e.g. ``customer_category_te``).
    """

    method: str
    target: str | None = None
    params: Mapping[str, float | int | str] = field(default_factory=dict)
    output: str | None = None

    def __post_init__(self) -> None:
        if self.method not in ENCODERS:
            raise InvalidArgument(
                f"unknown encoder {self.method!r}; use one of {', '.join(ENCODERS)}"
            )
        if self.target is not None and self.method != "target_encoding":
            raise InvalidArgument(f"{self.method} takes no target (only target_encoding does)")

    def output_column(self, feature: str) -> str:
        """The name of the column the encoder adds to the group."""
        return self.output or f"{feature}_{ENCODERS[self.method]}"

    def using(self, target: str | None) -> str:
        """The ``USING …`` clause: ``target_encoding(target => "conversion")``."""
        args: list[str] = []
        if self.method == "target_encoding":
            if target is None:
                raise InvalidArgument("target_encoding needs the label column: Encoder(target=...)")
            args.append(f"target => {identifier(target)}")
        for key, value in self.params.items():
            if not key.isidentifier():
                raise InvalidArgument(f"encoder parameter {key!r} is not a name")
            args.append(f"{key} => {literal(value)}")
        return f"{self.method}({', '.join(args)})"
