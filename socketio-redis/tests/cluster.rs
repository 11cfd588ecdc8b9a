//! Two servers in one process, joined through a real `redis-server` (started here): broadcasts, server-wide
//! operations, acks and the emitter cross between them; Redis going away and coming back.

use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use socketio_redis::{RedisAdapterConfig, RedisCluster, RedisEmitter};
use socketio_server::{AckError, Event, Socket, SocketIo, SocketIoConfig, Value};
use test_redis::Redis;
use tokio_tungstenite::tungstenite::Message as WsMessage;

type Ws = tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

struct Node {
    io: SocketIo,
    cluster: RedisCluster,
    addr: std::net::SocketAddr,
}

async fn node(redis: &Redis, name: &'static str) -> Node {
    let cluster = RedisCluster::connect(&redis.url(), RedisAdapterConfig::default()).await.unwrap();
    let io = SocketIo::with_adapter(SocketIoConfig::default(), cluster.factory());
    io.on_connection(|socket: Socket| async move {
        socket.on("join", |s: Socket, mut ev: Event| async move {
            s.join(ev.arg::<String>(0).unwrap().as_str());
            ev.ack(());
        });
        socket.on("question", || async {});
    });
    io.of("/").on_server_event("who", move |_| async move { vec![Value::from(name)] });
    let (addr, _) = io.listen("127.0.0.1:0".parse().unwrap()).await.unwrap();
    // The main namespace's channels are subscribed in the background: wait for them, so that the other
    // node's broadcasts and requests reach this one from the first.
    cluster.subscribed().await.unwrap();
    Node { io, cluster, addr }
}

async fn client(addr: std::net::SocketAddr) -> (Ws, String) {
    let (mut ws, _) =
        tokio_tungstenite::connect_async(format!("ws://{addr}/socket.io/?EIO=4&transport=websocket")).await.unwrap();
    text(&mut ws).await;
    ws.send(WsMessage::Text("40".into())).await.unwrap();
    let reply: serde_json::Value = serde_json::from_str(text(&mut ws).await.strip_prefix("40").unwrap()).unwrap();
    (ws, reply["sid"].as_str().unwrap().to_owned())
}

async fn join(ws: &mut Ws, room: &str) {
    ws.send(WsMessage::Text(format!("421[\"join\",\"{room}\"]").into())).await.unwrap();
    assert_eq!(text(ws).await, "431[]");
}

async fn text(ws: &mut Ws) -> String {
    loop {
        match tokio::time::timeout(Duration::from_secs(5), ws.next()).await.expect("a frame in time") {
            Some(Ok(WsMessage::Text(t))) if t.as_str() == "2" => ws.send(WsMessage::Text("3".into())).await.unwrap(),
            Some(Ok(WsMessage::Text(t))) => return t.to_string(),
            Some(Ok(WsMessage::Binary(b))) => return format!("<binary {}>", b.len()),
            Some(Ok(_)) => {}
            other => panic!("expected a frame, got {other:?}"),
        }
    }
}

/// Nothing arrives within a short while.
async fn silent(ws: &mut Ws) {
    if let Ok(Some(Ok(WsMessage::Text(t)))) = tokio::time::timeout(Duration::from_millis(200), ws.next()).await {
        panic!("unexpected frame {t}");
    }
}

