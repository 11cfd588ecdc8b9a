"""Interoperability of our Socket.IO v5 server with the python-socketio client (sync API).

Every wait below is bounded (WAIT seconds at most); pytest-timeout (pytest.ini) is only a backstop.
"""

import threading
import time

import pytest
import socketio
from socketio.exceptions import ConnectionError as SioConnectionError

from conftest import bounded_disconnect

WAIT = 3.0  # seconds, for any single expected event, ack or connection
SETTLE = 0.3  # seconds of quiet after the expected deliveries, to catch duplicates or strays

# (transports argument, transport in use once connected)
TRANSPORTS = [
    pytest.param(["polling"], "polling", id="polling"),
    pytest.param(["websocket"], "websocket", id="websocket"),
    pytest.param(None, "websocket", id="upgrade"),
]
TWO_TRANSPORTS = TRANSPORTS[:2]

MIXED_ARGS = (1, "two", b"\x01\x02", {"k": b"\x03"})
# More shapes: unicode, nested binary in arrays and objects, an empty buffer, null, bool, float.
RICH_ARGS = ("h\u00e9llo \u2713", [b"\x00", {"deep": [b"\xff\xfe\xfd"]}], b"", None, True, 1.5, {"n": [1, {"m": "x"}]})


# 1. connection over each transport, default and custom namespace, auth payload echo


@pytest.mark.parametrize("transports, in_use", TRANSPORTS)
def test_connect_default_namespace(server_url, clients, transports, in_use):
    c = clients.simple()
    c.connect(server_url, transports=transports, wait_timeout=WAIT)
    assert c.connected
    assert c.transport == in_use
    assert c.receive(timeout=WAIT) == ["auth", {}]
    # Socket.IO v5: the namespace socket id is not the Engine.IO session id.
    assert c.sid and c.client.eio.sid and c.sid != c.client.eio.sid


@pytest.mark.parametrize("transports, in_use", TRANSPORTS)
def test_connect_custom_namespace_with_auth(server_url, clients, transports, in_use):
    c = clients.simple()
    c.connect(server_url, namespace="/custom", auth={"token": "abc"}, transports=transports, wait_timeout=WAIT)
    assert c.transport == in_use
    assert c.receive(timeout=WAIT) == ["auth", {"token": "abc"}]


def test_dynamic_namespace(server_url, clients):
    c = clients.simple()
    c.connect(server_url, namespace="/dyn-py", transports=["websocket"], wait_timeout=WAIT)
    assert c.receive(timeout=WAIT) == ["welcome", "/dyn-py"]


# 2. events with JSON and binary arguments, both ways


@pytest.mark.parametrize("transports, in_use", TRANSPORTS)
def test_message_roundtrip_json_and_binary(server_url, clients, transports, in_use):
    c = clients.simple()
    c.connect(server_url, transports=transports, wait_timeout=WAIT)
    assert c.receive(timeout=WAIT) == ["auth", {}]
    c.emit("message", MIXED_ARGS)
    back = c.receive(timeout=WAIT)
    assert back == ["message-back", *MIXED_ARGS]
    assert type(back[3]) is bytes and type(back[4]["k"]) is bytes
    c.emit("message", RICH_ARGS)
    assert c.receive(timeout=WAIT) == ["message-back", *RICH_ARGS]


# 3. acknowledgements, both directions


@pytest.mark.parametrize("transports, in_use", TRANSPORTS)
def test_client_to_server_ack(server_url, clients, transports, in_use):
    c = clients.simple()
    c.connect(server_url, transports=transports, wait_timeout=WAIT)
    assert c.call("message-with-ack", MIXED_ARGS, timeout=WAIT) == MIXED_ARGS
    assert c.call("message-with-ack", "single", timeout=WAIT) == "single"
    assert c.call("message-with-ack", timeout=WAIT) is None  # an ack with no arguments


@pytest.mark.parametrize("transports, in_use", TWO_TRANSPORTS)
def test_server_to_client_ack(server_url, clients, transports, in_use):
    c = clients.new()
    asked = []

    @c.on("ask")
    def ask(*args):
        asked.append(args)
        return ("pong",)

    c.connect(server_url, transports=transports, wait_timeout=WAIT)
    c.emit("request-ack", (500, "hi"))
    assert c.log.wait_for("ack-result", timeout=WAIT) == [{"ok": ["pong"]}]
    assert asked == [("hi",)]


