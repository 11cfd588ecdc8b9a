//! Application code that panics (event handlers, async handlers, catch-all listeners, per-packet and
//! connection middlewares) on both transports: the call ends, the socket and the server go on, and a
//! client that leaves afterwards leaves no session behind. Also the handshake query as the application
//! reads it.

use std::time::{Duration, Instant};

use socketio_server::{ConnectError, Event, Socket, SocketIo, SocketIoConfig};

mod support;

use support::*;

async fn panicking_server() -> (SocketIo, std::net::SocketAddr) {
    let io = SocketIo::new(SocketIoConfig::default());
    io.on_connection(|socket: Socket| async move {
        // Bugs as they happen: an assumption about the arguments that does not hold (none are sent).
        socket.on("boom", |_: Socket, ev: Event| async move {
            assert!(!ev.args.is_empty(), "a bug in an event handler");
        });
        socket.on("boom-later", |_: Socket, ev: Event| async move {
            tokio::task::yield_now().await;
            assert!(!ev.args.is_empty(), "a bug after an await");
        });
        socket.on("echo", |_: Socket, mut ev: Event| async move {
            let args = ev.args.clone();
            ev.ack(args);
        });
        socket.on_any(|_: &Socket, name: &str, _: &[socketio_server::Value]| {
            if name == "boom-any" {
                panic!("a bug in a catch-all listener");
            }
        });
        socket.on("query", |s: Socket, mut ev: Event| async move {
            let q = s.handshake().query.clone();
            ev.ack(vec![
                socketio_server::Value::from(q.get("token").cloned().unwrap_or_default()),
                socketio_server::Value::from(q.get("room").cloned().unwrap_or_default()),
            ]);
        });
    });
    let mw = io.of("/mw");
    mw.use_middleware(|_: Socket| async move {
        if true {
            panic!("a bug in a connection middleware");
        }
        Ok::<(), ConnectError>(())
    });
    let (addr, _) = io.listen("127.0.0.1:0".parse().unwrap()).await.unwrap();
    (io, addr)
}

async fn wait_for_no_session(io: &SocketIo) {
    let deadline = Instant::now() + Duration::from_secs(5);
    while io.engine().session_count() > 0 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(io.engine().session_count(), 0, "every session of a client that left is gone");
}

#[tokio::test]
async fn panicking_handlers_over_websocket_end_the_call_and_leak_nothing() {
    let (io, addr) = panicking_server().await;
    for _ in 0..200 {
        let mut ws = ws_open(addr).await;
        send(&mut ws, "40").await;
        assert!(next_text(&mut ws).await.starts_with("40{"));
        send(&mut ws, "42[\"boom\"]").await;
        send(&mut ws, "42[\"boom-later\"]").await;
        send(&mut ws, "42[\"boom-any\"]").await;
        // The socket is still connected and served.
        send(&mut ws, "421[\"echo\",1]").await;
        assert_eq!(next_text(&mut ws).await, "431[1]");
        drop(ws);
    }
    wait_for_no_session(&io).await;
    // A panicking connection middleware refuses the connection instead of leaving it waiting.
    let mut ws = ws_open(addr).await;
    send(&mut ws, "40/mw,").await;
    assert_eq!(next_text(&mut ws).await, "44/mw,{\"message\":\"server error\"}");
    send(&mut ws, "40").await;
    assert!(next_text(&mut ws).await.starts_with("40{"));
}

#[tokio::test]
async fn panicking_handlers_over_polling_end_the_call_and_leak_nothing() {
    let (io, addr) = panicking_server().await;
    for _ in 0..200 {
        let path = polling_session(addr).await;
        assert_eq!(http(addr, "POST", &path, "40").await.0, 200);
        assert!(poll_replies(addr, &path, 1).await[0].starts_with("40{"));
        let body = "42[\"boom\"]\u{1e}42[\"boom-later\"]\u{1e}42[\"boom-any\"]\u{1e}421[\"echo\",2]";
        assert_eq!(http(addr, "POST", &path, body).await.0, 200);
        assert_eq!(poll_replies(addr, &path, 1).await, ["431[2]"]);
        // The client leaves.
        assert_eq!(http(addr, "POST", &path, "1").await.0, 200);
    }
    wait_for_no_session(&io).await;
}

#[tokio::test]
async fn the_handshake_query_is_percent_decoded_as_the_reference() {
    let (_io, addr) = panicking_server().await;
    // What the official client sends for `query: {token: "&a", room: "f g"}`.
    let open = http(addr, "GET", "/socket.io/?EIO=4&transport=polling&token=%26a&room=f%20g", "").await.1;
    let json: serde_json::Value = serde_json::from_str(open.strip_prefix('0').unwrap()).unwrap();
    let path = format!("/socket.io/?EIO=4&transport=polling&sid={}", json["sid"].as_str().unwrap());
    assert_eq!(http(addr, "POST", &path, "40").await.0, 200);
    poll_replies(addr, &path, 1).await;
    assert_eq!(http(addr, "POST", &path, "421[\"query\"]").await.0, 200);
    assert_eq!(poll_replies(addr, &path, 1).await, ["431[\"&a\",\"f g\"]"]);
}
