//! The Socket.IO server the interop tests drive (`e2e/`, `python-socketio` tests). It has the behaviour of
//! the reference protocol test suite plus a handler per feature under test.
//!
//! Flags: `--port N` (0 picks one), `--ping-interval MS`, `--ping-timeout MS`, `--connect-timeout MS`,
//! `--recovery` (connection state recovery on), `--msgpack` (msgpack parser), `--cleanup-empty-children`,
//! `--redis URL` (the Redis adapter: join a cluster), `--redis-key KEY` (its channel prefix),
//! `--cookie` (the Engine.IO `io` cookie, for sticky sessions behind a load balancer), `--name NAME` (this
//! node's name, reported by the `whoami` event and `server-side` answers), `--cors ORIGIN` (CORS with
//! credentials for that page origin, for browser tests whose page comes from another server), `--admin`
//! (the Admin UI's `/admin` namespace, no authentication, this node's name as its server id),
//! `--allow-eio3` (serve Socket.IO 2 clients too: Engine.IO v3), `--sharded MODE` (with `--redis`: the sharded
//! adapter, `static`, `dynamic` or `dynamic-private`, its channel prefix the `--redis-key`), `--streams` (with
//! `--redis`: the streams adapter, its stream and channel prefix the `--redis-key`), `--stream-count N` (its
//! namespaces spread over N streams), `--use-sharded-pubsub` (its requests over sharded Pub/Sub),
//! `--only-plaintext` (its stream entries always JSON).
//! Prints `listening on http://ADDR` once bound; logs (`tracing`, filter `RUST_LOG`, default `info`) go to
//! stderr.
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
//! - `flood` (n) → emits `flood` n times at once (for a client that does not read: a buffer-full close).
//! - `whoami` → ack with the node's name; `server-side-emit` (timeout ms) →
//!   `io.server_side_emit_with_ack("ping-node")`, ack with `{answers}`: one per other node, its name;
//!   `server-side-emit-no-ack` (...args) → every other node emits `server-note` (...args) to its own
//!   sockets.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use serde_json::json;
use socketio_server::extract::{Args, Data, State};
use socketio_server::{
    AckSender, ConnectError, EmitError, Event, RecoveryConfig, Socket, SocketIo, SocketIoConfig, Value,
};

#[derive(Default)]
struct AnyCounts {
    incoming: AtomicUsize,
    outgoing: AtomicUsize,
}

fn sorted(mut v: Vec<String>) -> Value {
    v.sort();
    Value::Array(v.into_iter().map(Value::from).collect())
}

/// This node's name (`--name`), kept as the server's state.
struct NodeName(String);

