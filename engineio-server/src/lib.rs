#![doc = include_str!("../README.md")]
#![forbid(unsafe_code)]

mod clock;
pub mod config;
pub mod cookie;
pub mod cors;
mod driver;
mod engine;
mod http1;
mod kept;
pub mod layer;
mod mailbox;
mod polling;
mod response;
mod service;
mod sessions;
mod shared;
mod socket;
pub mod telemetry;
mod upgrade;
mod ws;

pub use config::{BoxError, BoxFuture, ConnectionError, EngineConfig, HttpCompression, Middleware, PerMessageDeflate};
pub use cookie::{CookieOptions, SameSite};
pub use cors::{CorsOptions, CorsOrigin};
pub use engine::Engine;
pub use engineio_proto::{self as proto, CloseReason, Frame, Message, TransportKind};
/// The `http` crate, whose types (`request::Parts`, `HeaderMap`, ...) are in this API.
pub use http;
pub use http1::serve_listener;
pub use layer::EngineLayer;
pub use response::ResponseBody;
pub use service::EngineService;
pub use shared::RemoteAddr;
pub use socket::{Connection, Handler, SendError, Socket};
