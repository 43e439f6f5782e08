"""Monitoring and alerts end to end (issue 15): a real `fstore serve`, real ADBC clients and a
real HTTP receiver on loopback standing in for Slack and for a webhook endpoint.

- the alert lifecycle: data with injected NULLs crosses `missing_values > 0.05` → exactly one
  Slack-format message with the right numbers; re-runs while it stays open send nothing; a
  SIGKILL and restart of the server while it is open re-sends nothing; fixing the data sends
  exactly one resolved message;
- a receiver that is down: the failed attempts are recorded, and the message is delivered
  exactly once when it comes back;
- two servers on one warehouse: each scheduled period of a monitor and of an online refresh
  runs once;
- metric values equal independent computations (pandas, SciPy, NumPy) on generated data.
"""
import datetime as dt
import http.server
import json
import os
import signal
import socket
import threading
import time
import uuid

import numpy as np
import pyarrow as pa
import pytest
from scipy import stats

from conftest import connect, wait_until
from test_udfs_differential import psi_reference


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


class Receiver:
    """An HTTP server on loopback that records every POST (path, headers, JSON body)."""

    def __init__(self, port=None):
        self.port = port or free_port()
        self.messages = []
        self.server = None

    def start(self):
        messages = self.messages

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("content-length", 0)))
                messages.append({"path": self.path, "headers": {k.lower(): v for k, v in self.headers.items()},
                                 "body": json.loads(body)})
                self.send_response(200)
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def stop(self):
        if self.server:
            self.server.shutdown()
            self.server.server_close()
            self.server = None

    def url(self, path):
        return f"http://127.0.0.1:{self.port}{path}"


@pytest.fixture
def receiver():
    r = Receiver().start()
    yield r
    r.stop()


def rows(conn, sql, params=None):
    cur = conn.cursor()
    cur.execute(sql, parameters=params)
    t = cur.fetch_arrow_table()
    cur.close()
    return t.to_pylist()


def run(conn, sql):
    cur = conn.cursor()
    cur.execute(sql)
    try:
        cur.fetch_arrow_table()
    except Exception:
        pass
    cur.close()


def events_table(n, nulls, start=dt.datetime(2024, 2, 1)):
    """n events a day apart from `start`, the first `nulls` amounts NULL."""
    return pa.table({
        "customer_id": [f"c{i % 5}" for i in range(n)],
        "ts": pa.array([start + dt.timedelta(hours=i) for i in range(n)], pa.timestamp("us")),
        "amount": [None if i < nulls else float(i) for i in range(n)],
    })


def setup_set(conn, table):
    cur = conn.cursor()
    cur.adbc_ingest("events", table, mode="create")
    cur.close()
    run(conn, "CREATE FEATURE GROUP g ENTITY (customer_id) TIMESTAMP ts FROM events FEATURES (amount)")
    run(conn, "CREATE FEATURE SET fs FEATURES (g.amount)")


def slack_messages(r, kind):
    return [m for m in r.messages if m["body"].get("blocks") and kind in m["body"]["blocks"][0]["text"]["text"]]


