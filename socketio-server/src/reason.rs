//! Why a socket was disconnected, with the reference's reason strings.

/// Why a socket disconnected (the reference's reasons).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum DisconnectReason {
    /// The connection failed.
    TransportError,
    /// The client closed the connection.
    TransportClose,
    /// The connection was closed by the server's Engine.IO layer.
    ForcedClose,
    /// No pong in time.
    PingTimeout,
    /// The client sent something that is not Socket.IO.
    ParseError,
    /// The server is closing.
    ServerShuttingDown,
    /// The server closed the connection: the reference's reason for a connection closed before it joined a
    /// namespace (the connect timeout). `disconnect(true)` reports `ServerNamespaceDisconnect` to each
    /// socket, as the reference does; this variant is kept for adapters and recovery, which know it.
    ForcedServerClose,
    /// The client left the namespace.
    ClientNamespaceDisconnect,
    /// The server removed the socket from the namespace (`disconnect(false)`).
    ServerNamespaceDisconnect,
    /// The client did not read what was sent to it and its queue filled up (not a reference reason).
    BufferFull,
}

impl DisconnectReason {
    /// The reference's name for the reason.
    pub fn as_str(self) -> &'static str {
        match self {
            DisconnectReason::TransportError => "transport error",
            DisconnectReason::TransportClose => "transport close",
            DisconnectReason::ForcedClose => "forced close",
            DisconnectReason::PingTimeout => "ping timeout",
            DisconnectReason::ParseError => "parse error",
            DisconnectReason::ServerShuttingDown => "server shutting down",
            DisconnectReason::ForcedServerClose => "forced server close",
            DisconnectReason::ClientNamespaceDisconnect => "client namespace disconnect",
            DisconnectReason::ServerNamespaceDisconnect => "server namespace disconnect",
            DisconnectReason::BufferFull => "buffer full",
        }
    }

    pub(crate) fn from_engine(reason: engineio_proto::CloseReason) -> Self {
        use engineio_proto::CloseReason as C;
        match reason {
            C::TransportClose => DisconnectReason::TransportClose,
            C::PingTimeout => DisconnectReason::PingTimeout,
            C::ForcedClose => DisconnectReason::ForcedClose,
            C::ParseError => DisconnectReason::ParseError,
            C::BufferFull => DisconnectReason::BufferFull,
            _ => DisconnectReason::TransportError,
        }
    }
}

impl std::fmt::Display for DisconnectReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl DisconnectReason {
    /// Whether the reference keeps the socket's state for recovery after this reason.
    pub fn is_recoverable(self) -> bool {
        matches!(
            self,
            DisconnectReason::TransportError
                | DisconnectReason::TransportClose
                | DisconnectReason::ForcedClose
                | DisconnectReason::PingTimeout
                | DisconnectReason::ServerShuttingDown
                | DisconnectReason::ForcedServerClose
                | DisconnectReason::BufferFull
        )
    }
}
