"""Differential tests of FStore's statistics UDFs against SciPy and NumPy, at scale.

The `fstore` binary (FSTORE_BIN, default target/debug/fstore) runs the SQL; NumPy generates
the data, which pyarrow writes to Parquet and FStore reads with CREATE EXTERNAL TABLE.

- ks_statistic / ks_pvalue vs scipy.stats.ks_2samp(method='auto', alternative='two-sided'):
  statistic within 1e-9; p-value within 1e-9 absolute (the documented tolerance), on
  1,000,000-value samples (asymptotic method), on heavily tied data, and on samples small
  enough for SciPy's exact method (500 vs 700, 1000 vs 1000, 3000 vs 10000).
- psi vs a NumPy implementation of the documented definition.
- auc vs a NumPy midrank (Mann-Whitney) formula.

Run: FSTORE_BIN=target/debug/fstore python -m pytest tests/clients/test_udfs_differential.py -s
(-s prints the measured differences and timings).
"""

import json
import os
import pathlib
import subprocess
import time

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from scipy import stats

ROOT = pathlib.Path(__file__).resolve().parents[2]
FSTORE_BIN = os.environ.get("FSTORE_BIN", str(ROOT / "target" / "debug" / "fstore"))

STATISTIC_TOLERANCE = 1e-9
P_VALUE_TOLERANCE = 1e-9
PSI_TOLERANCE = 1e-9
AUC_TOLERANCE = 1e-9

pytestmark = pytest.mark.skipif(
    not os.path.exists(FSTORE_BIN), reason=f"no fstore binary at {FSTORE_BIN}"
)


class Fstore:
    """One warehouse, queried through the `fstore sql` command."""

    def __init__(self, warehouse: pathlib.Path):
        self.warehouse = warehouse

    def sql(self, *statements: str) -> list[dict]:
        args = [FSTORE_BIN, "--warehouse", str(self.warehouse), "sql", "--format", "json"]
        for s in statements:
            args += ["-c", s]
        done = subprocess.run(args, capture_output=True, text=True, timeout=900)
        assert done.returncode == 0, done.stderr
        return [json.loads(line) for line in done.stdout.splitlines() if line.strip()]

    def table(self, name: str, path: pathlib.Path, columns: dict) -> None:
        pq.write_table(pa.table(columns), path)
        self.sql(f"CREATE EXTERNAL TABLE {name} STORED AS PARQUET LOCATION '{path}'")


@pytest.fixture(scope="module")
def fstore(tmp_path_factory):
    return Fstore(tmp_path_factory.mktemp("warehouse"))


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("data")


def two_samples(a: np.ndarray, b: np.ndarray) -> dict:
    """Long format: sample 1 and 2 in one column, as drift checks query them."""
    return {
        "s": np.concatenate([np.ones(len(a), np.int8), np.full(len(b), 2, np.int8)]),
        "x": np.concatenate([a, b]).astype(np.float64),
    }


KS_CASES = {
    # name: (sample 1, sample 2) -- generated once, deterministically.
    "same_1m": lambda r: (r.normal(0, 1, 1_000_000), r.normal(0, 1, 1_000_000)),
    "shifted_1m": lambda r: (r.normal(0, 1, 1_000_000), r.normal(0.004, 1, 1_000_000)),
    # n·D² > 2.2: SciPy's kstwo switches to 2·smirnov(n, D), the Birnbaum-Tingey sum.
    "drifted_1m": lambda r: (r.normal(0, 1, 1_000_000), r.normal(0.008, 1, 1_000_000)),
    "unequal_1m": lambda r: (r.normal(0, 1, 1_000_000), r.normal(0, 1.002, 1_200_000)),
    "tied_1m": lambda r: (
        np.round(r.normal(0, 1, 1_000_000), 1),
        np.round(r.normal(0.003, 1, 1_000_000), 1),
    ),
    "exact_500_700": lambda r: (r.normal(0, 1, 500), r.normal(0.15, 1, 700)),
    "exact_1000_1000": lambda r: (r.normal(0, 1, 1000), r.normal(0.1, 1, 1000)),
    "exact_3000_10000": lambda r: (r.exponential(1, 3000), r.exponential(1.05, 10000)),
    "asymptotic_small_vs_large": lambda r: (r.normal(0, 1, 120), r.normal(0.2, 1, 20_000)),
}


