//! WebSocket permessage-deflate (RFC 7692), below the framing.
//!
//! [`DeflateStream`] sits between the upgraded connection and the WebSocket (`ws.rs`) and works on frames
//! only: incoming messages with RSV1 set are inflated into plain frames before the framing decoder sees
//! them (so its checks, size limits and close handling still apply: a message that inflates past the limit
//! is handed on at the limit plus one byte, and the decoder refuses it with 1009); outgoing single-frame
//! data messages of at least `threshold` bytes are deflated and marked with RSV1. Control frames and
//! fragmented outgoing messages pass through unchanged. Frame headers are read and written here with
//! tungstenite's header codec, which accepts the RSV1 bit that the framing decoder refuses.
//!
//! Memory: zlib's contexts are large (about 300 KiB to deflate, 40 KiB to inflate), so each is made on the
//! first message that needs it (a connection whose messages stay under the threshold never makes the
//! deflate one), and dropped after each message when the peers agreed not to keep it between messages
//! (`*_no_context_takeover`). The byte buffers are dropped once empty if a large message grew them.

use std::io::{self, Cursor};
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use bytes::{Buf, BytesMut};
use engineio_proto::websocket::apply_mask;
use flate2::{Compress, Compression, Decompress, FlushCompress, FlushDecompress, Status};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio_tungstenite::tungstenite::protocol::frame::FrameHeader;
use tokio_tungstenite::tungstenite::protocol::frame::coding::{Data, OpCode};

const TAIL: [u8; 4] = [0x00, 0x00, 0xff, 0xff];

/// Capacity an empty buffer may keep; a larger one is dropped (a large message grew it).
const KEEP: usize = 2048;

/// The negotiated parameters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Negotiated {
    /// The client asked the server not to keep its compression context between messages.
    pub(crate) server_no_context_takeover: bool,
    /// The client will not keep its context (so ours can be reset too).
    pub(crate) client_no_context_takeover: bool,
}

