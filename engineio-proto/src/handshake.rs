//! The handshake: validating an incoming request and the open packet that starts a session.
//!
//! Protocol description, section "Handshake". The checks and their order follow the reference server's
//! `verify()` and `handshake()` (transport, Origin characters, sid, method, WebSocket over plain HTTP,
//! then the protocol version of a new session), so that every bad request gets the same error code and
//! message as from the reference.

use std::borrow::Cow;
use std::fmt;

use serde::Serialize;

/// The transports of Engine.IO v4.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TransportKind {
    /// HTTP long-polling.
    Polling,
    /// WebSocket.
    WebSocket,
}

impl TransportKind {
    /// The name used in the `transport` query parameter and in `upgrades`.
    pub fn as_str(self) -> &'static str {
        match self {
            TransportKind::Polling => "polling",
            TransportKind::WebSocket => "websocket",
        }
    }

    /// Parses a `transport` query value.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "polling" => Some(TransportKind::Polling),
            "websocket" => Some(TransportKind::WebSocket),
            _ => None,
        }
    }
}

impl fmt::Display for TransportKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The Engine.IO protocol revision a session speaks, chosen by its handshake's `EIO` query parameter.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub enum Protocol {
    /// Revision 3: the clients of Socket.IO 2 (see [`crate::v3`]); served only when the runtime allows it.
    V3,
    /// Revision 4, the current one.
    #[default]
    V4,
}

impl Protocol {
    /// The revision's number, as in the `EIO` query parameter.
    pub fn number(self) -> u8 {
        match self {
            Protocol::V3 => 3,
            Protocol::V4 => 4,
        }
    }
}

impl fmt::Display for Protocol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.number())
    }
}

/// The error codes of the reference server, sent as `{"code":N,"message":"..."}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum ErrorCode {
    /// 0: the transport is missing or not enabled.
    UnknownTransport = 0,
    /// 1: the sid is unknown or the session closed.
    UnknownSid = 1,
    /// 2: a handshake that is not a GET.
    BadHandshakeMethod = 2,
    /// 3: bad Origin, WebSocket over plain HTTP, transport mismatch, middleware failure.
    BadRequest = 3,
    /// 4: refused by `allow_request`.
    Forbidden = 4,
    /// 5: `EIO` is not `4` (and v3 is not allowed).
    UnsupportedProtocolVersion = 5,
}

impl ErrorCode {
    /// The numeric code.
    pub fn code(self) -> u8 {
        self as u8
    }

    /// The reference server's default message for this code.
    pub fn message(self) -> &'static str {
        match self {
            ErrorCode::UnknownTransport => "Transport unknown",
            ErrorCode::UnknownSid => "Session ID unknown",
            ErrorCode::BadHandshakeMethod => "Bad handshake method",
            ErrorCode::BadRequest => "Bad request",
            ErrorCode::Forbidden => "Forbidden",
            ErrorCode::UnsupportedProtocolVersion => "Unsupported protocol version",
        }
    }

    /// The HTTP status of a polling error reply: 403 for [`ErrorCode::Forbidden`], 400 otherwise.
    pub fn http_status(self) -> u16 {
        if self == ErrorCode::Forbidden { 403 } else { 400 }
    }

    /// The JSON body of a polling error reply, with `message` or the default one.
    pub fn json_body(self, message: Option<&str>) -> String {
        #[derive(Serialize)]
        struct Body<'a> {
            code: u8,
            message: &'a str,
        }
        serde_json::to_string(&Body { code: self.code(), message: message.unwrap_or(self.message()) })
            .expect("serializing a string and a number cannot fail")
    }
}

/// The Engine.IO parameters of a request's query string.
///
/// Parsed as the reference server reads `req._query` (the WHATWG `URLSearchParams` of the URL, turned into
/// an object): keys and values percent-decoded with `+` read as a space, and for a repeated key the last
/// value wins.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Query {
    /// `EIO`: the protocol version.
    pub eio: Option<String>,
    /// `transport`.
    pub transport: Option<String>,
    /// `sid`: present on every request of an existing session. An empty `sid=` counts as absent, as in the
    /// reference (which tests it for truthiness).
    pub sid: Option<String>,
    /// `b64`: set (to anything but the empty string) by clients that cannot receive binary WebSocket
    /// frames (the client option `forceBase64`).
    pub b64: bool,
    /// Every parameter, decoded, in order (the ones above included): what the application may read, such
    /// as a client's `query` option. See [`Query::get`].
    pub params: Vec<(String, String)>,
}

