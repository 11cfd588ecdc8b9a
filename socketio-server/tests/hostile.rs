//! Hostile input against the Socket.IO server, with raw WebSocket (and polling) clients: attachment counts
//! that lie, pathological JSON, huge ack ids, namespace names that are not paths, CONNECT floods, packets
//! for namespaces never joined and reserved event names. Each test checks the defined outcome (a reply,
//! CONNECT_ERROR, or the connection closed with "parse error"), that nothing panics and that nothing hangs.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex, Once};
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use socketio_server::{DisconnectReason, Event, Socket, SocketIo, SocketIoConfig};
use tokio_tungstenite::tungstenite::Message as WsMessage;

mod support;

use support::*;

// ---------------------------------------------------------------------------------------------------------
// Harness
// ---------------------------------------------------------------------------------------------------------

/// Every test body runs under this limit; each is meant to finish well within 5 s.
const LIMIT: Duration = Duration::from_secs(10);

/// Panics seen by the process, by thread name. `#[tokio::test]` runs the test and every task it spawns
/// (the server's included) on the test's thread, so a server panic is recorded under the test's name even
/// though tokio catches it and the client would only see a closed connection.
static PANICS: Mutex<Vec<(String, String)>> = Mutex::new(Vec::new());

fn watch_panics() {
    static HOOK: Once = Once::new();
    HOOK.call_once(|| {
        let default = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            let thread = std::thread::current().name().unwrap_or("?").to_owned();
            PANICS.lock().unwrap_or_else(|e| e.into_inner()).push((thread, info.to_string()));
            default(info);
        }));
    });
}

/// Runs a test body under [`LIMIT`] and fails if anything panicked on the test's thread meanwhile.
async fn bounded<F: std::future::Future<Output = ()>>(body: F) {
    watch_panics();
    // Forget what an earlier test on this thread left (with --test-threads=1 every test runs on `main`).
    let me = std::thread::current().name().unwrap_or("?").to_owned();
    PANICS.lock().unwrap_or_else(|e| e.into_inner()).retain(|(t, _)| *t != me);
    tokio::time::timeout(LIMIT, body).await.expect("the test finished within its time limit (no hang)");
    let panics: Vec<String> = PANICS
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .iter()
        .filter(|(t, _)| *t == me)
        .map(|(_, m)| m.clone())
        .collect();
    assert!(panics.is_empty(), "the server panicked: {panics:#?}");
}

/// Disconnect reasons of every socket, in order.
type Reasons = Arc<Mutex<Vec<(String, DisconnectReason)>>>;

/// The server of these tests: ping 1000/2000 ms. Namespaces `/` and `/custom`: `message` →
/// `message-back` with the same arguments, `message-with-ack` → ack with the same arguments. `/slow`: the
/// same behind a connection middleware that waits 100 ms. Every disconnect reason is recorded.
async fn server() -> (SocketIo, SocketAddr, Reasons) {
    let mut config = {
        let mut c = SocketIoConfig::default();
        c.connect_timeout = Duration::from_secs(5);
        c
    };
    config.engine.ping_interval = Duration::from_millis(1000);
    config.engine.ping_timeout = Duration::from_millis(2000);
    let io = SocketIo::new(config);
    let reasons: Reasons = Arc::default();
    for nsp in ["/", "/custom", "/slow"] {
        let reasons = reasons.clone();
        io.of(nsp).on_connection(move |socket: Socket| {
            let reasons = reasons.clone();
            async move {
                socket.on("message", |s: Socket, ev: Event| async move {
                    let _ = s.emit("message-back", ev.args);
                });
                socket.on("message-with-ack", |mut ev: Event| async move {
                    let args = ev.args.clone();
                    ev.ack(args);
                });
                socket.on_disconnect(move |s: Socket, reason| {
                    let reasons = reasons.clone();
                    async move { reasons.lock().unwrap().push((s.namespace_name().to_owned(), reason)) }
                });
            }
        });
    }
    io.of("/slow").use_middleware(|_socket: Socket| async move {
        tokio::time::sleep(Duration::from_millis(100)).await;
        Ok(())
    });
    let (addr, _task) = io.listen("127.0.0.1:0".parse().unwrap()).await.unwrap();
    (io, addr, reasons)
}

