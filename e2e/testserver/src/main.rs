//! The Socket.IO server the interop tests drive (`e2e/`, `python-socketio` tests). It has the behaviour of
//! the reference protocol test suite plus a handler per feature under test.
//!
//! Flags: `--port N` (0 picks one), `--ping-interval MS`, `--ping-timeout MS`, `--connect-timeout MS`,
//! `--recovery` (connection state recovery on), `--msgpack` (msgpack parser), `--cleanup-empty-children`,
//! `--redis URL` (the Redis adapter: join a cluster), `--redis-key KEY` (its channel prefix),
//! `--cookie` (the Engine.IO `io` cookie, for sticky sessions behind a load balancer), `--name NAME` (this
//! node's name, reported by the `whoami` event and `server-side` answers), `--cors ORIGIN` (CORS with
//! credentials for that page origin, for browser tests whose page comes from another server).
//! Prints `listening on http://ADDR` once bound.
//!
//! Namespaces:
//! - `/` and `/custom`: on connection, emit `auth` with the handshake's auth payload.
//! - `/private`: a middleware refuses sockets whose auth lacks `token: "secret"` with CONNECT_ERROR
//!   `{message: "not authorized", data: {code: 401}}`.
//! - any `/dyn-*`: a dynamic namespace; on connection emit `welcome` with the namespace name.
//!
//! Events on `/` (and `/custom` and the dynamic ones):
//! - `message` → emit `message-back` with the same arguments; `message-with-ack` → ack with the arguments.
//! - `join` (room) / `leave` (room) → ack with the socket's rooms, sorted.
//! - `to-room` (room, ...args) → `io.to(room).emit("room-message", ...args)` (sender included if member).
//! - `broadcast` (...args) → `socket.broadcast().emit("broadcast", ...args)`; `except` (room, ...args) →
//!   to everyone but that room.
//! - `request-ack` (timeout ms, ...args) → `socket.timeout(t).emit_with_ack("ask", ...args)`; then emit
//!   `ack-result` with `{ok: args}` or `{err: message}`.
//! - `broadcast-with-ack` (room, timeout ms) → `io.to(room).timeout(t).emit_with_ack("question")`; ack with
//!   `{responses: [...], err?: message}`.
//! - `volatile` (...args) → `socket.volatile().emit("volatile", ...args)`.
//! - `disconnect-me` (close) → `socket.disconnect(close)`.
//! - `fetch-sockets` → ack with the sorted ids of `io.fetch_sockets()`.
//! - `sockets-join` (room) / `sockets-leave` (room) → `io.sockets_join` / `io.sockets_leave`, then ack.
//! - `disconnect-room` (room) → `io.to(room).disconnect_sockets(false)`.
//! - `any-counts` → ack with `{incoming, outgoing}`: events seen by this socket's catch-all listeners.
//! - `forbidden` → refused by a per-packet middleware; the error handler emits `middleware-error`.
//! - `set-data` (value) / `get-data` → socket data; `emit-all` (...args) → `io.emit("all", ...args)`.
//! - Every disconnect is reported to the room `observers` as `disconnected` (id, reason).
//! - `whoami` → ack with the node's name; `server-side-emit` (timeout ms) →
//!   `io.server_side_emit_with_ack("ping-node")`, ack with `{answers}`: one per other node, its name;
//!   `server-side-emit-no-ack` (...args) → every other node emits `server-note` (...args) to its own
//!   sockets.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use socketio_server::{ConnectError, Event, RecoveryConfig, Socket, SocketIo, SocketIoConfig, Value};

#[derive(Default)]
struct AnyCounts {
    incoming: AtomicUsize,
    outgoing: AtomicUsize,
}

fn sorted(mut v: Vec<String>) -> Value {
    v.sort();
    Value::Array(v.into_iter().map(Value::from).collect())
}

