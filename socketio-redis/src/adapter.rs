//! The Redis adapter: one subscriber connection and one ordered publisher per server, shared by the
//! adapters of every namespace.
//!
//! While Redis is unreachable: local delivery goes on; `broadcast` and the other cluster operations return
//! an [`AdapterError`] to the caller (a broadcast is still delivered locally); requests that wait for other
//! servers fail; the subscriber reconnects with backoff and subscribes again to every namespace's channels,
//! after which broadcasts flow again.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, RwLock, Weak};
use std::time::Duration;

use futures_util::StreamExt;
use redis::aio::ConnectionManager;
use socketio_server::adapter::{
    AckUpdate, Adapter, AdapterError, AdapterFactory, BoxFuture, BroadcastOptions, LocalAdapter, Room, SocketInfo,
};
use socketio_server::proto::{Map, Packet, Value};
use tokio::sync::{mpsc, oneshot};

use crate::requests::{Requests, forward_acks};
use crate::wire::{self, Channels, request_type as rt};

/// Options of the Redis adapter, with `@socket.io/redis-adapter`'s defaults.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct RedisAdapterConfig {
    /// Channel prefix (default `socket.io`).
    pub key: String,
    /// How long requests wait for the other servers (default 5 s).
    pub requests_timeout: Duration,
    /// Answer requests on `key-response#nsp#<requester uid>#` instead of the shared response channel.
    pub publish_on_specific_response_channel: bool,
    /// Most messages queued for publishing while Redis is slow or away; more fail (default 10 000).
    pub max_queued_publishes: usize,
}

impl Default for RedisAdapterConfig {
    fn default() -> Self {
        Self {
            key: "socket.io".into(),
            requests_timeout: Duration::from_secs(5),
            publish_on_specific_response_channel: false,
            max_queued_publishes: 10_000,
        }
    }
}

enum SubCommand {
    Subscribe(Vec<String>),
    PSubscribe(Vec<String>),
    /// Answered once every command before it is done (see [`RedisCluster::subscribed`]).
    Barrier(oneshot::Sender<()>),
}

pub(crate) struct Shared {
    pub(crate) uid: String,
    pub(crate) config: RedisAdapterConfig,
    pub(crate) conn: ConnectionManager,
    publish_tx: mpsc::Sender<(String, Vec<u8>)>,
    sub_tx: mpsc::UnboundedSender<SubCommand>,
    adapters: RwLock<Vec<Weak<RedisAdapter>>>,
    /// Channels to subscribe again after a reconnection.
    channels: Mutex<(Vec<String>, Vec<String>)>,
    subscribed: AtomicBool,
    reconnects: AtomicUsize,
}

impl Shared {
    pub(crate) fn publish(&self, channel: String, payload: Vec<u8>) -> Result<(), AdapterError> {
        if !self.subscribed.load(Ordering::Acquire) {
            crate::telemetry::METRICS.publishes_failed.increment(1);
            tracing::warn!(target: "socketio_redis::adapter", channel = %channel, "publish refused: redis is unavailable");
            return Err(AdapterError("redis is unavailable".into()));
        }
        crate::telemetry::METRICS.publishes.increment(1);
        tracing::trace!(target: "socketio_redis::adapter", channel = %channel, bytes = payload.len(), "publish");
        self.publish_tx.try_send((channel, payload)).map_err(|e| {
            crate::telemetry::METRICS.publishes_failed.increment(1);
            let error = match e {
                mpsc::error::TrySendError::Full(_) => "too many messages waiting for redis",
                mpsc::error::TrySendError::Closed(_) => "the redis connection is closed",
            };
            tracing::warn!(target: "socketio_redis::adapter", error, "publish refused");
            AdapterError(error.into())
        })
    }

    async fn num_sub(&self, channel: &str) -> Result<usize, AdapterError> {
        let mut conn = self.conn.clone();
        let reply: Vec<(String, usize)> = redis::cmd("PUBSUB")
            .arg("NUMSUB")
            .arg(channel)
            .query_async(&mut conn)
            .await
            .map_err(|e| AdapterError(e.to_string()))?;
        Ok(reply.first().map_or(0, |(_, n)| *n))
    }
}

/// A connection of this server to the Redis cluster bus. Make it once, then put
/// [`RedisCluster::factory`] in `SocketIoConfig::adapter`.
#[derive(Clone)]
pub struct RedisCluster {
    shared: Arc<Shared>,
}

