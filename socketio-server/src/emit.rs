//! The emit path of one socket: events, acks, the emitter with options, broadcasts from a socket, and the
//! encoded frames handed to the Engine.IO session.

use std::collections::HashSet;
use std::sync::atomic::Ordering;
use std::time::Duration;

use engineio_proto::Frame;
use engineio_server::SendError;
use socketio_proto::{ArgsPacket, Frames, Packet, Value};
use tokio::sync::oneshot;

use crate::adapter::BroadcastOptions;
use crate::event::{AckError, EmitError, IntoArgs, check_reserved};
use crate::operators::{BroadcastOperator, IntoRooms};
use crate::run::contain;
use crate::socket::{AckCallback, AnyListener, Socket};

pub(crate) fn send_error(e: SendError) -> EmitError {
    match e {
        SendError::Full => EmitError::QueueFull,
        _ => EmitError::Disconnected,
    }
}

/// Queues encoded frames, shared with other recipients of a broadcast, to one engine session.
pub(crate) fn send_shared_frames(
    es: &engineio_server::Socket,
    frames: &[Frame],
    volatile: bool,
) -> Result<(), EmitError> {
    let res = if volatile {
        es.send_volatile(frames.to_vec())
    } else if frames.len() == 1 {
        es.send_frame(frames[0].clone())
    } else {
        es.send_frames(frames.to_vec())
    };
    res.map_err(send_error)
}

impl Socket {
    /// Emits an event to this client.
    pub fn emit(&self, event: &str, args: impl IntoArgs) -> Result<(), EmitError> {
        self.emit_event(event, args.into_args()?, false)
    }

    pub(crate) fn emit_event(&self, event: &str, args: Vec<Value>, volatile: bool) -> Result<(), EmitError> {
        check_reserved(event)?;
        if !self.connected() {
            return Err(EmitError::Disconnected);
        }
        self.notify_outgoing(event, &args);
        let adapter = self.inner.ns.adapter();
        if adapter.local().recovery_enabled() && !volatile {
            // Through the adapter, so the packet gets an offset and is kept for recovery: here, or in the
            // cluster when the adapter shares sessions across servers (as the reference does).
            let packet = Packet::event(self.namespace_name(), event, args, None);
            let mut opts =
                BroadcastOptions { rooms: HashSet::from([self.inner.id.clone()]), ..BroadcastOptions::default() };
            opts.flags.local = !adapter.shares_sessions();
            // An adapter that cannot reach the cluster delivers it here and says so; the event went out.
            let _ = adapter.broadcast(packet, opts);
            return Ok(());
        }
        self.send_args(ArgsPacket::Event { name: event, ack_id: None }, &args, volatile)
    }

    /// Emits with an acknowledgement timeout.
    pub fn timeout(&self, timeout: Duration) -> SocketEmitter {
        SocketEmitter { timeout: Some(timeout), ..self.emitter() }
    }

    /// Emits that are dropped if the transport cannot take them right now.
    pub fn volatile(&self) -> SocketEmitter {
        SocketEmitter { volatile: true, ..self.emitter() }
    }

    /// Sets the compress flag. It travels with broadcasts (adapters carry it), but the WebSocket compresses by
    /// its permessage-deflate threshold alone: `compress(false)` does not yet turn compression off for one
    /// message.
    pub fn compress(&self, compress: bool) -> SocketEmitter {
        SocketEmitter { compress, ..self.emitter() }
    }

    pub(crate) fn emitter(&self) -> SocketEmitter {
        SocketEmitter { socket: self.clone(), timeout: None, volatile: false, compress: true }
    }

    /// A broadcast to these rooms, excluding this socket.
    pub fn to(&self, rooms: impl IntoRooms) -> BroadcastOperator {
        self.broadcast().to(rooms)
    }

    /// Same as [`Socket::to`].
    pub fn in_(&self, rooms: impl IntoRooms) -> BroadcastOperator {
        self.to(rooms)
    }

    /// A broadcast to every socket except those in these rooms and this socket.
    pub fn except(&self, rooms: impl IntoRooms) -> BroadcastOperator {
        self.broadcast().except(rooms)
    }

    /// A broadcast to every other socket of the namespace.
    pub fn broadcast(&self) -> BroadcastOperator {
        self.inner.ns.broadcast().except(self.id())
    }

    /// A broadcast (excluding this socket) that skips other servers.
    pub fn local(&self) -> BroadcastOperator {
        self.broadcast().local()
    }

    /// Encodes and queues a packet for this client.
    pub(crate) fn send_packet(&self, packet: &Packet, volatile: bool) -> Result<(), EmitError> {
        self.send_encoded(self.inner.ns.inner.encode(packet), volatile)
    }

