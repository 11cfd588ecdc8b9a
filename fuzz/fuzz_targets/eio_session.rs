//! Drives a session with a sequence of operations read from the fuzz input, on a simulated clock, and
//! checks after each step what a runtime relies on:
//!
//! - nothing (no transmit, no event) follows `Event::Closed`, which comes at most once, and
//!   `is_closed()` agrees with it; `poll_timeout()` is `None` once closed;
//! - `poll_timeout()` is never in the past: after an input at `now` it is `None` or later than `now`;
//! - `buffered()` is bounded by the frames that could have been queued (open, initial, sends, pings);
//! - `send_now` hands a frame back only on an open WebSocket with nothing waiting, the same frame that
//!   `send` then `poll_transmit` give;
//! - transmits match the transports the runtime holds: a `PollResponse` answers the pending GET (by its
//!   identity, and `pending_poll()` agrees), `Probe`, `CloseProbe` and `Upgraded` need an open probe,
//!   `WebSocket` and `CloseWebSocket` need a WebSocket transport; a probe that goes away is answered with
//!   `CloseProbe`; a new upgrade is only accepted once the previous probe was closed or taken over; GET
//!   identities are never reused, and the end of a GET already answered changes nothing; and once closed,
//!   no GET is left hanging and no probe is left open.
//!
//! The session speaks v4 or v3 (a bit of the first byte), with bodies and frames of both revisions.
//!
//! Set `EIO_FUZZ_TRACE=1` to print every step's output, e.g. when running the target on one input.

#![no_main]

use std::sync::OnceLock;
use std::time::{Duration, Instant};

use engineio_proto::{
    Bytes, Channel, CloseReason, Error, Event, Frame, Message, PollId, Protocol, ProtocolError, Session,
    SessionConfig, Transmit, TransportKind,
};
use libfuzzer_sys::fuzz_target;

fn tracing() -> bool {
    static TRACE: OnceLock<bool> = OnceLock::new();
    *TRACE.get_or_init(|| std::env::var_os("EIO_FUZZ_TRACE").is_some())
}

/// Reads the fuzz input; past its end every read gives zeros.
struct Input<'a> {
    data: &'a [u8],
}

impl Input<'_> {
    fn is_empty(&self) -> bool {
        self.data.is_empty()
    }

    fn byte(&mut self) -> u8 {
        match self.data.split_first() {
            Some((&b, rest)) => {
                self.data = rest;
                b
            }
            None => 0,
        }
    }

    fn u16(&mut self) -> u16 {
        u16::from_le_bytes([self.byte(), self.byte()])
    }

    fn bytes(&mut self, max: usize) -> &[u8] {
        let len = (self.byte() as usize).min(max).min(self.data.len());
        let (head, rest) = self.data.split_at(len);
        self.data = rest;
        head
    }

    fn frame(&mut self) -> Frame {
        const CANNED: &[&str] =
            &["2probe", "3probe", "5", "3", "2", "1", "6", "4hello", "0{}", "abc", "", "b4AQID", "b4!"];
        match self.byte() % 5 {
            0 => Frame::Text(CANNED[self.byte() as usize % CANNED.len()].into()),
            4 => Frame::Binary(Bytes::copy_from_slice(&[4, 1, 2][..self.byte() as usize % 4])),
            1 => Frame::Binary(Bytes::copy_from_slice(self.bytes(64))),
            _ => Frame::Text(String::from_utf8_lossy(self.bytes(64)).into_owned().into()),
        }
    }

    fn body(&mut self) -> Option<Bytes> {
        const CANNED: &[&[u8]] = &[
            b"3",
            b"4a\x1e4b",
            b"1",
            b"4a\x1eabc",
            b"bAQID\x1e3",
            b"2",
            b"6",
            b"5",
            b"1:22:4a",
            b"6:b4AQID1:1",
            b"\x00\x01\xff2\x01\x03\xff\x04\x01\x02",
            b"3:4a",
            b"0:",
        ];
        match self.byte() % 4 {
            0 => None,
            1 => Some(Bytes::from_static(CANNED[self.byte() as usize % CANNED.len()])),
            _ => Some(Bytes::copy_from_slice(self.bytes(96))),
        }
    }
}

