//! Server behaviours observed from the inside: graceful close, dynamic child namespace cleanup, and the
//! connection state recovery buffer.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use socketio_server::{DisconnectReason, RecoveryConfig, Socket, SocketIo, SocketIoConfig};
use tokio_tungstenite::tungstenite::Message as WsMessage;

mod support;
use support::eventually;

type Ws = tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

async fn connect(addr: std::net::SocketAddr, nsp_connect: &str) -> Ws {
    let (mut ws, _) =
        tokio_tungstenite::connect_async(format!("ws://{addr}/socket.io/?EIO=4&transport=websocket")).await.unwrap();
    assert!(text(&mut ws).await.starts_with("0{"));
    ws.send(WsMessage::Text(nsp_connect.into())).await.unwrap();
    let reply = text(&mut ws).await;
    assert!(reply.starts_with("40"), "{reply}");
    ws
}

async fn text(ws: &mut Ws) -> String {
    loop {
        match tokio::time::timeout(Duration::from_secs(5), ws.next()).await.expect("a frame in time") {
            Some(Ok(WsMessage::Text(t))) => return t.to_string(),
            Some(Ok(WsMessage::Ping(_) | WsMessage::Pong(_))) => {}
            other => panic!("expected text, got {other:?}"),
        }
    }
}

async fn closed(ws: &mut Ws) {
    loop {
        match tokio::time::timeout(Duration::from_secs(5), ws.next()).await.expect("closed in time") {
            None | Some(Err(_)) | Some(Ok(WsMessage::Close(_))) => return,
            Some(Ok(_)) => {}
        }
    }
}

#[tokio::test]
async fn close_disconnects_everyone_with_server_shutting_down() {
    let io = SocketIo::default();
    let reasons = Arc::new(Mutex::new(Vec::new()));
    let r = reasons.clone();
    io.on_connection(move |socket: Socket| {
        let r = r.clone();
        async move {
            socket.on_disconnect(move |_, reason| {
                let r = r.clone();
                async move { r.lock().unwrap().push(reason) }
            });
        }
    });
    let (addr, _task) = io.listen("127.0.0.1:0".parse().unwrap()).await.unwrap();
    let mut a = connect(addr, "40").await;
    let mut b = connect(addr, "40").await;
    eventually(|| io.of("/").sockets().len() == 2).await;
    tokio::time::timeout(Duration::from_secs(5), io.close()).await.expect("close finishes");
    closed(&mut a).await;
    closed(&mut b).await;
    assert_eq!(*reasons.lock().unwrap(), vec![DisconnectReason::ServerShuttingDown; 2]);
    assert_eq!(io.engine().session_count(), 0);
}

#[tokio::test]
async fn empty_child_namespaces_are_cleaned_up_when_asked() {
    for cleanup in [false, true] {
        let io = SocketIo::new({
            let mut c = SocketIoConfig::default();
            c.cleanup_empty_child_namespaces = cleanup;
            c
        });
        let parent = io.of_dynamic(|name, _| name.starts_with("/room-"));
        let (addr, _task) = io.listen("127.0.0.1:0".parse().unwrap()).await.unwrap();
        let mut ws = connect(addr, "40/room-1,").await;
        assert!(io.namespaces().contains(&"/room-1".to_owned()));
        assert_eq!(parent.children().len(), 1);
        ws.send(WsMessage::Text("41/room-1,".into())).await.unwrap();
        if cleanup {
            eventually(|| !io.namespaces().contains(&"/room-1".to_owned())).await;
            assert!(parent.children().is_empty());
        } else {
            tokio::time::sleep(Duration::from_millis(100)).await;
            assert!(io.namespaces().contains(&"/room-1".to_owned()));
        }
    }
}

