#!/usr/bin/env bash
# Runs the python-socketio interop tests against the already built testserver example.
#
# Needs only python3 (3.8+) with pip. Creates .venv here if it is missing or broken, installs the pinned
# requirements.lock into it (a no-op when already installed), then runs pytest -q and exits with its status.
# Extra arguments go to pytest. TESTSERVER_BIN overrides the server binary (default:
# ../../target/debug/testserver); PYTHON overrides the interpreter used to create the venv.
set -euo pipefail

# SUITE is the folder of the tests and their requirements.lock (default: this one; e2e/python-v2/run.sh sets it).
cd "${SUITE:-$(dirname "${BASH_SOURCE[0]}")}"
PYTHON="${PYTHON:-python3}"
VENV=.venv
VPY="$VENV/bin/python"

venv_ok() {
    [ -x "$VPY" ] && "$VPY" -m pip --version >/dev/null 2>&1
}

if ! venv_ok; then
    rm -rf "$VENV"
    if ! "$PYTHON" -m venv "$VENV" >/dev/null 2>&1 || ! venv_ok; then
        # Interpreters without ensurepip (e.g. Debian's python3 without python3-venv): create the venv
        # without pip, then let the interpreter's own pip install pip into it.
        rm -rf "$VENV"
        "$PYTHON" -m venv --without-pip "$VENV"
        "$PYTHON" -m pip --python "$VPY" install --quiet --disable-pip-version-check pip
    fi
fi

"$VPY" -m pip install --quiet --disable-pip-version-check -r requirements.lock

status=0
"$VPY" -m pytest -q "$@" || status=$?
exit "$status"
