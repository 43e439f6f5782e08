"""Feature selection (feature_correlation, select_features) against NumPy, SciPy and
scikit-learn, through the real `fstore` binary.

NumPy generates the data, pyarrow writes it to Parquet, FStore reads it with CREATE EXTERNAL
TABLE and answers through `fstore sql --format json`.

- feature_correlation 'pearson' vs numpy.corrcoef and 'spearman' vs scipy.stats.spearmanr,
  each pair over its complete rows (pairwise deletion of NULLs), on 200,000 rows with ties,
  NULLs, a boolean and an integer column: within 1e-9.
- select_features 'mutual_info' vs sklearn.feature_selection.mutual_info_classif on data with
  a strongly informative, a weakly informative and an irrelevant continuous feature and an
  informative categorical one: the same ranking; the scores are printed side by side (-s).
  The categorical feature's score is the exact plug-in estimate on both sides (1e-12); the
  continuous ones use the same k-NN estimator (Ross 2014), only the tie-breaking jitter
  differs (1e-6; measured about 1e-11).
- select_features 'chi2' vs sklearn.feature_selection.chi2: within 1e-9 (relative).
- select_features 'correlation' and 'variance' vs NumPy: within 1e-9.

Run: FSTORE_BIN=target/debug/fstore python -m pytest tests/clients/test_selection_sklearn.py -s
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
from sklearn.feature_selection import chi2, mutual_info_classif

ROOT = pathlib.Path(__file__).resolve().parents[2]
FSTORE_BIN = os.environ.get("FSTORE_BIN", str(ROOT / "target" / "debug" / "fstore"))

TOLERANCE = 1e-9
ROWS = 200_000
MI_ROWS = 50_000

pytestmark = pytest.mark.skipif(
    not os.path.exists(FSTORE_BIN), reason=f"no fstore binary at {FSTORE_BIN}"
)


class Fstore:
    """One warehouse, queried through `fstore sql --format json`."""

    def __init__(self, warehouse: pathlib.Path):
        self.warehouse = warehouse

    def sql(self, sql: str) -> list[dict]:
        done = subprocess.run(
            [FSTORE_BIN, "--warehouse", str(self.warehouse), "sql", "--format", "json", "-c", sql],
            capture_output=True, text=True, timeout=900,
        )
        assert done.returncode == 0, done.stderr
        return [json.loads(line) for line in done.stdout.splitlines() if line.strip()]

    def table(self, name: str, path: pathlib.Path, table: pa.Table) -> None:
        pq.write_table(table, path)
        self.sql(f"CREATE EXTERNAL TABLE {name} STORED AS PARQUET LOCATION '{path}'")


@pytest.fixture(scope="module")
def fstore(tmp_path_factory):
    return Fstore(tmp_path_factory.mktemp("warehouse"))


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("data")


def with_nulls(values: np.ndarray, null_mask: np.ndarray) -> pa.Array:
    return pa.array(values, mask=null_mask)


@pytest.fixture(scope="module")
def numeric(fstore, data_dir):
    """Correlated, anti-correlated, independent, tied, NULL-holding and boolean columns."""
    rng = np.random.default_rng(20240501)
    a = rng.normal(50.0, 10.0, ROWS)
    b = 0.6 * a + rng.normal(0.0, 8.0, ROWS)
    c = -0.3 * a + 0.5 * b + rng.standard_t(3, ROWS)
    d = rng.lognormal(0.0, 1.0, ROWS)                       # independent, skewed
    e = np.round(a / 5.0)                                   # heavy ties (about 30 values)
    f = b + rng.normal(0.0, 20.0, ROWS)
    f_null = rng.random(ROWS) < 0.05                        # 5 % NULLs
    g = (a + rng.normal(0.0, 10.0, ROWS)) > 55.0            # boolean
    h = rng.integers(0, 1000, ROWS)                         # integers
    h_null = rng.random(ROWS) < 0.02
    columns = {
        "a": a, "b": b, "c": c, "d": d, "e": e,
        "f": np.where(f_null, np.nan, f),
        "g": g.astype(np.float64),
        "h": np.where(h_null, np.nan, h.astype(np.float64)),
    }
    table = pa.table({
        "a": a, "b": b, "c": c, "d": d, "e": e,
        "f": with_nulls(f, f_null),
        "g": pa.array(g),
        "h": with_nulls(h, h_null),
    })
    fstore.table("numeric", data_dir / "numeric.parquet", table)
    return columns


def complete(x: np.ndarray, y: np.ndarray):
    keep = ~np.isnan(x) & ~np.isnan(y)
    return x[keep], y[keep]


@pytest.mark.parametrize("method", ["pearson", "spearman"])
def test_feature_correlation_matches_numpy_and_scipy(fstore, numeric, method):
    started = time.time()
    rows = fstore.sql(f"SELECT * FROM feature_correlation('numeric', '{method}')")
    elapsed = time.time() - started
    names = list(numeric)
    expected_pairs = [(names[i], names[j]) for i in range(len(names)) for j in range(i + 1, len(names))]
    assert [(r["feature_a"], r["feature_b"]) for r in rows] == expected_pairs
    worst = 0.0
    for r in rows:
        x, y = complete(numeric[r["feature_a"]], numeric[r["feature_b"]])
        if method == "pearson":
            want = np.corrcoef(x, y)[0, 1]
        else:
            want = stats.spearmanr(x, y).statistic
        got = r["correlation"]
        worst = max(worst, abs(got - want))
        assert abs(got - want) <= TOLERANCE, (r, want)
    print(f"\n{method}: {len(rows)} pairs over {ROWS} rows, max |fstore - "
          f"{'numpy' if method == 'pearson' else 'scipy'}| = {worst:.2e}, {elapsed:.1f}s")


@pytest.fixture(scope="module")
def planted(fstore, data_dir):
    """A binary target with a strong, a weak and an irrelevant continuous feature and an
    informative categorical one."""
    rng = np.random.default_rng(7)
    y = rng.integers(0, 2, MI_ROWS)
    strong = 1.6 * y + rng.normal(size=MI_ROWS)
    weak = 0.35 * y + rng.normal(size=MI_ROWS)
    irrelevant = rng.normal(size=MI_ROWS)
    # The class shows through in 35 % of the rows, otherwise a random category.
    category = np.where(rng.random(MI_ROWS) < 0.35, y + 2 * rng.integers(0, 2, MI_ROWS),
                        rng.integers(0, 4, MI_ROWS))
    labels = np.array(["north", "south", "east", "west"])[category]
    table = pa.table({
        "strong": strong, "weak": weak, "irrelevant": irrelevant,
        "region": pa.array(labels), "converted": pa.array(y.astype(np.int32)),
    })
    fstore.table("planted", data_dir / "planted.parquet", table)
    return {"strong": strong, "weak": weak, "irrelevant": irrelevant,
            "region": category, "converted": y}


def test_mutual_info_ranks_features_as_scikit_learn(fstore, planted):
    names = ["strong", "weak", "irrelevant", "region"]
    X = np.column_stack([planted[n] for n in names]).astype(np.float64)
    started = time.time()
    want = mutual_info_classif(X, planted["converted"], discrete_features=[3], random_state=0)
    sklearn_time = time.time() - started
    started = time.time()
    rows = fstore.sql("SELECT * FROM select_features('planted', 'converted', 'mutual_info', 10)")
    fstore_time = time.time() - started
    got = {r["feature"]: r["score"] for r in rows}
    sklearn_ranking = [names[i] for i in np.argsort(-want, kind="stable")]
    fstore_ranking = [r["feature"] for r in rows]

    print(f"\nmutual_info over {MI_ROWS} rows (fstore {fstore_time:.1f}s, scikit-learn {sklearn_time:.1f}s)")
    print(f"{'feature':<12}{'fstore':>14}{'scikit-learn':>14}{'difference':>14}")
    for i, n in enumerate(names):
        print(f"{n:<12}{got[n]:>14.6f}{want[i]:>14.6f}{got[n] - want[i]:>14.2e}")

    assert fstore_ranking == sklearn_ranking == ["strong", "region", "weak", "irrelevant"]
    assert [r["rank"] for r in rows] == [1, 2, 3, 4]
    # The categorical feature: the exact plug-in estimate on both sides.
    assert abs(got["region"] - want[3]) <= 1e-12
    # The continuous ones: the same estimator (only the 1e-10 tie-breaking jitter differs;
    # measured: about 1e-11).
    for i, n in enumerate(names[:3]):
        assert abs(got[n] - want[i]) <= 1e-6, (n, got[n], want[i])


def test_chi2_matches_scikit_learn(fstore, data_dir):
    rng = np.random.default_rng(11)
    n = ROWS
    y = rng.integers(0, 3, n)
    counts = rng.poisson(2.0 + y, n)                 # depends on the class
    amounts = rng.gamma(2.0, 10.0 + 0.5 * y, n)      # slightly
    noise = rng.random(n) * 100.0                    # not at all
    flags = (rng.random(n) < 0.2 + 0.1 * y)          # boolean
    table = pa.table({
        "counts": counts, "amounts": amounts, "noise": noise, "flags": pa.array(flags),
        "label": pa.array(np.array(["bronze", "silver", "gold"])[y]),
    })
    fstore.table("chi", data_dir / "chi.parquet", table)
    names = ["counts", "amounts", "noise", "flags"]
    X = np.column_stack([counts, amounts, noise, flags]).astype(np.float64)
    want, _ = chi2(X, y)
    rows = fstore.sql("SELECT * FROM select_features('chi', 'label', 'chi2', 10)")
    got = {r["feature"]: r["score"] for r in rows}
    print(f"\nchi2 over {n} rows")
    worst = 0.0
    for i, name in enumerate(names):
        rel = abs(got[name] - want[i]) / abs(want[i])
        worst = max(worst, rel)
        print(f"  {name:<8} fstore {got[name]:.10g}  scikit-learn {want[i]:.10g}  relative {rel:.1e}")
        assert rel <= TOLERANCE, (name, got[name], want[i])
    assert [r["feature"] for r in rows] == [names[i] for i in np.argsort(-want, kind="stable")]


def test_correlation_and_variance_methods_match_numpy(fstore, numeric):
    rows = fstore.sql("SELECT * FROM select_features('numeric', 'a', 'correlation', 3)")
    scores = {n: abs(np.corrcoef(*complete(numeric[n], numeric["a"]))[0, 1])
              for n in numeric if n != "a"}
    best = sorted(scores, key=lambda n: (-scores[n], n))[:3]
    assert [r["feature"] for r in rows] == best
    for r in rows:
        assert abs(r["score"] - scores[r["feature"]]) <= TOLERANCE

    rows = fstore.sql("SELECT * FROM select_features('numeric', NULL, 'variance')")
    assert len(rows) == len(numeric)
    for r in rows:
        values = numeric[r["feature"]]
        want = np.var(values[~np.isnan(values)])
        assert abs(r["score"] - want) <= TOLERANCE * max(1.0, want), (r, want)
