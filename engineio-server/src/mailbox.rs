//! A session's mailbox: the commands other tasks send to the session task (frames to send, long-poll
//! requests, upgrades, close). A mutex-guarded queue with one waker, because only the session task ever
//! receives: it takes the whole queue at once (one lock for any number of commands) into a second queue it
//! keeps. A queue holds a buffer only while commands wait in it: drained, it hands the buffer to a spare
//! kept per thread, which the next queue to need room on that thread takes, so a busy thread does not
//! allocate per command and an idle session holds no buffer at all.
//!
//! While the session task calls its handler ([`Mailbox::deliver_inline`]), what the handler sends to this
//! same session from that thread (a reply, most often) goes straight into the task's own queue, through a
//! thread-local slot: no lock, no wake-up, and in order with everything else the handler sends.

use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll};

use futures_util::task::AtomicWaker;

use bytes::Bytes;
use engineio_proto::{Error, Frame, ProtocolError};
use hyper::upgrade::Upgraded;
use hyper_util::rt::TokioIo;
use tokio::sync::oneshot;

use crate::ws::WebSocket;

/// Queues larger than this are dropped rather than kept once drained, so a burst does not pin memory.
const KEEP_CAPACITY: usize = 64;

/// The WebSocket of an upgraded connection.
pub(crate) type WsStream = WebSocket<TokioIo<Upgraded>>;

/// The answer to a long-poll GET.
#[derive(Debug)]
pub(crate) struct PollBody {
    /// The payload.
    pub(crate) body: Bytes,
    /// Whether it is a v3 binary payload (`application/octet-stream`).
    pub(crate) binary: bool,
}

/// Why a polling request could not be served by its session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum PollError {
    /// Overlapping GET or POST: 400 with an empty body (the session closed).
    Overlap,
    /// The session now runs over another transport: code 3.
    TransportMismatch,
    /// The session closed: code 1.
    Closed,
}

impl From<Error> for PollError {
    fn from(e: Error) -> Self {
        match e {
            Error::Protocol(ProtocolError::DuplicatePoll | ProtocolError::DuplicatePost) => PollError::Overlap,
            Error::Protocol(ProtocolError::TransportMismatch) => PollError::TransportMismatch,
            _ => PollError::Closed,
        }
    }
}

impl Command {
    /// The bytes of frames this command carries (counted against `max_queued_bytes`).
    pub(crate) fn frame_bytes(&self) -> usize {
        match self {
            Command::Send(f) => f.len(),
            Command::SendMany(fs) | Command::SendVolatile(fs) => fs.iter().map(Frame::len).sum(),
            _ => 0,
        }
    }
}

/// What the session task is asked to do: by the application (send, close) or by the HTTP side (a
/// long-poll, a POST, an upgrade).
pub(crate) enum Command {
    Send(Frame),
    SendMany(Vec<Frame>),
    SendVolatile(Vec<Frame>),
    Close,
    CloseNotify(oneshot::Sender<()>),
    Poll(oneshot::Sender<Result<PollBody, PollError>>),
    PostStart(oneshot::Sender<Result<(), PollError>>),
    /// A POST's body (`None`: it could not be read), whether it is a v3 binary payload, and its request.
    PostBody(Option<Bytes>, bool, std::sync::Arc<http::request::Parts>, oneshot::Sender<Result<(), PollError>>),
    /// `PostStart` and `PostBody` at once, for a POST whose body had all arrived with its head (the common
    /// case): one trip to the session task instead of two.
    Post(Bytes, bool, std::sync::Arc<http::request::Parts>, oneshot::Sender<Result<(), PollError>>),
    /// A WebSocket asking to take over the session.
    Upgrade {
        /// The upgraded connection.
        ws: Box<WsStream>,
        /// The client wants binary as base64 text frames (`b64`, the client's `forceBase64`).
        base64: bool,
    },
}

/// The mailbox whose session task is calling its handler on this thread (by address; 0 for none) and the
/// task's queue, lent for that call.
struct Inline {
    mailbox: usize,
    queue: VecDeque<Command>,
    data: usize,
    bytes: usize,
}

