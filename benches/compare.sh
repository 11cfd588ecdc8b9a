#!/usr/bin/env bash
# Side-by-side comparison: the same loadgen scenarios against four servers with the same behaviour:
#   raw           benches/compare/rust raw-server: tokio-tungstenite with no Socket.IO library (the ceiling)
#   ours          bench-server, on socketio-server
#   socketioxide  benches/compare/rust socketioxide-server (socketioxide 0.18 on hyper 1)
#   node          benches/compare/node/server.mjs (socket.io 4.8 on Node.js)
#   ours-info     (only when asked) bench-server with its log at info (RUST_LOG=info, tracing's fmt
#                 subscriber writing to the server's log file), to show what the log costs
#   baseline      (only when asked) the bench-server binary at BASELINE_BIN, e.g. built from an earlier
#                 commit: two versions of ours side by side in one run, to show a change costs nothing
#
# Each round takes the scenarios one by one; for each, every server in turn (the order rotates) is started
# fresh, pinned to core 0 with one worker thread, runs it with loadgen pinned to core 1, and is stopped. So
# the figures compared within a round are taken seconds apart. Every loadgen JSON line is saved
# to RESULTS, tagged with the server, the round, the server's CPU time during that run (server_cpu_s) and
# how each core spent that time (cores: user, sys, softirq, idle in percent, from /proc/stat); at
# the end benches/compare/summary.mjs prints markdown tables of medians over the rounds (throughput as ratios
# to raw measured in the same round, latencies, and server CPU time per operation).
#
# Environment (defaults in brackets):
#   ROUNDS [3]  SERVERS ["raw ours socketioxide node"]  RESULTS [<target>/compare/results-<time>.jsonl]
#   SCENARIOS ["idle echo ack broadcast connect polling-echo idle-polling fanout storm"] (a subset runs only those)
#   DURATION [5]  ECHO_CLIENTS [50]  ACK_CLIENTS [50]  BROADCAST_CLIENTS [1000]  BROADCAST_MESSAGES [200]
#   IDLE_CLIENTS [5000]  IDLE_HOLD [2]  CONNECT_CLIENTS [50]  CONNECT_MAX [20000]  POLLING_CLIENTS [50]
#   FANOUT_CLIENTS [15000]  FANOUT_INTERVAL_MS [20]  FANOUT_DURATION [10]  (fanout: one room, one broadcast
#   per interval)  STORM_CLIENTS [15000]  STORM_SPREAD_MS [1000]  STORM_MISSED [3]  (storm: all cut at once,
#   back within the spread with connection state recovery on where the server has it: ours and node)
#   PIN [1] (0: neither the server nor loadgen is pinned, for runs with SERVER_THREADS=2 on two cores)
#   BASELINE_BIN (needed for the baseline server)  SERVER_THREADS [1]  SETTLE [1] (seconds of rest between scenarios; 3 after connect, so that closing
#   sockets drain and TIME_WAIT ports are not all still held by the next scenario)
# e.g.  ROUNDS=1 DURATION=3 IDLE_CLIENTS=2000 SERVERS="raw ours" ./benches/compare.sh
#
# A scenario that fails (loadgen exits non-zero or prints no result, or the server dies) is recorded as
# failed and the run goes on. The default run takes about 8 minutes (plus the builds).
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/.." && pwd)"
compare="$here/compare"