impl Query {
    /// Parses a URL query string (without the `?`). Parameters other than Engine.IO's are kept in
    /// [`Query::params`].
    pub fn parse(query: &str) -> Query {
        Self::parse_with(query, true)
    }

    /// As [`Query::parse`], with [`Query::params`] left empty: Engine.IO's own parameters alone, all that
    /// [`verify`] looks at. For the requests of an open session (its long-polls and POSTs), whose other
    /// parameters nobody reads: two allocations less per parameter.
    pub fn parse_protocol(query: &str) -> Query {
        Self::parse_with(query, false)
    }

    fn parse_with(query: &str, keep_params: bool) -> Query {
        let mut q = Query::default();
        for (key, value) in query_pairs(query) {
            match &*key {
                "EIO" => q.eio = Some(value.to_string()),
                "transport" => q.transport = Some(value.to_string()),
                "sid" => q.sid = Some(value.to_string()).filter(|s| !s.is_empty()),
                "b64" => q.b64 = !value.is_empty(),
                _ => {}
            }
            if keep_params {
                q.params.push((key.into_owned(), value.into_owned()));
            }
        }
        q
    }

    /// The value of a parameter, decoded; for a repeated key the last one, as the reference's
    /// `req._query`.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.params.iter().rev().find(|(k, _)| k == key).map(|(_, v)| v.as_str())
    }

    /// The protocol revision a request speaks, as the reference computes it: 4 when `EIO` is `4`, and 3
    /// for anything else (a missing `EIO` included).
    pub fn protocol(&self) -> Protocol {
        if self.eio.as_deref() == Some("4") { Protocol::V4 } else { Protocol::V3 }
    }
}

/// The decoded `(key, value)` pairs of a URL query string (without the `?`), in order, as the WHATWG
/// `application/x-www-form-urlencoded` parser that the reference uses reads them: pairs split on `&`
/// (empty ones skipped), key and value split on the first `=`, `+` read as a space, `%XX` decoded, a `%`
/// that does not start a valid escape kept as it is, and bytes that are not UTF-8 replaced by U+FFFD.
///
/// The reference turns the pairs into an object, so for a repeated key the last one wins; collect them
/// into a map in order to get the same.
///
/// ```
/// use engineio_proto::handshake::query_pairs;
/// let pairs: Vec<(String, String)> =
///     query_pairs("a=%26a&b=f%20g&c=x+y&d=100%&e").map(|(k, v)| (k.into_owned(), v.into_owned())).collect();
/// assert_eq!(pairs, [("a", "&a"), ("b", "f g"), ("c", "x y"), ("d", "100%"), ("e", "")]
///     .map(|(k, v)| (k.to_owned(), v.to_owned())));
/// ```
pub fn query_pairs(query: &str) -> impl Iterator<Item = (Cow<'_, str>, Cow<'_, str>)> {
    query.split('&').filter(|p| !p.is_empty()).map(|pair| {
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        (percent_decode(key), percent_decode(value))
    })
}

/// Decodes one component of a query string: see [`query_pairs`].
pub fn percent_decode(s: &str) -> Cow<'_, str> {
    if !s.contains(['%', '+']) {
        return Cow::Borrowed(s);
    }
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() => {
                let hex = |c: u8| (c as char).to_digit(16);
                match (hex(bytes[i + 1]), hex(bytes[i + 2])) {
                    (Some(h), Some(l)) => {
                        out.push((h * 16 + l) as u8);
                        i += 2;
                    }
                    _ => out.push(b'%'),
                }
            }
            c => out.push(c),
        }
        i += 1;
    }
    Cow::Owned(String::from_utf8_lossy(&out).into_owned())
}

