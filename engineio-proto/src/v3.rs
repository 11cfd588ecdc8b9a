//! Engine.IO v3 framing: what the clients of Socket.IO 2 (`engine.io-client` 3, python-engineio 3,
//! socket.io-client-java 1) speak, served when the runtime allows it (`allow_eio3`).
//!
//! The packets are those of v4 (same type digits, same open packet); what differs is how they travel.
//! The rules are the reference server's (its bundled v3 parser, `engine.io-parser` 2):
//!
//! - **Text payloads** (polling): each packet is written `<length>:<packet>`, one after the other, with
//!   the length counted in UTF-16 code units (a JavaScript string's length). A binary message inside a text
//!   payload is `b4` followed by its standard base64, the length counting the `b` and the `4`.
//! - **Binary payloads** (polling, for a client that supports binary, i.e. whose handshake had no `b64`):
//!   each packet is a flag byte (0 for a text packet, 1 for a binary one), the decimal digits of its
//!   length as bytes of value 0–9, the byte 255, then the packet: for text its UTF-8, for binary the type as
//!   a raw byte (4) followed by the data. The server writes a binary payload only when the batch holds a
//!   binary message (and the response is `application/octet-stream`); a client POSTs one with that content
//!   type.
//! - **WebSocket**: one packet per frame as in v4, except that a binary message carries its type byte:
//!   a binary frame is `0x04` followed by the data, both ways; a client without binary (`b64`) gets `b4` +
//!   base64 text frames.
//!
//! The heartbeat also goes the other way round (the client pings and the server answers), which is the
//! session's business: see [`crate::session::Session::with_protocol`].

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use bytes::{BufMut, Bytes, BytesMut};
use bytestring::ByteString;

use crate::error::DecodeError;
use crate::packet::{Frame, Message, Packet};

/// The byte that ends the length of an entry of a binary payload.
const LENGTH_END: u8 = 0xff;

/// The most length digits of a binary payload entry the reference reads (more is an error there too).
const MAX_LENGTH_DIGITS: usize = 310;

/// The raw type byte of a binary message.
const MESSAGE_TYPE: u8 = 4;

/// The length of `text` in UTF-16 code units, as JavaScript counts a string: one per character, two for
/// a character outside the Basic Multilingual Plane (whose UTF-8 is four bytes).
pub fn utf16_len(text: &str) -> usize {
    text.bytes().map(|b| usize::from(b & 0xc0 != 0x80) + usize::from(b >= 0xf0)).sum()
}

/// Whether a batch is written as a binary payload: the client supports binary and the batch holds some.
pub fn needs_binary_payload<'a>(frames: impl IntoIterator<Item = &'a Frame>, supports_binary: bool) -> bool {
    supports_binary && frames.into_iter().any(|f| !f.is_text())
}

/// Encodes frames as one v3 polling payload: a binary payload if [`needs_binary_payload`], else a text
/// payload. Returns the body and whether it is binary (to be sent as `application/octet-stream`).
pub fn encode_payload(frames: &[Frame], supports_binary: bool) -> (Bytes, bool) {
    if needs_binary_payload(frames, supports_binary) {
        (encode_binary_payload(frames), true)
    } else {
        (encode_text_payload(frames), false)
    }
}

/// Encodes frames as a v3 text payload (`<length>:<packet>`…; binary as `b4` + base64).
pub fn encode_text_payload<'a>(frames: impl IntoIterator<Item = &'a Frame>) -> Bytes {
    let mut buf = BytesMut::new();
    for frame in frames {
        match frame {
            Frame::Text(t) => {
                put_decimal(&mut buf, utf16_len(t));
                buf.put_u8(b':');
                buf.put_slice(t.as_bytes());
            }
            Frame::Binary(b) => {
                let encoded = base64::encoded_len(b.len(), true).unwrap_or(0);
                put_decimal(&mut buf, encoded + 2);
                buf.put_slice(b":b4");
                put_base64(&mut buf, b);
            }
        }
    }
    buf.freeze()
}

