//! permessage-deflate on the wire, with a hand-written client: negotiation, compressed frames both ways,
//! the threshold, the server's no-context-takeover options, and a message that inflates past the limit.

mod support;

use std::io::Cursor;
use std::time::Duration;

use engineio_server::{EngineConfig, PerMessageDeflate};
use flate2::{Compress, Compression, Decompress, FlushCompress, FlushDecompress};
use support::start;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::protocol::frame::FrameHeader;
use tokio_tungstenite::tungstenite::protocol::frame::coding::{Data, OpCode};

struct Client {
    stream: TcpStream,
    buf: Vec<u8>,
    deflate: Compress,
    inflate: Decompress,
}

/// Opens a WebSocket offering `extensions`; returns the client and the response head.
async fn open(addr: std::net::SocketAddr, extensions: Option<&str>) -> (Client, String) {
    let mut stream = TcpStream::connect(addr).await.unwrap();
    let mut req = String::from(
        "GET /engine.io/?EIO=4&transport=websocket HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n",
    );
    if let Some(e) = extensions {
        req.push_str(&format!("Sec-WebSocket-Extensions: {e}\r\n"));
    }
    req.push_str("\r\n");
    stream.write_all(req.as_bytes()).await.unwrap();
    let mut buf = Vec::new();
    let head = loop {
        let mut chunk = [0u8; 1024];
        let n = stream.read(&mut chunk).await.unwrap();
        assert!(n > 0, "connection closed during the handshake");
        buf.extend_from_slice(&chunk[..n]);
        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8(buf[..end].to_vec()).unwrap();
            buf.drain(..end + 4);
            break head;
        }
    };
    let client =
        Client { stream, buf, deflate: Compress::new(Compression::default(), false), inflate: Decompress::new(false) };
    (client, head)
}

impl Client {
    /// The next frame: (rsv1, opcode, payload as received).
    async fn frame(&mut self) -> (bool, OpCode, Vec<u8>) {
        loop {
            let mut cursor = Cursor::new(&self.buf[..]);
            if let Some((header, len)) = FrameHeader::parse(&mut cursor).unwrap() {
                let start = cursor.position() as usize;
                if self.buf.len() >= start + len as usize {
                    let payload = self.buf[start..start + len as usize].to_vec();
                    self.buf.drain(..start + len as usize);
                    return (header.rsv1, header.opcode, payload);
                }
            }
            let mut chunk = [0u8; 65536];
            let n = tokio::time::timeout(Duration::from_secs(5), self.stream.read(&mut chunk))
                .await
                .expect("a frame in time")
                .unwrap();
            assert!(n > 0, "the server closed the connection");
            self.buf.extend_from_slice(&chunk[..n]);
        }
    }

    fn inflate(&mut self, payload: &[u8]) -> Vec<u8> {
        let mut input = payload.to_vec();
        input.extend_from_slice(&[0, 0, 0xff, 0xff]);
        let mut out = Vec::new();
        let mut rest = &input[..];
        loop {
            out.reserve(64 * 1024);
            let before = self.inflate.total_in();
            self.inflate.decompress_vec(rest, &mut out, FlushDecompress::Sync).unwrap();
            rest = &rest[(self.inflate.total_in() - before) as usize..];
            if rest.is_empty() && out.len() < out.capacity() {
                return out;
            }
        }
    }

    async fn send(&mut self, opcode: OpCode, payload: &[u8], compress: bool) {
        let mut data = payload.to_vec();
        if compress {
            let mut out = Vec::with_capacity(payload.len() + 1024);
            self.deflate.compress_vec(payload, &mut out, FlushCompress::Sync).unwrap();
            assert!(out.ends_with(&[0, 0, 0xff, 0xff]));
            out.truncate(out.len() - 4);
            data = out;
        }
        let mask = [1u8, 2, 3, 4];
        let header = FrameHeader { is_final: true, rsv1: compress, rsv2: false, rsv3: false, opcode, mask: Some(mask) };
        let mut bytes = Vec::new();
        header.format(data.len() as u64, &mut bytes).unwrap();
        for (i, b) in data.iter().enumerate() {
            bytes.push(b ^ mask[i & 3]);
        }
        self.stream.write_all(&bytes).await.unwrap();
    }
}

fn deflate_config(max: usize) -> EngineConfig {
    {
        let mut c = EngineConfig::default();
        c.per_message_deflate = Some(PerMessageDeflate::default());
        c.max_http_buffer_size = max;
        c
    }
}

