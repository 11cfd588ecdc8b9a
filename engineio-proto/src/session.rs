//! The per-session state machine: heartbeat, long-polling bookkeeping, the upgrade to WebSocket, and close.
//!
//! Protocol description, sections "Heartbeat", "Upgrade" and "Transports"; where the description is silent
//! the reference server's `socket.ts` and `transports/polling.ts` decide.
//!
//! # Driving a session
//!
//! The session does no I/O and reads no clock. The runtime:
//!
//! 1. feeds every input with the current time: [`Session::handle_poll`] (a long-poll GET arrived),
//!    [`Session::handle_post_start`] / [`Session::handle_post_body`] (a POST), [`Session::handle_frame`] (a
//!    frame on the session's WebSocket, or on the probe), [`Session::handle_upgrade_request`] (a second
//!    WebSocket asking to take over), [`Session::handle_transport_closed`], [`Session::send`],
//!    [`Session::close`] and [`Session::handle_timeout`] ([`Session::send_now`] is `send` for a runtime
//!    that writes a WebSocket frame at once when nothing waits ahead of it; see its documentation);
//! 2. then drains [`Session::poll_transmit`] until it returns `None`, carrying out each [`Transmit`] in
//!    order, and [`Session::poll_event`] until it returns `None`, handing each [`Event`] to the application;
//! 3. then sleeps until [`Session::poll_timeout`] (or the next input) and calls [`Session::handle_timeout`].
//!
//! Every input that carries a time first fires the deadlines that passed by then, in the order they fell
//! due and each at its own time: a long-poll GET that arrives after the pong deadline finds the session
//! closed even if the runtime's timer has not fired yet, and a runtime that wakes late (or calls
//! [`Session::handle_timeout`] once with the current time instead of once per due time) gets the same
//! result as a punctual one. The next pong deadline is counted from when the ping was due.
//!
//! # Engine.IO v3
//!
//! A session opened with [`Session::with_protocol`] and [`Protocol::V3`] speaks to the clients of
//! Socket.IO 2: the same state machine with v3's framing ([`crate::v3`]) and v3's heartbeat, where the
//! client pings and the server answers. The server sends no ping; a client that has not pinged for
//! `ping_interval + ping_timeout` (since the handshake or its last ping) is gone ("ping timeout"); a pong
//! from the client is a "transport error", as a ping is in v4. Only pings keep the session alive, as in
//! the reference since its 6.6 release.
//!
//! Outgoing data on polling is batched: everything sent before the runtime drains `poll_transmit` goes out
//! in one payload, so a runtime that handles all ready inputs before draining gets fewer, fuller responses.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use bytestring::ByteString;

use crate::error::{DecodeError, Error, ProtocolError, UsageError};
use crate::handshake::{OpenPacket, Protocol, TransportKind};
use crate::packet::{Frame, Message, Packet};
use crate::payload::{PayloadIter, encode_payload};
use crate::queue::{Queue, Spare};
use crate::v3;

/// The timing and size settings of a session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionConfig {
    /// Time between pings (reference default 25 s).
    pub ping_interval: Duration,
    /// Time to wait for a pong before closing with "ping timeout" (reference default 20 s).
    pub ping_timeout: Duration,
    /// Time allowed from the upgrade request to the `5` upgrade packet (reference default 10 s).
    pub upgrade_timeout: Duration,
    /// Time a server-side close waits for the next long-poll GET to deliver the close packet (30 s).
    pub close_timeout: Duration,
    /// The largest POST body accepted, advertised as `maxPayload` (reference default 1e6).
    pub max_payload: usize,
    /// Whether a polling session may upgrade to WebSocket.
    pub allow_upgrades: bool,
    /// Most frames held for a long-polling client that does not come back for them; one more closes the
    /// session with [`CloseReason::BufferFull`] (a defined end instead of unbounded memory).
    pub max_buffered_frames: usize,
    /// Most bytes held for a long-polling client, likewise (default 8 MiB).
    pub max_buffered_bytes: usize,
}

impl Default for SessionConfig {
    fn default() -> Self {
        Self {
            ping_interval: Duration::from_millis(25_000),
            ping_timeout: Duration::from_millis(20_000),
            upgrade_timeout: Duration::from_millis(10_000),
            close_timeout: Duration::from_millis(30_000),
            max_payload: 1_000_000,
            allow_upgrades: true,
            max_buffered_frames: 16_384,
            max_buffered_bytes: 8 << 20,
        }
    }
}

