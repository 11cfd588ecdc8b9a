#![doc = include_str!("../README.md")]
#![forbid(unsafe_code)]

mod adapter;
mod cluster_adapter;
// The message model of the sharded and streams adapters (parts of it are for the streams transport).
#[allow(dead_code)]
mod cluster_wire;
mod emitter;
mod requests;
mod sharded;
pub mod telemetry;
mod wire;

pub use adapter::{RedisAdapter, RedisAdapterConfig, RedisCluster};
pub use emitter::RedisEmitter;
pub use sharded::{ShardedAdapterConfig, ShardedCluster, SubscriptionMode};
