"""The user guide's Python code, run as written, checked against the same workflows in SQL.

Two servers start from the same demo data (`fstore demo --rows 20000`, then `fstore serve`):
on one, the guide's code blocks run in order, read from ``tests/user_guide_blocks.md`` (the
Python blocks of the user guide, "Workflows de Machine Learning com FStore", kept verbatim in
the repository; ``FSTORE_USER_GUIDE`` may point at another copy of the guide, whose Python blocks
are read the same way); on the other, the workflow scripts of ``sql/workflows/`` run statement
by statement through ADBC. After each block, what it produced is compared with what the SQL
workflow produced: feature values, correlations and selections, training sets and their split,
the feature set and its export, validation and drift reports, online features. The monitor of
the guide is created on the server, run once, and its missing-values figures compared with the
NULL fractions computed in SQL; A/B tests are checked against what the server offers (issue 16:
not yet).

The guide is run as written except for these adaptations (each must apply exactly once):

- data names of the demo data: the guide's ``purchase_amount`` is the demo's ``amount``;
- the S3 path ``s3://my-bucket/features/`` points at the local S3 server's bucket;
- online serving materializes as of the demo data's last evening (``as_of=…``), as workflow
  06 does, since the demo data end on 2024-03-31 (today every 30-day window would be empty);
- what the guide takes as given is defined first, as workflow 02 defines it: the
  ``product_features`` group, and ``transactions_df`` (the examples, a pandas DataFrame).

Workflow 05 redefines ``customer_behavior`` with extra features for its own purpose before it
selects; the guide selects among the features of its first block, so its selection is compared
with workflow 05's selection queries run on the group of workflow 01.
"""

import json
import math
import os
import re
import time
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest
from conftest import ADMIN_PASSWORD, ROOT, Server

from fstore import ServerFeatureMissing

GUIDE = Path(
    os.environ.get("FSTORE_USER_GUIDE") or Path(__file__).resolve().parent / "user_guide_blocks.md"
)
WORKFLOWS = ROOT / "sql" / "workflows"
DEMO_END = "2024-03-31T23:59:59"


# ----------------------------------------------------------------------------- the guide


def guide_blocks():
    if not GUIDE.exists():
        pytest.fail(f"the user guide's code blocks are not at {GUIDE} (FSTORE_USER_GUIDE)")
    return re.findall(r"```python\n(.*?)```", GUIDE.read_text(encoding="utf-8"), re.S)


def adapt(code, old, new):
    assert code.count(old) == 1, f"the guide changed: {old!r} is not in the block once"
    return code.replace(old, new)


# -------------------------------------------------------------------------- the workflows


def statements(path):
    """The statements of an SQL script (split at `;` outside quotes and comments)."""
    text, out, buf, i = path.read_text(encoding="utf-8"), [], [], 0
    single = double = False
    while i < len(text):
        c = text[i]
        if not single and not double and text.startswith("--", i):
            end = text.find("\n", i)
            i = len(text) if end < 0 else end
            continue
        if c == "'" and not double:
            single = not single
        elif c == '"' and not single:
            double = not double
        if c == ";" and not single and not double:
            out.append("".join(buf).strip())
            buf = []
        else:
            buf.append(c)
        i += 1
    out.append("".join(buf).strip())
    return [s for s in out if s]


def workflow(number):
    (path,) = WORKFLOWS.glob(f"{number:02d}_*.sql")
    return statements(path)


def squash(sql):
    return re.sub(r"\s+", " ", sql).strip()


def find(stmts, start):
    """The one statement of a workflow that starts with `start` (whitespace folded)."""
    found = [s for s in stmts if squash(s).startswith(squash(start))]
    assert len(found) == 1, f"{start!r} is {len(found)} statements of the workflow"
    return found[0]


class SqlSide:
    """The workflows run through ADBC, each statement's rows kept."""

    def __init__(self, server):
        self.conn = server.connect()
        self.results = {}

    def run(self, sql):
        cur = self.conn.cursor()
        try:
            cur.execute(sql)
            table = cur.fetch_arrow_table()
        finally:
            cur.close()
        self.results[squash(sql)] = table
        return table

    def run_all(self, stmts):
        for s in stmts:
            self.run(s)

    def result(self, sql):
        return self.results[squash(sql)]


# ---------------------------------------------------------------------------- comparison


def arrow(data):
    if isinstance(data, pa.Table):
        return data
    if hasattr(data, "to_arrow") and not hasattr(data, "iloc"):
        return data.to_arrow()
    return pa.Table.from_pandas(data, preserve_index=False)


def rows(data, key=None):
    """Rows as dicts, sorted (by `key`, else by every column) so that order does not count."""
    table = arrow(data)
    keys = key or table.column_names
    return table.sort_by([(k, "ascending") for k in keys]).to_pylist()


