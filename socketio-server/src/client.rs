//! One Engine.IO connection seen from Socket.IO: a thin driver of [`socketio_proto::Connection`], the
//! sans-IO state of the connection's namespaces (decoding with binary assembly, the connect flow, the connect
//! timeout, DISCONNECT both ways, decode errors). The driver runs on the session's own task: it feeds the
//! connection the session's messages with the task's time, carries out what the connection asks (frames to
//! send, the session to close) and turns its events into the server's objects: a CONNECT runs the
//! namespace's middlewares (which may wait) and ends in `accept` or `refuse`, events and acks go to the
//! socket of their namespace.
//!
//! The connection sits behind a mutex because the answer to a CONNECT, and a server-side DISCONNECT, come
//! from other tasks; they only add frames to send (which go out under the lock, so in order). Events are
//! taken by the session task alone.

use std::sync::{Arc, Mutex, Weak};
use std::time::Instant;

use engineio_proto::{CloseReason, Message};
use socketio_proto::{CloseCause, Connection, ConnectionConfig, ConnectionEvent, Value};

use crate::namespace::Namespace;
use crate::server::ServerInner;
use crate::socket::PendingHandshake;
use crate::socket::{DisconnectReason, Socket};
use crate::types::{SocketId, random_id};

/// Now, on tokio's clock (the one the session tasks run on): for the inputs that come from other tasks.
fn now() -> Instant {
    tokio::time::Instant::now().into_std()
}

/// What the tasks of a connection share: the engine socket, the protocol state, and the sockets by
/// namespace.
pub(crate) struct ClientShared {
    pub(crate) engine_socket: engineio_server::Socket,
    pub(crate) server: Weak<ServerInner>,
    conn: Mutex<Connection>,
    /// By namespace; looked up when a packet is not for the socket the `Client` remembers. Most
    /// connections join one or two namespaces: a vector, searched in order, as small as it gets.
    sockets: Mutex<Vec<(String, Socket)>>,
}

impl ClientShared {
    fn socket_for(&self, nsp: &str) -> Option<Socket> {
        self.sockets.lock().expect("poisoned").iter().find(|(n, _)| n == nsp).map(|(_, s)| s.clone())
    }

    fn add_socket(&self, nsp: String, socket: Socket) {
        let mut sockets = self.sockets.lock().expect("poisoned");
        sockets.retain(|(n, _)| *n != nsp);
        sockets.push((nsp, socket));
        sockets.shrink_to_fit();
    }

    pub(crate) fn remove_socket(&self, nsp: &str, id: &str) {
        let mut sockets = self.sockets.lock().expect("poisoned");
        sockets.retain(|(n, s)| !(n == nsp && s.id() == id));
        sockets.shrink_to_fit();
    }

    fn all_sockets(&self) -> Vec<Socket> {
        self.sockets.lock().expect("poisoned").iter().map(|(_, s)| s.clone()).collect()
    }

    /// `disconnect(true)`: every socket leaves with a DISCONNECT, then the connection closes.
    pub(crate) fn close_all(&self, reason: DisconnectReason) {
        for s in self.all_sockets() {
            if reason == DisconnectReason::ServerNamespaceDisconnect {
                s.disconnect(false);
            } else {
                s.on_close(reason);
            }
        }
        self.engine_socket.close();
    }

    /// Calls the connection, then sends the frames it queued (under its lock, so frames from different
    /// tasks keep the order in which the connection made them).
    fn with_conn<R>(&self, f: impl FnOnce(&mut Connection) -> R) -> R {
        let mut conn = self.conn.lock().expect("poisoned");
        let r = f(&mut conn);
        while let Some(frames) = conn.poll_transmit() {
            let _ = self.engine_socket.send_frames(frames.into_vec());
        }
        r
    }

    /// Answers a CONNECT with the socket's id (and private id); false if the connection closed meanwhile.
    fn accept(&self, nsp: &str, sid: &str, pid: Option<&str>) -> bool {
        self.with_conn(|c| c.accept(now(), nsp, sid, pid)).is_ok()
    }

