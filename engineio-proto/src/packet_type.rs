//! The packet type digit, a leaf that both the packets and their decode errors name.

/// The type digit of a text packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum PacketType {
    /// `0`: sent by the server when a session opens, with the handshake JSON.
    Open = b'0',
    /// `1`: a transport may be closed.
    Close = b'1',
    /// `2`: heartbeat request (server to client in v4), or the upgrade probe `2probe`.
    Ping = b'2',
    /// `3`: heartbeat reply, or the probe reply `3probe`.
    Pong = b'3',
    /// `4`: application data.
    Message = b'4',
    /// `5`: the client switches to the probed transport.
    Upgrade = b'5',
    /// `6`: does nothing; used to end a pending long-poll during an upgrade.
    Noop = b'6',
}

impl PacketType {
    pub(crate) fn from_byte(b: u8) -> Option<Self> {
        Some(match b {
            b'0' => PacketType::Open,
            b'1' => PacketType::Close,
            b'2' => PacketType::Ping,
            b'3' => PacketType::Pong,
            b'4' => PacketType::Message,
            b'5' => PacketType::Upgrade,
            b'6' => PacketType::Noop,
            _ => return None,
        })
    }
}
