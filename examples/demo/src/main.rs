//! The session demo: one page, one counter per session, live in every tab of that session. The page and
//! its routes are axum handlers; the Socket.IO endpoint is mounted beside them
//! (`Router::route_service("/socket.io/", io.service())`), sharing the session with them.
//!
//! - `GET /` gives the page (and a session cookie if there is none yet);
//! - `POST /incr` increments `session.count` and emits `current count` to the session's room, so every
//!   open tab of that session updates, and no other session's tab does;
//! - `POST /logout` destroys the session and disconnects every socket of it;
//! - `/socket.io/` is the Socket.IO endpoint; sockets without a valid session are refused;
//! - `GET /metrics` gives the stack's metrics in Prometheus' text format, `GET /healthz` its health
//!   (200, or 503 when not ready); the log goes to stderr (`RUST_LOG`, default `info`).
//!
//! Embedded defaults: port 3000, sessions in memory. Options (flags or environment): `--port N` (`PORT`),
//! `--redis URL` (`REDIS_URL`: sessions in Redis, in connect-redis's format), `--secret S`
//! (`SESSION_SECRET`, default `keyboard cat`; several comma-separated for rotation), `--max-age-secs N`
//! (session lifetime, default 86400), `--check-interval-ms N` (how often open sessions are checked for
//! expiry or logout elsewhere, default 5000), `--cors-origin URL` (let a front end on that origin use the
//! endpoint with credentials), `--client-js PATH` (the browser client, default the npm package installed
//! in `demo/node_modules` by `scripts/demo.sh`), `--admin-password-hash HASH` (`ADMIN_PASSWORD_HASH`: the
//! official Admin UI on `/admin`, user `--admin-user` / `ADMIN_USER`, default `admin`, this bcrypt hash as
//! its password; off without it), `--admin-ui DIR` (`ADMIN_UI_DIR`: serve the UI's built files, the npm
//! package's `ui/dist`, at `/admin-ui/`).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::http::header::{CONTENT_TYPE, SET_COOKIE};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::serve::ListenerExt;
use engineio_server::CorsOptions;
use session_bridge::{BridgeConfig, MemoryStore, SessionBridge, SessionStore, SocketSessionExt};
use socketio_admin::{AdminAuth, AdminOptions, instrument};
use socketio_server::{HandlerError, Socket, SocketIo, SocketIoConfig};

const PAGE: &str = include_str!("page.html");

struct Options {
    port: u16,
    redis: Option<String>,
    secrets: Vec<String>,
    max_age: Duration,
    check_interval: Duration,
    cors_origin: Option<String>,
    client_js: PathBuf,
    admin_user: String,
    admin_password_hash: Option<String>,
    admin_ui: Option<PathBuf>,
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
        admin_user: env("ADMIN_USER").unwrap_or_else(|| "admin".into()),
        admin_password_hash: env("ADMIN_PASSWORD_HASH"),
        admin_ui: env("ADMIN_UI_DIR").map(PathBuf::from),
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
            "--admin-user" => o.admin_user = value(),
            "--admin-password-hash" => o.admin_password_hash = Some(value()),
            "--admin-ui" => o.admin_ui = Some(PathBuf::from(value())),
            other => panic!("unknown flag {other}"),
        }
    }
    o
}

struct App {
    io: SocketIo,
    bridge: SessionBridge,
    client_js: PathBuf,
    metrics: metrics_exporter_prometheus::PrometheusHandle,
    admin_ui: Option<PathBuf>,
}

type AppState = State<Arc<App>>;

/// A route's failure (the session store is unreachable): 503 with the reason.
struct Unavailable(String);

impl IntoResponse for Unavailable {
    fn into_response(self) -> Response {
        (StatusCode::SERVICE_UNAVAILABLE, self.0).into_response()
    }
}

impl<E: std::fmt::Display> From<E> for Unavailable {
    fn from(e: E) -> Self {
        Unavailable(e.to_string())
    }
}

fn json(status: StatusCode, body: String) -> Response {
    (status, [(CONTENT_TYPE, "application/json")], body).into_response()
}

async fn page(State(app): AppState, headers: HeaderMap) -> Result<Response, Unavailable> {
    let (session, cookie) = app.bridge.load_or_create(&headers).await?;
    let count = session.get_as::<u64>("count").unwrap_or(0);
    let html = PAGE.replace("{{count}}", &count.to_string());
    let mut res = ([(CONTENT_TYPE, "text/html; charset=utf-8")], html).into_response();
    if let Some(c) = cookie {
        res.headers_mut().append(SET_COOKIE, c);
    }
    Ok(res)
}

async fn client_js(State(app): AppState) -> Response {
    match tokio::fs::read(&app.client_js).await {
        Ok(js) => ([(CONTENT_TYPE, "application/javascript")], js).into_response(),
        Err(_) => (
            StatusCode::NOT_FOUND,
            "the Socket.IO browser client is not installed: run scripts/demo.sh (npm install in examples/demo/)",
        )
            .into_response(),
    }
}

