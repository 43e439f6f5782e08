"""Monitoring: drift against a stored baseline, and scheduled feature monitors with alerts.

- :class:`DriftMonitor` stores a baseline of a feature-set version (``SET DRIFT BASELINE``) and
  compares current data with it (``check_drift``: KS, PSI, chi-square, Wasserstein).
- :class:`FeatureMonitor` creates a scheduled monitor on the server (``CREATE MONITOR … EVERY
  … METRICS (…) ALERT TO …``). Monitors are issue 15 of the server: on a server without them,
  the calls raise :class:`~fstore.errors.ServerFeatureMissing`.
"""

from __future__ import annotations

from dataclasses import dataclass

from .errors import InvalidArgument
from .results import DriftBaseline, DriftReport, Monitor, Rows
from .sql import duration, feature_ref, identifier, literal
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

__all__ = ["DRIFT_METHODS", "METRICS", "DriftMonitor", "FeatureMonitor", "Metric"]

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
    """One metric of a monitor: ``name[(feature[, 'method'])] op threshold``, alerting
    ``alert_channel``."""

    name: str
    threshold: float | int | str
    alert_channel: str | None = None
    feature: str | None = None
    op: str = ">"
    method: str | None = None

    def sql(self) -> str:
        """The metric as written in ``METRICS (…)``: ``missing_values > 0.05``,
        ``drift(amount, 'ks_test') > 0.1``, ``freshness > '2 hours'``."""
        args = []
        if self.feature is not None:
            args.append(feature_ref(self.feature))
        if self.method is not None:
            args.append(literal(self.method))
        subject = self.name + (f"({', '.join(args)})" if args else "")
        if isinstance(self.threshold, str):
            value = literal(duration(self.threshold))
        else:
            value = literal(self.threshold)
        return f"{subject} {self.op} {value}"


METRICS = (
    "missing_values",
    "drift",
    "psi",
    "freshness",
    "row_count",
    "expectations_failed",
    "online_staleness",
)
"""The metrics a monitor of the server measures."""


class FeatureMonitor:
    """A scheduled monitor of a feature set's metrics, with alerts (``store`` defaults to the
    store created last).

    Add metrics with :meth:`add_metric`, then :meth:`start_monitoring` creates the monitor on
    the server: ``CREATE MONITOR <set>_monitor ON FEATURE SET … EVERY '1 hour' METRICS
    (missing_values > 0.05) ALERT TO slack``. The server runs it on its schedule, records every
    value in ``fstore.monitor_runs`` and alerts the channels when a metric crosses its
    threshold (and again when it recovers).
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
        method: str | None = None,
        op: str = ">",
    ) -> Metric:
        """Adds a metric: alert when ``metric op threshold`` (``missing_values > 0.05``).

        Metrics: ``missing_values`` (NULL fraction, on every feature unless ``feature`` names
        one), ``drift`` / ``psi`` (against the set's drift baseline; ``method`` such as
        ``'ks_test'``), ``freshness`` and ``online_staleness`` (durations: ``"2h"``),
        ``row_count``, ``expectations_failed``. ``alert_channel`` names a channel created with
        :meth:`FeatureStore.create_alert_channel`.
        """
        if metric not in METRICS:
            raise InvalidArgument(f"unknown metric {metric!r}; metrics: {', '.join(METRICS)}")
        if op not in (">", ">=", "<", "<="):
            raise InvalidArgument(f"op must be one of >, >=, <, <=; got {op!r}")
        if isinstance(threshold, bool) or not isinstance(threshold, (int, float, str)):
            raise InvalidArgument(f"threshold must be a number or a duration, got {threshold!r}")
        m = Metric(metric, threshold, alert_channel, feature, op, method)
        m.sql()
        self.metrics.append(m)
        return m

    def start_monitoring(
        self,
        feature_set: SetRef,
        frequency: str = "1h",
        *,
        name: str | None = None,
        window: str | None = None,
        renotify_every: str | None = None,
        replace: bool = False,
    ) -> Monitor:
        """Creates the monitor on the server, run every ``frequency`` (``"1h"`` → ``EVERY
        '1 hour'``); its name defaults to ``<set>_monitor``.

        ``window``: the rows each run measures — a duration (the last hour: ``WINDOW '1
        hour'``), ``"since last run"``, or all rows (default). ``renotify_every``: how often an
        alert that stays open is sent again. ``replace=True`` writes ``CREATE OR REPLACE``.
        """
        if not self.metrics:
            raise InvalidArgument("start_monitoring: add a metric first (add_metric)")
        set_name, _ = set_parts(feature_set)
        monitor = name or f"{set_name}_monitor"
        every = duration(frequency)
        channels = list(dict.fromkeys(m.alert_channel for m in self.metrics if m.alert_channel))
        target = set_statement_ref(feature_set)
        lines = [
            f"CREATE {'OR REPLACE ' if replace else ''}MONITOR {identifier(monitor)} "
            f"ON FEATURE SET {target}",
            f"  EVERY {literal(every)}",
        ]
        if window is not None:
            if window.strip().lower() == "since last run":
                lines.append("  SINCE LAST RUN")
            else:
                lines.append(f"  WINDOW {literal(duration(window))}")
        lines.append(f"  METRICS ({', '.join(m.sql() for m in self.metrics)})")
        if channels:
            lines.append(f"  ALERT TO {', '.join(identifier(c) for c in channels)}")
        if renotify_every is not None:
            lines.append(f"  RENOTIFY EVERY {literal(duration(renotify_every))}")
        store = self.store
        call = store._begin()
        with monitoring_statement(call, "MONITOR"):
            store._session.run(call, "\n".join(lines))
        self.monitor = Monitor(
            monitor, str(feature_set), tuple(m.sql() for m in self.metrics), every, call.sql
        )
        return self.monitor

    def run_now(self, as_of: object = None) -> Rows:
        """Runs the monitor once now (``RUN MONITOR name [AS OF '…']``): one row per metric
        value, with its status."""
        sql = f"RUN MONITOR {identifier(self._name())}"
        if as_of is not None:
            sql += f" AS OF {literal(time_text(as_of, 'as_of'))}"
        return self._run(sql)

    def history(self) -> Rows:
        """Every kept run's values, oldest first (``SELECT * FROM monitor_history('name')``)."""
        return self._run(f"SELECT * FROM monitor_history({literal(self._name())})")

    def pause(self) -> Rows:
        """Stops the schedule without dropping the monitor (``ALTER MONITOR … PAUSE``)."""
        return self._run(f"ALTER MONITOR {identifier(self._name())} PAUSE")

    def resume(self) -> Rows:
        """Restarts the schedule (``ALTER MONITOR … RESUME``)."""
        return self._run(f"ALTER MONITOR {identifier(self._name())} RESUME")

    def stop_monitoring(self) -> Rows:
        """Drops the monitor (``DROP MONITOR``)."""
        rows = self._run(f"DROP MONITOR {identifier(self._name())}")
        self.monitor = None
        return rows

    def _name(self) -> str:
        if self.monitor is None:
            raise InvalidArgument("no monitor: call start_monitoring(...) first")
        return self.monitor.name

    def _run(self, sql: str) -> Rows:
        store = self.store
        call = store._begin()
        with monitoring_statement(call, "MONITOR"):
            table = store._session.run(call, sql)
        return Rows(table, call.sql)