impl std::fmt::Debug for RedisCluster {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisCluster").field("uid", &self.shared.uid).field("config", &self.shared.config).finish()
    }
}

impl RedisCluster {
    /// Connects to Redis at `url` (for example `redis://127.0.0.1:6379`).
    pub async fn connect(url: &str, config: RedisAdapterConfig) -> Result<RedisCluster, AdapterError> {
        std::sync::LazyLock::force(&crate::telemetry::METRICS);
        let client = redis::Client::open(url).map_err(|e| AdapterError(e.to_string()))?;
        let conn = ConnectionManager::new(client.clone()).await.map_err(|e| AdapterError(e.to_string()))?;
        let (publish_tx, publish_rx) = mpsc::channel(config.max_queued_publishes.max(1));
        let (sub_tx, sub_rx) = mpsc::unbounded_channel();
        let shared = Arc::new(Shared {
            uid: wire::uid(6),
            config,
            conn: conn.clone(),
            publish_tx,
            sub_tx,
            adapters: RwLock::default(),
            channels: Mutex::default(),
            subscribed: AtomicBool::new(false),
            reconnects: AtomicUsize::new(0),
        });
        tokio::spawn(publisher(conn, publish_rx));
        let (ready_tx, ready_rx) = oneshot::channel();
        tokio::spawn(subscriber(client, Arc::downgrade(&shared), sub_rx, ready_tx));
        ready_rx.await.map_err(|_| AdapterError("could not subscribe to redis".into()))?;
        Ok(RedisCluster { shared })
    }

    /// This server's id on the bus.
    pub fn uid(&self) -> &str {
        &self.shared.uid
    }

    /// Whether the subscriber is connected right now.
    pub fn is_connected(&self) -> bool {
        self.shared.subscribed.load(Ordering::Acquire)
    }

    /// Resolves once every subscription asked for so far is in place on Redis: the channels of every
    /// namespace created before the call. A namespace's adapter subscribes in the background, as
    /// `@socket.io/redis-adapter` does, so a node that must count on the others seeing it at once (a test, a
    /// health check before taking traffic) awaits this after creating its namespaces.
    pub async fn subscribed(&self) -> Result<(), AdapterError> {
        let (tx, rx) = oneshot::channel();
        let _ = self.shared.sub_tx.send(SubCommand::Barrier(tx));
        rx.await.map_err(|_| AdapterError("the redis subscriber has stopped".into()))
    }

    /// How many times the subscriber reconnected.
    pub fn reconnects(&self) -> usize {
        self.shared.reconnects.load(Ordering::Relaxed)
    }

    /// The adapter factory for `SocketIoConfig::adapter`.
    pub fn factory(&self) -> AdapterFactory {
        let shared = self.shared.clone();
        Arc::new(move |local: Arc<LocalAdapter>| -> Arc<dyn Adapter> { RedisAdapter::new(shared.clone(), local) })
    }
}

async fn publisher(mut conn: ConnectionManager, mut rx: mpsc::Receiver<(String, Vec<u8>)>) {
    while let Some((channel, payload)) = rx.recv().await {
        let sent: Result<(), _> = redis::cmd("PUBLISH").arg(&channel).arg(payload).query_async(&mut conn).await;
        if let Err(e) = sent {
            crate::telemetry::METRICS.publishes_failed.increment(1);
            tracing::warn!(target: "socketio_redis::adapter", channel = %channel, error = %e, "publish failed");
        }
    }
}

