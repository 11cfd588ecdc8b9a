//! The permessage-deflate path: arbitrary bytes decoded as a client's stream by a decoder with compression
//! negotiated, compressed messages inflated, once whole and once fed in pieces of a size the input picks:
//! neither may panic, both must give the same messages and the same error, and no data message, inflated
//! or not, may pass the size limit (control frames: 125 bytes). Then the same bytes as one outgoing message: deflated by the server side,
//! masked as a client would send it, decoded and inflated again, they must come back unchanged.

#![no_main]

use engineio_proto::Bytes;
use engineio_proto::websocket::deflate::{Negotiated, PerMessageDeflate};
use engineio_proto::websocket::{Decoder, Opcode, WsError, WsMessage, apply_mask, parse_header};
use libfuzzer_sys::fuzz_target;

/// The size limit: the input's first byte picks one of these (small ones below zlib's first allocation).
const LIMITS: [usize; 4] = [1, 16, 63, 300];

fn params(bits: u8) -> Negotiated {
    Negotiated { server_no_context_takeover: bits & 1 != 0, client_no_context_takeover: bits & 2 != 0 }
}

fn decode(data: &[u8], piece: usize, negotiated: Negotiated, max: usize) -> (Vec<WsMessage>, Option<WsError>) {
    let mut decoder = Decoder::new(max).permessage_deflate(true);
    let mut deflate = PerMessageDeflate::new(negotiated, 0, max);
    let mut buf = bytes::BytesMut::new();
    let mut out = Vec::new();
    for chunk in data.chunks(piece) {
        buf.extend_from_slice(chunk);
        loop {
            let message = match decoder.decode(&mut buf) {
                Ok(Some(WsMessage::Compressed { text, payload })) => deflate.inflate(text, &payload),
                Ok(Some(m)) => Ok(m),
                Ok(None) => break,
                Err(e) => Err(e),
            };
            match message {
                Ok(m) => out.push(m),
                Err(e) => return (out, Some(e)),
            }
        }
    }
    (out, None)
}

/// A server frame (unmasked) made into the frame a client sends: mask bit set, key inserted, payload masked.
fn as_client_frame(frame: &[u8], key: [u8; 4]) -> Vec<u8> {
    let header = parse_header(frame).expect("a valid header").expect("a whole header");
    let mut out = frame[..header.header_len].to_vec();
    out[1] |= 0x80;
    out.extend_from_slice(&key);
    let mut payload = frame[header.header_len..].to_vec();
    apply_mask(&mut payload, key);
    out.extend(payload);
    out
}

fuzz_target!(|data: &[u8]| {
    let Some((&first, rest)) = data.split_first() else { return };
    let negotiated = params(first >> 4);
    let max = LIMITS[usize::from(first >> 6)];
    let whole = decode(rest, rest.len().max(1), negotiated, max);
    let pieces = decode(rest, usize::from(first % 16) + 1, negotiated, max);
    assert_eq!(whole, pieces);
    for m in &whole.0 {
        match m {
            WsMessage::Text(t) => assert!(t.len() <= max),
            WsMessage::Binary(b) => assert!(Bytes::len(b) <= max),
            // Control frames have their own limit, 125 bytes, whatever the message limit.
            WsMessage::Ping(b) | WsMessage::Pong(b) => assert!(Bytes::len(b) <= 125),
            WsMessage::Compressed { .. } => panic!("a compressed message was handed on"),
            WsMessage::Close(_) => {}
        }
    }

    // Round trip through the server's deflate and the decoder's inflate, twice (the second message may
    // refer back to the first through kept contexts).
    const MAX: usize = 300;
    let message = &rest[..rest.len().min(MAX)];
    let mut server = PerMessageDeflate::new(negotiated, 0, MAX);
    let mut decoder = Decoder::new(MAX).permessage_deflate(true);
    // The receiving side keeps its inflate context exactly when the sender keeps its deflate context.
    let mirrored = Negotiated { client_no_context_takeover: negotiated.server_no_context_takeover, ..negotiated };
    let mut receiver = PerMessageDeflate::new(mirrored, 0, MAX);
    for _ in 0..2 {
        let mut frame = Vec::new();
        server.encode(&mut frame, Opcode::Binary, message);
        let mut buf = bytes::BytesMut::from(&as_client_frame(&frame, [first, 1, 2, 3])[..]);
        let Ok(Some(WsMessage::Compressed { text: false, payload })) = decoder.decode(&mut buf) else {
            panic!("the deflated frame did not decode as a compressed binary message");
        };
        assert_eq!(receiver.inflate(false, &payload), Ok(WsMessage::Binary(Bytes::copy_from_slice(message))));
    }
});
