//! The adapter of one namespace in a cluster that speaks socket.io-adapter's `ClusterAdapter` protocol
//! ([`crate::cluster_wire`]), over any [`Bus`]: the sharded Pub/Sub transport today, the streams
//! transport later. It does what the reference's `ClusterAdapter` does: every cluster operation is a
//! message to the namespace's other servers, requests carry a request id and are answered on the
//! requester's own channel, a request waits for `server count - 1` answers (the count from the bus) or the
//! timeout, and a broadcast with acknowledgements gathers every server's client count (zero included) and
//! every client's answer.

use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use socketio_server::adapter::{
    AckUpdate, Adapter, AdapterError, BoxFuture, BroadcastOptions, LocalAdapter, PersistedSession, RestoredSession,
    Room, RoomEvent, SocketInfo,
};
use socketio_server::proto::{Map, Packet, Value};
use tokio::sync::mpsc;

use crate::cluster_wire::{self as cw, Message, message_type as mt};
use crate::requests::{Requests, forward_acks};

/// What the adapter needs from a transport.
pub(crate) trait Bus: Send + Sync + 'static {
    /// Sends a message to the namespace's other servers. `single_room` is the one room a plain broadcast
    /// targets, for a transport that has a channel per room.
    fn publish(&self, nsp: &str, message: &Message, single_room: Option<&Room>) -> Result<(), AdapterError>;
    /// Sends a response to the server `requester`.
    fn publish_response(&self, nsp: &str, requester: &str, message: &Message) -> Result<(), AdapterError>;
    /// The number of servers of the namespace, this one included.
    fn server_count(&self, nsp: &str) -> BoxFuture<'static, Result<usize, AdapterError>>;
    /// Whether the bus reaches the other servers now.
    fn is_connected(&self) -> bool;
    /// How long requests wait for answers.
    fn requests_timeout(&self) -> Duration;
    /// A local room of the namespace got its first socket (`private`: the room is a socket's own).
    fn room_created(&self, _nsp: &str, _room: &Room, _private: bool) {}
    /// A local room of the namespace lost its last socket.
    fn room_deleted(&self, _nsp: &str, _room: &Room) {}
    /// The adapter `uid` is gone (its namespace was removed).
    fn closed(&self, _uid: &str) {}
    /// Whether the bus keeps sessions and the history of broadcasts for every server (connection state
    /// recovery across servers). Such a bus delivers every broadcast it carries, this server's own
    /// included, from its history, in its order: [`Bus::publish_delivered`].
    fn keeps_sessions(&self) -> bool {
        false
    }
    /// Publishes a broadcast that the bus then delivers here too, with its offset; `fallback` delivers it
    /// here without one if it cannot be published.
    fn publish_delivered(
        &self,
        nsp: &str,
        message: &Message,
        fallback: Box<dyn FnOnce() + Send>,
    ) -> Result<(), AdapterError> {
        let result = self.publish(nsp, message, None);
        fallback();
        result
    }
    /// Stores a disconnected socket's session for `max_age`.
    fn persist_session(&self, _nsp: &str, _session: &PersistedSession, _max_age: Duration) {}
    /// Takes back a stored session and what it missed since `offset`.
    fn restore_session(
        &self,
        _nsp: &str,
        _pid: String,
        _offset: String,
    ) -> BoxFuture<'static, Option<RestoredSession>> {
        Box::pin(async { None })
    }
    /// Resolves once what was handed to the bus so far has been written.
    fn flush(&self) -> BoxFuture<'static, ()> {
        Box::pin(async {})
    }
}

/// The adapter of one namespace (see the module documentation).
pub(crate) struct ClusterNsAdapter {
    /// This adapter's id on the bus (one per namespace and server, as the reference's).
    pub(crate) uid: String,
    local: Arc<LocalAdapter>,
    bus: Arc<dyn Bus>,
    requests: Arc<Requests>,
    /// The local rooms the bus was told of, so that it hears of each once.
    rooms: Mutex<std::collections::HashSet<Room>>,
    this: Weak<ClusterNsAdapter>,
}