@pytest.mark.parametrize("transports, in_use", TWO_TRANSPORTS)
def test_server_to_client_ack_timeout(server_url, clients, transports, in_use):
    c = clients.new()

    @c.on("ask")
    def ask(*args):
        time.sleep(0.5)  # longer than the 200 ms the server waits
        return ("too late",)

    c.connect(server_url, transports=transports, wait_timeout=WAIT)
    c.emit("request-ack", (200, "hi"))
    assert c.log.wait_for("ack-result", timeout=WAIT) == [{"err": "operation has timed out"}]
    time.sleep(SETTLE)
    assert c.log.named("ack-result") == [[{"err": "operation has timed out"}]]
    # The late ack must be ignored without harming the connection.
    assert c.connected
    assert c.call("message-with-ack", "still alive", timeout=WAIT) == "still alive"


# 4. rooms and broadcasts across several python clients (mixed transports)


def test_rooms_and_broadcast(server_url, clients):
    a, b, outsider = clients.new(), clients.new(), clients.new()
    a.connect(server_url, transports=["polling"], wait_timeout=WAIT)
    b.connect(server_url, transports=["websocket"], wait_timeout=WAIT)
    outsider.connect(server_url, wait_timeout=WAIT)
    for c in (a, b, outsider):
        assert c.log.wait_for("auth", timeout=WAIT) == [{}]

    for c in (a, b):
        assert c.call("join", "r", timeout=WAIT) == sorted([c.get_sid("/"), "r"])
    assert outsider.call("join", "other", timeout=WAIT) == sorted([outsider.get_sid("/"), "other"])

    a.emit("to-room", ("r", "hello", b"\x00\xff"))
    for member in (a, b):
        assert member.log.wait_for("room-message", timeout=WAIT) == ["hello", b"\x00\xff"]

    b.emit("broadcast", ("news", 7))
    for receiver in (a, outsider):
        assert receiver.log.wait_for("broadcast", timeout=WAIT) == ["news", 7]

    time.sleep(SETTLE)
    assert a.log.named("room-message") == [["hello", b"\x00\xff"]]
    assert b.log.named("room-message") == [["hello", b"\x00\xff"]]
    assert outsider.log.named("room-message") == []
    assert a.log.named("broadcast") == [["news", 7]]
    assert outsider.log.named("broadcast") == [["news", 7]]
    assert b.log.named("broadcast") == []  # not the sender

    # After leaving, a member no longer gets the room's messages.
    assert b.call("leave", "r", timeout=WAIT) == [b.get_sid("/")]
    outsider.emit("to-room", ("r", "second"))
    assert a.log.wait_for("room-message", timeout=WAIT, count=2)[1] == ["second"]
    time.sleep(SETTLE)
    assert b.log.named("room-message") == [["hello", b"\x00\xff"]]
    assert outsider.log.named("room-message") == []


# 5. connect middleware refusing with CONNECT_ERROR


@pytest.fixture
def refusing_server_url(start_server):
    """A testserver that pings every 2 s, for the tests where python-socketio's connect() itself disconnects.

    When a namespace is refused, connect() calls disconnect() at once. Over long-polling the CONNECT_ERROR can
    reach the client before the response to the POST that carried the CONNECT; the client's writer thread then
    sees the state change when that POST returns and exits without sending the close packet, and disconnect()
    waits for the pending GET, which a server answers only at its next ping (the same race as in
    `conftest.bounded_disconnect`, here inside connect() where no teardown can bound it). A short ping interval
    releases that GET; the refusal itself is checked exactly as before."""
    return start_server("--ping-interval", "2000")


def connect_expecting_refusal(client, url, namespace, **kwargs):
    """Connect `client` to `namespace`, expect a refusal, and return (exception, connect_error handler args)."""
    errors = []
    client.on("connect_error", lambda *args: errors.append(args), namespace=namespace)
    with pytest.raises(SioConnectionError) as info:
        client.connect(url, namespaces=[namespace], wait_timeout=WAIT, **kwargs)
    return info.value, errors


@pytest.mark.parametrize("transports, in_use", TWO_TRANSPORTS)
@pytest.mark.parametrize("auth", [None, {"token": "wrong"}], ids=["no-auth", "wrong-token"])
def test_middleware_refuses_without_token(refusing_server_url, clients, transports, in_use, auth):
    c = clients.new(namespace="/private")
    exc, errors = connect_expecting_refusal(c, refusing_server_url, "/private", auth=auth, transports=transports)
    # python-socketio reports a refused namespace generically in the exception...
    assert type(exc) is SioConnectionError
    assert exc.args == ("One or more namespaces failed to connect: /private",)
    # ...and hands the CONNECT_ERROR payload to the namespace's connect_error handler.
    assert errors == [({"message": "not authorized", "data": {"code": 401}},)]
    assert not c.connected
    assert c.log.events == []


