#!/usr/bin/env bash
# Runs every fuzz target for SECONDS (default 60) on the machine's stable toolchain and prints how many
# executions each ran. Usage: scripts/fuzz.sh [SECONDS] [TARGET...]. Installs cargo-fuzz if it is missing.
# New inputs go to a scratch corpus (target/fuzz-corpus/<target>); the committed seeds in fuzz/corpus are
# read, not written. A crash stops the script with libFuzzer's report and the input saved under
# fuzz/artifacts/<target>/ (turn it into a regression test).
set -euo pipefail
cd "$(dirname "$0")/.."
seconds="${1:-60}"
shift || true
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(eio_packet eio_payload eio3_payload eio_session sio_packet sio_msgpack sio_connection session_cookie ws_frames ws_deflate)
command -v cargo-fuzz >/dev/null || cargo install cargo-fuzz --locked
export RUSTC_BOOTSTRAP=1
for t in "${targets[@]}"; do
  scratch="target/fuzz-corpus/$t"
  mkdir -p "$scratch"
  log=$(mktemp)
  if ! (cd fuzz && cargo fuzz run "$t" "../$scratch" "corpus/$t" -- -max_total_time="$seconds" >"$log" 2>&1); then
    tail -40 "$log"
    echo "fuzz target $t FAILED" >&2
    exit 1
  fi
  runs=$(grep -Eo 'Done [0-9]+ runs' "$log" | grep -Eo '[0-9]+' || echo "?")
  echo "fuzz $t: $runs executions in ${seconds}s, no crash"
  rm -f "$log"
done
