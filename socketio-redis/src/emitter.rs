//! An emitter: publish to a cluster from any Rust process, without a Socket.IO server (like
//! `@socket.io/redis-emitter`, which uses the adapter's format with the uid `emitter`).

use std::collections::HashSet;

use redis::aio::ConnectionManager;
use socketio_server::adapter::{AdapterError, BroadcastOptions, Room};
use socketio_server::proto::Packet;
use socketio_server::{IntoArgs, IntoRooms, Value};

use crate::wire::{self, Channels, request_type as rt};

/// Publishes broadcasts and cluster-wide operations to the servers of one namespace.
#[derive(Clone)]
pub struct RedisEmitter {
    conn: ConnectionManager,
    key: String,
    nsp: String,
    opts: BroadcastOptions,
}

impl std::fmt::Debug for RedisEmitter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisEmitter")
            .field("key", &self.key)
            .field("nsp", &self.nsp)
            .field("opts", &self.opts)
            .finish()
    }
}

const UID: &str = "emitter";

impl RedisEmitter {
    /// Connects to Redis; emits to the main namespace with the default key `socket.io`.
    pub async fn connect(url: &str) -> Result<RedisEmitter, AdapterError> {
        let client = redis::Client::open(url).map_err(|e| AdapterError(e.to_string()))?;
        let conn = ConnectionManager::new(client).await.map_err(|e| AdapterError(e.to_string()))?;
        Ok(RedisEmitter { conn, key: "socket.io".into(), nsp: "/".into(), opts: BroadcastOptions::default() })
    }

    /// Uses another channel prefix.
    pub fn with_key(mut self, key: impl Into<String>) -> Self {
        self.key = key.into();
        self
    }

    /// The same emitter for another namespace.
    pub fn of(&self, nsp: &str) -> Self {
        RedisEmitter { nsp: nsp.to_owned(), opts: BroadcastOptions::default(), ..self.clone() }
    }

    /// Targets these rooms too.
    pub fn to(&self, rooms: impl IntoRooms) -> Self {
        let mut next = self.clone();
        next.opts.rooms.extend(rooms.into_rooms());
        next
    }

    /// Excludes these rooms.
    pub fn except(&self, rooms: impl IntoRooms) -> Self {
        let mut next = self.clone();
        next.opts.except.extend(rooms.into_rooms());
        next
    }

    /// Makes the broadcast volatile.
    pub fn volatile(&self) -> Self {
        let mut next = self.clone();
        next.opts.flags.volatile = true;
        next
    }

    fn channels(&self) -> Channels {
        Channels::new(&self.key, &self.nsp, UID)
    }

    async fn publish(&self, channel: String, payload: Vec<u8>) -> Result<(), AdapterError> {
        let mut conn = self.conn.clone();
        redis::cmd("PUBLISH")
            .arg(channel)
            .arg(payload)
            .query_async::<()>(&mut conn)
            .await
            .map_err(|e| AdapterError(e.to_string()))
    }

    /// Emits an event to the targeted sockets of every server.
    pub async fn emit(&self, event: &str, args: impl IntoArgs) -> Result<(), AdapterError> {
        let args = args.into_args().map_err(|e| AdapterError(format!("the arguments cannot be serialized: {e}")))?;
        let packet = Packet::event(self.nsp.as_str(), event, args, None);
        let payload = wire::encode_broadcast(UID, &packet, &self.opts);
        self.publish(self.channels().broadcast_channel(&self.opts), payload).await
    }

    async fn request(&self, req: serde_json::Value) -> Result<(), AdapterError> {
        self.publish(self.channels().request, req.to_string().into_bytes()).await
    }

    fn opts_json(&self) -> serde_json::Value {
        let list = |set: &HashSet<Room>| wire::rooms_json(&set.iter().cloned().collect::<Vec<_>>());
        serde_json::json!({ "rooms": list(&self.opts.rooms), "except": list(&self.opts.except) })
    }

    /// Makes the targeted sockets join rooms.
    pub async fn sockets_join(&self, rooms: impl IntoRooms) -> Result<(), AdapterError> {
        let rooms = rooms.into_rooms();
        self.request(serde_json::json!({ "uid": UID, "type": rt::REMOTE_JOIN, "opts": self.opts_json(), "rooms": wire::rooms_json(&rooms) })).await
    }

    /// Makes the targeted sockets leave rooms.
    pub async fn sockets_leave(&self, rooms: impl IntoRooms) -> Result<(), AdapterError> {
        let rooms = rooms.into_rooms();
        self.request(serde_json::json!({ "uid": UID, "type": rt::REMOTE_LEAVE, "opts": self.opts_json(), "rooms": wire::rooms_json(&rooms) })).await
    }

    /// Disconnects the targeted sockets.
    pub async fn disconnect_sockets(&self, close: bool) -> Result<(), AdapterError> {
        self.request(
            serde_json::json!({ "uid": UID, "type": rt::REMOTE_DISCONNECT, "opts": self.opts_json(), "close": close }),
        )
        .await
    }

    /// Emits an event to the servers themselves (handled by `Namespace::on_server_event`).
    pub async fn server_side_emit(&self, event: &str, args: impl IntoArgs) -> Result<(), AdapterError> {
        let mut data = vec![Value::from(event)];
        data.extend(args.into_args().map_err(|e| AdapterError(format!("the arguments cannot be serialized: {e}")))?);
        self.request(
            serde_json::json!({ "uid": UID, "type": rt::SERVER_SIDE_EMIT, "data": Value::Array(data).into_json() }),
        )
        .await
    }
}
