//! The streams adapter: wire-compatible with `@socket.io/redis-streams-adapter` 0.3: broadcasts without
//! acknowledgements, joins, leaves and disconnects are entries of a Redis stream (`XADD … MAXLEN ~ n`,
//! fields `uid nsp type data`), which every server reads with a blocking `XREAD` from where it started; the
//! requests and their answers go over Pub/Sub as msgpack (`P#nsp#` and `P#nsp#<uid>#`), and the number of
//! servers is `PUBSUB NUMSUB P#nsp#`.
//!
//! Connection state recovery works across servers, in the reference's format: the offset a client holds is
//! the id of the stream entry of the broadcast, a disconnected socket's session is kept in Redis
//! (`SET sio:session:<pid> <base64 msgpack {sid, pid, rooms, data}> PX <max disconnection duration>`),
//! and whichever server the client reconnects to takes it back (`MULTI GET DEL EXEC`) with the broadcasts
//! it missed (`XRANGE` from its offset). With recovery on, every broadcast is delivered from the stream,
//! this server's own too, in the stream's order; a restored socket holds that delivery back until it is in
//! its rooms, so that each broadcast reaches it exactly once: among the missed ones or live.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, RwLock, Weak};
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use fred::clients::{Client, SubscriberClient};
use fred::interfaces::{ClientLike, ClusterInterface, KeysInterface, PubsubInterface, TransactionInterface};

use fred::types::{ClusterHash, CustomCommand, Value as RedisValue};
use socketio_server::adapter::{
    Adapter, AdapterError, AdapterFactory, BoxFuture, LocalAdapter, PersistedSession, RestoredSession, Room,
};
use socketio_server::proto::{Map, Packet, Value};
use tokio::sync::{mpsc, oneshot};

use crate::cluster_adapter::{Bus, ClusterNsAdapter};
use crate::cluster_wire::{self as cw, Message, message_type as mt};

/// Options of the streams adapter, with the reference's defaults.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct StreamsAdapterConfig {
    /// The stream (default `socket.io`), or the base of their names when `stream_count` is more than 1.
    pub stream_name: String,
    /// How many streams the namespaces are spread over (default 1), as the reference spreads them: by a
    /// 32-bit hash of the namespace's name.
    pub stream_count: u32,
    /// Prefix of the Pub/Sub channels of requests and answers (default `socket.io`).
    pub channel_prefix: String,
    /// The approximate length the stream is trimmed to (default 10 000).
    pub max_len: u64,
    /// Most entries one `XREAD` returns (default 100).
    pub read_count: u64,
    /// How long one `XREAD` blocks (default 5 s).
    pub block_time: Duration,
    /// How long requests wait for the other servers (default 5 s).
    pub requests_timeout: Duration,
    /// Prefix of the keys of persisted sessions (default `sio:session:`).
    pub session_key_prefix: String,
    /// Requests and answers over Redis 7 sharded Pub/Sub (`SPUBLISH`/`SSUBSCRIBE`, the server count from
    /// `PUBSUB SHARDNUMSUB`) instead of plain Pub/Sub (default false), as the reference's `useShardedPubSub`.
    pub use_sharded_pub_sub: bool,
    /// Stream entries always in JSON, without looking for binary (default false), as the reference's
    /// `onlyPlaintext`: for applications that never send binary (binary would be written as Node writes a
    /// `Buffer` in JSON, `{"type":"Buffer","data":[…]}`).
    pub only_plaintext: bool,
}

impl Default for StreamsAdapterConfig {
    fn default() -> Self {
        Self {
            stream_name: "socket.io".into(),
            stream_count: 1,
            channel_prefix: "socket.io".into(),
            max_len: 10_000,
            read_count: 100,
            block_time: Duration::from_secs(5),
            requests_timeout: Duration::from_secs(5),
            session_key_prefix: "sio:session:".into(),
            use_sharded_pub_sub: false,
            only_plaintext: false,
        }
    }
}

impl StreamsAdapterConfig {
    /// The stream of a namespace, as the reference names it: with several streams, a Java-style 32-bit hash
    /// of the name's UTF-16 units and JavaScript's remainder, whose sign is the hash's (so some namespaces
    /// get a stream such as `socket.io--1`, which the reference's readers do not read either).
    fn stream_of(&self, nsp: &str) -> String {
        if self.stream_count <= 1 {
            return self.stream_name.clone();
        }
        let hash = nsp.encode_utf16().fold(0i32, |h, u| h.wrapping_mul(31).wrapping_add(i32::from(u)));
        format!("{}-{}", self.stream_name, hash % self.stream_count as i32)
    }

