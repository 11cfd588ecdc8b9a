#![doc = include_str!("../README.md")]
#![forbid(unsafe_code)]

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde_json::{Value as Json, json};
use socketio_server::extract::{Args, Data};
use socketio_server::{BroadcastOperator, ConnectError, EmitError, Namespace, RoomEvent, Socket, SocketIo, Value};

/// How often `server_stats` goes out, as the reference's.
pub const STATS_INTERVAL: Duration = Duration::from_secs(2);

/// Who may connect to the admin namespace.
#[derive(Clone)]
#[non_exhaustive]
pub enum AdminAuth {
    /// Anyone (the reference's `auth: false`).
    Disabled,
    /// A username and a bcrypt hash of the password (`$2a$`, `$2b$`, `$2y$`), as the reference's
    /// `{type: "basic", username, password}`.
    Basic {
        /// The username, compared as it is.
        username: String,
        /// The password's bcrypt hash.
        password_hash: String,
    },
}

impl std::fmt::Debug for AdminAuth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            AdminAuth::Disabled => f.write_str("Disabled"),
            AdminAuth::Basic { username, .. } => {
                f.debug_struct("Basic").field("username", username).finish_non_exhaustive()
            }
        }
    }
}

/// The reference's `mode`: development reports every socket, room and event; production only the
/// server statistics.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Mode {
    /// Sockets, rooms and events are reported as they happen (the default).
    #[default]
    Development,
    /// Only `server_stats` (with its aggregated counts).
    Production,
}

/// Options of [`instrument`], with the reference's names and defaults.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct AdminOptions {
    /// The admin namespace (default `/admin`).
    pub namespace_name: String,
    /// Who may connect; no default, as in the reference, so an open admin is always a choice.
    pub auth: AdminAuth,
    /// Refuse the UI's commands (join, leave, disconnect, emit) (default false).
    pub readonly: bool,
    /// This server's name in the UI (default: the host name).
    pub server_id: Option<String>,
    /// What is reported (default [`Mode::Development`]).
    pub mode: Mode,
}

impl AdminOptions {
    /// Options with this authentication and the defaults.
    pub fn new(auth: AdminAuth) -> Self {
        AdminOptions {
            namespace_name: "/admin".into(),
            auth,
            readonly: false,
            server_id: None,
            mode: Mode::Development,
        }
    }
}

/// Why [`instrument`] refused its options.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AdminError {
    /// The password hash is not a bcrypt hash.
    #[error("the admin password is not a bcrypt hash ($2a$, $2b$ or $2y$)")]
    InvalidHash,
}

/// A new session's id, kept on the admin socket by the authentication so that the connection handler can
/// send it (`session`).
#[derive(Clone)]
struct NewSession(String);

/// Counts for `aggregatedEvents`, by second, type and sub-type, since the last `server_stats`.
type Aggregated = HashMap<(u64, &'static str, Option<String>), u64>;

struct Shared {
    admin: Namespace,
    options: AdminOptions,
    server_id: String,
    hostname: String,
    started: Instant,
    sessions: Mutex<HashSet<String>>,
    aggregated: Mutex<Aggregated>,
    /// Sockets per Engine.IO connection, to count connections and disconnections of clients.
    clients: Mutex<HashMap<String, usize>>,
}

/// What [`instrument`] returns: the instrumentation runs as long as the server does.
#[derive(Clone)]
pub struct Instrumentation {
    shared: Arc<Shared>,
}

impl std::fmt::Debug for Instrumentation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Instrumentation").field("server_id", &self.shared.server_id).finish_non_exhaustive()
    }
}

impl Instrumentation {
    /// This server's id as the UI shows it.
    pub fn server_id(&self) -> &str {
        &self.shared.server_id
    }

    /// The `server_stats` this server would send now (its aggregated counts are left in place).
    pub fn server_stats(&self, io: &SocketIo) -> Json {
        self.shared.stats(io, false)
    }
}

