//! Reference edges found from outside: requests of a session in another protocol revision, `forceBase64`
//! WebSocket clients, a long-poll GET after the pong deadline, polling sessions closed by the server that
//! never poll again, and application code that panics.

mod support;

use std::time::{Duration, Instant};

use engineio_server::{Connection, EngineConfig, Handler, Message, Socket};
use futures_util::{SinkExt, StreamExt};
use support::*;
use tokio_tungstenite::tungstenite::Message as WsMessage;

#[tokio::test]
async fn requests_of_a_session_must_speak_its_protocol_revision() {
    let server = start(suite_config()).await;
    let (sid, _) = handshake(server.addr).await;
    for eio in ["EIO=3", "EIO=5", "EIO=4x"] {
        let get = support::get(server.addr, &format!("/engine.io/?{eio}&transport=polling&sid={sid}")).await;
        assert_eq!(get.status, 400, "GET with {eio}");
        assert_eq!(get.json(), serde_json::json!({"code": 3, "message": "Bad request"}), "GET with {eio}");
        let post = support::post(server.addr, &format!("/engine.io/?{eio}&transport=polling&sid={sid}"), b"4hi").await;
        assert_eq!(post.status, 400, "POST with {eio}");
        let ws = ws_connect(server.addr, &format!("/engine.io/?{eio}&transport=websocket&sid={sid}"), &[]).await;
        match ws {
            Err(tokio_tungstenite::tungstenite::Error::Http(res)) => {
                assert_eq!(res.status(), 400, "upgrade with {eio}")
            }
            other => panic!("the upgrade with {eio} must be refused, got {other:?}"),
        }
    }
    // The session was not disturbed: its POST and GET still work, and the message went nowhere else.
    let post = support::post(server.addr, &poll_path(&sid), b"4still here").await;
    assert_eq!(post.status, 200);
    assert_eq!(support::get(server.addr, &poll_path(&sid)).await.text(), "4still here");
    assert_eq!(server.engine.session_count(), 1);
}

#[tokio::test]
async fn a_force_base64_websocket_sends_and_receives_binary_as_base64_text() {
    let server = start(suite_config()).await;
    let (mut ws, _) = ws_connect(server.addr, "/engine.io/?EIO=4&transport=websocket&b64=1", &[]).await.unwrap();
    assert!(ws_text(&mut ws).await.starts_with("0{"));
    // The client writes binary as `b` + base64; the echo comes back the same way, not as a binary frame.
    ws_send(&mut ws, "bAQID").await;
    assert_eq!(ws_text(&mut ws).await, "bAQID");
    ws_send(&mut ws, "4text").await;
    assert_eq!(ws_text(&mut ws).await, "4text");
    // A client without b64 may still send `b` + base64 (the reference's decoder takes it), and gets binary
    // frames back.
    let (mut ws, _) = ws_connect(server.addr, "/engine.io/?EIO=4&transport=websocket", &[]).await.unwrap();
    assert!(ws_text(&mut ws).await.starts_with("0{"));
    ws_send(&mut ws, "bBAU=").await;
    match tokio::time::timeout(Duration::from_secs(5), ws.next()).await.unwrap() {
        Some(Ok(WsMessage::Binary(b))) => assert_eq!(&b[..], &[4, 5]),
        other => panic!("expected a binary frame, got {other:?}"),
    }
}

#[tokio::test]
async fn an_upgrade_with_b64_gets_base64_text_frames() {
    let server = start(suite_config()).await;
    let (sid, _) = handshake(server.addr).await;
    let path = format!("/engine.io/?EIO=4&transport=websocket&sid={sid}&b64=1");
    let (mut ws, _) = ws_connect(server.addr, &path, &[]).await.unwrap();
    ws_send(&mut ws, "2probe").await;
    assert_eq!(ws_text(&mut ws).await, "3probe");
    ws_send(&mut ws, "5").await;
    // Binary sent over the upgraded WebSocket is echoed as text.
    ws_send(&mut ws, "b/w==").await;
    assert_eq!(ws_text(&mut ws).await, "b/w==");
}