def test_alert_lifecycle_slack_restart_and_resolve(make_server, tmp_path, receiver):
    warehouse = tmp_path / "wh"
    server = make_server(warehouse=warehouse)
    conn = connect(server)
    setup_set(conn, events_table(20, 3))  # 3 NULLs in 20 rows: 0.15
    secret = "T000/B000/very-secret-token"
    run(conn, f"CREATE ALERT CHANNEL slack TYPE slack WEBHOOK '{receiver.url('/services/' + secret)}'")
    # The secret is never shown back.
    shown = json.dumps(rows(conn, "SELECT * FROM fstore.alert_channels"), default=str)
    history = json.dumps(rows(conn, "SELECT statement FROM fstore.history"), default=str)
    assert secret not in shown and secret not in history

    test = rows(conn, "TEST ALERT CHANNEL slack")
    assert test[0]["delivered"] is True and test[0]["http_status"] == 200
    assert len(receiver.messages) == 1 and "test message" in receiver.messages[0]["body"]["text"]

    run(conn, "CREATE MONITOR quality ON FEATURE SET fs EVERY '1 day' "
              "METRICS (missing_values(amount) > 0.05) ALERT TO slack")
    result = rows(conn, "RUN MONITOR quality AS OF '2024-02-08'")
    assert [(r["metric"], r["feature"], r["value"], r["status"]) for r in result] == \
        [("missing_values", "g.amount", 0.15, "alert")]

    assert wait_until(lambda: len(slack_messages(receiver, "Alert opened")) == 1, timeout=20)
    msg = slack_messages(receiver, "Alert opened")[0]
    assert msg["path"] == "/services/" + secret
    body = msg["body"]
    assert body["text"] == ("FStore alert: monitor quality on fs@1: missing_values of g.amount "
                            "is 0.15 (threshold > 0.05)")
    fields = {f["text"].split("\n")[0].strip("*"): f["text"].split("\n", 1)[1]
              for f in body["blocks"][1]["fields"]}
    assert fields["Monitor"] == "quality" and fields["Target"] == "fs@1"
    assert fields["Metric"] == "missing_values" and fields["Feature"] == "g.amount"
    assert fields["Value"] == "0.15 (threshold > 0.05)"
    assert fields["Window"] == "up to 2024-02-08T00:00:00Z"
    # The query in the message reproduces the value.
    reproduce = [b for b in body["blocks"] if b.get("text", {}).get("text", "").startswith("*Reproduce*")]
    query = reproduce[0]["text"]["text"].split("```")[1]
    assert list(rows(conn, query)[0].values()) == [pytest.approx(0.15)]
    delivered = rows(conn, "SELECT event, state, attempt, ok, http_status FROM fstore.alert_deliveries")
    assert delivered == [{"event": "opened", "state": "delivered", "attempt": 1, "ok": True, "http_status": 200}]

    # Still open: runs send nothing more.
    rows(conn, "RUN MONITOR quality AS OF '2024-02-08'")
    time.sleep(2)
    assert len(receiver.messages) == 2

    # SIGKILL while the alert is open, restart on the same warehouse, run again: nothing re-sent.
    conn.close()
    server.stop(sig=signal.SIGKILL)
    server = make_server(warehouse=warehouse)
    conn = connect(server)
    alerts = rows(conn, "SELECT state, notifications FROM fstore.alerts WHERE monitor = 'quality'")
    assert alerts == [{"state": "open", "notifications": 1}]
    rows(conn, "RUN MONITOR quality AS OF '2024-02-08'")
    time.sleep(3)
    assert len(receiver.messages) == 2

    # Fix the data (3 NULLs in 80 rows: 0.0375): one resolved message.
    cur = conn.cursor()
    cur.adbc_ingest("events", events_table(60, 0, start=dt.datetime(2024, 1, 1)), mode="append")
    cur.close()
    result = rows(conn, "RUN MONITOR quality AS OF '2024-02-08'")
    assert result[0]["value"] == pytest.approx(0.0375) and result[0]["status"] == "ok"
    assert wait_until(lambda: len(slack_messages(receiver, "Alert resolved")) == 1, timeout=20)
    resolved = slack_messages(receiver, "Alert resolved")[0]["body"]
    assert resolved["text"].startswith("FStore alert resolved: monitor quality on fs@1: missing_values of g.amount is 0.0375")
    time.sleep(2)
    assert len(receiver.messages) == 3
    assert rows(conn, "SELECT state FROM fstore.alerts WHERE monitor = 'quality'") == [{"state": "resolved"}]

    # The gauges of the latest run on /metrics.
    metrics = server.metrics()
    labels = 'monitor="quality",metric="missing_values",feature="g.amount"'
    assert metrics[f"fstore_monitor_value{{{labels}}}"] == pytest.approx(0.0375)
    assert metrics[f"fstore_monitor_status{{{labels}}}"] == 0
    assert metrics['fstore_monitor_open_alerts{monitor="quality"}'] == 0
    history = rows(conn, "SELECT value, status FROM monitor_history('quality') ORDER BY run")
    assert [h["status"] for h in history] == ["alert", "alert", "alert", "ok"]
    conn.close()


