//! Server options, with the reference server's names, defaults and meaning.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use engineio_proto::{Message, TransportKind};
use http::{HeaderMap, request};

use crate::cookie::CookieOptions;
use crate::cors::CorsOptions;

/// A boxed future, as returned by the asynchronous hooks.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// An error from a request middleware; the request is refused with code 3 "Bad request".
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Runs on every HTTP request of the endpoint and on the WebSocket upgrade, before the request is checked:
/// it can read the request, put values in its extensions (they stay on the session's handshake request
/// for a handshake), and add response headers, `Set-Cookie` included. An error refuses the request with
/// code 3 (`{"code":3,"message":"Bad request"}`, or a plain 400 on an upgrade).
pub trait Middleware: Send + Sync + 'static {
    /// Handles one request.
    fn handle<'a>(
        &'a self,
        request: &'a mut request::Parts,
        response_headers: &'a mut HeaderMap,
    ) -> BoxFuture<'a, Result<(), BoxError>>;
}

/// A plain function or closure is a middleware too, for the checks that need no waiting:
///
/// ```
/// use engineio_server::{BoxError, EngineConfig};
/// use engineio_server::http::{HeaderMap, request};
///
/// let mut config = EngineConfig::default();
/// config.middleware(|req: &mut request::Parts, _: &mut HeaderMap| -> Result<(), BoxError> {
///     if req.headers.contains_key("x-api-key") { Ok(()) } else { Err("no api key".into()) }
/// });
/// ```
impl<F> Middleware for F
where
    F: Fn(&mut request::Parts, &mut HeaderMap) -> Result<(), BoxError> + Send + Sync + 'static,
{
    fn handle<'a>(
        &'a self,
        request: &'a mut request::Parts,
        response_headers: &'a mut HeaderMap,
    ) -> BoxFuture<'a, Result<(), BoxError>> {
        let result = self(request, response_headers);
        Box::pin(std::future::ready(result))
    }
}

/// The decision of [`EngineConfig::allow_request`]: `Err(message)` refuses the handshake with code 4.
pub type AllowRequest = Arc<dyn Fn(Arc<request::Parts>) -> BoxFuture<'static, Result<(), String>> + Send + Sync>;

/// A hook that adds headers to a response: `(response headers, request)`.
pub type HeadersHook = Arc<dyn Fn(&mut HeaderMap, &request::Parts) + Send + Sync>;

/// A session ID generator: called once per handshake.
pub type GenerateId = Arc<dyn Fn(&request::Parts) -> String + Send + Sync>;

/// Observes refused requests.
pub type ConnectionErrorHook = Arc<dyn Fn(&ConnectionError<'_>) + Send + Sync>;

/// A request refused before it reached a session, as reported to [`EngineConfig::on_connection_error`].
#[derive(Debug)]
pub struct ConnectionError<'a> {
    /// The reference error code.
    pub code: engineio_proto::ErrorCode,
    /// The message sent to the client.
    pub message: &'a str,
    /// More detail for logs (for example the middleware's error).
    pub context: Option<&'a str>,
    /// The refused request.
    pub request: &'a request::Parts,
}

/// Compression of long-polling response bodies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct HttpCompression {
    /// Bodies shorter than this are sent as they are (default 1024).
    pub threshold: usize,
}

impl Default for HttpCompression {
    fn default() -> Self {
        Self { threshold: 1024 }
    }
}

/// WebSocket compression settings.
///
/// Memory: a connection makes zlib's contexts only when a message is compressed (about 300 KiB to deflate,
/// 40 KiB to inflate with the default backend), and keeps them between messages unless a
/// `*_no_context_takeover` parameter was agreed. Setting the two options here makes the server ask for
/// them itself (RFC 7692 lets a server add both to its response): the contexts are then dropped after each
/// message, for a lower compression ratio on similar messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct PerMessageDeflate {
    /// Messages shorter than this are sent uncompressed (default 1024, as the reference).
    pub threshold: usize,
    /// Compress each message on its own, keeping no deflate context between messages (default false, as
    /// the reference's `serverNoContextTakeover`).
    pub server_no_context_takeover: bool,
    /// Ask clients to compress each message on its own, so no inflate context is kept between messages
    /// (default false, as the reference's `clientNoContextTakeover`).
    pub client_no_context_takeover: bool,
}

impl Default for PerMessageDeflate {
    fn default() -> Self {
        Self { threshold: 1024, server_no_context_takeover: false, client_no_context_takeover: false }
    }
}