async fn incr(State(app): AppState, headers: HeaderMap) -> Result<Response, Unavailable> {
    let Some(session) = app.bridge.load(&headers).await? else {
        return Ok(json(StatusCode::UNAUTHORIZED, r#"{"error":"no session"}"#.into()));
    };
    let count = session.get_as::<u64>("count").unwrap_or(0) + 1;
    session.set("count", count);
    session.save().await?;
    // Every tab of this session: its sockets are in the room named by the session id. Best effort: the
    // count is saved, and a tab that misses this gets it when it reconnects.
    let _ = app.io.to(session.id()).emit("current count", count);
    Ok(json(StatusCode::OK, format!(r#"{{"count":{count}}}"#)))
}

async fn logout(State(app): AppState, headers: HeaderMap) -> Result<Response, Unavailable> {
    let Some(sid) = app.bridge.session_id(&headers) else {
        return Ok(json(StatusCode::UNAUTHORIZED, r#"{"error":"no session"}"#.into()));
    };
    app.bridge.logout(&app.io.of("/"), &sid).await?;
    let mut res = json(StatusCode::OK, r#"{"ok":true}"#.into());
    let name = &app.bridge.config().cookie.name;
    let clear = format!("{name}=; Path=/; Expires=Thu, 01 Jan 1970 00:00:00 GMT; HttpOnly");
    res.headers_mut().append(SET_COOKIE, HeaderValue::from_str(&clear)?);
    Ok(res)
}

/// The stack's metrics in Prometheus' text format.
async fn metrics_text(State(app): AppState) -> Response {
    let text = app.metrics.render();
    ([(CONTENT_TYPE, "text/plain; version=0.0.4")], text).into_response()
}

/// The Admin UI's built files (`--admin-ui`), from this origin: the UI then needs no CORS.
async fn admin_ui(State(app): AppState, file: Option<axum::extract::Path<String>>) -> Response {
    let file = file.map_or_else(|| "index.html".to_owned(), |p| p.0);
    let Some(dir) = &app.admin_ui else { return StatusCode::NOT_FOUND.into_response() };
    if file.split('/').any(|part| part == ".." || part.is_empty()) {
        return StatusCode::NOT_FOUND.into_response();
    }
    let content_type = match file.rsplit('.').next() {
        Some("html") => "text/html; charset=utf-8",
        Some("js") => "application/javascript",
        Some("css") => "text/css",
        Some("png") => "image/png",
        Some("svg") => "image/svg+xml",
        _ => "application/octet-stream",
    };
    match tokio::fs::read(dir.join(&file)).await {
        Ok(bytes) => ([(CONTENT_TYPE, content_type)], bytes).into_response(),
        Err(_) => StatusCode::NOT_FOUND.into_response(),
    }
}

/// Readiness: 200 with the figures while the server takes traffic, 503 when its adapter cannot reach the
/// other servers or it is closing.
async fn healthz(State(app): AppState) -> Response {
    let health = app.io.health();
    let status = if health.is_ready() { StatusCode::OK } else { StatusCode::SERVICE_UNAVAILABLE };
    json(status, serde_json::to_string(&health).unwrap_or_default())
}

/// jemalloc with a background purge (see .cargo/config.toml): the server's memory goes back down once
/// its clients leave, which the system allocator does not do.
#[global_allocator]
static ALLOC: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

fn main() {
    let o = options();
    // The log (RUST_LOG, default `info`) and the metrics recorder, before the server takes connections.
    let filter = tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into());
    tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).init();
    let metrics = metrics_exporter_prometheus::PrometheusBuilder::new().install_recorder().expect("a metrics recorder");
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
        config.engine.middleware(bridge.engine_middleware());
        if let Some(origin) = &o.cors_origin {
            config.engine.cors = Some(CorsOptions::with_credentials([origin.clone()]));
        }
        let io = SocketIo::new(config);
        bridge.attach(&io.of("/"));
        if let Some(hash) = &o.admin_password_hash {
            let auth = AdminAuth::Basic { username: o.admin_user.clone(), password_hash: hash.clone() };
            instrument(&io, AdminOptions::new(auth)).expect("ADMIN_PASSWORD_HASH is a bcrypt hash");
        }
        io.on_connection(|socket: Socket| async move {
            let count = socket.session().map(|session| session.get_as::<u64>("count").unwrap_or(0));
            count.map_or(Ok(()), |count| socket.emit("current count", count))
        });
        io.on_handler_error(|socket: &Socket, event: &str, err: &HandlerError| {
            eprintln!("{} {event}: {err}", socket.id())
        });

        // The Socket.IO endpoint mounted beside the application's own routes.
        let app =
            Arc::new(App { io: io.clone(), bridge, client_js: o.client_js.clone(), metrics, admin_ui: o.admin_ui });
        let routes = Router::new()
            .route("/", get(page))
            .route("/socket.io.min.js", get(client_js))
            .route("/incr", post(incr))
            .route("/logout", post(logout))
            .route("/metrics", get(metrics_text))
            .route("/healthz", get(healthz))
            .route("/admin-ui/", get(admin_ui))
            .route("/admin-ui/{*file}", get(admin_ui))
            .route_service("/socket.io/", io.service())
            .with_state(app);
        let listener = tokio::net::TcpListener::bind(SocketAddr::from(([0, 0, 0, 0], o.port))).await.expect("bind");
        let addr = listener.local_addr().expect("a local address");
        let store_name = if o.redis.is_some() { "Redis" } else { "memory" };
        println!("listening on http://localhost:{} (sessions in {store_name})", addr.port());
        // Small realtime frames go out at once (no Nagle delay).
        let listener = listener.tap_io(|tcp| {
            let _ = tcp.set_nodelay(true);
        });
        axum::serve(listener, routes.into_make_service_with_connect_info::<SocketAddr>()).await.expect("serve");
    });
}
