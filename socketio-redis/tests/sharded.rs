//! The sharded adapter against a real `redis-server` 7 (started here): a namespace's channels, its room
//! channels in dynamic mode, and their end when the namespace goes away.

use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use socketio_redis::{ShardedAdapterConfig, ShardedCluster};
use socketio_server::{Socket, SocketIo, SocketIoConfig};
use test_redis::Redis;
use tokio_tungstenite::tungstenite::Message as WsMessage;

/// How many connections listen on the shard channel.
async fn shard_subscribers(redis: &Redis, channel: &str) -> i64 {
    let client = redis::Client::open(redis.url()).unwrap();
    let mut conn = client.get_multiplexed_async_connection().await.unwrap();
    let reply: Vec<redis::Value> =
        redis::cmd("PUBSUB").arg("SHARDNUMSUB").arg(channel).query_async(&mut conn).await.unwrap();
    match reply.get(1) {
        Some(redis::Value::Int(n)) => *n,
        other => panic!("SHARDNUMSUB answered {other:?}"),
    }
}

/// Waits (at most 5 s) until `shard_subscribers` is `n`.
async fn wait_subscribers(redis: &Redis, channel: &str, n: i64) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    loop {
        let got = shard_subscribers(redis, channel).await;
        if got == n {
            return;
        }
        assert!(tokio::time::Instant::now() < deadline, "{channel} has {got} subscribers, expected {n}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn a_removed_namespace_leaves_its_channels() {
    let redis = Redis::start();
    let cluster = ShardedCluster::connect(&redis.url(), ShardedAdapterConfig::default()).await.unwrap();
    let mut config = SocketIoConfig::default();
    config.cleanup_empty_child_namespaces = true;
    let io = SocketIo::with_adapter(config, cluster.factory());
    io.of_dynamic(|name, _| name.starts_with("/dyn-")).on_connection(|socket: Socket| async move {
        socket.join("r");
    });
    let (addr, _) = io.listen("127.0.0.1:0".parse().unwrap()).await.unwrap();
    cluster.subscribed().await.unwrap();
    // The main namespace's channel, from the start.
    wait_subscribers(&redis, "socket.io#/#", 1).await;

    let (mut ws, _) =
        tokio_tungstenite::connect_async(format!("ws://{addr}/socket.io/?EIO=4&transport=websocket")).await.unwrap();
    ws.next().await.unwrap().unwrap();
    ws.send(WsMessage::Text("40/dyn-x,".into())).await.unwrap();
    let reply = ws.next().await.unwrap().unwrap();
    assert!(reply.to_text().unwrap().starts_with("40/dyn-x,{"), "{reply:?}");
    // The child namespace's channel, and the channel of the room its socket joined (dynamic mode).
    wait_subscribers(&redis, "socket.io#/dyn-x#", 1).await;
    wait_subscribers(&redis, "socket.io#/dyn-x#r#", 1).await;

    // The last socket leaves: the child namespace is removed, and its adapter's channels with it; the main
    // namespace's stays.
    drop(ws);
    wait_subscribers(&redis, "socket.io#/dyn-x#", 0).await;
    wait_subscribers(&redis, "socket.io#/dyn-x#r#", 0).await;
    assert_eq!(shard_subscribers(&redis, "socket.io#/#").await, 1);
    assert!(cluster.is_connected());
}
