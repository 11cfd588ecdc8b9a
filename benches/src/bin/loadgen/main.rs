//! A load generator speaking Engine.IO v4 + Socket.IO v5 itself (raw packets over tokio-tungstenite for
//! WebSocket, over hyper-util's client for long-polling); it does not use the server crates.
//!
//! ```text
//! loadgen --url http://127.0.0.1:3000 --scenario echo|ack|broadcast|fanout|idle|idle-polling|connect|storm|polling-echo|soak
//!         [--clients N] [--duration SECS] [--messages N] [--server-pid PID]
//!         [--size BYTES] [--window N] [--connect-concurrency N] [--threads N] [--interval-ms MS] [--spread-ms MS]
//! ```
//!
//! Scenarios (against `bench-server`'s behaviour):
//! - `echo` (50 clients): each sends `42["echo","<64 B>"]` and waits for the echo, for `--duration` s.
//! - `ack` (50 clients): each sends `42<id>["ack","<64 B>"]` and waits for `43<id>[...]`.
//! - `broadcast` (1000 clients, 200 messages): one client sends `--messages` `broadcast` events, at most
//!   `--window` of them (default 20) not yet delivered to every client; ops = deliveries, latency = from
//!   the send to each delivery.
//! - `idle` (5000 connections): opens that many WebSocket connections with the namespace joined, holds
//!   them `--duration` s (answering pings), and reads the server's `VmRSS` (`--server-pid`) before and
//!   after: `bytes_per_conn`; then closes them all and, 2 s later, reads it again (`rss_left_kb`: does
//!   memory go back to where it was?). Latency = the open + CONNECT time of each connection. With
//!   `--burst BYTES`, each connection first exchanges one `echo` of that size (does a connection that once
//!   carried a large message cost more once idle?).
//! - `idle-polling` (5000 sessions): the same over long-polling, each session always holding one GET on
//!   the server (as a browser tab does); they leave with a close packet.
//! - `connect` (50 at a time): WebSocket open + CONNECT (until `40{"sid"...}`) + close, repeated for
//!   `--duration` s or `--messages` handshakes in all (default 20000); latency = open + CONNECT.
//! - `polling-echo` (50 clients): long-polling clients doing echo round trips (POST the event, GET until
//!   the echo comes back), each on one kept-alive connection spoken by hand (not hyper's client, which
//!   cost more per round trip than the servers did).
//! - `fanout` (15000 clients): the broadcast scenario at a steady rate instead of a window: one client
//!   sends a `broadcast` every `--interval-ms` (20) for `--duration` (10 s) to the room of all the
//!   others; ops = deliveries, latency = from the send to each delivery; adds `asked_per_s`.
//! - `storm` (15000 clients): a reconnect storm with connection state recovery (see [`storm`]).
//!
//! Every scenario stops by itself (at most `--duration` plus a grace period) and prints one JSON line:
//! `{"scenario","clients","duration_s","ops","ops_per_s","p50_us","p90_us","p99_us","max_us","errors"}`
//! (idle adds `rss_before_kb`, `rss_after_kb`, `bytes_per_conn`, `rss_left_kb`; broadcast adds `messages`, `expected`).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use hdrhistogram::Histogram;
use serde_json::json;
use tokio::net::TcpStream;
use tokio::sync::{Notify, Semaphore, mpsc, watch};
use tokio::time::{Instant, timeout_at};
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::{Message, Utf8Bytes};
use tokio_tungstenite::{WebSocketStream, client_async_with_config};

type Ws = WebSocketStream<TcpStream>;
type Hist = Histogram<u64>;
type Res<T> = Result<T, String>;

mod polling;
use polling::{Polling, RawPolling, polling_client};

/// How long the idle scenario waits after its clients left before it reads the server's RSS again.
const SETTLE: Duration = Duration::from_secs(2);

/// Grace period after `--duration` before a scenario gives up on whatever is still pending.
const GRACE: Duration = Duration::from_secs(10);

#[derive(Debug, Clone)]
struct Opts {
    authority: String,
    path: String,
    scenario: String,
    clients: usize,
    duration: Duration,
    messages: usize,
    server_pid: Option<u32>,
    size: usize,
    window: usize,
    connect_concurrency: usize,
    threads: usize,
    /// idle: the size of one echo each connection exchanges before it goes idle (0: none).
    burst: usize,
    /// fanout: one broadcast every this long (instead of broadcast's window).
    interval: Option<Duration>,
    /// storm: the reconnections are spread over this long.
    spread: Duration,
}

fn usage() -> ! {
    eprintln!(
        "usage: loadgen --url http://HOST:PORT --scenario echo|ack|broadcast|fanout|idle|idle-polling|connect|storm|polling-echo|soak \
         [--clients N] [--duration SECS] [--messages N] [--server-pid PID] [--size BYTES] [--window N] \
         [--connect-concurrency N] [--threads N] [--burst BYTES] [--interval-ms MS] [--spread-ms MS]"
    );
    std::process::exit(2);
}

