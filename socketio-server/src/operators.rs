//! Broadcast operators: immutable, composable descriptions of "which sockets" (`to`, `except`) and "how"
//! (`local`, `volatile`, `compress`, `timeout`), ending in an action (`emit`, `emit_with_ack`,
//! `fetch_sockets`, `sockets_join`, `sockets_leave`, `disconnect_sockets`). Every action goes through the
//! namespace's adapter, so it reaches other servers when a cluster adapter is in place.

use std::collections::HashSet;
use std::time::Duration;

use socketio_proto::{Packet, Value};
use tokio::sync::mpsc;

use crate::adapter::{AckUpdate, BroadcastOptions, Room, SocketInfo};
use crate::event::{AckError, BroadcastAckError, EmitError, IntoArgs, check_reserved};
use crate::namespace::Namespace;

/// Room names for `to`, `except`, `join`: a `&str`, a `String`, or a list of them.
pub trait IntoRooms {
    /// The rooms.
    fn into_rooms(self) -> Vec<Room>;
}

impl IntoRooms for &str {
    fn into_rooms(self) -> Vec<Room> {
        vec![Room::from(self)]
    }
}

impl IntoRooms for String {
    fn into_rooms(self) -> Vec<Room> {
        vec![Room::from(self)]
    }
}

impl IntoRooms for &String {
    fn into_rooms(self) -> Vec<Room> {
        vec![Room::from(self.as_str())]
    }
}

impl IntoRooms for Room {
    fn into_rooms(self) -> Vec<Room> {
        vec![self]
    }
}

impl<T: IntoRooms> IntoRooms for Vec<T> {
    fn into_rooms(self) -> Vec<Room> {
        self.into_iter().flat_map(IntoRooms::into_rooms).collect()
    }
}

impl<T: IntoRooms + Clone, const N: usize> IntoRooms for [T; N] {
    fn into_rooms(self) -> Vec<Room> {
        self.into_iter().flat_map(IntoRooms::into_rooms).collect()
    }
}

/// A broadcast being described. Each method returns a new operator; the original is unchanged.
#[derive(Debug, Clone)]
pub struct BroadcastOperator {
    ns: Namespace,
    opts: BroadcastOptions,
}

impl BroadcastOperator {
    pub(crate) fn new(ns: Namespace) -> Self {
        BroadcastOperator { ns, opts: BroadcastOptions::default() }
    }

    /// Targets the sockets in these rooms too.
    pub fn to(&self, rooms: impl IntoRooms) -> Self {
        let mut next = self.clone();
        next.opts.rooms.extend(rooms.into_rooms());
        next
    }

    /// Same as [`BroadcastOperator::to`].
    pub fn in_(&self, rooms: impl IntoRooms) -> Self {
        self.to(rooms)
    }

    /// Excludes the sockets in these rooms.
    pub fn except(&self, rooms: impl IntoRooms) -> Self {
        let mut next = self.clone();
        next.opts.except.extend(rooms.into_rooms());
        next
    }

    /// Only this server's sockets.
    pub fn local(&self) -> Self {
        let mut next = self.clone();
        next.opts.flags.local = true;
        next
    }

    /// Drop the packet for sockets whose transport cannot take it right now.
    pub fn volatile(&self) -> Self {
        let mut next = self.clone();
        next.opts.flags.volatile = true;
        next
    }

    /// Sets the compress flag.
    pub fn compress(&self, compress: bool) -> Self {
        let mut next = self.clone();
        next.opts.flags.compress = Some(compress);
        next
    }

    /// Sets the acknowledgement timeout of [`BroadcastOperator::emit_with_ack`].
    pub fn timeout(&self, timeout: Duration) -> Self {
        let mut next = self.clone();
        next.opts.flags.timeout = Some(timeout);
        next
    }