/// Why a session closed. The strings are the reference server's reasons.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum CloseReason {
    /// The client closed the session (close packet) or its WebSocket.
    TransportClose,
    /// A transport failed, or the client broke the protocol (overlapping requests, a ping from the client).
    TransportError,
    /// No pong arrived within the ping timeout.
    PingTimeout,
    /// The server closed the session.
    ForcedClose,
    /// The client sent bytes that are not Engine.IO.
    ParseError,
    /// The client did not take its data: more was queued for it than the limits allow (a slow or stalled
    /// reader). Not a reference reason; clients see the transport close.
    BufferFull,
}

impl CloseReason {
    /// The reference server's name for this reason.
    pub fn as_str(self) -> &'static str {
        match self {
            CloseReason::TransportClose => "transport close",
            CloseReason::TransportError => "transport error",
            CloseReason::PingTimeout => "ping timeout",
            CloseReason::ForcedClose => "forced close",
            CloseReason::ParseError => "parse error",
            CloseReason::BufferFull => "buffer full",
        }
    }
}

/// The identity of one long-poll GET of a session, given by [`Session::handle_poll`]: the
/// [`Transmit::PollResponse`] that answers it carries the same identity. Counted from 1 in each session.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PollId(pub u64);

/// Something the runtime must send or do on a transport, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Transmit {
    /// Answer the long-poll GET `poll` with status 200 and this payload.
    PollResponse {
        /// The GET this answers (as returned by [`Session::handle_poll`]).
        poll: PollId,
        /// The payload.
        body: Bytes,
        /// Whether the payload is a v3 binary payload, sent as `application/octet-stream` (else it is
        /// text, `text/plain; charset=UTF-8`). Always false in v4.
        binary: bool,
    },
    /// Send a frame on the session's WebSocket.
    WebSocket(Frame),
    /// Send a frame on the WebSocket being probed for an upgrade.
    Probe(Frame),
    /// The upgrade is complete: the probed WebSocket is now the session's transport, and the following
    /// [`Transmit::WebSocket`] items go to it.
    Upgraded,
    /// Close the probed WebSocket: the upgrade failed or was abandoned; the session stays on polling.
    CloseProbe,
    /// Close the session's WebSocket.
    CloseWebSocket,
}

/// What happened, for the application.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// The client sent a message.
    Message(Message),
    /// The client probed a WebSocket successfully; the upgrade is under way.
    Upgrading,
    /// The session now runs over WebSocket.
    Upgraded,
    /// The session closed. No transmit or event follows this one.
    Closed {
        /// Why, with the reference's name ([`CloseReason::as_str`]).
        reason: CloseReason,
        /// For [`CloseReason::ParseError`]: what was wrong with the client's bytes.
        error: Option<DecodeError>,
    },
}

/// Which WebSocket of a session an input concerns.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Channel {
    /// The session's current transport.
    Main,
    /// The WebSocket being probed during an upgrade.
    Probe,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Open,
    /// A server-side close waits for the next long-poll GET to carry the close packet.
    Closing {
        deadline: Instant,
    },
    Closed,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Upgrade {
    None,
    Probing { deadline: Instant, probed: bool, base64: bool },
}

/// One Engine.IO session. See the module documentation for how to drive it.
#[derive(Debug)]
pub struct Session {
    /// Boxed rather than a `String`: one word less in every session.
    sid: Box<str>,
    /// Shared by every session of a server (a copy in each would cost 96 bytes per session).
    config: Arc<SessionConfig>,
    transport: TransportKind,
    state: State,
    upgrade: Upgrade,
    /// Frames waiting for a long-poll GET (polling only; on WebSocket frames go straight to `transmits`, or
    /// back to the caller of [`Session::send_now`]).
    buffer: VecDeque<Frame>,
    /// The bytes of `buffer`.
    buffered_bytes: usize,
    /// Whether a long-poll GET waits for data: the last one taken (`polls`), as a second one while one
    /// waits is refused.
    poll_pending: bool,
    /// The identity of the last GET taken.
    polls: u64,
    post_in_flight: bool,
    /// The session's WebSocket cannot take binary frames (its request had `b64`): binary goes as `b` + base64.
    ws_base64: bool,
    /// The protocol revision.
    protocol: Protocol,
    /// v3 polling: the client takes binary payloads (its handshake had no `b64`).
    polling_binary: bool,
    next_ping: Option<Instant>,
    pong_deadline: Option<Instant>,
    transmits: Queue<Transmit>,
    events: Queue<Event>,
}