/// What the runtime holds, as a runtime following the module documentation would track it.
struct Model {
    now: Instant,
    closed: bool,
    /// The GET the runtime holds, by its identity.
    pending_get: Option<PollId>,
    /// The identity of the last GET the session took (identities only grow).
    last_get: Option<PollId>,
    probe_open: bool,
    websocket: bool,
    /// Upper bound of frames ever queued for polling.
    queued: usize,
    /// `max_buffered_frames` (or the open and initial packets, if more).
    max_buffered: usize,
}

impl Model {
    /// Drains the session after an input and checks every invariant.
    fn drain_and_check(&mut self, s: &mut Session, step: usize) {
        let mut transmits = Vec::new();
        while let Some(t) = s.poll_transmit() {
            transmits.push(t);
            assert!(transmits.len() < 10_000, "step {step}: poll_transmit does not end");
        }
        let mut events = Vec::new();
        while let Some(e) = s.poll_event() {
            events.push(e);
            assert!(events.len() < 10_000, "step {step}: poll_event does not end");
        }
        if tracing() {
            eprintln!("step {step}: transmits {transmits:?} events {events:?}");
        }
        if self.closed {
            assert!(transmits.is_empty(), "step {step}: transmit after Closed: {transmits:?}");
            assert!(events.is_empty(), "step {step}: event after Closed: {events:?}");
        }
        let mut upgraded_transmits = 0;
        for t in &transmits {
            match t {
                Transmit::PollResponse { poll, .. } => {
                    assert!(!self.websocket, "step {step}: PollResponse after the upgrade: {transmits:?}");
                    assert_eq!(
                        self.pending_get,
                        Some(*poll),
                        "step {step}: a PollResponse that answers no pending GET: {transmits:?}"
                    );
                    self.pending_get = None;
                }
                Transmit::WebSocket(_) | Transmit::CloseWebSocket => {
                    assert!(self.websocket, "step {step}: {t:?} without a WebSocket: {transmits:?}");
                }
                Transmit::Probe(_) => assert!(self.probe_open, "step {step}: Probe with no probe"),
                Transmit::CloseProbe => {
                    assert!(self.probe_open, "step {step}: CloseProbe with no probe: {transmits:?}");
                    self.probe_open = false;
                }
                Transmit::Upgraded => {
                    assert!(self.probe_open, "step {step}: Upgraded with no probe: {transmits:?}");
                    assert!(!self.websocket, "step {step}: Upgraded twice");
                    self.probe_open = false;
                    self.websocket = true;
                    upgraded_transmits += 1;
                }
            }
        }
        let closed_events = events.iter().filter(|e| matches!(e, Event::Closed { .. })).count();
        assert!(closed_events <= 1, "step {step}: several Closed events: {events:?}");
        if closed_events == 1 {
            assert!(matches!(events.last(), Some(Event::Closed { .. })), "step {step}: events after Closed: {events:?}");
            self.closed = true;
        }
        let upgraded_events = events.iter().filter(|e| **e == Event::Upgraded).count();
        assert_eq!(upgraded_events, upgraded_transmits, "step {step}: {transmits:?} / {events:?}");

        assert_eq!(s.is_closed(), self.closed, "step {step}: is_closed disagrees with the events");
        assert_eq!(s.pending_poll(), self.pending_get, "step {step}: pending_poll disagrees with the transmits");
        assert_eq!(
            s.transport() == TransportKind::WebSocket,
            self.websocket,
            "step {step}: transport disagrees with the transmits"
        );
        if self.closed {
            assert_eq!(s.poll_timeout(), None, "step {step}: timer after close");
            assert!(self.pending_get.is_none(), "step {step}: closed with a GET left hanging");
            assert!(!self.probe_open, "step {step}: closed with the probe left open");
            assert!(!s.is_upgrading(), "step {step}: closed while upgrading");
        }
        if let Some(t) = s.poll_timeout() {
            assert!(t > self.now, "step {step}: poll_timeout {:?} not after now", t - self.now);
        }
        if s.is_upgrading() {
            assert!(self.probe_open, "step {step}: upgrading without a probe");
        }
        assert!(s.buffered() <= self.queued, "step {step}: buffered {} > queued {}", s.buffered(), self.queued);
        assert!(s.buffered() <= self.max_buffered, "step {step}: buffered {} > the limit {}", s.buffered(), self.max_buffered);
        if self.websocket {
            assert_eq!(s.buffered(), 0, "step {step}: frames buffered on a WebSocket session");
        }
    }
}