ROUNDS="${ROUNDS:-3}"
SERVERS="${SERVERS:-raw ours socketioxide node}"
SCENARIOS="${SCENARIOS:-idle echo ack broadcast connect polling-echo idle-polling fanout storm}"
DURATION="${DURATION:-5}"
ECHO_CLIENTS="${ECHO_CLIENTS:-50}"
ACK_CLIENTS="${ACK_CLIENTS:-50}"
BROADCAST_CLIENTS="${BROADCAST_CLIENTS:-1000}"
BROADCAST_MESSAGES="${BROADCAST_MESSAGES:-200}"
IDLE_CLIENTS="${IDLE_CLIENTS:-5000}"
IDLE_HOLD="${IDLE_HOLD:-2}"
CONNECT_CLIENTS="${CONNECT_CLIENTS:-50}"
CONNECT_MAX="${CONNECT_MAX:-20000}"
POLLING_CLIENTS="${POLLING_CLIENTS:-50}"
SERVER_THREADS="${SERVER_THREADS:-1}"
FANOUT_CLIENTS="${FANOUT_CLIENTS:-15000}"
FANOUT_INTERVAL_MS="${FANOUT_INTERVAL_MS:-20}"
FANOUT_DURATION="${FANOUT_DURATION:-10}"
STORM_CLIENTS="${STORM_CLIENTS:-15000}"
STORM_SPREAD_MS="${STORM_SPREAD_MS:-1000}"
STORM_MISSED="${STORM_MISSED:-3}"
SETTLE="${SETTLE:-1}"

read -r -a servers <<<"$SERVERS"
for s in "${servers[@]}"; do
  case "$s" in
    raw | ours | socketioxide | node) ;;
    ours-info) ;;
    baseline) [ -x "${BASELINE_BIN:-}" ] || { echo "SERVERS has baseline: set BASELINE_BIN to a bench-server binary" >&2; exit 2; } ;;
    *) echo "unknown server '$s' in SERVERS (raw ours ours-info socketioxide node baseline)" >&2; exit 2 ;;
  esac
done
[ "${#servers[@]}" -gt 0 ] || { echo "SERVERS is empty" >&2; exit 2; }
wants() { [[ " ${servers[*]} " == *" $1 "* ]]; }
read -r -a scenario_list <<<"$SCENARIOS"
for s in "${scenario_list[@]}"; do
  case "$s" in
    idle | echo | ack | broadcast | connect | polling-echo | idle-polling | fanout | storm) ;;
    *) echo "unknown scenario '$s' in SCENARIOS" >&2; exit 2 ;;
  esac
done
scenario_wanted() { [[ " ${scenario_list[*]} " == *" $1 "* ]]; }

command -v node >/dev/null 2>&1 || { echo "node is needed (the node server and the summary)" >&2; exit 1; }

# The idle scenario needs one descriptor per connection on both sides.
ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
echo "open files limit: $(ulimit -n)" >&2

