//! Namespaces: a name, the connected sockets, the connection middlewares and handlers, and the adapter.
//!
//! Static namespaces are made with [`crate::SocketIo::of`]; dynamic ones with
//! [`crate::SocketIo::of_dynamic`], a parent namespace whose predicate decides which names may be
//! joined, creating a child namespace on the first CONNECT (the reference's parent namespaces).

use std::collections::HashMap;
use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock, Weak};
use std::time::Duration;

use socketio_proto::{ArgsPacket, Frames, Packet, Parser, Value};

use crate::adapter::{Adapter, AdapterFactory, InMemoryAdapter, LocalAdapter};
use crate::config::SocketIoConfig;
use crate::event::{AckError, EmitError, IntoArgs};
use crate::handler::{HandlerResult, on_error, report};
use crate::operators::{BroadcastOperator, IntoRooms, RemoteSocket};
use crate::run::{contain, run_handler};
use crate::socket::{Socket, SocketId};
use crate::types::{BoxFuture, Room};

/// A connection middleware's refusal: sent to the client as CONNECT_ERROR `{message, data}`.
#[derive(Debug, Clone, PartialEq)]
pub struct ConnectError {
    /// The message.
    pub message: String,
    /// Optional details.
    pub data: Option<Value>,
}

impl ConnectError {
    /// A refusal with a message.
    pub fn new(message: impl Into<String>) -> Self {
        ConnectError { message: message.into(), data: None }
    }

    /// Adds details.
    pub fn with_data(mut self, data: impl Into<Value>) -> Self {
        self.data = Some(data.into());
        self
    }
}

impl<E: std::fmt::Display> From<E> for ConnectError {
    fn from(e: E) -> Self {
        ConnectError::new(e.to_string())
    }
}

pub(crate) type ConnectionHandler = Arc<dyn Fn(Socket) -> BoxFuture<'static, ()> + Send + Sync>;

/// A connection handler, cloned per call, its errors reported as the `connection` event's.
fn connection_handler<F, Fut>(handler: F) -> ConnectionHandler
where
    F: FnOnce(Socket) -> Fut + Clone + Send + Sync + 'static,
    Fut: Future + Send + 'static,
    Fut::Output: HandlerResult,
{
    Arc::new(move |s: Socket| {
        let on_error = on_error::<Fut::Output>(&s, || "connection".into());
        report((handler.clone())(s), on_error)
    })
}
pub(crate) type ConnectMiddleware = Arc<dyn Fn(Socket) -> BoxFuture<'static, Result<(), ConnectError>> + Send + Sync>;
pub(crate) type ServerEventHandler = Arc<dyn Fn(Vec<Value>) -> BoxFuture<'static, Vec<Value>> + Send + Sync>;

#[derive(Default)]
pub(crate) struct Handlers {
    pub(crate) middlewares: RwLock<Vec<ConnectMiddleware>>,
    pub(crate) connection: RwLock<Vec<ConnectionHandler>>,
}

impl Handlers {
    fn copy(&self) -> Handlers {
        Handlers {
            middlewares: RwLock::new(self.middlewares.read().expect("poisoned").clone()),
            connection: RwLock::new(self.connection.read().expect("poisoned").clone()),
        }
    }
}

/// How long a server-side emit waits for the other servers' answers unless told otherwise (the default
/// `requestsTimeout` of `@socket.io/redis-adapter`).
pub const SERVER_ACK_TIMEOUT: Duration = Duration::from_secs(5);

/// The server's namespaces by name. A child namespace holds it weakly to remove itself when it empties.
pub(crate) type Namespaces = RwLock<HashMap<String, Namespace>>;

pub(crate) struct NamespaceInner {
    pub(crate) name: String,
    /// The server's namespaces, to leave when this child empties (with `cleanup_empty_child_namespaces`).
    registry: Weak<Namespaces>,
    cleanup_when_empty: bool,
    /// The server's parser, kept here so that encoding needs no upgrade of `server`.
    parser: Arc<dyn Parser>,
    /// By id (ids are made by the server, not chosen by clients); looked up per recipient of a room
    /// broadcast, so hashed with foldhash rather than SipHash.
    pub(crate) sockets: RwLock<HashMap<SocketId, Socket, foldhash::fast::RandomState>>,
    pub(crate) adapter: Arc<dyn Adapter>,
    pub(crate) handlers: Handlers,
    pub(crate) server_events: RwLock<HashMap<String, ServerEventHandler>>,
    ack_ids: AtomicU64,
    parent: Option<Weak<ParentInner>>,
    /// `socketio_sockets{namespace}`.
    sockets_gauge: metrics::Gauge,
}

impl NamespaceInner {
    /// Encodes a packet once into the frames every recipient gets.
    pub(crate) fn encode(&self, packet: &Packet) -> Frames {
        self.parser.encode_frames(packet)
    }

