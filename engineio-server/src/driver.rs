//! One tokio task per session: it owns the [`Session`] state machine and the session's WebSockets, takes
//! commands (long-poll requests, POST bodies, frames to send, close) from a bounded mailbox, and carries out
//! what the state machine asks for. Nothing else touches a session, so there are no locks on the data path.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use engineio_proto::{Channel, CloseReason, Event, Frame, Session, Transmit};
use std::collections::VecDeque;
use std::pin::Pin;
use std::task::Poll;

use engineio_proto::websocket::WsMessage;
use tokio::sync::oneshot;

use crate::mailbox::{Command, PollBody, PollError, WsStream};
use crate::sessions::Sessions;
use crate::socket::{Connection, Socket};
use crate::ws::ReadError;

/// Queued WebSocket bytes past which the driver writes them before queuing more.
const WS_FLUSH_AT: usize = 64 * 1024;

/// How long closing a WebSocket may take before the connection is simply dropped.
const WS_CLOSE_TIMEOUT: Duration = Duration::from_secs(2);

pub(crate) struct Driver {
    sessions: Arc<Sessions>,
    session: Session,
    socket: Socket,
    /// Commands taken from the mailbox, being carried out.
    inbox: VecDeque<Command>,
    ws: Option<WsStream>,
    /// An upgrade probe is rare: boxed, so an idle session does not carry its room.
    probe: Option<Box<WsStream>>,
    /// The session's timer (made on first use, then reset only when the next deadline moves) and whether
    /// it is set: the deadline is the timer's own, not kept twice.
    armed: bool,
    timer: Option<Pin<Box<tokio::time::Sleep>>>,
    pending_poll: Option<oneshot::Sender<Result<PollBody, PollError>>>,
    /// Who waits for the session to end (`close_and_wait`): rare, so boxed, which keeps an idle
    /// session's driver in a smaller allocation class.
    #[allow(clippy::box_collection, reason = "one pointer in the driver instead of a vector's three words")]
    close_waiters: Option<Box<Vec<oneshot::Sender<()>>>>,
    connection: Option<Box<dyn Connection>>,
    /// Set once `finish` ran: the session left the table and its mailbox is closed.
    finished: bool,
    /// The time of this wake-up: read once when the task wakes, given to every input it carries out.
    now: Instant,
}

enum Input {
    Overflow,
    Commands,
    Ws(Channel, Option<Result<WsMessage, ReadError>>),
    Timeout,
    PollAborted,
}

impl Driver {
    pub(crate) fn new(
        sessions: Arc<Sessions>,
        session: Session,
        socket: Socket,
        ws: Option<WsStream>,
        pending_poll: Option<oneshot::Sender<Result<PollBody, PollError>>>,
    ) -> Self {
        Driver {
            sessions,
            session,
            socket,
            inbox: VecDeque::new(),
            ws,
            probe: None,
            armed: false,
            timer: None,
            pending_poll,
            close_waiters: None,
            connection: None,
            finished: false,
            now: crate::clock::now(),
        }
    }

    /// Runs the session to its end. The driver is boxed: an `async fn` keeps its by-value arguments twice
    /// in its state, and this future lives as long as the session.
    /// Spawns the session's task, in the session's span when a subscriber wants it; without one the task
    /// carries no span wrapper.
    pub(crate) fn spawn(self: Box<Self>, transport: engineio_proto::TransportKind) {
        let remote = self.socket.request_extensions().get::<crate::RemoteAddr>().map(|a| a.0);
        let span = crate::telemetry::session_span(self.socket.sid(), transport, remote);
        if span.is_disabled() {
            tokio::spawn(self.run());
        } else {
            tokio::spawn(tracing::Instrument::instrument(self.run(), span));
        }
    }