#[tokio::test]
async fn recovery_replays_missed_broadcasts_before_the_connect_reply() {
    let config = {
        let mut c = SocketIoConfig::default();
        c.connection_state_recovery = Some(RecoveryConfig::default());
        c
    };
    let io = SocketIo::new(config);
    io.on_connection(|socket: Socket| async move {
        if !socket.recovered() {
            socket.join("news");
            socket.set_data(serde_json::json!({"user": 7}));
        }
    });
    let (addr, _task) = io.listen("127.0.0.1:0".parse().unwrap()).await.unwrap();
    let (mut ws, _) =
        tokio_tungstenite::connect_async(format!("ws://{addr}/socket.io/?EIO=4&transport=websocket")).await.unwrap();
    text(&mut ws).await;
    ws.send(WsMessage::Text("40".into())).await.unwrap();
    let reply: serde_json::Value = serde_json::from_str(text(&mut ws).await.strip_prefix("40").unwrap()).unwrap();
    let (sid, pid) = (reply["sid"].as_str().unwrap().to_owned(), reply["pid"].as_str().unwrap().to_owned());
    eventually(|| !io.of("/").sockets().is_empty()).await;
    io.to("news").emit("headline", "first").unwrap();
    let first = text(&mut ws).await;
    let args: serde_json::Value = serde_json::from_str(first.strip_prefix("42").unwrap()).unwrap();
    assert_eq!(args[0], "headline");
    assert_eq!(args[1], "first");
    let offset = args[2].as_str().expect("the offset is appended as the last argument").to_owned();
    // The connection drops (a recoverable reason); broadcasts go on meanwhile.
    drop(ws);
    eventually(|| io.of("/").sockets().is_empty()).await;
    io.to("news").emit("headline", "second").unwrap();
    io.to("other").emit("headline", "not for us").unwrap();
    io.emit("headline", "third").unwrap();
    let (mut ws, _) =
        tokio_tungstenite::connect_async(format!("ws://{addr}/socket.io/?EIO=4&transport=websocket")).await.unwrap();
    text(&mut ws).await;
    ws.send(WsMessage::Text(format!("40{{\"pid\":\"{pid}\",\"offset\":\"{offset}\"}}").into())).await.unwrap();
    let missed1 = text(&mut ws).await;
    let missed2 = text(&mut ws).await;
    assert!(missed1.starts_with("42[\"headline\",\"second\","), "{missed1}");
    assert!(missed2.starts_with("42[\"headline\",\"third\","), "{missed2}");
    let reply: serde_json::Value = serde_json::from_str(text(&mut ws).await.strip_prefix("40").unwrap()).unwrap();
    assert_eq!(reply["sid"], sid.as_str(), "same id after recovery");
    assert_eq!(reply["pid"], pid.as_str());
    eventually(|| !io.of("/").sockets().is_empty()).await;
    let socket = io.of("/").get_socket(&sid).unwrap();
    assert!(socket.recovered());
    assert!(socket.rooms().contains("news"));
    assert_eq!(socket.data(), serde_json::json!({"user": 7}).into());
    // A stale offset cannot be recovered: a new socket.
    let (mut ws2, _) =
        tokio_tungstenite::connect_async(format!("ws://{addr}/socket.io/?EIO=4&transport=websocket")).await.unwrap();
    text(&mut ws2).await;
    ws2.send(WsMessage::Text(format!("40{{\"pid\":\"{pid}\",\"offset\":\"nope\"}}").into())).await.unwrap();
    let reply: serde_json::Value = serde_json::from_str(text(&mut ws2).await.strip_prefix("40").unwrap()).unwrap();
    assert_ne!(reply["sid"], sid.as_str());
}

