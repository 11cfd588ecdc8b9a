//! The room index of a namespace's local sockets: which sockets are in which room, kept small (an entry per
//! socket in each of its two maps), and, for a larger room, each member's socket and engine session so that
//! a broadcast walks the room without looking each one up.

use std::collections::HashMap;

use crate::socket::Socket;
use crate::types::{Room, SocketId};

/// Both maps have an entry per socket (every socket is in a room of its own id), so their entries are
/// kept small: at 15,000 sockets each map has 32,768 slots, and every byte of an entry costs two per socket.
#[derive(Default)]
pub(super) struct Index {
    pub(super) rooms: HashMap<Room, Members>,
    /// Each socket's rooms, in the order joined: a socket is in a few, so a vector (a hash set would cost
    /// twice the memory, and its 48 bytes in every slot of this map).
    pub(super) sids: HashMap<SocketId, Vec<Room>>,
}

/// A room's local members. Most rooms have one: every socket is in a room of its own id, kept inline
/// rather than in a hash set of its own (about 100 bytes per socket); a larger room's set is boxed, which
/// keeps the map's slots small. A room left empty is removed from the map by its caller.
///
/// A larger room keeps each member's socket with its id once the socket is in its namespace's map (the
/// handle is `None` before that, and again after it left the map): a broadcast to the room walks the set
/// without finding each socket by id. A member without a handle gets no broadcast, as one missing from the
/// namespace's map does not: nothing reaches a socket before its CONNECT is answered.
pub(super) enum Members {
    Empty,
    One(SocketId),
    #[allow(clippy::box_collection, reason = "one pointer in every slot of the room map instead of six words")]
    Many(Box<HashMap<SocketId, Option<Handle>>>),
}

/// What a larger room keeps of a member in its namespace's map: its socket, and the engine session that
/// carries its frames, so that a broadcast reaches the session without going through the socket and its
/// connection (two loads from memory per recipient fewer).
pub(super) struct Handle {
    socket: Socket,
    engine: engineio_server::Socket,
}

impl Handle {
    fn new(socket: &Socket) -> Handle {
        Handle::from_owned(socket.clone())
    }

    /// A handle of a socket already cloned (as `find` returns it): no second clone.
    fn from_owned(socket: Socket) -> Handle {
        Handle { engine: socket.engine().clone(), socket }
    }
}

/// A member of a room, as a broadcast finds it.
pub(super) enum Member<'a> {
    /// The only member: found by id in the namespace's map.
    Lookup(&'a SocketId),
    /// A member of a larger room, with its socket once it is in the namespace's map.
    Known(&'a SocketId, Option<&'a Handle>),
}

impl Members {
    /// Adds `id`, taking the socket of a member of a larger room from `find` (`None`: not in the
    /// namespace's map yet); whether it was not a member.
    pub(super) fn insert(&mut self, id: &SocketId, find: impl Fn(&SocketId) -> Option<Socket>) -> bool {
        match self {
            Members::Empty => {
                *self = Members::One(id.clone());
                true
            }
            Members::One(one) if one == id => false,
            Members::One(one) => {
                let handle = |id| find(id).map(Handle::from_owned);
                let set = HashMap::from([(one.clone(), handle(one)), (id.clone(), handle(id))]);
                *self = Members::Many(Box::new(set));
                true
            }
            Members::Many(set) => match set.entry(id.clone()) {
                std::collections::hash_map::Entry::Occupied(_) => false,
                std::collections::hash_map::Entry::Vacant(v) => {
                    v.insert(find(id).map(Handle::from_owned));
                    true
                }
            },
        }
    }

    /// Sets (or, with `None`, clears) the socket kept for member `id` of a larger room.
    pub(super) fn set_socket(&mut self, id: &SocketId, socket: Option<&Socket>) {
        if let Members::Many(set) = self
            && let Some(handle) = set.get_mut(id)
        {
            *handle = socket.map(Handle::new);
        }
    }

    /// Removes `id`; whether it was a member.
    pub(super) fn remove(&mut self, id: &SocketId) -> bool {
        let (removed, now_empty) = match self {
            Members::Empty => (false, true),
            Members::One(one) => {
                let removed = one == id;
                (removed, removed)
            }
            Members::Many(set) => {
                let removed = set.remove(id).is_some();
                (removed, set.is_empty())
            }
        };
        if now_empty {
            *self = Members::Empty;
        }
        removed
    }

    pub(super) fn is_empty(&self) -> bool {
        matches!(self, Members::Empty)
    }

    pub(super) fn iter(&self) -> impl Iterator<Item = Member<'_>> {
        let (one, many) = match self {
            Members::Empty => (None, None),
            Members::One(id) => (Some(Member::Lookup(id)), None),
            Members::Many(set) => (None, Some(set.iter().map(|(id, s)| Member::Known(id, s.as_ref())))),
        };
        one.into_iter().chain(many.into_iter().flatten())
    }
}

impl<'a> Member<'a> {
    pub(super) fn id(&self) -> &'a SocketId {
        match self {
            Member::Lookup(id) | Member::Known(id, _) => id,
        }
    }

    /// The member's socket and its engine session, if it is in the namespace's map (`sockets`).
    pub(super) fn target<S: std::hash::BuildHasher>(
        &self,
        sockets: &'a HashMap<SocketId, Socket, S>,
    ) -> Option<(&'a Socket, &'a engineio_server::Socket)> {
        match self {
            Member::Lookup(id) => sockets.get(*id).map(|s| (s, s.engine())),
            Member::Known(_, handle) => handle.map(|h| (&h.socket, &h.engine)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_rooms_members_go_from_one_inline_to_a_set_and_back_to_empty() {
        let (a, b): (SocketId, SocketId) = ("a".into(), "b".into());
        let sorted = |m: &Members| {
            let mut v: Vec<String> = m.iter().map(|m| m.id().to_string()).collect();
            v.sort();
            v
        };
        let mut m = Members::One(a.clone());
        let none = |_: &SocketId| None;
        assert!(!m.insert(&a, none), "already a member");
        assert!(matches!(m, Members::One(_)));
        assert!(m.insert(&b, none));
        assert_eq!(sorted(&m), ["a", "b"]);
        assert!(!m.insert(&b, none));
        assert!(m.remove(&a));
        assert!(!m.remove(&a));
        assert_eq!(sorted(&m), ["b"]);
        assert!(m.remove(&b));
        assert!(m.is_empty());
        assert_eq!(m.iter().count(), 0);
        assert!(!m.remove(&b));
        assert!(m.insert(&a, none), "an emptied room takes members again");
        assert!(matches!(m, Members::One(_)));
        let mut one = Members::One(b.clone());
        assert!(!one.remove(&a));
        assert!(!one.is_empty());
        assert!(one.remove(&b));
        assert!(one.is_empty(), "emptied without a set made for it");
    }
}
