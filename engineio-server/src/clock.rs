//! The runtime's clock. Every time the session tasks hand to the sans-IO state machines comes from here:
//! tokio's clock, the one their timers run on, so that both agree under tokio's paused time in tests.

use std::time::Instant;

/// Now, on tokio's clock (the real time unless a test paused it).
pub(crate) fn now() -> Instant {
    tokio::time::Instant::now().into_std()
}
