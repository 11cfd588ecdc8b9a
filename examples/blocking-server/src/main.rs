//! A Socket.IO server on blocking std threads that uses only the sans-IO crates, `engineio-proto` and
//! `socketio-proto`: no `engineio-server`, no `socketio-server`, no tokio, no hyper. It is the proof that
//! the protocol crates drive any I/O model: here one thread per TCP connection, a mutex and a condition
//! variable per session, and a timer thread that feeds the clock to every session. Everything of the
//! protocol is in the crates: `Endpoint` routes each request, `Session` runs Engine.IO, `Connection` runs
//! Socket.IO (namespaces, the connect timeout, acks with their timeouts, binary assembly); what is left
//! here is I/O and the application.
//!
//! It serves long-polling and WebSocket (and the upgrade between them) at `/socket.io/`. The application:
//! - namespaces `/` and `/chat` (any other is refused with "Invalid namespace"); a CONNECT whose auth has
//!   `"refuse": true` is refused with "refused" and the data `{"reason": "asked"}`;
//! - `message` is echoed as `message-back` with the same arguments (binary included), on the namespace it
//!   came from; an event that asks for an acknowledgement is acknowledged with its arguments;
//! - `ask` makes the server emit `question` with an ack and a 500 ms timeout: the client's answer comes
//!   back as `answered` with its arguments, no answer in time as `ask-timeout`;
//! - `leave` makes the server disconnect the socket from that namespace.
//!
//! `blocking-server [--port N] [--ping-interval MS] [--ping-timeout MS] [--connect-timeout MS]` prints
//! `listening on http://ADDR`. HTTP is parsed with `httparse`; WebSocket framing is the project's own,
//! [`engineio_proto::websocket`], over the blocking socket (the same codec as the tokio server's).

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, Sender, channel};
use std::sync::{Arc, Condvar, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use engineio_proto::endpoint::{Endpoint, Method, Refusal, RequestHead, Route, WebSocketHead};
use engineio_proto::handshake::{TransportKind, sid_from_bytes};
use engineio_proto::session::{Channel, Event, PollId, Session, SessionConfig, Transmit};
use engineio_proto::websocket::{self as framing, Opcode, WsMessage};
use engineio_proto::{Bytes, CloseReason, ErrorCode, Frame};
use socketio_proto::{Connection, ConnectionConfig, ConnectionEvent, JsonParser, Map, Parser, Value};

/// The largest message a client may send (the reference's `maxHttpBufferSize` default).
const MAX_MESSAGE: usize = 1_000_000;

/// How long `ask` waits for the client's acknowledgement.
const ASK_TIMEOUT: Duration = Duration::from_millis(500);

/// What a WebSocket thread is told to send.
enum WsOut {
    Frame(Frame),
    Close,
}

/// One Engine.IO session and its Socket.IO connection, shared by the threads that serve it.
struct State {
    session: Session,
    conn: Connection,
    /// Answers to long-poll GETs, by the GET's identity, until its thread takes it.
    poll_replies: HashMap<PollId, Bytes>,
    /// The WebSocket threads: the session's transport, and the one being probed during an upgrade.
    main_ws: Option<(u64, Sender<WsOut>)>,
    probe_ws: Option<(u64, Sender<WsOut>)>,
}

struct Cell {
    state: Mutex<State>,
    changed: Condvar,
}

struct Server {
    endpoint: Endpoint,
    sessions: Mutex<HashMap<String, Arc<Cell>>>,
    config: SessionConfig,
    connection: ConnectionConfig,
    parser: Arc<dyn Parser>,
    next_ws: AtomicU64,
}

fn random_id() -> String {
    sid_from_bytes(rand::random())
}

impl Server {
    /// A new session over `transport`, with its Socket.IO connection, in the table.
    fn open(
        &self,
        transport: TransportKind,
        now: Instant,
        main_ws: Option<(u64, Sender<WsOut>)>,
    ) -> (String, Arc<Cell>) {
        let sid = random_id();
        let session = Session::new(sid.clone(), self.config.clone(), transport, now, None);
        let conn = Connection::new(self.parser.clone(), self.connection, now);
        let state = State { session, conn, poll_replies: HashMap::new(), main_ws, probe_ws: None };
        let cell = Arc::new(Cell { state: Mutex::new(state), changed: Condvar::new() });
        self.sessions.lock().expect("poisoned").insert(sid.clone(), cell.clone());
        (sid, cell)
    }

    /// Carries out what the state machines ask for (Engine.IO transmits, Socket.IO frames to send and
    /// events for the application) until they ask for nothing more; then wakes the threads waiting on the
    /// session.
    fn pump(&self, sid: &str, cell: &Cell, st: &mut State, now: Instant) {
        loop {
            let mut busy = false;
            while let Some(t) = st.session.poll_transmit() {
                busy = true;
                match t {
                    // Binary payloads are v3's, which this server does not serve (no allow_eio3).
                    Transmit::PollResponse { poll, body, binary: _ } => {
                        st.poll_replies.insert(poll, body);
                    }
                    Transmit::WebSocket(f) => send_ws(&st.main_ws, WsOut::Frame(f)),
                    Transmit::Probe(f) => send_ws(&st.probe_ws, WsOut::Frame(f)),
                    Transmit::Upgraded => st.main_ws = st.probe_ws.take(),
                    Transmit::CloseProbe => send_ws(&st.probe_ws.take(), WsOut::Close),
                    Transmit::CloseWebSocket => send_ws(&st.main_ws.take(), WsOut::Close),
                }
            }
            while let Some(event) = st.session.poll_event() {
                busy = true;
                match event {
                    Event::Message(m) => st.conn.handle_message(now, m),
                    Event::Closed { .. } => {
                        st.conn.handle_closed();
                        self.sessions.lock().expect("poisoned").remove(sid);
                    }
                    Event::Upgrading | Event::Upgraded => {}
                }
            }
            while let Some(event) = st.conn.poll_event() {
                busy = true;
                on_event(st, event, now);
            }
            while let Some(frames) = st.conn.poll_transmit() {
                busy = true;
                for frame in frames {
                    let _ = st.session.send(frame);
                }
            }
            if !busy {
                break;
            }
        }
        cell.changed.notify_all();
    }
}

/// The application, on the Socket.IO connection's events.
fn on_event(st: &mut State, event: ConnectionEvent, now: Instant) {
    let conn = &mut st.conn;
    match event {
        ConnectionEvent::Connect { nsp, auth, .. } => {
            if nsp != "/" && nsp != "/chat" {
                let _ = conn.refuse(now, &nsp, "Invalid namespace", None);
            } else if auth.get("refuse") == Some(&Value::Bool(true)) {
                let mut data = Map::new();
                data.insert("reason".into(), Value::from("asked"));
                let _ = conn.refuse(now, &nsp, "refused", Some(Value::Object(data)));
            } else {
                let _ = conn.accept(now, &nsp, &random_id(), None);
            }
        }
        ConnectionEvent::Event { nsp, name, args, ack } => {
            if let Some(id) = ack {
                let _ = conn.ack(now, &nsp, id, &args);
            }
            match name.as_str() {
                "message" => {
                    let _ = conn.emit(now, &nsp, "message-back", &args, None);
                }
                "ask" => {
                    let _ = conn.emit(now, &nsp, "question", &args, Some(Some(ASK_TIMEOUT)));
                }
                "leave" => {
                    let _ = conn.disconnect(now, &nsp);
                }
                _ => {}
            }
        }
        ConnectionEvent::Ack { nsp, args, .. } => {
            let _ = conn.emit(now, &nsp, "answered", &args, None);
        }
        ConnectionEvent::AckFailed { nsp, id, reason: socketio_proto::AckFailure::Timeout } => {
            let _ = conn.emit(now, &nsp, "ask-timeout", &[Value::from(id)], None);
        }
        ConnectionEvent::AckFailed { .. } | ConnectionEvent::Disconnect { .. } => {}
        // A decode error or the connect timeout: the session closes.
        ConnectionEvent::Close(_) => st.session.close(now, CloseReason::ForcedClose),
    }
}

fn send_ws(slot: &Option<(u64, Sender<WsOut>)>, out: WsOut) {
    if let Some((_, tx)) = slot {
        let _ = tx.send(out);
    }
}

fn main() {
    let mut port = 3000u16;
    let mut config = SessionConfig::default();
    let mut connection = ConnectionConfig::default();
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        let mut value = || args.next().and_then(|v| v.parse::<u64>().ok()).unwrap_or_else(|| panic!("{flag} N"));
        match flag.as_str() {
            "--port" => port = value() as u16,
            "--ping-interval" => config.ping_interval = Duration::from_millis(value()),
            "--ping-timeout" => config.ping_timeout = Duration::from_millis(value()),
            "--connect-timeout" => connection.connect_timeout = Duration::from_millis(value()),
            other => panic!("unknown flag {other}"),
        }
    }
    let server = Arc::new(Server {
        endpoint: Endpoint::new("/socket.io/", &[TransportKind::Polling, TransportKind::WebSocket]),
        sessions: Mutex::default(),
        config,
        connection,
        parser: Arc::new(JsonParser::default()),
        next_ws: AtomicU64::new(1),
    });
    let listener = TcpListener::bind(("127.0.0.1", port)).expect("bind");
    println!("listening on http://{}", listener.local_addr().expect("an address"));

    // The clock: every session's timers are fired from here.
    let timer = server.clone();
    thread::spawn(move || {
        loop {
            thread::sleep(Duration::from_millis(20));
            let cells: Vec<(String, Arc<Cell>)> =
                timer.sessions.lock().expect("poisoned").iter().map(|(k, v)| (k.clone(), v.clone())).collect();
            let now = Instant::now();
            for (sid, cell) in cells {
                let mut st = cell.state.lock().expect("poisoned");
                let session_due = st.session.poll_timeout().is_some_and(|t| t <= now);
                let conn_due = st.conn.poll_timeout().is_some_and(|t| t <= now);
                if session_due || conn_due {
                    st.session.handle_timeout(now);
                    st.conn.handle_timeout(now);
                    timer.pump(&sid, &cell, &mut st, now);
                }
            }
        }
    });

    for stream in listener.incoming().flatten() {
        let server = server.clone();
        thread::spawn(move || {
            let _ = serve_connection(&server, stream);
        });
    }
}

