//! Helpers shared by the Socket.IO integration tests: a raw WebSocket client that answers heartbeats.
#![allow(dead_code, unreachable_pub)]

use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use tokio_tungstenite::tungstenite::Message as WsMessage;

pub type Ws = tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// Opens a WebSocket session and reads its open packet.
pub async fn ws_open(addr: std::net::SocketAddr) -> Ws {
    let (mut ws, _) =
        tokio_tungstenite::connect_async(format!("ws://{addr}/socket.io/?EIO=4&transport=websocket")).await.unwrap();
    let open = next_text(&mut ws).await;
    assert!(open.starts_with("0{\"sid\":"), "{open}");
    ws
}

pub async fn next(ws: &mut Ws) -> WsMessage {
    loop {
        let msg = tokio::time::timeout(Duration::from_secs(5), ws.next())
            .await
            .expect("a frame within 5 s")
            .expect("the stream is open")
            .expect("no error");
        match &msg {
            // Heartbeats are answered and skipped.
            WsMessage::Text(t) if t.as_str() == "2" => ws.send(WsMessage::Text("3".into())).await.unwrap(),
            WsMessage::Ping(_) | WsMessage::Pong(_) => {}
            _ => return msg,
        }
    }
}

pub async fn next_text(ws: &mut Ws) -> String {
    match next(ws).await {
        WsMessage::Text(t) => t.to_string(),
        other => panic!("expected text, got {other:?}"),
    }
}

pub async fn next_binary(ws: &mut Ws) -> Vec<u8> {
    match next(ws).await {
        WsMessage::Binary(b) => b.to_vec(),
        other => panic!("expected binary, got {other:?}"),
    }
}

pub async fn send(ws: &mut Ws, text: &str) {
    ws.send(WsMessage::Text(text.into())).await.unwrap();
}

pub async fn closed(ws: &mut Ws) {
    loop {
        match tokio::time::timeout(Duration::from_secs(5), ws.next()).await.expect("closed within 5 s") {
            None | Some(Err(_)) | Some(Ok(WsMessage::Close(_))) => return,
            Some(Ok(WsMessage::Text(t))) if t.as_str() == "2" => {
                let _ = ws.send(WsMessage::Text("3".into())).await;
            }
            Some(Ok(_)) => {}
        }
    }
}

pub async fn send_binary(ws: &mut Ws, bytes: &[u8]) {
    ws.send(WsMessage::Binary(bytes.to_vec().into())).await.unwrap();
}

/// Waits until the server closes the connection; fails if it sends any packet other than a heartbeat
/// before closing, or keeps it open for 5 s.
pub async fn closed_quietly(ws: &mut Ws) {
    loop {
        match tokio::time::timeout(Duration::from_secs(5), ws.next()).await.expect("closed within 5 s") {
            None | Some(Err(_)) | Some(Ok(WsMessage::Close(_))) => return,
            Some(Ok(WsMessage::Text(t))) if t.as_str() == "2" => {
                let _ = ws.send(WsMessage::Text("3".into())).await;
            }
            Some(Ok(WsMessage::Ping(_) | WsMessage::Pong(_))) => {}
            Some(Ok(other)) => panic!("expected the connection to close, got {other:?}"),
        }
    }
}

/// Opens a long-polling session; its request path (with the sid).
pub async fn polling_session(addr: std::net::SocketAddr) -> String {
    let open = http(addr, "GET", "/socket.io/?EIO=4&transport=polling", "").await;
    let json: serde_json::Value = serde_json::from_str(open.1.strip_prefix('0').unwrap()).unwrap();
    format!("/socket.io/?EIO=4&transport=polling&sid={}", json["sid"].as_str().unwrap())
}

/// Long-polls until `n` packets other than pings came back (pings are answered), or a GET brings only a
/// ping (nothing more was queued); the packets, in order.
pub async fn poll_replies(addr: std::net::SocketAddr, path: &str, n: usize) -> Vec<String> {
    let mut replies = Vec::new();
    loop {
        let (status, body) = http(addr, "GET", path, "").await;
        assert_eq!(status, 200, "GET after {} replies: {body}", replies.len());
        let mut only_ping = true;
        for packet in body.split('\u{1e}') {
            if packet == "2" {
                assert_eq!(http(addr, "POST", path, "3").await.0, 200);
            } else {
                only_ping = false;
                replies.push(packet.to_owned());
            }
        }
        if only_ping || replies.len() >= n {
            return replies;
        }
    }
}

/// A raw HTTP/1.1 request; returns the status and the body.
pub async fn http(addr: std::net::SocketAddr, method: &str, path: &str, body: &str) -> (u16, String) {
    http_with(addr, method, path, &[], body).await
}

/// A raw HTTP/1.1 request with extra headers; returns the status and the body.
pub async fn http_with(
    addr: std::net::SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> (u16, String) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let extra: String = headers.iter().map(|(n, v)| format!("{n}: {v}\r\n")).collect();
    let req = format!(
        "{method} {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n{extra}Content-Type: text/plain;charset=UTF-8\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(req.as_bytes()).await.unwrap();
    let mut buf = Vec::new();
    tokio::time::timeout(Duration::from_secs(5), stream.read_to_end(&mut buf))
        .await
        .expect("a response within 5 s")
        .unwrap();
    let text = String::from_utf8(buf).unwrap();
    let (head, body) = text.split_once("\r\n\r\n").unwrap();
    let status = head.split(' ').nth(1).unwrap().parse().unwrap();
    (status, body.to_owned())
}

/// Waits (at most 5 s) until `f` holds: for effects that happen on other tasks.
pub async fn eventually(mut f: impl FnMut() -> bool) {
    for _ in 0..250 {
        if f() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("condition not met in 5 s");
}
