#![doc = include_str!("../README.md")]
#![forbid(unsafe_code)]

mod bridge;
mod data;
pub mod session;
pub mod signature;
pub mod store;
pub mod time;

pub use bridge::{Anonymous, BridgeConfig, OnExpired, SessionBridge, SessionMiddleware, SessionRule, SocketSessionExt};
pub use session::{CookieSettings, Session, SessionData, SessionError};
#[cfg(feature = "redis")]
pub use store::RedisStore;
pub use store::{MemoryStore, SessionStore, StoreError};
