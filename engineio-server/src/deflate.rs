//! WebSocket permessage-deflate (RFC 7692), below the framing.
//!
//! [`DeflateStream`] sits between the upgraded connection and the WebSocket (`ws.rs`) and works on frames
//! only: incoming messages with RSV1 set are inflated into plain frames before the framing decoder sees
//! them (so its checks, size limits and close handling still apply: a message that inflates past the limit
//! is handed on at the limit plus one byte, and the decoder refuses it with 1009); outgoing single-frame
//! data messages of at least `threshold` bytes are deflated and marked with RSV1. Control frames and
//! fragmented outgoing messages pass through unchanged. Frame headers are read and written here with
//! tungstenite's header codec, which accepts the RSV1 bit that the framing decoder refuses.

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
    inflate: Decompress,
    /// Inflating a fragmented compressed message: the bytes produced so far.
    inflating: Option<usize>,
    // Writing: frames from the WebSocket, and bytes ready for the peer.
    raw_out: BytesMut,
    ready_out: BytesMut,
    deflate: Compress,
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
            inflate: Decompress::new(false),
            inflating: None,
            raw_out: BytesMut::new(),
            ready_out: BytesMut::new(),
            deflate: Compress::new(Compression::fast(), false),
        }
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
            inflate_into(&mut self.inflate, &payload, &mut out, budget)?;
            if header.is_final {
                inflate_into(&mut self.inflate, &TAIL, &mut out, budget)?;
            }
            if header.is_final {
                self.inflating = None;
                if self.params.client_no_context_takeover {
                    self.inflate.reset(false);
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
            deflate_into(&mut self.deflate, &payload, &mut out)?;
            if out.ends_with(&TAIL) {
                out.truncate(out.len() - TAIL.len());
            }
            if self.params.server_no_context_takeover {
                self.deflate.reset();
            }
            header.rsv1 = true;
            let mut head = Vec::with_capacity(14);
            header.format(out.len() as u64, &mut head).map_err(io::Error::other)?;
            self.ready_out.extend_from_slice(&head);
            self.ready_out.extend_from_slice(&out);
        }
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
                buf.put_slice(&this.ready_in.split_to(n));
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
