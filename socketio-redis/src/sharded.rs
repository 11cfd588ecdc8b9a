//! The sharded adapter: wire-compatible with `@socket.io/redis-adapter`'s `createShardedAdapter` (Redis 7
//! sharded Pub/Sub: `SPUBLISH` / `SSUBSCRIBE`), on one Redis or a Redis Cluster.
//!
//! Channels, for the channel prefix `P` (default `socket.io`) and a namespace `N`: `P#N#` (every server of
//! the namespace listens), `P#N#<uid>#` (the responses to one adapter), and in the dynamic modes `P#N#<room>#`
//! for each room a server has local sockets in. A plain broadcast to exactly one room goes to that room's
//! channel in the dynamic modes (in `dynamic`, not when the room looks like a socket id: 20 characters),
//! so only the servers with members receive it; everything else goes to `P#N#`. The number of servers is
//! `PUBSUB SHARDNUMSUB P#N#` (asked of the node that owns the channel's slot).

use std::collections::HashMap;
use std::sync::{Arc, RwLock, Weak};
use std::time::Duration;

use fred::clients::{Client, SubscriberClient};
use fred::interfaces::{ClientLike, PubsubInterface};

use fred::types::{ClusterHash, CustomCommand, Value as RedisValue};
use socketio_server::adapter::{Adapter, AdapterError, AdapterFactory, BoxFuture, LocalAdapter, Room};
use tokio::sync::{mpsc, oneshot};

use crate::cluster_adapter::{Bus, ClusterNsAdapter};
use crate::cluster_wire::Message;

/// Which rooms get a channel of their own (the reference's `subscriptionMode`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum SubscriptionMode {
    /// None: every message goes to the namespace's channel, which every server receives.
    Static,
    /// The rooms that are not a socket's own: a broadcast to one of them reaches only the servers with
    /// members (the reference's default).
    #[default]
    Dynamic,
    /// Every room, a socket's own included.
    DynamicPrivate,
}

/// Options of the sharded adapter, with the reference's defaults.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ShardedAdapterConfig {
    /// Channel prefix (default `socket.io`).
    pub channel_prefix: String,
    /// Which rooms get a channel (default [`SubscriptionMode::Dynamic`]).
    pub subscription_mode: SubscriptionMode,
    /// How long requests wait for the other servers (default 5 s).
    pub requests_timeout: Duration,
}

