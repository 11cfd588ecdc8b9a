//! One Socket.IO connection, sans-IO: the state of its namespaces above one Engine.IO session.
//!
//! A [`Connection`] is driven like [`engineio_proto::Session`]: the runtime feeds it the session's messages
//! ([`Connection::handle_message`]) and the application's answers ([`Connection::accept`],
//! [`Connection::refuse`], [`Connection::disconnect`], [`Connection::emit`], [`Connection::ack`]), every input
//! with the current time; it pulls the frames to send ([`Connection::poll_transmit`], handed to
//! `Session::send`) and what happened ([`Connection::poll_event`]); and it calls
//! [`Connection::handle_timeout`] at [`Connection::poll_timeout`]. It reads no clock and does no I/O.
//!
//! What it keeps, as the reference server's `Client` and `Socket` do:
//! - the connect flow: a CONNECT to a namespace becomes [`ConnectionEvent::Connect`] (its auth object carries
//!   the recovery `pid`/`offset`, read by [`recovery`]); the application accepts it with a socket id
//!   (the CONNECT reply `{"sid", "pid"?}`) or refuses it (CONNECT_ERROR with a message and data). A CONNECT
//!   to a namespace being joined or joined already is ignored;
//! - the connect timeout: a connection that has joined no namespace `connect_timeout` after it opened is
//!   closed ([`CloseCause::ConnectTimeout`]);
//! - DISCONNECT both ways, and packets for a namespace not joined ignored;
//! - acknowledgements: ids allocated per connection (or given by the application, as a broadcast shares one
//!   id among many sockets), the table of those awaited, each with an optional deadline;
//! - binary assembly and the decode errors that close the connection ([`CloseCause::Decode`]), through the
//!   parser's [`Decoder`].
//!
//! # Socket.IO 2 clients
//!
//! A connection made with [`ConnectionConfig::v2_client`] (a client of Socket.IO 2, which speaks Engine.IO
//! v3 and Socket.IO protocol 4) follows the reference's rules for them: it joins the main namespace
//! without asking (a [`ConnectionEvent::Connect`] for `/` with an empty auth is the first event); the query
//! string of a namespace's CONNECT (`0/chat?token=x,`) is its auth object (`{"token":"x"}`), its payload
//! ignored; the CONNECT reply carries no payload (`40`, `40/chat,`); a refusal carries the data alone, or
//! the message as a string when there is none (`44/chat,"not allowed"`), which the client reports as its
//! `error` event. Packets are otherwise the same.

use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant};

use engineio_proto::Message;

use crate::error::DecodeError;
use crate::packet::{ArgsPacket, Packet, PacketType};
use crate::parser::{Decoder, Frames, Parser};
use crate::value::{Map, Value};

/// The settings of a connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConnectionConfig {
    /// How long a connection may stay without a namespace before it is closed (reference default 45 s).
    pub connect_timeout: Duration,
    /// The client is a Socket.IO 2 client (its Engine.IO session speaks v3): see the module documentation.
    pub v2_client: bool,
}

impl Default for ConnectionConfig {
    fn default() -> Self {
        Self { connect_timeout: Duration::from_secs(45), v2_client: false }
    }
}

/// The recovery data of a CONNECT (the client's `pid` and `offset`), for connection state recovery.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Recovery {
    /// The private id of the session to recover.
    pub pid: String,
    /// The offset of the last packet the client received.
    pub offset: String,
}

/// The recovery data in a CONNECT's auth object: its `pid` and `offset`, when both are strings (as the
/// reference checks them before it looks for the session).
pub fn recovery(auth: &Value) -> Option<Recovery> {
    match (auth.get("pid"), auth.get("offset")) {
        (Some(Value::String(pid)), Some(Value::String(offset))) => {
            Some(Recovery { pid: pid.clone(), offset: offset.clone() })
        }
        _ => None,
    }
}

