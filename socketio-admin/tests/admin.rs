//! The admin namespace as the official UI speaks to it, over a raw WebSocket: authentication (password,
//! then the session id it was given), `config`, `all_sockets`, the reports of sockets (their upgrades and
//! data changes too), rooms and events,
//! `server_stats`, the commands, and `readonly`.

use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use serde_json::{Value as Json, json};
use socketio_admin::{AdminAuth, AdminOptions, instrument};
use socketio_server::{Socket, SocketIo};
use tokio_tungstenite::tungstenite::Message;

type Ws = tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

async fn open(addr: std::net::SocketAddr) -> Ws {
    let url = format!("ws://{addr}/socket.io/?EIO=4&transport=websocket");
    let (mut ws, _) = tokio_tungstenite::connect_async(url).await.unwrap();
    assert!(text(&mut ws).await.starts_with('0'));
    ws
}

async fn text(ws: &mut Ws) -> String {
    loop {
        let msg = tokio::time::timeout(Duration::from_secs(5), ws.next())
            .await
            .expect("a frame within 5 s")
            .unwrap()
            .unwrap();
        match msg {
            Message::Text(t) if t.as_str() == "2" => ws.send(Message::Text("3".into())).await.unwrap(),
            Message::Text(t) => return t.to_string(),
            _ => {}
        }
    }
}

async fn send(ws: &mut Ws, text: &str) {
    ws.send(Message::Text(text.into())).await.unwrap();
}

/// The next admin event named `name` (others skipped), as its arguments.
async fn event(ws: &mut Ws, name: &str) -> Vec<Json> {
    loop {
        let t = text(ws).await;
        if let Some(rest) = t.strip_prefix("42/admin,")
            && let Ok(Json::Array(mut all)) = serde_json::from_str::<Json>(rest)
            && all.first() == Some(&json!(name))
        {
            all.remove(0);
            return all;
        }
    }
}

async fn server(readonly: bool) -> (SocketIo, std::net::SocketAddr) {
    let io = SocketIo::default();
    io.on_connection(|s: Socket| async move {
        s.join("lobby");
        s.on("hello", |s: Socket| async move { s.emit("hi", 1) });
        s.on(
            "rename",
            |s: Socket, socketio_server::extract::Data(name): socketio_server::extract::Data<String>| async move {
                s.set_data_as(&json!({ "name": name }))
            },
        );
    });
    let auth = AdminAuth::Basic { username: "admin".into(), password_hash: bcrypt::hash("pw", 4).unwrap() };
    let mut options = AdminOptions::new(auth);
    options.readonly = readonly;
    options.server_id = Some("node-1".into());
    instrument(&io, options).unwrap();
    let (addr, _) = io.listen("127.0.0.1:0".parse().unwrap()).await.unwrap();
    (io, addr)
}

async fn login(addr: std::net::SocketAddr, auth: &str) -> Ws {
    let mut ws = open(addr).await;
    send(&mut ws, &format!("40/admin,{auth}")).await;
    ws
}