async fn subscriber(
    client: redis::Client,
    shared: Weak<Shared>,
    mut commands: mpsc::UnboundedReceiver<SubCommand>,
    ready: oneshot::Sender<()>,
) {
    let mut ready = Some(ready);
    let mut backoff = Duration::from_millis(50);
    loop {
        let Some(s) = shared.upgrade() else { return };
        let pubsub = match client.get_async_pubsub().await {
            Ok(p) => p,
            Err(e) => {
                tracing::warn!(
                    target: "socketio_redis::adapter",
                    error = %e,
                    retry_in_ms = backoff.as_millis() as u64,
                    "cannot reach redis for the subscriber"
                );
                drop(s);
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(2));
                continue;
            }
        };
        let (mut sink, mut stream) = pubsub.split();
        let (channels, patterns) = s.channels.lock().expect("poisoned").clone();
        let mut ok = true;
        for c in &channels {
            ok &= sink.subscribe(c).await.is_ok();
        }
        for p in &patterns {
            ok &= sink.psubscribe(p).await.is_ok();
        }
        if !ok {
            drop(s);
            tokio::time::sleep(backoff).await;
            continue;
        }
        backoff = Duration::from_millis(50);
        if ready.is_none() {
            s.reconnects.fetch_add(1, Ordering::Relaxed);
            crate::telemetry::METRICS.reconnects.increment(1);
            tracing::warn!(
                target: "socketio_redis::adapter",
                channels = channels.len() + patterns.len(),
                "subscriber reconnected to redis and subscribed again"
            );
        } else {
            tracing::info!(target: "socketio_redis::adapter", uid = %s.uid, "subscribed to redis");
        }
        s.subscribed.store(true, Ordering::Release);
        if let Some(r) = ready.take() {
            let _ = r.send(());
        }
        drop(s);
        loop {
            tokio::select! {
                msg = stream.next() => match msg {
                    Some(msg) => {
                        let Some(s) = shared.upgrade() else { return };
                        // A message that trips a bug must not cut this server off the cluster.
                        let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                            dispatch(&s, msg.get_channel_name(), msg.get_payload_bytes())
                        }));
                    }
                    None => break,
                },
                cmd = commands.recv() => {
                    let Some(cmd) = cmd else { return };
                    let Some(s) = shared.upgrade() else { return };
                    let result = match cmd {
                        SubCommand::Subscribe(cs) => {
                            s.channels.lock().expect("poisoned").0.extend(cs.iter().cloned());
                            let mut r = Ok(());
                            for c in &cs {
                                r = r.and(sink.subscribe(c).await);
                            }
                            r
                        }
                        SubCommand::PSubscribe(ps) => {
                            s.channels.lock().expect("poisoned").1.extend(ps.iter().cloned());
                            let mut r = Ok(());
                            for p in &ps {
                                r = r.and(sink.psubscribe(p).await);
                            }
                            r
                        }
                        SubCommand::Barrier(done) => {
                            let _ = done.send(());
                            Ok(())
                        }
                    };
                    if result.is_err() {
                        break;
                    }
                }
            }
        }
        if let Some(s) = shared.upgrade() {
            s.subscribed.store(false, Ordering::Release);
        }
        tracing::warn!(target: "socketio_redis::adapter", "lost the redis subscriber connection; reconnecting");
        tokio::time::sleep(backoff).await;
    }
}

fn dispatch(shared: &Shared, channel: &str, payload: &[u8]) {
    let adapters: Vec<Arc<RedisAdapter>> =
        shared.adapters.read().expect("poisoned").iter().filter_map(Weak::upgrade).collect();
    for a in adapters {
        if channel == a.channels.request {
            a.on_request(payload);
        } else if channel == a.channels.response || channel == a.channels.specific_response {
            a.on_response(payload);
        } else if let Some(rest) = channel.strip_prefix(a.channels.broadcast.as_str()) {
            a.on_broadcast(rest, payload);
        }
    }
}

/// The adapter of one namespace. Made by [`RedisCluster::factory`].
pub struct RedisAdapter {
    shared: Arc<Shared>,
    local: Arc<LocalAdapter>,
    channels: Channels,
    requests: Arc<Requests>,
}

impl RedisAdapter {
    fn new(shared: Arc<Shared>, local: Arc<LocalAdapter>) -> Arc<RedisAdapter> {
        let channels = Channels::new(&shared.config.key, local.namespace_name(), &shared.uid);
        let _ = shared.sub_tx.send(SubCommand::PSubscribe(vec![format!("{}*", channels.broadcast)]));
        let _ = shared.sub_tx.send(SubCommand::Subscribe(vec![
            channels.request.clone(),
            channels.response.clone(),
            channels.specific_response.clone(),
        ]));
        let adapter = Arc::new(RedisAdapter { shared: shared.clone(), local, channels, requests: Arc::default() });
        shared.adapters.write().expect("poisoned").push(Arc::downgrade(&adapter));
        adapter
    }

    fn publish_request(&self, request: serde_json::Value) -> Result<(), AdapterError> {
        self.shared.publish(self.channels.request.clone(), request.to_string().into_bytes())
    }

    fn publish_response(&self, requester: &str, payload: Vec<u8>) {
        let channel = if self.shared.config.publish_on_specific_response_channel {
            format!("{}{requester}#", self.channels.response)
        } else {
            self.channels.response.clone()
        };
        let _ = self.shared.publish(channel, payload);
    }