thread_local! {
    static SPARE_TRANSMITS: std::cell::RefCell<VecDeque<Transmit>> = const { std::cell::RefCell::new(VecDeque::new()) };
    static SPARE_EVENTS: std::cell::RefCell<VecDeque<Event>> = const { std::cell::RefCell::new(VecDeque::new()) };
}

impl Spare for Transmit {
    fn spare() -> &'static std::thread::LocalKey<std::cell::RefCell<VecDeque<Self>>> {
        &SPARE_TRANSMITS
    }
}

impl Spare for Event {
    fn spare() -> &'static std::thread::LocalKey<std::cell::RefCell<VecDeque<Self>>> {
        &SPARE_EVENTS
    }
}

impl Session {
    /// Opens a v4 session over `transport` and queues the open packet, followed by `initial` if given.
    ///
    /// For a polling handshake the runtime then calls [`Session::handle_poll`] for the handshake GET itself,
    /// whose response carries the open packet.
    pub fn new(
        sid: String,
        config: impl Into<Arc<SessionConfig>>,
        transport: TransportKind,
        now: Instant,
        initial: Option<Message>,
    ) -> Self {
        Self::with_protocol(Protocol::V4, sid, config, transport, now, initial)
    }

    /// Opens a session of the given protocol revision (the handshake's
    /// [`crate::handshake::Query::protocol`]); see [`Session::new`] and the module documentation on v3.
    pub fn with_protocol(
        protocol: Protocol,
        sid: String,
        config: impl Into<Arc<SessionConfig>>,
        transport: TransportKind,
        now: Instant,
        initial: Option<Message>,
    ) -> Self {
        let config = config.into();
        let upgrades = if transport == TransportKind::Polling && config.allow_upgrades {
            vec![TransportKind::WebSocket.as_str()]
        } else {
            Vec::new()
        };
        let open = OpenPacket {
            sid: sid.clone(),
            upgrades,
            ping_interval: config.ping_interval.as_millis() as u64,
            ping_timeout: config.ping_timeout.as_millis() as u64,
            max_payload: config.max_payload as u64,
        };
        let (next_ping, pong_deadline) = match protocol {
            Protocol::V4 => (Some(now + config.ping_interval), None),
            Protocol::V3 => (None, Some(now + config.ping_interval + config.ping_timeout)),
        };
        let mut session = Session {
            sid: sid.into_boxed_str(),
            next_ping,
            pong_deadline,
            config,
            transport,
            state: State::Open,
            upgrade: Upgrade::None,
            buffer: VecDeque::new(),
            buffered_bytes: 0,
            poll_pending: false,
            polls: 0,
            post_in_flight: false,
            ws_base64: false,
            protocol,
            polling_binary: true,
            transmits: Queue::new(),
            events: Queue::new(),
        };
        // The open and initial packets are queued whatever `max_buffered_frames` says.
        let first =
            [Some(Packet::Open(ByteString::from(open.to_json())).encode()), initial.map(|m| Frame::from_message(&m))];
        for frame in first.into_iter().flatten() {
            match session.transport {
                TransportKind::WebSocket => session.transmits.push_back(Transmit::WebSocket(frame)),
                TransportKind::Polling => {
                    session.buffered_bytes += frame.len();
                    session.buffer.push_back(frame);
                }
            }
        }
        session
    }

    /// The session ID.
    pub fn sid(&self) -> &str {
        &self.sid
    }

    /// The current transport.
    pub fn transport(&self) -> TransportKind {
        self.transport
    }

    /// Sets whether a WebSocket of the session cannot take binary frames. Such a client (the client option
    /// `forceBase64`, query `b64`) gets every binary message as a text frame `b` + base64, as from the
    /// reference ([`Frame::into_text`]). It is a property of each WebSocket request: call it with that
    /// request's [`crate::handshake::Query::b64`], on [`Channel::Main`] for a WebSocket handshake, and on
    /// [`Channel::Probe`] after [`Session::handle_upgrade_request`] accepted an upgrade (it applies once the
    /// upgrade completes). Polling payloads carry binary as base64 anyway.
    ///
    /// Fails with [`UsageError::NoSuchTransport`] for the probe when no upgrade is under way.
    pub fn set_websocket_base64(&mut self, channel: Channel, base64: bool) -> Result<(), Error> {
        match (channel, &mut self.upgrade) {
            (Channel::Main, _) => self.ws_base64 = base64,
            (Channel::Probe, Upgrade::Probing { base64: b, .. }) => *b = base64,
            (Channel::Probe, Upgrade::None) => return Err(UsageError::NoSuchTransport.into()),
        }
        Ok(())
    }

