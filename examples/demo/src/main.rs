//! The session demo: one page, one counter per session, live in every tab of that session.
//!
//! - `GET /` gives the page (and a session cookie if there is none yet);
//! - `POST /incr` increments `session.count` and emits `current count` to the session's room, so every
//!   open tab of that session updates, and no other session's tab does;
//! - `POST /logout` destroys the session and disconnects every socket of it;
//! - `/socket.io/` is the Socket.IO endpoint; sockets without a valid session are refused.
//!
//! Embedded defaults: port 3000, sessions in memory. Options (flags or environment): `--port N` (`PORT`),
//! `--redis URL` (`REDIS_URL`: sessions in Redis, in connect-redis's format), `--secret S`
//! (`SESSION_SECRET`, default `keyboard cat`; several comma-separated for rotation), `--max-age-secs N`
//! (session lifetime, default 86400), `--check-interval-ms N` (how often open sessions are checked for
//! expiry or logout elsewhere, default 5000), `--cors-origin URL` (let a front end on that origin use the
//! endpoint with credentials), `--client-js PATH` (the browser client, default the npm package installed
//! in `demo/node_modules` by `scripts/demo.sh`).

use std::convert::Infallible;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use engineio_server::{CorsOptions, RemoteAddr};
use http::header::{CONTENT_TYPE, SET_COOKIE};
use http::{HeaderValue, Method, Request, Response, StatusCode};
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::service::Service;
use hyper_util::rt::TokioIo;
use session_bridge::{BridgeConfig, MemoryStore, SessionBridge, SessionStore, SocketSessionExt};
use socketio_server::{Socket, SocketIo, SocketIoConfig};

const PAGE: &str = include_str!("page.html");

struct Options {
    port: u16,
    redis: Option<String>,
    secrets: Vec<String>,
    max_age: Duration,
    check_interval: Duration,
    cors_origin: Option<String>,
    client_js: PathBuf,
}

fn options() -> Options {
    let env = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
    let mut o = Options {
        port: env("PORT").and_then(|p| p.parse().ok()).unwrap_or(3000),
        redis: env("REDIS_URL"),
        secrets: env("SESSION_SECRET").unwrap_or_else(|| "keyboard cat".into()).split(',').map(str::to_owned).collect(),
        max_age: Duration::from_secs(86_400),
        check_interval: Duration::from_millis(5000),
        cors_origin: None,
        client_js: PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("node_modules/socket.io-client/dist/socket.io.min.js"),
    };
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        let mut value = || args.next().unwrap_or_else(|| panic!("{flag} needs a value"));
        match flag.as_str() {
            "--port" => o.port = value().parse().expect("--port N"),
            "--redis" => o.redis = Some(value()),
            "--secret" => o.secrets = value().split(',').map(str::to_owned).collect(),
            "--max-age-secs" => o.max_age = Duration::from_secs(value().parse().expect("seconds")),
            "--check-interval-ms" => o.check_interval = Duration::from_millis(value().parse().expect("milliseconds")),
            "--cors-origin" => o.cors_origin = Some(value()),
            "--client-js" => o.client_js = PathBuf::from(value()),
            other => panic!("unknown flag {other}"),
        }
    }
    o
}

struct App {
    io: SocketIo,
    bridge: SessionBridge,
    client_js: PathBuf,
}

fn response(status: StatusCode, content_type: &str, body: impl Into<Bytes>) -> Response<Full<Bytes>> {
    let mut res = Response::new(Full::new(body.into()));
    *res.status_mut() = status;
    res.headers_mut().insert(CONTENT_TYPE, HeaderValue::from_str(content_type).expect("a content type"));
    res
}

impl App {
    async fn handle(self: Arc<Self>, mut req: Request<Incoming>, remote: SocketAddr) -> Response<Full<Bytes>> {
        if req.uri().path().starts_with("/socket.io/") {
            req.extensions_mut().insert(RemoteAddr(remote));
            return match self.io.service().call(req).await {
                Ok(res) => res,
                Err(never) => match never {},
            };
        }
        let route = (req.method().clone(), req.uri().path().to_owned());
        let result = match (route.0, route.1.as_str()) {
            (Method::GET, "/") => self.page(req).await,
            (Method::GET, "/socket.io.min.js") => self.client_js().await,
            (Method::POST, "/incr") => self.incr(req).await,
            (Method::POST, "/logout") => self.logout(req).await,
            _ => Ok(response(StatusCode::NOT_FOUND, "text/plain", "Not Found")),
        };
        result.unwrap_or_else(|e| response(StatusCode::SERVICE_UNAVAILABLE, "text/plain", e))
    }