    fn streams(&self) -> Vec<String> {
        if self.stream_count <= 1 {
            return vec![self.stream_name.clone()];
        }
        (0..self.stream_count).map(|i| format!("{}-{i}", self.stream_name)).collect()
    }
}

enum Outgoing {
    Publish(String, Vec<u8>),
    /// An entry, and what to do if it cannot be added.
    Add(String, Vec<(&'static str, String)>, Option<Box<dyn FnOnce() + Send>>),
    /// `SET key value PX ms`.
    Set(String, String, u64),
    /// Answered once everything before it is written.
    Barrier(oneshot::Sender<()>),
}

/// The id of the last entry of each stream that the read loop has delivered, held while it delivers.
type Positions = Arc<tokio::sync::Mutex<HashMap<String, EntryId>>>;

/// A stream entry id `ms-seq`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
struct EntryId(u64, u64);

impl EntryId {
    /// Parses `ms-seq` (as the reference checks a client's offset: digits, a dash, digits).
    fn parse(id: &str) -> Option<EntryId> {
        let (ms, seq) = id.split_once('-')?;
        let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
        if !digits(ms) || !digits(seq) {
            return None;
        }
        Some(EntryId(ms.parse().ok()?, seq.parse().ok()?))
    }

    /// The smallest id after this one (XRANGE's exclusive start, written as Redis before 6.2 takes it).
    fn next(self) -> String {
        format!("{}-{}", self.0, self.1.saturating_add(1))
    }
}

impl std::fmt::Display for EntryId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}-{}", self.0, self.1)
    }
}

enum SubCommand {
    Subscribe(Vec<String>),
    Barrier(oneshot::Sender<()>),
}

struct StreamsBus {
    config: StreamsAdapterConfig,
    publisher: Client,
    subscriber: SubscriberClient,
    out_tx: mpsc::UnboundedSender<Outgoing>,
    sub_tx: mpsc::UnboundedSender<SubCommand>,
    /// The adapters, by namespace.
    adapters: RwLock<HashMap<String, Weak<ClusterNsAdapter>>>,
    /// The Pub/Sub channels and whose they are.
    channels: RwLock<HashMap<String, Weak<ClusterNsAdapter>>>,
    /// Where the read loop is in each stream.
    positions: Positions,
}

impl StreamsBus {
    fn channel(&self, nsp: &str, uid: Option<&str>) -> String {
        match uid {
            Some(uid) => format!("{}#{nsp}#{uid}#", self.config.channel_prefix),
            None => format!("{}#{nsp}#", self.config.channel_prefix),
        }
    }

    fn send(&self, out: Outgoing) -> Result<(), AdapterError> {
        if !self.is_connected() {
            crate::telemetry::METRICS.publishes_failed.increment(1);
            return Err(AdapterError("redis is unavailable".into()));
        }
        crate::telemetry::METRICS.publishes.increment(1);
        self.out_tx.send(out).map_err(|_| AdapterError("the redis publisher has stopped".into()))
    }

    /// The fields of a message's stream entry.
    fn fields(&self, message: &Message) -> Vec<(&'static str, String)> {
        message.to_stream_fields(self.config.only_plaintext)
    }

    fn on_entry(&self, message: Message, id: &str) {
        let adapter = self.adapters.read().expect("poisoned").get(&message.nsp).and_then(Weak::upgrade);
        if let Some(adapter) = adapter {
            adapter.on_message(message, Some(id));
        }
    }

    fn on_pubsub(&self, channel: &str, payload: &[u8]) {
        let Some(adapter) = self.channels.read().expect("poisoned").get(channel).and_then(Weak::upgrade) else {
            return;
        };
        match Message::decode(payload) {
            Some(message) => adapter.on_message(message, None),
            None => {
                tracing::warn!(target: "socketio_redis::adapter", bytes = payload.len(), "a message that does not decode was dropped")
            }
        }
    }
}

/// Whether a message travels over Pub/Sub (requests) rather than in the stream.
fn is_ephemeral(message: &Message) -> bool {
    match message.kind {
        mt::BROADCAST => message.data.as_ref().and_then(|d| d.get("requestId")).is_some(),
        mt::FETCH_SOCKETS | mt::SERVER_SIDE_EMIT => true,
        _ => false,
    }
}

