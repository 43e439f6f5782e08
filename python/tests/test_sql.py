"""SQL building without a server: quoting of odd identifiers and values, durations, feature
references, the statements each helper writes, and how a script shows its parameters."""

import math

import numpy as np
import pyarrow as pa
import pytest

from fstore.errors import InvalidArgument
from fstore.monitoring import Metric
from fstore.results import FeatureSet
from fstore.sql import (
    Statement,
    duration,
    duration_suffix,
    feature_list_item,
    feature_ref,
    identifier,
    literal,
    parse_set_id,
    render,
)
from fstore.store import (
    default_features,
    default_label,
    resolve_entity,
    resolve_timestamp,
    set_argument,
    set_statement_ref,
    source_sql,
)
from fstore.transformations import Encoder, WindowAggregator


@pytest.mark.parametrize(
    ("name", "quoted"),
    [
        ("customer_behavior", "customer_behavior"),
        ("tx_count_30d", "tx_count_30d"),
        ("_fstore_tmp_0a1b", "_fstore_tmp_0a1b"),
        ("Customer", '"Customer"'),
        ("Customer Behavior", '"Customer Behavior"'),
        ("30d_mean", '"30d_mean"'),
        ("amount\n", '"amount\n"'),
        ("category", '"category"'),
        ("window", '"window"'),
        ('say "hi"', '"say ""hi"""'),
        ("it's", '"it\'s"'),
        ("select", '"select"'),
        ("Ünïcødé ✓", '"Ünïcødé ✓"'),
        ('x"; DROP TABLE t; --', '"x""; DROP TABLE t; --"'),
    ],
)
def test_identifiers_are_bare_when_plain_and_quoted_otherwise(name, quoted):
    assert identifier(name) == quoted


@pytest.mark.parametrize("bad", ["", "a\x00b", None, 3])
def test_identifiers_that_cannot_be_written_are_refused(bad):
    with pytest.raises(InvalidArgument):
        identifier(bad)


@pytest.mark.parametrize(
    ("value", "sql"),
    [
        ("team_ml", "'team_ml'"),
        ("o'brien", "'o''brien'"),
        ("'; DROP TABLE transactions; --", "'''; DROP TABLE transactions; --'"),
        ("", "''"),
        ("line\nbreak", "'line\nbreak'"),
        (0, "0"),
        (-5, "-5"),
        (10000, "10000"),
        (0.01, "0.01"),
        (1e-300, "1e-300"),
        (True, "TRUE"),
        (False, "FALSE"),
        (None, "NULL"),
        (["bronze", "it's"], "('bronze', 'it''s')"),
        ((1, 2.5), "(1, 2.5)"),
        (np.int64(7), "7"),
        (np.float64(0.25), "0.25"),
    ],
)
def test_literals(value, sql):
    assert literal(value) == sql


@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf, "a\x00", [], object(), b"bytes"])
def test_values_that_cannot_be_literals_are_refused(bad):
    with pytest.raises(InvalidArgument):
        literal(bad)


@pytest.mark.parametrize(
    ("text", "long", "suffix"),
    [
        ("30d", "30 days", "30d"),
        ("1h", "1 hour", "1h"),
        ("30m", "30 minutes", "30m"),
        ("7d", "7 days", "7d"),
        ("2w", "2 weeks", "2w"),
        ("15s", "15 seconds", "15s"),
        ("250ms", "250 milliseconds", "250ms"),
        ("1.5h", "1.5 hours", "1_5h"),
        ("30 days", "30 days", "30d"),
        ("1 day 12 hours", "1 day 12 hours", "1_day_12_hours"),
    ],
)
def test_durations_are_written_in_their_long_form(text, long, suffix):
    assert duration(text) == long
    assert duration_suffix(text) == suffix


def test_feature_references():
    assert feature_ref("customer_behavior.amount") == "customer_behavior.amount"
    assert feature_ref("customer_behavior:amount") == "customer_behavior.amount"
    assert feature_ref("customer_behavior.*") == "customer_behavior.*"
    assert feature_ref("product_features.category") == 'product_features."category"'
    assert feature_ref('Odd Group.Mean "30"') == '"Odd Group"."Mean ""30"""'
    assert feature_ref("amount") == "amount"
    assert feature_list_item("customer_behavior:*") == "customer_behavior:*"
    assert feature_list_item("product_features.price") == "product_features:price"
    assert feature_list_item("fraud_detection_v1@2") == "fraud_detection_v1@2"
    for bad in ["a,b:c", "g:x,y", " g:x"]:
        with pytest.raises(InvalidArgument):
            feature_list_item(bad)


def test_feature_set_references():
    assert parse_set_id("fraud_detection_v1@3") == ("fraud_detection_v1", 3)
    assert parse_set_id("fraud_detection_v1") == ("fraud_detection_v1", None)
    assert parse_set_id("odd@name@2") == ("odd@name", 2)
    fs = FeatureSet("fraud", 2, ("cb.amount",), {})
    assert fs.id == "fraud@2"
    assert set_statement_ref(fs) == "fraud VERSION 2"
    assert set_statement_ref("Fraud Set") == '"Fraud Set"'
    assert set_argument(fs) == "'fraud@2'"
    assert set_argument("o'set@1") == "'o''set@1'"


