//! The endpoint: what one HTTP request to the Engine.IO path is for, decided from its facts and the
//! session table, as the counterpart of `quinn-proto`'s `Endpoint`. A runtime reads the request head, asks
//! [`Endpoint::route`], and carries out the [`Route`]: refuse it (the [`Refusal`] says the status and the
//! body), open a session over polling or WebSocket, or hand the request to session X as a long-poll GET, a
//! POST or the WebSocket of an upgrade. The runtime keeps what is its own: CORS and middlewares (before
//! `route`), `allow_request` and its limits on new sessions (after it), and the HTTP I/O.
//!
//! The checks and their order are the reference server's `verify()` and `handshake()` ([`verify`]),
//! followed by the WebSocket handshake's own (RFC 6455 4.2.1: a `Sec-WebSocket-Key` and version 13).
//!
//! ```
//! use engineio_proto::endpoint::{Endpoint, Method, RequestHead, Route};
//! use engineio_proto::TransportKind;
//!
//! let endpoint = Endpoint::new("/engine.io/", &[TransportKind::Polling, TransportKind::WebSocket]);
//! let head = RequestHead::new(Method::Get, "/engine.io/", "EIO=4&transport=polling");
//! assert!(matches!(endpoint.route(&head, |_| None), Route::Handshake { transport: TransportKind::Polling, .. }));
//! let head = RequestHead::new(Method::Get, "/engine.io/", "EIO=4&transport=polling&sid=abc");
//! let refused = match endpoint.route(&head, |_| None) { Route::Refuse(r) => r, other => panic!("{other:?}") };
//! assert_eq!((refused.status(), refused.body()), (400, r#"{"code":1,"message":"Session ID unknown"}"#.into()));
//! ```

use crate::handshake::{ErrorCode, Protocol, Query, RequestFacts, RequestKind, TransportKind, verify};
use crate::websocket::accept_key;

/// The HTTP method of a request, as far as Engine.IO cares.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Method {
    /// `GET`: a handshake, a long-poll, or a WebSocket.
    Get,
    /// `POST`: data from a polling client.
    Post,
    /// `OPTIONS`: a CORS preflight (answered by the runtime's CORS layer).
    Options,
    /// Anything else.
    Other,
}

impl Method {
    /// The method named `name` (case-sensitive, as HTTP methods are).
    pub fn parse(name: &str) -> Method {
        match name {
            "GET" => Method::Get,
            "POST" => Method::Post,
            "OPTIONS" => Method::Options,
            _ => Method::Other,
        }
    }
}

/// Whether a comma-separated header (every value of it, as given) lists `token`, compared without case:
/// how `Connection: keep-alive, Upgrade` and `Upgrade: websocket` are read.
pub fn has_token<'a>(values: impl IntoIterator<Item = &'a [u8]>, token: &str) -> bool {
    values.into_iter().any(|v| v.split(|&b| b == b',').any(|t| t.trim_ascii().eq_ignore_ascii_case(token.as_bytes())))
}

/// The WebSocket handshake headers of a request that asks for an upgrade.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct WebSocketHead<'a> {
    /// `Sec-WebSocket-Key`.
    pub key: Option<&'a [u8]>,
    /// `Sec-WebSocket-Version`.
    pub version: Option<&'a [u8]>,
}

/// The facts of a request that the endpoint looks at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RequestHead<'a> {
    /// The method.
    pub method: Method,
    /// The path, without the query.
    pub path: &'a str,
    /// The query string, without the `?`.
    pub query: &'a str,
    /// The raw `Origin` header, if any.
    pub origin: Option<&'a [u8]>,
    /// `Some` when the request asks for a WebSocket: a GET with `Upgrade: websocket` and `Connection:
    /// upgrade` (see [`has_token`]).
    pub websocket: Option<WebSocketHead<'a>>,
}

impl<'a> RequestHead<'a> {
    /// A plain HTTP request (no Origin, no upgrade); set the other fields as needed.
    pub fn new(method: Method, path: &'a str, query: &'a str) -> Self {
        RequestHead { method, path, query, origin: None, websocket: None }
    }
}

/// A request refused with an Engine.IO error code, and how it is answered: as the reference, a polling
/// request (or a preflight) gets status 400 or 403 with the JSON body `{"code":N,"message":"..."}`; a
/// WebSocket upgrade a plain `400 Bad Request` with the message as text, after which the connection is
/// closed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    /// The error code.
    pub code: ErrorCode,
    /// The message, when not the code's own ([`ErrorCode::message`]): `allow_request`'s, for example.
    pub message: Option<String>,
    /// Whether the request asked for a WebSocket.
    pub upgrade: bool,
}