thread_local! {
    static INLINE: RefCell<Inline> = const { RefCell::new(Inline { mailbox: 0, queue: VecDeque::new(), data: 0, bytes: 0 }) };
    /// `INLINE`'s mailbox alone, in a slot with nothing to drop: every send looks at it (a broadcast, once per
    /// recipient), and reading it is one load, where `INLINE` needs its lazy registration checked first.
    static INLINE_KEY: Cell<usize> = const { Cell::new(0) };
}

/// Puts the thread-local slot back as it was when a handler call ends, even by a panic (a stale slot would
/// swallow another mailbox's commands if one were later allocated at the same address).
struct InlineGuard<'a> {
    inbox: &'a mut VecDeque<Command>,
    previous: Option<Inline>,
}

impl Drop for InlineGuard<'_> {
    fn drop(&mut self) {
        if let Some(previous) = self.previous.take() {
            INLINE_KEY.set(previous.mailbox);
            let mine = INLINE.with(|slot| std::mem::replace(&mut *slot.borrow_mut(), previous));
            *self.inbox = mine.queue;
        }
    }
}

pub(crate) struct Mailbox {
    state: Mutex<State>,
    /// Whether `state.queue` may hold something: set (under the lock) by every send, cleared by a take, so
    /// that looking at an empty mailbox takes no lock.
    pending: AtomicBool,
    /// The session task's waker: new commands and an overflow wake it.
    waker: AtomicWaker,
    /// The most data commands (frames) that may wait; control commands are not bounded here (each comes
    /// from an HTTP request or a close, which are bounded elsewhere).
    capacity: usize,
    /// The most bytes of frames that may wait (`max_queued_bytes`).
    max_bytes: usize,
}

#[derive(Default)]
struct State {
    queue: VecDeque<Command>,
    /// Data commands in `queue`.
    data: usize,
    /// Bytes of the frames in `queue`: counted here, under the lock every send takes anyway, rather than in
    /// a counter of their own (two atomic operations more per frame, one by the sender and one by the
    /// session task, on every recipient of a broadcast).
    bytes: usize,
    closed: bool,
}

/// Why a data command was not queued (it is dropped).
pub(crate) enum TrySendError {
    Full,
    Closed,
}

