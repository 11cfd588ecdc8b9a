//! A socket: one client in one namespace.

use std::collections::{HashMap, HashSet};
use std::future::Future;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock, RwLock};
use std::task::Context;
use std::time::Duration;

use engineio_proto::Frame;
use engineio_server::SendError;
use serde::Serialize;
use serde::de::DeserializeOwned;
use socketio_proto::{ArgsPacket, Frames, Packet, PacketType, Value};
use tokio::sync::oneshot;

use crate::adapter::{BoxFuture, BroadcastOptions, Room, SocketInfo};
use crate::client::ClientShared;
use crate::event::{AckError, AckSender, EmitError, Event, IntoArgs, check_reserved};
use crate::handshake::Handshake;
use crate::namespace::Namespace;
use crate::operators::{BroadcastOperator, IntoRooms};

/// A socket id: 20 random URL-safe characters, distinct from the Engine.IO session id.
pub type SocketId = Arc<str>;

/// Why a socket disconnected (the reference's reasons).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum DisconnectReason {
    /// The connection failed.
    TransportError,
    /// The client closed the connection.
    TransportClose,
    /// The connection was closed by the server's Engine.IO layer.
    ForcedClose,
    /// No pong in time.
    PingTimeout,
    /// The client sent something that is not Socket.IO.
    ParseError,
    /// The server is closing.
    ServerShuttingDown,
    /// The server closed the whole connection (`disconnect(true)`, connect timeout).
    ForcedServerClose,
    /// The client left the namespace.
    ClientNamespaceDisconnect,
    /// The server removed the socket from the namespace (`disconnect(false)`).
    ServerNamespaceDisconnect,
    /// The client did not read what was sent to it and its queue filled up (not a reference reason).
    BufferFull,
}

impl DisconnectReason {
    /// The reference's name for the reason.
    pub fn as_str(self) -> &'static str {
        match self {
            DisconnectReason::TransportError => "transport error",
            DisconnectReason::TransportClose => "transport close",
            DisconnectReason::ForcedClose => "forced close",
            DisconnectReason::PingTimeout => "ping timeout",
            DisconnectReason::ParseError => "parse error",
            DisconnectReason::ServerShuttingDown => "server shutting down",
            DisconnectReason::ForcedServerClose => "forced server close",
            DisconnectReason::ClientNamespaceDisconnect => "client namespace disconnect",
            DisconnectReason::ServerNamespaceDisconnect => "server namespace disconnect",
            DisconnectReason::BufferFull => "buffer full",
        }
    }

    pub(crate) fn from_engine(reason: engineio_proto::CloseReason) -> Self {
        use engineio_proto::CloseReason as C;
        match reason {
            C::TransportClose => DisconnectReason::TransportClose,
            C::PingTimeout => DisconnectReason::PingTimeout,
            C::ForcedClose => DisconnectReason::ForcedClose,
            C::ParseError => DisconnectReason::ParseError,
            C::BufferFull => DisconnectReason::BufferFull,
            _ => DisconnectReason::TransportError,
        }
    }
}

impl std::fmt::Display for DisconnectReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

pub(crate) type AckCallback = Box<dyn FnOnce(Result<Vec<Value>, AckError>) + Send>;
type EventHandler = Arc<dyn Fn(Socket, Event) -> BoxFuture<'static, ()> + Send + Sync>;
type PacketMiddleware = Arc<dyn Fn(Socket, Event) -> BoxFuture<'static, Result<Event, Value>> + Send + Sync>;
type AnyListener = Arc<dyn Fn(&Socket, &str, &[Value]) + Send + Sync>;
type ErrorHandler = Arc<dyn Fn(Socket, Value) + Send + Sync>;
type DisconnectHandler = Arc<dyn Fn(Socket, DisconnectReason) -> BoxFuture<'static, ()> + Send + Sync>;

/// Identifies a catch-all listener, to remove it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ListenerId(u64);

static NEXT_LISTENER: AtomicU64 = AtomicU64::new(1);

