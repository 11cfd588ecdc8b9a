//! Feeds arbitrary messages to the default Socket.IO decoder (text parts and binary attachments). The
//! input is a sequence of `[tag][len lo][len hi][bytes]` records: an even tag is a text message (skipped
//! if not UTF-8), an odd one a binary message. Every packet that decodes must re-encode and decode to
//! itself.
#![no_main]

use engineio_proto::Message;
use libfuzzer_sys::fuzz_target;
use socketio_proto::{JsonParser, Parser};

fuzz_target!(|data: &[u8]| {
    let parser = JsonParser::default();
    let mut decoder = parser.decoder();
    let mut rest = data;
    while rest.len() >= 3 {
        let tag = rest[0];
        let len = (usize::from(rest[1]) | usize::from(rest[2]) << 8).min(rest.len() - 3);
        let body = &rest[3..3 + len];
        rest = &rest[3 + len..];
        let message = if tag % 2 == 0 {
            match std::str::from_utf8(body) {
                Ok(s) => Message::from(s),
                Err(_) => continue,
            }
        } else {
            Message::Binary(body.to_vec().into())
        };
        match decoder.decode(message) {
            Ok(Some(packet)) => {
                let mut again = parser.decoder();
                let mut out = None;
                for m in parser.encode(&packet) {
                    out = again.decode(m).expect("what we encode decodes");
                }
                let back = out.expect("a complete packet");
                assert_eq!(back.nsp, packet.nsp);
                assert_eq!(back.id, packet.id);
                assert_eq!(back.data, packet.data);
            }
            Ok(None) => {}
            // After an error the connection is closed; start over as a new one would.
            Err(_) => decoder = parser.decoder(),
        }
    }
});
