//! Adapters: who is in which room, and how a broadcast reaches its sockets, here and on other servers.
//!
//! [`LocalAdapter`] is the in-memory core every namespace has: the room index of its local sockets, local
//! delivery (a broadcast is encoded once and the same bytes are queued for every recipient), and, when
//! connection state recovery is on, the buffer of recent broadcasts and the sessions of disconnected
//! sockets. [`Adapter`] is what a namespace calls; its default methods act on the local core only, so the
//! in-memory adapter ([`InMemoryAdapter`]) is just that. A cluster adapter (the Redis adapter) implements
//! the methods that must also reach other servers (`broadcast`, `broadcast_with_ack`, `fetch_sockets`,
//! `add_sockets`, `del_sockets`, `disconnect_sockets`, `server_side_emit`, `server_count`) by doing the local
//! part through [`LocalAdapter`] and publishing the rest. Connection state recovery goes through
//! [`Adapter::persist_session`] and [`Adapter::restore_session`] too: this server's memory by default, or
//! storage every server shares (the Redis streams adapter), which [`Adapter::shares_sessions`] tells.

use std::collections::HashSet;
use std::sync::{Arc, Mutex, RwLock, Weak};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use socketio_proto::{Packet, PacketType, Value};
use tokio::sync::mpsc;

use crate::handshake::Handshake;
use crate::namespace::NamespaceInner;
use crate::socket::Socket;
pub use crate::types::{BoxFuture, Room};
use crate::types::{SocketId, random_id};

/// Makes the adapter of a namespace from its local core.
pub type AdapterFactory = Arc<dyn Fn(Arc<LocalAdapter>) -> Arc<dyn Adapter> + Send + Sync>;

/// Flags of a broadcast.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct BroadcastFlags {
    /// Only this server's sockets (no cluster publish).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub local: bool,
    /// Drop the packet for sockets whose transport cannot take it right now.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub volatile: bool,
    /// The compress flag (kept for the wire format; the WebSocket compresses by its permessage-deflate
    /// threshold alone).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub compress: Option<bool>,
    /// Acknowledgement timeout.
    #[serde(default, skip_serializing_if = "Option::is_none", with = "opt_millis")]
    pub timeout: Option<Duration>,
}

mod opt_millis {
    use serde::{Deserialize, Deserializer, Serializer};
    use std::time::Duration;

    pub(super) fn serialize<S: Serializer>(d: &Option<Duration>, s: S) -> Result<S::Ok, S::Error> {
        match d {
            Some(d) => s.serialize_u64(d.as_millis() as u64),
            None => s.serialize_none(),
        }
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
        Ok(Option::<f64>::deserialize(d)?.map(|ms| Duration::from_millis(ms.max(0.0) as u64)))
    }
}

/// Which sockets a broadcast or a server-wide operation targets.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BroadcastOptions {
    /// Sockets in any of these rooms; all sockets of the namespace when empty.
    pub rooms: HashSet<Room>,
    /// Minus the sockets in any of these rooms.
    pub except: HashSet<Room>,
    /// Flags.
    pub flags: BroadcastFlags,
}

/// What a broadcast with acknowledgements reports, in any order.
#[derive(Debug, Clone, PartialEq)]
pub enum AckUpdate {
    /// One server delivered the packet to this many clients.
    ClientCount(usize),
    /// Every server that will report a count has reported it.
    CountsComplete,
    /// One client acknowledged with these arguments.
    Response(Vec<Value>),
    /// A client that was sent the packet disconnected without acknowledging.
    Lost,
}

/// A socket as seen by `fetch_sockets`, on this server or another.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SocketInfo {
    /// The socket id.
    pub id: String,
    /// Its handshake.
    pub handshake: Handshake,
    /// Its rooms.
    pub rooms: Vec<String>,
    /// Its `data`.
    pub data: Value,
}

/// An error of an adapter operation that involves other servers.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct AdapterError(pub String);

