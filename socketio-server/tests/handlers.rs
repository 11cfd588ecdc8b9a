//! Handlers as an application writes them: closures cloned per call (state captured once, no inner
//! clone), futures ending with a `Result` whose error reaches the server's error hook, and the server
//! reached from a socket.

use std::sync::{Arc, Mutex};

use serde::Deserialize;
use socketio_server::{DisconnectReason, Event, HandlerError, Socket, SocketIo, Value};

mod support;
use support::*;

/// What the error hook saw: the socket id, the event, the error's text.
type Seen = Arc<Mutex<Vec<(String, String, String)>>>;

#[derive(Debug, Deserialize)]
struct Move {
    x: i64,
    y: i64,
}

async fn start() -> (SocketIo, std::net::SocketAddr, Seen, Arc<Mutex<Vec<i64>>>) {
    let io = SocketIo::default();
    let seen: Seen = Arc::default();
    let log = seen.clone();
    io.on_handler_error(move |socket: &Socket, event: &str, err: &HandlerError| {
        log.lock().unwrap().push((socket.id().to_owned(), event.to_owned(), err.to_string()));
    });
    // State captured once by the outer closure and moved into each call's future: no inner clone.
    let totals = Arc::new(Mutex::new(Vec::new()));
    let kept = totals.clone();
    io.on_connection(move |socket: Socket| async move {
        let room_io = socket.io().expect("the server is alive");
        socket.join("players");
        socket.on("move", move |s: Socket, ev: Event| async move {
            let m: Move = ev.arg(0)?;
            kept.lock().unwrap().push(m.x + m.y);
            // The server, reached from the socket, broadcasts to the room.
            room_io.to("players").emit("moved", (s.id().to_owned(), m.x, m.y)).map_err(|e| e.to_string())?;
            Ok::<(), HandlerError>(())
        });
        socket.on_disconnect(|_: Socket, reason: DisconnectReason| async move {
            if reason == DisconnectReason::ClientNamespaceDisconnect {
                return Err("left on purpose");
            }
            Ok(())
        });
        if socket.handshake().auth.get("fail").is_some() {
            return Err(HandlerError::from("refusing to set up this socket"));
        }
        Ok(())
    });
    let (addr, _) = io.listen("127.0.0.1:0".parse().unwrap()).await.unwrap();
    (io, addr, seen, totals)
}

async fn joined(addr: std::net::SocketAddr, auth: &str) -> (Ws, String) {
    let mut ws = ws_open(addr).await;
    send(&mut ws, &format!("40{auth}")).await;
    let reply = next_text(&mut ws).await;
    let sid = reply.split('"').nth(3).expect("a sid in the reply").to_owned();
    (ws, sid)
}