#[tokio::test(start_paused = true)]
async fn a_get_after_the_pong_deadline_finds_the_session_closed() {
    // The reference's defaults: a ping after 25 s, 20 s for the pong. A client that takes the ping and never
    // answers must find its session gone (400) when it polls after 45 s. On tokio's paused clock, which the
    // session task reads too, the 45 s take no real time; a task that read the system clock would wait for
    // its ping until 25 real seconds had passed, which the last assertion catches.
    let real = std::time::Instant::now();
    let server = start(EngineConfig::default()).await;
    let (sid, _) = handshake(server.addr).await;
    tokio::time::sleep(Duration::from_secs(25)).await;
    let ping = support::get(server.addr, &poll_path(&sid)).await;
    assert_eq!(ping.text(), "2");
    tokio::time::sleep(Duration::from_secs(21)).await;
    let late = support::get(server.addr, &poll_path(&sid)).await;
    assert_eq!(late.status, 400, "{}", late.text());
    assert_eq!(late.json()["code"], 1);
    assert!(real.elapsed() < Duration::from_secs(10), "the session task did not run on tokio's clock");
}

/// Closes every session from the server as soon as it opens, as Socket.IO's connect timeout does.
struct CloseAtOnce;

impl Handler for CloseAtOnce {
    fn on_open(&self, socket: &Socket) -> Box<dyn Connection> {
        socket.close();
        Box::new(EchoConnection(socket.clone()))
    }
}

#[tokio::test]
async fn polling_sessions_closed_by_the_server_are_gone_by_their_pong_deadline() {
    // 2,000 handshakes that never poll again, each closed by the server at once: the close waits for a
    // GET for up to 30 s (close timeout), but the heartbeat ends them pingInterval + pingTimeout (500 ms)
    // after the handshake, as in the reference.
    let server = start_with(suite_config(), CloseAtOnce).await;
    let mut sids = Vec::new();
    let started = Instant::now();
    for chunk in 0..20 {
        let batch: Vec<_> = (0..100).map(|_| tokio::spawn(handshake(server.addr))).collect();
        for h in batch {
            sids.push(h.await.unwrap().0);
        }
        assert!(chunk < 19 || sids.len() == 2_000);
    }
    let opened = started.elapsed();
    // The last handshake's deadline is 500 ms after it; allow a second of grace for a loaded machine.
    let deadline = Instant::now() + Duration::from_millis(1_500);
    while server.engine.session_count() > 0 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(server.engine.session_count(), 0, "sessions left {:?} after opening them all", opened);
    for sid in sids.iter().step_by(97) {
        assert_eq!(support::get(server.addr, &poll_path(sid)).await.status, 400);
    }
}

/// A handler whose code panics: on `boom` in `on_message`, or at once in `on_open` for the `open` query.
struct Panicky;

struct PanickyConnection(Socket);

impl Handler for Panicky {
    fn on_open(&self, socket: &Socket) -> Box<dyn Connection> {
        if socket.request().uri.query().is_some_and(|q| q.contains("panic-on-open")) {
            panic!("a bug in on_open");
        }
        Box::new(PanickyConnection(socket.clone()))
    }
}

impl Connection for PanickyConnection {
    fn on_message(&mut self, message: Message) {
        if matches!(&message, Message::Text(t) if &**t == "boom") {
            panic!("a bug in on_message");
        }
        let _ = self.0.send(message);
    }
}

