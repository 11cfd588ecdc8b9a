//! Decodes arbitrary bytes as an Engine.IO v3 polling payload, in its text form and in its binary form,
//! and as a v3 WebSocket frame: no panic; a text payload's packets come before at most one error, and
//! where a payload decodes whole, its packets re-encode (in both forms) and decode again to the same ones.

#![no_main]

use engineio_proto::{Bytes, DecodeError, Frame, Packet, v3};
use libfuzzer_sys::fuzz_target;

fn decode(body: Bytes, binary: bool) -> Option<Result<Vec<Packet>, DecodeError>> {
    let items: Vec<Result<Packet, DecodeError>> = v3::decode_payload(body, binary, usize::MAX).ok()?.collect();
    if let Some(i) = items.iter().position(Result::is_err) {
        assert_eq!(i, items.len() - 1, "the iterator must end at its first error");
    }
    Some(items.into_iter().collect())
}

fuzz_target!(|data: &[u8]| {
    let body = Bytes::copy_from_slice(data);
    for binary in [false, true] {
        if !data.is_empty() {
            assert_eq!(
                v3::decode_payload(body.clone(), binary, data.len() - 1).err(),
                Some(DecodeError::PayloadTooLarge),
                "the size limit is checked first"
            );
        }
        let Some(Ok(packets)) = decode(body.clone(), binary) else { continue };
        let frames: Vec<Frame> = packets.iter().map(Packet::encode).collect();
        // A payload of empty entries only (`0:`) holds no packet, and there is nothing to write back.
        if !frames.is_empty() {
            assert_eq!(decode(v3::encode_text_payload(&frames), false), Some(Ok(packets.clone())), "text form");
            assert_eq!(decode(v3::encode_binary_payload(&frames), true), Some(Ok(packets.clone())), "binary form");
        }
    }
    for frame in [Frame::Binary(body.clone()), Frame::Text(String::from_utf8_lossy(data).into_owned().into())] {
        if let Ok(Some(packet)) = v3::decode_frame(frame) {
            for base64 in [false, true] {
                let again = v3::websocket_frame(packet.encode(), base64);
                assert_eq!(v3::decode_frame(again), Ok(Some(packet.clone())), "WebSocket frame");
            }
        }
    }
});
