//! The public [`Engine`] handle: options, sessions, graceful close, and `listen`/`serve` for users without
//! a web framework. Its state lives in `shared.rs`; requests are served by `service.rs`.

use std::net::SocketAddr;
use std::sync::Arc;

use tokio::net::TcpListener;

use crate::config::EngineConfig;
use crate::http1::serve_listener;
use crate::service::EngineService;
use crate::sessions::Sessions;
use crate::shared::EngineShared;
use crate::socket::{Handler, Socket};

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
        // Every metric exists (at zero) from the start: the handles are made now.
        std::sync::LazyLock::force(&crate::telemetry::METRICS);
        let endpoint = engineio_proto::endpoint::Endpoint::new(config.endpoint_path(), &config.transports)
            .with_allow_eio3(config.allow_eio3);
        let sessions = Arc::new(Sessions::new(handler, config.max_sessions, config.max_sessions_per_address));
        Engine {
            shared: Arc::new(EngineShared {
                session_config: Arc::new(config.session_config()),
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

    /// A tower `Layer` that puts the endpoint in front of an application's service (axum:
    /// `Router::new().route(..).layer(engine.layer())`): requests under the endpoint's path are answered
    /// here, the others go to the application.
    pub fn layer(&self) -> crate::layer::EngineLayer {
        crate::layer::EngineLayer { service: self.service() }
    }

    /// The open session with this ID.
    pub fn socket(&self, sid: &str) -> Option<Socket> {
        self.shared.sessions.lookup(sid)
    }

    /// The number of open sessions.
    pub fn session_count(&self) -> usize {
        self.shared.sessions.count()
    }

    /// The number of open sessions still on long-polling (a walk over the sessions: for statistics, not
    /// for every request).
    pub fn polling_session_count(&self) -> usize {
        self.shared.sessions.polling_count()
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
    ///
    /// The listen backlog is 8192 (the kernel caps it at `net.core.somaxconn`): when thousands
    /// of clients reconnect at once, connections the accept loop has not taken yet wait there instead of
    /// being dropped (a dropped SYN costs the client a one-second retransmission).
    pub async fn listen(&self, addr: SocketAddr) -> std::io::Result<(SocketAddr, tokio::task::JoinHandle<()>)> {
        let listener = bind(addr)?;
        let local = listener.local_addr()?;
        let service = self.service();
        Ok((local, tokio::spawn(async move { serve_listener(listener, service).await })))
    }

    /// Serves the endpoint on `addr` until the process ends: the standalone server for users without a
    /// web framework.
    pub async fn serve(&self, addr: SocketAddr) -> std::io::Result<()> {
        let listener = bind(addr)?;
        serve_listener(listener, self.service()).await;
        Ok(())
    }
}

/// The listen backlog of [`Engine::listen`] and [`Engine::serve`] (tokio's `TcpListener::bind` uses 1024).
const LISTEN_BACKLOG: u32 = 8192;

/// A listener on `addr` with address reuse and a [`LISTEN_BACKLOG`]-deep accept queue.
fn bind(addr: SocketAddr) -> std::io::Result<TcpListener> {
    let socket = if addr.is_ipv4() { tokio::net::TcpSocket::new_v4()? } else { tokio::net::TcpSocket::new_v6()? };
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    socket.listen(LISTEN_BACKLOG)
}