impl Default for ShardedAdapterConfig {
    fn default() -> Self {
        Self {
            channel_prefix: "socket.io".into(),
            subscription_mode: SubscriptionMode::default(),
            requests_timeout: Duration::from_secs(5),
        }
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum ChannelKind {
    /// The namespace's channel, or a room's: messages.
    Messages,
    /// An adapter's own channel: responses.
    Responses,
}

enum SubCommand {
    Subscribe(String),
    Unsubscribe(String),
    /// Answered once every command before it is done.
    Barrier(oneshot::Sender<()>),
}

struct ShardedBus {
    config: ShardedAdapterConfig,
    publisher: Client,
    subscriber: SubscriberClient,
    publish_tx: mpsc::UnboundedSender<(String, Vec<u8>)>,
    sub_tx: mpsc::UnboundedSender<SubCommand>,
    /// Who listens on each subscribed channel.
    channels: RwLock<HashMap<String, (Weak<ClusterNsAdapter>, ChannelKind)>>,
}

impl ShardedBus {
    fn main_channel(&self, nsp: &str) -> String {
        format!("{}#{nsp}#", self.config.channel_prefix)
    }

    fn sub_channel(&self, nsp: &str, name: &str) -> String {
        format!("{}#{nsp}#{name}#", self.config.channel_prefix)
    }

    fn listen(&self, channel: String, adapter: &Arc<ClusterNsAdapter>, kind: ChannelKind) {
        self.channels.write().expect("poisoned").insert(channel.clone(), (Arc::downgrade(adapter), kind));
        let _ = self.sub_tx.send(SubCommand::Subscribe(channel));
    }

    fn forget(&self, channel: String) {
        self.channels.write().expect("poisoned").remove(&channel);
        let _ = self.sub_tx.send(SubCommand::Unsubscribe(channel));
    }

    fn send(&self, channel: String, payload: Vec<u8>) -> Result<(), AdapterError> {
        if !self.is_connected() {
            crate::telemetry::METRICS.publishes_failed.increment(1);
            return Err(AdapterError("redis is unavailable".into()));
        }
        crate::telemetry::METRICS.publishes.increment(1);
        tracing::trace!(target: "socketio_redis::adapter", channel = %channel, bytes = payload.len(), "spublish");
        self.publish_tx.send((channel, payload)).map_err(|_| AdapterError("the redis publisher has stopped".into()))
    }

    fn dispatch(&self, channel: &str, payload: &[u8]) {
        let Some((adapter, kind)) = self.channels.read().expect("poisoned").get(channel).cloned() else { return };
        let Some(adapter) = adapter.upgrade() else { return };
        let Some(message) = Message::decode(payload) else {
            tracing::warn!(target: "socketio_redis::adapter", bytes = payload.len(), "a message that does not decode was dropped");
            return;
        };
        match kind {
            ChannelKind::Messages => adapter.on_message(message, None),
            ChannelKind::Responses => adapter.on_response(message),
        }
    }
}

impl Bus for ShardedBus {
    fn publish(&self, nsp: &str, message: &Message, single_room: Option<&Room>) -> Result<(), AdapterError> {
        let channel = match (self.config.subscription_mode, single_room) {
            (SubscriptionMode::DynamicPrivate, Some(room)) => self.sub_channel(nsp, room),
            // The reference takes a room of 20 characters for a socket id, which has no channel.
            (SubscriptionMode::Dynamic, Some(room)) if room.len() != 20 => self.sub_channel(nsp, room),
            _ => self.main_channel(nsp),
        };
        self.send(channel, message.encode_sharded())
    }

    fn publish_response(&self, nsp: &str, requester: &str, message: &Message) -> Result<(), AdapterError> {
        self.send(self.sub_channel(nsp, requester), message.encode_sharded())
    }

    fn server_count(&self, nsp: &str) -> BoxFuture<'static, Result<usize, AdapterError>> {
        let channel = self.main_channel(nsp);
        let publisher = self.publisher.clone();
        Box::pin(async move {
            // Only the node that owns the channel's slot counts its subscribers.
            let slot = fred::util::redis_keyslot(channel.as_bytes());
            let cmd = CustomCommand::new_static("PUBSUB", ClusterHash::Custom(slot), false);
            let reply: RedisValue = publisher
                .custom(cmd, vec![RedisValue::from("SHARDNUMSUB"), RedisValue::from(channel.as_str())])
                .await
                .map_err(|e| AdapterError(e.to_string()))?;
            let count = match reply {
                RedisValue::Array(items) => items.get(1).and_then(RedisValue::as_u64).unwrap_or(0),
                RedisValue::Map(map) => map.values().next().and_then(RedisValue::as_u64).unwrap_or(0),
                _ => 0,
            };
            Ok(count as usize)
        })
    }

    fn is_connected(&self) -> bool {
        self.subscriber.is_connected() && self.publisher.is_connected()
    }

    fn requests_timeout(&self) -> Duration {
        self.config.requests_timeout
    }

    fn room_created(&self, nsp: &str, room: &Room, private: bool) {
        let wanted = match self.config.subscription_mode {
            SubscriptionMode::Static => false,
            SubscriptionMode::Dynamic => !private,
            SubscriptionMode::DynamicPrivate => true,
        };
        if !wanted {
            return;
        }
        let channel = self.sub_channel(nsp, room);
        let adapter =
            self.channels.read().expect("poisoned").get(&self.main_channel(nsp)).and_then(|(a, _)| a.upgrade());
        if let Some(adapter) = adapter {
            self.listen(channel, &adapter, ChannelKind::Messages);
        }
    }

    fn room_deleted(&self, nsp: &str, room: &Room) {
        let channel = self.sub_channel(nsp, room);
        if self.channels.read().expect("poisoned").contains_key(&channel) {
            self.forget(channel);
        }
    }

    fn closed(&self, uid: &str) {
        // The channels of that adapter (its namespace's, its responses', its rooms'), and any left by a
        // dropped one.
        let mine: Vec<String> = self
            .channels
            .read()
            .expect("poisoned")
            .iter()
            .filter(|(_, (adapter, _))| adapter.upgrade().is_none_or(|a| a.uid == uid))
            .map(|(channel, _)| channel.clone())
            .collect();
        for channel in mine {
            self.forget(channel);
        }
    }
}

/// This server's connection to a cluster on sharded Pub/Sub. Make it once, then put
/// [`ShardedCluster::factory`] in `SocketIoConfig::adapter`.
#[derive(Clone)]
pub struct ShardedCluster {
    bus: Arc<ShardedBus>,
}

impl std::fmt::Debug for ShardedCluster {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ShardedCluster").field("config", &self.bus.config).finish_non_exhaustive()
    }
}