/// The adapter of a namespace. See the module documentation.
pub trait Adapter: Send + Sync + 'static {
    /// The local core.
    fn local(&self) -> &Arc<LocalAdapter>;

    /// Whether the adapter can reach the other servers now (a cluster adapter: its broker connection is
    /// up); the in-memory adapter always can. Read by [`crate::SocketIo::health`].
    fn is_connected(&self) -> bool {
        true
    }

    /// Adds a local socket to rooms.
    fn add_all(&self, id: &SocketId, rooms: &[Room]) {
        self.local().add_all(id, rooms);
    }

    /// Removes a local socket from a room.
    fn del(&self, id: &SocketId, room: &Room) {
        self.local().del(id, room);
    }

    /// Removes a local socket from every room.
    fn del_all(&self, id: &SocketId) {
        self.local().del_all(id);
    }

    /// Sends a packet to the targeted sockets, here and (unless `local`) on other servers.
    fn broadcast(&self, packet: Packet, opts: BroadcastOptions) -> Result<(), AdapterError> {
        self.local().broadcast(packet, &opts);
        Ok(())
    }

    /// Sends a packet that asks for acknowledgements; reports counts and responses on `updates`.
    fn broadcast_with_ack(
        &self,
        packet: Packet,
        opts: BroadcastOptions,
        updates: mpsc::UnboundedSender<AckUpdate>,
    ) -> Result<(), AdapterError> {
        let count = self.local().broadcast_with_ack(packet, &opts, updates.clone());
        let _ = updates.send(AckUpdate::ClientCount(count));
        let _ = updates.send(AckUpdate::CountsComplete);
        Ok(())
    }

    /// The targeted sockets, here and on other servers.
    fn fetch_sockets(&self, opts: BroadcastOptions) -> BoxFuture<'_, Result<Vec<SocketInfo>, AdapterError>> {
        let infos = self.local().socket_infos(&opts);
        Box::pin(async move { Ok(infos) })
    }

    /// Makes the targeted sockets join rooms.
    fn add_sockets(&self, opts: BroadcastOptions, rooms: Vec<Room>) -> BoxFuture<'_, Result<(), AdapterError>> {
        self.local().add_sockets(&opts, &rooms);
        Box::pin(async { Ok(()) })
    }

    /// Makes the targeted sockets leave rooms.
    fn del_sockets(&self, opts: BroadcastOptions, rooms: Vec<Room>) -> BoxFuture<'_, Result<(), AdapterError>> {
        self.local().del_sockets(&opts, &rooms);
        Box::pin(async { Ok(()) })
    }

    /// Disconnects the targeted sockets.
    fn disconnect_sockets(&self, opts: BroadcastOptions, close: bool) -> BoxFuture<'_, Result<(), AdapterError>> {
        self.local().disconnect_sockets(&opts, close);
        Box::pin(async { Ok(()) })
    }

    /// Emits an event to the other servers; with `ack`, waits for one response per server (at most
    /// `timeout`). A single server has no other servers: the result is empty.
    fn server_side_emit(
        &self,
        args: Vec<Value>,
        ack: Option<Duration>,
    ) -> BoxFuture<'_, Result<Vec<Vec<Value>>, AdapterError>> {
        let _ = (args, ack);
        Box::pin(async { Ok(Vec::new()) })
    }

    /// The number of servers of the cluster (1 for the in-memory adapter).
    fn server_count(&self) -> BoxFuture<'_, Result<usize, AdapterError>> {
        Box::pin(async { Ok(1) })
    }

    /// Keeps the state of a socket that disconnected for a recoverable reason (connection state recovery).
    /// The default keeps it in this server's memory; an adapter that shares sessions across servers
    /// (see [`Adapter::shares_sessions`]) stores it where every server finds it.
    fn persist_session(&self, session: PersistedSession) {
        let PersistedSession { id, pid, rooms, data, .. } = session;
        self.local().persist_session(id, pid, rooms, data);
    }

    /// Takes back a persisted session, with the packets it missed since `offset`; `None` if the session is
    /// unknown or expired, or the offset is no longer known (the client then gets a new session).
    fn restore_session(&self, pid: String, offset: String) -> BoxFuture<'_, Option<RestoredSession>> {
        let restored = self.local().restore_session(&pid, &offset);
        Box::pin(async move { restored.map(|(session, missed)| RestoredSession::new(session, missed)) })
    }

    /// Whether sessions and the offsets of broadcasts are shared by every server (so a client recovers on
    /// whichever server it reconnects to). Then a socket's own emits go through the cluster too, as the
    /// reference's do, so that they get an offset every server knows. False for the in-memory adapter.
    fn shares_sessions(&self) -> bool {
        false
    }

    /// Resolves once what was handed to the adapter so far (broadcasts, persisted sessions) has left this
    /// server. [`crate::SocketIo::close`] waits for it before closing the connections.
    fn flush(&self) -> BoxFuture<'_, ()> {
        Box::pin(async {})
    }

    /// Called when the namespace goes away.
    fn close(&self) {}
}

