#!/usr/bin/env bash
# The whole test suite, as the README and CI run it:
#   - formatting and clippy,
#   - every Rust test (unit, router, store contract, Rust SDK) on the embedded store AND on
#     DynamoDB through moto's server, which this script installs in .venv and starts itself,
#   - the official Python SDK suite against `klozeo serve`, on both stores,
#   - the MCP suite (the official `mcp` client: HTTP and `klozeo mcp` over stdio) on both
#     stores, and the MCP Inspector CLI listing the tools and calling one,
#   - the durability test (kill -9 during a stream of creates),
#   - template validation (cfn-lint on the SAM template and on its offline translation).
# It ends with one line: "summary: N passed, M failed".
set -uo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
# CI builds everything once from a clean checkout, where incremental compilation's bookkeeping
# only costs time; local runs keep it for quick rebuilds.
if [ -n "${CI:-}" ]; then export CARGO_INCREMENTAL=0; fi
VENV=${KLOZEO_VENV:-$ROOT/.venv}
LOGDIR=$(mktemp -d)
PIDS=()
passed=0
failed=0
# Every API key the suites hand to a server: none may show up in any log (secrets scan).
SUITE_KEYS=()
cleanup() {
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null; done
  wait 2>/dev/null
}
trap cleanup EXIT

STARTED=$SECONDS
# Each step prints the wall time so far, so a slow CI run shows where its minutes went.
step() { echo; echo "==> $* [at $((SECONDS - STARTED)) s]"; }
fail_step() { echo "FAILED: $*"; failed=$((failed + 1)); }