#[tokio::test]
async fn broadcasts_and_server_wide_operations_cross_servers() {
    let redis = Redis::start();
    let (a, b) = (node(&redis, "a").await, node(&redis, "b").await);
    let (mut ca, ida) = client(a.addr).await;
    let (mut cb, idb) = client(b.addr).await;
    let (mut cb2, _) = client(b.addr).await;
    join(&mut ca, "room").await;
    join(&mut cb, "room").await;
    join(&mut cb, "other").await;
    assert_eq!(a.io.of("/").adapter().server_count().await.unwrap(), 2);

    // A broadcast to a room reaches members on both servers, once, with binary intact.
    a.io.to(["room", "other"]).emit("news", (1, bytes::Bytes::from_static(&[9, 8]))).unwrap();
    for ws in [&mut ca, &mut cb] {
        assert_eq!(text(ws).await, "451-[\"news\",1,{\"_placeholder\":true,\"num\":0}]");
        assert_eq!(text(ws).await, "<binary 2>");
    }
    silent(&mut cb).await;
    silent(&mut cb2).await;

    // fetch_sockets sees every socket of the cluster, with rooms.
    let mut ids: Vec<String> = a.io.fetch_sockets().await.unwrap().iter().map(|s| s.id().to_owned()).collect();
    ids.sort();
    assert_eq!(ids.len(), 3);
    let remote = a.io.in_("other").fetch_sockets().await.unwrap();
    assert_eq!(remote.len(), 1);
    assert_eq!(remote[0].id(), idb);
    assert!(remote[0].rooms().contains("room"));

    // sockets_join from a acts on b.
    a.io.sockets_join("everyone").await.unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;
    b.io.to("everyone").emit("hi", ()).unwrap();
    for ws in [&mut ca, &mut cb, &mut cb2] {
        assert_eq!(text(ws).await, "42[\"hi\"]");
    }
    a.io.sockets_leave("everyone").await.unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;
    b.io.to("everyone").emit("hi", ()).unwrap();
    silent(&mut cb).await;

    // Server-side emit with acks: one answer per other server.
    let answers: Vec<Value> =
        a.io.of("/").timeout(Duration::from_secs(2)).server_side_emit_with_ack("who", ()).await.unwrap();
    assert_eq!(answers, vec![Value::from("b")], "one answer per other server: the value it acknowledged with");
    // Without a timeout of its own: the default one (the answer comes well before it); typed answers.
    assert_eq!(a.io.server_side_emit_with_ack::<String>("who", ()).await.unwrap(), vec!["b".to_owned()]);
    let wrong = a.io.server_side_emit_with_ack::<u32>("who", ()).await;
    assert!(matches!(wrong, Err(AckError::Deserialize(_))), "an answer of another type: {wrong:?}");

    // Broadcast with acks: every client's answer, from both servers.
    let asker = a.io.to("room").timeout(Duration::from_secs(3));
    let pending = tokio::spawn(async move { asker.emit_with_ack("question", ()).await });
    for (ws, who) in [(&mut ca, "A"), (&mut cb, "B")] {
        let q = text(ws).await;
        let id: String = q.trim_start_matches("42").chars().take_while(char::is_ascii_digit).collect();
        assert_eq!(q, format!("42{id}[\"question\"]"));
        ws.send(WsMessage::Text(format!("43{id}[\"{who}\"]").into())).await.unwrap();
    }
    let mut responses = pending.await.unwrap().unwrap();
    responses.sort_by_key(|r| r[0].as_str().map(str::to_owned));
    assert_eq!(responses, vec![vec![Value::from("A")], vec![Value::from("B")]]);

    // disconnect_sockets from b disconnects a's member.
    b.io.in_(ida.as_str()).disconnect_sockets(false).await.unwrap();
    assert_eq!(text(&mut ca).await, "41");
}

#[tokio::test]
async fn subscribed_waits_for_the_channels_of_every_namespace_made_before() {
    // A namespace's adapter subscribes in the background; once `subscribed` answers, Redis counts this
    // server on each namespace's request channel (what `server_count` asks), with no wait in between.
    let redis = Redis::start();
    let cluster = RedisCluster::connect(&redis.url(), RedisAdapterConfig::default()).await.unwrap();
    let io = SocketIo::with_adapter(SocketIoConfig::default(), cluster.factory());
    let names = ["/", "/a", "/b", "/c"];
    for name in names {
        io.of(name);
    }
    cluster.subscribed().await.unwrap();
    for name in names {
        assert_eq!(io.of(name).adapter().server_count().await.unwrap(), 1, "{name}");
    }
}

#[tokio::test]
async fn the_emitter_reaches_every_server() {
    let redis = Redis::start();
    let (a, b) = (node(&redis, "a").await, node(&redis, "b").await);
    let (mut ca, _) = client(a.addr).await;
    let (mut cb, idb) = client(b.addr).await;
    join(&mut ca, "r").await;
    join(&mut cb, "r").await;
    let emitter = RedisEmitter::connect(&redis.url()).await.unwrap();
    emitter.to("r").emit("from-emitter", ("x", 2)).await.unwrap();
    assert_eq!(text(&mut ca).await, "42[\"from-emitter\",\"x\",2]");
    assert_eq!(text(&mut cb).await, "42[\"from-emitter\",\"x\",2]");
    emitter.except(idb.as_str()).emit("all-but-b", ()).await.unwrap();
    assert_eq!(text(&mut ca).await, "42[\"all-but-b\"]");
    silent(&mut cb).await;
    // Join through the emitter, then a disconnect.
    emitter.to(idb.as_str()).sockets_join("vip").await.unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;
    emitter.to("vip").emit("vip", ()).await.unwrap();
    assert_eq!(text(&mut cb).await, "42[\"vip\"]");
    emitter.to(idb.as_str()).disconnect_sockets(false).await.unwrap();
    assert_eq!(text(&mut cb).await, "41");
    drop((a, b));
}

