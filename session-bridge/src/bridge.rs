//! Sessions meet sockets: the engine middleware that loads (or creates) the session of a handshake, and the
//! Socket.IO side: a room per session, `socket.session()`, reload per packet, a periodic check that
//! disconnects sockets whose session expired or was destroyed, and `logout`.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use engineio_server::{BoxError, BoxFuture, Middleware};
use http::header::{COOKIE, SET_COOKIE};
use http::{HeaderMap, HeaderValue, request};
use socketio_server::{ConnectError, Event, Namespace, Socket, Value};

use crate::session::{CookieSettings, Session, SessionData, SessionError};
use crate::signature::{find_cookie, generate_session_id, session_id_from_cookie};
use crate::store::SessionStore;

/// What happens to a connection whose handshake carried no valid session.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Anonymous {
    /// Refused with CONNECT_ERROR [`BridgeConfig::refusal`] ("session required" by default).
    #[default]
    Reject,
    /// Accepted, without a session.
    Allow,
}

/// What happens to the sockets of a session found expired or destroyed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum OnExpired {
    /// They leave the namespace (the client sees "io server disconnect" and does not reconnect).
    #[default]
    Disconnect,
    /// Their connection is closed (the client reconnects, and meets the anonymous policy).
    CloseConnection,
}

/// A rule a loaded session must pass for its socket to connect (see [`BridgeConfig::require`]).
pub type SessionRule = Arc<dyn Fn(&Session) -> Result<(), ConnectError> + Send + Sync>;

/// Settings of the bridge: made by [`BridgeConfig::new`] (secrets and store), values assigned to the
/// fields, the session rule installed with [`BridgeConfig::require`].
#[derive(Clone)]
#[non_exhaustive]
pub struct BridgeConfig {
    /// Secrets: new cookies are signed with the first, any of them is accepted.
    pub secrets: Vec<String>,
    /// The session cookie.
    pub cookie: CookieSettings,
    /// Where sessions live.
    pub store: Arc<dyn SessionStore>,
    /// Create a session (and set the cookie) on handshakes that have none: for apps where this server
    /// issues sessions. Off when another app owns the login.
    pub create_sessions: bool,
    /// Connections without a session.
    pub anonymous: Anonymous,
    /// The CONNECT_ERROR (message and data) that refuses a connection without a session when
    /// `anonymous` is [`Anonymous::Reject`] (default: "session required", no data).
    pub refusal: ConnectError,
    /// Set by [`BridgeConfig::require`].
    pub(crate) rule: Option<SessionRule>,
    /// Reload the session before every incoming event.
    pub reload_each_packet: bool,
    /// How often connected sessions are reloaded to notice expiry or logout elsewhere (`None`: never).
    pub check_interval: Option<Duration>,
    /// What to do with the sockets of an expired session.
    pub on_expired: OnExpired,
}

impl BridgeConfig {
    /// Settings with these secrets and store, and the defaults: express-session's cookie, no session
    /// creation, anonymous connections refused, no per-packet reload, a check every 10 s.
    pub fn new(secrets: Vec<String>, store: Arc<dyn SessionStore>) -> Self {
        BridgeConfig {
            secrets,
            cookie: CookieSettings::default(),
            store,
            create_sessions: false,
            anonymous: Anonymous::Reject,
            refusal: ConnectError::new("session required"),
            rule: None,
            reload_each_packet: false,
            check_interval: Some(Duration::from_secs(10)),
            on_expired: OnExpired::Disconnect,
        }
    }

    /// Lets only sessions that pass `rule` connect (checked when a socket with a session connects); the
    /// rule's error is what the client gets as CONNECT_ERROR. In one line, "must be logged in":
    /// `config.require(|s| s.get("user").map(drop).ok_or_else(|| ConnectError::new("login required")))`.
    pub fn require(
        &mut self,
        rule: impl Fn(&Session) -> Result<(), ConnectError> + Send + Sync + 'static,
    ) -> &mut Self {
        self.rule = Some(Arc::new(rule));
        self
    }
}

