#![doc = include_str!("../README.md")]
#![forbid(unsafe_code)]

mod adapter;
mod cluster_adapter;
mod cluster_wire;
mod emitter;
mod fred_clients;
mod requests;
mod sharded;
mod streams;
pub mod telemetry;
mod wire;

pub use adapter::{RedisAdapter, RedisAdapterConfig, RedisCluster};
pub use emitter::RedisEmitter;
pub use sharded::{ShardedAdapterConfig, ShardedCluster, SubscriptionMode};
pub use streams::{StreamsAdapterConfig, StreamsCluster};