impl Bus for StreamsBus {
    fn publish(&self, nsp: &str, message: &Message, _single_room: Option<&Room>) -> Result<(), AdapterError> {
        if is_ephemeral(message) {
            self.send(Outgoing::Publish(self.channel(nsp, None), message.encode_msgpack()))
        } else {
            self.send(Outgoing::Add(self.config.stream_of(nsp), self.fields(message), None))
        }
    }

    fn keeps_sessions(&self) -> bool {
        true
    }

    fn publish_delivered(
        &self,
        nsp: &str,
        message: &Message,
        fallback: Box<dyn FnOnce() + Send>,
    ) -> Result<(), AdapterError> {
        if !self.is_connected() {
            fallback();
            crate::telemetry::METRICS.publishes_failed.increment(1);
            return Err(AdapterError("redis is unavailable".into()));
        }
        self.send(Outgoing::Add(self.config.stream_of(nsp), self.fields(message), Some(fallback)))
    }

    fn persist_session(&self, _nsp: &str, session: &PersistedSession, max_age: Duration) {
        let encoded = encode_session(session);
        let key = format!("{}{}", self.config.session_key_prefix, session.pid);
        let ms = u64::try_from(max_age.as_millis()).unwrap_or(u64::MAX).max(1);
        if let Err(e) = self.send(Outgoing::Set(key, encoded, ms)) {
            tracing::warn!(target: "socketio_redis::adapter", error = %e, "a session could not be persisted");
        }
    }

    fn restore_session(&self, nsp: &str, pid: String, offset: String) -> BoxFuture<'static, Option<RestoredSession>> {
        let restore = Restore {
            client: self.publisher.clone(),
            stream: self.config.stream_of(nsp),
            nsp: nsp.to_owned(),
            key: format!("{}{pid}", self.config.session_key_prefix),
            positions: self.positions.clone(),
        };
        Box::pin(async move {
            match restore.run(&offset).await {
                Ok(restored) => restored,
                Err(e) => {
                    tracing::warn!(target: "socketio_redis::adapter", error = %e, "a session could not be restored");
                    None
                }
            }
        })
    }

    fn flush(&self) -> BoxFuture<'static, ()> {
        let (tx, rx) = oneshot::channel();
        let sent = self.out_tx.send(Outgoing::Barrier(tx)).is_ok();
        Box::pin(async move {
            if sent {
                let _ = rx.await;
            }
        })
    }

    fn publish_response(&self, nsp: &str, requester: &str, message: &Message) -> Result<(), AdapterError> {
        self.send(Outgoing::Publish(self.channel(nsp, Some(requester)), message.encode_msgpack()))
    }

    fn server_count(&self, nsp: &str) -> BoxFuture<'static, Result<usize, AdapterError>> {
        let channel = self.channel(nsp, None);
        let publisher = self.publisher.clone();
        let sharded = self.config.use_sharded_pub_sub;
        Box::pin(async move {
            let error = |e: fred::error::Error| AdapterError(e.to_string());
            if sharded {
                // Only the node that owns the channel's slot counts its subscribers.
                let slot = fred::util::redis_keyslot(channel.as_bytes());
                let cmd = CustomCommand::new_static("PUBSUB", ClusterHash::Custom(slot), false);
                let args = vec![RedisValue::from("SHARDNUMSUB"), RedisValue::from(channel.as_str())];
                let reply: RedisValue = publisher.custom(cmd, args).await.map_err(error)?;
                return Ok(count_of(reply) as usize);
            }
            let args = || vec![RedisValue::from("NUMSUB"), RedisValue::from(channel.as_str())];
            let cmd = || CustomCommand::new_static("PUBSUB", ClusterHash::Random, false);
            // On a Redis Cluster each node counts its own subscribers: the sum over the primaries, as the
            // reference counts them.
            let primaries = match publisher.is_clustered() {
                true => publisher.cached_cluster_state().map(|s| s.unique_primary_nodes()).unwrap_or_default(),
                false => Vec::new(),
            };
            if primaries.is_empty() {
                let reply: RedisValue = publisher.custom(cmd(), args()).await.map_err(error)?;
                return Ok(count_of(reply) as usize);
            }
            let mut total = 0;
            for server in primaries {
                let reply: RedisValue =
                    publisher.with_cluster_node(server).custom(cmd(), args()).await.map_err(error)?;
                total += count_of(reply);
            }
            Ok(total as usize)
        })
    }

    fn is_connected(&self) -> bool {
        self.subscriber.is_connected() && self.publisher.is_connected()
    }

    fn requests_timeout(&self) -> Duration {
        self.config.requests_timeout
    }

    fn closed(&self, uid: &str) {
        self.channels.write().expect("poisoned").retain(|_, a| a.upgrade().is_some_and(|a| a.uid != uid));
        self.adapters.write().expect("poisoned").retain(|_, a| a.upgrade().is_some_and(|a| a.uid != uid));
    }
}