struct Request {
    method: String,
    path: String,
    query: String,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Request {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }

    fn has_token(&self, name: &str, token: &str) -> bool {
        self.header(name).is_some_and(|v| v.split(',').any(|t| t.trim().eq_ignore_ascii_case(token)))
    }
}

fn read_request(reader: &mut BufReader<TcpStream>) -> std::io::Result<Option<Request>> {
    let mut head = Vec::new();
    loop {
        let n = reader.read_until(b'\n', &mut head)?;
        if n == 0 {
            return Ok(None);
        }
        if head.ends_with(b"\r\n\r\n") {
            break;
        }
        if head.len() > 64 * 1024 {
            return Err(std::io::Error::other("request head too large"));
        }
    }
    let mut headers = [httparse::EMPTY_HEADER; 64];
    let mut req = httparse::Request::new(&mut headers);
    req.parse(&head).map_err(std::io::Error::other)?;
    let target = req.path.unwrap_or("/");
    let (path, query) = target.split_once('?').unwrap_or((target, ""));
    let headers: Vec<(String, String)> =
        req.headers.iter().map(|h| (h.name.to_owned(), String::from_utf8_lossy(h.value).into_owned())).collect();
    let mut request = Request {
        method: req.method.unwrap_or("GET").to_owned(),
        path: path.to_owned(),
        query: query.to_owned(),
        headers,
        body: Vec::new(),
    };
    let len: usize = request.header("content-length").and_then(|v| v.parse().ok()).unwrap_or(0);
    if len > 1_000_000 {
        return Err(std::io::Error::other("body too large"));
    }
    request.body = vec![0; len];
    reader.read_exact(&mut request.body)?;
    Ok(Some(request))
}