/// What a valid request is for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RequestKind {
    /// A new session over this transport (`allow_request` still has to agree).
    Handshake(TransportKind),
    /// A long-polling GET or POST of an existing session.
    Polling {
        /// The session ID.
        sid: String,
    },
    /// A WebSocket for an existing polling session: the start of an upgrade.
    Upgrade {
        /// The session ID.
        sid: String,
    },
}

/// The request facts that [`verify`] looks at.
#[derive(Debug, Clone, Copy)]
pub struct RequestFacts<'a> {
    /// The parsed query.
    pub query: &'a Query,
    /// Whether the HTTP method is GET.
    pub is_get: bool,
    /// Whether the request asks for a WebSocket upgrade.
    pub is_upgrade: bool,
    /// The raw `Origin` header, if any.
    pub origin: Option<&'a [u8]>,
}

/// Checks a request as the reference server's `verify()` and `handshake()` do, in the same order.
///
/// `enabled` is the `transports` option and `allow_eio3` the option of that name (a v3 handshake is refused
/// with code 5 without it); `session` looks up an existing session's current transport and protocol by sid
/// (`None` when there is no such open session). A request of a session must speak its protocol (code 3).
pub fn verify(
    req: RequestFacts<'_>,
    enabled: &[TransportKind],
    allow_eio3: bool,
    session: impl FnOnce(&str) -> Option<(TransportKind, Protocol)>,
) -> Result<RequestKind, ErrorCode> {
    let transport = req
        .query
        .transport
        .as_deref()
        .and_then(TransportKind::parse)
        .filter(|t| enabled.contains(t))
        .ok_or(ErrorCode::UnknownTransport)?;
    if req.origin.is_some_and(|o| o.iter().any(|&c| is_invalid_header_char(c))) {
        return Err(ErrorCode::BadRequest);
    }
    if let Some(sid) = &req.query.sid {
        let (current, protocol) = session(sid).ok_or(ErrorCode::UnknownSid)?;
        if req.is_upgrade {
            if transport != TransportKind::WebSocket {
                return Err(ErrorCode::BadRequest);
            }
        } else if current != transport || transport != TransportKind::Polling {
            return Err(ErrorCode::BadRequest);
        }
        // Every request of a session speaks the session's protocol revision (the reference's
        // PROTOCOL_MISMATCH); sessions are all v4 here.
        if req.query.protocol() != protocol {
            return Err(ErrorCode::BadRequest);
        }
        return Ok(if req.is_upgrade {
            RequestKind::Upgrade { sid: sid.clone() }
        } else {
            RequestKind::Polling { sid: sid.clone() }
        });
    }
    if !req.is_get {
        return Err(ErrorCode::BadHandshakeMethod);
    }
    if (transport == TransportKind::WebSocket) != req.is_upgrade {
        return Err(ErrorCode::BadRequest);
    }
    if req.query.protocol() == Protocol::V3 && !allow_eio3 {
        return Err(ErrorCode::UnsupportedProtocolVersion);
    }
    Ok(RequestKind::Handshake(transport))
}

/// Node's `checkInvalidHeaderChar`: anything but tab and visible Latin-1 is invalid.
fn is_invalid_header_char(c: u8) -> bool {
    !(c == b'\t' || (0x20..=0x7e).contains(&c) || c >= 0x80)
}

/// The handshake data sent in the open packet.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct OpenPacket {
    /// The session ID.
    pub sid: String,
    /// The transports the client may upgrade to.
    pub upgrades: Vec<&'static str>,
    /// Milliseconds between pings.
    pub ping_interval: u64,
    /// Milliseconds to wait for a pong.
    pub ping_timeout: u64,
    /// The largest payload the server accepts, in bytes.
    pub max_payload: u64,
}

impl OpenPacket {
    /// The JSON text of the open packet (without the `0`).
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).expect("serializing plain fields cannot fail")
    }
}

/// A source of session IDs. The runtime supplies one backed by a secure random generator; tests use
/// [`SeededSidGenerator`] to be deterministic.
pub trait SidGenerator: Send {
    /// A new session ID, unique among the open sessions.
    fn generate(&mut self) -> String;
}