    /// Sets whether a v3 long-polling client cannot take binary payloads: call it with the polling
    /// handshake's [`crate::handshake::Query::b64`] (the reference decides it once, from the handshake).
    /// Such a client gets binary messages as `b4` + base64 in text payloads. No effect in v4, whose
    /// payloads are text.
    pub fn set_polling_base64(&mut self, base64: bool) {
        self.polling_binary = !base64;
    }

    /// The protocol revision of the session.
    pub fn protocol(&self) -> Protocol {
        self.protocol
    }

    /// Whether the session has closed.
    pub fn is_closed(&self) -> bool {
        self.state == State::Closed
    }

    /// Whether an upgrade is in progress.
    pub fn is_upgrading(&self) -> bool {
        matches!(self.upgrade, Upgrade::Probing { .. })
    }

    /// Whether a frame sent now would go out at once: the session is open and runs over WebSocket, or a
    /// long-poll GET is pending. Socket.IO's `volatile` packets are dropped when this is false.
    pub fn is_writable(&self) -> bool {
        self.state == State::Open && (self.transport == TransportKind::WebSocket || self.poll_pending)
    }

    /// The long-poll GET waiting for data, if one is. Not the same as [`Session::is_writable`]: a closing
    /// session may hold a GET that no data will be sent on.
    pub fn pending_poll(&self) -> Option<PollId> {
        self.poll_pending.then_some(PollId(self.polls))
    }

    /// Takes the pending GET, if any.
    fn take_pending_poll(&mut self) -> Option<PollId> {
        let poll = self.pending_poll();
        self.poll_pending = false;
        poll
    }

    /// The number of frames waiting for a long-poll GET.
    pub fn buffered(&self) -> usize {
        self.buffer.len()
    }

    /// Queues an encoded packet for the client (a message becomes one with [`Frame::from_message`]).
    ///
    /// Fails with [`UsageError::SessionClosed`] once the session is closing or closed.
    pub fn send(&mut self, frame: Frame) -> Result<(), Error> {
        if self.state != State::Open {
            return Err(UsageError::SessionClosed.into());
        }
        self.push_frame(frame);
        Ok(())
    }

    /// Sends a frame on the WebSocket without queuing it, when it can go at once: for a runtime that writes
    /// each frame as it is sent (a broadcast's recipients get frames in bursts). While the session is open
    /// on WebSocket with no transmit waiting, the frame is returned as [`Session::poll_transmit`] would have
    /// returned it after [`Session::send`] (binary converted for a base64 or v3 client): the caller writes
    /// it on the WebSocket now, before carrying out any later transmit. Otherwise it is queued as by
    /// `send`, and `None` is returned.
    ///
    /// The session knows only of the transmits it still holds: the caller must have carried out (written,
    /// or put in its WebSocket's write buffer) every transmit it already took, or a frame returned here
    /// could overtake one taken earlier and not yet written.
    ///
    /// Fails with [`UsageError::SessionClosed`] once the session is closing or closed.
    pub fn send_now(&mut self, frame: Frame) -> Result<Option<Frame>, Error> {
        if self.state != State::Open {
            return Err(UsageError::SessionClosed.into());
        }
        if self.transport == TransportKind::WebSocket && self.transmits.is_empty() {
            return Ok(Some(self.websocket_frame(frame)));
        }
        self.push_frame(frame);
        Ok(None)
    }

    /// A long-poll GET arrived; returns its identity.
    ///
    /// On success the GET is answered by the [`Transmit::PollResponse`] that carries this identity: at once
    /// when the session is closing (what was queued, or the close packet), otherwise when there is
    /// something to send. A second GET while one is pending closes the session with "transport error" (the
    /// pending one receives a close packet) and returns [`ProtocolError::DuplicatePoll`]: the runtime
    /// answers the new one with 400.
    pub fn handle_poll(&mut self, now: Instant) -> Result<PollId, Error> {
        self.handle_timeout(now);
        self.check_polling()?;
        if self.poll_pending {
            self.shutdown(CloseReason::TransportError, Packet::Close);
            return Err(ProtocolError::DuplicatePoll.into());
        }
        self.polls += 1;
        let poll = PollId(self.polls);
        if let State::Closing { .. } = self.state {
            // As the reference: what was queued drains first, the close packet goes in the next response.
            if self.buffer.is_empty() {
                self.transmits.push_back(self.reply(poll, Packet::Close));
                self.finish(CloseReason::ForcedClose);
            } else {
                let response = self.drain_response(poll);
                self.transmits.push_back(response);
            }
            return Ok(poll);
        }
        self.poll_pending = true;
        Ok(poll)
    }