    pub(crate) async fn run(mut self: Box<Self>) {
        let transport = self.session.transport();
        let m = &crate::telemetry::METRICS;
        m.handshakes.increment(1);
        m.sessions(transport).increment(1.0);
        if let Some(started) = self.socket.request_extensions().get::<crate::telemetry::HandshakeStarted>() {
            m.handshake_seconds.record(started.0.elapsed().as_secs_f64());
        }
        let remote = self.socket.request_extensions().get::<crate::RemoteAddr>().map(|a| a.0);
        tracing::info!(
            target: "engineio_server::session",
            sid = self.socket.sid(),
            transport = transport.as_str(),
            remote = remote.map(tracing::field::display),
            "session opened"
        );
        self.flush().await;
        match contain(|| self.sessions.handler.on_open(&self.socket)) {
            Some(c) => self.connection = Some(c),
            None => self.session.close(self.now, CloseReason::ForcedClose),
        }
        self.flush().await;
        while !self.session.is_closed() {
            let input = self.next_input().await;
            // One clock read per wake-up, for every input carried out until the task sleeps again.
            self.now = crate::clock::now();
            let now = self.now;
            match input {
                Input::Commands => self.run_inbox(),
                Input::Ws(channel, msg) => self.ws_input(channel, msg),
                Input::Timeout => {
                    self.session.handle_timeout(now);
                    if let Some(c) = &mut self.connection
                        && c.deadline().is_some_and(|d| d <= now)
                        && contain(|| c.on_deadline(now)).is_none()
                    {
                        self.session.close(now, CloseReason::ForcedClose);
                    }
                }
                Input::Overflow => self.session.close(now, CloseReason::BufferFull),
                Input::PollAborted => {
                    // The driver holds at most one GET: the session's pending one, if it still is.
                    self.pending_poll = None;
                    if let Some(poll) = self.session.pending_poll() {
                        self.session.handle_poll_aborted(now, poll);
                    }
                }
            }
            self.flush().await;
        }
        // Boxed: the rare last steps should not enlarge the future every idle session keeps.
        Box::pin(self.finish()).await;
    }

    /// Carries out the commands taken from the mailbox.
    fn run_inbox(&mut self) {
        while let Some(cmd) = self.inbox.pop_front() {
            self.command(cmd);
        }
        crate::mailbox::recycle(&mut self.inbox);
    }

    /// Points the timer at the next deadline (the session's or its connection's), if it moved.
    fn arm(&mut self) {
        let deadline = match (self.session.poll_timeout(), self.connection.as_ref().and_then(|c| c.deadline())) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        let Some(d) = deadline.map(tokio::time::Instant::from_std) else {
            self.armed = false;
            return;
        };
        match &mut self.timer {
            Some(t) if self.armed && t.deadline() == d => {}
            Some(t) => t.as_mut().reset(d),
            None => self.timer = Some(Box::pin(tokio::time::sleep_until(d))),
        }
        self.armed = true;
    }

    async fn next_input(&mut self) -> Input {
        self.arm();
        let Driver { inbox, ws, probe, pending_poll, socket, timer, armed, .. } = self;
        let shared = &socket.shared;
        let mailbox = std::future::poll_fn(|cx| {
            if shared.overflowed.load(Ordering::Acquire) {
                return Poll::Ready(Input::Overflow);
            }
            if shared.mailbox.poll_take(cx, inbox).is_ready() {
                return Poll::Ready(Input::Commands);
            }
            // The waker is registered now; an overflow flagged before that woke no one.
            if shared.overflowed.load(Ordering::Acquire) { Poll::Ready(Input::Overflow) } else { Poll::Pending }
        });
        // A deadline that passed is fired before anything read after it (the session's own inputs fire
        // theirs too, but the connection's deadline is only looked at here). Looking at the timer's state
        // costs no registration, unlike polling it first.
        if *armed && timer.as_ref().is_some_and(|t| t.is_elapsed()) {
            return Input::Timeout;
        }
        tokio::select! {
            biased;
            input = mailbox => input,
            msg = next_frame(ws.as_mut()) => Input::Ws(Channel::Main, msg),
            msg = next_frame(probe.as_deref_mut()) => Input::Ws(Channel::Probe, msg),
            _ = poll_closed(pending_poll) => Input::PollAborted,
            _ = fire(timer), if *armed => Input::Timeout,
        }
    }