def test_sources_are_names_or_query_texts():
    assert source_sql("transactions") == "transactions"
    assert source_sql("Odd T") == '"Odd T"'
    assert source_sql("SELECT * FROM t WHERE x > 1;") == "(SELECT * FROM t WHERE x > 1)"


def test_window_aggregator_names_features_as_workflow_01():
    agg = WindowAggregator(window_size="30d", aggregations=["mean", "sum", "count"])
    features = agg.features(["amount"])
    assert [f.sql() for f in features] == [
        "amount_mean_30d = mean(amount) WINDOW '30 days'",
        "amount_sum_30d = sum(amount) WINDOW '30 days'",
        "tx_count_30d = count(*) WINDOW '30 days'",
    ]
    odd = WindowAggregator("7d", ["max", "count_distinct"], columns=['Amount "$"'])
    assert [f.sql() for f in odd.features([])] == [
        '"Amount ""$""_max_7d" = max("Amount ""$""") WINDOW \'7 days\'',
        '"Amount ""$""_count_distinct_7d" = count_distinct("Amount ""$""") WINDOW \'7 days\'',
    ]
    with pytest.raises(InvalidArgument):
        WindowAggregator("30d", ["median"])
    with pytest.raises(InvalidArgument):
        WindowAggregator("30d", "mean")  # type: ignore[arg-type]
    with pytest.raises(InvalidArgument, match="no column"):
        WindowAggregator("30d", ["mean"]).features([])


def test_encoders():
    assert Encoder("target_encoding").using("conversion") == "target_encoding(target => conversion)"
    assert Encoder("target_encoding", params={"smoothing": 5}).using("Label") == (
        'target_encoding(target => "Label", smoothing => 5)'
    )
    assert Encoder("hash", params={"buckets": 8}).using(None) == "hash(buckets => 8)"
    assert Encoder("one_hot").output_column("category") == "category_onehot"
    assert Encoder("target_encoding").output_column("customer_category") == "customer_category_te"
    with pytest.raises(InvalidArgument):
        Encoder("pca")
    with pytest.raises(InvalidArgument):
        Encoder("target_encoding").using(None)
    with pytest.raises(InvalidArgument):
        Encoder("hash", params={"x; DROP": 1}).using(None)


def test_monitor_metrics():
    assert Metric("missing_values", 0.05).sql() == "missing_values > 0.05"
    assert Metric("missing_values", 0.05, feature="amount").sql() == "missing_values(amount) > 0.05"
    assert Metric("freshness", "2h").sql() == "freshness > '2 hours'"
    assert Metric("row_count", 1000, op="<").sql() == "row_count < 1000"
    drift = Metric("drift", 0.1, feature="cb.amount", method="ks_test")
    assert drift.sql() == "drift(cb.amount, 'ks_test') > 0.1"


SCHEMA = pa.schema(
    [
        ("transaction_id", pa.int64()),
        ("customer_id", pa.string()),
        ("product_id", pa.string()),
        ("transaction_date", pa.timestamp("us")),
        ("amount", pa.float64()),
        ("customer_category", pa.string()),
        ("conversion", pa.int32()),
    ]
)


def test_implicit_context_rules():
    assert resolve_entity("customer", SCHEMA.names, "g") == "customer_id"
    assert resolve_entity("customer_id", SCHEMA.names, "g") == "customer_id"
    with pytest.raises(InvalidArgument, match="no key column for entity 'store'"):
        resolve_entity("store", SCHEMA.names, "g")
    assert resolve_timestamp(SCHEMA, ["customer_id"], "g") == "transaction_date"
    two = SCHEMA.append(pa.field("updated_at", pa.date32()))
    with pytest.raises(InvalidArgument, match="several time columns"):
        resolve_timestamp(two, [], "g")
    assert default_features(SCHEMA, ["customer_id"], "transaction_date") == [
        "amount",
        "customer_category",
    ]
    assert default_label(SCHEMA, ["customer_id"], "transaction_date", "te") == "conversion"
    with pytest.raises(InvalidArgument, match="cannot tell the label"):
        default_label(
            SCHEMA.append(pa.field("qty", pa.int32())), ["customer_id"], "transaction_date", "te"
        )


def test_scripts_show_notes_and_bound_parameters():
    script = render(
        [
            Statement("", (), "entity_df: 3 rows uploaded"),
            Statement("SELECT * FROM fstore.feature_sets WHERE name = ?", ("o'set",), "the set"),
            Statement('DROP TABLE IF EXISTS "t";'),
        ]
    )
    assert script == (
        "-- entity_df: 3 rows uploaded\n"
        "-- the set\n"
        "SELECT * FROM fstore.feature_sets WHERE name = ?;\n"
        '--   parameters: "o\'set"\n'
        'DROP TABLE IF EXISTS "t";'
    )
