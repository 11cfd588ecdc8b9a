#!/usr/bin/env bash
# The project's main job (README: "Run the demo"): the session demo at http://localhost:3000 on embedded
# defaults (sessions in memory). It installs the official Socket.IO browser client from the npm registry
# (examples/demo/package.json) and builds and runs the demo server. Extra arguments go to the server, e.g.
#   ./scripts/demo.sh --redis redis://127.0.0.1:6379     # sessions in Redis, in connect-redis's format
set -euo pipefail
cd "$(dirname "$0")/.."
command -v node >/dev/null || { apt-get update -qq && apt-get install -y -qq nodejs npm; }
(cd examples/demo && npm install --no-audit --no-fund --loglevel=error)
exec cargo run --release -p demo -- "$@"
