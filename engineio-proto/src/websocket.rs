//! WebSocket framing (RFC 6455) for the server side, without I/O.
//!
//! The runtime reads bytes from the connection into a [`BytesMut`] and asks a [`Decoder`] for the next
//! whole message: data frames are unmasked in place, fragments are joined, control frames that arrive
//! between fragments come out on their own, and every rule a server must enforce is checked (masking,
//! reserved bits, opcodes, control frame size and fragmentation, the order of continuation frames, UTF-8
//! in text messages and close reasons, the message size limit, which is checked on each frame header
//! before its payload is read). A broken rule is a [`WsError`] that names the close code to answer with.
//!
//! permessage-deflate (RFC 7692) is one flag here and one layer above: a decoder told that it was
//! negotiated ([`Decoder::permessage_deflate`]) accepts RSV1 on the first frame of a data message and hands
//! the joined message out as [`WsMessage::Compressed`], still deflated; `deflate` (cargo feature
//! `deflate`) negotiates the extension, inflates such messages into text or binary (checking UTF-8 and the
//! size limit on what comes out) and deflates outgoing ones, which [`encode_compressed_header`] marks.
//!
//! Outgoing frames are written by [`encode_header`] (server frames are never masked) and [`encode_close`];
//! the opening handshake's `Sec-WebSocket-Accept` by [`accept_key`].
//!
//! The decoder keeps no buffer of its own except the fragments of an unfinished message, and hands
//! payloads out as slices of the read buffer ([`BytesMut::split_to`]): the runtime decides how large its
//! buffers are and when to give memory back.

use base64::Engine as _;
use bytes::{Buf, Bytes, BytesMut};
use bytestring::ByteString;
use sha1::{Digest, Sha1};

#[cfg(feature = "deflate")]
pub mod deflate;

/// The longest frame header: 2 bytes, an 8-byte length and a 4-byte mask.
pub const MAX_HEADER_LEN: usize = 14;

/// The largest payload of a control frame.
pub const MAX_CONTROL_PAYLOAD: usize = 125;

/// A frame's opcode.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Opcode {
    /// The next fragment of a message.
    Continuation,
    /// The first (or only) frame of a text message.
    Text,
    /// The first (or only) frame of a binary message.
    Binary,
    /// The closing handshake.
    Close,
    /// A ping, answered with a pong carrying its payload.
    Ping,
    /// A pong.
    Pong,
}

impl Opcode {
    /// The opcode of the WebSocket message that carries an Engine.IO frame: text or binary.
    pub fn of(frame: &crate::Frame) -> Opcode {
        if frame.is_text() { Opcode::Text } else { Opcode::Binary }
    }

    fn from_bits(bits: u8) -> Option<Opcode> {
        Some(match bits {
            0 => Opcode::Continuation,
            1 => Opcode::Text,
            2 => Opcode::Binary,
            8 => Opcode::Close,
            9 => Opcode::Ping,
            10 => Opcode::Pong,
            _ => return None,
        })
    }

    fn bits(self) -> u8 {
        match self {
            Opcode::Continuation => 0,
            Opcode::Text => 1,
            Opcode::Binary => 2,
            Opcode::Close => 8,
            Opcode::Ping => 9,
            Opcode::Pong => 10,
        }
    }

    fn is_control(self) -> bool {
        matches!(self, Opcode::Close | Opcode::Ping | Opcode::Pong)
    }
}

/// Close codes (RFC 6455 section 7.4.1) the server answers broken input with.
pub mod close_code {
    /// Normal closure.
    pub const NORMAL: u16 = 1000;
    /// The endpoint is going away.
    pub const AWAY: u16 = 1001;
    /// A protocol error.
    pub const PROTOCOL: u16 = 1002;
    /// Data inconsistent with the message type (invalid UTF-8 in text).
    pub const INVALID_PAYLOAD: u16 = 1007;
    /// A message too big to process.
    pub const TOO_BIG: u16 = 1009;
}

