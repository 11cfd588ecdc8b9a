//! The Socket.IO connection state machine on a simulated clock: the connect flow, the connect timeout,
//! acknowledgements with deadlines, DISCONNECT both ways, decode errors, binary assembly.

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use engineio_proto::{Frame, Message};
use socketio_proto::connection::recovery;
use socketio_proto::{
    AckFailure, CloseCause, Connection, ConnectionConfig, ConnectionError, ConnectionEvent, DecodeError, JsonParser,
    Map, Recovery, Value,
};

fn at(t0: Instant, ms: u64) -> Instant {
    t0 + Duration::from_millis(ms)
}

fn conn(t0: Instant) -> Connection {
    Connection::new(
        Arc::new(JsonParser::default()),
        ConnectionConfig { connect_timeout: Duration::from_secs(1), v2_client: false },
        t0,
    )
}

/// A connection of a Socket.IO 2 client.
fn conn_v2(t0: Instant) -> Connection {
    Connection::new(
        Arc::new(JsonParser::default()),
        ConnectionConfig { connect_timeout: Duration::from_secs(1), v2_client: true },
        t0,
    )
}

fn events(c: &mut Connection) -> Vec<ConnectionEvent> {
    std::iter::from_fn(|| c.poll_event()).collect()
}

/// The frames to send, as text (binary frames as `<bin:...>`).
fn sent(c: &mut Connection) -> Vec<String> {
    std::iter::from_fn(|| c.poll_transmit())
        .flatten()
        .map(|f| match f {
            Frame::Text(t) => t.to_string(),
            Frame::Binary(b) => format!("<bin:{}>", String::from_utf8_lossy(&b)),
        })
        .collect()
}

fn msg(text: &str) -> Message {
    Message::from(text)
}

fn empty_auth() -> Value {
    Value::Object(Map::new())
}

/// A connection that joined `/` as socket `s1`.
fn joined(t0: Instant) -> Connection {
    let mut c = conn(t0);
    c.handle_message(t0, msg("0"));
    assert_eq!(events(&mut c), vec![ConnectionEvent::Connect { nsp: "/".into(), auth: empty_auth() }]);
    c.accept(t0, "/", "s1", None).unwrap();
    assert_eq!(sent(&mut c), vec!["40{\"sid\":\"s1\"}"]);
    c
}

#[test]
fn connect_then_accept_sends_the_reply_and_stops_the_connect_timeout() {
    let t0 = Instant::now();
    let mut c = conn(t0);
    assert_eq!(c.poll_timeout(), Some(at(t0, 1_000)));
    c.handle_message(at(t0, 10), msg("0/admin,{\"token\":\"x\"}"));
    let auth = match &events(&mut c)[..] {
        [ConnectionEvent::Connect { nsp, auth }] if nsp == "/admin" => auth.clone(),
        other => panic!("{other:?}"),
    };
    assert_eq!(auth.get("token").and_then(Value::as_str), Some("x"));
    // A second CONNECT while the first is being answered is ignored.
    c.handle_message(at(t0, 11), msg("0/admin,"));
    assert_eq!(events(&mut c), vec![]);
    assert!(!c.is_connected("/admin"));
    c.accept(at(t0, 20), "/admin", "abc", Some("pid1")).unwrap();
    assert_eq!(sent(&mut c), vec!["40/admin,{\"sid\":\"abc\",\"pid\":\"pid1\"}"]);
    assert!(c.is_connected("/admin"));
    assert_eq!(c.poll_timeout(), None, "no connect timeout once a namespace is joined");
    c.handle_timeout(at(t0, 5_000));
    assert!(!c.is_closed());
    // Joined already: ignored too.
    c.handle_message(at(t0, 5_001), msg("0/admin,"));
    assert_eq!(events(&mut c), vec![]);
    // Accepting what is not being joined is a misuse.
    assert_eq!(c.accept(at(t0, 5_002), "/admin", "x", None), Err(ConnectionError::NotConnected));
    assert_eq!(c.accept(at(t0, 5_002), "/other", "x", None), Err(ConnectionError::NotConnected));
}

