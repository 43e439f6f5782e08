"""Differential tests of drift checks (SET DRIFT BASELINE + check_drift) against SciPy/NumPy.

Each case writes one Parquet table of events: January rows are the baseline sample, February
rows the current one. FStore defines a feature group over it, a feature set, a January
baseline (stored as exact value counts), and checks February (a query over the table):

- ks_test vs scipy.stats.ks_2samp(method='auto', two-sided): statistic within 1e-9, p-value
  within 1e-9 absolute (the tolerance documented for FStore's KS implementation), on
  1,000,000 values a side, tied data, unequal sizes, and sizes small enough for SciPy's
  exact method;
- psi vs a NumPy implementation of the documented definition (as test_udfs_differential);
- wasserstein vs scipy.stats.wasserstein_distance (relative 1e-9);
- chi2 vs scipy.stats.chi2_contingency(correction=False) on a categorical feature.

Run: FSTORE_BIN=target/debug/fstore python -m pytest tests/clients/test_drift_scipy.py -s
"""

import datetime as dt
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

from test_udfs_differential import psi_reference

ROOT = pathlib.Path(__file__).resolve().parents[2]
FSTORE_BIN = os.environ.get("FSTORE_BIN", str(ROOT / "target" / "debug" / "fstore"))

STATISTIC_TOLERANCE = 1e-9
P_VALUE_TOLERANCE = 1e-9
RELATIVE_TOLERANCE = 1e-9

pytestmark = pytest.mark.skipif(
    not os.path.exists(FSTORE_BIN), reason=f"no fstore binary at {FSTORE_BIN}"
)


def sql(warehouse: pathlib.Path, *statements: str) -> list[dict]:
    args = [FSTORE_BIN, "--warehouse", str(warehouse), "sql", "--format", "json"]
    for s in statements:
        args += ["-c", s]
    done = subprocess.run(args, capture_output=True, text=True, timeout=1800)
    assert done.returncode == 0, done.stderr
    return [json.loads(line) for line in done.stdout.splitlines() if line.strip()]


JAN = dt.datetime(2024, 1, 1)
FEB = dt.datetime(2024, 2, 1)
MAR = dt.datetime(2024, 3, 1)


def times(rng, n, start, end):
    span = int((end - start).total_seconds() * 1e6)
    us = np.sort(rng.integers(0, span, n))
    return pa.array(np.datetime64(start, "us") + us.astype("timedelta64[us]"), pa.timestamp("us"))


CATEGORIES = np.array(["a", "b", "c", "d", "e"])

CASES = {
    # name: (baseline sample, current sample) of the numeric feature.
    "same_1m": lambda r: (r.normal(0, 1, 1_000_000), r.normal(0, 1, 1_000_000)),
    "shifted_1m": lambda r: (r.normal(0, 1, 1_000_000), r.normal(0.004, 1, 1_000_000)),
    "drifted_1m": lambda r: (r.normal(0, 1, 1_000_000), r.normal(0.05, 1.1, 1_000_000)),
    "tied_1m": lambda r: (
        np.round(r.normal(0, 1, 1_000_000), 1),
        np.round(r.normal(0.003, 1, 1_000_000), 1),
    ),
    "unequal_1m": lambda r: (r.lognormal(3, 0.6, 1_000_000), r.lognormal(3, 0.61, 1_300_000)),
    "exact_500_700": lambda r: (r.normal(0, 1, 500), r.normal(0.15, 1, 700)),
    "exact_3000_10000": lambda r: (r.exponential(1, 3000), r.exponential(1.05, 10000)),
}


@pytest.fixture(scope="module")
def warehouse(tmp_path_factory):
    return tmp_path_factory.mktemp("warehouse")


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("data")


def define(warehouse, data_dir, name, base, cur, base_cat, cur_cat):
    rng = np.random.default_rng(7)
    n1, n2 = len(base), len(cur)
    table = pa.table({
        "id": np.concatenate([rng.integers(0, 1000, n1), rng.integers(0, 1000, n2)]),
        "ts": pa.concat_arrays([times(rng, n1, JAN, FEB), times(rng, n2, FEB, MAR)]),
        "x": np.concatenate([base, cur]).astype(np.float64),
        "cat": np.concatenate([base_cat, cur_cat]),
    })
    path = data_dir / f"{name}.parquet"
    pq.write_table(table, path)
    started = time.perf_counter()
    sql(
        warehouse,
        f"CREATE EXTERNAL TABLE ev_{name} STORED AS PARQUET LOCATION '{path}'",
        f"CREATE FEATURE GROUP g_{name} ENTITY (id) TIMESTAMP ts FROM ev_{name} FEATURES (x, cat)",
        f"CREATE FEATURE SET s_{name} FEATURES (g_{name}.x, g_{name}.cat)",
        f"SET DRIFT BASELINE FOR FEATURE SET s_{name} FROM '2024-01-01' TO '2024-01-31'",
    )
    return time.perf_counter() - started


def check(warehouse, name, method, threshold):
    current = f"SELECT x, cat FROM ev_{name} WHERE ts >= ''2024-02-01''"
    started = time.perf_counter()
    rows = sql(
        warehouse,
        f"SELECT * FROM check_drift('s_{name}', '{current}', '{method}', {threshold})",
    )
    return {r["feature"].split(".")[1]: r for r in rows}, time.perf_counter() - started