fn parse_opts() -> Opts {
    let mut url = "http://127.0.0.1:3000".to_owned();
    let mut scenario = None;
    let mut clients = None;
    let mut duration = None;
    let mut messages = None;
    let mut server_pid = None;
    let mut size = 64usize;
    let mut window = 20usize;
    let mut connect_concurrency = 100usize;
    let mut threads = 1usize;
    let mut burst = 0usize;
    let mut interval_ms = 20u64;
    let mut spread_ms = 1000u64;
    let mut args = std::env::args().skip(1);
    fn num<T: std::str::FromStr>(v: Option<String>) -> T {
        v.and_then(|v| v.parse().ok()).unwrap_or_else(|| usage())
    }
    while let Some(flag) = args.next() {
        match flag.as_str() {
            "--url" => url = args.next().unwrap_or_else(|| usage()),
            "--scenario" => scenario = Some(args.next().unwrap_or_else(|| usage())),
            "--clients" => clients = Some(num::<usize>(args.next())),
            "--duration" => duration = Some(num::<f64>(args.next())),
            "--messages" => messages = Some(num::<usize>(args.next())),
            "--server-pid" => server_pid = Some(num::<u32>(args.next())),
            "--size" => size = num(args.next()),
            "--window" => window = num(args.next()),
            "--connect-concurrency" => connect_concurrency = num(args.next()),
            "--threads" => threads = num(args.next()),
            "--burst" => burst = num(args.next()),
            "--interval-ms" => interval_ms = num(args.next()),
            "--spread-ms" => spread_ms = num(args.next()),
            "-h" | "--help" => usage(),
            other => {
                eprintln!("unknown flag {other}");
                usage();
            }
        }
    }
    let scenario = scenario.unwrap_or_else(|| usage());
    let (def_clients, def_duration, def_messages) = match scenario.as_str() {
        "echo" | "ack" | "polling-echo" => (50, 10.0, 0),
        "broadcast" => (1000, 30.0, 200),
        "idle" | "idle-polling" => (5000, 2.0, 0),
        "connect" => (50, 5.0, 20_000),
        "soak" => (1000, 60.0, 10),
        "fanout" => (15_000, 10.0, 0),
        "storm" => (15_000, 10.0, 3),
        _ => {
            eprintln!("unknown scenario {scenario}");
            usage();
        }
    };
    let rest = url.strip_prefix("http://").or_else(|| url.strip_prefix("ws://")).unwrap_or(&url);
    let (authority, path) = match rest.find('/') {
        Some(i) if rest[i..].len() > 1 => (rest[..i].to_owned(), rest[i..].to_owned()),
        Some(i) => (rest[..i].to_owned(), "/socket.io/".to_owned()),
        None => (rest.to_owned(), "/socket.io/".to_owned()),
    };
    let path = if path.ends_with('/') { path } else { format!("{path}/") };
    let interval = (scenario == "fanout").then(|| Duration::from_millis(interval_ms.max(1)));
    Opts {
        authority,
        path,
        scenario,
        clients: clients.unwrap_or(def_clients).max(1),
        duration: Duration::from_secs_f64(duration.unwrap_or(def_duration).max(0.0)),
        messages: messages.unwrap_or(def_messages),
        server_pid,
        size,
        window: window.max(1),
        connect_concurrency: connect_concurrency.max(1),
        threads: threads.max(1),
        burst,
        interval,
        spread: Duration::from_millis(spread_ms),
    }
}

fn new_hist() -> Hist {
    Histogram::new_with_bounds(1, 3_600_000_000, 3).expect("histogram bounds")
}

/// What one receiving task of broadcast and fan-out saw: each delivery's latency in microseconds.
#[derive(Default)]
struct Deliveries {
    latencies_us: Vec<u32>,
    ops: u64,
    errors: u64,
}

fn micros(d: Duration) -> u64 {
    u64::try_from(d.as_micros()).unwrap_or(u64::MAX).max(1)
}

/// One worker's outcome.
struct Tally {
    hist: Hist,
    ops: u64,
    errors: u64,
}

impl Tally {
    fn new() -> Self {
        Tally { hist: new_hist(), ops: 0, errors: 0 }
    }
    fn merge(&mut self, other: Tally) {
        let _ = self.hist.add(&other.hist);
        self.ops += other.ops;
        self.errors += other.errors;
    }
    /// Runs one operation, cut short when `deadline` fires (one timer per worker, not one per operation):
    /// its latency on success, an error otherwise. Whether it succeeded (a worker stops at its first
    /// failure).
    async fn timed(
        &mut self,
        deadline: &mut std::pin::Pin<&mut tokio::time::Sleep>,
        op: impl std::future::Future<Output = Res<()>>,
    ) -> bool {
        let t0 = Instant::now();
        let outcome = tokio::select! {
            biased;
            r = op => Some(r),
            _ = deadline.as_mut() => None,
        };
        match outcome {
            Some(Ok(())) => {
                self.hist.saturating_record(micros(t0.elapsed()));
                self.ops += 1;
                true
            }
            Some(Err(e)) => {
                eprintln!("{e}");
                self.errors += 1;
                false
            }
            None => {
                self.errors += 1;
                false
            }
        }
    }
}

fn report(opts: &Opts, elapsed: Duration, t: &Tally, extra: serde_json::Value) {
    let secs = elapsed.as_secs_f64();
    let h = &t.hist;
    let q = |x: f64| if h.is_empty() { 0 } else { h.value_at_quantile(x) };
    let mut line = json!({
        "scenario": opts.scenario,
        "clients": opts.clients,
        "duration_s": (secs * 1000.0).round() / 1000.0,
        "ops": t.ops,
        "ops_per_s": if secs > 0.0 { (t.ops as f64 / secs * 10.0).round() / 10.0 } else { 0.0 },
        "p50_us": q(0.50),
        "p90_us": q(0.90),
        "p99_us": q(0.99),
        "max_us": if h.is_empty() { 0 } else { h.max() },
        "errors": t.errors,
        // This load generator's own CPU time over the whole run (is it, rather than the server, the limit?).
        "loadgen_cpu_s": cpu_s(None).map(|c| (c * 100.0).round() / 100.0),
    });
    if let (Some(obj), serde_json::Value::Object(more)) = (line.as_object_mut(), extra) {
        obj.extend(more);
    }
    println!("{line}");
}

// ---------------------------------------------------------------------------------------------------------
// WebSocket transport

fn ws_url(opts: &Opts) -> String {
    format!("ws://{}{}?EIO=4&transport=websocket", opts.authority, opts.path)
}

/// The next text frame (Engine.IO packet); ends with an error on close or a transport error.
async fn next_text(ws: &mut Ws) -> Res<Utf8Bytes> {
    loop {
        match ws.next().await {
            Some(Ok(Message::Text(t))) => return Ok(t),
            Some(Ok(Message::Close(_))) | None => return Err("connection closed".into()),
            Some(Ok(_)) => continue,
            Some(Err(e)) => return Err(format!("websocket: {e}")),
        }
    }
}

