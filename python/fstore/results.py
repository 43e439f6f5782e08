"""What the calls return: small typed records, each with the SQL that produced it.

Every result carries ``sql``, the statements the call ran (as one script, with comments), so
that what a call did can be read, learned and run again in any Flight SQL client. Results that
are rows (a correlation table, a validation or drift report) keep the server's Arrow table and
convert it on request with ``to_pandas()``, ``to_arrow()`` and ``to_polars()``.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, overload

import pyarrow as pa
import pyarrow.compute as pc

from .frames import to_pandas, to_polars

if TYPE_CHECKING:
    import pandas
    import polars

__all__ = [
    "CorrelationMatrix",
    "DriftBaseline",
    "DriftReport",
    "ExportResult",
    "ExportedFile",
    "FeatureGroup",
    "FeatureSelection",
    "FeatureSet",
    "Monitor",
    "OnlineServing",
    "Rows",
    "Transformation",
    "ValidationReport",
]


@dataclass(frozen=True)
class Rows:
    """Rows the server returned, as an Arrow table, with the SQL that returned them."""

    table: pa.Table = field(repr=False)
    sql: str = field(repr=False)

    def to_arrow(self) -> pa.Table:
        """The rows as the server sent them (a ``pyarrow.Table``)."""
        return self.table

    def to_pandas(self) -> pandas.DataFrame:
        """The rows as a pandas DataFrame."""
        return to_pandas(self.table)

    def to_polars(self) -> polars.DataFrame:
        """The rows as a Polars DataFrame."""
        return to_polars(self.table)

    def __len__(self) -> int:
        return int(self.table.num_rows)

    def column(self, name: str) -> list[Any]:
        """One column's values as a Python list."""
        return list(self.table.column(name).to_pylist())


@dataclass(frozen=True)
class FeatureGroup:
    """A feature group as defined by :meth:`FeatureStore.create_feature_group`.

    ``entity`` holds the key columns, ``features`` the output columns in order (window
    features first, then the per-event columns).
    """

    name: str
    entity: tuple[str, ...]
    timestamp_column: str
    source: str
    features: tuple[str, ...]
    sql: str = field(repr=False)


@dataclass(frozen=True)
class Transformation:
    """An encoder or scaler added to a feature group (``ALTER FEATURE GROUP … ADD
    TRANSFORMATION``): it reads ``feature`` and writes the new column ``output_column``."""

    feature_group: str
    feature: str
    method: str
    output_column: str
    sql: str = field(repr=False)


@dataclass(frozen=True)
class CorrelationMatrix(Rows):
    """``feature_correlation``: one row per pair of numeric features (``feature_a``,
    ``feature_b``, ``correlation``); :meth:`matrix` gives the square form."""

    feature_group: str = ""
    method: str = "pearson"

    def matrix(self) -> pandas.DataFrame:
        """The symmetric correlation matrix (pandas), 1.0 on the diagonal, NaN where the
        server's correlation is NULL."""
        import pandas

        rows = self.table.to_pylist()
        names: list[str] = []
        for r in rows:
            for n in (r["feature_a"], r["feature_b"]):
                if n not in names:
                    names.append(n)
        m = pandas.DataFrame(float("nan"), index=names, columns=names, dtype="float64")
        for n in names:
            m.loc[n, n] = 1.0
        for r in rows:
            value = float("nan") if r["correlation"] is None else float(r["correlation"])
            m.loc[r["feature_a"], r["feature_b"]] = value
            m.loc[r["feature_b"], r["feature_a"]] = value
        result: pandas.DataFrame = m
        return result


