#![doc = include_str!("../README.md")]
#![forbid(unsafe_code)]

mod adapter;
mod emitter;
pub mod telemetry;
mod wire;

pub use adapter::{RedisAdapter, RedisAdapterConfig, RedisCluster};
pub use emitter::RedisEmitter;
