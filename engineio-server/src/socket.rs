//! The application's handle on one Engine.IO session, and the handler trait the layer above implements.

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use engineio_proto::{CloseReason, Frame, Message, Protocol, TransportKind};
use http::request;
use tokio::sync::oneshot;

use crate::mailbox::Command;
use crate::mailbox::{Mailbox, TrySendError};

/// What the layer above (`socketio-server`, or an application using Engine.IO directly) implements to
/// receive sessions. It makes one [`Connection`] per session.
pub trait Handler: Send + Sync + 'static {
    /// A session opened (the open packet is on its way); returns the state that receives its messages.
    fn on_open(&self, socket: &Socket) -> Box<dyn Connection>;
}

/// The per-session state of the layer above. It lives on the session's own task, which calls it with
/// `&mut self`: no lock is needed for per-connection state such as a packet decoder. Each method should
/// hand long work to another task rather than block.
pub trait Connection: Send + 'static {
    /// The client sent a message.
    fn on_message(&mut self, message: Message);
    /// The client sent a message, read at `now` (the session task's time of this wake-up, on its clock).
    /// Calls [`Connection::on_message`] unless overridden: a layer with timers of its own takes the time
    /// here instead of reading a clock per message.
    fn on_message_at(&mut self, now: std::time::Instant, message: Message) {
        let _ = now;
        self.on_message(message);
    }
    /// The HTTP request that carried the messages about to be delivered: called with `Some(request)` before
    /// the messages of a long-polling POST, and with `None` once they are delivered (the reference's
    /// `transport.dataReq`). Messages that come over a WebSocket have no request of their own.
    fn on_data_request(&mut self, request: Option<Arc<request::Parts>>) {
        let _ = request;
    }
    /// The session upgraded from polling to WebSocket.
    fn on_upgrade(&mut self) {}
    /// The session closed; nothing more will be delivered.
    fn on_close(&mut self, reason: CloseReason) {
        let _ = reason;
    }
    /// When this connection wants [`Connection::on_deadline`] called (a timeout of the layer above, kept
    /// on the session's own timer rather than a task of its own). Asked after every input.
    fn deadline(&self) -> Option<std::time::Instant> {
        None
    }
    /// The time from [`Connection::deadline`] has come.
    fn on_deadline(&mut self, now: std::time::Instant) {
        let _ = now;
    }
}

/// Why [`Socket::send`] could not queue a frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SendError {
    /// The session's queue is full (a slow or stalled client); the frame was not queued.
    #[error("the session's outgoing queue is full")]
    Full,
    /// The session has closed.
    #[error("the session is closed")]
    Closed,
}

pub(crate) struct SocketShared {
    /// Set when a send found the mailbox full: the session task ends the session ("buffer full").
    pub(crate) overflowed: AtomicBool,
    pub(crate) sid: Arc<str>,
    /// Boxed: in jemalloc's 256-byte class by itself, which keeps this struct in the 192-byte one.
    pub(crate) request: Box<crate::kept::KeptRequest>,
    /// Commands for the session task; it is woken through this when `overflowed` is set, too.
    pub(crate) mailbox: Mailbox,
    pub(crate) upgraded: AtomicBool,
    pub(crate) initial_transport: TransportKind,
    /// The Engine.IO revision the client speaks.
    pub(crate) protocol: Protocol,
    /// A JSONP polling session: its callback index (the handshake's `j`), see `engineio_proto::jsonp`.
    pub(crate) jsonp: Option<Box<str>>,
    /// The remote IP address the session's slot is counted under.
    pub(crate) address: Option<std::net::IpAddr>,
}

/// A handle on one Engine.IO session: cheap to clone, usable from any task.
#[derive(Clone)]
pub struct Socket {
    pub(crate) shared: Arc<SocketShared>,
}

impl fmt::Debug for Socket {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Socket").field("sid", &self.sid()).field("transport", &self.transport()).finish()
    }
}

impl Socket {
    /// The session ID.
    pub fn sid(&self) -> &str {
        &self.shared.sid
    }