    /// Encodes and queues an EVENT or ACK packet of this socket's namespace, built from its parts.
    pub(crate) fn send_args(&self, packet: ArgsPacket<'_>, args: &[Value], volatile: bool) -> Result<(), EmitError> {
        self.send_encoded(self.inner.ns.inner.encode_args(packet, args), volatile)
    }

    /// Queues the frames of one packet encoded for this socket alone.
    pub(crate) fn send_encoded(&self, frames: Frames, volatile: bool) -> Result<(), EmitError> {
        let es = self.engine();
        let res = match (frames, volatile) {
            (frames, true) => es.send_volatile(frames.into_vec()),
            (Frames::One(frame), false) => es.send_frame(frame),
            (Frames::Many(frames), false) => es.send_frames(frames),
        };
        res.map_err(send_error)
    }

    /// Queues encoded frames (shared with other recipients of a broadcast).
    pub(crate) fn send_frames(&self, frames: &[Frame], volatile: bool) -> Result<(), EmitError> {
        send_shared_frames(self.engine(), frames, volatile)
    }

    pub(crate) fn register_ack(&self, id: u64, callback: AckCallback) {
        self.inner.acks.lock().expect("poisoned").get_or_insert_default().insert(id, callback);
    }

    pub(crate) fn cancel_ack(&self, id: u64) {
        if let Some(acks) = self.inner.acks.lock().expect("poisoned").as_mut() {
            acks.remove(&id);
        }
    }

    pub(crate) fn notify_outgoing(&self, event: &str, args: &[Value]) {
        if !self.inner.has_outgoing.load(Ordering::Acquire) {
            return;
        }
        let listeners: Vec<AnyListener> =
            self.inner.listeners.read().expect("poisoned").rare().any_outgoing.iter().map(|(_, l)| l.clone()).collect();
        for l in listeners {
            contain(|| l(self, event, args));
        }
    }

    /// Emits an event and waits for the client's acknowledgement (until it comes or the socket
    /// disconnects; see [`Socket::timeout`]).
    pub async fn emit_with_ack(&self, event: &str, args: impl IntoArgs) -> Result<Vec<Value>, AckError> {
        self.emitter().emit_with_ack(event, args).await
    }
}

/// Emits to one socket with options: [`Socket::timeout`], [`Socket::volatile`], [`Socket::compress`].
#[derive(Debug, Clone)]
pub struct SocketEmitter {
    socket: Socket,
    timeout: Option<Duration>,
    volatile: bool,
    compress: bool,
}

impl SocketEmitter {
    /// Sets the acknowledgement timeout.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = Some(timeout);
        self
    }

    /// Makes the emit volatile.
    pub fn volatile(mut self) -> Self {
        self.volatile = true;
        self
    }

    /// Sets the compress flag.
    pub fn compress(mut self, compress: bool) -> Self {
        self.compress = compress;
        self
    }

    /// Emits the event.
    pub fn emit(&self, event: &str, args: impl IntoArgs) -> Result<(), EmitError> {
        self.socket.emit_event(event, args.into_args()?, self.volatile)
    }

    /// Emits the event and waits for the acknowledgement (at most the timeout, if one is set).
    pub async fn emit_with_ack(&self, event: &str, args: impl IntoArgs) -> Result<Vec<Value>, AckError> {
        check_reserved(event)?;
        let s = &self.socket;
        if !s.connected() {
            return Err(AckError::Disconnected);
        }
        let args = args.into_args().map_err(EmitError::from)?;
        s.notify_outgoing(event, &args);
        let id = s.inner.ns.inner.next_ack_id();
        let (tx, rx) = oneshot::channel();
        s.register_ack(
            id,
            Box::new(move |res| {
                let _ = tx.send(res);
            }),
        );
        if let Err(e) = s.send_args(ArgsPacket::Event { name: event, ack_id: Some(id) }, &args, self.volatile) {
            s.cancel_ack(id);
            return Err(e.into());
        }
        let sent = std::time::Instant::now();
        let result = match self.timeout {
            Some(t) => match tokio::time::timeout(t, rx).await {
                Ok(r) => r,
                Err(_) => {
                    s.cancel_ack(id);
                    crate::telemetry::METRICS.acks_timed_out.increment(1);
                    tracing::debug!(target: "socketio_server::event", parent: s.span(), event, "ack timed out");
                    return Err(AckError::Timeout);
                }
            },
            None => rx.await,
        };
        let result = result.unwrap_or(Err(AckError::Disconnected));
        if result.is_ok() {
            crate::telemetry::METRICS.ack_seconds.record(sent.elapsed().as_secs_f64());
        }
        result
    }
}