    /// Sends a frame: into the WebSocket's write buffer at once when the session lets it go without
    /// queuing ([`Session::send_now`]) and the buffer is below the size written before more is queued;
    /// into the session's queue otherwise, for [`Driver::transmit`]. The next flush writes the buffer.
    fn send(&mut self, frame: Frame) {
        match &mut self.ws {
            Some(ws) if ws.buffered() < WS_FLUSH_AT => {
                if let Ok(Some(frame)) = self.session.send_now(frame) {
                    ws.feed(&frame);
                }
            }
            _ => {
                let _ = self.session.send(frame);
            }
        }
    }

    fn command(&mut self, cmd: Command) {
        let bytes = cmd.frame_bytes();
        let now = self.now;
        match cmd {
            Command::Send(frame) => {
                count_out(1, bytes);
                self.send(frame);
            }
            Command::SendMany(frames) => {
                count_out(frames.len(), bytes);
                for frame in frames {
                    self.send(frame);
                }
            }
            Command::SendVolatile(frames) => {
                if self.session.is_writable() {
                    count_out(frames.len(), bytes);
                    for frame in frames {
                        self.send(frame);
                    }
                }
            }
            Command::Close => self.session.close(now, CloseReason::ForcedClose),
            Command::CloseNotify(tx) => {
                self.close_waiters.get_or_insert_default().push(tx);
                self.session.close(now, CloseReason::ForcedClose);
            }
            Command::Poll(tx) => match self.session.handle_poll(now) {
                // One GET at a time: a duplicate is refused below, and the pending one answered by the
                // session (its PollResponse), so the sender held here always belongs to the next one.
                Ok(_) => self.pending_poll = Some(tx),
                Err(e) => {
                    let _ = tx.send(Err(e.into()));
                }
            },
            Command::PostStart(tx) => {
                let _ = tx.send(self.session.handle_post_start(now).map_err(Into::into));
            }
            Command::PostBody(body, binary, request, tx) => {
                let _ = tx.send(self.post_body(body, binary, request).map_err(Into::into));
            }
            Command::Post(body, binary, request, tx) => {
                let result =
                    self.session.handle_post_start(now).and_then(|()| self.post_body(Some(body), binary, request));
                let _ = tx.send(result.map_err(Into::into));
            }
            Command::Upgrade { ws, base64 } => match self.session.handle_upgrade_request(now) {
                Ok(()) => {
                    let _ = self.session.set_websocket_base64(Channel::Probe, base64);
                    self.probe = Some(ws);
                }
                Err(_) => {
                    tokio::spawn(close_ws(*ws, None));
                }
            },
        }
    }

    /// A POST's body to the session; its messages are delivered now, while its request is the current one.
    fn post_body(
        &mut self,
        body: Option<bytes::Bytes>,
        binary: bool,
        request: Arc<http::request::Parts>,
    ) -> Result<(), engineio_proto::Error> {
        let result = self.session.handle_post(self.now, body, binary);
        if result.is_ok() && self.connection.is_some() {
            self.data_request(Some(request));
            self.deliver_events();
            self.data_request(None);
        }
        result
    }

    fn ws_input(&mut self, channel: Channel, msg: Option<Result<WsMessage, ReadError>>) {
        let frame = match msg {
            Some(Ok(WsMessage::Text(t))) => Frame::Text(t),
            Some(Ok(WsMessage::Binary(b))) => Frame::Binary(b),
            // A ping's pong is queued by the WebSocket and written by the next flush.
            Some(Ok(WsMessage::Ping(_) | WsMessage::Pong(_))) => return,
            Some(Ok(WsMessage::Close(_))) | None => return self.transport_gone(channel, false),
            Some(Err(ReadError::Ws(e))) => {
                // Broken framing, text that is not UTF-8, or a message larger than max_http_buffer_size:
                // closed with the matching code (1002, 1007, 1009), as the reference's `ws` does.
                if let Some(ws) = self.take_slot(channel) {
                    tokio::spawn(close_ws(ws, Some(e.close_code())));
                }
                return self.session.handle_transport_closed(self.now, channel, true);
            }
            // The WebSocket inflates compressed messages before handing them out; one still compressed
            // would be a bug there, and ends the transport rather than reaching the session.
            Some(Err(ReadError::Io) | Ok(WsMessage::Compressed { .. })) => {
                return self.transport_gone(channel, true);
            }
        };
        let _ = self.session.handle_frame(self.now, channel, frame);
    }

