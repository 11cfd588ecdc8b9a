//! The HTTP entry: the hyper and tower `Service`s and the standalone accept loop; routing a request to a
//! handshake, a long-poll, a POST or a WebSocket after the reference server's checks and hooks; and the
//! building of responses (refusals with their code and status, CORS, cookies, the `headers` hooks).

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::Bytes;
use engineio_proto::handshake::{Query, RequestFacts, RequestKind, verify};
use engineio_proto::{ErrorCode, TransportKind};
use http::header::{self, HeaderMap, HeaderValue};
use http::{Method, Request, Response, StatusCode, request};
use http_body::Body;
use http_body_util::Full;
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;

use crate::config::{BoxError, BoxFuture, ConnectionError};
use crate::engine::{EngineShared, RemoteAddr, Slot};
use crate::polling::{poll, polling_handshake, post};
use crate::upgrade::accept_websocket;

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
    pub(crate) shared: Arc<EngineShared>,
    pub(crate) remote: Option<SocketAddr>,
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
            Ok(handled.unwrap_or_else(|_| {
                closing(plain(StatusCode::INTERNAL_SERVER_ERROR, "", Bytes::new(), HeaderMap::new()))
            }))
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

pub(crate) fn is_websocket_upgrade(method: &Method, headers: &HeaderMap) -> bool {
    let has_token = |name: header::HeaderName, token: &str| {
        headers
            .get_all(name)
            .iter()
            .any(|v| v.to_str().is_ok_and(|v| v.split(',').any(|t| t.trim().eq_ignore_ascii_case(token))))
    };
    method == Method::GET && has_token(header::UPGRADE, "websocket") && has_token(header::CONNECTION, "upgrade")
}

pub(crate) struct Refusal {
    pub(crate) code: ErrorCode,
    pub(crate) message: Option<String>,
    pub(crate) context: Option<String>,
}

impl Refusal {
    pub(crate) fn code(code: ErrorCode) -> Self {
        Refusal { code, message: None, context: None }
    }
}

pub(crate) async fn handle<B>(shared: Arc<EngineShared>, mut req: Request<B>) -> Response<ResponseBody>
where
    B: Body<Data = Bytes> + Send + 'static,
    B::Error: Into<BoxError>,
{
    let config = &shared.config;
    let upgrade = is_websocket_upgrade(req.method(), req.headers());
    let answer = if upgrade { Answer::Upgrade } else { Answer::Json };
    if !req.uri().path().starts_with(&shared.endpoint) {
        if upgrade && config.destroy_upgrade {
            tokio::time::sleep(config.destroy_upgrade_timeout).await;
            return closing(plain(StatusCode::BAD_REQUEST, "text/html", Bytes::new(), HeaderMap::new()));
        }
        return plain(StatusCode::NOT_FOUND, "text/plain", Bytes::from_static(b"Not Found"), HeaderMap::new());
    }
    let on_upgrade = upgrade.then(|| hyper::upgrade::on(&mut req));
    let (mut parts, body) = req.into_parts();
    let mut extra = HeaderMap::new();

    if let Some(cors) = &config.cors {
        if !cors.origin_allowed(parts.headers.get(header::ORIGIN)) {
            let refusal =
                Refusal { context: Some("origin not allowed".into()), ..Refusal::code(ErrorCode::BadRequest) };
            return refuse(&shared, &parts, refusal, answer, extra);
        }
        if parts.method == Method::OPTIONS && !upgrade {
            cors.apply_preflight(&parts, &mut extra);
            return plain(StatusCode::NO_CONTENT, "", Bytes::new(), extra);
        }
        cors.apply(&parts, &mut extra);
    }
    for m in &config.middlewares {
        if let Err(e) = m.handle(&mut parts, &mut extra).await {
            let refusal = Refusal { context: Some(e.to_string()), ..Refusal::code(ErrorCode::BadRequest) };
            return refuse(&shared, &parts, refusal, answer, extra);
        }
    }

    let query = Query::parse(parts.uri.query().unwrap_or(""));
    let facts = RequestFacts {
        query: &query,
        is_get: parts.method == Method::GET,
        is_upgrade: upgrade,
        origin: parts.headers.get(header::ORIGIN).map(HeaderValue::as_bytes),
    };
    let kind = match verify(facts, &config.transports, |sid| shared.sessions.lookup(sid).map(|s| s.transport())) {
        Ok(kind) => kind,
        Err(code) => return refuse(&shared, &parts, Refusal::code(code), answer, extra),
    };

    match kind {
        RequestKind::Handshake(transport) => {
            let parts = Arc::new(detach(parts));
            if let Some(allow) = &config.allow_request
                && let Err(message) = allow(parts.clone()).await
            {
                let refusal = Refusal { message: Some(message), ..Refusal::code(ErrorCode::Forbidden) };
                return refuse(&shared, &parts, refusal, answer, extra);
            }
            let address = parts.extensions.get::<RemoteAddr>().map(|a| a.0.ip());
            if let Err(message) = shared.sessions.reserve(address) {
                let refusal = Refusal { message: Some(message.to_owned()), ..Refusal::code(ErrorCode::Forbidden) };
                return refuse(&shared, &parts, refusal, answer, extra);
            }
            let slot = Slot { shared: shared.clone(), address, kept: false };
            match (transport, on_upgrade) {
                (TransportKind::WebSocket, Some(on_upgrade)) => {
                    accept_websocket(&shared, parts, extra, on_upgrade, None, Some(slot))
                }
                _ => polling_handshake(&shared, parts, extra, slot).await,
            }
        }
        RequestKind::Upgrade { sid } => match (shared.sessions.lookup(&sid), on_upgrade) {
            (Some(socket), Some(on_upgrade)) => {
                accept_websocket(&shared, Arc::new(parts), extra, on_upgrade, Some(socket), None)
            }
            _ => refuse(&shared, &parts, Refusal::code(ErrorCode::UnknownSid), Answer::Upgrade, extra),
        },
        RequestKind::Polling { sid } => {
            let Some(socket) = shared.sessions.lookup(&sid) else {
                return refuse(&shared, &parts, Refusal::code(ErrorCode::UnknownSid), Answer::Json, extra);
            };
            match parts.method {
                Method::GET => poll(&shared, &parts, &socket, extra).await,
                Method::POST => post(&shared, &parts, &socket, body, extra).await,
                _ => plain(StatusCode::INTERNAL_SERVER_ERROR, "", Bytes::new(), extra),
            }
        }
    }
}

