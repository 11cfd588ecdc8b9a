//! One tokio task per session: it owns the [`Session`] state machine and the session's WebSockets, takes
//! commands (long-poll requests, POST bodies, frames to send, close) from a bounded mailbox, and carries out
//! what the state machine asks for. Nothing else touches a session, so there are no locks on the data path.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use bytes::Bytes;
use engineio_proto::{Channel, Error, Event, Frame, ProtocolError, Session, Transmit};
use futures_util::{SinkExt, StreamExt};
use hyper::upgrade::Upgraded;
use hyper_util::rt::TokioIo;
use tokio::sync::{mpsc, oneshot};
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::{self, Message as WsMessage, Utf8Bytes};

use std::pin::Pin;
use std::task::Poll;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

use crate::deflate::DeflateStream;
use crate::engine::EngineShared;
use crate::socket::{Connection, Socket};

pub(crate) type WsStream = WebSocketStream<WsIo>;

/// An upgraded connection, with or without permessage-deflate below the framing.
pub(crate) enum WsIo {
    Plain(TokioIo<Upgraded>),
    Deflate(Box<DeflateStream<TokioIo<Upgraded>>>),
}

impl AsyncRead for WsIo {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        match self.get_mut() {
            WsIo::Plain(io) => Pin::new(io).poll_read(cx, buf),
            WsIo::Deflate(io) => Pin::new(io.as_mut()).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for WsIo {
    fn poll_write(self: Pin<&mut Self>, cx: &mut std::task::Context<'_>, buf: &[u8]) -> Poll<std::io::Result<usize>> {
        match self.get_mut() {
            WsIo::Plain(io) => Pin::new(io).poll_write(cx, buf),
            WsIo::Deflate(io) => Pin::new(io.as_mut()).poll_write(cx, buf),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut std::task::Context<'_>) -> Poll<std::io::Result<()>> {
        match self.get_mut() {
            WsIo::Plain(io) => Pin::new(io).poll_flush(cx),
            WsIo::Deflate(io) => Pin::new(io.as_mut()).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut std::task::Context<'_>) -> Poll<std::io::Result<()>> {
        match self.get_mut() {
            WsIo::Plain(io) => Pin::new(io).poll_shutdown(cx),
            WsIo::Deflate(io) => Pin::new(io.as_mut()).poll_shutdown(cx),
        }
    }
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

pub(crate) enum Command {
    Send(Frame),
    SendMany(Vec<Frame>),
    SendVolatile(Vec<Frame>),
    Close,
    CloseNotify(oneshot::Sender<()>),
    Poll(oneshot::Sender<Result<Bytes, PollError>>),
    PostStart(oneshot::Sender<Result<(), PollError>>),
    PostBody(Option<Bytes>, oneshot::Sender<Result<(), PollError>>),
    Upgrade(Box<WsStream>),
}

/// How long closing a WebSocket may take before the connection is simply dropped.
const WS_CLOSE_TIMEOUT: Duration = Duration::from_secs(2);
/// Most commands handled before the session flushes, so one busy sender cannot starve the transports.
const BATCH: usize = 64;

pub(crate) struct Driver {
    engine: Arc<EngineShared>,
    session: Session,
    socket: Socket,
    rx: mpsc::Receiver<Command>,
    ws: Option<WsStream>,
    probe: Option<WsStream>,
    pending_poll: Option<oneshot::Sender<Result<Bytes, PollError>>>,
    close_waiters: Vec<oneshot::Sender<()>>,
    connection: Option<Box<dyn Connection>>,
}

enum Input {
    Overflow,
    Command(Command),
    Ws(Channel, Option<Result<WsMessage, tungstenite::Error>>),
    Timeout,
    PollAborted,
}

impl Driver {
    pub(crate) fn new(
        engine: Arc<EngineShared>,
        session: Session,
        socket: Socket,
        rx: mpsc::Receiver<Command>,
        ws: Option<WsStream>,
        pending_poll: Option<oneshot::Sender<Result<Bytes, PollError>>>,
    ) -> Self {
        Driver {
            engine,
            session,
            socket,
            rx,
            ws,
            probe: None,
            pending_poll,
            close_waiters: Vec::new(),
            connection: None,
        }
    }

    pub(crate) async fn run(mut self) {
        self.flush().await;
        self.connection = Some(self.engine.handler.on_open(&self.socket));
        self.flush().await;
        while !self.session.is_closed() {
            let input = self.next_input().await;
            let now = Instant::now();
            match input {
                Input::Command(cmd) => {
                    self.command(now, cmd);
                    for _ in 1..BATCH {
                        match self.rx.try_recv() {
                            Ok(cmd) => self.command(now, cmd),
                            Err(_) => break,
                        }
                    }
                }
                Input::Ws(channel, msg) => self.ws_input(now, channel, msg).await,
                Input::Timeout => self.session.handle_timeout(now),
                Input::Overflow => self.session.fail(now, engineio_proto::CloseReason::BufferFull),
                Input::PollAborted => {
                    self.pending_poll = None;
                    self.session.handle_poll_aborted(now);
                }
            }
            self.flush().await;
        }
        self.finish().await;
    }

    async fn next_input(&mut self) -> Input {
        if self.socket.shared.overflowed.load(Ordering::Acquire) {
            return Input::Overflow;
        }
        let deadline = self.session.poll_timeout().map(tokio::time::Instant::from_std);
        let Driver { rx, ws, probe, pending_poll, socket, .. } = self;
        tokio::select! {
            biased;
            _ = socket.shared.overflow.notified() => Input::Overflow,
            cmd = rx.recv() => match cmd {
                Some(cmd) => Input::Command(cmd),
                // The driver holds a sender through its socket, so the mailbox never ends first.
                None => Input::Timeout,
            },
            msg = next_frame(ws) => Input::Ws(Channel::Main, msg),
            msg = next_frame(probe) => Input::Ws(Channel::Probe, msg),
            _ = poll_closed(pending_poll) => Input::PollAborted,
            _ = sleep_until(deadline) => Input::Timeout,
        }
    }

    fn command(&mut self, now: Instant, cmd: Command) {
        self.socket.shared.queued_bytes.fetch_sub(cmd.frame_bytes(), Ordering::AcqRel);
        match cmd {
            Command::Send(frame) => {
                let _ = self.session.send(frame);
            }
            Command::SendMany(frames) => {
                for frame in frames {
                    let _ = self.session.send(frame);
                }
            }
            Command::SendVolatile(frames) => {
                if self.session.is_writable() {
                    for frame in frames {
                        let _ = self.session.send(frame);
                    }
                }
            }
            Command::Close => self.session.close(now),
            Command::CloseNotify(tx) => {
                self.close_waiters.push(tx);
                self.session.close(now);
            }
            Command::Poll(tx) => match self.session.handle_poll(now) {
                Ok(()) => self.pending_poll = Some(tx),
                Err(e) => {
                    let _ = tx.send(Err(e.into()));
                }
            },
            Command::PostStart(tx) => {
                let _ = tx.send(self.session.handle_post_start(now).map_err(Into::into));
            }
            Command::PostBody(body, tx) => {
                let _ = tx.send(self.session.handle_post_body(now, body).map_err(Into::into));
            }
            Command::Upgrade(ws) => match self.session.handle_upgrade_request(now) {
                Ok(()) => self.probe = Some(*ws),
                Err(_) => {
                    tokio::spawn(close_ws(*ws, None));
                }
            },
        }
    }

    async fn ws_input(&mut self, now: Instant, channel: Channel, msg: Option<Result<WsMessage, tungstenite::Error>>) {
        let frame = match msg {
            Some(Ok(WsMessage::Text(t))) => match engineio_proto::ByteString::try_from(Bytes::from(t)) {
                Ok(t) => Frame::Text(t),
                Err(_) => return self.transport_gone(now, channel, true),
            },
            Some(Ok(WsMessage::Binary(b))) => Frame::Binary(b),
            // Pings are answered by tungstenite on the next write or flush.
            Some(Ok(WsMessage::Ping(_) | WsMessage::Pong(_) | WsMessage::Frame(_))) => return,
            Some(Ok(WsMessage::Close(_))) | None => return self.transport_gone(now, channel, false),
            Some(Err(tungstenite::Error::Capacity(_))) => {
                // Larger than max_http_buffer_size: close with 1009, as the reference's `ws` does.
                let close = CloseFrame { code: CloseCode::Size, reason: Utf8Bytes::from_static("") };
                if let Some(ws) = self.slot(channel).take() {
                    tokio::spawn(close_ws(ws, Some(close)));
                }
                return self.session.handle_transport_closed(now, channel, true);
            }
            Some(Err(_)) => return self.transport_gone(now, channel, true),
        };
        let _ = self.session.handle_frame(now, channel, frame);
    }

    fn transport_gone(&mut self, now: Instant, channel: Channel, error: bool) {
        if let Some(ws) = self.slot(channel).take() {
            tokio::spawn(close_ws(ws, None));
        }
        self.session.handle_transport_closed(now, channel, error);
    }

    fn slot(&mut self, channel: Channel) -> &mut Option<WsStream> {
        match channel {
            Channel::Main => &mut self.ws,
            Channel::Probe => &mut self.probe,
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
        let mut fed = false;
        let mut failed = false;
        while let Some(t) = self.session.poll_transmit() {
            any = true;
            match t {
                Transmit::PollResponse(body) => {
                    if let Some(tx) = self.pending_poll.take() {
                        let _ = tx.send(Ok(body));
                    }
                }
                Transmit::WebSocket(frame) => {
                    if let Some(ws) = &mut self.ws {
                        // A client that stops reading blocks this write; a full mailbox ends the wait.
                        match until_overflow(&self.socket, ws.feed(to_ws(frame))).await {
                            Some(r) => failed |= r.is_err(),
                            None => {
                                self.session.fail(Instant::now(), engineio_proto::CloseReason::BufferFull);
                                self.ws = None;
                                fed = false;
                                continue;
                            }
                        }
                        fed = true;
                    }
                }
                Transmit::Probe(frame) => {
                    if let Some(probe) = &mut self.probe
                        && probe.send(to_ws(frame)).await.is_err()
                    {
                        self.transport_gone(Instant::now(), Channel::Probe, true);
                    }
                }
                Transmit::Upgraded => {
                    self.ws = self.probe.take();
                    self.socket.shared.upgraded.store(true, Ordering::Relaxed);
                }
                Transmit::CloseProbe => {
                    if let Some(probe) = self.probe.take() {
                        tokio::spawn(close_ws(probe, None));
                    }
                }
                Transmit::CloseWebSocket => {
                    if let Some(ws) = self.ws.take() {
                        fed = false;
                        close_ws(ws, None).await;
                    }
                }
            }
        }
        if fed && let Some(ws) = &mut self.ws {
            // The same guard as for each frame: a stalled reader must not hold the task in this flush.
            match until_overflow(&self.socket, ws.flush()).await {
                Some(r) => failed |= r.is_err(),
                None => {
                    self.session.fail(Instant::now(), engineio_proto::CloseReason::BufferFull);
                    self.ws = None;
                    // The session is closed; its last transmits concern the WebSocket just dropped.
                    while self.session.poll_transmit().is_some() {}
                }
            }
        }
        if failed {
            self.transport_gone(Instant::now(), Channel::Main, true);
            // The failure closed the session: carry out its last transmits.
            while let Some(t) = self.session.poll_transmit() {
                if let Transmit::PollResponse(body) = t
                    && let Some(tx) = self.pending_poll.take()
                {
                    let _ = tx.send(Ok(body));
                }
            }
        }
        any
    }

    /// Hands every event to the handler; whether there was any.
    fn deliver_events(&mut self) -> bool {
        let mut any = false;
        while let Some(event) = self.session.poll_event() {
            any = true;
            match event {
                Event::Message(m) => {
                    if let Some(c) = &mut self.connection {
                        c.on_message(m);
                    }
                    let now = Instant::now();
                    for _ in 0..self.engine.config.max_queued_commands {
                        match self.rx.try_recv() {
                            Ok(cmd) => self.command(now, cmd),
                            Err(_) => break,
                        }
                    }
                }
                Event::Upgrading => {}
                Event::Upgraded => {
                    self.socket.shared.upgraded.store(true, Ordering::Relaxed);
                    if let Some(c) = &mut self.connection {
                        c.on_upgrade();
                    }
                }
                Event::Closed(reason) => {
                    self.engine.remove_session(self.socket.sid());
                    if let Some(c) = &mut self.connection {
                        c.on_close(reason);
                    }
                }
            }
        }
        any
    }

    async fn finish(mut self) {
        self.rx.close();
        while let Ok(cmd) = self.rx.try_recv() {
            match cmd {
                Command::Poll(tx) => {
                    let _ = tx.send(Err(PollError::Closed));
                }
                Command::PostStart(tx) | Command::PostBody(_, tx) => {
                    let _ = tx.send(Err(PollError::Closed));
                }
                Command::CloseNotify(tx) => self.close_waiters.push(tx),
                Command::Upgrade(ws) => {
                    tokio::spawn(close_ws(*ws, None));
                }
                Command::Send(_) | Command::SendMany(_) | Command::SendVolatile(_) | Command::Close => {}
            }
        }
        if let Some(ws) = self.ws.take() {
            close_ws(ws, None).await;
        }
        if let Some(probe) = self.probe.take() {
            tokio::spawn(close_ws(probe, None));
        }
        for w in self.close_waiters.drain(..) {
            let _ = w.send(());
        }
    }
}

/// Runs a WebSocket write unless the session's mailbox overflows first (`None`): a client that stopped
/// reading must not hold the session task forever.
async fn until_overflow<T>(socket: &Socket, write: impl std::future::Future<Output = T>) -> Option<T> {
    let shared = &socket.shared;
    let mut write = std::pin::pin!(write);
    loop {
        if shared.overflowed.load(Ordering::Acquire) {
            return None;
        }
        // The flag is checked above; a notify that lands after that check leaves a permit, so
        // `notified()` cannot miss it. No timer: this wraps every frame written.
        tokio::select! {
            biased;
            r = &mut write => return Some(r),
            _ = shared.overflow.notified() => {}
        }
    }
}

fn to_ws(frame: Frame) -> WsMessage {
    match frame {
        Frame::Text(t) => WsMessage::Text(Utf8Bytes::try_from(t.into_bytes()).expect("a ByteString is valid UTF-8")),
        Frame::Binary(b) => WsMessage::Binary(b),
    }
}

async fn next_frame(ws: &mut Option<WsStream>) -> Option<Result<WsMessage, tungstenite::Error>> {
    match ws {
        Some(ws) => ws.next().await,
        None => std::future::pending().await,
    }
}

async fn poll_closed(pending: &mut Option<oneshot::Sender<Result<Bytes, PollError>>>) {
    match pending {
        Some(tx) => tx.closed().await,
        None => std::future::pending().await,
    }
}

async fn sleep_until(deadline: Option<tokio::time::Instant>) {
    match deadline {
        Some(d) => tokio::time::sleep_until(d).await,
        None => std::future::pending().await,
    }
}

async fn close_ws(mut ws: WsStream, frame: Option<CloseFrame>) {
    let _ = tokio::time::timeout(WS_CLOSE_TIMEOUT, ws.close(frame)).await;
}
