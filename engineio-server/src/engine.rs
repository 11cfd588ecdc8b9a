//! The HTTP side: routing a request to a handshake, a long-poll, a POST or a WebSocket, with the reference
//! server's checks, hooks and replies; the hyper and tower `Service`s; and a standalone `serve`.

use std::collections::HashMap;
use std::convert::Infallible;
use std::io::Write as _;
use std::net::SocketAddr;
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, RwLock};
use std::task::{Context, Poll};
use std::time::Instant;

use bytes::Bytes;
use engineio_proto::handshake::{Query, RequestFacts, RequestKind, verify};
use engineio_proto::{ErrorCode, Session, TransportKind};
use http::header::{self, HeaderMap, HeaderValue};
use http::{Method, Request, Response, StatusCode, request};
use http_body::Body;
use http_body_util::{BodyExt, Full, LengthLimitError, Limited};
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use tokio::sync::oneshot;

use crate::config::{BoxError, BoxFuture, ConnectionError, EngineConfig};
use crate::driver::{Command, Driver, PollError};
use crate::mailbox::Mailbox;
use crate::socket::{Handler, Socket, SocketShared};
use engineio_proto::websocket::deflate::PerMessageDeflate;

/// The remote address of a request, put in its extensions by [`Engine::serve`] (and readable from
/// [`Socket::request`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RemoteAddr(pub SocketAddr);

pub(crate) struct EngineShared {
    pub(crate) config: EngineConfig,
    endpoint: String,
    pub(crate) handler: Arc<dyn Handler>,
    sessions: RwLock<HashMap<Arc<str>, Socket>>,
    /// Session slots in use: in total and per remote address (`max_sessions`, `max_sessions_per_address`).
    slots: std::sync::Mutex<(usize, HashMap<std::net::IpAddr, usize>)>,
    /// Set by `close`: the accept loops of `serve`/`listen` stop.
    stopping: tokio::sync::watch::Sender<bool>,
}

impl EngineShared {
    pub(crate) fn remove_session(&self, sid: &str) {
        let removed = self.sessions.write().expect("session map poisoned").remove(sid);
        if let Some(socket) = removed {
            self.release(socket.shared.address);
        }
    }

    /// Removes `socket`'s session if the table still holds that very session (not a later one that an
    /// application's `generate_id` gave the same id).
    pub(crate) fn remove_session_of(&self, socket: &Socket) {
        let mut sessions = self.sessions.write().expect("session map poisoned");
        if sessions.get(socket.sid()).is_some_and(|s| Arc::ptr_eq(&s.shared, &socket.shared)) {
            sessions.remove(socket.sid());
            drop(sessions);
            self.release(socket.shared.address);
        }
    }