def test_a_channel_that_is_down_gets_the_message_once_it_is_back(make_server, tmp_path):
    server = make_server(warehouse=tmp_path / "wh")
    conn = connect(server)
    setup_set(conn, events_table(20, 0))
    down = Receiver()  # not started: connections are refused
    run(conn, f"CREATE ALERT CHANNEL hook TYPE webhook URL '{down.url('/alerts?token=s3cr3t')}' "
              "HEADERS ('Authorization' = 'Bearer s3cr3t')")
    run(conn, "CREATE MONITOR volume ON FEATURE SET fs EVERY '1 day' METRICS (row_count < 1000) ALERT TO hook")
    rows(conn, "RUN MONITOR volume AS OF '2024-02-08'")

    def failed_attempts():
        return [a for a in rows(conn, "SELECT attempt, ok, error FROM fstore.alert_deliveries "
                                      "WHERE attempt IS NOT NULL ORDER BY attempt") if a["ok"] is False]

    assert wait_until(lambda: len(failed_attempts()) >= 2, timeout=30)
    for a in failed_attempts():
        assert a["error"] and "s3cr3t" not in a["error"]
    try:
        down.start()
        assert wait_until(lambda: len(down.messages) == 1, timeout=30)
        time.sleep(3)
        assert len(down.messages) == 1
        msg = down.messages[0]
        doc = msg["body"]
        deliveries = rows(conn, "SELECT notification, state, attempt, ok FROM fstore.alert_deliveries ORDER BY attempt")
        notification = deliveries[0]["notification"]
        assert deliveries[-1]["state"] == "delivered" and deliveries[-1]["ok"] is True
        assert doc["idempotency_key"] == notification
        assert msg["headers"]["idempotency-key"] == notification
        assert msg["headers"]["authorization"] == "Bearer s3cr3t"
        assert msg["path"] == "/alerts?token=s3cr3t"
        assert doc["event"] == "opened" and doc["monitor"] == "volume" and doc["target"] == "fs@1"
        assert doc["metric"] == "row_count" and doc["value"] == 20 and doc["operator"] == "<"
        assert doc["threshold"] == 1000 and doc["status"] == "alert"
        assert doc["window_end"] == "2024-02-08T00:00:00Z" and doc["attempt"] == len(deliveries)
        assert len(deliveries) >= 3
    finally:
        down.stop()
    conn.close()


def test_two_servers_run_each_period_once(make_server, tmp_path):
    """On the test command's S3 server when there is one (each server then sees the other's
    commits up to half a second late, as in production), else on a local directory."""
    endpoint = os.environ.get("FSTORE_TEST_S3_ENDPOINT")
    if endpoint:
        warehouse = f"s3://{os.environ['FSTORE_TEST_S3_BUCKET']}/monitor-{uuid.uuid4().hex[:8]}"
        env = {"AWS_ACCESS_KEY_ID": "fstore-test", "AWS_SECRET_ACCESS_KEY": "fstore-test",
               "AWS_REGION": "us-east-1", "AWS_ENDPOINT_URL": endpoint, "AWS_ALLOW_HTTP": "true"}
    else:
        warehouse, env = tmp_path / "wh", {}
    a = make_server(warehouse=warehouse, env=env)
    conn = connect(a)
    setup_set(conn, events_table(20, 0))
    b = make_server(warehouse=warehouse, env=env)
    run(conn, "ALTER FEATURE SET fs SET ONLINE (update_frequency = '2 seconds')")
    run(conn, "CREATE MONITOR beat ON FEATURE SET fs EVERY '2 seconds' METRICS (row_count < 0)")
    started = time.time()
    time.sleep(11)
    elapsed = time.time() - started
    runs = rows(conn, "SELECT DISTINCT run, as_of, server FROM fstore.monitor_runs WHERE monitor = 'beat' ORDER BY as_of")
    assert len(runs) >= 3
    as_of = [r["as_of"] for r in runs]
    assert len(set(as_of)) == len(as_of), "a period ran twice"
    # One period at most every 2 s (+1 for the edges): a second server doubles nothing.
    assert len(runs) <= elapsed / 2 + 1
    gaps = {(y - x).total_seconds() % 2 for x, y in zip(as_of, as_of[1:])}
    assert gaps == {0.0}, f"runs off the 2-second grid: {as_of}"
    refreshes = rows(conn, "SELECT started FROM fstore.materializations WHERE feature_set = 'fs' AND trigger = 'schedule'")
    claims = rows(conn, "SELECT object_name FROM fstore.history WHERE action = 'CLAIM RUN' AND object_name = 'refresh:fs'")
    assert len(refreshes) >= 3 and len(refreshes) <= elapsed / 2 + 1
    assert len(refreshes) <= len(claims)
    assert len({r["server"] for r in runs}) >= 1
    run(conn, "DROP MONITOR beat")
    run(conn, "ALTER FEATURE SET fs SET OFFLINE")
    conn.close()


