#!/usr/bin/env bash
# Property-based fuzzing of the HTTP API: schemathesis generates requests from the OpenAPI
# document a live server serves (GET /v0/openapi.json) and checks every answer against it.
#
#   tests/fuzz/schemathesis.sh [--release]
#
# Environment: FUZZ_EXAMPLES (test cases per operation, default 50), FUZZ_SEED (default 1, so
# a run can be repeated), FUZZ_WORKERS (default 1), FUZZ_EXTRA (more schemathesis options,
# e.g. "--include-path-regex /diff").
# Installs schemathesis from PyPI into a venv under target/fuzz/ on first use, builds the
# server, runs it on a free loopback port with a temporary data directory, fuzzes it, and stops
# it by its PID. Exits non-zero when a check failed, the server logged a panic or it died.
set -euo pipefail
cd "$(dirname "$0")/../.."

version=4.32.5
examples=${FUZZ_EXAMPLES:-50}
seed=${FUZZ_SEED:-1}
workers=${FUZZ_WORKERS:-1}
read -r -a FUZZ_ARGS <<<"${FUZZ_EXTRA:-}"
profile=debug
build=()
if [ "${1:-}" = --release ]; then
    profile=release
    build=(--release)
fi

root=target/fuzz
venv=$root/venv
if ! "$venv/bin/schemathesis" --version 2>/dev/null | grep -q "version $version\$"; then
    python3 -m venv "$venv"
    "$venv/bin/pip" install --quiet --disable-pip-version-check "schemathesis==$version"
fi

cargo build --quiet "${build[@]}" --bin topics

run=$(mktemp -d "$PWD/$root/run.XXXXXX")
log=$run/server.log
# No TOPICS_* variable of the caller's environment (keys, limits) may change what is fuzzed.
unset $(env | grep -o '^TOPICS_[A-Z_]*' || true)
# Long-polls end within half a second, so a generated `wait_ms` never outlasts the request
# timeout (the contract clamps it to `read.wait_ms_max`).
printf '[read]\nwait_ms_max = 500\n' >"$run/config.toml"
"target/$profile/topics" --listen 127.0.0.1:0 --data-dir "$run/data" --config "$run/config.toml" \
    2>"$log" &
pid=$!
stop() {
    kill "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
}
trap 'stop; rm -rf "$run"' EXIT

addr=
for _ in $(seq 100); do
    addr=$(grep -o 'listening on [0-9.:]*' "$log" | head -n1 | cut -d' ' -f3 || true)
    [ -n "$addr" ] && break
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
done
if [ -z "$addr" ]; then
    echo "the server did not start:" >&2
    cat "$log" >&2
    exit 1
fi
# What the document's examples name (`orders`, the queue `emails`, the router
# `payments->ledger`), so the examples and the cases derived from them reach past a 404.
call() {
    local code
    code=$(curl -sS -o /dev/null -w '%{http_code}' -X "$1" -H 'Content-Type: application/json' \
        --data "$3" "http://$addr$2")
    case $code in 2??) ;; *) echo "fixture $1 $2 answered $code" >&2; exit 1 ;; esac
}
jobs='{"records":['$(printf '{"data":{"n":%d}},' $(seq 20) | sed 's/,$//')']}'
call PUT /v0/topics/orders '{}'
call POST /v0/topics/orders '{"records":[{"data":{"order_id":1},"tag":"cust-42:order-1"}]}'
call PUT /v0/topics/emails '{"type":"queue"}'
call POST /v0/topics/emails "$jobs"
call PUT /v0/routers/payments-%3Eledger '{"source":"payments","dest":"ledger"}'

echo "fuzzing http://$addr (pid $pid, $profile build), $examples examples per operation, seed $seed"

started=$(date +%s)
status=0
# The four checks the document must make true: no 5xx, only documented statuses, only
# documented content types, and bodies that match the documented schema.
# An event stream on an existing queue or session never ends by itself: the request timeout
# ends the read (schemathesis checks the events it got), so it bounds each such case to 2 s.
# Run from the run directory: schemathesis keeps its cache in the working directory.
(cd "$run" && "$OLDPWD/$venv/bin/schemathesis" --no-color run "http://$addr/v0/openapi.json" \
    --checks not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance \
    --phases examples,coverage,fuzzing \
    --max-examples "$examples" \
    --seed "$seed" \
    --workers "$workers" \
    --request-timeout 2 "${FUZZ_ARGS[@]}") || status=$?
echo "schemathesis took $(($(date +%s) - started)) s and exited $status"

if ! kill -0 "$pid" 2>/dev/null; then
    echo "the server died during the run" >&2
    status=1
fi
if grep -q 'panicked' "$log"; then
    echo "the server panicked:" >&2
    grep -A5 'panicked' "$log" >&2
    status=1
fi
exit "$status"