#[tokio::test]
async fn wrong_credentials_are_refused_as_the_reference_does() {
    let (_io, addr) = server(false).await;
    let mut ws = login(addr, r#"{"username":"admin","password":"nope"}"#).await;
    assert_eq!(text(&mut ws).await, r#"44/admin,{"message":"invalid credentials"}"#);
    let mut ws = login(addr, r#"{"sessionId":"0123456789abcdef"}"#).await;
    assert_eq!(text(&mut ws).await, r#"44/admin,{"message":"invalid credentials"}"#, "an unknown session");
}

#[tokio::test]
async fn a_ui_logs_in_gets_its_session_config_and_the_sockets_then_sees_them_live() {
    let (_io, addr) = server(false).await;
    let mut user = open(addr).await;
    send(&mut user, "40").await;
    let user_id = text(&mut user).await.split('"').nth(3).unwrap().to_owned();

    let mut admin = login(addr, r#"{"username":"admin","password":"pw"}"#).await;
    assert!(text(&mut admin).await.starts_with("40/admin,{\"sid\""), "the CONNECT reply comes first");
    let session = event(&mut admin, "session").await;
    let session = session[0].as_str().unwrap().to_owned();
    assert!(session.len() == 16 && session.chars().all(|c| c.is_ascii_hexdigit()), "{session}");
    let config = event(&mut admin, "config").await;
    let features: Vec<&str> =
        config[0]["supportedFeatures"].as_array().unwrap().iter().map(|f| f.as_str().unwrap()).collect();
    for f in
        ["EMIT", "JOIN", "LEAVE", "DISCONNECT", "MJOIN", "MLEAVE", "MDISCONNECT", "AGGREGATED_EVENTS", "ALL_EVENTS"]
    {
        assert!(features.contains(&f), "{f} in {features:?}");
    }
    let all = event(&mut admin, "all_sockets").await;
    let sockets = all[0].as_array().unwrap();
    let user_socket = sockets.iter().find(|s| s["id"] == json!(user_id)).expect("the user's socket is listed");
    assert_eq!(user_socket["nsp"], "/");
    assert_eq!(user_socket["transport"], "websocket");
    let mut rooms = vec![user_id.clone(), "lobby".to_owned()];
    rooms.sort();
    assert_eq!(user_socket["rooms"], json!(rooms), "sorted, its own room included");
    assert_eq!(user_socket["clientId"].as_str().unwrap().len(), 12);
    assert_eq!(user_socket["data"], json!({}), "an empty object until set, as the reference's (its UI needs one)");
    assert!(user_socket["handshake"]["issued"].as_u64().unwrap() > 0);
    assert!(user_socket["handshake"]["headers"].is_object() && user_socket["handshake"]["query"].is_object());

    // An event of the user, and what the server sent back: reported with their arguments.
    send(&mut user, r#"42["hello","there"]"#).await;
    assert_eq!(text(&mut user).await, r#"42["hi",1]"#);
    let received = event(&mut admin, "event_received").await;
    assert_eq!(received[..3], [json!("/"), json!(user_id), json!(["hello", "there"])]);
    let sent = event(&mut admin, "event_sent").await;
    assert_eq!(sent[..3], [json!("/"), json!(user_id), json!(["hi", 1])]);

    // A change of the socket's data, as the reference reports an assignment to `socket.data`.
    send(&mut user, r#"42["rename","ada"]"#).await;
    let updated = event(&mut admin, "socket_updated").await;
    assert_eq!(updated[0], json!({ "id": user_id, "nsp": "/", "data": { "name": "ada" } }));

    // Statistics every two seconds.
    let stats = event(&mut admin, "server_stats").await;
    let stats = &stats[0];
    assert_eq!(stats["serverId"], "node-1");
    assert_eq!(stats["clientsCount"], 2);
    assert_eq!(stats["pollingClientsCount"], 0);
    assert!(stats["namespaces"].as_array().unwrap().contains(&json!({"name": "/", "socketsCount": 1})));
    let kinds: Vec<&str> =
        stats["aggregatedEvents"].as_array().unwrap().iter().map(|e| e["type"].as_str().unwrap()).collect();
    for k in ["rawConnection", "packetsIn", "packetsOut", "bytesIn", "bytesOut"] {
        assert!(kinds.contains(&k), "{k} in {kinds:?}");
    }

    // The UI's commands act on the user's socket: join a room, then disconnect it.
    send(&mut admin, &format!(r#"42/admin,["join","/","vip","{user_id}"]"#)).await;
    let joined = event(&mut admin, "room_joined").await;
    assert_eq!(joined[..3], [json!("/"), json!("vip"), json!(user_id)]);
    send(&mut admin, &format!(r#"42/admin,["_disconnect","/",false,"{user_id}"]"#)).await;
    assert_eq!(text(&mut user).await, "41");
    let gone = event(&mut admin, "socket_disconnected").await;
    assert_eq!(gone[..3], [json!("/"), json!(user_id), json!("server namespace disconnect")]);

    // A new connection of the same UI with its session id: no password needed, no new session.
    let mut again = login(addr, &format!(r#"{{"sessionId":"{session}"}}"#)).await;
    assert!(text(&mut again).await.starts_with("40/admin,{\"sid\""));
    let config = event(&mut again, "config").await;
    assert!(config[0]["supportedFeatures"].is_array());
}

#[tokio::test]
async fn readonly_offers_and_obeys_no_command() {
    let (io, addr) = server(true).await;
    let mut user = open(addr).await;
    send(&mut user, "40").await;
    let user_id = text(&mut user).await.split('"').nth(3).unwrap().to_owned();
    let mut admin = login(addr, r#"{"username":"admin","password":"pw"}"#).await;
    let config = event(&mut admin, "config").await;
    assert_eq!(config[0]["supportedFeatures"], json!(["AGGREGATED_EVENTS", "ALL_EVENTS"]));
    send(&mut admin, &format!(r#"42/admin,["_disconnect","/",true,"{user_id}"]"#)).await;
    send(&mut user, r#"42["hello"]"#).await;
    assert_eq!(text(&mut user).await, r#"42["hi",1]"#, "still connected");
    assert_eq!(io.of("/").sockets().len(), 1);
}

/// A raw HTTP/1.1 request; the body of the response.
async fn http(addr: std::net::SocketAddr, method: &str, path: &str, body: &str) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let req = format!(
        "{method} {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Type: text/plain\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(req.as_bytes()).await.unwrap();
    let mut buf = Vec::new();
    tokio::time::timeout(Duration::from_secs(5), stream.read_to_end(&mut buf)).await.unwrap().unwrap();
    let text = String::from_utf8(buf).unwrap();
    text.split_once("\r\n\r\n").unwrap().1.to_owned()
}

#[tokio::test]
async fn an_upgrade_from_polling_is_reported_as_socket_updated() {
    let (_io, addr) = server(false).await;
    let mut admin = login(addr, r#"{"username":"admin","password":"pw"}"#).await;
    event(&mut admin, "config").await;
    // A polling client joins "/", then upgrades to WebSocket.
    let open = http(addr, "GET", "/socket.io/?EIO=4&transport=polling", "").await;
    let sid = open.split('"').nth(3).unwrap().to_owned();
    let path = format!("/socket.io/?EIO=4&transport=polling&sid={sid}");
    http(addr, "POST", &path, "40").await;
    let connected = http(addr, "GET", &path, "").await;
    let id = connected.split('"').nth(3).unwrap().to_owned();
    let joined = loop {
        let e = event(&mut admin, "socket_connected").await;
        if e[0]["nsp"] == "/" {
            break e;
        }
    };
    assert_eq!(joined[0]["id"], json!(id));
    assert_eq!(joined[0]["transport"], "polling");
    let url = format!("ws://{addr}/socket.io/?EIO=4&transport=websocket&sid={sid}");
    let (mut ws, _) = tokio_tungstenite::connect_async(url).await.unwrap();
    send(&mut ws, "2probe").await;
    assert_eq!(text(&mut ws).await, "3probe");
    send(&mut ws, "5").await;
    let updated = event(&mut admin, "socket_updated").await;
    assert_eq!(updated[0], json!({ "id": id, "nsp": "/", "transport": "websocket" }));
}
