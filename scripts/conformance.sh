#!/usr/bin/env bash
# Differential conformance run: our Engine.IO / Socket.IO codecs against the reference npm parsers
# (engine.io-parser, socket.io-parser, socket.io-msgpack-parser; pinned in e2e/conformance/package-lock.json).
# See CONFORMANCE.md for what is compared and for the known divergences.
#
#   scripts/conformance.sh [CASES] [-- more arguments for the binary, e.g. --seed 7 --max-print 50]
#
# CASES defaults to 100000 (a long run; the binary's own default, 2000, is the bounded run). Exits non-zero
# when any divergence is not a known one.
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TERM_COLOR=never

cases="${1:-100000}"
[ $# -gt 0 ] && shift
[ "${1:-}" = "--" ] && shift

(cd e2e/conformance && npm ci --no-audit --no-fund --loglevel=error)
cargo build --release -p conformance
exec ./target/release/conformance --cases "$cases" "$@"
