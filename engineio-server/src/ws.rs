//! A server-side WebSocket over any tokio byte stream, on the sans-IO framing of
//! [`engineio_proto::websocket`].
//!
//! Buffers are sized for idle connections and given back: while no bytes are held, reads go onto the
//! stack and only what arrived is copied to the heap (a wake-up with nothing to read allocates nothing,
//! and an idle connection keeps no read buffer); a frame larger than one read gets a buffer of its own
//! size, which leaves as the message's payload; the write buffer is given back after each flush (to a
//! spare kept per thread, which the next connection to write on that thread takes, or to the allocator
//! when it grew past [`WRITE_KEEP`] bytes; see `engineio_proto::spare`), so an idle connection keeps no
//! write buffer either. Pings are answered and a peer's close frame is echoed on the next flush.
//!
//! With permessage-deflate negotiated, the decoder accepts RSV1 and compressed messages are inflated here,
//! whole, by [`PerMessageDeflate`] (which also deflates outgoing messages over its threshold): one framing
//! codec for every connection.

use std::future::Future;
use std::io;
use std::mem::MaybeUninit;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use bytes::BytesMut;
use engineio_proto::Frame;
use engineio_proto::websocket::deflate::PerMessageDeflate;
use engineio_proto::websocket::{Decoder, Opcode, WsError, WsMessage, encode_close, encode_frame};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, ReadBuf};

/// How much room a read asks for when the next frame's size is not known yet.
const READ_CHUNK: usize = 4096;

/// The least room a read is given.
const READ_MIN: usize = 256;

/// A write buffer larger than this after a flush is dropped rather than kept for the next frames.
pub(crate) const WRITE_KEEP: usize = 2048;

