#!/usr/bin/env bash
# FStore's test command: runs every test on a fresh machine, installing what it needs.
#
#   1. Debian packages the tests use (only those missing; apt-get as root or with sudo)
#   2. a Python venv (.venv-test) with the client packages of tests/clients/requirements.txt
#   3. an S3-compatible server (moto) on a free loopback port, stopped on exit (Redis tests
#      start their own redis-server; the package comes with step 1)
#   4. layering check, cargo fmt --check, cargo clippy -D warnings
#   5. cargo test: unit tests, the SQL suite (sql/slt), process and S3 tests
#   6. pytest tests/clients: real Flight SQL clients against a real server (when present)
#   7. the Python package (python/): ruff, mypy --strict, pytest python/tests
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
ROOT=$PWD
LOGDIR=${FSTORE_TEST_LOGS:-$ROOT/target/test-logs}
mkdir -p "$LOGDIR"
step() { printf '\n==> %s\n' "$*"; }

step "system packages"
APT_PACKAGES=(python3-venv curl openssl redis-server)
missing=()
for p in "${APT_PACKAGES[@]}"; do
  dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
done
if ((${#missing[@]})); then
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}"
fi
echo "ok"

step "python venv"
VENV=${FSTORE_TEST_VENV:-$ROOT/.venv-test}
[ -x "$VENV/bin/python" ] || python3 -m venv "$VENV"
"$VENV/bin/pip" install -q --disable-pip-version-check -r tests/clients/requirements.txt
echo "ok: $("$VENV/bin/python" --version)"

step "S3-compatible server (moto) on loopback"
free_port() { "$VENV/bin/python" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
MOTO_PORT=$(free_port)
"$VENV/bin/moto_server" -H 127.0.0.1 -p "$MOTO_PORT" >"$LOGDIR/moto.log" 2>&1 &
MOTO_PID=$!
cleanup() { kill "$MOTO_PID" 2>/dev/null || true; wait "$MOTO_PID" 2>/dev/null || true; }
trap cleanup EXIT
for _ in $(seq 1 100); do
  curl -s -o /dev/null "http://127.0.0.1:$MOTO_PORT/" && break
  sleep 0.1
done
export FSTORE_TEST_S3_ENDPOINT="http://127.0.0.1:$MOTO_PORT"
export FSTORE_TEST_S3_BUCKET=fstore-test
export FSTORE_TEST_REQUIRE_S3=1
curl -sf -X PUT "$FSTORE_TEST_S3_ENDPOINT/$FSTORE_TEST_S3_BUCKET" -o /dev/null
echo "ok: $FSTORE_TEST_S3_ENDPOINT"
# Tests of the Redis online store start their own redis-server on a free loopback port.
export FSTORE_TEST_REQUIRE_REDIS=1

step "layering (imports point down, no cycles)"
python3 scripts/check_layers.py

step "cargo fmt --check"
cargo fmt --all -- --check

step "cargo clippy -D warnings"
cargo clippy --workspace --all-targets --locked -- -D warnings

step "cargo test (unit, SQL suite, processes, S3)"
cargo test --workspace --locked

if compgen -G "tests/clients/test_*.py" >/dev/null; then
  step "python clients (pytest)"
  # cargo test built target/debug/fstore (same features as the tests: no second build).
  FSTORE_BIN="$ROOT/target/debug/fstore" "$VENV/bin/python" -m pytest tests/clients -q
fi

step "python package (ruff, mypy, pytest)"
# The guide's Python API (python/, package fstore): installed into the same venv, linted,
# type-checked, and tested against real servers (python/tests/test_user_guide.py runs the
# user guide's code blocks and compares them with sql/workflows through ADBC).
"$VENV/bin/pip" install -q --disable-pip-version-check ./python -r python/requirements-dev.txt
"$VENV/bin/ruff" check python
"$VENV/bin/mypy" --strict python/fstore
FSTORE_BIN="$ROOT/target/debug/fstore" "$VENV/bin/python" -m pytest python/tests -q

step "all tests passed"