/// Options of the Engine.IO server, in one style: start from [`EngineConfig::default`], assign the values
/// (public fields), and install the hooks (closures) with their methods, which take `&mut self`:
///
/// ```
/// use std::time::Duration;
/// use engineio_server::EngineConfig;
///
/// let mut config = EngineConfig::default();
/// config.ping_interval = Duration::from_secs(10);
/// config.max_sessions = Some(10_000);
/// config
///     .allow_request(|req| async move {
///         if req.headers.contains_key("x-token") { Ok(()) } else { Err("no token".into()) }
///     })
///     .headers(|headers, _req| {
///         headers.insert("x-served-by", "engineio".parse().unwrap());
///     });
/// ```
///
/// The struct is `#[non_exhaustive]`: new options can come without breaking code written this way.
#[derive(Clone)]
#[non_exhaustive]
pub struct EngineConfig {
    /// Time between pings (default 25 000 ms).
    pub ping_interval: Duration,
    /// Time to wait for a pong (default 20 000 ms).
    pub ping_timeout: Duration,
    /// Time allowed to complete an upgrade (default 10 000 ms).
    pub upgrade_timeout: Duration,
    /// Largest accepted message or POST body in bytes, advertised as `maxPayload` (default 1e6). A larger
    /// POST gets 413; a larger WebSocket frame closes the connection with 1009.
    pub max_http_buffer_size: usize,
    /// Enabled transports (default both).
    pub transports: Vec<TransportKind>,
    /// Whether polling sessions may upgrade (default true).
    pub allow_upgrades: bool,
    /// A message sent right after the open packet.
    pub initial_packet: Option<Message>,
    /// The endpoint path (default `/engine.io`).
    pub path: String,
    /// Whether a `/` is appended to `path` (default true). The path matches as a prefix.
    pub add_trailing_slash: bool,
    /// Accept Engine.IO v3 clients. v3 is not implemented: such handshakes are refused with code 5 either way.
    pub allow_eio3: bool,
    /// Gzip/deflate of polling responses (default on, threshold 1024 bytes).
    pub http_compression: Option<HttpCompression>,
    /// WebSocket permessage-deflate (off by default, as the reference). When on, a client's offer is
    /// accepted and messages of at least `threshold` bytes are compressed.
    pub per_message_deflate: Option<PerMessageDeflate>,
    /// End upgrade requests on other paths after `destroy_upgrade_timeout` (default true, 1000 ms).
    pub destroy_upgrade: bool,
    /// See `destroy_upgrade`.
    pub destroy_upgrade_timeout: Duration,
    /// The `io` cookie (off by default).
    pub cookie: Option<CookieOptions>,
    /// CORS and the Origin check (off by default).
    pub cors: Option<CorsOptions>,
    /// Set by [`EngineConfig::allow_request`].
    pub(crate) allow_request: Option<AllowRequest>,
    /// Set by [`EngineConfig::initial_headers`].
    pub(crate) initial_headers: Option<HeadersHook>,
    /// Set by [`EngineConfig::headers`].
    pub(crate) headers: Option<HeadersHook>,
    /// Added to by [`EngineConfig::middleware`].
    pub(crate) middlewares: Vec<Arc<dyn Middleware>>,
    /// Set by [`EngineConfig::generate_id`].
    pub(crate) generate_id: Option<GenerateId>,
    /// Set by [`EngineConfig::on_connection_error`].
    pub(crate) on_connection_error: Option<ConnectionErrorHook>,
    /// Most commands (outgoing frames) queued for one session before `send` reports it full (default 1024).
    pub max_queued_commands: usize,
    /// Most frames held for a long-polling client between its requests; past it the session closes with
    /// "buffer full" (default 16 384).
    pub max_buffered_frames: usize,
    /// Most bytes held for a long-polling client between its requests, likewise (default 8 MiB).
    pub max_buffered_bytes: usize,
    /// Most bytes of frames waiting in a session's mailbox; like `max_queued_commands`, a send past it is
    /// refused and ends the session with "buffer full" (default 8 MiB).
    pub max_queued_bytes: usize,
    /// Most open sessions; more handshakes are refused like an `allow_request` refusal (403 code 4 "too many
    /// sessions" on polling, 400 on WebSocket). Default: no limit, as the reference.
    pub max_sessions: Option<usize>,
    /// Most open sessions per remote IP address (known when served by `Engine::serve`/`listen`, or when the
    /// request carries a [`crate::RemoteAddr`] extension). Default: no limit.
    pub max_sessions_per_address: Option<usize>,
    /// How long the standalone listener ([`crate::Engine::listen`], `serve`) keeps an HTTP connection open
    /// with nothing of its next request received; then closes it (default 5 000 ms, the reference's
    /// `keepAliveTimeout`; `None`: never). A pending long-poll is not idle. Unused when the endpoint is
    /// mounted in an application, whose server has its own.
    pub keep_alive_timeout: Option<Duration>,
    /// How long the standalone listener waits for the whole head of a request once it began (and for a new
    /// connection's first request); then answers 408 and closes (default 60 000 ms, the reference's
    /// `headersTimeout`; `None`: no limit).
    pub headers_timeout: Option<Duration>,
}