    fn transport_gone(&mut self, channel: Channel, error: bool) {
        if let Some(ws) = self.take_slot(channel) {
            tokio::spawn(close_ws(ws, None));
        }
        self.session.handle_transport_closed(self.now, channel, error);
    }

    fn take_slot(&mut self, channel: Channel) -> Option<WsStream> {
        match channel {
            Channel::Main => self.ws.take(),
            Channel::Probe => self.probe.take().map(|p| *p),
        }
    }

    /// Carries out every transmit, then hands every event to the handler.
    /// Carries out every transmit, then hands every event to the handler, until neither is left. After
    /// each message the handler's sends are taken from the mailbox at once: one POST can carry thousands of
    /// packets, and their replies must not wait behind each other in the bounded mailbox of this very task.
    async fn flush(&mut self) {
        loop {
            let transmitted = self.transmit().await;
            let delivered = self.deliver_events();
            if !transmitted && !delivered {
                return;
            }
        }
    }

    /// Carries out every pending transmit; whether there was any.
    async fn transmit(&mut self) -> bool {
        let mut any = false;
        // A pong (or the echo of a close) may be waiting from the last read.
        let mut fed = self.ws.as_ref().is_some_and(|ws| ws.buffered() > 0);
        let mut failed = false;
        while let Some(t) = self.session.poll_transmit() {
            any = true;
            match t {
                Transmit::PollResponse { body, binary, .. } => {
                    if let Some(tx) = self.pending_poll.take() {
                        let _ = tx.send(Ok(PollBody { body, binary }));
                    }
                }
                Transmit::WebSocket(frame) => {
                    if let Some(ws) = &mut self.ws {
                        if ws.buffered() >= WS_FLUSH_AT {
                            // A client that stops reading blocks this write; a full mailbox ends the wait.
                            match until_overflow(&self.socket, ws.flush()).await {
                                Some(r) => failed |= r.is_err(),
                                None => {
                                    self.session.close(self.now, CloseReason::BufferFull);
                                    self.ws = None;
                                    fed = false;
                                    continue;
                                }
                            }
                        }
                        ws.feed(&frame);
                        fed = true;
                    }
                }
                Transmit::Probe(frame) => {
                    if let Some(probe) = &mut self.probe
                        && probe.send(&frame).await.is_err()
                    {
                        self.transport_gone(Channel::Probe, true);
                    }
                }
                Transmit::Upgraded => {
                    self.ws = self.probe.take().map(|p| *p);
                    self.socket.shared.upgraded.store(true, Ordering::Relaxed);
                }
                Transmit::CloseProbe => {
                    if let Some(probe) = self.probe.take() {
                        tokio::spawn(close_ws(*probe, None));
                    }
                }
                Transmit::CloseWebSocket => {
                    // Moved into the boxed future before the wait, so this future does not keep room for a
                    // WebSocket in every session's task.
                    let closing = self.ws.take().map(|ws| Box::pin(close_ws(ws, None)));
                    if let Some(closing) = closing {
                        fed = false;
                        closing.await;
                    }
                }
            }
        }
        if fed && let Some(ws) = &mut self.ws {
            // The same guard as for each frame: a stalled reader must not hold the task in this flush.
            match until_overflow(&self.socket, ws.flush()).await {
                Some(r) => failed |= r.is_err(),
                None => {
                    self.session.close(self.now, CloseReason::BufferFull);
                    self.ws = None;
                    // The session is closed; its last transmits concern the WebSocket just dropped.
                    while self.session.poll_transmit().is_some() {}
                }
            }
        }
        if let Some(probe) = &mut self.probe
            && probe.buffered() > 0
            && probe.flush().await.is_err()
        {
            self.transport_gone(Channel::Probe, true);
        }
        if failed {
            self.transport_gone(Channel::Main, true);
            // The failure closed the session: carry out its last transmits.
            while let Some(t) = self.session.poll_transmit() {
                if let Transmit::PollResponse { body, binary, .. } = t
                    && let Some(tx) = self.pending_poll.take()
                {
                    let _ = tx.send(Ok(PollBody { body, binary }));
                }
            }
        }
        any
    }

