//! A Socket.IO connection as a server runs it: an Engine.IO `Session` (WebSocket) whose messages feed a
//! `socketio_proto::Connection`, with the application's answers (accept or refuse a CONNECT, acknowledge,
//! emit with an ack and a timeout, disconnect) chosen by the input, and the clock moving on. The input is a
//! sequence of records separated by 0xff; the low bit of the first byte makes the client a Socket.IO 2
//! client (Engine.IO v3, the implicit main namespace, namespace queries as auth). After each step:
//! - nothing is transmitted or delivered once the session closed, and a `Close` from the connection closes
//!   the session;
//! - the connection's events agree with a model of it: a CONNECT event only for a namespace neither joined
//!   nor being joined, events and acks only on joined namespaces, a `Disconnect` only for a joined one, an
//!   `AckFailed` only for an ack awaited (and each at most once), no event after `Close`;
//! - `accept`/`refuse`/`disconnect` succeed exactly when the model says the namespace is in the right
//!   state; the session's next timer is after `now` and the connection's not before it (an ack emitted with
//!   a zero timeout is due at once), and none is left once closed.
#![no_main]

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use engineio_proto::session::{Channel, Event, Session, SessionConfig, Transmit};
use engineio_proto::{CloseReason, Frame, Protocol, TransportKind};
use libfuzzer_sys::fuzz_target;
use socketio_proto::{Connection, ConnectionConfig, ConnectionEvent, JsonParser, Value};

const NAMESPACES: [&str; 3] = ["/", "/a", "/b"];

#[derive(Default)]
struct Model {
    connecting: BTreeSet<String>,
    joined: BTreeSet<String>,
    /// Acks awaited, by namespace and id.
    awaited: BTreeMap<(String, u64), ()>,
    closed: bool,
}

