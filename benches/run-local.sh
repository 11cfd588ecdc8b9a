#!/usr/bin/env bash
# Builds bench-server and loadgen in release, starts bench-server (pinned to core 0 with taskset when it
# exists), runs every scenario with small sizes (loadgen pinned to core 1) and prints one JSON line each.
#
# Sizes can be overridden through the environment, e.g.:
#   ECHO_CLIENTS=50 DURATION=10 BROADCAST_CLIENTS=1000 BROADCAST_MESSAGES=200 IDLE_CLIENTS=5000 \
#   ./benches/run-local.sh
# SERVER_THREADS sets the server's tokio worker threads (default 1).
# Every scenario is bounded: the whole run takes about a minute with the defaults.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/.." && pwd)"

DURATION="${DURATION:-5}"
ECHO_CLIENTS="${ECHO_CLIENTS:-50}"
ACK_CLIENTS="${ACK_CLIENTS:-50}"
BROADCAST_CLIENTS="${BROADCAST_CLIENTS:-1000}"
BROADCAST_MESSAGES="${BROADCAST_MESSAGES:-200}"
IDLE_CLIENTS="${IDLE_CLIENTS:-1000}"
IDLE_HOLD="${IDLE_HOLD:-2}"
CONNECT_CLIENTS="${CONNECT_CLIENTS:-50}"
CONNECT_MAX="${CONNECT_MAX:-20000}"
POLLING_CLIENTS="${POLLING_CLIENTS:-50}"
SERVER_THREADS="${SERVER_THREADS:-1}"

# The idle scenario needs one descriptor per connection on both sides.
ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
echo "open files limit: $(ulimit -n)" >&2

echo "building (release)..." >&2
(cd "$root" && cargo build --release -p benches --bin bench-server --bin loadgen >&2)
target_dir="$(cd "$root" && cargo metadata --format-version 1 --no-deps 2>/dev/null \
  | sed -n 's/.*"target_directory":"\([^"]*\)".*/\1/p')"
bin="${target_dir:-$root/target}/release"

pin_server=()
pin_load=()
if command -v taskset >/dev/null 2>&1; then
  pin_server=(taskset -c 0)
  if [ "$(nproc)" -ge 2 ]; then pin_load=(taskset -c 1); else pin_load=(taskset -c 0); fi
fi

log="$(mktemp)"
"${pin_server[@]}" "$bin/bench-server" --port 0 --threads "$SERVER_THREADS" >"$log" 2>&1 &
server_pid=$!
cleanup() {
  kill "$server_pid" 2>/dev/null || true
  wait "$server_pid" 2>/dev/null || true
  rm -f "$log"
}
trap cleanup EXIT

url=""
for _ in $(seq 1 100); do
  url="$(sed -n 's/^listening on \(http:\/\/.*\)$/\1/p' "$log")"
  [ -n "$url" ] && break
  if ! kill -0 "$server_pid" 2>/dev/null; then
    echo "bench-server exited:" >&2
    cat "$log" >&2
    exit 1
  fi
  sleep 0.1
done
[ -n "$url" ] || { echo "bench-server did not start" >&2; exit 1; }
echo "bench-server pid $server_pid at $url" >&2

run() {
  # A scenario that fails is reported and the run goes on.
  "${pin_load[@]}" "$bin/loadgen" --url "$url" "$@" || echo "{\"scenario_failed\":\"$*\"}"
}

# idle first, so its RSS delta is measured on a server that has not yet served the other scenarios' peaks.
run --scenario idle --clients "$IDLE_CLIENTS" --duration "$IDLE_HOLD" --server-pid "$server_pid"
run --scenario echo --clients "$ECHO_CLIENTS" --duration "$DURATION"
run --scenario ack --clients "$ACK_CLIENTS" --duration "$DURATION"
run --scenario broadcast --clients "$BROADCAST_CLIENTS" --messages "$BROADCAST_MESSAGES" --duration 30
run --scenario connect --clients "$CONNECT_CLIENTS" --duration "$DURATION" --messages "$CONNECT_MAX"
run --scenario polling-echo --clients "$POLLING_CLIENTS" --duration "$DURATION"
run --scenario idle-polling --clients "$IDLE_CLIENTS" --duration "$IDLE_HOLD" --server-pid "$server_pid"
