//! permessage-deflate (RFC 7692) above the framing: negotiation, and whole messages inflated and deflated.
//!
//! The [`Decoder`](super::Decoder) hands out a compressed message as [`WsMessage::Compressed`] once all its
//! frames are in; [`PerMessageDeflate::inflate`] turns it into text or binary, never producing more than the
//! size limit plus one byte (a deflate bomb is refused with 1009, as the wire size is), checking UTF-8 after
//! inflating. [`PerMessageDeflate::encode`] writes an outgoing data message as one frame, deflated and
//! marked with RSV1 when it is at least the threshold long.
//!
//! Memory: zlib's contexts are large (about 300 KiB to deflate, 40 KiB to inflate), so each is made on the
//! first message that needs it (a connection whose messages stay under the threshold never makes the
//! deflate one), and dropped after each message when the peers agreed not to keep it between messages
//! (`*_no_context_takeover`). The scratch buffers live for one message.

use bytes::Bytes;
use flate2::{Compress, Compression, Decompress, FlushCompress, FlushDecompress, Status};

use super::{Opcode, WsError, WsMessage, encode_compressed_header, encode_frame, text_payload};

/// What a sync flush ends with; stripped from each compressed message and put back to inflate it.
const TAIL: [u8; 4] = [0x00, 0x00, 0xff, 0xff];

/// The negotiated parameters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Negotiated {
    /// The server keeps no compression context between messages.
    pub server_no_context_takeover: bool,
    /// The client keeps none (so the server's inflate context can be dropped between messages too).
    pub client_no_context_takeover: bool,
}

impl Negotiated {
    /// The `Sec-WebSocket-Extensions` response value.
    pub fn response(&self) -> String {
        let mut s = "permessage-deflate".to_owned();
        if self.server_no_context_takeover {
            s.push_str("; server_no_context_takeover");
        }
        if self.client_no_context_takeover {
            s.push_str("; client_no_context_takeover");
        }
        s
    }
}

/// Picks the first permessage-deflate offer of the `Sec-WebSocket-Extensions` header values that the server
/// can honour. Offers that limit the server's window below 15 bits are declined (the deflate backend always
/// uses a 32 KiB window); parameters it does not know make an offer unacceptable, as the RFC requires.
pub fn negotiate<'a>(offers: impl Iterator<Item = &'a str>) -> Option<Negotiated> {
    for header in offers {
        'offer: for offer in header.split(',') {
            let mut parts = offer.split(';').map(str::trim);
            if parts.next() != Some("permessage-deflate") {
                continue;
            }
            let mut n = Negotiated::default();
            for p in parts.filter(|p| !p.is_empty()) {
                let (name, value) =
                    p.split_once('=').map_or((p, None), |(k, v)| (k.trim(), Some(v.trim().trim_matches('"'))));
                match (name, value) {
                    ("server_no_context_takeover", None) => n.server_no_context_takeover = true,
                    ("client_no_context_takeover", None) => n.client_no_context_takeover = true,
                    ("client_max_window_bits", None) => {}
                    ("client_max_window_bits", Some(v)) if v.parse::<u8>().is_ok_and(|b| (8..=15).contains(&b)) => {}
                    ("server_max_window_bits", Some("15")) => {}
                    _ => continue 'offer,
                }
            }
            return Some(n);
        }
    }
    None
}

/// One connection's compression state. See the module docs.
#[derive(Debug)]
pub struct PerMessageDeflate {
    params: Negotiated,
    threshold: usize,
    max_message: usize,
    inflate: Option<Box<Decompress>>,
    deflate: Option<Box<Compress>>,
}

impl PerMessageDeflate {
    /// Compression as negotiated, deflating outgoing messages of at least `threshold` bytes and refusing
    /// incoming ones that inflate past `max_message` bytes.
    pub fn new(params: Negotiated, threshold: usize, max_message: usize) -> PerMessageDeflate {
        PerMessageDeflate { params, threshold, max_message, inflate: None, deflate: None }
    }

    /// The negotiated parameters.
    pub fn params(&self) -> Negotiated {
        self.params
    }