/// One session being taken back (see the module documentation).
struct Restore {
    client: Client,
    stream: String,
    nsp: String,
    key: String,
    positions: Positions,
}

impl Restore {
    async fn run(&self, offset: &str) -> Result<Option<RestoredSession>, fred::error::Error> {
        // Not an id of the stream: a fresh session, as the reference (which keeps the stored one then).
        let Some(from) = EntryId::parse(offset) else { return Ok(None) };
        let trx = self.client.multi();
        let _: () = trx.get(self.key.as_str()).await?;
        let _: () = trx.del(self.key.as_str()).await?;
        let (raw, there) = tokio::join!(trx.exec::<Vec<RedisValue>>(true), self.range(offset, offset, 1));
        let raw = raw?.into_iter().next().and_then(|v| v.as_bytes().map(<[u8]>::to_vec));
        let (Some(raw), false) = (raw, there?.is_empty()) else { return Ok(None) };
        let Some(session) = decode_session(&raw) else {
            tracing::warn!(target: "socketio_redis::adapter", "a stored session that does not decode was dropped");
            return Ok(None);
        };
        let rooms: HashSet<&str> = session.rooms.iter().map(|r| &**r).collect();
        // What the stream holds after the offset, read without holding the delivery back …
        let mut missed = Vec::new();
        let mut last = from;
        self.collect(&mut last, None, &rooms, &mut missed).await?;
        // … then, holding it, up to where the read loop is: what it delivers from now on reaches the socket
        // live once it is in its rooms, what it delivered before is among the missed packets.
        let guard = self.positions.clone().lock_owned().await;
        match guard.get(&self.stream).copied() {
            Some(position) if position > last => self.collect(&mut last, Some(position), &rooms, &mut missed).await?,
            Some(position) => missed.retain(|(id, _)| *id <= position),
            None => {}
        }
        let packets = missed.into_iter().map(|(_, p)| p).collect();
        Ok(Some(RestoredSession::new(session, packets).holding(guard)))
    }

    /// XRANGE `start` `end` COUNT `count`.
    async fn range(&self, start: &str, end: &str, count: u64) -> Result<Vec<Entry>, fred::error::Error> {
        let cmd = CustomCommand::new_static("XRANGE", ClusterHash::FirstKey, false);
        let args: Vec<RedisValue> =
            vec![self.stream.as_str().into(), start.into(), end.into(), "COUNT".into(), count.to_string().into()];
        let reply: RedisValue = self.client.custom(cmd, args).await?;
        Ok(entries_of(reply))
    }

    /// Reads the entries after `last` up to `end` (the stream's end when `None`), keeps the broadcasts of
    /// this namespace meant for a socket in `rooms` with their id as last argument, and moves `last`.
    async fn collect(
        &self,
        last: &mut EntryId,
        end: Option<EntryId>,
        rooms: &HashSet<&str>,
        missed: &mut Vec<(EntryId, Packet)>,
    ) -> Result<(), fred::error::Error> {
        const BATCH: u64 = 1000;
        let end = end.map_or_else(|| "+".to_owned(), |e| e.to_string());
        // Bounded, as the reference's: a stream written faster than it is read would never end.
        for _ in 0..100 {
            let entries = self.range(&last.next(), &end, BATCH).await?;
            let n = entries.len() as u64;
            for (id, fields) in entries {
                let Some(entry_id) = EntryId::parse(&id) else { continue };
                *last = entry_id;
                let pairs = fields.iter().map(|(k, v)| (k.as_str(), v.as_slice()));
                let Some(message) = Message::from_stream_fields(pairs) else { continue };
                if message.kind != mt::BROADCAST || message.nsp != self.nsp {
                    continue;
                }
                let Some(data) = message.data else { continue };
                let opts = crate::wire::opts_from_value(data.get("opts"));
                let included = opts.rooms.is_empty() || opts.rooms.iter().any(|r| rooms.contains(&**r));
                if !included || opts.except.iter().any(|r| rooms.contains(&**r)) {
                    continue;
                }
                let Some(mut packet) = data.get("packet").and_then(|p| cw::packet_from_value(p, &self.nsp)) else {
                    continue;
                };
                if let Some(Value::Array(args)) = &mut packet.data {
                    args.push(Value::from(id.as_str()));
                }
                missed.push((entry_id, packet));
            }
            if n < BATCH {
                break;
            }
        }
        Ok(())
    }
}