@pytest.mark.parametrize("case", sorted(KS_CASES))
def test_ks_matches_scipy(fstore, data_dir, case):
    rng = np.random.default_rng(sorted(KS_CASES).index(case))
    a, b = KS_CASES[case](rng)
    fstore.table(f"ks_{case}", data_dir / f"ks_{case}.parquet", two_samples(a, b))

    started = time.perf_counter()
    [row] = fstore.sql(
        f"SELECT ks_statistic(CASE WHEN s = 1 THEN x END, CASE WHEN s = 2 THEN x END) AS d, "
        f"ks_pvalue(CASE WHEN s = 1 THEN x END, CASE WHEN s = 2 THEN x END) AS p "
        f"FROM ks_{case}"
    )
    elapsed = time.perf_counter() - started

    want = stats.ks_2samp(a, b, alternative="two-sided", method="auto")
    d_diff = abs(row["d"] - float(want.statistic))
    p_diff = abs(row["p"] - float(want.pvalue))
    p_rel = p_diff / float(want.pvalue) if want.pvalue > 0 else 0.0
    print(
        f"\nks {case}: n={len(a)}+{len(b)} D={row['d']:.12g} (scipy {float(want.statistic):.12g}, "
        f"|diff| {d_diff:.2e}) p={row['p']:.12g} (scipy {float(want.pvalue):.12g}, "
        f"|diff| {p_diff:.2e}, relative {p_rel:.2e}) query {elapsed:.2f}s"
    )
    assert d_diff <= STATISTIC_TOLERANCE
    assert p_diff <= P_VALUE_TOLERANCE


def psi_reference(expected: np.ndarray, actual: np.ndarray, eps: float = 1e-4) -> float:
    """The documented definition: decile edges of `expected` (numpy.quantile, 'linear'),
    duplicates merged, right-closed bins, eps for an empty bin."""
    edges = np.unique(np.quantile(expected, np.arange(1, 10) / 10))
    k = len(edges) + 1
    # side='left' counts the edges strictly below a value: a value on an edge goes below it.
    ce = np.bincount(np.searchsorted(edges, expected, side="left"), minlength=k)
    ca = np.bincount(np.searchsorted(edges, actual, side="left"), minlength=k)
    pe = np.where(ce == 0, eps, ce / len(expected))
    pa = np.where(ca == 0, eps, ca / len(actual))
    return float(np.sum((pa - pe) * np.log(pa / pe)))


PSI_CASES = {
    "shifted_1m": lambda r: (r.normal(0, 1, 1_000_000), r.normal(0.3, 1.1, 1_000_000)),
    "stable_1m": lambda r: (r.lognormal(3, 0.6, 1_000_000), r.lognormal(3, 0.6, 1_000_000)),
    "tied_1m": lambda r: (r.integers(0, 5, 1_000_000), r.integers(0, 7, 1_000_000)),
    "empty_bins": lambda r: (r.normal(0, 1, 1_000_000), r.normal(5, 0.1, 1_000_000)),
}


@pytest.mark.parametrize("case", sorted(PSI_CASES))
def test_psi_matches_numpy_reference(fstore, data_dir, case):
    rng = np.random.default_rng(100 + sorted(PSI_CASES).index(case))
    e, a = (v.astype(np.float64) for v in PSI_CASES[case](rng))
    fstore.table(f"psi_{case}", data_dir / f"psi_{case}.parquet", two_samples(e, a))
    [row] = fstore.sql(
        f"SELECT psi(CASE WHEN s = 1 THEN x END, CASE WHEN s = 2 THEN x END) AS psi FROM psi_{case}"
    )
    want = psi_reference(e, a)
    diff = abs(row["psi"] - want)
    print(f"\npsi {case}: {row['psi']:.12g} (numpy {want:.12g}, |diff| {diff:.2e})")
    assert diff <= PSI_TOLERANCE * max(1.0, abs(want))


