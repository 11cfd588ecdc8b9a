#!/usr/bin/env bash
# The python-socketio 4 interop tests (a Socket.IO 2 client: Engine.IO v3), run by e2e/python/run.sh with this
# folder's own venv and requirements.lock. Extra arguments go to pytest.
set -euo pipefail
SUITE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
export SUITE
exec "$SUITE/../python/run.sh" "$@"
