//! The HTTP entry: the hyper and tower `Service`s; routing a request to a
//! handshake, a long-poll, a POST or a WebSocket after the reference server's checks and hooks; and the
//! building of responses (refusals with their code and status, CORS, cookies, the `headers` hooks).

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::Bytes;
use engineio_proto::endpoint::{Method, Refusal, RequestHead, Route, WebSocketHead, has_token};
use engineio_proto::{ErrorCode, TransportKind};
use http::header::{self, HeaderMap, HeaderValue};
use http::{Request, Response, StatusCode, request};
use http_body::Body;

use crate::config::{BoxError, BoxFuture};
use crate::polling::{poll, polling_handshake, post};
use crate::response::{ResponseBody, closing, detach, plain, refuse};
use crate::shared::{EngineShared, RemoteAddr, Slot};
use crate::upgrade::{Accepted, accept_websocket};

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

/// What handling a request gives: its response, or a wait for it that holds little (a long-poll GET: the
/// request's handling, several hundred bytes of state, is over by then and freed; a connection may hold
/// the wait for as long as the poll lasts).
pub(crate) enum Answer {
    Ready(Response<ResponseBody>),
    Wait(BoxFuture<'static, Response<ResponseBody>>),
}

impl EngineService {
    /// Handles a request up to its response or to a wait for it ([`Answer`]).
    pub(crate) fn answer<B>(&self, mut req: Request<B>) -> BoxFuture<'static, Answer>
    where
        B: Body<Data = Bytes> + Send + 'static,
        B::Error: Into<BoxError>,
    {
        if let Some(remote) = self.remote {
            req.extensions_mut().insert(RemoteAddr(remote));
        }
        #[cfg(feature = "axum")]
        if req.extensions().get::<RemoteAddr>().is_none()
            && let Some(axum::extract::ConnectInfo(remote)) =
                req.extensions().get::<axum::extract::ConnectInfo<SocketAddr>>().copied()
        {
            req.extensions_mut().insert(RemoteAddr(remote));
        }
        let shared = self.shared.clone();
        Box::pin(async move {
            // Application code runs in here (middlewares, `allow_request`, header hooks, CORS predicates):
            // a panic in it answers 500 instead of dropping the connection without a word.
            use futures_util::FutureExt as _;
            let handled = std::panic::AssertUnwindSafe(handle(shared, req)).catch_unwind().await;
            handled.unwrap_or_else(|_| Answer::Ready(internal_error()))
        })
    }

    pub(crate) fn call_inner<B>(
        &self,
        req: Request<B>,
    ) -> BoxFuture<'static, Result<Response<ResponseBody>, Infallible>>
    where
        B: Body<Data = Bytes> + Send + 'static,
        B::Error: Into<BoxError>,
    {
        let answer = self.answer(req);
        Box::pin(async move {
            Ok(match answer.await {
                Answer::Ready(res) => res,
                Answer::Wait(wait) => wait.await,
            })
        })
    }
}

fn internal_error() -> Response<ResponseBody> {
    closing(plain(StatusCode::INTERNAL_SERVER_ERROR, "", Bytes::new(), HeaderMap::new()))
}

/// A wait for a response, boxed on its own, a panic in it answered 500.
fn wait_for(fut: impl Future<Output = Response<ResponseBody>> + Send + 'static) -> Answer {
    use futures_util::FutureExt as _;
    Answer::Wait(Box::pin(
        std::panic::AssertUnwindSafe(fut).catch_unwind().map(|r| r.unwrap_or_else(|_| internal_error())),
    ))
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

/// The endpoint's view of a request head.
fn request_head<'a>(parts: &'a request::Parts, upgrade: bool) -> RequestHead<'a> {
    let header = |name: header::HeaderName| parts.headers.get(name).map(HeaderValue::as_bytes);
    RequestHead {
        method: Method::parse(parts.method.as_str()),
        path: parts.uri.path(),
        query: parts.uri.query().unwrap_or(""),
        origin: header(header::ORIGIN),
        websocket: upgrade.then(|| WebSocketHead {
            key: header(header::SEC_WEBSOCKET_KEY),
            version: header(header::SEC_WEBSOCKET_VERSION),
        }),
    }
}

/// Whether a request asks for a WebSocket: a GET with `Upgrade: websocket` and `Connection: upgrade`.
fn is_websocket_upgrade(method: &http::Method, headers: &HeaderMap) -> bool {
    let values = |name| headers.get_all(name).iter().map(HeaderValue::as_bytes);
    method == http::Method::GET
        && has_token(values(header::UPGRADE), "websocket")
        && has_token(values(header::CONNECTION), "upgrade")
}