/// Formats 15 random bytes as a session ID: 20 characters of URL-safe base64, as the reference's
/// `base64id`.
pub fn sid_from_bytes(bytes: [u8; 15]) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

/// A deterministic ID generator (splitmix64). Predictable by design: for tests and simulations only,
/// never for a server facing the network.
#[derive(Debug, Clone)]
pub struct SeededSidGenerator {
    state: u64,
}

impl SeededSidGenerator {
    /// A generator whose sequence is fixed by `seed`.
    pub fn new(seed: u64) -> Self {
        Self { state: seed }
    }

    fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
}

impl SidGenerator for SeededSidGenerator {
    fn generate(&mut self) -> String {
        let mut bytes = [0u8; 15];
        let a = self.next_u64().to_le_bytes();
        let b = self.next_u64().to_le_bytes();
        bytes[..8].copy_from_slice(&a);
        bytes[8..].copy_from_slice(&b[..7]);
        sid_from_bytes(bytes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ALL: &[TransportKind] = &[TransportKind::Polling, TransportKind::WebSocket];

    fn facts<'a>(query: &'a Query, is_get: bool, is_upgrade: bool) -> RequestFacts<'a> {
        RequestFacts { query, is_get, is_upgrade, origin: None }
    }

    #[test]
    fn parse_protocol_reads_the_same_engine_io_parameters_and_keeps_no_others() {
        for query in ["EIO=4&transport=polling&t=Nz1&sid=zz&sid=ab%2Dc", "%45IO=3&b64=1&token=x", "sid=&EIO=4", ""] {
            let (full, lean) = (Query::parse(query), Query::parse_protocol(query));
            assert_eq!(
                (&lean.eio, &lean.transport, &lean.sid, lean.b64),
                (&full.eio, &full.transport, &full.sid, full.b64)
            );
            assert!(lean.params.is_empty());
        }
    }

    #[test]
    fn parses_queries() {
        // A repeated key: the last value wins, as in the reference's `Object.fromEntries(searchParams)`.
        let q = Query::parse("EIO=4&transport=polling&t=Nz1&sid=zz&sid=ab%2Dc");
        assert_eq!(q.eio.as_deref(), Some("4"));
        assert_eq!(q.transport.as_deref(), Some("polling"));
        assert_eq!(q.sid.as_deref(), Some("ab-c"));
        assert!(!q.b64);
        assert_eq!(q.get("t"), Some("Nz1"));
        assert_eq!(q.get("sid"), Some("ab-c"), "the last of a repeated key");
        assert_eq!(q.get("nope"), None);
        assert_eq!(q.params.len(), 5);
        let q = Query::parse("EIO=4&transport=polling&token=a%20b&room=x+y");
        assert_eq!((q.get("token"), q.get("room")), (Some("a b"), Some("x y")));
        assert_eq!(Query::parse(""), Query::default());
        assert_eq!(Query::parse("sid=%").sid.as_deref(), Some("%"));
        assert_eq!(Query::parse("sid=%4").sid.as_deref(), Some("%4"));
        // Keys are decoded too, and `+` is a space.
        let q = Query::parse("%45IO=4&trans%70ort=p%6Flling&%73id=a+b");
        assert_eq!(
            (q.eio.as_deref(), q.transport.as_deref(), q.sid.as_deref()),
            (Some("4"), Some("polling"), Some("a b"))
        );
        // An empty sid is no sid (the reference tests it for truthiness); so is an empty b64.
        assert_eq!(Query::parse("sid=").sid, None);
        assert!(Query::parse("b64=1").b64);
        assert!(Query::parse("b64=0").b64, "any non-empty string is truthy in the reference");
        assert!(!Query::parse("b64=").b64);
        assert_eq!(Query::parse("EIO=4").protocol(), Protocol::V4);
        assert_eq!(Query::parse("EIO=3").protocol(), Protocol::V3);
        assert_eq!(Query::parse("EIO=5").protocol(), Protocol::V3);
        assert_eq!(Query::parse("").protocol(), Protocol::V3);
    }