    /// Refuses a CONNECT with CONNECT_ERROR.
    fn refuse(&self, nsp: &str, message: &str, data: Option<Value>) {
        let _ = self.with_conn(|c| c.refuse(now(), nsp, message, data));
    }

    /// The server makes the client leave `nsp` (a DISCONNECT packet).
    pub(crate) fn disconnect_namespace(&self, nsp: &str) {
        let _ = self.with_conn(|c| c.disconnect(now(), nsp));
    }
}

pub(crate) struct Client {
    shared: Arc<ClientShared>,
    /// When the connection wants its timer (the connect timeout). Kept here because other tasks only ever
    /// clear it (an accepted CONNECT): a timer that fires for a deadline gone is a no-op.
    deadline: Option<Instant>,
    /// The socket the last packet went to: most connections use one namespace, and this spares the
    /// lookup (a lock and a hash) per packet. Used only while it is still connected.
    last: Option<Socket>,
    /// The long-polling POST whose messages are being delivered.
    data_request: Option<crate::event::DataRequest>,
}

impl Client {
    pub(crate) fn new(server: &Arc<ServerInner>, engine_socket: engineio_server::Socket) -> Client {
        // A client of Socket.IO 2 speaks Engine.IO v3 (served with `allow_eio3`).
        let v2_client = engine_socket.protocol() == engineio_proto::Protocol::V3;
        let config = ConnectionConfig { connect_timeout: server.config.connect_timeout, v2_client };
        let conn = Connection::new(server.config.parser.clone(), config, now());
        let deadline = conn.poll_timeout();
        let shared = Arc::new(ClientShared {
            engine_socket,
            server: Arc::downgrade(server),
            conn: Mutex::new(conn),
            sockets: Mutex::default(),
        });
        let mut client = Client { shared, deadline, last: None, data_request: None };
        if v2_client {
            // Its implicit CONNECT to the main namespace is under way at once.
            client.drive(|_| {});
        }
        client
    }

    /// Feeds the connection, then carries out its events.
    /// Feeds the connection, then carries out its events one by one, each outside the lock (application
    /// code runs there, and may call the connection from this task).
    fn drive(&mut self, f: impl FnOnce(&mut Connection)) {
        let mut next;
        (next, self.deadline) = self.shared.with_conn(|c| {
            f(c);
            (c.poll_event(), c.poll_timeout())
        });
        while let Some(event) = next {
            self.on_event(event);
            (next, self.deadline) = self.shared.with_conn(|c| (c.poll_event(), c.poll_timeout()));
        }
    }

    fn socket_of(&mut self, nsp: &str) -> Option<&Socket> {
        let cached = self.last.as_ref().is_some_and(|s| s.connected() && s.namespace_name() == nsp);
        if !cached {
            self.last = self.shared.socket_for(nsp);
        }
        self.last.as_ref()
    }

    fn on_event(&mut self, event: ConnectionEvent) {
        match event {
            ConnectionEvent::Connect { nsp, auth } => {
                let shared = self.shared.clone();
                crate::run::run_detached(Box::pin(connect(shared, nsp, auth)));
            }
            ConnectionEvent::Event { nsp, name, args, ack } => {
                let request = self.data_request.clone();
                if let Some(socket) = self.socket_of(&nsp) {
                    socket.on_event(name, args, ack, request);
                }
            }
            ConnectionEvent::Ack { nsp, id, args } => {
                if let Some(socket) = self.socket_of(&nsp) {
                    socket.on_ack(id, args);
                }
            }
            ConnectionEvent::Disconnect { nsp } => {
                if let Some(socket) = self.socket_of(&nsp) {
                    socket.clone().on_close(DisconnectReason::ClientNamespaceDisconnect);
                }
            }
            // The sockets keep their own acks (emits come from any task); none is awaited here.
            ConnectionEvent::AckFailed { .. } => {}
            ConnectionEvent::Close(cause) => {
                if let CloseCause::Decode(_) = cause {
                    for s in self.shared.all_sockets() {
                        s.on_close(DisconnectReason::ParseError);
                    }
                }
                self.shared.engine_socket.close();
            }
        }
    }
}

