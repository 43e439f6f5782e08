"""A/B tests of feature sets.

Experiments are issue 16 of the FStore server (``CREATE EXPERIMENT … ARMS (…) METRICS (…)
DURATION …``, ``START EXPERIMENT``, ``experiment_results``), which does not exist yet. Until it
does, :class:`ABTest` raises :class:`~fstore.errors.ServerFeatureMissing` naming it, and never
emulates an experiment on the client.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import NoReturn

from .errors import InvalidArgument, ServerFeatureMissing
from .sql import duration, identifier, literal, parse_set_id
from .store import FeatureStore

__all__ = ["EXPERIMENTS", "ABTest"]

EXPERIMENTS = "A/B experiments: CREATE EXPERIMENT, issue 16"
"""The server feature :class:`ABTest` needs."""


class ABTest:
    """An A/B test between feature sets (``control``/``treatment`` arms), with metrics and a
    duration.

    The server has no experiments yet (issue 16): creating one raises
    :class:`~fstore.errors.ServerFeatureMissing`, whose message shows the statement the
    test would run (``sql``).
    """

    def __init__(
        self,
        name: str,
        feature_sets: Mapping[str, str],
        metrics: Sequence[str] = ("auc", "precision", "recall"),
        duration: str = "7d",
        *,
        store: FeatureStore | None = None,
    ) -> None:
        if not feature_sets:
            raise InvalidArgument("an A/B test needs feature_sets (arm → feature set)")
        self.name = name
        self.feature_sets = dict(feature_sets)
        self.metrics = list(metrics)
        self.duration = duration
        self.sql = self._create_sql()
        self._missing()

    def _create_sql(self) -> str:
        arms = []
        weight = 100 // len(self.feature_sets)
        for arm, feature_set in self.feature_sets.items():
            set_name, version = parse_set_id(feature_set)
            ref = identifier(set_name) + ("" if version is None else f" VERSION {version}")
            arms.append(f"{identifier(arm)} = {ref} WEIGHT {weight}")
        return (
            f"CREATE EXPERIMENT {identifier(self.name)}\n"
            f"  ARMS ({', '.join(arms)})\n"
            f"  METRICS ({', '.join(self.metrics)})\n"
            f"  DURATION {literal(duration(self.duration))}"
        )

    def _missing(self) -> NoReturn:
        raise ServerFeatureMissing(
            EXPERIMENTS,
            "the test would run (planned syntax of issue 16):\n" + self.sql,
            sql=self.sql,
        )

    def start(self) -> NoReturn:
        """Starts the test (``START EXPERIMENT``): not available before issue 16."""
        self._missing()

    def get_results(self) -> NoReturn:
        """The results per arm (``experiment_results``): not available before issue 16."""
        self._missing()
