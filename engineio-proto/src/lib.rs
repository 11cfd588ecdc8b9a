//! # engineio-proto
//!
//! A sans-IO implementation of the Engine.IO protocol, version 4: the packet and payload codecs, the
//! handshake checks, and the per-session state machine that owns every timer of the protocol; and, for the
//! WebSocket transport under it, the server side of RFC 6455 framing ([`websocket`]).
//!
//! It does no I/O, spawns nothing, reads no clock and draws no randomness. Time comes in as an argument,
//! output is pulled ([`session::Session::poll_transmit`], [`session::Session::poll_event`]), and the
//! runtime asks [`session::Session::poll_timeout`] when to wake the session next. That keeps the protocol
//! logic testable with a simulated clock and reusable from any runtime: `engineio-server` drives it on
//! tokio and hyper; another runtime (blocking threads, another async executor, a WebAssembly host) can
//! drive it the same way.
//!
//! Layers above: `socketio-proto` encodes Socket.IO packets into Engine.IO messages, and
//! `engineio-server` carries the frames produced here over HTTP long-polling and WebSocket.
//!
//! Another runtime: `examples/blocking-server/src/main.rs` in this repository is a complete Socket.IO server on
//! blocking std threads (a mutex and a condition variable per session, a timer thread for the clock) built
//! on this crate and `socketio-proto` alone; the npm `socket.io-client` connects to it, upgrades and
//! exchanges binary events and acks (`e2e/blocking.test.mjs`).
//!
//! ```
//! use std::time::{Duration, Instant};
//! use engineio_proto::session::{Session, SessionConfig, Transmit, Event};
//! use engineio_proto::handshake::TransportKind;
//! use engineio_proto::packet::{Frame, Message};
//!
//! let start = Instant::now();
//! let mut session = Session::new("sid1".into(), SessionConfig::default(), TransportKind::WebSocket, start, None);
//! // The open packet goes out first.
//! assert!(matches!(session.poll_transmit(), Some(Transmit::WebSocket(Frame::Text(t))) if t.starts_with("0{")));
//! // A message from the client becomes an event.
//! session.handle_frame(start, engineio_proto::session::Channel::Main, Frame::message("hi")).unwrap();
//! assert_eq!(session.poll_event(), Some(Event::Message(Message::from("hi"))));
//! // After the ping interval the session pings.
//! let t = session.poll_timeout().unwrap();
//! assert_eq!(t, start + Duration::from_secs(25));
//! session.handle_timeout(t);
//! assert_eq!(session.poll_transmit(), Some(Transmit::WebSocket(Frame::Text("2".into()))));
//! ```

#![forbid(unsafe_code)]

pub mod endpoint;
pub mod error;
pub mod handshake;
pub mod packet;
mod packet_type;
pub mod payload;
pub mod session;
pub mod websocket;

pub use error::{DecodeError, Error, ProtocolError, UsageError};
pub use handshake::{ErrorCode, TransportKind};
pub use packet::{Frame, Message, Packet};
pub use session::{Channel, CloseReason, Event, PollId, Session, SessionConfig, Transmit};

/// Re-exported so callers can build frames and messages without depending on these crates themselves.
pub use bytes::{Bytes, BytesMut};
pub use bytestring::ByteString;
