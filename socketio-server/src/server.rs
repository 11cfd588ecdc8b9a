//! The server: namespaces, the Engine.IO engine underneath, and the server-wide shortcuts of the reference
//! (`io.emit`, `io.to(...)`, `io.fetch_sockets()`, ... act on the main namespace `/`).

use std::any::{Any, TypeId};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, RwLock, Weak};
use std::time::Duration;

use engineio_server::{Engine, EngineService};
use socketio_proto::Value;

use crate::adapter::AdapterFactory;
use crate::client::Client;
use crate::config::SocketIoConfig;
use crate::event::{AckError, EmitError, IntoArgs};
use crate::handler::{ErrorHook, HandlerError, HandlerResult};
use crate::namespace::{ConnectError, Namespace, Namespaces, ParentInner, ParentNamespace};
use crate::operators::{BroadcastOperator, IntoRooms, RemoteSocket};
use crate::socket::{DisconnectReason, Socket};

pub(crate) struct ServerInner {
    pub(crate) config: SocketIoConfig,
    pub(crate) engine: Engine,
    pub(crate) namespaces: Arc<Namespaces>,
    /// Makes each namespace's adapter (`None`: the in-memory adapter).
    adapter: Option<AdapterFactory>,
    parents: RwLock<Vec<ParentNamespace>>,
    pub(crate) closing: AtomicBool,
    /// Receives the errors handlers return.
    pub(crate) handler_error: RwLock<Option<ErrorHook>>,
    /// The application's state, one value per type.
    state: RwLock<HashMap<TypeId, Arc<dyn Any + Send + Sync>>>,
    /// Told of each namespace made after they were added (see [`SocketIo::on_new_namespace`]).
    new_namespace: RwLock<Vec<NewNamespaceHook>>,
}

type NewNamespaceHook = Arc<dyn Fn(&Namespace) + Send + Sync>;

impl ServerInner {
    /// The namespace a CONNECT to `name` joins: an existing one, or a new child of the first parent whose
    /// predicate accepts it.
    pub(crate) fn namespace_for_connect(self: &Arc<Self>, name: &str, auth: &Value) -> Option<Namespace> {
        if let Some(ns) = self.namespaces.read().expect("poisoned").get(name) {
            return Some(ns.clone());
        }
        let parents = self.parents.read().expect("poisoned").clone();
        for parent in parents {
            if (parent.inner.matcher)(name, auth) {
                let mut nss = self.namespaces.write().expect("poisoned");
                if let Some(ns) = nss.get(name) {
                    return Some(ns.clone());
                }
                let ns = self.new_namespace(name, Some(&parent.inner));
                nss.insert(name.to_owned(), ns.clone());
                parent.inner.children.write().expect("poisoned").push(ns.clone());
                drop(nss);
                self.announce(&ns);
                return Some(ns);
            }
        }
        None
    }

    fn new_namespace(&self, name: &str, parent: Option<&Arc<ParentInner>>) -> Namespace {
        Namespace::new(&self.namespaces, &self.config, self.adapter.as_ref(), name, parent)
    }

    /// Tells the `on_new_namespace` hooks of a namespace just made (no lock held).
    fn announce(&self, ns: &Namespace) {
        let hooks = self.new_namespace.read().expect("poisoned").clone();
        for h in hooks {
            crate::run::contain(|| h(ns));
        }
    }
}

struct Bridge(Weak<ServerInner>);

impl engineio_server::Handler for Bridge {
    fn on_open(&self, socket: &engineio_server::Socket) -> Box<dyn engineio_server::Connection> {
        match self.0.upgrade() {
            Some(server) => Box::new(Client::new(&server, socket.clone())),
            None => {
                socket.close();
                Box::new(Closed)
            }
        }
    }
}

struct Closed;

impl engineio_server::Connection for Closed {
    fn on_message(&mut self, _: engineio_proto::Message) {}
}

/// A Socket.IO server. Cheap to clone; usable from any task, handlers and HTTP routes alike.
#[derive(Clone)]
pub struct SocketIo {
    pub(crate) inner: Arc<ServerInner>,
}

