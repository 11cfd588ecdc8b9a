//! The README's axum example, compiled with the workspace: `cargo run -p socketio-server --example axum`
//! serves it on port 3000.

use axum::{Router, routing::get};
use socketio_server::{Event, HandlerError, Socket, SocketIo};
use std::net::SocketAddr;

#[derive(serde::Serialize)]
struct Moved {
    id: String,
    x: i64,
    y: i64,
}

#[tokio::main]
async fn main() {
    let io = SocketIo::default();
    io.on_connection(|socket: Socket| async move {
        socket.join("players");
        // The closure is cloned per event: what it captures moves into the future without a clone by hand.
        socket.on("move", |s: Socket, ev: Event| async move {
            let (x, y): (i64, i64) = ev.args_as()?;
            let io = s.io().ok_or("server gone")?;
            io.to("players").emit("moved", &Moved { id: s.id().into(), x, y })?; // anything Serialize
            Ok::<_, HandlerError>(())
        });
    });
    io.on_handler_error(|socket: &Socket, event: &str, err: &HandlerError| eprintln!("{} {event}: {err}", socket.id()));
    let app = Router::new().route("/health", get(|| async { "ok" })).route_service("/socket.io/", io.service());
    let listener = tokio::net::TcpListener::bind("0.0.0.0:3000").await.unwrap();
    axum::serve(listener, app.into_make_service_with_connect_info::<SocketAddr>()).await.unwrap();
}