#[test]
fn a_refused_connect_gets_connect_error_and_may_be_tried_again() {
    let t0 = Instant::now();
    let mut c = conn(t0);
    c.handle_message(t0, msg("0/private,"));
    events(&mut c);
    let mut data = Map::new();
    data.insert("reason".into(), Value::from("no token"));
    c.refuse(at(t0, 1), "/private", "Not authorized", Some(Value::Object(data))).unwrap();
    assert_eq!(sent(&mut c), vec!["44/private,{\"message\":\"Not authorized\",\"data\":{\"reason\":\"no token\"}}"]);
    assert!(!c.is_connected("/private"));
    // Still no namespace: the connect timeout still runs, and a new CONNECT is asked again.
    assert_eq!(c.poll_timeout(), Some(at(t0, 1_000)));
    c.handle_message(at(t0, 2), msg("0/private,"));
    assert!(matches!(&events(&mut c)[..], [ConnectionEvent::Connect { nsp, .. }] if nsp == "/private"));
}

#[test]
fn a_connection_that_joins_nothing_is_closed_at_the_connect_timeout() {
    let t0 = Instant::now();
    let mut c = conn(t0);
    c.handle_timeout(at(t0, 999));
    assert_eq!(events(&mut c), vec![]);
    c.handle_timeout(at(t0, 1_000));
    assert_eq!(events(&mut c), vec![ConnectionEvent::Close(CloseCause::ConnectTimeout)]);
    assert!(c.is_closed());
    assert_eq!(c.poll_timeout(), None);
    // Nothing more happens once closed.
    c.handle_message(at(t0, 1_001), msg("0"));
    assert_eq!(events(&mut c), vec![]);
    assert_eq!(c.accept(at(t0, 1_002), "/", "s", None), Err(ConnectionError::Closed));
}

#[test]
fn a_connect_read_after_the_deadline_finds_the_connection_closed() {
    // The runtime's timer had not fired yet: the message's own time decides, as for Engine.IO inputs.
    let t0 = Instant::now();
    let mut c = conn(t0);
    c.handle_message(at(t0, 1_200), msg("0"));
    assert_eq!(events(&mut c), vec![ConnectionEvent::Close(CloseCause::ConnectTimeout)]);
    // A namespace being joined when the deadline passes does not count: only a joined one does.
    let mut c = conn(t0);
    c.handle_message(at(t0, 500), msg("0"));
    events(&mut c);
    c.handle_timeout(at(t0, 1_000));
    assert_eq!(events(&mut c), vec![ConnectionEvent::Close(CloseCause::ConnectTimeout)]);
    assert_eq!(c.accept(at(t0, 1_001), "/", "late", None), Err(ConnectionError::Closed));
}

#[test]
fn events_and_acks_on_a_joined_namespace_only() {
    let t0 = Instant::now();
    let mut c = joined(t0);
    // A namespace not joined: ignored, as the reference.
    c.handle_message(at(t0, 1), msg("2/other,[\"x\"]"));
    c.handle_message(at(t0, 1), msg("3/other,1[]"));
    assert_eq!(events(&mut c), vec![]);
    c.handle_message(at(t0, 2), msg("27[\"hello\",1,{\"a\":true}]"));
    let mut obj = Map::new();
    obj.insert("a".into(), Value::Bool(true));
    assert_eq!(
        events(&mut c),
        vec![ConnectionEvent::Event {
            nsp: "/".into(),
            name: "hello".into(),
            args: vec![Value::from(1), Value::Object(obj)],
            ack: Some(7)
        }]
    );
    c.ack(at(t0, 3), "/", 7, &[Value::from("ok")]).unwrap();
    assert_eq!(sent(&mut c), vec!["437[\"ok\"]"]);
    assert_eq!(c.ack(at(t0, 3), "/other", 7, &[]), Err(ConnectionError::NotConnected));
}

#[test]
fn binary_events_are_assembled_across_messages() {
    let t0 = Instant::now();
    let mut c = joined(t0);
    c.handle_message(at(t0, 1), msg("51-[\"file\",{\"_placeholder\":true,\"num\":0}]"));
    assert_eq!(events(&mut c), vec![]);
    c.handle_message(at(t0, 2), Message::Binary(Bytes::from_static(b"\x01\x02")));
    assert_eq!(
        events(&mut c),
        vec![ConnectionEvent::Event {
            nsp: "/".into(),
            name: "file".into(),
            args: vec![Value::Binary(Bytes::from_static(b"\x01\x02"))],
            ack: None
        }]
    );
    // And sent as a text frame with its attachment.
    c.emit(at(t0, 3), "/", "back", &[Value::Binary(Bytes::from_static(b"z"))], None).unwrap();
    assert_eq!(sent(&mut c), vec!["451-[\"back\",{\"_placeholder\":true,\"num\":0}]", "<bin:z>"]);
}

