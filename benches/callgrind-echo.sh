#!/usr/bin/env bash
# Instructions per echo round trip, counted by valgrind's callgrind: repeatable for the same binary whatever
# else the machine does, so two versions of the server compare exactly where wall-clock runs differ by a few
# per cent from round to round.
#
#   benches/callgrind-echo.sh BENCH_SERVER [BENCH_SERVER...]
#
# For each bench-server binary (e.g. target/perf/bench-server, and one built from an earlier commit), the
# server runs under callgrind on core 0 and loadgen's echo scenario (50 clients) on core 1, once for SHORT
# and once for LONG seconds (defaults 3 and 9); the difference of the two totals divided by the difference
# of the round trips is the cost of one more round trip, start-up and connections left out. Prints one line
# per binary: its path, the round trips of both runs, and instructions per round trip.
# Needs valgrind and a built loadgen (LOADGEN, default target/perf/loadgen).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
LOADGEN="${LOADGEN:-$root/target/perf/loadgen}"
SHORT="${SHORT:-3}"
LONG="${LONG:-9}"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

# one BIN SECONDS: prints "ROUND_TRIPS INSTRUCTIONS"
one() {
  local bin="$1" secs="$2" url="" ops pid
  taskset -c 0 valgrind --tool=callgrind --callgrind-out-file="$work/out" "$bin" --port 0 --threads 1 \
    >"$work/log" 2>&1 &
  pid=$!
  for _ in $(seq 1 300); do
    url="$(sed -n 's/^listening on \(http:\/\/.*\)$/\1/p' "$work/log")"
    [ -n "$url" ] && break
    sleep 0.1
  done
  [ -n "$url" ] || { echo "server did not start: $(tail -n 5 "$work/log")" >&2; kill "$pid"; exit 1; }
  ops="$(taskset -c 1 "$LOADGEN" --url "$url" --scenario echo --clients 50 --duration "$secs" \
    | sed -n 's/.*"ops":\([0-9]*\).*/\1/p' | tail -n 1)"
  kill -TERM "$pid"
  wait "$pid" 2>/dev/null || true
  echo "$ops $(sed -n 's/^summary: \([0-9]*\).*/\1/p' "$work/out")"
}

for bin in "$@"; do
  read -r ops1 ir1 < <(one "$bin" "$SHORT")
  read -r ops2 ir2 < <(one "$bin" "$LONG")
  awk -v b="$bin" -v o1="$ops1" -v o2="$ops2" -v i1="$ir1" -v i2="$ir2" \
    'BEGIN { printf "%s: %d and %d round trips, %.0f instructions per round trip\n", b, o1, o2, (i2 - i1) / (o2 - o1) }'
done
