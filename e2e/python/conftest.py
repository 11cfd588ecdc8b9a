"""Fixtures for the python-socketio interop tests.

The server under test is the `testserver` binary (the `testserver` crate of the workspace). Its path comes from the
environment variable TESTSERVER_BIN, or defaults to ../../target/debug/testserver relative to this
folder. This suite never builds it.
"""

import os
import queue
import subprocess
import threading
import time
from pathlib import Path

import pytest
import socketio

HERE = Path(__file__).resolve().parent
DEFAULT_BIN = HERE / ".." / ".." / "target" / "debug" / "testserver"
STARTUP_TIMEOUT = float(os.environ.get("TESTSERVER_STARTUP_TIMEOUT", "5"))
LISTENING_PREFIX = "listening on "


def server_binary() -> Path:
    return Path(os.environ.get("TESTSERVER_BIN") or DEFAULT_BIN).resolve()


class RunningServer:
    """One testserver process: started with `--port 0`, its URL read from its stdout."""

    def __init__(self, flags, binary=None):
        binary = binary or server_binary()
        if not binary.is_file() or not os.access(binary, os.X_OK):
            pytest.fail(
                f"testserver binary not found or not executable at {binary} "
                "(build the workspace: cargo build --workspace, or set TESTSERVER_BIN)",
                pytrace=False,
            )
        self.args = [str(binary), "--port", "0", *flags]
        self.stderr_lines = []
        self.proc = subprocess.Popen(
            self.args,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            bufsize=1,
        )
        self._stdout_lines = queue.Queue()
        # Drain both pipes for the process's whole life so it can never block on a full pipe.
        threading.Thread(target=self._pump, args=(self.proc.stdout, self._stdout_lines.put), daemon=True).start()
        self._stderr_pump = threading.Thread(
            target=self._pump, args=(self.proc.stderr, self.stderr_lines.append), daemon=True
        )
        self._stderr_pump.start()
        self.url = self._wait_listening()

    @staticmethod
    def _pump(pipe, sink):
        for line in pipe:
            sink(line.rstrip("\n"))
        sink(None)

    def _wait_listening(self):
        deadline = time.monotonic() + STARTUP_TIMEOUT
        seen = []
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                self.stop()
                pytest.fail(
                    f"testserver did not print '{LISTENING_PREFIX}http://...' within {STARTUP_TIMEOUT:.1f} s "
                    f"(command: {' '.join(self.args)}; stdout so far: {seen!r}; stderr: {self._stderr()!r})",
                    pytrace=False,
                )
            try:
                line = self._stdout_lines.get(timeout=remaining)
            except queue.Empty:
                continue
            if line is None:
                code = self.proc.wait(timeout=2)
                self._stderr_pump.join(1)
                pytest.fail(
                    f"testserver exited with status {code} before listening "
                    f"(command: {' '.join(self.args)}; stdout: {seen!r}; stderr: {self._stderr()!r})",
                    pytrace=False,
                )
            seen.append(line)
            if line.startswith(LISTENING_PREFIX):
                # The URL is the first word (the demo adds where its sessions live).
                return line[len(LISTENING_PREFIX):].split()[0]

    def _stderr(self):
        return "\n".join(l for l in self.stderr_lines if l is not None)[-4000:]

    def stop(self):
        if self.proc.poll() is None:
            self.proc.kill()
        try:
            self.proc.wait(timeout=5)
        except subprocess.TimeoutExpired:  # pragma: no cover - kill(2) does not get ignored
            pass


@pytest.fixture
def start_server():
    """Factory: `start_server("--msgpack", ...)` starts a testserver with extra flags and returns its URL.

    Every server started through it is killed when the test ends."""
    servers = []

    def start(*flags):
        server = RunningServer(flags)
        servers.append(server)
        return server.url

    yield start
    crashed = [(s, s.proc.poll()) for s in servers if s.proc.poll() is not None]
    for server in servers:
        server.stop()
    if crashed:
        pytest.fail(
            "testserver exited during the test: "
            + "; ".join(f"status {code}, stderr: {s._stderr()!r}" for s, code in crashed),
            pytrace=False,
        )


def demo_binary() -> Path:
    return Path(os.environ.get("DEMO_BIN") or HERE / ".." / ".." / "target" / "debug" / "demo").resolve()


@pytest.fixture
def demo_url():
    """URL of the session demo (its `listening on http://localhost:PORT`), started for this test."""
    server = RunningServer(["--check-interval-ms", "500"], binary=demo_binary())
    yield server.url
    server.stop()


@pytest.fixture
def server_url(start_server):
    """URL (http://127.0.0.1:PORT) of a testserver started with default flags for this test."""
    return start_server()


class EventLog:
    """Thread-safe record of the events a client received on one namespace, with bounded waits."""

    def __init__(self):
        self._cond = threading.Condition()
        self.events = []  # [event name, *args] in arrival order

    def add(self, name, *args):
        with self._cond:
            self.events.append([name, *args])
            self._cond.notify_all()

    def named(self, name):
        with self._cond:
            return [e[1:] for e in self.events if e[0] == name]

    def wait_for(self, name, timeout=3.0, count=1):
        """Return the args of the first `count` events called `name`, waiting at most `timeout` s."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                found = [e[1:] for e in self.events if e[0] == name]
                if len(found) >= count:
                    return found[0] if count == 1 else found[:count]
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise AssertionError(
                        f"timed out after {timeout} s waiting for {count} '{name}' event(s); got: {self.events!r}"
                    )
                self._cond.wait(remaining)


def bounded_disconnect(client, timeout=1.0):
    """Disconnect a `socketio.Client` or `socketio.SimpleClient`, waiting at most `timeout` seconds.

    python-socketio's sync client can hang in disconnect() over long-polling: if a POST is in flight when
    disconnect() is called, its writer thread sees the state change after that POST and exits without sending
    the queued DISCONNECT and close packets, and disconnect() then waits for the pending long-poll GET, which
    the server answers only at its next ping (25 s). That is a client-side race; teardown must not depend on
    it. A disconnect still stuck after `timeout` ends when the test's server is killed."""
    worker = threading.Thread(target=_quiet_disconnect, args=(client,), daemon=True)
    worker.start()
    worker.join(timeout)
    return not worker.is_alive()


def _quiet_disconnect(client):
    try:
        if isinstance(client, socketio.SimpleClient):
            client.disconnect()
        else:
            client.shutdown()
    except Exception:  # noqa: BLE001 - teardown must not mask the test's own outcome
        pass


class Clients:
    """Factory of python-socketio clients, all disconnected (bounded in time) at teardown.

    `new()` gives a `socketio.Client` whose `log` records every non-reserved event on `namespace`;
    `simple()` gives a `socketio.SimpleClient`. Both default to reconnection=False."""

    def __init__(self):
        self.created = []

    def new(self, namespace="/", **client_kwargs):
        client_kwargs.setdefault("reconnection", False)
        client = socketio.Client(**client_kwargs)
        log = EventLog()

        @client.on("*", namespace=namespace)
        def _any(event, *args):
            log.add(event, *args)

        client.log = log
        self.created.append(client)
        return client

    def simple(self, **client_kwargs):
        client_kwargs.setdefault("reconnection", False)
        client = socketio.SimpleClient(**client_kwargs)
        self.created.append(client)
        return client

    def close_all(self):
        for client in self.created:
            bounded_disconnect(client)


@pytest.fixture
def clients():
    factory = Clients()
    yield factory
    factory.close_all()