#[test]
fn acks_awaited_with_a_deadline_time_out_in_order() {
    let t0 = Instant::now();
    let mut c = joined(t0);
    let a = c.emit(at(t0, 10), "/", "q", &[], Some(Some(Duration::from_millis(500)))).unwrap().unwrap();
    let b = c.emit(at(t0, 20), "/", "q", &[], Some(Some(Duration::from_millis(100)))).unwrap().unwrap();
    let forever = c.emit(at(t0, 30), "/", "q", &[], Some(None)).unwrap().unwrap();
    assert_eq!((a, b, forever), (0, 1, 2), "ids are allocated in order");
    assert_eq!(sent(&mut c), vec!["420[\"q\"]", "421[\"q\"]", "422[\"q\"]"]);
    assert_eq!(c.pending_acks(), 3);
    assert_eq!(c.poll_timeout(), Some(at(t0, 120)));
    // The client answers `a` in time.
    c.handle_message(at(t0, 100), msg("30[\"yes\"]"));
    assert_eq!(events(&mut c), vec![ConnectionEvent::Ack { nsp: "/".into(), id: 0, args: vec![Value::from("yes")] }]);
    // A late wake-up fires `b` once.
    c.handle_timeout(at(t0, 700));
    assert_eq!(
        events(&mut c),
        vec![ConnectionEvent::AckFailed { nsp: "/".into(), id: 1, reason: AckFailure::Timeout }]
    );
    assert_eq!(c.poll_timeout(), None, "the ack without a deadline waits for ever");
    assert_eq!(c.pending_acks(), 1);
    // An ack answered after its timeout is still reported (the application may ignore it).
    c.handle_message(at(t0, 800), msg("31[]"));
    assert_eq!(events(&mut c), vec![ConnectionEvent::Ack { nsp: "/".into(), id: 1, args: vec![] }]);
}

#[test]
fn an_ack_id_given_by_the_application_is_awaited_too() {
    let t0 = Instant::now();
    let mut c = joined(t0);
    c.expect_ack(t0, "/", 900, Some(at(t0, 50))).unwrap();
    c.handle_timeout(at(t0, 50));
    assert_eq!(
        events(&mut c),
        vec![ConnectionEvent::AckFailed { nsp: "/".into(), id: 900, reason: AckFailure::Timeout }]
    );
}

#[test]
fn disconnect_both_ways_fails_the_acks_of_the_namespace() {
    let t0 = Instant::now();
    let mut c = joined(t0);
    c.handle_message(t0, msg("0/chat,"));
    events(&mut c);
    c.accept(t0, "/chat", "s2", None).unwrap();
    sent(&mut c);
    c.emit(t0, "/chat", "q", &[], Some(None)).unwrap();
    c.emit(t0, "/", "q", &[], Some(None)).unwrap();
    sent(&mut c);
    // The client leaves /chat.
    c.handle_message(at(t0, 1), msg("1/chat,"));
    assert_eq!(
        events(&mut c),
        vec![
            ConnectionEvent::AckFailed { nsp: "/chat".into(), id: 0, reason: AckFailure::Disconnected },
            ConnectionEvent::Disconnect { nsp: "/chat".into() },
        ]
    );
    assert!(!c.is_connected("/chat"));
    // Its packets are ignored from now on.
    c.handle_message(at(t0, 2), msg("2/chat,[\"x\"]"));
    assert_eq!(events(&mut c), vec![]);
    // The server makes the client leave /.
    c.disconnect(at(t0, 3), "/").unwrap();
    assert_eq!(sent(&mut c), vec!["41"]);
    assert_eq!(
        events(&mut c),
        vec![ConnectionEvent::AckFailed { nsp: "/".into(), id: 1, reason: AckFailure::Disconnected }]
    );
    assert_eq!(c.disconnect(at(t0, 4), "/"), Err(ConnectionError::NotConnected));
    // With no namespace left and the connect timeout long past, the connection stays: the timeout only
    // concerns the start, as in the reference.
    c.handle_timeout(at(t0, 10_000));
    assert!(!c.is_closed());
}