def test_metric_values_equal_independent_computations(make_server, tmp_path):
    rng = np.random.default_rng(15)
    n = 4000
    start = dt.datetime(2024, 1, 1)
    ts = [start + dt.timedelta(minutes=int(m)) for m in np.sort(rng.integers(0, 60 * 24 * 59, n))]
    is_feb = np.array([t >= dt.datetime(2024, 2, 1) for t in ts])
    x = np.where(is_feb, rng.normal(0.3, 1.2, n), rng.normal(0.0, 1.0, n)).round(3)
    cat = np.where(is_feb, rng.choice(["a", "b", "c", "d"], n, p=[0.2, 0.3, 0.3, 0.2]),
                   rng.choice(["a", "b", "c"], n, p=[0.5, 0.3, 0.2]))
    missing = rng.random(n) < np.where(is_feb, 0.08, 0.01)
    table = pa.table({
        "customer_id": [f"c{i % 97}" for i in range(n)],
        "ts": pa.array(ts, pa.timestamp("us")),
        "x": pa.array([None if m else float(v) for v, m in zip(x, missing)], pa.float64()),
        "cat": pa.array(list(cat), pa.string()),
    })
    server = make_server(warehouse=tmp_path / "wh")
    conn = connect(server)
    cur = conn.cursor()
    cur.adbc_ingest("gen", table, mode="create")
    cur.close()
    run(conn, "CREATE FEATURE GROUP gg ENTITY (customer_id) TIMESTAMP ts FROM gen FEATURES (x, cat)")
    run(conn, "CREATE FEATURE SET gs FEATURES (gg.x, gg.cat)")
    run(conn, "SET DRIFT BASELINE FOR FEATURE SET gs FROM '2024-01-01' TO '2024-01-31'")
    run(conn, "CREATE MONITOR m ON FEATURE SET gs EVERY '1 day' WINDOW '29 days' "
              "METRICS (missing_values > 0.05, drift(x, 'ks') > 0.1, drift(x, 'psi') > 0.2, "
              "psi(cat) > 0.2, freshness > '1 hour', row_count < 10)")
    as_of = dt.datetime(2024, 3, 1)
    got = {(r["metric"], r["feature"]): r for r in rows(conn, "RUN MONITOR m AS OF '2024-03-01'")}

    feb = np.array([dt.datetime(2024, 2, 1) <= t < as_of for t in ts])
    jan = np.array([t < dt.datetime(2024, 2, 1) for t in ts])
    base_x = x[jan & ~missing]
    cur_x = x[feb & ~missing]
    assert got[("row_count", None)]["value"] == feb.sum()
    assert got[("missing_values", "gg.x")]["value"] == pytest.approx(missing[feb].mean(), abs=1e-12)
    assert got[("missing_values", "gg.cat")]["value"] == 0
    ks = stats.ks_2samp(base_x, cur_x)
    assert got[("drift:ks_test", "gg.x")]["value"] == pytest.approx(ks.statistic, abs=1e-12)
    assert got[("drift:ks_test", "gg.x")]["note"] == f"p_value {ks.pvalue!r}" or \
        float(got[("drift:ks_test", "gg.x")]["note"].split()[1]) == pytest.approx(ks.pvalue, rel=1e-9)
    # PSI: the documented definition, in NumPy (tests/clients/test_udfs_differential.py).
    assert got[("drift:psi", "gg.x")]["value"] == pytest.approx(psi_reference(base_x, cur_x), rel=1e-9)
    # Categorical PSI: each category a bin.
    cats = sorted(set(cat))
    qb = np.array([(cat[jan] == c).mean() for c in cats])
    qc = np.array([(cat[feb] == c).mean() for c in cats])
    qb, qc = np.where(qb == 0, 1e-4, qb), np.where(qc == 0, 1e-4, qc)
    assert got[("drift:psi", "gg.cat")]["value"] == pytest.approx(((qc - qb) * np.log(qc / qb)).sum(), rel=1e-12)
    newest = max(t for t in ts if t < as_of)
    assert got[("freshness", None)]["value"] == (as_of - newest).total_seconds()
    # The set's own check_drift agrees with the monitor on the same window.
    window = "SELECT * FROM gg WHERE ts >= ''2024-02-01'' AND ts < ''2024-03-01''"
    check = {r["feature"]: r for r in rows(conn, f"SELECT * FROM check_drift('gs', '{window}', 'ks_test')")}
    assert check["gg.x"]["statistic"] == pytest.approx(got[("drift:ks_test", "gg.x")]["value"], abs=1e-15)
    conn.close()