/// Why the peer's bytes are not an acceptable WebSocket stream.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WsError {
    /// A rule of the framing was broken; the connection is closed with 1002.
    #[error("WebSocket protocol error: {0}")]
    Protocol(&'static str),
    /// A text message or close reason is not UTF-8; closed with 1007.
    #[error("invalid UTF-8 in a WebSocket text message or close reason")]
    InvalidUtf8,
    /// A message is larger than the limit (on the wire, or once inflated); closed with 1009.
    #[error("WebSocket message of at least {size} bytes is over the limit of {max}")]
    TooBig {
        /// The size of the message so far, with the frame that passed the limit.
        size: u64,
        /// The limit.
        max: usize,
    },
    /// A compressed message is not a valid deflate stream; closed with 1007, as `ws` does.
    #[error("a compressed WebSocket message does not inflate")]
    BadCompression,
}

impl WsError {
    /// The close code to send the peer.
    pub fn close_code(&self) -> u16 {
        match self {
            WsError::Protocol(_) => close_code::PROTOCOL,
            WsError::InvalidUtf8 | WsError::BadCompression => close_code::INVALID_PAYLOAD,
            WsError::TooBig { .. } => close_code::TOO_BIG,
        }
    }
}

/// A close frame's status code and reason.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CloseFrame {
    /// The status code.
    pub code: u16,
    /// The reason, possibly empty.
    pub reason: ByteString,
}

/// One message from the peer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WsMessage {
    /// A text message (its UTF-8 checked).
    Text(ByteString),
    /// A binary message.
    Binary(Bytes),
    /// A message whose first frame carried RSV1 (only from a decoder with permessage-deflate on): its
    /// payload still deflated, its UTF-8 not checked yet. `deflate::PerMessageDeflate::inflate` makes it a
    /// text or binary message.
    Compressed {
        /// Whether it is a text message.
        text: bool,
        /// The joined payloads of its frames, as they came.
        payload: Bytes,
    },
    /// A ping and its payload.
    Ping(Bytes),
    /// A pong and its payload.
    Pong(Bytes),
    /// A close frame, with its status when it carried one.
    Close(Option<CloseFrame>),
}

/// A parsed frame header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FrameHeader {
    /// The last frame of its message.
    pub fin: bool,
    /// The RSV1 bit: with permessage-deflate, the first frame of a compressed message.
    pub rsv1: bool,
    /// What the frame carries.
    pub opcode: Opcode,
    /// The masking key (every frame from a client has one).
    pub mask: Option<[u8; 4]>,
    /// The length of the payload that follows the header.
    pub payload_len: u64,
    /// How many bytes the header took.
    pub header_len: usize,
}

/// Parses the frame header at the start of `buf`; `Ok(None)` when more bytes are needed. RSV2 and RSV3
/// (no extension here uses them), RSV1 on a control or continuation frame, unknown opcodes and malformed
/// control frames are refused here, from the first two bytes; whether RSV1 is allowed at all is the
/// [`Decoder`]'s to say.
pub fn parse_header(buf: &[u8]) -> Result<Option<FrameHeader>, WsError> {
    let Some(p) = parse_prefix(buf)? else { return Ok(None) };
    let mask = if p.masked {
        let Some(m) = buf.get(p.len_end..p.len_end + 4) else { return Ok(None) };
        Some([m[0], m[1], m[2], m[3]])
    } else {
        None
    };
    let header_len = p.len_end + if p.masked { 4 } else { 0 };
    Ok(Some(FrameHeader { fin: p.fin, rsv1: p.rsv1, opcode: p.opcode, mask, payload_len: p.payload_len, header_len }))
}

/// A frame header up to its length: what can be checked before the masking key is in.
struct Prefix {
    fin: bool,
    rsv1: bool,
    opcode: Opcode,
    masked: bool,
    payload_len: u64,
    /// Where the length field ends (and the masking key, if any, starts).
    len_end: usize,
}