impl ClusterNsAdapter {
    pub(crate) fn new(bus: Arc<dyn Bus>, local: Arc<LocalAdapter>) -> Arc<ClusterNsAdapter> {
        let adapter = Arc::new_cyclic(|this| ClusterNsAdapter {
            uid: cw::random_id(),
            local: local.clone(),
            bus,
            requests: Arc::default(),
            rooms: Mutex::default(),
            this: this.clone(),
        });
        let weak = Arc::downgrade(&adapter);
        local.on_room_event(move |event| {
            if let Some(a) = weak.upgrade() {
                a.room_event(event);
            }
        });
        adapter
    }

    fn nsp(&self) -> &str {
        self.local.namespace_name()
    }

    fn message(&self, kind: u64, data: Option<Value>) -> Message {
        Message { kind, uid: self.uid.clone(), nsp: self.nsp().to_owned(), data }
    }

    fn room_event(&self, event: RoomEvent<'_>) {
        match event {
            RoomEvent::Joined { room, id } if self.rooms.lock().expect("poisoned").insert(room.clone()) => {
                self.bus.room_created(self.nsp(), room, **room == **id);
            }
            RoomEvent::Left { room, .. }
                if !self.local.has_room(room) && self.rooms.lock().expect("poisoned").remove(room) =>
            {
                self.bus.room_deleted(self.nsp(), room);
            }
            _ => {}
        }
    }

    fn respond(&self, requester: &str, kind: u64, fields: Map) {
        let message = self.message(kind, Some(Value::Object(fields)));
        if let Err(e) = self.bus.publish_response(self.nsp(), requester, &message) {
            tracing::warn!(target: "socketio_redis::adapter", error = %e, "a response could not be sent");
        }
    }

    /// Whether broadcasts are delivered from the bus's history, this server's own included (see
    /// [`Bus::keeps_sessions`]).
    fn delivered_by_bus(&self) -> bool {
        self.local.recovery_enabled() && self.bus.keeps_sessions()
    }

    /// A message from the bus (responses, which some buses deliver here too, go to [`Self::on_response`]);
    /// its data is moved, not copied, into what it asks for. `offset` is its place in the bus's history,
    /// when the bus keeps one: a broadcast carries it to the clients, for connection state recovery.
    pub(crate) fn on_message(&self, message: Message, offset: Option<&str>) {
        let own_broadcast = message.kind == mt::BROADCAST && offset.is_some() && self.delivered_by_bus();
        if (message.uid == self.uid && !own_broadcast) || message.nsp != self.nsp() {
            return;
        }
        if matches!(
            message.kind,
            mt::FETCH_SOCKETS_RESPONSE | mt::SERVER_SIDE_EMIT_RESPONSE | mt::BROADCAST_CLIENT_COUNT | mt::BROADCAST_ACK
        ) {
            return self.on_response(message);
        }
        let Message { kind, uid: requester, data, .. } = message;
        let data = data.unwrap_or(Value::Null);
        let request_id = data.get("requestId").and_then(Value::as_str).map(str::to_owned);
        let opts = crate::wire::opts_from_value(data.get("opts"));
        let rooms = || -> Vec<Room> {
            match data.get("rooms") {
                Some(Value::Array(a)) => a.iter().filter_map(Value::as_str).map(Room::from).collect(),
                _ => Vec::new(),
            }
        };
        let requester = requester.as_str();
        match kind {
            mt::BROADCAST => {
                let Some(packet) = data.get("packet").and_then(|p| cw::packet_from_value(p, self.nsp())) else {
                    return;
                };
                match request_id {
                    None if offset.is_some() => self.local.broadcast_with_offset(packet, &opts, offset),
                    None => self.local.broadcast(packet, &opts),
                    Some(request_id) => self.answer_broadcast_with_ack(requester, request_id, packet, opts),
                }
            }
            mt::SOCKETS_JOIN => self.local.add_sockets(&opts, &rooms()),
            mt::SOCKETS_LEAVE => self.local.del_sockets(&opts, &rooms()),
            mt::DISCONNECT_SOCKETS => {
                self.local.disconnect_sockets(&opts, matches!(data.get("close"), Some(Value::Bool(true))))
            }
            mt::FETCH_SOCKETS => {
                let Some(request_id) = request_id else { return };
                let sockets: Vec<Value> = self
                    .local
                    .fetch_sockets(&opts)
                    .iter()
                    .map(|s| Value::from(serde_json::to_value(s.info()).unwrap_or(serde_json::Value::Null)))
                    .collect();
                let mut fields = Map::new();
                fields.insert("requestId".into(), Value::from(request_id));
                fields.insert("sockets".into(), Value::Array(sockets));
                self.respond(requester, mt::FETCH_SOCKETS_RESPONSE, fields);
            }
            mt::SERVER_SIDE_EMIT => self.answer_server_side_emit(requester, request_id, data.get("packet").cloned()),
            _ => {}
        }
    }