/// Encodes frames as a v3 binary payload (the XHR2 form; see the module documentation).
pub fn encode_binary_payload<'a>(frames: impl IntoIterator<Item = &'a Frame>) -> Bytes {
    let mut buf = BytesMut::new();
    for frame in frames {
        let (flag, len) = match frame {
            Frame::Text(t) => (0, t.len()),
            Frame::Binary(b) => (1, b.len() + 1),
        };
        buf.put_u8(flag);
        buf.extend(itoa_digits(len));
        buf.put_u8(LENGTH_END);
        match frame {
            Frame::Text(t) => buf.put_slice(t.as_bytes()),
            Frame::Binary(b) => {
                buf.put_u8(MESSAGE_TYPE);
                buf.put_slice(b);
            }
        }
    }
    buf.freeze()
}

/// The frame of a packet on a v3 WebSocket: a binary message gets its type byte (`0x04` + data), or is
/// written `b4` + base64 in a text frame for a client without binary (`base64`); text frames are as in v4.
pub fn websocket_frame(frame: Frame, base64: bool) -> Frame {
    match frame {
        Frame::Text(_) => frame,
        Frame::Binary(b) if base64 => {
            let mut buf = BytesMut::with_capacity(2 + base64::encoded_len(b.len(), true).unwrap_or(0));
            buf.put_slice(b"b4");
            put_base64(&mut buf, &b);
            Frame::Text(ByteString::try_from(buf.freeze()).expect("base64 is ASCII"))
        }
        Frame::Binary(b) => {
            let mut buf = BytesMut::with_capacity(b.len() + 1);
            buf.put_u8(MESSAGE_TYPE);
            buf.put_slice(&b);
            Frame::Binary(buf.freeze())
        }
    }
}

/// Decodes a frame received on a v3 WebSocket.
///
/// Text frames are packets as in v4, with binary written `b4` + base64. A binary frame starts with its
/// type byte: `0x04` is a binary message (its data a zero-copy slice); the other types are taken without
/// their data; an unknown type byte is ignored, as the reference does (`Ok(None)`).
pub fn decode_frame(frame: Frame) -> Result<Option<Packet>, DecodeError> {
    match frame {
        Frame::Text(t) => decode_text_packet(t).map(Some),
        Frame::Binary(b) => binary_packet(b),
    }
}

/// Decodes one text packet of v3: as [`Packet::decode_text`], except that a binary message is `b4` +
/// base64 (the type digit after the `b`).
pub fn decode_text_packet(text: ByteString) -> Result<Packet, DecodeError> {
    match &text.as_bytes()[..] {
        [b'b', b'4', data @ ..] => {
            let data = STANDARD.decode(data).map_err(|_| DecodeError::InvalidBase64)?;
            Ok(Packet::Message(Message::Binary(Bytes::from(data))))
        }
        [b'b', ..] => Err(DecodeError::InvalidBase64),
        _ => Packet::decode_text(text),
    }
}

/// A binary-form packet: its first byte is its type. `Ok(None)` for a type the reference ignores (an
/// unknown one, or none at all in an empty entry of a binary payload).
fn binary_packet(bytes: Bytes) -> Result<Option<Packet>, DecodeError> {
    let Some(&kind) = bytes.first() else {
        return Ok(None);
    };
    Ok(match kind {
        MESSAGE_TYPE => Some(Packet::Message(Message::Binary(bytes.slice(1..)))),
        1 => Some(Packet::Close),
        2 => Some(Packet::Ping),
        3 => Some(Packet::Pong),
        5 => Some(Packet::Upgrade),
        6 => Some(Packet::Noop),
        _ => None,
    })
}

/// Decodes a v3 polling body: a binary payload when the request said `application/octet-stream`
/// (`binary`), a text payload otherwise.
///
/// `max_len` bounds the body as in [`crate::payload::decode_payload`]. As the reference, the packets before
/// a malformed entry are delivered and then the error (the iterator ends after it); a binary payload is
/// split into its entries whole first, so one whose lengths do not add up yields only its error.
pub fn decode_payload(body: Bytes, binary: bool, max_len: usize) -> Result<PayloadIter, DecodeError> {
    if body.len() > max_len {
        return Err(DecodeError::PayloadTooLarge);
    }
    if binary {
        let entries = split_binary_payload(body)?;
        return Ok(PayloadIter(Inner::Split { entries: entries.into_iter(), done: false }));
    }
    let text = ByteString::try_from(body).map_err(|_| DecodeError::InvalidUtf8)?;
    if text.is_empty() {
        return Err(DecodeError::Empty);
    }
    Ok(PayloadIter(Inner::Text { text, pos: 0, done: false }))
}

