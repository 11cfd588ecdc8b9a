"""The demo's /metrics, read as Prometheus reads it (the official client library's text parser), moving as
python-socketio clients connect, send events and leave; and its /healthz."""

import time

import requests
import socketio
from prometheus_client.parser import text_string_to_metric_families

WAIT = 5


def scrape(url):
    """{(name, labels as a sorted tuple): value} of every sample, and the families' types by name."""
    res = requests.get(f"{url}/metrics", timeout=WAIT)
    assert res.status_code == 200
    assert res.headers["content-type"].startswith("text/plain")
    samples, types = {}, {}
    for family in text_string_to_metric_families(res.text):
        types[family.name] = family.type
        for s in family.samples:
            samples[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return samples, types


def value(samples, name, **labels):
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


def until(url, check, what):
    deadline = time.monotonic() + WAIT
    while True:
        samples, _ = scrape(url)
        if check(samples):
            return samples
        assert time.monotonic() < deadline, f"{what}; last scrape: {samples}"
        time.sleep(0.05)


def test_metrics_move_as_clients_connect_send_and_leave(demo_url):
    before, types = scrape(demo_url)
    assert types["engineio_handshakes"] == "counter"
    assert types["engineio_sessions"] == "gauge"
    assert types["socketio_sockets"] == "gauge"
    assert types["engineio_handshake_duration_seconds"] == "summary"

    # A session cookie from the page, then three clients of that session.
    cookie = requests.get(demo_url, timeout=WAIT).headers["set-cookie"].split(";")[0]
    clients = []
    for transports in (["websocket"], ["polling"], ["polling", "websocket"]):
        c = socketio.Client(reconnection=False)
        c.connect(demo_url, headers={"Cookie": cookie}, transports=transports, wait_timeout=WAIT)
        clients.append(c)
    for c in clients:
        for i in range(5):
            c.emit("note", {"i": i, "text": "x" * 100})

    # Each counter is read on its own while the server counts, so a scrape taken as the last events arrive
    # can show the Socket.IO counters ahead of the Engine.IO ones: wait for both layers' counts.
    during = until(
        demo_url,
        lambda s: value(s, "socketio_sockets", namespace="/") == value(before, "socketio_sockets", namespace="/") + 3
        and value(s, "socketio_events_in_total") >= value(before, "socketio_events_in_total") + 15
        and value(s, "engineio_packets_in_total") >= value(before, "engineio_packets_in_total") + 18
        and value(s, "engineio_bytes_in_total") >= value(before, "engineio_bytes_in_total") + 15 * 100,
        "three sockets, fifteen events and eighteen messages counted",
    )
    assert value(during, "engineio_handshakes_total") == value(before, "engineio_handshakes_total") + 3
    sessions = value(during, "engineio_sessions", transport="polling") + value(during, "engineio_sessions", transport="websocket")
    assert sessions == 3
    assert value(during, "engineio_sessions", transport="websocket") >= 1
    # Each event is a message of over a hundred bytes in, and the CONNECT replies went out.
    assert value(during, "engineio_packets_in_total") >= value(before, "engineio_packets_in_total") + 18
    assert value(during, "engineio_bytes_in_total") >= value(before, "engineio_bytes_in_total") + 15 * 100
    assert value(during, "engineio_packets_out_total") > value(before, "engineio_packets_out_total")
    assert value(during, "engineio_handshake_duration_seconds_count") == value(before, "engineio_handshake_duration_seconds_count") + 3

    health = requests.get(f"{demo_url}/healthz", timeout=WAIT)
    assert health.status_code == 200
    assert health.json() == {"sessions": 3, "sockets": 3, "adapter_connected": True, "closing": False}

    for c in clients:
        c.disconnect()
    after = until(
        demo_url,
        lambda s: value(s, "socketio_sockets", namespace="/") == value(before, "socketio_sockets", namespace="/")
        and value(s, "engineio_sessions", transport="polling") + value(s, "engineio_sessions", transport="websocket") == 0,
        "the gauges back down once the clients left",
    )
    assert value(after, "engineio_handshakes_total") == value(during, "engineio_handshakes_total")
    assert requests.get(f"{demo_url}/healthz", timeout=WAIT).json()["sockets"] == 0