/// Refuses a request: a JSON error on polling, a plain 400 on a WebSocket upgrade (as the reference,
/// even for code 4).
/// How a refusal is answered, as the reference does: a polling request (or a preflight) gets the JSON body
/// with the code and the hooks' headers; a WebSocket upgrade a plain 400 that closes the connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Answer {
    Json,
    Upgrade,
}

pub(crate) fn refuse(
    shared: &EngineShared,
    parts: &request::Parts,
    r: Refusal,
    answer: Answer,
    extra: HeaderMap,
) -> Response<ResponseBody> {
    let message = r.message.as_deref().unwrap_or(r.code.message());
    if let Some(hook) = &shared.config.on_connection_error {
        hook(&ConnectionError { code: r.code, message, context: r.context.as_deref(), request: parts });
    }
    if answer == Answer::Upgrade {
        return closing(plain(StatusCode::BAD_REQUEST, "text/html", Bytes::from(message.to_owned()), HeaderMap::new()));
    }
    let status = StatusCode::from_u16(r.code.http_status()).expect("400 and 403 are valid statuses");
    plain(status, "application/json", Bytes::from(r.code.json_body(Some(message))), extra)
}

pub(crate) fn plain(status: StatusCode, content_type: &str, body: Bytes, extra: HeaderMap) -> Response<ResponseBody> {
    let mut res = Response::new(Full::new(body));
    *res.status_mut() = status;
    let headers = res.headers_mut();
    if !content_type.is_empty() {
        headers.insert(header::CONTENT_TYPE, HeaderValue::from_str(content_type).expect("a valid content type"));
    }
    extend(headers, extra);
    res
}

/// `Connection: close` on a response: the connection ends after it (a refused upgrade, a failed request).
pub(crate) fn closing(mut res: Response<ResponseBody>) -> Response<ResponseBody> {
    res.headers_mut().insert(header::CONNECTION, HeaderValue::from_static("close"));
    res
}

/// Appends every value of `extra` (so several `Set-Cookie` survive).
pub(crate) fn extend(headers: &mut HeaderMap, extra: HeaderMap) {
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
pub(crate) fn polling_headers(
    shared: &EngineShared,
    parts: &request::Parts,
    extra: &mut HeaderMap,
    handshake_sid: Option<&str>,
) {
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
pub(crate) fn detach(mut parts: request::Parts) -> request::Parts {
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