    #[test]
    fn query_components_decode_as_urlsearchparams() {
        let decode = |s: &str| percent_decode(s).into_owned();
        assert_eq!(decode("%26a"), "&a");
        assert_eq!(decode("f%20g"), "f g");
        assert_eq!(decode("a+b%2Bc"), "a b+c");
        // Invalid escapes are kept as they are.
        assert_eq!(decode("%zz%4"), "%zz%4");
        assert_eq!(decode("100%"), "100%");
        // UTF-8 escapes become characters; bytes that are not UTF-8 become U+FFFD.
        assert_eq!(decode("%C3%A9t%C3%A9"), "\u{e9}t\u{e9}");
        assert_eq!(decode("%FFx"), "\u{fffd}x");
        let pairs: Vec<(String, String)> =
            query_pairs("&&a&=v&k=1=2").map(|(k, v)| (k.into_owned(), v.into_owned())).collect();
        let expected = [("a", ""), ("", "v"), ("k", "1=2")].map(|(k, v)| (k.to_owned(), v.to_owned()));
        assert_eq!(pairs, expected);
    }

    #[test]
    fn handshake_checks_in_reference_order() {
        let none = |_: &str| None;
        let q = Query::parse("EIO=4&transport=polling");
        assert_eq!(
            verify(facts(&q, true, false), ALL, false, none),
            Ok(RequestKind::Handshake(TransportKind::Polling))
        );
        assert_eq!(verify(facts(&q, false, false), ALL, false, none), Err(ErrorCode::BadHandshakeMethod));
        let q = Query::parse("EIO=3&transport=polling");
        assert_eq!(verify(facts(&q, true, false), ALL, false, none), Err(ErrorCode::UnsupportedProtocolVersion));
        let q = Query::parse("transport=polling");
        assert_eq!(verify(facts(&q, true, false), ALL, false, none), Err(ErrorCode::UnsupportedProtocolVersion));
        // With allow_eio3, a v3 handshake (a missing EIO counts as 3) is accepted on both transports.
        for query in ["EIO=3&transport=polling", "transport=polling"] {
            let q = Query::parse(query);
            let kind = Ok(RequestKind::Handshake(TransportKind::Polling));
            assert_eq!(verify(facts(&q, true, false), ALL, true, none), kind, "{query}");
        }
        let q = Query::parse("EIO=3&transport=websocket");
        let kind = Ok(RequestKind::Handshake(TransportKind::WebSocket));
        assert_eq!(verify(facts(&q, true, true), ALL, true, none), kind);
        let q = Query::parse("EIO=4&transport=carrier-pigeon");
        assert_eq!(verify(facts(&q, true, false), ALL, false, none), Err(ErrorCode::UnknownTransport));
        let q = Query::parse("EIO=4&transport=websocket");
        assert_eq!(verify(facts(&q, true, false), ALL, false, none), Err(ErrorCode::BadRequest));
        assert_eq!(
            verify(facts(&q, true, true), ALL, false, none),
            Ok(RequestKind::Handshake(TransportKind::WebSocket))
        );
        assert_eq!(
            verify(facts(&q, true, true), &[TransportKind::Polling], false, none),
            Err(ErrorCode::UnknownTransport)
        );
        // The transport is checked before the method, as in the reference.
        let q = Query::parse("EIO=4");
        assert_eq!(verify(facts(&q, false, false), ALL, false, none), Err(ErrorCode::UnknownTransport));
    }

    #[test]
    fn bad_origin_characters_are_refused() {
        let q = Query::parse("EIO=4&transport=polling");
        let f = RequestFacts { origin: Some(b"http://a\x01b"), ..facts(&q, true, false) };
        assert_eq!(verify(f, ALL, false, |_| None), Err(ErrorCode::BadRequest));
    }