# Every Rust program here is built with the `perf` profile (release + fat LTO, one codegen unit).
echo "building bench-server and loadgen (profile perf)..." >&2
(cd "$root" && cargo build --profile perf -p benches --bin bench-server --bin loadgen >&2)
target_dir="$(cd "$root" && cargo metadata --format-version 1 --no-deps 2>/dev/null \
  | sed -n 's/.*"target_directory":"\([^"]*\)".*/\1/p')"
target_dir="${target_dir:-$root/target}"
bin="$target_dir/perf"
cmp_target="$target_dir/compare"
cmp_bin="$cmp_target/perf"
if wants raw || wants socketioxide; then
  echo "building the comparison servers (profile perf, target $cmp_target)..." >&2
  CARGO_TARGET_DIR="$cmp_target" cargo build --profile perf --locked \
    --manifest-path "$compare/rust/Cargo.toml" >&2
fi
if wants node && [ ! -d "$compare/node/node_modules" ]; then
  echo "installing the node server's packages (npm ci)..." >&2
  (cd "$compare/node" && npm ci --no-audit --no-fund >&2)
fi

mkdir -p "$cmp_target"
RESULTS="${RESULTS:-$cmp_target/results-$(date +%Y%m%d-%H%M%S).jsonl}"
mkdir -p "$(dirname "$RESULTS")"
: >"$RESULTS"

pin_server=()
pin_load=()
if [ "${PIN:-1}" = 0 ]; then
  echo "PIN=0: server and loadgen are not pinned (both may use every core)" >&2
elif command -v taskset >/dev/null 2>&1; then
  pin_server=(taskset -c 0)
  if [ "$(nproc)" -ge 2 ]; then pin_load=(taskset -c 1); else pin_load=(taskset -c 0); fi
else
  echo "taskset not found: server and loadgen are not pinned" >&2
fi

# The run's settings, first line of the results file, for the summary's header.
printf '{"meta":{"rounds":%s,"servers":"%s","duration_s":%s,"echo_clients":%s,"ack_clients":%s,"broadcast_clients":%s,"broadcast_messages":%s,"idle_clients":%s,"idle_hold_s":%s,"connect_clients":%s,"connect_max":%s,"polling_clients":%s,"fanout_clients":%s,"fanout_interval_ms":%s,"storm_clients":%s,"storm_spread_ms":%s,"server_threads":%s,"pinned":%s,"nproc":%s,"started":"%s"}}\n' \
  "$ROUNDS" "${servers[*]}" "$DURATION" "$ECHO_CLIENTS" "$ACK_CLIENTS" "$BROADCAST_CLIENTS" "$BROADCAST_MESSAGES" \
  "$IDLE_CLIENTS" "$IDLE_HOLD" "$CONNECT_CLIENTS" "$CONNECT_MAX" "$POLLING_CLIENTS" "$FANOUT_CLIENTS" \
  "$FANOUT_INTERVAL_MS" "$STORM_CLIENTS" "$STORM_SPREAD_MS" "$SERVER_THREADS" \
  "$([ ${#pin_server[@]} -gt 0 ] && echo true || echo false)" "$(nproc)" "$(date -u +%Y-%m-%dT%H:%M:%SZ)" \
  >>"$RESULTS"

work="$(mktemp -d)"
server_pid=""
server_log="$work/server.log"
load_err="$work/loadgen.err"

stop_server() {
  [ -n "$server_pid" ] || return 0
  kill "$server_pid" 2>/dev/null || true
  for _ in $(seq 1 50); do
    kill -0 "$server_pid" 2>/dev/null || break
    sleep 0.1
  done
  kill -9 "$server_pid" 2>/dev/null || true
  wait "$server_pid" 2>/dev/null || true
  server_pid=""
}
cleanup() {
  stop_server
  rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# start_server NAME [SCENARIO]: starts it pinned, sets server_pid and url; returns 1 if it does not come up.
# For the storm, the servers that have connection state recovery (ours, node) get it.
start_server() {
  local cmd recovery=()
  [ "${2:-}" = storm ] && recovery=(--recovery)
  case "$1" in
    raw) cmd=("$cmp_bin/raw-server" --port 0 --threads "$SERVER_THREADS") ;;
    ours) cmd=("$bin/bench-server" --port 0 --threads "$SERVER_THREADS" "${recovery[@]}") ;;
    ours-info) cmd=(env RUST_LOG=info "$bin/bench-server" --port 0 --threads "$SERVER_THREADS" "${recovery[@]}") ;;
    baseline) cmd=("$BASELINE_BIN" --port 0 --threads "$SERVER_THREADS" "${recovery[@]}") ;;
    socketioxide) cmd=("$cmp_bin/socketioxide-server" --port 0 --threads "$SERVER_THREADS") ;;
    node) cmd=(node "$compare/node/server.mjs" --port 0 "${recovery[@]}") ;;
  esac
  : >"$server_log"
  # taskset execs the server, so $! is the server's own pid (its RSS is what idle measures).
  "${pin_server[@]}" "${cmd[@]}" >"$server_log" 2>&1 &
  server_pid=$!
  url=""
  for _ in $(seq 1 200); do
    url="$(sed -n 's/^listening on \(http:\/\/.*\)$/\1/p' "$server_log")"
    [ -n "$url" ] && return 0
    kill -0 "$server_pid" 2>/dev/null || break
    sleep 0.05
  done
  echo "server $1 did not start:" >&2
  tail -n 20 "$server_log" >&2
  stop_server
  return 1
}