    /// The handshake request (method, URI, headers, and extensions set by middlewares).
    ///
    /// A session keeps its headers packed, not as a `HeaderMap`: the first call rebuilds the request, which
    /// is kept from then on. [`Socket::request_extensions`] reads the extensions without that.
    pub fn request(&self) -> &request::Parts {
        self.shared.request.parts()
    }

    /// The handshake request, shared.
    pub fn request_arc(&self) -> Arc<request::Parts> {
        self.shared.request.parts().clone()
    }

    /// The handshake request's extensions (those set by middlewares included).
    pub fn request_extensions(&self) -> &http::Extensions {
        self.shared.request.extensions()
    }

    /// The current transport.
    /// The Engine.IO protocol revision the client speaks: [`Protocol::V3`] for the clients of Socket.IO 2
    /// (served when `allow_eio3` is on), else [`Protocol::V4`].
    pub fn protocol(&self) -> Protocol {
        self.shared.protocol
    }

    /// The current transport.
    pub fn transport(&self) -> TransportKind {
        if self.shared.upgraded.load(Ordering::Relaxed) {
            TransportKind::WebSocket
        } else {
            self.shared.initial_transport
        }
    }

    /// Queues an encoded packet. Frames queued from one task go out in order.
    ///
    /// The queue is bounded (`EngineConfig::max_queued_commands`). When it is full the client is not reading
    /// what it is sent: the frame is refused with [`SendError::Full`] and the session is ended with
    /// `CloseReason::BufferFull`, so no data is dropped without the connection ending.
    #[inline]
    pub fn send_frame(&self, frame: Frame) -> Result<(), SendError> {
        self.queue(Command::Send(frame))
    }

    /// Queues several encoded packets as one unit: they go out together, in order, or not at all.
    pub fn send_frames(&self, frames: Vec<Frame>) -> Result<(), SendError> {
        self.queue(Command::SendMany(frames))
    }

    /// Queues a data command; a full mailbox (too many frames or bytes waiting: a client that does not
    /// keep up) ends the session ("buffer full").
    #[inline]
    fn queue(&self, command: Command) -> Result<(), SendError> {
        self.shared.mailbox.try_send(command).map_err(|e| match e {
            TrySendError::Full => {
                crate::telemetry::METRICS.sends_refused.increment(1);
                self.shared.overflowed.store(true, Ordering::Release);
                self.shared.mailbox.wake();
                SendError::Full
            }
            TrySendError::Closed => SendError::Closed,
        })
    }

    /// Sends frames only if the transport can take them right now (a WebSocket, or a pending long-poll);
    /// otherwise they are dropped. This is Socket.IO's `volatile`: a full queue drops them too, without
    /// ending the session.
    pub fn send_volatile(&self, frames: Vec<Frame>) -> Result<(), SendError> {
        self.shared.mailbox.try_send(Command::SendVolatile(frames)).map_err(|e| match e {
            TrySendError::Full => {
                crate::telemetry::METRICS.sends_refused.increment(1);
                SendError::Full
            }
            TrySendError::Closed => SendError::Closed,
        })
    }

    /// Queues a message.
    pub fn send(&self, message: impl Into<Message>) -> Result<(), SendError> {
        self.send_frame(Frame::from_message(&message.into()))
    }

    /// Closes the session ("forced close"); queued frames are delivered first.
    pub fn close(&self) {
        let _ = self.shared.mailbox.send_control(Command::Close);
    }

    /// Closes the session and waits until it has closed.
    pub async fn close_and_wait(&self) {
        let (tx, rx) = oneshot::channel();
        if self.shared.mailbox.send_control(Command::CloseNotify(tx)).is_ok() {
            let _ = rx.await;
        }
    }

    /// Whether the session has closed.
    pub fn is_closed(&self) -> bool {
        self.shared.mailbox.is_closed()
    }
}

#[cfg(test)]
mod tests {
    /// Every session keeps one `SocketShared` in an `Arc` (16 bytes of counts more): at most 176 bytes keeps
    /// it in jemalloc's 192-byte class (the benchmark server runs on jemalloc), where it was before the
    /// protocol revision and the JSONP index joined it.
    #[test]
    fn a_sessions_shared_state_stays_in_the_192_byte_class() {
        let size = std::mem::size_of::<super::SocketShared>();
        assert!(size <= 176, "{size}");
    }
}