struct Inner {
    config: BridgeConfig,
}

/// Shares HTTP sessions with Socket.IO. Cheap to clone.
#[derive(Clone)]
pub struct SessionBridge {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for SessionBridge {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SessionBridge").field("cookie", &self.inner.config.cookie).finish_non_exhaustive()
    }
}

impl SessionBridge {
    /// A bridge with these settings.
    pub fn new(config: BridgeConfig) -> Self {
        assert!(!config.secrets.is_empty(), "a session bridge needs at least one secret");
        SessionBridge { inner: Arc::new(Inner { config }) }
    }

    /// The settings.
    pub fn config(&self) -> &BridgeConfig {
        &self.inner.config
    }

    /// The engine middleware: add it to `EngineConfig::middlewares` (`config.engine =
    /// config.engine.middleware(bridge.engine_middleware())`).
    pub fn engine_middleware(&self) -> SessionMiddleware {
        SessionMiddleware { bridge: self.clone() }
    }

    /// The session of a request's cookies, if valid and in the store (for HTTP routes of the same app).
    ///
    /// Whether a session whose `cookie.expires` has passed is still there is the store's answer, as with
    /// express-session: [`crate::MemoryStore`] drops it (as express-session's `MemoryStore`), while the
    /// Redis store, like connect-redis, returns the record for as long as Redis keeps the key.
    pub async fn load(&self, headers: &HeaderMap) -> Result<Option<Session>, SessionError> {
        let Some(sid) = self.session_id(headers) else { return Ok(None) };
        let c = &self.inner.config;
        Ok(c.store.get(&sid).await?.map(|data| Session::new(sid, data, c.store.clone())))
    }

    /// A new, saved session and the `Set-Cookie` header value for it.
    pub async fn create(&self) -> Result<(Session, HeaderValue), SessionError> {
        let c = &self.inner.config;
        let sid = generate_session_id();
        let data = SessionData::new(&c.cookie);
        c.store.set(&sid, &data).await?;
        let header = HeaderValue::from_str(&c.cookie.set_cookie(&sid, &c.secrets[0]))
            .expect("a signed, URI-encoded cookie is a valid header");
        Ok((Session::new(sid, data, c.store.clone()), header))
    }

    /// The session of the request, or a new one with its `Set-Cookie` value.
    pub async fn load_or_create(&self, headers: &HeaderMap) -> Result<(Session, Option<HeaderValue>), SessionError> {
        if let Some(s) = self.load(headers).await? {
            return Ok((s, None));
        }
        let (s, h) = self.create().await?;
        Ok((s, Some(h)))
    }

