"""Monitoring: drift against a stored baseline, and scheduled feature monitors with alerts.

- :class:`DriftMonitor` stores a baseline of a feature-set version (``SET DRIFT BASELINE``) and
  compares current data with it (``check_drift``: KS, PSI, chi-square, Wasserstein).
- :class:`FeatureMonitor` creates a scheduled monitor on the server (``CREATE MONITOR … EVERY
  … METRICS (…) ALERT TO …``). Monitors are issue 15 of the server: on a server without them,
  the calls raise :class:`~fstore.errors.ServerFeatureMissing`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from .errors import InvalidArgument
from .results import DriftBaseline, DriftReport, Monitor
from .sql import duration, identifier, literal
from .store import (
    FeatureStore,
    SetRef,
    current_store,
    monitoring_statement,
    set_argument,
    set_parts,
    set_statement_ref,
    time_text,
)

__all__ = ["DRIFT_METHODS", "DriftMonitor", "FeatureMonitor", "Metric"]

DRIFT_METHODS = ("ks_test", "psi", "chi2", "wasserstein")
"""The drift tests ``check_drift`` runs."""


class DriftMonitor:
    """Drift of current data against a baseline of a feature-set version (``store`` defaults to
    the store created last). :meth:`check_drift` without ``feature_set`` checks the set of the
    last :meth:`set_baseline`."""

    def __init__(self, store: FeatureStore | None = None) -> None:
        self._store = store
        self.feature_set: SetRef | None = None

    @property
    def store(self) -> FeatureStore:
        """The store this monitor runs on."""
        return self._store if self._store is not None else current_store()

    def set_baseline(
        self, feature_set: SetRef, start_date: object, end_date: object
    ) -> DriftBaseline:
        """Stores the distribution of every feature of the set over ``[start_date, end_date]``
        as its baseline (``SET DRIFT BASELINE FOR FEATURE SET … FROM … TO …``; a bare-date end
        includes that whole day), replacing an earlier one of the same version."""
        store = self.store
        call = store._begin()
        start = time_text(start_date, "start_date")
        end = time_text(end_date, "end_date")
        store._session.run(
            call,
            f"SET DRIFT BASELINE FOR FEATURE SET {set_statement_ref(feature_set)}\n"
            f"  FROM {literal(start)} TO {literal(end)}",
        )
        self.feature_set = feature_set
        return DriftBaseline(str(feature_set), start, end, call.sql)

    def check_drift(
        self,
        current_data: object,
        method: str = "ks_test",
        threshold: float | None = None,
        feature_set: SetRef | None = None,
    ) -> DriftReport:
        """Compares ``current_data`` with the baseline, feature by feature (``SELECT * FROM
        check_drift('set@n', current, 'method', threshold)``).

        ``current_data``: a frame with the set's features as columns (uploaded for the check,
        then dropped), or a table, view, feature group or query text. ``method``: ``ks_test``
        (drifted when p < threshold), ``psi``, ``chi2`` or ``wasserstein`` (threshold in the
        feature's unit, required).
        """
        if method not in DRIFT_METHODS:
            raise InvalidArgument(
                f"unknown drift method {method!r}; use {', '.join(DRIFT_METHODS)}"
            )
        target = feature_set if feature_set is not None else self.feature_set
        if target is None:
            raise InvalidArgument(
                "check_drift: which feature set? call set_baseline(...) first or give feature_set="
            )
        if threshold is not None and (isinstance(threshold, bool) or threshold < 0):
            raise InvalidArgument(f"threshold must be a non-negative number, got {threshold!r}")
        store = self.store
        call = store._begin()
        with store._session.uploaded(call, current_data, "current_data") as relation:
            args = [set_argument(target), literal(relation), literal(method)]
            if threshold is not None:
                args.append(literal(float(threshold)))
            table = store._session.run(call, f"SELECT * FROM check_drift({', '.join(args)})")
        return DriftReport(table, call.sql, feature_set=str(target), method=method)


@dataclass(frozen=True)
class Metric:
    """One metric of a monitor: ``name[(feature)] op threshold``, alerting ``alert_channel``."""

    name: str
    threshold: float | int | str
    alert_channel: str | None = None
    feature: str | None = None
    op: str = ">"

    def sql(self) -> str:
        """The metric as written in ``METRICS (…)``: ``missing_values > 0.05``."""
        subject = self.name if self.feature is None else f"{self.name}({identifier(self.feature)})"
        if isinstance(self.threshold, str):
            value = literal(duration(self.threshold))
        else:
            value = literal(self.threshold)
        return f"{subject} {self.op} {value}"


_FREQUENCY = re.compile(r"^\s*(\d+)\s*([a-z]+)\s*$", re.IGNORECASE)


class FeatureMonitor:
    """A scheduled monitor of a feature set's metrics, with alerts (``store`` defaults to the
    store created last).

    Add metrics with :meth:`add_metric`, then :meth:`start_monitoring` creates the monitor on
    the server: ``CREATE MONITOR <set>_monitor ON FEATURE SET … EVERY '1 hour' METRICS
    (missing_values > 0.05) ALERT TO slack``.
    """

    def __init__(self, store: FeatureStore | None = None) -> None:
        self._store = store
        self.metrics: list[Metric] = []
        self.monitor: Monitor | None = None

    @property
    def store(self) -> FeatureStore:
        """The store this monitor runs on."""
        return self._store if self._store is not None else current_store()

    def add_metric(
        self,
        metric: str,
        threshold: float | int | str,
        alert_channel: str | None = None,
        *,
        feature: str | None = None,
        op: str = ">",
    ) -> Metric:
        """Adds a metric: alert when ``metric [op] threshold`` (``missing_values > 0.05``).

        Metrics of the server: ``missing_values``, ``row_count``, ``freshness`` (a duration),
        ``expectations_failed``, ``online_staleness``, ``drift``, ``psi``; ``feature`` limits
        one to a feature. ``alert_channel`` names a channel created with
        :meth:`FeatureStore.create_alert_channel`.
        """
        if not re.fullmatch(r"[a-z_][a-z0-9_]*", metric):
            raise InvalidArgument(f"metric {metric!r}: a metric is a lower-case name")
        if op not in (">", ">=", "<", "<="):
            raise InvalidArgument(f"op must be one of >, >=, <, <=; got {op!r}")
        if isinstance(threshold, bool) or not isinstance(threshold, (int, float, str)):
            raise InvalidArgument(f"threshold must be a number or a duration, got {threshold!r}")
        m = Metric(metric, threshold, alert_channel, feature, op)
        m.sql()
        self.metrics.append(m)
        return m

    def start_monitoring(
        self, feature_set: SetRef, frequency: str = "1h", *, name: str | None = None
    ) -> Monitor:
        """Creates the monitor on the server, run every ``frequency`` (``"1h"`` → ``EVERY
        '1 hour'``); its name defaults to ``<set>_monitor``."""
        if not self.metrics:
            raise InvalidArgument("start_monitoring: add a metric first (add_metric)")
        set_name, _ = set_parts(feature_set)
        monitor = name or f"{set_name}_monitor"
        every = duration(frequency)
        channels = list(dict.fromkeys(m.alert_channel for m in self.metrics if m.alert_channel))
        target = set_statement_ref(feature_set)
        sql = (
            f"CREATE MONITOR {identifier(monitor)} ON FEATURE SET {target}\n"
            f"  EVERY {literal(every)}\n"
            f"  METRICS ({', '.join(m.sql() for m in self.metrics)})"
        )
        if channels:
            sql += f"\n  ALERT TO {', '.join(identifier(c) for c in channels)}"
        store = self.store
        call = store._begin()
        with monitoring_statement(call, "MONITOR"):
            store._session.run(call, sql)
        self.monitor = Monitor(
            monitor, str(feature_set), tuple(m.sql() for m in self.metrics), every, call.sql
        )
        return self.monitor

    def run_now(self) -> str:
        """Runs the monitor once now (``RUN MONITOR``); returns the SQL."""
        return self._statement("RUN MONITOR")

    def stop_monitoring(self) -> str:
        """Drops the monitor (``DROP MONITOR``); returns the SQL."""
        sql = self._statement("DROP MONITOR")
        self.monitor = None
        return sql

    def _statement(self, verb: str) -> str:
        if self.monitor is None:
            raise InvalidArgument("no monitor: call start_monitoring(...) first")
        store = self.store
        call = store._begin()
        with monitoring_statement(call, "MONITOR"):
            store._session.run(call, f"{verb} {identifier(self.monitor.name)}")
        return call.sql
