//! The bridge over a real connection: session creation on the handshake, anonymous sockets, reload
//! before each event, and the session room.

use std::sync::Arc;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use session_bridge::{Anonymous, BridgeConfig, MemoryStore, SessionBridge, SessionStore, SocketSessionExt};
use socketio_server::{Event, Socket, SocketIo, SocketIoConfig};
use tokio_tungstenite::tungstenite::Message as WsMessage;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

type Ws = tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

async fn server(config: BridgeConfig) -> (SocketIo, SessionBridge, std::net::SocketAddr) {
    let bridge = SessionBridge::new(config);
    let mut sio = SocketIoConfig::default();
    sio.engine.middleware(bridge.engine_middleware());
    let io = SocketIo::new(sio);
    bridge.attach(&io.of("/"));
    io.on_connection(|socket: Socket| async move {
        let who = socket.session().map(|s| s.id().to_owned()).unwrap_or_else(|| "anonymous".into());
        let _ = socket.emit("hello", who);
        socket.on("get", |socket: Socket, mut ev: Event| async move {
            let v = socket.session().and_then(|s| s.get("value")).unwrap_or(serde_json::Value::Null);
            ev.ack(v);
        });
    });
    let (addr, _) = io.listen("127.0.0.1:0".parse().unwrap()).await.unwrap();
    (io, bridge, addr)
}

async fn connect(addr: std::net::SocketAddr, cookie: Option<&str>) -> (Ws, http::HeaderMap) {
    let mut req = format!("ws://{addr}/socket.io/?EIO=4&transport=websocket").into_client_request().unwrap();
    if let Some(c) = cookie {
        req.headers_mut().insert("cookie", c.parse().unwrap());
    }
    let (mut ws, res) = tokio_tungstenite::connect_async(req).await.unwrap();
    assert!(text(&mut ws).await.starts_with("0{"));
    ws.send(WsMessage::Text("40".into())).await.unwrap();
    (ws, res.headers().clone())
}

async fn text(ws: &mut Ws) -> String {
    match tokio::time::timeout(Duration::from_secs(5), ws.next()).await.expect("a frame in time") {
        Some(Ok(WsMessage::Text(t))) => t.to_string(),
        other => panic!("expected text, got {other:?}"),
    }
}

#[tokio::test]
async fn creates_sessions_on_the_handshake_when_asked() {
    let store = Arc::new(MemoryStore::default());
    let mut config = BridgeConfig::new(vec!["s3cret".into()], store.clone());
    config.create_sessions = true;
    let (io, bridge, addr) = server(config).await;
    let (mut ws, headers) = connect(addr, None).await;
    let set_cookie = headers.get("set-cookie").expect("a session cookie on the 101").to_str().unwrap().to_owned();
    assert!(set_cookie.starts_with("connect.sid=s%3A"), "{set_cookie}");
    assert!(text(&mut ws).await.starts_with("40{"));
    let hello = text(&mut ws).await;
    let mut cookie_headers = http::HeaderMap::new();
    cookie_headers.insert("cookie", set_cookie.split(';').next().unwrap().parse().unwrap());
    let sid = bridge.session_id(&cookie_headers).expect("our own cookie verifies");
    assert_eq!(hello, format!("42[\"hello\",\"{sid}\"]"));
    assert!(store.get(&sid).await.unwrap().is_some(), "the new session is saved");
    // The socket is in the session's room.
    io.to(sid.as_str()).emit("to-session", ()).unwrap();
    assert_eq!(text(&mut ws).await, "42[\"to-session\"]");
    // The same cookie on a second connection: same session, no new cookie.
    let cookie = set_cookie.split(';').next().unwrap().to_owned();
    let (mut ws2, headers2) = connect(addr, Some(&cookie)).await;
    assert!(headers2.get("set-cookie").is_none());
    text(&mut ws2).await;
    assert_eq!(text(&mut ws2).await, format!("42[\"hello\",\"{sid}\"]"));
    assert_eq!(store.len(), 1);
}

#[tokio::test]
async fn anonymous_sockets_when_allowed_and_refused_otherwise() {
    let mut config = BridgeConfig::new(vec!["s3cret".into()], Arc::new(MemoryStore::default()));
    config.anonymous = Anonymous::Allow;
    let (_io, _bridge, addr) = server(config).await;
    let (mut ws, _) = connect(addr, Some("connect.sid=s%3Aforged.signature")).await;
    assert!(text(&mut ws).await.starts_with("40{"));
    assert_eq!(text(&mut ws).await, "42[\"hello\",\"anonymous\"]");

    let config = BridgeConfig::new(vec!["s3cret".into()], Arc::new(MemoryStore::default()));
    let (_io, _bridge, addr) = server(config).await;
    let (mut ws, _) = connect(addr, None).await;
    assert_eq!(text(&mut ws).await, "44{\"message\":\"session required\"}");
}