/// Answers Engine.IO packets that need no application: ping `2` → pong `3`. Returns `Ok(true)` when the
/// packet was a Socket.IO one (`4...`) for the caller, `Ok(false)` when handled here.
async fn handle_engine_packet(ws: &mut Ws, t: &str) -> Res<bool> {
    match t.as_bytes().first() {
        Some(b'4') => Ok(true),
        Some(b'2') => {
            ws.send(Message::text("3")).await.map_err(|e| format!("send pong: {e}"))?;
            Ok(false)
        }
        Some(b'1') => Err("server closed the session".into()),
        _ => Ok(false),
    }
}

/// The next Engine.IO message packet (`4...`, returned whole, e.g. `42["echo",...]`), answering pings.
async fn recv_app(ws: &mut Ws) -> Res<Utf8Bytes> {
    loop {
        let t = next_text(ws).await?;
        if handle_engine_packet(ws, &t).await? {
            return Ok(t);
        }
    }
}

/// Loopback source addresses the connections take turns with (127.0.0.1 to 127.0.0.N).
const LOOPBACK_SOURCES: u32 = 16;

/// Connects to `authority`. To a loopback server, the connections come from `LOOPBACK_SOURCES` source
/// addresses in turn: with every connection from 127.0.0.1, Linux's choice of an ephemeral port for
/// `connect` walks the ports already connected to the same destination, and past about 14,000 of them (the
/// even half of the default range, which `connect` tries first) each new connection costs a long search
/// in the kernel of this process; the reconnect storm of 15,000 spent most of this load generator's time
/// there. Real clients come from many addresses.
async fn tcp_connect(authority: &str) -> Res<TcpStream> {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    let addr: std::net::SocketAddr = match authority.parse() {
        Ok(a) => a,
        Err(_) => tokio::net::lookup_host(authority)
            .await
            .map_err(|e| format!("resolve {authority}: {e}"))?
            .next()
            .ok_or_else(|| format!("resolve {authority}: no address"))?,
    };
    let std::net::IpAddr::V4(ip) = addr.ip() else {
        return TcpStream::connect(addr).await.map_err(|e| format!("tcp connect: {e}"));
    };
    if !ip.is_loopback() {
        return TcpStream::connect(addr).await.map_err(|e| format!("tcp connect: {e}"));
    }
    let n = u32::try_from(NEXT.fetch_add(1, Ordering::Relaxed) % LOOPBACK_SOURCES as usize).unwrap_or(0);
    let source = std::net::Ipv4Addr::from(u32::from(std::net::Ipv4Addr::LOCALHOST) + n);
    let socket = tokio::net::TcpSocket::new_v4().map_err(|e| format!("tcp socket: {e}"))?;
    // Where only 127.0.0.1 is configured (macOS), the kernel picks the source as before.
    let _ = socket.bind((source, 0).into());
    socket.connect(addr).await.map_err(|e| format!("tcp connect: {e}"))
}

/// Opens a WebSocket session and joins the main namespace: TCP + upgrade, `0{...}`, sends `40`, waits for
/// `40{"sid":...}`.
async fn ws_connect(url: &str, authority: &str) -> Res<Ws> {
    ws_connect_with(url, authority, "40").await.map(|(ws, _, _)| ws)
}

/// [`ws_connect`] with the CONNECT packet `connect` (e.g. `40{"pid":…,"offset":…}`); also returns the
/// CONNECT reply and the Socket.IO packets that came before it (a recovered session's missed packets).
async fn ws_connect_with(url: &str, authority: &str, connect: &str) -> Res<(Ws, Utf8Bytes, Vec<Utf8Bytes>)> {
    let tcp = tcp_connect(authority).await?;
    let _ = tcp.set_nodelay(true);
    // tungstenite zero-fills the free part of its read buffer before every read: its default 128 KiB made
    // that memset most of this load generator's CPU time. The packets here are small.
    let config = WebSocketConfig::default().read_buffer_size(4096);
    let (mut ws, _) =
        client_async_with_config(url, tcp, Some(config)).await.map_err(|e| format!("websocket handshake: {e}"))?;
    let open = next_text(&mut ws).await?;
    if !open.starts_with("0{") {
        return Err(format!("expected an open packet, got {open:?}"));
    }
    ws.send(Message::text(connect)).await.map_err(|e| format!("send CONNECT: {e}"))?;
    let mut before = Vec::new();
    loop {
        let t = recv_app(&mut ws).await?;
        if t.starts_with("40{") {
            return Ok((ws, t, before));
        }
        if t.starts_with("44") {
            return Err(format!("CONNECT refused: {t}"));
        }
        before.push(t);
    }
}

/// Opens `n` sessions, at most `concurrency` handshakes at a time; returns them with the handshake tally.
async fn open_many(opts: &Opts, n: usize, deadline: Instant) -> (Vec<Ws>, Tally) {
    let sem = Arc::new(Semaphore::new(opts.connect_concurrency));
    let url: Arc<str> = ws_url(opts).into();
    let authority: Arc<str> = opts.authority.clone().into();
    let mut tasks = Vec::with_capacity(n);
    for _ in 0..n {
        let (sem, url, authority) = (sem.clone(), url.clone(), authority.clone());
        tasks.push(tokio::spawn(async move {
            let _permit = sem.acquire_owned().await.ok()?;
            let t0 = Instant::now();
            match timeout_at(deadline, ws_connect(&url, &authority)).await {
                Ok(Ok(ws)) => Some((ws, t0.elapsed())),
                Ok(Err(e)) => {
                    eprintln!("connect: {e}");
                    None
                }
                Err(_) => None,
            }
        }));
    }
    let mut out = Vec::with_capacity(n);
    let mut tally = Tally::new();
    for t in tasks {
        match t.await.ok().flatten() {
            Some((ws, d)) => {
                tally.hist.saturating_record(micros(d));
                tally.ops += 1;
                out.push(ws);
            }
            None => tally.errors += 1,
        }
    }
    (out, tally)
}

fn payload(size: usize) -> String {
    "x".repeat(size)
}

