"""Interoperability of the server (with allow_eio3) with python-socketio 4, a Socket.IO 2 client: Engine.IO v3,
binary payloads on every polling POST, the main namespace joined without a CONNECT, namespaces without a query."""

import threading

import pytest

WAIT = 3.0

TRANSPORTS = [
    pytest.param(["polling"], "polling", id="polling"),
    pytest.param(["websocket"], "websocket", id="websocket"),
    pytest.param(None, "websocket", id="upgrade"),
]

ARGS = (1, "tw\u00f6", b"\x01\x02", {"k": b"\x03", "n": [None, True, 1.5]})


def connect(client, url, transports, *namespaces):
    kwargs = {"namespaces": list(namespaces)} if namespaces else {}
    if transports:
        kwargs["transports"] = transports
    client.connect(url, **kwargs)
    for nsp in namespaces or ["/"]:
        # connect() returns before the namespaces are joined; an emit before that is dropped by the server.
        client.log[nsp].wait_for("connect", WAIT)


def acked(client, event, args, namespace="/"):
    done = threading.Event()
    result = []

    def callback(*a):
        result.extend(a)
        done.set()

    client.emit(event, args, namespace=namespace, callback=callback)
    assert done.wait(WAIT), f"no ack for {event}"
    return result


@pytest.mark.parametrize("transports, in_use", TRANSPORTS)
def test_events_binary_and_acks(start_server, clients, transports, in_use):
    url = start_server()
    c = clients("/", "/custom")
    connect(c, url, transports, "/", "/custom")
    assert c.transport() == in_use
    assert c.log["/"].wait_for("auth") == [{}]
    assert c.log["/custom"].wait_for("auth") == [{}]

    c.emit("message", ARGS)
    assert c.log["/"].wait_for("message-back") == list(ARGS)
    c.emit("message", ("on custom", b"\xff"), namespace="/custom")
    assert c.log["/custom"].wait_for("message-back") == ["on custom", b"\xff"]
    assert acked(c, "message-with-ack", ("a", b"\x00\x01")) == ["a", b"\x00\x01"]

    # The server asks with an ack; the handler's return value is the answer.
    c.on("ask", lambda *a: ("answer", *a))
    c.emit("request-ack", (2000, "q", 7))
    assert c.log["/"].wait_for("ack-result") == [{"ok": ["answer", "q", 7]}]


def test_rooms_and_broadcasts_between_v2_clients_on_both_transports(start_server, clients):
    url = start_server()
    a, b = clients("/"), clients("/")
    connect(a, url, ["polling"])
    connect(b, url, ["websocket"])
    for c in (a, b):
        assert "room" in acked(c, "join", "room")[0]
    a.emit("to-room", ("room", "hi", b"\x09"))
    for c in (a, b):
        assert c.log["/"].wait_for("room-message") == ["hi", b"\x09"]
    b.emit("broadcast", ("from b",))
    assert a.log["/"].wait_for("broadcast") == ["from b"]


def test_server_disconnect(start_server, clients):
    url = start_server()
    c = clients("/")
    connect(c, url, ["polling"])
    c.emit("disconnect-me")
    c.log["/"].wait_for("disconnect", WAIT)
