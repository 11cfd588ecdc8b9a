//! What the adapter tells the outside, through the `tracing` and `metrics` facades. Log target
//! `socketio_redis::adapter`: `info` when it first subscribes, `warn` when Redis cannot be reached, the
//! subscriber reconnects, a publish is refused or fails, or a request to the other servers times out.
//!
//! | metric | kind | what |
//! |---|---|---|
//! | `socketio_redis_publishes_total` | counter | messages handed to the publisher |
//! | `socketio_redis_publishes_failed_total` | counter | publishes refused (Redis away, queue full) or failed |
//! | `socketio_redis_requests_total` | counter | requests to the other servers that wait for answers |
//! | `socketio_redis_request_timeouts_total` | counter | such requests that timed out |
//! | `socketio_redis_reconnects_total` | counter | reconnections of the subscriber |

use std::sync::LazyLock;

use metrics::Counter;

pub(crate) struct RedisMetrics {
    pub(crate) publishes: Counter,
    pub(crate) publishes_failed: Counter,
    pub(crate) requests: Counter,
    pub(crate) request_timeouts: Counter,
    pub(crate) reconnects: Counter,
}

pub(crate) static METRICS: LazyLock<RedisMetrics> = LazyLock::new(|| {
    metrics::describe_counter!("socketio_redis_publishes_total", "Messages handed to the Redis publisher");
    metrics::describe_counter!("socketio_redis_publishes_failed_total", "Publishes refused or failed");
    metrics::describe_counter!("socketio_redis_requests_total", "Requests to the other servers");
    metrics::describe_counter!("socketio_redis_request_timeouts_total", "Requests to the other servers that timed out");
    metrics::describe_counter!("socketio_redis_reconnects_total", "Reconnections of the Redis subscriber");
    RedisMetrics {
        publishes: metrics::counter!("socketio_redis_publishes_total"),
        publishes_failed: metrics::counter!("socketio_redis_publishes_failed_total"),
        requests: metrics::counter!("socketio_redis_requests_total"),
        request_timeouts: metrics::counter!("socketio_redis_request_timeouts_total"),
        reconnects: metrics::counter!("socketio_redis_reconnects_total"),
    }
});