/// Why the connection must close.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CloseCause {
    /// The client sent something that is not Socket.IO (the reference's "parse error").
    Decode(DecodeError),
    /// No namespace was joined within `connect_timeout`.
    ConnectTimeout,
}

/// Why an awaited acknowledgement will not come.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AckFailure {
    /// Its deadline passed.
    Timeout,
    /// Its namespace was left, or the connection closed.
    Disconnected,
}

/// What happened, for the application.
#[derive(Debug, Clone, PartialEq)]
pub enum ConnectionEvent {
    /// The client asks to join `nsp`: answer with [`Connection::accept`] or [`Connection::refuse`] (at once,
    /// or after asynchronous middlewares).
    Connect {
        /// The namespace.
        nsp: String,
        /// The auth object (`{}` when the client sent none); see [`recovery`].
        auth: Value,
    },
    /// An event on a joined namespace.
    Event {
        /// The namespace.
        nsp: String,
        /// The event name (a numeric name as its decimal text).
        name: String,
        /// The arguments after the name.
        args: Vec<Value>,
        /// The ack id, if the client waits for an acknowledgement ([`Connection::ack`]).
        ack: Option<u64>,
    },
    /// The client acknowledged an event sent with an ack id.
    Ack {
        /// The namespace.
        nsp: String,
        /// The ack id.
        id: u64,
        /// The arguments.
        args: Vec<Value>,
    },
    /// An acknowledgement awaited with [`Connection::emit`] or [`Connection::expect_ack`] will not come.
    AckFailed {
        /// The namespace.
        nsp: String,
        /// The ack id.
        id: u64,
        /// Why.
        reason: AckFailure,
    },
    /// The client left a joined namespace (DISCONNECT).
    Disconnect {
        /// The namespace.
        nsp: String,
    },
    /// The connection must close: close the Engine.IO session. No event follows.
    Close(CloseCause),
}

/// A misuse of the connection by the application.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ConnectionError {
    /// The namespace is not being joined (for `accept`/`refuse`) or not joined (for the rest).
    #[error("the namespace is not in the state this call needs")]
    NotConnected,
    /// The connection has closed.
    #[error("the connection is closed")]
    Closed,
}

/// The acknowledgements awaited, by namespace and id, with their deadlines; and the next id to give.
#[derive(Debug, Default)]
struct Acks {
    awaited: BTreeMap<(String, u64), Option<Instant>>,
    next_id: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum NsState {
    Connecting,
    Connected,
}

/// One Socket.IO connection; see the module documentation.
///
/// Its memory is kept small for idle connections: beyond one small entry per namespace joined, nothing stays
/// allocated between inputs (the queues give their room back once drained).
pub struct Connection {
    parser: Arc<dyn Parser>,
    decoder: Box<dyn Decoder>,
    /// Usually one or two: a vector, searched in order.
    namespaces: Vec<(String, NsState)>,
    connect_deadline: Option<Instant>,
    /// Acknowledgements awaited; made on first use (most connections of a server that acks nothing never
    /// need it).
    acks: Option<Box<Acks>>,
    transmits: VecDeque<Frames>,
    events: VecDeque<ConnectionEvent>,
    closed: bool,
    v2_client: bool,
}

impl std::fmt::Debug for Connection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Connection")
            .field("namespaces", &self.namespaces)
            .field("connect_deadline", &self.connect_deadline)
            .field("acks", &self.pending_acks())
            .field("closed", &self.closed)
            .finish_non_exhaustive()
    }
}

impl Connection {
    /// A connection that has just opened at `now`, speaking `parser`'s wire format.
    pub fn new(parser: Arc<dyn Parser>, config: ConnectionConfig, now: Instant) -> Self {
        let mut conn = Connection {
            decoder: parser.decoder(),
            parser,
            namespaces: Vec::new(),
            connect_deadline: Some(now + config.connect_timeout),
            acks: None,
            transmits: VecDeque::new(),
            events: VecDeque::new(),
            closed: false,
            v2_client: config.v2_client,
        };
        if config.v2_client {
            // A Socket.IO 2 client is in the main namespace without asking.
            conn.set_state("/", Some(NsState::Connecting));
            conn.push_event(ConnectionEvent::Connect { nsp: "/".to_owned(), auth: Value::Object(Map::new()) });
        }
        conn
    }