fn register(socket: &Socket) {
    socket.on("whoami", |State(name): State<NodeName>, ack: AckSender| async move { ack.send(&name.0) });
    socket.on("server-side-emit", |s: Socket, Data(ms): Data<Option<u64>>, ack: AckSender| async move {
        let op = s.namespace().timeout(Duration::from_millis(ms.unwrap_or(1000)));
        ack.send(match op.server_side_emit_with_ack::<Value>("ping-node", ()).await {
            Ok(answers) => {
                json!({ "answers": answers.into_iter().map(|a| json!([a.into_json()])).collect::<Vec<_>>() })
            }
            Err(e) => json!({ "err": e.to_string() }),
        });
    });
    socket.on("server-side-emit-no-ack", |s: Socket, Args(args): Args<Vec<Value>>| async move {
        s.namespace().server_side_emit("note", args).await
    });
    let counts = Arc::new(AnyCounts::default());
    let c = counts.clone();
    socket.on_any(move |_, _, _| _ = c.incoming.fetch_add(1, Ordering::Relaxed));
    let c = counts.clone();
    socket.on_any_outgoing(move |_, _, _| _ = c.outgoing.fetch_add(1, Ordering::Relaxed));
    socket.on("any-counts", move |ack: AckSender| async move {
        let (incoming, outgoing) = (counts.incoming.load(Ordering::Relaxed), counts.outgoing.load(Ordering::Relaxed));
        ack.send(json!({ "incoming": incoming, "outgoing": outgoing }));
    });
    socket.use_middleware(|_, ev: Event| async move {
        if ev.name == "forbidden" { Err(Value::from("forbidden event")) } else { Ok(ev) }
    });
    socket.on_error(|s, err| _ = s.emit("middleware-error", err));
    socket.on("message", |s: Socket, Args(a): Args<Vec<Value>>| async move { s.emit("message-back", a) });
    socket.on("message-with-ack", |Args(a): Args<Vec<Value>>, ack: AckSender| async move { ack.send(a) });
    socket.on("join", |s: Socket, Data(room): Data<String>, ack: AckSender| async move {
        s.join(room);
        ack.send(sorted_rooms(&s));
    });
    socket.on("leave", |s: Socket, Data(room): Data<String>, ack: AckSender| async move {
        s.leave(&room);
        ack.send(sorted_rooms(&s));
    });
    socket.on("to-room", |s: Socket, Data(room): Data<String>, Args(a): Args<Vec<Value>>| async move {
        s.namespace().to(room).emit("room-message", a)
    });
    socket.on("broadcast", |s: Socket, Args(a): Args<Vec<Value>>| async move { s.broadcast().emit("broadcast", a) });
    socket.on("except", |s: Socket, Data(room): Data<String>, Args(a): Args<Vec<Value>>| async move {
        s.namespace().except(room).emit("broadcast", a)
    });
    socket.on("request-ack", |s: Socket, Data(ms): Data<u64>, Args(a): Args<Vec<Value>>| async move {
        let result = match s.timeout(Duration::from_millis(ms)).emit_with_ack("ask", a).await {
            Ok(a) => json!({ "ok": Value::Array(a).into_json() }),
            Err(e) => json!({ "err": e.to_string() }),
        };
        s.emit("ack-result", result)
    });
    socket.on(
        "broadcast-with-ack",
        |s: Socket, Data(room): Data<String>, Data(ms): Data<u64>, ack: AckSender| async move {
            let op = s.namespace().to(room).timeout(Duration::from_millis(ms));
            ack.send(match op.emit_with_ack("question", ()).await {
                Ok(responses) => json!({ "responses": responses_json(responses) }),
                Err(e) => json!({ "responses": responses_json(e.responses), "err": e.error.to_string() }),
            });
        },
    );
    socket.on("volatile", |s: Socket, Args(a): Args<Vec<Value>>| async move { s.volatile().emit("volatile", a) });
    socket.on("disconnect-me", |s: Socket, Data(close): Data<Option<bool>>| async move {
        s.disconnect(close.unwrap_or(false))
    });
    socket.on("fetch-sockets", |s: Socket, io: SocketIo, ack: AckSender| async move {
        let ns = if s.namespace_name() == "/" { io.of("/") } else { s.namespace().clone() };
        let ids = ns.fetch_sockets().await?.iter().map(|r| r.id().to_owned()).collect();
        ack.send(sorted(ids));
        Ok::<_, EmitError>(())
    });
    socket.on("sockets-join", |s: Socket, Data(room): Data<String>, ack: AckSender| async move {
        s.namespace().sockets_join(room).await?;
        ack.send(());
        Ok::<_, EmitError>(())
    });
    socket.on("sockets-leave", |s: Socket, Data(room): Data<String>, ack: AckSender| async move {
        s.namespace().sockets_leave(room).await?;
        ack.send(());
        Ok::<_, EmitError>(())
    });
    socket.on("disconnect-room", |s: Socket, Data(room): Data<String>| async move {
        s.namespace().to(room).disconnect_sockets(false).await
    });
    socket.on("set-data", |s: Socket, Data(v): Data<Value>, ack: AckSender| async move {
        s.set_data(v);
        ack.send(());
    });
    socket.on("get-data", |s: Socket, ack: AckSender| async move { ack.send(s.data()) });
    // Sends n events at once, more than a client that does not read can be sent (a buffer-full close).
    socket.on("flood", |s: Socket, Data(n): Data<u32>| async move { (0..n).try_for_each(|i| s.emit("flood", i)) });
    socket.on("emit-all", |s: Socket, Args(a): Args<Vec<Value>>| async move { s.namespace().emit("all", a) });
    socket.on_disconnect(|s, reason| async move {
        s.namespace().to("observers").emit("disconnected", (s.id(), reason.as_str()))
    });
}

fn sorted_rooms(s: &Socket) -> Value {
    sorted(s.rooms().iter().map(|r| r.to_string()).collect())
}

fn responses_json(responses: Vec<Vec<Value>>) -> serde_json::Value {
    serde_json::Value::Array(responses.into_iter().map(|r| Value::Array(r).into_json()).collect())
}

