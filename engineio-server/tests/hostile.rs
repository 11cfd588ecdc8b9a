//! Hostile input against the Engine.IO server: each test sends one kind of bad, oversized or forged input
//! and checks the defined outcome (an HTTP status, a close code, a closed session), that nothing panics,
//! that nothing hangs (every test runs under a time limit) and that the server keeps serving.

mod support;

use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, Once};
use std::time::{Duration, Instant};

use engineio_server::{CloseReason, Connection, CorsOptions, EngineConfig, Handler, Message, Socket};
use futures_util::SinkExt;
use support::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};
use tokio_tungstenite::tungstenite::Message as WsMessage;
use tokio_tungstenite::tungstenite::protocol::frame::Frame as WsFrame;
use tokio_tungstenite::tungstenite::protocol::frame::coding::{Data, OpCode};

// ---------------------------------------------------------------------------------------------------------
// Harness: a time limit per test, a panic watch, and a handler that records what each session saw.
// ---------------------------------------------------------------------------------------------------------

/// Every test body runs under this limit; each is meant to finish well within 5 s.
const LIMIT: Duration = Duration::from_secs(10);

/// Panics seen by the process, with the name of the thread they happened on. `#[tokio::test]` runs the
/// test and every task it spawns (the server's included) on the test's own thread, so a server panic is
/// recorded under the test's name even though tokio catches it.
static PANICS: Mutex<Vec<(String, String)>> = Mutex::new(Vec::new());

fn watch_panics() {
    static HOOK: Once = Once::new();
    HOOK.call_once(|| {
        let default = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            let thread = std::thread::current().name().unwrap_or("?").to_owned();
            PANICS.lock().unwrap_or_else(|e| e.into_inner()).push((thread, info.to_string()));
            default(info);
        }));
    });
}

fn panics_on_this_thread() -> Vec<String> {
    let me = std::thread::current().name().unwrap_or("?").to_owned();
    PANICS.lock().unwrap_or_else(|e| e.into_inner()).iter().filter(|(t, _)| *t == me).map(|(_, m)| m.clone()).collect()
}

/// Runs a test body under [`LIMIT`] and fails if anything panicked on the test's thread meanwhile (a
/// panicking session task would otherwise only look like a closed connection).
async fn bounded<F: std::future::Future<Output = ()>>(body: F) {
    watch_panics();
    // Forget what an earlier test on this thread left (with --test-threads=1 every test runs on `main`).
    let me = std::thread::current().name().unwrap_or("?").to_owned();
    PANICS.lock().unwrap_or_else(|e| e.into_inner()).retain(|(t, _)| *t != me);
    tokio::time::timeout(LIMIT, body).await.expect("the test finished within its time limit (no hang)");
    let panics = panics_on_this_thread();
    assert!(panics.is_empty(), "the server panicked: {panics:#?}");
}

/// What every session saw: its messages and how it closed.
#[derive(Clone, Default)]
struct Record {
    messages: Arc<Mutex<Vec<Message>>>,
    closes: Arc<Mutex<Vec<(String, CloseReason)>>>,
}

impl Record {
    fn close_of(&self, sid: &str) -> Option<CloseReason> {
        self.closes.lock().unwrap().iter().find(|(s, _)| s == sid).map(|(_, r)| *r)
    }

    async fn wait_close(&self, sid: &str) -> CloseReason {
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            if let Some(r) = self.close_of(sid) {
                return r;
            }
            assert!(Instant::now() < deadline, "session {sid} did not close within 5 s");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
}

/// Echoes every message (as `support::Echo`) and records it and the close reason.
struct Recorder(Record);

struct RecorderConnection {
    socket: Socket,
    record: Record,
}

impl Handler for Recorder {
    fn on_open(&self, socket: &Socket) -> Box<dyn Connection> {
        Box::new(RecorderConnection { socket: socket.clone(), record: self.0.clone() })
    }
}

impl Connection for RecorderConnection {
    fn on_message(&mut self, message: Message) {
        self.record.messages.lock().unwrap().push(message.clone());
        let _ = self.socket.send(message);
    }