def same_rows(python, sql, key=None):
    p, s = arrow(python), arrow(sql)
    assert p.column_names == s.column_names
    assert p.num_rows == s.num_rows
    got, expected = rows(p, key), rows(s, key)
    for i, (a, b) in enumerate(zip(got, expected, strict=True)):
        assert a == b, f"row {i} differs:\n python: {a}\n sql:    {b}"


def same_statistics(got, expected):
    """Rows of statistics (correlations, scores, test statistics) equal, floats to 12
    significant digits: the server's mutual information sums its terms in hash-map order
    (udfs/src/stats/mutual_info.rs), so two runs can differ in the last bit. Everything else
    is compared exactly."""
    assert len(got) == len(expected)
    for a, b in zip(got, expected, strict=True):
        assert a.keys() == b.keys()
        for k in a:
            x, y = a[k], b[k]
            if isinstance(x, float) and isinstance(y, float):
                assert math.isclose(x, y, rel_tol=1e-12, abs_tol=1e-300) or (
                    math.isnan(x) and math.isnan(y)
                ), (k, a, b)
            else:
                assert x == y, (k, a, b)


# ------------------------------------------------------------------------------ fixtures


class Guide:
    """Both sides and the guide's namespace, shared by the steps of this module in order."""

    def __init__(self, python_server, sql_server, s3, blocks):
        self.python_server = python_server
        self.sql = SqlSide(sql_server)
        self.sql_cwd = sql_server.cwd
        self.s3 = s3
        self.blocks = blocks
        self.ns = {}
        self.done = set()
        self.prefix = f"guide-{os.getpid()}-{int(time.time())}"

    def run_block(self, index, code=None):
        exec(compile(code or self.blocks[index], f"<guide block {index + 1}>", "exec"), self.ns)

    def require(self, *steps):
        missing = [s for s in steps if s not in self.done]
        if missing:
            pytest.fail(f"an earlier step failed: {', '.join(missing)}")


@pytest.fixture(scope="module")
def guide(tmp_path_factory, s3):
    blocks = guide_blocks()
    assert len(blocks) == 9, f"the guide has {len(blocks)} Python blocks, expected 9"
    servers = []
    saved = {k: os.environ.get(k) for k in ("FSTORE_URL", "FSTORE_USER", "FSTORE_PASSWORD")}
    try:
        for side in ("python", "sql"):
            root = tmp_path_factory.mktemp(side)
            servers.append(Server(root / "warehouse", s3.env, cwd=root))
        os.environ.update(
            FSTORE_URL=servers[0].url, FSTORE_USER="admin", FSTORE_PASSWORD=ADMIN_PASSWORD
        )
        g = Guide(servers[0], servers[1], s3, blocks)
        yield g
        if "store" in g.ns:
            g.ns["store"].close()
        g.sql.conn.close()
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
        for s in servers:
            s.stop()


# --------------------------------------------------------------------------------- steps


def test_1_feature_engineering(guide):
    wf = workflow(1)
    guide.sql.run_all(wf)
    guide.run_block(0)
    store = guide.ns["store"]
    assert "ADD TRANSFORMATION" in store.last_sql
    assert "target_encoding(target => conversion)" in store.last_sql
    group = "SELECT * FROM customer_behavior"
    same_rows(store.sql(group, output="arrow"), guide.sql.run(group))
    describe = "DESCRIBE FEATURE GROUP customer_behavior"
    columns = ["column_name", "role", "data_type", "definition", "window"]
    assert (
        store.sql(describe, output="arrow").select(columns).to_pylist()
        == guide.sql.run(describe).select(columns).to_pylist()
    )
    guide.done.add("features")


def test_2_feature_selection(guide):
    guide.require("features")
    wf = workflow(5)
    correlation = find(wf, "SELECT * FROM feature_correlation('customer_behavior')")
    selection = find(
        wf, "SELECT * FROM select_features('customer_behavior', 'conversion', 'mutual_info', 10)"
    )
    guide.run_block(1)
    ns = guide.ns
    same_statistics(
        ns["corr_matrix"].to_arrow().to_pylist(), guide.sql.run(correlation).to_pylist()
    )
    same_statistics(
        ns["important_features"].to_arrow().to_pylist(), guide.sql.run(selection).to_pylist()
    )
    matrix = ns["corr_matrix"].matrix()
    assert matrix.loc["amount", "amount_mean_30d"] == matrix.loc["amount_mean_30d", "amount"]
    guide.selection_sql = selection
    guide.done.add("selection")