# cpu_ticks PID: the process's user + system CPU time (all its threads) in clock ticks, or nothing.
clk_tck="$(getconf CLK_TCK 2>/dev/null || echo 100)"
cpu_ticks() {
  # Fields after the ")" that ends the command name: utime and stime are the 12th and 13th.
  sed 's/.*) //' "/proc/$1/stat" 2>/dev/null | awk '{ print $12 + $13 }' || true
}

# core_ticks: each core's user (with nice), system, irq + softirq and idle (with iowait) ticks from
# /proc/stat, one line per core ("cpuN user sys softirq idle"); nothing where there is no /proc/stat.
core_ticks() {
  awk '/^cpu[0-9]/ { print $1, $2 + $3, $4, $7 + $8, $5 + $6 }' /proc/stat 2>/dev/null || true
}

# cores_json BEFORE AFTER: each core's share of the time between two core_ticks in percent, as JSON
# ({"cpu0":{"user":..,"sys":..,"softirq":..,"idle":..},..}); the kernel's network receive work on loopback
# (softirq) is done on whichever core sends, and counts in no process's CPU time.
cores_json() {
  awk -v before="$1" 'BEGIN {
      n = split(before, lines, "\n")
      for (i = 1; i <= n; i++) { split(lines[i], f, " "); u[f[1]] = f[2]; s[f[1]] = f[3]; q[f[1]] = f[4]; d[f[1]] = f[5] }
    }
    { du = $2 - u[$1]; ds = $3 - s[$1]; dq = $4 - q[$1]; di = $5 - d[$1]; t = du + ds + dq + di
      if (t <= 0) next
      out = out sep sprintf("\"%s\":{\"user\":%.0f,\"sys\":%.0f,\"softirq\":%.0f,\"idle\":%.0f}", $1, 100*du/t, 100*ds/t, 100*dq/t, 100*di/t)
      sep = "," }
    END { printf "{%s}", out }' <<<"$2"
}

# record SERVER ROUND SCENARIO REASON: a failed scenario in the results.
record_failure() {
  local reason="${4//\"/\'}"
  echo "{\"server\":\"$1\",\"round\":$2,\"scenario\":\"$3\",\"failed\":true,\"reason\":\"$reason\"}" \
    | tee -a "$RESULTS" >&2
}

# run SERVER ROUND SCENARIO ARGS...: one loadgen run; its JSON line, tagged, goes to RESULTS.
run() {
  local server="$1" round="$2" scenario="$3"
  shift 3
  if ! kill -0 "$server_pid" 2>/dev/null; then
    record_failure "$server" "$round" "$scenario" "server not running"
    return 0
  fi
  local out rc=0 line cpu0 cpu1 cpu=null cores0 cores="{}"
  cpu0="$(cpu_ticks "$server_pid")"
  cores0="$(core_ticks)"
  out="$(timeout 300 "${pin_load[@]}" "$bin/loadgen" --url "$url" --scenario "$scenario" "$@" 2>"$load_err")" || rc=$?
  cpu1="$(cpu_ticks "$server_pid")"
  [ -n "$cores0" ] && cores="$(cores_json "$cores0" "$(core_ticks)")"
  if [ -n "$cpu0" ] && [ -n "$cpu1" ]; then
    cpu="$(awk -v a="$cpu0" -v b="$cpu1" -v hz="$clk_tck" 'BEGIN { printf "%.2f", (b - a) / hz }')"
  fi
  line="$(printf '%s\n' "$out" | grep '^{' | tail -n 1 || true)"
  if [ "$rc" -ne 0 ] || [ -z "$line" ]; then
    record_failure "$server" "$round" "$scenario" "loadgen exit $rc: $(head -c 200 "$load_err" | tr '\n' ' ')"
  else
    echo "{\"server\":\"$server\",\"round\":$round,\"server_cpu_s\":$cpu,\"cores\":$cores,${line#\{}" | tee -a "$RESULTS" >&2
    # Show what went wrong when a scenario counted errors (the first few distinct messages).
    case "$line" in
      *'"errors":0'[,}]*) ;;
      *) sort "$load_err" | uniq -c | sort -rn | head -n 3 | sed "s/^/  [$server $scenario] /" >&2 ;;
    esac
  fi
  if ! kill -0 "$server_pid" 2>/dev/null; then
    echo "server $server exited during $scenario:" >&2
    tail -n 20 "$server_log" >&2
  fi
}

