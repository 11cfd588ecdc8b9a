//! The fred clients of the sharded and streams buses: how they are made and connected, the loop that hands
//! the subscriber's messages on, and the watch over its connection.

use fred::clients::{Client, SubscriberClient};
use fred::interfaces::{ClientLike, EventInterface};
use fred::types::config::{Config, PerformanceConfig, ReconnectPolicy};
use socketio_server::adapter::AdapterError;
use tokio::sync::broadcast::error::RecvError;

/// Connected clients for a bus on `url` (`redis://` or `redis-cluster://`): a publisher, a subscriber, and
/// `extra` more plain clients (for blocking reads).
pub(crate) async fn connect(url: &str, extra: usize) -> Result<(Client, SubscriberClient, Vec<Client>), AdapterError> {
    std::sync::LazyLock::force(&crate::telemetry::METRICS);
    let error = |e: fred::error::Error| AdapterError(e.to_string());
    let config = Config::from_url(url).map_err(error)?;
    let policy = ReconnectPolicy::new_exponential(0, 50, 2_000, 2);
    let publisher = Client::new(config.clone(), None, None, Some(policy.clone()));
    let others: Vec<Client> =
        (0..extra).map(|_| Client::new(config.clone(), None, None, Some(policy.clone()))).collect();
    // fred hands every message to a broadcast channel that drops what a slow reader has not taken once it
    // holds `broadcast_channel_capacity` (32 by default, which a burst of broadcasts overflows).
    let performance = PerformanceConfig { broadcast_channel_capacity: 16_384, ..Default::default() };
    let subscriber = SubscriberClient::new(config, Some(performance), None, Some(policy));
    for client in std::iter::once(&publisher).chain(&others) {
        client.init().await.map_err(error)?;
    }
    subscriber.init().await.map_err(error)?;
    Ok((publisher, subscriber, others))
}

/// Hands every Pub/Sub message to `dispatch(channel, payload)`, which answers false once its bus is gone.
pub(crate) async fn receive_loop(subscriber: SubscriberClient, dispatch: impl Fn(&str, &[u8]) -> bool) {
    let mut messages = subscriber.message_rx();
    loop {
        match messages.recv().await {
            Ok(message) => {
                let Some(payload) = message.value.as_bytes() else { continue };
                // A message that trips a bug must not cut this server off the cluster.
                let go_on =
                    std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| dispatch(&message.channel, payload)));
                if matches!(go_on, Ok(false)) {
                    return;
                }
            }
            Err(RecvError::Lagged(n)) => {
                tracing::warn!(target: "socketio_redis::adapter", lost = n, "the subscriber fell behind and lost messages");
            }
            Err(RecvError::Closed) => return,
        }
    }
}

/// Reports the subscriber's losses and reconnections; after each reconnection `resubscribe` subscribes it
/// again to every channel and answers how many (`None` once its bus is gone).
pub(crate) async fn watch_connection(subscriber: SubscriberClient, resubscribe: impl Fn() -> Option<usize>) {
    let mut errors = subscriber.error_rx();
    let mut reconnects = subscriber.reconnect_rx();
    loop {
        tokio::select! {
            error = errors.recv() => match error {
                Ok((error, server)) => {
                    let server = server.map(|s| s.to_string()).unwrap_or_default();
                    tracing::warn!(target: "socketio_redis::adapter", error = %error, server, "lost the redis subscriber connection; reconnecting");
                }
                Err(RecvError::Closed) => return,
                Err(_) => {}
            },
            server = reconnects.recv() => match server {
                Ok(server) => {
                    crate::telemetry::METRICS.reconnects.increment(1);
                    let Some(channels) = resubscribe() else { return };
                    tracing::warn!(target: "socketio_redis::adapter", server = %server, channels, "subscriber reconnected to redis and subscribes again");
                }
                Err(RecvError::Closed) => return,
                Err(_) => {}
            },
        }
    }
}