    /// Encodes an EVENT or ACK packet of this namespace from its parts.
    pub(crate) fn encode_args(&self, packet: ArgsPacket<'_>, args: &[Value]) -> Frames {
        self.parser.encode_args(&self.name, packet, args)
    }

    pub(crate) fn next_ack_id(&self) -> u64 {
        self.ack_ids.fetch_add(1, Ordering::Relaxed)
    }
}

/// A namespace. Cheap to clone.
#[derive(Clone)]
pub struct Namespace {
    pub(crate) inner: Arc<NamespaceInner>,
}

impl std::fmt::Debug for Namespace {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Namespace").field("name", &self.inner.name).finish_non_exhaustive()
    }
}

impl Namespace {
    /// A namespace of a server with these options and adapter, registered (by the caller) in `registry`.
    pub(crate) fn new(
        registry: &Arc<Namespaces>,
        config: &SocketIoConfig,
        factory: Option<&AdapterFactory>,
        name: &str,
        parent: Option<&Arc<ParentInner>>,
    ) -> Namespace {
        let recovery = config.connection_state_recovery.map(|r| r.max_disconnection_duration);
        let handlers = parent.map(|p| p.handlers.copy()).unwrap_or_default();
        let inner = Arc::new_cyclic(|weak: &Weak<NamespaceInner>| {
            let local = Arc::new(LocalAdapter::new(weak.clone(), name, recovery));
            let adapter: Arc<dyn Adapter> = match factory {
                Some(f) => f(local),
                None => Arc::new(InMemoryAdapter::new(local)),
            };
            NamespaceInner {
                name: name.to_owned(),
                registry: Arc::downgrade(registry),
                cleanup_when_empty: config.cleanup_empty_child_namespaces,
                parser: config.parser.clone(),
                sockets: RwLock::default(),
                adapter,
                handlers,
                server_events: RwLock::default(),
                ack_ids: AtomicU64::new(0),
                parent: parent.map(Arc::downgrade),
                sockets_gauge: crate::telemetry::sockets_gauge(name),
            }
        });
        Namespace { inner }
    }

    /// The name, such as `/` or `/chat`.
    pub fn name(&self) -> &str {
        &self.inner.name
    }

    /// The adapter.
    pub fn adapter(&self) -> &Arc<dyn Adapter> {
        &self.inner.adapter
    }

    /// Adds a connection handler: it runs for every socket that joins, after the middlewares. Register the
    /// socket's event handlers in it.
    pub fn on_connection<F, Fut>(&self, handler: F) -> &Self
    where
        F: FnOnce(Socket) -> Fut + Clone + Send + Sync + 'static,
        Fut: Future + Send + 'static,
        Fut::Output: HandlerResult,
    {
        self.inner.handlers.connection.write().expect("poisoned").push(connection_handler(handler));
        self
    }

    /// Adds a connection middleware; `Err` refuses the socket with CONNECT_ERROR.
    pub fn use_middleware<F, Fut>(&self, middleware: F) -> &Self
    where
        F: FnOnce(Socket) -> Fut + Clone + Send + Sync + 'static,
        Fut: Future<Output = Result<(), ConnectError>> + Send + 'static,
    {
        self.inner
            .handlers
            .middlewares
            .write()
            .expect("poisoned")
            .push(Arc::new(move |s| Box::pin((middleware.clone())(s))));
        self
    }

    /// Handles an event that another server sent with `server_side_emit`; the returned values are the
    /// acknowledgement.
    pub fn on_server_event<F, Fut>(&self, event: &str, handler: F) -> &Self
    where
        F: FnOnce(Vec<Value>) -> Fut + Clone + Send + Sync + 'static,
        Fut: Future<Output = Vec<Value>> + Send + 'static,
    {
        self.inner
            .server_events
            .write()
            .expect("poisoned")
            .insert(event.to_owned(), Arc::new(move |args| Box::pin((handler.clone())(args))));
        self
    }

