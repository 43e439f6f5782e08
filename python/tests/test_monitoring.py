"""Monitors and alert channels through the package, on whatever the server offers: with
monitoring (issue 15) the monitor is created, run and dropped, and a run's missing-values
figure equals the NULL fraction computed in SQL; without it, every call raises
ServerFeatureMissing naming issue 15."""

import pytest

from fstore import ServerFeatureMissing
from fstore.monitoring import FeatureMonitor


def has_monitors(store):
    try:
        store.sql("SELECT * FROM fstore.monitors", output="arrow")
        return True
    except Exception as e:
        assert "fstore.monitors' not found" in str(e)
        return False


@pytest.fixture
def watched(store):
    store.sql("DROP FEATURE GROUP IF EXISTS mon_cb")
    store.create_feature_group("mon_cb", "transactions", entity="customer", features=["amount"])
    return store.create_feature_set("mon_set", ["mon_cb.amount"])


def test_monitor_lifecycle(store, watched):
    monitor = FeatureMonitor(store)
    monitor.add_metric("missing_values", threshold=0.05, alert_channel="mon_slack")
    monitor.add_metric("row_count", threshold=10, op="<")
    if not has_monitors(store):
        with pytest.raises(ServerFeatureMissing, match="issue 15"):
            store.create_alert_channel("mon_slack", webhook="http://127.0.0.1:9/hook")
        with pytest.raises(ServerFeatureMissing, match="issue 15"):
            monitor.start_monitoring(watched.id, frequency="1h")
        return
    sql = store.create_alert_channel("mon_slack", webhook="http://127.0.0.1:9/secret-token")
    assert "secret-token" not in sql and "WEBHOOK '***'" in sql
    created = monitor.start_monitoring(watched.id, frequency="1h", window="since last run")
    assert created.name == "mon_set_monitor"
    assert created.sql == (
        f"CREATE MONITOR mon_set_monitor ON FEATURE SET mon_set VERSION {watched.version}\n"
        "  EVERY '1 hour'\n"
        "  SINCE LAST RUN\n"
        "  METRICS (missing_values > 0.05, row_count < 10)\n"
        "  ALERT TO mon_slack;"
    )
    listed = store.sql("SELECT * FROM fstore.monitors WHERE name = ?", ["mon_set_monitor"])
    assert len(listed) == 1 and listed.iloc[0]["every"] == "1 hour"
    run = monitor.run_now().to_arrow().to_pylist()
    missing = next(r for r in run if r["metric"] == "missing_values")
    expected = store.sql(
        "SELECT 1.0 - CAST(count(amount) AS DOUBLE) / count(*) AS f FROM transactions"
    ).iloc[0]["f"]
    assert missing["value"] == pytest.approx(expected, rel=1e-12)
    assert missing["status"] == "ok"
    assert len(monitor.history()) >= len(run)
    monitor.pause()
    assert store.sql("SELECT paused FROM fstore.monitors WHERE name = 'mon_set_monitor'").iloc[0, 0]
    monitor.resume()
    monitor.stop_monitoring()
    assert store.sql("SELECT * FROM fstore.monitors WHERE name = 'mon_set_monitor'").empty