#[derive(Default)]
struct Listeners {
    /// Looked up for every event, so hashed with foldhash rather than SipHash.
    events: HashMap<String, EventHandler, foldhash::fast::RandomState>,
    any_incoming: Vec<(ListenerId, AnyListener)>,
    any_outgoing: Vec<(ListenerId, AnyListener)>,
    packet_middlewares: Vec<PacketMiddleware>,
    error: Vec<ErrorHandler>,
    disconnecting: Vec<DisconnectHandler>,
    disconnect: Vec<DisconnectHandler>,
}

pub(crate) struct SocketInner {
    id: SocketId,
    pid: Option<String>,
    ns: Namespace,
    client: Arc<ClientShared>,
    /// Built from the connection's request on first use: most sockets never look at it.
    handshake: OnceLock<Box<Handshake>>,
    pending_handshake: PendingHandshake,
    recovered: bool,
    listeners: RwLock<Listeners>,
    /// Whether `listeners.any_outgoing` has any, so that an emit need not look when there is none.
    has_outgoing: AtomicBool,
    acks: Mutex<HashMap<u64, AckCallback>>,
    connected: AtomicBool,
    data: Mutex<Value>,
    extensions: Mutex<http::Extensions>,
}

/// One client in one namespace. Cheap to clone; usable from any task.
#[derive(Clone)]
pub struct Socket {
    inner: Arc<SocketInner>,
}

impl std::fmt::Debug for Socket {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Socket").field("id", &self.id()).field("nsp", &self.namespace_name()).finish()
    }
}

/// What a socket keeps to build its [`Handshake`] when it is first asked for.
pub(crate) struct PendingHandshake {
    pub(crate) auth: Value,
    pub(crate) at: std::time::SystemTime,
}

/// A random 20-character URL-safe id, as the reference's `base64id`.
pub(crate) fn random_id() -> String {
    engineio_proto::handshake::sid_from_bytes(rand::random())
}

fn send_error(e: SendError) -> EmitError {
    match e {
        SendError::Full => EmitError::QueueFull,
        _ => EmitError::Disconnected,
    }
}

/// Runs a future to completion: first polled here, so handlers that finish at once run inline and in
/// order; one that waits is spawned to finish on the runtime. A panic in it ends it there (see
/// [`contain`]).
pub(crate) fn run_detached(fut: BoxFuture<'static, ()>) {
    use futures_util::FutureExt as _;
    let mut fut = std::panic::AssertUnwindSafe(fut).catch_unwind().map(|_| ());
    let mut cx = Context::from_waker(std::task::Waker::noop());
    if fut.poll_unpin(&mut cx).is_pending() {
        tokio::spawn(fut);
    }
}

/// Runs application code (a handler, a listener, a middleware): a panic in it ends that call and no more.
/// The panic hook has already reported it; the socket, its session and the server go on (no lock is held
/// across application code, so none is poisoned). `None` if it panicked.
pub(crate) fn contain<R>(f: impl FnOnce() -> R) -> Option<R> {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)).ok()
}

/// Calls a handler and runs the future it returns with [`run_detached`]; a panic in either is contained.
pub(crate) fn run_handler(f: impl FnOnce() -> BoxFuture<'static, ()>) {
    if let Some(fut) = contain(f) {
        run_detached(fut);
    }
}

impl Socket {
    pub(crate) fn new(
        ns: Namespace,
        client: Arc<ClientShared>,
        id: SocketId,
        pid: Option<String>,
        handshake: PendingHandshake,
        recovered: bool,
        data: Value,
    ) -> Socket {
        Socket {
            inner: Arc::new(SocketInner {
                id,
                pid,
                ns,
                client,
                handshake: OnceLock::new(),
                pending_handshake: handshake,
                recovered,
                listeners: RwLock::default(),
                has_outgoing: AtomicBool::new(false),
                acks: Mutex::default(),
                connected: AtomicBool::new(false),
                data: Mutex::new(data),
                extensions: Mutex::default(),
            }),
        }
    }

    /// The socket id.
    pub fn id(&self) -> &str {
        &self.inner.id
    }

