//! Buffers lent per thread: a drained buffer hands its room to a spare kept by the thread (one per kind of
//! buffer, a `thread_local!` of its user's), and the next buffer of that kind on that thread that needs room
//! takes it. Sessions driven from one thread take turns with the same buffer, so a busy thread does not
//! allocate per message, and an idle session (most of a large server's) holds no buffer at all.
//!
//! The session's queues use it ([`crate::session::Session`]), and so do the runtimes' own buffers on the
//! same data path (in `engineio-server`: the mailbox and the WebSocket's write buffer). A thread-local is
//! plain memory, no I/O: the sans-IO session stays usable from any runtime or none.

use std::cell::RefCell;
use std::collections::VecDeque;
use std::thread::LocalKey;

/// A buffer that can be lent: its room, and a way to empty it keeping that room.
pub trait Buffer: Default + 'static {
    /// The room it holds (0: nothing allocated).
    fn capacity(&self) -> usize;
    /// Empties it, keeping its room.
    fn clear(&mut self);
}

impl<T: 'static> Buffer for VecDeque<T> {
    fn capacity(&self) -> usize {
        VecDeque::capacity(self)
    }
    fn clear(&mut self) {
        VecDeque::clear(self);
    }
}

impl<T: 'static> Buffer for Vec<T> {
    fn capacity(&self) -> usize {
        Vec::capacity(self)
    }
    fn clear(&mut self) {
        Vec::clear(self);
    }
}

/// The spare of a kind of buffer: one per thread.
pub type SpareKey<B> = LocalKey<RefCell<B>>;

/// Gives `buffer` this thread's spare room when it has none of its own (it then holds the spare, and the
/// spare its empty self).
pub fn take<B: Buffer>(buffer: &mut B, spare: &'static SpareKey<B>) {
    if buffer.capacity() == 0 {
        let _ = spare.try_with(|spare| {
            if let Ok(mut spare) = spare.try_borrow_mut() {
                std::mem::swap(buffer, &mut *spare);
            }
        });
    }
}

/// Gives `buffer`'s room back, emptied: to this thread's spare if that has none and the room is at most
/// `keep` (a buffer a burst made large does not pin memory), else to the allocator. `buffer` holds nothing
/// afterwards.
pub fn give_back<B: Buffer>(buffer: &mut B, spare: &'static SpareKey<B>, keep: usize) {
    let mut room = std::mem::take(buffer);
    if room.capacity() == 0 || room.capacity() > keep {
        return;
    }
    room.clear();
    let _ = spare.try_with(|spare| {
        if let Ok(mut spare) = spare.try_borrow_mut()
            && spare.capacity() == 0
        {
            *spare = room;
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    thread_local! {
        static SPARE: RefCell<Vec<u8>> = const { RefCell::new(Vec::new()) };
    }

    #[test]
    fn a_drained_buffer_lends_its_room_to_the_next_one_on_this_thread() {
        let mut a = Vec::new();
        take(&mut a, &SPARE);
        assert_eq!(a.capacity(), 0, "no spare yet: nothing to take");
        a.extend_from_slice(b"hello");
        let room = a.capacity();
        give_back(&mut a, &SPARE, 1024);
        assert_eq!(a.capacity(), 0, "a buffer given back holds nothing");
        let mut b = Vec::new();
        take(&mut b, &SPARE);
        assert_eq!((b.capacity(), b.len()), (room, 0), "the next one takes the room, emptied");
        let mut c = vec![1u8];
        take(&mut c, &SPARE);
        assert_eq!(c, [1], "a buffer with room of its own keeps it");
        give_back(&mut b, &SPARE, 1024);
        // A full spare is not replaced; a large buffer is not kept.
        give_back(&mut c, &SPARE, 1024);
        let mut big = Vec::with_capacity(4096);
        big.push(0u8);
        give_back(&mut big, &SPARE, 1024);
        let mut d = Vec::new();
        take(&mut d, &SPARE);
        assert_eq!(d.capacity(), room, "still the first room");
        // Other threads have spares of their own.
        std::thread::spawn(|| {
            let mut e: Vec<u8> = Vec::new();
            take(&mut e, &SPARE);
            assert_eq!(e.capacity(), 0);
        })
        .join()
        .unwrap();
    }
}