fn register(io: &SocketIo, socket: &Socket, name: &str) {
    let name = name.to_owned();
    socket.on("whoami", move |_, mut ev: Event| {
        let name = name.clone();
        async move { ev.ack(name) }
    });
    socket.on("server-side-emit", |s, mut ev: Event| async move {
        let ms: u64 = ev.arg(0).unwrap_or(1000);
        let v = match s.namespace().timeout(Duration::from_millis(ms)).server_side_emit_with_ack("ping-node", ()).await
        {
            Ok(answers) => serde_json::json!({ "answers": answers_json(answers) }),
            Err(e) => serde_json::json!({ "err": e.to_string() }),
        };
        ev.ack(v);
    });
    socket.on("server-side-emit-no-ack", |s, ev: Event| async move {
        let _ = s.namespace().server_side_emit("note", ev.args).await;
    });
    let counts = Arc::new(AnyCounts::default());
    let c = counts.clone();
    socket.on_any(move |_, _, _| {
        c.incoming.fetch_add(1, Ordering::Relaxed);
    });
    let c = counts.clone();
    socket.on_any_outgoing(move |_, _, _| {
        c.outgoing.fetch_add(1, Ordering::Relaxed);
    });
    socket.on("any-counts", move |_, mut ev: Event| {
        let counts = counts.clone();
        async move {
            let v = serde_json::json!({
                "incoming": counts.incoming.load(Ordering::Relaxed),
                "outgoing": counts.outgoing.load(Ordering::Relaxed),
            });
            ev.ack(v);
        }
    });
    socket.use_middleware(|_, ev: Event| async move {
        if ev.name == "forbidden" { Err(Value::from("forbidden event")) } else { Ok(ev) }
    });
    socket.on_error(|s, err| {
        let _ = s.emit("middleware-error", err);
    });
    socket.on("message", |s, ev: Event| async move {
        let _ = s.emit("message-back", ev.args);
    });
    socket.on("message-with-ack", |_, mut ev: Event| async move {
        let args = ev.args.clone();
        ev.ack(args);
    });
    socket.on("join", |s, mut ev: Event| async move {
        let room: String = ev.arg(0).unwrap_or_default();
        s.join(room.as_str());
        ev.ack(sorted(s.rooms().iter().map(|r| r.to_string()).collect()));
    });
    socket.on("leave", |s, mut ev: Event| async move {
        let room: String = ev.arg(0).unwrap_or_default();
        s.leave(&room);
        ev.ack(sorted(s.rooms().iter().map(|r| r.to_string()).collect()));
    });
    socket.on("to-room", |s, ev: Event| async move {
        let mut args = ev.args;
        let room = args.remove(0);
        let _ = s.namespace().to(room.as_str().unwrap_or_default()).emit("room-message", args);
    });
    socket.on("broadcast", |s, ev: Event| async move {
        let _ = s.broadcast().emit("broadcast", ev.args);
    });
    socket.on("except", |s, ev: Event| async move {
        let mut args = ev.args;
        let room = args.remove(0);
        let _ = s.namespace().except(room.as_str().unwrap_or_default()).emit("broadcast", args);
    });
    socket.on("request-ack", |s, ev: Event| async move {
        let mut args = ev.args;
        let ms = args.remove(0).as_u64().unwrap_or(1000);
        let result = match s.timeout(Duration::from_millis(ms)).emit_with_ack("ask", args).await {
            Ok(a) => serde_json::json!({ "ok": Value::Array(a).into_json() }),
            Err(e) => serde_json::json!({ "err": e.to_string() }),
        };
        let _ = s.emit("ack-result", result);
    });
    socket.on("broadcast-with-ack", |s, mut ev: Event| async move {
        let room: String = ev.arg(0).unwrap_or_default();
        let ms: u64 = ev.arg(1).unwrap_or(1000);
        let op = s.namespace().to(room.as_str()).timeout(Duration::from_millis(ms));
        let v = match op.emit_with_ack("question", ()).await {
            Ok(responses) => serde_json::json!({ "responses": responses_json(responses) }),
            Err(e) => {
                serde_json::json!({ "responses": responses_json(e.responses.clone()), "err": e.error.to_string() })
            }
        };
        ev.ack(v);
    });
    socket.on("volatile", |s, ev: Event| async move {
        let _ = s.volatile().emit("volatile", ev.args);
    });
    socket.on("disconnect-me", |s, ev: Event| async move {
        let close: bool = ev.arg(0).unwrap_or(false);
        s.disconnect(close);
    });
    let io = io.clone();
    socket.on("fetch-sockets", move |s, mut ev: Event| async move {
        let ns = if s.namespace_name() == "/" { io.of("/") } else { s.namespace().clone() };
        let ids = ns.fetch_sockets().await.map(|v| v.iter().map(|r| r.id().to_owned()).collect()).unwrap_or_default();
        ev.ack(sorted(ids));
    });
    socket.on("sockets-join", |s, mut ev: Event| async move {
        let room: String = ev.arg(0).unwrap_or_default();
        let _ = s.namespace().sockets_join(room.as_str()).await;
        ev.ack(());
    });
    socket.on("sockets-leave", |s, mut ev: Event| async move {
        let room: String = ev.arg(0).unwrap_or_default();
        let _ = s.namespace().sockets_leave(room.as_str()).await;
        ev.ack(());
    });
    socket.on("disconnect-room", |s, ev: Event| async move {
        let room: String = ev.arg(0).unwrap_or_default();
        let _ = s.namespace().to(room.as_str()).disconnect_sockets(false).await;
    });
    socket.on("set-data", |s, mut ev: Event| async move {
        s.set_data(ev.args.first().cloned().unwrap_or_default());
        ev.ack(());
    });
    socket.on("get-data", |s, mut ev: Event| async move {
        ev.ack(s.data());
    });
    socket.on("emit-all", |s, ev: Event| async move {
        let _ = s.namespace().emit("all", ev.args);
    });
    socket.on_disconnect(|s, reason| async move {
        let _ = s.namespace().to("observers").emit("disconnected", (s.id(), reason.as_str()));
    });
}

