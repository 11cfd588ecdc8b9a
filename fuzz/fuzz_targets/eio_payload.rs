//! Decodes arbitrary bytes as a long-polling payload; where decoding succeeds, the packets re-encode to the
//! same body and decode again to the same packets.

#![no_main]

use engineio_proto::payload::{PayloadIter, decode_payload, encode_payload};
use engineio_proto::{Bytes, DecodeError, Frame, Packet};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let body = Bytes::copy_from_slice(data);
    let decoded = decode_payload(body.clone(), usize::MAX);

    // The streaming iterator agrees with decode_payload, and stops at the first error.
    if let Ok(iter) = PayloadIter::new(body.clone(), usize::MAX) {
        let items: Vec<Result<Packet, DecodeError>> = iter.collect();
        assert!(!items.is_empty());
        if let Some(i) = items.iter().position(Result::is_err) {
            assert_eq!(i, items.len() - 1, "the iterator must end at its first error");
        }
        let collected: Result<Vec<Packet>, DecodeError> = items.into_iter().collect();
        assert_eq!(collected, decoded);
    } else {
        assert_eq!(decoded, Err(DecodeError::InvalidUtf8));
    }

    // The size limit is checked first.
    if !data.is_empty() {
        assert_eq!(decode_payload(body.clone(), data.len() - 1), Err(DecodeError::PayloadTooLarge));
    }

    if let Ok(packets) = decoded {
        assert!(!packets.is_empty());
        let frames: Vec<Frame> = packets.iter().map(Packet::encode).collect();
        let again = encode_payload(&frames);
        assert_eq!(decode_payload(again.clone(), usize::MAX), Ok(packets), "packets did not round-trip");
        assert_eq!(again, body, "payload did not re-encode to its input");
    }
});
