//! The comparison baseline ("the limit"): a plain tokio `TcpListener` + `tokio_tungstenite` WebSocket
//! server with no Socket.IO library. It speaks only as much Engine.IO v4 / Socket.IO v5 as `loadgen`'s
//! WebSocket scenarios need, by matching packet prefixes instead of parsing JSON:
//!
//! - on the WebSocket upgrade (at any path): `0{"sid":...,"upgrades":[],"pingInterval":25000,...}`;
//! - `40...` (CONNECT to `/`) → `40{"sid":...}`, and the connection joins the broadcast registry;
//! - `41` (DISCONNECT) → leaves the registry; `1` (Engine.IO close) → closes;
//! - `2` (a ping from the client) → `3`;
//! - `42["echo",...]` → the same frame back;
//! - `42<id>["ack",...]` → `43<id>[...]`, the arguments without the event name (a string splice);
//! - `42["broadcast",...]` → the same frame to every connection in the registry, the sender included.
//!
//! It never sends pings itself and has no long-polling transport. Each connection is one task that
//! reads the socket and drains its own unbounded queue (filled by broadcasts) in a `select!` loop,
//! feeding every frame that is ready before flushing once. Frames are `Utf8Bytes`, so a broadcast
//! frame is shared by all the queues rather than copied.
//!
//! Flags: `--port N` (default 3000, 0 picks one), `--threads N` (tokio worker threads, default 1),
//! `--host ADDR` (default 127.0.0.1). Prints `listening on http://ADDR` once bound, then serves until
//! killed.

#[path = "../common.rs"]
mod common;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

use futures_util::{FutureExt, SinkExt, StreamExt};
use slab::Slab;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::handshake::server::{Request, Response};
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::{Message, Utf8Bytes};
use tokio_tungstenite::{WebSocketStream, accept_hdr_async_with_config};

type Ws = WebSocketStream<TcpStream>;

/// How many ready frames (incoming or queued) one connection handles before it flushes and yields.
const BATCH: usize = 64;

/// State shared by every connection.
struct Shared {
    /// The queue of every connection that joined `/`, for broadcasts.
    clients: Mutex<Slab<mpsc::UnboundedSender<Utf8Bytes>>>,
    /// Source of unique ids (Engine.IO and Socket.IO sids).
    next_id: AtomicU64,
    /// Mixed into the ids so that two runs do not hand out the same ones.
    salt: u64,
}

impl Shared {
    fn new_id(&self) -> String {
        let n = self.next_id.fetch_add(1, Ordering::Relaxed);
        // A cheap bijective mix, so that consecutive ids do not look alike.
        let mut x = n ^ self.salt;
        x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        x ^= x >> 31;
        format!("{x:016x}")
    }

    fn broadcast(&self, frame: &Utf8Bytes) {
        let clients = self.clients.lock().unwrap_or_else(|e| e.into_inner());
        for (_, tx) in clients.iter() {
            let _ = tx.send(frame.clone());
        }
    }
}

/// One connection's Socket.IO state.
struct Conn {
    /// Registry key while connected to `/`.
    key: Option<usize>,
    tx: mpsc::UnboundedSender<Utf8Bytes>,
}

impl Conn {
    fn leave(&mut self, shared: &Shared) {
        if let Some(key) = self.key.take() {
            shared.clients.lock().unwrap_or_else(|e| e.into_inner()).remove(key);
        }
    }
}

/// What the connection loop does after a frame.
enum Next {
    Continue,
    Close,
}

