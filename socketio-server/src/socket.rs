//! A socket: one client in one namespace. Its state and accessors live here; listeners (`listeners.rs`),
//! the emit path (`emit.rs`) and incoming packets and the close lifecycle (`dispatch.rs`) add to it.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, OnceLock, RwLock};

use serde::Serialize;
use serde::de::DeserializeOwned;
use socketio_proto::Value;

use crate::adapter::SocketInfo;
use crate::client::ClientShared;
pub use crate::emit::SocketEmitter;
use crate::event::{AckError, Event};
use crate::handshake::Handshake;
pub use crate::listeners::ListenerId;
use crate::listeners::Listeners;
use crate::namespace::Namespace;
use crate::operators::IntoRooms;
pub use crate::reason::DisconnectReason;
use crate::types::{BoxFuture, Room};

pub use crate::types::SocketId;

pub(crate) type AckCallback = Box<dyn FnOnce(Result<Vec<Value>, AckError>) + Send>;
pub(crate) type EventHandler = Arc<dyn Fn(Socket, Event) -> BoxFuture<'static, ()> + Send + Sync>;
pub(crate) type PacketMiddleware = Arc<dyn Fn(Socket, Event) -> BoxFuture<'static, Result<Event, Value>> + Send + Sync>;
pub(crate) type AnyListener = Arc<dyn Fn(&Socket, &str, &[Value]) + Send + Sync>;
pub(crate) type ErrorHandler = Arc<dyn Fn(Socket, Value) + Send + Sync>;
pub(crate) type DisconnectHandler = Arc<dyn Fn(Socket, DisconnectReason) -> BoxFuture<'static, ()> + Send + Sync>;

pub(crate) struct SocketInner {
    pub(crate) id: SocketId,
    pub(crate) pid: Option<Box<str>>,
    pub(crate) ns: Namespace,
    pub(crate) client: Arc<ClientShared>,
    /// Built from the connection's request on first use: most sockets never look at it.
    pub(crate) handshake: OnceLock<Box<Handshake>>,
    pub(crate) pending_handshake: PendingHandshake,
    pub(crate) recovered: bool,
    pub(crate) listeners: RwLock<Listeners>,
    /// Whether `listeners.any_outgoing` has any, so that an emit need not look when there is none.
    pub(crate) has_outgoing: AtomicBool,
    /// The callbacks of acknowledgements awaited from the client, boxed: made on first use (a socket that
    /// never emits with an ack holds one pointer).
    #[allow(clippy::box_collection, reason = "one pointer in every socket instead of a map's six words")]
    pub(crate) acks: Mutex<Option<Box<HashMap<u64, AckCallback>>>>,
    pub(crate) connected: AtomicBool,
    pub(crate) data: Mutex<Value>,
    pub(crate) extensions: Mutex<http::Extensions>,
    /// `socketio_server::socket` span: namespace and id, for everything this socket's code logs; `None`
    /// when no subscriber wants it (an idle socket then carries one pointer, not a span).
    span: Option<Box<tracing::Span>>,
}

/// One client in one namespace. Cheap to clone; usable from any task.
#[derive(Clone)]
pub struct Socket {
    pub(crate) inner: Arc<SocketInner>,
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
        // At `debug`, as the session's: `info` records no span; its lines name the socket themselves.
        let span = tracing::debug_span!(target: "socketio_server::socket", "socket", ns = ns.name(), id = &*id);
        let span = (!span.is_disabled()).then(|| Box::new(span));
        Socket {
            inner: Arc::new(SocketInner {
                span,
                id,
                pid: pid.map(String::into_boxed_str),
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

    /// The socket's span (a disabled one when no subscriber wants it).
    pub(crate) fn span(&self) -> &tracing::Span {
        static NONE: tracing::Span = tracing::Span::none();
        self.inner.span.as_deref().unwrap_or(&NONE)
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

    /// The HTTP request that opened the connection (with the extensions set by engine middlewares). The
    /// connection keeps its headers packed: the first call rebuilds the request (see
    /// [`engineio_server::Socket::request`]); [`Socket::request_extensions`] reads the extensions without that.
    pub fn request(&self) -> &http::request::Parts {
        self.inner.client.engine_socket.request()
    }

    /// The extensions of the HTTP request that opened the connection (those set by middlewares included).
    pub fn request_extensions(&self) -> &http::Extensions {
        self.inner.client.engine_socket.request_extensions()
    }

    /// The Engine.IO session that carries this socket's packets (shared with the connection's other
    /// namespaces).
    pub(crate) fn engine(&self) -> &engineio_server::Socket {
        &self.inner.client.engine_socket
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

    /// The socket's `data` (shared with other servers by `fetch_sockets`, restored by recovery): an empty
    /// object until set, as the reference's.
    pub fn data(&self) -> Value {
        self.inner.data.lock().expect("poisoned").clone()
    }

    /// Replaces `data`, then runs the [`Socket::on_data_change`] listeners.
    pub fn set_data(&self, data: impl Into<Value>) {
        *self.inner.data.lock().expect("poisoned") = data.into();
        let listeners = self.inner.listeners.read().expect("poisoned").rare().data_change.clone();
        for l in listeners {
            crate::run::contain(|| l(self));
        }
    }

    /// `data`, deserialized.
    pub fn data_as<T: DeserializeOwned + 'static>(&self) -> Result<T, serde_json::Error> {
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

    /// Leaves the namespace (the client gets a DISCONNECT); with `close`, closes the whole connection.
    pub fn disconnect(&self, close: bool) {
        if close {
            self.inner.client.close_all(DisconnectReason::ServerNamespaceDisconnect);
        } else if self.connected() {
            self.inner.client.disconnect_namespace(self.namespace_name());
            self.on_close(DisconnectReason::ServerNamespaceDisconnect);
        }
    }

    /// The server this socket belongs to (`None` once every handle of it is gone).
    pub fn io(&self) -> Option<crate::SocketIo> {
        self.inner.client.server.upgrade().map(|inner| crate::SocketIo { inner })
    }

    /// Reports an error a handler returned to the server's error hook.
    pub(crate) fn handler_failed(&self, what: &str, err: &crate::handler::HandlerError) {
        crate::telemetry::METRICS.handler_errors.increment(1);
        tracing::warn!(
            target: "socketio_server::handler",
            parent: self.span(),
            ns = self.namespace_name(),
            id = self.id(),
            event = what,
            error = %err,
            "handler failed"
        );
        let Some(server) = self.inner.client.server.upgrade() else { return };
        let hook = server.handler_error.read().expect("poisoned").clone();
        if let Some(hook) = hook {
            crate::run::contain(|| hook(self, what, err));
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
}

#[cfg(test)]
mod tests {
    /// Every socket keeps one `SocketInner` in an `Arc` (16 bytes of counts more): at most 368 bytes keeps it
    /// in jemalloc's 384-byte class (the benchmark server runs on jemalloc); the next is 448. The rare
    /// listener kinds and the acknowledgement callbacks are boxed for this.
    #[test]
    fn a_socket_stays_in_the_384_byte_class() {
        let size = std::mem::size_of::<super::SocketInner>();
        assert!(size <= 368, "{size}");
    }
}