fn main() {
    // The log: RUST_LOG (default `info`) on stderr, where the tests read it.
    let filter = tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into());
    tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).init();
    let mut config = SocketIoConfig::default();
    let mut port = 3000u16;
    let mut redis: Option<String> = None;
    let mut redis_key = "socket.io".to_owned();
    let mut name = "rust".to_owned();
    let mut admin = false;
    let mut sharded: Option<socketio_redis::SubscriptionMode> = None;
    let mut streams = false;
    let mut stream_count = 1u32;
    let mut streams_sharded = false;
    let mut only_plaintext = false;
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
            "--admin" => admin = true,
            "--allow-eio3" => config.engine.allow_eio3 = true,
            "--streams" => streams = true,
            "--use-sharded-pubsub" => streams_sharded = true,
            "--only-plaintext" => only_plaintext = true,
            "--stream-count" => stream_count = args.next().and_then(|v| v.parse().ok()).expect("--stream-count N"),
            "--sharded" => {
                sharded = Some(match args.next().as_deref() {
                    Some("static") => socketio_redis::SubscriptionMode::Static,
                    Some("dynamic") => socketio_redis::SubscriptionMode::Dynamic,
                    Some("dynamic-private") => socketio_redis::SubscriptionMode::DynamicPrivate,
                    other => panic!("--sharded static|dynamic|dynamic-private, not {other:?}"),
                })
            }
            "--cors" => {
                let origin = args.next().expect("--cors ORIGIN");
                config.engine.cors = Some(socketio_server::engineio_server::CorsOptions::with_credentials([origin]));
            }
            other => panic!("unknown flag {other}"),
        }
    }
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("a tokio runtime");
    runtime.block_on(async move {
        let mut cluster = None;
        let mut sharded_cluster = None;
        let mut streams_cluster = None;
        match (&redis, sharded) {
            (Some(url), None) if streams => {
                let mut streams_config = socketio_redis::StreamsAdapterConfig::default();
                streams_config.stream_name = redis_key.clone();
                streams_config.channel_prefix = redis_key;
                streams_config.stream_count = stream_count;
                streams_config.use_sharded_pub_sub = streams_sharded;
                streams_config.only_plaintext = only_plaintext;
                let connected = socketio_redis::StreamsCluster::connect(url, streams_config).await;
                streams_cluster = Some(connected.expect("connect to Redis"));
            }
            (Some(url), Some(mode)) => {
                let mut sharded_config = socketio_redis::ShardedAdapterConfig::default();
                sharded_config.channel_prefix = redis_key;
                sharded_config.subscription_mode = mode;
                let connected = socketio_redis::ShardedCluster::connect(url, sharded_config).await;
                sharded_cluster = Some(connected.expect("connect to Redis"));
            }
            (Some(url), None) => {
                let mut cluster_config = socketio_redis::RedisAdapterConfig::default();
                cluster_config.key = redis_key;
                cluster =
                    Some(socketio_redis::RedisCluster::connect(url, cluster_config).await.expect("connect to Redis"));
            }
            (None, _) => {}
        }
        let factory = match (&cluster, &sharded_cluster, &streams_cluster) {
            (Some(cluster), _, _) => Some(cluster.factory()),
            (None, Some(sharded), _) => Some(sharded.factory()),
            (None, None, Some(streams)) => Some(streams.factory()),
            (None, None, None) => None,
        };
        let io = match factory {
            Some(factory) => SocketIo::with_adapter(config, factory),
            None => SocketIo::new(config),
        };
        io.set_state(NodeName(name.clone()));
        if admin {
            let mut options = socketio_admin::AdminOptions::new(socketio_admin::AdminAuth::Disabled);
            options.server_id = Some(name.clone());
            socketio_admin::instrument(&io, options).expect("admin options");
        }
        io.on_handler_error(|s, event, err| eprintln!("socket {} event {event}: {err}", s.id()));
        for nsp in ["/", "/custom"] {
            let name = name.clone();
            io.of(nsp).on_server_event("ping-node", move |_| async move { vec![Value::from(name)] });
            let io2 = io.clone();
            io.of(nsp).on_server_event("note", move |args| async move {
                // Best effort: the other nodes' sockets may have gone.
                let _ = io2.local().emit("server-note", args);
                Vec::new()
            });
            io.of(nsp).on_connection(|socket: Socket| async move {
                socket.emit("auth", &socket.handshake().auth)?;
                register(&socket);
                Ok::<_, EmitError>(())
            });
        }
        let private = io.of("/private");
        private.use_middleware(|socket: Socket| async move {
            if socket.handshake().auth.get("token").and_then(Value::as_str) == Some("secret") {
                Ok(())
            } else {
                Err(ConnectError::new("not authorized").with_data(json!({ "code": 401 })))
            }
        });
        private.on_connection(|socket: Socket| async move {
            socket.emit("auth", &socket.handshake().auth)?;
            register(&socket);
            Ok::<_, EmitError>(())
        });
        io.of_dynamic(|name, _auth| name.starts_with("/dyn-")).on_connection(|socket: Socket| async move {
            socket.emit("welcome", socket.namespace_name())?;
            register(&socket);
            Ok::<_, EmitError>(())
        });
        // Listening is announced once the other nodes can reach this one's namespaces.
        if let Some(cluster) = &cluster {
            cluster.subscribed().await.expect("subscribe on Redis");
        }
        if let Some(sharded) = &sharded_cluster {
            sharded.subscribed().await.expect("subscribe on Redis");
        }
        if let Some(streams) = &streams_cluster {
            streams.subscribed().await.expect("subscribe on Redis");
        }
        let (addr, task) = io.listen(SocketAddr::from(([127, 0, 0, 1], port))).await.expect("bind");
        println!("listening on http://{addr}");
        // SIGTERM closes gracefully (sockets disconnect with "server shutting down", their sessions are
        // persisted for recovery, queued packets flushed), as a rolling restart stops a node.
        let mut term =
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).expect("a SIGTERM handler");
        tokio::select! {
            res = task => res.expect("the server task"),
            _ = term.recv() => {
                io.close().await;
                eprintln!("closed on SIGTERM");
                std::process::exit(0);
            }
        }
    });
}
