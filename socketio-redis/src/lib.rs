#![doc = include_str!("../README.md")]
#![forbid(unsafe_code)]

mod adapter;
// The message model of the sharded and streams adapters; their transports are not written yet.
#[allow(dead_code)]
mod cluster_wire;
mod emitter;
pub mod telemetry;
mod wire;

pub use adapter::{RedisAdapter, RedisAdapterConfig, RedisCluster};
pub use emitter::RedisEmitter;
