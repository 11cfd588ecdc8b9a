//! One Engine.IO connection seen from Socket.IO: it decodes packets (on the connection's own task, so the
//! decoder needs no lock), joins namespaces on CONNECT, routes the other packets to the socket of their
//! namespace, and closes everything on a parse error or when the connection ends.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, Weak};

use engineio_proto::{CloseReason, Message};
use socketio_proto::{Decoder, Map, Packet, PacketType, Value};

use crate::server::ServerInner;
use crate::socket::PendingHandshake;
use crate::socket::{DisconnectReason, Socket};
use crate::types::random_id;

/// What the tasks of a connection share: the engine socket and the sockets by namespace.
pub(crate) struct ClientShared {
    pub(crate) engine_socket: engineio_server::Socket,
    server: Weak<ServerInner>,
    /// By namespace; looked up when a packet is not for the socket the `Client` remembers (hashed with
    /// foldhash rather than SipHash).
    sockets: Mutex<HashMap<String, Socket, foldhash::fast::RandomState>>,
    /// Namespaces whose CONNECT is being handled (middlewares may be waiting): a repeated CONNECT meanwhile
    /// is ignored, as one for a namespace already joined.
    connecting: Mutex<std::collections::HashSet<String>>,
    closed: std::sync::atomic::AtomicBool,
}

impl ClientShared {
    fn socket_for(&self, nsp: &str) -> Option<Socket> {
        self.sockets.lock().expect("poisoned").get(nsp).cloned()
    }

    pub(crate) fn remove_socket(&self, nsp: &str, id: &str) {
        let mut sockets = self.sockets.lock().expect("poisoned");
        if sockets.get(nsp).is_some_and(|s| s.id() == id) {
            sockets.remove(nsp);
        }
    }

    fn all_sockets(&self) -> Vec<Socket> {
        self.sockets.lock().expect("poisoned").values().cloned().collect()
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

    fn send(&self, packet: &Packet) {
        if let Some(server) = self.server.upgrade() {
            let _ = self.engine_socket.send_frames(server.config.parser.encode_frames(packet).into_vec());
        }
    }
}

pub(crate) struct Client {
    shared: Arc<ClientShared>,
    decoder: Box<dyn Decoder>,
    /// When the connection is closed if it has joined no namespace (`connect_timeout`); `None` once past.
    connect_deadline: Option<std::time::Instant>,
    /// The socket the last packet went to: most connections use one namespace, and this spares the
    /// lookup (a lock and a hash) per packet. Used only while it is still connected.
    last: Option<Socket>,
}

impl Client {
    pub(crate) fn new(server: &Arc<ServerInner>, engine_socket: engineio_server::Socket) -> Client {
        let shared = Arc::new(ClientShared {
            engine_socket,
            server: Arc::downgrade(server),
            sockets: Mutex::default(),
            connecting: Mutex::default(),
            closed: std::sync::atomic::AtomicBool::new(false),
        });
        // Connections that have joined no namespace by then are closed (on the session's own timer).
        let connect_deadline = Some(tokio::time::Instant::now().into_std() + server.config.connect_timeout);
        Client { decoder: server.config.parser.decoder(), shared, connect_deadline, last: None }
    }

    fn on_packet(&mut self, packet: Packet) {
        match packet.kind {
            PacketType::Connect => {
                let shared = self.shared.clone();
                crate::run::run_detached(Box::pin(connect(shared, packet.nsp, packet.data)));
            }
            _ => {
                let cached = self.last.as_ref().is_some_and(|s| s.connected() && s.namespace_name() == packet.nsp);
                if !cached {
                    self.last = self.shared.socket_for(&packet.nsp);
                }
                if let Some(socket) = &self.last {
                    socket.on_packet(packet);
                }
            }
        }
    }
}

impl engineio_server::Connection for Client {
    fn on_message(&mut self, message: Message) {
        match self.decoder.decode(message) {
            Ok(Some(packet)) => self.on_packet(packet),
            Ok(None) => {}
            Err(_) => {
                for s in self.shared.all_sockets() {
                    s.on_close(DisconnectReason::ParseError);
                }
                self.shared.engine_socket.close();
            }
        }
    }