#[tokio::test]
async fn a_socket_that_stops_reading_broadcasts_is_disconnected_not_silently_skipped() {
    let mut config = SocketIoConfig::default();
    config.engine.max_queued_commands = 128;
    let io = SocketIo::new(config);
    let reasons = Arc::new(Mutex::new(Vec::new()));
    let r = reasons.clone();
    io.on_connection(move |socket: Socket| {
        let r = r.clone();
        async move {
            socket.on_disconnect(move |s, reason| {
                let r = r.clone();
                async move { r.lock().unwrap().push((s.id().to_owned(), reason)) }
            });
        }
    });
    let (addr, _task) = io.listen("127.0.0.1:0".parse().unwrap()).await.unwrap();
    let mut reader = connect(addr, "40").await;
    let _stalled = connect(addr, "40").await;
    eventually(|| io.of("/").sockets().len() == 2).await;
    // Broadcast until the stalled client's queue overflows (it never reads), reading on the other.
    let big = "y".repeat(4096);
    for i in 0..20_000 {
        io.emit("tick", (i, big.as_str())).unwrap();
        if i % 64 == 0 {
            while let Ok(Some(Ok(_))) = tokio::time::timeout(Duration::from_millis(1), reader.next()).await {}
            tokio::task::yield_now().await;
        }
        if !reasons.lock().unwrap().is_empty() {
            break;
        }
    }
    eventually(|| !reasons.lock().unwrap().is_empty()).await;
    let got = reasons.lock().unwrap().clone();
    assert_eq!(got.len(), 1, "only the stalled socket is dropped: {got:?}");
    assert_eq!(got[0].1, DisconnectReason::BufferFull);
    assert_eq!(io.of("/").sockets().len(), 1, "the reading socket stays");
}