fn respond(stream: &mut TcpStream, status: &str, content_type: &str, body: &[u8]) -> std::io::Result<()> {
    let head = format!(
        "HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nCache-Control: no-store\r\n\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes())?;
    stream.write_all(body)?;
    stream.flush()
}

fn refuse(stream: &mut TcpStream, refusal: &Refusal) -> std::io::Result<()> {
    respond(stream, refusal.status_line(), refusal.content_type(), refusal.body().as_bytes())
}

fn serve_connection(server: &Arc<Server>, stream: TcpStream) -> std::io::Result<()> {
    let mut writer = stream.try_clone()?;
    let mut reader = BufReader::new(stream);
    while let Some(req) = read_request(&mut reader)? {
        let asks_websocket =
            req.method == "GET" && req.has_token("upgrade", "websocket") && req.has_token("connection", "upgrade");
        let ws_head = asks_websocket.then(|| WebSocketHead {
            key: req.header("sec-websocket-key").map(str::as_bytes),
            version: req.header("sec-websocket-version").map(str::as_bytes),
        });
        let head = RequestHead {
            method: Method::parse(&req.method),
            path: &req.path,
            query: &req.query,
            origin: req.header("origin").map(str::as_bytes),
            websocket: ws_head,
        };
        let lookup = |sid: &str| {
            let cell = server.sessions.lock().expect("poisoned").get(sid).cloned()?;
            let st = cell.state.lock().expect("poisoned");
            Some((st.session.transport(), st.session.protocol()))
        };
        let unknown = Refusal::new(ErrorCode::UnknownSid, false);
        match server.endpoint.route(&head, lookup) {
            Route::NotFound => respond(&mut writer, "404 Not Found", "text/plain", b"Not Found")?,
            Route::Refuse(refusal) => refuse(&mut writer, &refusal)?,
            Route::OtherMethod { .. } => respond(&mut writer, "500 Internal Server Error", "text/plain", b"")?,
            Route::Handshake { transport: TransportKind::Polling, .. } => {
                let now = Instant::now();
                let (sid, cell) = server.open(TransportKind::Polling, now, None);
                let first = {
                    let mut st = cell.state.lock().expect("poisoned");
                    st.session.handle_poll(now).expect("a new session takes its first poll")
                };
                poll(server, &sid, &cell, &mut writer, Some(first))?;
            }
            Route::Poll { sid } => {
                let Some(cell) = server.sessions.lock().expect("poisoned").get(&sid).cloned() else {
                    refuse(&mut writer, &unknown)?;
                    continue;
                };
                poll(server, &sid, &cell, &mut writer, None)?;
            }
            Route::Post { sid } => {
                let Some(cell) = server.sessions.lock().expect("poisoned").get(&sid).cloned() else {
                    refuse(&mut writer, &unknown)?;
                    continue;
                };
                let mut st = cell.state.lock().expect("poisoned");
                let now = Instant::now();
                let ok = st.session.handle_post_start(now).is_ok()
                    && st.session.handle_post_body(now, Some(Bytes::from(req.body))).is_ok();
                server.pump(&sid, &cell, &mut st, now);
                drop(st);
                if ok {
                    respond(&mut writer, "200 OK", "text/html", b"ok")?;
                } else {
                    respond(&mut writer, "400 Bad Request", "text/html", b"")?;
                }
            }
            route @ (Route::Handshake { .. } | Route::Upgrade { .. }) => {
                let (accept, upgrade) = match route {
                    Route::Upgrade { sid, accept, .. } => (accept, Some(sid)),
                    Route::Handshake { accept, .. } => {
                        (accept.expect("a WebSocket handshake has its accept key"), None)
                    }
                    _ => unreachable!("matched above"),
                };
                let head = format!(
                    "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: {accept}\r\n\r\n"
                );
                writer.write_all(head.as_bytes())?;
                // Bytes the client sent right after its request are the first of the WebSocket stream.
                let early = bytes::BytesMut::from(reader.buffer());
                let stream = reader.into_inner();
                return websocket(server, Ws::new(stream, early)?, upgrade);
            }
        }
    }
    Ok(())
}

/// Answers a long-poll GET: registers it with the session (unless it is the handshake's, registered as
/// `first`), then waits for the session's answer to this GET.
fn poll(server: &Server, sid: &str, cell: &Cell, writer: &mut TcpStream, first: Option<PollId>) -> std::io::Result<()> {
    let mut st = cell.state.lock().expect("poisoned");
    let now = Instant::now();
    let id = match first {
        Some(id) => id,
        None => match st.session.handle_poll(now) {
            Ok(id) => id,
            Err(_) => {
                server.pump(sid, cell, &mut st, now);
                drop(st);
                return respond(writer, "400 Bad Request", "text/html", b"");
            }
        },
    };
    server.pump(sid, cell, &mut st, now);
    loop {
        if let Some(body) = st.poll_replies.remove(&id) {
            drop(st);
            return respond(writer, "200 OK", "text/plain; charset=UTF-8", &body);
        }
        if st.session.is_closed() {
            drop(st);
            return refuse(writer, &Refusal::new(ErrorCode::UnknownSid, false));
        }
        st = cell.changed.wait_timeout(st, Duration::from_millis(500)).expect("poisoned").0;
    }
}

/// A server WebSocket on a blocking socket: the framing decoder over a read buffer, frames written whole.
/// Reads wait at most 10 ms, so that the thread that reads also writes what the session queues.
struct Ws {
    stream: TcpStream,
    read: bytes::BytesMut,
    decoder: framing::Decoder,
    close_sent: bool,
}

/// What one read gave.
enum WsRead {
    Message(WsMessage),
    /// Nothing arrived in time.
    Idle,
    /// The peer closed, broke the protocol (answered with its close code) or the connection failed.
    Gone,
}

impl Ws {
    fn new(stream: TcpStream, early: bytes::BytesMut) -> std::io::Result<Ws> {
        stream.set_read_timeout(Some(Duration::from_millis(10)))?;
        Ok(Ws { stream, read: early, decoder: framing::Decoder::new(MAX_MESSAGE), close_sent: false })
    }

    fn send(&mut self, frame: &Frame) -> std::io::Result<()> {
        let mut out = Vec::new();
        framing::encode_engineio_frame(&mut out, frame);
        self.stream.write_all(&out)
    }

    /// Sends a close frame (once) and shuts the socket down.
    fn close(&mut self, code: Option<u16>) {
        if !std::mem::replace(&mut self.close_sent, true) {
            let mut out = Vec::new();
            framing::encode_close(&mut out, code.map(|c| (c, "")));
            let _ = self.stream.write_all(&out);
        }
        let _ = self.stream.shutdown(std::net::Shutdown::Both);
    }

    /// The next data message; pings are answered here and a close is echoed.
    fn read(&mut self) -> WsRead {
        loop {
            match self.decoder.decode(&mut self.read) {
                Ok(Some(WsMessage::Ping(payload))) => {
                    let mut out = Vec::new();
                    framing::encode_frame(&mut out, Opcode::Pong, &payload);
                    if self.stream.write_all(&out).is_err() {
                        return WsRead::Gone;
                    }
                    continue;
                }
                Ok(Some(WsMessage::Close(frame))) => {
                    self.close(frame.map(|f| f.code));
                    return WsRead::Gone;
                }
                Ok(Some(WsMessage::Pong(_))) => continue,
                Ok(Some(message)) => return WsRead::Message(message),
                Ok(None) => {}
                Err(e) => {
                    self.close(Some(e.close_code()));
                    return WsRead::Gone;
                }
            }
            let mut chunk = [0u8; 4096];
            match self.stream.read(&mut chunk) {
                Ok(0) => return WsRead::Gone,
                Ok(n) => self.read.extend_from_slice(&chunk[..n]),
                Err(e) if matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut) => {
                    return WsRead::Idle;
                }
                Err(_) => return WsRead::Gone,
            }
        }
    }
}