    fn deadline(&self) -> Option<std::time::Instant> {
        self.connect_deadline
    }

    fn on_deadline(&mut self, _now: std::time::Instant) {
        self.connect_deadline = None;
        if self.shared.sockets.lock().expect("poisoned").is_empty() {
            self.shared.engine_socket.close();
        }
    }

    fn on_close(&mut self, reason: CloseReason) {
        self.shared.closed.store(true, std::sync::atomic::Ordering::Release);
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

/// Clears a namespace's "connecting" mark however the CONNECT ends.
struct Connecting {
    shared: Arc<ClientShared>,
    nsp: String,
}

impl Drop for Connecting {
    fn drop(&mut self) {
        let mut connecting = self.shared.connecting.lock().expect("poisoned");
        connecting.remove(&self.nsp);
        if connecting.is_empty() {
            // Usually the only CONNECT of the connection: keep no table for the rest of its life.
            connecting.shrink_to_fit();
        }
    }
}

/// Joins a namespace: find or create it, recover state if asked, run the middlewares, then reply.
async fn connect(shared: Arc<ClientShared>, nsp: String, auth: Option<Value>) {
    let Some(server) = shared.server.upgrade() else { return };
    let auth = auth.unwrap_or_else(|| Value::Object(Map::new()));
    let Some(ns) = server.namespace_for_connect(&nsp, &auth) else {
        shared.send(&Packet::connect_error(nsp, "Invalid namespace", None));
        return;
    };
    if shared.socket_for(&nsp).is_some() || !shared.connecting.lock().expect("poisoned").insert(nsp.clone()) {
        return;
    }
    let _connecting = Connecting { shared: shared.clone(), nsp: nsp.clone() };
    let recovery = server.config.connection_state_recovery;
    let mut restored = None;
    if recovery.is_some()
        && let (Some(Value::String(pid)), Some(Value::String(offset))) = (auth.get("pid"), auth.get("offset"))
    {
        restored = ns.adapter().local().restore_session(pid, offset);
    }
    let handshake = PendingHandshake { auth, at: std::time::SystemTime::now() };
    let (socket, missed) = match restored {
        Some((session, missed)) => {
            let s = Socket::new(
                ns.clone(),
                shared.clone(),
                session.id.clone(),
                Some(session.pid.clone()),
                handshake,
                true,
                session.data.clone(),
            );
            ns.adapter().add_all(&session.id, &session.rooms);
            (s, missed)
        }
        None => {
            let pid = recovery.map(|_| random_id());
            let s = Socket::new(ns.clone(), shared.clone(), random_id().into(), pid, handshake, false, Value::Null);
            (s, Vec::new())
        }
    };
    let skip = socket.recovered() && recovery.is_some_and(|r| r.skip_middlewares);
    if !skip && let Err(e) = ns.run_middlewares(&socket).await {
        if socket.recovered() {
            ns.adapter().del_all(socket.id_arc());
        }
        shared.send(&Packet::connect_error(nsp, &e.message, e.data));
        return;
    }
    if shared.closed.load(std::sync::atomic::Ordering::Acquire) || shared.engine_socket.is_closed() {
        ns.adapter().del_all(socket.id_arc());
        return;
    }
    socket.set_connected();
    ns.add_socket(&socket);
    shared.sockets.lock().expect("poisoned").insert(nsp.clone(), socket.clone());
    ns.adapter().add_all(socket.id_arc(), &[socket.id_arc().clone()]);
    // Missed packets go out before the CONNECT reply, as in the reference.
    for packet in &missed {
        let _ = socket.send_packet(packet, false);
    }
    let mut reply = Map::new();
    reply.insert("sid".into(), Value::from(socket.id()));
    if let Some(pid) = socket.pid() {
        reply.insert("pid".into(), Value::from(pid));
    }
    shared.send(&Packet::connect(nsp, Some(Value::Object(reply))));
    ns.run_connection_handlers(&socket);
}