/// Makes `io` a server the official Admin UI (`@socket.io/admin-ui` 0.5) can connect to, as the reference's
/// `instrument(io, options)`: the admin namespace with its authentication, `config`, `server_stats` every 2
/// seconds, and (in development mode) `all_sockets` and every socket, room and event as it happens; the
/// UI's commands unless `readonly`. What is sent to the admin namespace goes through its adapter, so with
/// a cluster adapter a UI connected to one server sees them all.
///
/// Must be called inside a tokio runtime (the statistics run on a task of their own).
pub fn instrument(io: &SocketIo, options: AdminOptions) -> Result<Instrumentation, AdminError> {
    if let AdminAuth::Basic { password_hash, .. } = &options.auth
        && !password_hash.starts_with("$2")
    {
        return Err(AdminError::InvalidHash);
    }
    let hostname = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_owned())
        .or_else(|_| std::env::var("HOSTNAME"))
        .unwrap_or_else(|_| "localhost".into());
    let shared = Arc::new(Shared {
        admin: io.of(&options.namespace_name),
        server_id: options.server_id.clone().unwrap_or_else(|| hostname.clone()),
        hostname,
        options,
        started: Instant::now(),
        sessions: Mutex::default(),
        aggregated: Mutex::default(),
        clients: Mutex::default(),
    });
    shared.setup_admin_namespace();
    for name in io.namespaces() {
        shared.instrument_namespace(&io.of(&name));
    }
    let s = shared.clone();
    io.on_new_namespace(move |ns| s.instrument_namespace(ns));
    let s = shared.clone();
    let io2 = io.clone();
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(STATS_INTERVAL);
        loop {
            tick.tick().await;
            if io2.health().closing {
                return;
            }
            // Best effort: the UI gets the next one.
            let _ = s.admin.emit("server_stats", s.stats(&io2, true));
        }
    });
    Ok(Instrumentation { shared })
}

fn now_ms() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_millis() as u64).unwrap_or(0)
}

/// A JavaScript `Date` as JSON writes it.
fn timestamp() -> String {
    socketio_server::proto::date::to_iso(now_ms() as i64)
}

impl Shared {
    fn development(&self) -> bool {
        self.options.mode == Mode::Development
    }

    /// Sends to every admin socket (of every server, through the adapter). Best effort: nothing here is
    /// worth failing the application's own work.
    fn report(&self, event: &str, args: Json) {
        // `args` is the list of the event's arguments.
        let args: Vec<Value> = match args {
            Json::Array(items) => items.into_iter().map(Value::from).collect(),
            other => vec![Value::from(other)],
        };
        match self.admin.emit(event, args) {
            Ok(()) => tracing::trace!(target: "socketio_admin", event, "reported"),
            Err(e) => tracing::debug!(target: "socketio_admin", event, error = %e, "report not sent"),
        }
    }

    fn count(&self, kind: &'static str, sub_type: Option<String>, n: u64) {
        let second = now_ms() / 1000 * 1000;
        *self.aggregated.lock().expect("poisoned").entry((second, kind, sub_type)).or_default() += n;
    }

    fn stats(&self, io: &SocketIo, take: bool) -> Json {
        let aggregated: Vec<Json> = {
            let mut agg = self.aggregated.lock().expect("poisoned");
            let entries: Vec<_> =
                if take { agg.drain().collect() } else { agg.iter().map(|(k, v)| (k.clone(), *v)).collect() };
            entries
                .into_iter()
                .map(|((timestamp, kind, sub_type), count)| {
                    let mut e = json!({ "timestamp": timestamp, "type": kind, "count": count });
                    if let Some(sub) = sub_type {
                        e["subType"] = Json::from(sub);
                    }
                    e
                })
                .collect()
        };
        let namespaces: Vec<Json> = io
            .namespaces()
            .into_iter()
            .map(|name| {
                let count = io.of(&name).sockets().len();
                json!({ "name": name, "socketsCount": count })
            })
            .collect();
        json!({
            "serverId": self.server_id,
            "hostname": self.hostname,
            "pid": std::process::id(),
            "uptime": self.started.elapsed().as_secs_f64(),
            "clientsCount": io.engine().session_count(),
            "pollingClientsCount": io.engine().polling_session_count(),
            "aggregatedEvents": aggregated,
            "namespaces": namespaces,
        })
    }

    /// The admin namespace: its authentication, and what a UI gets when it connects.
    fn setup_admin_namespace(self: &Arc<Self>) {
        if let AdminAuth::Basic { .. } = &self.options.auth {
            let s = self.clone();
            self.admin.use_middleware(move |socket: Socket| async move { s.authenticate(&socket) });
        }
        let s = self.clone();
        self.admin.on_connection(move |socket: Socket| async move { s.admin_connected(socket).await });
    }

    fn authenticate(&self, socket: &Socket) -> Result<(), ConnectError> {
        let AdminAuth::Basic { username, password_hash } = &self.options.auth else { return Ok(()) };
        let auth = &socket.handshake().auth;
        if let Some(id) = auth.get("sessionId").and_then(Value::as_str)
            && self.sessions.lock().expect("poisoned").contains(id)
        {
            return Ok(());
        }
        let user = auth.get("username").and_then(Value::as_str);
        let password = auth.get("password").and_then(Value::as_str);
        let valid = match (user, password) {
            (Some(u), Some(p)) if u == username => bcrypt::verify(p, password_hash).unwrap_or(false),
            _ => false,
        };
        if !valid {
            tracing::warn!(target: "socketio_admin", "admin connection refused: invalid credentials");
            return Err(ConnectError::new("invalid credentials"));
        }
        let id: String = rand::random::<[u8; 8]>().iter().map(|b| format!("{b:02x}")).collect();
        self.sessions.lock().expect("poisoned").insert(id.clone());
        socket.extensions().insert(NewSession(id));
        Ok(())
    }

