//! A session's mailbox: the commands other tasks send to the session task (frames to send, long-poll
//! requests, upgrades, close). A mutex-guarded queue with one waker, because only the session task ever
//! receives: it takes the whole queue at once (one lock for any number of commands) into a second queue it
//! keeps, so neither queue allocates per command once warm, and an idle session holds no buffer at all.

use std::collections::VecDeque;
use std::sync::Mutex;
use std::task::{Context, Poll};

use futures_util::task::AtomicWaker;

use crate::driver::Command;

/// Queues larger than this are dropped rather than kept once drained, so a burst does not pin memory.
const KEEP_CAPACITY: usize = 64;

pub(crate) struct Mailbox {
    state: Mutex<State>,
    /// The session task's waker: new commands and an overflow wake it.
    waker: AtomicWaker,
    /// The most data commands (frames) that may wait; control commands are not bounded here (each comes
    /// from an HTTP request or a close, which are bounded elsewhere).
    capacity: usize,
}

#[derive(Default)]
struct State {
    queue: VecDeque<Command>,
    /// Data commands in `queue`.
    data: usize,
    closed: bool,
}

/// Why a data command was not queued (it is dropped).
pub(crate) enum TrySendError {
    Full,
    Closed,
}

impl Mailbox {
    pub(crate) fn new(capacity: usize) -> Self {
        Mailbox { state: Mutex::default(), waker: AtomicWaker::new(), capacity: capacity.max(1) }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        // A panic while holding this lock cannot leave the queue half-updated (push/swap only).
        self.state.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Queues a data command (frames), unless `capacity` of them already wait.
    pub(crate) fn try_send(&self, command: Command) -> Result<(), TrySendError> {
        {
            let mut state = self.lock();
            if state.closed {
                return Err(TrySendError::Closed);
            }
            if state.data >= self.capacity {
                return Err(TrySendError::Full);
            }
            state.data += 1;
            state.queue.push_back(command);
        }
        self.waker.wake();
        Ok(())
    }

    /// Queues a control command (a request, an upgrade, a close); fails only once the session has ended.
    pub(crate) fn send_control(&self, command: Command) -> Result<(), Command> {
        {
            let mut state = self.lock();
            if state.closed {
                return Err(command);
            }
            state.queue.push_back(command);
        }
        self.waker.wake();
        Ok(())
    }

    /// Wakes the session task without a command (an overflow flag was set).
    pub(crate) fn wake(&self) {
        self.waker.wake();
    }

    /// Whether the session task has stopped receiving.
    pub(crate) fn is_closed(&self) -> bool {
        self.lock().closed
    }

    /// Forgets the session task's waker while the task runs: sends until it waits again wake nobody (it
    /// takes the queue before it waits, see [`Mailbox::poll_take`]).
    pub(crate) fn unregister(&self) {
        drop(self.waker.take());
    }

    /// Registers the session task's waker, for a wait on something this mailbox wakes for.
    pub(crate) fn register(&self, cx: &Context<'_>) {
        self.waker.register(cx.waker());
    }

    /// Moves every waiting command into `into` (which must be empty); whether there was any.
    pub(crate) fn take_into(&self, into: &mut VecDeque<Command>) -> bool {
        debug_assert!(into.is_empty());
        let mut state = self.lock();
        if state.queue.is_empty() {
            return false;
        }
        std::mem::swap(&mut state.queue, into);
        state.data = 0;
        if state.queue.capacity() > KEEP_CAPACITY {
            state.queue = VecDeque::new();
        }
        true
    }

    /// Waits until at least one command is waiting and moves them all into `into`.
    pub(crate) fn poll_take(&self, cx: &Context<'_>, into: &mut VecDeque<Command>) -> Poll<()> {
        if self.take_into(into) {
            return Poll::Ready(());
        }
        self.waker.register(cx.waker());
        // A command queued between the first look and the registration has woken no one: look again.
        if self.take_into(into) { Poll::Ready(()) } else { Poll::Pending }
    }

    /// Stops receiving and returns what was still waiting.
    pub(crate) fn close(&self) -> VecDeque<Command> {
        let mut state = self.lock();
        state.closed = true;
        state.data = 0;
        std::mem::take(&mut state.queue)
    }
}

/// Drops a drained queue's buffer when a burst made it large.
pub(crate) fn shrink(queue: &mut VecDeque<Command>) {
    if queue.capacity() > KEEP_CAPACITY {
        *queue = VecDeque::new();
    }
}

#[cfg(test)]
mod tests {
    use std::task::Waker;

    use bytes::Bytes;
    use engineio_proto::Frame;

    use super::*;

    fn data() -> Command {
        Command::Send(Frame::Binary(Bytes::from_static(b"x")))
    }

    #[test]
    fn data_is_bounded_control_is_not() {
        let mb = Mailbox::new(2);
        assert!(mb.try_send(data()).is_ok());
        assert!(mb.try_send(data()).is_ok());
        assert!(matches!(mb.try_send(data()), Err(TrySendError::Full)));
        // A close still gets through a full mailbox.
        assert!(mb.send_control(Command::Close).is_ok());
        let mut inbox = VecDeque::new();
        assert!(mb.take_into(&mut inbox));
        assert_eq!(inbox.len(), 3);
        assert!(matches!(inbox.back(), Some(Command::Close)));
        // Taking the queue frees the bound.
        inbox.clear();
        assert!(mb.try_send(data()).is_ok());
        assert!(!mb.is_closed());
    }

    #[test]
    fn take_waits_then_wakes_on_a_send() {
        let mb = Mailbox::new(8);
        let mut inbox = VecDeque::new();
        let cx = Context::from_waker(Waker::noop());
        assert!(mb.poll_take(&cx, &mut inbox).is_pending());
        assert!(inbox.is_empty());
        assert!(mb.try_send(data()).is_ok());
        assert!(mb.poll_take(&cx, &mut inbox).is_ready());
        assert_eq!(inbox.len(), 1);
        assert!(!mb.take_into(&mut VecDeque::new()));
    }

    #[test]
    fn close_returns_what_waited_and_refuses_more() {
        let mb = Mailbox::new(8);
        assert!(mb.try_send(data()).is_ok());
        assert!(mb.send_control(Command::Close).is_ok());
        let left = mb.close();
        assert_eq!(left.len(), 2);
        assert!(mb.is_closed());
        assert!(matches!(mb.try_send(data()), Err(TrySendError::Closed)));
        assert!(mb.send_control(Command::Close).is_err());
    }

    #[test]
    fn a_burst_does_not_pin_a_large_queue() {
        let mb = Mailbox::new(1000);
        for _ in 0..500 {
            assert!(mb.try_send(data()).is_ok());
        }
        let mut inbox = VecDeque::new();
        assert!(mb.take_into(&mut inbox));
        assert_eq!(inbox.len(), 500);
        inbox.clear();
        shrink(&mut inbox);
        assert_eq!(inbox.capacity(), 0);
        assert!(mb.try_send(data()).is_ok());
        let mut second = VecDeque::new();
        assert!(mb.take_into(&mut second));
        assert!(second.capacity() <= KEEP_CAPACITY);
    }
}