    /// Whether the connection has closed (a [`ConnectionEvent::Close`] was queued, or
    /// [`Connection::handle_closed`] was called).
    pub fn is_closed(&self) -> bool {
        self.closed
    }

    /// Whether `nsp` is joined.
    pub fn is_connected(&self, nsp: &str) -> bool {
        self.state_of(nsp) == Some(NsState::Connected)
    }

    fn state_of(&self, nsp: &str) -> Option<NsState> {
        self.namespaces.iter().find(|(n, _)| n == nsp).map(|(_, s)| *s)
    }

    fn set_state(&mut self, nsp: &str, state: Option<NsState>) {
        self.namespaces.retain(|(n, _)| n != nsp);
        if let Some(state) = state {
            self.namespaces.push((nsp.to_owned(), state));
        }
        self.namespaces.shrink_to_fit();
    }

    fn push_event(&mut self, event: ConnectionEvent) {
        self.events.push_back(event);
    }

    /// The number of acknowledgements awaited.
    pub fn pending_acks(&self) -> usize {
        self.acks.as_ref().map_or(0, |a| a.awaited.len())
    }

    fn acks(&mut self) -> &mut Acks {
        self.acks.get_or_insert_default()
    }

    /// A message of the Engine.IO session. Deadlines due at `now` fire first.
    pub fn handle_message(&mut self, now: Instant, message: Message) {
        self.handle_timeout(now);
        if self.closed {
            return;
        }
        match self.decoder.decode(message) {
            Ok(Some(packet)) => self.handle_packet(packet),
            Ok(None) => {}
            Err(e) => self.close(CloseCause::Decode(e)),
        }
    }

    fn handle_packet(&mut self, packet: Packet) {
        let Packet { kind, nsp, id, data } = packet;
        match kind {
            PacketType::Connect => {
                let (nsp, auth) = if self.v2_client {
                    // The namespace's query string is the auth; a payload is ignored, as the reference.
                    match nsp.split_once('?') {
                        Some((path, query)) => (path.to_owned(), query_object(query)),
                        None => (nsp, Value::Object(Map::new())),
                    }
                } else {
                    (nsp, data.unwrap_or_else(|| Value::Object(Map::new())))
                };
                if self.state_of(&nsp).is_some() {
                    return;
                }
                self.set_state(&nsp, Some(NsState::Connecting));
                self.push_event(ConnectionEvent::Connect { nsp, auth });
            }
            _ if !self.is_connected(&nsp) => {}
            PacketType::Event | PacketType::BinaryEvent => {
                let Some((name, args)) = Packet { kind, nsp: String::new(), id, data }.into_event() else { return };
                self.push_event(ConnectionEvent::Event { nsp, name, args, ack: id });
            }
            PacketType::Ack | PacketType::BinaryAck => {
                let Some(id) = id else { return };
                // An ack the application does not await through this table (or one already timed out)
                // is still reported: it may keep its own.
                if let Some(acks) = &mut self.acks {
                    acks.awaited.remove(&(nsp.clone(), id));
                }
                let args = match data {
                    Some(Value::Array(a)) => a,
                    _ => Vec::new(),
                };
                self.push_event(ConnectionEvent::Ack { nsp, id, args });
            }
            PacketType::Disconnect => {
                self.set_state(&nsp, None);
                self.fail_acks_of(&nsp);
                self.push_event(ConnectionEvent::Disconnect { nsp });
            }
            PacketType::ConnectError => {}
        }
    }