    /// Emits to the other servers and waits for one answer from each, at most this operator's timeout
    /// (else [`crate::namespace::SERVER_ACK_TIMEOUT`]); see [`Namespace::server_side_emit_with_ack`].
    pub async fn server_side_emit_with_ack<T: serde::de::DeserializeOwned + 'static>(
        &self,
        event: &str,
        args: impl IntoArgs,
    ) -> Result<Vec<T>, AckError> {
        let timeout = self.opts.flags.timeout.unwrap_or(crate::namespace::SERVER_ACK_TIMEOUT);
        self.ns.server_side_emit_with_ack_within(event, args, timeout).await
    }

    /// The targets and flags.
    pub fn options(&self) -> &BroadcastOptions {
        &self.opts
    }

    /// Emits to every targeted socket, each once, encoding the packet once.
    pub fn emit(&self, event: &str, args: impl IntoArgs) -> Result<(), EmitError> {
        check_reserved(event)?;
        let packet = Packet::event(self.ns.name(), event, args.into_args()?, None);
        self.ns.adapter().broadcast(packet, self.opts.clone()).map_err(|e| EmitError::Adapter(e.0))
    }

    /// Emits and gathers every targeted client's acknowledgement. On timeout (see
    /// [`BroadcastOperator::timeout`]) the error carries the responses received in time. Clients that
    /// disconnect before answering are not waited for.
    pub async fn emit_with_ack(&self, event: &str, args: impl IntoArgs) -> Result<Vec<Vec<Value>>, BroadcastAckError> {
        check_reserved(event).map_err(|e| BroadcastAckError { error: e.into(), responses: Vec::new() })?;
        let args = args
            .into_args()
            .map_err(|e| BroadcastAckError { error: AckError::Emit(e.into()), responses: Vec::new() })?;
        let id = self.ns.inner.next_ack_id();
        let packet = Packet::event(self.ns.name(), event, args, Some(id));
        let (tx, mut rx) = mpsc::unbounded_channel();
        if let Err(e) = self.ns.adapter().broadcast_with_ack(packet, self.opts.clone(), tx) {
            return Err(BroadcastAckError { error: AckError::Emit(EmitError::Adapter(e.0)), responses: Vec::new() });
        }
        let mut responses = Vec::new();
        let mut expected = 0usize;
        let mut lost = 0usize;
        let mut counts_complete = false;
        let collect = async {
            while let Some(update) = rx.recv().await {
                match update {
                    AckUpdate::ClientCount(n) => expected += n,
                    AckUpdate::CountsComplete => counts_complete = true,
                    AckUpdate::Response(args) => responses.push(args),
                    AckUpdate::Lost => lost += 1,
                }
                if counts_complete && responses.len() + lost >= expected {
                    return true;
                }
            }
            counts_complete && responses.len() + lost >= expected
        };
        let complete = match self.opts.flags.timeout {
            Some(t) => tokio::time::timeout(t, collect).await.unwrap_or(false),
            None => collect.await,
        };
        if complete && lost == 0 {
            Ok(responses)
        } else if complete {
            Err(BroadcastAckError { error: AckError::Disconnected, responses })
        } else {
            crate::telemetry::METRICS.acks_timed_out.increment(1);
            tracing::debug!(target: "socketio_server::event", event, received = responses.len(), "broadcast ack timed out");
            Err(BroadcastAckError { error: AckError::Timeout, responses })
        }
    }

    /// The targeted sockets, on every server.
    pub async fn fetch_sockets(&self) -> Result<Vec<RemoteSocket>, EmitError> {
        let infos = self.ns.adapter().fetch_sockets(self.opts.clone()).await.map_err(|e| EmitError::Adapter(e.0))?;
        Ok(infos.into_iter().map(|info| RemoteSocket { info, ns: self.ns.clone() }).collect())
    }

    /// Makes the targeted sockets join rooms, on every server.
    pub async fn sockets_join(&self, rooms: impl IntoRooms) -> Result<(), EmitError> {
        self.ns.adapter().add_sockets(self.opts.clone(), rooms.into_rooms()).await.map_err(|e| EmitError::Adapter(e.0))
    }

    /// Makes the targeted sockets leave rooms, on every server.
    pub async fn sockets_leave(&self, rooms: impl IntoRooms) -> Result<(), EmitError> {
        self.ns.adapter().del_sockets(self.opts.clone(), rooms.into_rooms()).await.map_err(|e| EmitError::Adapter(e.0))
    }

    /// Disconnects the targeted sockets, on every server.
    pub async fn disconnect_sockets(&self, close: bool) -> Result<(), EmitError> {
        self.ns.adapter().disconnect_sockets(self.opts.clone(), close).await.map_err(|e| EmitError::Adapter(e.0))
    }
}

/// A socket returned by `fetch_sockets`: on this server or another. Its methods act through the adapter.
#[derive(Debug, Clone)]
pub struct RemoteSocket {
    info: SocketInfo,
    ns: Namespace,
}

impl RemoteSocket {
    /// The socket id.
    pub fn id(&self) -> &str {
        &self.info.id
    }

    /// The handshake.
    pub fn handshake(&self) -> &crate::handshake::Handshake {
        &self.info.handshake
    }

    /// The rooms, when it was fetched.
    pub fn rooms(&self) -> HashSet<&str> {
        self.info.rooms.iter().map(String::as_str).collect()
    }

    /// Its `data`, when it was fetched.
    pub fn data(&self) -> &Value {
        &self.info.data
    }

    /// Everything that was fetched.
    pub fn info(&self) -> &SocketInfo {
        &self.info
    }

    fn only(&self) -> BroadcastOperator {
        self.ns.broadcast().to(self.info.id.as_str())
    }

    /// Emits to this socket.
    pub fn emit(&self, event: &str, args: impl IntoArgs) -> Result<(), EmitError> {
        self.only().emit(event, args)
    }

    /// Makes it join rooms.
    pub async fn join(&self, rooms: impl IntoRooms) -> Result<(), EmitError> {
        self.only().sockets_join(rooms).await
    }

    /// Makes it leave rooms.
    pub async fn leave(&self, rooms: impl IntoRooms) -> Result<(), EmitError> {
        self.only().sockets_leave(rooms).await
    }

    /// Disconnects it.
    pub async fn disconnect(&self, close: bool) -> Result<(), EmitError> {
        self.only().disconnect_sockets(close).await
    }
}