/// A session as the reference stores it: msgpack `{sid, pid, rooms, data}`, in base64.
fn encode_session(session: &PersistedSession) -> String {
    let mut map = Map::new();
    map.insert("sid".into(), Value::from(&*session.id));
    map.insert("pid".into(), Value::from(session.pid.as_str()));
    map.insert("rooms".into(), Value::Array(session.rooms.iter().map(|r| Value::from(&**r)).collect()));
    map.insert("data".into(), session.data.clone());
    STANDARD.encode(crate::wire::to_msgpack(&Value::Object(map)))
}

/// The session of [`encode_session`]'s form (the reference's).
fn decode_session(raw: &[u8]) -> Option<PersistedSession> {
    let bytes = STANDARD.decode(raw).ok()?;
    let Value::Object(mut map) = crate::wire::decode_message(&bytes)? else { return None };
    let sid = map.get("sid")?.as_str()?.to_owned();
    let pid = map.get("pid")?.as_str()?.to_owned();
    let rooms = match map.get("rooms") {
        Some(Value::Array(rooms)) => rooms.iter().filter_map(Value::as_str).map(Room::from).collect(),
        _ => Vec::new(),
    };
    let data = map.shift_remove("data").unwrap_or(Value::Null);
    Some(PersistedSession::new(sid.into(), pid, rooms, data))
}

/// The count of a `PUBSUB NUMSUB` reply (`[channel, n]`, or a map).
fn count_of(reply: RedisValue) -> u64 {
    match reply {
        RedisValue::Array(items) => items.get(1).and_then(RedisValue::as_u64).unwrap_or(0),
        RedisValue::Map(map) => map.values().next().and_then(RedisValue::as_u64).unwrap_or(0),
        _ => 0,
    }
}

/// This server's connection to a cluster on Redis streams. Make it once, then put
/// [`StreamsCluster::factory`] in `SocketIoConfig::adapter`.
#[derive(Clone)]
pub struct StreamsCluster {
    bus: Arc<StreamsBus>,
}

impl std::fmt::Debug for StreamsCluster {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StreamsCluster").field("config", &self.bus.config).finish_non_exhaustive()
    }
}

impl StreamsCluster {
    /// Connects to Redis at `url` (`redis://host:port`, or a `redis-cluster://` URL as for
    /// [`crate::ShardedCluster::connect`]) and starts reading the streams from now on.
    pub async fn connect(url: &str, config: StreamsAdapterConfig) -> Result<StreamsCluster, AdapterError> {
        // One reader per stream (a blocking XREAD holds its connection; on a Redis Cluster the streams may
        // live on different nodes), as the reference reads them.
        let streams = config.streams();
        let (publisher, subscriber, readers) = crate::fred_clients::connect(url, streams.len()).await?;
        let (out_tx, out_rx) = mpsc::unbounded_channel();
        let (sub_tx, sub_rx) = mpsc::unbounded_channel();
        let bus = Arc::new(StreamsBus {
            config,
            publisher: publisher.clone(),
            subscriber: subscriber.clone(),
            out_tx,
            sub_tx,
            adapters: RwLock::default(),
            channels: RwLock::default(),
            positions: Positions::default(),
        });
        let sharded = bus.config.use_sharded_pub_sub;
        tokio::spawn(out_loop(publisher, bus.config.max_len, sharded, out_rx));
        tokio::spawn(subscribe_loop(subscriber.clone(), sharded, sub_rx));
        let weak = Arc::downgrade(&bus);
        tokio::spawn(crate::fred_clients::watch_connection(subscriber.clone(), move || {
            let bus = weak.upgrade()?;
            let channels: Vec<String> = bus.channels.read().expect("poisoned").keys().cloned().collect();
            let n = channels.len();
            if n > 0 {
                let _ = bus.sub_tx.send(SubCommand::Subscribe(channels));
            }
            Some(n)
        }));
        let weak = Arc::downgrade(&bus);
        tokio::spawn(crate::fred_clients::receive_loop(subscriber, move |channel, payload| {
            weak.upgrade().map(|bus| bus.on_pubsub(channel, payload)).is_some()
        }));
        // Where reading starts: what the stream holds now is not for this server.
        for (reader, stream) in readers.into_iter().zip(streams) {
            let (started_tx, started_rx) = oneshot::channel();
            tokio::spawn(read_loop(reader, Arc::downgrade(&bus), vec![stream], started_tx));
            let _ = started_rx.await;
        }
        tracing::info!(target: "socketio_redis::adapter", "streams adapter connected to redis");
        Ok(StreamsCluster { bus })
    }