impl Default for EngineConfig {
    fn default() -> Self {
        Self {
            ping_interval: Duration::from_millis(25_000),
            ping_timeout: Duration::from_millis(20_000),
            upgrade_timeout: Duration::from_millis(10_000),
            max_http_buffer_size: 1_000_000,
            transports: vec![TransportKind::Polling, TransportKind::WebSocket],
            allow_upgrades: true,
            initial_packet: None,
            path: "/engine.io".into(),
            add_trailing_slash: true,
            allow_eio3: false,
            http_compression: Some(HttpCompression::default()),
            per_message_deflate: None,
            destroy_upgrade: true,
            destroy_upgrade_timeout: Duration::from_millis(1000),
            cookie: None,
            cors: None,
            allow_request: None,
            initial_headers: None,
            headers: None,
            middlewares: Vec::new(),
            generate_id: None,
            on_connection_error: None,
            max_queued_commands: 1024,
            max_buffered_frames: 16_384,
            max_buffered_bytes: 8 << 20,
            max_queued_bytes: 8 << 20,
            max_sessions: None,
            max_sessions_per_address: None,
            keep_alive_timeout: Some(Duration::from_millis(5_000)),
            headers_timeout: Some(Duration::from_millis(60_000)),
        }
    }
}

impl std::fmt::Debug for EngineConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EngineConfig")
            .field("ping_interval", &self.ping_interval)
            .field("ping_timeout", &self.ping_timeout)
            .field("upgrade_timeout", &self.upgrade_timeout)
            .field("max_http_buffer_size", &self.max_http_buffer_size)
            .field("transports", &self.transports)
            .field("allow_upgrades", &self.allow_upgrades)
            .field("path", &self.path)
            .field("cookie", &self.cookie)
            .field("cors", &self.cors)
            .finish_non_exhaustive()
    }
}

impl EngineConfig {
    /// Checks every handshake, after the protocol checks, with an async function of its request:
    /// `Err(message)` refuses it with code 4 ("Forbidden") and that message, as the reference's
    /// `allowRequest`.
    pub fn allow_request<F, Fut>(&mut self, f: F) -> &mut Self
    where
        F: Fn(Arc<request::Parts>) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<(), String>> + Send + 'static,
    {
        self.allow_request = Some(Arc::new(move |req| Box::pin(f(req))));
        self
    }

    /// Adds headers to the handshake response (polling handshake and WebSocket 101), as the reference's
    /// `initial_headers` event.
    pub fn initial_headers(
        &mut self,
        f: impl Fn(&mut HeaderMap, &request::Parts) + Send + Sync + 'static,
    ) -> &mut Self {
        self.initial_headers = Some(Arc::new(f));
        self
    }

    /// Adds headers to every polling response and to every WebSocket 101, as the reference's `headers`
    /// event.
    pub fn headers(&mut self, f: impl Fn(&mut HeaderMap, &request::Parts) + Send + Sync + 'static) -> &mut Self {
        self.headers = Some(Arc::new(f));
        self
    }

    /// Appends a request middleware (a [`Middleware`], or a plain closure of the request and the response
    /// headers); middlewares run in the order they were added.
    pub fn middleware(&mut self, m: impl Middleware) -> &mut Self {
        self.middlewares.push(Arc::new(m));
        self
    }

    /// Generates session IDs (called once per handshake) instead of the default: 15 random bytes from the
    /// OS-seeded CSPRNG, URL-safe base64.
    pub fn generate_id(&mut self, f: impl Fn(&request::Parts) -> String + Send + Sync + 'static) -> &mut Self {
        self.generate_id = Some(Arc::new(f));
        self
    }

    /// Observes every refused request, as the reference's `connection_error` event.
    pub fn on_connection_error(&mut self, f: impl Fn(&ConnectionError<'_>) + Send + Sync + 'static) -> &mut Self {
        self.on_connection_error = Some(Arc::new(f));
        self
    }

    /// The path prefix requests must start with.
    pub fn endpoint_path(&self) -> String {
        let mut p = self.path.trim_end_matches('/').to_owned();
        if self.add_trailing_slash {
            p.push('/');
        }
        if p.is_empty() { "/".into() } else { p }
    }

    pub(crate) fn session_config(&self) -> engineio_proto::SessionConfig {
        engineio_proto::SessionConfig {
            ping_interval: self.ping_interval,
            ping_timeout: self.ping_timeout,
            upgrade_timeout: self.upgrade_timeout,
            close_timeout: Duration::from_millis(30_000),
            max_payload: self.max_http_buffer_size,
            allow_upgrades: self.allow_upgrades && self.transports.contains(&TransportKind::WebSocket),
            max_buffered_frames: self.max_buffered_frames,
            max_buffered_bytes: self.max_buffered_bytes,
        }
    }
}
