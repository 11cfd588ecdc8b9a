//! The benchmark scenario server on socketioxide (default options, path `/socket.io`), served by hyper 1
//! over a plain tokio `TcpListener` (one hyper HTTP/1 connection task per TCP connection, with upgrades
//! for WebSocket).
//!
//! Behaviour on the main namespace `/`, the same as `bench-server`'s:
//! - on connection the socket joins the room `all`;
//! - `echo` (data) → emit `echo` back to the sender with the same data;
//! - `ack` (data) → acknowledge with the same data;
//! - `broadcast` (data) → `io.to("all").emit("broadcast", data)` (the sender included).
//!
//! The data is taken as one `serde_json::Value` (loadgen sends a single argument).
//!
//! Flags: `--port N` (default 3000, 0 picks one), `--threads N` (tokio worker threads, default 1),
//! `--host ADDR` (default 127.0.0.1). Prints `listening on http://ADDR` once bound, then serves until
//! killed.

use std::io::Write;
use std::net::{IpAddr, SocketAddr};

use hyper_util::rt::TokioIo;
use serde_json::Value;
use socketioxide::SocketIo;
use socketioxide::extract::{AckSender, Data, SocketRef};
use tokio::net::TcpListener;

fn usage() -> ! {
    eprintln!("usage: socketioxide-server [--port N] [--threads N] [--host ADDR]");
    std::process::exit(2);
}

fn main() {
    let mut port = 3000u16;
    let mut threads = 1usize;
    let mut host: IpAddr = [127, 0, 0, 1].into();
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        match flag.as_str() {
            "--port" => port = args.next().and_then(|v| v.parse().ok()).unwrap_or_else(|| usage()),
            "--threads" => {
                threads = args.next().and_then(|v| v.parse().ok()).filter(|&n| n > 0).unwrap_or_else(|| usage())
            }
            "--host" => host = args.next().and_then(|v| v.parse().ok()).unwrap_or_else(|| usage()),
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
        let (svc, io) = SocketIo::new_svc();
        io.ns("/", async |s: SocketRef| {
            s.join("all");
            s.on("echo", async |s: SocketRef, Data(data): Data<Value>| {
                let _ = s.emit("echo", &data);
            });
            s.on("ack", async |ack: AckSender, Data(data): Data<Value>| {
                let _ = ack.send(&data);
            });
            s.on("broadcast", async |io: SocketIo, Data(data): Data<Value>| {
                let _ = io.to("all").emit("broadcast", &data).await;
            });
        });

        let listener = TcpListener::bind(SocketAddr::new(host, port)).await.expect("bind");
        let addr = listener.local_addr().expect("local address");
        let mut out = std::io::stdout();
        let _ = writeln!(out, "listening on http://{addr}");
        let _ = out.flush();
        loop {
            let stream = match listener.accept().await {
                Ok((stream, _)) => stream,
                // Out of descriptors and the like: back off a little rather than spin.
                Err(_) => {
                    tokio::time::sleep(std::time::Duration::from_millis(5)).await;
                    continue;
                }
            };
            let _ = stream.set_nodelay(true);
            let svc = svc.clone();
            tokio::spawn(async move {
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), svc)
                    .with_upgrades()
                    .await;
            });
        }
    });
}