    /// Accepts the CONNECT to `nsp`: the client gets the CONNECT reply with the socket id `sid` (and `pid`,
    /// with connection state recovery), and the connect timeout stops.
    pub fn accept(&mut self, now: Instant, nsp: &str, sid: &str, pid: Option<&str>) -> Result<(), ConnectionError> {
        self.handle_timeout(now);
        self.check_state(nsp, NsState::Connecting)?;
        self.set_state(nsp, Some(NsState::Connected));
        self.connect_deadline = None;
        let reply = if self.v2_client {
            self.parser.encode_frames(&Packet::connect(nsp, None))
        } else {
            self.parser.encode_connect_reply(nsp, sid, pid)
        };
        self.transmits.push_back(reply);
        Ok(())
    }

    /// Refuses the CONNECT to `nsp` with CONNECT_ERROR `{"message", "data"?}`.
    pub fn refuse(
        &mut self,
        now: Instant,
        nsp: &str,
        message: &str,
        data: Option<Value>,
    ) -> Result<(), ConnectionError> {
        self.handle_timeout(now);
        self.check_state(nsp, NsState::Connecting)?;
        self.set_state(nsp, None);
        let packet = if self.v2_client {
            let data = data.unwrap_or_else(|| Value::from(message));
            Packet { kind: PacketType::ConnectError, nsp: nsp.to_owned(), id: None, data: Some(data) }
        } else {
            Packet::connect_error(nsp, message, data)
        };
        self.transmits.push_back(self.parser.encode_frames(&packet));
        Ok(())
    }

    /// Leaves `nsp` from the server side: the client gets a DISCONNECT, and the acknowledgements awaited on
    /// it fail.
    pub fn disconnect(&mut self, now: Instant, nsp: &str) -> Result<(), ConnectionError> {
        self.handle_timeout(now);
        self.check_state(nsp, NsState::Connected)?;
        self.set_state(nsp, None);
        self.fail_acks_of(nsp);
        self.transmits.push_back(self.parser.encode_frames(&Packet::disconnect(nsp)));
        Ok(())
    }

    /// Sends event `name` with `args` on `nsp`. With `ack: Some(timeout)` (`None` inside: no deadline) the
    /// connection allocates an ack id, awaits the acknowledgement and returns the id.
    pub fn emit(
        &mut self,
        now: Instant,
        nsp: &str,
        name: &str,
        args: &[Value],
        ack: Option<Option<Duration>>,
    ) -> Result<Option<u64>, ConnectionError> {
        self.handle_timeout(now);
        self.check_state(nsp, NsState::Connected)?;
        let ack_id = ack.map(|timeout| {
            let acks = self.acks();
            let id = acks.next_id;
            acks.next_id += 1;
            acks.awaited.insert((nsp.to_owned(), id), timeout.map(|t| now + t));
            id
        });
        self.transmits.push_back(self.parser.encode_args(nsp, ArgsPacket::Event { name, ack_id }, args));
        Ok(ack_id)
    }

    /// Awaits an acknowledgement with an id the application allocated (a broadcast sends one id to many
    /// sockets), until `deadline` if given.
    pub fn expect_ack(
        &mut self,
        now: Instant,
        nsp: &str,
        id: u64,
        deadline: Option<Instant>,
    ) -> Result<(), ConnectionError> {
        self.handle_timeout(now);
        self.check_state(nsp, NsState::Connected)?;
        self.acks().awaited.insert((nsp.to_owned(), id), deadline);
        Ok(())
    }

    /// Acknowledges the client's event `id` on `nsp` with `args`.
    pub fn ack(&mut self, now: Instant, nsp: &str, id: u64, args: &[Value]) -> Result<(), ConnectionError> {
        self.handle_timeout(now);
        self.check_state(nsp, NsState::Connected)?;
        self.transmits.push_back(self.parser.encode_args(nsp, ArgsPacket::Ack { id }, args));
        Ok(())
    }