    fn answer_broadcast_with_ack(&self, requester: &str, request_id: String, packet: Packet, opts: BroadcastOptions) {
        let (tx, rx) = mpsc::unbounded_channel();
        let count = self.local.broadcast_with_ack(packet, &opts, tx);
        // Sent even for no client: the requester waits for every server's count.
        let mut fields = Map::new();
        fields.insert("requestId".into(), Value::from(request_id.as_str()));
        fields.insert("clientCount".into(), Value::from(count as u64));
        self.respond(requester, mt::BROADCAST_CLIENT_COUNT, fields);
        let Some(me) = self.this.upgrade() else { return };
        let requester = requester.to_owned();
        let timeout = opts.flags.timeout.unwrap_or(self.bus.requests_timeout());
        forward_acks(rx, count, timeout, move |answer| {
            let mut fields = Map::new();
            fields.insert("requestId".into(), Value::from(request_id.as_str()));
            fields.insert("packet".into(), answer);
            me.respond(&requester, mt::BROADCAST_ACK, fields);
        });
    }

    fn answer_server_side_emit(&self, requester: &str, request_id: Option<String>, packet: Option<Value>) {
        let Some(Value::Array(mut args)) = packet else { return };
        if args.is_empty() {
            return;
        }
        let Some(event) = args.remove(0).as_str().map(str::to_owned) else { return };
        let Some(ns) = self.local.namespace() else { return };
        let Some(fut) = ns.dispatch_server_event(&event, args) else { return };
        let Some(request_id) = request_id else {
            tokio::spawn(fut);
            return;
        };
        let Some(me) = self.this.upgrade() else { return };
        let requester = requester.to_owned();
        tokio::spawn(async move {
            let answer = fut.await.into_iter().next().unwrap_or(Value::Null);
            let mut fields = Map::new();
            fields.insert("requestId".into(), Value::from(request_id));
            fields.insert("packet".into(), answer);
            me.respond(&requester, mt::SERVER_SIDE_EMIT_RESPONSE, fields);
        });
    }

    /// A response to one of this adapter's requests.
    pub(crate) fn on_response(&self, message: Message) {
        if message.nsp != self.nsp() {
            return;
        }
        let data = message.data.unwrap_or(Value::Null);
        let Some(id) = data.get("requestId").and_then(Value::as_str) else { return };
        let answer = || data.get("packet").cloned().unwrap_or(Value::Null);
        match message.kind {
            mt::BROADCAST_CLIENT_COUNT => {
                let n = data.get("clientCount").and_then(Value::as_u64).unwrap_or(0) as usize;
                self.requests.client_count(id, n);
            }
            mt::BROADCAST_ACK => self.requests.client_ack(id, answer()),
            mt::FETCH_SOCKETS_RESPONSE => {
                let sockets = match data.get("sockets") {
                    Some(Value::Array(list)) => list.clone(),
                    _ => Vec::new(),
                };
                self.requests
                    .fetch_answer(id, sockets.into_iter().filter_map(|s| s.deserialize_into::<SocketInfo>().ok()));
            }
            mt::SERVER_SIDE_EMIT_RESPONSE => self.requests.emit_answer(id, answer()),
            _ => {}
        }
    }

