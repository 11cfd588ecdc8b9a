#![doc = include_str!("../README.md")]
#![forbid(unsafe_code)]

pub mod endpoint;
pub mod error;
pub mod handshake;
pub mod jsonp;
pub mod packet;
mod packet_type;
pub mod payload;
mod queue;
pub mod session;
pub mod spare;
pub mod v3;
pub mod websocket;

pub use error::{DecodeError, Error, ProtocolError, UsageError};
pub use handshake::{ErrorCode, Protocol, TransportKind};
pub use packet::{Frame, Message, Packet};
pub use session::{Channel, CloseReason, Event, PollId, Session, SessionConfig, Transmit};

/// Re-exported so callers can build frames and messages without depending on these crates themselves.
pub use bytes::{Bytes, BytesMut};
pub use bytestring::ByteString;
