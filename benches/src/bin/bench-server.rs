//! The benchmark scenario server, on `socketio-server` with default options (path `/socket.io`).
//!
//! Behaviour on the main namespace `/`:
//! - on connection the socket joins the room `all`;
//! - `echo` (...args) → emit `echo` back to the sender with the same arguments;
//! - `ack` (...args) → acknowledge with the same arguments;
//! - `broadcast` (...args) → `io.to("all").emit("broadcast", ...args)` (the sender included).
//!
//! Flags: `--port N` (default 3000, 0 picks one), `--threads N` (tokio worker threads, default 1, so the
//! server can be pinned to one core with `taskset`), `--host ADDR` (default 127.0.0.1),
//! `--ping-interval MS` / `--ping-timeout MS` (Engine.IO heartbeat, default 25000 / 20000),
//! `--per-message-deflate` (accept WebSocket compression, threshold 1024 bytes; off by default),
//! `--deflate-no-context-takeover` (the same, the server asking for no context takeover both ways),
//! `--recovery` (connection state recovery with its defaults, for the reconnect storm), `--heap-stats`
//! (built with the `heap-stats` feature: live heap bytes and allocations on stderr every second).
//! Prints `listening on http://ADDR` once bound, then serves until killed.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use socketio_server::extract::Args;
use socketio_server::{AckSender, Socket, SocketIo, SocketIoConfig, Value};

#[cfg(feature = "heap-stats")]
#[path = "../heap.rs"]
mod heap;

#[cfg(all(feature = "jemalloc", not(feature = "heap-stats")))]
#[global_allocator]
static ALLOC: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

#[cfg(feature = "heap-stats")]
#[global_allocator]
static ALLOC: heap::Counting = heap::Counting;

/// With the `heap-stats` feature: prints `heap live_bytes=N allocs=N` to stderr every second.
fn spawn_heap_stats() {
    #[cfg(feature = "heap-stats")]
    std::thread::spawn(|| {
        loop {
            let (bytes, allocs) = heap::live();
            eprintln!("heap live_bytes={bytes} allocs={allocs} classes{}", heap::classes());
            std::thread::sleep(Duration::from_secs(1));
        }
    });
    #[cfg(not(feature = "heap-stats"))]
    {
        eprintln!("--heap-stats needs the heap-stats feature (cargo build --features heap-stats)");
        std::process::exit(2);
    }
}

fn usage() -> ! {
    eprintln!(
        "usage: bench-server [--port N] [--threads N] [--host ADDR] [--ping-interval MS] [--ping-timeout MS] [--per-message-deflate] [--deflate-no-context-takeover] [--recovery] [--heap-stats]"
    );
    std::process::exit(2);
}

fn main() {
    // With RUST_LOG set, the log goes to stderr through tracing's fmt subscriber (what it costs is measured
    // by compare.sh's `ours-info`); without it no subscriber is installed.
    if let Ok(filter) = tracing_subscriber::EnvFilter::try_from_default_env() {
        tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).init();
    }
    let mut port = 3000u16;
    let mut threads = 1usize;
    let mut host: IpAddr = [127, 0, 0, 1].into();
    let mut config = SocketIoConfig::default();
    let mut args = std::env::args().skip(1);
    let ms = |v: Option<String>| Duration::from_millis(v.and_then(|v| v.parse().ok()).unwrap_or_else(|| usage()));
    while let Some(flag) = args.next() {
        match flag.as_str() {
            "--port" => port = args.next().and_then(|v| v.parse().ok()).unwrap_or_else(|| usage()),
            "--threads" => {
                threads = args.next().and_then(|v| v.parse().ok()).filter(|&n| n > 0).unwrap_or_else(|| usage())
            }
            "--host" => host = args.next().and_then(|v| v.parse().ok()).unwrap_or_else(|| usage()),
            "--ping-interval" => config.engine.ping_interval = ms(args.next()),
            "--ping-timeout" => config.engine.ping_timeout = ms(args.next()),
            "--per-message-deflate" => {
                config.engine.per_message_deflate = Some(socketio_server::engineio_server::PerMessageDeflate::default())
            }
            "--deflate-no-context-takeover" => {
                config.engine.per_message_deflate = Some({
                    let mut c = socketio_server::engineio_server::PerMessageDeflate::default();
                    c.server_no_context_takeover = true;
                    c.client_no_context_takeover = true;
                    c
                })
            }
            "--recovery" => config.connection_state_recovery = Some(socketio_server::RecoveryConfig::default()),
            "--heap-stats" => spawn_heap_stats(),
            "-h" | "--help" => usage(),
            other => {
                eprintln!("unknown flag {other}");
                usage();
            }
        }
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(threads)
        .enable_all()
        .build()
        .expect("a tokio runtime");
    runtime.block_on(async move {
        let io = SocketIo::new(config);
        // The handlers as an application writes them: typed arguments, emit errors returned.
        io.on_connection(|socket: Socket| async move {
            socket.join("all");
            socket.on("echo", |s: Socket, Args(a): Args<Vec<Value>>| async move { s.emit("echo", a) });
            socket.on("ack", |Args(a): Args<Vec<Value>>, ack: AckSender| async move { ack.send(a) });
            socket.on("broadcast", |io: SocketIo, Args(a): Args<Vec<Value>>| async move {
                io.to("all").emit("broadcast", a)
            });
        });
        let (addr, task) = io.listen(SocketAddr::new(host, port)).await.expect("bind");
        println!("listening on http://{addr}");
        let _ = task.await;
    });
}