    pub(crate) fn id_arc(&self) -> &SocketId {
        &self.inner.id
    }

    /// The private id used by connection state recovery (when it is on).
    pub fn pid(&self) -> Option<&str> {
        self.inner.pid.as_deref()
    }

    /// The namespace.
    pub fn namespace(&self) -> &Namespace {
        &self.inner.ns
    }

    /// The namespace's name.
    pub fn namespace_name(&self) -> &str {
        self.inner.ns.name()
    }

    /// The handshake.
    pub fn handshake(&self) -> &Handshake {
        let inner = &self.inner;
        inner.handshake.get_or_init(|| {
            let p = &inner.pending_handshake;
            Box::new(Handshake::new(inner.client.engine_socket.request(), p.auth.clone(), p.at))
        })
    }

    /// The HTTP request that opened the connection (with the extensions set by engine middlewares).
    pub fn request(&self) -> &http::request::Parts {
        self.inner.client.engine_socket.request()
    }

    /// The Engine.IO session id of the underlying connection.
    pub fn engine_id(&self) -> &str {
        self.inner.client.engine_socket.sid()
    }

    /// The current transport.
    pub fn transport(&self) -> engineio_server::TransportKind {
        self.inner.client.engine_socket.transport()
    }

    /// Whether this socket's state was restored by connection state recovery.
    pub fn recovered(&self) -> bool {
        self.inner.recovered
    }

    /// Whether the socket is connected to its namespace.
    pub fn connected(&self) -> bool {
        self.inner.connected.load(Ordering::Acquire)
    }

    /// The socket's `data` (shared with other servers by `fetch_sockets`, restored by recovery).
    pub fn data(&self) -> Value {
        self.inner.data.lock().expect("poisoned").clone()
    }

    /// Replaces `data`.
    pub fn set_data(&self, data: impl Into<Value>) {
        *self.inner.data.lock().expect("poisoned") = data.into();
    }

    /// `data`, deserialized.
    pub fn data_as<T: DeserializeOwned>(&self) -> Result<T, serde_json::Error> {
        self.data().deserialize_into()
    }

    /// Replaces `data` with a serialized value.
    pub fn set_data_as<T: Serialize>(&self, data: &T) -> Result<(), serde_json::Error> {
        self.set_data(Value::from_serialize(data)?);
        Ok(())
    }