/// The packets of a v3 polling payload, decoded one at a time (see [`decode_payload`]).
#[derive(Debug)]
pub struct PayloadIter(Inner);

#[derive(Debug)]
enum Inner {
    Text { text: ByteString, pos: usize, done: bool },
    Split { entries: std::vec::IntoIter<(bool, Bytes)>, done: bool },
}

impl Iterator for PayloadIter {
    type Item = Result<Packet, DecodeError>;

    fn next(&mut self) -> Option<Self::Item> {
        match &mut self.0 {
            Inner::Split { entries, done } => loop {
                if *done {
                    return None;
                }
                let (is_text, entry) = entries.next()?;
                let packet = if is_text {
                    ByteString::try_from(entry)
                        .map_err(|_| DecodeError::InvalidUtf8)
                        .and_then(decode_text_packet)
                        .map(Some)
                } else {
                    binary_packet(entry)
                };
                match packet {
                    Ok(Some(packet)) => return Some(Ok(packet)),
                    Ok(None) => continue,
                    Err(e) => {
                        *done = true;
                        return Some(Err(e));
                    }
                }
            },
            Inner::Text { text, pos, done } => loop {
                if *done || *pos == text.len() {
                    return None;
                }
                match next_text_entry(text, pos) {
                    Ok(Some(packet)) => return Some(Ok(packet)),
                    Ok(None) => continue,
                    Err(e) => {
                        *done = true;
                        return Some(Err(e));
                    }
                }
            },
        }
    }
}

/// Reads the entry of a text payload at `pos` and moves past it; `None` for an empty entry (`0:`).
fn next_text_entry(text: &ByteString, pos: &mut usize) -> Result<Option<Packet>, DecodeError> {
    let rest = &text[*pos..];
    let colon = rest.find(':').ok_or(DecodeError::BadLength)?;
    let digits = &rest[..colon];
    if digits.is_empty() || digits.len() > 16 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(DecodeError::BadLength);
    }
    let units: usize = digits.parse().map_err(|_| DecodeError::BadLength)?;
    let start = colon + 1;
    let mut counted = 0;
    let mut end = start;
    for c in rest[start..].chars() {
        if counted >= units {
            break;
        }
        counted += c.len_utf16();
        end += c.len_utf8();
    }
    if counted != units {
        // Too short, or the length ends inside a surrogate pair.
        return Err(DecodeError::BadLength);
    }
    *pos += end;
    if units == 0 {
        return Ok(None);
    }
    decode_text_packet(text.slice_ref(&rest[start..end])).map(Some)
}

/// Splits a binary payload into its entries, `(is_text, bytes)`, all of them before any is decoded, exactly
/// as the reference's `decodePayloadAsBinary` reads a body, its quirks included so that a malformed one
/// gives the same packets: the length is the decimal text of the bytes before the 255 (a byte over 9 reads
/// as its own decimal digits, which also moves where the data starts, as there); an entry longer than the
/// rest of the body is cut at its end; an entry whose length has no leading digit is empty. A length of
/// more than 310 digits, or one with no 255 after it, is [`DecodeError::BadLength`]. An empty body holds
/// no entry.
fn split_binary_payload(body: Bytes) -> Result<Vec<(bool, Bytes)>, DecodeError> {
    use std::fmt::Write as _;
    let mut entries = Vec::new();
    let mut tail = 0;
    let mut digits = String::new();
    while tail < body.len() {
        let is_text = body[tail] == 0;
        digits.clear();
        let mut i = tail + 1;
        loop {
            match body.get(i) {
                Some(&LENGTH_END) => break,
                _ if digits.len() > MAX_LENGTH_DIGITS => return Err(DecodeError::BadLength),
                Some(b) => write!(digits, "{b}").expect("writing to a String"),
                // Past the end the reference reads `undefined`, until the length is too long.
                None => digits.push_str("undefined"),
            }
            i += 1;
        }
        tail = (tail + digits.len() + 1).min(body.len());
        let lead = digits.bytes().take_while(u8::is_ascii_digit).count();
        if lead == 0 {
            // `parseInt` gives NaN: an empty entry, and the position does not move past it.
            entries.push((is_text, Bytes::new()));
            continue;
        }
        let len = digits[..lead].parse::<usize>().unwrap_or(usize::MAX);
        let start = (tail + 1).min(body.len());
        let end = tail.saturating_add(len).saturating_add(1).min(body.len());
        entries.push((is_text, body.slice(start..end.max(start))));
        tail = end;
    }
    Ok(entries)
}