@pytest.mark.parametrize("transports, in_use", TWO_TRANSPORTS)
def test_middleware_accepts_token(server_url, clients, transports, in_use):
    c = clients.simple()
    c.connect(server_url, namespace="/private", auth={"token": "secret"}, transports=transports,
              wait_timeout=WAIT)
    assert c.receive(timeout=WAIT) == ["auth", {"token": "secret"}]
    assert c.call("message-with-ack", "ok", timeout=WAIT) == "ok"


# 6. unknown namespace


@pytest.mark.parametrize("transports, in_use", TWO_TRANSPORTS)
def test_invalid_namespace(refusing_server_url, clients, transports, in_use):
    c = clients.new(namespace="/nope")
    exc, errors = connect_expecting_refusal(c, refusing_server_url, "/nope", transports=transports)
    assert type(exc) is SioConnectionError
    assert exc.args == ("One or more namespaces failed to connect: /nope",)
    assert errors == [({"message": "Invalid namespace"},)]
    assert not c.connected


# 7. disconnection


def observer(clients, url):
    """A client in the room `observers`, which the server tells of every disconnect as (id, reason)."""
    o = clients.new()
    o.connect(url, transports=["websocket"], wait_timeout=WAIT)
    assert o.call("join", "observers", timeout=WAIT) == sorted([o.get_sid("/"), "observers"])
    return o


@pytest.mark.parametrize("transports, in_use", TWO_TRANSPORTS)
@pytest.mark.parametrize("close", [False, True], ids=["namespace-only", "close-connection"])
def test_server_disconnect(server_url, clients, transports, in_use, close):
    o = observer(clients, server_url)
    c = clients.new()
    reasons = []
    gone = threading.Event()

    @c.on("disconnect")
    def on_disconnect(reason):
        reasons.append(reason)
        gone.set()

    c.connect(server_url, transports=transports, wait_timeout=WAIT)
    sid = c.get_sid("/")
    c.emit("disconnect-me", close)
    assert gone.wait(WAIT), "the client's disconnect handler did not fire"
    assert reasons == [socketio.Client.reason.SERVER_DISCONNECT] == ["server disconnect"]
    assert o.log.wait_for("disconnected", timeout=WAIT) == [sid, "server namespace disconnect"]
    deadline = time.monotonic() + WAIT
    while c.connected and time.monotonic() < deadline:
        time.sleep(0.02)
    assert not c.connected
    time.sleep(SETTLE)
    assert reasons == ["server disconnect"]  # fired once


def test_client_disconnect_reason_seen_by_server_polling(server_url, clients):
    # Over polling python-socketio's disconnect() queues DISCONNECT ("41") and then the Engine.IO close packet,
    # so the server must report a namespace disconnect. The client's writer thread must be idle first: one
    # busy with a POST drops what disconnect() queues (a client-side race, see conftest.bounded_disconnect).
    o = observer(clients, server_url)
    c = clients.new()
    c.connect(server_url, transports=["polling"], wait_timeout=WAIT)
    sid = c.get_sid("/")
    assert c.call("message-with-ack", "idle", timeout=WAIT) == "idle"
    c.eio.queue.join()  # every queued packet has been POSTed
    bounded_disconnect(c)
    assert o.log.wait_for("disconnected", timeout=WAIT) == [sid, "client namespace disconnect"]
    time.sleep(SETTLE)
    assert o.log.named("disconnected") == [[sid, "client namespace disconnect"]]


def test_client_disconnect_packet_over_websocket(server_url, clients):
    # Over WebSocket python-socketio's disconnect() races its writer thread (which sends "41" and "1") with
    # the WebSocket close frame sent from the calling thread: on the wire the close frame often comes first,
    # and the server then rightly reports "transport close". So the DISCONNECT packet is sent on its own
    # here (through the client's packet sender), and only then is the connection closed.
    o = observer(clients, server_url)
    c = clients.new()
    c.connect(server_url, transports=["websocket"], wait_timeout=WAIT)
    sid = c.get_sid("/")
    c._send_packet(c.packet_class(socketio.packet.DISCONNECT, namespace="/"))
    assert o.log.wait_for("disconnected", timeout=WAIT) == [sid, "client namespace disconnect"]
    c.disconnect()
    time.sleep(SETTLE)
    assert o.log.named("disconnected") == [[sid, "client namespace disconnect"]]  # reported once


def test_client_transport_close_reason_seen_by_server(server_url, clients):
    # Closing the WebSocket with no DISCONNECT packet: the server reports "transport close".
    o = observer(clients, server_url)
    c = clients.new()
    c.connect(server_url, transports=["websocket"], wait_timeout=WAIT)
    sid = c.get_sid("/")
    c.eio.ws.close()
    assert o.log.wait_for("disconnected", timeout=WAIT) == [sid, "transport close"]