    /// Resolves once every subscription asked for so far is in place (see `RedisCluster::subscribed`).
    pub async fn subscribed(&self) -> Result<(), AdapterError> {
        let (tx, rx) = oneshot::channel();
        let _ = self.bus.sub_tx.send(SubCommand::Barrier(tx));
        rx.await.map_err(|_| AdapterError("the redis subscriber has stopped".into()))
    }

    /// Whether the connections are up.
    pub fn is_connected(&self) -> bool {
        self.bus.is_connected()
    }

    /// The adapter factory for `SocketIoConfig::adapter`.
    pub fn factory(&self) -> AdapterFactory {
        let bus = self.bus.clone();
        Arc::new(move |local: Arc<LocalAdapter>| -> Arc<dyn Adapter> {
            let nsp = local.namespace_name().to_owned();
            let adapter = ClusterNsAdapter::new(bus.clone(), local);
            bus.adapters.write().expect("poisoned").insert(nsp.clone(), Arc::downgrade(&adapter));
            let channels = vec![bus.channel(&nsp, None), bus.channel(&nsp, Some(&adapter.uid))];
            {
                let mut map = bus.channels.write().expect("poisoned");
                for c in &channels {
                    map.insert(c.clone(), Arc::downgrade(&adapter));
                }
            }
            let _ = bus.sub_tx.send(SubCommand::Subscribe(channels));
            adapter
        })
    }
}

/// Publishes and appends in order, one at a time.
async fn out_loop(publisher: Client, max_len: u64, sharded: bool, mut rx: mpsc::UnboundedReceiver<Outgoing>) {
    while let Some(out) = rx.recv().await {
        let result: Result<RedisValue, _> = match out {
            Outgoing::Publish(channel, payload) if sharded => publisher.spublish(channel.as_str(), payload).await,
            Outgoing::Publish(channel, payload) => publisher.publish(channel.as_str(), payload).await,
            Outgoing::Set(key, value, ms) => {
                let expiry = Some(fred::types::Expiration::PX(i64::try_from(ms).unwrap_or(i64::MAX)));
                publisher.set(key.as_str(), value.as_str(), expiry, None, false).await
            }
            Outgoing::Barrier(done) => {
                let _ = done.send(());
                continue;
            }
            Outgoing::Add(stream, fields, fallback) => {
                let mut args: Vec<RedisValue> = vec![
                    RedisValue::from(stream.as_str()),
                    RedisValue::from("MAXLEN"),
                    RedisValue::from("~"),
                    RedisValue::from(max_len.to_string()),
                    RedisValue::from("*"),
                ];
                for (k, v) in fields {
                    args.push(RedisValue::from(k));
                    args.push(RedisValue::from(v));
                }
                let added: Result<RedisValue, _> =
                    publisher.custom(CustomCommand::new_static("XADD", ClusterHash::FirstKey, false), args).await;
                if added.is_err()
                    && let Some(fallback) = fallback
                {
                    // Not in the stream, so not delivered from it: here, without an offset (as the reference).
                    fallback();
                }
                added
            }
        };
        if let Err(e) = result {
            crate::telemetry::METRICS.publishes_failed.increment(1);
            tracing::warn!(target: "socketio_redis::adapter", error = %e, "a write to redis failed");
        }
    }
}

