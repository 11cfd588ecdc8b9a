//! Test support: an in-process server and a raw HTTP/1.1 client, so tests see the exact wire bytes.
#![allow(dead_code, unreachable_pub)]

use std::net::SocketAddr;
use std::time::Duration;

use engineio_server::{Connection, Engine, EngineConfig, Handler, Message, Socket};
use futures_util::{SinkExt, StreamExt};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message as WsMessage;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

/// Echoes every message; `close` closes the session from the server.
pub struct Echo;

impl Handler for Echo {
    fn on_open(&self, socket: &Socket) -> Box<dyn Connection> {
        Box::new(EchoConnection(socket.clone()))
    }
}

pub struct EchoConnection(pub Socket);

impl Connection for EchoConnection {
    fn on_message(&mut self, message: Message) {
        let socket = &self.0;
        if matches!(&message, Message::Text(t) if &**t == "close") {
            socket.close();
        } else {
            let _ = socket.send(message);
        }
    }
}

/// The options of the protocol test suites: ping every 300 ms, 200 ms to answer.
pub fn suite_config() -> EngineConfig {
    {
        let mut c = EngineConfig::default();
        c.ping_interval = Duration::from_millis(300);
        c.ping_timeout = Duration::from_millis(200);
        c
    }
}

pub struct TestServer {
    pub addr: SocketAddr,
    pub engine: Engine,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

pub async fn start(config: EngineConfig) -> TestServer {
    start_with(config, Echo).await
}

pub async fn start_with(config: EngineConfig, handler: impl Handler) -> TestServer {
    let engine = Engine::new(config, handler);
    let (addr, task) = engine.listen("127.0.0.1:0".parse().unwrap()).await.unwrap();
    TestServer { addr, engine, task }
}

#[derive(Debug)]
pub struct RawResponse {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl RawResponse {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }

    pub fn all(&self, name: &str) -> Vec<&str> {
        self.headers.iter().filter(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str()).collect()
    }

    pub fn text(&self) -> String {
        String::from_utf8(self.body.clone()).expect("a UTF-8 body")
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).expect("a JSON body")
    }
}

/// Sends one request on a fresh connection and reads the whole response.
pub async fn request(addr: SocketAddr, method: &str, path: &str, headers: &[(&str, &str)], body: &[u8]) -> RawResponse {
    let mut stream = TcpStream::connect(addr).await.unwrap();
    let mut head = format!("{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n");
    if !body.is_empty() || method == "POST" {
        head.push_str(&format!("Content-Length: {}\r\n", body.len()));
    }
    for (n, v) in headers {
        head.push_str(&format!("{n}: {v}\r\n"));
    }
    head.push_str("\r\n");
    stream.write_all(head.as_bytes()).await.unwrap();
    stream.write_all(body).await.unwrap();
    read_response(&mut stream).await
}

pub async fn read_response(stream: &mut TcpStream) -> RawResponse {
    let mut buf = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), stream.read_to_end(&mut buf))
        .await
        .expect("the response came within 10 s")
        .unwrap();
    parse_response(&buf)
}

pub fn parse_response(buf: &[u8]) -> RawResponse {
    let end = buf.windows(4).position(|w| w == b"\r\n\r\n").expect("a complete head");
    let head = std::str::from_utf8(&buf[..end]).unwrap();
    let mut lines = head.split("\r\n");
    let status = lines.next().unwrap().split(' ').nth(1).unwrap().parse().unwrap();
    let headers: Vec<(String, String)> = lines
        .map(|l| {
            let (n, v) = l.split_once(':').unwrap();
            (n.trim().to_owned(), v.trim().to_owned())
        })
        .collect();
    RawResponse { status, headers, body: buf[end + 4..].to_vec() }
}

pub async fn get(addr: SocketAddr, path: &str) -> RawResponse {
    request(addr, "GET", path, &[], b"").await
}

pub async fn post(addr: SocketAddr, path: &str, body: &[u8]) -> RawResponse {
    request(addr, "POST", path, &[("Content-Type", "text/plain;charset=UTF-8")], body).await
}

/// A polling handshake; returns the sid and the open packet's JSON.
pub async fn handshake(addr: SocketAddr) -> (String, serde_json::Value) {
    let res = get(addr, "/engine.io/?EIO=4&transport=polling").await;
    assert_eq!(res.status, 200, "handshake failed: {}", res.text());
    let text = res.text();
    let json: serde_json::Value = serde_json::from_str(text.strip_prefix('0').expect("an open packet")).unwrap();
    (json["sid"].as_str().unwrap().to_owned(), json)
}

pub fn poll_path(sid: &str) -> String {
    format!("/engine.io/?EIO=4&transport=polling&sid={sid}")
}

pub type Ws = tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<TcpStream>>;

/// Opens a WebSocket to `path` with extra headers; returns the stream and the 101 response headers.
pub async fn ws_connect(
    addr: SocketAddr,
    path: &str,
    headers: &[(&str, &str)],
) -> Result<(Ws, http::HeaderMap), tokio_tungstenite::tungstenite::Error> {
    let mut req = format!("ws://{addr}{path}").into_client_request().unwrap();
    for (n, v) in headers {
        req.headers_mut().append(http::HeaderName::from_bytes(n.as_bytes()).unwrap(), v.parse().unwrap());
    }
    let (ws, res) = tokio_tungstenite::connect_async(req).await?;
    Ok((ws, res.headers().clone()))
}

/// The next text frame, failing after 5 s.
pub async fn ws_text(ws: &mut Ws) -> String {
    loop {
        match tokio::time::timeout(Duration::from_secs(5), ws.next()).await.expect("a frame within 5 s") {
            Some(Ok(WsMessage::Text(t))) => return t.to_string(),
            Some(Ok(WsMessage::Ping(_) | WsMessage::Pong(_))) => continue,
            other => panic!("expected a text frame, got {other:?}"),
        }
    }
}

/// Waits for the WebSocket to be closed by the server; returns the close code if one was sent.
pub async fn ws_closed(ws: &mut Ws) -> Option<u16> {
    loop {
        match tokio::time::timeout(Duration::from_secs(5), ws.next()).await.expect("closed within 5 s") {
            Some(Ok(WsMessage::Close(frame))) => return frame.map(|f| u16::from(f.code)),
            Some(Ok(_)) => continue,
            Some(Err(_)) | None => return None,
        }
    }
}

pub async fn ws_send(ws: &mut Ws, text: &str) {
    ws.send(WsMessage::Text(text.into())).await.unwrap();
}