# 8. msgpack parser


@pytest.mark.parametrize("transports, in_use", TRANSPORTS)
def test_msgpack(start_server, clients, transports, in_use):
    url = start_server("--msgpack")
    c = clients.simple(serializer="msgpack")
    c.connect(url, transports=transports, wait_timeout=WAIT)
    assert c.transport == in_use
    assert c.receive(timeout=WAIT) == ["auth", {}]
    c.emit("message", MIXED_ARGS)
    assert c.receive(timeout=WAIT) == ["message-back", *MIXED_ARGS]
    c.emit("message", RICH_ARGS)
    assert c.receive(timeout=WAIT) == ["message-back", *RICH_ARGS]
    assert c.call("message-with-ack", MIXED_ARGS, timeout=WAIT) == MIXED_ARGS
    assert c.call("join", "m", timeout=WAIT) == sorted([c.sid, "m"])
    c = clients.simple(serializer="msgpack")
    c.connect(url, namespace="/custom", auth={"token": "abc"}, transports=transports, wait_timeout=WAIT)
    assert c.receive(timeout=WAIT) == ["auth", {"token": "abc"}]


def test_msgpack_middleware_refusal(start_server, clients):
    url = start_server("--msgpack")
    c = clients.new(namespace="/private", serializer="msgpack")
    exc, errors = connect_expecting_refusal(c, url, "/private", transports=["websocket"])
    assert exc.args == ("One or more namespaces failed to connect: /private",)
    assert errors == [({"message": "not authorized", "data": {"code": 401}},)]


# 9. b64=1: python-engineio has no forceBase64 option, but a client can ask for it in the URL's query. The server
# then sends binary over WebSocket as `b<base64>` text frames (as the reference does for such a client), which
# python-engineio decodes as binary; what the client sends stays binary frames, which the server still accepts.


@pytest.fixture
def received_raw(monkeypatch):
    """Every encoded Engine.IO packet the client decodes (str for text, bytes for binary), in arrival order.

    It also hands messages to python-socketio in the order they arrived: python-engineio's sync client starts
    a new thread for each message (`_trigger_event(..., run_async=True)` in engineio/client.py), so a binary
    event's attachments can reach python-socketio's assembler before the event itself, which then fails to
    parse the attachment as a packet (seen once in CI, on the upgrade case). The order on the wire is what
    this test checks, through `seen`."""
    import engineio.client
    import engineio.packet

    seen = []
    decode = engineio.packet.Packet.decode

    def recording(self, encoded_packet):
        seen.append(encoded_packet)
        return decode(self, encoded_packet)

    trigger = engineio.client.Client._trigger_event

    def in_order(self, event, *args, **kwargs):
        if event == "message":
            kwargs["run_async"] = False
        return trigger(self, event, *args, **kwargs)

    monkeypatch.setattr(engineio.packet.Packet, "decode", recording)
    monkeypatch.setattr(engineio.client.Client, "_trigger_event", in_order)
    return seen


@pytest.mark.parametrize("transports", [["websocket"], None], ids=["websocket", "upgrade"])
@pytest.mark.parametrize("b64", [True, False], ids=["b64", "binary"])
def test_b64_query_over_websocket(server_url, clients, received_raw, transports, b64):
    c = clients.simple()
    c.connect(server_url + ("/?b64=1" if b64 else ""), transports=transports, wait_timeout=WAIT)
    assert c.receive(timeout=WAIT) == ["auth", {}]
    deadline = time.monotonic() + WAIT
    while c.client.eio.current_transport != "websocket" and time.monotonic() < deadline:
        time.sleep(0.02)
    assert c.transport == "websocket"
    received_raw.clear()
    c.emit("message", MIXED_ARGS)
    back = c.receive(timeout=WAIT)
    assert back == ["message-back", *MIXED_ARGS]
    assert type(back[3]) is bytes and type(back[4]["k"]) is bytes
    assert c.call("message-with-ack", RICH_ARGS, timeout=WAIT) == RICH_ARGS
    # The attachments of the event (2) and of the ack (3) as they came off the WebSocket.
    attachments = [p for p in received_raw if isinstance(p, (bytes, bytearray)) or p.startswith("b")]
    assert len(attachments) == 5, received_raw
    if b64:
        assert all(isinstance(p, str) for p in attachments), attachments
        assert attachments[0] == "bAQI=" and attachments[1] == "bAw==", attachments
    else:
        assert all(isinstance(p, bytes) for p in attachments), attachments
        assert attachments[0] == b"\x01\x02" and attachments[1] == b"\x03", attachments