@dataclass(frozen=True)
class FeatureSelection(Rows, Sequence[str]):
    """``select_features``: the selected features, best first (``feature``, ``score``,
    ``rank``).

    It is a sequence of the features' names, and
    :meth:`FeatureStore.create_feature_set` takes it as the set's features (qualified with
    ``feature_group``).
    """

    feature_group: str = ""
    target: str | None = None
    method: str = "mutual_info"

    @property
    def features(self) -> list[str]:
        """The selected features' names, best first."""
        return [str(f) for f in self.table.column("feature").to_pylist()]

    @property
    def scores(self) -> dict[str, float | None]:
        """Each selected feature's score."""
        return dict(zip(self.features, self.table.column("score").to_pylist(), strict=True))

    def qualified(self) -> list[str]:
        """The features as ``group.feature`` (the form a feature set lists)."""
        return [f"{self.feature_group}.{f}" for f in self.features]

    @overload
    def __getitem__(self, index: int) -> str: ...

    @overload
    def __getitem__(self, index: slice) -> Sequence[str]: ...

    def __getitem__(self, index: int | slice) -> str | Sequence[str]:
        return self.features[index]

    def __iter__(self) -> Iterator[str]:
        return iter(self.features)

    def __len__(self) -> int:
        return int(self.table.num_rows)

    def __contains__(self, item: object) -> bool:
        return item in self.features


@dataclass(frozen=True)
class FeatureSet:
    """A version of a feature set. ``id`` (``"name@version"``) names exactly this version
    wherever the package takes a feature set."""

    name: str
    version: int
    features: tuple[str, ...]
    metadata: dict[str, str]
    tags: tuple[str, ...] = ()
    description: str | None = None
    sql: str = field(default="", repr=False)

    @property
    def id(self) -> str:
        """``"name@version"``: this version of the set."""
        return f"{self.name}@{self.version}"

    def __str__(self) -> str:
        return self.id


@dataclass(frozen=True)
class ExportedFile:
    """One file written by ``EXPORT FEATURE SET``."""

    file: str
    rows: int
    bytes: int


@dataclass(frozen=True)
class ExportResult:
    """The files an export wrote (``EXPORT FEATURE SET``)."""

    feature_set: str
    files: tuple[ExportedFile, ...]
    sql: str = field(repr=False)

    @property
    def rows(self) -> int:
        """Rows written, over every file."""
        return sum(f.rows for f in self.files)


@dataclass(frozen=True)
class ValidationReport(Rows):
    """``validate``: one row per feature and expectation (``feature``, ``expectation``,
    ``expected``, ``observed``, ``passed``, ``rows_checked``)."""

    feature_set: str = ""

    @property
    def passed(self) -> bool:
        """Whether every expectation that was checked passed (``NULL`` rows — nothing
        checked — do not fail)."""
        return not self.failures().num_rows

    def failures(self) -> pa.Table:
        """The rows whose expectation failed."""
        passed = self.table.column("passed")
        return self.table.filter(pc.equal(passed, pa.scalar(False)))


@dataclass(frozen=True)
class DriftBaseline:
    """A drift baseline stored for a feature-set version (``SET DRIFT BASELINE``)."""

    feature_set: str
    start_date: str
    end_date: str
    sql: str = field(repr=False)


@dataclass(frozen=True)
class DriftReport(Rows):
    """``check_drift``: one row per feature (``feature``, ``method``, ``statistic``,
    ``p_value``, ``threshold``, ``drifted``, ``note``)."""

    feature_set: str = ""
    method: str = "ks_test"

    @property
    def drifted(self) -> list[str]:
        """The features that drifted."""
        rows = self.table.filter(pc.equal(self.table.column("drifted"), pa.scalar(True)))
        return [str(f) for f in rows.column("feature").to_pylist()]


@dataclass(frozen=True)
class OnlineServing:
    """A feature set served online (``ALTER FEATURE SET … SET ONLINE``), with the
    materialization run now when there was one (``REFRESH ONLINE FEATURE SET``)."""

    feature_set: str
    update_frequency: str | None
    cache_ttl: str | None
    materialized_rows: int | None
    sql: str = field(repr=False)


@dataclass(frozen=True)
class Monitor:
    """A feature monitor on the server (``CREATE MONITOR``)."""

    name: str
    feature_set: str
    metrics: tuple[str, ...]
    frequency: str
    sql: str = field(repr=False)
