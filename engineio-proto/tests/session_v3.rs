//! The session state machine speaking Engine.IO v3 (the clients of Socket.IO 2), on a simulated clock:
//! v3's framing on both transports and its heartbeat, where the client pings.

use std::time::Instant;

mod common;

use common::{at, config};
use engineio_proto::{
    Bytes, Channel, CloseReason, DecodeError, Event, Frame, Message, Protocol, Session, Transmit, TransportKind,
};

fn v3(transport: TransportKind, t0: Instant) -> Session {
    Session::with_protocol(Protocol::V3, "sid3".into(), config(), transport, t0, None)
}

/// A v3 session whose open packet went out (in the handshake GET's answer, on polling).
fn opened(transport: TransportKind, t0: Instant) -> Session {
    let mut s = v3(transport, t0);
    if transport == TransportKind::Polling {
        s.handle_poll(t0).unwrap();
    }
    transmits(&mut s);
    s
}

/// The body and content kind of every long-poll answer, and the other transmits as they are.
fn transmits(s: &mut Session) -> Vec<Transmit> {
    std::iter::from_fn(|| s.poll_transmit()).collect()
}

fn poll_bodies(s: &mut Session) -> Vec<(Vec<u8>, bool)> {
    transmits(s)
        .into_iter()
        .map(|t| match t {
            Transmit::PollResponse { body, binary, .. } => (body.to_vec(), binary),
            other => panic!("expected a long-poll answer, got {other:?}"),
        })
        .collect()
}

fn events(s: &mut Session) -> Vec<Event> {
    std::iter::from_fn(|| s.poll_event()).collect()
}

fn text(s: &str) -> Frame {
    Frame::Text(s.into())
}

const OPEN: &str =
    r#"0{"sid":"sid3","upgrades":["websocket"],"pingInterval":1000,"pingTimeout":500,"maxPayload":10000}"#;

#[test]
fn the_open_packet_goes_out_in_a_length_prefixed_payload() {
    let t0 = Instant::now();
    let mut s = v3(TransportKind::Polling, t0);
    assert_eq!(s.protocol(), Protocol::V3);
    s.handle_poll(t0).unwrap();
    let expected = format!("{}:{OPEN}", OPEN.len());
    assert_eq!(poll_bodies(&mut s), [(expected.into_bytes(), false)]);
}

#[test]
fn the_server_never_pings_and_a_silent_client_times_out_after_interval_plus_timeout() {
    let t0 = Instant::now();
    let mut s = v3(TransportKind::WebSocket, t0);
    assert!(matches!(&transmits(&mut s)[..], [Transmit::WebSocket(Frame::Text(t))] if t.starts_with("0{")));
    assert_eq!(s.poll_timeout(), Some(at(t0, 1_500)));
    s.handle_timeout(at(t0, 1_499));
    assert!(transmits(&mut s).is_empty(), "no ping from the server");
    assert!(events(&mut s).is_empty());
    s.handle_timeout(at(t0, 1_500));
    assert_eq!(transmits(&mut s), [Transmit::CloseWebSocket]);
    assert_eq!(events(&mut s), [Event::Closed { reason: CloseReason::PingTimeout, error: None }]);
}

#[test]
fn a_client_ping_is_answered_and_extends_the_deadline() {
    let t0 = Instant::now();
    let mut s = opened(TransportKind::WebSocket, t0);
    s.handle_frame(at(t0, 1_000), Channel::Main, text("2")).unwrap();
    assert_eq!(transmits(&mut s), [Transmit::WebSocket(text("3"))]);
    assert_eq!(s.poll_timeout(), Some(at(t0, 2_500)));
    // A probe ping on the established transport gets a plain pong, as from the reference.
    s.handle_frame(at(t0, 2_000), Channel::Main, text("2probe")).unwrap();
    assert_eq!(transmits(&mut s), [Transmit::WebSocket(text("3"))]);
    // Messages do not keep the session alive; only pings do.
    s.handle_frame(at(t0, 3_000), Channel::Main, text("4hi")).unwrap();
    assert_eq!(s.poll_timeout(), Some(at(t0, 3_500)));
    s.handle_timeout(at(t0, 3_500));
    let got = events(&mut s);
    assert_eq!(got[0], Event::Message("hi".into()));
    assert_eq!(got[1], Event::Closed { reason: CloseReason::PingTimeout, error: None });
}