    fn on_broadcast(&self, room: &str, payload: &[u8]) {
        let room = room.strip_suffix('#').unwrap_or(room);
        if !room.is_empty() && !self.local.rooms().contains(room) {
            return;
        }
        let Some((uid, packet, opts)) = wire::decode_broadcast(payload) else {
            tracing::warn!(target: "socketio_redis::adapter", bytes = payload.len(), "a broadcast that does not decode was dropped");
            return;
        };
        if uid == self.shared.uid || packet.nsp != self.local.namespace_name() {
            return;
        }
        self.local.broadcast(packet, &opts);
    }

    fn on_request(&self, payload: &[u8]) {
        let Some(req) = wire::decode_message(payload) else { return };
        let Some(kind) = req.get("type").and_then(Value::as_u64) else { return };
        let request_id = req.get("requestId").and_then(Value::as_str).map(str::to_owned);
        let requester = req.get("uid").and_then(Value::as_str).unwrap_or("").to_owned();
        let own = requester == self.shared.uid;
        let opts = wire::opts_from_value(req.get("opts"));
        let rooms = || -> Vec<Room> {
            match req.get("rooms") {
                Some(Value::Array(a)) => a.iter().filter_map(Value::as_str).map(Room::from).collect(),
                _ => Vec::new(),
            }
        };
        match kind {
            rt::SOCKETS if !own => {
                let opts = BroadcastOptions { rooms: rooms().into_iter().collect(), ..BroadcastOptions::default() };
                let ids: Vec<String> = self.local.fetch_sockets(&opts).iter().map(|s| s.id().to_owned()).collect();
                let res = serde_json::json!({ "requestId": request_id, "sockets": ids });
                self.publish_response(&requester, res.to_string().into_bytes());
            }
            rt::ALL_ROOMS if !own => {
                let rooms: Vec<String> = self.local.rooms().iter().map(|r| r.to_string()).collect();
                let res = serde_json::json!({ "requestId": request_id, "rooms": rooms });
                self.publish_response(&requester, res.to_string().into_bytes());
            }
            rt::REMOTE_JOIN if !own => self.local.add_sockets(&opts, &rooms()),
            rt::REMOTE_LEAVE if !own => self.local.del_sockets(&opts, &rooms()),
            rt::REMOTE_DISCONNECT if !own => {
                let close = matches!(req.get("close"), Some(Value::Bool(true)));
                self.local.disconnect_sockets(&opts, close);
            }
            rt::REMOTE_FETCH if !own => {
                let sockets: Vec<serde_json::Value> = self
                    .local
                    .fetch_sockets(&opts)
                    .iter()
                    .map(|s| serde_json::to_value(s.info()).unwrap_or(serde_json::Value::Null))
                    .collect();
                let res = serde_json::json!({ "requestId": request_id, "sockets": sockets });
                self.publish_response(&requester, res.to_string().into_bytes());
            }
            rt::SERVER_SIDE_EMIT if !own => {
                let Some(Value::Array(mut data)) = req.get("data").cloned() else { return };
                if data.is_empty() {
                    return;
                }
                let Some(event) = data.remove(0).as_str().map(str::to_owned) else { return };
                let Some(ns) = self.local.namespace() else { return };
                let Some(fut) = ns.dispatch_server_event(&event, data) else { return };
                let Some(request_id) = request_id else {
                    tokio::spawn(fut);
                    return;
                };
                let shared = self.shared.clone();
                let response_channel = if shared.config.publish_on_specific_response_channel {
                    format!("{}{requester}#", self.channels.response)
                } else {
                    self.channels.response.clone()
                };
                tokio::spawn(async move {
                    let args = fut.await;
                    let data = args.into_iter().next().unwrap_or(Value::Null).into_json();
                    let res =
                        serde_json::json!({ "type": rt::SERVER_SIDE_EMIT, "requestId": request_id, "data": data });
                    let _ = shared.publish(response_channel, res.to_string().into_bytes());
                });
            }
            rt::BROADCAST if !own => {
                let Some(request_id) = request_id else { return };
                let Some(packet) = req.get("packet").and_then(wire::packet_from_value) else { return };
                let (tx, rx) = mpsc::unbounded_channel();
                let count = self.local.broadcast_with_ack(packet, &opts, tx);
                let res = serde_json::json!({
                    "type": rt::BROADCAST_CLIENT_COUNT, "requestId": request_id, "clientCount": count
                });
                self.publish_response(&requester, res.to_string().into_bytes());
                let shared = self.shared.clone();
                let response_channel = if shared.config.publish_on_specific_response_channel {
                    format!("{}{requester}#", self.channels.response)
                } else {
                    self.channels.response.clone()
                };
                let timeout = opts.flags.timeout.unwrap_or(shared.config.requests_timeout);
                forward_acks(rx, count, timeout, move |answer| {
                    let mut o = Map::new();
                    o.insert("type".into(), Value::from(rt::BROADCAST_ACK));
                    o.insert("requestId".into(), Value::from(request_id.as_str()));
                    o.insert("packet".into(), answer);
                    let _ = shared.publish(response_channel.clone(), wire::to_msgpack(&Value::Object(o)));
                });
            }
            _ => {}
        }
    }