pub(crate) async fn handle<B>(shared: Arc<EngineShared>, mut req: Request<B>) -> Answer
where
    B: Body<Data = Bytes> + Send + 'static,
    B::Error: Into<BoxError>,
{
    let config = &shared.config;
    let upgrade = is_websocket_upgrade(req.method(), req.headers());
    if !shared.endpoint.matches(req.uri().path()) {
        if upgrade && config.destroy_upgrade {
            tokio::time::sleep(config.destroy_upgrade_timeout).await;
            return Answer::Ready(closing(plain(StatusCode::BAD_REQUEST, "text/html", Bytes::new(), HeaderMap::new())));
        }
        return Answer::Ready(plain(
            StatusCode::NOT_FOUND,
            "text/plain",
            Bytes::from_static(b"Not Found"),
            HeaderMap::new(),
        ));
    }
    let on_upgrade = upgrade.then(|| hyper::upgrade::on(&mut req));
    let (mut parts, body) = req.into_parts();
    let mut extra = HeaderMap::new();

    if let Some(cors) = &config.cors {
        if !cors.origin_allowed(parts.headers.get(header::ORIGIN)) {
            let refusal = Refusal::new(ErrorCode::BadRequest, upgrade);
            return Answer::Ready(refuse(&shared, &parts, refusal, Some("origin not allowed"), extra));
        }
        if parts.method == http::Method::OPTIONS && !upgrade {
            cors.apply_preflight(&parts, &mut extra);
            return Answer::Ready(plain(StatusCode::NO_CONTENT, "", Bytes::new(), extra));
        }
        cors.apply(&parts, &mut extra);
    }
    for m in &config.middlewares {
        if let Err(e) = m.handle(&mut parts, &mut extra).await {
            let refusal = Refusal::new(ErrorCode::BadRequest, upgrade);
            return Answer::Ready(refuse(&shared, &parts, refusal, Some(&e.to_string()), extra));
        }
    }

    let route = shared.endpoint.route(&request_head(&parts, upgrade), |sid| {
        shared.sessions.lookup(sid).map(|s| (s.transport(), s.protocol()))
    });
    Answer::Ready(match route {
        Route::NotFound => plain(StatusCode::NOT_FOUND, "text/plain", Bytes::from_static(b"Not Found"), extra),
        Route::Refuse(refusal) => refuse(&shared, &parts, refusal, None, extra),
        Route::Handshake { .. } if *shared.stopping.borrow() => {
            // Closing: no new session here (a request on a connection accepted before, such as one a proxy
            // keeps open); 503, which a load balancer can retry on another server.
            let body = Bytes::from_static(b"Server shutting down");
            closing(plain(StatusCode::SERVICE_UNAVAILABLE, "text/plain", body, extra))
        }
        Route::Handshake { transport, query, accept } => {
            let mut parts = detach(parts);
            parts.extensions.insert(crate::telemetry::HandshakeStarted(std::time::Instant::now()));
            let parts = Arc::new(parts);
            if let Some(allow) = &config.allow_request
                && let Err(message) = allow(parts.clone()).await
            {
                let refusal = Refusal::with_message(ErrorCode::Forbidden, message, upgrade);
                return Answer::Ready(refuse(&shared, &parts, refusal, None, extra));
            }
            let address = parts.extensions.get::<RemoteAddr>().map(|a| a.0.ip());
            if let Err(message) = shared.sessions.reserve(address) {
                let refusal = Refusal::with_message(ErrorCode::Forbidden, message, upgrade);
                return Answer::Ready(refuse(&shared, &parts, refusal, None, extra));
            }
            let slot = Slot { shared: shared.clone(), address, kept: false };
            match (transport, accept, on_upgrade) {
                (TransportKind::WebSocket, Some(accept), Some(on_upgrade)) => {
                    let ws = Accepted { accept, base64: query.b64, on_upgrade };
                    accept_websocket(&shared, parts, extra, ws, None, Some(slot))
                }
                _ => polling_handshake(&shared, parts, extra, slot, query.b64).await,
            }
        }
        Route::Upgrade { sid, query, accept } => match (shared.sessions.lookup(&sid), on_upgrade) {
            (Some(socket), Some(on_upgrade)) => {
                let ws = Accepted { accept, base64: query.b64, on_upgrade };
                accept_websocket(&shared, Arc::new(parts), extra, ws, Some(socket), None)
            }
            _ => refuse(&shared, &parts, Refusal::new(ErrorCode::UnknownSid, true), None, extra),
        },
        Route::Poll { sid } | Route::Post { sid } | Route::OtherMethod { sid } => {
            let Some(socket) = shared.sessions.lookup(&sid) else {
                return Answer::Ready(refuse(&shared, &parts, Refusal::new(ErrorCode::UnknownSid, false), None, extra));
            };
            match parts.method {
                http::Method::GET => return wait_for(poll(shared, Box::new(parts), socket, extra)),
                http::Method::POST => post(&shared, &Arc::new(parts), &socket, body, extra).await,
                // As the reference's polling transport: 500, and the session goes on.
                _ => plain(StatusCode::INTERNAL_SERVER_ERROR, "", Bytes::new(), extra),
            }
        }
    })
}