#[test]
fn a_pong_from_the_client_is_the_wrong_heartbeat_direction() {
    let t0 = Instant::now();
    let mut s = opened(TransportKind::WebSocket, t0);
    s.handle_frame(t0, Channel::Main, text("3")).unwrap();
    assert_eq!(events(&mut s), [Event::Closed { reason: CloseReason::TransportError, error: None }]);
}

#[test]
fn polling_pings_are_answered_in_the_next_payload() {
    let t0 = Instant::now();
    let mut s = opened(TransportKind::Polling, t0);
    s.handle_post_start(at(t0, 900)).unwrap();
    s.handle_post(at(t0, 900), Some(Bytes::from_static(b"1:26:4hello")), false).unwrap();
    assert_eq!(events(&mut s), [Event::Message("hello".into())]);
    s.handle_poll(at(t0, 900)).unwrap();
    assert_eq!(poll_bodies(&mut s), [(b"1:3".to_vec(), false)]);
    assert_eq!(s.poll_timeout(), Some(at(t0, 2_400)));
}

#[test]
fn binary_goes_in_a_binary_payload_unless_the_client_asked_for_base64() {
    let t0 = Instant::now();
    let mut s = opened(TransportKind::Polling, t0);
    s.send(text("42[\"a\"]")).unwrap();
    s.send(Frame::Binary(Bytes::from_static(&[1, 2]))).unwrap();
    s.handle_poll(t0).unwrap();
    let body = [&[0u8, 7, 0xff][..], b"42[\"a\"]", &[1, 3, 0xff, 4, 1, 2]].concat();
    assert_eq!(poll_bodies(&mut s), [(body, true)]);
    // Text alone stays a text payload.
    s.send(text("42[\"b\"]")).unwrap();
    s.handle_poll(t0).unwrap();
    assert_eq!(poll_bodies(&mut s), [(b"7:42[\"b\"]".to_vec(), false)]);

    let mut s = v3(TransportKind::Polling, t0);
    s.set_polling_base64(true);
    s.handle_poll(t0).unwrap();
    transmits(&mut s);
    s.send(Frame::Binary(Bytes::from_static(&[1, 2, 3]))).unwrap();
    s.handle_poll(t0).unwrap();
    assert_eq!(poll_bodies(&mut s), [(b"6:b4AQID".to_vec(), false)]);
}

#[test]
fn binary_posts_are_decoded_when_the_request_says_so() {
    let t0 = Instant::now();
    let mut s = v3(TransportKind::Polling, t0);
    s.handle_post_start(t0).unwrap();
    // What python-engineio 3 sends: a binary payload even for text.
    let body = [&[0u8, 5, 0xff][..], b"4abcd", &[1, 4, 0xff, 4, 9, 8, 7]].concat();
    s.handle_post(t0, Some(Bytes::from(body.clone())), true).unwrap();
    assert_eq!(
        events(&mut s),
        [Event::Message("abcd".into()), Event::Message(Message::Binary(Bytes::from_static(&[9, 8, 7])))]
    );
    // The same bytes said to be text are not a payload.
    s.handle_post_start(t0).unwrap();
    s.handle_post(t0, Some(Bytes::from(body)), false).unwrap();
    assert!(matches!(
        &events(&mut s)[..],
        [Event::Closed { reason: CloseReason::ParseError, error: Some(DecodeError::InvalidUtf8) }]
    ));
}

#[test]
fn a_v4_session_refuses_binary_posts() {
    let t0 = Instant::now();
    let mut s = Session::new("sid4".into(), config(), TransportKind::Polling, t0, None);
    s.handle_post_start(t0).unwrap();
    s.handle_post(t0, Some(Bytes::from_static(&[0, 1, 0xff, b'6'])), true).unwrap();
    assert!(matches!(&events(&mut s)[..], [Event::Closed { reason: CloseReason::ParseError, .. }]));
}