    /// Tells the connection which request carries the messages delivered next.
    fn data_request(&mut self, request: Option<Arc<http::request::Parts>>) {
        if let Some(c) = &mut self.connection
            && contain(|| c.on_data_request(request)).is_none()
        {
            self.session.close(self.now, CloseReason::ForcedClose);
        }
    }

    /// Hands every event to the handler; whether there was any.
    fn deliver_events(&mut self) -> bool {
        let mut any = false;
        while let Some(event) = self.session.poll_event() {
            any = true;
            match event {
                Event::Message(m) => {
                    let metrics = &crate::telemetry::METRICS;
                    metrics.packets_in.increment(1);
                    metrics.bytes_in.increment(m.len() as u64);
                    tracing::trace!(target: "engineio_server::packet", len = m.len(), binary = matches!(m, engineio_proto::Message::Binary(_)), "message in");
                    let mailbox = &self.socket.shared.mailbox;
                    let mut panicked = false;
                    if let Some(c) = &mut self.connection {
                        // What the handler sends back to this session lands in the inbox directly.
                        let now = self.now;
                        mailbox.deliver_inline(&mut self.inbox, || {
                            panicked = contain(|| c.on_message_at(now, m)).is_none()
                        });
                    }
                    mailbox.take_into(&mut self.inbox);
                    self.run_inbox();
                    if panicked {
                        tracing::warn!(target: "engineio_server::session", sid = self.socket.sid(), "the connection's handler panicked");
                        self.session.close(self.now, CloseReason::ForcedClose);
                    }
                }
                Event::Upgrading => {}
                Event::Upgraded => {
                    self.socket.shared.upgraded.store(true, Ordering::Relaxed);
                    let m = &crate::telemetry::METRICS;
                    m.upgrades.increment(1);
                    m.sessions_polling.decrement(1.0);
                    m.sessions_websocket.increment(1.0);
                    tracing::debug!(target: "engineio_server::session", "upgraded to websocket");
                    if let Some(c) = &mut self.connection
                        && contain(|| c.on_upgrade()).is_none()
                    {
                        self.session.close(self.now, CloseReason::ForcedClose);
                    }
                }
                Event::Closed { reason, .. } => {
                    let m = &crate::telemetry::METRICS;
                    m.sessions(self.session.transport()).decrement(1.0);
                    if reason == CloseReason::BufferFull {
                        m.buffer_full.increment(1);
                        tracing::warn!(
                            target: "engineio_server::session",
                            sid = self.socket.sid(),
                            reason = reason.as_str(),
                            "session closed: the client did not take its data"
                        );
                    } else {
                        tracing::info!(
                            target: "engineio_server::session",
                            sid = self.socket.sid(),
                            reason = reason.as_str(),
                            "session closed"
                        );
                    }
                    self.sessions.remove(self.socket.sid());
                    if let Some(c) = &mut self.connection {
                        contain(|| c.on_close(reason));
                    }
                }
            }
        }
        any
    }

    async fn finish(mut self: Box<Self>) {
        let mut left = self.socket.shared.mailbox.close();
        left.extend(self.inbox.drain(..));
        for cmd in left {
            match cmd {
                Command::Poll(tx) => {
                    let _ = tx.send(Err(PollError::Closed));
                }
                Command::PostStart(tx) | Command::PostBody(_, _, _, tx) | Command::Post(_, _, _, tx) => {
                    let _ = tx.send(Err(PollError::Closed));
                }
                Command::CloseNotify(tx) => self.close_waiters.get_or_insert_default().push(tx),
                Command::Upgrade { ws, .. } => {
                    tokio::spawn(close_ws(*ws, None));
                }
                Command::Send(_) | Command::SendMany(_) | Command::SendVolatile(_) | Command::Close => {}
            }
        }
        if let Some(ws) = self.ws.take() {
            close_ws(ws, None).await;
        }
        if let Some(probe) = self.probe.take() {
            tokio::spawn(close_ws(*probe, None));
        }
        for w in self.close_waiters.take().into_iter().flat_map(|w| *w) {
            let _ = w.send(());
        }
        self.finished = true;
    }
}

