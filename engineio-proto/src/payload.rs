//! Long-polling payloads: several packets in one HTTP body.
//!
//! Protocol description, section "Packet encoding / HTTP long-polling": packets are joined with the record
//! separator `\x1e`; a binary message is written as `b` followed by its standard base64 encoding. The same
//! format goes both ways (GET response bodies and POST request bodies).

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use bytes::{BufMut, Bytes, BytesMut};
use bytestring::ByteString;

use crate::error::DecodeError;
use crate::packet::{Frame, Packet};

/// The separator between the packets of a polling payload.
pub const SEPARATOR: u8 = 0x1e;

/// Encodes frames as one polling payload.
pub fn encode_payload<'a>(frames: impl IntoIterator<Item = &'a Frame>) -> Bytes {
    let mut buf = BytesMut::new();
    for (i, frame) in frames.into_iter().enumerate() {
        if i > 0 {
            buf.put_u8(SEPARATOR);
        }
        match frame {
            Frame::Text(t) => buf.put_slice(t.as_bytes()),
            Frame::Binary(b) => {
                buf.put_u8(b'b');
                let start = buf.len();
                buf.resize(start + base64::encoded_len(b.len(), true).unwrap_or(0), 0);
                let written =
                    STANDARD.encode_slice(b, &mut buf[start..]).expect("the buffer was sized with encoded_len");
                buf.truncate(start + written);
            }
        }
    }
    buf.freeze()
}

/// Decodes a polling payload into its packets.
///
/// `max_len` bounds the body (the runtime's `max_http_buffer_size`); a longer body is
/// [`DecodeError::PayloadTooLarge`] before any work is done. Text messages are zero-copy slices of `body`.
/// An empty body, an empty entry, a non-UTF-8 body or bad base64 is an error.
pub fn decode_payload(body: Bytes, max_len: usize) -> Result<Vec<Packet>, DecodeError> {
    PayloadIter::new(body, max_len)?.collect()
}

/// The packets of a polling payload, decoded one at a time.
///
/// Like the reference parser, it yields the packets before a malformed entry and then the error, after
/// which it ends; so a session can handle what came before a bad entry and then close.
#[derive(Debug)]
pub struct PayloadIter {
    text: ByteString,
    pos: usize,
    done: bool,
}

impl PayloadIter {
    /// Checks the size and the UTF-8 of `body`.
    pub fn new(body: Bytes, max_len: usize) -> Result<Self, DecodeError> {
        if body.len() > max_len {
            return Err(DecodeError::PayloadTooLarge);
        }
        let text = ByteString::try_from(body).map_err(|_| DecodeError::InvalidUtf8)?;
        Ok(Self { text, pos: 0, done: false })
    }

    fn decode_entry(part: ByteString) -> Result<Packet, DecodeError> {
        // `b` + base64 entries are decoded there too: the reference shares one packet decoder.
        Packet::decode_text(part)
    }
}

impl Iterator for PayloadIter {
    type Item = Result<Packet, DecodeError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        let rest = &self.text[self.pos..];
        let end = rest.find('\x1e').unwrap_or(rest.len());
        let part = self.text.slice_ref(&rest[..end]);
        if end == rest.len() {
            self.done = true;
        } else {
            self.pos += end + 1;
        }
        let result = Self::decode_entry(part);
        if result.is_err() {
            self.done = true;
        }
        Some(result)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::packet::Message;

    #[test]
    fn encodes_text_and_binary() {
        let frames = [Frame::message("hello"), Frame::Binary(Bytes::from_static(&[1, 2, 3, 4])), Packet::Ping.encode()];
        assert_eq!(&encode_payload(&frames)[..], b"4hello\x1ebAQIDBA==\x1e2");
        assert_eq!(&encode_payload(&[] as &[Frame])[..], b"");
    }

    #[test]
    fn decodes_text_and_binary() {
        let packets = decode_payload(Bytes::from_static(b"4hello\x1ebAQIDBA==\x1e3"), 100).unwrap();
        assert_eq!(
            packets,
            vec![
                Packet::Message("hello".into()),
                Packet::Message(Message::Binary(Bytes::from_static(&[1, 2, 3, 4]))),
                Packet::Pong,
            ]
        );
    }

    #[test]
    fn rejects_bad_payloads() {
        assert_eq!(decode_payload(Bytes::from_static(b""), 10), Err(DecodeError::Empty));
        assert_eq!(decode_payload(Bytes::from_static(b"4a\x1e"), 10), Err(DecodeError::Empty));
        assert_eq!(decode_payload(Bytes::from_static(b"b!!"), 10), Err(DecodeError::InvalidBase64));
        assert_eq!(decode_payload(Bytes::from_static(b"4\xff"), 10), Err(DecodeError::InvalidUtf8));
        assert_eq!(decode_payload(Bytes::from_static(b"4hello"), 5), Err(DecodeError::PayloadTooLarge));
        assert_eq!(decode_payload(Bytes::from_static(b"abc"), 10), Err(DecodeError::UnknownType(b'a')));
    }
}
