"""Fixtures that run a real `fstore serve` on a free loopback port.

FSTORE_BIN points to the binary (scripts/test.sh sets it; default target/debug/fstore).
Each server gets its own temporary warehouse and is stopped by the test that started it.
"""
import os
import re
import signal
import subprocess
import threading
import time
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
FSTORE_BIN = os.environ.get("FSTORE_BIN", str(ROOT / "target" / "debug" / "fstore"))
ADMIN_PASSWORD = "s3cret-admin"


class Server:
    """A running `fstore serve` process."""

    def __init__(self, warehouse, *extra_args, env=None, demo_rows=None):
        # An s3:// URL stays a string (a Path would fold its double slash).
        self.warehouse = warehouse if str(warehouse).startswith("s3://") else Path(warehouse)
        args = [FSTORE_BIN, "--warehouse", str(self.warehouse), "serve",
                "--addr", "127.0.0.1:0", "--metrics-addr", "127.0.0.1:0", *extra_args]
        environment = dict(os.environ, FSTORE_ADMIN_PASSWORD=ADMIN_PASSWORD, FSTORE_LOG="warn")
        environment.update(env or {})
        if demo_rows is not None:
            subprocess.run([FSTORE_BIN, "--warehouse", str(self.warehouse), "demo", "--rows", str(demo_rows)],
                           check=True, capture_output=True, env=environment)
        self.proc = subprocess.Popen(args, stderr=subprocess.PIPE, stdout=subprocess.DEVNULL,
                                     text=True, env=environment)
        self.stderr_lines = []
        self.port = None
        self.metrics_url = None
        ready = threading.Event()

        def pump():
            for line in self.proc.stderr:
                self.stderr_lines.append(line.rstrip("\n"))
                m = re.search(r"listening on (grpc(\+tls)?)://127\.0\.0\.1:(\d+)", line)
                if m:
                    self.scheme = m.group(1)
                    self.port = int(m.group(3))
                    ready.set()
                m = re.search(r"metrics on (http://\S+/metrics)", line)
                if m:
                    self.metrics_url = m.group(1)
            ready.set()

        threading.Thread(target=pump, daemon=True).start()
        if not ready.wait(60) or self.port is None:
            self.stop()
            raise RuntimeError("server did not start:\n" + "\n".join(self.stderr_lines))

    @property
    def uri(self):
        return f"{self.scheme}://127.0.0.1:{self.port}"

    def metrics(self):
        """The Prometheus metrics as {name_with_labels: value}."""
        text = urllib.request.urlopen(self.metrics_url, timeout=30).read().decode()
        out = {}
        for line in text.splitlines():
            if line and not line.startswith("#"):
                name, value = line.rsplit(" ", 1)
                out[name] = float(value)
        return out

    def rss_bytes(self):
        for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
        raise RuntimeError("no VmRSS")

    def stop(self, sig=signal.SIGTERM, timeout=30):
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return self.proc.returncode


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    s = Server(tmp_path_factory.mktemp("warehouse"), demo_rows=20000)
    yield s
    s.stop()


@pytest.fixture
def make_server(tmp_path):
    """Starts extra servers (with other flags) for one test; stops them afterwards."""
    started = []

    def make(*args, warehouse=None, **kwargs):
        s = Server(warehouse or (tmp_path / f"wh{len(started)}"), *args, **kwargs)
        started.append(s)
        return s

    yield make
    for s in started:
        s.stop()


def connect(server, username="admin", password=ADMIN_PASSWORD, **kwargs):
    import adbc_driver_flightsql.dbapi as flight_sql
    return flight_sql.connect(server.uri, db_kwargs={"username": username, "password": password, **kwargs},
                              autocommit=True)


def wait_until(predicate, timeout=10.0, interval=0.05):
    """Polls `predicate` until it holds. A poll that fails (e.g. a metrics request timing out
    on a loaded machine) counts as "not yet" until the deadline; the last poll's error is
    raised."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            if predicate():
                return True
        except OSError:
            pass
        time.sleep(interval)
    return predicate()


def cpu_seconds(pid):
    """User + system CPU time of a process so far."""
    fields = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def assert_idle(server):
    """The server does (almost) no work: over two seconds, after one to settle, it burns under
    half a second of CPU (a query still running would burn two cores)."""
    time.sleep(1.0)
    before = cpu_seconds(server.proc.pid)
    time.sleep(2.0)
    burnt = cpu_seconds(server.proc.pid) - before
    assert burnt < 0.5, f"the server kept working on the stopped query: {burnt:.2f} s CPU in 2 s"
