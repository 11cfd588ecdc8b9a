//! What every session task shares with its engine: the application's handler, the table of open sessions,
//! and the session slots (`max_sessions`, `max_sessions_per_address`). A leaf of the crate's modules: the
//! session tasks hold this, not the engine, so the engine and its HTTP side depend on the tasks and not
//! the other way round.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex, RwLock};

use crate::socket::{Handler, Socket};

pub(crate) struct Sessions {
    /// The application's handler, called when a session opens.
    pub(crate) handler: Arc<dyn Handler>,
    table: RwLock<HashMap<Arc<str>, Socket>>,
    /// Session slots in use: in total and per remote address.
    slots: Mutex<(usize, HashMap<IpAddr, usize>)>,
    max_sessions: Option<usize>,
    max_per_address: Option<usize>,
}

impl Sessions {
    pub(crate) fn new(handler: Arc<dyn Handler>, max_sessions: Option<usize>, max_per_address: Option<usize>) -> Self {
        Sessions { handler, table: RwLock::default(), slots: Mutex::default(), max_sessions, max_per_address }
    }

    /// Adds an opened session to the table.
    pub(crate) fn insert(&self, socket: &Socket) {
        self.table.write().expect("session map poisoned").insert(socket.shared.sid.clone(), socket.clone());
    }

    pub(crate) fn lookup(&self, sid: &str) -> Option<Socket> {
        self.table.read().expect("session map poisoned").get(sid).cloned()
    }

    /// The number of open sessions.
    pub(crate) fn count(&self) -> usize {
        self.table.read().expect("session map poisoned").len()
    }

    /// Open sessions whose transport is still long-polling.
    pub(crate) fn polling_count(&self) -> usize {
        let table = self.table.read().expect("session map poisoned");
        table.values().filter(|s| s.transport() == engineio_proto::TransportKind::Polling).count()
    }

    /// Every open session.
    pub(crate) fn all(&self) -> Vec<Socket> {
        self.table.read().expect("session map poisoned").values().cloned().collect()
    }

    pub(crate) fn remove(&self, sid: &str) {
        let removed = self.table.write().expect("session map poisoned").remove(sid);
        if let Some(socket) = removed {
            self.release(socket.shared.address);
        }
    }

    /// Removes `socket`'s session if the table still holds that very session (not a later one that an
    /// application's `generate_id` gave the same id).
    pub(crate) fn remove_of(&self, socket: &Socket) {
        let mut table = self.table.write().expect("session map poisoned");
        if table.get(socket.sid()).is_some_and(|s| Arc::ptr_eq(&s.shared, &socket.shared)) {
            table.remove(socket.sid());
            drop(table);
            self.release(socket.shared.address);
        }
    }

    /// Takes a session slot, or says why not.
    pub(crate) fn reserve(&self, address: Option<IpAddr>) -> Result<(), &'static str> {
        let mut slots = self.slots.lock().expect("slot counts poisoned");
        if self.max_sessions.is_some_and(|max| slots.0 >= max) {
            return Err("too many sessions");
        }
        if let (Some(max), Some(ip)) = (self.max_per_address, address)
            && slots.1.get(&ip).copied().unwrap_or(0) >= max
        {
            return Err("too many sessions from this address");
        }
        slots.0 += 1;
        if let Some(ip) = address {
            *slots.1.entry(ip).or_default() += 1;
        }
        Ok(())
    }

    /// Gives a slot back (a session ended, or a handshake failed after its slot was taken).
    pub(crate) fn release(&self, address: Option<IpAddr>) {
        let mut slots = self.slots.lock().expect("slot counts poisoned");
        slots.0 = slots.0.saturating_sub(1);
        if let Some(ip) = address
            && let Some(n) = slots.1.get_mut(&ip)
        {
            *n -= 1;
            if *n == 0 {
                slots.1.remove(&ip);
            }
        }
    }
}