/// One WebSocket: a new session, or the probe of an upgrade of session `upgrade`.
fn websocket(server: &Arc<Server>, mut ws: Ws, upgrade: Option<String>) -> std::io::Result<()> {
    let id = server.next_ws.fetch_add(1, Ordering::Relaxed);
    let (tx, rx): (Sender<WsOut>, Receiver<WsOut>) = channel();
    let now = Instant::now();
    let (sid, cell) = match upgrade {
        Some(sid) => {
            let Some(cell) = server.sessions.lock().expect("poisoned").get(&sid).cloned() else { return Ok(()) };
            let mut st = cell.state.lock().expect("poisoned");
            if st.session.handle_upgrade_request(now).is_err() {
                drop(st);
                ws.close(None);
                return Ok(());
            }
            st.probe_ws = Some((id, tx));
            drop(st);
            (sid, cell)
        }
        None => {
            let (sid, cell) = server.open(TransportKind::WebSocket, now, Some((id, tx)));
            let mut st = cell.state.lock().expect("poisoned");
            server.pump(&sid, &cell, &mut st, now);
            drop(st);
            (sid, cell)
        }
    };
    let channel_of = |st: &State| {
        if st.main_ws.as_ref().is_some_and(|(i, _)| *i == id) {
            Some(Channel::Main)
        } else if st.probe_ws.as_ref().is_some_and(|(i, _)| *i == id) {
            Some(Channel::Probe)
        } else {
            None
        }
    };
    loop {
        // Write what the session queued for this WebSocket.
        loop {
            match rx.try_recv() {
                Ok(WsOut::Frame(frame)) => {
                    if ws.send(&frame).is_err() {
                        return transport_gone(server, &sid, &cell, channel_of);
                    }
                }
                Ok(WsOut::Close) => {
                    ws.close(None);
                    return Ok(());
                }
                Err(_) => break,
            }
        }
        let frame = match ws.read() {
            WsRead::Message(WsMessage::Text(t)) => Frame::Text(t),
            WsRead::Message(WsMessage::Binary(b)) => Frame::Binary(b),
            WsRead::Message(_) | WsRead::Idle => continue,
            WsRead::Gone => return transport_gone(server, &sid, &cell, channel_of),
        };
        let mut st = cell.state.lock().expect("poisoned");
        if let Some(ch) = channel_of(&st) {
            let now = Instant::now();
            let _ = st.session.handle_frame(now, ch, frame);
            server.pump(&sid, &cell, &mut st, now);
        }
    }
}

fn transport_gone(
    server: &Server,
    sid: &str,
    cell: &Cell,
    channel_of: impl Fn(&State) -> Option<Channel>,
) -> std::io::Result<()> {
    let mut st = cell.state.lock().expect("poisoned");
    if let Some(ch) = channel_of(&st) {
        let now = Instant::now();
        st.session.handle_transport_closed(now, ch, false);
        server.pump(sid, cell, &mut st, now);
    }
    Ok(())
}