impl ShardedCluster {
    /// Connects to Redis 7 or later at `url`: `redis://host:port` for one server, or
    /// `redis-cluster://host:port?node=host:port&node=host:port` for a Redis Cluster (any of its nodes; the
    /// others are found).
    pub async fn connect(url: &str, config: ShardedAdapterConfig) -> Result<ShardedCluster, AdapterError> {
        let (publisher, subscriber, _) = crate::fred_clients::connect(url, 0).await?;
        let (publish_tx, publish_rx) = mpsc::unbounded_channel();
        let (sub_tx, sub_rx) = mpsc::unbounded_channel();
        let bus = Arc::new(ShardedBus {
            config,
            publisher: publisher.clone(),
            subscriber: subscriber.clone(),
            publish_tx,
            sub_tx,
            channels: RwLock::default(),
        });
        tokio::spawn(publish_loop(publisher, publish_rx));
        tokio::spawn(subscribe_loop(subscriber.clone(), sub_rx));
        let weak = Arc::downgrade(&bus);
        tokio::spawn(crate::fred_clients::watch_connection(subscriber.clone(), move || {
            let bus = weak.upgrade()?;
            let channels: Vec<String> = bus.channels.read().expect("poisoned").keys().cloned().collect();
            let n = channels.len();
            for channel in channels {
                let _ = bus.sub_tx.send(SubCommand::Subscribe(channel));
            }
            Some(n)
        }));
        let weak = Arc::downgrade(&bus);
        tokio::spawn(crate::fred_clients::receive_loop(subscriber, move |channel, payload| {
            weak.upgrade().map(|bus| bus.dispatch(channel, payload)).is_some()
        }));
        tracing::info!(target: "socketio_redis::adapter", "sharded adapter connected to redis");
        Ok(ShardedCluster { bus })
    }

    /// Resolves once every subscription asked for so far is in place (see `RedisCluster::subscribed`).
    pub async fn subscribed(&self) -> Result<(), AdapterError> {
        let (tx, rx) = oneshot::channel();
        let _ = self.bus.sub_tx.send(SubCommand::Barrier(tx));
        rx.await.map_err(|_| AdapterError("the redis subscriber has stopped".into()))
    }

    /// Whether both connections are up.
    pub fn is_connected(&self) -> bool {
        self.bus.is_connected()
    }

    /// The adapter factory for `SocketIoConfig::adapter`.
    pub fn factory(&self) -> AdapterFactory {
        let bus = self.bus.clone();
        Arc::new(move |local: Arc<LocalAdapter>| -> Arc<dyn Adapter> {
            let nsp = local.namespace_name().to_owned();
            let adapter = ClusterNsAdapter::new(bus.clone(), local);
            bus.listen(bus.main_channel(&nsp), &adapter, ChannelKind::Messages);
            bus.listen(bus.sub_channel(&nsp, &adapter.uid), &adapter, ChannelKind::Responses);
            adapter
        })
    }
}

/// Publishes in order, one at a time.
async fn publish_loop(publisher: Client, mut rx: mpsc::UnboundedReceiver<(String, Vec<u8>)>) {
    while let Some((channel, payload)) = rx.recv().await {
        let sent: Result<RedisValue, _> = publisher.spublish(channel.as_str(), payload).await;
        if let Err(e) = sent {
            crate::telemetry::METRICS.publishes_failed.increment(1);
            tracing::warn!(target: "socketio_redis::adapter", channel = %channel, error = %e, "spublish failed");
        }
    }
}

/// Subscribes and unsubscribes in order, one channel at a time (channels of different slots may live on
/// different nodes of a cluster).
async fn subscribe_loop(subscriber: SubscriberClient, mut rx: mpsc::UnboundedReceiver<SubCommand>) {
    while let Some(cmd) = rx.recv().await {
        let result = match cmd {
            SubCommand::Subscribe(channel) => subscriber.ssubscribe(channel.as_str()).await.map_err(|e| (channel, e)),
            SubCommand::Unsubscribe(channel) => {
                subscriber.sunsubscribe(channel.as_str()).await.map_err(|e| (channel, e))
            }
            SubCommand::Barrier(done) => {
                let _ = done.send(());
                Ok(())
            }
        };
        if let Err((channel, e)) = result {
            tracing::warn!(target: "socketio_redis::adapter", channel = %channel, error = %e, "ssubscribe failed");
        }
    }
}
