//! Decodes arbitrary bytes as a WebSocket frame (text when UTF-8, and always as binary); where decoding
//! succeeds, re-encoding (in text form for a `b` + base64 binary message) must give the input back.

#![no_main]

use engineio_proto::{ByteString, Bytes, Frame, Message, Packet};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        let input = ByteString::from(text);
        if let Ok(packet) = Packet::decode_text(input.clone()) {
            // A `b` + base64 text is a binary message, whose text form is `into_text`.
            let frame = packet.encode().into_text();
            assert_eq!(frame, Frame::Text(input.clone()), "text packet did not re-encode to its input");
            assert_eq!(Packet::decode_frame(frame), Ok(packet.clone()));
            if !matches!(packet, Packet::Message(Message::Binary(_))) {
                assert_eq!(input.as_bytes()[0], packet.packet_type() as u8);
            }
        }
        // The same text as a WebSocket text frame decodes the same way.
        assert_eq!(Packet::decode_frame(Frame::Text(input.clone())), Packet::decode_text(input));
    }
    let frame = Frame::Binary(Bytes::copy_from_slice(data));
    let packet = Packet::decode_frame(frame.clone()).expect("a binary frame is always a binary message");
    assert_eq!(packet, Packet::Message(Message::Binary(Bytes::copy_from_slice(data))));
    assert_eq!(packet.encode(), frame);
});
