//! The engine: its shared state (options, endpoint, the session table of `sessions.rs`), the public
//! [`Engine`] handle (options, sessions, close, `serve`), session slots held during a handshake, and the
//! making of a new session's socket.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use engineio_proto::TransportKind;
use http::request;
use tokio::net::TcpListener;

use crate::config::EngineConfig;
use crate::mailbox::Mailbox;
use crate::service::{EngineService, serve_listener};
use crate::sessions::Sessions;
use crate::socket::{Handler, Socket, SocketShared};

/// The remote address of a request, put in its extensions by [`Engine::serve`] (and readable from
/// [`Socket::request`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RemoteAddr(pub SocketAddr);

pub(crate) struct EngineShared {
    pub(crate) config: EngineConfig,
    pub(crate) endpoint: String,
    /// The handler, the session table and the slots, shared with every session task.
    pub(crate) sessions: Arc<Sessions>,
    /// Set by `close`: the accept loops of `serve`/`listen` stop.
    pub(crate) stopping: tokio::sync::watch::Sender<bool>,
}

impl EngineShared {
    /// A new session id; `None` if the application's `generate_id` panicked (the reference refuses the
    /// handshake when its `generateId` throws).
    pub(crate) fn new_sid(&self, req: &request::Parts) -> Option<String> {
        loop {
            let sid = match &self.config.generate_id {
                Some(f) => crate::driver::contain(|| f(req))?,
                None => engineio_proto::handshake::sid_from_bytes(rand::random()),
            };
            if self.sessions.lookup(&sid).is_none() {
                return Some(sid);
            }
        }
    }
}

/// An Engine.IO server: the sessions and the options. Cheap to clone.
#[derive(Clone)]
pub struct Engine {
    shared: Arc<EngineShared>,
}

impl std::fmt::Debug for Engine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Engine").field("config", &self.shared.config).finish_non_exhaustive()
    }
}

impl Engine {
    /// A server with these options, handing sessions to `handler`.
    pub fn new(config: EngineConfig, handler: impl Handler) -> Self {
        Self::with_handler(config, Arc::new(handler))
    }

    /// Like [`Engine::new`], with a shared handler.
    pub fn with_handler(config: EngineConfig, handler: Arc<dyn Handler>) -> Self {
        let endpoint = config.endpoint_path();
        let sessions = Arc::new(Sessions::new(handler, config.max_sessions, config.max_sessions_per_address));
        Engine {
            shared: Arc::new(EngineShared {
                config,
                endpoint,
                sessions,
                stopping: tokio::sync::watch::Sender::new(false),
            }),
        }
    }

    /// The options.
    pub fn config(&self) -> &EngineConfig {
        &self.shared.config
    }

    /// A `Service` for hyper or tower (axum: `Router::route_service("/engine.io/", engine.service())`, or
    /// as a fallback). Requests outside the endpoint path get 404.
    pub fn service(&self) -> EngineService {
        EngineService { shared: self.shared.clone(), remote: None }
    }

    /// The open session with this ID.
    pub fn socket(&self, sid: &str) -> Option<Socket> {
        self.shared.sessions.lookup(sid)
    }

    /// The number of open sessions.
    pub fn session_count(&self) -> usize {
        self.shared.sessions.count()
    }

    /// Closes every session and waits until they have closed.
    ///
    /// Graceful shutdown: the accept loops of [`Engine::serve`] and [`Engine::listen`] stop taking
    /// connections, every session is told to close (frames already queued go out first), and the call
    /// waits at most 5 seconds (see [`Engine::close_within`]).
    pub async fn close(&self) {
        self.close_within(std::time::Duration::from_secs(5)).await;
    }

    /// [`Engine::close`], waiting at most `timeout` for the sessions to finish closing (a long-polling
    /// client that never comes back would otherwise hold a session for `close_timeout`). Returns whether
    /// every session closed in time.
    pub async fn close_within(&self, timeout: std::time::Duration) -> bool {
        self.shared.stopping.send_replace(true);
        let sockets: Vec<Socket> = self.shared.sessions.all();
        for s in &sockets {
            s.close();
        }
        let all = async {
            for s in &sockets {
                s.close_and_wait().await;
            }
        };
        tokio::time::timeout(timeout, all).await.is_ok()
    }

    /// Binds `addr` and serves the endpoint; returns the bound address and the accept loop's task.
    pub async fn listen(&self, addr: SocketAddr) -> std::io::Result<(SocketAddr, tokio::task::JoinHandle<()>)> {
        let listener = TcpListener::bind(addr).await?;
        let local = listener.local_addr()?;
        let service = self.service();
        Ok((local, tokio::spawn(async move { serve_listener(listener, service).await })))
    }

    /// Serves the endpoint on `addr` until the process ends: the standalone server for users without a
    /// web framework.
    pub async fn serve(&self, addr: SocketAddr) -> std::io::Result<()> {
        let listener = TcpListener::bind(addr).await?;
        serve_listener(listener, self.service()).await;
        Ok(())
    }
}

pub(crate) fn new_socket(
    shared: &EngineShared,
    parts: Arc<request::Parts>,
    transport: TransportKind,
    address: Option<std::net::IpAddr>,
) -> Option<Socket> {
    let sid: Arc<str> = shared.new_sid(&parts)?.into();
    Some(Socket {
        shared: Arc::new(SocketShared {
            overflowed: AtomicBool::new(false),
            queued_bytes: std::sync::atomic::AtomicUsize::new(0),
            max_queued_bytes: shared.config.max_queued_bytes,
            sid,
            request: parts,
            mailbox: Mailbox::new(shared.config.max_queued_commands),
            upgraded: AtomicBool::new(false),
            initial_transport: transport,
            address,
        }),
    })
}

/// A session slot taken by a handshake: given back when dropped, unless [`Slot::keep`] handed it to a
/// session (which gives it back when it ends). So a handshake that fails or panics midway leaks none.
pub(crate) struct Slot {
    pub(crate) shared: Arc<EngineShared>,
    pub(crate) address: Option<std::net::IpAddr>,
    pub(crate) kept: bool,
}

impl Slot {
    pub(crate) fn keep(mut self) {
        self.kept = true;
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        if !self.kept {
            self.shared.sessions.release(self.address);
        }
    }
}
