//! A Socket.IO connection as a server runs it: an Engine.IO `Session` (WebSocket) whose messages feed the
//! Socket.IO decoder, with CONNECT and acks answered through the session. The input is a sequence of
//! records separated by 0xff: a text frame, a binary frame, a pong, or the clock moving on. After each step:
//! nothing is transmitted or delivered once the session closed, a decode error closes it (as the server
//! does), and the next timer is after `now`.
#![no_main]

use std::time::{Duration, Instant};

use engineio_proto::session::{Channel, Event, Session, SessionConfig, Transmit};
use engineio_proto::{CloseReason, Frame, TransportKind};
use libfuzzer_sys::fuzz_target;
use socketio_proto::{JsonParser, Map, Packet, PacketType, Parser, Value};

fuzz_target!(|data: &[u8]| {
    let parser = JsonParser::default();
    let mut decoder = parser.decoder();
    let t0 = Instant::now();
    let mut now = t0;
    let config = SessionConfig {
        ping_interval: Duration::from_millis(300),
        ping_timeout: Duration::from_millis(200),
        ..SessionConfig::default()
    };
    let mut s = Session::new("fuzz".into(), config, TransportKind::WebSocket, now, None);
    let mut closed = false;
    for record in data.split(|&b| b == 0xff).filter(|r| !r.is_empty()) {
        let (op, rest) = (record[0] % 4, &record[1..]);
        let input = match op {
            0 => Some(Frame::Text(format!("4{}", String::from_utf8_lossy(rest)).into())),
            1 => Some(Frame::Binary(rest.to_vec().into())),
            2 => Some(Frame::Text("3".into())),
            _ => {
                now += Duration::from_millis(u64::from(rest.first().copied().unwrap_or(1)) * 10);
                s.handle_timeout(now);
                None
            }
        };
        if let Some(frame) = input {
            let r = s.handle_frame(now, Channel::Main, frame);
            assert_eq!(r.is_err(), closed, "frames are refused exactly when the session is closed");
        }
        // Deliver events to the Socket.IO side; its replies go back through the session.
        while let Some(event) = s.poll_event() {
            assert!(!closed, "an event after Closed");
            match event {
                Event::Message(m) => match decoder.decode(m) {
                    Ok(Some(p)) => {
                        let reply = match p.kind {
                            PacketType::Connect => {
                                let mut o = Map::new();
                                o.insert("sid".into(), Value::from("x"));
                                Some(Packet::connect(p.nsp, Some(Value::Object(o))))
                            }
                            PacketType::Event | PacketType::BinaryEvent => p.id.map(|id| Packet::ack(p.nsp, id, vec![])),
                            _ => None,
                        };
                        for m in reply.iter().flat_map(|r| parser.encode(r)) {
                            assert!(s.send(Frame::from_message(&m)).is_ok(), "the session takes replies while open");
                        }
                    }
                    Ok(None) => {}
                    Err(_) => s.close(now, CloseReason::ForcedClose),
                },
                Event::Closed { .. } => closed = true,
                Event::Upgrading | Event::Upgraded => {}
            }
        }
        let mut after_close = false;
        while let Some(t) = s.poll_transmit() {
            assert!(!after_close, "a transmit after the WebSocket was closed: {t:?}");
            if t == Transmit::CloseWebSocket {
                after_close = true;
            }
        }
        if let Some(next) = s.poll_timeout() {
            assert!(next > now, "a timer in the past");
        }
        if closed {
            assert_eq!(s.poll_timeout(), None, "no timer after close");
        }
    }
});