    /// Typed per-socket state that stays on this server (not serialized).
    pub fn extensions(&self) -> std::sync::MutexGuard<'_, http::Extensions> {
        self.inner.extensions.lock().expect("poisoned")
    }

    /// The rooms the socket is in (always including its own id).
    pub fn rooms(&self) -> HashSet<Room> {
        self.inner.ns.adapter().local().socket_rooms(&self.inner.id).unwrap_or_default()
    }

    /// Joins rooms.
    pub fn join(&self, rooms: impl IntoRooms) {
        self.inner.ns.adapter().add_all(&self.inner.id, &rooms.into_rooms());
    }

    /// Leaves a room.
    pub fn leave(&self, room: &str) {
        self.inner.ns.adapter().del(&self.inner.id, &Room::from(room));
    }

    /// Handles an event. Handlers finishing at once run in the order events arrive.
    pub fn on<F, Fut>(&self, event: &str, handler: F)
    where
        F: Fn(Socket, Event) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        self.listeners().events.insert(event.to_owned(), Arc::new(move |s, e| Box::pin(handler(s, e))));
    }

    /// Removes an event's handler.
    pub fn off(&self, event: &str) {
        self.listeners().events.remove(event);
    }

    /// Adds a catch-all listener for incoming events, called before the event's handler.
    pub fn on_any(&self, listener: impl Fn(&Socket, &str, &[Value]) + Send + Sync + 'static) -> ListenerId {
        let id = ListenerId(NEXT_LISTENER.fetch_add(1, Ordering::Relaxed));
        self.listeners().any_incoming.push((id, Arc::new(listener)));
        id
    }

    /// Adds a catch-all listener for incoming events, before the others.
    pub fn prepend_any(&self, listener: impl Fn(&Socket, &str, &[Value]) + Send + Sync + 'static) -> ListenerId {
        let id = ListenerId(NEXT_LISTENER.fetch_add(1, Ordering::Relaxed));
        self.listeners().any_incoming.insert(0, (id, Arc::new(listener)));
        id
    }

    /// Removes an incoming catch-all listener (`None`: all of them).
    pub fn off_any(&self, id: Option<ListenerId>) {
        let mut l = self.listeners();
        match id {
            Some(id) => l.any_incoming.retain(|(i, _)| *i != id),
            None => l.any_incoming.clear(),
        }
    }

    /// Adds a catch-all listener for outgoing events (emits from this socket).
    pub fn on_any_outgoing(&self, listener: impl Fn(&Socket, &str, &[Value]) + Send + Sync + 'static) -> ListenerId {
        let id = ListenerId(NEXT_LISTENER.fetch_add(1, Ordering::Relaxed));
        self.listeners().any_outgoing.push((id, Arc::new(listener)));
        self.inner.has_outgoing.store(true, Ordering::Release);
        id
    }

    /// Adds an outgoing catch-all listener before the others.
    pub fn prepend_any_outgoing(
        &self,
        listener: impl Fn(&Socket, &str, &[Value]) + Send + Sync + 'static,
    ) -> ListenerId {
        let id = ListenerId(NEXT_LISTENER.fetch_add(1, Ordering::Relaxed));
        self.listeners().any_outgoing.insert(0, (id, Arc::new(listener)));
        self.inner.has_outgoing.store(true, Ordering::Release);
        id
    }

    /// Removes an outgoing catch-all listener (`None`: all of them).
    pub fn off_any_outgoing(&self, id: Option<ListenerId>) {
        let mut l = self.listeners();
        match id {
            Some(id) => l.any_outgoing.retain(|(i, _)| *i != id),
            None => l.any_outgoing.clear(),
        }
        self.inner.has_outgoing.store(!l.any_outgoing.is_empty(), Ordering::Release);
    }

    /// Adds a per-packet middleware: it sees every incoming event before its handler and may change it;
    /// `Err(value)` drops the event and reports `value` to the [`Socket::on_error`] handlers.
    pub fn use_middleware<F, Fut>(&self, middleware: F)
    where
        F: Fn(Socket, Event) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<Event, Value>> + Send + 'static,
    {
        self.listeners().packet_middlewares.push(Arc::new(move |s, e| Box::pin(middleware(s, e))));
    }

    /// Handles errors reported by per-packet middlewares.
    pub fn on_error(&self, handler: impl Fn(Socket, Value) + Send + Sync + 'static) {
        self.listeners().error.push(Arc::new(handler));
    }

    /// Runs when the socket is about to disconnect; its rooms are still readable.
    pub fn on_disconnecting<F, Fut>(&self, handler: F)
    where
        F: Fn(Socket, DisconnectReason) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        self.listeners().disconnecting.push(Arc::new(move |s, r| Box::pin(handler(s, r))));
    }

    /// Runs when the socket has disconnected.
    pub fn on_disconnect<F, Fut>(&self, handler: F)
    where
        F: Fn(Socket, DisconnectReason) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        self.listeners().disconnect.push(Arc::new(move |s, r| Box::pin(handler(s, r))));
    }

    fn listeners(&self) -> std::sync::RwLockWriteGuard<'_, Listeners> {
        self.inner.listeners.write().expect("poisoned")
    }

    /// Emits an event to this client.
    pub fn emit(&self, event: &str, args: impl IntoArgs) -> Result<(), EmitError> {
        self.emit_event(event, args.into_args(), false)
    }

    fn emit_event(&self, event: &str, args: Vec<Value>, volatile: bool) -> Result<(), EmitError> {
        check_reserved(event)?;
        if !self.connected() {
            return Err(EmitError::Disconnected);
        }
        self.notify_outgoing(event, &args);
        let local = self.inner.ns.adapter().local();
        if local.recovery_enabled() && !volatile {
            // Through the adapter, so the packet gets an offset and is buffered for recovery.
            let packet = Packet::event(self.namespace_name(), event, args, None);
            let opts =
                BroadcastOptions { rooms: HashSet::from([self.inner.id.clone()]), ..BroadcastOptions::default() };
            local.broadcast(packet, &opts);
            return Ok(());
        }
        self.send_args(ArgsPacket::Event { name: event, ack_id: None }, &args, volatile)
    }

    /// Emits an event and waits for the client's acknowledgement (until it comes or the socket
    /// disconnects; see [`Socket::timeout`]).
    pub async fn emit_with_ack(&self, event: &str, args: impl IntoArgs) -> Result<Vec<Value>, AckError> {
        self.emitter().emit_with_ack(event, args).await
    }

    /// Emits with an acknowledgement timeout.
    pub fn timeout(&self, timeout: Duration) -> SocketEmitter {
        SocketEmitter { timeout: Some(timeout), ..self.emitter() }
    }

    /// Emits that are dropped if the transport cannot take them right now.
    pub fn volatile(&self) -> SocketEmitter {
        SocketEmitter { volatile: true, ..self.emitter() }
    }

    /// Sets the compress flag (WebSocket compression is not negotiated, so it has no effect on the wire).
    pub fn compress(&self, compress: bool) -> SocketEmitter {
        SocketEmitter { compress, ..self.emitter() }
    }

    fn emitter(&self) -> SocketEmitter {
        SocketEmitter { socket: self.clone(), timeout: None, volatile: false, compress: true }
    }

    /// A broadcast to these rooms, excluding this socket.
    pub fn to(&self, rooms: impl IntoRooms) -> BroadcastOperator {
        self.broadcast().to(rooms)
    }

    /// Same as [`Socket::to`].
    pub fn in_(&self, rooms: impl IntoRooms) -> BroadcastOperator {
        self.to(rooms)
    }

    /// A broadcast to every socket except those in these rooms and this socket.
    pub fn except(&self, rooms: impl IntoRooms) -> BroadcastOperator {
        self.broadcast().except(rooms)
    }

    /// A broadcast to every other socket of the namespace.
    pub fn broadcast(&self) -> BroadcastOperator {
        self.inner.ns.broadcast().except(self.id())
    }

    /// A broadcast (excluding this socket) that skips other servers.
    pub fn local(&self) -> BroadcastOperator {
        self.broadcast().local()
    }

    /// Leaves the namespace (the client gets a DISCONNECT); with `close`, closes the whole connection.
    pub fn disconnect(&self, close: bool) {
        if close {
            self.inner.client.close_all(DisconnectReason::ServerNamespaceDisconnect);
        } else if self.connected() {
            let packet = Packet::disconnect(self.namespace_name());
            let _ = self.send_packet(&packet, false);
            self.on_close(DisconnectReason::ServerNamespaceDisconnect);
        }
    }

    /// What `fetch_sockets` reports about this socket.
    pub fn info(&self) -> SocketInfo {
        SocketInfo {
            id: self.id().to_owned(),
            handshake: self.handshake().clone(),
            rooms: self.rooms().iter().map(|r| r.to_string()).collect(),
            data: self.data(),
        }
    }

    /// Encodes and queues a packet for this client.
    pub(crate) fn send_packet(&self, packet: &Packet, volatile: bool) -> Result<(), EmitError> {
        self.send_encoded(self.inner.ns.inner.encode(packet), volatile)
    }

    /// Encodes and queues an EVENT or ACK packet of this socket's namespace, built from its parts.
    pub(crate) fn send_args(&self, packet: ArgsPacket<'_>, args: &[Value], volatile: bool) -> Result<(), EmitError> {
        self.send_encoded(self.inner.ns.inner.encode_args(packet, args), volatile)
    }

    /// Queues the frames of one packet encoded for this socket alone.
    fn send_encoded(&self, frames: Frames, volatile: bool) -> Result<(), EmitError> {
        let es = &self.inner.client.engine_socket;
        let res = match (frames, volatile) {
            (frames, true) => es.send_volatile(frames.into_vec()),
            (Frames::One(frame), false) => es.send_frame(frame),
            (Frames::Many(frames), false) => es.send_frames(frames),
        };
        res.map_err(send_error)
    }

    /// Queues encoded frames (shared with other recipients of a broadcast).
    pub(crate) fn send_frames(&self, frames: &[Frame], volatile: bool) -> Result<(), EmitError> {
        let es = &self.inner.client.engine_socket;
        let res = if volatile {
            es.send_volatile(frames.to_vec())
        } else if frames.len() == 1 {
            es.send_frame(frames[0].clone())
        } else {
            es.send_frames(frames.to_vec())
        };
        res.map_err(send_error)
    }

    pub(crate) fn register_ack(&self, id: u64, callback: AckCallback) {
        self.inner.acks.lock().expect("poisoned").insert(id, callback);
    }

    pub(crate) fn cancel_ack(&self, id: u64) {
        self.inner.acks.lock().expect("poisoned").remove(&id);
    }

    fn notify_outgoing(&self, event: &str, args: &[Value]) {
        if !self.inner.has_outgoing.load(Ordering::Acquire) {
            return;
        }
        let listeners: Vec<AnyListener> =
            self.inner.listeners.read().expect("poisoned").any_outgoing.iter().map(|(_, l)| l.clone()).collect();
        for l in listeners {
            contain(|| l(self, event, args));
        }
    }

    /// Marks the socket connected.
    pub(crate) fn set_connected(&self) {
        self.inner.connected.store(true, Ordering::Release);
    }

    /// Handles a packet for this socket's namespace.
    pub(crate) fn on_packet(&self, packet: Packet) {
        if !self.connected() {
            return;
        }
        match packet.kind {
            PacketType::Event | PacketType::BinaryEvent => {
                let Some(Value::Array(mut data)) = packet.data else { return };
                if !matches!(data.first(), Some(Value::String(_) | Value::Number(_))) {
                    return;
                }
                let name = match data.remove(0) {
                    Value::String(s) => s,
                    Value::Number(n) => n.to_string(),
                    _ => return,
                };
                let ack = packet.id.map(|id| AckSender::new(self.clone(), id));
                self.dispatch(Event::new(name, data, ack));
            }
            PacketType::Ack | PacketType::BinaryAck => {
                let Some(id) = packet.id else { return };
                let callback = self.inner.acks.lock().expect("poisoned").remove(&id);
                if let Some(cb) = callback {
                    let args = match packet.data {
                        Some(Value::Array(a)) => a,
                        _ => Vec::new(),
                    };
                    cb(Ok(args));
                }
            }
            PacketType::Disconnect => self.on_close(DisconnectReason::ClientNamespaceDisconnect),
            PacketType::Connect | PacketType::ConnectError => {}
        }
    }

    fn dispatch(&self, event: Event) {
        let middlewares = {
            let l = self.inner.listeners.read().expect("poisoned");
            if l.packet_middlewares.is_empty() {
                // One look at the listeners for the common case.
                let (any, handler) = Self::listeners_for(&l, &event.name);
                drop(l);
                return self.run_listeners(event, any, handler);
            }
            l.packet_middlewares.clone()
        };
        let socket = self.clone();
        run_detached(Box::pin(async move {
            let mut event = event;
            for mw in middlewares {
                // A panicking middleware drops the event, as a refusal without an error to report.
                let Some(run) = contain(|| mw(socket.clone(), event)) else { return };
                let Ok(outcome) = futures_util::FutureExt::catch_unwind(std::panic::AssertUnwindSafe(run)).await else {
                    return;
                };
                match outcome {
                    Ok(e) => event = e,
                    Err(err) => {
                        let handlers = socket.inner.listeners.read().expect("poisoned").error.clone();
                        for h in handlers {
                            contain(|| h(socket.clone(), err.clone()));
                        }
                        return;
                    }
                }
            }
            if socket.connected() {
                socket.run_event(event);
            }
        }));
    }

    fn run_event(&self, event: Event) {
        let (any, handler) = Self::listeners_for(&self.inner.listeners.read().expect("poisoned"), &event.name);
        self.run_listeners(event, any, handler);
    }

    fn listeners_for(l: &Listeners, name: &str) -> (Vec<AnyListener>, Option<EventHandler>) {
        let any: Vec<AnyListener> = l.any_incoming.iter().map(|(_, a)| a.clone()).collect();
        (any, l.events.get(name).cloned())
    }

    fn run_listeners(&self, event: Event, any: Vec<AnyListener>, handler: Option<EventHandler>) {
        for a in any {
            contain(|| a(self, &event.name, &event.args));
        }
        if let Some(h) = handler {
            run_handler(|| h(self.clone(), event));
        }
    }

    /// Disconnects from the namespace for `reason` (once): `disconnecting` handlers, recovery state,
    /// leave every room, forget pending acks, `disconnect` handlers.
    pub(crate) fn on_close(&self, reason: DisconnectReason) {
        if !self.inner.connected.swap(false, Ordering::AcqRel) {
            return;
        }
        let (disconnecting, disconnect) = {
            let l = self.inner.listeners.read().expect("poisoned");
            (l.disconnecting.clone(), l.disconnect.clone())
        };
        for h in disconnecting {
            run_handler(|| h(self.clone(), reason));
        }
        let adapter = self.inner.ns.adapter();
        if reason.is_recoverable()
            && let Some(pid) = &self.inner.pid
        {
            let rooms: Vec<Room> = self.rooms().into_iter().collect();
            adapter.local().persist_session(self.inner.id.clone(), pid.clone(), rooms, self.data());
        }
        adapter.del_all(&self.inner.id);
        self.inner.ns.remove_socket(&self.inner.id);
        self.inner.client.remove_socket(self.namespace_name(), self.id());
        let pending: Vec<AckCallback> = self.inner.acks.lock().expect("poisoned").drain().map(|(_, cb)| cb).collect();
        for cb in pending {
            cb(Err(AckError::Disconnected));
        }
        for h in disconnect {
            run_handler(|| h(self.clone(), reason));
        }
    }
}