fuzz_target!(|data: &[u8]| {
    let t0 = Instant::now();
    let mut now = t0;
    let config = SessionConfig {
        ping_interval: Duration::from_millis(300),
        ping_timeout: Duration::from_millis(200),
        ..SessionConfig::default()
    };
    let v2 = data.first().is_some_and(|b| b & 1 == 1);
    let protocol = if v2 { Protocol::V3 } else { Protocol::V4 };
    let mut s = Session::with_protocol(protocol, "fuzz".into(), config, TransportKind::WebSocket, now, None);
    let conn_config = ConnectionConfig { connect_timeout: Duration::from_millis(1_000), v2_client: v2 };
    let mut c = Connection::new(Arc::new(JsonParser::default()), conn_config, now);
    let mut m = Model::default();
    // A Socket.IO 2 client's implicit CONNECT to the main namespace is its connection's first event.
    while let Some(event) = c.poll_event() {
        let ConnectionEvent::Connect { nsp, .. } = event else { panic!("only a CONNECT comes first: {event:?}") };
        assert!(v2 && nsp == "/", "an event before any input: {nsp}");
        m.connecting.insert(nsp);
    }
    let mut session_closed = false;
    for record in data.split(|&b| b == 0xff).filter(|r| !r.is_empty()) {
        let (op, rest) = (record[0] % 9, &record[1..]);
        let pick = |i: usize| rest.get(i).copied().unwrap_or(0);
        let nsp = NAMESPACES[pick(0) as usize % NAMESPACES.len()];
        let mut frame = None;
        match op {
            0 => frame = Some(Frame::Text(format!("4{}", String::from_utf8_lossy(rest)).into())),
            1 => frame = Some(Frame::Binary(rest.to_vec().into())),
            2 => {
                // A well-formed CONNECT / event / ack / disconnect for a namespace, to reach deep states.
                let prefix = if nsp == "/" { String::new() } else { format!("{nsp},") };
                let text = match pick(1) % 4 {
                    0 if v2 && pick(2) % 2 == 1 => format!("40{nsp}?k=v%20{},", pick(3)),
                    0 => format!("40{prefix}"),
                    1 => format!("42{prefix}{}[\"e\",1]", pick(2) % 4),
                    2 => format!("43{prefix}{}[]", pick(2) % 4),
                    _ => format!("41{prefix}"),
                };
                frame = Some(Frame::Text(text.into()));
            }
            3 => {
                let r = c.accept(now, nsp, "sid", None);
                c_check(r.is_ok(), m.connecting.contains(nsp) && !m.closed, "accept");
                if r.is_ok() {
                    m.connecting.remove(nsp);
                    m.joined.insert(nsp.to_owned());
                }
            }
            4 => {
                let r = c.refuse(now, nsp, "no", None);
                c_check(r.is_ok(), m.connecting.contains(nsp) && !m.closed, "refuse");
                if r.is_ok() {
                    m.connecting.remove(nsp);
                }
            }
            5 => {
                let timeout = (pick(1) % 2 == 0).then(|| Duration::from_millis(u64::from(pick(2)) * 10));
                let r = c.emit(now, nsp, "q", &[Value::from(1)], Some(timeout));
                c_check(r.is_ok(), m.joined.contains(nsp) && !m.closed, "emit");
                if let Ok(Some(id)) = r {
                    assert!(m.awaited.insert((nsp.to_owned(), id), ()).is_none(), "ack id {id} given twice");
                }
            }
            6 => {
                let r = c.disconnect(now, nsp);
                c_check(r.is_ok(), m.joined.contains(nsp) && !m.closed, "disconnect");
                if r.is_ok() {
                    m.joined.remove(nsp);
                }
            }
            // The heartbeat's answer: a pong in v4, a ping in v3 (where the client pings).
            7 => frame = Some(Frame::Text(if v2 { "2" } else { "3" }.into())),
            _ => {
                now += Duration::from_millis(u64::from(pick(0)) * 10);
                s.handle_timeout(now);
                c.handle_timeout(now);
            }
        }
        if let Some(frame) = frame {
            let r = s.handle_frame(now, Channel::Main, frame);
            assert_eq!(r.is_err(), session_closed, "frames are refused exactly when the session is closed");
        }
        // Carry out both machines until they are quiet.
        loop {
            let mut busy = false;
            while let Some(event) = s.poll_event() {
                busy = true;
                assert!(!session_closed, "an event after Closed");
                match event {
                    Event::Message(msg) => c.handle_message(now, msg),
                    Event::Closed { .. } => {
                        session_closed = true;
                        c.handle_closed();
                    }
                    Event::Upgrading | Event::Upgraded => {}
                }
            }
            while let Some(event) = c.poll_event() {
                busy = true;
                assert!(!m.closed, "a connection event after Close: {event:?}");
                match event {
                    ConnectionEvent::Connect { nsp, .. } => {
                        assert!(!m.joined.contains(&nsp) && !m.connecting.contains(&nsp), "CONNECT again for {nsp}");
                        m.connecting.insert(nsp);
                    }
                    ConnectionEvent::Event { nsp, .. } => assert!(m.joined.contains(&nsp), "an event on {nsp}"),
                    ConnectionEvent::Ack { nsp, id, .. } => {
                        assert!(m.joined.contains(&nsp), "an ack on {nsp}");
                        m.awaited.remove(&(nsp, id));
                    }
                    ConnectionEvent::AckFailed { nsp, id, .. } => {
                        assert!(m.awaited.remove(&(nsp.clone(), id)).is_some(), "AckFailed for {nsp} {id} not awaited");
                    }
                    ConnectionEvent::Disconnect { nsp } => {
                        assert!(m.joined.remove(&nsp), "a Disconnect for {nsp} not joined");
                    }
                    ConnectionEvent::Close(_) => {
                        m.closed = true;
                        m.joined.clear();
                        m.connecting.clear();
                        s.close(now, CloseReason::ForcedClose);
                    }
                }
            }
            if c.is_closed() && !m.closed {
                // Closed by the session's end: every namespace is gone, every awaited ack failed.
                m.closed = true;
                m.joined.clear();
                m.connecting.clear();
            }
            while let Some(frames) = c.poll_transmit() {
                busy = true;
                for frame in frames {
                    assert!(s.send(frame).is_ok() || session_closed, "the session takes frames while open");
                }
            }
            if !busy {
                break;
            }
        }
        if m.closed {
            assert!(m.awaited.is_empty(), "closed with acks still awaited: {:?}", m.awaited);
            assert_eq!(c.poll_timeout(), None, "a connection timer after close");
        }
        let mut after_close = false;
        while let Some(t) = s.poll_transmit() {
            assert!(!after_close, "a transmit after the WebSocket was closed: {t:?}");
            if t == Transmit::CloseWebSocket {
                after_close = true;
            }
        }
        if let Some(next) = s.poll_timeout() {
            assert!(next > now, "a session timer not after now");
        }
        // An ack emitted with a zero timeout is due at once: its deadline may be `now`, never earlier.
        if let Some(next) = c.poll_timeout() {
            assert!(next >= now, "a connection timer in the past");
        }
        if session_closed {
            assert_eq!(s.poll_timeout(), None, "no timer after close");
        }
    }
});

fn c_check(ok: bool, expected: bool, what: &str) {
    assert_eq!(ok, expected, "{what} succeeded = {ok}, the model expected {expected}");
}