impl Drop for Driver {
    /// However the task ends before `finish` (a panic in the runtime itself, or the task dropped), the
    /// session leaves the table and its mailbox closes, so requests for it get "Session ID unknown"
    /// instead of waiting on a task that is gone. A session that ended normally costs no second lock.
    fn drop(&mut self) {
        if !self.finished {
            self.sessions.remove_of(&self.socket);
            let _ = self.socket.shared.mailbox.close();
        }
    }
}

/// Runs application code (a handler's, a hook's): a panic in it is contained here (the panic hook has
/// reported it); the caller decides what follows (the driver closes the session, "forced close").
pub(crate) fn contain<R>(f: impl FnOnce() -> R) -> Option<R> {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)).ok()
}

/// Runs a WebSocket write unless the session's mailbox overflows first (`None`): a client that stopped
/// reading must not hold the session task forever.
async fn until_overflow<T>(socket: &Socket, write: impl std::future::Future<Output = T>) -> Option<T> {
    let shared = &socket.shared;
    let mut write = std::pin::pin!(write);
    // No timer: this wraps every frame written. The overflow flag is set before the mailbox wakes the task.
    std::future::poll_fn(|cx| {
        if shared.overflowed.load(Ordering::Acquire) {
            return Poll::Ready(None);
        }
        if let Poll::Ready(r) = write.as_mut().poll(cx) {
            return Poll::Ready(Some(r));
        }
        shared.mailbox.register(cx);
        if shared.overflowed.load(Ordering::Acquire) { Poll::Ready(None) } else { Poll::Pending }
    })
    .await
}

/// The next message of the main WebSocket or of the (boxed) probe; never, without one.
async fn next_frame(ws: Option<&mut WsStream>) -> Option<Result<WsMessage, ReadError>> {
    match ws {
        Some(ws) => ws.next().await,
        None => std::future::pending().await,
    }
}

async fn poll_closed(pending: &mut Option<oneshot::Sender<Result<PollBody, PollError>>>) {
    match pending {
        Some(tx) => tx.closed().await,
        None => std::future::pending().await,
    }
}

async fn fire(timer: &mut Option<Pin<Box<tokio::time::Sleep>>>) {
    match timer {
        Some(t) => t.as_mut().await,
        None => std::future::pending().await,
    }
}

/// Sends a close frame (with a status code, or empty) and shuts the connection down.
pub(crate) async fn close_ws(mut ws: WsStream, code: Option<u16>) {
    let _ = tokio::time::timeout(WS_CLOSE_TIMEOUT, ws.close(code.map(|c| (c, "")))).await;
}
/// Counts messages going out (a volatile batch only when it is sent).
fn count_out(messages: usize, bytes: usize) {
    let m = &crate::telemetry::METRICS;
    m.packets_out.increment(messages as u64);
    m.bytes_out.increment(bytes as u64);
    tracing::trace!(target: "engineio_server::packet", messages, bytes, "messages out");
}

#[cfg(test)]
mod tests {
    /// Every open session keeps one boxed driver: 8 bytes more than 512 move it to jemalloc's next size
    /// class (640 bytes; the benchmark server runs on jemalloc), +128 bytes per idle connection. It got
    /// here with the sessions' shared configuration, the WebSocket decoder's boxed partial message and
    /// the timer's deadline kept once; keep the rare fields boxed.
    #[test]
    fn an_idle_sessions_driver_stays_in_the_512_byte_class() {
        assert!(std::mem::size_of::<super::Driver>() <= 512, "{}", std::mem::size_of::<super::Driver>());
    }
}