impl engineio_server::Connection for Client {
    fn on_message(&mut self, message: Message) {
        self.on_message_at(now(), message);
    }

    fn on_message_at(&mut self, now: Instant, message: Message) {
        self.drive(|c| c.handle_message(now, message));
    }

    fn on_upgrade(&mut self) {
        for s in self.shared.all_sockets() {
            let listeners = s.inner.listeners.read().expect("poisoned").rare().upgrade.clone();
            for l in listeners {
                crate::run::contain(|| l(&s));
            }
        }
    }

    fn on_data_request(&mut self, request: Option<std::sync::Arc<engineio_server::http::request::Parts>>) {
        self.data_request = request;
    }

    fn deadline(&self) -> Option<Instant> {
        self.deadline
    }

    fn on_deadline(&mut self, now: Instant) {
        self.drive(|c| c.handle_timeout(now));
    }

    fn on_close(&mut self, reason: CloseReason) {
        self.shared.conn.lock().expect("poisoned").handle_closed();
        self.deadline = None;
        let reason = match self.shared.server.upgrade() {
            Some(server) if server.closing.load(std::sync::atomic::Ordering::Acquire) => {
                DisconnectReason::ServerShuttingDown
            }
            _ => DisconnectReason::from_engine(reason),
        };
        for s in self.shared.all_sockets() {
            s.on_close(reason);
        }
    }
}

/// Answers the CONNECT with "server error" if its flow ends without an answer (a panic, or its task
/// dropped), so the namespace does not stay "being joined" for ever; the socket made for it, if any,
/// leaves the rooms it joined (or had restored) on the way.
struct Unanswered {
    shared: Arc<ClientShared>,
    nsp: String,
    answered: bool,
    socket: Option<(Namespace, SocketId)>,
}

impl Drop for Unanswered {
    fn drop(&mut self) {
        if !self.answered {
            if let Some((ns, id)) = self.socket.take() {
                if std::thread::panicking() {
                    // Not while unwinding: a room listener that panicked here would abort the process.
                    if let Ok(runtime) = tokio::runtime::Handle::try_current() {
                        runtime.spawn(async move { ns.adapter().del_all(&id) });
                    }
                } else {
                    ns.adapter().del_all(&id);
                }
            }
            self.shared.refuse(&self.nsp, "server error", None);
        }
    }
}