def auc_reference(score: np.ndarray, label: np.ndarray) -> float:
    """Mann-Whitney with midranks: (R+ - n+(n+ + 1)/2) / (n+ n-)."""
    order = np.argsort(score, kind="mergesort")
    sorted_scores = score[order]
    _, first, counts = np.unique(sorted_scores, return_index=True, return_counts=True)
    midranks = np.empty(len(score))
    midranks[order] = np.repeat(first + (counts + 1) / 2.0, counts)
    positives = label == 1
    n_pos, n_neg = int(positives.sum()), int((~positives).sum())
    return float((midranks[positives].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def test_auc_matches_midrank_formula(fstore, data_dir):
    rng = np.random.default_rng(7)
    n = 1_000_000
    # Rounded scores: many ties, which midranks must count as one half.
    score = np.round(rng.normal(0, 1, n), 2)
    label = (rng.random(n) < 1 / (1 + np.exp(-1.5 * score))).astype(np.int32)
    fstore.table("auc_1m", data_dir / "auc_1m.parquet", {"score": score, "label": label})
    [row] = fstore.sql(
        "SELECT auc(score, label) AS auc, auc(score, label = 1) AS auc_bool, "
        "auc(-score, label) AS auc_inverted FROM auc_1m"
    )
    want = auc_reference(score, label)
    diff = abs(row["auc"] - want)
    print(f"\nauc 1m: {row['auc']:.12g} (numpy {want:.12g}, |diff| {diff:.2e})")
    assert diff <= AUC_TOLERANCE
    assert row["auc_bool"] == row["auc"]
    assert abs(row["auc_inverted"] - (1 - want)) <= AUC_TOLERANCE


def test_ks_per_group_matches_scipy(fstore, data_dir):
    """GROUP BY: every group's statistic and p-value, through partial and final aggregation."""
    rng = np.random.default_rng(11)
    groups, xs, samples = [], [], []
    expected = {}
    for g in range(6):
        a = rng.normal(0, 1, 4000 + 3000 * g)
        b = rng.normal(0.02 * g, 1, 5000 + 2000 * g)
        expected[g] = stats.ks_2samp(a, b)
        groups.append(np.full(len(a) + len(b), g, np.int32))
        xs.append(np.concatenate([a, b]))
        samples.append(np.concatenate([np.ones(len(a), np.int8), np.full(len(b), 2, np.int8)]))
    fstore.table(
        "ks_groups",
        data_dir / "ks_groups.parquet",
        {"g": np.concatenate(groups), "s": np.concatenate(samples), "x": np.concatenate(xs)},
    )
    rows = fstore.sql(
        "SELECT g, ks_statistic(CASE WHEN s = 1 THEN x END, CASE WHEN s = 2 THEN x END) AS d, "
        "ks_pvalue(CASE WHEN s = 1 THEN x END, CASE WHEN s = 2 THEN x END) AS p "
        "FROM ks_groups GROUP BY g ORDER BY g"
    )
    assert [r["g"] for r in rows] == list(range(6))
    for r in rows:
        want = expected[r["g"]]
        assert abs(r["d"] - float(want.statistic)) <= STATISTIC_TOLERANCE
        assert abs(r["p"] - float(want.pvalue)) <= P_VALUE_TOLERANCE


def test_ks_pvalue_on_a_million_values_a_side_is_fast(fstore, data_dir):
    """Sort-based: 1M + 1M values. Prints the time of ks_pvalue alone, net of a scan of the
    same column; the bound only catches accidental O(n^2) (debug builds are ~10x slower)."""
    rng = np.random.default_rng(99)
    a, b = rng.normal(0, 1, 1_000_000), rng.normal(0, 1, 1_000_000)
    fstore.table("ks_timing", data_dir / "ks_timing.parquet", two_samples(a, b))

    def timed(sql: str) -> float:
        best = float("inf")
        for _ in range(3):
            started = time.perf_counter()
            fstore.sql(sql)
            best = min(best, time.perf_counter() - started)
        return best

    scan = timed("SELECT count(CASE WHEN s = 1 THEN x END), count(CASE WHEN s = 2 THEN x END) FROM ks_timing")
    ks = timed("SELECT ks_pvalue(CASE WHEN s = 1 THEN x END, CASE WHEN s = 2 THEN x END) FROM ks_timing")
    print(f"\nks_pvalue 1M+1M: {ks:.2f}s per query, {ks - scan:.2f}s beyond a scan ({scan:.2f}s)")
    assert ks - scan < 60