    /// Whether each zlib context exists now (inflate, deflate): for tests of the memory kept.
    pub fn contexts(&self) -> (bool, bool) {
        (self.inflate.is_some(), self.deflate.is_some())
    }

    /// Inflates a [`WsMessage::Compressed`] payload into a text (UTF-8 checked) or binary message.
    pub fn inflate(&mut self, text: bool, payload: &[u8]) -> Result<WsMessage, WsError> {
        // One byte past the limit is enough to know the message is too big.
        let budget = self.max_message.saturating_add(1);
        let mut out = Vec::with_capacity(payload.len().saturating_mul(3).max(64).min(budget));
        let inflate = self.inflate.get_or_insert_with(|| Box::new(Decompress::new(false)));
        let result = inflate_into(inflate, payload, &mut out, budget).and_then(|end| match end {
            Ended::Open => inflate_into(inflate, &TAIL, &mut out, budget),
            Ended::Final => Ok(Ended::Final),
        });
        if self.params.client_no_context_takeover || !matches!(result, Ok(Ended::Open)) {
            // The next message starts from an empty context: none is kept meanwhile. (After a final block
            // the stream cannot go on; after an error the connection closes.)
            self.inflate = None;
        }
        result?;
        if out.len() > self.max_message {
            return Err(WsError::TooBig { size: out.len() as u64, max: self.max_message });
        }
        let data = Bytes::from(out);
        Ok(if text { WsMessage::Text(text_payload(data)?) } else { WsMessage::Binary(data) })
    }

    /// Appends `payload` as one final data frame: deflated with RSV1 when it is at least the threshold long,
    /// as it is otherwise.
    pub fn encode(&mut self, out: &mut Vec<u8>, opcode: Opcode, payload: &[u8]) {
        if payload.len() < self.threshold {
            return encode_frame(out, opcode, payload);
        }
        let mut z = Vec::with_capacity(payload.len() / 2 + 64);
        let deflate = self.deflate.get_or_insert_with(|| Box::new(Compress::new(Compression::fast(), false)));
        deflate_into(deflate, payload, &mut z);
        if z.ends_with(&TAIL) {
            z.truncate(z.len() - TAIL.len());
        }
        if self.params.server_no_context_takeover {
            self.deflate = None;
        }
        out.reserve(z.len() + 10);
        encode_compressed_header(out, opcode, z.len());
        out.extend_from_slice(&z);
    }
}

/// How an inflate call ended.
enum Ended {
    /// The stream goes on (the usual case: messages end with a sync flush).
    Open,
    /// A block marked final ended the stream: what follows it in the message is ignored, as `ws` (zlib)
    /// ignores it, and the context is not kept.
    Final,
}

/// Inflates `input` onto `out`, stopping once `out` holds `budget` bytes.
fn inflate_into(d: &mut Decompress, mut input: &[u8], out: &mut Vec<u8>, budget: usize) -> Result<Ended, WsError> {
    loop {
        if out.len() >= budget {
            return Ok(Ended::Open);
        }
        if out.capacity() - out.len() < 4096 {
            out.reserve(4096.min(budget - out.len()).max(1));
        }
        let (in_before, out_before) = (d.total_in(), d.total_out());
        let status = d.decompress_vec(input, out, FlushDecompress::Sync).map_err(|_| WsError::BadCompression)?;
        let consumed = (d.total_in() - in_before) as usize;
        input = &input[consumed..];
        let produced = d.total_out() - out_before;
        if out.len() > budget {
            out.truncate(budget);
        }
        match status {
            Status::StreamEnd => return Ok(Ended::Final),
            _ if input.is_empty() && out.len() < out.capacity() => return Ok(Ended::Open),
            _ if consumed == 0 && produced == 0 => return Ok(Ended::Open),
            _ => {}
        }
    }
}