    /// The verified session id in the request's cookie.
    pub fn session_id(&self, headers: &HeaderMap) -> Option<String> {
        let c = &self.inner.config;
        headers
            .get_all(COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .find_map(|h| find_cookie(h, &c.cookie.name))
            .and_then(|raw| session_id_from_cookie(raw, &c.secrets))
    }

    /// Makes a namespace session-aware. Call it before adding the application's connection handlers:
    /// every socket with a session joins the room named by the session id and can reach it with
    /// [`SocketSessionExt::session`]; sockets without one meet the anonymous policy.
    pub fn attach(&self, ns: &Namespace) {
        let bridge = self.clone();
        ns.use_middleware(move |socket: Socket| {
            let bridge = bridge.clone();
            async move {
                let session = socket.request_extensions().get::<Session>().cloned();
                let config = &bridge.inner.config;
                match (session, config.anonymous) {
                    (Some(s), _) => {
                        if let Some(rule) = &config.rule {
                            rule(&s)?;
                        }
                        socket.extensions().insert(s);
                        Ok(())
                    }
                    (None, Anonymous::Allow) => Ok(()),
                    (None, Anonymous::Reject) => Err(config.refusal.clone()),
                }
            }
        });
        let bridge = self.clone();
        ns.on_connection(move |socket: Socket| {
            let bridge = bridge.clone();
            async move {
                let Some(session) = socket.session() else { return };
                socket.join(session.id());
                if bridge.inner.config.reload_each_packet {
                    let on_expired = bridge.inner.config.on_expired;
                    socket.use_middleware(move |socket: Socket, ev: Event| async move {
                        let Some(session) = socket.session() else { return Ok(ev) };
                        match session.reload().await {
                            Ok(()) => Ok(ev),
                            Err(SessionError::NotFound) => {
                                expire(&socket, on_expired);
                                Err(Value::from("session expired"))
                            }
                            Err(e) => Err(Value::from(e.to_string())),
                        }
                    });
                }
            }
        });
        if let Some(interval) = self.inner.config.check_interval {
            let weak = Arc::downgrade(&self.inner);
            let ns = ns.clone();
            tokio::spawn(async move {
                let mut tick = tokio::time::interval(interval);
                tick.tick().await;
                loop {
                    tick.tick().await;
                    let Some(inner) = weak.upgrade() else { return };
                    SessionBridge { inner }.check(&ns).await;
                }
            });
        }
    }

    /// Reloads every session of the namespace's local sockets once; sockets of sessions that are gone
    /// are disconnected (see [`OnExpired`]). Runs every `check_interval` after [`SessionBridge::attach`].
    pub async fn check(&self, ns: &Namespace) {
        let mut by_session: HashMap<String, (Session, Vec<Socket>)> = HashMap::new();
        for socket in ns.sockets() {
            if let Some(s) = socket.session() {
                by_session.entry(s.id().to_owned()).or_insert_with(|| (s, Vec::new())).1.push(socket);
            }
        }
        for (_, (session, sockets)) in by_session {
            if let Err(SessionError::NotFound) = session.reload().await {
                for s in sockets {
                    expire(&s, self.inner.config.on_expired);
                }
            }
        }
    }

    /// Logs a session out: destroys it in the store and disconnects every socket in its room, on every
    /// server when the namespace's adapter spans several.
    pub async fn logout(&self, ns: &Namespace, sid: &str) -> Result<(), SessionError> {
        self.inner.config.store.destroy(sid).await?;
        ns.in_(sid)
            .disconnect_sockets(false)
            .await
            .map_err(|e| SessionError::Store(crate::store::StoreError::Backend(e.to_string())))
    }
}

fn expire(socket: &Socket, on_expired: OnExpired) {
    socket.disconnect(on_expired == OnExpired::CloseConnection);
}

/// The engine middleware of a [`SessionBridge`]: on a handshake (a request without `sid`), loads the
/// session of the `connect.sid` cookie into the request's extensions, or creates one and sets the cookie
/// when the bridge creates sessions.
#[derive(Clone, Debug)]
pub struct SessionMiddleware {
    bridge: SessionBridge,
}

impl Middleware for SessionMiddleware {
    fn handle<'a>(
        &'a self,
        req: &'a mut request::Parts,
        res: &'a mut HeaderMap,
    ) -> BoxFuture<'a, Result<(), BoxError>> {
        Box::pin(async move {
            // A handshake is a request without a sid (decoded and tested as the engine does).
            let handshake =
                engineio_server::proto::handshake::Query::parse(req.uri.query().unwrap_or("")).sid.is_none();
            if !handshake {
                return Ok(());
            }
            let session = match self.bridge.load(&req.headers).await? {
                Some(s) => Some(s),
                None if self.bridge.inner.config.create_sessions => {
                    let (s, cookie) = self.bridge.create().await?;
                    res.append(SET_COOKIE, cookie);
                    Some(s)
                }
                None => None,
            };
            if let Some(s) = session {
                req.extensions.insert(s);
            }
            Ok(())
        })
    }
}

/// `socket.session()`.
pub trait SocketSessionExt {
    /// The session of the socket's handshake, if it had one.
    fn session(&self) -> Option<Session>;
}

impl SocketSessionExt for Socket {
    fn session(&self) -> Option<Session> {
        self.extensions().get::<Session>().cloned()
    }
}