impl Refusal {
    /// A refusal with the code's own message.
    pub fn new(code: ErrorCode, upgrade: bool) -> Self {
        Refusal { code, message: None, upgrade }
    }

    /// A refusal with this message.
    pub fn with_message(code: ErrorCode, message: impl Into<String>, upgrade: bool) -> Self {
        Refusal { code, message: Some(message.into()), upgrade }
    }

    /// The message sent.
    pub fn message(&self) -> &str {
        self.message.as_deref().unwrap_or(self.code.message())
    }

    /// The HTTP status: 400, or 403 for [`ErrorCode::Forbidden`] on polling.
    pub fn status(&self) -> u16 {
        if self.upgrade { 400 } else { self.code.http_status() }
    }

    /// The status line's code and reason, e.g. `400 Bad Request`.
    pub fn status_line(&self) -> &'static str {
        if self.status() == 403 { "403 Forbidden" } else { "400 Bad Request" }
    }

    /// The `Content-Type` of the body.
    pub fn content_type(&self) -> &'static str {
        if self.upgrade { "text/html" } else { "application/json" }
    }

    /// The body: the JSON error on polling, the message on an upgrade.
    pub fn body(&self) -> String {
        if self.upgrade { self.message().to_owned() } else { self.code.json_body(Some(self.message())) }
    }

    /// Whether the connection closes after the answer (a refused upgrade).
    pub fn closes_connection(&self) -> bool {
        self.upgrade
    }
}

/// What a request is for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Route {
    /// Not the endpoint's path: `404 Not Found`. (The reference's `destroyUpgrade` answers an upgrade
    /// there with 400 after `destroyUpgradeTimeout`; that timer is the runtime's.)
    NotFound,
    /// Refused.
    Refuse(Refusal),
    /// A new session over `transport`, once `allow_request` agrees. For a WebSocket, `accept` is the
    /// `Sec-WebSocket-Accept` value of the `101` answer.
    Handshake {
        /// The transport of the new session.
        transport: TransportKind,
        /// The decoded query (`b64`, and the application's parameters).
        query: Query,
        /// `Sec-WebSocket-Accept`, for a WebSocket.
        accept: Option<String>,
    },
    /// A long-poll GET of session `sid`.
    Poll {
        /// The session.
        sid: String,
    },
    /// A POST of session `sid`.
    Post {
        /// The session.
        sid: String,
    },
    /// A request of polling session `sid` with a method other than GET and POST: the reference's polling
    /// transport answers it `500` with an empty body, and the session goes on.
    OtherMethod {
        /// The session.
        sid: String,
    },
    /// A WebSocket that asks to take over polling session `sid`: answer `101` with `accept`, then hand the
    /// WebSocket to the session ([`crate::Session::handle_upgrade_request`]).
    Upgrade {
        /// The session.
        sid: String,
        /// The decoded query (`b64`).
        query: Query,
        /// `Sec-WebSocket-Accept`.
        accept: String,
    },
}

/// The Engine.IO endpoint: its path, enabled transports, and whether v3 clients are served.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    path: String,
    transports: Vec<TransportKind>,
    allow_eio3: bool,
}

impl Endpoint {
    /// An endpoint at `path` (requests whose path starts with it are its own; the reference's default is
    /// `/engine.io/`) with these transports enabled.
    pub fn new(path: impl Into<String>, transports: &[TransportKind]) -> Self {
        Endpoint { path: path.into(), transports: transports.to_vec(), allow_eio3: false }
    }

    /// Serves Engine.IO v3 clients too (the reference's `allowEIO3`; off by default, when a v3 handshake
    /// is refused with code 5).
    pub fn with_allow_eio3(mut self, allow: bool) -> Self {
        self.allow_eio3 = allow;
        self
    }

    /// The path.
    pub fn path(&self) -> &str {
        &self.path
    }

    /// Whether a request path is the endpoint's (checked first, before the runtime's CORS and
    /// middlewares; [`Endpoint::route`] checks it again).
    pub fn matches(&self, path: &str) -> bool {
        path.starts_with(&self.path)
    }