/// A larger room keeps its members' sockets: one that joined in a middleware gets none of the room's
/// broadcasts before its CONNECT reply, and every one after it; one that left gets none.
#[tokio::test]
async fn a_room_joined_in_a_middleware_reaches_the_socket_only_once_it_is_connected() {
    let io = SocketIo::default();
    // The first socket's middleware goes through; the second one's waits for a permit.
    let gate = Arc::new(tokio::sync::Semaphore::new(1));
    let joined = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let (g, j) = (gate.clone(), joined.clone());
    io.use_middleware(move |socket: Socket| async move {
        socket.join("lobby");
        j.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        g.acquire().await.expect("gate open").forget();
        Ok(())
    });
    let (addr, _task) = io.listen("127.0.0.1:0".parse().unwrap()).await.unwrap();
    let mut a = connect(addr, "40").await;
    eventually(|| io.of("/").sockets().len() == 1).await;
    let (mut b, _) =
        tokio_tungstenite::connect_async(format!("ws://{addr}/socket.io/?EIO=4&transport=websocket")).await.unwrap();
    assert!(text(&mut b).await.starts_with("0{"));
    b.send(WsMessage::Text("40".into())).await.unwrap();
    eventually(|| joined.load(std::sync::atomic::Ordering::SeqCst) == 2).await;
    io.to("lobby").emit("m", "early").unwrap();
    assert_eq!(text(&mut a).await, r#"42["m","early"]"#);
    gate.add_permits(1);
    let reply = text(&mut b).await;
    assert!(reply.starts_with("40{"), "the CONNECT reply comes first, no broadcast before it: {reply}");
    eventually(|| io.of("/").sockets().len() == 2).await;
    io.to("lobby").emit("m", "late").unwrap();
    assert_eq!(text(&mut a).await, r#"42["m","late"]"#);
    assert_eq!(text(&mut b).await, r#"42["m","late"]"#, "connected now: the room reaches it");
    b.send(WsMessage::Text("41".into())).await.unwrap();
    eventually(|| io.of("/").sockets().len() == 1).await;
    io.to("lobby").emit("m", "after").unwrap();
    assert_eq!(text(&mut a).await, r#"42["m","after"]"#);
    // The connection that left the namespace joins it again: the first frame it gets is the new CONNECT
    // reply, so "after" did not reach it (its frames come in order).
    gate.add_permits(1);
    b.send(WsMessage::Text("40".into())).await.unwrap();
    let reply = text(&mut b).await;
    assert!(reply.starts_with("40{"), "nothing for a socket that left the room: {reply}");
}

/// A refused socket leaves the rooms a middleware joined before refusing (as the reference): none stays
/// in the room index, and no broadcast to the room is kept for it. The same when the middleware panics.
#[tokio::test]
async fn a_socket_refused_by_a_middleware_leaves_the_rooms_it_joined() {
    let io = SocketIo::default();
    io.use_middleware(|socket: Socket| async move {
        socket.join(["doomed", "lobby"]);
        Err(socketio_server::ConnectError::new("not you"))
    });
    io.of("/boom").use_middleware(|socket: Socket| async move {
        socket.join("doomed too");
        if true {
            panic!("a bug in a middleware, after a join");
        }
        Ok::<(), socketio_server::ConnectError>(())
    });
    let (addr, _task) = io.listen("127.0.0.1:0".parse().unwrap()).await.unwrap();
    let (mut ws, _) =
        tokio_tungstenite::connect_async(format!("ws://{addr}/socket.io/?EIO=4&transport=websocket")).await.unwrap();
    assert!(text(&mut ws).await.starts_with("0{"));
    for _ in 0..3 {
        ws.send(WsMessage::Text("40".into())).await.unwrap();
        assert_eq!(text(&mut ws).await, r#"44{"message":"not you"}"#);
    }
    let rooms = io.of("/").rooms();
    assert!(rooms.is_empty(), "no room kept for a refused socket: {rooms:?}");
    ws.send(WsMessage::Text("40/boom,".into())).await.unwrap();
    let reply = text(&mut ws).await;
    assert!(reply.starts_with("44/boom,"), "{reply}");
    let rooms = io.of("/boom").rooms();
    assert!(rooms.is_empty(), "nor for one whose middleware panicked: {rooms:?}");
}

/// An adapter that fails (panics) while restoring a recovered socket's rooms, once asked to.
struct FailingRestore {
    local: Arc<socketio_server::LocalAdapter>,
    fail: Arc<std::sync::atomic::AtomicBool>,
}

impl socketio_server::Adapter for FailingRestore {
    fn local(&self) -> &Arc<socketio_server::LocalAdapter> {
        &self.local
    }

    fn add_all(&self, id: &Arc<str>, rooms: &[socketio_server::Room]) {
        self.local.add_all(id, rooms);
        if self.fail.load(std::sync::atomic::Ordering::SeqCst) {
            panic!("an adapter bug while restoring rooms");
        }
    }
}

/// A CONNECT whose flow ends without an answer (here a panic in the adapter while a recovered socket's rooms
/// are restored) is answered "server error", and the rooms restored before the panic are left.
#[tokio::test]
async fn a_connect_that_fails_while_restoring_rooms_leaves_them() {
    let config = {
        let mut c = SocketIoConfig::default();
        c.connection_state_recovery = Some(RecoveryConfig::default());
        c
    };
    let fail = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let f = fail.clone();
    let io = SocketIo::with_adapter(
        config,
        Arc::new(move |local| Arc::new(FailingRestore { local, fail: f.clone() }) as Arc<dyn socketio_server::Adapter>),
    );
    io.on_connection(|socket: Socket| async move { socket.join("news") });
    let (addr, _task) = io.listen("127.0.0.1:0".parse().unwrap()).await.unwrap();
    let mut ws = connect(addr, "40").await;
    eventually(|| io.of("/").rooms().iter().any(|r| &**r == "news")).await;
    io.to("news").emit("headline", "first").unwrap();
    let first = text(&mut ws).await;
    let args: serde_json::Value = serde_json::from_str(first.strip_prefix("42").unwrap()).unwrap();
    let offset = args[2].as_str().expect("an offset").to_owned();
    let pid = {
        let socket = io.of("/").sockets().into_iter().next().expect("the socket");
        socket.pid().expect("a pid with recovery on").to_owned()
    };
    drop(ws);
    eventually(|| io.of("/").rooms().is_empty()).await;
    fail.store(true, std::sync::atomic::Ordering::SeqCst);
    let (mut ws, _) =
        tokio_tungstenite::connect_async(format!("ws://{addr}/socket.io/?EIO=4&transport=websocket")).await.unwrap();
    text(&mut ws).await;
    ws.send(WsMessage::Text(format!("40{{\"pid\":\"{pid}\",\"offset\":\"{offset}\"}}").into())).await.unwrap();
    assert_eq!(text(&mut ws).await, r#"44{"message":"server error"}"#);
    eventually(|| io.of("/").rooms().is_empty()).await;
    assert!(io.of("/").sockets().is_empty());
}
