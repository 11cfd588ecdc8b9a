//! A client that stops reading: the server's memory for it stays bounded, the session ends with
//! "buffer full", the sender learns it, and other clients are not affected.

mod support;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use engineio_server::{CloseReason, Connection, EngineConfig, Handler, Message, SendError, Socket};
use support::{start_with, ws_connect, ws_send, ws_text};
use tokio::sync::mpsc;

/// On `flood`, sends 1 KiB messages until the session refuses one; reports how each session ended.
struct Flood {
    closed: mpsc::UnboundedSender<CloseReason>,
    refused: Arc<Mutex<Vec<SendError>>>,
    /// Sends accepted before the refusal.
    accepted: Arc<AtomicUsize>,
}

struct FloodConnection {
    socket: Socket,
    closed: mpsc::UnboundedSender<CloseReason>,
    refused: Arc<Mutex<Vec<SendError>>>,
    accepted: Arc<AtomicUsize>,
}

impl Handler for Flood {
    fn on_open(&self, socket: &Socket) -> Box<dyn Connection> {
        Box::new(FloodConnection {
            socket: socket.clone(),
            closed: self.closed.clone(),
            refused: self.refused.clone(),
            accepted: self.accepted.clone(),
        })
    }
}

impl Connection for FloodConnection {
    fn on_message(&mut self, message: Message) {
        if !matches!(&message, Message::Text(t) if &**t == "flood") {
            let _ = self.socket.send(message);
            return;
        }
        let socket = self.socket.clone();
        let refused = self.refused.clone();
        let accepted = self.accepted.clone();
        tokio::spawn(async move {
            let chunk = "x".repeat(1024);
            for _ in 0..2_000_000 {
                if let Err(e) = socket.send(chunk.as_str()) {
                    refused.lock().unwrap().push(e);
                    return;
                }
                accepted.fetch_add(1, Ordering::Relaxed);
                tokio::task::yield_now().await;
            }
        });
    }

    fn on_close(&mut self, reason: CloseReason) {
        let _ = self.closed.send(reason);
    }
}

#[tokio::test]
async fn a_client_that_stops_reading_is_disconnected_with_buffer_full() {
    let (tx, mut closed) = mpsc::unbounded_channel();
    let refused = Arc::new(Mutex::new(Vec::new()));
    let config = {
        let mut c = EngineConfig::default();
        c.max_queued_commands = 256;
        c
    };
    let server = start_with(config, Flood { closed: tx, refused: refused.clone(), accepted: Arc::default() }).await;

    // A healthy client, to check it is not affected.
    let (mut healthy, _) = ws_connect(server.addr, "/engine.io/?EIO=4&transport=websocket", &[]).await.unwrap();
    ws_text(&mut healthy).await;

    // The slow one asks for a flood, then never reads again.
    let (mut slow, _) = ws_connect(server.addr, "/engine.io/?EIO=4&transport=websocket", &[]).await.unwrap();
    ws_text(&mut slow).await;
    ws_send(&mut slow, "4flood").await;
    let reason = tokio::time::timeout(Duration::from_secs(20), closed.recv())
        .await
        .expect("the slow session ends within 20 s")
        .unwrap();
    assert_eq!(reason, CloseReason::BufferFull);
    assert_eq!(*refused.lock().unwrap(), vec![SendError::Full], "the sender learned that its frame was refused");
    assert_eq!(server.engine.session_count(), 1);

    ws_send(&mut healthy, "4still here").await;
    assert_eq!(ws_text(&mut healthy).await, "4still here");
    drop(slow);
}

#[tokio::test]
async fn a_polling_client_that_stops_polling_is_disconnected_with_buffer_full() {
    let (tx, mut closed) = mpsc::unbounded_channel();
    let refused = Arc::new(Mutex::new(Vec::new()));
    let config = {
        let mut c = EngineConfig::default();
        c.max_buffered_frames = 100;
        c
    };
    let server = start_with(config, Flood { closed: tx, refused, accepted: Arc::default() }).await;
    let (sid, _) = support::handshake(server.addr).await;
    support::post(server.addr, &support::poll_path(&sid), b"4flood").await;
    let reason = tokio::time::timeout(Duration::from_secs(10), closed.recv()).await.expect("ends in time").unwrap();
    assert_eq!(reason, CloseReason::BufferFull);
    let res = support::get(server.addr, &support::poll_path(&sid)).await;
    assert_eq!(res.status, 400, "the session is gone");
}

#[tokio::test]
async fn the_mailbox_is_bounded_in_bytes_too() {
    let (tx, mut closed) = mpsc::unbounded_channel();
    let refused = Arc::new(Mutex::new(Vec::new()));
    // The command bound is out of reach (a million 1 KiB frames): only the byte bound can end this.
    let config = {
        let mut c = EngineConfig::default();
        c.max_queued_bytes = 64 * 1024;
        c.max_queued_commands = 1_000_000;
        c
    };
    let accepted = Arc::new(AtomicUsize::new(0));
    let server = start_with(config, Flood { closed: tx, refused: refused.clone(), accepted: accepted.clone() }).await;
    let (mut slow, _) = ws_connect(server.addr, "/engine.io/?EIO=4&transport=websocket", &[]).await.unwrap();
    ws_text(&mut slow).await;
    ws_send(&mut slow, "4flood").await;
    let reason = tokio::time::timeout(Duration::from_secs(20), closed.recv()).await.expect("ends in time").unwrap();
    assert_eq!(reason, CloseReason::BufferFull);
    assert_eq!(*refused.lock().unwrap(), vec![SendError::Full]);
    // What was accepted is what the socket buffers, the session's own bounds (8 MiB) and 64 KiB of mailbox
    // hold: megabytes, not the gigabyte the command bound alone would let in.
    let accepted = accepted.load(Ordering::Relaxed);
    assert!(accepted < 100_000, "{accepted} sends of 1 KiB accepted");
}