    /// What the request is for. `session` looks up an open session's current transport and protocol
    /// revision by its id (`None`: no such open session). A new session's revision is its query's
    /// [`Query::protocol`].
    pub fn route(
        &self,
        req: &RequestHead<'_>,
        session: impl FnOnce(&str) -> Option<(TransportKind, Protocol)>,
    ) -> Route {
        if !self.matches(req.path) {
            return Route::NotFound;
        }
        let upgrade = req.websocket.is_some() && req.method == Method::Get;
        let refuse = |code| Route::Refuse(Refusal::new(code, upgrade));
        // Engine.IO's parameters decide the route; the others are kept for a handshake or an upgrade only.
        let protocol = Query::parse_protocol(req.query);
        let facts = RequestFacts {
            query: &protocol,
            is_get: req.method == Method::Get,
            is_upgrade: upgrade,
            origin: req.origin,
        };
        let query = || Query::parse(req.query);
        let kind = match verify(facts, &self.transports, self.allow_eio3, session) {
            Ok(kind) => kind,
            Err(code) => return refuse(code),
        };
        let accept = || {
            let ws = req.websocket.unwrap_or_default();
            let version_ok = ws.version.is_some_and(|v| v.trim_ascii() == b"13");
            ws.key.filter(|k| version_ok && is_valid_key(k)).map(accept_key)
        };
        match kind {
            RequestKind::Handshake(TransportKind::WebSocket) => match accept() {
                Some(accept) => {
                    Route::Handshake { transport: TransportKind::WebSocket, query: query(), accept: Some(accept) }
                }
                None => refuse(ErrorCode::BadRequest),
            },
            RequestKind::Handshake(transport) => Route::Handshake { transport, query: query(), accept: None },
            RequestKind::Upgrade { sid } => match accept() {
                Some(accept) => Route::Upgrade { sid, query: query(), accept },
                None => refuse(ErrorCode::BadRequest),
            },
            RequestKind::Polling { sid } => match req.method {
                Method::Get => Route::Poll { sid },
                Method::Post => Route::Post { sid },
                _ => Route::OtherMethod { sid },
            },
        }
    }
}

/// RFC 6455 4.2.1: the key is the base64 of 16 bytes (24 characters, ending in `==`).
fn is_valid_key(key: &[u8]) -> bool {
    use base64::Engine as _;
    let key = key.trim_ascii();
    key.len() == 24 && base64::engine::general_purpose::STANDARD.decode(key).is_ok_and(|decoded| decoded.len() == 16)
}

#[cfg(test)]
mod tests {
    use super::*;

    const BOTH: &[TransportKind] = &[TransportKind::Polling, TransportKind::WebSocket];
    const KEY: &[u8] = b"dGhlIHNhbXBsZSBub25jZQ==";