#[test]
fn close_and_noop_answers_are_payloads_too() {
    let t0 = Instant::now();
    let mut s = opened(TransportKind::Polling, t0);
    s.handle_poll(t0).unwrap();
    s.close(t0, CloseReason::ForcedClose);
    assert_eq!(poll_bodies(&mut s), [(b"1:1".to_vec(), false)]);

    // The client's close packet releases the pending GET with a noop.
    let mut s = opened(TransportKind::Polling, t0);
    s.handle_poll(t0).unwrap();
    s.handle_post_start(t0).unwrap();
    s.handle_post(t0, Some(Bytes::from_static(b"1:1")), false).unwrap();
    assert_eq!(poll_bodies(&mut s), [(b"1:6".to_vec(), false)]);
    assert_eq!(events(&mut s), [Event::Closed { reason: CloseReason::TransportClose, error: None }]);
}

#[test]
fn the_upgrade_then_binary_frames_with_their_type_byte() {
    let t0 = Instant::now();
    let mut s = opened(TransportKind::Polling, t0);
    s.handle_poll(t0).unwrap();
    s.handle_upgrade_request(t0).unwrap();
    s.handle_frame(t0, Channel::Probe, text("2probe")).unwrap();
    assert_eq!(
        transmits(&mut s),
        [
            Transmit::Probe(text("3probe")),
            Transmit::PollResponse { poll: engineio_proto::PollId(2), body: Bytes::from_static(b"1:6"), binary: false }
        ]
    );
    s.send(Frame::Binary(Bytes::from_static(&[7]))).unwrap();
    s.handle_frame(t0, Channel::Probe, text("5")).unwrap();
    assert_eq!(
        transmits(&mut s),
        [Transmit::Upgraded, Transmit::WebSocket(Frame::Binary(Bytes::from_static(&[4, 7])))]
    );
    assert_eq!(events(&mut s), [Event::Upgrading, Event::Upgraded]);
    // The client's binary frames carry the type byte too; one of an unknown type is ignored.
    s.handle_frame(t0, Channel::Main, Frame::Binary(Bytes::from_static(&[4, 5, 6]))).unwrap();
    s.handle_frame(t0, Channel::Main, Frame::Binary(Bytes::from_static(&[9, 5, 6]))).unwrap();
    s.handle_frame(t0, Channel::Main, text("b4BQY=")).unwrap();
    let message = Event::Message(Message::Binary(Bytes::from_static(&[5, 6])));
    assert_eq!(events(&mut s), [message.clone(), message]);
    // After the upgrade the client still pings.
    s.handle_frame(at(t0, 1_000), Channel::Main, text("2")).unwrap();
    assert_eq!(transmits(&mut s), [Transmit::WebSocket(text("3"))]);
}

#[test]
fn a_websocket_without_binary_gets_b4_base64() {
    let t0 = Instant::now();
    let mut s = v3(TransportKind::WebSocket, t0);
    s.set_websocket_base64(Channel::Main, true).unwrap();
    transmits(&mut s);
    s.send(Frame::Binary(Bytes::from_static(&[1, 2, 3]))).unwrap();
    assert_eq!(transmits(&mut s), [Transmit::WebSocket(text("b4AQID"))]);
    // Sent for an immediate write, the frame is converted the same way.
    assert_eq!(s.send_now(Frame::Binary(Bytes::from_static(&[1, 2, 3]))), Ok(Some(text("b4AQID"))));
    s.set_websocket_base64(Channel::Main, false).unwrap();
    assert_eq!(
        s.send_now(Frame::Binary(Bytes::from_static(&[7]))),
        Ok(Some(Frame::Binary(Bytes::from_static(&[4, 7])))),
        "a v3 binary frame starts with the message type"
    );
}

#[test]
fn a_malformed_payload_closes_after_the_good_packets() {
    let t0 = Instant::now();
    let mut s = v3(TransportKind::Polling, t0);
    s.handle_post_start(t0).unwrap();
    s.handle_post(t0, Some(Bytes::from_static(b"3:4ok9:4short")), false).unwrap();
    assert_eq!(
        events(&mut s),
        [
            Event::Message("ok".into()),
            Event::Closed { reason: CloseReason::ParseError, error: Some(DecodeError::BadLength) }
        ]
    );
}