/// `42<digits>["ack",<args>]` → `43<digits>[<args>]`; `None` when the frame is not an `ack` event with an
/// acknowledgement id.
fn ack_reply(t: &str) -> Option<String> {
    let rest = t.strip_prefix("42")?;
    let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
    if digits == 0 {
        return None;
    }
    let (id, body) = rest.split_at(digits);
    let after = body.strip_prefix(r#"["ack""#)?;
    let args = match after.as_bytes().first() {
        Some(b',') => &after[1..],
        Some(b']') => "]",
        _ => return None,
    };
    let mut out = String::with_capacity(3 + id.len() + args.len());
    out.push_str("43");
    out.push_str(id);
    out.push('[');
    out.push_str(args);
    Some(out)
}

/// Handles one text frame, feeding any reply (not flushed).
async fn on_text(ws: &mut Ws, t: Utf8Bytes, conn: &mut Conn, shared: &Shared) -> Result<Next, ()> {
    let s = t.as_str();
    if s.starts_with(r#"42["echo","#) {
        ws.feed(Message::Text(t)).await.map_err(|_| ())?;
    } else if s.starts_with(r#"42["broadcast","#) {
        if conn.key.is_some() {
            shared.broadcast(&t);
        }
    } else if let Some(reply) = ack_reply(s) {
        ws.feed(Message::text(reply)).await.map_err(|_| ())?;
    } else if s.starts_with("40") {
        if conn.key.is_none() {
            conn.key = Some(shared.clients.lock().unwrap_or_else(|e| e.into_inner()).insert(conn.tx.clone()));
        }
        let reply = format!(r#"40{{"sid":"{}"}}"#, shared.new_id());
        ws.feed(Message::text(reply)).await.map_err(|_| ())?;
    } else if s.starts_with("41") {
        conn.leave(shared);
    } else if let Some(probe) = s.strip_prefix('2') {
        ws.feed(Message::text(format!("3{probe}"))).await.map_err(|_| ())?;
    } else if s == "1" {
        return Ok(Next::Close);
    }
    Ok(Next::Continue)
}

/// Handles one incoming WebSocket message (or the end of the stream).
async fn on_incoming(
    ws: &mut Ws,
    incoming: Option<Result<Message, tokio_tungstenite::tungstenite::Error>>,
    conn: &mut Conn,
    shared: &Shared,
) -> Result<Next, ()> {
    match incoming {
        Some(Ok(Message::Text(t))) => on_text(ws, t, conn, shared).await,
        // Pings are answered and close frames acknowledged by tungstenite itself (on the next flush);
        // the stream then ends.
        Some(Ok(_)) => Ok(Next::Continue),
        Some(Err(_)) | None => Err(()),
    }
}

async fn serve(stream: TcpStream, shared: Arc<Shared>) {
    let _ = stream.set_nodelay(true);
    // A small read buffer keeps idle connections cheap; the write buffer lets feeds batch until a flush.
    let config = WebSocketConfig::default().read_buffer_size(4096);
    // Any path is accepted: the baseline does not route. (The error type is tungstenite's, not ours.)
    #[allow(clippy::result_large_err)]
    let accept = |_req: &Request, resp: Response| Ok(resp);
    let Ok(mut ws) = accept_hdr_async_with_config(stream, accept, Some(config)).await else { return };
    let open = format!(
        r#"0{{"sid":"{}","upgrades":[],"pingInterval":25000,"pingTimeout":20000,"maxPayload":1000000}}"#,
        shared.new_id()
    );
    if ws.send(Message::text(open)).await.is_err() {
        return;
    }
    let (tx, mut rx) = mpsc::unbounded_channel::<Utf8Bytes>();
    let mut conn = Conn { key: None, tx };
    'conn: loop {
        // Wait for something to do...
        let first = tokio::select! {
            out = rx.recv() => match out {
                Some(frame) => ws.feed(Message::Text(frame)).await.map(|()| Next::Continue).map_err(|_| ()),
                None => Err(()),
            },
            incoming = ws.next() => on_incoming(&mut ws, incoming, &mut conn, &shared).await,
        };
        match first {
            Ok(Next::Continue) => {}
            Ok(Next::Close) | Err(()) => break 'conn,
        }
        // ...then take whatever else is ready right now, and flush once.
        for _ in 0..BATCH {
            let mut progressed = false;
            while let Ok(frame) = rx.try_recv() {
                progressed = true;
                if ws.feed(Message::Text(frame)).await.is_err() {
                    break 'conn;
                }
            }
            if let Some(incoming) = ws.next().now_or_never() {
                progressed = true;
                match on_incoming(&mut ws, incoming, &mut conn, &shared).await {
                    Ok(Next::Continue) => {}
                    Ok(Next::Close) | Err(()) => break 'conn,
                }
            }
            if !progressed {
                break;
            }
        }
        if ws.flush().await.is_err() {
            break;
        }
    }
    conn.leave(&shared);
    let _ = ws.flush().await;
}

fn main() {
    let args = common::parse_args("raw-server");
    let runtime = common::runtime(args.threads);
    runtime.block_on(async move {
        let listener = TcpListener::bind(args.addr).await.expect("bind");
        let addr = listener.local_addr().expect("local address");
        common::announce(addr);
        let salt = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_nanos() as u64).unwrap_or(0);
        let shared = Arc::new(Shared { clients: Mutex::new(Slab::new()), next_id: AtomicU64::new(0), salt });
        loop {
            match listener.accept().await {
                Ok((stream, _)) => {
                    tokio::spawn(serve(stream, shared.clone()));
                }
                // Out of descriptors and the like: back off a little rather than spin.
                Err(_) => tokio::time::sleep(std::time::Duration::from_millis(5)).await,
            }
        }
    });
}
