//! Server options: the Engine.IO options plus the reference socket.io server's own.

use std::sync::Arc;
use std::time::Duration;

use engineio_server::EngineConfig;
use socketio_proto::{JsonParser, Parser};

/// Connection state recovery (off by default), as the reference's `connectionStateRecovery`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct RecoveryConfig {
    /// How long a disconnected socket's state is kept (default 2 minutes).
    pub max_disconnection_duration: Duration,
    /// Whether a recovered socket skips the namespace middlewares (default true).
    pub skip_middlewares: bool,
}

impl Default for RecoveryConfig {
    fn default() -> Self {
        Self { max_disconnection_duration: Duration::from_secs(120), skip_middlewares: true }
    }
}

/// Options of the Socket.IO server, in the style of [`EngineConfig`]: start from the default and assign the
/// fields; the Engine.IO hooks are installed on `engine` with their methods.
///
/// ```
/// use std::time::Duration;
/// use socketio_server::{RecoveryConfig, SocketIoConfig};
///
/// let mut config = SocketIoConfig::default();
/// config.connect_timeout = Duration::from_secs(10);
/// config.connection_state_recovery = Some(RecoveryConfig::default());
/// config.engine.ping_interval = Duration::from_secs(20);
/// config.engine.headers(|headers, _req| {
///     headers.insert("x-app", "chat".parse().unwrap());
/// });
/// ```
#[derive(Clone)]
#[non_exhaustive]
pub struct SocketIoConfig {
    /// The Engine.IO options; `path` defaults to `/socket.io` here.
    pub engine: EngineConfig,
    /// Time a connection may go without joining a namespace before it is closed (default 45 s).
    pub connect_timeout: Duration,
    /// Connection state recovery; `None` (the default) turns it off.
    pub connection_state_recovery: Option<RecoveryConfig>,
    /// Drop dynamic child namespaces when their last socket leaves (default false).
    pub cleanup_empty_child_namespaces: bool,
    /// The wire format (default [`JsonParser`]).
    pub parser: Arc<dyn Parser>,
}

impl Default for SocketIoConfig {
    fn default() -> Self {
        let mut engine = EngineConfig::default();
        engine.path = "/socket.io".into();
        Self {
            engine,
            connect_timeout: Duration::from_secs(45),
            connection_state_recovery: None,
            cleanup_empty_child_namespaces: false,
            parser: Arc::new(JsonParser::default()),
        }
    }
}

impl std::fmt::Debug for SocketIoConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SocketIoConfig")
            .field("engine", &self.engine)
            .field("connect_timeout", &self.connect_timeout)
            .field("connection_state_recovery", &self.connection_state_recovery)
            .field("cleanup_empty_child_namespaces", &self.cleanup_empty_child_namespaces)
            .finish_non_exhaustive()
    }
}
