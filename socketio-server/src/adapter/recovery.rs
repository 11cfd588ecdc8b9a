//! Connection state recovery on one server: the recent broadcasts with their offsets, and the state of
//! sockets that disconnected for a recoverable reason, each kept for the configured time. The time comes in
//! as an argument (the caller reads tokio's clock).

use std::collections::{HashMap, HashSet, VecDeque};
use std::time::{Duration, Instant};

use socketio_proto::{Packet, Value};

use super::BroadcastOptions;
use crate::types::{Room, SocketId};

/// The state of a disconnected socket, kept for connection state recovery.
#[derive(Debug, Clone)]
pub struct PersistedSession {
    /// The socket id.
    pub id: SocketId,
    /// The private id the client presents to recover.
    pub pid: String,
    /// Its rooms.
    pub rooms: Vec<Room>,
    /// Its `data`.
    pub data: Value,
    disconnected_at: Instant,
}

impl PersistedSession {
    /// The state of the socket `id` that disconnects now.
    pub fn new(id: SocketId, pid: String, rooms: Vec<Room>, data: Value) -> Self {
        PersistedSession { id, pid, rooms, data, disconnected_at: tokio::time::Instant::now().into_std() }
    }
}

pub(super) struct Recovery {
    max_age: Duration,
    /// Recent broadcasts: (offset, packet with the offset appended, targets, when).
    packets: VecDeque<(String, Packet, BroadcastOptions, Instant)>,
    sessions: HashMap<String, PersistedSession>,
    /// The sessions' pids in the order they were persisted, to expire them from the front: a reconnect
    /// storm persists thousands at once, and scanning every session on each one made that quadratic.
    expiry: VecDeque<(Instant, String)>,
}

impl Recovery {
    pub(super) fn new(max_age: Duration) -> Recovery {
        Recovery { max_age, packets: VecDeque::new(), sessions: HashMap::new(), expiry: VecDeque::new() }
    }

    /// How long a disconnected socket's state (and a broadcast) is kept.
    pub(super) fn max_age(&self) -> Duration {
        self.max_age
    }

    /// Keeps a broadcast sent at `now` (its offset already appended to `packet`), after dropping those
    /// older than the maximum age.
    pub(super) fn record(&mut self, offset: String, packet: Packet, opts: BroadcastOptions, now: Instant) {
        while self.packets.front().is_some_and(|p| now.duration_since(p.3) > self.max_age) {
            self.packets.pop_front();
        }
        self.packets.push_back((offset, packet, opts, now));
    }

    /// Keeps the state of a socket that disconnected at `now`, after expiring the sessions kept longer than
    /// the maximum age.
    pub(super) fn persist(&mut self, id: SocketId, pid: String, rooms: Vec<Room>, data: Value, now: Instant) {
        while let Some((at, _)) = self.expiry.front()
            && now.duration_since(*at) > self.max_age
        {
            let (at, old) = self.expiry.pop_front().expect("a front entry");
            // Unless it was taken back and persisted again since.
            if self.sessions.get(&old).is_some_and(|s| s.disconnected_at == at) {
                self.sessions.remove(&old);
            }
        }
        self.expiry.push_back((now, pid.clone()));
        self.sessions.insert(pid.clone(), PersistedSession { id, pid, rooms, data, disconnected_at: now });
    }

    /// Takes back a persisted session at `now`, with the packets it missed since `offset` (filtered by its
    /// rooms). `None` if the session is unknown or expired, or the offset is no longer buffered.
    pub(super) fn restore(&mut self, pid: &str, offset: &str, now: Instant) -> Option<(PersistedSession, Vec<Packet>)> {
        let session = self.sessions.remove(pid)?;
        if now.saturating_duration_since(session.disconnected_at) > self.max_age {
            return None;
        }
        let start = self.packets.iter().position(|p| p.0 == offset)?;
        let rooms: HashSet<&Room> = session.rooms.iter().collect();
        let missed = self
            .packets
            .iter()
            .skip(start + 1)
            .filter(|(_, _, opts, _)| {
                (opts.rooms.is_empty() || opts.rooms.iter().any(|room| rooms.contains(room)))
                    && !opts.except.iter().any(|room| rooms.contains(room))
            })
            .map(|(_, p, _, _)| p.clone())
            .collect();
        Some((session, missed))
    }

    /// Whether the session `pid` is kept.
    #[cfg(test)]
    fn keeps(&self, pid: &str) -> bool {
        self.sessions.contains_key(pid)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn persist(r: &mut Recovery, pid: &str, now: Instant) {
        r.persist(SocketId::from(format!("id-{pid}")), pid.to_owned(), Vec::new(), Value::Null, now);
    }

    #[test]
    fn sessions_expire_in_the_order_they_were_kept_and_a_kept_again_one_stays() {
        let max_age = Duration::from_secs(120);
        let mut r = Recovery::new(max_age);
        let mut now = Instant::now();
        persist(&mut r, "a", now);
        now += Duration::from_secs(60);
        persist(&mut r, "b", now);
        // "a" is taken back (its offset is unknown here: the session is used up all the same) and kept again.
        assert!(r.restore("a", "unknown", now).is_none());
        assert!(!r.keeps("a"));
        persist(&mut r, "a", now);
        // Past "a"'s first expiry: that stale entry must not drop the session kept again since.
        now += Duration::from_secs(61);
        persist(&mut r, "c", now);
        assert!(r.keeps("a"), "kept again 61 s ago");
        assert!(r.keeps("b"));
        // Past the expiry of "b" and of "a" kept again (both at 60 s), not of "c".
        now += Duration::from_secs(60);
        persist(&mut r, "d", now);
        assert!(!r.keeps("b") && !r.keeps("a"), "expired");
        assert!(r.keeps("c") && r.keeps("d"));
        // Many at once (a reconnect storm) stay linear: each is expired once, from the front.
        for i in 0..10_000 {
            persist(&mut r, &format!("s{i}"), now);
        }
        now += Duration::from_secs(121);
        persist(&mut r, "last", now);
        assert_eq!(r.sessions.len(), 1, "only the last one is left");
        assert_eq!(r.expiry.len(), 1);
    }
}
