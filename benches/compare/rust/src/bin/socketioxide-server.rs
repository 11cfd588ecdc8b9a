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

#[path = "../common.rs"]
mod common;

use hyper_util::rt::TokioIo;
use serde_json::Value;
use socketioxide::SocketIo;
use socketioxide::extract::{AckSender, Data, SocketRef};
use tokio::net::TcpListener;

fn main() {
    let args = common::parse_args("socketioxide-server");
    let runtime = common::runtime(args.threads);
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

        let listener = TcpListener::bind(args.addr).await.expect("bind");
        let addr = listener.local_addr().expect("local address");
        common::announce(addr);
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