    fn ws_head<'a>(query: &'a str, key: Option<&'a [u8]>, version: Option<&'a [u8]>) -> RequestHead<'a> {
        RequestHead {
            websocket: Some(WebSocketHead { key, version }),
            ..RequestHead::new(Method::Get, "/engine.io/", query)
        }
    }

    fn refused(route: Route) -> Refusal {
        match route {
            Route::Refuse(r) => r,
            other => panic!("expected a refusal, got {other:?}"),
        }
    }

    #[test]
    fn routes_each_kind_of_request() {
        let e = Endpoint::new("/engine.io/", BOTH);
        let polling = |sid: &str| (sid == "p").then_some((TransportKind::Polling, Protocol::V4));
        let get = RequestHead::new(Method::Get, "/engine.io/", "EIO=4&transport=polling&sid=p");
        assert_eq!(e.route(&get, polling), Route::Poll { sid: "p".into() });
        let post = RequestHead { method: Method::Post, ..get };
        assert_eq!(e.route(&post, polling), Route::Post { sid: "p".into() });
        let upgrade = ws_head("EIO=4&transport=websocket&sid=p&b64=1", Some(KEY), Some(b"13"));
        match e.route(&upgrade, polling) {
            Route::Upgrade { sid, query, accept } => {
                assert_eq!(sid, "p");
                assert!(query.b64);
                // RFC 6455's example.
                assert_eq!(accept, "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
            }
            other => panic!("{other:?}"),
        }
        let open = ws_head("EIO=4&transport=websocket&token=x", Some(KEY), Some(b"13"));
        match e.route(&open, polling) {
            Route::Handshake { transport, query, accept } => {
                assert_eq!(transport, TransportKind::WebSocket);
                assert_eq!(query.get("token"), Some("x"));
                assert_eq!(accept.as_deref(), Some("s3pPLMBiTxaQ9kYGzzhZRbK+xOo="));
            }
            other => panic!("{other:?}"),
        }
        let outside = RequestHead::new(Method::Get, "/other", "EIO=4&transport=polling");
        assert_eq!(e.route(&outside, polling), Route::NotFound);
    }

    #[test]
    fn refusals_carry_code_status_and_body_as_the_reference() {
        let e = Endpoint::new("/engine.io/", BOTH);
        let r = refused(e.route(&RequestHead::new(Method::Get, "/engine.io/", "EIO=4&transport=x"), |_| None));
        assert_eq!((r.code, r.status(), r.content_type()), (ErrorCode::UnknownTransport, 400, "application/json"));
        assert_eq!(r.body(), r#"{"code":0,"message":"Transport unknown"}"#);
        assert!(!r.closes_connection());
        let r = refused(e.route(&RequestHead::new(Method::Post, "/engine.io/", "EIO=4&transport=polling"), |_| None));
        assert_eq!(r.code, ErrorCode::BadHandshakeMethod);
        let v3 = RequestHead::new(Method::Get, "/engine.io/", "EIO=3&transport=polling");
        let r = refused(e.route(&v3, |_| None));
        assert_eq!(r.code, ErrorCode::UnsupportedProtocolVersion);
        assert_eq!(r.body(), r#"{"code":5,"message":"Unsupported protocol version"}"#);
        let e3 = e.clone().with_allow_eio3(true);
        assert!(matches!(e3.route(&v3, |_| None), Route::Handshake { transport: TransportKind::Polling, .. }));
        // A refused upgrade: a plain 400 with the message, and the connection closes.
        let r = refused(e.route(&ws_head("EIO=4&transport=websocket&sid=gone", Some(KEY), Some(b"13")), |_| None));
        assert_eq!((r.code, r.status(), r.content_type()), (ErrorCode::UnknownSid, 400, "text/html"));
        assert_eq!(r.body(), "Session ID unknown");
        assert!(r.closes_connection());
        // Forbidden is 403 on polling, 400 on an upgrade, with the application's message.
        let polling = Refusal::with_message(ErrorCode::Forbidden, "no entry", false);
        assert_eq!((polling.status(), polling.status_line()), (403, "403 Forbidden"));
        assert_eq!(polling.body(), r#"{"code":4,"message":"no entry"}"#);
        let upgrade = Refusal::with_message(ErrorCode::Forbidden, "no entry", true);
        assert_eq!(
            (upgrade.status(), upgrade.status_line(), upgrade.body()),
            (400, "400 Bad Request", "no entry".into())
        );
    }

    #[test]
    fn a_websocket_needs_a_valid_key_and_version_13() {
        let e = Endpoint::new("/engine.io/", BOTH);
        let q = "EIO=4&transport=websocket";
        for (key, version) in [
            (None, Some(&b"13"[..])),
            (Some(KEY), None),
            (Some(KEY), Some(&b"8"[..])),
            (Some(&b"short"[..]), Some(&b"13"[..])),
            // 24 characters that are not the base64 of 16 bytes.
            (Some(&b"!!!!!!!!!!!!!!!!!!!!!!=="[..]), Some(&b"13"[..])),
            (Some(&b"dGhlIHNhbXBsZSBub25jZSE="[..]), Some(&b"13"[..])),
        ] {
            let r = refused(e.route(&ws_head(q, key, version), |_| None));
            assert_eq!((r.code, r.upgrade), (ErrorCode::BadRequest, true), "{key:?} {version:?}");
        }
        // The same checks on an upgrade of a polling session.
        let r = refused(e.route(&ws_head("EIO=4&transport=websocket&sid=p", None, Some(b"13")), |_| {
            Some((TransportKind::Polling, Protocol::V4))
        }));
        assert_eq!(r.code, ErrorCode::BadRequest);
    }

    #[test]
    fn only_enabled_transports_and_only_get_or_post_on_a_session() {
        let e = Endpoint::new("/engine.io/", &[TransportKind::Polling]);
        let r = refused(e.route(&ws_head("EIO=4&transport=websocket", Some(KEY), Some(b"13")), |_| None));
        assert_eq!(r.code, ErrorCode::UnknownTransport);
        let put = RequestHead::new(Method::Other, "/engine.io/", "EIO=4&transport=polling&sid=p");
        assert_eq!(
            e.route(&put, |_| Some((TransportKind::Polling, Protocol::V4))),
            Route::OtherMethod { sid: "p".into() }
        );
    }

    #[test]
    fn header_tokens_are_read_as_lists_without_case() {
        assert!(has_token([&b"keep-alive, Upgrade"[..]], "upgrade"));
        assert!(has_token([&b"close"[..], &b" UPGRADE "[..]], "upgrade"));
        assert!(!has_token([&b"keep-alive"[..]], "upgrade"));
        assert!(!has_token([&b"upgrades"[..]], "upgrade"));
        assert!(!has_token(std::iter::empty(), "websocket"));
    }
}