impl Mailbox {
    /// A mailbox for at most `capacity` data commands and `max_bytes` bytes of frames.
    pub(crate) fn new(capacity: usize, max_bytes: usize) -> Self {
        Mailbox {
            state: Mutex::default(),
            pending: AtomicBool::new(false),
            waker: AtomicWaker::new(),
            capacity: capacity.max(1),
            max_bytes,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        // A panic while holding this lock cannot leave the queue half-updated (push/swap only).
        self.state.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Queues a data command (frames), unless `capacity` of them, or `max_bytes` with its own, already wait.
    pub(crate) fn try_send(&self, command: Command) -> Result<(), TrySendError> {
        let bytes = command.frame_bytes();
        if self.inline_here() {
            return self.send_inline(command, Some(bytes));
        }
        let first = {
            let mut state = self.lock();
            if state.closed {
                return Err(TrySendError::Closed);
            }
            if state.data >= self.capacity || state.bytes.saturating_add(bytes) > self.max_bytes {
                return Err(TrySendError::Full);
            }
            state.data += 1;
            state.bytes = state.bytes.saturating_add(bytes);
            self.push_locked(&mut state, command)
        };
        if first {
            self.waker.wake();
        }
        Ok(())
    }

    /// Queues a control command (a request, an upgrade, a close); fails only once the session has ended.
    pub(crate) fn send_control(&self, command: Command) -> Result<(), Command> {
        if self.inline_here() {
            let _ = self.send_inline(command, None);
            return Ok(());
        }
        let first = {
            let mut state = self.lock();
            if state.closed {
                return Err(command);
            }
            self.push_locked(&mut state, command)
        };
        if first {
            self.waker.wake();
        }
        Ok(())
    }

    /// Queues `command` under the lock; whether the queue was empty. Only the send that finds it empty
    /// wakes the session task: the task takes the whole queue at once, so a command queued behind others
    /// is taken with the first of them, whose sender wakes the task once this lock is released. (The
    /// waker would not wake the task twice anyway; what this saves is the wake's two atomic operations on
    /// every frame after the first, on each recipient of a burst of broadcasts.)
    fn push_locked(&self, state: &mut State, command: Command) -> bool {
        let first = state.queue.is_empty();
        push(&mut state.queue, command);
        if first {
            self.pending.store(true, Ordering::Release);
        }
        first
    }

    /// Wakes the session task without a command (an overflow flag was set).
    fn key(&self) -> usize {
        std::ptr::from_ref(self) as usize
    }

    /// Whether this mailbox's session task is calling its handler on this thread right now. Asked before a
    /// command is handed anywhere: a broadcast asks it of every recipient, and a command passed down and
    /// given back costs copies of it on the way.
    #[inline]
    fn inline_here(&self) -> bool {
        INLINE_KEY.get() == self.key()
    }

    /// Queues `command` in the session task's own queue, which it lent while calling its handler on this
    /// thread ([`Mailbox::inline_here`]); `data`: a data command of that many bytes, counted against the
    /// bounds.
    fn send_inline(&self, command: Command, data: Option<usize>) -> Result<(), TrySendError> {
        let full = INLINE.with(|slot| {
            let mut slot = slot.borrow_mut();
            if let Some(bytes) = data {
                if slot.data >= self.capacity || slot.bytes.saturating_add(bytes) > self.max_bytes {
                    return Some(command);
                }
                slot.data += 1;
                slot.bytes = slot.bytes.saturating_add(bytes);
            }
            push(&mut slot.queue, command);
            None
        });
        // A refused command is dropped here, outside the slot's borrow.
        if full.is_some() { Err(TrySendError::Full) } else { Ok(()) }
    }

    /// Calls `f` (the session's handler) with this mailbox's sends from this thread going straight to
    /// the back of `inbox`.
    pub(crate) fn deliver_inline<R>(&self, inbox: &mut VecDeque<Command>, f: impl FnOnce() -> R) -> R {
        let lent = Inline { mailbox: self.key(), queue: std::mem::take(inbox), data: 0, bytes: 0 };
        let previous = INLINE.with(|slot| std::mem::replace(&mut *slot.borrow_mut(), lent));
        INLINE_KEY.set(self.key());
        let _guard = InlineGuard { inbox, previous: Some(previous) };
        f()
    }

    pub(crate) fn wake(&self) {
        self.waker.wake();
    }

    /// Whether the session task has stopped receiving.
    pub(crate) fn is_closed(&self) -> bool {
        self.lock().closed
    }

    /// Registers the session task's waker, for a wait on something this mailbox wakes for.
    pub(crate) fn register(&self, cx: &Context<'_>) {
        self.waker.register(cx.waker());
    }

    /// Moves every waiting command into `into` (which must be empty); whether there was any.
    /// Moves every queued command to the back of `into`; whether there was any.
    pub(crate) fn take_into(&self, into: &mut VecDeque<Command>) -> bool {
        if !self.pending.load(Ordering::Acquire) {
            return false;
        }
        let mut state = self.lock();
        self.pending.store(false, Ordering::Release);
        if state.queue.is_empty() {
            return false;
        }
        if into.is_empty() {
            std::mem::swap(&mut state.queue, into);
        } else {
            into.extend(state.queue.drain(..));
        }
        state.data = 0;
        state.bytes = 0;
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
        state.bytes = 0;
        std::mem::take(&mut state.queue)
    }
}

thread_local! {
    /// One drained queue's buffer per thread, lent to the next queue that needs room: a session holds a
    /// queue buffer only while commands wait in it, so idle sessions hold none, and a busy thread does not
    /// allocate per command either (its sessions take turns with the same buffer).
    static SPARE: RefCell<VecDeque<Command>> = const { RefCell::new(VecDeque::new()) };
}

/// Queues `command`, taking this thread's spare buffer if `queue` has no room of its own.
fn push(queue: &mut VecDeque<Command>, command: Command) {
    engineio_proto::spare::take(queue, &SPARE);
    queue.push_back(command);
}

/// Gives a drained queue's buffer back: to this thread's spare if that has none, else to the allocator
/// (as is a buffer a burst made large).
pub(crate) fn recycle(queue: &mut VecDeque<Command>) {
    debug_assert!(queue.is_empty());
    engineio_proto::spare::give_back(queue, &SPARE, KEEP_CAPACITY);
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
        let mb = Mailbox::new(2, usize::MAX);
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
    fn bytes_are_bounded_too_and_freed_by_a_take() {
        let frame = |n: usize| Command::Send(Frame::Binary(Bytes::from(vec![0u8; n])));
        let mb = Mailbox::new(100, 10);
        assert!(mb.try_send(frame(6)).is_ok());
        assert!(matches!(mb.try_send(frame(5)), Err(TrySendError::Full)));
        assert!(mb.try_send(frame(4)).is_ok(), "up to the bound exactly");
        assert!(matches!(mb.try_send(frame(1)), Err(TrySendError::Full)));
        // Control commands carry no frames and are not refused.
        assert!(mb.send_control(Command::Close).is_ok());
        let mut inbox = VecDeque::new();
        assert!(mb.take_into(&mut inbox));
        assert_eq!(inbox.len(), 3);
        assert!(mb.try_send(frame(10)).is_ok(), "the take freed the bytes");
        // A handler's sends to its own session count against the same bound.
        let mut own = VecDeque::new();
        let other = Mailbox::new(100, 10);
        other.deliver_inline(&mut own, || {
            assert!(other.try_send(frame(8)).is_ok());
            assert!(matches!(other.try_send(frame(3)), Err(TrySendError::Full)));
            assert!(other.try_send(frame(2)).is_ok());
        });
        assert_eq!(own.len(), 2);
        // A closed mailbox forgets its count.
        drop(mb.close());
        assert!(matches!(mb.try_send(frame(1)), Err(TrySendError::Closed)));
    }

    #[test]
    fn a_drained_queue_lends_its_buffer_to_the_next_one_on_this_thread() {
        let mut first = VecDeque::new();
        push(&mut first, data());
        let room = first.capacity();
        assert!(room > 0);
        first.clear();
        recycle(&mut first);
        assert_eq!(first.capacity(), 0, "a drained queue keeps no buffer");
        let mut second = VecDeque::new();
        push(&mut second, data());
        assert_eq!(second.capacity(), room, "the spare buffer is reused");
        second.clear();
        recycle(&mut second);
        // A buffer a burst made large goes back to the allocator.
        let mut big = VecDeque::with_capacity(KEEP_CAPACITY * 2);
        recycle(&mut big);
        assert_eq!(big.capacity(), 0);
        let mut third = VecDeque::new();
        push(&mut third, data());
        assert_eq!(third.capacity(), room, "the spare is still the small one");
    }

    #[test]
    fn take_waits_then_wakes_on_a_send() {
        let mb = Mailbox::new(8, usize::MAX);
        let mut inbox = VecDeque::new();
        let cx = Context::from_waker(Waker::noop());
        assert!(mb.poll_take(&cx, &mut inbox).is_pending());
        assert!(inbox.is_empty());
        assert!(mb.try_send(data()).is_ok());
        assert!(mb.poll_take(&cx, &mut inbox).is_ready());
        assert_eq!(inbox.len(), 1);
        assert!(!mb.take_into(&mut VecDeque::new()));
    }

    /// A waker that counts its wake-ups.
    struct Counter(std::sync::atomic::AtomicUsize);

    impl std::task::Wake for Counter {
        fn wake(self: std::sync::Arc<Self>) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }

    #[test]
    fn every_command_after_a_take_wakes_the_waiting_task() {
        let mb = Mailbox::new(64, usize::MAX);
        let counter = std::sync::Arc::new(Counter(std::sync::atomic::AtomicUsize::new(0)));
        let waker = Waker::from(counter.clone());
        let cx = Context::from_waker(&waker);
        let woken = || counter.0.load(Ordering::SeqCst);
        let mut inbox = VecDeque::new();
        for round in 1..=3 {
            assert!(mb.poll_take(&cx, &mut inbox).is_pending());
            assert!(mb.try_send(data()).is_ok());
            assert_eq!(woken(), round, "the first command wakes the waiting task");
            for _ in 0..10 {
                assert!(mb.try_send(data()).is_ok());
            }
            assert!(mb.send_control(Command::Close).is_ok());
            assert_eq!(woken(), round, "commands queued behind it do not wake it again");
            assert!(mb.poll_take(&cx, &mut inbox).is_ready());
            assert_eq!(inbox.len(), 12);
            inbox.clear();
        }
        // A control command to an empty queue wakes it too, and so does one queued after the task took
        // everything without waiting (its waker still registered from an earlier wait).
        assert!(mb.poll_take(&cx, &mut inbox).is_pending());
        assert!(mb.send_control(Command::Close).is_ok());
        assert_eq!(woken(), 4);
        assert!(mb.take_into(&mut inbox));
        mb.register(&cx);
        assert!(mb.try_send(data()).is_ok());
        assert_eq!(woken(), 5);
    }

    #[test]
    fn close_returns_what_waited_and_refuses_more() {
        let mb = Mailbox::new(8, usize::MAX);
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
        let mb = Mailbox::new(1000, usize::MAX);
        for _ in 0..500 {
            assert!(mb.try_send(data()).is_ok());
        }
        let mut inbox = VecDeque::new();
        assert!(mb.take_into(&mut inbox));
        assert_eq!(inbox.len(), 500);
        inbox.clear();
        recycle(&mut inbox);
        assert_eq!(inbox.capacity(), 0);
        assert!(mb.try_send(data()).is_ok());
        let mut second = VecDeque::new();
        assert!(mb.take_into(&mut second));
        assert!(second.capacity() <= KEEP_CAPACITY);
    }

    #[test]
    fn sends_during_a_handler_call_go_straight_to_the_inbox_in_order() {
        let mb = Mailbox::new(2, usize::MAX);
        let other = Mailbox::new(8, usize::MAX);
        let mut inbox = VecDeque::new();
        mb.deliver_inline(&mut inbox, || {
            assert!(mb.try_send(data()).is_ok());
            assert!(mb.send_control(Command::Close).is_ok());
            assert!(mb.try_send(data()).is_ok());
            // The same bound as the mailbox's own.
            assert!(matches!(mb.try_send(data()), Err(TrySendError::Full)));
            // Another session's mailbox is not this call's.
            assert!(other.try_send(data()).is_ok());
        });
        assert_eq!(inbox.len(), 3);
        assert!(matches!(inbox[1], Command::Close));
        // Nothing went through the mailbox itself; the other one got its command.
        assert!(!mb.take_into(&mut VecDeque::new()));
        assert!(other.take_into(&mut VecDeque::new()));
        // After the call, sends take the mailbox again, and go after what the inbox holds.
        assert!(mb.try_send(data()).is_ok());
        assert!(mb.take_into(&mut inbox));
        assert_eq!(inbox.len(), 4);
    }

    #[test]
    fn a_panicking_handler_leaves_no_inline_slot_behind() {
        let mb = Mailbox::new(8, usize::MAX);
        let mut inbox = VecDeque::new();
        let caught = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            mb.deliver_inline(&mut inbox, || {
                assert!(mb.try_send(data()).is_ok());
                panic!("handler failed");
            })
        }));
        assert!(caught.is_err());
        // What was sent before the panic is in the inbox; later sends use the mailbox.
        assert_eq!(inbox.len(), 1);
        assert!(mb.try_send(data()).is_ok());
        assert!(mb.take_into(&mut VecDeque::new()));
    }

    #[test]
    fn nested_handler_calls_restore_the_outer_one() {
        let outer = Mailbox::new(8, usize::MAX);
        let inner = Mailbox::new(8, usize::MAX);
        let (mut outer_inbox, mut inner_inbox) = (VecDeque::new(), VecDeque::new());
        outer.deliver_inline(&mut outer_inbox, || {
            inner.deliver_inline(&mut inner_inbox, || {
                assert!(inner.try_send(data()).is_ok());
                assert!(outer.try_send(data()).is_ok());
            });
            assert!(outer.try_send(data()).is_ok());
        });
        assert_eq!(inner_inbox.len(), 1);
        assert_eq!(outer_inbox.len(), 1);
        // The outer send made while the inner call ran went through the outer mailbox.
        assert!(outer.take_into(&mut outer_inbox));
        assert_eq!(outer_inbox.len(), 2);
    }
}
