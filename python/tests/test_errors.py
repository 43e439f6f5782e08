"""Error mapping: the ADBC driver's errors become FStoreError subclasses carrying the server's
message without the driver's Go framing — from recorded driver texts, and from a real server."""

import pytest
from conftest import ADMIN_PASSWORD

from fstore import (
    AlreadyExists,
    FeatureStore,
    FStoreError,
    InvalidArgument,
    NotFound,
    PermissionDenied,
    ServerFeatureMissing,
    Unauthenticated,
)
from fstore.errors import ResourceExhausted, error_class, from_driver_error, server_message

# Texts as the ADBC Flight SQL driver (Go) raises them.
RECORDED = [
    (
        "INVALID_ARGUMENT: [FlightSQL] training_set: argument 1 (feature_list) must be a constant, "
        "got $1 (InvalidArgument; Prepare)",
        InvalidArgument,
        "training_set: argument 1 (feature_list) must be a constant, got $1",
    ),
    (
        "NOT_FOUND: [FlightSQL] table 'fstore.public.nope' not found (NotFound; Prepare)",
        NotFound,
        "table 'fstore.public.nope' not found",
    ),
    (
        "ALREADY_EXISTS: [FlightSQL] feature group 'cb' already exists "
        "(AlreadyExists; ExecuteQuery)",
        AlreadyExists,
        "feature group 'cb' already exists",
    ),
    (
        "UNAUTHORIZED: [FlightSQL] permission denied: 'ana' lacks SELECT on feature set 'fraud' "
        "version 2 (PermissionDenied; DoGet: endpoint 0: [])",
        PermissionDenied,
        "permission denied: 'ana' lacks SELECT on feature set 'fraud' version 2",
    ),
    (
        "UNAUTHENTICATED: [FlightSQL] rpc error: code = Unauthenticated desc = invalid credentials "
        "(Unauthenticated; AuthenticateBasicToken)",
        Unauthenticated,
        "invalid credentials",
    ),
    (
        "IO: [FlightSQL] resources exhausted: query needs more memory (ResourceExhausted; DoGet: "
        "endpoint 0: [])\nVendor code: 0\nDetail: grpc-status-details-bin",
        ResourceExhausted,
        "resources exhausted: query needs more memory",
    ),
]


@pytest.mark.parametrize(("text", "cls", "message"), RECORDED)
def test_driver_texts_map_to_classes_and_keep_only_the_message(text, cls, message):
    assert error_class(text) is cls
    assert server_message(text) == message

    class DriverError(Exception):
        pass

    mapped = from_driver_error(DriverError(text), sql="SELECT 1")
    assert type(mapped) is cls and isinstance(mapped, FStoreError)
    assert str(mapped) == message and mapped.sql == "SELECT 1"
    assert "[FlightSQL]" not in str(mapped) and "(" + cls.__name__ not in str(mapped)


def test_unknown_texts_stay_fstore_errors_with_their_text():
    mapped = from_driver_error(RuntimeError("something odd"))
    assert type(mapped) is FStoreError and str(mapped) == "something odd"


def test_server_feature_missing_is_not_implemented():
    error = ServerFeatureMissing("A/B experiments: CREATE EXPERIMENT, issue 16")
    assert isinstance(error, NotImplementedError) and isinstance(error, FStoreError)
    assert "CREATE EXPERIMENT, issue 16" in str(error)


def test_real_server_errors(server, store):
    with pytest.raises(NotFound, match=r"^table 'fstore.public.nope' not found$") as e:
        store.sql("SELECT * FROM nope")
    assert e.value.sql == "SELECT * FROM nope" and e.value.driver_error is not None
    with pytest.raises(InvalidArgument, match="syntax error"):
        store.sql("SELEC 1")
    store.sql("CREATE TABLE errors_t AS SELECT 1 AS x")
    with pytest.raises(AlreadyExists, match="table 'errors_t' already exists"):
        store.sql("CREATE TABLE errors_t AS SELECT 1 AS x")
    with pytest.raises(NotFound, match="feature group 'ghost' not found"):
        store.add_transformation(
            "x", __import__("fstore.transformations").transformations.Encoder("label"), "ghost"
        )


def test_permission_denied_and_unauthenticated(server, store):
    store.sql("CREATE USER reader WITH PASSWORD 'reader-password'")
    reader = FeatureStore(server.url, "reader", "reader-password")
    try:
        with pytest.raises(PermissionDenied, match="reader"):
            reader.sql("SELECT count(*) FROM transactions")
        with pytest.raises(PermissionDenied):
            reader.create_feature_group("mine", "transactions", entity="customer")
    finally:
        reader.close()
    with pytest.raises(Unauthenticated):
        bad = FeatureStore(server.url, "admin", ADMIN_PASSWORD + "-wrong")
        bad.sql("SELECT 1")
