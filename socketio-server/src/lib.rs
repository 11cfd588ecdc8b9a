//! # socketio-server
//!
//! A Socket.IO v5 server that the official clients (Node, browser, Python) cannot tell from the reference
//! Node server: namespaces (static and dynamic), rooms, events with JSON and binary arguments,
//! acknowledgements both ways (with timeouts, and gathered from many clients for a broadcast), immutable
//! broadcast operators, connection and per-packet middleware, catch-all listeners, the reference's
//! disconnect reasons, connection state recovery, and an [`Adapter`] trait (in memory by default) that a
//! cluster adapter implements to reach other servers.
//!
//! It runs on `engineio-server` (the transports) and `socketio-proto` (the packets); see `ARCHITECTURE.md`.
//!
//! A chat server:
//!
//! ```no_run
//! use socketio_server::{SocketIo, Socket, Event};
//!
//! # async fn run() -> std::io::Result<()> {
//! let io = SocketIo::default();
//! io.on_connection(|socket: Socket| async move {
//!     socket.on("join", |socket: Socket, ev: Event| async move {
//!         let room: String = ev.arg(0).unwrap_or_default();
//!         socket.join(room.as_str());
//!     });
//!     socket.on("message", |socket: Socket, ev: Event| async move {
//!         let (room, text): (String, String) = ev.args_as().unwrap_or_default();
//!         let _ = socket.to(room.as_str()).emit("message", (socket.id(), text));
//!     });
//! });
//! io.serve("0.0.0.0:3000".parse().unwrap()).await
//! # }
//! ```

#![forbid(unsafe_code)]

pub mod adapter;
mod client;
pub mod config;
mod dispatch;
mod emit;
pub mod event;
pub mod handler;
pub mod handshake;
mod listeners;
pub mod namespace;
pub mod operators;
mod reason;
mod run;
mod server;
pub mod socket;
mod types;

pub use adapter::{Adapter, AdapterFactory, BroadcastFlags, BroadcastOptions, InMemoryAdapter, LocalAdapter, Room};
pub use config::{RecoveryConfig, SocketIoConfig};
pub use engineio_server::{self, EngineConfig, http};
pub use event::{AckError, AckSender, BroadcastAckError, EmitError, Event, IntoArgs};
pub use handler::{HandlerError, HandlerResult};
pub use handshake::Handshake;
pub use namespace::{ConnectError, Namespace, ParentNamespace};
pub use operators::{BroadcastOperator, IntoRooms, RemoteSocket};
pub use server::SocketIo;
pub use socket::{DisconnectReason, ListenerId, Socket, SocketEmitter};
pub use socketio_proto::{self as proto, Value};
