//! Decoding errors. Any of them closes the connection with "parse error", as in the reference.

/// Input that is not a valid Socket.IO packet.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DecodeError {
    /// Empty, or the first character is not a packet type.
    #[error("unknown packet type")]
    UnknownType,
    /// The attachment count of a binary packet is missing or malformed.
    #[error("illegal attachments")]
    InvalidAttachments,
    /// More attachments announced than allowed.
    #[error("too many attachments")]
    TooManyAttachments,
    /// The ack id is not a number that fits 64 bits.
    #[error("invalid ack id")]
    InvalidAckId,
    /// The data is not JSON (or msgpack).
    #[error("invalid JSON")]
    InvalidJson,
    /// The data has the wrong shape for the packet type (for example `42{}`).
    #[error("invalid payload")]
    InvalidPayload,
    /// A text packet arrived while the attachments of a binary packet were expected.
    #[error("got plaintext data when reconstructing a packet")]
    UnexpectedText,
    /// A binary message arrived with no binary packet waiting for it.
    #[error("got binary data when not reconstructing a packet")]
    UnexpectedBinary,
    /// A placeholder names an attachment that was not sent.
    #[error("placeholder refers to a missing attachment")]
    MissingAttachment,
    /// The msgpack parser received text.
    #[error("invalid data type")]
    InvalidDataType,
}