/// A WebSocket connection joined to `/`.
async fn ws_joined(addr: SocketAddr) -> Ws {
    let mut ws = ws_open(addr).await;
    send(&mut ws, "40").await;
    let reply = next_text(&mut ws).await;
    assert!(reply.starts_with("40{\"sid\":"), "{reply}");
    ws
}

/// Reads for `dur`, answering heartbeats; returns every other frame. Fails if the connection ends.
async fn quiet_for(ws: &mut Ws, dur: Duration) -> Vec<WsMessage> {
    let deadline = tokio::time::Instant::now() + dur;
    let mut got = Vec::new();
    loop {
        match tokio::time::timeout_at(deadline, ws.next()).await {
            Err(_) => return got,
            Ok(Some(Ok(WsMessage::Text(t)))) if t.as_str() == "2" => {
                ws.send(WsMessage::Text("3".into())).await.unwrap();
            }
            Ok(Some(Ok(WsMessage::Ping(_) | WsMessage::Pong(_)))) => {}
            Ok(Some(Ok(WsMessage::Close(c)))) => panic!("the connection closed: {c:?} (after {got:?})"),
            Ok(Some(Ok(m))) => got.push(m),
            Ok(other) => panic!("the connection ended: {other:?} (after {got:?})"),
        }
    }
}

/// The connection still works: an event comes back, as the next packet.
async fn still_works(ws: &mut Ws) {
    send(ws, "42[\"message\",\"still here\"]").await;
    assert_eq!(next_text(ws).await, "42[\"message-back\",\"still here\"]");
}