    fn publish(&self, kind: u64, data: Map) -> Result<(), AdapterError> {
        self.bus.publish(self.nsp(), &self.message(kind, Some(Value::Object(data))), None)
    }

    fn membership(&self, kind: u64, opts: &BroadcastOptions, rooms: &[Room]) -> Result<(), AdapterError> {
        let mut data = Map::new();
        data.insert("opts".into(), cw::opts_value(opts));
        data.insert("rooms".into(), Value::Array(rooms.iter().map(|r| Value::from(&**r)).collect()));
        self.publish(kind, data)
    }
}

impl Adapter for ClusterNsAdapter {
    fn local(&self) -> &Arc<LocalAdapter> {
        &self.local
    }

    fn is_connected(&self) -> bool {
        self.bus.is_connected()
    }

    fn broadcast(&self, packet: Packet, opts: BroadcastOptions) -> Result<(), AdapterError> {
        let remote = (!opts.flags.local).then(|| {
            let mut data = Map::new();
            data.insert("packet".into(), cw::packet_value(&packet));
            data.insert("opts".into(), cw::opts_value(&opts));
            self.message(mt::BROADCAST, Some(Value::Object(data)))
        });
        if self.delivered_by_bus() {
            // Delivered here too from the bus's history, with its offset, in the history's order.
            let Some(message) = remote else {
                self.local.broadcast_with_offset(packet, &opts, None);
                return Ok(());
            };
            let local = self.local.clone();
            let fallback = Box::new(move || local.broadcast_with_offset(packet, &opts, None));
            return self.bus.publish_delivered(self.nsp(), &message, fallback);
        }
        let single_room = (opts.rooms.len() == 1).then(|| opts.rooms.iter().next().cloned()).flatten();
        self.local.broadcast(packet, &opts);
        match remote {
            Some(message) => self.bus.publish(self.nsp(), &message, single_room.as_ref()),
            None => Ok(()),
        }
    }

    fn broadcast_with_ack(
        &self,
        packet: Packet,
        opts: BroadcastOptions,
        updates: mpsc::UnboundedSender<AckUpdate>,
    ) -> Result<(), AdapterError> {
        let mut remote = Ok(());
        let mut request_id = None;
        if !opts.flags.local {
            let id = cw::random_id();
            let mut data = Map::new();
            data.insert("packet".into(), cw::packet_value(&packet));
            data.insert("requestId".into(), Value::from(id.as_str()));
            data.insert("opts".into(), cw::opts_value(&opts));
            self.requests.ack_request(&id, updates.clone());
            remote = self.publish(mt::BROADCAST, data);
            request_id = Some(id);
        }
        let count = self.local.broadcast_with_ack(packet, &opts, updates.clone());
        let id = match request_id {
            Some(id) if remote.is_ok() => id,
            other => {
                if let Some(id) = other {
                    self.requests.forget(&id);
                }
                let _ = updates.send(AckUpdate::ClientCount(count));
                let _ = updates.send(AckUpdate::CountsComplete);
                return remote;
            }
        };
        self.requests.client_count(&id, count);
        let timeout = opts.flags.timeout.unwrap_or(self.bus.requests_timeout());
        self.requests.expect_counts(id, self.bus.server_count(self.nsp()), timeout);
        Ok(())
    }

