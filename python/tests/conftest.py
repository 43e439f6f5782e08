"""Fixtures: real `fstore serve` processes on free loopback ports, and an S3 server.

FSTORE_BIN points to the server binary (scripts/test.sh sets it; default target/debug/fstore).
S3 comes from FSTORE_TEST_S3_ENDPOINT / FSTORE_TEST_S3_BUCKET (scripts/test.sh starts moto);
without them a moto server of this venv is started on a free loopback port for the session.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
FSTORE_BIN = str(Path(os.environ.get("FSTORE_BIN", ROOT / "target" / "debug" / "fstore")).resolve())
ADMIN_PASSWORD = "s3cret-admin"
DEMO_ROWS = 20000


class Server:
    """A running `fstore serve` over its own warehouse, started in `cwd` (where statements'
    relative paths land)."""

    def __init__(
        self,
        warehouse: Path,
        env: dict[str, str],
        *,
        demo_rows: int | None = DEMO_ROWS,
        cwd: Path | None = None,
        extra: tuple[str, ...] = (),
    ) -> None:
        self.warehouse = warehouse
        self.cwd = cwd or warehouse.parent
        environment = dict(os.environ, FSTORE_ADMIN_PASSWORD=ADMIN_PASSWORD, FSTORE_LOG="warn")
        environment.update(env)
        if demo_rows is not None:
            subprocess.run(
                [FSTORE_BIN, "--warehouse", str(warehouse), "demo", "--rows", str(demo_rows)],
                check=True,
                capture_output=True,
                env=environment,
            )
        self.proc = subprocess.Popen(
            [FSTORE_BIN, "--warehouse", str(warehouse), "serve", "--addr", "127.0.0.1:0", *extra],
            stderr=subprocess.PIPE,
            stdout=subprocess.DEVNULL,
            text=True,
            env=environment,
            cwd=self.cwd,
        )
        self.lines: list[str] = []
        self.port: int | None = None
        self.scheme = "grpc"
        ready = threading.Event()

        def pump() -> None:
            assert self.proc.stderr is not None
            for line in self.proc.stderr:
                self.lines.append(line.rstrip("\n"))
                m = re.search(r"listening on (grpc(?:\+tls)?)://127\.0\.0\.1:(\d+)", line)
                if m:
                    self.scheme = m.group(1)
                    self.port = int(m.group(2))
                    ready.set()
            ready.set()

        threading.Thread(target=pump, daemon=True).start()
        if not ready.wait(60) or self.port is None:
            self.stop()
            raise RuntimeError("server did not start:\n" + "\n".join(self.lines))

    @property
    def url(self) -> str:
        return f"{self.scheme}://127.0.0.1:{self.port}"

    def connect(self, user: str = "admin", password: str = ADMIN_PASSWORD):
        import adbc_driver_flightsql.dbapi as flight_sql

        return flight_sql.connect(
            self.url, db_kwargs={"username": user, "password": password}, autocommit=True
        )

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass(frozen=True)
class S3:
    """An S3-compatible server: its endpoint, a bucket, and the server's environment for it."""

    endpoint: str
    bucket: str
    env: dict[str, str]

    def filesystem(self):
        from pyarrow import fs

        return fs.S3FileSystem(
            access_key="fstore-test",
            secret_key="fstore-test",
            region="us-east-1",
            endpoint_override=self.endpoint,
            scheme="http",
        )


@pytest.fixture(scope="session")
def s3() -> Iterator[S3]:
    """The S3 server the tests export to."""
    endpoint = os.environ.get("FSTORE_TEST_S3_ENDPOINT")
    bucket = os.environ.get("FSTORE_TEST_S3_BUCKET", "fstore-test")
    proc = None
    if not endpoint:
        moto = shutil.which("moto_server", path=str(Path(sys.executable).parent)) or shutil.which(
            "moto_server"
        )
        if moto is None:
            pytest.fail("no S3 server: set FSTORE_TEST_S3_ENDPOINT or install moto[server]")
        port = free_port()
        proc = subprocess.Popen(
            [moto, "-H", "127.0.0.1", "-p", str(port)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        endpoint = f"http://127.0.0.1:{port}"
        for _ in range(100):
            try:
                urllib.request.urlopen(endpoint, timeout=1)
                break
            except OSError:
                time.sleep(0.1)
        request = urllib.request.Request(f"{endpoint}/{bucket}", method="PUT")
        urllib.request.urlopen(request, timeout=10)
    env = {
        "AWS_ACCESS_KEY_ID": "fstore-test",
        "AWS_SECRET_ACCESS_KEY": "fstore-test",
        "AWS_REGION": "us-east-1",
        "AWS_ENDPOINT_URL": endpoint,
        "AWS_ALLOW_HTTP": "true",
    }
    yield S3(endpoint, bucket, env)
    if proc is not None:
        proc.terminate()
        proc.wait(10)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, s3: S3) -> Iterator[Server]:
    """A server over the demo data (20,000 transactions), for one test module."""
    root = tmp_path_factory.mktemp("fstore")
    s = Server(root / "warehouse", s3.env, cwd=root)
    yield s
    s.stop()


@pytest.fixture
def store(server: Server):
    """A FeatureStore on the module's server, closed after the test."""
    from fstore import FeatureStore

    st = FeatureStore(server.url, "admin", ADMIN_PASSWORD)
    yield st
    st.close()
