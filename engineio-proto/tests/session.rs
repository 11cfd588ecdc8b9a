//! Deterministic tests of the session state machine, driven by a simulated clock.
//!
//! Every instant is built from one `Instant::now()` plus a number of milliseconds; nothing sleeps.

use std::time::{Duration, Instant};

mod common;

use common::{at, config};
use engineio_proto::{
    Bytes, Channel, CloseReason, DecodeError, Error, Event, Frame, Message, PollId, ProtocolError, Session,
    SessionConfig, Transmit, TransportKind, UsageError,
};

// ---------------------------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------------------------

/// The close event of a session closed for `reason` other than a parse error.
fn closed(reason: CloseReason) -> Event {
    Event::Closed { reason, error: None }
}

/// The close event of a session closed because the client's bytes were not Engine.IO.
fn parse_error(error: DecodeError) -> Event {
    Event::Closed { reason: CloseReason::ParseError, error: Some(error) }
}

/// The transmits, with each long-poll answer's GET identity cleared (`PollId(0)`): the tests about
/// identities (`poll_identity_*`) read them with `poll_transmit` directly.
fn transmits(session: &mut Session) -> Vec<Transmit> {
    std::iter::from_fn(|| session.poll_transmit())
        .map(|t| match t {
            Transmit::PollResponse { body, binary, .. } => Transmit::PollResponse { poll: PollId(0), body, binary },
            t => t,
        })
        .collect()
}

fn events(session: &mut Session) -> Vec<Event> {
    std::iter::from_fn(|| session.poll_event()).collect()
}

fn text(s: &str) -> Frame {
    Frame::Text(s.into())
}

fn binary(b: &[u8]) -> Frame {
    Frame::Binary(Bytes::copy_from_slice(b))
}

fn poll_response(body: &[u8]) -> Transmit {
    Transmit::PollResponse { poll: PollId(0), body: Bytes::copy_from_slice(body), binary: false }
}

fn body_of(transmit: &Transmit) -> &[u8] {
    match transmit {
        Transmit::PollResponse { body, .. } => body,
        other => panic!("expected a PollResponse, got {other:?}"),
    }
}

/// A polling session whose handshake GET has been answered with the open packet.
fn polling_session(t0: Instant) -> Session {
    let mut s = Session::new("sid-p".into(), config(), TransportKind::Polling, t0, None);
    s.handle_poll(t0).unwrap();
    let out = transmits(&mut s);
    assert_eq!(out.len(), 1, "{out:?}");
    assert!(body_of(&out[0]).starts_with(b"0{"));
    assert_eq!(events(&mut s), vec![]);
    s
}

/// A WebSocket session whose open packet has been drained.
fn websocket_session(t0: Instant) -> Session {
    let mut s = Session::new("sid-w".into(), config(), TransportKind::WebSocket, t0, None);
    let out = transmits(&mut s);
    assert_eq!(out.len(), 1, "{out:?}");
    assert!(matches!(&out[0], Transmit::WebSocket(Frame::Text(t)) if t.starts_with("0{")));
    s
}

/// A polling session with an accepted upgrade request and a successful `2probe` exchange.
fn probed_session(t0: Instant) -> Session {
    let mut s = polling_session(t0);
    s.handle_upgrade_request(t0).unwrap();
    s.handle_frame(t0, Channel::Probe, text("2probe")).unwrap();
    assert_eq!(transmits(&mut s), vec![Transmit::Probe(text("3probe"))]);
    assert_eq!(events(&mut s), vec![Event::Upgrading]);
    s
}

/// Asserts that the session is closed and quiet: no timer, no output, and inputs are refused or ignored.
fn assert_closed_and_quiet(s: &mut Session, now: Instant) {
    assert!(s.is_closed());
    assert_eq!(s.poll_timeout(), None);
    assert_eq!(transmits(s), vec![]);
    assert_eq!(events(s), vec![]);
    assert_eq!(s.send(Frame::message("late")), Err(Error::Usage(UsageError::SessionClosed)));
    s.handle_timeout(now + Duration::from_secs(3_600));
    s.close(now, CloseReason::ForcedClose);
    assert_eq!(transmits(s), vec![]);
    assert_eq!(events(s), vec![]);
}

fn open_json(frame_text: &str) -> serde_json::Value {
    let json = frame_text.strip_prefix('0').expect("an open packet");
    serde_json::from_str(json).expect("the open packet carries JSON")
}

// ---------------------------------------------------------------------------------------------------------
// Handshake
// ---------------------------------------------------------------------------------------------------------

