//! The hooks an instrumentation (such as the Admin UI's) builds on: namespaces as they are made, and
//! local sockets joining and leaving rooms.

use std::sync::{Arc, Mutex};

use socketio_server::{RoomEvent, Socket, SocketIo};

mod support;
use support::*;

#[tokio::test]
async fn new_namespaces_and_room_changes_are_announced() {
    let io = SocketIo::default();
    let made: Arc<Mutex<Vec<String>>> = Arc::default();
    let rooms: Arc<Mutex<Vec<String>>> = Arc::default();
    let (m, r) = (made.clone(), rooms.clone());
    io.on_new_namespace(move |ns| {
        m.lock().unwrap().push(ns.name().to_owned());
        let r = r.clone();
        ns.adapter().local().on_room_event(move |e| {
            let line = match e {
                RoomEvent::Joined { room, .. } => format!("+{room}"),
                RoomEvent::Left { room, .. } => format!("-{room}"),
                _ => "?".into(),
            };
            r.lock().unwrap().push(line);
        });
    });
    assert_eq!(io.namespaces(), vec!["/".to_owned()], "the main namespace exists from the start");
    io.of("/chat");
    io.of("/chat"); // the second call finds it: not announced again
    io.of_dynamic(|name, _| name.starts_with("/dyn-")).on_connection(|s: Socket| async move {
        s.join(["a", "b"]);
        s.join("a"); // already in it: no event
        s.leave("b");
    });
    let (addr, _) = io.listen("127.0.0.1:0".parse().unwrap()).await.unwrap();
    let mut ws = ws_open(addr).await;
    send(&mut ws, "40/dyn-1,").await;
    let reply = next_text(&mut ws).await;
    assert!(reply.starts_with("40/dyn-1,{"), "{reply}");
    let id = reply.split('"').nth(3).unwrap().to_owned();
    eventually(|| rooms.lock().unwrap().len() >= 4).await;
    assert_eq!(*made.lock().unwrap(), vec!["/chat".to_owned(), "/dyn-1".to_owned()]);
    send(&mut ws, "41/dyn-1,").await;
    eventually(|| rooms.lock().unwrap().len() == 6).await;
    let seen = rooms.lock().unwrap().clone();
    // Its own room, then a and b; b left; on disconnect, its own room and a (in either order).
    assert_eq!(seen[..4], [format!("+{id}"), "+a".into(), "+b".into(), "-b".into()]);
    let mut last = seen[4..].to_vec();
    last.sort();
    let mut expected = vec![format!("-{id}"), "-a".to_owned()];
    expected.sort();
    assert_eq!(last, expected);
}

#[tokio::test]
async fn a_socket_hears_its_connection_upgrade() {
    let io = SocketIo::default();
    let upgraded: Arc<Mutex<Vec<String>>> = Arc::default();
    let u = upgraded.clone();
    io.on_connection(move |s: Socket| async move {
        let u = u.clone();
        s.on_upgrade(move |s| u.lock().unwrap().push(format!("{} {}", s.id(), s.transport().as_str())));
    });
    let (addr, _) = io.listen("127.0.0.1:0".parse().unwrap()).await.unwrap();
    // A polling session joins "/", then upgrades: probe, then the upgrade packet.
    let path = polling_session(addr).await;
    assert_eq!(http(addr, "POST", &path, "40").await.0, 200);
    let reply = poll_replies(addr, &path, 1).await;
    let id = reply[0].split('"').nth(3).unwrap().to_owned();
    assert!(upgraded.lock().unwrap().is_empty());
    let sid = path.rsplit("sid=").next().unwrap();
    let url = format!("ws://{addr}/socket.io/?EIO=4&transport=websocket&sid={sid}");
    let (mut ws, _) = tokio_tungstenite::connect_async(url).await.unwrap();
    send(&mut ws, "2probe").await;
    assert_eq!(next_text(&mut ws).await, "3probe");
    send(&mut ws, "5").await;
    eventually(|| !upgraded.lock().unwrap().is_empty()).await;
    assert_eq!(*upgraded.lock().unwrap(), vec![format!("{id} websocket")]);
}
