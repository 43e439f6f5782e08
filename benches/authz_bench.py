"""What authorization costs: the server's CPU per online lookup, and the time of a training-set
query, for a user whose privileges are checked (a non-administrator holding READ ONLINE /
SELECT through grants) against an administrator (for whom the check is one registry lookup),
on the same server, alternating, several rounds.

    python benches/authz_bench.py [--fstore-bin target/release/fstore] [--lookups 5000]
        [--rounds 3] [--rows 300000]

Needs pyarrow and adbc-driver-flightsql. The server's CPU is read from /proc/<pid>/stat
(utime + stime) around each batch of sequential prepared lookups (ADBC re-binds one prepared
statement), so the client's own cost (the Go driver behind cgo) is not counted. Both users'
statements are audited (the audit log cannot be turned off), so the difference is the
privilege checks: the reads of the statement against the grants, at prepare and at every
execution.
"""
import argparse
import json
import os
import sys
import tempfile
import time

import adbc_driver_flightsql.dbapi as flight_sql

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import flight_bench  # noqa: E402

ADMIN_PW = "bench-admin-password"
TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid):
    fields = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS


def start(binary, warehouse):
    env = dict(os.environ, FSTORE_ADMIN_PASSWORD=ADMIN_PW, FSTORE_LOG="warn")
    return flight_bench.serve(binary, warehouse, env)


def connect(uri, user, password):
    return flight_sql.connect(uri, db_kwargs={"username": user, "password": password}, autocommit=True)


def run(conn, sql):
    with conn.cursor() as cur:
        cur.execute(sql)
        return cur.fetchall()


def lookups(conn, pid, keys):
    sql = "SELECT * FROM online_features('bench_set') WHERE customer_id = ?"
    cur = conn.cursor()
    cur.execute(sql, (keys[0],))
    cur.fetchall()
    before = cpu_seconds(pid)
    for k in keys:
        cur.execute(sql, (k,))
        assert len(cur.fetchall()) == 1
    used = cpu_seconds(pid) - before
    cur.close()
    return used / len(keys) * 1e6


def training(conn):
    started = time.perf_counter()
    n = run(conn, "SELECT count(*), sum(amount_sum_30d) FROM training_set('bench_set', 'spine', 'ts')")
    return time.perf_counter() - started, n


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--fstore-bin", default="target/release/fstore")
    p.add_argument("--lookups", type=int, default=5000)
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--rows", type=int, default=300000)
    p.add_argument("--out")
    a = p.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        proc, uri = start(a.fstore_bin, os.path.join(tmp, "wh"))
        try:
            admin = connect(uri, "admin", ADMIN_PW)
            for sql in [
                f"CREATE TABLE tx AS SELECT * FROM sample_transactions({a.rows}, 7)",
                "CREATE TABLE spine AS SELECT customer_id, transaction_date AS ts FROM tx WHERE transaction_id % 3 = 0",
                "CREATE FEATURE GROUP cb ENTITY (customer_id) TIMESTAMP transaction_date FROM tx "
                "FEATURES (amount, amount_sum_30d = sum(amount) WINDOW '30 days', n_7d = count(*) WINDOW '7 days')",
                "CREATE FEATURE SET bench_set FEATURES (cb.*)",
                "ALTER FEATURE SET bench_set SET ONLINE",
                "REFRESH ONLINE FEATURE SET bench_set",
                "CREATE USER svc WITH PASSWORD 'bench-service-pw'",
                "GRANT READ ONLINE ON FEATURE SET bench_set TO svc",
                "CREATE ROLE scientists",
                "GRANT scientists TO svc",
                "GRANT SELECT ON FEATURE SET bench_set TO scientists",
                "GRANT SELECT ON TABLE spine TO scientists",
            ]:
                run(admin, sql)
            keys = [r[0] for r in run(admin, "SELECT DISTINCT customer_id FROM tx ORDER BY 1")]
            keys = (keys * (a.lookups // len(keys) + 1))[: a.lookups]
            svc = connect(uri, "svc", "bench-service-pw")
            results = {"admin_lookup_us": [], "granted_lookup_us": [], "admin_training_s": [],
                       "granted_training_s": []}
            assert training(admin)[1] == training(svc)[1]
            for _ in range(a.rounds):
                results["admin_lookup_us"].append(lookups(admin, proc.pid, keys))
                results["granted_lookup_us"].append(lookups(svc, proc.pid, keys))
                results["admin_training_s"].append(training(admin)[0])
                results["granted_training_s"].append(training(svc)[0])
            for k, v in results.items():
                print(f"{k:22} " + "  ".join(f"{x:9.3f}" for x in v) + f"   median {sorted(v)[len(v) // 2]:.3f}")
            med = {k: sorted(v)[len(v) // 2] for k, v in results.items()}
            print(f"lookup: checked user +{(med['granted_lookup_us'] / med['admin_lookup_us'] - 1) * 100:.1f} % server CPU")
            print(f"training set: checked user +{(med['granted_training_s'] / med['admin_training_s'] - 1) * 100:.1f} % time")
            if a.out:
                json.dump(results, open(a.out, "w"), indent=1)
        finally:
            proc.terminate()
            proc.wait(30)


if __name__ == "__main__":
    sys.exit(main())
