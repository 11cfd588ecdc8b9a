//! Bursts larger than the WebSocket write buffer's flush size: a session's frames go into the write buffer
//! at once while it is small and into the session's queue past it; either way they reach the client in the
//! order they were sent, text and binary mixed, and a close sent after them comes after the last one.

mod support;

use bytes::Bytes;
use engineio_server::{Connection, EngineConfig, Handler, Message, Socket};
use futures_util::StreamExt;
use support::{start_with, ws_connect, ws_send, ws_text};
use tokio_tungstenite::tungstenite::Message as WsMessage;

/// Frames per burst, and the size of each: 300 × 2 KiB is about ten times the flush size.
const FRAMES: usize = 300;
const SIZE: usize = 2048;

/// Whether frame `i` of a burst is binary: every seventh.
fn is_binary(i: usize) -> bool {
    i % 7 == 3
}

/// Frame `i` of a burst: its index first, `SIZE` bytes in all.
fn frame(i: usize) -> Message {
    let head = format!("{i}:");
    let body = format!("{head}{}", "x".repeat(SIZE - head.len()));
    if is_binary(i) { Message::Binary(Bytes::from(body.into_bytes())) } else { Message::Text(body.into()) }
}

/// On `burst`, sends a burst from another thread (through the session's mailbox, taken in batches); on
/// `burst-inline`, from the handler itself (straight to its own session's inbox). Then closes the session.
struct Burst;

struct BurstConnection(Socket);

impl Handler for Burst {
    fn on_open(&self, socket: &Socket) -> Box<dyn Connection> {
        Box::new(BurstConnection(socket.clone()))
    }
}

impl Connection for BurstConnection {
    fn on_message(&mut self, message: Message) {
        let Message::Text(t) = message else { return };
        let socket = self.0.clone();
        let send_all = move || {
            for i in 0..FRAMES {
                socket.send(frame(i)).expect("the session takes the burst");
            }
            socket.close();
        };
        match &*t {
            "burst" => {
                std::thread::spawn(send_all);
            }
            "burst-inline" => send_all(),
            _ => {}
        }
    }
}

/// Reads a whole burst, checking every frame's place and kind, then the close that follows it.
async fn read_burst(ws: &mut support::Ws) {
    for i in 0..FRAMES {
        let got = tokio::time::timeout(std::time::Duration::from_secs(5), ws.next())
            .await
            .expect("a frame within 5 s")
            .expect("the connection is open")
            .expect("a frame");
        let (binary, payload) = match got {
            // Engine.IO v4 over WebSocket: a message's text is the frame's text after the `4` type.
            WsMessage::Text(t) => (false, t.strip_prefix('4').expect("a message packet").as_bytes().to_vec()),
            WsMessage::Binary(b) => (true, b.to_vec()),
            other => panic!("frame {i}: expected a message, got {other:?}"),
        };
        assert_eq!(binary, is_binary(i), "frame {i}: its kind");
        let index = String::from_utf8_lossy(&payload).split(':').next().map(str::to_owned);
        assert_eq!(index.as_deref(), Some(i.to_string().as_str()), "frame {i} in its place");
        assert_eq!(payload.len(), SIZE, "frame {i} whole");
    }
    // Then the close, and nothing before it but, at most, an Engine.IO close packet.
    loop {
        match tokio::time::timeout(std::time::Duration::from_secs(5), ws.next()).await.expect("the close within 5 s") {
            Some(Ok(WsMessage::Text(t))) if t.as_str() == "1" => {}
            Some(Ok(WsMessage::Ping(_) | WsMessage::Pong(_))) => {}
            None | Some(Err(_)) | Some(Ok(WsMessage::Close(_))) => return,
            Some(Ok(other)) => panic!("after the burst, the close; got {other:?}"),
        }
    }
}

#[tokio::test]
async fn a_burst_past_the_flush_size_arrives_in_order_before_the_close() {
    let server = start_with(EngineConfig::default(), Burst).await;
    for trigger in ["burst", "burst-inline"] {
        let (mut ws, _) = ws_connect(server.addr, "/engine.io/?EIO=4&transport=websocket", &[]).await.unwrap();
        assert!(ws_text(&mut ws).await.starts_with("0{"));
        ws_send(&mut ws, &format!("4{trigger}")).await;
        read_burst(&mut ws).await;
    }
}
