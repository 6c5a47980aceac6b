#!/usr/bin/env bash
# A/B of two server binaries under the same load generator (benches/http_load.rs), interleaved
# so both see the same machine noise. Usage:
#   A_BIN=/path/to/old/topics B_BIN=target/release/topics benches/ab_servers.sh
# Knobs: CELLS (http_load syntax, default fsync:1,disk:1,fsync:100,disk:100), ROUNDS (3), DUR (5).
set -euo pipefail
cd "$(dirname "$0")/.."
: "${A_BIN:?the baseline binary}" "${B_BIN:=target/release/topics}"
CELLS=${CELLS:-fsync:1,disk:1,fsync:100,disk:100}
ROUNDS=${ROUNDS:-3}
DUR=${DUR:-5}
cargo bench --bench http_load --no-run >/dev/null 2>&1
GEN=$(ls -t target/release/deps/http_load-* | grep -v '\.d$' | head -1)

run() { # label binary port
  local dir pid
  dir=$(mktemp -d)
  "$2" --listen "127.0.0.1:$3" --data-dir "$dir/data" >/dev/null 2>&1 &
  pid=$!
  for _ in $(seq 100); do
    curl -sf "http://127.0.0.1:$3/v0/ready" >/dev/null 2>&1 && break
    sleep 0.05
  done
  echo "== $1"
  ADDR="127.0.0.1:$3" SERVER_PID=$pid CELLS=$CELLS DUR=$DUR CONNS=16 "$GEN" | grep '^|'
  kill "$pid"
  wait "$pid" 2>/dev/null || true
  rm -rf "$dir"
}

for _ in $(seq "$ROUNDS"); do
  run A "$A_BIN" 4411
  run B "$B_BIN" 4412
done
