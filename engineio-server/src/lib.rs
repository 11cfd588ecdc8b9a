//! # engineio-server
//!
//! An Engine.IO v4 server on tokio and hyper 1: HTTP long-polling, WebSocket and the upgrade
//! between them, with every option of the reference Node server (same names, defaults and meaning), the
//! `io` cookie for sticky sessions, CORS with credentials, an Origin check that also guards the WebSocket
//! upgrade, the `initial_headers`/`headers` hooks, an asynchronous `allow_request`, and request middlewares.
//!
//! The protocol itself (packets, payloads, heartbeats, upgrade and close rules) lives in the sans-IO
//! [`engineio_proto`] crate; this crate carries its frames over HTTP and WebSocket. The WebSocket framing
//! is [`engineio_proto::websocket`] (permessage-deflate included) under a small tokio wrapper whose buffers
//! are sized for idle connections: they grow for a large message and are given back after it. Each session
//! runs on its own
//! task that owns the session's state machine and WebSockets (see `ARCHITECTURE.md`).
//!
//! The layer above implements [`Handler`]: `socketio-server` does, and so can an application that
//! speaks Engine.IO directly. An echo server:
//!
//! ```no_run
//! use engineio_server::{Connection, Engine, EngineConfig, Handler, Message, Socket};
//!
//! struct Echo;
//! impl Handler for Echo {
//!     fn on_open(&self, socket: &Socket) -> Box<dyn Connection> {
//!         Box::new(EchoConnection(socket.clone()))
//!     }
//! }
//! struct EchoConnection(Socket);
//! impl Connection for EchoConnection {
//!     fn on_message(&mut self, message: Message) {
//!         let _ = self.0.send(message);
//!     }
//! }
//!
//! # async fn run() -> std::io::Result<()> {
//! let engine = Engine::new(EngineConfig::default(), Echo);
//! engine.serve("127.0.0.1:3000".parse().unwrap()).await
//! # }
//! ```
//!
//! [`Engine::service`] is a hyper and a tower `Service`, so the endpoint also mounts in axum or any tower
//! stack.

#![forbid(unsafe_code)]

mod clock;
pub mod config;
pub mod cookie;
pub mod cors;
mod driver;
mod engine;
mod mailbox;
mod polling;
mod response;
mod service;
mod sessions;
mod shared;
mod socket;
mod upgrade;
mod ws;

pub use config::{BoxError, BoxFuture, ConnectionError, EngineConfig, HttpCompression, Middleware, PerMessageDeflate};
pub use cookie::{CookieOptions, SameSite};
pub use cors::{CorsOptions, CorsOrigin};
pub use engine::Engine;
pub use engineio_proto::{self as proto, CloseReason, Frame, Message, TransportKind};
/// The `http` crate, whose types (`request::Parts`, `HeaderMap`, ...) are in this API.
pub use http;
pub use response::ResponseBody;
pub use service::{EngineService, serve_listener};
pub use shared::RemoteAddr;
pub use socket::{Connection, Handler, SendError, Socket};