free_port() { "$VENV/bin/python" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

wait_http() { # url
  for _ in $(seq 1 150); do
    if curl -s -o /dev/null "$1"; then return 0; fi
    sleep 0.2
  done
  echo "timed out waiting for $1"; return 1
}

step "Python tools (.venv)"
if [ ! -x "$VENV/bin/python" ]; then python3 -m venv "$VENV" || exit 1; fi
"$VENV/bin/pip" install -q --disable-pip-version-check -r tests/requirements.txt || exit 1

step "DynamoDB emulator (moto)"
MOTO_PORT=$(free_port)
"$VENV/bin/python" tests/moto_serial.py "$MOTO_PORT" >"$LOGDIR/moto.log" 2>&1 &
PIDS+=($!)
wait_http "http://127.0.0.1:$MOTO_PORT/" || exit 1
export AWS_ACCESS_KEY_ID=test AWS_SECRET_ACCESS_KEY=test AWS_REGION=us-east-1 AWS_DEFAULT_REGION=us-east-1
export AWS_EC2_METADATA_DISABLED=true
export KLOZEO_TEST_DYNAMODB_ENDPOINT="http://127.0.0.1:$MOTO_PORT"
export KLOZEO_REQUIRE_DYNAMODB=1
echo "moto on port $MOTO_PORT"

step "cargo fmt --check"
cargo fmt --all -- --check || fail_step "cargo fmt"

step "cargo clippy"
cargo clippy --workspace --all-targets --quiet -- -D warnings || fail_step "cargo clippy"

step "cargo test (embedded + DynamoDB emulator)"
# The suites below run the `klozeo` binary; clippy above has already compiled every crate.
cargo build -p klozeo@0.1.0 --bin klozeo --quiet || { fail_step "cargo build"; echo "summary: $passed passed, $((failed)) failed"; exit 1; }
# More test threads than cores: many tests spend most of their time waiting on the emulator
# (one request at a time) or on timers, and in one binary they can overlap.
RUST_TEST_THREADS=${RUST_TEST_THREADS:-6} cargo test --workspace --no-fail-fast 2>&1 | tee "$LOGDIR/cargo-test.log"
read -r cp cf < <(grep -E '^test result:' "$LOGDIR/cargo-test.log" |
  sed -E 's/.* ([0-9]+) passed; ([0-9]+) failed.*/\1 \2/' |
  awk '{p+=$1; f+=$2} END {print p+0, f+0}')
passed=$((passed + cp)); failed=$((failed + cf))
if ! grep -qE '^test result:' "$LOGDIR/cargo-test.log"; then fail_step "cargo test produced no results"; fi

KLOZEO=$ROOT/target/debug/klozeo
# The built-in plans plus "burst" (3 requests per 3 s) for the SDKs' 429 handling.
export KLOZEO_PLANS_FILE=$ROOT/tests/plans.json

run_python_suite() { # label, extra serve args...
  local label=$1; shift
  local port data
  port=$(free_port)
  data=$(mktemp -d)
  # Webhook deliveries go to a receiver on loopback in the suite.
  KLOZEO_WEBHOOK_ALLOW_PRIVATE=1 \
    "$KLOZEO" serve --listen "127.0.0.1:$port" --data-dir "$data" "$@" >"$LOGDIR/serve-$label.log" 2>&1 &
  local pid=$!
  PIDS+=($pid)
  wait_http "http://127.0.0.1:$port/health" || { fail_step "klozeo serve ($label) did not start"; cat "$LOGDIR/serve-$label.log"; return; }
  local k1 k2
  k1=$("$KLOZEO" account create --email "py1-$label@example.com" --plan unlimited --data-dir "$data" "$@" | tail -n 1)
  k2=$("$KLOZEO" account create --email "py2-$label@example.com" --plan unlimited --data-dir "$data" "$@" | tail -n 1)
  k3=$("$KLOZEO" account create --email "py3-$label@example.com" --plan burst --data-dir "$data" "$@" | tail -n 1)
  SUITE_KEYS+=("$k1" "$k2" "$k3")
  # The emulator serves one request at a time and background jobs share it, so a request can
  # wait behind them on a slow machine; the suite checks behaviour, not the emulator's speed.
  local timeout=15
  [ "$label" = dynamodb ] && timeout=90
  KLOZEO_TIMEOUT=$timeout KLOZEO_SUITE_STORE=$label KLOZEO_BASE_URL="http://127.0.0.1:$port/api/v1" KLOZEO_API_KEY=$k1 KLOZEO_API_KEY_2=$k2 KLOZEO_API_KEY_BURST=$k3 \
    "$VENV/bin/python" -m pytest -q -p no:cacheprovider tests/sdk_python \
    --junitxml="$LOGDIR/pytest-$label.xml" 2>&1 | tail -n 25
  count_junit "$LOGDIR/pytest-$label.xml" "Python SDK ($label)"
  kill "$pid" 2>/dev/null
}

run_mcp_suite() { # label, extra serve args...: the official `mcp` client, then the MCP Inspector CLI
  local label=$1; shift
  local port data
  port=$(free_port)
  data=$(mktemp -d)
  "$KLOZEO" serve --listen "127.0.0.1:$port" --data-dir "$data" "$@" >"$LOGDIR/serve-mcp-$label.log" 2>&1 &
  local pid=$!
  PIDS+=($pid)
  wait_http "http://127.0.0.1:$port/health" || { fail_step "klozeo serve (MCP, $label) did not start"; cat "$LOGDIR/serve-mcp-$label.log"; return; }
  local k1 k2 k3
  k1=$("$KLOZEO" account create --email "mcp1-$label@example.com" --plan unlimited --data-dir "$data" "$@" | tail -n 1)
  k2=$("$KLOZEO" account create --email "mcp2-$label@example.com" --plan unlimited --data-dir "$data" "$@" | tail -n 1)
  k3=$("$KLOZEO" account create --email "mcp3-$label@example.com" --plan burst --data-dir "$data" "$@" | tail -n 1)
  SUITE_KEYS+=("$k1" "$k2" "$k3")
  KLOZEO_MCP_URL="http://127.0.0.1:$port/mcp" KLOZEO_API_KEY=$k1 KLOZEO_API_KEY_2=$k2 KLOZEO_API_KEY_BURST=$k3 \
    KLOZEO_BIN=$KLOZEO "$VENV/bin/python" -m pytest -q -p no:cacheprovider tests/mcp_python \
    --junitxml="$LOGDIR/pytest-mcp-$label.xml" 2>&1 | tail -n 25
  count_junit "$LOGDIR/pytest-mcp-$label.xml" "MCP client ($label)"
  if [ "$label" = embedded ]; then run_inspector "http://127.0.0.1:$port/mcp" "$k1"; fi
  kill "$pid" 2>/dev/null
}

run_inspector() { # url key: the MCP Inspector CLI lists the tools and calls one
  local url=$1 key=$2 out
  out=$(npx -y @modelcontextprotocol/inspector@2.12.0 --cli "$url" --transport http --method tools/list \
    --header "Authorization: Bearer $key" 2>"$LOGDIR/inspector.log")
  if echo "$out" | "$VENV/bin/python" -c 'import json,sys; t=json.load(sys.stdin)["tools"]; sys.exit(0 if len(t) == 33 else 1)'; then
    passed=$((passed + 1)); echo "MCP Inspector tools/list: 33 tools"
  else
    fail_step "MCP Inspector tools/list"; echo "$out" | head -c 600; cat "$LOGDIR/inspector.log"
  fi
  out=$(npx -y @modelcontextprotocol/inspector@2.12.0 --cli "$url" --transport http --method tools/call \
    --tool-name create_lead --tool-arg name=Inspector --tool-arg source=inspector \
    --header "Authorization: Bearer $key" 2>>"$LOGDIR/inspector.log")
  if echo "$out" | "$VENV/bin/python" -c 'import json,sys; r=json.load(sys.stdin); sys.exit(0 if not r.get("isError") and r["structuredContent"]["data"]["id"].startswith("cl_") else 1)'; then
    passed=$((passed + 1)); echo "MCP Inspector tools/call create_lead: created"
  else
    fail_step "MCP Inspector tools/call"; echo "$out" | head -c 600; cat "$LOGDIR/inspector.log"
  fi
}

count_junit() { # file label
  if [ ! -f "$1" ]; then fail_step "$2: no results"; return; fi
  read -r t f e s < <("$VENV/bin/python" - "$1" <<'PY'
import sys, xml.etree.ElementTree as ET
r = ET.parse(sys.argv[1]).getroot()
suites = [r] if r.tag == "testsuite" else list(r)
t = sum(int(x.get("tests", 0)) for x in suites)
f = sum(int(x.get("failures", 0)) for x in suites)
e = sum(int(x.get("errors", 0)) for x in suites)
s = sum(int(x.get("skipped", 0)) for x in suites)
print(t, f, e, s)
PY
)
  passed=$((passed + t - f - e - s)); failed=$((failed + f + e))
  if [ "$t" -eq 0 ]; then fail_step "$2 ran no test"; fi
  echo "$2: $((t - f - e - s)) passed, $((f + e)) failed"
}

step "Official Python SDK against klozeo serve (embedded store)"
run_python_suite embedded --store embedded

step "MCP: the official mcp client and the MCP Inspector against klozeo serve (embedded store)"
run_mcp_suite embedded --store embedded

step "OAuth: the mcp client's OAuth flow and headless Chromium against klozeo serve (embedded store)"
# The browser test needs Chromium (the Debian package); install it when missing and possible.
CHROMIUM=$(command -v chromium || command -v chromium-browser || true)
if [ -z "$CHROMIUM" ] && command -v apt-get >/dev/null; then
  SUDO=""; [ "$(id -u)" -ne 0 ] && command -v sudo >/dev/null && SUDO="sudo -n"
  { $SUDO apt-get install -y -q chromium || { $SUDO apt-get update -q && $SUDO apt-get install -y -q chromium; }; } \
    >"$LOGDIR/apt-chromium.log" 2>&1
  CHROMIUM=$(command -v chromium || true)
fi
[ -z "$CHROMIUM" ] && echo "SKIPPING the browser test: Chromium is not installed and could not be (see $LOGDIR/apt-chromium.log)"
run_oauth_suite() {
  local port data pid
  port=$(free_port)
  data=$(mktemp -d)
  "$KLOZEO" serve --listen "127.0.0.1:$port" --data-dir "$data" --store embedded >"$LOGDIR/serve-oauth.log" 2>&1 &
  pid=$!
  PIDS+=($pid)
  wait_http "http://127.0.0.1:$port/health" || { fail_step "klozeo serve (OAuth) did not start"; cat "$LOGDIR/serve-oauth.log"; return; }
  KLOZEO_ORIGIN="http://127.0.0.1:$port" KLOZEO_CHROMIUM="$CHROMIUM" KLOZEO_ARTIFACTS="$ROOT/target/artifacts" \
    "$VENV/bin/python" -m pytest -q -p no:cacheprovider tests/oauth_python \
    --junitxml="$LOGDIR/pytest-oauth.xml" 2>&1 | tail -n 25
  count_junit "$LOGDIR/pytest-oauth.xml" "OAuth (mcp client, browser)"
  [ -f "$ROOT/target/artifacts/oauth-consent.png" ] && echo "consent page screenshot: target/artifacts/oauth-consent.png"
  kill "$pid" 2>/dev/null
}
run_oauth_suite

step "Official Python SDK against klozeo serve (DynamoDB emulator)"
export AWS_ENDPOINT_URL=$KLOZEO_TEST_DYNAMODB_ENDPOINT
PREFIX="py$(date +%s)-"
"$KLOZEO" dynamodb create-tables --table-prefix "$PREFIX" >/dev/null || fail_step "create-tables"
KLOZEO_SIGNING_KEY=python-suite-signing-key-0123 run_python_suite dynamodb --store dynamodb --table-prefix "$PREFIX"

step "MCP: the official mcp client against klozeo serve (DynamoDB emulator)"
# list_leads' format writes its file to S3 (on the same emulator), as the mcp function does.
MCP_BUCKET="mcp-exports-$(date +%s)"
"$VENV/bin/python" -c 'import boto3, os, sys; boto3.client("s3", endpoint_url=os.environ["AWS_ENDPOINT_URL"], region_name="us-east-1").create_bucket(Bucket=sys.argv[1])' "$MCP_BUCKET" \
  || fail_step "create the MCP export bucket"
KLOZEO_EXPORT_BUCKET=$MCP_BUCKET KLOZEO_SIGNING_KEY=python-suite-signing-key-0123 \
  run_mcp_suite dynamodb --store dynamodb --table-prefix "$PREFIX"
unset AWS_ENDPOINT_URL

step "OpenAPI: schemathesis against klozeo serve (embedded store)"
# Every operation of /api/v1/openapi.json, a bounded number of generated requests each (a
# minute or so on 2 cores); fails on any 5xx and on any answer that breaks the description.
st_port=$(free_port)
st_data=$(mktemp -d)
"$KLOZEO" serve --listen "127.0.0.1:$st_port" --data-dir "$st_data" >"$LOGDIR/serve-schemathesis.log" 2>&1 &
st_pid=$!
PIDS+=($st_pid)
if wait_http "http://127.0.0.1:$st_port/health"; then
  st_key=$("$KLOZEO" account create --email "schemathesis@example.com" --plan unlimited --data-dir "$st_data" | tail -n 1)
  if "$VENV/bin/st" run "http://127.0.0.1:$st_port/api/v1/openapi.json" --url "http://127.0.0.1:$st_port" \
      -H "X-API-Key: $st_key" --checks not_a_server_error,response_schema_conformance \
      --phases examples,coverage,fuzzing,stateful --max-examples 15 --workers 2 --no-color \
      >"$LOGDIR/schemathesis.log" 2>&1; then
    passed=$((passed + 1)); st_result="schemathesis: 1 passed, 0 failed"
  else
    fail_step "schemathesis (full log: $LOGDIR/schemathesis.log)"; st_result="schemathesis: 0 passed, 1 failed"
  fi
  if grep -q "FAILURES" "$LOGDIR/schemathesis.log"; then
    sed -n '/FAILURES/,$p' "$LOGDIR/schemathesis.log"
  else
    sed -n '/SUMMARY/,$p' "$LOGDIR/schemathesis.log"
  fi
  echo "$st_result"
else
  fail_step "klozeo serve (schemathesis) did not start"
fi
kill "$st_pid" 2>/dev/null

step "Durability: kill -9 during a stream of creates"
KLOZEO_BIN=$KLOZEO "$VENV/bin/python" -m pytest -q -p no:cacheprovider tests/durability \
  --junitxml="$LOGDIR/pytest-durability.xml" 2>&1 | tail -n 15
count_junit "$LOGDIR/pytest-durability.xml" "Durability"

if [ -x tests/validate_template.sh ] || [ -f tests/validate_template.sh ]; then
  step "SAM template validation"
  if KLOZEO_VENV=$VENV bash tests/validate_template.sh; then
    passed=$((passed + 1)); echo "template validation: 1 passed, 0 failed"
  else
    fail_step "template validation"
  fi
fi

step "Secrets never logged"
# What the servers logged during the whole run, scanned for the keys the suites
# used and for anything shaped like a raw key or session token.
if "$VENV/bin/python" tests/scan_secrets.py "$LOGDIR" "${SUITE_KEYS[@]}"; then
  passed=$((passed + 1)); echo "secrets scan: 1 passed, 0 failed"
else
  fail_step "secrets scan"
fi

echo
echo "wall time: $((SECONDS - STARTED)) s"
echo "summary: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