#[tokio::test]
async fn compressed_messages_both_ways() {
    let server = start(deflate_config(1_000_000)).await;
    let (mut c, head) = open(server.addr, Some("permessage-deflate; client_max_window_bits")).await;
    assert!(head.starts_with("HTTP/1.1 101"), "{head}");
    assert!(head.to_ascii_lowercase().contains("sec-websocket-extensions: permessage-deflate"), "{head}");
    // The open packet is under the threshold: sent as it is.
    let (rsv1, op, open) = c.frame().await;
    assert!(!rsv1);
    assert_eq!(op, OpCode::Data(Data::Text));
    assert!(open.starts_with(b"0{"));

    let big = format!("4{}", "abc".repeat(2000));
    c.send(OpCode::Data(Data::Text), big.as_bytes(), true).await;
    let (rsv1, op, payload) = c.frame().await;
    assert!(rsv1, "a large echo comes back compressed");
    assert_eq!(op, OpCode::Data(Data::Text));
    assert!(payload.len() < big.len() / 4, "compressed to {} bytes", payload.len());
    assert!(c.inflate(&payload) == big.as_bytes(), "the echo inflates to the message");

    // Small messages are not compressed; compressed input is still accepted.
    c.send(OpCode::Data(Data::Text), b"4hi", true).await;
    let (rsv1, _, payload) = c.frame().await;
    assert!(!rsv1);
    assert_eq!(payload, b"4hi");
    // Binary too, and the context carries over between messages.
    let bin: Vec<u8> = (0..5000u32).map(|i| (i % 7) as u8).collect();
    c.send(OpCode::Data(Data::Binary), &bin, true).await;
    let (rsv1, op, payload) = c.frame().await;
    assert!(rsv1);
    assert_eq!(op, OpCode::Data(Data::Binary));
    assert!(c.inflate(&payload) == bin, "binary echo inflates to the message");
    c.send(OpCode::Data(Data::Text), big.as_bytes(), true).await;
    let (_, _, payload) = c.frame().await;
    assert!(c.inflate(&payload) == big.as_bytes(), "context carried over");
}

#[tokio::test]
async fn the_server_can_ask_for_no_context_takeover_both_ways() {
    let config = {
        let mut c = EngineConfig::default();
        c.per_message_deflate = Some({
            let mut c = PerMessageDeflate::default();
            c.server_no_context_takeover = true;
            c.client_no_context_takeover = true;
            c
        });
        c
    };
    let server = start(config).await;
    // The offer asks for neither; the response adds both.
    let (mut c, head) = open(server.addr, Some("permessage-deflate; client_max_window_bits")).await;
    let head = head.to_ascii_lowercase();
    assert!(
        head.contains(
            "sec-websocket-extensions: permessage-deflate; server_no_context_takeover; client_no_context_takeover"
        ),
        "{head}"
    );
    c.frame().await;
    let big = format!("4{}", "abc".repeat(2000));
    for _ in 0..3 {
        // Each message compressed from an empty context, as agreed, is understood...
        c.deflate.reset();
        c.send(OpCode::Data(Data::Text), big.as_bytes(), true).await;
        let (rsv1, _, payload) = c.frame().await;
        assert!(rsv1);
        // ...and each echo inflates on its own: it refers to no earlier message (with the context kept, the
        // second echo would be a short reference to the first, which a fresh inflater cannot resolve).
        c.inflate = Decompress::new(false);
        assert!(c.inflate(&payload) == big.as_bytes(), "the echo inflates from an empty context");
    }
}

#[tokio::test]
async fn not_negotiated_unless_enabled_and_offered() {
    let server = start(EngineConfig::default()).await;
    let (_, head) = open(server.addr, Some("permessage-deflate")).await;
    assert!(head.starts_with("HTTP/1.1 101"));
    assert!(!head.to_ascii_lowercase().contains("sec-websocket-extensions"), "off by default: {head}");

    let server = start(deflate_config(1_000_000)).await;
    let (mut c, head) = open(server.addr, None).await;
    assert!(!head.to_ascii_lowercase().contains("sec-websocket-extensions"));
    c.frame().await;
    let big = format!("4{}", "z".repeat(5000));
    c.send(OpCode::Data(Data::Text), big.as_bytes(), false).await;
    let (rsv1, _, payload) = c.frame().await;
    assert!(!rsv1, "no compression without the client's offer");
    assert!(payload == big.as_bytes(), "uncompressed echo");

    // An offer we cannot honour is declined; the connection still works.
    let (_, head) = open(server.addr, Some("permessage-deflate; server_max_window_bits=9")).await;
    assert!(head.starts_with("HTTP/1.1 101"));
    assert!(!head.to_ascii_lowercase().contains("sec-websocket-extensions"));
}

#[tokio::test]
async fn a_message_inflating_past_the_limit_closes_with_1009() {
    let server = start(deflate_config(10_000)).await;
    let (mut c, _) = open(server.addr, Some("permessage-deflate")).await;
    c.frame().await;
    // 5 MB of zeros compress to a few kilobytes.
    c.send(OpCode::Data(Data::Binary), &vec![0u8; 5_000_000], true).await;
    let (_, op, payload) = c.frame().await;
    assert_eq!(op, OpCode::Control(tokio_tungstenite::tungstenite::protocol::frame::coding::Control::Close));
    assert_eq!(u16::from_be_bytes([payload[0], payload[1]]), 1009);
}
