//! Raw frames against the server with the behaviour of the reference socket.io protocol test suite: what
//! the suite sends and the exact frames it expects back.

use std::time::Duration;

use futures_util::SinkExt;
use socketio_server::{Event, Socket, SocketIo, SocketIoConfig, Value};
use tokio_tungstenite::tungstenite::Message as WsMessage;

mod support;

use support::*;

/// The suite's server: ping 300/200, connect timeout 1 s; `auth` on connect in `/` and `/custom`;
/// `message` → `message-back`, `message-with-ack` → ack.
async fn suite_server() -> (SocketIo, std::net::SocketAddr) {
    let mut config = {
        let mut c = SocketIoConfig::default();
        c.connect_timeout = Duration::from_millis(1000);
        c
    };
    config.engine.ping_interval = Duration::from_millis(300);
    config.engine.ping_timeout = Duration::from_millis(200);
    let io = SocketIo::new(config);
    for nsp in ["/", "/custom"] {
        io.of(nsp).on_connection(|socket: Socket| async move {
            let _ = socket.emit("auth", socket.handshake().auth.clone());
            socket.on("message", |s: Socket, ev: Event| async move {
                let _ = s.emit("message-back", ev.args);
            });
            socket.on("message-with-ack", |mut ev: Event| async move {
                let args = ev.args.clone();
                ev.ack(args);
            });
        });
    }
    let (addr, _task) = io.listen("127.0.0.1:0".parse().unwrap()).await.unwrap();
    (io, addr)
}