    /// The client of the long-poll GET `poll` went away before it was answered: if it is still pending, the
    /// session closes with "transport error", as in the reference ("poll connection closed prematurely").
    /// A GET already answered is not pending any more, and its end changes nothing.
    pub fn handle_poll_aborted(&mut self, now: Instant, poll: PollId) {
        self.handle_timeout(now);
        if self.pending_poll() == Some(poll) {
            self.poll_pending = false;
            self.shutdown(CloseReason::TransportError, Packet::Close);
        }
    }

    /// A POST started. A second one while the first is being received closes the session with
    /// "transport error" and returns [`ProtocolError::DuplicatePost`]: the runtime answers it with 400.
    pub fn handle_post_start(&mut self, now: Instant) -> Result<(), Error> {
        self.handle_timeout(now);
        self.check_polling()?;
        if self.post_in_flight {
            self.shutdown(CloseReason::TransportError, Packet::Close);
            return Err(ProtocolError::DuplicatePost.into());
        }
        self.post_in_flight = true;
        Ok(())
    }

    /// The body of the POST begun with [`Session::handle_post_start`], or `None` if it was not received
    /// (too large, or the connection failed). Packets are handled in order; a malformed one closes the
    /// session with "parse error" after the ones before it were handled.
    pub fn handle_post_body(&mut self, now: Instant, body: Option<Bytes>) -> Result<(), Error> {
        self.handle_post(now, body, false)
    }

    /// As [`Session::handle_post_body`], for a body that may be a v3 binary payload: `binary` when the
    /// request's `Content-Type` is exactly `application/octet-stream`, as the reference reads it. In v4 a
    /// binary body is not a payload: the reference refuses it with 400 before it reaches the session, and
    /// a session given one closes with "parse error".
    pub fn handle_post(&mut self, now: Instant, body: Option<Bytes>, binary: bool) -> Result<(), Error> {
        self.handle_timeout(now);
        self.post_in_flight = false;
        if self.state == State::Closed {
            return Err(ProtocolError::Closed.into());
        }
        let Some(body) = body else { return Ok(()) };
        match self.protocol {
            Protocol::V4 if binary => self.parse_error(DecodeError::InvalidUtf8),
            Protocol::V4 => match PayloadIter::new(body, self.config.max_payload) {
                Ok(packets) => self.handle_packets(now, packets),
                Err(e) => self.parse_error(e),
            },
            Protocol::V3 => match v3::decode_payload(body, binary, self.config.max_payload) {
                Ok(packets) => self.handle_packets(now, packets),
                Err(e) => self.parse_error(e),
            },
        }
        Ok(())
    }

    fn handle_packets(&mut self, now: Instant, packets: impl Iterator<Item = Result<Packet, DecodeError>>) {
        for packet in packets {
            if self.state != State::Open {
                break;
            }
            match packet {
                Ok(packet) => self.handle_packet(now, packet),
                Err(e) => self.parse_error(e),
            }
        }
    }

    /// Decodes a frame received on a WebSocket of this session; `Ok(None)` for one v3 ignores.
    fn decode_frame(&self, frame: Frame) -> Result<Option<Packet>, DecodeError> {
        match self.protocol {
            Protocol::V4 => Packet::decode_frame(frame).map(Some),
            Protocol::V3 => v3::decode_frame(frame),
        }
    }

    /// A frame arrived on a WebSocket of this session: on the main channel a packet of the session, on
    /// the probe channel a step of the upgrade (`2probe` is answered with `3probe`, and a pending long-poll
    /// is released with a noop so the client can pause polling; `5` completes the upgrade; anything else
    /// abandons it). Deadlines due at `now` fire first.
    pub fn handle_frame(&mut self, now: Instant, channel: Channel, frame: Frame) -> Result<(), Error> {
        self.handle_timeout(now);
        match channel {
            Channel::Main => {
                if self.state == State::Closed {
                    return Err(ProtocolError::Closed.into());
                }
                if self.transport != TransportKind::WebSocket {
                    return Err(UsageError::NoSuchTransport.into());
                }
                if self.state != State::Open {
                    return Ok(());
                }
                match self.decode_frame(frame) {
                    Ok(Some(Packet::Message(message))) => self.events.push_back(Event::Message(message)),
                    Ok(Some(packet)) => self.handle_packet(now, packet),
                    Ok(None) => {}
                    Err(e) => self.parse_error(e),
                }
                Ok(())
            }
            Channel::Probe => self.probe_frame(now, frame),
        }
    }