    /// The Engine.IO session closed: every namespace is left and every awaited acknowledgement fails.
    /// Queues nothing to send.
    pub fn handle_closed(&mut self) {
        if self.closed {
            return;
        }
        self.closed = true;
        self.namespaces = Vec::new();
        self.connect_deadline = None;
        self.transmits = VecDeque::new();
        let awaited = self.acks.take().map(|a| a.awaited).unwrap_or_default();
        for (nsp, id) in awaited.into_keys() {
            self.push_event(ConnectionEvent::AckFailed { nsp, id, reason: AckFailure::Disconnected });
        }
    }

    /// Fires the deadlines due at `now`: the connect timeout, and acknowledgements that did not come in time
    /// (in the order of their deadlines).
    pub fn handle_timeout(&mut self, now: Instant) {
        if self.closed {
            return;
        }
        if self.connect_deadline.is_some_and(|d| d <= now) {
            self.connect_deadline = None;
            if !self.namespaces.iter().any(|(_, s)| *s == NsState::Connected) {
                self.close(CloseCause::ConnectTimeout);
                return;
            }
        }
        let Some(acks) = &mut self.acks else { return };
        let mut due: Vec<(Instant, String, u64)> = acks
            .awaited
            .iter()
            .filter_map(|((nsp, id), d)| d.filter(|d| *d <= now).map(|d| (d, nsp.clone(), *id)))
            .collect();
        due.sort();
        for (_, nsp, id) in due {
            acks.awaited.remove(&(nsp.clone(), id));
            self.events.push_back(ConnectionEvent::AckFailed { nsp, id, reason: AckFailure::Timeout });
        }
    }

    /// When [`Connection::handle_timeout`] must be called next, if ever.
    #[must_use]
    pub fn poll_timeout(&self) -> Option<Instant> {
        if self.closed {
            return None;
        }
        let acks = self.acks.iter().flat_map(|a| a.awaited.values().flatten().copied());
        acks.chain(self.connect_deadline).min()
    }

    /// The next frames to send on the Engine.IO session (each with `Session::send`, in order).
    #[must_use]
    pub fn poll_transmit(&mut self) -> Option<Frames> {
        pop_or_release(&mut self.transmits)
    }

    /// The next event for the application.
    #[must_use]
    pub fn poll_event(&mut self) -> Option<ConnectionEvent> {
        pop_or_release(&mut self.events)
    }

    fn check_state(&self, nsp: &str, wanted: NsState) -> Result<(), ConnectionError> {
        if self.closed {
            return Err(ConnectionError::Closed);
        }
        if self.state_of(nsp) != Some(wanted) {
            return Err(ConnectionError::NotConnected);
        }
        Ok(())
    }

    fn fail_acks_of(&mut self, nsp: &str) {
        let Some(acks) = &mut self.acks else { return };
        let ids: Vec<u64> = acks.awaited.keys().filter(|(n, _)| n == nsp).map(|(_, id)| *id).collect();
        for id in ids {
            acks.awaited.remove(&(nsp.to_owned(), id));
            self.events.push_back(ConnectionEvent::AckFailed {
                nsp: nsp.to_owned(),
                id,
                reason: AckFailure::Disconnected,
            });
        }
    }

    fn close(&mut self, cause: CloseCause) {
        self.handle_closed();
        self.push_event(ConnectionEvent::Close(cause));
    }
}

/// The next item of a queue; a drained queue gives its room back (idle connections keep none).
/// A query string as an object of strings, decoded as the reference's `URLSearchParams` (the last of a
/// repeated key wins).
fn query_object(query: &str) -> Value {
    let mut map = Map::new();
    for (key, value) in engineio_proto::handshake::query_pairs(query) {
        map.insert(key.into_owned(), Value::String(value.into_owned()));
    }
    Value::Object(map)
}

fn pop_or_release<T>(queue: &mut VecDeque<T>) -> Option<T> {
    let next = queue.pop_front();
    if next.is_none() && queue.capacity() > 0 {
        *queue = VecDeque::new();
    }
    next
}