fn put_base64(buf: &mut BytesMut, data: &[u8]) {
    let start = buf.len();
    buf.resize(start + base64::encoded_len(data.len(), true).unwrap_or(0), 0);
    let written = STANDARD.encode_slice(data, &mut buf[start..]).expect("the buffer was sized with encoded_len");
    buf.truncate(start + written);
}

fn put_decimal(buf: &mut BytesMut, n: usize) {
    buf.extend(itoa_digits(n).map(|d| d + b'0'));
}

/// The decimal digits of `n` as values 0–9, most significant first.
fn itoa_digits(n: usize) -> impl Iterator<Item = u8> {
    let mut digits = [0u8; 20];
    let mut i = digits.len();
    let mut n = n;
    loop {
        i -= 1;
        digits[i] = (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    digits.into_iter().skip(i)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(s: &str) -> Frame {
        Frame::Text(ByteString::from(s))
    }

    fn all(body: &[u8], binary: bool) -> Vec<Result<Packet, DecodeError>> {
        match decode_payload(Bytes::copy_from_slice(body), binary, 1 << 20) {
            Ok(iter) => iter.collect(),
            Err(e) => vec![Err(e)],
        }
    }

    #[test]
    fn text_payload_lengths_count_utf16_units() {
        let frames = [text("4hello"), text("4é€😀"), Packet::Pong.encode()];
        assert_eq!(&encode_text_payload(&frames)[..], "6:4hello5:4é€😀1:3".as_bytes());
        assert_eq!(utf16_len("4é€😀"), 5);
        let decoded: Vec<_> = all("6:4hello5:4é€😀1:3".as_bytes(), false).into_iter().map(Result::unwrap).collect();
        assert_eq!(decoded, [Packet::Message("hello".into()), Packet::Message("é€😀".into()), Packet::Pong]);
    }

    #[test]
    fn binary_in_a_text_payload_is_b4_base64() {
        let frames = [Frame::Binary(Bytes::from_static(&[1, 2, 3])), text("2")];
        let (body, binary) = encode_payload(&frames, false);
        assert!(!binary);
        assert_eq!(&body[..], b"6:b4AQID1:2");
        assert_eq!(
            all(&body, false).into_iter().map(Result::unwrap).collect::<Vec<_>>(),
            [Packet::Message(Message::Binary(Bytes::from_static(&[1, 2, 3]))), Packet::Ping]
        );
    }

    #[test]
    fn binary_payloads_as_the_reference_writes_them() {
        // A text packet, a binary message of two bytes and a pong, laid out as the reference does.
        let frames = [text("40"), Frame::Binary(Bytes::from_static(&[1, 2])), text("3")];
        let (body, binary) = encode_payload(&frames, true);
        assert!(binary);
        assert_eq!(&body[..], &[0, 2, 0xff, b'4', b'0', 1, 3, 0xff, 4, 1, 2, 0, 1, 0xff, b'3']);
        let decoded: Vec<_> = all(&body, true).into_iter().map(Result::unwrap).collect();
        assert_eq!(
            decoded,
            [Packet::Message("0".into()), Packet::Message(Message::Binary(Bytes::from_static(&[1, 2]))), Packet::Pong]
        );
        // Text only: a text payload even when the client supports binary.
        assert_eq!(encode_payload(&[text("40")], true), (Bytes::from_static(b"2:40"), false));
        // Lengths of ten and more take several digit bytes.
        let long = text("4abcdefghijk");
        assert_eq!(&encode_binary_payload([&long])[..3], &[0, 1, 2]);
    }

    #[test]
    fn a_bad_entry_ends_a_text_payload_after_the_good_ones() {
        let got = all(b"2:401:25:xx", false);
        assert_eq!(got[0], Ok(Packet::Message("0".into())));
        assert_eq!(got[1], Ok(Packet::Ping));
        assert_eq!(got[2], Err(DecodeError::BadLength));
        assert_eq!(got.len(), 3);
        assert_eq!(all(b"0:2:40", false), [Ok(Packet::Message("0".into()))], "an empty entry is skipped");
        assert_eq!(all(b"", false), [Err(DecodeError::Empty)]);
        assert_eq!(all(b":2", false), [Err(DecodeError::BadLength)]);
        assert_eq!(all(b"a:2", false), [Err(DecodeError::BadLength)]);
        assert_eq!(all(b"99999999999999999999:2", false), [Err(DecodeError::BadLength)]);
        assert_eq!(all("1:😀".as_bytes(), false), [Err(DecodeError::BadLength)], "a length inside a pair");
        assert_eq!(all(b"1:7", false), [Err(DecodeError::UnknownType(b'7'))]);
        assert_eq!(all(b"3:b4!", false), [Err(DecodeError::InvalidBase64)]);
        assert_eq!(all(b"4:b2AA", false), [Err(DecodeError::InvalidBase64)]);
    }

    #[test]
    fn binary_payloads_are_split_as_the_reference_splits_them() {
        // An entry longer than the rest of the body is cut at its end.
        assert_eq!(
            all(&[0, 1, 0xff, b'2', 0, 5, 0xff, b'4'], true),
            [Ok(Packet::Ping), Ok(Packet::Message("".into()))]
        );
        // A length byte over 9 reads as its decimal text ("10"), which also moves where the data starts.
        assert_eq!(all(&[0, 1, 10, 0xff, b'2'], true), [Err(DecodeError::Empty)]);
        // No 255 after the length, or more than 310 digits: the whole body is refused.
        assert_eq!(all(&[0, 0xff, b'2'], true), [Err(DecodeError::BadLength)]);
        assert_eq!(all(&[0, 1], true), [Err(DecodeError::BadLength)]);
        let mut many_digits = vec![0u8];
        many_digits.extend(std::iter::repeat_n(0, 312));
        many_digits.push(0xff);
        assert_eq!(all(&many_digits, true), [Err(DecodeError::BadLength)]);
        // An empty body holds no packet.
        assert!(all(&[], true).is_empty());
        // A bad packet in a well-split payload comes after the good ones, as in a text payload.
        assert_eq!(
            all(&[0, 1, 0xff, b'2', 0, 1, 0xff, 0xc3, 0, 1, 0xff, b'3'], true),
            [Ok(Packet::Ping), Err(DecodeError::InvalidUtf8)]
        );
        assert_eq!(all(&[0, 1, 0xff, 0xc3], true), [Err(DecodeError::InvalidUtf8)]);
        // An empty binary entry has no type: ignored, as by the reference.
        assert_eq!(all(&[1, 0, 0xff, 0, 1, 0xff, b'2'], true), [Ok(Packet::Ping)]);
        // An unknown binary type is skipped, as the reference ignores it.
        assert_eq!(all(&[1, 2, 0xff, 9, 9, 0, 1, 0xff, b'2'], true), [Ok(Packet::Ping)]);
    }

    #[test]
    fn websocket_frames_carry_the_type_byte() {
        let data = Frame::Binary(Bytes::from_static(&[1, 2, 3]));
        assert_eq!(websocket_frame(data.clone(), false), Frame::Binary(Bytes::from_static(&[4, 1, 2, 3])));
        assert_eq!(websocket_frame(data.clone(), true), text("b4AQID"));
        assert_eq!(websocket_frame(text("42[]"), false), text("42[]"));
        let message = Some(Packet::Message(Message::Binary(Bytes::from_static(&[1, 2, 3]))));
        assert_eq!(decode_frame(Frame::Binary(Bytes::from_static(&[4, 1, 2, 3]))), Ok(message.clone()));
        assert_eq!(decode_frame(text("b4AQID")), Ok(message));
        assert_eq!(decode_frame(Frame::Binary(Bytes::from_static(&[9, 1]))), Ok(None));
        assert_eq!(decode_frame(Frame::Binary(Bytes::new())), Ok(None));
        assert_eq!(decode_frame(text("2probe")), Ok(Some(Packet::PingProbe)));
    }

    #[test]
    fn too_large_bodies_are_refused_first() {
        assert_eq!(decode_payload(Bytes::from_static(b"2:40"), false, 3).err(), Some(DecodeError::PayloadTooLarge));
    }
}
