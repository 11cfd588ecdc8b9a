#![doc = include_str!("../README.md")]
#![forbid(unsafe_code)]

pub mod adapter;
mod client;
pub mod config;
mod dispatch;
mod emit;
pub mod event;
pub mod extract;
pub mod handler;
pub mod handshake;
mod listeners;
pub mod namespace;
pub mod operators;
mod reason;
mod run;
mod server;
pub mod socket;
pub mod telemetry;
mod types;

pub use adapter::{
    Adapter, AdapterFactory, BroadcastFlags, BroadcastOptions, InMemoryAdapter, LocalAdapter, Room, RoomEvent,
};
pub use config::{RecoveryConfig, SocketIoConfig};
pub use engineio_server::{self, EngineConfig, http};
pub use event::{AckError, AckSender, BroadcastAckError, EmitError, Event, IntoArgs};
pub use extract::{Data, State};
pub use handler::{HandlerError, HandlerResult};
pub use handshake::Handshake;
pub use namespace::{ConnectError, Namespace, ParentNamespace};
pub use operators::{BroadcastOperator, IntoRooms, RemoteSocket};
pub use server::{Health, SocketIo};
pub use socket::{DisconnectReason, ListenerId, Socket, SocketEmitter};
pub use socketio_proto::{self as proto, Value};