async fn subscribe_loop(subscriber: SubscriberClient, sharded: bool, mut rx: mpsc::UnboundedReceiver<SubCommand>) {
    while let Some(cmd) = rx.recv().await {
        match cmd {
            // Sharded: one channel at a time (on a Redis Cluster each goes to the node that owns its slot).
            SubCommand::Subscribe(channels) if sharded => {
                for channel in channels {
                    if let Err(e) = subscriber.ssubscribe(channel.as_str()).await {
                        tracing::warn!(target: "socketio_redis::adapter", channel = %channel, error = %e, "ssubscribe failed");
                    }
                }
            }
            SubCommand::Subscribe(channels) => {
                if let Err(e) = subscriber.subscribe(channels).await {
                    tracing::warn!(target: "socketio_redis::adapter", error = %e, "subscribe failed");
                }
            }
            SubCommand::Barrier(done) => {
                let _ = done.send(());
            }
        }
    }
}

/// Reads every stream from where it was when the server started, and hands each entry to the adapter of
/// its namespace.
async fn read_loop(reader: Client, bus: Weak<StreamsBus>, streams: Vec<String>, started: oneshot::Sender<()>) {
    let (count, block, positions) = match bus.upgrade() {
        Some(b) => (b.config.read_count, b.config.block_time, b.positions.clone()),
        None => return,
    };
    // The last id of each stream now ("$" would miss what is added while the first read is on its way).
    let mut offsets: Vec<String> = Vec::with_capacity(streams.len());
    for stream in &streams {
        let cmd = CustomCommand::new_static("XREVRANGE", ClusterHash::FirstKey, false);
        let args = vec![RedisValue::from(stream.as_str()), "+".into(), "-".into(), "COUNT".into(), "1".into()];
        let last: Option<RedisValue> = reader.custom(cmd, args).await.ok();
        let id = last.and_then(|v| entries_of(v).into_iter().next().map(|(id, _)| id));
        let id = id.unwrap_or_else(|| "0-0".into());
        if let Some(at) = EntryId::parse(&id) {
            positions.lock().await.insert(stream.clone(), at);
        }
        offsets.push(id);
    }
    let _ = started.send(());
    loop {
        if bus.upgrade().is_none() {
            return;
        }
        let mut args: Vec<RedisValue> = vec!["COUNT".into(), count.to_string().into(), "BLOCK".into()];
        args.push((block.as_millis() as u64).to_string().into());
        args.push("STREAMS".into());
        args.extend(streams.iter().map(|s| RedisValue::from(s.as_str())));
        args.extend(offsets.iter().map(|o| RedisValue::from(o.as_str())));
        let cmd = CustomCommand::new_static("XREAD", ClusterHash::Offset(5), true);
        let reply: Result<RedisValue, _> = reader.custom(cmd, args).await;
        let reply = match reply {
            Ok(r) => r,
            Err(e) => {
                tracing::warn!(target: "socketio_redis::adapter", error = %e, "reading the stream failed; trying again");
                tokio::time::sleep(Duration::from_millis(200)).await;
                continue;
            }
        };
        let Some(bus) = bus.upgrade() else { return };
        // Sessions being restored wait while a batch is delivered (and the batch waits for them).
        let mut delivered = positions.lock().await;
        for (stream, entries) in streams_of(reply) {
            let Some(i) = streams.iter().position(|s| *s == stream) else { continue };
            for (id, fields) in entries {
                if let Some(at) = EntryId::parse(&id) {
                    delivered.insert(stream.clone(), at);
                }
                let pairs = fields.iter().map(|(k, v)| (k.as_str(), v.as_slice()));
                match Message::from_stream_fields(pairs) {
                    Some(message) => {
                        let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| bus.on_entry(message, &id)));
                    }
                    None => {
                        tracing::warn!(target: "socketio_redis::adapter", stream = %stream, "a stream entry that does not decode was skipped")
                    }
                }
                offsets[i] = id;
            }
        }
        drop(delivered);
    }
}

type Entry = (String, Vec<(String, Vec<u8>)>);

/// The entries of an `XREAD` reply, by stream (an array of `[stream, entries]`, or a map).
fn streams_of(reply: RedisValue) -> Vec<(String, Vec<Entry>)> {
    match reply {
        RedisValue::Array(items) => items
            .into_iter()
            .filter_map(|item| match item {
                RedisValue::Array(mut pair) if pair.len() == 2 => {
                    let entries = entries_of(pair.pop()?);
                    Some((pair.pop()?.as_string()?, entries))
                }
                _ => None,
            })
            .collect(),
        RedisValue::Map(map) => {
            map.inner().into_iter().filter_map(|(k, v)| Some((k.as_str()?.to_string(), entries_of(v)))).collect()
        }
        _ => Vec::new(),
    }
}