/// Checks the first two bytes as soon as they are in (as `ws` does), then reads the length.
fn parse_prefix(buf: &[u8]) -> Result<Option<Prefix>, WsError> {
    let [b0, b1, ..] = *buf else { return Ok(None) };
    if b0 & 0x30 != 0 {
        return Err(WsError::Protocol("reserved bits set without a negotiated extension"));
    }
    let opcode = Opcode::from_bits(b0 & 0x0f).ok_or(WsError::Protocol("unknown opcode"))?;
    let rsv1 = b0 & 0x40 != 0;
    if rsv1 && !matches!(opcode, Opcode::Text | Opcode::Binary) {
        return Err(WsError::Protocol("RSV1 set on a control or continuation frame"));
    }
    let fin = b0 & 0x80 != 0;
    if opcode.is_control() {
        if !fin {
            return Err(WsError::Protocol("fragmented control frame"));
        }
        // Control frames carry at most 125 bytes, written in the 7-bit length (never the 16 or 64-bit form).
        if b1 & 0x7f > MAX_CONTROL_PAYLOAD as u8 {
            return Err(WsError::Protocol("control frame payload over 125 bytes"));
        }
        if opcode == Opcode::Close && b1 & 0x7f == 1 {
            return Err(WsError::Protocol("close frame with a one-byte payload"));
        }
    }
    let (payload_len, len_end) = match b1 & 0x7f {
        126 => {
            let Some(b) = buf.get(2..4) else { return Ok(None) };
            (u64::from(u16::from_be_bytes([b[0], b[1]])), 4)
        }
        127 => {
            let Some(b) = buf.get(2..10) else { return Ok(None) };
            // A length with its top bit set (which RFC 6455 forbids) is read as it is: far over any limit,
            // so refused as too big (1009), as `ws` and tungstenite do.
            (u64::from_be_bytes(b.try_into().expect("8 bytes")), 10)
        }
        n => (u64::from(n), 2),
    };
    Ok(Some(Prefix { fin, rsv1, opcode, masked: b1 & 0x80 != 0, payload_len, len_end }))
}

/// XORs `buf` with the masking key, as if `buf` started at offset 0 of a payload.
pub fn apply_mask(buf: &mut [u8], mask: [u8; 4]) {
    let wide = u64::from_ne_bytes([mask[0], mask[1], mask[2], mask[3], mask[0], mask[1], mask[2], mask[3]]);
    let mut chunks = buf.chunks_exact_mut(8);
    for chunk in &mut chunks {
        let word = u64::from_ne_bytes((&*chunk).try_into().expect("8 bytes")) ^ wide;
        chunk.copy_from_slice(&word.to_ne_bytes());
    }
    // The remainder starts at a multiple of 8, so the key lines up with its first byte again.
    for (i, b) in chunks.into_remainder().iter_mut().enumerate() {
        *b ^= mask[i & 3];
    }
}

/// Appends an unmasked header (as a server sends) for a final frame of `payload_len` bytes.
pub fn encode_header(out: &mut Vec<u8>, opcode: Opcode, payload_len: usize) {
    write_header(out, 0x80 | opcode.bits(), payload_len);
}

/// Appends the header of a final, unmasked frame with RSV1 set: a whole message compressed with
/// permessage-deflate.
pub fn encode_compressed_header(out: &mut Vec<u8>, opcode: Opcode, payload_len: usize) {
    write_header(out, 0x80 | 0x40 | opcode.bits(), payload_len);
}

fn write_header(out: &mut Vec<u8>, first: u8, payload_len: usize) {
    out.push(first);
    if payload_len < 126 {
        out.push(payload_len as u8);
    } else if let Ok(len) = u16::try_from(payload_len) {
        out.push(126);
        out.extend_from_slice(&len.to_be_bytes());
    } else {
        out.push(127);
        out.extend_from_slice(&(payload_len as u64).to_be_bytes());
    }
}

/// Appends a whole unmasked frame.
pub fn encode_frame(out: &mut Vec<u8>, opcode: Opcode, payload: &[u8]) {
    out.reserve(payload.len() + 10);
    encode_header(out, opcode, payload.len());
    out.extend_from_slice(payload);
}

/// Appends an Engine.IO frame as one WebSocket message: a text frame for [`crate::Frame::Text`], a binary
/// frame for [`crate::Frame::Binary`].
pub fn encode_engineio_frame(out: &mut Vec<u8>, frame: &crate::Frame) {
    encode_frame(out, Opcode::of(frame), frame.as_bytes());
}

/// Appends a close frame: empty without a status, else the code and as much of `reason` as fits in a
/// control frame (cut at a character boundary).
pub fn encode_close(out: &mut Vec<u8>, status: Option<(u16, &str)>) {
    let Some((code, reason)) = status else {
        return encode_header(out, Opcode::Close, 0);
    };
    let mut end = reason.len().min(MAX_CONTROL_PAYLOAD - 2);
    while !reason.is_char_boundary(end) {
        end -= 1;
    }
    encode_header(out, Opcode::Close, 2 + end);
    out.extend_from_slice(&code.to_be_bytes());
    out.extend_from_slice(&reason.as_bytes()[..end]);
}