#[tokio::test]
async fn a_handler_uses_captured_state_and_the_server_without_cloning_by_hand() {
    let (_io, addr, seen, totals) = start().await;
    let (mut a, a_id) = joined(addr, "").await;
    let (mut b, _) = joined(addr, "").await;
    send(&mut a, r#"42["move",{"x":2,"y":3}]"#).await;
    let expected = format!(r#"42["moved","{a_id}",2,3]"#);
    assert_eq!(next_text(&mut a).await, expected);
    assert_eq!(next_text(&mut b).await, expected);
    send(&mut b, r#"42["move",{"x":10,"y":-1}]"#).await;
    next_text(&mut a).await;
    assert_eq!(*totals.lock().unwrap(), vec![5, 9], "the captured state is shared by every call");
    assert!(seen.lock().unwrap().is_empty());
}

#[tokio::test]
async fn errors_returned_by_handlers_reach_the_hook_with_the_socket_and_event() {
    let (_io, addr, seen, _) = start().await;
    let (mut a, a_id) = joined(addr, "").await;
    // An event handler's `?` on arguments of the wrong shape.
    send(&mut a, r#"42["move","not a move"]"#).await;
    eventually(|| !seen.lock().unwrap().is_empty()).await;
    {
        let seen = seen.lock().unwrap();
        assert_eq!((seen[0].0.as_str(), seen[0].1.as_str()), (a_id.as_str(), "move"));
        assert!(seen[0].2.contains("invalid type"), "{}", seen[0].2);
    }
    // A disconnect handler's error.
    send(&mut a, "41").await;
    eventually(|| seen.lock().unwrap().len() == 2).await;
    assert_eq!(seen.lock().unwrap()[1], (a_id.clone(), "disconnect".into(), "left on purpose".into()));
    // A connection handler's error.
    let (_b, b_id) = joined(addr, r#"{"fail":true}"#).await;
    eventually(|| seen.lock().unwrap().len() == 3).await;
    assert_eq!(seen.lock().unwrap()[2], (b_id, "connection".into(), "refusing to set up this socket".into()));
}

#[tokio::test]
async fn a_panicking_error_hook_does_not_take_the_socket_down() {
    let io = SocketIo::default();
    io.on_handler_error(|_: &Socket, _: &str, _: &HandlerError| panic!("a bug in the hook"));
    io.on_connection(|socket: Socket| async move {
        socket.on("fail", |_: Socket, _: Event| async move { Err::<(), _>("no") });
        socket.on("echo", |s: Socket, ev: Event| async move {
            let _ = s.emit("echo", ev.args);
        });
    });
    let (addr, _) = io.listen("127.0.0.1:0".parse().unwrap()).await.unwrap();
    let (mut ws, _) = joined(addr, "").await;
    send(&mut ws, r#"42["fail"]"#).await;
    send(&mut ws, r#"42["echo",1]"#).await;
    assert_eq!(next_text(&mut ws).await, r#"42["echo",1]"#, "the socket goes on");
}

#[derive(serde::Serialize)]
struct Upload {
    name: String,
    data: bytes::Bytes,
}

#[tokio::test]
async fn anything_serialize_is_emitted_with_its_bytes_as_attachments() {
    let io = SocketIo::default();
    let refused: Arc<Mutex<Option<String>>> = Arc::default();
    let r = refused.clone();
    io.on_connection(move |socket: Socket| async move {
        let upload = Upload { name: "a.bin".into(), data: bytes::Bytes::from_static(b"\x00\x01") };
        socket.emit("upload", &upload).unwrap();
        // A tuple owned (moved, no serialization pass) or borrowed (serialized): one argument per element.
        socket.emit("pair", (1, "two")).unwrap();
        socket.emit("pair", &(1u8, String::from("two"))).unwrap();
        // A map whose keys cannot be strings: refused with a clear error, nothing sent.
        let mut bad = std::collections::BTreeMap::new();
        bad.insert(vec![1u8], 1);
        *r.lock().unwrap() = socket.emit("bad", &bad).err().map(|e| e.to_string());
        socket.emit("done", ()).unwrap();
    });
    let (addr, _) = io.listen("127.0.0.1:0".parse().unwrap()).await.unwrap();
    let (mut ws, _) = joined(addr, "").await;
    assert_eq!(next_text(&mut ws).await, r#"451-["upload",{"name":"a.bin","data":{"_placeholder":true,"num":0}}]"#);
    assert_eq!(next_binary(&mut ws).await, b"\x00\x01");
    assert_eq!(next_text(&mut ws).await, r#"42["pair",1,"two"]"#);
    assert_eq!(next_text(&mut ws).await, r#"42["pair",1,"two"]"#);
    assert_eq!(next_text(&mut ws).await, r#"42["done"]"#);
    let refused = refused.lock().unwrap().clone().expect("the bad emit was refused");
    assert!(refused.contains("cannot be serialized"), "{refused}");
}

#[tokio::test]
async fn application_state_is_reached_from_a_handler() {
    struct Hits(std::sync::atomic::AtomicU64);
    let io = SocketIo::default();
    io.set_state(Hits(std::sync::atomic::AtomicU64::new(0)));
    io.on_connection(|socket: Socket| async move {
        socket.on("hit", |s: Socket, mut ev: Event| async move {
            let hits = s.io().and_then(|io| io.state::<Hits>()).ok_or("no state")?;
            let n = hits.0.fetch_add(1, std::sync::atomic::Ordering::SeqCst) + 1;
            ev.ack(n);
            Ok::<(), HandlerError>(())
        });
    });
    assert!(io.state::<String>().is_none(), "no state of a type never kept");
    let (addr, _) = io.listen("127.0.0.1:0".parse().unwrap()).await.unwrap();
    let (mut ws, _) = joined(addr, "").await;
    send(&mut ws, r#"421["hit"]"#).await;
    assert_eq!(next_text(&mut ws).await, "431[1]");
    send(&mut ws, r#"422["hit"]"#).await;
    assert_eq!(next_text(&mut ws).await, "432[2]");
    assert_eq!(io.state::<Hits>().unwrap().0.load(std::sync::atomic::Ordering::SeqCst), 2);
}

#[tokio::test]
async fn arguments_are_taken_without_copies() {
    #[derive(Deserialize)]
    struct Chat {
        room: String,
        text: String,
    }
    let io = SocketIo::default();
    io.on_connection(|socket: Socket| async move {
        socket.on("chat", |s: Socket, mut ev: Event| async move {
            let chat: Chat = ev.take_arg(0)?;
            let (n, flag): (u32, bool) = Event::take_args_as(&mut ev).map(|(_, n, f): (Value, u32, bool)| (n, f))?;
            assert_eq!(ev.args, Vec::<Value>::new(), "taken, not copied");
            s.emit("chat-back", (chat.room, chat.text, n, flag))?;
            Ok::<(), HandlerError>(())
        });
    });
    let (addr, _) = io.listen("127.0.0.1:0".parse().unwrap()).await.unwrap();
    let (mut ws, _) = joined(addr, "").await;
    send(&mut ws, r#"42["chat",{"room":"r1","text":"hi"},7,true]"#).await;
    assert_eq!(next_text(&mut ws).await, r#"42["chat-back","r1","hi",7,true]"#);
}
