"""The SQL the package builds holds on a real server for odd names and values: identifiers
with spaces, quotes, capitals and symbols; metadata values that look like SQL; keys bound as
parameters."""

import json

import pyarrow as pa
import pytest

from fstore import InvalidArgument
from fstore.analysis import FeatureSelector
from fstore.transformations import Encoder, WindowAggregator
from fstore.validation import FeatureValidator

TABLE = 'Odd "Name" T'
GROUP = "Odd Group"
SNEAKY = "o'brien'); DROP TABLE transactions; --"


@pytest.fixture(scope="module")
def odd(server):
    from fstore import FeatureStore

    st = FeatureStore(server.url, "admin", "s3cret-admin")
    st.sql(
        'CREATE TABLE "Odd ""Name"" T" AS SELECT customer_id AS "Cust Id", '
        'transaction_date AS "When", amount AS "Amount $", customer_category AS "it\'s", '
        'conversion AS "y" FROM transactions'
    )
    group = st.create_feature_group(
        GROUP,
        TABLE,
        transformations=[WindowAggregator("7d", ["mean", "count"], count_name="Events")],
        entity="Cust Id",
        description=SNEAKY,
        tags=["a'b", "c"],
    )
    yield st, group
    st.close()


def test_a_group_with_odd_names(odd):
    st, group = odd
    assert group.entity == ("Cust Id",) and group.timestamp_column == "When"
    assert group.features == ("Amount $_mean_7d", "Events_7d", "Amount $", "it's")
    rows = st.sql(f'SELECT * FROM "{GROUP}" LIMIT 1', output="arrow")
    assert rows.column_names == ["Cust Id", "When", *group.features]
    meta = st.sql(
        "SELECT description, tags FROM fstore.feature_groups WHERE name = ?", [GROUP]
    ).iloc[0]
    assert meta["description"] == SNEAKY and list(meta["tags"]) == ["a'b", "c"]
    assert st.sql("SELECT count(*) AS n FROM transactions").iloc[0]["n"] == 20000


def test_a_transformation_and_a_set_with_odd_names(odd):
    st, _ = odd
    t = st.add_transformation("it's", Encoder("target_encoding"), feature_group=GROUP)
    assert t.output_column == "it's_te"
    assert '"it\'s" USING target_encoding(target => y)' in st.last_sql
    fs = st.create_feature_set(
        "Odd Set",
        [f"{GROUP}.Amount $_mean_7d", f"{GROUP}:it's_te"],
        metadata={"the author": SNEAKY, "model version": 1.5},
        tags=["x'y"],
        description=SNEAKY,
    )
    assert fs.id == "Odd Set@1"
    assert fs.features == (f"{GROUP}.Amount $_mean_7d", f"{GROUP}.it's_te")
    assert fs.metadata == {"the author": SNEAKY, "model version": "1.5"}
    assert fs.tags == ("x'y",) and fs.description == SNEAKY
    stored = st.sql("SELECT metadata FROM feature_set_versions('Odd Set')").iloc[0]["metadata"]
    assert json.loads(stored)["the author"] == SNEAKY
    got = st.get_training_features(
        [fs],
        entity_df=f'SELECT * FROM "{TABLE.replace(chr(34), chr(34) * 2)}"',
        timestamp_column="When",
        output="arrow",
    )
    assert got.column_names[-2:] == ["Amount $_mean_7d", "it's_te"]


def test_expectations_with_odd_values(odd):
    st, _ = odd
    v = FeatureValidator(st)
    v.add_expectation(f"{GROUP}.it's", {"allowed_values": ["bronze", "silver", "gold", "it's"]})
    assert "(allowed_values = ('bronze', 'silver', 'gold', 'it''s'))" in st.last_sql
    expected = st.sql("SELECT expected FROM fstore.expectations WHERE feature_group = ?", [GROUP])
    assert expected.iloc[0]["expected"] == "in ('bronze', 'silver', 'gold', 'it''s')"


def test_names_the_server_would_read_as_queries_are_refused(odd):
    st, _ = odd
    with pytest.raises(InvalidArgument, match="cannot contain whitespace"):
        FeatureSelector(st).correlation_analysis(GROUP)
    with pytest.raises(InvalidArgument, match="cannot be written"):
        st.get_training_features(["g:a,b"], entity_df="t", timestamp_column="ts")


def test_keys_are_bound_parameters(odd, store):
    st, _ = odd
    st.create_feature_group("key_cb", "transactions", entity="customer", features=["amount"])
    st.create_feature_set("key_set", ["key_cb.amount"])
    st.configure_online_serving("key_set", as_of="2024-03-31T23:59:59")
    sneaky = "customer_1' OR '1'='1"
    got = st.get_online_features("key_set", [sneaky], output="arrow")
    assert got.num_rows == 0
    assert "WHERE customer_id = ?;\n--   parameters: \"customer_1' OR '1'='1\"" in st.last_sql
    many = st.get_online_features("key_set", ["customer_3", sneaky, "customer_1"], output="arrow")
    assert many.column("customer_id").to_pylist() == ["customer_3", "customer_1"]
    assert "3 parameter row(s) bound as an Arrow record batch" in st.last_sql
    assert isinstance(many, pa.Table)