fn responses_json(responses: Vec<Vec<Value>>) -> serde_json::Value {
    serde_json::Value::Array(responses.into_iter().map(|r| Value::Array(r).into_json()).collect())
}

/// Each server's answer as a one-element list, the shape the cluster tests compare across Node and Rust.
fn answers_json(answers: Vec<Value>) -> serde_json::Value {
    serde_json::Value::Array(answers.into_iter().map(|a| serde_json::json!([a.into_json()])).collect())
}

fn main() {
    let mut config = SocketIoConfig::default();
    let mut port = 3000u16;
    let mut redis: Option<String> = None;
    let mut redis_key = "socket.io".to_owned();
    let mut name = "rust".to_owned();
    let mut args = std::env::args().skip(1);
    let ms = |v: Option<String>| Duration::from_millis(v.and_then(|v| v.parse().ok()).expect("milliseconds"));
    while let Some(flag) = args.next() {
        match flag.as_str() {
            "--port" => port = args.next().and_then(|v| v.parse().ok()).expect("--port N"),
            "--ping-interval" => config.engine.ping_interval = ms(args.next()),
            "--ping-timeout" => config.engine.ping_timeout = ms(args.next()),
            "--connect-timeout" => config.connect_timeout = ms(args.next()),
            "--recovery" => config.connection_state_recovery = Some(RecoveryConfig::default()),
            "--msgpack" => config.parser = Arc::new(socketio_server::proto::msgpack::MsgpackParser),
            "--cleanup-empty-children" => config.cleanup_empty_child_namespaces = true,
            "--redis" => redis = args.next(),
            "--redis-key" => redis_key = args.next().expect("--redis-key KEY"),
            "--cookie" => config.engine.cookie = Some(socketio_server::engineio_server::CookieOptions::default()),
            "--name" => name = args.next().expect("--name NAME"),
            "--cors" => {
                let origin = args.next().expect("--cors ORIGIN");
                config.engine.cors = Some(socketio_server::engineio_server::CorsOptions::with_credentials([origin]));
            }
            other => panic!("unknown flag {other}"),
        }
    }
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("a tokio runtime");
    // The node's name lives as long as the process; every handler copies the reference.
    let name: &'static str = Box::leak(name.into_boxed_str());
    runtime.block_on(async move {
        let mut cluster = None;
        if let Some(url) = &redis {
            let cluster_config = socketio_redis::RedisAdapterConfig { key: redis_key, ..Default::default() };
            let joined = socketio_redis::RedisCluster::connect(url, cluster_config).await.expect("connect to Redis");
            cluster = Some(joined);
        }
        let io = match &cluster {
            Some(cluster) => SocketIo::with_adapter(config, cluster.factory()),
            None => SocketIo::new(config),
        };
        for nsp in ["/", "/custom"] {
            io.of(nsp).on_server_event("ping-node", move |_args| async move { vec![Value::from(name)] });
            let io2 = io.clone();
            io.of(nsp).on_server_event("note", move |args| async move {
                let _ = io2.local().emit("server-note", args);
                Vec::new()
            });
        }
        for nsp_name in ["/", "/custom"] {
            let io2 = io.clone();
            io.of(nsp_name).on_connection(move |socket: Socket| async move {
                let _ = socket.emit("auth", socket.handshake().auth.clone());
                register(&io2, &socket, name);
            });
        }
        let private = io.of("/private");
        private.use_middleware(|socket: Socket| async move {
            if socket.handshake().auth.get("token").and_then(Value::as_str) == Some("secret") {
                Ok(())
            } else {
                Err(ConnectError::new("not authorized").with_data(serde_json::json!({ "code": 401 })))
            }
        });
        let io2 = io.clone();
        private.on_connection(move |socket: Socket| async move {
            let _ = socket.emit("auth", socket.handshake().auth.clone());
            register(&io2, &socket, name);
        });
        let io2 = io.clone();
        io.of_dynamic(|name, _auth| name.starts_with("/dyn-")).on_connection(move |socket: Socket| async move {
            let _ = socket.emit("welcome", socket.namespace_name());
            register(&io2, &socket, name);
        });
        // Listening is announced once the other nodes can reach this one's namespaces.
        if let Some(cluster) = &cluster {
            cluster.subscribed().await.expect("subscribe on Redis");
        }
        let (addr, task) = io.listen(SocketAddr::from(([127, 0, 0, 1], port))).await.expect("bind");
        println!("listening on http://{addr}");
        let _ = task.await;
    });
}