#[test]
fn polling_handshake_answers_the_first_get_with_the_open_packet() {
    let t0 = Instant::now();
    let mut s = Session::new("abc".into(), SessionConfig::default(), TransportKind::Polling, t0, None);
    assert_eq!(s.sid(), "abc");
    assert_eq!(s.transport(), TransportKind::Polling);
    // Nothing goes out before the handshake GET is registered.
    assert_eq!(transmits(&mut s), vec![]);
    assert_eq!(s.buffered(), 1);
    s.handle_poll(t0).unwrap();
    let out = transmits(&mut s);
    assert_eq!(out.len(), 1, "{out:?}");
    let body = std::str::from_utf8(body_of(&out[0])).unwrap();
    assert!(body.starts_with(r#"0{"sid":"abc""#), "{body}");
    assert!(body.contains(r#""upgrades":["websocket"]"#), "{body}");
    assert!(body.contains(r#""pingInterval":25000"#), "{body}");
    assert!(body.contains(r#""pingTimeout":20000"#), "{body}");
    assert!(body.contains(r#""maxPayload":1000000"#), "{body}");
    assert!(!body.contains('\x1e'), "{body}");
    let json = open_json(body);
    assert_eq!(json["sid"], "abc");
    assert_eq!(json["upgrades"], serde_json::json!(["websocket"]));
    assert_eq!(json["pingInterval"], 25_000);
    assert_eq!(json["pingTimeout"], 20_000);
    assert_eq!(json["maxPayload"], 1_000_000);
    assert_eq!(s.buffered(), 0);
    assert_eq!(events(&mut s), vec![]);
}

#[test]
fn polling_handshake_appends_the_initial_message_after_a_separator() {
    let t0 = Instant::now();
    let initial = Message::from("welcome");
    let mut s = Session::new("abc".into(), config(), TransportKind::Polling, t0, Some(initial));
    s.handle_poll(t0).unwrap();
    let out = transmits(&mut s);
    assert_eq!(out.len(), 1, "{out:?}");
    let body = std::str::from_utf8(body_of(&out[0])).unwrap();
    let (open, rest) = body.split_once('\x1e').expect("two entries");
    assert!(open.starts_with(r#"0{"sid":"abc""#), "{body}");
    assert!(open.ends_with('}'), "{body}");
    assert_eq!(rest, "4welcome");
    assert_eq!(open_json(open)["pingInterval"], 1_000);
}

#[test]
fn polling_handshake_with_a_binary_initial_message_uses_base64() {
    let t0 = Instant::now();
    let initial = Message::from(vec![1u8, 2, 3, 4]);
    let mut s = Session::new("abc".into(), config(), TransportKind::Polling, t0, Some(initial));
    s.handle_poll(t0).unwrap();
    let out = transmits(&mut s);
    let body = body_of(&out[0]);
    assert!(body.ends_with(b"}\x1ebAQIDBA=="), "{:?}", String::from_utf8_lossy(body));
}

#[test]
fn polling_handshake_without_upgrades_advertises_none() {
    let t0 = Instant::now();
    let cfg = SessionConfig { allow_upgrades: false, ..config() };
    let mut s = Session::new("abc".into(), cfg, TransportKind::Polling, t0, None);
    s.handle_poll(t0).unwrap();
    let out = transmits(&mut s);
    let body = std::str::from_utf8(body_of(&out[0])).unwrap();
    assert!(body.contains(r#""upgrades":[]"#), "{body}");
    assert_eq!(s.handle_upgrade_request(t0), Err(Error::Protocol(ProtocolError::UpgradeRefused)));
}

#[test]
fn websocket_handshake_sends_the_open_packet_without_upgrades() {
    let t0 = Instant::now();
    let mut s = Session::new("abc".into(), config(), TransportKind::WebSocket, t0, Some("hi".into()));
    let out = transmits(&mut s);
    assert_eq!(out.len(), 2, "{out:?}");
    let Transmit::WebSocket(Frame::Text(open)) = &out[0] else { panic!("{out:?}") };
    assert!(open.starts_with(r#"0{"sid":"abc""#), "{open}");
    assert!(open.contains(r#""upgrades":[]"#), "{open}");
    let json = open_json(open);
    assert_eq!(json["pingTimeout"], 500);
    assert_eq!(json["maxPayload"], 10_000);
    assert_eq!(out[1], Transmit::WebSocket(text("4hi")));
    assert_eq!(s.buffered(), 0);
    // A WebSocket session cannot upgrade any further.
    assert_eq!(s.handle_upgrade_request(t0), Err(Error::Protocol(ProtocolError::UpgradeRefused)));
}

// ---------------------------------------------------------------------------------------------------------
// Heartbeat
// ---------------------------------------------------------------------------------------------------------

#[test]
fn ping_is_sent_exactly_at_the_ping_interval() {
    let t0 = Instant::now();
    let mut s = websocket_session(t0);
    assert_eq!(s.poll_timeout(), Some(at(t0, 1_000)));
    // Waking early does nothing.
    s.handle_timeout(at(t0, 999));
    assert_eq!(transmits(&mut s), vec![]);
    assert_eq!(s.poll_timeout(), Some(at(t0, 1_000)));
    s.handle_timeout(at(t0, 1_000));
    assert_eq!(transmits(&mut s), vec![Transmit::WebSocket(text("2"))]);
    // Now the pong deadline is the only timer.
    assert_eq!(s.poll_timeout(), Some(at(t0, 1_500)));
    assert_eq!(events(&mut s), vec![]);
}

#[test]
fn default_config_pings_after_25_seconds() {
    let t0 = Instant::now();
    let s = Session::new("x".into(), SessionConfig::default(), TransportKind::WebSocket, t0, None);
    assert_eq!(s.poll_timeout(), Some(t0 + Duration::from_secs(25)));
}

#[test]
fn pong_schedules_the_next_ping_one_interval_after_the_pong() {
    let t0 = Instant::now();
    let mut s = websocket_session(t0);
    s.handle_timeout(at(t0, 1_000));
    assert_eq!(transmits(&mut s), vec![Transmit::WebSocket(text("2"))]);
    s.handle_frame(at(t0, 1_200), Channel::Main, text("3")).unwrap();
    assert_eq!(s.poll_timeout(), Some(at(t0, 2_200)));
    // The old pong deadline no longer applies.
    s.handle_timeout(at(t0, 1_500));
    assert!(!s.is_closed());
    assert_eq!(transmits(&mut s), vec![]);
    assert_eq!(events(&mut s), vec![]);
    s.handle_timeout(at(t0, 2_200));
    assert_eq!(transmits(&mut s), vec![Transmit::WebSocket(text("2"))]);
    assert_eq!(s.poll_timeout(), Some(at(t0, 2_700)));
}

#[test]
fn a_message_after_the_pong_deadline_is_not_delivered() {
    // Every frame carries the time it was read: a message read after a missed pong deadline finds the
    // session closed by ping timeout, whether or not the runtime's timer fired first.
    let t0 = Instant::now();
    let mut s = websocket_session(t0);
    s.handle_frame(t0, Channel::Main, text("4hello")).unwrap();
    assert_eq!(events(&mut s), vec![Event::Message(Message::Text("hello".into()))]);
    s.handle_timeout(at(t0, 1_000));
    assert_eq!(transmits(&mut s), vec![Transmit::WebSocket(text("2"))]);
    assert_eq!(s.handle_frame(at(t0, 1_499), Channel::Main, text("4still")), Ok(()));
    assert_eq!(
        s.handle_frame(at(t0, 1_500), Channel::Main, text("4late")),
        Err(Error::Protocol(ProtocolError::Closed))
    );
    assert_eq!(events(&mut s), vec![Event::Message(Message::Text("still".into())), closed(CloseReason::PingTimeout)]);
}

#[test]
fn missing_pong_closes_the_websocket_session_with_ping_timeout() {
    let t0 = Instant::now();
    let mut s = websocket_session(t0);
    s.handle_timeout(at(t0, 1_000));
    assert_eq!(transmits(&mut s), vec![Transmit::WebSocket(text("2"))]);
    s.handle_timeout(at(t0, 1_499));
    assert!(!s.is_closed());
    s.handle_timeout(at(t0, 1_500));
    assert_eq!(transmits(&mut s), vec![Transmit::CloseWebSocket]);
    assert_eq!(events(&mut s), vec![closed(CloseReason::PingTimeout)]);
    assert_closed_and_quiet(&mut s, at(t0, 1_500));
    assert_eq!(s.handle_frame(at(t0, 1_600), Channel::Main, text("3")), Err(Error::Protocol(ProtocolError::Closed)));
}

#[test]
fn a_late_get_after_the_pong_deadline_finds_the_session_closed() {
    // The client took the ping (at 1 s) but never answered; its next GET comes after the pong deadline
    // (1.5 s) and before the runtime's timer fired: the GET must not be served.
    let t0 = Instant::now();
    let mut s = polling_session(t0);
    s.handle_poll(at(t0, 10)).unwrap();
    s.handle_timeout(at(t0, 1_000));
    assert_eq!(transmits(&mut s), vec![poll_response(b"2")]);
    assert_eq!(s.handle_poll(at(t0, 1_501)), Err(Error::Protocol(ProtocolError::Closed)));
    assert_eq!(events(&mut s), vec![closed(CloseReason::PingTimeout)]);
    // A POST carrying the pong, as late, is refused the same way.
    let mut s = polling_session(t0);
    s.handle_timeout(at(t0, 1_000));
    assert_eq!(s.handle_post_start(at(t0, 1_500)), Err(Error::Protocol(ProtocolError::Closed)));
    assert_eq!(events(&mut s), vec![closed(CloseReason::PingTimeout)]);
    // A pong over WebSocket after the deadline does not save the session either.
    let mut s = websocket_session(t0);
    s.handle_timeout(at(t0, 1_000));
    assert_eq!(transmits(&mut s), vec![Transmit::WebSocket(text("2"))]);
    assert_eq!(s.handle_frame(at(t0, 1_600), Channel::Main, text("3")), Err(Error::Protocol(ProtocolError::Closed)));
    assert_eq!(events(&mut s), vec![closed(CloseReason::PingTimeout)]);
}

#[test]
fn a_late_wake_up_counts_the_pong_deadline_from_when_the_ping_was_due() {
    let t0 = Instant::now();
    // The runtime wakes 200 ms late for the ping (due at 1 s): the pong is still due by 1.5 s.
    let mut s = websocket_session(t0);
    s.handle_timeout(at(t0, 1_200));
    assert_eq!(transmits(&mut s), vec![Transmit::WebSocket(text("2"))]);
    assert_eq!(s.poll_timeout(), Some(at(t0, 1_500)));
    // Waking after both deadlines: the ping and the timeout fire in order, as with punctual calls.
    let mut s = websocket_session(t0);
    s.handle_timeout(at(t0, 1_700));
    assert_eq!(transmits(&mut s), vec![Transmit::WebSocket(text("2")), Transmit::CloseWebSocket]);
    assert_eq!(events(&mut s), vec![closed(CloseReason::PingTimeout)]);
    // After a pong the next ping is one interval after the pong.
    let mut s = websocket_session(t0);
    s.handle_timeout(at(t0, 1_000));
    s.handle_frame(at(t0, 1_100), Channel::Main, text("3")).unwrap();
    assert_eq!(s.poll_timeout(), Some(at(t0, 2_100)));
}

#[test]
fn a_base64_websocket_gets_binary_as_text_and_may_send_it_so() {
    let t0 = Instant::now();
    let mut s = websocket_session(t0);
    s.set_websocket_base64(Channel::Main, true).unwrap();
    s.send(binary(&[1, 2, 3])).unwrap();
    s.send(Frame::message("x")).unwrap();
    assert_eq!(transmits(&mut s), vec![Transmit::WebSocket(text("bAQID")), Transmit::WebSocket(text("4x"))]);
    // `b` + base64 from the client is a binary message, whatever the session's setting.
    s.handle_frame(t0, Channel::Main, text("bBAU=")).unwrap();
    assert_eq!(events(&mut s), vec![Event::Message(Message::from(vec![4u8, 5]))]);
    // Bad base64 is a parse error.
    s.handle_frame(t0, Channel::Main, text("b!!")).unwrap();
    assert_eq!(events(&mut s), vec![parse_error(DecodeError::InvalidBase64)]);
    // After an upgrade the setting of the upgrading WebSocket applies to what was buffered while polling.
    let mut s = polling_session(t0);
    assert_eq!(s.set_websocket_base64(Channel::Probe, true), Err(Error::Usage(UsageError::NoSuchTransport)));
    s.handle_upgrade_request(t0).unwrap();
    s.set_websocket_base64(Channel::Probe, true).unwrap();
    s.handle_frame(t0, Channel::Probe, text("2probe")).unwrap();
    assert_eq!(transmits(&mut s), vec![Transmit::Probe(text("3probe"))]);
    s.send(binary(&[9])).unwrap();
    s.handle_frame(t0, Channel::Probe, text("5")).unwrap();
    assert_eq!(transmits(&mut s), vec![Transmit::Upgraded, Transmit::WebSocket(text("bCQ=="))]);
    // Without it, binary stays binary.
    let mut s = websocket_session(t0);
    s.send(binary(&[1])).unwrap();
    assert_eq!(transmits(&mut s), vec![Transmit::WebSocket(binary(&[1]))]);
}

#[test]
fn send_now_hands_a_frame_back_only_when_nothing_waits_ahead_of_it() {
    let t0 = Instant::now();
    // Open on WebSocket with nothing queued: the frame comes back as `poll_transmit` would give it.
    let mut s = websocket_session(t0);
    assert_eq!(s.send_now(Frame::message("a")), Ok(Some(text("4a"))));
    assert_eq!(transmits(&mut s), vec![]);
    s.set_websocket_base64(Channel::Main, true).unwrap();
    assert_eq!(s.send_now(binary(&[1, 2, 3])), Ok(Some(text("bAQID"))), "binary as text for a base64 client");
    // A transmit waiting (the ping due at the interval): the frame is queued behind it, in order.
    s.handle_timeout(at(t0, 1_000));
    assert_eq!(s.send_now(Frame::message("b")), Ok(None));
    assert_eq!(s.send_now(Frame::message("c")), Ok(None));
    assert_eq!(
        transmits(&mut s),
        vec![Transmit::WebSocket(text("2")), Transmit::WebSocket(text("4b")), Transmit::WebSocket(text("4c"))]
    );
    assert_eq!(s.send_now(Frame::message("d")), Ok(Some(text("4d"))), "the queue is empty again");
    // Closing: refused, as `send` is.
    s.close(at(t0, 1_000), CloseReason::ForcedClose);
    assert_eq!(s.send_now(Frame::message("e")), Err(Error::Usage(UsageError::SessionClosed)));
    // Polling: buffered for the next GET.
    let mut p = polling_session(t0);
    assert_eq!(p.send_now(Frame::message("f")), Ok(None));
    p.handle_poll(t0).unwrap();
    assert_eq!(transmits(&mut p), vec![poll_response(b"4f")]);
    // Upgrading: still polling until the upgrade is done, then the buffered frames go out behind
    // `Upgraded`, and what follows them too.
    let mut u = probed_session(t0);
    assert_eq!(u.send_now(Frame::message("g")), Ok(None));
    u.handle_frame(t0, Channel::Probe, text("5")).unwrap();
    assert_eq!(u.send_now(Frame::message("h")), Ok(None));
    assert_eq!(
        transmits(&mut u),
        vec![Transmit::Upgraded, Transmit::WebSocket(text("4g")), Transmit::WebSocket(text("4h"))]
    );
    assert_eq!(u.send_now(Frame::message("i")), Ok(Some(text("4i"))));
}

#[test]
fn polling_heartbeat_pings_through_the_pending_get_and_pong_arrives_by_post() {
    let t0 = Instant::now();
    let mut s = polling_session(t0);
    s.handle_poll(at(t0, 10)).unwrap();
    assert_eq!(transmits(&mut s), vec![]);
    assert_eq!(s.poll_timeout(), Some(at(t0, 1_000)));
    s.handle_timeout(at(t0, 1_000));
    assert_eq!(transmits(&mut s), vec![poll_response(b"2")]);
    s.handle_post_start(at(t0, 1_100)).unwrap();
    s.handle_post_body(at(t0, 1_100), Some(Bytes::from_static(b"3"))).unwrap();
    assert_eq!(s.poll_timeout(), Some(at(t0, 2_100)));
    assert_eq!(events(&mut s), vec![]);
    assert!(!s.is_closed());
}

#[test]
fn missing_pong_on_polling_answers_the_pending_get_with_close() {
    let t0 = Instant::now();
    let mut s = polling_session(t0);
    s.handle_poll(at(t0, 10)).unwrap();
    s.handle_timeout(at(t0, 1_000));
    assert_eq!(transmits(&mut s), vec![poll_response(b"2")]);
    // The client polls again but never answers the ping.
    s.handle_poll(at(t0, 1_010)).unwrap();
    assert_eq!(s.poll_timeout(), Some(at(t0, 1_500)));
    s.handle_timeout(at(t0, 1_500));
    assert_eq!(transmits(&mut s), vec![poll_response(b"1")]);
    assert_eq!(events(&mut s), vec![closed(CloseReason::PingTimeout)]);
    assert_closed_and_quiet(&mut s, at(t0, 1_500));
    assert_eq!(s.handle_poll(at(t0, 1_600)), Err(Error::Protocol(ProtocolError::Closed)));
}

#[test]
fn ping_from_the_client_is_a_transport_error() {
    let t0 = Instant::now();
    let mut s = websocket_session(t0);
    s.handle_frame(t0, Channel::Main, text("2")).unwrap();
    assert_eq!(transmits(&mut s), vec![Transmit::CloseWebSocket]);
    assert_eq!(events(&mut s), vec![closed(CloseReason::TransportError)]);
    assert_closed_and_quiet(&mut s, t0);
}

// ---------------------------------------------------------------------------------------------------------
// WebSocket sessions
// ---------------------------------------------------------------------------------------------------------

#[test]
fn websocket_messages_flow_both_ways_as_text_and_binary() {
    let t0 = Instant::now();
    let mut s = websocket_session(t0);
    s.handle_frame(t0, Channel::Main, Frame::message("héllo")).unwrap();
    s.handle_frame(t0, Channel::Main, binary(&[0, 1, 255])).unwrap();
    s.handle_frame(t0, Channel::Main, text("4")).unwrap();
    assert_eq!(
        events(&mut s),
        vec![
            Event::Message(Message::from("héllo")),
            Event::Message(Message::from(vec![0u8, 1, 255])),
            Event::Message(Message::from("")),
        ]
    );
    s.send(Frame::from_message(&Message::from("out"))).unwrap();
    s.send(Frame::from_message(&Message::from(vec![9u8, 8]))).unwrap();
    s.send(text("4raw")).unwrap();
    assert_eq!(
        transmits(&mut s),
        vec![
            Transmit::WebSocket(text("4out")),
            Transmit::WebSocket(binary(&[9, 8])),
            Transmit::WebSocket(text("4raw")),
        ]
    );
    // WebSocket sessions buffer nothing.
    assert_eq!(s.buffered(), 0);
}

#[test]
fn websocket_ignores_noop_upgrade_and_open_packets() {
    let t0 = Instant::now();
    let mut s = websocket_session(t0);
    for frame in ["6", "5", "0{}"] {
        s.handle_frame(t0, Channel::Main, text(frame)).unwrap();
    }
    assert_eq!(transmits(&mut s), vec![]);
    assert_eq!(events(&mut s), vec![]);
    assert!(!s.is_closed());
}

#[test]
fn websocket_client_close_packet_closes_with_transport_close() {
    let t0 = Instant::now();
    let mut s = websocket_session(t0);
    s.handle_frame(at(t0, 5), Channel::Main, text("1")).unwrap();
    assert_eq!(transmits(&mut s), vec![Transmit::CloseWebSocket]);
    assert_eq!(events(&mut s), vec![closed(CloseReason::TransportClose)]);
    assert_closed_and_quiet(&mut s, at(t0, 5));
}

#[test]
fn websocket_malformed_frame_closes_with_parse_error() {
    let t0 = Instant::now();
    let mut s = websocket_session(t0);
    s.handle_frame(t0, Channel::Main, text("abc")).unwrap();
    assert_eq!(transmits(&mut s), vec![Transmit::CloseWebSocket]);
    assert_eq!(events(&mut s), vec![parse_error(DecodeError::UnknownType(b'a'))]);
    assert_closed_and_quiet(&mut s, t0);
}

#[test]
fn websocket_frames_with_unexpected_data_or_empty_close_with_parse_error() {
    for bad in ["", "1x", "2ping", "7", "5up"] {
        let t0 = Instant::now();
        let mut s = websocket_session(t0);
        s.handle_frame(t0, Channel::Main, text(bad)).unwrap();
        let evs = events(&mut s);
        assert!(
            matches!(evs[..], [Event::Closed { reason: CloseReason::ParseError, error: Some(_) }]),
            "{bad:?}: {evs:?}"
        );
        assert_eq!(transmits(&mut s), vec![Transmit::CloseWebSocket], "{bad:?}");
    }
}

#[test]
fn websocket_closed_cleanly_by_the_transport_is_transport_close() {
    let t0 = Instant::now();
    let mut s = websocket_session(t0);
    s.handle_transport_closed(t0, Channel::Main, false);
    assert_eq!(events(&mut s), vec![closed(CloseReason::TransportClose)]);
    assert_eq!(transmits(&mut s), vec![Transmit::CloseWebSocket]);
    assert_closed_and_quiet(&mut s, t0);
    // A second report changes nothing.
    s.handle_transport_closed(t0, Channel::Main, true);
    assert_eq!(events(&mut s), vec![]);
    assert_eq!(transmits(&mut s), vec![]);
}

#[test]
fn websocket_failing_transport_is_transport_error() {
    let t0 = Instant::now();
    let mut s = websocket_session(t0);
    s.handle_transport_closed(t0, Channel::Main, true);
    assert_eq!(events(&mut s), vec![closed(CloseReason::TransportError)]);
    assert_eq!(transmits(&mut s), vec![Transmit::CloseWebSocket]);
    assert_closed_and_quiet(&mut s, t0);
}

#[test]
fn websocket_session_refuses_polling_requests_and_probe_frames() {
    let t0 = Instant::now();
    let mut s = websocket_session(t0);
    assert_eq!(s.handle_poll(t0), Err(Error::Protocol(ProtocolError::TransportMismatch)));
    assert_eq!(s.handle_post_start(t0), Err(Error::Protocol(ProtocolError::TransportMismatch)));
    assert_eq!(s.handle_frame(t0, Channel::Probe, text("2probe")), Err(Error::Usage(UsageError::NoSuchTransport)));
    assert_eq!(s.handle_frame(t0, Channel::Probe, text("2probe")), Err(Error::Usage(UsageError::NoSuchTransport)));
    assert!(!s.is_closed());
    assert_eq!(transmits(&mut s), vec![]);
    assert_eq!(events(&mut s), vec![]);
}

// ---------------------------------------------------------------------------------------------------------
// Polling
// ---------------------------------------------------------------------------------------------------------

#[test]
fn polling_batches_sends_into_one_payload() {
    let t0 = Instant::now();
    let mut s = polling_session(t0);
    s.send(Frame::from_message(&Message::from("a"))).unwrap();
    s.send(Frame::from_message(&Message::from(vec![1u8, 2, 3, 4]))).unwrap();
    s.send(Frame::from_message(&Message::from("c"))).unwrap();
    assert_eq!(s.buffered(), 3);
    // Nothing leaves without a GET.
    assert_eq!(transmits(&mut s), vec![]);
    s.handle_poll(at(t0, 1)).unwrap();
    assert_eq!(transmits(&mut s), vec![poll_response(b"4a\x1ebAQIDBA==\x1e4c")]);
    assert_eq!(s.buffered(), 0);
}

#[test]
fn polling_batches_everything_sent_before_the_runtime_drains() {
    let t0 = Instant::now();
    let mut s = polling_session(t0);
    s.handle_poll(at(t0, 1)).unwrap();
    s.send(Frame::message("x")).unwrap();
    s.send(binary(&[])).unwrap();
    s.send(Frame::message("y")).unwrap();
    assert_eq!(transmits(&mut s), vec![poll_response(b"4x\x1eb\x1e4y")]);
    // The GET was used up: the next send waits for the next GET.
    s.send(Frame::message("z")).unwrap();
    assert_eq!(transmits(&mut s), vec![]);
    s.handle_poll(at(t0, 2)).unwrap();
    assert_eq!(transmits(&mut s), vec![poll_response(b"4z")]);
}

#[test]
fn polling_post_delivers_text_and_binary_messages_in_order() {
    let t0 = Instant::now();
    let mut s = polling_session(t0);
    s.handle_post_start(t0).unwrap();
    s.handle_post_body(t0, Some(Bytes::from_static(b"4one\x1ebAQID\x1e6\x1e4two"))).unwrap();
    assert_eq!(
        events(&mut s),
        vec![
            Event::Message(Message::from("one")),
            Event::Message(Message::from(vec![1u8, 2, 3])),
            Event::Message(Message::from("two")),
        ]
    );
    // POSTs may follow one another once each body was received.
    s.handle_post_start(t0).unwrap();
    s.handle_post_body(t0, Some(Bytes::from_static(b"4three"))).unwrap();
    assert_eq!(events(&mut s), vec![Event::Message(Message::from("three"))]);
    assert!(!s.is_closed());
}

#[test]
fn polling_post_body_not_received_is_ignored() {
    let t0 = Instant::now();
    let mut s = polling_session(t0);
    s.handle_post_start(t0).unwrap();
    s.handle_post_body(t0, None).unwrap();
    assert!(!s.is_closed());
    assert_eq!(events(&mut s), vec![]);
    s.handle_post_start(t0).unwrap();
}

#[test]
fn duplicate_get_closes_with_transport_error_and_releases_the_pending_one() {
    let t0 = Instant::now();
    let mut s = polling_session(t0);
    s.handle_poll(at(t0, 1)).unwrap();
    assert_eq!(s.handle_poll(at(t0, 2)), Err(Error::Protocol(ProtocolError::DuplicatePoll)));
    assert_eq!(transmits(&mut s), vec![poll_response(b"1")]);
    assert_eq!(events(&mut s), vec![closed(CloseReason::TransportError)]);
    assert_closed_and_quiet(&mut s, at(t0, 2));
}

// ---------------------------------------------------------------------------------------------------------
// The identity of each GET

/// Every transmit, identities kept.
fn raw_transmits(session: &mut Session) -> Vec<Transmit> {
    std::iter::from_fn(|| session.poll_transmit()).collect()
}

fn answer(poll: PollId, body: &[u8]) -> Transmit {
    Transmit::PollResponse { poll, body: Bytes::copy_from_slice(body), binary: false }
}

#[test]
fn poll_identity_each_get_is_answered_by_its_own_response() {
    let t0 = Instant::now();
    let mut s = Session::new("sid".into(), config(), TransportKind::Polling, t0, None);
    let first = s.handle_poll(t0).unwrap();
    assert_eq!(first, PollId(1));
    assert!(matches!(&raw_transmits(&mut s)[..], [Transmit::PollResponse { poll, .. }] if *poll == first));
    assert_eq!(s.pending_poll(), None, "answered with the open packet");
    let second = s.handle_poll(at(t0, 1)).unwrap();
    assert_eq!(second, PollId(2));
    assert_eq!(s.pending_poll(), Some(second));
    assert!(s.is_writable());
    s.send(Frame::message("hi")).unwrap();
    assert_eq!(raw_transmits(&mut s), vec![answer(second, b"4hi")]);
    assert_eq!(s.pending_poll(), None);
}

#[test]
fn poll_identity_a_duplicate_get_answers_the_earlier_one() {
    let t0 = Instant::now();
    let mut s = polling_session(t0);
    let pending = s.handle_poll(at(t0, 1)).unwrap();
    assert_eq!(s.handle_poll(at(t0, 2)), Err(Error::Protocol(ProtocolError::DuplicatePoll)));
    // The close packet answers the GET that was pending; the duplicate gets no PollResponse (the runtime
    // answers it with 400).
    assert_eq!(raw_transmits(&mut s), vec![answer(pending, b"1")]);
}

#[test]
fn poll_identity_while_closing_the_new_get_is_answered_at_once() {
    let t0 = Instant::now();
    let mut s = polling_session_short_close(t0);
    s.send(Frame::message("queued")).unwrap();
    s.close(at(t0, 1), CloseReason::ForcedClose);
    // What was queued drains in the response to the next GET, which is answered at once and by identity.
    let drain = s.handle_poll(at(t0, 2)).unwrap();
    assert_eq!(raw_transmits(&mut s), vec![answer(drain, b"4queued")]);
    assert_eq!(s.pending_poll(), None, "a closing session holds no GET");
    let last = s.handle_poll(at(t0, 3)).unwrap();
    assert!(last > drain);
    assert_eq!(raw_transmits(&mut s), vec![answer(last, b"1")]);
    assert_eq!(events(&mut s), vec![closed(CloseReason::ForcedClose)]);
}

#[test]
fn poll_identity_the_end_of_an_answered_get_changes_nothing() {
    let t0 = Instant::now();
    let mut s = polling_session(t0);
    let get = s.handle_poll(at(t0, 1)).unwrap();
    s.send(Frame::message("x")).unwrap();
    assert_eq!(raw_transmits(&mut s), vec![answer(get, b"4x")]);
    // Its client went away after the answer, while the next GET is pending: the session lives on.
    let next = s.handle_poll(at(t0, 2)).unwrap();
    s.handle_poll_aborted(at(t0, 3), get);
    assert!(!s.is_closed());
    assert_eq!(s.pending_poll(), Some(next));
    // The pending one going away is a transport error, as in the reference.
    s.handle_poll_aborted(at(t0, 4), next);
    assert_eq!(events(&mut s), vec![closed(CloseReason::TransportError)]);
}

#[test]
fn frames_know_their_websocket_opcode() {
    use engineio_proto::websocket::{Opcode, encode_engineio_frame, encode_frame};
    assert_eq!(Opcode::of(&text("4a")), Opcode::Text);
    assert_eq!(Opcode::of(&binary(&[1])), Opcode::Binary);
    for frame in [text("4héllo"), binary(&[0, 1, 2])] {
        let (mut ours, mut by_hand) = (Vec::new(), Vec::new());
        encode_engineio_frame(&mut ours, &frame);
        encode_frame(&mut by_hand, Opcode::of(&frame), frame.as_bytes());
        assert_eq!(ours, by_hand);
        assert_eq!(ours[0] & 0x0f, if frame.is_text() { 1 } else { 2 });
    }
}

#[test]
fn duplicate_post_closes_with_transport_error() {
    let t0 = Instant::now();
    let mut s = polling_session(t0);
    s.handle_poll(at(t0, 1)).unwrap();
    s.handle_post_start(at(t0, 1)).unwrap();
    assert_eq!(s.handle_post_start(at(t0, 2)), Err(Error::Protocol(ProtocolError::DuplicatePost)));
    assert_eq!(transmits(&mut s), vec![poll_response(b"1")]);
    assert_eq!(events(&mut s), vec![closed(CloseReason::TransportError)]);
    // The body of the first POST arrives too late.
    assert_eq!(
        s.handle_post_body(at(t0, 3), Some(Bytes::from_static(b"4late"))),
        Err(Error::Protocol(ProtocolError::Closed))
    );
    assert_closed_and_quiet(&mut s, at(t0, 3));
}

#[test]
fn duplicate_post_without_pending_get_closes_quietly() {
    let t0 = Instant::now();
    let mut s = polling_session(t0);
    s.handle_post_start(t0).unwrap();
    assert_eq!(s.handle_post_start(t0), Err(Error::Protocol(ProtocolError::DuplicatePost)));
    assert_eq!(transmits(&mut s), vec![]);
    assert_eq!(events(&mut s), vec![closed(CloseReason::TransportError)]);
    assert_closed_and_quiet(&mut s, t0);
}

#[test]
fn client_close_by_post_releases_the_pending_get_with_noop() {
    let t0 = Instant::now();
    let mut s = polling_session(t0);
    s.handle_poll(at(t0, 1)).unwrap();
    s.handle_post_start(at(t0, 2)).unwrap();
    s.handle_post_body(at(t0, 2), Some(Bytes::from_static(b"1"))).unwrap();
    assert_eq!(transmits(&mut s), vec![poll_response(b"6")]);
    assert_eq!(events(&mut s), vec![closed(CloseReason::TransportClose)]);
    assert_closed_and_quiet(&mut s, at(t0, 2));
}

#[test]
fn client_close_by_post_drops_what_follows_it() {
    let t0 = Instant::now();
    let mut s = polling_session(t0);
    s.handle_post_start(t0).unwrap();
    s.handle_post_body(t0, Some(Bytes::from_static(b"4before\x1e1\x1e4after"))).unwrap();
    assert_eq!(events(&mut s), vec![Event::Message(Message::from("before")), closed(CloseReason::TransportClose)]);
    assert_eq!(transmits(&mut s), vec![]);
    assert_closed_and_quiet(&mut s, t0);
}

#[test]
fn malformed_post_closes_with_parse_error() {
    let t0 = Instant::now();
    let mut s = polling_session(t0);
    s.handle_poll(at(t0, 1)).unwrap();
    s.handle_post_start(at(t0, 1)).unwrap();
    s.handle_post_body(at(t0, 1), Some(Bytes::from_static(b"abc"))).unwrap();
    assert_eq!(transmits(&mut s), vec![poll_response(b"1")]);
    assert_eq!(events(&mut s), vec![parse_error(DecodeError::UnknownType(b'a'))]);
    assert_closed_and_quiet(&mut s, at(t0, 1));
}

#[test]
fn post_delivers_the_packets_before_a_malformed_entry_then_closes() {
    let t0 = Instant::now();
    let mut s = polling_session(t0);
    s.handle_post_start(t0).unwrap();
    s.handle_post_body(t0, Some(Bytes::from_static(b"4a\x1eabc"))).unwrap();
    assert_eq!(events(&mut s), vec![Event::Message(Message::from("a")), parse_error(DecodeError::UnknownType(b'a'))]);
    assert_closed_and_quiet(&mut s, t0);
}

#[test]
fn post_with_invalid_utf8_bad_base64_or_empty_entries_is_a_parse_error() {
    let bodies: [&[u8]; 5] = [b"4\xff", b"b!!", b"4a\x1e", b"", b"\x1e4a"];
    for body in bodies {
        let t0 = Instant::now();
        let mut s = polling_session(t0);
        s.handle_post_start(t0).unwrap();
        s.handle_post_body(t0, Some(Bytes::copy_from_slice(body))).unwrap();
        let evs = events(&mut s);
        assert!(
            matches!(evs.last(), Some(Event::Closed { reason: CloseReason::ParseError, error: Some(_) })),
            "{body:?}: {evs:?}"
        );
        assert!(s.is_closed());
    }
}

#[test]
fn post_larger_than_max_payload_is_a_parse_error() {
    let t0 = Instant::now();
    let mut s = polling_session(t0);
    let body = format!("4{}", "x".repeat(10_000));
    s.handle_post_start(t0).unwrap();
    s.handle_post_body(t0, Some(Bytes::from(body))).unwrap();
    assert_eq!(events(&mut s), vec![parse_error(DecodeError::PayloadTooLarge)]);
    // Exactly max_payload bytes are accepted.
    let mut s = polling_session(t0);
    let body = format!("4{}", "x".repeat(9_999));
    s.handle_post_start(t0).unwrap();
    s.handle_post_body(t0, Some(Bytes::from(body))).unwrap();
    let evs = events(&mut s);
    assert!(matches!(&evs[..], [Event::Message(Message::Text(t))] if t.len() == 9_999), "{evs:?}");
}

#[test]
fn aborted_poll_closes_with_transport_error() {
    let t0 = Instant::now();
    let mut s = polling_session(t0);
    let get = s.handle_poll(at(t0, 1)).unwrap();
    s.handle_poll_aborted(at(t0, 2), get);
    assert_eq!(events(&mut s), vec![closed(CloseReason::TransportError)]);
    // The aborted GET is not answered.
    assert_eq!(transmits(&mut s), vec![]);
    assert_closed_and_quiet(&mut s, at(t0, 2));
}

#[test]
fn aborted_poll_without_a_pending_get_is_ignored() {
    let t0 = Instant::now();
    let mut s = polling_session(t0);
    // The handshake GET (identity 1) was answered with the open packet: its end changes nothing.
    s.handle_poll_aborted(t0, PollId(1));
    assert!(!s.is_closed());
    assert_eq!(events(&mut s), vec![]);
}

#[test]
fn polling_session_refuses_main_websocket_frames() {
    let t0 = Instant::now();
    let mut s = polling_session(t0);
    assert_eq!(s.handle_frame(t0, Channel::Main, Frame::message("x")), Err(Error::Usage(UsageError::NoSuchTransport)));
    assert_eq!(s.handle_frame(t0, Channel::Probe, text("2probe")), Err(Error::Usage(UsageError::NoSuchTransport)));
    // A main-channel close report on polling concerns no transport of the session.
    s.handle_transport_closed(t0, Channel::Main, true);
    assert!(!s.is_closed());
    assert_eq!(events(&mut s), vec![]);
}

#[test]
fn polling_requests_after_the_upgrade_are_a_transport_mismatch() {
    let t0 = Instant::now();
    let mut s = probed_session(t0);
    s.handle_frame(at(t0, 5), Channel::Probe, text("5")).unwrap();
    transmits(&mut s);
    events(&mut s);
    assert_eq!(s.handle_poll(at(t0, 6)), Err(Error::Protocol(ProtocolError::TransportMismatch)));
    assert_eq!(s.handle_post_start(at(t0, 6)), Err(Error::Protocol(ProtocolError::TransportMismatch)));
    assert!(!s.is_closed());
    assert_eq!(transmits(&mut s), vec![]);
    assert_eq!(events(&mut s), vec![]);
}

// ---------------------------------------------------------------------------------------------------------
// Upgrade
// ---------------------------------------------------------------------------------------------------------

#[test]
fn probe_is_answered_and_releases_the_pending_get_with_noop() {
    let t0 = Instant::now();
    let mut s = polling_session(t0);
    s.handle_poll(at(t0, 1)).unwrap();
    s.handle_upgrade_request(at(t0, 2)).unwrap();
    assert!(s.is_upgrading());
    // Before the probe the GET stays pending.
    assert_eq!(transmits(&mut s), vec![]);
    s.handle_frame(at(t0, 3), Channel::Probe, text("2probe")).unwrap();
    assert_eq!(transmits(&mut s), vec![Transmit::Probe(text("3probe")), poll_response(b"6")]);
    assert_eq!(events(&mut s), vec![Event::Upgrading]);
    assert_eq!(s.transport(), TransportKind::Polling);
}

#[test]
fn probe_frames_are_accepted_through_handle_frame_on_the_probe_channel() {
    let t0 = Instant::now();
    let mut s = polling_session(t0);
    s.handle_upgrade_request(t0).unwrap();
    s.handle_frame(t0, Channel::Probe, text("2probe")).unwrap();
    assert_eq!(transmits(&mut s), vec![Transmit::Probe(text("3probe"))]);
    assert_eq!(events(&mut s), vec![Event::Upgrading]);
    s.handle_frame(t0, Channel::Probe, text("5")).unwrap();
    assert_eq!(transmits(&mut s), vec![Transmit::Upgraded]);
    assert_eq!(events(&mut s), vec![Event::Upgraded]);
    assert_eq!(s.transport(), TransportKind::WebSocket);
}

#[test]
fn upgrade_packet_completes_the_upgrade_and_flushes_buffered_frames() {
    let t0 = Instant::now();
    let mut s = probed_session(t0);
    s.send(Frame::from_message(&Message::from("queued"))).unwrap();
    s.send(Frame::from_message(&Message::from(vec![7u8]))).unwrap();
    assert_eq!(s.buffered(), 2);
    s.handle_frame(at(t0, 10), Channel::Probe, text("5")).unwrap();
    assert_eq!(
        transmits(&mut s),
        vec![Transmit::Upgraded, Transmit::WebSocket(text("4queued")), Transmit::WebSocket(binary(&[7])),]
    );
    assert_eq!(events(&mut s), vec![Event::Upgraded]);
    assert_eq!(s.transport(), TransportKind::WebSocket);
    assert!(!s.is_upgrading());
    assert_eq!(s.buffered(), 0);
    // The upgraded session is a WebSocket session now.
    s.send(Frame::from_message(&Message::from("after"))).unwrap();
    assert_eq!(transmits(&mut s), vec![Transmit::WebSocket(text("4after"))]);
    s.handle_frame(at(t0, 11), Channel::Main, Frame::message("in")).unwrap();
    assert_eq!(events(&mut s), vec![Event::Message(Message::from("in"))]);
    // The upgrade timer is gone: the next timer is the ping.
    assert_eq!(s.poll_timeout(), Some(at(t0, 1_000)));
    s.handle_timeout(at(t0, 1_000));
    assert_eq!(transmits(&mut s), vec![Transmit::WebSocket(text("2"))]);
}

#[test]
fn upgrade_with_a_get_still_pending_releases_it_before_switching() {
    let t0 = Instant::now();
    let mut s = probed_session(t0);
    // The client polls once more (the noop went out before this GET) and then upgrades.
    s.handle_poll(at(t0, 5)).unwrap();
    s.handle_frame(at(t0, 6), Channel::Probe, text("5")).unwrap();
    let out = transmits(&mut s);
    // The GET gets a noop, either before the switch or at the latest before the session leaves polling.
    assert_eq!(out.iter().filter(|t| **t == poll_response(b"6")).count(), 1, "{out:?}");
    assert!(out.contains(&Transmit::Upgraded), "{out:?}");
    assert_eq!(events(&mut s), vec![Event::Upgraded]);
    assert_eq!(s.handle_poll(at(t0, 7)), Err(Error::Protocol(ProtocolError::TransportMismatch)));
}

#[test]
fn buffered_ping_is_flushed_to_the_websocket_after_the_upgrade() {
    let t0 = Instant::now();
    let mut s = polling_session(t0);
    s.handle_upgrade_request(at(t0, 900)).unwrap();
    s.handle_frame(at(t0, 950), Channel::Probe, text("2probe")).unwrap();
    transmits(&mut s);
    events(&mut s);
    s.handle_timeout(at(t0, 1_000));
    assert_eq!(s.buffered(), 1);
    s.handle_frame(at(t0, 1_100), Channel::Probe, text("5")).unwrap();
    assert_eq!(transmits(&mut s), vec![Transmit::Upgraded, Transmit::WebSocket(text("2"))]);
    s.handle_frame(at(t0, 1_200), Channel::Main, text("3")).unwrap();
    assert_eq!(s.poll_timeout(), Some(at(t0, 2_200)));
}

#[test]
fn second_upgrade_request_is_refused_while_probing_and_after_upgrading() {
    let t0 = Instant::now();
    let mut s = polling_session(t0);
    s.handle_upgrade_request(t0).unwrap();
    assert_eq!(s.handle_upgrade_request(t0), Err(Error::Protocol(ProtocolError::UpgradeRefused)));
    assert!(s.is_upgrading());
    s.handle_frame(t0, Channel::Probe, text("2probe")).unwrap();
    assert_eq!(s.handle_upgrade_request(at(t0, 1)), Err(Error::Protocol(ProtocolError::UpgradeRefused)));
    s.handle_frame(at(t0, 2), Channel::Probe, text("5")).unwrap();
    assert_eq!(s.handle_upgrade_request(at(t0, 3)), Err(Error::Protocol(ProtocolError::UpgradeRefused)));
    // The refusals did not disturb the session.
    assert_eq!(transmits(&mut s), vec![Transmit::Probe(text("3probe")), Transmit::Upgraded]);
    assert_eq!(events(&mut s), vec![Event::Upgrading, Event::Upgraded]);
    assert!(!s.is_closed());
}

#[test]
fn upgrade_timeout_closes_the_probe_and_polling_goes_on() {
    let t0 = Instant::now();
    let mut s = polling_session(t0);
    s.handle_upgrade_request(at(t0, 100)).unwrap();
    assert_eq!(s.poll_timeout(), Some(at(t0, 400)));
    s.handle_frame(at(t0, 150), Channel::Probe, text("2probe")).unwrap();
    assert_eq!(transmits(&mut s), vec![Transmit::Probe(text("3probe"))]);
    assert_eq!(events(&mut s), vec![Event::Upgrading]);
    s.handle_timeout(at(t0, 399));
    assert!(s.is_upgrading());
    assert_eq!(transmits(&mut s), vec![]);
    s.handle_timeout(at(t0, 400));
    assert_eq!(transmits(&mut s), vec![Transmit::CloseProbe]);
    assert!(!s.is_upgrading());
    assert_eq!(s.transport(), TransportKind::Polling);
    assert_eq!(events(&mut s), vec![]);
    assert_eq!(s.poll_timeout(), Some(at(t0, 1_000)));
    // The probe is gone.
    assert_eq!(s.handle_frame(at(t0, 450), Channel::Probe, text("5")), Err(Error::Usage(UsageError::NoSuchTransport)));
    // Polling still works, and the released GET is not repeated: a new GET waits for data.
    s.handle_poll(at(t0, 500)).unwrap();
    assert_eq!(transmits(&mut s), vec![]);
    s.send(Frame::from_message(&Message::from("still here"))).unwrap();
    assert_eq!(transmits(&mut s), vec![poll_response(b"4still here")]);
    s.handle_post_start(at(t0, 600)).unwrap();
    s.handle_post_body(at(t0, 600), Some(Bytes::from_static(b"4pong?"))).unwrap();
    assert_eq!(events(&mut s), vec![Event::Message(Message::from("pong?"))]);
    assert!(!s.is_closed());
    // And a later upgrade may be tried again.
    s.handle_upgrade_request(at(t0, 700)).unwrap();
}

#[test]
fn upgrade_timeout_without_a_probe_frame_closes_the_probe() {
    let t0 = Instant::now();
    let mut s = polling_session(t0);
    s.handle_poll(t0).unwrap();
    s.handle_upgrade_request(t0).unwrap();
    s.handle_timeout(at(t0, 300));
    // The GET was never released: it is still pending and gets the next data.
    assert_eq!(transmits(&mut s), vec![Transmit::CloseProbe]);
    s.send(Frame::from_message(&Message::from("x"))).unwrap();
    assert_eq!(transmits(&mut s), vec![poll_response(b"4x")]);
}

#[test]
fn bad_frame_on_the_probe_abandons_the_upgrade() {
    for bad in [text("abc"), text("2"), text("4hello"), binary(&[1]), text("3probe")] {
        let t0 = Instant::now();
        let mut s = polling_session(t0);
        s.handle_upgrade_request(t0).unwrap();
        s.handle_frame(at(t0, 1), Channel::Probe, bad.clone()).unwrap();
        assert_eq!(transmits(&mut s), vec![Transmit::CloseProbe], "{bad:?}");
        assert_eq!(events(&mut s), vec![], "{bad:?}");
        assert!(!s.is_upgrading());
        assert!(!s.is_closed());
        assert_eq!(s.transport(), TransportKind::Polling);
        assert_eq!(s.poll_timeout(), Some(at(t0, 1_000)), "{bad:?}");
    }
}

#[test]
fn probe_closed_by_the_client_allows_a_new_upgrade_request() {
    let t0 = Instant::now();
    let mut s = probed_session(t0);
    s.handle_transport_closed(at(t0, 10), Channel::Probe, false);
    assert!(!s.is_upgrading());
    assert!(!s.is_closed());
    // A CloseProbe, as on every end of a probe: the runtime releases the probe in one place.
    assert_eq!(transmits(&mut s), vec![Transmit::CloseProbe]);
    assert_eq!(events(&mut s), vec![]);
    assert_eq!(s.poll_timeout(), Some(at(t0, 1_000)));
    s.handle_upgrade_request(at(t0, 20)).unwrap();
    s.handle_frame(at(t0, 21), Channel::Probe, text("2probe")).unwrap();
    s.handle_frame(at(t0, 22), Channel::Probe, text("5")).unwrap();
    assert_eq!(transmits(&mut s), vec![Transmit::Probe(text("3probe")), Transmit::Upgraded]);
    assert_eq!(events(&mut s), vec![Event::Upgrading, Event::Upgraded]);
    assert_eq!(s.transport(), TransportKind::WebSocket);
}

#[test]
fn session_closing_while_probing_closes_the_probe_too() {
    let t0 = Instant::now();
    let mut s = probed_session(t0);
    // A GET arriving after a successful probe is released at once with a noop.
    s.handle_poll(at(t0, 5)).unwrap();
    let out = transmits(&mut s);
    assert_eq!(out, vec![poll_response(b"6")]);
    let get = s.handle_poll(at(t0, 6)).unwrap();
    s.handle_poll_aborted(at(t0, 7), get);
    let out = transmits(&mut s);
    assert!(out.contains(&Transmit::CloseProbe), "{out:?}");
    assert_eq!(events(&mut s), vec![closed(CloseReason::TransportError)]);
    assert_closed_and_quiet(&mut s, at(t0, 7));
    assert_eq!(s.handle_frame(at(t0, 8), Channel::Probe, text("5")), Err(Error::Usage(UsageError::NoSuchTransport)));
}

// ---------------------------------------------------------------------------------------------------------
// Server-side close
// ---------------------------------------------------------------------------------------------------------

#[test]
fn server_close_on_websocket_closes_it_with_forced_close() {
    let t0 = Instant::now();
    let mut s = websocket_session(t0);
    s.send(Frame::from_message(&Message::from("bye"))).unwrap();
    s.close(at(t0, 1), CloseReason::ForcedClose);
    assert_eq!(transmits(&mut s), vec![Transmit::WebSocket(text("4bye")), Transmit::CloseWebSocket]);
    assert_eq!(events(&mut s), vec![closed(CloseReason::ForcedClose)]);
    assert_closed_and_quiet(&mut s, at(t0, 1));
}

#[test]
fn server_close_with_a_pending_get_answers_buffered_data_then_close_in_the_next_get() {
    let t0 = Instant::now();
    let mut s = polling_session(t0);
    s.handle_poll(at(t0, 1)).unwrap();
    s.send(Frame::from_message(&Message::from("last"))).unwrap();
    s.send(Frame::from_message(&Message::from(vec![1u8, 2, 3]))).unwrap();
    s.close(at(t0, 2), CloseReason::ForcedClose);
    // The data drains alone: a client handles a close packet before the packets beside it.
    let out = transmits(&mut s);
    assert_eq!(out, vec![poll_response(b"4last\x1ebAQID")]);
    assert!(!body_of(&out[0]).ends_with(b"1"));
    assert_eq!(events(&mut s), vec![]);
    assert!(!s.is_closed());
    s.handle_poll(at(t0, 3)).unwrap();
    assert_eq!(transmits(&mut s), vec![poll_response(b"1")]);
    assert_eq!(events(&mut s), vec![closed(CloseReason::ForcedClose)]);
    assert_closed_and_quiet(&mut s, at(t0, 3));
}

#[test]
fn server_close_with_a_pending_get_and_nothing_buffered_answers_close() {
    let t0 = Instant::now();
    let mut s = polling_session(t0);
    s.handle_poll(at(t0, 1)).unwrap();
    s.close(at(t0, 2), CloseReason::ForcedClose);
    assert_eq!(transmits(&mut s), vec![poll_response(b"1")]);
    assert_eq!(events(&mut s), vec![closed(CloseReason::ForcedClose)]);
}

#[test]
fn server_close_without_a_pending_get_waits_for_the_next_get() {
    let t0 = Instant::now();
    let mut s = polling_session(t0);
    s.send(Frame::from_message(&Message::from("last"))).unwrap();
    s.close(at(t0, 100), CloseReason::ForcedClose);
    assert!(!s.is_closed());
    assert_eq!(transmits(&mut s), vec![]);
    assert_eq!(events(&mut s), vec![]);
    // The heartbeat goes on while closing, as in the reference: the next ping is due before the close
    // deadline.
    assert_eq!(s.poll_timeout(), Some(at(t0, 1_000)));
    assert_eq!(s.send(Frame::message("more")), Err(Error::Usage(UsageError::SessionClosed)));
    // It sends no ping, but sets the pong deadline.
    s.handle_timeout(at(t0, 1_000));
    assert_eq!(transmits(&mut s), vec![]);
    assert_eq!(events(&mut s), vec![]);
    assert_eq!(s.poll_timeout(), Some(at(t0, 1_500)));
    s.handle_poll(at(t0, 1_200)).unwrap();
    assert_eq!(transmits(&mut s), vec![poll_response(b"4last")]);
    assert_eq!(events(&mut s), vec![]);
    s.handle_poll(at(t0, 1_300)).unwrap();
    assert_eq!(transmits(&mut s), vec![poll_response(b"1")]);
    assert_eq!(events(&mut s), vec![closed(CloseReason::ForcedClose)]);
    assert_closed_and_quiet(&mut s, at(t0, 1_300));
}

/// A polling session whose close timeout (300 ms) ends before its heartbeat (ping at 1 s).
fn polling_session_short_close(t0: Instant) -> Session {
    let mut s = Session::new(
        "sid-p".into(),
        SessionConfig { close_timeout: Duration::from_millis(300), ..config() },
        TransportKind::Polling,
        t0,
        None,
    );
    s.handle_poll(t0).unwrap();
    assert_eq!(transmits(&mut s).len(), 1);
    s
}

#[test]
fn server_close_without_any_get_finishes_at_the_close_deadline() {
    let t0 = Instant::now();
    let mut s = polling_session_short_close(t0);
    s.send(Frame::from_message(&Message::from("lost"))).unwrap();
    s.close(at(t0, 100), CloseReason::ForcedClose);
    s.handle_timeout(at(t0, 399));
    assert!(!s.is_closed());
    assert_eq!(events(&mut s), vec![]);
    s.handle_timeout(at(t0, 400));
    assert_eq!(events(&mut s), vec![closed(CloseReason::ForcedClose)]);
    assert_eq!(transmits(&mut s), vec![]);
    assert_eq!(s.buffered(), 0);
    assert_closed_and_quiet(&mut s, at(t0, 400));
    assert_eq!(s.handle_poll(at(t0, 500)), Err(Error::Protocol(ProtocolError::Closed)));
}

#[test]
fn server_close_without_any_get_ends_at_the_pong_deadline_when_that_comes_first() {
    // The reference keeps its ping timers while a polling transport waits to close: a client that never
    // polls again is gone pingInterval + pingTimeout after its last pong, not after closeTimeout (2 s).
    let t0 = Instant::now();
    let mut s = polling_session(t0);
    s.close(at(t0, 100), CloseReason::ForcedClose);
    s.handle_timeout(at(t0, 1_499));
    assert!(!s.is_closed());
    assert_eq!(transmits(&mut s), vec![], "no ping is sent while closing");
    s.handle_timeout(at(t0, 1_500));
    assert_eq!(events(&mut s), vec![closed(CloseReason::PingTimeout)]);
    assert_closed_and_quiet(&mut s, at(t0, 1_500));
    // Likewise when the runtime's first wake-up is late: one call, the same result.
    let mut s = polling_session(t0);
    s.close(at(t0, 100), CloseReason::ForcedClose);
    s.handle_timeout(at(t0, 5_000));
    assert_eq!(events(&mut s), vec![closed(CloseReason::PingTimeout)]);
    // And a GET arriving then finds it closed.
    let mut s = polling_session(t0);
    s.close(at(t0, 100), CloseReason::ForcedClose);
    assert_eq!(s.handle_poll(at(t0, 1_500)), Err(Error::Protocol(ProtocolError::Closed)));
    assert_eq!(events(&mut s), vec![closed(CloseReason::PingTimeout)]);
}

#[test]
fn server_close_twice_is_harmless() {
    let t0 = Instant::now();
    let mut s = polling_session_short_close(t0);
    s.close(at(t0, 100), CloseReason::ForcedClose);
    s.close(at(t0, 200), CloseReason::ForcedClose);
    // The first deadline stands.
    assert_eq!(s.poll_timeout(), Some(at(t0, 400)));
    assert_eq!(transmits(&mut s), vec![]);
    assert_eq!(events(&mut s), vec![]);
}

#[test]
fn server_close_while_probing_closes_the_probe_and_refuses_upgrades() {
    let t0 = Instant::now();
    let mut s = polling_session(t0);
    s.handle_upgrade_request(t0).unwrap();
    s.close(at(t0, 1), CloseReason::ForcedClose);
    assert_eq!(transmits(&mut s), vec![Transmit::CloseProbe]);
    assert!(!s.is_upgrading());
    assert_eq!(s.handle_upgrade_request(at(t0, 2)), Err(Error::Protocol(ProtocolError::UpgradeRefused)));
    s.handle_poll(at(t0, 3)).unwrap();
    assert_eq!(transmits(&mut s), vec![poll_response(b"1")]);
    assert_eq!(events(&mut s), vec![closed(CloseReason::ForcedClose)]);
}

#[test]
fn send_after_close_is_a_usage_error() {
    let t0 = Instant::now();
    let mut s = websocket_session(t0);
    s.close(t0, CloseReason::ForcedClose);
    assert_eq!(s.send(Frame::message("x")), Err(Error::Usage(UsageError::SessionClosed)));
    assert_eq!(s.send(Frame::from_message(&Message::from(vec![1u8]))), Err(Error::Usage(UsageError::SessionClosed)));
    let mut s = polling_session(t0);
    s.handle_poll(t0).unwrap();
    s.close(t0, CloseReason::ForcedClose);
    assert_eq!(s.send(Frame::message("x")), Err(Error::Usage(UsageError::SessionClosed)));
}

#[test]
fn close_reasons_have_the_reference_names() {
    assert_eq!(CloseReason::TransportClose.as_str(), "transport close");
    assert_eq!(CloseReason::TransportError.as_str(), "transport error");
    assert_eq!(CloseReason::PingTimeout.as_str(), "ping timeout");
    assert_eq!(CloseReason::ForcedClose.as_str(), "forced close");
    assert_eq!(CloseReason::ParseError.as_str(), "parse error");
}

#[test]
fn a_polling_client_that_never_comes_back_cannot_grow_the_buffer_without_bound() {
    let t0 = Instant::now();
    let config = SessionConfig { max_buffered_frames: 3, ..SessionConfig::default() };
    let mut s = Session::new("sid".into(), config, TransportKind::Polling, t0, None);
    // The open packet is the first buffered frame.
    s.send(Frame::message("a")).unwrap();
    s.send(Frame::message("b")).unwrap();
    assert_eq!(s.buffered(), 3);
    assert!(!s.is_closed());
    s.send(Frame::message("c")).unwrap();
    assert!(s.is_closed());
    assert_eq!(s.buffered(), 0, "the buffer is freed");
    let mut seen = Vec::new();
    while let Some(e) = s.poll_event() {
        seen.push(e);
    }
    assert_eq!(seen, vec![closed(CloseReason::BufferFull)]);
}

#[test]
fn the_polling_buffer_is_bounded_in_bytes_too() {
    let t0 = Instant::now();
    let config = SessionConfig { max_buffered_bytes: 1_000, ..SessionConfig::default() };
    let mut s = Session::new("sid".into(), config, TransportKind::Polling, t0, None);
    let open = s.buffered();
    s.send(Frame::message(&"a".repeat(400))).unwrap();
    s.send(Frame::message(&"b".repeat(400))).unwrap();
    assert_eq!(s.buffered(), open + 2);
    assert!(!s.is_closed());
    // A GET drains the buffer: the count starts again.
    s.handle_poll(t0).unwrap();
    assert!(matches!(s.poll_transmit(), Some(Transmit::PollResponse { .. })));
    s.send(Frame::message(&"c".repeat(900))).unwrap();
    assert!(!s.is_closed(), "the drained bytes no longer count");
    s.send(Frame::message(&"d".repeat(200))).unwrap();
    assert!(s.is_closed());
    let mut events = Vec::new();
    while let Some(e) = s.poll_event() {
        events.push(e);
    }
    assert_eq!(events, vec![closed(CloseReason::BufferFull)]);
}