/// Emits to one socket with options: [`Socket::timeout`], [`Socket::volatile`], [`Socket::compress`].
#[derive(Debug, Clone)]
pub struct SocketEmitter {
    socket: Socket,
    timeout: Option<Duration>,
    volatile: bool,
    compress: bool,
}

impl SocketEmitter {
    /// Sets the acknowledgement timeout.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = Some(timeout);
        self
    }

    /// Makes the emit volatile.
    pub fn volatile(mut self) -> Self {
        self.volatile = true;
        self
    }

    /// Sets the compress flag.
    pub fn compress(mut self, compress: bool) -> Self {
        self.compress = compress;
        self
    }

    /// Emits the event.
    pub fn emit(&self, event: &str, args: impl IntoArgs) -> Result<(), EmitError> {
        self.socket.emit_event(event, args.into_args(), self.volatile)
    }

    /// Emits the event and waits for the acknowledgement (at most the timeout, if one is set).
    pub async fn emit_with_ack(&self, event: &str, args: impl IntoArgs) -> Result<Vec<Value>, AckError> {
        check_reserved(event)?;
        let s = &self.socket;
        if !s.connected() {
            return Err(AckError::Disconnected);
        }
        let args = args.into_args();
        s.notify_outgoing(event, &args);
        let id = s.inner.ns.inner.next_ack_id();
        let (tx, rx) = oneshot::channel();
        s.register_ack(
            id,
            Box::new(move |res| {
                let _ = tx.send(res);
            }),
        );
        if let Err(e) = s.send_args(ArgsPacket::Event { name: event, ack_id: Some(id) }, &args, self.volatile) {
            s.cancel_ack(id);
            return Err(e.into());
        }
        let result = match self.timeout {
            Some(t) => match tokio::time::timeout(t, rx).await {
                Ok(r) => r,
                Err(_) => {
                    s.cancel_ack(id);
                    return Err(AckError::Timeout);
                }
            },
            None => rx.await,
        };
        result.unwrap_or(Err(AckError::Disconnected))
    }
}
