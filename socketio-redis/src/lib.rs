//! # socketio-redis
//!
//! Scale-out over Redis, in the wire format of `@socket.io/redis-adapter` 8.x (classic pub/sub), so Rust
//! and Node servers can serve one cluster and a team can move to Rust one node at a time.
//!
//! - [`RedisCluster`]: this server's connection to the bus; its [`RedisCluster::factory`] makes a
//!   [`RedisAdapter`] for every namespace (`SocketIoConfig::adapter`). Broadcasts, `fetch_sockets`,
//!   `sockets_join`/`sockets_leave`/`disconnect_sockets`, `server_side_emit` (with acks), broadcasts with
//!   acks (client counts and per-client acks) and the server count (`PUBSUB NUMSUB`) all reach the other
//!   servers.
//! - [`RedisEmitter`]: publish to a cluster from any Rust process, without a server.
//!
//! Supported mode: the classic adapter (PUBLISH/PSUBSCRIBE). The sharded adapter (Redis 7 `SSUBSCRIBE`)
//! is not implemented. Connection state recovery does not cross servers (the reference adapter has none).
//!
//! ```no_run
//! use socketio_redis::{RedisAdapterConfig, RedisCluster};
//! use socketio_server::{SocketIo, SocketIoConfig};
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let cluster = RedisCluster::connect("redis://127.0.0.1:6379", RedisAdapterConfig::default()).await?;
//! let io = SocketIo::with_adapter(SocketIoConfig::default(), cluster.factory());
//! io.to("room").emit("hello", "every server")?;
//! # Ok(()) }
//! ```

#![forbid(unsafe_code)]

mod adapter;
mod emitter;
mod wire;

pub use adapter::{RedisAdapter, RedisAdapterConfig, RedisCluster};
pub use emitter::RedisEmitter;
