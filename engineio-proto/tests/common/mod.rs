//! What the session tests share: a simulated clock's instants and short timers.

use std::time::{Duration, Instant};

use engineio_proto::SessionConfig;

pub(crate) fn at(t0: Instant, millis: u64) -> Instant {
    t0 + Duration::from_millis(millis)
}

/// Timers short enough to read in a test, limits small enough to reach.
pub(crate) fn config() -> SessionConfig {
    SessionConfig {
        ping_interval: Duration::from_millis(1_000),
        ping_timeout: Duration::from_millis(500),
        upgrade_timeout: Duration::from_millis(300),
        close_timeout: Duration::from_millis(2_000),
        max_payload: 10_000,
        allow_upgrades: true,
        max_buffered_frames: 1_000,
        max_buffered_bytes: 1 << 20,
    }
}
