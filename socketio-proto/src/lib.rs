//! # socketio-proto
//!
//! A sans-IO implementation of the Socket.IO protocol, version 5: packets ([`Packet`]), their data
//! ([`Value`]: JSON that may hold binary), the text encoding with binary attachments and its decoder that
//! assembles a packet from its text part and the binary messages that follow, and a [`Parser`] trait so the
//! wire format is swappable (the default [`JsonParser`]; [`msgpack::MsgpackParser`] behind the `msgpack`
//! feature, compatible with `socket.io-msgpack-parser`), and the state machine of one connection
//! ([`Connection`]: namespaces, the connect flow and timeout, acknowledgements, decode errors), driven like
//! `engineio_proto::Session` with the time as an argument.
//!
//! It sits on [`engineio_proto`]: a Socket.IO packet travels as one or more Engine.IO messages. Like that
//! crate it does no I/O and depends on no runtime; `socketio-server` uses it on tokio, and
//! `examples/blocking-server/src/main.rs` in this repository uses both proto crates on blocking std threads, with no
//! async runtime at all (tested with the npm `socket.io-client` in `e2e/blocking.test.mjs`).
//!
//! ```
//! use socketio_proto::{JsonParser, Packet, Parser, Value};
//! use engineio_proto::Message;
//!
//! let parser = JsonParser::default();
//! let packet = Packet::event("/", "hello", vec![Value::from("world")], Some(1));
//! let messages = parser.encode(&packet);
//! assert_eq!(messages, vec![Message::from("21[\"hello\",\"world\"]")]);
//! let mut decoder = parser.decoder();
//! assert_eq!(decoder.decode(messages[0].clone()).unwrap(), Some(packet));
//! ```

#![forbid(unsafe_code)]

pub mod connection;
pub mod date;
pub mod error;
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
