"""Data quality: expectations on features, and validation of a feature set against them.

Expectations live on the server (``CREATE EXPECTATION``), attached to a feature of a feature
group, so every feature set that reads the feature is checked against them; ``validate``
computes all of a group's expectations in one pass.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from .errors import InvalidArgument
from .results import ValidationReport
from .sql import Literal, feature_ref, identifier, literal
from .store import FeatureStore, SetRef, current_store, set_argument, time_text

__all__ = ["EXPECTATIONS", "FeatureValidator"]

EXPECTATIONS = ("min_value", "max_value", "null_percentage", "allowed_values", "unique")
"""The expectations the server checks."""


class FeatureValidator:
    """Expectations on features and validation of feature sets (``store`` defaults to the store
    created last)."""

    def __init__(self, store: FeatureStore | None = None) -> None:
        self._store = store
        self.sql: list[str] = []

    @property
    def store(self) -> FeatureStore:
        """The store this validator runs on."""
        return self._store if self._store is not None else current_store()

    def add_expectation(
        self, feature: str, expectations: Mapping[str, Literal | Sequence[Literal]]
    ) -> str:
        """Sets expectations on a feature (``CREATE EXPECTATION ON FEATURE [group.]feature
        (min_value = 0, …)``), replacing those of the same names; returns the SQL.

        ``feature``: ``"group.feature"``, or a bare name that only one group has.
        ``expectations``: ``min_value``, ``max_value`` (numbers), ``null_percentage`` (0 to
        1), ``allowed_values`` (a list), ``unique`` (bool).
        """
        if not expectations:
            raise InvalidArgument("add_expectation needs at least one expectation")
        pairs = []
        for name, value in expectations.items():
            if name not in EXPECTATIONS:
                raise InvalidArgument(
                    f"unknown expectation {name!r}; expectations: {', '.join(EXPECTATIONS)}"
                )
            if name == "allowed_values" and isinstance(value, (list, tuple, set, frozenset)):
                value = (
                    sorted(value, key=str) if isinstance(value, (set, frozenset)) else list(value)
                )
            pairs.append(f"{identifier(name)} = {literal(value)}")
        store = self.store
        call = store._begin()
        sql = f"CREATE EXPECTATION ON FEATURE {feature_ref(feature)}\n  ({', '.join(pairs)})"
        store._session.run(call, sql)
        self.sql.append(call.sql)
        return call.sql

    def drop_expectation(self, feature: str, names: Sequence[str] = ()) -> str:
        """Drops the named expectations of a feature, or all of them (``DROP EXPECTATION``)."""
        store = self.store
        call = store._begin()
        sql = f"DROP EXPECTATION IF EXISTS ON FEATURE {feature_ref(feature)}"
        if names:
            sql += f" ({', '.join(identifier(n) for n in names)})"
        store._session.run(call, sql)
        return call.sql

    def validate_features(
        self, feature_set: SetRef, start: object = None, end: object = None
    ) -> ValidationReport:
        """Checks every expectation of every feature of a feature-set version (``SELECT * FROM
        validate('set@n'[, start, end])``), over the rows with ``start <= t < end`` when given.
        """
        store = self.store
        call = store._begin()
        args = [set_argument(feature_set)]
        if start is not None or end is not None:
            if start is None:
                raise InvalidArgument("validate_features: end needs a start too")
            args.append(literal(time_text(start, "start")))
            if end is not None:
                args.append(literal(time_text(end, "end")))
        table = store._session.run(call, f"SELECT * FROM validate({', '.join(args)})")
        return ValidationReport(table, call.sql, feature_set=str(feature_set))
