//! # session-bridge
//!
//! Share an express-style HTTP session with the realtime layer. Teams rarely start from scratch: the login
//! lives in an Express app with `express-session`, or in a Rust web app; this crate lets `socketio-server`
//! see the same session, safely.
//!
//! - [`signature`]: the `connect.sid` cookie (`s:` + id + `.` + HMAC-SHA256 base64 without padding,
//!   URI-encoded), verified against a list of secrets in constant time.
//! - [`store`]: the [`SessionStore`] trait, the in-memory store, and the Redis store in connect-redis's
//!   exact format (`sess:<id>`, JSON, TTL from `cookie.expires` or 86400 s) so a Node app and this server
//!   share sessions both ways.
//! - [`SessionBridge`]: an engine middleware that loads (or creates) the session of each handshake, and
//!   the Socket.IO side: a room per session id (so `io.to(session_id).emit(...)` reaches every tab of a
//!   user), `socket.session()` with `reload()`/`save()`, optional reload before each event, a periodic
//!   check that disconnects sockets whose session expired or was destroyed, and [`SessionBridge::logout`].
//!
//! It uses only the public APIs of `engineio-server` (the `Middleware` trait) and `socketio-server`.
//!
//! ```no_run
//! use std::sync::Arc;
//! use session_bridge::{BridgeConfig, MemoryStore, SessionBridge, SocketSessionExt};
//! use socketio_server::{Socket, SocketIo, SocketIoConfig};
//!
//! # async fn run() {
//! let store = MemoryStore::with_sweeper(std::time::Duration::from_secs(60));
//! let bridge = SessionBridge::new(BridgeConfig::new(vec!["keyboard cat".into()], store));
//! let mut config = SocketIoConfig::default();
//! config.engine = config.engine.middleware(bridge.engine_middleware());
//! let io = SocketIo::new(config);
//! bridge.attach(&io.of("/"));
//! io.on_connection(|socket: Socket| async move {
//!     let user = socket.session().and_then(|s| s.get_as::<String>("user"));
//!     let _ = socket.emit("hello", user.unwrap_or_default());
//! });
//! # }
//! ```

#![forbid(unsafe_code)]

mod bridge;
mod data;
pub mod session;
pub mod signature;
pub mod store;
pub mod time;

pub use bridge::{Anonymous, BridgeConfig, OnExpired, SessionBridge, SessionMiddleware, SessionRule, SocketSessionExt};
pub use session::{CookieSettings, Session, SessionData, SessionError};
#[cfg(feature = "redis")]
pub use store::RedisStore;
pub use store::{MemoryStore, SessionStore, StoreError};