fn millis(byte: u8) -> Duration {
    Duration::from_millis(1 + byte as u64 * 4)
}

fuzz_target!(|data: &[u8]| {
    let mut input = Input { data };
    let header = input.byte();
    let transport = if header & 1 == 0 { TransportKind::Polling } else { TransportKind::WebSocket };
    let config = SessionConfig {
        ping_interval: millis(input.byte()),
        ping_timeout: millis(input.byte()),
        upgrade_timeout: millis(input.byte()),
        close_timeout: millis(input.byte()),
        max_payload: 1 + input.byte() as usize * 4,
        allow_upgrades: header & 2 == 0,
        max_buffered_frames: 1 + input.byte() as usize,
        max_buffered_bytes: 1 + input.byte() as usize * 64,
    };
    let initial = match (header >> 2) & 3 {
        0 => None,
        1 => Some(Message::from("initial")),
        2 => Some(Message::from(vec![1u8, 2, 3])),
        _ => Some(Message::from("")),
    };
    let t0 = Instant::now();
    let config_max = config.max_buffered_frames;
    let protocol = if header & 16 == 0 { Protocol::V4 } else { Protocol::V3 };
    let mut s = Session::with_protocol(protocol, "fuzz".into(), config, transport, t0, initial.clone());
    s.set_polling_base64(header & 32 != 0);
    let mut m = Model {
        now: t0,
        closed: false,
        pending_get: None,
        last_get: None,
        probe_open: false,
        websocket: transport == TransportKind::WebSocket,
        queued: 1 + usize::from(initial.is_some()),
        max_buffered: config_max.max(1 + usize::from(initial.is_some())),
    };
    m.drain_and_check(&mut s, 0);

    let mut step = 0;
    while !input.is_empty() && step < 2_000 {
        step += 1;
        let now = m.now;
        match input.byte() % 14 {
            0 => match s.handle_poll(now) {
                Ok(poll) => {
                    assert!(m.pending_get.is_none(), "step {step}: a duplicate GET was accepted");
                    assert!(m.last_get < Some(poll), "step {step}: GET identity {poll:?} reused");
                    m.pending_get = Some(poll);
                    m.last_get = Some(poll);
                }
                Err(Error::Protocol(ProtocolError::DuplicatePoll)) => {
                    assert!(m.pending_get.is_some(), "step {step}: DuplicatePoll with no pending GET")
                }
                Err(_) => {}
            },
            1 => {
                let _ = s.handle_post_start(now);
            }
            2 => {
                let binary = input.byte() & 1 == 1;
                let body = input.body();
                if protocol == Protocol::V3 {
                    // Every ping of the body is answered with a pong.
                    m.queued += body.as_ref().map_or(0, Bytes::len);
                }
                let _ = s.handle_post(now, body, binary);
            }
            3 => {
                let frame = input.frame();
                m.queued += usize::from(protocol == Protocol::V3);
                let _ = s.handle_frame(now, Channel::Main, frame);
            }
            4 => {
                let frame = input.frame();
                let _ = s.handle_frame(now, Channel::Probe, frame);
            }
            5 => {
                if s.handle_upgrade_request(now).is_ok() {
                    assert!(!m.probe_open, "step {step}: a second probe was accepted while one is open");
                    assert!(!m.websocket, "step {step}: upgrade accepted on a WebSocket session");
                    m.probe_open = true;
                }
            }
            6 => {
                let flags = input.byte();
                let channel = if flags & 1 == 0 { Channel::Main } else { Channel::Probe };
                // The runtime only reports a probe it holds; the session answers with CloseProbe, as on
                // every end of a probe.
                if channel == Channel::Probe && !m.probe_open {
                    continue;
                }
                s.handle_transport_closed(now, channel, flags & 2 != 0);
                if channel == Channel::Probe {
                    m.drain_and_check(&mut s, step);
                    assert!(!m.probe_open, "step {step}: the probe went away without a CloseProbe");
                }
            }
            7 if input.byte() & 1 == 0 => {
                let frame = input.frame();
                if s.send(frame).is_ok() {
                    m.queued += 1;
                }
            }
            7 => {
                // `send_now`: the transmits were drained after the last step, so an open WebSocket session
                // hands the frame back, converted as `send` then `poll_transmit` would have; any other
                // queues it as `send`.
                let frame = input.frame();
                match s.send_now(frame.clone()) {
                    Ok(Some(now_frame)) => {
                        assert!(m.websocket && !m.closed, "step {step}: send_now wrote on no open WebSocket");
                        assert!(s.send(frame).is_ok(), "step {step}: send refused what send_now took");
                        m.queued += 1;
                        match s.poll_transmit() {
                            Some(Transmit::WebSocket(queued)) => assert_eq!(
                                queued, now_frame,
                                "step {step}: send_now and send give different frames"
                            ),
                            other => panic!("step {step}: send on an open WebSocket gave {other:?}"),
                        }
                    }
                    Ok(None) => {
                        assert!(!m.websocket, "step {step}: send_now queued on an open WebSocket");
                        m.queued += 1;
                    }
                    Err(_) => assert!(m.closed || s.is_closed() || !s.is_writable(), "step {step}: send_now refused"),
                }
            }
            8 => {
                // The server's graceful close, or the runtime ending the session at once (a full buffer).
                let reason = if input.byte() & 1 == 0 { CloseReason::ForcedClose } else { CloseReason::BufferFull };
                s.close(now, reason);
            }
            9 => {
                if let Some(poll) = m.pending_get.take() {
                    s.handle_poll_aborted(now, poll);
                } else if let Some(stale) = m.last_get {
                    // A GET already answered ends: nothing changes.
                    let closed = s.is_closed();
                    s.handle_timeout(now);
                    m.drain_and_check(&mut s, step);
                    s.handle_poll_aborted(now, stale);
                    assert_eq!(s.is_closed(), closed, "step {step}: the end of an answered GET changed the session");
                }
            }
            10 => {
                m.now += Duration::from_millis(input.u16() as u64 % 2_000);
                m.queued += 1; // a ping may be queued
                s.handle_timeout(m.now);
            }
            11 => {
                // Wake exactly at the deadline, as a runtime does.
                if let Some(t) = s.poll_timeout() {
                    m.now = t;
                    m.queued += 1;
                    s.handle_timeout(t);
                }
            }
            12 => {
                // A spurious wake-up changes nothing that is not due.
                m.queued += 1;
                s.handle_timeout(now);
            }
            _ => {
                let message = if input.byte() & 1 == 0 {
                    Message::from(String::from_utf8_lossy(input.bytes(32)).into_owned())
                } else {
                    Message::from(input.bytes(32).to_vec())
                };
                if s.send(Frame::from_message(&message)).is_ok() {
                    m.queued += 1;
                }
            }
        }
        m.drain_and_check(&mut s, step);
    }
});
