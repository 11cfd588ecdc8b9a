#![doc = include_str!("../README.md")]
#![forbid(unsafe_code)]

pub mod connection;
pub mod date;
pub mod error;
pub mod from_value;
mod json;
#[cfg(feature = "msgpack")]
pub mod msgpack;
mod msgpack_ext;
pub mod packet;
pub mod parser;
pub mod to_value;
pub mod value;

pub use connection::{
    AckFailure, CloseCause, Connection, ConnectionConfig, ConnectionError, ConnectionEvent, Recovery,
};
pub use error::DecodeError;
pub use packet::{ArgsPacket, Packet, PacketType, RESERVED_EVENTS};
pub use parser::{Decoder, Frames, FramesIter, JsonDecoder, JsonParser, Parser};
pub use value::{Map, Value};
