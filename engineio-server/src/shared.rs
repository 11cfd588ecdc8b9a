//! What the HTTP side shares: the engine's state (options, endpoint, the session table of `sessions.rs`,
//! the stop signal), new session ids and sockets, the session slots held during a handshake, and the
//! remote address put on every request. A leaf below the `Engine` handle, the `Service` and the polling
//! and upgrade paths.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use engineio_proto::TransportKind;
use http::request;

use crate::config::EngineConfig;
use crate::mailbox::Mailbox;
use crate::sessions::Sessions;
use crate::socket::{Socket, SocketShared};

/// The remote address of a request, put in its extensions by [`Engine::serve`](crate::Engine::serve) (and readable from
/// [`Socket::request`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RemoteAddr(pub SocketAddr);

pub(crate) struct EngineShared {
    pub(crate) config: EngineConfig,
    /// What every session's state machine is given: made once, shared.
    pub(crate) session_config: Arc<engineio_proto::SessionConfig>,
    pub(crate) endpoint: engineio_proto::endpoint::Endpoint,
    /// The handler, the session table and the slots, shared with every session task.
    pub(crate) sessions: Arc<Sessions>,
    /// Set by `close`: the accept loops of `serve`/`listen` stop.
    pub(crate) stopping: tokio::sync::watch::Sender<bool>,
}

impl EngineShared {
    /// A new session id; `None` if the application's `generate_id` panicked (the reference refuses the
    /// handshake when its `generateId` throws).
    pub(crate) fn new_sid(&self, req: &request::Parts) -> Option<String> {
        loop {
            let sid = match &self.config.generate_id {
                Some(f) => crate::driver::contain(|| f(req))?,
                None => engineio_proto::handshake::sid_from_bytes(rand::random()),
            };
            if self.sessions.lookup(&sid).is_none() {
                return Some(sid);
            }
        }
    }
}

pub(crate) fn new_socket(
    shared: &EngineShared,
    parts: Arc<request::Parts>,
    transport: TransportKind,
    address: Option<std::net::IpAddr>,
) -> Option<Socket> {
    let sid: Arc<str> = shared.new_sid(&parts)?.into();
    let query = engineio_proto::handshake::Query::parse(parts.uri.query().unwrap_or(""));
    let protocol = query.protocol();
    // JSONP is a polling transport of its own, chosen by the handshake (a `j` parameter), as the reference's.
    let jsonp = (transport == TransportKind::Polling)
        .then(|| engineio_proto::jsonp::callback_index(query.get("j")))
        .flatten()
        .map(String::into_boxed_str);
    Some(Socket {
        shared: Arc::new(SocketShared {
            overflowed: AtomicBool::new(false),
            sid,
            request: Box::new(crate::kept::KeptRequest::new(&parts)),
            mailbox: Mailbox::new(shared.config.max_queued_commands, shared.config.max_queued_bytes),
            upgraded: AtomicBool::new(false),
            initial_transport: transport,
            protocol,
            jsonp,
            address,
        }),
    })
}

/// A session slot taken by a handshake: given back when dropped, unless [`Slot::keep`] handed it to a
/// session (which gives it back when it ends). So a handshake that fails or panics midway leaks none.
pub(crate) struct Slot {
    pub(crate) shared: Arc<EngineShared>,
    pub(crate) address: Option<std::net::IpAddr>,
    pub(crate) kept: bool,
}

impl Slot {
    pub(crate) fn keep(mut self) {
        self.kept = true;
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        if !self.kept {
            self.shared.sessions.release(self.address);
        }
    }
}