    /// A WebSocket asks to take over this polling session. On success it is the probe channel until the
    /// upgrade completes or fails; otherwise ([`ProtocolError::UpgradeRefused`]) the runtime closes it.
    pub fn handle_upgrade_request(&mut self, now: Instant) -> Result<(), Error> {
        self.handle_timeout(now);
        if self.state == State::Closed {
            return Err(ProtocolError::Closed.into());
        }
        if self.state != State::Open
            || !self.config.allow_upgrades
            || self.transport != TransportKind::Polling
            || self.upgrade != Upgrade::None
        {
            return Err(ProtocolError::UpgradeRefused.into());
        }
        self.upgrade = Upgrade::Probing { deadline: now + self.config.upgrade_timeout, probed: false, base64: false };
        Ok(())
    }

    /// A frame arrived on the probed WebSocket (see [`Session::handle_frame`]).
    fn probe_frame(&mut self, now: Instant, frame: Frame) -> Result<(), Error> {
        let Upgrade::Probing { deadline, base64, .. } = self.upgrade else {
            return Err(UsageError::NoSuchTransport.into());
        };
        match self.decode_frame(frame) {
            Ok(Some(Packet::PingProbe)) => {
                self.transmits.push_back(Transmit::Probe(Packet::PongProbe.encode()));
                self.upgrade = Upgrade::Probing { deadline, probed: true, base64 };
                self.events.push_back(Event::Upgrading);
            }
            Ok(Some(Packet::Upgrade)) => self.complete_upgrade(now),
            _ => self.abandon_upgrade(),
        }
        Ok(())
    }

    /// A transport went away: the session's WebSocket (the session closes with "transport close", or
    /// "transport error" if `error`, and a [`Transmit::CloseWebSocket`] follows), or the probe (the upgrade
    /// is abandoned, and a [`Transmit::CloseProbe`] follows, as on every other end of a probe: a runtime
    /// releases the probe's resources in one place).
    pub fn handle_transport_closed(&mut self, now: Instant, channel: Channel, error: bool) {
        self.handle_timeout(now);
        match channel {
            Channel::Probe => {
                if self.is_upgrading() {
                    self.abandon_upgrade();
                }
            }
            Channel::Main if self.transport == TransportKind::WebSocket => {
                let reason = if error { CloseReason::TransportError } else { CloseReason::TransportClose };
                self.shutdown(reason, Packet::Close);
            }
            Channel::Main => {}
        }
    }

    /// Closes the session from the server side for `reason`.
    ///
    /// [`CloseReason::ForcedClose`] (the application's or the server's close) is graceful: frames already
    /// queued are delivered first; on polling they drain in one response and the close packet goes in the
    /// next one (a client handles the close packet before the packets that came with it), waiting at most
    /// `close_timeout` for GETs. While it waits, the heartbeat goes on without sending pings, as in the
    /// reference: a client that never polls again is gone ("ping timeout") by its pong deadline if that
    /// comes before `close_timeout`.
    ///
    /// Any other reason ends the session at once, as a transport failure does: a pending long-poll gets the
    /// close packet, a WebSocket is closed, what was queued is dropped. For the runtime's own limits (for
    /// example [`CloseReason::BufferFull`] when a client does not read what is sent to it).
    pub fn close(&mut self, now: Instant, reason: CloseReason) {
        self.handle_timeout(now);
        if reason != CloseReason::ForcedClose {
            self.shutdown(reason, Packet::Close);
            return;
        }
        if self.state != State::Open {
            return;
        }
        if self.is_upgrading() {
            self.abandon_upgrade();
        }
        match self.transport {
            TransportKind::WebSocket => self.shutdown(CloseReason::ForcedClose, Packet::Close),
            TransportKind::Polling if self.poll_pending && self.buffer.is_empty() => {
                let poll = self.take_pending_poll().expect("a pending GET");
                self.transmits.push_back(self.reply(poll, Packet::Close));
                self.finish(CloseReason::ForcedClose);
            }
            TransportKind::Polling if self.poll_pending => {
                // Drain now; the close packet waits for the next GET.
                let poll = self.take_pending_poll().expect("a pending GET");
                let response = self.drain_response(poll);
                self.transmits.push_back(response);
                self.state = State::Closing { deadline: now + self.config.close_timeout };
            }
            TransportKind::Polling => {
                self.state = State::Closing { deadline: now + self.config.close_timeout };
            }
        }
    }

    /// Fires every deadline that is due at `now`, in the order they fell due and each as at its own time
    /// (a late call gives the same result as one call per due time).
    pub fn handle_timeout(&mut self, now: Instant) {
        while let Some(due) = self.poll_timeout().filter(|&d| d <= now) {
            self.fire(due);
        }
    }