    #[test]
    fn session_requests() {
        let polling = |_: &str| Some((TransportKind::Polling, Protocol::V4));
        let ws = |_: &str| Some((TransportKind::WebSocket, Protocol::V4));
        let q = Query::parse("EIO=4&transport=polling&sid=abc");
        assert_eq!(
            verify(facts(&q, false, false), ALL, false, polling),
            Ok(RequestKind::Polling { sid: "abc".into() })
        );
        assert_eq!(verify(facts(&q, true, false), ALL, false, ws), Err(ErrorCode::BadRequest));
        assert_eq!(verify(facts(&q, true, false), ALL, false, |_| None), Err(ErrorCode::UnknownSid));
        let q = Query::parse("EIO=4&transport=websocket&sid=abc");
        assert_eq!(verify(facts(&q, true, true), ALL, false, polling), Ok(RequestKind::Upgrade { sid: "abc".into() }));
        assert_eq!(verify(facts(&q, true, false), ALL, false, polling), Err(ErrorCode::BadRequest));
    }

    #[test]
    fn session_requests_must_speak_the_session_protocol() {
        let polling = |_: &str| Some((TransportKind::Polling, Protocol::V4));
        for eio in ["EIO=3&", "EIO=5&", ""] {
            let q = Query::parse(&format!("{eio}transport=polling&sid=abc"));
            assert_eq!(verify(facts(&q, true, false), ALL, false, polling), Err(ErrorCode::BadRequest), "GET {eio}");
            assert_eq!(verify(facts(&q, false, false), ALL, false, polling), Err(ErrorCode::BadRequest), "POST {eio}");
            let q = Query::parse(&format!("{eio}transport=websocket&sid=abc"));
            assert_eq!(verify(facts(&q, true, true), ALL, false, polling), Err(ErrorCode::BadRequest), "upgrade {eio}");
        }
        // And a v3 session's requests must speak v3.
        let v3 = |_: &str| Some((TransportKind::Polling, Protocol::V3));
        let q = Query::parse("EIO=4&transport=polling&sid=abc");
        assert_eq!(verify(facts(&q, true, false), ALL, true, v3), Err(ErrorCode::BadRequest));
        let q = Query::parse("EIO=3&transport=polling&sid=abc");
        assert_eq!(verify(facts(&q, true, false), ALL, true, v3), Ok(RequestKind::Polling { sid: "abc".into() }));
        let q = Query::parse("EIO=3&transport=websocket&sid=abc");
        assert_eq!(verify(facts(&q, true, true), ALL, true, v3), Ok(RequestKind::Upgrade { sid: "abc".into() }));
        // An unknown sid is still reported as such first.
        let q = Query::parse("EIO=3&transport=polling&sid=abc");
        assert_eq!(verify(facts(&q, true, false), ALL, false, |_| None), Err(ErrorCode::UnknownSid));
    }

    #[test]
    fn error_bodies() {
        assert_eq!(ErrorCode::UnknownSid.json_body(None), r#"{"code":1,"message":"Session ID unknown"}"#);
        assert_eq!(ErrorCode::Forbidden.json_body(Some("no \"way\"")), r#"{"code":4,"message":"no \"way\""}"#);
        assert_eq!(ErrorCode::Forbidden.http_status(), 403);
        assert_eq!(ErrorCode::BadRequest.http_status(), 400);
    }

    #[test]
    fn open_packet_json() {
        let open = OpenPacket {
            sid: "abc".into(),
            upgrades: vec!["websocket"],
            ping_interval: 25000,
            ping_timeout: 20000,
            max_payload: 1_000_000,
        };
        assert_eq!(
            open.to_json(),
            r#"{"sid":"abc","upgrades":["websocket"],"pingInterval":25000,"pingTimeout":20000,"maxPayload":1000000}"#
        );
    }

    #[test]
    fn seeded_ids_are_deterministic_and_well_formed() {
        let mut a = SeededSidGenerator::new(7);
        let mut b = SeededSidGenerator::new(7);
        let (x, y) = (a.generate(), b.generate());
        assert_eq!(x, y);
        assert_eq!(x.len(), 20);
        assert!(x.bytes().all(|c| c.is_ascii_alphanumeric() || c == b'-' || c == b'_'));
        assert_ne!(a.generate(), x);
    }
}