#[tokio::test]
async fn reload_before_each_event_sees_changes_made_elsewhere() {
    let store = Arc::new(MemoryStore::default());
    for reload in [false, true] {
        let mut config = BridgeConfig::new(vec!["s3cret".into()], store.clone());
        config.reload_each_packet = reload;
        let (_io, bridge, addr) = server(config).await;
        let (session, cookie) = bridge.create().await.unwrap();
        session.set("value", 1);
        session.save().await.unwrap();
        let cookie = cookie.to_str().unwrap().split(';').next().unwrap().to_owned();
        let (mut ws, _) = connect(addr, Some(&cookie)).await;
        text(&mut ws).await;
        text(&mut ws).await;
        ws.send(WsMessage::Text("421[\"get\"]".into())).await.unwrap();
        assert_eq!(text(&mut ws).await, "431[1]");
        // Another request of the same session changes it in the store.
        let mut headers = http::HeaderMap::new();
        headers.insert("cookie", cookie.parse().unwrap());
        let other = bridge.load(&headers).await.unwrap().unwrap();
        other.set("value", 2);
        other.save().await.unwrap();
        ws.send(WsMessage::Text("422[\"get\"]".into())).await.unwrap();
        let expected = if reload { "432[2]" } else { "432[1]" };
        assert_eq!(text(&mut ws).await, expected, "reload_each_packet = {reload}");
        // Destroyed elsewhere: with reload on, the next event finds it gone and the socket leaves.
        other.destroy().await.unwrap();
        ws.send(WsMessage::Text("423[\"get\"]".into())).await.unwrap();
        if reload {
            assert_eq!(text(&mut ws).await, "41");
        } else {
            // Without reload the socket keeps the data it loaded at the handshake.
            assert_eq!(text(&mut ws).await, "433[1]");
        }
    }
}

#[tokio::test]
async fn the_application_shapes_refusals_and_rules_on_the_session() {
    let store = Arc::new(MemoryStore::default());
    let mut config = BridgeConfig::new(vec!["s3cret".into()], store.clone());
    config.refusal =
        socketio_server::ConnectError::new("login first").with_data(serde_json::json!({"login": "/login"}));
    config.require(|s| s.get("user").map(drop).ok_or_else(|| socketio_server::ConnectError::new("login required")));
    let (_io, bridge, addr) = server(config).await;
    // No session: the application's refusal, with its data.
    let (mut ws, _) = connect(addr, None).await;
    assert_eq!(text(&mut ws).await, r#"44{"message":"login first","data":{"login":"/login"}}"#);
    // A session that fails the rule: the rule's refusal.
    let (session, cookie) = bridge.create().await.unwrap();
    let cookie = cookie.to_str().unwrap().split(';').next().unwrap().to_owned();
    let (mut ws, _) = connect(addr, Some(&cookie)).await;
    assert_eq!(text(&mut ws).await, r#"44{"message":"login required"}"#);
    // Once it passes, the socket connects.
    session.set("user", "alice");
    session.save().await.unwrap();
    let (mut ws, _) = connect(addr, Some(&cookie)).await;
    assert!(text(&mut ws).await.starts_with("40{"));
    assert_eq!(text(&mut ws).await, format!("42[\"hello\",\"{}\"]", session.id()));
}

#[tokio::test]
async fn an_expired_session_in_the_memory_store_is_gone_and_removed_as_with_express_sessions_memory_store() {
    let store = Arc::new(MemoryStore::default());
    let (_io, bridge, addr) = server(BridgeConfig::new(vec!["s3cret".into()], store.clone())).await;
    let (session, cookie) = bridge.create().await.unwrap();
    let mut data = session.data();
    let cookie_obj = data.0.get_mut("cookie").unwrap().as_object_mut().unwrap();
    cookie_obj.insert("expires".into(), "2000-01-01T00:00:00.000Z".into());
    // Stored as it is (set does not look at the expiry), as a record another process left behind.
    store.set(session.id(), &data).await.unwrap();
    assert_eq!(store.len(), 1);
    let cookie = cookie.to_str().unwrap().split(';').next().unwrap().to_owned();
    let (mut ws, _) = connect(addr, Some(&cookie)).await;
    assert_eq!(text(&mut ws).await, r#"44{"message":"session required"}"#);
    assert_eq!(store.len(), 0, "the expired record was removed on read");
    assert_eq!(session.reload().await, Err(session_bridge::SessionError::NotFound));
}