impl std::fmt::Debug for SocketIo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SocketIo").field("config", &self.inner.config).finish_non_exhaustive()
    }
}

impl Default for SocketIo {
    fn default() -> Self {
        Self::new(SocketIoConfig::default())
    }
}

impl SocketIo {
    /// A server with these options, with the main namespace `/` created, on the in-memory adapter.
    pub fn new(config: SocketIoConfig) -> SocketIo {
        Self::make(config, None)
    }

    /// A server with these options whose namespaces get their adapter from `adapter` (for example
    /// `socketio-redis`'s `RedisCluster::factory`).
    pub fn with_adapter(config: SocketIoConfig, adapter: AdapterFactory) -> SocketIo {
        Self::make(config, Some(adapter))
    }

    fn make(config: SocketIoConfig, adapter: Option<AdapterFactory>) -> SocketIo {
        std::sync::LazyLock::force(&crate::telemetry::METRICS);
        let inner = Arc::new_cyclic(|weak: &Weak<ServerInner>| ServerInner {
            engine: Engine::with_handler(config.engine.clone(), Arc::new(Bridge(weak.clone()))),
            config,
            namespaces: Arc::default(),
            adapter,
            parents: RwLock::default(),
            closing: AtomicBool::new(false),
            handler_error: RwLock::new(None),
            state: RwLock::default(),
            new_namespace: RwLock::default(),
        });
        let io = SocketIo { inner };
        io.of("/");
        io
    }

    /// The options.
    pub fn config(&self) -> &SocketIoConfig {
        &self.inner.config
    }

    /// The Engine.IO engine underneath.
    pub fn engine(&self) -> &Engine {
        &self.inner.engine
    }

    /// The HTTP endpoint as a hyper and tower `Service` (mount it at the engine path).
    pub fn service(&self) -> EngineService {
        self.inner.engine.service()
    }

    /// A tower `Layer` that puts the Socket.IO endpoint in front of an application's service (axum:
    /// `Router::new().route(..).layer(io.layer())`): requests under the endpoint's path are answered here,
    /// the others go to the application.
    pub fn layer(&self) -> engineio_server::EngineLayer {
        self.inner.engine.layer()
    }

    /// Binds `addr` and serves; returns the bound address and the accept loop's task.
    pub async fn listen(&self, addr: SocketAddr) -> std::io::Result<(SocketAddr, tokio::task::JoinHandle<()>)> {
        self.inner.engine.listen(addr).await
    }

    /// Serves on `addr` until the process ends.
    pub async fn serve(&self, addr: SocketAddr) -> std::io::Result<()> {
        self.inner.engine.serve(addr).await
    }

    /// The namespace `name`, created if needed.
    pub fn of(&self, name: &str) -> Namespace {
        let name = if name.starts_with('/') { name.to_owned() } else { format!("/{name}") };
        if let Some(ns) = self.inner.namespaces.read().expect("poisoned").get(&name) {
            return ns.clone();
        }
        let (ns, made) = {
            let mut nss = self.inner.namespaces.write().expect("poisoned");
            match nss.get(&name) {
                Some(ns) => (ns.clone(), false),
                None => {
                    let ns = self.inner.new_namespace(&name, None);
                    nss.insert(name.clone(), ns.clone());
                    (ns, true)
                }
            }
        };
        if made {
            self.inner.announce(&ns);
        }
        ns
    }

    /// Calls `hook` for every namespace made from now on (by [`SocketIo::of`], or a dynamic namespace's
    /// child), as the reference's `new_namespace` event; [`SocketIo::namespaces`] lists those that exist.
    pub fn on_new_namespace(&self, hook: impl Fn(&Namespace) + Send + Sync + 'static) -> &Self {
        self.inner.new_namespace.write().expect("poisoned").push(Arc::new(hook));
        self
    }