    /// Runs the handler of a server-side event received from another server; for cluster adapters.
    ///
    /// A handler that panics answers nothing (an empty response), and the adapter that called it goes on.
    pub fn dispatch_server_event(&self, event: &str, args: Vec<Value>) -> Option<BoxFuture<'static, Vec<Value>>> {
        use futures_util::FutureExt as _;
        let handler = self.inner.server_events.read().expect("poisoned").get(event).cloned()?;
        let fut = contain(|| handler(args))?;
        Some(Box::pin(std::panic::AssertUnwindSafe(fut).catch_unwind().map(Result::unwrap_or_default)))
    }

    /// The local socket with this id.
    pub fn get_socket(&self, id: &str) -> Option<Socket> {
        self.inner.sockets.read().expect("poisoned").get(id).cloned()
    }

    /// The local sockets.
    pub fn sockets(&self) -> Vec<Socket> {
        self.inner.sockets.read().expect("poisoned").values().cloned().collect()
    }

    /// A broadcast to every socket of the namespace.
    pub fn broadcast(&self) -> BroadcastOperator {
        BroadcastOperator::new(self.clone())
    }

    /// A broadcast to these rooms.
    pub fn to(&self, rooms: impl IntoRooms) -> BroadcastOperator {
        self.broadcast().to(rooms)
    }

    /// Same as [`Namespace::to`].
    pub fn in_(&self, rooms: impl IntoRooms) -> BroadcastOperator {
        self.to(rooms)
    }

    /// A broadcast to every socket except those in these rooms.
    pub fn except(&self, rooms: impl IntoRooms) -> BroadcastOperator {
        self.broadcast().except(rooms)
    }

    /// A broadcast that skips other servers.
    pub fn local(&self) -> BroadcastOperator {
        self.broadcast().local()
    }

    /// A broadcast dropped for sockets that cannot take it right now.
    pub fn volatile(&self) -> BroadcastOperator {
        self.broadcast().volatile()
    }

    /// A broadcast with an acknowledgement timeout.
    pub fn timeout(&self, timeout: Duration) -> BroadcastOperator {
        self.broadcast().timeout(timeout)
    }

    /// Emits to every socket of the namespace.
    pub fn emit(&self, event: &str, args: impl IntoArgs) -> Result<(), EmitError> {
        self.broadcast().emit(event, args)
    }

    /// The sockets of the namespace, on every server.
    pub async fn fetch_sockets(&self) -> Result<Vec<RemoteSocket>, EmitError> {
        self.broadcast().fetch_sockets().await
    }

    /// Makes every socket join rooms.
    pub async fn sockets_join(&self, rooms: impl IntoRooms) -> Result<(), EmitError> {
        self.broadcast().sockets_join(rooms).await
    }

    /// Makes every socket leave rooms.
    pub async fn sockets_leave(&self, rooms: impl IntoRooms) -> Result<(), EmitError> {
        self.broadcast().sockets_leave(rooms).await
    }

    /// Disconnects every socket.
    pub async fn disconnect_sockets(&self, close: bool) -> Result<(), EmitError> {
        self.broadcast().disconnect_sockets(close).await
    }

    /// Emits to the other servers of the cluster (handled there by [`Namespace::on_server_event`]).
    pub async fn server_side_emit(&self, event: &str, args: impl IntoArgs) -> Result<(), EmitError> {
        let mut all = vec![Value::from(event)];
        all.extend(args.into_args()?);
        self.inner.adapter.server_side_emit(all, None).await.map(|_| ()).map_err(|e| EmitError::Adapter(e.0))
    }

    /// Emits to the other servers and waits for one answer from each (the value their
    /// [`Namespace::on_server_event`] handler acknowledged with), as the reference's
    /// `serverSideEmitWithAck`: at most [`SERVER_ACK_TIMEOUT`], or the time given with
    /// `namespace.timeout(d).server_side_emit_with_ack(..)`. Each answer is deserialized into `T`
    /// ([`Value`] for any): an answer that does not fit is an [`AckError::Deserialize`].
    pub async fn server_side_emit_with_ack<T: serde::de::DeserializeOwned + 'static>(
        &self,
        event: &str,
        args: impl IntoArgs,
    ) -> Result<Vec<T>, AckError> {
        self.server_side_emit_with_ack_within(event, args, SERVER_ACK_TIMEOUT).await
    }

    pub(crate) async fn server_side_emit_with_ack_within<T: serde::de::DeserializeOwned + 'static>(
        &self,
        event: &str,
        args: impl IntoArgs,
        timeout: Duration,
    ) -> Result<Vec<T>, AckError> {
        let mut all = vec![Value::from(event)];
        all.extend(args.into_args().map_err(EmitError::from)?);
        let responses =
            self.inner.adapter.server_side_emit(all, Some(timeout)).await.map_err(|e| match e.0.as_str() {
                "timeout" => AckError::Timeout,
                _ => AckError::Emit(EmitError::Adapter(e.0)),
            })?;
        // Each server's answer is the first value it acknowledged with, as in the reference.
        responses
            .into_iter()
            .map(|r| r.into_iter().next().unwrap_or(Value::Null).deserialize_into())
            .collect::<Result<_, _>>()
            .map_err(|e| AckError::Deserialize(e.to_string()))
    }

    /// The rooms that have local sockets.
    pub fn rooms(&self) -> Vec<Room> {
        self.inner.adapter.local().rooms().into_iter().collect()
    }

    pub(crate) fn add_socket(&self, socket: &Socket) {
        self.inner.sockets.write().expect("poisoned").insert(socket.id_arc().clone(), socket.clone());
        self.inner.sockets_gauge.increment(1.0);
        // Rooms it joined before (in a middleware, or restored by recovery) reach it from now on.
        self.inner.adapter.local().set_socket(socket.id_arc(), Some(socket));
    }

    pub(crate) fn remove_socket(&self, id: &SocketId) {
        let empty = {
            let mut sockets = self.inner.sockets.write().expect("poisoned");
            if sockets.remove(id).is_some() {
                self.inner.sockets_gauge.decrement(1.0);
            }
            sockets.is_empty()
        };
        // Rooms it is still in (it left them all first when it disconnected) no longer hold it.
        self.inner.adapter.local().set_socket(id, None);
        if empty {
            self.cleanup_if_child();
        }
    }

    fn cleanup_if_child(&self) {
        if !self.inner.cleanup_when_empty {
            return;
        }
        let Some(registry) = self.inner.registry.upgrade() else { return };
        let Some(parent) = self.inner.parent.as_ref().and_then(Weak::upgrade) else { return };
        parent.children.write().expect("poisoned").retain(|c| c.name() != self.name());
        let removed = {
            let mut nss = registry.write().expect("poisoned");
            // Only if no socket joined again in the meantime.
            if self.inner.sockets.read().expect("poisoned").is_empty() {
                nss.remove(self.name());
                true
            } else {
                false
            }
        };
        if removed {
            self.inner.adapter.close();
        }
    }

    /// Runs the middlewares in order; the first refusal stops them.
    ///
    /// A middleware that panics refuses the connection with "server error" (CONNECT_ERROR), so the client
    /// hears of it instead of waiting for its connect timeout.
    pub(crate) async fn run_middlewares(&self, socket: &Socket) -> Result<(), ConnectError> {
        use futures_util::FutureExt as _;
        let mws = self.inner.handlers.middlewares.read().expect("poisoned").clone();
        for mw in mws {
            let Some(run) = contain(|| mw(socket.clone())) else { return Err(panicked()) };
            std::panic::AssertUnwindSafe(run).catch_unwind().await.unwrap_or_else(|_| Err(panicked()))?;
        }
        Ok(())
    }

    pub(crate) fn run_connection_handlers(&self, socket: &Socket) {
        let handlers = self.inner.handlers.connection.read().expect("poisoned").clone();
        for h in handlers {
            run_handler(socket.span(), || h(socket.clone()));
        }
    }
}

