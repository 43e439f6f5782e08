"""Feature analysis: correlations between features and feature selection by a target.

``FeatureSelector`` runs ``feature_correlation`` and ``select_features`` on the server, which
read the group's rows once and never move them to the client.
"""

from __future__ import annotations

from .errors import InvalidArgument
from .results import CorrelationMatrix, FeatureSelection
from .sql import literal, object_name
from .store import FeatureStore, current_store

__all__ = ["CORRELATION_METHODS", "SELECTION_METHODS", "FeatureSelector"]

CORRELATION_METHODS = ("pearson", "spearman")
"""The correlations ``feature_correlation`` computes."""

SELECTION_METHODS = ("mutual_info", "correlation", "chi2", "variance")
"""The scores ``select_features`` ranks features by."""


class FeatureSelector:
    """Correlation analysis and feature selection over a feature group (or a table, view or
    query text).

    ``store`` defaults to the store created last. After :meth:`correlation_analysis` of a
    group, :meth:`select_features` without ``feature_group`` selects among that group's
    features (else among the features of the group the store created last).
    """

    def __init__(self, store: FeatureStore | None = None) -> None:
        self._store = store
        self.feature_group: str | None = None

    @property
    def store(self) -> FeatureStore:
        """The store this selector runs on."""
        return self._store if self._store is not None else current_store()

    def correlation_analysis(
        self, feature_group: str, method: str = "pearson"
    ) -> CorrelationMatrix:
        """Every pair of numeric features with their correlation (``SELECT * FROM
        feature_correlation('group'[, 'spearman'])``): keys and the event time are never
        features; pairwise deletion of NULLs."""
        if method not in CORRELATION_METHODS:
            raise InvalidArgument(
                f"unknown correlation method {method!r}; use {', '.join(CORRELATION_METHODS)}"
            )
        store = self.store
        call = store._begin()
        args = [literal(object_name(feature_group, "feature_group"))]
        if method != "pearson":
            args.append(literal(method))
        table = store._session.run(call, f"SELECT * FROM feature_correlation({', '.join(args)})")
        self.feature_group = feature_group
        return CorrelationMatrix(table, call.sql, feature_group=feature_group, method=method)

    def select_features(
        self,
        method: str = "mutual_info",
        target: str | None = None,
        top_k: int | None = None,
        feature_group: str | None = None,
    ) -> FeatureSelection:
        """The ``top_k`` features most related to ``target``, best first (``SELECT * FROM
        select_features('group', 'target', 'method', k)``).

        ``method``: ``mutual_info`` (a discrete target), ``correlation``, ``chi2`` or
        ``variance`` (no target). The target may be a column of the group's source (the label
        of its events) rather than a feature; it is never a candidate. The result can be given
        to :meth:`FeatureStore.create_feature_set` as its features.
        """
        if method not in SELECTION_METHODS:
            raise InvalidArgument(
                f"unknown selection method {method!r}; use {', '.join(SELECTION_METHODS)}"
            )
        if top_k is not None and (
            isinstance(top_k, bool) or not isinstance(top_k, int) or top_k < 1
        ):
            raise InvalidArgument(f"top_k must be a positive integer, got {top_k!r}")
        store = self.store
        group = feature_group or self.feature_group or store._current_group
        if group is None:
            raise InvalidArgument(
                "select_features: which feature group? run correlation_analysis(feature_group=...)"
                " first or give feature_group="
            )
        call = store._begin()
        args = [
            literal(object_name(group, "feature_group")),
            literal(target),
            literal(method),
        ]
        if top_k is not None:
            args.append(literal(top_k))
        table = store._session.run(call, f"SELECT * FROM select_features({', '.join(args)})")
        self.feature_group = group
        return FeatureSelection(table, call.sql, feature_group=group, target=target, method=method)