    /// A dynamic namespace: a CONNECT to any name the predicate accepts (given the name and the auth
    /// payload) creates a child namespace with this parent's middlewares and handlers.
    pub fn of_dynamic(&self, predicate: impl Fn(&str, &Value) -> bool + Send + Sync + 'static) -> ParentNamespace {
        let parent = ParentNamespace {
            inner: Arc::new(ParentInner {
                matcher: Arc::new(predicate),
                handlers: Default::default(),
                children: RwLock::default(),
            }),
        };
        self.inner.parents.write().expect("poisoned").push(parent.clone());
        parent
    }

    /// The existing namespaces' names.
    pub fn namespaces(&self) -> Vec<String> {
        self.inner.namespaces.read().expect("poisoned").keys().cloned().collect()
    }

    /// Connection handler of the main namespace.
    pub fn on_connection<F, Fut>(&self, handler: F) -> &Self
    where
        F: FnOnce(Socket) -> Fut + Clone + Send + Sync + 'static,
        Fut: std::future::Future + Send + 'static,
        Fut::Output: HandlerResult,
    {
        self.of("/").on_connection(handler);
        self
    }

    /// Keeps `value` as the application's state of its type (replacing one kept before), for every handler
    /// to reach with [`SocketIo::state`] (from a socket: `socket.io()`).
    ///
    /// ```
    /// # use socketio_server::SocketIo;
    /// struct Db { url: String }
    /// let io = SocketIo::default();
    /// io.set_state(Db { url: "redis://localhost".into() });
    /// assert_eq!(io.state::<Db>().unwrap().url, "redis://localhost");
    /// ```
    pub fn set_state<T: Send + Sync + 'static>(&self, value: T) -> &Self {
        self.inner.state.write().expect("poisoned").insert(TypeId::of::<T>(), Arc::new(value));
        self
    }

    /// The application's state of type `T`, if one was kept with [`SocketIo::set_state`].
    pub fn state<T: Send + Sync + 'static>(&self) -> Option<Arc<T>> {
        let any = self.inner.state.read().expect("poisoned").get(&TypeId::of::<T>())?.clone();
        any.downcast::<T>().ok()
    }

    /// Receives the errors that handlers (of events, connections and disconnections, in every namespace)
    /// return: the socket, the event (`"connection"`, `"disconnecting"`, `"disconnect"` for those), and the
    /// error. Without a hook, such errors are dropped. A hook that panics is contained.
    pub fn on_handler_error(&self, hook: impl Fn(&Socket, &str, &HandlerError) + Send + Sync + 'static) -> &Self {
        *self.inner.handler_error.write().expect("poisoned") = Some(Arc::new(hook));
        self
    }

    /// Connection middleware of the main namespace.
    pub fn use_middleware<F, Fut>(&self, middleware: F) -> &Self
    where
        F: FnOnce(Socket) -> Fut + Clone + Send + Sync + 'static,
        Fut: std::future::Future<Output = Result<(), ConnectError>> + Send + 'static,
    {
        self.of("/").use_middleware(middleware);
        self
    }

    /// A broadcast to rooms of the main namespace.
    pub fn to(&self, rooms: impl IntoRooms) -> BroadcastOperator {
        self.of("/").to(rooms)
    }

    /// Same as [`SocketIo::to`].
    pub fn in_(&self, rooms: impl IntoRooms) -> BroadcastOperator {
        self.to(rooms)
    }

    /// A broadcast to the main namespace except these rooms.
    pub fn except(&self, rooms: impl IntoRooms) -> BroadcastOperator {
        self.of("/").except(rooms)
    }

    /// A local broadcast on the main namespace.
    pub fn local(&self) -> BroadcastOperator {
        self.of("/").local()
    }

    /// A volatile broadcast on the main namespace.
    pub fn volatile(&self) -> BroadcastOperator {
        self.of("/").volatile()
    }

    /// A broadcast with an acknowledgement timeout on the main namespace.
    pub fn timeout(&self, timeout: Duration) -> BroadcastOperator {
        self.of("/").timeout(timeout)
    }

    /// Emits to every socket of the main namespace.
    pub fn emit(&self, event: &str, args: impl IntoArgs) -> Result<(), EmitError> {
        self.of("/").emit(event, args)
    }

    /// The sockets of the main namespace, on every server.
    pub async fn fetch_sockets(&self) -> Result<Vec<RemoteSocket>, EmitError> {
        self.of("/").fetch_sockets().await
    }

    /// Makes every socket of the main namespace join rooms.
    pub async fn sockets_join(&self, rooms: impl IntoRooms) -> Result<(), EmitError> {
        self.of("/").sockets_join(rooms).await
    }

    /// Makes every socket of the main namespace leave rooms.
    pub async fn sockets_leave(&self, rooms: impl IntoRooms) -> Result<(), EmitError> {
        self.of("/").sockets_leave(rooms).await
    }

    /// Disconnects every socket of the main namespace.
    pub async fn disconnect_sockets(&self, close: bool) -> Result<(), EmitError> {
        self.of("/").disconnect_sockets(close).await
    }

    /// Emits to the other servers of the cluster.
    pub async fn server_side_emit(&self, event: &str, args: impl IntoArgs) -> Result<(), EmitError> {
        self.of("/").server_side_emit(event, args).await
    }

    /// Emits to the other servers of the cluster on the main namespace and waits for one answer from each
    /// (see [`Namespace::server_side_emit_with_ack`]).
    pub async fn server_side_emit_with_ack<T: serde::de::DeserializeOwned + 'static>(
        &self,
        event: &str,
        args: impl IntoArgs,
    ) -> Result<Vec<T>, AckError> {
        self.of("/").server_side_emit_with_ack(event, args).await
    }

    /// The server's health, for a readiness or liveness probe: open sessions, connected sockets, whether
    /// every namespace's adapter reaches the other servers, and whether the server is closing.
    pub fn health(&self) -> Health {
        let namespaces: Vec<Namespace> = self.inner.namespaces.read().expect("poisoned").values().cloned().collect();
        Health {
            sessions: self.inner.engine.session_count(),
            sockets: namespaces.iter().map(|ns| ns.inner.sockets.read().expect("poisoned").len()).sum(),
            adapter_connected: namespaces.iter().all(|ns| ns.adapter().is_connected()),
            closing: self.inner.closing.load(Ordering::Acquire),
        }
    }

    /// Closes the server: it stops accepting connections, every socket disconnects with "server shutting
    /// down", queued packets are flushed, and every connection is closed; waits at most 5 seconds.
    pub async fn close(&self) {
        self.inner.closing.store(true, Ordering::Release);
        let namespaces: Vec<Namespace> = self.inner.namespaces.read().expect("poisoned").values().cloned().collect();
        for ns in &namespaces {
            for s in ns.sockets() {
                s.on_close(DisconnectReason::ServerShuttingDown);
            }
        }
        // The sessions just persisted (and the last broadcasts) leave before the connections close, so a
        // client that reconnects elsewhere at once finds its session.
        flush_adapters(&namespaces).await;
        self.inner.engine.close().await;
        // Sockets that joined meanwhile (their connection was open already) closed with their connection.
        flush_adapters(&namespaces).await;
        for ns in namespaces {
            ns.adapter().close();
        }
    }
}

/// Waits (at most 2 s) until what the namespaces' adapters were handed has left this server.
async fn flush_adapters(namespaces: &[Namespace]) {
    let all = async {
        for ns in namespaces {
            ns.adapter().flush().await;
        }
    };
    let _ = tokio::time::timeout(Duration::from_secs(2), all).await;
}

/// What [`SocketIo::health`] reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[non_exhaustive]
pub struct Health {
    /// Open Engine.IO sessions.
    pub sessions: usize,
    /// Connected sockets, over every namespace.
    pub sockets: usize,
    /// Whether every namespace's adapter reaches the other servers (always true in memory).
    pub adapter_connected: bool,
    /// Whether [`SocketIo::close`] has begun.
    pub closing: bool,
}

impl Health {
    /// Ready for traffic: the adapter is connected and the server is not closing. (Alive is simpler: the
    /// process answers.)
    pub fn is_ready(&self) -> bool {
        self.adapter_connected && !self.closing
    }
}
