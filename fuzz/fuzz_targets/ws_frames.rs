//! Decodes arbitrary bytes as the WebSocket stream a client sends, once whole and once fed in pieces of a
//! size the input picks: neither may panic, both must give the same messages and the same error, and no
//! message may pass the size limit.

#![no_main]

use engineio_proto::Bytes;
use engineio_proto::websocket::{Decoder, WsError, WsMessage};
use libfuzzer_sys::fuzz_target;

const MAX: usize = 300;

fn decode(data: &[u8], piece: usize) -> (Vec<WsMessage>, Option<WsError>) {
    let mut decoder = Decoder::new(MAX);
    let mut buf = bytes::BytesMut::new();
    let mut out = Vec::new();
    for chunk in data.chunks(piece) {
        buf.extend_from_slice(chunk);
        loop {
            match decoder.decode(&mut buf) {
                Ok(Some(m)) => out.push(m),
                Ok(None) => {
                    assert!(decoder.needed() > buf.len(), "asked for more bytes than it needs");
                    break;
                }
                Err(e) => return (out, Some(e)),
            }
        }
    }
    (out, None)
}

fuzz_target!(|data: &[u8]| {
    let Some((&first, rest)) = data.split_first() else { return };
    let whole = decode(rest, rest.len().max(1));
    let pieces = decode(rest, usize::from(first % 16) + 1);
    assert_eq!(whole, pieces);
    for m in &whole.0 {
        let len = match m {
            WsMessage::Text(t) => t.len(),
            WsMessage::Binary(b) | WsMessage::Ping(b) | WsMessage::Pong(b) => Bytes::len(b),
            WsMessage::Compressed { .. } => panic!("a compressed message without permessage-deflate"),
            WsMessage::Close(_) => 0,
        };
        assert!(len <= MAX);
    }
});