/// A session taken back by [`Adapter::restore_session`].
#[non_exhaustive]
pub struct RestoredSession {
    /// The session.
    pub session: PersistedSession,
    /// The packets it missed, each with its offset as last argument, in order.
    pub missed: Vec<Packet>,
    /// Held until the socket is in its rooms and can receive broadcasts: an adapter that delivers
    /// broadcasts from a task of its own holds that delivery back meanwhile, so that every packet after the
    /// missed ones reaches the socket live, none twice and none lost.
    pub hold: Option<Box<dyn std::any::Any + Send>>,
}

impl RestoredSession {
    /// A restored session and the packets it missed.
    pub fn new(session: PersistedSession, missed: Vec<Packet>) -> Self {
        RestoredSession { session, missed, hold: None }
    }

    /// Holds `guard` until the socket can receive broadcasts (see [`RestoredSession::hold`]).
    pub fn holding(mut self, guard: impl std::any::Any + Send) -> Self {
        self.hold = Some(Box::new(guard));
        self
    }
}

impl std::fmt::Debug for RestoredSession {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RestoredSession")
            .field("session", &self.session)
            .field("missed", &self.missed.len())
            .field("hold", &self.hold.is_some())
            .finish()
    }
}

/// The default adapter: this server only.
pub struct InMemoryAdapter {
    local: Arc<LocalAdapter>,
}

impl InMemoryAdapter {
    /// Wraps the local core.
    pub fn new(local: Arc<LocalAdapter>) -> Self {
        InMemoryAdapter { local }
    }
}

impl Adapter for InMemoryAdapter {
    fn local(&self) -> &Arc<LocalAdapter> {
        &self.local
    }
}

mod index;
mod recovery;

use index::{Index, Members};
pub use recovery::PersistedSession;
use recovery::Recovery;
/// The in-memory core of a namespace's adapter. See the module documentation.
pub struct LocalAdapter {
    ns: Weak<NamespaceInner>,
    name: String,
    index: RwLock<Index>,
    recovery: Option<Mutex<Recovery>>,
    /// Told of every local socket joining or leaving a room (see [`LocalAdapter::on_room_event`]).
    room_listeners: RwLock<Vec<RoomListener>>,
    has_room_listeners: std::sync::atomic::AtomicBool,
}

/// A local socket joined or left a room (the reference adapter's `join-room` and `leave-room` events).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum RoomEvent<'a> {
    /// The socket `id` joined `room`.
    Joined {
        /// The room.
        room: &'a Room,
        /// The socket.
        id: &'a SocketId,
    },
    /// The socket `id` left `room` (by leaving it, or by disconnecting).
    Left {
        /// The room.
        room: &'a Room,
        /// The socket.
        id: &'a SocketId,
    },
}

type RoomListener = Arc<dyn Fn(RoomEvent<'_>) + Send + Sync>;

impl std::fmt::Debug for LocalAdapter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LocalAdapter").field("recovery", &self.recovery.is_some()).finish_non_exhaustive()
    }
}

impl LocalAdapter {
    pub(crate) fn new(ns: Weak<NamespaceInner>, name: &str, recovery: Option<Duration>) -> Self {
        LocalAdapter {
            ns,
            name: name.to_owned(),
            index: RwLock::default(),
            recovery: recovery.map(|max_age| Mutex::new(Recovery::new(max_age))),
            room_listeners: RwLock::default(),
            has_room_listeners: std::sync::atomic::AtomicBool::new(false),
        }
    }

