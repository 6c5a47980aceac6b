#!/usr/bin/env bash
# Side by side on one machine, in one interleaved run: topics next to Redis Streams (AOF
# everysec and always), NATS JetStream (file storage) and a hello-world axum server. See
# docs/BENCHMARKS.md for what each cell means. Installs redis-server and nats-server from the
# Debian packages when they are missing; builds topics and this generator in release mode.
#
#   benches/peers/run.sh                                # every part, defaults below
#   PARTS="write read" REPS=5 benches/peers/run.sh      # the headline cells only
#
# Parts (PARTS, default "write read many single disk drain fair poison"):
#   write  closed-loop writes, batch 1 and 100 (WRITE_BATCHES), CONNS connections, DUR seconds:
#          topics ephemeral/disk/fsync, Redis XADD (pipelined groups of the batch), NATS
#          publish (a window of the batch), hello GET and hello POST of the same body
#   read   topics diff limit 1000 vs Redis XRANGE COUNT 1000 over 200k prefilled records
#   many   topics disk, batch 1 and 100, MANY_CONNS connections, over 1 and over 1000 topics
#   single one connection, batch 1: topics fsync and Redis AOF always (a durable ack's latency)
#   disk   4 KiB write + fdatasync latency, appending and preallocated (the disk's floor)
#   drain fair poison   the lease-queue cells (see "Lease queues")
#
# Knobs (environment): REPS (3), CONNS (16), DUR (4), WRITE_BATCHES ("1 100"), MANY_CONNS
# (64), MANY_TOPICS (1000), JOBS per drain cell (50000), WORKERS (16), BATCHES ("1 10"),
# FAIR_WORKERS (50), FAIR_JOBS (20000), FAIR_BATCHES ("1 10"), POISON_WORKERS (10),
# POISON_JOBS (10000), POISON_BATCHES ("1 10"), MAX_DELIVERIES (5), SKIP_BUILD (unset),
# OUT (JSON-lines result file; default a temp file), TOPICS_BIN (default: the release build).
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
PARTS=${PARTS:-"write read many single disk drain fair poison"}
CONNS=${CONNS:-16}
DUR=${DUR:-4}
WRITE_BATCHES=${WRITE_BATCHES:-"1 100"}
MANY_CONNS=${MANY_CONNS:-64}
MANY_TOPICS=${MANY_TOPICS:-1000}
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
GEN="$HERE/target/release/peers"

TMP=$(mktemp -d -t peers.XXXXXX)
OUT=${OUT:-$TMP/results.jsonl}
PIDS=()
cleanup() {
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null || true; done
  rm -rf "$TMP/topics" "$TMP/redis-everysec" "$TMP/redis-always" "$TMP/nats" "$TMP/disk"
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

H_PORT=$("$GEN" freeport)
"$GEN" hello --port "$H_PORT" >"$TMP/hello.log" 2>&1 &
H_PID=$!
PIDS+=("$H_PID")
wait_port "$H_PORT"

echo "## peers run"
echo "- commit: $(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo unknown)"
echo "- nproc: $(nproc); CPU: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')"
echo "- load average at start: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "- $(redis-server --version | cut -d' ' -f1-3); $(nats-server --version)"
echo "- PARTS=\"$PARTS\" REPS=$REPS CONNS=$CONNS DUR=$DUR results: $OUT"
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

load() { # label args... : one log-stream cell, result appended to $OUT
  local label=$1
  shift
  if ! "$GEN" load --label "$label" --dur "$DUR" "$@" | tee -a "$OUT" | cut -c1-200 >&2; then
    echo "cell $label $* FAILED" >&2
  fi
}
# One write cell of a system at batch $2 over $3 connections.
write_cell() { # label batch conns [topics]
  local common=(--op write --batch "$2" --conns "$3" --topics "${4:-1}")
  case $1 in
    topics-*) load "$1" --system topics --addr "127.0.0.1:$T_PORT" --server-pid "$T_PID" \
      --durability "${1#topics-}" "${common[@]}" ;;
    redis-everysec) load "$1" --system redis --addr "127.0.0.1:$RE_PORT" \
      --server-pid "$RE_PID" "${common[@]}" ;;
    redis-always) load "$1" --system redis --addr "127.0.0.1:$RA_PORT" \
      --server-pid "$RA_PID" "${common[@]}" ;;
    nats-file) load "$1" --system nats --addr "127.0.0.1:$N_PORT" \
      --server-pid "$N_PID" "${common[@]}" ;;
    hello) load "$1" --system hello --addr "127.0.0.1:$H_PORT" \
      --server-pid "$H_PID" "${common[@]}" ;;
  esac
}
WRITERS=(topics-disk redis-everysec topics-fsync redis-always nats-file topics-ephemeral hello)

for rep in $(seq 1 "$REPS"); do
  has_part write && {
    load hello --system hello --addr "127.0.0.1:$H_PORT" --server-pid "$H_PID" --op get \
      --conns "$CONNS"
    for b in $WRITE_BATCHES; do
      n=${#WRITERS[@]}
      for i in $(seq 0 $((n - 1))); do
        write_cell "${WRITERS[$(((i + rep - 1) % n))]}" "$b" "$CONNS"
      done
    done
  }
  has_part read && {
    # Alternate which of the pair reads first.
    pair=(topics redis)
    ((rep % 2)) || pair=(redis topics)
    for s in "${pair[@]}"; do
      case $s in
        topics) load topics-disk --system topics --addr "127.0.0.1:$T_PORT" \
          --server-pid "$T_PID" --op read --batch 1000 --conns "$CONNS" ;;
        redis) load redis-everysec --system redis --addr "127.0.0.1:$RE_PORT" \
          --server-pid "$RE_PID" --op read --batch 1000 --conns "$CONNS" ;;
      esac
    done
  }
  has_part many && for b in $WRITE_BATCHES; do
    write_cell topics-disk "$b" "$MANY_CONNS" 1
    write_cell topics-disk "$b" "$MANY_CONNS" "$MANY_TOPICS"
  done
  has_part single && for s in topics-fsync redis-always; do write_cell "$s" 1 1; done
  has_part disk && { "$GEN" disk --dir "$TMP/disk" | tee -a "$OUT" >&2 || echo "disk probe FAILED" >&2; }
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
