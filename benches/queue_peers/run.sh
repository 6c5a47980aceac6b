#!/usr/bin/env bash
# Lease-queue comparison: topics vs Redis Streams vs NATS JetStream, same machine, one
# interleaved run. See docs/BENCHMARKS.md ("Lease queues") for what each cell means.
#
#   benches/queue_peers/run.sh                 # defaults below
#   REPS=5 JOBS=100000 benches/queue_peers/run.sh
#
# Knobs (environment): REPS (3), JOBS per drain cell (50000), WORKERS (16), BATCHES ("1 10"),
# FAIR_WORKERS (50), FAIR_JOBS (20000), FAIR_BATCHES ("1 10"), POISON_WORKERS (10),
# POISON_JOBS (10000), POISON_BATCHES ("1 10"), MAX_DELIVERIES (5), SKIP_BUILD (unset),
# OUT (JSON-lines result file; default a temp file), PARTS ("drain fair poison": which parts
# to run).
set -euo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
REPS=${REPS:-3}
JOBS=${JOBS:-50000}
WORKERS=${WORKERS:-16}
BATCHES=${BATCHES:-"1 10"}
FAIR_WORKERS=${FAIR_WORKERS:-50}
FAIR_JOBS=${FAIR_JOBS:-20000}
FAIR_BATCHES=${FAIR_BATCHES:-"1 10"}
POISON_WORKERS=${POISON_WORKERS:-10}
POISON_JOBS=${POISON_JOBS:-10000}
POISON_BATCHES=${POISON_BATCHES:-"1 10"}
MAX_DELIVERIES=${MAX_DELIVERIES:-5}
PARTS=${PARTS:-"drain fair poison"}
has_part() { [[ " $PARTS " == *" $1 "* ]]; }

need=()
command -v redis-server >/dev/null || need+=(redis-server)
command -v nats-server >/dev/null || need+=(nats-server)
if ((${#need[@]})); then
  echo "installing ${need[*]}" >&2
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
fi

if [[ -z "${SKIP_BUILD:-}" ]]; then
  (cd "$ROOT" && cargo build --release --bin topics)
  (cd "$HERE" && CARGO_TARGET_DIR="$HERE/target" cargo build --release)
fi
TOPICS_BIN=${TOPICS_BIN:-${CARGO_TARGET_DIR:-$ROOT/target}/release/topics}
GEN="$HERE/target/release/queue_peers"

TMP=$(mktemp -d -t queue_peers.XXXXXX)
OUT=${OUT:-$TMP/results.jsonl}
PIDS=()
cleanup() {
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null || true; done
  rm -rf "$TMP/topics" "$TMP/redis-everysec" "$TMP/redis-always" "$TMP/nats"
}
trap cleanup EXIT

wait_port() { # port
  for _ in $(seq 1 200); do
    (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
    sleep 0.05
  done
  echo "nothing listening on port $1" >&2
  return 1
}

T_PORT=$("$GEN" freeport)
mkdir -p "$TMP/topics"
"$TOPICS_BIN" --listen "127.0.0.1:$T_PORT" --data-dir "$TMP/topics" >"$TMP/topics.log" 2>&1 &
T_PID=$!
PIDS+=("$T_PID")
wait_port "$T_PORT"

start_redis() { # name fsync-policy -> sets R_PORT R_PID
  R_PORT=$("$GEN" freeport)
  mkdir -p "$TMP/$1"
  redis-server --bind 127.0.0.1 --port "$R_PORT" --dir "$TMP/$1" --save '' \
    --appendonly yes --appendfsync "$2" --daemonize no --protected-mode no \
    >"$TMP/$1.log" 2>&1 &
  R_PID=$!
  PIDS+=("$R_PID")
  wait_port "$R_PORT"
}
start_redis redis-everysec everysec
RE_PORT=$R_PORT RE_PID=$R_PID
start_redis redis-always always
RA_PORT=$R_PORT RA_PID=$R_PID

N_PORT=$("$GEN" freeport)
mkdir -p "$TMP/nats"
nats-server -a 127.0.0.1 -p "$N_PORT" -js -sd "$TMP/nats" >"$TMP/nats.log" 2>&1 &
N_PID=$!
PIDS+=("$N_PID")
wait_port "$N_PORT"

echo "## queue_peers run"
echo "- commit: $(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo unknown)"
echo "- nproc: $(nproc); CPU: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')"
echo "- load average at start: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "- $(redis-server --version | cut -d' ' -f1-3); $(nats-server --version)"
echo "- REPS=$REPS JOBS=$JOBS WORKERS=$WORKERS BATCHES=\"$BATCHES\" results: $OUT"
echo

cell() { # label args... : one drain cell, result appended to $OUT
  local label=$1
  shift
  if ! "$GEN" drain --label "$label" "$@" | tee -a "$OUT" | cut -c1-200 >&2; then
    echo "cell $label $* FAILED" >&2
  fi
}

# The five systems, rotated each repetition so no system always runs first or last.
SYSTEMS=(topics-disk redis-everysec nats-file topics-fsync redis-always)
run_system() { # label batch
  local b=$2
  local common=(--workers "$WORKERS" --batch "$b" --jobs "$JOBS")
  case $1 in
    topics-disk) cell "$1" --system topics --addr "127.0.0.1:$T_PORT" --durability disk \
      --server-pid "$T_PID" "${common[@]}" ;;
    topics-fsync) cell "$1" --system topics --addr "127.0.0.1:$T_PORT" --durability fsync \
      --leases-durable --server-pid "$T_PID" "${common[@]}" ;;
    redis-everysec) cell "$1" --system redis --addr "127.0.0.1:$RE_PORT" \
      --server-pid "$RE_PID" "${common[@]}" ;;
    redis-always) cell "$1" --system redis --addr "127.0.0.1:$RA_PORT" \
      --server-pid "$RA_PID" "${common[@]}" ;;
    nats-file) cell "$1" --system nats --addr "127.0.0.1:$N_PORT" \
      --server-pid "$N_PID" "${common[@]}" ;;
  esac
}

for rep in $(seq 1 "$REPS"); do
  has_part drain && for b in $BATCHES; do
    n=${#SYSTEMS[@]}
    for i in $(seq 0 $((n - 1))); do
      run_system "${SYSTEMS[$(((i + rep - 1) % n))]}" "$b"
    done
  done
  has_part fair && for b in $FAIR_BATCHES; do
    cell fairness --system topics --addr "127.0.0.1:$T_PORT" --durability disk \
      --server-pid "$T_PID" --workers "$FAIR_WORKERS" --batch "$b" --jobs "$FAIR_JOBS"
  done
  has_part poison && for b in $POISON_BATCHES; do
    # Alternate which of the pair runs first.
    order="0 1"
    ((rep % 2)) || order="1 0"
    for p in $order; do
      "$GEN" poison --addr "127.0.0.1:$T_PORT" --server-pid "$T_PID" --durability disk \
        --workers "$POISON_WORKERS" --batch "$b" --jobs "$POISON_JOBS" --poison "$p" \
        --max-deliveries "$MAX_DELIVERIES" | tee -a "$OUT" | cut -c1-200 >&2 ||
        echo "poison cell batch $b poison $p FAILED" >&2
    done
  done
done

echo "- load average at end: $(cut -d' ' -f1-3 /proc/loadavg)"
echo
"$GEN" summary "$OUT"
