//! The JavaScript `Date` ISO format of `cookie.expires` (`2026-11-21T22:02:03.188Z`), on `SystemTime`.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use socketio_server::proto::date;

/// Formats as `Date.prototype.toISOString` does.
pub fn to_iso(t: SystemTime) -> String {
    date::to_iso(t.duration_since(UNIX_EPOCH).map(|d| d.as_millis() as i64).unwrap_or(0))
}

/// Parses `YYYY-MM-DDTHH:MM:SS[.mmm]Z`.
pub fn from_iso(s: &str) -> Option<SystemTime> {
    u64::try_from(date::from_iso(s)?).ok().map(|ms| UNIX_EPOCH + Duration::from_millis(ms))
}