thread_local! {
    /// One flushed write buffer per thread, lent to the next WebSocket of this thread that writes.
    static SPARE_WRITE: std::cell::RefCell<Vec<u8>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// Why reading stopped with an error.
#[derive(Debug)]
pub(crate) enum ReadError {
    /// The peer broke the protocol; answer with the error's close code.
    Ws(WsError),
    /// The connection failed.
    Io,
}

pub(crate) struct WebSocket<S> {
    io: S,
    read: BytesMut,
    decoder: Decoder,
    /// permessage-deflate, when negotiated.
    deflate: Option<Box<PerMessageDeflate>>,
    write: Vec<u8>,
    /// How much of `write` has been written.
    written: usize,
    close_sent: bool,
    /// A close frame arrived, the stream ended or was broken: nothing more is read.
    done: bool,
}

impl<S: AsyncRead + AsyncWrite + Unpin> WebSocket<S> {
    /// A WebSocket on an upgraded stream, refusing messages over `max_message` bytes (close code 1009),
    /// with permessage-deflate when it was negotiated.
    pub(crate) fn new(io: S, max_message: usize, deflate: Option<PerMessageDeflate>) -> Self {
        WebSocket {
            io,
            read: BytesMut::new(),
            decoder: Decoder::new(max_message).permessage_deflate(deflate.is_some()),
            deflate: deflate.map(Box::new),
            write: Vec::new(),
            written: 0,
            close_sent: false,
            done: false,
        }
    }

    /// The next message; `None` once the peer closed (after its close frame has been handed out), the
    /// stream ended, or an error was returned. Cancel-safe: no byte read is lost if the future is dropped.
    pub(crate) async fn next(&mut self) -> Option<Result<WsMessage, ReadError>> {
        std::future::poll_fn(|cx| self.poll_next(cx)).await
    }

    fn poll_next(&mut self, cx: &mut Context<'_>) -> Poll<Option<Result<WsMessage, ReadError>>> {
        loop {
            if self.done {
                return Poll::Ready(None);
            }
            let decoded = match self.decoder.decode(&mut self.read) {
                Ok(Some(WsMessage::Compressed { text, payload })) => match &mut self.deflate {
                    Some(deflate) => deflate.inflate(text, &payload).map(Some),
                    None => Err(WsError::Protocol("a compressed message without permessage-deflate")),
                },
                other => other,
            };
            match decoded {
                Ok(Some(msg)) => {
                    self.answer(&msg);
                    return Poll::Ready(Some(Ok(msg)));
                }
                Ok(None) => {}
                Err(e) => {
                    self.done = true;
                    self.read = BytesMut::new();
                    return Poll::Ready(Some(Err(ReadError::Ws(e))));
                }
            }
            let read = if self.read.is_empty() {
                // Nothing held: read onto the stack first, so that a wake-up with nothing to read allocates
                // nothing and an idle connection keeps no read buffer.
                let mut stack = [const { MaybeUninit::<u8>::uninit() }; READ_CHUNK];
                let mut buf = ReadBuf::uninit(&mut stack);
                match Pin::new(&mut self.io).poll_read(cx, &mut buf) {
                    Poll::Ready(Ok(())) => {
                        self.read = BytesMut::from(buf.filled());
                        Poll::Ready(Ok(buf.filled().len()))
                    }
                    Poll::Ready(Err(e)) => Poll::Ready(Err(e)),
                    Poll::Pending => {
                        self.read = BytesMut::new();
                        Poll::Pending
                    }
                }
            } else {
                // Room for the rest of the frame under way, and never a read of only a few bytes.
                let rest = self.decoder.needed().saturating_sub(self.read.len());
                if self.read.capacity() - self.read.len() < rest.max(READ_MIN) {
                    self.read.reserve(rest.max(READ_CHUNK));
                }
                std::pin::pin!(self.io.read_buf(&mut self.read)).poll(cx)
            };
            match read {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(Ok(0)) => {
                    self.done = true;
                    self.read = BytesMut::new();
                    return Poll::Ready(None);
                }
                Poll::Ready(Ok(_)) => {}
                Poll::Ready(Err(_)) => {
                    self.done = true;
                    return Poll::Ready(Some(Err(ReadError::Io)));
                }
            }
        }
    }

    /// Queues the answer a control frame asks for: a pong, or the echo of a close.
    fn answer(&mut self, msg: &WsMessage) {
        match msg {
            WsMessage::Ping(payload) if !self.close_sent => encode_frame(self.room(), Opcode::Pong, payload),
            WsMessage::Close(frame) => {
                self.done = true;
                self.read = BytesMut::new();
                if !self.close_sent {
                    self.close_sent = true;
                    encode_close(self.room(), frame.as_ref().map(|f| (f.code, "")));
                }
            }
            _ => {}
        }
    }

    /// Queues a data frame; [`WebSocket::flush`] sends it. Nothing is queued after a close frame.
    pub(crate) fn feed(&mut self, frame: &Frame) {
        if self.close_sent {
            return;
        }
        let (opcode, payload) = match frame {
            Frame::Text(t) => (Opcode::Text, t.as_bytes().as_ref()),
            Frame::Binary(b) => (Opcode::Binary, b.as_ref()),
        };
        self.room();
        match &mut self.deflate {
            Some(deflate) => deflate.encode(&mut self.write, opcode, payload),
            None => encode_frame(&mut self.write, opcode, payload),
        }
    }

    /// Bytes queued and not yet written.
    pub(crate) fn buffered(&self) -> usize {
        self.write.len() - self.written
    }

    fn poll_flush(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        while self.written < self.write.len() {
            match ready!(Pin::new(&mut self.io).poll_write(cx, &self.write[self.written..])) {
                Ok(0) => return Poll::Ready(Err(io::ErrorKind::WriteZero.into())),
                Ok(n) => self.written += n,
                Err(e) => return Poll::Ready(Err(e)),
            }
        }
        self.written = 0;
        engineio_proto::spare::give_back(&mut self.write, &SPARE_WRITE, WRITE_KEEP);
        Pin::new(&mut self.io).poll_flush(cx)
    }

    /// Writes everything queued.
    pub(crate) async fn flush(&mut self) -> io::Result<()> {
        std::future::poll_fn(|cx| self.poll_flush(cx)).await
    }

    /// Queues a frame and writes it.
    pub(crate) async fn send(&mut self, frame: &Frame) -> io::Result<()> {
        self.feed(frame);
        self.flush().await
    }

    /// Sends a close frame (with a status, or empty) unless one was sent, writes what is queued, and
    /// shuts the stream down.
    pub(crate) async fn close(&mut self, status: Option<(u16, &str)>) -> io::Result<()> {
        if !self.close_sent {
            self.close_sent = true;
            encode_close(self.room(), status);
        }
        self.flush().await?;
        tokio::io::AsyncWriteExt::shutdown(&mut self.io).await
    }

    /// The write buffer, with this thread's spare buffer taken if it has no room of its own.
    fn room(&mut self) -> &mut Vec<u8> {
        engineio_proto::spare::take(&mut self.write, &SPARE_WRITE);
        &mut self.write
    }

    /// Bytes allocated by the read and write buffers (for tests of the memory kept per connection).
    #[cfg(test)]
    pub(crate) fn buffer_capacity(&mut self) -> usize {
        tests::allocated(&mut self.read) + self.write.capacity()
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use bytes::Bytes;
    use engineio_proto::websocket::{CloseFrame, apply_mask};
    use futures_util::FutureExt;
    use tokio::io::{AsyncReadExt, AsyncWriteExt, DuplexStream};

    /// The bytes `buf` holds allocated, the space before its read position included: `capacity()` counts
    /// only from that position, so a buffer read to its end says 0 while it keeps its whole allocation.
    pub(crate) fn allocated(buf: &mut BytesMut) -> usize {
        // Asking for one byte more than the part after the position takes the part before it back.
        let _ = buf.try_reclaim(buf.capacity() - buf.len() + 1);
        buf.capacity()
    }

    /// A masked frame from a client; `first` is the first byte's low bits (opcode, and RSV bits if any).
    pub(crate) fn client_frame(first: u8, payload: &[u8]) -> Vec<u8> {
        let key = [1, 2, 3, 4];
        let mut out = vec![0x80 | first];
        match payload.len() {
            n if n < 126 => out.push(0x80 | n as u8),
            n if n <= 0xffff => {
                out.push(0x80 | 126);
                out.extend_from_slice(&(n as u16).to_be_bytes());
            }
            n => {
                out.push(0x80 | 127);
                out.extend_from_slice(&(n as u64).to_be_bytes());
            }
        }
        out.extend_from_slice(&key);
        let mut body = payload.to_vec();
        apply_mask(&mut body, key);
        out.extend(body);
        out
    }

    fn pair(max: usize) -> (WebSocket<DuplexStream>, DuplexStream) {
        let (a, b) = tokio::io::duplex(1 << 22);
        (WebSocket::new(a, max, None), b)
    }

    #[tokio::test]
    async fn buffers_grow_for_a_large_message_and_are_given_back() {
        let (mut ws, mut peer) = pair(1 << 21);
        let big = vec![7u8; 1 << 20];
        peer.write_all(&client_frame(2, &big)).await.unwrap();
        let Some(Ok(WsMessage::Binary(got))) = ws.next().await else { panic!("no message") };
        assert_eq!(got.len(), big.len());
        drop(got);
        // The server answers with a message as large.
        ws.send(&Frame::Binary(Bytes::from(big.clone()))).await.unwrap();
        let mut echoed = vec![0u8; big.len() + 10];
        peer.read_exact(&mut echoed).await.unwrap();
        assert_eq!(&echoed[..2], &[0x82, 127]);
        // Idle again: a read finds nothing, and the connection keeps no large buffer.
        assert!(ws.next().now_or_never().is_none(), "no message expected");
        assert!(ws.buffer_capacity() <= WRITE_KEEP, "kept {} bytes", ws.buffer_capacity());
        // And it still works.
        peer.write_all(&client_frame(1, b"42[\"x\"]")).await.unwrap();
        assert_eq!(ws.next().await.unwrap().unwrap(), WsMessage::Text("42[\"x\"]".into()));
    }

    #[tokio::test]
    async fn a_flushed_write_buffer_is_lent_to_the_next_connection_to_write() {
        let (mut a, mut peer_a) = pair(100);
        let (mut b, mut peer_b) = pair(100);
        a.feed(&Frame::Text("2".into()));
        let room = a.buffer_capacity();
        assert!(room > 0);
        a.flush().await.unwrap();
        let mut got = [0u8; 3];
        peer_a.read_exact(&mut got).await.unwrap();
        assert_eq!(&got, &[0x81, 1, b'2']);
        assert_eq!(a.buffer_capacity(), 0, "a flushed connection keeps no write buffer");
        b.feed(&Frame::Text("3".into()));
        assert_eq!(b.buffer_capacity(), room, "the next one to write takes the spare");
        b.flush().await.unwrap();
        peer_b.read_exact(&mut got).await.unwrap();
        assert_eq!(&got, &[0x81, 1, b'3']);
        a.send(&Frame::Text("4".into())).await.unwrap();
        peer_a.read_exact(&mut got).await.unwrap();
        assert_eq!(&got, &[0x81, 1, b'4'], "and the first still writes");
    }

    #[tokio::test]
    async fn pings_are_answered_and_a_close_is_echoed() {
        let (mut ws, mut peer) = pair(100);
        peer.write_all(&client_frame(9, b"hi")).await.unwrap();
        peer.write_all(&client_frame(8, &[0x03, 0xe9, b'x'])).await.unwrap();
        assert_eq!(ws.next().await.unwrap().unwrap(), WsMessage::Ping(Bytes::from_static(b"hi")));
        assert_eq!(
            ws.next().await.unwrap().unwrap(),
            WsMessage::Close(Some(CloseFrame { code: 1001, reason: "x".into() }))
        );
        assert!(ws.next().await.is_none());
        ws.close(None).await.unwrap();
        let mut out = Vec::new();
        peer.read_to_end(&mut out).await.unwrap();
        assert_eq!(out, [0x8a, 0x02, b'h', b'i', 0x88, 0x02, 0x03, 0xe9]);
    }

    #[tokio::test]
    async fn a_broken_frame_ends_reading_with_its_close_code() {
        let (mut ws, mut peer) = pair(10);
        peer.write_all(&client_frame(1, &[b'a'; 11])).await.unwrap();
        match ws.next().await {
            Some(Err(ReadError::Ws(e))) => assert_eq!(e.close_code(), 1009),
            other => panic!("{other:?}"),
        }
        assert!(ws.next().await.is_none());
        ws.close(Some((1009, ""))).await.unwrap();
        let mut out = Vec::new();
        peer.read_to_end(&mut out).await.unwrap();
        assert_eq!(out, [0x88, 0x02, 0x03, 0xf1]);
    }

    #[tokio::test]
    async fn a_read_cancelled_midway_loses_nothing() {
        let (mut ws, mut peer) = pair(1 << 16);
        let frame = client_frame(2, &[5u8; 3000]);
        peer.write_all(&frame[..1000]).await.unwrap();
        assert!(ws.next().now_or_never().is_none(), "half a frame is not a message");
        peer.write_all(&frame[1000..]).await.unwrap();
        assert_eq!(ws.next().await.unwrap().unwrap(), WsMessage::Binary(vec![5u8; 3000].into()));
    }

    /// A compressed (RSV1) frame from a client: `message` deflated with `c`.
    fn client_compressed(c: &mut flate2::Compress, message: &[u8]) -> Vec<u8> {
        // Room for all of it: the sync flush is complete when it does not fill the vector.
        let mut z = Vec::with_capacity(message.len() + 1024);
        let before = c.total_in();
        c.compress_vec(message, &mut z, flate2::FlushCompress::Sync).unwrap();
        assert_eq!(c.total_in() - before, message.len() as u64);
        assert!(z.len() < z.capacity());
        assert!(z.ends_with(&[0, 0, 0xff, 0xff]));
        z.truncate(z.len() - 4);
        client_frame(0x40 | 0x2, &z)
    }

    #[tokio::test]
    async fn compression_contexts_are_made_on_first_use_and_buffers_shrink_after_a_large_message() {
        use engineio_proto::websocket::deflate::{Negotiated, PerMessageDeflate};
        let (a, mut peer) = tokio::io::duplex(1 << 22);
        let mut ws = WebSocket::new(a, 8 << 20, Some(PerMessageDeflate::new(Negotiated::default(), 1024, 8 << 20)));
        let contexts = |ws: &WebSocket<DuplexStream>| ws.deflate.as_ref().unwrap().contexts();
        // Under the threshold: sent as it is, and no zlib context is made.
        ws.send(&Frame::Text("4hello".into())).await.unwrap();
        let mut head = [0u8; 2];
        peer.read_exact(&mut head).await.unwrap();
        assert_eq!(head, [0x81, 6], "no RSV1 below the threshold");
        peer.read_exact(&mut [0u8; 6]).await.unwrap();
        assert_eq!(contexts(&ws), (false, false));

        // A 1 MiB message each way: the contexts exist now...
        let big: Vec<u8> = (0..1u32 << 20).map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8).collect();
        let mut c = flate2::Compress::new(flate2::Compression::fast(), false);
        peer.write_all(&client_compressed(&mut c, &big)).await.unwrap();
        assert_eq!(ws.next().await.unwrap().unwrap(), WsMessage::Binary(big.clone().into()));
        ws.feed(&Frame::Binary(Bytes::from(big.clone())));
        assert_eq!(ws.write[0], 0xc2, "compressed: FIN, RSV1, binary");
        ws.flush().await.unwrap();
        assert_eq!(contexts(&ws), (true, true));
        // ...but the buffers that carried the message are given back.
        assert!(ws.next().now_or_never().is_none(), "no message expected");
        assert!(ws.buffer_capacity() <= WRITE_KEEP, "kept {} bytes", ws.buffer_capacity());
        // The kept inflate context still works for a second message.
        peer.write_all(&client_compressed(&mut c, &big[..3000])).await.unwrap();
        assert_eq!(ws.next().await.unwrap().unwrap(), WsMessage::Binary(big[..3000].to_vec().into()));
    }
}
