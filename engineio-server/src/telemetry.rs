//! What the engine tells the outside: `tracing` events (targets `engineio_server::session`,
//! `engineio_server::request`, `engineio_server::packet`) and `metrics` (the names below), through the
//! facades of those crates, so the application picks its subscriber and its exporter.
//!
//! | metric | kind | labels | what |
//! |---|---|---|---|
//! | `engineio_sessions` | gauge | `transport` | open sessions, by their current transport |
//! | `engineio_handshakes_total` | counter | | sessions opened |
//! | `engineio_handshakes_refused_total` | counter | `code` | requests refused (the reference's error code) |
//! | `engineio_handshake_duration_seconds` | histogram | | from the handshake request to its session's open |
//! | `engineio_upgrades_total` | counter | | polling sessions that moved to WebSocket |
//! | `engineio_packets_in_total` / `engineio_packets_out_total` | counter | | messages received / sent |
//! | `engineio_bytes_in_total` / `engineio_bytes_out_total` | counter | | their payload bytes |
//! | `engineio_sends_refused_total` | counter | | `Socket::send` that found the queue full |
//! | `engineio_buffer_full_total` | counter | | sessions closed because a client could not keep up |
//!
//! The handles are made once per process, when the first server is made: install the metrics recorder
//! before that.

use std::sync::LazyLock;

use engineio_proto::TransportKind;
use metrics::{Counter, Gauge, Histogram};

pub(crate) struct EngineMetrics {
    pub(crate) sessions_polling: Gauge,
    pub(crate) sessions_websocket: Gauge,
    pub(crate) handshakes: Counter,
    pub(crate) handshake_seconds: Histogram,
    pub(crate) upgrades: Counter,
    pub(crate) packets_in: Counter,
    pub(crate) packets_out: Counter,
    pub(crate) bytes_in: Counter,
    pub(crate) bytes_out: Counter,
    pub(crate) sends_refused: Counter,
    pub(crate) buffer_full: Counter,
}

pub(crate) static METRICS: LazyLock<EngineMetrics> = LazyLock::new(|| {
    metrics::describe_gauge!("engineio_sessions", "Open Engine.IO sessions, by current transport");
    metrics::describe_counter!("engineio_handshakes_total", "Engine.IO sessions opened");
    metrics::describe_counter!("engineio_handshakes_refused_total", "Engine.IO requests refused, by error code");
    metrics::describe_histogram!(
        "engineio_handshake_duration_seconds",
        metrics::Unit::Seconds,
        "Time from a handshake request to its session's open"
    );
    metrics::describe_counter!("engineio_upgrades_total", "Sessions upgraded from polling to WebSocket");
    metrics::describe_counter!("engineio_packets_in_total", "Engine.IO messages received");
    metrics::describe_counter!("engineio_packets_out_total", "Engine.IO messages sent");
    metrics::describe_counter!("engineio_bytes_in_total", metrics::Unit::Bytes, "Payload bytes of messages received");
    metrics::describe_counter!("engineio_bytes_out_total", metrics::Unit::Bytes, "Payload bytes of messages sent");
    metrics::describe_counter!("engineio_sends_refused_total", "Sends refused because a session's queue was full");
    metrics::describe_counter!("engineio_buffer_full_total", "Sessions closed because the client could not keep up");
    EngineMetrics {
        sessions_polling: metrics::gauge!("engineio_sessions", "transport" => "polling"),
        sessions_websocket: metrics::gauge!("engineio_sessions", "transport" => "websocket"),
        handshakes: metrics::counter!("engineio_handshakes_total"),
        handshake_seconds: metrics::histogram!("engineio_handshake_duration_seconds"),
        upgrades: metrics::counter!("engineio_upgrades_total"),
        packets_in: metrics::counter!("engineio_packets_in_total"),
        packets_out: metrics::counter!("engineio_packets_out_total"),
        bytes_in: metrics::counter!("engineio_bytes_in_total"),
        bytes_out: metrics::counter!("engineio_bytes_out_total"),
        sends_refused: metrics::counter!("engineio_sends_refused_total"),
        buffer_full: metrics::counter!("engineio_buffer_full_total"),
    }
});

impl EngineMetrics {
    pub(crate) fn sessions(&self, transport: TransportKind) -> &Gauge {
        match transport {
            TransportKind::Polling => &self.sessions_polling,
            TransportKind::WebSocket => &self.sessions_websocket,
        }
    }
}

/// When a handshake request came in, kept in its extensions for the handshake-time histogram.
#[derive(Clone, Copy)]
pub(crate) struct HandshakeStarted(pub(crate) std::time::Instant);

/// Counts a refused request under its error code.
pub(crate) fn refused(code: engineio_proto::ErrorCode) {
    metrics::counter!("engineio_handshakes_refused_total", "code" => code.code().to_string()).increment(1);
}

/// The span of a session's task, at `debug` (so that `info` records none: its lines carry their own
/// fields): with it, every line of the session carries its id, first transport and the client's address.
pub(crate) fn session_span(sid: &str, transport: TransportKind, remote: Option<std::net::SocketAddr>) -> tracing::Span {
    tracing::debug_span!(
        target: "engineio_server::session",
        "engineio_session",
        sid,
        transport = transport.as_str(),
        remote = remote.map(tracing::field::display),
    )
}