# run_scenario SERVER ROUND SCENARIO: one scenario on a freshly started server, which is stopped afterwards
# (so no scenario sees what another left behind: idle and idle-polling measure RSS on a clean server).
run_scenario() {
  local server="$1" round="$2" s="$3"
  if ! start_server "$server" "$s"; then
    record_failure "$server" "$round" "$s" "server did not start"
    return 0
  fi
  echo "== round $round/$ROUNDS: $s on $server (pid $server_pid at $url) ==" >&2
  case "$s" in
    idle) run "$server" "$round" idle --clients "$IDLE_CLIENTS" --duration "$IDLE_HOLD" --server-pid "$server_pid" ;;
    echo) run "$server" "$round" echo --clients "$ECHO_CLIENTS" --duration "$DURATION" ;;
    ack) run "$server" "$round" ack --clients "$ACK_CLIENTS" --duration "$DURATION" ;;
    broadcast)
      run "$server" "$round" broadcast --clients "$BROADCAST_CLIENTS" --messages "$BROADCAST_MESSAGES" --duration 30
      ;;
    connect)
      run "$server" "$round" connect --clients "$CONNECT_CLIENTS" --duration "$DURATION" --messages "$CONNECT_MAX"
      ;;
    polling-echo) run "$server" "$round" polling-echo --clients "$POLLING_CLIENTS" --duration "$DURATION" ;;
    idle-polling)
      run "$server" "$round" idle-polling --clients "$IDLE_CLIENTS" --duration "$IDLE_HOLD" --server-pid "$server_pid"
      ;;
    fanout)
      run "$server" "$round" fanout --clients "$FANOUT_CLIENTS" --interval-ms "$FANOUT_INTERVAL_MS" \
        --duration "$FANOUT_DURATION"
      ;;
    storm)
      run "$server" "$round" storm --clients "$STORM_CLIENTS" --spread-ms "$STORM_SPREAD_MS" \
        --messages "$STORM_MISSED" --duration 20 --server-pid "$server_pid"
      ;;
  esac
  stop_server
  # After connect and the storm, closing sockets drain and TIME_WAIT ports are released before the next run.
  case "$s" in connect | storm) sleep $((SETTLE + 2)) ;; *) sleep "$SETTLE" ;; esac
}

n=${#servers[@]}
started=$SECONDS
for round in $(seq 1 "$ROUNDS"); do
  k=0
  for s in idle echo ack broadcast connect polling-echo idle-polling fanout storm; do
    scenario_wanted "$s" || continue
    # Every server runs this scenario now, one after the other, so the figures compared within a round are
    # taken seconds apart rather than minutes (this shared machine's speed drifts). The order rotates with
    # the round and the scenario, so no server always goes first.
    for i in $(seq 0 $((n - 1))); do
      server="${servers[$(((i + round - 1 + k) % n))]}"
      if [ "$server" = raw ] && [[ "$s" == *polling* ]]; then continue; fi
      run_scenario "$server" "$round" "$s"
    done
    k=$((k + 1))
  done
done
echo "done in $((SECONDS - started)) s; results: $RESULTS" >&2
echo >&2

node "$compare/summary.mjs" "$RESULTS"