#[tokio::test]
async fn redis_going_away_and_coming_back() {
    let mut redis = Redis::start();
    let port = redis.port();
    let (a, b) = (node(&redis, "a").await, node(&redis, "b").await);
    let (mut ca, _) = client(a.addr).await;
    let (mut cb, _) = client(b.addr).await;
    join(&mut ca, "r").await;
    join(&mut cb, "r").await;

    redis.stop();
    for _ in 0..200 {
        if !a.cluster.is_connected() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(!a.cluster.is_connected());
    // While Redis is away: the caller learns it, local delivery goes on.
    assert!(a.io.to("r").emit("during", ()).is_err());
    assert_eq!(text(&mut ca).await, "42[\"during\"]");
    silent(&mut cb).await;
    assert!(a.io.fetch_sockets().await.is_err());

    let _redis = Redis::start_on(port);
    // Both subscribers reconnect and subscribe again; broadcasts flow again.
    let mut delivered = false;
    for _ in 0..80 {
        if a.cluster.is_connected()
            && b.cluster.is_connected()
            && a.io.to("r").emit("after", ()).is_ok()
            && let Ok(Some(Ok(WsMessage::Text(t)))) = tokio::time::timeout(Duration::from_millis(100), cb.next()).await
        {
            assert_eq!(t.as_str(), "42[\"after\"]");
            delivered = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(delivered, "broadcasts cross servers again after Redis restarts");
    assert!(a.cluster.reconnects() >= 1);
}

/// A broadcast with acks as the Node adapter publishes it: msgpack, and the packet has no ack id yet (the
/// receiving server assigns one). The server answers with its client count, then each client's ack.
#[tokio::test]
async fn a_broadcast_with_acks_from_a_node_server_has_no_ack_id() {
    use redis::AsyncCommands;
    let redis = Redis::start();
    let a = node(&redis, "a").await;
    let (mut ca, _) = client(a.addr).await;
    join(&mut ca, "q").await;

    let client = redis::Client::open(redis.url()).unwrap();
    let mut sub = client.get_async_pubsub().await.unwrap();
    sub.subscribe("socket.io-response#/#").await.unwrap();
    let mut responses = sub.into_on_message();
    let request = serde_json::json!({
        "uid": "nodeXY", "requestId": "req123", "type": 7,
        "packet": { "type": 2, "data": ["question", 1], "nsp": "/" },
        "opts": { "rooms": ["q"], "except": [], "flags": { "timeout": 2000 } },
    });
    let bytes = rmp_serde::to_vec(&socketio_server::Value::from(request)).unwrap();
    let mut conn = client.get_multiplexed_async_connection().await.unwrap();
    let _: () = conn.publish("socket.io-request#/#", bytes).await.unwrap();

    // The client gets the event with an ack id the server chose.
    let q = text(&mut ca).await;
    let id: String = q.trim_start_matches("42").chars().take_while(char::is_ascii_digit).collect();
    assert!(!id.is_empty(), "an ack id was assigned: {q}");
    assert_eq!(q, format!("42{id}[\"question\",1]"));
    ws_answer(&mut ca, &id).await;

    let msg = tokio::time::timeout(Duration::from_secs(5), responses.next()).await.unwrap().unwrap();
    let count = decode(msg.get_payload_bytes());
    assert_eq!(count, serde_json::json!({ "type": 8, "requestId": "req123", "clientCount": 1 }));
    let msg = tokio::time::timeout(Duration::from_secs(5), responses.next()).await.unwrap().unwrap();
    let ack = decode(msg.get_payload_bytes());
    assert_eq!(ack, serde_json::json!({ "type": 9, "requestId": "req123", "packet": "answer" }));
    // The server is still on the bus afterwards.
    assert!(a.cluster.is_connected());
}

/// A response as the adapter publishes them: JSON, or msgpack for acks.
fn decode(payload: &[u8]) -> serde_json::Value {
    if payload.first() == Some(&b'{') {
        serde_json::from_slice(payload).unwrap()
    } else {
        rmp_serde::from_slice::<socketio_server::Value>(payload).unwrap().into_json()
    }
}

async fn ws_answer(ws: &mut Ws, id: &str) {
    ws.send(WsMessage::Text(format!("43{id}[\"answer\"]").into())).await.unwrap();
}
