//! The README's axum example, compiled with the workspace: `cargo run -p socketio-server --example axum`
//! serves it on port 3000.

use axum::{Router, routing::get};
use socketio_server::extract::{Data, State};
use socketio_server::{AckSender, EmitError, HandlerError, Socket, SocketIo};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};

#[derive(serde::Deserialize)]
struct Move {
    x: i64,
    y: i64,
}

#[derive(serde::Serialize)]
struct Moved {
    id: String,
    x: i64,
    y: i64,
    seq: u64,
}

#[derive(Default)]
struct Counter(AtomicU64);

#[tokio::main]
async fn main() {
    tracing_subscriber::fmt().with_env_filter(tracing_subscriber::EnvFilter::from_default_env()).init(); // RUST_LOG
    let io = SocketIo::default();
    io.set_state(Counter::default());
    io.on_connection(|socket: Socket| async move {
        socket.join("players");
        // Typed arguments: the payload, the application state, the ack handle; `?` on emits.
        socket.on("move", |s: Socket, Data(m): Data<Move>, State(n): State<Counter>, ack: AckSender| async move {
            let seq = n.0.fetch_add(1, Ordering::Relaxed);
            s.to("players").emit("moved", &Moved { id: s.id().into(), x: m.x, y: m.y, seq })?; // anything Serialize
            ack.send(seq);
            Ok::<_, EmitError>(())
        });
    });
    io.on_handler_error(|socket: &Socket, event: &str, err: &HandlerError| eprintln!("{} {event}: {err}", socket.id()));
    let app = Router::new().route("/health", get(|| async { "ok" })).route_service("/socket.io/", io.service());
    let listener = tokio::net::TcpListener::bind("0.0.0.0:3000").await.unwrap();
    axum::serve(listener, app.into_make_service_with_connect_info::<SocketAddr>()).await.unwrap();
}