#[test]
fn a_decode_error_closes_the_connection() {
    let t0 = Instant::now();
    let mut c = joined(t0);
    c.emit(t0, "/", "q", &[], Some(None)).unwrap();
    sent(&mut c);
    c.handle_message(at(t0, 1), msg("2[\"connect\"]"));
    assert_eq!(
        events(&mut c),
        vec![
            ConnectionEvent::AckFailed { nsp: "/".into(), id: 0, reason: AckFailure::Disconnected },
            ConnectionEvent::Close(CloseCause::Decode(DecodeError::InvalidPayload)),
        ]
    );
    assert!(c.is_closed());
    // A binary message with no packet waiting for it, likewise.
    let mut c = joined(t0);
    c.handle_message(at(t0, 1), Message::Binary(Bytes::from_static(b"?")));
    assert_eq!(events(&mut c), vec![ConnectionEvent::Close(CloseCause::Decode(DecodeError::UnexpectedBinary))]);
}

#[test]
fn recovery_data_is_read_when_pid_and_offset_are_strings() {
    let t0 = Instant::now();
    let auth_of = |text: &str| {
        let mut c = conn(t0);
        c.handle_message(t0, msg(text));
        match events(&mut c).pop() {
            Some(ConnectionEvent::Connect { auth, .. }) => auth,
            other => panic!("{other:?}"),
        }
    };
    let auth = auth_of("0{\"pid\":\"p1\",\"offset\":\"o9\"}");
    assert_eq!(recovery(&auth), Some(Recovery { pid: "p1".into(), offset: "o9".into() }));
    assert_eq!(recovery(&auth_of("0{\"pid\":\"p1\",\"offset\":9}")), None);
    assert_eq!(recovery(&auth_of("0")), None);
}

#[test]
fn the_end_of_the_session_fails_every_awaited_ack() {
    let t0 = Instant::now();
    let mut c = joined(t0);
    c.emit(t0, "/", "q", &[], Some(Some(Duration::from_secs(5)))).unwrap();
    sent(&mut c);
    c.handle_closed();
    assert!(c.is_closed());
    assert_eq!(
        events(&mut c),
        vec![ConnectionEvent::AckFailed { nsp: "/".into(), id: 0, reason: AckFailure::Disconnected }]
    );
    assert_eq!(c.poll_timeout(), None);
    assert_eq!(c.emit(t0, "/", "q", &[], None), Err(ConnectionError::Closed));
}

#[test]
fn a_v2_client_is_in_the_main_namespace_without_asking() {
    let t0 = Instant::now();
    let mut c = conn_v2(t0);
    assert_eq!(events(&mut c), [ConnectionEvent::Connect { nsp: "/".into(), auth: Value::Object(Map::new()) }]);
    // The reply carries no payload (no sid, no pid), as the reference's to these clients.
    c.accept(t0, "/", "engine-id", Some("pid")).unwrap();
    assert_eq!(sent(&mut c), ["40"]);
    // A CONNECT for the main namespace changes nothing.
    c.handle_message(t0, msg("0"));
    assert!(events(&mut c).is_empty());
}

#[test]
fn a_v2_namespace_query_is_its_auth_and_refusals_carry_the_data_alone() {
    let t0 = Instant::now();
    let mut c = conn_v2(t0);
    events(&mut c);
    c.handle_message(t0, msg("0/chat?token=a%20b&x=1&x=2,{\"ignored\":true}"));
    let mut auth = Map::new();
    auth.insert("token".into(), Value::from("a b"));
    auth.insert("x".into(), Value::from("2"));
    assert_eq!(events(&mut c), [ConnectionEvent::Connect { nsp: "/chat".into(), auth: Value::Object(auth) }]);
    c.accept(t0, "/chat", "/chat#engine-id", None).unwrap();
    assert_eq!(sent(&mut c), ["40/chat,"]);
    // python-socketio 4 writes no comma after the namespace.
    c.handle_message(t0, msg("0/py"));
    assert_eq!(events(&mut c), [ConnectionEvent::Connect { nsp: "/py".into(), auth: Value::Object(Map::new()) }]);
    c.refuse(t0, "/py", "not allowed", None).unwrap();
    assert_eq!(sent(&mut c), ["44/py,\"not allowed\""]);
    c.handle_message(t0, msg("0/p2,"));
    events(&mut c);
    let mut data = Map::new();
    data.insert("code".into(), Value::from(401));
    c.refuse(t0, "/p2", "not authorized", Some(Value::Object(data))).unwrap();
    assert_eq!(sent(&mut c), ["44/p2,{\"code\":401}"]);
    // Events on the joined namespace are as with any client.
    c.handle_message(t0, msg("2/chat,[\"hi\",1]"));
    assert!(
        matches!(&events(&mut c)[..], [ConnectionEvent::Event { nsp, name, .. }] if nsp == "/chat" && name == "hi")
    );
}