/// The `Sec-WebSocket-Accept` value answering a client's `Sec-WebSocket-Key` (RFC 6455 section 4.2.2):
/// base64 of the SHA-1 of the key followed by the protocol's GUID.
pub fn accept_key(key: &[u8]) -> String {
    let mut sha = Sha1::new();
    sha.update(key);
    sha.update(b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11");
    base64::engine::general_purpose::STANDARD.encode(sha.finalize())
}

/// Whether a peer may send this status code in a close frame (RFC 6455 section 7.4).
fn valid_close_code(code: u16) -> bool {
    // 1012 (service restart), 1013 (try again later) and 1014 (bad gateway) are registered with IANA; `ws`
    // accepts them too.
    matches!(code, 1000..=1003 | 1007..=1014 | 3000..=4999)
}

/// Joins frames into messages. See the module docs.
#[derive(Debug)]
pub struct Decoder {
    max_message: usize,
    /// permessage-deflate was negotiated: RSV1 may start a data message.
    compression: bool,
    /// The frames of an unfinished message.
    /// Boxed: fragmented messages are rare, and every connection keeps a decoder.
    partial: Option<Box<Partial>>,
    /// Bytes the frame at the start of the buffer needs in all (header and payload), once its header has
    /// been seen; what the runtime should make room for before it reads.
    needed: usize,
}

impl Decoder {
    /// A decoder refusing messages (and frames) longer than `max_message` bytes.
    pub fn new(max_message: usize) -> Decoder {
        Decoder { max_message, compression: false, partial: None, needed: 2 }
    }

    /// Says whether permessage-deflate was negotiated: when it was, a data message whose first frame has
    /// RSV1 comes out as [`WsMessage::Compressed`]; when it was not, RSV1 is a protocol error (1002).
    #[must_use]
    pub fn permessage_deflate(mut self, negotiated: bool) -> Decoder {
        self.compression = negotiated;
        self
    }

    /// How many bytes the buffer should hold before [`Decoder::decode`] can make progress: the whole next
    /// frame when its header is known, else enough for a header.
    pub fn needed(&self) -> usize {
        self.needed
    }

    /// Takes the next message out of `buf`, consuming its frames; `Ok(None)` when `buf` holds no whole one
    /// (what it holds is kept, and [`Decoder::needed`] says how much is wanted). After an error the stream
    /// cannot be decoded further.
    pub fn decode(&mut self, buf: &mut BytesMut) -> Result<Option<WsMessage>, WsError> {
        loop {
            // Every rule that the first bytes can break is checked before waiting for the rest of the header
            // (the header is parsed once): a client's frame must be masked, RSV1 needs permessage-deflate,
            // fragments come in order, and a message over the limit is refused from its length.
            if let [_, b1, ..] = buf[..]
                && b1 & 0x80 == 0
            {
                return Err(WsError::Protocol("unmasked frame from a client"));
            }
            let Some(prefix) = parse_prefix(buf)? else {
                self.needed = MAX_HEADER_LEN.min(buf.len() + 1).max(2);
                return Ok(None);
            };
            if prefix.rsv1 && !self.compression {
                return Err(WsError::Protocol("reserved bits set without a negotiated extension"));
            }
            match (prefix.opcode, self.partial.is_some()) {
                (Opcode::Continuation, false) => return Err(WsError::Protocol("continuation without a message")),
                (Opcode::Text | Opcode::Binary, true) => {
                    return Err(WsError::Protocol("new message inside a fragmented one"));
                }
                _ => {}
            }
            let so_far = self.partial.as_ref().map_or(0, |p| p.data.len());
            let total = (so_far as u64).saturating_add(prefix.payload_len);
            if !prefix.opcode.is_control() && total > self.max_message as u64 {
                return Err(WsError::TooBig { size: total, max: self.max_message });
            }
            // The frame is masked (checked above): the key follows the length.
            let header_len = prefix.len_end + 4;
            let Some(&[m0, m1, m2, m3]) = buf.get(prefix.len_end..header_len) else {
                self.needed = MAX_HEADER_LEN.min(buf.len() + 1).max(2);
                return Ok(None);
            };
            // Within the limit (a data frame) or at most 125 bytes (a control frame): fits a usize.
            let payload_len = prefix.payload_len as usize;
            let frame_len = header_len + payload_len;
            if buf.len() < frame_len {
                self.needed = frame_len;
                return Ok(None);
            }
            self.needed = 2;
            buf.advance(header_len);
            // Most reads hold one whole frame: the buffer itself becomes the payload, unshared.
            let mut payload = if buf.len() == payload_len { std::mem::take(buf) } else { buf.split_to(payload_len) };
            apply_mask(&mut payload, [m0, m1, m2, m3]);
            let message = match prefix.opcode {
                Opcode::Ping => return Ok(Some(WsMessage::Ping(payload.freeze()))),
                Opcode::Pong => return Ok(Some(WsMessage::Pong(payload.freeze()))),
                Opcode::Close => return close_frame(payload.freeze()).map(|c| Some(WsMessage::Close(c))),
                Opcode::Text | Opcode::Binary => {
                    let first = Partial { text: prefix.opcode == Opcode::Text, compressed: prefix.rsv1, data: payload };
                    if !prefix.fin {
                        self.partial = Some(Box::new(first));
                        continue;
                    }
                    first
                }
                Opcode::Continuation => {
                    let partial = self.partial.as_mut().expect("checked above");
                    partial.data.extend_from_slice(&payload);
                    if !prefix.fin {
                        continue;
                    }
                    *self.partial.take().expect("checked above")
                }
            };
            return message.finish().map(Some);
        }
    }
}

/// A data message under way: its type, whether its first frame had RSV1, and its payload so far.
#[derive(Debug)]
struct Partial {
    text: bool,
    compressed: bool,
    data: BytesMut,
}

impl Partial {
    fn finish(self) -> Result<WsMessage, WsError> {
        let data = self.data.freeze();
        Ok(match (self.compressed, self.text) {
            (true, text) => WsMessage::Compressed { text, payload: data },
            (false, true) => WsMessage::Text(text_payload(data)?),
            (false, false) => WsMessage::Binary(data),
        })
    }
}

/// A text message's payload, its UTF-8 checked.
pub(crate) fn text_payload(data: Bytes) -> Result<ByteString, WsError> {
    ByteString::try_from(data).map_err(|_| WsError::InvalidUtf8)
}

fn close_frame(payload: Bytes) -> Result<Option<CloseFrame>, WsError> {
    match payload.len() {
        0 => Ok(None),
        1 => Err(WsError::Protocol("close frame with a one-byte payload")),
        _ => {
            let code = u16::from_be_bytes([payload[0], payload[1]]);
            if !valid_close_code(code) {
                return Err(WsError::Protocol("close frame with an invalid status code"));
            }
            let reason = ByteString::try_from(payload.slice(2..)).map_err(|_| WsError::InvalidUtf8)?;
            Ok(Some(CloseFrame { code, reason }))
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A frame as a client sends it: masked with `mask`.
    pub(crate) fn client_frame(fin: bool, opcode: u8, payload: &[u8], mask: [u8; 4]) -> Vec<u8> {
        let mut out = vec![if fin { 0x80 } else { 0 } | opcode];
        let len = payload.len();
        if len < 126 {
            out.push(0x80 | len as u8);
        } else if len <= 0xffff {
            out.push(0x80 | 126);
            out.extend_from_slice(&(len as u16).to_be_bytes());
        } else {
            out.push(0x80 | 127);
            out.extend_from_slice(&(len as u64).to_be_bytes());
        }
        out.extend_from_slice(&mask);
        let mut body = payload.to_vec();
        apply_mask(&mut body, mask);
        out.extend_from_slice(&body);
        out
    }

    const KEY: [u8; 4] = [0x37, 0xfa, 0x21, 0x3d];

    fn decode_all(bytes: &[u8], max: usize) -> Result<Vec<WsMessage>, WsError> {
        let mut d = Decoder::new(max);
        let mut buf = BytesMut::from(bytes);
        let mut out = Vec::new();
        while let Some(m) = d.decode(&mut buf)? {
            out.push(m);
        }
        assert!(buf.is_empty(), "bytes left over");
        Ok(out)
    }

    #[test]
    fn rfc_example_masked_hello() {
        // RFC 6455 section 5.7: a single-frame masked text message "Hello".
        let bytes = [0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58];
        assert_eq!(decode_all(&bytes, 100), Ok(vec![WsMessage::Text("Hello".into())]));
    }

    #[test]
    fn fragments_are_joined_around_control_frames() {
        let mut bytes = client_frame(false, 1, b"Hel", KEY);
        bytes.extend(client_frame(true, 9, b"p", KEY));
        bytes.extend(client_frame(false, 0, b"lo", [1, 2, 3, 4]));
        bytes.extend(client_frame(true, 0, "ö".as_bytes(), [9, 9, 9, 9]));
        assert_eq!(
            decode_all(&bytes, 100),
            Ok(vec![WsMessage::Ping(Bytes::from_static(b"p")), WsMessage::Text("Helloö".into())])
        );
    }

    #[test]
    fn a_character_split_across_fragments_is_valid() {
        let s = "ö".as_bytes();
        let mut bytes = client_frame(false, 1, &s[..1], KEY);
        bytes.extend(client_frame(true, 0, &s[1..], KEY));
        assert_eq!(decode_all(&bytes, 100), Ok(vec![WsMessage::Text("ö".into())]));
    }

    #[test]
    fn every_length_encoding_and_mask_alignment() {
        for len in [0, 1, 7, 8, 9, 125, 126, 127, 65535, 65536, 70000] {
            let payload: Vec<u8> = (0..len).map(|i| (i * 7 + 3) as u8).collect();
            let bytes = client_frame(true, 2, &payload, KEY);
            assert_eq!(decode_all(&bytes, 1 << 20), Ok(vec![WsMessage::Binary(payload.into())]), "length {len}");
        }
    }

    #[test]
    fn byte_by_byte_input_gives_the_same_messages() {
        let mut bytes = client_frame(true, 1, &[b'a'; 300], KEY);
        bytes.extend(client_frame(true, 10, b"", KEY));
        bytes.extend(client_frame(true, 8, &[0x03, 0xe8, b'b', b'y', b'e'], KEY));
        let mut d = Decoder::new(1000);
        let mut buf = BytesMut::new();
        let mut out = Vec::new();
        for &b in &bytes {
            buf.extend_from_slice(&[b]);
            assert!(d.needed() > 0);
            while let Some(m) = d.decode(&mut buf).unwrap() {
                out.push(m);
            }
        }
        assert_eq!(
            out,
            vec![
                WsMessage::Text("a".repeat(300).into()),
                WsMessage::Pong(Bytes::new()),
                WsMessage::Close(Some(CloseFrame { code: 1000, reason: "bye".into() })),
            ]
        );
    }

    #[test]
    fn needed_names_the_whole_frame_once_its_header_is_in() {
        let bytes = client_frame(true, 2, &[0; 1000], KEY);
        let mut d = Decoder::new(2000);
        let mut buf = BytesMut::from(&bytes[..10]);
        assert_eq!(d.decode(&mut buf), Ok(None));
        assert_eq!(d.needed(), bytes.len());
    }

    #[test]
    fn broken_frames_name_their_close_code() {
        let cases: Vec<(Vec<u8>, u16)> = vec![
            // Not masked.
            (vec![0x81, 0x01, b'a'], 1002),
            // RSV1 without permessage-deflate.
            ([0xc1].into_iter().chain(client_frame(true, 1, b"a", KEY)[1..].iter().copied()).collect(), 1002),
            // Opcode 3 is reserved.
            (client_frame(true, 3, b"", KEY), 1002),
            // Fragmented ping.
            (client_frame(false, 9, b"", KEY), 1002),
            // Ping over 125 bytes.
            (client_frame(true, 9, &[0; 126], KEY), 1002),
            // Continuation with nothing to continue.
            (client_frame(true, 0, b"a", KEY), 1002),
            // A new text frame inside a fragmented message.
            ([client_frame(false, 1, b"a", KEY), client_frame(true, 1, b"b", KEY)].concat(), 1002),
            // Invalid UTF-8 text.
            (client_frame(true, 1, &[0xff, 0xfe], KEY), 1007),
            // Close: one-byte payload, a code no peer may send, a reason that is not UTF-8.
            (client_frame(true, 8, &[0x03], KEY), 1002),
            (client_frame(true, 8, &1005u16.to_be_bytes(), KEY), 1002),
            (client_frame(true, 8, &[0x03, 0xe8, 0xff], KEY), 1007),
            // Over the limit of 10 bytes, in one frame or across fragments.
            (client_frame(true, 2, &[0; 11], KEY), 1009),
            ([client_frame(false, 2, &[0; 6], KEY), client_frame(true, 0, &[0; 6], KEY)].concat(), 1009),
        ];
        for (bytes, code) in cases {
            let err = decode_all(&bytes, 10).expect_err("accepted a broken frame");
            assert_eq!(err.close_code(), code, "{bytes:?}: {err}");
        }
    }

    #[test]
    fn rules_the_first_bytes_break_are_refused_before_the_rest_arrives() {
        // As ws does: each of these is refused with only its first bytes in (no mask, no payload yet).
        let cases: Vec<(&[u8], u16)> = vec![
            // A ping whose length uses the 16-bit form (even for a short payload).
            (&[0x89, 0xfe], 1002),
            // A close frame of one byte.
            (&[0x88, 0x81], 1002),
            // Not masked.
            (&[0x82, 0x05], 1002),
            // Over the limit of 10, known from the 16-bit length before the mask.
            (&[0x82, 0xfe, 0x00, 0x0b], 1009),
            // A 64-bit length with its top bit set: far over any limit.
            (&[0x82, 0xff, 0x80, 0, 0, 0, 0, 0, 0, 1], 1009),
        ];
        // The same length on a continuation of a message under way (the sum must not overflow).
        let mut bytes = client_frame(false, 1, b"a", KEY);
        bytes.extend_from_slice(&[0x80, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff]);
        assert_eq!(decode_all(&bytes, 10).map_err(|e| e.close_code()), Err(1009));
        for (bytes, code) in cases {
            let mut buf = BytesMut::from(bytes);
            let err = Decoder::new(10).decode(&mut buf).expect_err("waited for more");
            assert_eq!(err.close_code(), code, "{bytes:02x?}: {err}");
        }
    }

    #[test]
    fn registered_close_codes_are_accepted() {
        for code in [1000u16, 1003, 1007, 1011, 1012, 1013, 1014, 3000, 4999] {
            let bytes = client_frame(true, 8, &code.to_be_bytes(), KEY);
            let got = decode_all(&bytes, 10);
            assert_eq!(got, Ok(vec![WsMessage::Close(Some(CloseFrame { code, reason: "".into() }))]), "{code}");
        }
        for code in [999u16, 1004, 1005, 1006, 1015, 1016, 2999, 5000] {
            let bytes = client_frame(true, 8, &code.to_be_bytes(), KEY);
            assert_eq!(decode_all(&bytes, 10).map_err(|e| e.close_code()), Err(1002), "{code}");
        }
    }

    #[test]
    fn an_oversized_frame_is_refused_from_its_header() {
        // Only the header of a 1 GiB frame: refused without waiting for its payload.
        let mut header = vec![0x82, 0x80 | 127];
        header.extend_from_slice(&(1u64 << 30).to_be_bytes());
        header.extend_from_slice(&KEY);
        let mut buf = BytesMut::from(&header[..]);
        assert!(matches!(Decoder::new(1 << 20).decode(&mut buf), Err(WsError::TooBig { .. })));
    }

    #[test]
    fn server_frames_are_encoded_unmasked() {
        let mut out = Vec::new();
        encode_frame(&mut out, Opcode::Text, b"Hello");
        assert_eq!(out, [0x81, 0x05, b'H', b'e', b'l', b'l', b'o']);
        for (len, header) in
            [(125, vec![0x82, 125]), (126, vec![0x82, 126, 0, 126]), (65536, vec![0x82, 127, 0, 0, 0, 0, 0, 1, 0, 0])]
        {
            let mut out = Vec::new();
            encode_header(&mut out, Opcode::Binary, len);
            assert_eq!(out, header);
        }
        let mut out = Vec::new();
        encode_close(&mut out, Some((1009, "")));
        assert_eq!(out, [0x88, 0x02, 0x03, 0xf1]);
        let mut out = Vec::new();
        encode_close(&mut out, Some((1000, &"é".repeat(100))));
        assert_eq!(out[1] as usize, out.len() - 2);
        assert!(out.len() - 2 <= MAX_CONTROL_PAYLOAD);
        assert!(std::str::from_utf8(&out[4..]).is_ok());
    }

    #[test]
    fn masking_matches_the_bytewise_definition() {
        for len in 0..40 {
            let data: Vec<u8> = (0..len).map(|i| (i * 31) as u8).collect();
            let mut fast = data.clone();
            apply_mask(&mut fast, KEY);
            let slow: Vec<u8> = data.iter().enumerate().map(|(i, b)| b ^ KEY[i % 4]).collect();
            assert_eq!(fast, slow);
        }
    }
}