    /// Calls `listener` whenever a local socket joins or leaves a room of this namespace, after the change
    /// (outside the room index's lock). A socket's own room counts, as in the reference.
    pub fn on_room_event(&self, listener: impl Fn(RoomEvent<'_>) + Send + Sync + 'static) {
        self.room_listeners.write().expect("poisoned").push(Arc::new(listener));
        self.has_room_listeners.store(true, std::sync::atomic::Ordering::Release);
    }

    fn notify_rooms(&self, id: &SocketId, joined: &[Room], left: &[Room]) {
        let listeners = self.room_listeners.read().expect("poisoned").clone();
        for l in &listeners {
            for room in joined {
                crate::run::contain(|| l(RoomEvent::Joined { room, id }));
            }
            for room in left {
                crate::run::contain(|| l(RoomEvent::Left { room, id }));
            }
        }
    }

    fn listening(&self) -> bool {
        self.has_room_listeners.load(std::sync::atomic::Ordering::Acquire)
    }

    /// The namespace's name.
    pub fn namespace_name(&self) -> &str {
        &self.name
    }

    /// The namespace, while it exists.
    pub fn namespace(&self) -> Option<crate::namespace::Namespace> {
        self.ns.upgrade().map(|inner| crate::namespace::Namespace { inner })
    }

    /// Adds a socket to rooms.
    pub fn add_all(&self, id: &SocketId, rooms: &[Room]) {
        let mut joined = Vec::new();
        {
            let mut idx = self.index.write().expect("room index poisoned");
            // Only a member of a larger room needs its socket (a socket's own room does not): the namespace's
            // map is read then, under the index's lock (the lock order of a broadcast).
            let find = |id: &SocketId| {
                let ns = self.ns.upgrade()?;
                ns.sockets.read().expect("socket map poisoned").get(id).cloned()
            };
            for room in rooms {
                if idx.rooms.entry(room.clone()).or_insert(Members::Empty).insert(id, find) && self.listening() {
                    joined.push(room.clone());
                }
            }
            let joined_rooms = idx.sids.entry(id.clone()).or_default();
            for room in rooms {
                if !joined_rooms.contains(room) {
                    joined_rooms.push(room.clone());
                }
            }
        }
        if !joined.is_empty() {
            self.notify_rooms(id, &joined, &[]);
        }
    }

    /// Removes a socket from a room.
    pub fn del(&self, id: &SocketId, room: &Room) {
        let mut left = false;
        {
            let mut idx = self.index.write().expect("room index poisoned");
            if let Some(members) = idx.rooms.get_mut(room) {
                left = members.remove(id);
                if members.is_empty() {
                    idx.rooms.remove(room);
                }
            }
            if let Some(rooms) = idx.sids.get_mut(id) {
                rooms.retain(|r| r != room);
            }
        }
        if left && self.listening() {
            self.notify_rooms(id, &[], std::slice::from_ref(room));
        }
    }

    /// Removes a socket from every room.
    pub fn del_all(&self, id: &SocketId) {
        let mut left = Vec::new();
        {
            let mut idx = self.index.write().expect("room index poisoned");
            let Some(rooms) = idx.sids.remove(id) else { return };
            for room in rooms {
                if let Some(members) = idx.rooms.get_mut(&room) {
                    if members.remove(id) && self.listening() {
                        left.push(room.clone());
                    }
                    if members.is_empty() {
                        idx.rooms.remove(&room);
                    }
                }
            }
        }
        if !left.is_empty() {
            self.notify_rooms(id, &[], &left);
        }
    }

    /// Keeps `socket` with its id in the larger rooms it is in (`Some`, when it enters its namespace's map),
    /// or forgets it there (`None`, once it has left that map), so that broadcasts to those rooms reach it
    /// from then on, or no longer.
    pub(crate) fn set_socket(&self, id: &SocketId, socket: Option<&Socket>) {
        let mut guard = self.index.write().expect("room index poisoned");
        let idx = &mut *guard;
        let Some(rooms) = idx.sids.get(id) else { return };
        for room in rooms {
            if let Some(members) = idx.rooms.get_mut(room) {
                members.set_socket(id, socket);
            }
        }
    }

    /// The rooms of a local socket.
    pub fn socket_rooms(&self, id: &SocketId) -> Option<HashSet<Room>> {
        self.index.read().expect("room index poisoned").sids.get(id).map(|rooms| rooms.iter().cloned().collect())
    }

    /// Whether a local socket is in `room`.
    pub fn has_room(&self, room: &str) -> bool {
        self.index.read().expect("room index poisoned").rooms.contains_key(room)
    }

    /// Every room that has a local socket.
    pub fn rooms(&self) -> HashSet<Room> {
        self.index.read().expect("room index poisoned").rooms.keys().cloned().collect()
    }

    /// What [`Adapter::fetch_sockets`] answers for the sockets of this server.
    pub fn socket_infos(&self, opts: &BroadcastOptions) -> Vec<SocketInfo> {
        self.fetch_sockets(opts).iter().map(Socket::info).collect()
    }

    /// Calls `send` for each local socket targeted by `opts`, once each, with its engine session, under the
    /// room index's and the socket map's read locks: a broadcast does not collect (and count references to)
    /// its recipients first. `send` must not join, leave or disconnect sockets (it queues frames, which
    /// never does).
    fn for_each_target(
        &self,
        ns: &NamespaceInner,
        opts: &BroadcastOptions,
        mut send: impl FnMut(&Socket, &engineio_server::Socket),
    ) {
        let idx = self.index.read().expect("room index poisoned");
        let excluded = |id: &SocketId| {
            !opts.except.is_empty()
                && idx.sids.get(id).is_some_and(|rooms| rooms.iter().any(|r| opts.except.contains(r)))
        };
        let sockets = ns.sockets.read().expect("socket map poisoned");
        if opts.rooms.is_empty() {
            sockets.iter().filter(|(id, _)| !excluded(id)).for_each(|(_, s)| send(s, s.engine()));
            return;
        }
        if opts.rooms.len() == 1 {
            // One room: its members are distinct already.
            let Some(members) = opts.rooms.iter().next().and_then(|room| idx.rooms.get(room)) else { return };
            for m in members.iter() {
                if let Some((s, engine)) = m.target(&sockets)
                    && !excluded(m.id())
                {
                    send(s, engine);
                }
            }
            return;
        }
        let mut seen: HashSet<&SocketId> = HashSet::new();
        for room in &opts.rooms {
            let Some(members) = idx.rooms.get(room) else { continue };
            for m in members.iter() {
                if seen.insert(m.id())
                    && !excluded(m.id())
                    && let Some((s, engine)) = m.target(&sockets)
                {
                    send(s, engine);
                }
            }
        }
    }

    /// The local sockets targeted by `opts`, each once.
    pub fn fetch_sockets(&self, opts: &BroadcastOptions) -> Vec<Socket> {
        let Some(ns) = self.ns.upgrade() else { return Vec::new() };
        let mut out = Vec::new();
        self.for_each_target(&ns, opts, |s, _| out.push(s.clone()));
        out
    }

    /// Delivers a packet to the targeted local sockets. The packet is encoded once.
    pub fn broadcast(&self, mut packet: Packet, opts: &BroadcastOptions) {
        let Some(ns) = self.ns.upgrade() else { return };
        packet.nsp.clone_from(&ns.name);
        if let Some(recovery) = &self.recovery
            && self.takes_offset(&packet, opts)
        {
            let offset = random_id();
            if let Some(Value::Array(args)) = &mut packet.data {
                args.push(Value::from(offset.as_str()));
            }
            let now = tokio::time::Instant::now().into_std();
            recovery.lock().expect("recovery buffer poisoned").record(offset, packet.clone(), opts.clone(), now);
        }
        self.deliver(&ns, &packet, opts);
    }

    /// Whether a broadcast carries an offset for connection state recovery: recovery is on, and it is a
    /// plain event (no acknowledgement), not volatile.
    pub fn takes_offset(&self, packet: &Packet, opts: &BroadcastOptions) -> bool {
        self.recovery.is_some()
            && matches!(packet.kind, PacketType::Event | PacketType::BinaryEvent)
            && packet.id.is_none()
            && !opts.flags.volatile
    }

    /// Delivers a packet to the targeted local sockets with `offset` as its last argument when it takes one
    /// (see [`LocalAdapter::takes_offset`]), without keeping it here: for an adapter that keeps the history
    /// of broadcasts elsewhere (a Redis stream, whose entry ids are the offsets).
    pub fn broadcast_with_offset(&self, mut packet: Packet, opts: &BroadcastOptions, offset: Option<&str>) {
        let Some(ns) = self.ns.upgrade() else { return };
        packet.nsp.clone_from(&ns.name);
        if let Some(offset) = offset
            && self.takes_offset(&packet, opts)
            && let Some(Value::Array(args)) = &mut packet.data
        {
            args.push(Value::from(offset));
        }
        self.deliver(&ns, &packet, opts);
    }

    /// Encodes `packet` once and queues it to every local socket `opts` targets.
    fn deliver(&self, ns: &NamespaceInner, packet: &Packet, opts: &BroadcastOptions) {
        let frames = ns.encode(packet);
        self.for_each_target(ns, opts, |_, engine| {
            let _ = crate::emit::send_shared_frames(engine, frames.as_slice(), opts.flags.volatile);
        });
    }

    /// Delivers a packet that asks for acknowledgements to the targeted local sockets; each response goes
    /// to `updates`. A packet without an ack id (as other servers send them) gets one from the namespace.
    /// Returns the number of sockets it was sent to.
    pub fn broadcast_with_ack(
        &self,
        mut packet: Packet,
        opts: &BroadcastOptions,
        updates: mpsc::UnboundedSender<AckUpdate>,
    ) -> usize {
        let Some(ns) = self.ns.upgrade() else { return 0 };
        packet.nsp.clone_from(&ns.name);
        let id = *packet.id.get_or_insert_with(|| ns.next_ack_id());
        let frames = ns.encode(&packet);
        let mut count = 0;
        for socket in self.fetch_sockets(opts) {
            let tx = updates.clone();
            socket.register_ack(
                id,
                Box::new(move |res| {
                    let _ = tx.send(match res {
                        Ok(args) => AckUpdate::Response(args),
                        Err(_) => AckUpdate::Lost,
                    });
                }),
            );
            if socket.send_frames(frames.as_slice(), opts.flags.volatile).is_ok() {
                count += 1;
            } else {
                socket.cancel_ack(id);
            }
        }
        count
    }

    /// Makes the targeted local sockets join rooms.
    pub fn add_sockets(&self, opts: &BroadcastOptions, rooms: &[Room]) {
        for s in self.fetch_sockets(opts) {
            self.add_all(s.id_arc(), rooms);
        }
    }

    /// Makes the targeted local sockets leave rooms.
    pub fn del_sockets(&self, opts: &BroadcastOptions, rooms: &[Room]) {
        for s in self.fetch_sockets(opts) {
            for r in rooms {
                self.del(s.id_arc(), r);
            }
        }
    }

    /// Disconnects the targeted local sockets.
    pub fn disconnect_sockets(&self, opts: &BroadcastOptions, close: bool) {
        for s in self.fetch_sockets(opts) {
            s.disconnect(close);
        }
    }

    /// Whether connection state recovery is on.
    pub fn recovery_enabled(&self) -> bool {
        self.recovery.is_some()
    }

    /// How long a disconnected socket's state is kept, when recovery is on.
    pub fn recovery_max_age(&self) -> Option<Duration> {
        self.recovery.as_ref().map(|r| r.lock().expect("recovery buffer poisoned").max_age())
    }

    /// Keeps the state of a socket that disconnected for a recoverable reason.
    pub fn persist_session(&self, id: SocketId, pid: String, rooms: Vec<Room>, data: Value) {
        let Some(recovery) = &self.recovery else { return };
        let now = tokio::time::Instant::now().into_std();
        recovery.lock().expect("recovery buffer poisoned").persist(id, pid, rooms, data, now);
    }

    /// Takes back a persisted session, with the packets it missed since `offset` (filtered by its rooms).
    /// `None` if the session is unknown or expired, or the offset is no longer buffered.
    pub fn restore_session(&self, pid: &str, offset: &str) -> Option<(PersistedSession, Vec<Packet>)> {
        let now = tokio::time::Instant::now().into_std();
        self.recovery.as_ref()?.lock().expect("recovery buffer poisoned").restore(pid, offset, now)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_socket_joins_each_room_once_and_leaves_it() {
        let adapter = LocalAdapter::new(Weak::new(), "/", None);
        let (a, b): (SocketId, SocketId) = ("a".into(), "b".into());
        let room = |r: &str| Room::from(r);
        adapter.add_all(&a, &[room("a"), room("all"), room("all")]);
        adapter.add_all(&a, &[room("x"), room("a")]);
        adapter.add_all(&b, &[room("b"), room("all")]);
        let rooms_of = |id: &SocketId| {
            let mut v: Vec<String> = adapter.socket_rooms(id).unwrap().iter().map(|r| r.to_string()).collect();
            v.sort();
            v
        };
        assert_eq!(rooms_of(&a), ["a", "all", "x"]);
        assert_eq!(adapter.index.read().unwrap().sids[&a].len(), 3, "no room twice");
        adapter.del(&a, &room("all"));
        assert_eq!(rooms_of(&a), ["a", "x"]);
        assert!(adapter.has_room("all"), "b is still in it");
        adapter.del(&b, &room("all"));
        assert!(!adapter.has_room("all"), "an emptied room is gone");
        adapter.del_all(&a);
        assert!(adapter.socket_rooms(&a).is_none());
        assert!(!adapter.has_room("a") && !adapter.has_room("x"));
        assert!(adapter.has_room("b"));
    }
}
