"""Fixtures for the python-socketio 4 interop tests (a Socket.IO 2 client, speaking Engine.IO v3).

The test server is started as in e2e/python (its RunningServer, loaded from there), with --allow-eio3."""

import importlib.util
import threading
import time
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
_spec = importlib.util.spec_from_file_location("e2e_python_fixtures", HERE.parent / "python" / "conftest.py")
_fixtures = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_fixtures)
RunningServer = _fixtures.RunningServer
EventLog = _fixtures.EventLog


@pytest.fixture
def start_server():
    """Factory: `start_server(*flags)` starts a testserver with --allow-eio3 and the flags; killed at the end."""
    servers = []

    def start(*flags):
        server = RunningServer(["--allow-eio3", *flags])
        servers.append(server)
        return server.url

    yield start
    for server in servers:
        server.stop()


@pytest.fixture
def clients():
    """Factory of `socketio.Client`s (no reconnection), disconnected at the end, each with an EventLog per
    namespace it watches (`client.log[nsp]`)."""
    import socketio

    made = []

    def make(*namespaces):
        client = socketio.Client(reconnection=False)
        client.log = {}
        for nsp in namespaces:
            log = EventLog()
            client.log[nsp] = log
            client.on("connect", lambda log=log: log.add("connect"), namespace=nsp)
            client.on("disconnect", lambda log=log: log.add("disconnect"), namespace=nsp)
            for event in WATCHED:
                client.on(event, _recorder(log, event), namespace=nsp)
        made.append(client)
        return client

    yield make
    for client in made:
        worker = threading.Thread(target=_quiet_disconnect, args=(client,), daemon=True)
        worker.start()
        worker.join(1.0)


# The events the tests wait for (python-socketio 4 has no catch-all handler).
WATCHED = ["auth", "message-back", "room-message", "broadcast", "welcome", "ack-result", "disconnected"]


def _recorder(log, event):
    return lambda *args: log.add(event, *args)


def _quiet_disconnect(client):
    try:
        client.disconnect()
    except Exception:  # noqa: BLE001 - teardown must not mask the test's own outcome
        pass


def wait_until(predicate, timeout=3.0, what="a condition"):
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.01)