/// The entries `[id, [field, value, …]]` of a stream.
fn entries_of(v: RedisValue) -> Vec<Entry> {
    let RedisValue::Array(entries) = v else { return Vec::new() };
    entries
        .into_iter()
        .filter_map(|e| {
            let RedisValue::Array(mut parts) = e else { return None };
            if parts.len() != 2 {
                return None;
            }
            let fields = parts.pop()?;
            let id = parts.pop()?.as_string()?;
            let RedisValue::Array(flat) = fields else { return None };
            let mut pairs = Vec::new();
            let mut it = flat.into_iter();
            while let (Some(k), Some(v)) = (it.next(), it.next()) {
                pairs.push((k.as_string()?, v.as_bytes()?.to_vec()));
            }
            Some((id, pairs))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Stored by the reference (socket.io 4.8.4 with @socket.io/redis-streams-adapter 0.3.1) for a socket in
    /// `room-1` whose data is `{user: "ada", n: 300, ok: true, bin: <01 02 ff>}`.
    const NODE_SESSION: &str = "hKNzaWS0c2Z5ZnhiSmFhTlJ1QzhFX0FBQUGjcGlktDExZlVlRlUzYXlodEdYb2lBQUFCpXJvb21zkrRzZnlmeGJKYWFOUnVDOEVfQUFBQaZyb29tLTGkZGF0YYSkdXNlcqNhZGGhbs0BLKJva8OjYmluxAMBAv8=";

    #[test]
    fn sessions_are_stored_as_the_reference_stores_them() {
        let session = decode_session(NODE_SESSION.as_bytes()).expect("the reference's session decodes");
        assert_eq!(&*session.id, "sfyfxbJaaNRuC8E_AAAA");
        assert_eq!(session.pid, "11fUeFU3ayhtGXoiAAAB");
        assert_eq!(session.rooms, [Room::from("sfyfxbJaaNRuC8E_AAAA"), Room::from("room-1")]);
        let data = serde_json::json!({"user": "ada", "n": 300, "ok": true});
        let mut want = Value::from(data);
        if let Value::Object(map) = &mut want {
            map.insert("bin".into(), Value::Binary(vec![1, 2, 255].into()));
        }
        assert_eq!(session.data, want);
        // Written back byte for byte as the reference wrote it.
        assert_eq!(encode_session(&session), NODE_SESSION);
        assert!(decode_session(b"not base64!").is_none());
        assert!(decode_session(STANDARD.encode([0x93, 1, 2, 3]).as_bytes()).is_none(), "an array is no session");
    }

    #[test]
    fn offsets_are_stream_entry_ids() {
        assert_eq!(EntryId::parse("1700000000000-5"), Some(EntryId(1_700_000_000_000, 5)));
        for bad in ["", "1", "1-", "-1", "1-2-3", "a-1", "1-b", " 1-2", "1-2 ", "+1-2"] {
            assert_eq!(EntryId::parse(bad), None, "{bad:?}");
        }
        assert!(EntryId(1, 9) < EntryId(2, 0) && EntryId(2, 0) < EntryId(2, 1));
        assert_eq!(EntryId(7, 3).next(), "7-4");
        assert_eq!(EntryId(7, 3).to_string(), "7-3");
    }

    #[test]
    fn namespaces_map_to_streams_as_the_reference_maps_them() {
        let mut config = StreamsAdapterConfig::default();
        assert_eq!(config.stream_of("/"), "socket.io");
        config.stream_count = 2;
        // Captured from the reference: "/" hashes to 47, "/admin" to 1438238848, "/chat-room-12" to a
        // negative number.
        assert_eq!(config.stream_of("/"), "socket.io-1");
        assert_eq!(config.stream_of("/admin"), "socket.io-0");
        assert_eq!(config.stream_of("/chat-room-12"), "socket.io--1");
        config.stream_count = 3;
        assert_eq!(config.stream_of("/zzzzzz"), "socket.io-0");
        assert_eq!(config.streams(), ["socket.io-0", "socket.io-1", "socket.io-2"]);
    }
}