async fn eventually(what: &str, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(5);
    while !f() {
        assert!(Instant::now() < deadline, "not within 5 s: {what}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// After connections were closed for bad input: every session is gone from the engine (a panicking
/// session task would leave its session behind) and every socket saw "parse error".
async fn all_closed_with_parse_error(io: &SocketIo, reasons: &Reasons, sockets: usize) {
    eventually("every session is removed", || io.engine().session_count() == 0).await;
    eventually("every socket disconnected", || reasons.lock().unwrap().len() == sockets).await;
    for (nsp, reason) in reasons.lock().unwrap().iter() {
        assert_eq!(*reason, DisconnectReason::ParseError, "socket of {nsp}");
    }
}

const PLACEHOLDER_0: &str = "{\"_placeholder\":true,\"num\":0}";
const PLACEHOLDER_1: &str = "{\"_placeholder\":true,\"num\":1}";

// ---------------------------------------------------------------------------------------------------------
// Binary attachments
// ---------------------------------------------------------------------------------------------------------

/// `451-[...]` announces one attachment; a text packet arrives instead: the connection is closed ("parse
/// error") and neither packet is delivered.
#[tokio::test]
async fn a_text_packet_instead_of_the_announced_attachment_closes_the_connection() {
    bounded(async {
        let (io, addr, reasons) = server().await;
        let mut ws = ws_joined(addr).await;
        send(&mut ws, &format!("451-[\"message\",{PLACEHOLDER_0}]")).await;
        send(&mut ws, "42[\"message\",\"text\"]").await;
        closed_quietly(&mut ws).await;
        all_closed_with_parse_error(&io, &reasons, 1).await;
    })
    .await;
}

/// `452-[...]` with only one binary: the packet is not delivered (it waits for the second attachment and
/// nothing comes back); a text packet then closes the connection.
#[tokio::test]
async fn a_binary_packet_missing_an_attachment_waits_and_a_text_packet_then_closes() {
    bounded(async {
        let (io, addr, reasons) = server().await;
        let mut ws = ws_joined(addr).await;
        send(&mut ws, &format!("452-[\"message\",{PLACEHOLDER_0},{PLACEHOLDER_1}]")).await;
        send_binary(&mut ws, &[1, 2, 3]).await;
        let got = quiet_for(&mut ws, Duration::from_millis(300)).await;
        assert!(got.is_empty(), "the incomplete packet was delivered: {got:?}");
        send(&mut ws, "42[\"message\",\"text\"]").await;
        closed_quietly(&mut ws).await;
        all_closed_with_parse_error(&io, &reasons, 1).await;
    })
    .await;
}

/// Attachment counts over the limit (10 by default: `4511-`), too large for any integer, or malformed:
/// the connection is closed at the text part, before any binary is taken.
#[tokio::test]
async fn attachment_counts_over_the_limit_or_malformed_close_the_connection() {
    bounded(async {
        let (io, addr, reasons) = server().await;
        let bad = [
            format!("4511-[\"message\",{PLACEHOLDER_0}]"),
            format!("451000000-[\"message\",{PLACEHOLDER_0}]"),
            format!("4599999999999999999999999999-[\"message\",{PLACEHOLDER_0}]"),
            format!("45-[\"message\",{PLACEHOLDER_0}]"),
            format!("45x-[\"message\",{PLACEHOLDER_0}]"),
            format!("451[\"message\",{PLACEHOLDER_0}]"),
        ];
        for packet in &bad {
            let mut ws = ws_joined(addr).await;
            send(&mut ws, packet).await;
            closed_quietly(&mut ws).await;
        }
        all_closed_with_parse_error(&io, &reasons, bad.len()).await;
    })
    .await;
}

/// A binary message that no binary packet announced closes the connection.
#[tokio::test]
async fn an_unannounced_binary_message_closes_the_connection() {
    bounded(async {
        let (io, addr, reasons) = server().await;
        let mut ws = ws_joined(addr).await;
        send_binary(&mut ws, &[1, 2, 3]).await;
        closed_quietly(&mut ws).await;
        all_closed_with_parse_error(&io, &reasons, 1).await;
    })
    .await;
}

/// A placeholder naming an attachment that was never announced (`num` 5 of 1) closes the connection once
/// the attachments are in, instead of delivering a packet with a hole in it.
#[tokio::test]
async fn a_placeholder_naming_a_missing_attachment_closes_the_connection() {
    bounded(async {
        let (io, addr, reasons) = server().await;
        let mut ws = ws_joined(addr).await;
        send(&mut ws, "451-[\"message\",{\"_placeholder\":true,\"num\":5}]").await;
        send_binary(&mut ws, &[9]).await;
        closed_quietly(&mut ws).await;
        all_closed_with_parse_error(&io, &reasons, 1).await;
    })
    .await;
}

// ---------------------------------------------------------------------------------------------------------
// Pathological JSON and ack ids
// ---------------------------------------------------------------------------------------------------------

/// An event with 100 000 nested arrays is refused (closed, "parse error") without overflowing the stack:
/// the test process survives, and other clients are served. Moderate nesting still works.
#[tokio::test]
async fn deeply_nested_json_closes_the_connection_without_a_stack_overflow() {
    bounded(async {
        let (io, addr, reasons) = server().await;
        let depth = 100_000;
        let deep = format!("42[\"message\",{}1{}]", "[".repeat(depth), "]".repeat(depth));
        let deep_obj = format!("42[\"message\",{}1{}]", "{\"a\":".repeat(depth), "}".repeat(depth));
        let deep_auth = format!("40{{\"a\":{}1{}}}", "[".repeat(depth), "]".repeat(depth));
        let deep_ack = format!("431{}1{}", "[".repeat(depth), "]".repeat(depth));
        for packet in [&deep, &deep_obj, &deep_ack] {
            let mut ws = ws_joined(addr).await;
            send(&mut ws, packet).await;
            closed_quietly(&mut ws).await;
        }
        let mut ws = ws_open(addr).await;
        send(&mut ws, &deep_auth).await;
        closed_quietly(&mut ws).await;
        all_closed_with_parse_error(&io, &reasons, 3).await;

        // 100 levels are fine and come back unchanged.
        let mut ws = ws_joined(addr).await;
        let nested = format!("{}\"x\"{}", "[".repeat(100), "]".repeat(100));
        send(&mut ws, &format!("42[\"message\",{nested}]")).await;
        assert_eq!(next_text(&mut ws).await, format!("42[\"message-back\",{nested}]"));
    })
    .await;
}

/// Ack ids that do not fit 64 bits close the connection ("parse error").
#[tokio::test]
async fn ack_ids_over_64_bits_close_the_connection() {
    bounded(async {
        let (io, addr, reasons) = server().await;
        let bad = [
            "42999999999999999999999[\"message-with-ack\",1]".to_owned(),
            "4218446744073709551616[\"message-with-ack\",1]".to_owned(),
            format!("42{}[\"message-with-ack\",1]", "9".repeat(10_000)),
            "43999999999999999999999[1]".to_owned(),
        ];
        for packet in &bad {
            let mut ws = ws_joined(addr).await;
            send(&mut ws, packet).await;
            closed_quietly(&mut ws).await;
        }
        all_closed_with_parse_error(&io, &reasons, bad.len()).await;
    })
    .await;
}

/// The largest ack id (u64::MAX) is valid: the ack comes back with it.
#[tokio::test]
async fn the_max_u64_ack_id_gets_its_ack() {
    bounded(async {
        let (_io, addr, _) = server().await;
        let mut ws = ws_joined(addr).await;
        send(&mut ws, "4218446744073709551615[\"message-with-ack\",1,\"a\"]").await;
        assert_eq!(next_text(&mut ws).await, "4318446744073709551615[1,\"a\"]");
        send(&mut ws, "420[\"message-with-ack\",0]").await;
        assert_eq!(next_text(&mut ws).await, "430[0]");
    })
    .await;
}

// ---------------------------------------------------------------------------------------------------------
// Namespaces
// ---------------------------------------------------------------------------------------------------------

/// CONNECT to names that are not paths: `40abc` is not a namespace but JSON that does not parse (closed,
/// as the reference); names with spaces, commas cut short, control or non-ASCII characters, or 10 KB long
/// get CONNECT_ERROR "Invalid namespace" with the name echoed, and the connection goes on.
#[tokio::test]
async fn namespace_names_that_are_not_paths_get_connect_error_or_close() {
    bounded(async {
        let (io, addr, reasons) = server().await;
        let before = sorted(io.namespaces());

        for packet in ["40abc", "40abc,", "40 /custom,"] {
            let mut ws = ws_open(addr).await;
            send(&mut ws, packet).await;
            closed_quietly(&mut ws).await;
        }

        let long = format!("/{}", "n".repeat(10 * 1024));
        let names = ["/a b", "/custom/", "/CUSTOM", "/é\u{1F600}", "/a\u{0}b", "/\\", "//", long.as_str()];
        let mut ws = ws_open(addr).await;
        for name in names {
            send(&mut ws, &format!("40{name},")).await;
            assert_eq!(
                next_text(&mut ws).await,
                format!("44{name},{{\"message\":\"Invalid namespace\"}}"),
                "{name:.40}"
            );
        }
        // Without the comma the name runs to the end of the packet.
        send(&mut ws, "40/a b").await;
        assert_eq!(next_text(&mut ws).await, "44/a b,{\"message\":\"Invalid namespace\"}");
        // The connection is still usable.
        send(&mut ws, "40/custom,").await;
        assert!(next_text(&mut ws).await.starts_with("40/custom,{\"sid\":"));
        assert_eq!(sorted(io.namespaces()), before, "no namespace was created");
        assert!(reasons.lock().unwrap().is_empty());
        drop(ws);
        eventually("every session is removed", || io.engine().session_count() == 0).await;
    })
    .await;
}

fn sorted(mut v: Vec<String>) -> Vec<String> {
    v.sort();
    v
}

/// 10 000 CONNECTs to different unknown namespaces on one WebSocket: each gets CONNECT_ERROR "Invalid
/// namespace", in order, and the server creates no namespace for them.
#[tokio::test]
async fn a_websocket_flood_of_connects_to_unknown_namespaces_gets_connect_error_each_and_creates_nothing() {
    bounded(async {
        const N: usize = 10_000;
        let (io, addr, _) = server().await;
        let before = sorted(io.namespaces());
        let ws = ws_open(addr).await;
        let (mut sink, mut stream) = ws.split();
        let writer = tokio::spawn(async move {
            for i in 0..N {
                sink.feed(WsMessage::Text(format!("40/ns{i},").into())).await.unwrap();
            }
            sink.flush().await.unwrap();
            sink
        });
        let mut i = 0;
        while i < N {
            let msg = tokio::time::timeout(Duration::from_secs(5), stream.next())
                .await
                .unwrap_or_else(|_| panic!("CONNECT_ERROR {i} of {N} within 5 s"))
                .expect("the connection stays open")
                .expect("no error");
            match msg {
                WsMessage::Text(t) if t.as_str() == "2" => continue, // the pong can wait: 2 s
                WsMessage::Text(t) => {
                    assert_eq!(t.as_str(), format!("44/ns{i},{{\"message\":\"Invalid namespace\"}}"));
                    i += 1;
                }
                other => panic!("unexpected {other:?}"),
            }
        }
        let mut ws = writer.await.unwrap().reunite(stream).unwrap();
        assert_eq!(sorted(io.namespaces()), before, "no namespace was created");
        send(&mut ws, "40").await;
        assert!(next_text(&mut ws).await.starts_with("40{\"sid\":"));
        still_works(&mut ws).await;
    })
    .await;
}

/// The same flood in one long-polling POST (10 000 CONNECT packets in one payload, ~100 KB, within
/// `max_http_buffer_size`): every CONNECT gets its CONNECT_ERROR on the following GETs (none is dropped)
/// and no namespace is created.
#[tokio::test]
async fn a_polling_payload_of_10k_connects_to_unknown_namespaces_gets_connect_error_each() {
    bounded(async {
        const N: usize = 10_000;
        let (io, addr, _) = server().await;
        let before = sorted(io.namespaces());
        let path = polling_session(addr).await;
        let payload = (0..N).map(|i| format!("40/ns{i},")).collect::<Vec<_>>().join("\u{1e}");
        assert!(payload.len() < 1_000_000);
        assert_eq!(http(addr, "POST", &path, &payload).await, (200, "ok".to_owned()));

        let replies = poll_replies(addr, &path, N).await;
        assert_eq!(replies.len(), N, "CONNECT_ERROR replies received for {N} CONNECTs");
        for (i, r) in replies.iter().enumerate() {
            assert_eq!(r, &format!("44/ns{i},{{\"message\":\"Invalid namespace\"}}"));
        }
        assert_eq!(sorted(io.namespaces()), before, "no namespace was created");
    })
    .await;
}

/// Not one of the listed cases, but the same path with an ordinary client: the official client sends what
/// it buffered while offline in one POST when it reconnects over polling. 2 000 acked events in one
/// payload (~70 KB) must get 2 000 acks, whatever the size of the session's internal queue.
#[tokio::test]
async fn a_polling_payload_of_2000_acked_events_gets_every_ack() {
    bounded(async {
        const N: usize = 2000;
        let (_io, addr, _) = server().await;
        let path = polling_session(addr).await;
        assert_eq!(http(addr, "POST", &path, "40").await.0, 200);
        let connected = http(addr, "GET", &path, "").await;
        assert!(connected.1.starts_with("40{\"sid\":"), "{connected:?}");
        let payload = (0..N).map(|i| format!("42{i}[\"message-with-ack\",{i}]")).collect::<Vec<_>>().join("\u{1e}");
        assert_eq!(http(addr, "POST", &path, &payload).await, (200, "ok".to_owned()));
        let acks = poll_replies(addr, &path, N).await;
        assert_eq!(acks.len(), N, "acks received for {N} acked events in one POST");
        for (i, a) in acks.iter().enumerate() {
            assert_eq!(a, &format!("43{i}[{i}]"));
        }
    })
    .await;
}

/// Many CONNECTs to the same namespace on one connection make one socket: one CONNECT reply, one socket
/// in the namespace.
#[tokio::test]
async fn a_connect_flood_to_one_namespace_makes_one_socket() {
    bounded(async {
        let (io, addr, _) = server().await;
        let mut ws = ws_open(addr).await;
        for _ in 0..100 {
            ws.feed(WsMessage::Text("40".into())).await.unwrap();
        }
        ws.flush().await.unwrap();
        let got = quiet_for(&mut ws, Duration::from_millis(500)).await;
        let replies: Vec<&WsMessage> =
            got.iter().filter(|m| matches!(m, WsMessage::Text(t) if t.as_str().starts_with("40"))).collect();
        assert_eq!(replies.len(), 1, "CONNECT replies: {got:?}");
        assert_eq!(io.of("/").sockets().len(), 1, "sockets in /");
        still_works(&mut ws).await;
    })
    .await;
}

/// The same flood to a namespace whose connection middleware takes a while (100 ms): the CONNECTs that
/// arrive while the first is in its middleware must not make more sockets, and once the connection
/// closes no socket of it may stay in the namespace.
#[tokio::test]
async fn a_connect_flood_to_a_namespace_with_an_async_middleware_makes_one_socket() {
    bounded(async {
        let (io, addr, _) = server().await;
        let mut ws = ws_open(addr).await;
        for _ in 0..20 {
            ws.feed(WsMessage::Text("40/slow,".into())).await.unwrap();
        }
        ws.flush().await.unwrap();
        let got = quiet_for(&mut ws, Duration::from_millis(600)).await;
        let replies =
            got.iter().filter(|m| matches!(m, WsMessage::Text(t) if t.as_str().starts_with("40/slow,"))).count();
        let during = io.of("/slow").sockets().len();
        drop(ws);
        eventually("the session is removed", || io.engine().session_count() == 0).await;
        let deadline = Instant::now() + Duration::from_secs(2);
        while !io.of("/slow").sockets().is_empty() && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        let left = io.of("/slow").sockets().len();
        assert_eq!(
            (during, replies, left),
            (1, 1, 0),
            "(sockets in /slow, CONNECT replies, sockets left after the connection closed) for 20 CONNECTs"
        );
    })
    .await;
}

/// Events, acks and DISCONNECTs for namespaces the client never joined (an existing one, an unknown one)
/// are ignored: no reply, and the connection stays up.
#[tokio::test]
async fn packets_for_a_namespace_never_joined_are_ignored() {
    bounded(async {
        let (io, addr, reasons) = server().await;
        let mut ws = ws_joined(addr).await;
        for packet in [
            "42/custom,[\"message\",\"x\"]",
            "42/custom,7[\"message-with-ack\",\"x\"]",
            "42/nope,[\"message\",\"x\"]",
            "43/custom,1[\"x\"]",
            "41/custom,",
            "41/nope,",
        ] {
            send(&mut ws, packet).await;
        }
        let got = quiet_for(&mut ws, Duration::from_millis(300)).await;
        assert!(got.is_empty(), "replies to packets of namespaces never joined: {got:?}");
        still_works(&mut ws).await;
        assert!(reasons.lock().unwrap().is_empty(), "no socket disconnected");
        assert_eq!(io.of("/custom").sockets().len(), 0);
        assert!(!io.namespaces().contains(&"/nope".to_owned()));
    })
    .await;
}

/// Events named after reserved events (`disconnect` and the others the reference refuses) close the
/// connection ("invalid payload" in the reference, "parse error" here), in plain and binary events.
#[tokio::test]
async fn an_event_named_after_a_reserved_event_closes_the_connection() {
    bounded(async {
        let (io, addr, reasons) = server().await;
        let mut bad: Vec<String> =
            ["disconnect", "connect", "connect_error", "disconnecting", "newListener", "removeListener"]
                .iter()
                .map(|name| format!("42[\"{name}\"]"))
                .collect();
        bad.push("421[\"disconnect\",\"with ack\"]".into());
        bad.push(format!("451-[\"disconnect\",{PLACEHOLDER_0}]"));
        for packet in &bad {
            let mut ws = ws_joined(addr).await;
            send(&mut ws, packet).await;
            closed_quietly(&mut ws).await;
        }
        all_closed_with_parse_error(&io, &reasons, bad.len()).await;
    })
    .await;
}