@pytest.mark.parametrize("case", sorted(CASES))
def test_check_drift_matches_scipy(warehouse, data_dir, case):
    rng = np.random.default_rng(sorted(CASES).index(case))
    base, cur = (v.astype(np.float64) for v in CASES[case](rng))
    base_cat = rng.choice(CATEGORIES, len(base), p=[0.3, 0.25, 0.2, 0.15, 0.1])
    cur_cat = rng.choice(CATEGORIES, len(cur), p=[0.29, 0.25, 0.21, 0.15, 0.1])
    baseline_s = define(warehouse, data_dir, case, base, cur, base_cat, cur_cat)

    ks, ks_s = check(warehouse, case, "ks_test", 0.05)
    want = stats.ks_2samp(base, cur, alternative="two-sided", method="auto")
    d_diff = abs(ks["x"]["statistic"] - float(want.statistic))
    p_diff = abs(ks["x"]["p_value"] - float(want.pvalue))
    print(
        f"\n{case}: n={len(base)}+{len(cur)} baseline {baseline_s:.2f}s; ks D={ks['x']['statistic']:.12g} "
        f"(scipy {float(want.statistic):.12g}, |diff| {d_diff:.2e}) p={ks['x']['p_value']:.12g} "
        f"(scipy {float(want.pvalue):.12g}, |diff| {p_diff:.2e}) check {ks_s:.2f}s"
    )
    assert d_diff <= STATISTIC_TOLERANCE
    assert p_diff <= P_VALUE_TOLERANCE
    assert ks["x"]["drifted"] == (float(want.pvalue) < 0.05)
    # ks_test compares numeric features only; the categorical one is reported as skipped.
    assert set(ks) == {"x", "cat"}
    assert "statistic" not in ks["cat"] and ks["cat"]["note"].startswith("skipped: categorical feature")

    psi, _ = check(warehouse, case, "psi", 0.2)
    want_psi = psi_reference(base, cur)
    psi_diff = abs(psi["x"]["statistic"] - want_psi)
    print(f"  psi {psi['x']['statistic']:.12g} (numpy {want_psi:.12g}, |diff| {psi_diff:.2e})")
    assert psi_diff <= RELATIVE_TOLERANCE * max(1.0, abs(want_psi))
    assert psi["x"].get("p_value") is None  # JSON lines omit NULLs

    w, _ = check(warehouse, case, "wasserstein", 0.01)
    want_w = stats.wasserstein_distance(base, cur)
    w_diff = abs(w["x"]["statistic"] - want_w)
    print(f"  wasserstein {w['x']['statistic']:.12g} (scipy {want_w:.12g}, |diff| {w_diff:.2e})")
    assert w_diff <= RELATIVE_TOLERANCE * max(1.0, abs(want_w))
    assert w["x"]["drifted"] == (want_w > 0.01)

    c, _ = check(warehouse, case, "chi2", 0.05)
    labels = sorted(set(base_cat) | set(cur_cat))
    table = [[int((base_cat == k).sum()) for k in labels], [int((cur_cat == k).sum()) for k in labels]]
    chi = stats.chi2_contingency(table, correction=False)
    s_diff = abs(c["cat"]["statistic"] - float(chi.statistic))
    p_diff = abs(c["cat"]["p_value"] - float(chi.pvalue))
    print(f"  chi2 {c['cat']['statistic']:.12g} (scipy {float(chi.statistic):.12g}, |diff| {s_diff:.2e}) "
          f"p {c['cat']['p_value']:.12g} (scipy {float(chi.pvalue):.12g}, |diff| {p_diff:.2e})")
    assert s_diff <= RELATIVE_TOLERANCE * max(1.0, float(chi.statistic))
    assert p_diff <= P_VALUE_TOLERANCE
    # A numeric feature under chi2: its values binned by the baseline's deciles (numpy's
    # linear quantiles, equal edges merged, bins (e[i-1], e[i]]), empty bins left out.
    edges = np.unique(np.quantile(base, [k / 10 for k in range(1, 10)]))
    bins = [np.bincount(np.searchsorted(edges, v, side="left"), minlength=len(edges) + 1) for v in (base, cur)]
    used = (bins[0] + bins[1]) > 0
    chi = stats.chi2_contingency([bins[0][used], bins[1][used]], correction=False)
    print(f"  chi2 numeric {c['x']['statistic']:.12g} (scipy {float(chi.statistic):.12g}) "
          f"p {c['x']['p_value']:.12g} (scipy {float(chi.pvalue):.12g})")
    assert abs(c["x"]["statistic"] - float(chi.statistic)) <= RELATIVE_TOLERANCE * max(1.0, float(chi.statistic))
    assert abs(c["x"]["p_value"] - float(chi.pvalue)) <= P_VALUE_TOLERANCE
    assert c["x"]["note"] == f"numeric feature: values binned by the baseline's deciles ({len(edges) + 1} bins)"
    # Where KS finds drift, so does the binned chi2 (it compared one category per value before).
    if float(want.pvalue) < 1e-6:
        assert c["x"]["drifted"], (case, c["x"])


def test_baseline_is_not_reread(warehouse, data_dir):
    """After the baseline is set, the January rows can go: checks use the stored summary."""
    rng = np.random.default_rng(99)
    base, cur = rng.normal(0, 1, 20_000), rng.normal(0.1, 1, 20_000)
    cats = rng.choice(CATEGORIES, 20_000)
    define(warehouse, data_dir, "reread", base, cur, cats, cats)
    before, _ = check(warehouse, "reread", "ks_test", 0.05)
    february = pa.table({
        "id": np.zeros(len(cur), np.int64),
        "ts": times(rng, len(cur), FEB, MAR),
        "x": cur,
        "cat": cats,
    })
    pq.write_table(february, data_dir / "reread.parquet")  # the January rows are gone
    after, _ = check(warehouse, "reread", "ks_test", 0.05)
    want = stats.ks_2samp(base, cur)
    assert abs(after["x"]["statistic"] - float(want.statistic)) <= STATISTIC_TOLERANCE
    assert before["x"]["statistic"] == after["x"]["statistic"]
    assert before["x"]["p_value"] == after["x"]["p_value"]