/// Joins a namespace: find or create it, recover state if asked, run the middlewares, then answer.
async fn connect(shared: Arc<ClientShared>, nsp: String, auth: Value) {
    let mut answer = Unanswered { shared: shared.clone(), nsp: nsp.clone(), answered: false, socket: None };
    let Some(server) = shared.server.upgrade() else { return };
    let v2_client = shared.engine_socket.protocol() == engineio_proto::Protocol::V3;
    let Some(ns) = server.namespace_for_connect(&nsp, &auth) else {
        answer.answered = true;
        crate::telemetry::METRICS.connects_refused.increment(1);
        tracing::info!(target: "socketio_server::socket", namespace = %nsp, "connection to an unknown namespace refused");
        // A Socket.IO 2 client gets the reference's object here (its other refusals carry a string).
        let data = v2_client.then(|| Value::Object([("message".to_owned(), Value::from("Invalid namespace"))].into()));
        shared.refuse(&nsp, "Invalid namespace", data);
        return;
    };
    // Connection state recovery is for Socket.IO 3+ clients only, as in the reference.
    let config = if v2_client { None } else { server.config.connection_state_recovery };
    let restored = match (&config, socketio_proto::connection::recovery(&auth)) {
        (Some(_), Some(r)) => ns.adapter().restore_session(r.pid.to_owned(), r.offset.to_owned()).await,
        _ => None,
    };
    let handshake = PendingHandshake { auth, at: std::time::SystemTime::now() };
    // Holds the adapter's delivery back until the recovered socket can receive broadcasts (see
    // `RestoredSession::hold`).
    let mut hold = None;
    let (socket, missed, restored_rooms) = match restored {
        Some(restored) => {
            let crate::adapter::RestoredSession { session, missed, hold: h, .. } = restored;
            hold = h;
            let s = Socket::new(
                ns.clone(),
                shared.clone(),
                session.id.clone(),
                Some(session.pid.clone()),
                handshake,
                true,
                session.data.clone(),
            );
            (s, missed, Some(session.rooms))
        }
        None => {
            let pid = config.map(|_| random_id());
            // `{}` until set, as the reference's `socket.data` (other servers, such as a Node admin UI, rely on it).
            let data = Value::Object(Default::default());
            // A Socket.IO 2 client's socket id is its Engine.IO id, prefixed by the namespace but for the
            // main one (the client computes the same on its side).
            let id: Arc<str> = match (v2_client, nsp.as_str()) {
                (false, _) => random_id().into(),
                (true, "/") => shared.engine_socket.sid().into(),
                (true, nsp) => format!("{nsp}#{}", shared.engine_socket.sid()).into(),
            };
            let s = Socket::new(ns.clone(), shared.clone(), id, pid, handshake, false, data);
            (s, Vec::new(), None)
        }
    };
    // Set before a recovered socket's rooms are restored, so that a flow ending from here on leaves them.
    answer.socket = Some((ns.clone(), socket.id_arc().clone()));
    if let Some(rooms) = &restored_rooms {
        ns.adapter().add_all(socket.id_arc(), rooms);
    }
    let skip = socket.recovered() && config.is_some_and(|r| r.skip_middlewares);
    if !skip {
        // Middlewares may take long: the delivery is not held back for them (broadcasts to the socket's
        // rooms while they run reach it only if they were among the missed packets, as in the reference).
        drop(hold.take());
    }
    if !skip && let Err(e) = ns.run_middlewares(&socket).await {
        // As the reference: a refused socket leaves every room, those restored by recovery and those a
        // middleware joined before the refusal.
        ns.adapter().del_all(socket.id_arc());
        answer.answered = true;
        crate::telemetry::METRICS.connects_refused.increment(1);
        tracing::info!(
            target: "socketio_server::socket",
            parent: socket.span(),
            ns = %nsp,
            sid = shared.engine_socket.sid(),
            refusal = %e.message,
            "connection refused by a middleware"
        );
        shared.refuse(&nsp, &e.message, e.data);
        return;
    }
    answer.answered = true;
    if shared.engine_socket.is_closed() {
        ns.adapter().del_all(socket.id_arc());
        return;
    }
    socket.set_connected();
    shared.add_socket(nsp.clone(), socket.clone());
    // Missed packets go out before the CONNECT reply, as in the reference.
    for packet in &missed {
        let _ = socket.send_packet(packet, false);
    }
    if !shared.accept(&nsp, socket.id(), socket.pid()) {
        // The connection closed while the middlewares ran.
        socket.on_close(DisconnectReason::TransportClose);
        return;
    }
    // Only now can broadcasts reach it: nothing of this namespace goes out before its CONNECT reply (a
    // broadcast from another task, or one that its own joining causes, such as an admin's room report).
    ns.add_socket(&socket);
    ns.adapter().add_all(socket.id_arc(), &[socket.id_arc().clone()]);
    drop(hold);
    ns.run_connection_handlers(&socket);
}

#[cfg(test)]
mod tests {
    /// Every connection keeps one `ClientShared` (in an `Arc`, 16 bytes of counts more): at most 208 bytes
    /// keeps it in jemalloc's 224-byte class (the benchmark server runs on jemalloc), no larger than the
    /// client state was before the protocol moved into `socketio_proto::Connection`. The idle-connection
    /// benchmark showed each step of the move.
    #[test]
    fn an_idle_connections_state_stays_in_the_224_byte_class() {
        let size = std::mem::size_of::<super::ClientShared>();
        assert!(size <= 208, "{size}");
    }
}