    fn on_response(&self, payload: &[u8]) {
        let Some(res) = wire::decode_message(payload) else { return };
        let Some(id) = res.get("requestId").and_then(Value::as_str) else { return };
        if self.requests.is_ack_request(id) {
            match res.get("type").and_then(Value::as_u64) {
                Some(rt::BROADCAST_CLIENT_COUNT) => {
                    let n = res.get("clientCount").and_then(Value::as_u64).unwrap_or(0) as usize;
                    self.requests.client_count(id, n);
                }
                Some(rt::BROADCAST_ACK) => {
                    self.requests.client_ack(id, res.get("packet").cloned().unwrap_or(Value::Null))
                }
                _ => {}
            }
            return;
        }
        match res.get("sockets") {
            Some(Value::Array(list)) => {
                let sockets = list.iter().filter_map(|s| s.clone().deserialize_into::<SocketInfo>().ok());
                self.requests.fetch_answer(id, sockets);
            }
            _ => self.requests.emit_answer(id, res.get("data").cloned().unwrap_or(Value::Null)),
        }
    }
}

impl Adapter for RedisAdapter {
    fn local(&self) -> &Arc<LocalAdapter> {
        &self.local
    }

    /// Whether the subscriber is connected and subscribed (publishes are refused while it is not).
    fn is_connected(&self) -> bool {
        self.shared.subscribed.load(Ordering::Acquire)
    }

    fn broadcast(&self, packet: Packet, opts: BroadcastOptions) -> Result<(), AdapterError> {
        let remote = (!opts.flags.local).then(|| {
            let payload = wire::encode_broadcast(
                &self.shared.uid,
                &Packet { nsp: self.local.namespace_name().to_owned(), ..packet.clone() },
                &opts,
            );
            (self.channels.broadcast_channel(&opts), payload)
        });
        self.local.broadcast(packet, &opts);
        match remote {
            Some((channel, payload)) => self.shared.publish(channel, payload),
            None => Ok(()),
        }
    }

    fn broadcast_with_ack(
        &self,
        packet: Packet,
        opts: BroadcastOptions,
        updates: mpsc::UnboundedSender<AckUpdate>,
    ) -> Result<(), AdapterError> {
        let mut remote_result = Ok(());
        let mut request_id = None;
        if !opts.flags.local {
            let id = wire::uid(6);
            let mut o = Map::new();
            o.insert("uid".into(), Value::from(self.shared.uid.as_str()));
            o.insert("requestId".into(), Value::from(id.as_str()));
            o.insert("type".into(), Value::from(rt::BROADCAST));
            let packet = Packet { nsp: self.local.namespace_name().to_owned(), ..packet.clone() };
            o.insert("packet".into(), wire::packet_to_value(&packet));
            o.insert("opts".into(), wire::opts_to_value(&opts, true));
            self.requests.ack_request(&id, updates.clone());
            remote_result = self.shared.publish(self.channels.request.clone(), wire::to_msgpack(&Value::Object(o)));
            request_id = Some(id);
        }
        let count = self.local.broadcast_with_ack(packet, &opts, updates.clone());
        let id = match request_id {
            Some(id) if remote_result.is_ok() => id,
            other => {
                if let Some(id) = other {
                    self.requests.forget(&id);
                }
                let _ = updates.send(AckUpdate::ClientCount(count));
                let _ = updates.send(AckUpdate::CountsComplete);
                return remote_result;
            }
        };
        self.requests.client_count(&id, count);
        // The number of servers decides when every count is in; the request is forgotten after the timeout.
        let shared = self.shared.clone();
        let channel = self.channels.request.clone();
        let timeout = opts.flags.timeout.unwrap_or(shared.config.requests_timeout);
        let servers: BoxFuture<'static, Result<usize, AdapterError>> =
            Box::pin(async move { shared.num_sub(&channel).await });
        self.requests.expect_counts(id, servers, timeout);
        Ok(())
    }

