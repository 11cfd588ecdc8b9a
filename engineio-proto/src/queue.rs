//! The session's outgoing and incoming queues: a FIFO that holds a buffer only while items wait in it,
//! lent per thread by [`crate::spare`] (one spare per item type).

use std::collections::VecDeque;

use crate::spare::SpareKey;

/// A buffer larger than this (in items) goes back to the allocator when drained, not to the spare: a
/// burst does not pin memory.
const KEEP: usize = 64;

/// An item type with a per-thread spare queue buffer (a `thread_local!` of its own).
pub(crate) trait Spare: Sized + 'static {
    fn spare() -> &'static SpareKey<VecDeque<Self>>;
}

/// A FIFO that gives its buffer back once drained (see the module documentation).
pub(crate) struct Queue<T: Spare>(VecDeque<T>);

impl<T: Spare> Queue<T> {
    pub(crate) const fn new() -> Self {
        Queue(VecDeque::new())
    }

    pub(crate) fn push_back(&mut self, item: T) {
        crate::spare::take(&mut self.0, T::spare());
        self.0.push_back(item);
    }

    pub(crate) fn extend(&mut self, items: impl IntoIterator<Item = T>) {
        for item in items {
            self.push_back(item);
        }
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The next item; the buffer is given back when there is none.
    pub(crate) fn pop_front(&mut self) -> Option<T> {
        let item = self.0.pop_front();
        if item.is_none() {
            crate::spare::give_back(&mut self.0, T::spare(), KEEP);
        }
        item
    }

    /// The room this queue holds (for tests of the memory an idle session keeps).
    #[cfg(test)]
    pub(crate) fn capacity(&self) -> usize {
        self.0.capacity()
    }
}

impl<T: Spare + std::fmt::Debug> std::fmt::Debug for Queue<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.0.iter()).finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::packet::{Frame, Message};
    use crate::session::{Event, Transmit};

    fn frame(s: &str) -> Transmit {
        Transmit::WebSocket(Frame::Text(s.into()))
    }

    #[test]
    fn a_queue_keeps_its_order_and_lends_its_buffer_once_drained() {
        let mut a = Queue::new();
        a.push_back(frame("1"));
        a.extend([frame("2"), frame("3")]);
        let room = a.capacity();
        assert!(room > 0);
        assert_eq!(a.pop_front(), Some(frame("1")));
        assert_eq!(a.pop_front(), Some(frame("2")));
        assert_eq!(a.pop_front(), Some(frame("3")));
        assert_eq!(a.capacity(), room, "the buffer stays while the queue is being drained");
        assert_eq!(a.pop_front(), None);
        assert_eq!(a.capacity(), 0, "a drained queue keeps no buffer");
        let mut b = Queue::new();
        b.push_back(frame("4"));
        assert_eq!(b.capacity(), room, "the next queue to need room takes the spare");
        assert_eq!(b.pop_front(), Some(frame("4")));
        // Each item type has its own spare.
        let mut events = Queue::new();
        events.push_back(Event::Message(Message::Text("x".into())));
        assert_eq!(events.pop_front(), Some(Event::Message(Message::Text("x".into()))));
        assert_eq!(events.pop_front(), None);
        assert_eq!(events.capacity(), 0);
    }

    #[test]
    fn a_buffer_a_burst_made_large_is_not_kept() {
        let mut a = Queue::new();
        a.extend((0..KEEP * 2).map(|i| frame(&i.to_string())));
        while a.pop_front().is_some() {}
        assert_eq!(a.capacity(), 0);
        let mut b = Queue::new();
        b.push_back(frame("small"));
        assert!(b.capacity() <= KEEP, "the large buffer was not lent: {}", b.capacity());
    }
}