    fn on_close(&mut self, reason: CloseReason) {
        self.record.closes.lock().unwrap().push((self.socket.sid().to_owned(), reason));
    }
}

async fn start_recording(config: EngineConfig) -> (TestServer, Record) {
    let record = Record::default();
    let server = start_with(config, Recorder(record.clone())).await;
    (server, record)
}

async fn eventually(what: &str, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(5);
    while !f() {
        assert!(Instant::now() < deadline, "not within 5 s: {what}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// The server still serves a fresh client: a polling handshake, a message and its echo.
async fn still_serving(addr: SocketAddr) {
    let (sid, _) = handshake(addr).await;
    assert_eq!(post(addr, &poll_path(&sid), b"4alive").await.text(), "ok");
    assert_eq!(get(addr, &poll_path(&sid)).await.text(), "4alive");
}

/// The open packet of a WebSocket session, and its sid.
async fn ws_session(addr: SocketAddr) -> (Ws, String) {
    let (mut ws, _) = ws_connect(addr, "/engine.io/?EIO=4&transport=websocket", &[]).await.unwrap();
    let open = ws_text(&mut ws).await;
    let json: serde_json::Value = serde_json::from_str(open.strip_prefix('0').expect("an open packet")).unwrap();
    (ws, json["sid"].as_str().unwrap().to_owned())
}

/// Completes the polling → WebSocket upgrade of `sid`; returns the upgraded WebSocket.
async fn upgrade(addr: SocketAddr, sid: &str) -> Ws {
    let ws_path = format!("/engine.io/?EIO=4&transport=websocket&sid={sid}");
    let (mut ws, _) = ws_connect(addr, &ws_path, &[]).await.unwrap();
    ws_send(&mut ws, "2probe").await;
    assert_eq!(ws_text(&mut ws).await, "3probe");
    ws_send(&mut ws, "5").await;
    // The echo of a message proves the switch is done.
    ws_send(&mut ws, "4upgraded").await;
    assert_eq!(ws_text(&mut ws).await, "4upgraded");
    ws
}

/// One request from a chosen local address (any of 127.0.0.0/8 on Linux), on a fresh connection.
async fn request_from(src: IpAddr, addr: SocketAddr, method: &str, path: &str, body: &[u8]) -> RawResponse {
    let socket = TcpSocket::new_v4().unwrap();
    socket.bind(SocketAddr::new(src, 0)).unwrap();
    let mut stream = socket.connect(addr).await.unwrap();
    assert_eq!(stream.local_addr().unwrap().ip(), src);
    let head = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Type: text/plain;charset=UTF-8\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    stream.write_all(body).await.unwrap();
    read_response(&mut stream).await
}

/// What came back for a request the server may refuse while it is still being written.
#[derive(Debug)]
enum Outcome {
    /// A response head with this status.
    Status(u16),
    /// The connection ended (EOF or reset) before any response byte.
    ClosedWithoutResponse,
}

/// Writes `request` from one task while reading the reply from another, so a server that answers (and
/// closes) early is seen even if the write fails half-way.
async fn send_and_read_head(addr: SocketAddr, request: Vec<u8>) -> Outcome {
    let stream = TcpStream::connect(addr).await.unwrap();
    let (mut rd, mut wr) = stream.into_split();
    let writer = tokio::spawn(async move {
        let _ = wr.write_all(&request).await;
        let _ = wr.flush().await;
        // Keep the write half open until the reader is done.
        tokio::time::sleep(Duration::from_secs(5)).await;
        drop(wr);
    });
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    let outcome = loop {
        match tokio::time::timeout(Duration::from_secs(5), rd.read(&mut chunk)).await {
            Err(_) => panic!("no response and no close within 5 s (the server hangs on the request)"),
            Ok(Ok(0)) | Ok(Err(_)) => {
                break if buf.is_empty() {
                    Outcome::ClosedWithoutResponse
                } else {
                    Outcome::Status(parse_status(&buf).expect("a response status line"))
                };
            }
            Ok(Ok(n)) => {
                buf.extend_from_slice(&chunk[..n]);
                if buf.windows(2).any(|w| w == b"\r\n") {
                    break Outcome::Status(parse_status(&buf).expect("a response status line"));
                }
            }
        }
    };
    writer.abort();
    outcome
}

fn parse_status(buf: &[u8]) -> Option<u16> {
    let line = buf.split(|&b| b == b'\r').next()?;
    std::str::from_utf8(line).ok()?.split(' ').nth(1)?.parse().ok()
}

/// A WebSocket opened by hand (no client library), so the test can write any bytes as frames.
async fn raw_ws(addr: SocketAddr, path: &str) -> (TcpStream, Vec<u8>) {
    let mut stream = TcpStream::connect(addr).await.unwrap();
    let req = format!(
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
    );
    stream.write_all(req.as_bytes()).await.unwrap();
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    let end = loop {
        let n = tokio::time::timeout(Duration::from_secs(5), stream.read(&mut chunk)).await.unwrap().unwrap();
        assert!(n > 0, "closed during the WebSocket handshake");
        buf.extend_from_slice(&chunk[..n]);
        if let Some(p) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break p + 4;
        }
    };
    assert!(buf.starts_with(b"HTTP/1.1 101"), "{}", String::from_utf8_lossy(&buf));
    let rest = buf.split_off(end);
    (stream, rest)
}

/// Reads server frames (unmasked) until the connection ends; returns (opcode, payload) of each.
async fn read_server_frames(stream: &mut TcpStream, mut buf: Vec<u8>) -> Vec<(u8, Vec<u8>)> {
    let mut chunk = [0u8; 4096];
    loop {
        match tokio::time::timeout(Duration::from_secs(5), stream.read(&mut chunk))
            .await
            .expect("the server ended the connection within 5 s")
        {
            Ok(0) | Err(_) => break,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    }
    let mut frames = Vec::new();
    let mut i = 0;
    while i + 2 <= buf.len() {
        let opcode = buf[i] & 0x0f;
        let mut len = (buf[i + 1] & 0x7f) as usize;
        let mut p = i + 2;
        if len == 126 {
            len = u16::from_be_bytes([buf[p], buf[p + 1]]) as usize;
            p += 2;
        } else if len == 127 {
            len = u64::from_be_bytes(buf[p..p + 8].try_into().unwrap()) as usize;
            p += 8;
        }
        if p + len > buf.len() {
            break;
        }
        frames.push((opcode, buf[p..p + len].to_vec()));
        i = p + len;
    }
    frames
}

/// The close code of the first close frame among `frames`.
fn close_code(frames: &[(u8, Vec<u8>)]) -> Option<u16> {
    frames.iter().find(|(op, _)| *op == 8).and_then(|(_, p)| (p.len() >= 2).then(|| u16::from_be_bytes([p[0], p[1]])))
}

fn random_sid() -> String {
    use base64::Engine as _;
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos();
    let mut bytes = [0u8; 15];
    bytes[..15].copy_from_slice(&nanos.to_le_bytes()[..15]);
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

// ---------------------------------------------------------------------------------------------------------
// Oversized input
// ---------------------------------------------------------------------------------------------------------

/// A POST declaring a `Content-Length` over `max_http_buffer_size` gets 413 right after its head: the
/// server does not wait for (or read) the body it announced.
#[tokio::test]
async fn a_post_declaring_more_than_the_limit_gets_413_before_its_body_is_sent() {
    bounded(async {
        let config = { let mut c = EngineConfig::default(); c.max_http_buffer_size = 1000; c };
        let server = start(config).await;
        let (sid, _) = handshake(server.addr).await;
        let mut stream = TcpStream::connect(server.addr).await.unwrap();
        let head = format!(
            "POST {} HTTP/1.1\r\nHost: x\r\nContent-Type: text/plain;charset=UTF-8\r\nContent-Length: 100000000\r\n\r\n",
            poll_path(&sid)
        );
        stream.write_all(head.as_bytes()).await.unwrap();
        // Only 10 bytes of the announced 100 MB are ever sent.
        stream.write_all(b"4xxxxxxxxx").await.unwrap();
        let mut buf = Vec::new();
        let mut chunk = [0u8; 1024];
        while !buf.windows(4).any(|w| w == b"\r\n\r\n") {
            let n = tokio::time::timeout(Duration::from_secs(3), stream.read(&mut chunk))
                .await
                .expect("413 came without the body (within 3 s)")
                .unwrap();
            assert!(n > 0, "closed without a response");
            buf.extend_from_slice(&chunk[..n]);
        }
        assert_eq!(parse_response(&buf).status, 413);
        drop(stream);
        // A later POST of the session is served as usual.
        assert_eq!(post(server.addr, &poll_path(&sid), b"4fits").await.text(), "ok");
        assert_eq!(get(server.addr, &poll_path(&sid)).await.text(), "4fits");
    })
    .await;
}

/// An endless `Transfer-Encoding: chunked` POST (no length, never terminated) gets 413 once the limit is
/// passed, while the client is still writing; and the server then stops reading it, so what it holds stays
/// near the limit (the client's writes stall or fail instead of being swallowed).
#[tokio::test]
async fn an_endless_chunked_post_gets_413_while_still_being_written_and_is_not_read_further() {
    bounded(async {
        const MAX: usize = 64 * 1024;
        let config = { let mut c = EngineConfig::default(); c.max_http_buffer_size = MAX; c };
        let server = start(config).await;
        let (sid, _) = handshake(server.addr).await;

        let socket = TcpSocket::new_v4().unwrap();
        socket.set_send_buffer_size(64 * 1024).unwrap();
        let stream = socket.connect(server.addr).await.unwrap();
        let (mut rd, mut wr) = stream.into_split();
        let head = format!(
            "POST {} HTTP/1.1\r\nHost: x\r\nContent-Type: text/plain;charset=UTF-8\r\nTransfer-Encoding: chunked\r\n\r\n",
            poll_path(&sid)
        );
        wr.write_all(head.as_bytes()).await.unwrap();
        let written = Arc::new(AtomicUsize::new(0));
        let writer = tokio::spawn({
            let written = written.clone();
            async move {
                let mut chunk = b"1000\r\n4".to_vec();
                chunk.extend(std::iter::repeat_n(b'x', 0x1000 - 1));
                chunk.extend_from_slice(b"\r\n");
                // Endless: only an error (the server closed) stops it.
                while wr.write_all(&chunk).await.is_ok() {
                    written.fetch_add(0x1000, Ordering::Relaxed);
                }
            }
        });

        let mut buf = Vec::new();
        let mut chunk = [0u8; 1024];
        while !buf.windows(4).any(|w| w == b"\r\n\r\n") {
            let n = tokio::time::timeout(Duration::from_secs(3), rd.read(&mut chunk))
                .await
                .expect("a reply while the body is still being written (within 3 s)")
                .expect("the reply is readable");
            assert!(n > 0, "closed without a response");
            buf.extend_from_slice(&chunk[..n]);
        }
        let at_reply = written.load(Ordering::Relaxed);
        assert_eq!(parse_response(&buf).status, 413, "{}", String::from_utf8_lossy(&buf));
        assert!(at_reply >= MAX, "the reply came after the limit was passed ({at_reply} bytes written)");
        // Kernel buffers (up to tcp_rmem's 32 MiB here) may hold more, the server no more than ~the limit.
        assert!(at_reply < MAX + 40 * 1024 * 1024, "{at_reply} bytes were taken before the 413");

        // After the reply the server reads no more of it: the writer stalls (full buffers) or fails.
        tokio::time::sleep(Duration::from_millis(300)).await;
        let a = written.load(Ordering::Relaxed);
        tokio::time::sleep(Duration::from_millis(500)).await;
        let b = written.load(Ordering::Relaxed);
        assert!(
            writer.is_finished() || b == a,
            "the server keeps reading the refused body: {a} → {b} bytes written in 500 ms after the 413"
        );
        writer.abort();
        still_serving(server.addr).await;
    })
    .await;
}

/// A WebSocket message over `max_http_buffer_size` closes the connection with 1009 (Message Too Big), as
/// the reference's `ws` does; the session ends.
#[tokio::test]
async fn an_oversized_websocket_message_closes_with_1009() {
    bounded(async {
        let config = {
            let mut c = EngineConfig::default();
            c.max_http_buffer_size = 1000;
            c
        };
        let (server, record) = start_recording(config).await;
        let (mut ws, sid) = ws_session(server.addr).await;
        ws.send(WsMessage::Binary(vec![7u8; 1001].into())).await.unwrap();
        assert_eq!(ws_closed(&mut ws).await, Some(1009));
        record.wait_close(&sid).await;
        eventually("the session is removed", || server.engine.session_count() == 0).await;
        assert!(record.messages.lock().unwrap().is_empty(), "nothing of the oversized message was delivered");
    })
    .await;
}

/// A frame header announcing 2^40 bytes, with no payload behind it, is refused from the header alone:
/// close 1009 at once (the server neither waits for nor allocates the payload).
#[tokio::test]
async fn a_websocket_frame_header_announcing_a_terabyte_closes_with_1009_at_once() {
    bounded(async {
        let (server, record) = start_recording(EngineConfig::default()).await;
        let (mut stream, rest) = raw_ws(server.addr, "/engine.io/?EIO=4&transport=websocket").await;
        // FIN + text, masked, 64-bit length 2^40, mask key; no payload.
        let mut header = vec![0x81, 0x80 | 127];
        header.extend_from_slice(&(1u64 << 40).to_be_bytes());
        header.extend_from_slice(&[1, 2, 3, 4]);
        stream.write_all(&header).await.unwrap();
        let frames = read_server_frames(&mut stream, rest).await;
        assert_eq!(close_code(&frames), Some(1009), "frames: {frames:?}");
        eventually("the session closed", || record.closes.lock().unwrap().len() == 1).await;
        eventually("the session is removed", || server.engine.session_count() == 0).await;
    })
    .await;
}

/// A message split into many small fragments that together pass the limit closes with 1009 too.
#[tokio::test]
async fn a_fragmented_websocket_message_over_the_limit_closes_with_1009() {
    bounded(async {
        let config = {
            let mut c = EngineConfig::default();
            c.max_http_buffer_size = 1000;
            c
        };
        let (server, record) = start_recording(config).await;
        let (mut ws, _) = ws_session(server.addr).await;
        let first = WsFrame::message(b"4".repeat(100), OpCode::Data(Data::Text), false);
        ws.send(WsMessage::Frame(first)).await.unwrap();
        for _ in 0..20 {
            let more = WsFrame::message(b"x".repeat(100), OpCode::Data(Data::Continue), false);
            if ws.send(WsMessage::Frame(more)).await.is_err() {
                break;
            }
        }
        assert_eq!(ws_closed(&mut ws).await, Some(1009));
        eventually("the session is removed", || server.engine.session_count() == 0).await;
        assert!(record.messages.lock().unwrap().is_empty());
    })
    .await;
}

/// 100 000 noop packets (`6`) in one POST, within the size limit, are handled (`ok`) quickly and the
/// session still works afterwards.
#[tokio::test]
async fn a_post_of_100k_tiny_packets_is_handled_and_the_session_still_works() {
    bounded(async {
        let (server, record) = start_recording(EngineConfig::default()).await;
        let (sid, _) = handshake(server.addr).await;
        let body = vec!["6"; 100_000].join("\x1e");
        assert!(body.len() < 1_000_000);
        let started = Instant::now();
        let res = post(server.addr, &poll_path(&sid), body.as_bytes()).await;
        assert_eq!((res.status, res.text().as_str()), (200, "ok"));
        assert!(started.elapsed() < Duration::from_secs(3), "took {:?}", started.elapsed());
        assert_eq!(post(server.addr, &poll_path(&sid), b"4after").await.text(), "ok");
        assert_eq!(get(server.addr, &poll_path(&sid)).await.text(), "4after");
        assert_eq!(record.close_of(&sid), None);
    })
    .await;
}

// ---------------------------------------------------------------------------------------------------------
// Malformed input
// ---------------------------------------------------------------------------------------------------------

/// A POST body that is not UTF-8 is answered (200 `ok`, as every POST the session took), and the session
/// closes with "parse error": the next GET gets 400 code 1.
#[tokio::test]
async fn invalid_utf8_in_a_polling_post_closes_the_session_and_the_post_is_answered() {
    bounded(async {
        let (server, record) = start_recording(EngineConfig::default()).await;
        let (sid, _) = handshake(server.addr).await;
        let res = post(server.addr, &poll_path(&sid), b"4ok\x1e4\xff\xfe\x80").await;
        assert_eq!((res.status, res.text().as_str()), (200, "ok"));
        assert_eq!(record.wait_close(&sid).await, CloseReason::ParseError);
        let res = get(server.addr, &poll_path(&sid)).await;
        assert_eq!(res.status, 400);
        assert_eq!(res.json(), serde_json::json!({"code": 1, "message": "Session ID unknown"}));
        still_serving(server.addr).await;
    })
    .await;
}

/// A WebSocket text frame that is not UTF-8 ends the connection and its session.
#[tokio::test]
async fn invalid_utf8_in_a_websocket_text_frame_closes_the_connection() {
    bounded(async {
        let (server, record) = start_recording(EngineConfig::default()).await;
        let (mut ws, sid) = ws_session(server.addr).await;
        let bad = WsFrame::message(&b"4\xff\xfe\x80"[..], OpCode::Data(Data::Text), true);
        ws.send(WsMessage::Frame(bad)).await.unwrap();
        ws_closed(&mut ws).await;
        let reason = record.wait_close(&sid).await;
        assert!(matches!(reason, CloseReason::TransportError | CloseReason::ParseError), "{reason:?}");
        assert!(record.messages.lock().unwrap().is_empty(), "no message was delivered");
        eventually("the session is removed", || server.engine.session_count() == 0).await;
    })
    .await;
}

/// Unknown packet types (`7`, `9x`, a letter) in a POST: the POST is answered, the packets before the bad
/// one are handled, and the session closes with "parse error" (next GET: 400 code 1).
#[tokio::test]
async fn unknown_packet_types_in_a_post_close_the_session_with_parse_error() {
    bounded(async {
        let (server, record) = start_recording(EngineConfig::default()).await;
        for bad in ["7", "9x", "x", "4before\x1e7\x1e4after"] {
            let (sid, _) = handshake(server.addr).await;
            let res = post(server.addr, &poll_path(&sid), bad.as_bytes()).await;
            assert_eq!((res.status, res.text().as_str()), (200, "ok"), "{bad:?}");
            assert_eq!(record.wait_close(&sid).await, CloseReason::ParseError, "{bad:?}");
            let res = get(server.addr, &poll_path(&sid)).await;
            assert_eq!((res.status, &res.json()["code"]), (400, &serde_json::json!(1)), "{bad:?}");
        }
        let seen: Vec<Message> = record.messages.lock().unwrap().clone();
        assert_eq!(seen, vec![Message::from("before")], "the packet before the bad one was handled, not after");
        still_serving(server.addr).await;
    })
    .await;
}

/// Unknown packet types on a WebSocket close the connection; the session ends with "parse error".
#[tokio::test]
async fn unknown_packet_types_on_a_websocket_close_the_session_with_parse_error() {
    bounded(async {
        let (server, record) = start_recording(EngineConfig::default()).await;
        for bad in ["7", "9x", "x", ""] {
            let (mut ws, sid) = ws_session(server.addr).await;
            ws_send(&mut ws, bad).await;
            ws_closed(&mut ws).await;
            assert_eq!(record.wait_close(&sid).await, CloseReason::ParseError, "{bad:?}");
        }
        eventually("every session is removed", || server.engine.session_count() == 0).await;
    })
    .await;
}

// ---------------------------------------------------------------------------------------------------------
// Oversized request heads
// ---------------------------------------------------------------------------------------------------------

/// A handshake with 5 000 headers. Observed: hyper refuses it with 431 (Request Header Fields Too Large,
/// over its 100-header limit) before the endpoint sees it; no session, no panic, and other clients are
/// served.
#[tokio::test]
async fn a_handshake_with_5000_headers_gets_431_and_the_server_keeps_serving() {
    bounded(async {
        let server = start(EngineConfig::default()).await;
        let mut req = String::from("GET /engine.io/?EIO=4&transport=polling HTTP/1.1\r\nHost: x\r\n");
        for i in 0..5000 {
            req.push_str(&format!("X-Header-{i}: v\r\n"));
        }
        req.push_str("\r\n");
        let outcome = send_and_read_head(server.addr, req.into_bytes()).await;
        assert!(matches!(outcome, Outcome::Status(431)), "{outcome:?}");
        assert_eq!(server.engine.session_count(), 0);
        still_serving(server.addr).await;
    })
    .await;
}

/// A handshake with a 1 MB `Cookie` header. Observed: hyper refuses it with 431 once its header buffer
/// (~400 KB) is full, while the client is still writing; no session, no panic, other clients are served.
#[tokio::test]
async fn a_handshake_with_a_1mb_cookie_gets_431_and_the_server_keeps_serving() {
    bounded(async {
        let server = start(EngineConfig::default()).await;
        let mut req = String::from("GET /engine.io/?EIO=4&transport=polling HTTP/1.1\r\nHost: x\r\nCookie: io=");
        req.push_str(&"a".repeat(1_000_000));
        req.push_str("\r\n\r\n");
        let outcome = send_and_read_head(server.addr, req.into_bytes()).await;
        assert!(matches!(outcome, Outcome::Status(431)), "{outcome:?}");
        assert_eq!(server.engine.session_count(), 0);
        still_serving(server.addr).await;
    })
    .await;
}

// ---------------------------------------------------------------------------------------------------------
// Forged and reused session ids
// ---------------------------------------------------------------------------------------------------------

/// A sid the server never issued gets 400 code 1 on GET and POST, and a plain 400 on a WebSocket upgrade;
/// odd shapes (huge, percent-encoded junk) too. No session is created. An empty `sid=` is no sid at all,
/// as in the reference (which tests it for truthiness): such a request is a handshake.
#[tokio::test]
async fn a_forged_sid_gets_400_code_1() {
    bounded(async {
        let server = start(EngineConfig::default()).await;
        let (real, _) = handshake(server.addr).await;
        let long = "A".repeat(10_000);
        let forged = [random_sid(), format!("{real}x"), long, "%FF%FE%00".into(), "%".into()];
        for sid in &forged {
            let path = poll_path(sid);
            let res = get(server.addr, &path).await;
            assert_eq!(res.status, 400, "GET sid={sid:.40}");
            assert_eq!(res.json(), serde_json::json!({"code": 1, "message": "Session ID unknown"}), "sid={sid:.40}");
            let res = post(server.addr, &path, b"4hi").await;
            assert_eq!(res.status, 400, "POST sid={sid:.40}");
            assert_eq!(res.json()["code"], 1, "POST sid={sid:.40}");
            let ws_path = format!("/engine.io/?EIO=4&transport=websocket&sid={sid}");
            let err = ws_connect(server.addr, &ws_path, &[]).await.map(|_| ()).unwrap_err();
            assert!(
                matches!(err, tokio_tungstenite::tungstenite::Error::Http(ref r) if r.status() == 400),
                "upgrade sid={sid:.40}: {err:?}"
            );
        }
        assert_eq!(server.engine.session_count(), 1, "only the real session");
        let res = post(server.addr, &poll_path(""), b"4hi").await;
        assert_eq!(res.json(), serde_json::json!({"code": 2, "message": "Bad handshake method"}), "POST sid=");
        let res = get(server.addr, &poll_path("")).await;
        assert!(res.text().starts_with("0{"), "GET sid= is a handshake: {}", res.text());
        assert_eq!(server.engine.session_count(), 2);
        // The real session was not disturbed.
        assert_eq!(post(server.addr, &poll_path(&real), b"4mine").await.text(), "ok");
        assert_eq!(get(server.addr, &poll_path(&real)).await.text(), "4mine");
    })
    .await;
}

/// A real sid used from another TCP connection and another client address is served: like the
/// reference, the server does not bind a sid to the connection or address that opened it (the sid is the
/// only credential; sticky load balancing relies on this).
#[tokio::test]
async fn a_real_sid_is_served_from_another_connection_and_address_like_the_reference() {
    bounded(async {
        let server = start(EngineConfig::default()).await;
        let (sid, _) = handshake(server.addr).await; // from 127.0.0.1
        let path = poll_path(&sid);
        let other: IpAddr = "127.0.0.2".parse().unwrap();
        let third: IpAddr = "127.0.0.3".parse().unwrap();
        let res = request_from(other, server.addr, "POST", &path, b"4from elsewhere").await;
        assert_eq!((res.status, res.text().as_str()), (200, "ok"));
        let res = request_from(third, server.addr, "GET", &path, b"").await;
        assert_eq!((res.status, res.text().as_str()), (200, "4from elsewhere"));
        // And the upgrade of that session from yet another connection works as well.
        let mut ws = upgrade(server.addr, &sid).await;
        ws_send(&mut ws, "4ws").await;
        assert_eq!(ws_text(&mut ws).await, "4ws");
    })
    .await;
}

/// Once a session has upgraded, polling requests for it get 400 code 3 (GET and POST), and the
/// WebSocket goes on.
#[tokio::test]
async fn polling_after_the_upgrade_gets_400_code_3() {
    bounded(async {
        let (server, record) = start_recording(EngineConfig::default()).await;
        let (sid, _) = handshake(server.addr).await;
        let mut ws = upgrade(server.addr, &sid).await;
        let path = poll_path(&sid);
        let res = get(server.addr, &path).await;
        assert_eq!(res.status, 400);
        assert_eq!(res.json(), serde_json::json!({"code": 3, "message": "Bad request"}));
        let res = post(server.addr, &path, b"4sneaky").await;
        assert_eq!(res.status, 400);
        assert_eq!(res.json()["code"], 3);
        ws_send(&mut ws, "4still").await;
        assert_eq!(ws_text(&mut ws).await, "4still");
        assert!(!record.messages.lock().unwrap().contains(&Message::from("sneaky")), "the refused POST was not read");
        assert_eq!(record.close_of(&sid), None);
    })
    .await;
}

/// Requests of an existing session in another protocol revision (`EIO=3`, a junk `EIO` or none at all,
/// which the reference counts as 3) are refused with 400 code 3, as the reference's PROTOCOL_MISMATCH,
/// and leave the session as it was.
#[tokio::test]
async fn a_wrong_eio_on_an_existing_session_is_refused_like_the_reference() {
    bounded(async {
        let server = start(EngineConfig::default()).await;
        let (sid, _) = handshake(server.addr).await;
        for eio in ["EIO=3&", "EIO=999&", "EIO=x&", ""] {
            let path = format!("/engine.io/?{eio}transport=polling&sid={sid}");
            let res = post(server.addr, &path, format!("4{eio}").as_bytes()).await;
            assert_eq!(res.status, 400, "POST {path}");
            assert_eq!(res.json(), serde_json::json!({"code": 3, "message": "Bad request"}), "POST {path}");
            let res = get(server.addr, &path).await;
            assert_eq!(res.status, 400, "GET {path}");
        }
        let path = poll_path(&sid);
        assert_eq!(post(server.addr, &path, b"4v4").await.text(), "ok");
        assert_eq!(get(server.addr, &path).await.text(), "4v4");
    })
    .await;
}

// ---------------------------------------------------------------------------------------------------------
// Cross-site WebSocket hijacking
// ---------------------------------------------------------------------------------------------------------

/// With a CORS allow-list, a WebSocket upgrade from another Origin (`null`, a look-alike, a trailing
/// slash...) is refused with 400 before any 101, and no session is created; the upgrade of an existing
/// polling session from another Origin is refused too and the session stays on polling.
#[tokio::test]
async fn cross_site_websocket_upgrades_are_refused_and_create_no_session() {
    bounded(async {
        let config = {
            let mut c = EngineConfig::default();
            c.cors = Some(CorsOptions::with_credentials(["https://app.example"]));
            c
        };
        let server = start(config).await;
        let (sid, _) = handshake(server.addr).await;
        let before = server.engine.session_count();
        assert_eq!(before, 1);
        let evil = [
            "https://evil.example",
            "null",
            "https://app.example.evil.example",
            "https://app.example/",
            "http://app.example",
            "https://app.example:443",
        ];
        for origin in evil {
            let err = ws_connect(server.addr, "/engine.io/?EIO=4&transport=websocket", &[("Origin", origin)])
                .await
                .map(|_| ())
                .unwrap_err();
            assert!(
                matches!(err, tokio_tungstenite::tungstenite::Error::Http(ref r) if r.status() == 400),
                "{origin}: {err:?}"
            );
            let ws_path = format!("/engine.io/?EIO=4&transport=websocket&sid={sid}");
            let err = ws_connect(server.addr, &ws_path, &[("Origin", origin)]).await.map(|_| ()).unwrap_err();
            assert!(
                matches!(err, tokio_tungstenite::tungstenite::Error::Http(ref r) if r.status() == 400),
                "upgrade of {sid} from {origin}: {err:?}"
            );
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
        assert_eq!(server.engine.session_count(), before, "no session was created by a refused upgrade");
        assert_eq!(
            server.engine.socket(&sid).unwrap().transport(),
            engineio_server::TransportKind::Polling,
            "the session was not taken over"
        );
        assert_eq!(post(server.addr, &poll_path(&sid), b"4mine").await.text(), "ok");
        assert_eq!(get(server.addr, &poll_path(&sid)).await.text(), "4mine");
        // The allowed origin still gets its WebSocket.
        let allowed =
            ws_connect(server.addr, "/engine.io/?EIO=4&transport=websocket", &[("Origin", "https://app.example")])
                .await;
        assert!(allowed.is_ok());
    })
    .await;
}
