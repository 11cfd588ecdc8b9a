//! Errors, kept in three kinds: malformed bytes ([`DecodeError`]), a well-formed input that breaks the
//! protocol in the session's current state ([`ProtocolError`]), and misuse of the API by the caller
//! ([`UsageError`]).

use crate::packet_type::PacketType;

/// Bytes that are not a valid Engine.IO packet or payload.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DecodeError {
    /// An empty frame or an empty payload entry.
    #[error("empty packet")]
    Empty,
    /// The first byte is not a packet type digit.
    #[error("unknown packet type {0:#04x}")]
    UnknownType(u8),
    /// A packet that carries no data had some.
    #[error("unexpected data after a {0:?} packet")]
    UnexpectedData(PacketType),
    /// A `b` + base64 binary message (a polling payload entry or a WebSocket text frame) is not valid base64.
    #[error("invalid base64 in a binary message")]
    InvalidBase64,
    /// A polling payload is not UTF-8.
    #[error("payload is not valid UTF-8")]
    InvalidUtf8,
    /// An entry of a v3 payload (see [`crate::v3`]) has a missing or malformed length, or one longer than
    /// what follows.
    #[error("bad entry length in a v3 payload")]
    BadLength,
    /// A payload is longer than the allowed maximum.
    #[error("payload exceeds the maximum size")]
    PayloadTooLarge,
}

/// A well-formed request or packet that the session cannot accept in its current state.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ProtocolError {
    /// A long-poll GET arrived while another was pending (the session is closed).
    #[error("overlapping long-poll requests")]
    DuplicatePoll,
    /// A POST arrived while another was being received (the session is closed).
    #[error("overlapping POST requests")]
    DuplicatePost,
    /// A polling request for a session whose transport is not polling.
    #[error("the session does not use this transport")]
    TransportMismatch,
    /// An upgrade was requested while one is in progress, after one completed, or when upgrades are off.
    #[error("upgrade not allowed in the session's state")]
    UpgradeRefused,
    /// The session is closed.
    #[error("session closed")]
    Closed,
}

/// The caller used the API in a way it does not allow.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum UsageError {
    /// Data was sent on a session that is closing or closed.
    #[error("session is closing or closed")]
    SessionClosed,
    /// An input for a transport the session does not have (for example a probe frame with no upgrade).
    #[error("no such transport on this session")]
    NoSuchTransport,
}

/// Any error of this crate.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// Malformed bytes.
    #[error(transparent)]
    Decode(#[from] DecodeError),
    /// Valid input that breaks the protocol in the current state.
    #[error(transparent)]
    Protocol(#[from] ProtocolError),
    /// Misuse of the API.
    #[error(transparent)]
    Usage(#[from] UsageError),
}