    async fn admin_connected(self: Arc<Self>, socket: Socket) -> Result<(), EmitError> {
        let session = socket.extensions().get::<NewSession>().cloned();
        if let Some(NewSession(id)) = session {
            // After the CONNECT reply (the reference sends it before, where the UI misses it).
            socket.emit("session", id)?;
        }
        let mut features = Vec::new();
        if !self.options.readonly {
            features.extend(["EMIT", "JOIN", "LEAVE", "DISCONNECT", "MJOIN", "MLEAVE", "MDISCONNECT"]);
        }
        features.push("AGGREGATED_EVENTS");
        if self.development() {
            features.push("ALL_EVENTS");
        }
        socket.emit("config", json!({ "supportedFeatures": features }))?;
        let Some(io) = socket.io() else { return Ok(()) };
        if self.development() {
            socket.emit("all_sockets", all_sockets(&io).await)?;
        }
        if !self.options.readonly {
            register_commands(&socket);
        }
        tracing::info!(target: "socketio_admin", id = socket.id(), "admin UI connected");
        Ok(())
    }

    /// Reports a namespace's sockets, rooms and events (the admin namespace's own events excepted).
    fn instrument_namespace(self: &Arc<Self>, ns: &Namespace) {
        let is_admin = ns.name() == self.admin.name();
        if self.development() {
            let s = self.clone();
            let nsp = ns.name().to_owned();
            ns.adapter().local().on_room_event(move |e| match e {
                RoomEvent::Joined { room, id } => s.report("room_joined", json!([nsp, &**room, &**id, timestamp()])),
                RoomEvent::Left { room, id } => s.report("room_left", json!([nsp, &**room, &**id, timestamp()])),
                _ => {}
            });
        }
        for socket in ns.sockets() {
            self.watch(&socket, is_admin, false);
        }
        let s = self.clone();
        ns.on_connection(move |socket: Socket| async move { s.watch(&socket, is_admin, true) });
    }

    fn watch(self: &Arc<Self>, socket: &Socket, is_admin: bool, announce: bool) {
        let client = socket.engine_id().to_owned();
        let first = {
            let mut clients = self.clients.lock().expect("poisoned");
            let n = clients.entry(client.clone()).or_default();
            *n += 1;
            *n == 1
        };
        if first {
            self.count("rawConnection", None, 1);
        }
        if announce && self.development() {
            self.report("socket_connected", json!([serialize_local(socket), timestamp()]));
        }
        if !is_admin {
            let s = self.clone();
            socket.on_any(move |socket, event, args| {
                s.event(socket, "event_received", "packetsIn", "bytesIn", event, args)
            });
            let s = self.clone();
            socket.on_any_outgoing(move |socket, event, args| {
                s.event(socket, "event_sent", "packetsOut", "bytesOut", event, args)
            });
        }
        if self.development() {
            let s = self.clone();
            socket.on_upgrade(move |socket| {
                let update = json!({ "id": socket.id(), "nsp": socket.namespace_name(), "transport": "websocket" });
                s.report("socket_updated", json!([update]));
            });
            let s = self.clone();
            socket.on_data_change(move |socket| {
                let update =
                    json!({ "id": socket.id(), "nsp": socket.namespace_name(), "data": socket.data().into_json() });
                s.report("socket_updated", json!([update]));
            });
        }
        let s = self.clone();
        socket.on_disconnect(move |socket: Socket, reason| async move {
            if s.development() {
                s.report(
                    "socket_disconnected",
                    json!([socket.namespace_name(), socket.id(), reason.as_str(), timestamp()]),
                );
            }
            let last = {
                let mut clients = s.clients.lock().expect("poisoned");
                let n = clients.get_mut(&client).map(|n| {
                    *n -= 1;
                    *n
                });
                if n == Some(0) {
                    clients.remove(&client);
                }
                n == Some(0)
            };
            if last {
                s.count("rawDisconnection", Some(reason.as_str().to_owned()), 1);
            }
        });
    }

    fn event(
        &self,
        socket: &Socket,
        report: &str,
        packets: &'static str,
        bytes: &'static str,
        event: &str,
        args: &[Value],
    ) {
        let size = event.len() + args.iter().map(Value::size_hint).sum::<usize>();
        self.count(packets, None, 1);
        self.count(bytes, None, size as u64);
        if self.development() {
            let mut all = vec![Json::from(event)];
            all.extend(args.iter().map(|a| a.clone().into_json()));
            self.report(report, json!([socket.namespace_name(), socket.id(), all, timestamp()]));
        }
    }
}