fn sid_of(connect: &str, prefix: &str) -> String {
    let json: serde_json::Value = serde_json::from_str(connect.strip_prefix(prefix).unwrap()).unwrap();
    assert_eq!(json.as_object().unwrap().len(), 1, "only the sid, no pid: {connect}");
    json["sid"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn connect_to_the_main_namespace() {
    let (_io, addr) = suite_server().await;
    let mut ws = ws_open(addr).await;
    send(&mut ws, "40").await;
    let sid = sid_of(&next_text(&mut ws).await, "40");
    assert_eq!(sid.len(), 20);
    assert_eq!(next_text(&mut ws).await, "42[\"auth\",{}]");
}

#[tokio::test]
async fn connect_to_a_custom_namespace_with_auth() {
    let (_io, addr) = suite_server().await;
    let mut ws = ws_open(addr).await;
    send(&mut ws, "40/custom,{\"token\":\"abc\"}").await;
    sid_of(&next_text(&mut ws).await, "40/custom,");
    assert_eq!(next_text(&mut ws).await, "42/custom,[\"auth\",{\"token\":\"abc\"}]");
}

#[tokio::test]
async fn an_unknown_namespace_gets_connect_error() {
    let (_io, addr) = suite_server().await;
    let mut ws = ws_open(addr).await;
    send(&mut ws, "40/random").await;
    assert_eq!(next_text(&mut ws).await, "44/random,{\"message\":\"Invalid namespace\"}");
}

#[tokio::test]
async fn events_with_binary_attachments_come_back() {
    let (_io, addr) = suite_server().await;
    let mut ws = ws_open(addr).await;
    send(&mut ws, "40").await;
    next_text(&mut ws).await;
    next_text(&mut ws).await;
    send(&mut ws, "452-[\"message\",{\"_placeholder\":true,\"num\":0},{\"_placeholder\":true,\"num\":1}]").await;
    ws.send(WsMessage::Binary(vec![1, 2, 3].into())).await.unwrap();
    ws.send(WsMessage::Binary(vec![4, 5, 6].into())).await.unwrap();
    assert_eq!(
        next_text(&mut ws).await,
        "452-[\"message-back\",{\"_placeholder\":true,\"num\":0},{\"_placeholder\":true,\"num\":1}]"
    );
    assert_eq!(next_binary(&mut ws).await, vec![1, 2, 3]);
    assert_eq!(next_binary(&mut ws).await, vec![4, 5, 6]);
}

#[tokio::test]
async fn events_with_plain_arguments_come_back() {
    let (_io, addr) = suite_server().await;
    let mut ws = ws_open(addr).await;
    send(&mut ws, "40").await;
    next_text(&mut ws).await;
    next_text(&mut ws).await;
    send(&mut ws, "42[\"message\",1,\"2\",{\"3\":[true]}]").await;
    assert_eq!(next_text(&mut ws).await, "42[\"message-back\",1,\"2\",{\"3\":[true]}]");
}

#[tokio::test]
async fn acks_with_and_without_binary() {
    let (_io, addr) = suite_server().await;
    let mut ws = ws_open(addr).await;
    send(&mut ws, "40").await;
    next_text(&mut ws).await;
    next_text(&mut ws).await;
    send(&mut ws, "42456[\"message-with-ack\",1,\"2\",{\"3\":[false]}]").await;
    assert_eq!(next_text(&mut ws).await, "43456[1,\"2\",{\"3\":[false]}]");
    send(&mut ws, "452-789[\"message-with-ack\",{\"_placeholder\":true,\"num\":0},{\"_placeholder\":true,\"num\":1}]")
        .await;
    ws.send(WsMessage::Binary(vec![1, 2, 3].into())).await.unwrap();
    ws.send(WsMessage::Binary(vec![4, 5, 6].into())).await.unwrap();
    assert_eq!(
        next_text(&mut ws).await,
        "462-789[{\"_placeholder\":true,\"num\":0},{\"_placeholder\":true,\"num\":1}]"
    );
    assert_eq!(next_binary(&mut ws).await, vec![1, 2, 3]);
    assert_eq!(next_binary(&mut ws).await, vec![4, 5, 6]);
}

#[tokio::test]
async fn malformed_packets_close_the_connection() {
    let (io, addr) = suite_server().await;
    for bad in ["4abc", "42{}", "42abc[", "42[\"disconnect\"]", "451-[\"a\"]\u{0}"] {
        let mut ws = ws_open(addr).await;
        send(&mut ws, "40").await;
        next_text(&mut ws).await;
        next_text(&mut ws).await;
        send(&mut ws, bad).await;
        if bad.starts_with("451-") {
            // A text packet while attachments are awaited.
            send(&mut ws, "42[\"message\"]").await;
        }
        closed(&mut ws).await;
    }
    // Every closed connection is gone from the server.
    for _ in 0..100 {
        if io.engine().session_count() == 0 {
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("sessions left: {}", io.engine().session_count());
}

#[tokio::test(start_paused = true)]
async fn a_connection_without_connect_is_closed_after_the_timeout() {
    // On tokio's paused clock, which the connection's timer runs on: the timeout is exact, and no real
    // second passes.
    let real = std::time::Instant::now();
    let (_io, addr) = suite_server().await;
    let mut ws = ws_open(addr).await;
    let started = tokio::time::Instant::now();
    closed(&mut ws).await;
    let waited = started.elapsed();
    assert!(waited >= Duration::from_millis(1000) && waited < Duration::from_millis(1100), "{waited:?}");
    assert!(real.elapsed() < Duration::from_millis(900), "the connect timeout did not run on tokio's clock");
}

#[tokio::test]
async fn polling_connect_and_event_in_one_payload() {
    let (_io, addr) = suite_server().await;
    let open = http_ok(addr, "GET", "/socket.io/?EIO=4&transport=polling", "").await;
    let json: serde_json::Value = serde_json::from_str(open.strip_prefix('0').unwrap()).unwrap();
    let sid = json["sid"].as_str().unwrap();
    let path = format!("/socket.io/?EIO=4&transport=polling&sid={sid}");
    assert_eq!(http_ok(addr, "POST", &path, "40\u{1e}42[\"message\",\"hi\"]").await, "ok");
    let body = http_ok(addr, "GET", &path, "").await;
    let packets: Vec<&str> = body.split('\u{1e}').collect();
    assert_eq!(packets.len(), 3, "{body}");
    sid_of(packets[0], "40");
    assert_eq!(packets[1], "42[\"auth\",{}]");
    assert_eq!(packets[2], "42[\"message-back\",\"hi\"]");
}

#[tokio::test]
async fn server_api_without_clients() {
    let io = SocketIo::default();
    assert_eq!(io.namespaces(), vec!["/".to_owned()]);
    assert!(matches!(io.emit("connect", ()), Err(socketio_server::EmitError::Reserved(_))));
    assert!(io.emit("hello", ("a", 1)).is_ok());
    assert!(io.fetch_sockets().await.unwrap().is_empty());
    let answers = io.timeout(Duration::from_millis(50)).emit_with_ack("q", ()).await.unwrap();
    assert!(answers.is_empty(), "no client, no answer, no waiting");
    assert_eq!(io.of("chat").name(), "/chat");
    assert_eq!(Value::from(3).as_u64(), Some(3));
}

/// The body of a request that must answer 200.
async fn http_ok(addr: std::net::SocketAddr, method: &str, path: &str, body: &str) -> String {
    let (status, body) = support::http(addr, method, path, body).await;
    assert_eq!(status, 200, "{method} {path}: {body}");
    body
}