    fn fetch_sockets(&self, opts: BroadcastOptions) -> BoxFuture<'_, Result<Vec<SocketInfo>, AdapterError>> {
        Box::pin(async move {
            let local: Vec<SocketInfo> = self.local.fetch_sockets(&opts).iter().map(|s| s.info()).collect();
            if opts.flags.local {
                return Ok(local);
            }
            let servers = self.shared.num_sub(&self.channels.request).await?;
            if servers <= 1 {
                return Ok(local);
            }
            let request_id = wire::uid(6);
            let rx = self.requests.fetch(&request_id, local, servers);
            let req = serde_json::json!({
                "uid": self.shared.uid, "requestId": request_id, "type": rt::REMOTE_FETCH,
                "opts": { "rooms": wire::rooms_json(&opts.rooms.iter().cloned().collect::<Vec<_>>()),
                          "except": wire::rooms_json(&opts.except.iter().cloned().collect::<Vec<_>>()) },
            });
            if let Err(e) = self.publish_request(req) {
                self.requests.forget(&request_id);
                return Err(e);
            }
            let timeout = self.shared.config.requests_timeout;
            self.requests.wait(&request_id, rx, timeout, self.local.namespace_name()).await
        })
    }

    fn add_sockets(&self, opts: BroadcastOptions, rooms: Vec<Room>) -> BoxFuture<'_, Result<(), AdapterError>> {
        self.local.add_sockets(&opts, &rooms);
        let result = if opts.flags.local {
            Ok(())
        } else {
            self.publish_request(membership(&self.shared.uid, rt::REMOTE_JOIN, &opts, &rooms))
        };
        Box::pin(async move { result })
    }

    fn del_sockets(&self, opts: BroadcastOptions, rooms: Vec<Room>) -> BoxFuture<'_, Result<(), AdapterError>> {
        self.local.del_sockets(&opts, &rooms);
        let result = if opts.flags.local {
            Ok(())
        } else {
            self.publish_request(membership(&self.shared.uid, rt::REMOTE_LEAVE, &opts, &rooms))
        };
        Box::pin(async move { result })
    }

    fn disconnect_sockets(&self, opts: BroadcastOptions, close: bool) -> BoxFuture<'_, Result<(), AdapterError>> {
        let result = if opts.flags.local {
            Ok(())
        } else {
            self.publish_request(serde_json::json!({
                "uid": self.shared.uid, "type": rt::REMOTE_DISCONNECT, "opts": opts_json(&opts), "close": close,
            }))
        };
        self.local.disconnect_sockets(&opts, close);
        Box::pin(async move { result })
    }

    fn server_side_emit(
        &self,
        args: Vec<Value>,
        ack: Option<Duration>,
    ) -> BoxFuture<'_, Result<Vec<Vec<Value>>, AdapterError>> {
        Box::pin(async move {
            let data = Value::Array(args).into_json();
            let Some(timeout) = ack else {
                self.publish_request(
                    serde_json::json!({ "uid": self.shared.uid, "type": rt::SERVER_SIDE_EMIT, "data": data }),
                )?;
                return Ok(Vec::new());
            };
            let servers = self.shared.num_sub(&self.channels.request).await?;
            if servers <= 1 {
                return Ok(Vec::new());
            }
            let request_id = wire::uid(6);
            let rx = self.requests.server_side_emit(&request_id, servers - 1);
            let req = serde_json::json!({
                "uid": self.shared.uid, "requestId": request_id, "type": rt::SERVER_SIDE_EMIT, "data": data,
            });
            if let Err(e) = self.publish_request(req) {
                self.requests.forget(&request_id);
                return Err(e);
            }
            self.requests.wait(&request_id, rx, timeout, self.local.namespace_name()).await
        })
    }

    fn server_count(&self) -> BoxFuture<'_, Result<usize, AdapterError>> {
        Box::pin(async move { self.shared.num_sub(&self.channels.request).await })
    }
}

fn opts_json(opts: &BroadcastOptions) -> serde_json::Value {
    serde_json::json!({
        "rooms": wire::rooms_json(&opts.rooms.iter().cloned().collect::<Vec<_>>()),
        "except": wire::rooms_json(&opts.except.iter().cloned().collect::<Vec<_>>()),
    })
}

fn membership(uid: &str, kind: u64, opts: &BroadcastOptions, rooms: &[Room]) -> serde_json::Value {
    serde_json::json!({ "uid": uid, "type": kind, "opts": opts_json(opts), "rooms": wire::rooms_json(rooms) })
}