#[tokio::test]
async fn a_panicking_handler_closes_its_session_and_the_server_goes_on() {
    let server = start_with(suite_config(), Panicky).await;
    // Polling: the session is removed, its requests get "Session ID unknown".
    for _ in 0..20 {
        let (sid, _) = handshake(server.addr).await;
        assert_eq!(support::post(server.addr, &poll_path(&sid), b"4boom").await.status, 200);
        let next = support::get(server.addr, &poll_path(&sid)).await;
        assert!(next.status == 400 || next.text() == "1", "{} {}", next.status, next.text());
    }
    // WebSocket: the connection is closed.
    for _ in 0..20 {
        let (mut ws, _) = ws_connect(server.addr, "/engine.io/?EIO=4&transport=websocket", &[]).await.unwrap();
        assert!(ws_text(&mut ws).await.starts_with("0{"));
        ws_send(&mut ws, "4boom").await;
        ws_closed(&mut ws).await;
    }
    // A panic in on_open ends that session too.
    let (mut ws, _) =
        ws_connect(server.addr, "/engine.io/?EIO=4&transport=websocket&panic-on-open", &[]).await.unwrap();
    assert!(ws_text(&mut ws).await.starts_with("0{"));
    ws_closed(&mut ws).await;
    let deadline = Instant::now() + Duration::from_secs(2);
    while server.engine.session_count() > 0 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(server.engine.session_count(), 0, "every session of a panicking handler is removed");
    // The server is healthy: a new session echoes.
    let (mut ws, _) = ws_connect(server.addr, "/engine.io/?EIO=4&transport=websocket", &[]).await.unwrap();
    assert!(ws_text(&mut ws).await.starts_with("0{"));
    ws.send(WsMessage::Text("4fine".into())).await.unwrap();
    assert_eq!(ws_text(&mut ws).await, "4fine");
}

#[tokio::test]
async fn panicking_hooks_answer_500_and_leak_no_session_slot() {
    let mut config = suite_config();
    config.max_sessions = Some(3);
    config
        .generate_id(|req: &http::request::Parts| {
            if req.uri.query().is_some_and(|q| q.contains("bad-id")) {
                panic!("a bug in generate_id");
            }
            engineio_server::proto::handshake::sid_from_bytes(rand_bytes())
        })
        .headers(|_: &mut http::HeaderMap, req: &http::request::Parts| {
            if req.uri.query().is_some_and(|q| q.contains("bad-header")) {
                panic!("a bug in a headers hook");
            }
        });
    let server = start(config).await;
    for _ in 0..5 {
        let res = support::get(server.addr, "/engine.io/?EIO=4&transport=polling&bad-id").await;
        assert_eq!(res.status, 400, "a panicking generate_id refuses the handshake as the reference's throwing one");
        let res = support::get(server.addr, "/engine.io/?EIO=4&transport=polling&bad-header").await;
        assert_eq!(res.status, 500);
    }
    assert_eq!(server.engine.session_count(), 0);
    // No slot was leaked: the three allowed sessions still open.
    for _ in 0..3 {
        handshake(server.addr).await;
    }
}

fn rand_bytes() -> [u8; 15] {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(1);
    let mut b = [0u8; 15];
    b[..8].copy_from_slice(&N.fetch_add(1, Ordering::Relaxed).to_le_bytes());
    b
}

#[tokio::test]
async fn a_plain_closure_is_a_middleware() {
    use engineio_server::BoxError;
    use engineio_server::http::{HeaderMap, HeaderValue, request};
    let mut config = suite_config();
    config.middleware(|req: &mut request::Parts, headers: &mut HeaderMap| -> Result<(), BoxError> {
        if req.headers.get("x-api-key").is_none_or(|k| k != "k1") {
            return Err("no api key".into());
        }
        headers.insert("x-checked", HeaderValue::from_static("yes"));
        Ok(())
    });
    let server = start(config).await;
    let refused = support::get(server.addr, "/engine.io/?EIO=4&transport=polling").await;
    assert_eq!(refused.status, 400);
    assert_eq!(refused.json()["code"], 3);
    let ok =
        support::request(server.addr, "GET", "/engine.io/?EIO=4&transport=polling", &[("x-api-key", "k1")], b"").await;
    assert_eq!(ok.status, 200);
    assert!(ok.text().starts_with("0{"), "{}", ok.text());
    assert_eq!(ok.header("x-checked"), Some("yes"));
}