    fn fetch_sockets(&self, opts: BroadcastOptions) -> BoxFuture<'_, Result<Vec<SocketInfo>, AdapterError>> {
        Box::pin(async move {
            let local: Vec<SocketInfo> = self.local.fetch_sockets(&opts).iter().map(|s| s.info()).collect();
            if opts.flags.local {
                return Ok(local);
            }
            let servers = self.bus.server_count(self.nsp()).await?;
            if servers <= 1 {
                return Ok(local);
            }
            let request_id = cw::random_id();
            let rx = self.requests.fetch(&request_id, local, servers);
            let mut data = Map::new();
            data.insert("opts".into(), cw::opts_value(&opts));
            data.insert("requestId".into(), Value::from(request_id.as_str()));
            if let Err(e) = self.publish(mt::FETCH_SOCKETS, data) {
                self.requests.forget(&request_id);
                return Err(e);
            }
            let timeout = opts.flags.timeout.unwrap_or(self.bus.requests_timeout());
            self.requests.wait(&request_id, rx, timeout, self.nsp()).await
        })
    }

    fn add_sockets(&self, opts: BroadcastOptions, rooms: Vec<Room>) -> BoxFuture<'_, Result<(), AdapterError>> {
        self.local.add_sockets(&opts, &rooms);
        let result = if opts.flags.local { Ok(()) } else { self.membership(mt::SOCKETS_JOIN, &opts, &rooms) };
        Box::pin(async move { result })
    }

    fn del_sockets(&self, opts: BroadcastOptions, rooms: Vec<Room>) -> BoxFuture<'_, Result<(), AdapterError>> {
        self.local.del_sockets(&opts, &rooms);
        let result = if opts.flags.local { Ok(()) } else { self.membership(mt::SOCKETS_LEAVE, &opts, &rooms) };
        Box::pin(async move { result })
    }

    fn disconnect_sockets(&self, opts: BroadcastOptions, close: bool) -> BoxFuture<'_, Result<(), AdapterError>> {
        let result = if opts.flags.local {
            Ok(())
        } else {
            let mut data = Map::new();
            data.insert("opts".into(), cw::opts_value(&opts));
            data.insert("close".into(), Value::Bool(close));
            self.publish(mt::DISCONNECT_SOCKETS, data)
        };
        self.local.disconnect_sockets(&opts, close);
        Box::pin(async move { result })
    }

    fn server_side_emit(
        &self,
        args: Vec<Value>,
        ack: Option<Duration>,
    ) -> BoxFuture<'_, Result<Vec<Vec<Value>>, AdapterError>> {
        Box::pin(async move {
            let mut data = Map::new();
            data.insert("packet".into(), Value::Array(args));
            let Some(timeout) = ack else {
                self.publish(mt::SERVER_SIDE_EMIT, data)?;
                return Ok(Vec::new());
            };
            let servers = self.bus.server_count(self.nsp()).await?;
            if servers <= 1 {
                return Ok(Vec::new());
            }
            let request_id = cw::random_id();
            let rx = self.requests.server_side_emit(&request_id, servers - 1);
            data.insert("requestId".into(), Value::from(request_id.as_str()));
            if let Err(e) = self.publish(mt::SERVER_SIDE_EMIT, data) {
                self.requests.forget(&request_id);
                return Err(e);
            }
            self.requests.wait(&request_id, rx, timeout, self.nsp()).await
        })
    }

    fn server_count(&self) -> BoxFuture<'_, Result<usize, AdapterError>> {
        self.bus.server_count(self.nsp())
    }

    fn persist_session(&self, session: PersistedSession) {
        match self.local.recovery_max_age() {
            Some(max_age) if self.bus.keeps_sessions() => self.bus.persist_session(self.nsp(), &session, max_age),
            _ => {
                let PersistedSession { id, pid, rooms, data, .. } = session;
                self.local.persist_session(id, pid, rooms, data);
            }
        }
    }

    fn restore_session(&self, pid: String, offset: String) -> BoxFuture<'_, Option<RestoredSession>> {
        if self.bus.keeps_sessions() {
            return self.bus.restore_session(self.nsp(), pid, offset);
        }
        let restored = self.local.restore_session(&pid, &offset);
        Box::pin(async move { restored.map(|(session, missed)| RestoredSession::new(session, missed)) })
    }

    fn shares_sessions(&self) -> bool {
        self.bus.keeps_sessions()
    }

    fn flush(&self) -> BoxFuture<'_, ()> {
        self.bus.flush()
    }

    fn close(&self) {
        self.bus.closed(&self.uid);
    }
}