    /// Takes a session slot, or says why not.
    fn reserve(&self, address: Option<std::net::IpAddr>) -> Result<(), &'static str> {
        let mut slots = self.slots.lock().expect("slot counts poisoned");
        if self.config.max_sessions.is_some_and(|max| slots.0 >= max) {
            return Err("too many sessions");
        }
        if let (Some(max), Some(ip)) = (self.config.max_sessions_per_address, address)
            && slots.1.get(&ip).copied().unwrap_or(0) >= max
        {
            return Err("too many sessions from this address");
        }
        slots.0 += 1;
        if let Some(ip) = address {
            *slots.1.entry(ip).or_default() += 1;
        }
        Ok(())
    }

    /// Gives a slot back (a session ended, or a handshake failed after its slot was taken).
    pub(crate) fn release(&self, address: Option<std::net::IpAddr>) {
        let mut slots = self.slots.lock().expect("slot counts poisoned");
        slots.0 = slots.0.saturating_sub(1);
        if let Some(ip) = address
            && let Some(n) = slots.1.get_mut(&ip)
        {
            *n -= 1;
            if *n == 0 {
                slots.1.remove(&ip);
            }
        }
    }

    fn lookup(&self, sid: &str) -> Option<Socket> {
        self.sessions.read().expect("session map poisoned").get(sid).cloned()
    }

    /// A new session id; `None` if the application's `generate_id` panicked (the reference refuses the
    /// handshake when its `generateId` throws).
    fn new_sid(&self, req: &request::Parts) -> Option<String> {
        loop {
            let sid = match &self.config.generate_id {
                Some(f) => crate::driver::contain(|| f(req))?,
                None => engineio_proto::handshake::sid_from_bytes(rand::random()),
            };
            if self.lookup(&sid).is_none() {
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
        Engine {
            shared: Arc::new(EngineShared {
                config,
                endpoint,
                handler,
                sessions: RwLock::default(),
                slots: std::sync::Mutex::default(),
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
        self.shared.lookup(sid)
    }

    /// The number of open sessions.
    pub fn session_count(&self) -> usize {
        self.shared.sessions.read().expect("session map poisoned").len()
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
        let sockets: Vec<Socket> =
            self.shared.sessions.read().expect("session map poisoned").values().cloned().collect();
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

/// Serves an `EngineService` on an already bound listener, one task per connection.
pub async fn serve_listener(listener: TcpListener, service: EngineService) {
    let mut stopping = service.shared.stopping.subscribe();
    loop {
        let accepted = tokio::select! {
            a = listener.accept() => a,
            _ = stopping.wait_for(|stop| *stop) => return,
        };
        let (stream, remote) = match accepted {
            Ok(x) => x,
            Err(_) => {
                // Out of file descriptors or similar: back off briefly instead of spinning.
                tokio::time::sleep(std::time::Duration::from_millis(20)).await;
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        let svc = EngineService { shared: service.shared.clone(), remote: Some(remote) };
        tokio::spawn(async move {
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(stream), svc)
                .with_upgrades()
                .await;
        });
    }
}

/// The Engine.IO endpoint as a hyper and tower `Service`.
#[derive(Clone)]
pub struct EngineService {
    shared: Arc<EngineShared>,
    remote: Option<SocketAddr>,
}

impl std::fmt::Debug for EngineService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EngineService").field("remote", &self.remote).finish_non_exhaustive()
    }
}

/// The response body type of the endpoint.
pub type ResponseBody = Full<Bytes>;

impl EngineService {
    fn call_inner<B>(&self, mut req: Request<B>) -> BoxFuture<'static, Result<Response<ResponseBody>, Infallible>>
    where
        B: Body<Data = Bytes> + Send + 'static,
        B::Error: Into<BoxError>,
    {
        if let Some(remote) = self.remote {
            req.extensions_mut().insert(RemoteAddr(remote));
        }
        let shared = self.shared.clone();
        Box::pin(async move {
            // Application code runs in here (middlewares, `allow_request`, header hooks, CORS predicates):
            // a panic in it answers 500 instead of dropping the connection without a word.
            use futures_util::FutureExt as _;
            let handled = std::panic::AssertUnwindSafe(handle(shared, req)).catch_unwind().await;
            Ok(handled
                .unwrap_or_else(|_| plain(StatusCode::INTERNAL_SERVER_ERROR, "", Bytes::new(), HeaderMap::new(), true)))
        })
    }
}

impl<B> hyper::service::Service<Request<B>> for EngineService
where
    B: Body<Data = Bytes> + Send + 'static,
    B::Error: Into<BoxError>,
{
    type Response = Response<ResponseBody>;
    type Error = Infallible;
    type Future = BoxFuture<'static, Result<Self::Response, Infallible>>;

    fn call(&self, req: Request<B>) -> Self::Future {
        self.call_inner(req)
    }
}

impl<B> tower_service::Service<Request<B>> for EngineService
where
    B: Body<Data = Bytes> + Send + 'static,
    B::Error: Into<BoxError>,
{
    type Response = Response<ResponseBody>;
    type Error = Infallible;
    type Future = BoxFuture<'static, Result<Self::Response, Infallible>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: Request<B>) -> Self::Future {
        self.call_inner(req)
    }
}

fn is_websocket_upgrade(method: &Method, headers: &HeaderMap) -> bool {
    let has_token = |name: header::HeaderName, token: &str| {
        headers
            .get_all(name)
            .iter()
            .any(|v| v.to_str().is_ok_and(|v| v.split(',').any(|t| t.trim().eq_ignore_ascii_case(token))))
    };
    method == Method::GET && has_token(header::UPGRADE, "websocket") && has_token(header::CONNECTION, "upgrade")
}

struct Refusal {
    code: ErrorCode,
    message: Option<String>,
    context: Option<String>,
}

impl Refusal {
    fn code(code: ErrorCode) -> Self {
        Refusal { code, message: None, context: None }
    }
}

async fn handle<B>(shared: Arc<EngineShared>, mut req: Request<B>) -> Response<ResponseBody>
where
    B: Body<Data = Bytes> + Send + 'static,
    B::Error: Into<BoxError>,
{
    let config = &shared.config;
    let upgrade = is_websocket_upgrade(req.method(), req.headers());
    if !req.uri().path().starts_with(&shared.endpoint) {
        if upgrade && config.destroy_upgrade {
            tokio::time::sleep(config.destroy_upgrade_timeout).await;
            return plain(StatusCode::BAD_REQUEST, "text/html", Bytes::new(), HeaderMap::new(), true);
        }
        return plain(StatusCode::NOT_FOUND, "text/plain", Bytes::from_static(b"Not Found"), HeaderMap::new(), false);
    }
    let on_upgrade = upgrade.then(|| hyper::upgrade::on(&mut req));
    let (mut parts, body) = req.into_parts();
    let mut extra = HeaderMap::new();

    if let Some(cors) = &config.cors {
        if !cors.origin_allowed(parts.headers.get(header::ORIGIN)) {
            let refusal =
                Refusal { context: Some("origin not allowed".into()), ..Refusal::code(ErrorCode::BadRequest) };
            return refuse(&shared, &parts, refusal, upgrade, extra);
        }
        if parts.method == Method::OPTIONS && !upgrade {
            cors.apply_preflight(&parts, &mut extra);
            return plain(StatusCode::NO_CONTENT, "", Bytes::new(), extra, false);
        }
        cors.apply(&parts, &mut extra);
    }
    for m in &config.middlewares {
        if let Err(e) = m.handle(&mut parts, &mut extra).await {
            let refusal = Refusal { context: Some(e.to_string()), ..Refusal::code(ErrorCode::BadRequest) };
            return refuse(&shared, &parts, refusal, upgrade, extra);
        }
    }

    let query = Query::parse(parts.uri.query().unwrap_or(""));
    let facts = RequestFacts {
        query: &query,
        is_get: parts.method == Method::GET,
        is_upgrade: upgrade,
        origin: parts.headers.get(header::ORIGIN).map(HeaderValue::as_bytes),
    };
    let kind = match verify(facts, &config.transports, |sid| shared.lookup(sid).map(|s| s.transport())) {
        Ok(kind) => kind,
        Err(code) => return refuse(&shared, &parts, Refusal::code(code), upgrade, extra),
    };

    match kind {
        RequestKind::Handshake(transport) => {
            let parts = Arc::new(detach(parts));
            if let Some(allow) = &config.allow_request
                && let Err(message) = allow(parts.clone()).await
            {
                let refusal = Refusal { message: Some(message), ..Refusal::code(ErrorCode::Forbidden) };
                return refuse(&shared, &parts, refusal, upgrade, extra);
            }
            let address = parts.extensions.get::<RemoteAddr>().map(|a| a.0.ip());
            if let Err(message) = shared.reserve(address) {
                let refusal = Refusal { message: Some(message.to_owned()), ..Refusal::code(ErrorCode::Forbidden) };
                return refuse(&shared, &parts, refusal, upgrade, extra);
            }
            let slot = Slot { shared: shared.clone(), address, kept: false };
            match (transport, on_upgrade) {
                (TransportKind::WebSocket, Some(on_upgrade)) => {
                    accept_websocket(&shared, parts, extra, on_upgrade, None, Some(slot))
                }
                _ => polling_handshake(&shared, parts, extra, slot).await,
            }
        }
        RequestKind::Upgrade { sid } => match (shared.lookup(&sid), on_upgrade) {
            (Some(socket), Some(on_upgrade)) => {
                accept_websocket(&shared, Arc::new(parts), extra, on_upgrade, Some(socket), None)
            }
            _ => refuse(&shared, &parts, Refusal::code(ErrorCode::UnknownSid), true, extra),
        },
        RequestKind::Polling { sid } => {
            let Some(socket) = shared.lookup(&sid) else {
                return refuse(&shared, &parts, Refusal::code(ErrorCode::UnknownSid), false, extra);
            };
            match parts.method {
                Method::GET => poll(&shared, &parts, &socket, extra).await,
                Method::POST => post(&shared, &parts, &socket, body, extra).await,
                _ => plain(StatusCode::INTERNAL_SERVER_ERROR, "", Bytes::new(), extra, false),
            }
        }
    }
}

/// Refuses a request: a JSON error on polling, a plain 400 on a WebSocket upgrade (as the reference,
/// even for code 4).
fn refuse(
    shared: &EngineShared,
    parts: &request::Parts,
    r: Refusal,
    upgrade: bool,
    extra: HeaderMap,
) -> Response<ResponseBody> {
    let message = r.message.as_deref().unwrap_or(r.code.message());
    if let Some(hook) = &shared.config.on_connection_error {
        hook(&ConnectionError { code: r.code, message, context: r.context.as_deref(), request: parts });
    }
    if upgrade {
        return plain(StatusCode::BAD_REQUEST, "text/html", Bytes::from(message.to_owned()), HeaderMap::new(), true);
    }
    let status = StatusCode::from_u16(r.code.http_status()).expect("400 and 403 are valid statuses");
    plain(status, "application/json", Bytes::from(r.code.json_body(Some(message))), extra, false)
}

fn plain(status: StatusCode, content_type: &str, body: Bytes, extra: HeaderMap, close: bool) -> Response<ResponseBody> {
    let mut res = Response::new(Full::new(body));
    *res.status_mut() = status;
    let headers = res.headers_mut();
    if !content_type.is_empty() {
        headers.insert(header::CONTENT_TYPE, HeaderValue::from_str(content_type).expect("a valid content type"));
    }
    if close {
        headers.insert(header::CONNECTION, HeaderValue::from_static("close"));
    }
    extend(headers, extra);
    res
}

/// Appends every value of `extra` (so several `Set-Cookie` survive).
fn extend(headers: &mut HeaderMap, extra: HeaderMap) {
    let mut last = None;
    for (name, value) in extra {
        if let Some(name) = name {
            last = Some(name);
        }
        if let Some(name) = &last {
            headers.append(name.clone(), value);
        }
    }
}

/// The headers of every polling response: the reference's fixed ones, then the `headers` hook (and, on a
/// handshake, the `io` cookie and the `initial_headers` hook before it).
fn polling_headers(shared: &EngineShared, parts: &request::Parts, extra: &mut HeaderMap, handshake_sid: Option<&str>) {
    extra.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    if parts
        .headers
        .get(header::USER_AGENT)
        .and_then(|ua| ua.to_str().ok())
        .is_some_and(|ua| ua.contains(";MSIE") || ua.contains("Trident/"))
    {
        extra.insert("x-xss-protection", HeaderValue::from_static("0"));
    }
    if let Some(sid) = handshake_sid {
        if let Some(cookie) = &shared.config.cookie
            && let Ok(v) = HeaderValue::from_str(&cookie.serialize(sid))
        {
            extra.append(header::SET_COOKIE, v);
        }
        if let Some(hook) = &shared.config.initial_headers {
            hook(extra, parts);
        }
    }
    if let Some(hook) = &shared.config.headers {
        hook(extra, parts);
    }
}

/// Copies what a session keeps of its handshake request out of the connection's read buffer. hyper hands
/// out header values and the URI as slices of that buffer (8 KiB or more), which would otherwise stay
/// allocated for as long as the session lives.
fn detach(mut parts: request::Parts) -> request::Parts {
    let mut headers = HeaderMap::with_capacity(parts.headers.len());
    for (name, value) in &parts.headers {
        let mut copy = HeaderValue::from_bytes(value.as_bytes()).expect("a header value stays valid when copied");
        copy.set_sensitive(value.is_sensitive());
        headers.append(name.clone(), copy);
    }
    parts.headers = headers;
    if let Ok(uri) = parts.uri.to_string().parse() {
        parts.uri = uri;
    }
    parts
}

fn new_socket(
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
    shared: Arc<EngineShared>,
    address: Option<std::net::IpAddr>,
    kept: bool,
}

impl Slot {
    fn keep(mut self) {
        self.kept = true;
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        if !self.kept {
            self.shared.release(self.address);
        }
    }
}

async fn polling_handshake(
    shared: &Arc<EngineShared>,
    parts: Arc<request::Parts>,
    mut extra: HeaderMap,
    slot: Slot,
) -> Response<ResponseBody> {
    let Some(socket) = new_socket(shared, parts.clone(), TransportKind::Polling, slot.address) else {
        let refusal = Refusal { context: Some("generate_id panicked".into()), ..Refusal::code(ErrorCode::BadRequest) };
        return refuse(shared, &parts, refusal, false, extra);
    };
    // The application's hooks run before the session exists: one that panics leaves nothing behind.
    polling_headers(shared, &parts, &mut extra, Some(socket.sid()));
    let now = Instant::now();
    let mut session = Session::new(
        socket.sid().to_owned(),
        shared.config.session_config(),
        TransportKind::Polling,
        now,
        shared.config.initial_packet.clone(),
    );
    session.handle_poll(now).expect("a new session accepts its first poll");
    let (tx, reply) = oneshot::channel();
    shared.sessions.write().expect("session map poisoned").insert(socket.shared.sid.clone(), socket.clone());
    slot.keep();
    tokio::spawn(Box::new(Driver::new(shared.clone(), session, socket, None, Some(tx))).run());
    poll_response(shared, &parts, reply.await.unwrap_or(Err(PollError::Closed)), extra)
}

async fn poll(
    shared: &Arc<EngineShared>,
    parts: &request::Parts,
    socket: &Socket,
    mut extra: HeaderMap,
) -> Response<ResponseBody> {
    polling_headers(shared, parts, &mut extra, None);
    let (tx, reply) = oneshot::channel();
    if socket.shared.mailbox.send_control(Command::Poll(tx)).is_err() {
        return poll_response(shared, parts, Err(PollError::Closed), extra);
    }
    poll_response(shared, parts, reply.await.unwrap_or(Err(PollError::Closed)), extra)
}

fn poll_response(
    shared: &EngineShared,
    parts: &request::Parts,
    reply: Result<Bytes, PollError>,
    extra: HeaderMap,
) -> Response<ResponseBody> {
    match reply {
        Ok(body) => {
            let (body, encoding) = compress(shared, parts, body);
            let mut res = plain(StatusCode::OK, "text/plain; charset=UTF-8", body, extra, false);
            if let Some(encoding) = encoding {
                res.headers_mut().insert(header::CONTENT_ENCODING, HeaderValue::from_static(encoding));
            }
            res
        }
        Err(e) => poll_error(shared, parts, e, extra),
    }
}

fn poll_error(shared: &EngineShared, parts: &request::Parts, e: PollError, extra: HeaderMap) -> Response<ResponseBody> {
    match e {
        PollError::Overlap => plain(StatusCode::BAD_REQUEST, "", Bytes::new(), extra, false),
        PollError::TransportMismatch => refuse(shared, parts, Refusal::code(ErrorCode::BadRequest), false, extra),
        PollError::Closed => refuse(shared, parts, Refusal::code(ErrorCode::UnknownSid), false, extra),
    }
}

async fn post<B>(
    shared: &Arc<EngineShared>,
    parts: &request::Parts,
    socket: &Socket,
    body: B,
    mut extra: HeaderMap,
) -> Response<ResponseBody>
where
    B: Body<Data = Bytes> + Send + 'static,
    B::Error: Into<BoxError>,
{
    polling_headers(shared, parts, &mut extra, None);
    if parts.headers.get(header::CONTENT_TYPE).is_some_and(|ct| ct == "application/octet-stream") {
        return plain(StatusCode::BAD_REQUEST, "", Bytes::new(), extra, false);
    }
    let (tx, reply) = oneshot::channel();
    if socket.shared.mailbox.send_control(Command::PostStart(tx)).is_err() {
        return poll_error(shared, parts, PollError::Closed, extra);
    }
    if let Err(e) = reply.await.unwrap_or(Err(PollError::Closed)) {
        return poll_error(shared, parts, e, extra);
    }
    let max = shared.config.max_http_buffer_size;
    let declared = parts.headers.get(header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()?.parse::<u64>().ok());
    let result = if declared.is_some_and(|len| len > max as u64) {
        Err(true)
    } else {
        match Limited::new(body, max).collect().await {
            Ok(collected) => Ok(collected.to_bytes()),
            Err(e) => Err(e.downcast_ref::<LengthLimitError>().is_some()),
        }
    };
    let (tx, reply) = oneshot::channel();
    let delivered = socket.shared.mailbox.send_control(Command::PostBody(result.clone().ok(), tx)).is_ok();
    let outcome = if delivered { reply.await.unwrap_or(Err(PollError::Closed)) } else { Err(PollError::Closed) };
    match (result, outcome) {
        (Err(true), _) => plain(StatusCode::PAYLOAD_TOO_LARGE, "", Bytes::new(), extra, false),
        (Err(false), _) => plain(StatusCode::BAD_REQUEST, "", Bytes::new(), extra, false),
        (Ok(_), Err(e)) => poll_error(shared, parts, e, extra),
        (Ok(_), Ok(())) => plain(StatusCode::OK, "text/html", Bytes::from_static(b"ok"), extra, false),
    }
}

/// Gzip or deflate a long-poll body when the client accepts it and it is over the threshold.
fn compress(shared: &EngineShared, parts: &request::Parts, body: Bytes) -> (Bytes, Option<&'static str>) {
    let Some(opts) = shared.config.http_compression else { return (body, None) };
    if body.len() < opts.threshold {
        return (body, None);
    }
    let Some(encoding) =
        parts.headers.get(header::ACCEPT_ENCODING).and_then(|v| v.to_str().ok()).and_then(pick_encoding)
    else {
        return (body, None);
    };
    let level = flate2::Compression::default();
    let out = if encoding == "gzip" {
        let mut enc = flate2::write::GzEncoder::new(Vec::with_capacity(body.len() / 2), level);
        enc.write_all(&body).and_then(|_| enc.finish())
    } else {
        let mut enc = flate2::write::ZlibEncoder::new(Vec::with_capacity(body.len() / 2), level);
        enc.write_all(&body).and_then(|_| enc.finish())
    };
    match out {
        Ok(v) => (Bytes::from(v), Some(encoding)),
        Err(_) => (body, None),
    }
}

/// The preferred of gzip and deflate by the `Accept-Encoding` q-values; gzip wins ties.
fn pick_encoding(accept: &str) -> Option<&'static str> {
    let mut best: Option<(&'static str, f32)> = None;
    for item in accept.split(',') {
        let mut it = item.split(';');
        let name = it.next().unwrap_or("").trim().to_ascii_lowercase();
        let q = it.find_map(|p| p.trim().strip_prefix("q=").and_then(|q| q.trim().parse::<f32>().ok())).unwrap_or(1.0);
        let enc = match name.as_str() {
            "gzip" | "*" => "gzip",
            "deflate" => "deflate",
            _ => continue,
        };
        if q > 0.0 && best.is_none_or(|(_, bq)| q > bq) {
            best = Some((enc, q));
        }
    }
    best.map(|(e, _)| e)
}

/// Answers 101 and, once the connection is upgraded, starts a WebSocket session or hands the WebSocket to
/// `existing` as an upgrade probe.
fn accept_websocket(
    shared: &Arc<EngineShared>,
    parts: Arc<request::Parts>,
    mut extra: HeaderMap,
    on_upgrade: hyper::upgrade::OnUpgrade,
    existing: Option<Socket>,
    slot: Option<Slot>,
) -> Response<ResponseBody> {
    let key = parts.headers.get(header::SEC_WEBSOCKET_KEY);
    let version_ok = parts.headers.get(header::SEC_WEBSOCKET_VERSION).is_some_and(|v| v == "13");
    let Some(key) = key.filter(|_| version_ok) else {
        return refuse(shared, &parts, Refusal::code(ErrorCode::BadRequest), true, extra);
    };
    let accept = engineio_proto::websocket::accept_key(key.as_bytes());
    let deflate = shared.config.per_message_deflate.and_then(|opts| {
        let offers = parts.headers.get_all(header::SEC_WEBSOCKET_EXTENSIONS).iter().filter_map(|v| v.to_str().ok());
        engineio_proto::websocket::deflate::negotiate(offers).map(|mut n| {
            // The server may ask for either parameter even when the offer did not include it (RFC 7692 7.1.1).
            n.server_no_context_takeover |= opts.server_no_context_takeover;
            n.client_no_context_takeover |= opts.client_no_context_takeover;
            (n, opts.threshold)
        })
    });
    if existing.is_none()
        && let Some(hook) = &shared.config.initial_headers
    {
        hook(&mut extra, &parts);
    }
    if let Some(hook) = &shared.config.headers {
        hook(&mut extra, &parts);
    }
    let mut res = Response::new(Full::new(Bytes::new()));
    *res.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
    let headers = res.headers_mut();
    headers.insert(header::UPGRADE, HeaderValue::from_static("websocket"));
    headers.insert(header::CONNECTION, HeaderValue::from_static("Upgrade"));
    headers.insert(header::SEC_WEBSOCKET_ACCEPT, HeaderValue::from_str(&accept).expect("base64 is a valid header"));
    if let Some((n, _)) = &deflate {
        headers.insert(header::SEC_WEBSOCKET_EXTENSIONS, HeaderValue::from_str(&n.response()).expect("a valid header"));
    }
    extend(headers, extra);

    let shared = shared.clone();
    tokio::spawn(async move {
        // A failed upgrade drops the slot, which gives it back.
        let Ok(upgraded) = on_upgrade.await else { return };
        // The rest is plain functions: this task goes on to run the session for its whole life, so its
        // state should be little more than the driver's.
        if let Some(driver) = upgraded_session(shared, parts, deflate, upgraded, existing, slot) {
            driver.run().await;
        }
    });
    res
}

/// The WebSocket of an upgraded connection: a new session's driver, or (for an upgrade of a polling
/// session) handed to that session as its probe.
fn upgraded_session(
    shared: Arc<EngineShared>,
    parts: Arc<request::Parts>,
    deflate: Option<(engineio_proto::websocket::deflate::Negotiated, usize)>,
    upgraded: hyper::upgrade::Upgraded,
    existing: Option<Socket>,
    slot: Option<Slot>,
) -> Option<Box<Driver>> {
    let max = shared.config.max_http_buffer_size;
    let deflate = deflate.map(|(n, threshold)| PerMessageDeflate::new(n, threshold, max));
    let ws = crate::ws::WebSocket::new(TokioIo::new(upgraded), max, deflate);
    // A client that cannot read binary frames (`forceBase64`) says so on each WebSocket request.
    let base64 = Query::parse(parts.uri.query().unwrap_or("")).b64;
    match existing {
        Some(socket) => {
            let upgrade = Command::Upgrade(Box::new(ws), base64);
            if let Err(Command::Upgrade(ws, _)) = socket.shared.mailbox.send_control(upgrade) {
                tokio::spawn(crate::driver::close_ws(*ws, None));
            }
            None
        }
        None => {
            let slot = slot?;
            // The 101 has gone out: if `generate_id` panicked, the connection is dropped, as the
            // reference ends it after a failed handshake on an upgraded socket.
            let socket = new_socket(&shared, parts, TransportKind::WebSocket, slot.address)?;
            let mut session = Session::new(
                socket.sid().to_owned(),
                shared.config.session_config(),
                TransportKind::WebSocket,
                Instant::now(),
                shared.config.initial_packet.clone(),
            );
            let _ = session.set_websocket_base64(engineio_proto::Channel::Main, base64);
            shared.sessions.write().expect("session map poisoned").insert(socket.shared.sid.clone(), socket.clone());
            slot.keep();
            Some(Box::new(Driver::new(shared, session, socket, Some(ws), None)))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::pick_encoding;

    #[test]
    fn picks_encodings() {
        assert_eq!(pick_encoding("gzip, deflate, br"), Some("gzip"));
        assert_eq!(pick_encoding("deflate"), Some("deflate"));
        assert_eq!(pick_encoding("gzip;q=0.5, deflate"), Some("deflate"));
        assert_eq!(pick_encoding("gzip;q=0, br"), None);
        assert_eq!(pick_encoding("identity"), None);
    }
}