/// The refusal of a connection whose middleware panicked.
fn panicked() -> ConnectError {
    ConnectError::new("server error")
}

pub(crate) type NamespaceMatcher = Arc<dyn Fn(&str, &Value) -> bool + Send + Sync>;

pub(crate) struct ParentInner {
    pub(crate) matcher: NamespaceMatcher,
    pub(crate) handlers: Handlers,
    pub(crate) children: RwLock<Vec<Namespace>>,
}

/// A dynamic namespace: any name its predicate accepts becomes a child namespace on its first CONNECT,
/// with the parent's middlewares and connection handlers.
#[derive(Clone)]
pub struct ParentNamespace {
    pub(crate) inner: Arc<ParentInner>,
}

impl std::fmt::Debug for ParentNamespace {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ParentNamespace").finish_non_exhaustive()
    }
}

impl ParentNamespace {
    /// Adds a connection handler for the sockets of every child (existing children included).
    pub fn on_connection<F, Fut>(&self, handler: F) -> &Self
    where
        F: FnOnce(Socket) -> Fut + Clone + Send + Sync + 'static,
        Fut: Future + Send + 'static,
        Fut::Output: HandlerResult,
    {
        let h = connection_handler(handler);
        self.inner.handlers.connection.write().expect("poisoned").push(h.clone());
        for child in self.children() {
            child.inner.handlers.connection.write().expect("poisoned").push(h.clone());
        }
        self
    }

    /// Adds a connection middleware for every child (existing children included).
    pub fn use_middleware<F, Fut>(&self, middleware: F) -> &Self
    where
        F: FnOnce(Socket) -> Fut + Clone + Send + Sync + 'static,
        Fut: Future<Output = Result<(), ConnectError>> + Send + 'static,
    {
        let m: ConnectMiddleware = Arc::new(move |s| Box::pin((middleware.clone())(s)));
        self.inner.handlers.middlewares.write().expect("poisoned").push(m.clone());
        for child in self.children() {
            child.inner.handlers.middlewares.write().expect("poisoned").push(m.clone());
        }
        self
    }

    /// The child namespaces created so far.
    pub fn children(&self) -> Vec<Namespace> {
        self.inner.children.read().expect("poisoned").clone()
    }

    /// Emits to every socket of every child.
    pub fn emit(&self, event: &str, args: impl IntoArgs) -> Result<(), EmitError> {
        let args = args.into_args()?;
        for child in self.children() {
            child.emit(event, args.clone())?;
        }
        Ok(())
    }
}