    /// Fires the deadlines that fall due at `due`, the earliest of the session's.
    fn fire(&mut self, due: Instant) {
        if self.pong_deadline.is_some_and(|d| d <= due) {
            self.shutdown(CloseReason::PingTimeout, Packet::Close);
            return;
        }
        if let State::Closing { deadline } = self.state
            && deadline <= due
        {
            self.take_buffer();
            self.finish(CloseReason::ForcedClose);
            return;
        }
        if let Upgrade::Probing { deadline, .. } = self.upgrade
            && deadline <= due
        {
            self.abandon_upgrade();
        }
        if let Some(ping) = self.next_ping.filter(|&p| p <= due) {
            // A closing session sends no ping, but its pong deadline still ends it.
            if self.state == State::Open {
                self.push_frame(Packet::Ping.encode());
            }
            self.next_ping = None;
            if self.state != State::Closed {
                self.pong_deadline = Some(ping + self.config.ping_timeout);
            }
        }
    }

    /// When [`Session::handle_timeout`] must be called next, if ever.
    #[must_use]
    pub fn poll_timeout(&self) -> Option<Instant> {
        if self.state == State::Closed {
            return None;
        }
        let closing = match self.state {
            State::Closing { deadline } => Some(deadline),
            _ => None,
        };
        let upgrade = match self.upgrade {
            Upgrade::Probing { deadline, .. } => Some(deadline),
            Upgrade::None => None,
        };
        [self.next_ping, self.pong_deadline, closing, upgrade].into_iter().flatten().min()
    }

    /// The next thing to send or do on a transport.
    #[must_use]
    pub fn poll_transmit(&mut self) -> Option<Transmit> {
        if let Some(t) = self.transmits.pop_front() {
            return Some(match t {
                Transmit::WebSocket(frame) => Transmit::WebSocket(self.websocket_frame(frame)),
                t => t,
            });
        }
        if let Some(poll) = self.pending_poll()
            && self.state == State::Open
        {
            if !self.buffer.is_empty() {
                self.poll_pending = false;
                return Some(self.drain_response(poll));
            }
            if let Upgrade::Probing { probed: true, .. } = self.upgrade {
                // Release the long-poll so the client can pause polling and finish the upgrade.
                self.poll_pending = false;
                return Some(self.reply(poll, Packet::Noop));
            }
        }
        None
    }

    /// A frame as the main WebSocket carries it: binary as text for a base64 client, in v3's framing for a v3
    /// client.
    fn websocket_frame(&self, frame: Frame) -> Frame {
        match (&frame, self.protocol) {
            (Frame::Binary(_), Protocol::V4) if self.ws_base64 => frame.into_text(),
            (Frame::Binary(_), Protocol::V3) => v3::websocket_frame(frame, self.ws_base64),
            _ => frame,
        }
    }

    /// The next event for the application.
    #[must_use]
    pub fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    fn check_polling(&self) -> Result<(), Error> {
        if self.state == State::Closed {
            return Err(ProtocolError::Closed.into());
        }
        if self.transport != TransportKind::Polling {
            return Err(ProtocolError::TransportMismatch.into());
        }
        Ok(())
    }

    /// The response to `poll` that carries everything buffered.
    fn drain_response(&mut self, poll: PollId) -> Transmit {
        let frames = self.take_buffer();
        let (body, binary) = match self.protocol {
            Protocol::V4 => (encode_payload(frames.iter()), false),
            Protocol::V3 => v3::encode_payload(&frames, self.polling_binary),
        };
        Transmit::PollResponse { poll, body, binary }
    }

    /// The response to `poll` that carries one data-less packet (close or noop).
    fn reply(&self, poll: PollId, packet: Packet) -> Transmit {
        let body = match (self.protocol, packet) {
            (Protocol::V4, Packet::Close) => Bytes::from_static(b"1"),
            (Protocol::V4, _) => Bytes::from_static(b"6"),
            (Protocol::V3, Packet::Close) => Bytes::from_static(b"1:1"),
            (Protocol::V3, _) => Bytes::from_static(b"1:6"),
        };
        Transmit::PollResponse { poll, body, binary: false }
    }

    /// Empties the polling buffer.
    fn take_buffer(&mut self) -> Vec<Frame> {
        self.buffered_bytes = 0;
        self.buffer.drain(..).collect()
    }

