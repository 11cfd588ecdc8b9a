#!/usr/bin/env bash
# The project's test command (README: "Run the tests"). On a fresh machine it installs what the tests
# need (npm packages of the interop tests), builds the workspace once, and runs every suite:
#   1. the sans-IO rule: proto crates must not depend on a runtime;
#   2. the gates: rustfmt, clippy with warnings as errors, rustdoc with warnings as errors, the library
#      crates without their default features, no import cycle between modules beyond the ones the design
#      needs (scripts/module_cycles.py), `cargo publish --dry-run` of the library crates, and a check on
#      the declared minimum Rust version (rust-version in Cargo.toml, installed with rustup when missing);
#   3. cargo tests of the whole workspace (unit, property, wire, doc tests);
#   4. a short run of every fuzz target;
#   5. interop tests with the real clients (npm engine.io-client and socket.io-client, their v3 / v2 releases
#      for allow_eio3, python-socketio 5 and 4,
#      headless Chromium), a real redis-server and HAProxy, all started by the tests themselves.
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TERM_COLOR=never
# A run from a clean clone builds everything once: no incremental cache (a third of the target directory,
# never reused by such a run) and line tables only for debug info (a panic's backtrace keeps files and
# lines). The whole run then needs about half the disk it took with cargo's defaults.
export CARGO_INCREMENTAL=0
export CARGO_PROFILE_DEV_DEBUG=line-tables-only

step() { printf '\n==> %s\n' "$*"; }

printf 'disk free where the project builds: %s\n' "$(df -h . | awk 'NR==2 {print $4}')"

step "sans-IO check: proto crates have no runtime dependency"
for crate in engineio-proto socketio-proto; do
  [ -d "$crate" ] || continue
  bad=$(cargo tree -p "$crate" -e normal --prefix none | grep -Eo '^(tokio|hyper|tungstenite|tokio-tungstenite|async-std|mio|smol)( |$)' | sort -u || true)
  if [ -n "$bad" ]; then
    echo "$crate must stay sans-IO, but depends on: $bad" >&2
    exit 1
  fi
  echo "$crate: ok"
done

step "gates: cargo fmt --check, clippy -D warnings, rustdoc -D warnings"
cargo fmt --all -- --check
cargo clippy --workspace --all-targets -- -D warnings
RUSTDOCFLAGS=-Dwarnings cargo doc --workspace --no-deps

step "gates: the library crates without default features; module import cycles"
for crate in engineio-proto engineio-server socketio-proto socketio-server session-bridge socketio-redis socketio-admin; do
  cargo check -q -p "$crate" --no-default-features
done
python3 scripts/module_cycles.py

step "gate: the library crates package and build as crates.io would take them (cargo publish --dry-run)"
# cargo unpacks the packaged crates into a local registry overlay and keeps an unpacked copy of a
# name and version it has seen: a copy left by an earlier run of the same version would be built instead
# of the code just packaged. Those overlays are the registries whose directory name starts with "-".
cargo_home=${CARGO_HOME:-$HOME/.cargo}
for crate in engineio-proto engineio-server socketio-proto socketio-server session-bridge socketio-redis socketio-admin; do
  rm -rf "$cargo_home"/registry/src/-*/"$crate"-[0-9]* "$cargo_home"/registry/cache/-*/"$crate"-[0-9]*.crate
done
cargo publish --dry-run --workspace --allow-dirty --quiet

msrv=$(sed -n 's/^rust-version = "\(.*\)"/\1/p' Cargo.toml)
step "gate: the libraries and programs build on the declared rust-version ($msrv)"
rustup toolchain install "$msrv" --profile minimal >/dev/null
cargo "+$msrv" check --workspace --target-dir target/msrv
rm -rf target/msrv

step "install the servers and tools the tests use (Debian packages, when missing)"
missing=()
command -v redis-server >/dev/null || missing+=(redis-server)
command -v haproxy >/dev/null || missing+=(haproxy)
command -v chromium >/dev/null || missing+=(chromium)
command -v node >/dev/null || missing+=(nodejs npm)
python3 -m venv --help >/dev/null 2>&1 || missing+=(python3-venv)
if [ ${#missing[@]} -gt 0 ]; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

step "build the workspace (tests, examples, benches)"
cargo build --workspace --all-targets

step "cargo tests"
cargo test --workspace

step "fuzz: a short run of every target (scripts/fuzz.sh SECONDS for longer ones)"
./scripts/fuzz.sh 5

step "install the interop test clients (npm) and the demo's browser client"
(cd e2e && npm ci --no-audit --no-fund --loglevel=error)
(cd e2e/cluster && npm ci --no-audit --no-fund --loglevel=error)
(cd e2e/conformance && npm ci --no-audit --no-fund --loglevel=error)
(cd examples/demo && npm ci --no-audit --no-fund --loglevel=error)

step "interop tests with the npm clients and a headless Chromium"
(cd e2e && npm test)

step "cluster tests: Node and Rust servers on one redis-server, HAProxy stickiness"
(cd e2e/cluster && npm test)

step "differential conformance against the reference JS parsers (bounded; scripts/conformance.sh for long runs)"
cargo run -q -p conformance -- --cases 2000

step "interop tests with python-socketio (PyPI, pinned in e2e/python/requirements.lock)"
./e2e/python/run.sh

step "interop tests with python-socketio 4, a Socket.IO 2 client (PyPI, pinned in e2e/python-v2/requirements.lock)"
./e2e/python-v2/run.sh

step "done"
printf 'target directory: %s; disk free: %s\n' "$(du -sh target | cut -f1)" "$(df -h . | awk 'NR==2 {print $4}')"