def test_3_training_dataset(guide):
    guide.require("features", "selection")
    wf = workflow(2)
    guide.sql.run_all(wf)
    store = guide.ns["store"]
    # What the guide takes as given, defined as workflow 02 defines it.
    store.create_feature_group(name="product_features", source_table="products", entity="product")
    assert squash(store.last_sql).endswith(squash('FROM products FEATURES ( price, "category" );'))
    view = find(wf, "CREATE OR REPLACE VIEW transactions_df AS")
    guide.ns["transactions_df"] = store.sql(re.split(r"\bAS\b", view, maxsplit=1)[1])
    guide.run_block(2)
    ns = guide.ns
    assert "_fstore_tmp_" in store.last_sql  # the split uploaded training_data, then dropped it
    same_rows(
        ns["training_data"], guide.sql.run("SELECT * FROM training_data"), key=["transaction_id"]
    )
    split = guide.sql.result(find(wf, "SELECT split, count(*) AS examples"))
    expected = {r["split"]: r for r in split.to_pylist()}
    for name, frame in (("train", ns["train_df"]), ("test", ns["test_df"])):
        assert len(frame) == expected[name]["examples"]
        assert frame["transaction_date"].min() == expected[name]["first"]
        assert frame["transaction_date"].max() == expected[name]["last"]
    test_ids = guide.sql.run(
        "SELECT transaction_id FROM temporal_split('training_data', 0.2, 'transaction_date') "
        "WHERE split = 'test'"
    )
    assert sorted(ns["test_df"]["transaction_id"]) == sorted(
        test_ids.column("transaction_id").to_pylist()
    )
    guide.done.add("training")


def test_4_feature_versioning_and_export(guide):
    guide.require("training")
    wf = workflow(3)
    guide.sql.run_all(wf)
    code = adapt(
        guide.blocks[3],
        '"s3://my-bucket/features/"',
        f'"s3://{guide.s3.bucket}/{guide.prefix}/features/"',
    )
    guide.run_block(3, code)
    ns = guide.ns
    feature_set = ns["feature_set"]
    assert feature_set.id == "fraud_detection_v1@1"
    # The set's features are the selection, in its order (as the SQL side selected them).
    selected = guide.sql.result(guide.selection_sql).column("feature").to_pylist()
    assert list(feature_set.features) == [f"customer_behavior.{f}" for f in selected]
    metadata = guide.sql.run(
        "SELECT metadata FROM feature_set_versions('fraud_detection_v1') WHERE version = 1"
    )
    assert feature_set.metadata == json.loads(metadata.column("metadata")[0].as_py())
    # The export: one file for the one group, the same rows as the SQL export's.
    store = ns["store"]
    assert squash(store.last_sql) == squash(
        "EXPORT FEATURE SET fraud_detection_v1 VERSION 1 "
        f"TO 's3://{guide.s3.bucket}/{guide.prefix}/features/' FORMAT parquet;"
    )
    key = (
        f"{guide.s3.bucket}/{guide.prefix}/features/fraud_detection_v1_v1/customer_behavior.parquet"
    )
    exported = pq.read_table(key, filesystem=guide.s3.filesystem())
    assert exported.num_rows == 20000
    assert exported.schema.metadata[b"fstore.feature_set"] == b"fraud_detection_v1"
    local = guide.sql_cwd / "fstore-exports" / "fraud_detection_v1_v1" / "customer_behavior.parquet"
    expected = pq.read_table(local)
    common = [c for c in expected.column_names if c in exported.column_names]
    assert common == [
        "customer_id",
        "transaction_date",
        "amount_mean_30d",
        "tx_count_30d",
        "customer_category_te",
    ]
    same_rows(exported.select(common), expected.select(common))
    guide.done.add("set")


def test_5_quality_checks(guide):
    guide.require("set")
    wf = workflow(4)
    guide.sql.run_all(wf)
    code = adapt(guide.blocks[4], '"purchase_amount"', '"amount"')
    guide.run_block(4, code)
    report = guide.ns["validation_results"]
    assert "CREATE EXPECTATION ON FEATURE amount\n" in guide.ns["validator"].sql[0]
    expected = guide.sql.result(find(wf, "SELECT * FROM validate('fraud_detection_v1')"))
    amount = expected.filter(pc.equal(expected["feature"], pa.scalar("customer_behavior.amount")))
    assert report.to_arrow().to_pylist() == amount.to_pylist()
    assert report.passed
    guide.done.add("validation")


def test_6_drift_detection(guide):
    guide.require("validation")
    guide.run_block(5)
    report = guide.ns["drift_report"]
    # Workflow 04's check, with the guide's test_df (the test part of the training data's
    # split) as the current data.
    check = find(
        workflow(4), "SELECT * FROM check_drift('fraud_detection_v1', 'test_df', 'ks_test'"
    )
    test_df = (
        "SELECT * FROM temporal_split('training_data', 0.2, 'transaction_date') "
        "WHERE split = 'test'"
    )
    check = check.replace("'test_df'", "'" + test_df.replace("'", "''") + "'")
    expected = {r["feature"]: r for r in guide.sql.run(check).to_pylist()}
    got = report.to_arrow().to_pylist()
    assert [r["feature"] for r in got] == list(guide.ns["feature_set"].features)
    same_statistics(got, [expected[r["feature"]] for r in got])
    assert report.drifted == [r["feature"] for r in got if r["drifted"]]
    guide.done.add("drift")