impl Negotiated {
    /// The `Sec-WebSocket-Extensions` response value.
    pub(crate) fn response(&self) -> String {
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

/// Picks the first permessage-deflate offer we can honour. Offers that limit the server's window below 15
/// bits are declined (the deflate backend always uses a 32 KiB window); parameters we do not know make an
/// offer unacceptable, as the RFC requires.
pub(crate) fn negotiate<'a>(offers: impl Iterator<Item = &'a str>) -> Option<Negotiated> {
    for header in offers {
        'offer: for offer in header.split(',') {
            let mut parts = offer.split(';').map(str::trim);
            if parts.next() != Some("permessage-deflate") {
                continue;
            }
            let mut n = Negotiated { server_no_context_takeover: false, client_no_context_takeover: false };
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

/// A connection with permessage-deflate applied below the WebSocket framing. See the module docs.
pub(crate) struct DeflateStream<S> {
    inner: S,
    params: Negotiated,
    threshold: usize,
    max_message: usize,
    // Reading: raw bytes from the peer, and inflated frames ready for the framing decoder.
    raw_in: BytesMut,
    ready_in: BytesMut,
    /// Made on the first compressed message (see the module docs).
    inflate: Option<Box<Decompress>>,
    /// Inflating a fragmented compressed message: the bytes produced so far.
    inflating: Option<usize>,
    // Writing: frames from the WebSocket, and bytes ready for the peer.
    raw_out: BytesMut,
    ready_out: BytesMut,
    /// Made on the first message to compress (see the module docs).
    deflate: Option<Box<Compress>>,
}

impl<S> DeflateStream<S> {
    pub(crate) fn new(inner: S, params: Negotiated, threshold: usize, max_message: usize) -> Self {
        DeflateStream {
            inner,
            params,
            threshold,
            max_message,
            raw_in: BytesMut::new(),
            ready_in: BytesMut::new(),
            inflate: None,
            inflating: None,
            raw_out: BytesMut::new(),
            ready_out: BytesMut::new(),
            deflate: None,
        }
    }

    /// Bytes allocated by the buffers (the space before each read position included) and whether each zlib
    /// context exists (for the tests of what shrinks).
    #[cfg(test)]
    fn held(&mut self) -> (usize, bool, bool) {
        let bufs = [&mut self.raw_in, &mut self.ready_in, &mut self.raw_out, &mut self.ready_out];
        let bytes = bufs.into_iter().map(crate::ws::tests::allocated).sum();
        (bytes, self.inflate.is_some(), self.deflate.is_some())
    }

    /// Moves every complete frame of `raw_in` to `ready_in`, inflating compressed ones.
    fn process_incoming(&mut self) -> io::Result<()> {
        loop {
            let mut cursor = Cursor::new(&self.raw_in[..]);
            let Some((mut header, len)) = FrameHeader::parse(&mut cursor).map_err(io::Error::other)? else {
                return Ok(());
            };
            let head_len = cursor.position() as usize;
            let len = usize::try_from(len).map_err(|_| io::Error::other("frame too large"))?;
            if self.raw_in.len() < head_len + len {
                return Ok(());
            }
            let is_data = matches!(header.opcode, OpCode::Data(Data::Text | Data::Binary));
            let is_continue = matches!(header.opcode, OpCode::Data(Data::Continue));
            let compressed = (is_data && header.rsv1) || (is_continue && self.inflating.is_some());
            if !compressed {
                let frame = self.raw_in.split_to(head_len + len);
                self.ready_in.extend_from_slice(&frame);
                continue;
            }
            self.raw_in.advance(head_len);
            let mut payload = self.raw_in.split_to(len);
            if let Some(mask) = header.mask {
                apply_mask(&mut payload, mask);
            }
            let produced_before = self.inflating.unwrap_or(0);
            // Never inflate past the limit: one byte more is enough for the decoder to refuse the message.
            let budget = (self.max_message + 1).saturating_sub(produced_before);
            let mut out = Vec::with_capacity(len.saturating_mul(3).min(budget).max(64));
            let inflate = self.inflate.get_or_insert_with(|| Box::new(Decompress::new(false)));
            inflate_into(inflate, &payload, &mut out, budget)?;
            if header.is_final {
                inflate_into(inflate, &TAIL, &mut out, budget)?;
            }
            if header.is_final {
                self.inflating = None;
                if self.params.client_no_context_takeover {
                    // The next message starts from an empty context: none is kept meanwhile.
                    self.inflate = None;
                }
            } else {
                self.inflating = Some(produced_before + out.len());
            }
            header.rsv1 = false;
            let mut bytes = Vec::with_capacity(out.len() + 14);
            header.format(out.len() as u64, &mut bytes).map_err(io::Error::other)?;
            if let Some(mask) = header.mask {
                apply_mask(&mut out, mask);
            }
            self.ready_in.extend_from_slice(&bytes);
            self.ready_in.extend_from_slice(&out);
        }
    }

    /// Moves every complete frame of `raw_out` to `ready_out`, deflating the large data messages.
    fn process_outgoing(&mut self) -> io::Result<()> {
        loop {
            let mut cursor = Cursor::new(&self.raw_out[..]);
            let Some((mut header, len)) = FrameHeader::parse(&mut cursor).map_err(io::Error::other)? else {
                return Ok(());
            };
            let head_len = cursor.position() as usize;
            let len = usize::try_from(len).map_err(|_| io::Error::other("frame too large"))?;
            if self.raw_out.len() < head_len + len {
                return Ok(());
            }
            let whole_data = header.is_final && matches!(header.opcode, OpCode::Data(Data::Text | Data::Binary));
            if !whole_data || len < self.threshold || header.mask.is_some() {
                let frame = self.raw_out.split_to(head_len + len);
                self.ready_out.extend_from_slice(&frame);
                continue;
            }
            self.raw_out.advance(head_len);
            let payload = self.raw_out.split_to(len);
            let mut out = Vec::with_capacity(len / 2 + 64);
            let deflate = self.deflate.get_or_insert_with(|| Box::new(Compress::new(Compression::fast(), false)));
            deflate_into(deflate, &payload, &mut out)?;
            if out.ends_with(&TAIL) {
                out.truncate(out.len() - TAIL.len());
            }
            if self.params.server_no_context_takeover {
                self.deflate = None;
            }
            header.rsv1 = true;
            let mut head = Vec::with_capacity(14);
            header.format(out.len() as u64, &mut head).map_err(io::Error::other)?;
            self.ready_out.extend_from_slice(&head);
            self.ready_out.extend_from_slice(&out);
        }
    }
}

/// Drops an empty buffer's allocation if a large message grew it past [`KEEP`].
///
/// `capacity()` counts only from the read position: a buffer read to its end says 0 while it still holds
/// its whole allocation. `try_reclaim` takes the space before the position back when the allocation has it,
/// without allocating, and says whether there is more than `KEEP` in all.
fn shrink(buf: &mut BytesMut) {
    if buf.is_empty() && buf.try_reclaim(KEEP + 1) {
        *buf = BytesMut::new();
    }
}

fn inflate_into(d: &mut Decompress, mut input: &[u8], out: &mut Vec<u8>, budget: usize) -> io::Result<()> {
    loop {
        if out.len() >= budget {
            return Ok(());
        }
        if out.capacity() - out.len() < 4096 {
            out.reserve(4096.min(budget - out.len()).max(1));
        }
        let (in_before, out_before) = (d.total_in(), d.total_out());
        let status = d.decompress_vec(input, out, FlushDecompress::Sync).map_err(io::Error::other)?;
        let consumed = (d.total_in() - in_before) as usize;
        input = &input[consumed..];
        let produced = d.total_out() - out_before;
        if out.len() > budget {
            out.truncate(budget);
        }
        match status {
            Status::StreamEnd => return Ok(()),
            _ if input.is_empty() && out.len() < out.capacity() => return Ok(()),
            _ if consumed == 0 && produced == 0 => return Ok(()),
            _ => {}
        }
    }
}

fn deflate_into(c: &mut Compress, mut input: &[u8], out: &mut Vec<u8>) -> io::Result<()> {
    loop {
        if out.capacity() - out.len() < 64 {
            out.reserve(4096);
        }
        let before = c.total_in();
        c.compress_vec(input, out, FlushCompress::Sync).map_err(io::Error::other)?;
        input = &input[(c.total_in() - before) as usize..];
        // Done when all input is taken and the sync flush fit in the buffer.
        if input.is_empty() && out.len() < out.capacity() {
            return Ok(());
        }
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for DeflateStream<S> {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        let this = &mut *self;
        loop {
            if !this.ready_in.is_empty() {
                let n = this.ready_in.len().min(buf.remaining());
                buf.put_slice(&this.ready_in[..n]);
                this.ready_in.advance(n);
                shrink(&mut this.ready_in);
                shrink(&mut this.raw_in);
                return Poll::Ready(Ok(()));
            }
            let mut chunk = [0u8; 4096];
            let mut rb = ReadBuf::new(&mut chunk);
            ready!(Pin::new(&mut this.inner).poll_read(cx, &mut rb))?;
            if rb.filled().is_empty() {
                // End of stream: hand on whatever is left (the WebSocket sees the stream end inside a frame).
                let rest = this.raw_in.split();
                this.ready_in.extend_from_slice(&rest);
                if this.ready_in.is_empty() {
                    return Poll::Ready(Ok(()));
                }
                continue;
            }
            this.raw_in.extend_from_slice(rb.filled());
            this.process_incoming()?;
        }
    }
}

impl<S: AsyncWrite + Unpin> DeflateStream<S> {
    fn poll_drain(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        while !self.ready_out.is_empty() {
            let n = ready!(Pin::new(&mut self.inner).poll_write(cx, &self.ready_out))?;
            if n == 0 {
                return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
            }
            self.ready_out.advance(n);
        }
        shrink(&mut self.ready_out);
        shrink(&mut self.raw_out);
        Poll::Ready(Ok(()))
    }
}

/// Most bytes held for the peer before writes wait for the socket.
const MAX_PENDING_OUT: usize = 256 * 1024;

impl<S: AsyncWrite + Unpin> AsyncWrite for DeflateStream<S> {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        let this = &mut *self;
        if this.ready_out.len() >= MAX_PENDING_OUT {
            ready!(this.poll_drain(cx))?;
        }
        this.raw_out.extend_from_slice(buf);
        this.process_outgoing()?;
        // Start sending without waiting for a flush; what does not fit now goes on the next call.
        if let Poll::Ready(Err(e)) = this.poll_drain(cx) {
            return Poll::Ready(Err(e));
        }
        Poll::Ready(Ok(buf.len()))
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = &mut *self;
        ready!(this.poll_drain(cx))?;
        Pin::new(&mut this.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = &mut *self;
        ready!(this.poll_drain(cx))?;
        Pin::new(&mut this.inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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

    #[test]
    fn deflate_then_inflate_round_trips_across_messages() {
        let mut c = Compress::new(Compression::fast(), false);
        let mut d = Decompress::new(false);
        for msg in [b"hello hello hello hello".to_vec(), vec![7u8; 100_000], b"hello again".to_vec()] {
            let mut z = Vec::new();
            deflate_into(&mut c, &msg, &mut z).unwrap();
            assert!(z.ends_with(&TAIL));
            z.truncate(z.len() - 4);
            let mut out = Vec::new();
            inflate_into(&mut d, &z, &mut out, usize::MAX).unwrap();
            inflate_into(&mut d, &TAIL, &mut out, usize::MAX).unwrap();
            assert_eq!(out, msg);
        }
    }

    use engineio_proto::websocket::{Opcode, encode_frame};
    use tokio::io::{AsyncReadExt, AsyncWriteExt, DuplexStream};

    /// Bytes that deflate hardly shrinks, so compressed frames are as large as the message.
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

    /// A masked, compressed (RSV1) text frame from a client, deflated with `c`.
    fn client_compressed(c: &mut Compress, message: &[u8]) -> Vec<u8> {
        let mut z = Vec::new();
        deflate_into(c, message, &mut z).unwrap();
        z.truncate(z.len() - TAIL.len());
        crate::ws::tests::client_frame(0x40 | 0x1, &z)
    }

    /// Writes `bytes` into `from` while reading `to` until `done` says what came is complete; returns it.
    async fn pipe(
        from: &mut (impl AsyncWrite + Unpin),
        to: &mut (impl AsyncRead + Unpin),
        bytes: &[u8],
        done: impl Fn(&[u8]) -> bool,
    ) -> Vec<u8> {
        let write = async {
            from.write_all(bytes).await.unwrap();
            from.flush().await.unwrap();
        };
        let mut got = Vec::new();
        let read = async {
            let mut buf = vec![0u8; 64 * 1024];
            while !done(&got) {
                let n = to.read(&mut buf).await.unwrap();
                got.extend_from_slice(&buf[..n]);
            }
        };
        tokio::join!(write, read);
        got
    }

    /// Sends one server frame through `stream` and returns the bytes the peer received.
    async fn send_through(
        stream: &mut DeflateStream<DuplexStream>,
        peer: &mut DuplexStream,
        message: &[u8],
    ) -> Vec<u8> {
        let mut frame = Vec::new();
        encode_frame(&mut frame, Opcode::Text, message);
        pipe(stream, peer, &frame, |got| frame_len(got).is_some_and(|total| got.len() >= total)).await
    }

    /// Writes a client's frame into `peer` and reads the plain frame `stream` makes of it.
    async fn receive_through(
        stream: &mut DeflateStream<DuplexStream>,
        peer: &mut DuplexStream,
        frame: &[u8],
    ) -> Vec<u8> {
        // A masked frame: 4 more header bytes for the key.
        pipe(peer, stream, frame, |got| frame_len(got).is_some_and(|total| got.len() >= total + 4)).await
    }

    /// The length of a frame without a masking key at the start of `b`, once its header is complete.
    fn frame_len(b: &[u8]) -> Option<usize> {
        let (len, head) = match *b.get(1)? & 0x7f {
            126 => (usize::from(u16::from_be_bytes(b.get(2..4)?.try_into().ok()?)), 4),
            127 => (u64::from_be_bytes(b.get(2..10)?.try_into().ok()?) as usize, 10),
            n => (usize::from(n), 2),
        };
        Some(head + len)
    }

    /// The payload of the masked frame `f`, unmasked.
    fn unmasked(f: &[u8]) -> Vec<u8> {
        let head = match f[1] & 0x7f {
            126 => 4,
            127 => 10,
            _ => 2,
        };
        let mut payload = f[head + 4..].to_vec();
        apply_mask(&mut payload, f[head..head + 4].try_into().unwrap());
        payload
    }

    #[tokio::test]
    async fn contexts_are_made_on_first_use_and_buffers_shrink_after_a_large_message() {
        let (a, mut peer) = tokio::io::duplex(64 * 1024);
        let params = Negotiated { server_no_context_takeover: false, client_no_context_takeover: false };
        let mut stream = DeflateStream::new(a, params, 1024, 8 << 20);
        // Under the threshold: sent as it is, and no zlib context is made.
        let got = send_through(&mut stream, &mut peer, b"4hello").await;
        assert_eq!(got[0], 0x81, "no RSV1 below the threshold");
        let (_, inflate, deflate) = stream.held();
        assert!(!inflate && !deflate);

        // A 1 MiB message each way: the contexts exist now (they carry over to the next message)...
        let big = noise(1 << 20);
        let got = send_through(&mut stream, &mut peer, &big).await;
        assert_eq!(got[0], 0xc1, "compressed: FIN, RSV1, text");
        let mut c = Compress::new(Compression::fast(), false);
        let plain = receive_through(&mut stream, &mut peer, &client_compressed(&mut c, &big)).await;
        assert!(unmasked(&plain) == big);
        let (bytes, inflate, deflate) = stream.held();
        assert!(inflate && deflate);
        // ...but the buffers that carried it are given back.
        assert!(bytes <= 4 * KEEP, "buffers still hold {bytes} bytes");

        // The kept contexts still work for a second message.
        let again = b"4a second message, long enough to be compressed ".repeat(40);
        let got = send_through(&mut stream, &mut peer, &again).await;
        assert_eq!(got[0], 0xc1);
        let plain = receive_through(&mut stream, &mut peer, &client_compressed(&mut c, &again)).await;
        assert_eq!(unmasked(&plain), again);
    }

    #[tokio::test]
    async fn without_context_takeover_no_context_is_kept_between_messages() {
        let (a, mut peer) = tokio::io::duplex(64 * 1024);
        let params = Negotiated { server_no_context_takeover: true, client_no_context_takeover: true };
        let mut stream = DeflateStream::new(a, params, 16, 1 << 20);
        let message = b"4every message starts from an empty context".repeat(3);
        for _ in 0..2 {
            let got = send_through(&mut stream, &mut peer, &message).await;
            assert_eq!(got[0], 0xc1);
            // Each message inflates on its own, with a fresh context.
            let mut out = Vec::new();
            let mut d = Decompress::new(false);
            inflate_into(&mut d, &got[2..], &mut out, usize::MAX).unwrap();
            inflate_into(&mut d, &TAIL, &mut out, usize::MAX).unwrap();
            assert_eq!(out, message);
            let fresh = &mut Compress::new(Compression::fast(), false);
            let plain = receive_through(&mut stream, &mut peer, &client_compressed(fresh, &message)).await;
            assert_eq!(unmasked(&plain), message);
            let (_, inflate, deflate) = stream.held();
            assert!(!inflate && !deflate, "no context kept");
        }
    }

    #[test]
    fn inflation_stops_at_the_budget() {
        let mut c = Compress::new(Compression::fast(), false);
        let mut z = Vec::new();
        deflate_into(&mut c, &vec![0u8; 10_000_000], &mut z).unwrap();
        assert!(z.len() * 100 < 10_000_000, "a bomb compresses more than 100:1, got {} bytes", z.len());
        let mut out = Vec::new();
        inflate_into(&mut Decompress::new(false), &z, &mut out, 1001).unwrap();
        assert_eq!(out.len(), 1001);
    }
}