/// echo and ack: each client sends one event and waits for its answer, in a loop.
async fn request_reply(opts: &Opts, ack: bool) {
    let connect_deadline = Instant::now() + opts.duration + GRACE;
    let (conns, setup) = open_many(opts, opts.clients, connect_deadline).await;
    let data = payload(opts.size);
    let start = Instant::now();
    let end = start + opts.duration;
    let hard = end + GRACE;
    let mut tasks = Vec::new();
    for mut ws in conns {
        let data = data.clone();
        tasks.push(tokio::spawn(async move {
            let mut tally = Tally::new();
            let deadline = tokio::time::sleep_until(hard);
            tokio::pin!(deadline);
            let echo = Utf8Bytes::from(format!(r#"42["echo","{data}"]"#));
            let mut id: u64 = 0;
            while Instant::now() < end {
                let (msg, expect) = if ack {
                    id += 1;
                    (Utf8Bytes::from(format!(r#"42{id}["ack","{data}"]"#)), format!("43{id}["))
                } else {
                    (echo.clone(), r#"42["echo","#.to_owned())
                };
                let round = async {
                    ws.send(Message::Text(msg)).await.map_err(|e| format!("send: {e}"))?;
                    loop {
                        let t = recv_app(&mut ws).await?;
                        if t.starts_with(expect.as_str()) {
                            return Ok::<(), String>(());
                        }
                    }
                };
                if !tally.timed(&mut deadline, round).await {
                    break;
                }
            }
            let _ = timeout_at(hard, ws.close(None)).await;
            tally
        }));
    }
    let mut total = Tally::new();
    total.errors += setup.errors;
    for t in tasks {
        match t.await {
            Ok(t) => total.merge(t),
            Err(_) => total.errors += 1,
        }
    }
    report(opts, start.elapsed(), &total, json!({}));
}

/// Broadcast: `clients` sessions in room "all"; one of them sends `messages` events, `window` in flight.
async fn broadcast(opts: &Opts) {
    let n = opts.clients;
    let messages = match opts.interval {
        // fanout: one message per interval over the duration.
        Some(every) if opts.messages == 0 => (opts.duration.as_secs_f64() / every.as_secs_f64()).ceil() as usize,
        _ => opts.messages,
    }
    .max(1);
    let setup_deadline = Instant::now() + Duration::from_secs(120);
    let (conns, setup) = open_many(opts, n, setup_deadline).await;
    let n = conns.len();
    if n == 0 {
        report(opts, Duration::ZERO, &setup, json!({"messages": messages, "expected": 0}));
        return;
    }
    let base = Instant::now();
    let sent_at: Arc<Vec<AtomicU64>> = Arc::new((0..messages).map(|_| AtomicU64::new(u64::MAX)).collect());
    let per_msg: Arc<Vec<AtomicUsize>> = Arc::new((0..messages).map(|_| AtomicUsize::new(0)).collect());
    let complete = Arc::new(AtomicUsize::new(0));
    let last_delivery = Arc::new(AtomicU64::new(0));
    let progress = Arc::new(Notify::new());
    let (stop_tx, stop_rx) = watch::channel(false);
    let (out_tx, out_rx) = mpsc::channel::<Utf8Bytes>(messages + 1);
    let mut out_rx = Some(out_rx);
    let mut tasks = Vec::with_capacity(n);
    for mut ws in conns {
        let mut rx = out_rx.take();
        let mut stop = stop_rx.clone();
        let (sent_at, per_msg, complete, last_delivery, progress) =
            (sent_at.clone(), per_msg.clone(), complete.clone(), last_delivery.clone(), progress.clone());
        tasks.push(tokio::spawn(async move {
            // Latencies kept as a list and put in a histogram after the run: a histogram per task
            // (about 190 KB each) cost the load generator seconds of page faults at the start of a
            // 15,000-client fan-out, while the measurement ran.
            let mut tally = Deliveries::default();
            let prefix = r#"42["broadcast",""#;
            loop {
                tokio::select! {
                    out = async { rx.as_mut().expect("guarded").recv().await }, if rx.is_some() => {
                        match out {
                            Some(m) => if let Err(e) = ws.send(Message::Text(m)).await {
                                eprintln!("send: {e}");
                                tally.errors += 1;
                                break;
                            },
                            None => rx = None,
                        }
                    }
                    _ = stop.changed() => break,
                    t = next_text(&mut ws) => {
                        let t = match t {
                            Ok(t) => t,
                            Err(e) => { eprintln!("{e}"); tally.errors += 1; break; }
                        };
                        match handle_engine_packet(&mut ws, &t).await {
                            Ok(true) => {}
                            Ok(false) => continue,
                            Err(e) => { eprintln!("{e}"); tally.errors += 1; break; }
                        }
                        let Some(rest) = t.strip_prefix(prefix) else { continue };
                        let Some(idx) = rest.split(':').next().and_then(|s| s.parse::<usize>().ok()) else { continue };
                        if idx >= per_msg.len() { continue; }
                        let now = u64::try_from(base.elapsed().as_nanos()).unwrap_or(u64::MAX);
                        let sent = sent_at[idx].load(Ordering::Acquire);
                        if sent != u64::MAX && now >= sent {
                            tally.latencies_us.push(u32::try_from(((now - sent) / 1000).max(1)).unwrap_or(u32::MAX));
                        }
                        tally.ops += 1;
                        last_delivery.fetch_max(now, Ordering::AcqRel);
                        if per_msg[idx].fetch_add(1, Ordering::AcqRel) + 1 == n {
                            complete.fetch_add(1, Ordering::AcqRel);
                            progress.notify_one();
                        }
                    }
                }
            }
            let _ = tokio::time::timeout(Duration::from_secs(1), ws.close(None)).await;
            tally
        }));
    }
    let data_len = opts.size;
    let hard = Instant::now() + opts.duration + GRACE;
    let first_send = base.elapsed();
    let send_start = Instant::now();
    let mut sent = 0usize;
    'send: for i in 0..messages {
        match opts.interval {
            // fanout: at a steady rate, whatever is still being delivered.
            Some(every) => {
                let at = send_start + every * u32::try_from(i).unwrap_or(u32::MAX);
                if at > send_start + opts.duration {
                    break 'send;
                }
                tokio::time::sleep_until(at).await;
            }
            None => {
                while i >= complete.load(Ordering::Acquire) + opts.window {
                    if timeout_at(hard, progress.notified()).await.is_err() {
                        break 'send;
                    }
                }
            }
        }
        let head = format!("{i}:");
        let body = format!("{head}{}", "x".repeat(data_len.saturating_sub(head.len())));
        sent_at[i].store(u64::try_from(base.elapsed().as_nanos()).unwrap_or(u64::MAX), Ordering::Release);
        if out_tx.send(Utf8Bytes::from(format!(r#"42["broadcast","{body}"]"#))).await.is_err() {
            break;
        }
        sent += 1;
    }
    while complete.load(Ordering::Acquire) < sent {
        if timeout_at(hard, progress.notified()).await.is_err() {
            break;
        }
    }
    let _ = stop_tx.send(true);
    let mut total = Tally::new();
    total.errors += setup.errors;
    for t in tasks {
        match t.await {
            Ok(t) => {
                for &us in &t.latencies_us {
                    total.hist.saturating_record(u64::from(us));
                }
                total.ops += t.ops;
                total.errors += t.errors;
            }
            Err(_) => total.errors += 1,
        }
    }
    let last = Duration::from_nanos(last_delivery.load(Ordering::Acquire));
    let elapsed = last.saturating_sub(first_send);
    let mut extra = json!({"messages": sent, "expected": sent * n});
    if let Some(every) = opts.interval {
        // What was asked: every connection gets one message per interval.
        extra["interval_ms"] = json!(every.as_millis() as u64);
        extra["asked_per_s"] = json!((n as f64 / every.as_secs_f64()).round());
    }
    report(opts, elapsed, &total, extra);
}

/// A session's `pid` and last offset, when the server gave them.
type PidOffset = (Option<String>, Option<String>);

/// The `pid` of a CONNECT reply `40{"sid":"…","pid":"…"}` (present when the server recovers sessions).
fn pid_of(reply: &str) -> Option<String> {
    let v: serde_json::Value = serde_json::from_str(reply.get(2..)?).ok()?;
    v.get("pid")?.as_str().map(str::to_owned)
}

/// The offset a recovering server appends to an event: its last argument, when it is a string after the
/// event's own arguments (`42["broadcast","<data>","<offset>"]`).
fn offset_of(event: &str) -> Option<String> {
    let v: serde_json::Value = serde_json::from_str(event.get(2..)?).ok()?;
    let args = v.as_array()?;
    (args.len() >= 3).then(|| args.last()?.as_str().map(str::to_owned)).flatten()
}

/// Reconnect storm: `--clients` sessions connected (each with its `pid` when the server gives one), one
/// broadcast so that each holds an offset, then every connection dropped at once; `--messages` broadcasts
/// go out while they are away (from one more session, which stays); then all reconnect within
/// `--spread-ms`, each presenting its `pid` and `offset`. Ops = sessions back; latency = open + CONNECT of
/// each reconnection; errors = reconnections refused or timed out. Adds `all_back_ms` (from the first
/// reconnection's start to the last one's CONNECT reply), `recovered` (replies with the same `pid`),
/// `missed_delivered` (broadcasts received before the CONNECT reply), `missed_expected`, and with
/// `--server-pid` the server's RSS before and its peak during the storm.
async fn storm(opts: &Opts) {
    let n = opts.clients;
    let url: Arc<str> = ws_url(opts).into();
    let authority: Arc<str> = opts.authority.clone().into();
    let rss_before = opts.server_pid.and_then(read_rss_kb);
    let setup_deadline = Instant::now() + Duration::from_secs(120);
    // The sessions to cut, each with its pid, and the publisher.
    let sem = Arc::new(Semaphore::new(opts.connect_concurrency));
    let mut opening = Vec::with_capacity(n);
    for _ in 0..n {
        let (sem, url, authority) = (sem.clone(), url.clone(), authority.clone());
        opening.push(tokio::spawn(async move {
            let _permit = sem.acquire_owned().await.ok()?;
            match timeout_at(setup_deadline, ws_connect_with(&url, &authority, "40")).await {
                Ok(Ok((ws, reply, _))) => Some((ws, pid_of(&reply))),
                Ok(Err(e)) => {
                    eprintln!("connect: {e}");
                    None
                }
                Err(_) => None,
            }
        }));
    }
    let mut sessions = Vec::with_capacity(n);
    for t in opening {
        if let Some(s) = t.await.ok().flatten() {
            sessions.push(s);
        }
    }
    let Ok(mut publisher) = ws_connect(&url, &authority).await else {
        report(opts, Duration::ZERO, &Tally { errors: n as u64, ..Tally::new() }, json!({}));
        return;
    };
    let setup_errors = (n - sessions.len()) as u64;
    // One broadcast reaches everyone: each session takes its offset from it.
    let broadcast = |text: &str| Message::text(format!(r#"42["broadcast","{text}"]"#));
    let _ = publisher.send(broadcast("warm")).await;
    let warm_deadline = Instant::now() + Duration::from_secs(60);
    let mut warming = Vec::with_capacity(sessions.len());
    for (mut ws, pid) in sessions {
        warming.push(tokio::spawn(async move {
            let offset = loop {
                match timeout_at(warm_deadline, recv_app(&mut ws)).await {
                    Ok(Ok(t)) if t.starts_with(r#"42["broadcast","warm""#) => break offset_of(&t),
                    Ok(Ok(_)) => continue,
                    _ => return None,
                }
            };
            Some((ws, pid, offset))
        }));
    }
    let mut warm = Vec::with_capacity(warming.len());
    for t in warming {
        if let Some(s) = t.await.ok().flatten() {
            warm.push(s);
        }
    }
    let warm_errors = (n as u64 - setup_errors) - warm.len() as u64;
    while !recv_app(&mut publisher).await.map(|t| t.starts_with(r#"42["broadcast","warm""#)).unwrap_or(true) {}
    // The cut: every connection dropped at once (no close frame).
    let (cut, recovering): (Vec<Ws>, Vec<PidOffset>) =
        warm.into_iter().map(|(ws, pid, offset)| (ws, (pid, offset))).unzip();
    drop(cut);
    // What they miss: sent once the server has handled the cut (its echo to the publisher is in order).
    for k in 0..opts.messages {
        let _ = publisher.send(broadcast(&format!("missed-{k}"))).await;
    }
    let mut echoed = 0;
    while echoed < opts.messages {
        match timeout_at(Instant::now() + Duration::from_secs(10), recv_app(&mut publisher)).await {
            Ok(Ok(t)) if t.starts_with(r#"42["broadcast","missed-"#) => echoed += 1,
            Ok(Ok(_)) => {}
            _ => break,
        }
    }
    // The storm: every session back within the spread, with its pid and offset.
    let peak = Arc::new(AtomicU64::new(rss_before.unwrap_or(0)));
    let (sampling_tx, mut sampling_rx) = watch::channel(false);
    let sampler = opts.server_pid.map(|pid| {
        let peak = peak.clone();
        tokio::spawn(async move {
            loop {
                if let Some(kb) = read_rss_kb(pid) {
                    peak.fetch_max(kb, Ordering::Relaxed);
                }
                tokio::select! {
                    _ = sampling_rx.changed() => return,
                    _ = tokio::time::sleep(Duration::from_millis(10)) => {}
                }
            }
        })
    });
    let count = recovering.len();
    let cpu_before = (cpu_s(opts.server_pid), cpu_s(None));
    let start = Instant::now();
    let deadline = start + opts.spread + opts.duration;
    let mut tasks = Vec::with_capacity(count);
    for (i, (pid, offset)) in recovering.into_iter().enumerate() {
        let (url, authority) = (url.clone(), authority.clone());
        let at = start + opts.spread.mul_f64(i as f64 / count.max(1) as f64);
        tasks.push(tokio::spawn(async move {
            tokio::time::sleep_until(at).await;
            let connect = match (&pid, &offset) {
                (Some(pid), Some(offset)) => format!(r#"40{{"pid":"{pid}","offset":"{offset}"}}"#),
                _ => "40".to_owned(),
            };
            let t0 = Instant::now();
            match timeout_at(deadline, ws_connect_with(&url, &authority, &connect)).await {
                Ok(Ok((ws, reply, before))) => {
                    let recovered = pid.is_some() && pid_of(&reply) == pid;
                    let missed = before.iter().filter(|t| t.starts_with(r#"42["broadcast","missed-"#)).count();
                    Ok((ws, t0.elapsed(), Instant::now(), recovered, missed))
                }
                Ok(Err(e)) => Err(e),
                Err(_) => Err("timed out".to_owned()),
            }
        }));
    }
    let mut tally = Tally::new();
    tally.errors = setup_errors + warm_errors;
    let (mut recovered, mut missed, mut last) = (0u64, 0u64, start);
    let mut back = Vec::with_capacity(count);
    for t in tasks {
        match t.await {
            Ok(Ok((ws, latency, done, r, m))) => {
                tally.hist.saturating_record(micros(latency));
                tally.ops += 1;
                recovered += u64::from(r);
                missed += m as u64;
                last = last.max(done);
                back.push(ws);
            }
            Ok(Err(e)) => {
                eprintln!("reconnect: {e}");
                tally.errors += 1;
            }
            Err(_) => tally.errors += 1,
        }
    }
    let all_back = last.duration_since(start);
    // Which side was busy during the storm: the server's and this load generator's CPU time in it.
    let cpu_in_storm = |before: Option<f64>, after: Option<f64>| match (before, after) {
        (Some(b), Some(a)) => json!(((a - b) * 100.0).round() / 100.0),
        _ => serde_json::Value::Null,
    };
    let server_cpu = cpu_in_storm(cpu_before.0, cpu_s(opts.server_pid));
    let loadgen_cpu = cpu_in_storm(cpu_before.1, cpu_s(None));
    let _ = sampling_tx.send(true);
    if let Some(s) = sampler {
        let _ = s.await;
    }
    for mut ws in back {
        let _ = tokio::time::timeout(Duration::from_millis(100), ws.close(None)).await;
    }
    report(
        opts,
        all_back,
        &tally,
        json!({"all_back_ms": all_back.as_millis() as u64, "recovered": recovered, "missed_delivered": missed,
               "missed_expected": count * opts.messages, "spread_ms": opts.spread.as_millis() as u64,
               "rss_before_kb": rss_before, "rss_peak_kb": opts.server_pid.map(|_| peak.load(Ordering::Relaxed)),
               "storm_server_cpu_s": server_cpu, "storm_loadgen_cpu_s": loadgen_cpu}),
    );
}

/// The CPU time (user + system, every thread) of process `pid`, or of this one, in seconds (from
/// `/proc/…/stat`, in clock ticks of 1/100 s, Linux's `USER_HZ`).
fn cpu_s(pid: Option<u32>) -> Option<f64> {
    let path = pid.map_or_else(|| "/proc/self/stat".to_owned(), |p| format!("/proc/{p}/stat"));
    let stat = std::fs::read_to_string(path).ok()?;
    // The fields after the command name, which ends with the last ")": utime and stime are the 12th and 13th.
    let rest = &stat[stat.rfind(')')? + 2..];
    let mut fields = rest.split_whitespace().skip(11);
    let ticks = fields.next()?.parse::<u64>().ok()? + fields.next()?.parse::<u64>().ok()?;
    Some(ticks as f64 / 100.0)
}

fn read_rss_kb(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// Opens one session (by `deadline` at the latest) and reports its handshake time, or `None` when it
/// failed, to `opened`.
async fn open_reported<T>(
    deadline: Instant,
    opened: &mpsc::UnboundedSender<Option<Duration>>,
    open: impl std::future::Future<Output = Res<T>>,
) -> Option<T> {
    let t0 = Instant::now();
    let r = match timeout_at(deadline, open).await {
        Ok(Ok(v)) => Some(v),
        Ok(Err(e)) => {
            eprintln!("connect: {e}");
            None
        }
        Err(_) => None,
    };
    let _ = opened.send(r.as_ref().map(|_| t0.elapsed()));
    r
}

/// Idle: hold many sessions with the namespace joined; the server's RSS before and after. Each session
/// answers pings from the moment it is open (a task per session), while the others are still opening.
async fn idle(opts: &Opts, polling: bool) {
    let rss_before = opts.server_pid.and_then(read_rss_kb);
    let http = polling.then(polling_client);
    let base = format!("http://{}{}", opts.authority, opts.path);
    let start = Instant::now();
    let open_deadline = start + Duration::from_secs(120);
    let sem = Arc::new(Semaphore::new(opts.connect_concurrency));
    let url: Arc<str> = ws_url(opts).into();
    let authority: Arc<str> = opts.authority.clone().into();
    let burst: Option<Arc<str>> = (opts.burst > 0).then(|| format!(r#"42["echo","{}"]"#, payload(opts.burst)).into());
    let (stop_tx, stop_rx) = watch::channel(false);
    // Each task reports its handshake (Some(time) or None) once, then holds the session until stopped.
    let (opened_tx, mut opened_rx) = mpsc::unbounded_channel::<Option<Duration>>();
    let mut holders = Vec::with_capacity(opts.clients);
    for _ in 0..opts.clients {
        let (sem, url, authority, opened_tx) = (sem.clone(), url.clone(), authority.clone(), opened_tx.clone());
        let mut stop = stop_rx.clone();
        if let Some(client) = &http {
            let p = Polling::new(client, &base);
            holders.push(tokio::spawn(async move {
                let permit = sem.acquire_owned().await;
                let Some(uri) = open_reported(open_deadline, &opened_tx, p.open()).await else { return false };
                drop(permit);
                // Always one long-poll waiting on the server, as a browser tab keeps.
                loop {
                    tokio::select! {
                        _ = stop.changed() => break,
                        r = p.get(&uri) => if r.is_err() { return false },
                    }
                }
                // Leave as a client does: a close packet, so the session ends now rather than at its
                // heartbeat timeout.
                let _ = tokio::time::timeout(Duration::from_secs(2), p.post(&uri, "1".into())).await;
                true
            }));
            continue;
        }
        let burst = burst.clone();
        holders.push(tokio::spawn(async move {
            let permit = sem.acquire_owned().await;
            let open = async {
                let mut ws = ws_connect(&url, &authority).await?;
                // One large echo before going idle: the server's buffers must not stay that large.
                if let Some(msg) = burst {
                    ws.send(Message::text(&*msg)).await.map_err(|e| format!("send burst: {e}"))?;
                    while !recv_app(&mut ws).await?.starts_with(r#"42["echo","#) {}
                }
                Ok(ws)
            };
            let Some(mut ws) = open_reported(open_deadline, &opened_tx, open).await else {
                return false;
            };
            drop(permit);
            loop {
                tokio::select! {
                    _ = stop.changed() => break,
                    t = next_text(&mut ws) => match t {
                        Ok(t) => if handle_engine_packet(&mut ws, &t).await.is_err() { return false },
                        Err(_) => return false,
                    }
                }
            }
            let _ = tokio::time::timeout(Duration::from_secs(2), ws.close(None)).await;
            true
        }));
    }
    drop(opened_tx);
    let mut tally = Tally::new();
    let mut opened = 0usize;
    for _ in 0..opts.clients {
        // Every task reports once; the open deadline bounds each handshake.
        let Some(r) = opened_rx.recv().await else { break };
        match r {
            Some(d) => {
                tally.hist.saturating_record(micros(d));
                tally.ops += 1;
                opened += 1;
            }
            None => tally.errors += 1,
        }
    }
    let open_elapsed = start.elapsed();
    tokio::time::sleep(opts.duration).await;
    let rss_after = opts.server_pid.and_then(read_rss_kb);
    let _ = stop_tx.send(true);
    let mut held = 0usize;
    for h in holders {
        held += usize::from(h.await.unwrap_or(false));
    }
    // Sessions that opened but did not last the whole hold count as errors too.
    tally.errors += (opened - held.min(opened)) as u64;
    // Every client has left (and the keep-alive connections of the polling ones are closed): after a
    // short settle, how much of what they cost is still held.
    drop(http);
    tokio::time::sleep(SETTLE).await;
    let rss_left = opts.server_pid.and_then(read_rss_kb);
    let bytes_per_conn = match (rss_before, rss_after) {
        (Some(b), Some(a)) if opened > 0 => json!(((a as f64 - b as f64) * 1024.0 / opened as f64).round()),
        _ => serde_json::Value::Null,
    };
    report(
        opts,
        open_elapsed,
        &tally,
        json!({"rss_before_kb": rss_before, "rss_after_kb": rss_after, "bytes_per_conn": bytes_per_conn,
               "rss_left_kb": rss_left}),
    );
}

/// Connect rate: `clients` workers each loop open + CONNECT + close.
async fn connect_rate(opts: &Opts) {
    let start = Instant::now();
    let end = start + opts.duration;
    let hard = end + GRACE;
    let budget = Arc::new(AtomicUsize::new(if opts.messages == 0 { usize::MAX } else { opts.messages }));
    let url: Arc<str> = ws_url(opts).into();
    let mut tasks = Vec::new();
    for _ in 0..opts.clients {
        let (url, authority, budget) = (url.clone(), opts.authority.clone(), budget.clone());
        tasks.push(tokio::spawn(async move {
            let mut tally = Tally::new();
            while Instant::now() < end
                && budget.fetch_update(Ordering::AcqRel, Ordering::Acquire, |b| b.checked_sub(1)).is_ok()
            {
                let t0 = Instant::now();
                match timeout_at(hard, ws_connect(&url, &authority)).await {
                    Ok(Ok(mut ws)) => {
                        let d = t0.elapsed();
                        // Close: send the close frame and read until the server's close (or the end).
                        let closing = async {
                            let _ = ws.close(None).await;
                            while let Some(Ok(_)) = ws.next().await {}
                        };
                        let _ = timeout_at(hard.min(Instant::now() + Duration::from_secs(2)), closing).await;
                        tally.hist.saturating_record(micros(d));
                        tally.ops += 1;
                    }
                    Ok(Err(e)) => {
                        eprintln!("connect: {e}");
                        tally.errors += 1;
                        tokio::time::sleep(Duration::from_millis(10)).await;
                    }
                    Err(_) => {
                        tally.errors += 1;
                        break;
                    }
                }
            }
            tally
        }));
    }
    let mut total = Tally::new();
    for t in tasks {
        match t.await {
            Ok(t) => total.merge(t),
            Err(_) => total.errors += 1,
        }
    }
    report(opts, start.elapsed(), &total, json!({}));
}

/// Polling echo: each long-polling client POSTs `42["echo",...]` and GETs until the echo comes back.
async fn polling_echo(opts: &Opts) {
    let setup_deadline = Instant::now() + opts.duration + GRACE;
    let sem = Arc::new(Semaphore::new(opts.connect_concurrency));
    let mut opens = Vec::new();
    for _ in 0..opts.clients {
        let (sem, authority, path) = (sem.clone(), opts.authority.clone(), opts.path.clone());
        opens.push(tokio::spawn(async move {
            let _permit = sem.acquire_owned().await.ok()?;
            let open = async {
                let mut p = RawPolling::connect(&authority, &path).await?;
                p.open().await?;
                Ok::<_, String>(p)
            };
            match timeout_at(setup_deadline, open).await {
                Ok(Ok(p)) => Some(p),
                Ok(Err(e)) => {
                    eprintln!("polling open: {e}");
                    None
                }
                Err(_) => None,
            }
        }));
    }
    let mut sessions = Vec::new();
    let mut total = Tally::new();
    for o in opens {
        match o.await.ok().flatten() {
            Some(s) => sessions.push(s),
            None => total.errors += 1,
        }
    }
    let data = payload(opts.size);
    let start = Instant::now();
    let end = start + opts.duration;
    let hard = end + GRACE;
    let mut tasks = Vec::new();
    for mut p in sessions {
        let msg = format!(r#"42["echo","{data}"]"#);
        tasks.push(tokio::spawn(async move {
            let mut tally = Tally::new();
            let deadline = tokio::time::sleep_until(hard);
            tokio::pin!(deadline);
            while Instant::now() < end {
                let round = async {
                    p.post(&msg).await?;
                    loop {
                        if p.get().await?.iter().any(|pk| pk.starts_with(r#"42["echo","#)) {
                            return Ok::<(), String>(());
                        }
                    }
                };
                if !tally.timed(&mut deadline, round).await {
                    break;
                }
            }
            // Leave: Socket.IO DISCONNECT then Engine.IO close.
            let _ = timeout_at(hard, p.post("41\u{1e}1")).await;
            tally
        }));
    }
    for t in tasks {
        match t.await {
            Ok(t) => total.merge(t),
            Err(_) => total.errors += 1,
        }
    }
    report(opts, start.elapsed(), &total, json!({}));
}

/// Soak: waves of `--clients` WebSocket sessions connect, each exchanges `--messages` echo events, and all
/// leave, again and again for `--duration` seconds. The server's RSS (`--server-pid`) is sampled before the
/// first wave, after each wave, and 3 s after the last clients left; one JSON line per wave, then a summary.
async fn soak(opts: &Opts) {
    let rss = || opts.server_pid.and_then(read_rss_kb);
    let baseline = rss();
    let started = Instant::now();
    let end = started + opts.duration;
    let msg: Arc<str> = format!(r#"42["echo","{}"]"#, payload(opts.size)).into();
    let (mut waves, mut sessions, mut exchanges, mut errors, mut peak) = (0u64, 0u64, 0u64, 0u64, baseline);
    while Instant::now() < end {
        let (conns, setup) = open_many(opts, opts.clients, Instant::now() + GRACE).await;
        errors += setup.errors;
        sessions += conns.len() as u64;
        let mut tasks = Vec::with_capacity(conns.len());
        for mut ws in conns {
            let (msg, n) = (msg.clone(), opts.messages);
            tasks.push(tokio::spawn(async move {
                let mut ok = 0u64;
                for _ in 0..n {
                    if ws.send(Message::text(msg.to_string())).await.is_err() {
                        break;
                    }
                    match tokio::time::timeout(Duration::from_secs(10), recv_app(&mut ws)).await {
                        Ok(Ok(t)) if t.starts_with(r#"42["echo","#) => ok += 1,
                        _ => break,
                    }
                }
                let _ = ws.close(None).await;
                ok
            }));
        }
        for t in tasks {
            let ok = t.await.unwrap_or(0);
            exchanges += ok;
            if ok < opts.messages as u64 {
                errors += 1;
            }
        }
        waves += 1;
        let now_rss = rss();
        peak = peak.max(now_rss);
        println!(
            "{}",
            json!({"scenario": "soak-wave", "wave": waves, "elapsed_s": started.elapsed().as_secs_f64(), "rss_kb": now_rss})
        );
    }
    // Let the server notice every close and free the sessions.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let after = rss();
    println!(
        "{}",
        json!({
            "scenario": "soak", "clients_per_wave": opts.clients, "duration_s": started.elapsed().as_secs_f64(),
            "waves": waves, "sessions": sessions, "exchanges": exchanges, "errors": errors,
            "rss_baseline_kb": baseline, "rss_peak_kb": peak, "rss_after_kb": after,
        })
    );
}

fn main() {
    let opts = parse_opts();
    let runtime = if opts.threads == 1 {
        tokio::runtime::Builder::new_current_thread().enable_all().build()
    } else {
        tokio::runtime::Builder::new_multi_thread().worker_threads(opts.threads).enable_all().build()
    }
    .expect("a tokio runtime");
    runtime.block_on(async {
        match opts.scenario.as_str() {
            "echo" => request_reply(&opts, false).await,
            "ack" => request_reply(&opts, true).await,
            "broadcast" | "fanout" => broadcast(&opts).await,
            "storm" => storm(&opts).await,
            "idle" => idle(&opts, false).await,
            "idle-polling" => idle(&opts, true).await,
            "connect" => connect_rate(&opts).await,
            "polling-echo" => polling_echo(&opts).await,
            "soak" => soak(&opts).await,
            _ => usage(),
        }
    });
    // Leftover tasks (connections still closing) are dropped with the runtime.
    runtime.shutdown_timeout(Duration::from_secs(1));
}