/// Deflates `input` onto `out` with a sync flush.
fn deflate_into(c: &mut Compress, mut input: &[u8], out: &mut Vec<u8>) {
    loop {
        if out.capacity() - out.len() < 64 {
            out.reserve(4096);
        }
        let before = c.total_in();
        // Compressing into a vector with room left cannot fail (flate2 reports only stream misuse).
        let _ = c.compress_vec(input, out, FlushCompress::Sync);
        input = &input[(c.total_in() - before) as usize..];
        // Done when all input is taken and the sync flush fit in the buffer.
        if input.is_empty() && out.len() < out.capacity() {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::websocket::Decoder;
    use crate::websocket::tests::client_frame;
    use bytes::BytesMut;

    #[test]
    fn negotiation() {
        let n = negotiate(["permessage-deflate; client_max_window_bits"].into_iter()).unwrap();
        assert_eq!(n.response(), "permessage-deflate");
        let n = negotiate(["permessage-deflate; server_no_context_takeover; client_no_context_takeover"].into_iter());
        assert_eq!(n.unwrap().response(), "permessage-deflate; server_no_context_takeover; client_no_context_takeover");
        assert_eq!(negotiate(["permessage-deflate; server_max_window_bits=10"].into_iter()), None);
        let fallback = negotiate(["permessage-deflate; server_max_window_bits=10, permessage-deflate"].into_iter());
        assert_eq!(fallback.unwrap().response(), "permessage-deflate");
        assert_eq!(negotiate(["x-webkit-deflate-frame"].into_iter()), None);
        assert_eq!(negotiate(["permessage-deflate; unknown=1"].into_iter()), None);
    }

    /// Bytes that deflate hardly shrinks.
    fn noise(len: usize) -> Vec<u8> {
        let mut x = 0x9e37_79b9_u32;
        (0..len)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 17;
                x ^= x << 5;
                b'a' + (x % 26) as u8
            })
            .collect()
    }

    /// A client's message deflated with `c`, as masked frames of at most `piece` payload bytes each.
    fn client_frames(c: &mut Compress, text: bool, message: &[u8], piece: usize) -> Vec<u8> {
        let mut z = Vec::new();
        deflate_into(c, message, &mut z);
        z.truncate(z.len() - TAIL.len());
        let chunks: Vec<&[u8]> = if z.is_empty() { vec![&[][..]] } else { z.chunks(piece).collect() };
        let mut out = Vec::new();
        for (i, chunk) in chunks.iter().enumerate() {
            // RSV1 (0x40) on the first frame only; continuations are opcode 0.
            let opcode = match (i, text) {
                (0, true) => 0x41,
                (0, false) => 0x42,
                _ => 0,
            };
            out.extend(client_frame(i + 1 == chunks.len(), opcode, chunk, [9, 8, 7, 6]));
        }
        out
    }

    fn receive(d: &mut Decoder, p: &mut PerMessageDeflate, bytes: &[u8]) -> Result<WsMessage, WsError> {
        let mut buf = BytesMut::from(bytes);
        match d.decode(&mut buf)?.expect("a whole message") {
            WsMessage::Compressed { text, payload } => p.inflate(text, &payload),
            other => Ok(other),
        }
    }

    #[test]
    fn fragmented_compressed_messages_inflate_with_the_context_kept() {
        let mut d = Decoder::new(1 << 21).permessage_deflate(true);
        let mut p = PerMessageDeflate::new(Negotiated::default(), 1024, 1 << 21);
        let mut c = Compress::new(Compression::fast(), false);
        let big = noise(1 << 20);
        let m = receive(&mut d, &mut p, &client_frames(&mut c, true, &big, 1000)).unwrap();
        assert_eq!(m, WsMessage::Text(bytestring::ByteString::try_from(big.clone()).unwrap()));
        // The second message refers back to the first through the kept context.
        let again = big[..5000].to_vec();
        let m = receive(&mut d, &mut p, &client_frames(&mut c, false, &again, 100_000)).unwrap();
        assert_eq!(m, WsMessage::Binary(again.into()));
        assert_eq!(p.contexts(), (true, false));
    }

    #[test]
    fn outgoing_messages_round_trip_and_contexts_follow_the_parameters() {
        for params in
            [Negotiated::default(), Negotiated { server_no_context_takeover: true, client_no_context_takeover: true }]
        {
            let mut p = PerMessageDeflate::new(params, 16, 1 << 20);
            let mut client = Decompress::new(false);
            let message = b"4every message starts from an empty context".repeat(3);
            for _ in 0..2 {
                let mut out = Vec::new();
                p.encode(&mut out, Opcode::Text, &message);
                assert_eq!(out[0], 0xc1, "FIN, RSV1, text");
                let mut plain = Vec::new();
                let fresh = &mut Decompress::new(false);
                let ctx = if params.server_no_context_takeover { fresh } else { &mut client };
                let _ = inflate_into(ctx, &out[2..], &mut plain, usize::MAX).unwrap();
                let _ = inflate_into(ctx, &TAIL, &mut plain, usize::MAX).unwrap();
                assert_eq!(plain, message);
            }
            assert_eq!(p.contexts().1, !params.server_no_context_takeover);
            // Under the threshold: as it is.
            let mut out = Vec::new();
            p.encode(&mut out, Opcode::Binary, b"short");
            assert_eq!(out, [0x82, 5, b's', b'h', b'o', b'r', b't']);
        }
    }

    #[test]
    fn bombs_invalid_text_and_corrupt_streams_name_their_close_codes() {
        let mut c = Compress::new(Compression::fast(), false);
        let bomb = client_frames(&mut c, false, &vec![0u8; 10_000_000], 1 << 20);
        assert!(bomb.len() * 100 < 10_000_000, "a bomb compresses more than 100:1");
        let mut d = Decoder::new(1000).permessage_deflate(true);
        let mut p = PerMessageDeflate::new(Negotiated::default(), 1024, 1000);
        assert_eq!(receive(&mut d, &mut p, &bomb).unwrap_err().close_code(), 1009);

        let mut c = Compress::new(Compression::fast(), false);
        let mut d = Decoder::new(1000).permessage_deflate(true);
        let mut p = PerMessageDeflate::new(Negotiated::default(), 1024, 1000);
        assert_eq!(
            receive(&mut d, &mut p, &client_frames(&mut c, true, &[0xff, 0xfe], 100)).unwrap_err().close_code(),
            1007
        );

        let mut d = Decoder::new(1000).permessage_deflate(true);
        let mut p = PerMessageDeflate::new(Negotiated::default(), 1024, 1000);
        let garbage = [0xc2, 0x83, 0, 0, 0, 0, 0xff, 0xff, 0xff];
        assert_eq!(receive(&mut d, &mut p, &garbage).unwrap_err(), WsError::BadCompression);
    }

    #[test]
    fn a_limit_smaller_than_the_first_allocation() {
        let mut c = Compress::new(Compression::fast(), false);
        for (message, ok) in [(&b"0123456789"[..], true), (&b"0123456789abcdefghij"[..], false)] {
            let mut d = Decoder::new(16).permessage_deflate(true);
            let mut p = PerMessageDeflate::new(Negotiated::default(), 1024, 16);
            let got = receive(&mut d, &mut p, &client_frames(&mut c, false, message, 100));
            assert_eq!(got.is_ok(), ok, "{got:?}");
        }
    }

    #[test]
    fn rsv1_is_refused_unless_negotiated_and_only_on_a_first_data_frame() {
        let mut c = Compress::new(Compression::fast(), false);
        let frame = client_frames(&mut c, true, b"hello", 100);
        let mut buf = BytesMut::from(&frame[..]);
        assert_eq!(Decoder::new(100).decode(&mut buf).unwrap_err().close_code(), 1002);
        // RSV1 on a ping, or on a continuation frame.
        for bytes in [vec![0xc9, 0x80, 0, 0, 0, 0], vec![0x01, 0x80, 0, 0, 0, 0, 0xc0, 0x80, 0, 0, 0, 0]] {
            let mut buf = BytesMut::from(&bytes[..]);
            let mut d = Decoder::new(100).permessage_deflate(true);
            assert_eq!(d.decode(&mut buf).unwrap_err().close_code(), 1002, "{bytes:?}");
        }
    }
}