    async fn page(&self, req: Request<Incoming>) -> Result<Response<Full<Bytes>>, String> {
        let (session, cookie) = self.bridge.load_or_create(req.headers()).await.map_err(|e| e.to_string())?;
        let count = session.get_as::<u64>("count").unwrap_or(0);
        let mut res =
            response(StatusCode::OK, "text/html; charset=utf-8", PAGE.replace("{{count}}", &count.to_string()));
        if let Some(c) = cookie {
            res.headers_mut().append(SET_COOKIE, c);
        }
        Ok(res)
    }

    async fn client_js(&self) -> Result<Response<Full<Bytes>>, String> {
        match std::fs::read(&self.client_js) {
            Ok(js) => Ok(response(StatusCode::OK, "application/javascript", js)),
            Err(_) => Ok(response(
                StatusCode::NOT_FOUND,
                "text/plain",
                "the Socket.IO browser client is not installed: run scripts/demo.sh (npm install in examples/demo/)",
            )),
        }
    }

    async fn incr(&self, req: Request<Incoming>) -> Result<Response<Full<Bytes>>, String> {
        let Some(session) = self.bridge.load(req.headers()).await.map_err(|e| e.to_string())? else {
            return Ok(response(StatusCode::UNAUTHORIZED, "application/json", r#"{"error":"no session"}"#));
        };
        let count = session.get_as::<u64>("count").unwrap_or(0) + 1;
        session.set("count", count);
        session.save().await.map_err(|e| e.to_string())?;
        let _ = self.io.to(session.id()).emit("current count", count);
        Ok(response(StatusCode::OK, "application/json", format!(r#"{{"count":{count}}}"#)))
    }

    async fn logout(&self, req: Request<Incoming>) -> Result<Response<Full<Bytes>>, String> {
        let Some(sid) = self.bridge.session_id(req.headers()) else {
            return Ok(response(StatusCode::UNAUTHORIZED, "application/json", r#"{"error":"no session"}"#));
        };
        self.bridge.logout(&self.io.of("/"), &sid).await.map_err(|e| e.to_string())?;
        let mut res = response(StatusCode::OK, "application/json", r#"{"ok":true}"#);
        let name = &self.bridge.config().cookie.name;
        let clear = format!("{name}=; Path=/; Expires=Thu, 01 Jan 1970 00:00:00 GMT; HttpOnly");
        res.headers_mut().append(SET_COOKIE, HeaderValue::from_str(&clear).expect("a valid cookie"));
        Ok(res)
    }
}

/// jemalloc with a background purge (see .cargo/config.toml): the server's memory goes back down once
/// its clients leave, which the system allocator does not do.
#[global_allocator]
static ALLOC: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

fn main() {
    let o = options();
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("a tokio runtime");
    runtime.block_on(async move {
        let store: Arc<dyn SessionStore> = match &o.redis {
            Some(url) => Arc::new(session_bridge::RedisStore::connect(url).await.expect("connect to Redis")),
            None => MemoryStore::with_sweeper(Duration::from_secs(60)),
        };
        let mut bridge_config = BridgeConfig::new(o.secrets.clone(), store);
        bridge_config.cookie.max_age = Some(o.max_age);
        bridge_config.check_interval = Some(o.check_interval);
        let bridge = SessionBridge::new(bridge_config);

        let mut config = SocketIoConfig::default();
        config.engine = config.engine.middleware(bridge.engine_middleware());
        if let Some(origin) = &o.cors_origin {
            config.engine.cors = Some(CorsOptions::with_credentials([origin.clone()]));
        }
        let io = SocketIo::new(config);
        bridge.attach(&io.of("/"));
        io.on_connection(|socket: Socket| async move {
            if let Some(session) = socket.session() {
                let _ = socket.emit("current count", session.get_as::<u64>("count").unwrap_or(0));
            }
        });

        let app = Arc::new(App { io, bridge, client_js: o.client_js.clone() });
        let listener = tokio::net::TcpListener::bind(SocketAddr::from(([0, 0, 0, 0], o.port))).await.expect("bind");
        let addr = listener.local_addr().expect("a local address");
        let store_name = if o.redis.is_some() { "Redis" } else { "memory" };
        println!("listening on http://localhost:{} (sessions in {store_name})", addr.port());
        loop {
            let Ok((stream, remote)) = listener.accept().await else { continue };
            let _ = stream.set_nodelay(true);
            let app = app.clone();
            tokio::spawn(async move {
                let svc = hyper::service::service_fn(move |req| {
                    let app = app.clone();
                    async move { Ok::<_, Infallible>(app.handle(req, remote).await) }
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), svc)
                    .with_upgrades()
                    .await;
            });
        }
    });
}