/// A local socket as the UI shows it.
fn serialize_local(socket: &Socket) -> Json {
    let mut rooms: Vec<String> = socket.rooms().iter().map(|r| r.to_string()).collect();
    rooms.sort();
    let client: String = socket.engine_id().chars().take(12).collect();
    json!({
        "id": socket.id(),
        "clientId": client,
        "transport": socket.transport().as_str(),
        "nsp": socket.namespace_name(),
        "data": socket.data().into_json(),
        "rooms": rooms,
        "handshake": handshake(socket.handshake()),
    })
}

/// A socket of another server (from `fetch_sockets`). A Node server's `instrument()` keeps the client id
/// and transport in `data._admin`, used when present (and not shown as data, as the reference does);
/// otherwise they are not known here: the socket id and `websocket` stand in.
fn serialize_remote(nsp: &str, socket: &socketio_server::RemoteSocket) -> Json {
    let mut rooms: Vec<&str> = socket.rooms().into_iter().collect();
    rooms.sort();
    let mut data = socket.data().clone().into_json();
    let admin = data.as_object_mut().and_then(|o| o.remove("_admin"));
    let field = |name: &str| admin.as_ref().and_then(|a| a.get(name)).and_then(Json::as_str).map(str::to_owned);
    let client = field("clientId").unwrap_or_else(|| socket.id().chars().take(12).collect());
    let transport = field("transport").unwrap_or_else(|| "websocket".to_owned());
    json!({
        "id": socket.id(),
        "clientId": client,
        "transport": transport,
        "nsp": nsp,
        "data": data,
        "rooms": rooms,
        "handshake": handshake(socket.handshake()),
    })
}

fn handshake(h: &socketio_server::Handshake) -> Json {
    // The address the UI shows: a proxy's header first, as the reference.
    let address = h
        .headers
        .get("cf-connecting-ip")
        .or_else(|| h.headers.get("x-forwarded-for"))
        .cloned()
        .unwrap_or_else(|| h.address.clone());
    json!({
        "address": address,
        "headers": h.headers,
        "query": h.query,
        "issued": h.issued,
        "secure": h.secure,
        "time": h.time,
        "url": h.url,
        "xdomain": h.xdomain,
    })
}

/// Every socket of every namespace this server has, on every server.
async fn all_sockets(io: &SocketIo) -> Json {
    let mut all = Vec::new();
    for name in io.namespaces() {
        let ns = io.of(&name);
        match ns.fetch_sockets().await {
            Ok(sockets) => {
                for remote in &sockets {
                    all.push(match ns.get_socket(remote.id()) {
                        Some(local) => serialize_local(&local),
                        None => serialize_remote(&name, remote),
                    });
                }
            }
            Err(e) => tracing::warn!(target: "socketio_admin", namespace = %name, error = %e, "fetch_sockets failed"),
        }
    }
    Json::Array(all)
}

/// The sockets a command targets: those of `filter` (a room; a socket's id names its own room), or every
/// socket of the namespace; `None` if this server has no such namespace (a command never makes one).
fn targets(socket: &Socket, nsp: &str, filter: Option<String>) -> Option<BroadcastOperator> {
    let io = socket.io()?;
    let ns = io.namespaces().iter().any(|n| n == nsp).then(|| io.of(nsp))?;
    Some(match filter {
        Some(room) => ns.in_(room),
        None => ns.broadcast(),
    })
}

/// The UI's commands: `join` / `leave` (nsp, room, filter?), `_disconnect` (nsp, close, filter?) and `emit`
/// (nsp, filter, event, ...args). They act on every server, through the adapter.
fn register_commands(socket: &Socket) {
    socket.on(
        "join",
        |s: Socket, Data(nsp): Data<String>, Data(room): Data<String>, Data(filter): Data<Option<String>>| async move {
            let Some(op) = targets(&s, &nsp, filter) else { return Ok(()) };
            op.sockets_join(room).await
        },
    );
    socket.on(
        "leave",
        |s: Socket, Data(nsp): Data<String>, Data(room): Data<String>, Data(filter): Data<Option<String>>| async move {
            let Some(op) = targets(&s, &nsp, filter) else { return Ok(()) };
            op.sockets_leave(room).await
        },
    );
    socket.on(
        "_disconnect",
        |s: Socket, Data(nsp): Data<String>, Data(close): Data<bool>, Data(filter): Data<Option<String>>| async move {
            let Some(op) = targets(&s, &nsp, filter) else { return Ok(()) };
            op.disconnect_sockets(close).await
        },
    );
    socket.on(
        "emit",
        |s: Socket,
         Data(nsp): Data<String>,
         Data(filter): Data<Option<String>>,
         Data(event): Data<String>,
         Args(args): Args<Vec<Value>>| async move {
            let Some(op) = targets(&s, &nsp, filter) else { return Ok(()) };
            op.emit(&event, args)
        },
    );
}
