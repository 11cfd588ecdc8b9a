//! What the Socket.IO layer tells the outside, through the `tracing` and `metrics` facades (the engine's
//! own are in `engineio_server::telemetry`).
//!
//! Log targets: `socketio_server::socket` (a span per socket with its namespace and id; `info` when it
//! connects, is refused or disconnects, with the reason), `socketio_server::event` (`debug`: events and
//! acks in, with their sizes, never their payloads), `socketio_server::handler` (`warn`: a handler's error,
//! a panic in application code, a per-packet middleware's refusal).
//!
//! | metric | kind | labels | what |
//! |---|---|---|---|
//! | `socketio_sockets` | gauge | `namespace` | connected sockets |
//! | `socketio_connects_refused_total` | counter | | CONNECTs refused (middleware, unknown namespace) |
//! | `socketio_events_in_total` | counter | | events received |
//! | `socketio_acks_timed_out_total` | counter | | `emit_with_ack` (to a socket or a broadcast) that timed out |
//! | `socketio_ack_duration_seconds` | histogram | | from an `emit_with_ack` to a socket to its ack |
//! | `socketio_handler_errors_total` | counter | | errors handlers returned (and arguments that did not fit) |
//!
//! The handles are made once per process, when the first server is made: install the metrics recorder
//! before that.

use std::sync::LazyLock;

use metrics::{Counter, Histogram};

pub(crate) struct SocketMetrics {
    pub(crate) connects_refused: Counter,
    pub(crate) events_in: Counter,
    pub(crate) acks_timed_out: Counter,
    pub(crate) ack_seconds: Histogram,
    pub(crate) handler_errors: Counter,
}

pub(crate) static METRICS: LazyLock<SocketMetrics> = LazyLock::new(|| {
    metrics::describe_gauge!("socketio_sockets", "Connected Socket.IO sockets, by namespace");
    metrics::describe_counter!("socketio_connects_refused_total", "Namespace connections refused");
    metrics::describe_counter!("socketio_events_in_total", "Socket.IO events received");
    metrics::describe_counter!("socketio_acks_timed_out_total", "Acknowledgements that did not come in time");
    metrics::describe_histogram!(
        "socketio_ack_duration_seconds",
        metrics::Unit::Seconds,
        "Time from an emit with an ack to one socket to its acknowledgement"
    );
    metrics::describe_counter!("socketio_handler_errors_total", "Errors returned by handlers");
    SocketMetrics {
        connects_refused: metrics::counter!("socketio_connects_refused_total"),
        events_in: metrics::counter!("socketio_events_in_total"),
        acks_timed_out: metrics::counter!("socketio_acks_timed_out_total"),
        ack_seconds: metrics::histogram!("socketio_ack_duration_seconds"),
        handler_errors: metrics::counter!("socketio_handler_errors_total"),
    }
});

/// The gauge of a namespace's connected sockets.
pub(crate) fn sockets_gauge(namespace: &str) -> metrics::Gauge {
    metrics::gauge!("socketio_sockets", "namespace" => namespace.to_owned())
}