    fn push_frame(&mut self, frame: Frame) {
        match self.transport {
            TransportKind::WebSocket => self.transmits.push_back(Transmit::WebSocket(frame)),
            TransportKind::Polling
                if self.buffer.len() >= self.config.max_buffered_frames
                    || self.buffered_bytes + frame.len() > self.config.max_buffered_bytes =>
            {
                self.shutdown(CloseReason::BufferFull, Packet::Close);
            }
            TransportKind::Polling => {
                self.buffered_bytes += frame.len();
                self.buffer.push_back(frame);
            }
        }
    }

    fn handle_packet(&mut self, now: Instant, packet: Packet) {
        match packet {
            Packet::Message(message) => self.events.push_back(Event::Message(message)),
            Packet::Pong | Packet::PongProbe if self.protocol == Protocol::V4 => {
                self.pong_deadline = None;
                self.next_ping = Some(now + self.config.ping_interval);
            }
            // In v3 the client pings: the answer carries no data (not even "probe"), and the client has
            // another interval plus timeout for its next ping.
            Packet::Ping | Packet::PingProbe if self.protocol == Protocol::V3 => {
                self.push_frame(Packet::Pong.encode());
                if self.state == State::Open {
                    self.pong_deadline = Some(now + self.config.ping_interval + self.config.ping_timeout);
                }
            }
            // Only the server pings in v4, only the client in v3; the reference closes with "invalid
            // heartbeat direction".
            Packet::Ping | Packet::PingProbe | Packet::Pong | Packet::PongProbe => {
                self.shutdown(CloseReason::TransportError, Packet::Close)
            }
            // The pending long-poll is released with a noop, as in the reference.
            Packet::Close => self.shutdown(CloseReason::TransportClose, Packet::Noop),
            Packet::Open(_) | Packet::Upgrade | Packet::Noop => {}
        }
    }

    fn complete_upgrade(&mut self, _now: Instant) {
        if let Upgrade::Probing { base64, .. } = self.upgrade {
            self.ws_base64 = base64;
        }
        self.upgrade = Upgrade::None;
        if let Some(poll) = self.take_pending_poll() {
            self.transmits.push_back(self.reply(poll, Packet::Noop));
        }
        self.transport = TransportKind::WebSocket;
        self.transmits.push_back(Transmit::Upgraded);
        let buffered = self.take_buffer();
        self.transmits.extend(buffered.into_iter().map(Transmit::WebSocket));
        self.events.push_back(Event::Upgraded);
    }

    fn abandon_upgrade(&mut self) {
        self.upgrade = Upgrade::None;
        self.transmits.push_back(Transmit::CloseProbe);
    }

    /// The client's bytes are not Engine.IO: closes with "parse error", the error in the close event.
    fn parse_error(&mut self, error: DecodeError) {
        self.shutdown_with(CloseReason::ParseError, Packet::Close, Some(error));
    }

    /// Closes now: tells each open transport, then reports the reason. `poll_reply` (close or noop)
    /// answers a pending GET.
    fn shutdown(&mut self, reason: CloseReason, poll_reply: Packet) {
        self.shutdown_with(reason, poll_reply, None);
    }

    fn shutdown_with(&mut self, reason: CloseReason, poll_reply: Packet, error: Option<DecodeError>) {
        if self.state == State::Closed {
            return;
        }
        if self.is_upgrading() {
            self.abandon_upgrade();
        }
        match self.transport {
            TransportKind::WebSocket => self.transmits.push_back(Transmit::CloseWebSocket),
            TransportKind::Polling => {
                if let Some(poll) = self.take_pending_poll() {
                    self.transmits.push_back(self.reply(poll, poll_reply));
                }
            }
        }
        self.take_buffer();
        self.finish_with(reason, error);
    }

    fn finish(&mut self, reason: CloseReason) {
        self.finish_with(reason, None);
    }

    fn finish_with(&mut self, reason: CloseReason, error: Option<DecodeError>) {
        self.state = State::Closed;
        self.next_ping = None;
        self.pong_deadline = None;
        self.post_in_flight = false;
        self.events.push_back(Event::Closed { reason, error });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_idle_websocket_session_holds_no_queue_buffer() {
        let t0 = Instant::now();
        let mut s = Session::new("sid".into(), SessionConfig::default(), TransportKind::WebSocket, t0, None);
        s.handle_frame(t0, Channel::Main, Frame::Text("4hello".into())).unwrap();
        s.send(Frame::Text("4back".into())).unwrap();
        assert!(s.transmits.capacity() > 0 && s.events.capacity() > 0);
        while s.poll_transmit().is_some() {}
        while s.poll_event().is_some() {}
        assert_eq!((s.transmits.capacity(), s.events.capacity()), (0, 0));
    }
}