def test_7_online_serving(guide):
    guide.require("set")
    wf = workflow(6)
    guide.sql.run_all(wf)
    code = adapt(
        guide.blocks[6], 'cache_ttl="30m"\n)', f'cache_ttl="30m",\n    as_of="{DEMO_END}",\n)'
    )
    guide.run_block(6, code)
    got = arrow(guide.ns["online_features"]).to_pylist()
    assert len(got) == 1
    expected = guide.sql.result(
        find(wf, "SELECT * FROM online_features('customer_online', 'customer_123'")
    ).to_pylist()[0]
    row = got[0]
    del row["_materialized_at"]
    assert row == {k: expected[k] for k in row}
    assert row["customer_id"] == "customer_123" and row["tx_count_30d"] > 0
    store = guide.ns["store"]
    served = store.sql("SELECT * FROM fstore.online_sets", output="arrow").to_pylist()
    sql_served = guide.sql.run("SELECT * FROM fstore.online_sets").to_pylist()
    assert [(s["last_status"], s["rows"]) for s in served] == [
        (s["last_status"], s["rows"]) for s in sql_served
    ]
    guide.done.add("online")


def test_8_monitoring(guide):
    guide.require("set")
    store = guide.ns["store"]
    # A channel named as in the guide; its webhook is a closed loopback port.
    store.create_alert_channel("slack", "slack", webhook="http://127.0.0.1:9/hooks/fstore-test")
    guide.run_block(7)
    monitor = guide.ns["monitor"]
    created = monitor.monitor
    assert created is not None and created.name == "fraud_detection_v1_monitor"
    assert created.sql == (
        "CREATE MONITOR fraud_detection_v1_monitor ON FEATURE SET fraud_detection_v1 VERSION 1\n"
        "  EVERY '1 hour'\n"
        "  METRICS (missing_values > 0.05)\n"
        "  ALERT TO slack;"
    )
    found = store.sql(
        "SELECT target_kind, target, version, every, metrics, channels, paused "
        "FROM fstore.monitors WHERE name = ?",
        ["fraud_detection_v1_monitor"],
        output="arrow",
    ).to_pylist()
    assert found == [
        {
            "target_kind": "feature_set",
            "target": "fraud_detection_v1",
            "version": 1,
            "every": "1 hour",
            "metrics": "missing_values > 0.05",
            "channels": "slack",
            "paused": False,
        }
    ]
    # One run now, as of the demo data's last evening: one missing_values value per feature
    # of the set, each the NULL fraction of the group's rows before then.
    run = monitor.run_now(as_of=DEMO_END).to_arrow().to_pylist()
    features = list(guide.ns["feature_set"].features)
    assert [r["feature"] for r in run] == features
    before = f"transaction_date < TIMESTAMP '{DEMO_END}'"
    for r in run:
        assert r["metric"] == "missing_values" and r["trigger"] == "run", r
        group, feature = r["feature"].split(".", 1)
        assert group == "customer_behavior"
        expected = store.sql(
            f'SELECT count(*) AS n, 1.0 - CAST(count("{feature}") AS DOUBLE) / count(*) AS f '
            f"FROM customer_behavior WHERE {before}",
            output="arrow",
        ).to_pylist()[0]
        assert r["rows"] == expected["n"] > 0
        assert r["value"] == pytest.approx(expected["f"], rel=1e-12, abs=1e-15), r
        assert r["status"] == ("alert" if expected["f"] > 0.05 else "ok"), r
    history = [h for h in monitor.history().to_arrow().to_pylist() if h["run"] == run[0]["run"]]
    values = [(r["feature"], r["value"]) for r in run]
    assert [(h["feature"], h["value"]) for h in history] == values
    monitor.stop_monitoring()
    assert (
        store.sql(
            "SELECT * FROM fstore.monitors WHERE name = ?",
            ["fraud_detection_v1_monitor"],
            output="arrow",
        ).num_rows
        == 0
    )


def test_9_ab_testing(guide):
    with pytest.raises(ServerFeatureMissing) as e:
        guide.run_block(8)
    assert "A/B experiments: CREATE EXPERIMENT, issue 16" in str(e.value)
    assert isinstance(e.value, NotImplementedError)
    assert "CREATE EXPERIMENT new_features_test" in e.value.sql
