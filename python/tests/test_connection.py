"""Connecting: FSTORE_URL / FSTORE_USER / FSTORE_PASSWORD, explicit arguments, TLS with a root
certificate (as a path or PEM text) or without verification, a server without
authentication, and one connection reused by every call."""

import shutil
import subprocess

import pytest
from conftest import ADMIN_PASSWORD, Server

from fstore import FeatureStore, Unauthenticated, current_store
from fstore.errors import FStoreError, Unavailable


def test_environment_variables(server, monkeypatch):
    monkeypatch.setenv("FSTORE_URL", server.url)
    monkeypatch.setenv("FSTORE_USER", "admin")
    monkeypatch.setenv("FSTORE_PASSWORD", ADMIN_PASSWORD)
    with FeatureStore() as store:
        assert current_store() is store
        assert store.sql("SELECT 42 AS x").iloc[0]["x"] == 42
        # One connection for every call.
        connection = store._session._conn
        store.sql("SELECT 1")
        assert store._session._conn is connection
    with pytest.raises(FStoreError, match="no FeatureStore is open"):
        current_store()
    monkeypatch.setenv("FSTORE_PASSWORD", "wrong")
    with pytest.raises(Unauthenticated):
        FeatureStore()


def test_an_unreachable_server(monkeypatch):
    with pytest.raises(Unavailable):
        FeatureStore("grpc://127.0.0.1:1", "admin", "x")


@pytest.fixture(scope="module")
def tls_server(tmp_path_factory):
    if shutil.which("openssl") is None:
        pytest.fail("openssl is required (scripts/test.sh installs it)")
    root = tmp_path_factory.mktemp("tls")
    cert, key = root / "cert.pem", root / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
         "-subj", "/CN=localhost", "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost",
         "-keyout", str(key), "-out", str(cert)],
        check=True, capture_output=True,
    )  # fmt: skip
    s = Server(
        root / "wh", {}, demo_rows=None, extra=("--tls-cert", str(cert), "--tls-key", str(key))
    )
    yield s, cert
    s.stop()


def test_tls(tls_server):
    s, cert = tls_server
    assert s.url.startswith("grpc+tls://")
    for roots in (str(cert), cert.read_text()):
        with FeatureStore(s.url, "admin", ADMIN_PASSWORD, tls_root_certs=roots) as store:
            assert store.sql("SELECT 1 AS x", output="arrow").to_pylist() == [{"x": 1}]
    with FeatureStore(s.url, "admin", ADMIN_PASSWORD, tls_skip_verify=True) as store:
        assert store.sql("SELECT 2 AS x", output="arrow").to_pylist() == [{"x": 2}]
    with pytest.raises(FStoreError):
        FeatureStore(s.url, "admin", ADMIN_PASSWORD)  # the self-signed certificate is not trusted


def test_a_server_without_authentication(tmp_path, monkeypatch):
    monkeypatch.delenv("FSTORE_USER", raising=False)
    monkeypatch.delenv("FSTORE_PASSWORD", raising=False)
    s = Server(tmp_path / "wh", {}, demo_rows=None, extra=("--no-auth",))
    try:
        with FeatureStore(s.url) as store:
            assert store.sql("SELECT 3 AS x", output="arrow").to_pylist() == [{"x": 3}]
    finally:
        s.stop()
