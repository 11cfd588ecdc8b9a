//! What every adapter of this crate keeps for the requests it sends to the other servers: `fetch_sockets`
//! and `server_side_emit` waiting for one answer per server, and broadcasts with acknowledgements gathering
//! every server's client count and every client's answer; and, on the answering side, the forwarding of
//! local clients' answers. The adapters differ in their messages, not in this.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use socketio_server::adapter::{AckUpdate, AdapterError, BoxFuture, SocketInfo};
use socketio_server::proto::Value;
use tokio::sync::{mpsc, oneshot};

/// A request waiting for the other servers' answers.
enum Pending {
    /// `fetch_sockets`: the sockets gathered and the number of servers that answered (this one included).
    Fetch { sockets: Vec<SocketInfo>, answered: usize, expected: usize, done: Option<oneshot::Sender<Vec<SocketInfo>>> },
    /// `server_side_emit` with acks: one answer per other server.
    ServerSideEmit { responses: Vec<Vec<Value>>, expected: usize, done: Option<oneshot::Sender<Vec<Vec<Value>>>> },
}

/// A broadcast with acknowledgements: where its counts and answers go.
struct AckRequest {
    updates: mpsc::UnboundedSender<AckUpdate>,
    counts_seen: usize,
    servers: Option<usize>,
}

impl AckRequest {
    fn check_counts(&mut self) {
        if self.servers.is_some_and(|n| self.counts_seen >= n) {
            let _ = self.updates.send(AckUpdate::CountsComplete);
            self.servers = None;
            self.counts_seen = 0;
        }
    }
}

/// The requests of one adapter, by request id.
#[derive(Default)]
pub(crate) struct Requests {
    pending: Mutex<HashMap<String, Pending>>,
    acks: Mutex<HashMap<String, AckRequest>>,
}

impl Requests {
    /// A `fetch_sockets` that has `local` already and waits for `expected` servers in all.
    pub(crate) fn fetch(
        &self,
        id: &str,
        local: Vec<SocketInfo>,
        expected: usize,
    ) -> oneshot::Receiver<Vec<SocketInfo>> {
        let (tx, rx) = oneshot::channel();
        let pending = Pending::Fetch { sockets: local, answered: 1, expected, done: Some(tx) };
        self.pending.lock().expect("poisoned").insert(id.to_owned(), pending);
        rx
    }

    /// A `server_side_emit` that waits for `expected` answers.
    pub(crate) fn server_side_emit(&self, id: &str, expected: usize) -> oneshot::Receiver<Vec<Vec<Value>>> {
        let (tx, rx) = oneshot::channel();
        let pending = Pending::ServerSideEmit { responses: Vec::new(), expected, done: Some(tx) };
        self.pending.lock().expect("poisoned").insert(id.to_owned(), pending);
        rx
    }

    /// Drops a request (it could not be sent).
    pub(crate) fn forget(&self, id: &str) {
        self.pending.lock().expect("poisoned").remove(id);
        self.acks.lock().expect("poisoned").remove(id);
    }

    /// One server's sockets for the `fetch_sockets` `id`.
    pub(crate) fn fetch_answer(&self, id: &str, sockets: impl IntoIterator<Item = SocketInfo>) {
        self.answer(id, |pending| match pending {
            Pending::Fetch { sockets: all, answered, expected, done } => {
                all.extend(sockets);
                *answered += 1;
                *answered >= *expected && done.take().map(|d| d.send(std::mem::take(all))).is_some()
            }
            Pending::ServerSideEmit { .. } => false,
        });
    }

    /// One server's answer to the `server_side_emit` `id`.
    pub(crate) fn emit_answer(&self, id: &str, answer: Value) {
        self.answer(id, |pending| match pending {
            Pending::ServerSideEmit { responses, expected, done } => {
                responses.push(vec![answer]);
                responses.len() >= *expected && done.take().map(|d| d.send(std::mem::take(responses))).is_some()
            }
            Pending::Fetch { .. } => false,
        });
    }

    fn answer(&self, id: &str, apply: impl FnOnce(&mut Pending) -> bool) {
        let mut pending = self.pending.lock().expect("poisoned");
        if pending.get_mut(id).is_some_and(apply) {
            pending.remove(id);
        }
    }

    /// Waits for the request `id`, at most `timeout`; it is forgotten either way.
    pub(crate) async fn wait<T>(
        &self,
        id: &str,
        rx: oneshot::Receiver<T>,
        timeout: Duration,
        nsp: &str,
    ) -> Result<T, AdapterError> {
        crate::telemetry::METRICS.requests.increment(1);
        let result = tokio::time::timeout(timeout, rx).await;
        self.pending.lock().expect("poisoned").remove(id);
        match result {
            Ok(Ok(v)) => Ok(v),
            Ok(Err(_)) => Err(AdapterError("the request was dropped".into())),
            Err(_) => {
                crate::telemetry::METRICS.request_timeouts.increment(1);
                tracing::warn!(target: "socketio_redis::adapter", nsp, timeout_ms = timeout.as_millis() as u64, "a request to the other servers timed out");
                Err(AdapterError("timeout reached while waiting for the other servers".into()))
            }
        }
    }

    /// A broadcast with acknowledgements `id` whose reports go to `updates`.
    pub(crate) fn ack_request(&self, id: &str, updates: mpsc::UnboundedSender<AckUpdate>) {
        self.acks
            .lock()
            .expect("poisoned")
            .insert(id.to_owned(), AckRequest { updates, counts_seen: 0, servers: None });
    }

    /// Whether `id` is a broadcast with acknowledgements of this adapter.
    pub(crate) fn is_ack_request(&self, id: &str) -> bool {
        self.acks.lock().expect("poisoned").contains_key(id)
    }

    /// A server's client count for the broadcast `id` (this server's too).
    pub(crate) fn client_count(&self, id: &str, count: usize) {
        if let Some(ack) = self.acks.lock().expect("poisoned").get_mut(id) {
            let _ = ack.updates.send(AckUpdate::ClientCount(count));
            ack.counts_seen += 1;
            ack.check_counts();
        }
    }

    /// A client's answer to the broadcast `id`.
    pub(crate) fn client_ack(&self, id: &str, answer: Value) {
        if let Some(ack) = self.acks.lock().expect("poisoned").get(id) {
            let _ = ack.updates.send(AckUpdate::Response(vec![answer]));
        }
    }

    /// Once `servers` tells how many counts to expect, completes the broadcast `id` when they are all in;
    /// forgets it after `timeout`.
    pub(crate) fn expect_counts(
        self: &Arc<Self>,
        id: String,
        servers: BoxFuture<'static, Result<usize, AdapterError>>,
        timeout: Duration,
    ) {
        let me: Weak<Requests> = Arc::downgrade(self);
        tokio::spawn(async move {
            let servers = servers.await.unwrap_or(1).max(1);
            if let Some(r) = me.upgrade()
                && let Some(ack) = r.acks.lock().expect("poisoned").get_mut(&id)
            {
                ack.servers = Some(servers);
                ack.check_counts();
            }
            tokio::time::sleep(timeout).await;
            if let Some(r) = me.upgrade() {
                r.acks.lock().expect("poisoned").remove(&id);
            }
        });
    }
}

/// On the answering side: sends each of the `count` local clients' answers with `send`, until they are all
/// in or `timeout` passes.
pub(crate) fn forward_acks(
    mut rx: mpsc::UnboundedReceiver<AckUpdate>,
    count: usize,
    timeout: Duration,
    mut send: impl FnMut(Value) + Send + 'static,
) {
    tokio::spawn(async move {
        let mut left = count;
        let forward = async {
            while left > 0 {
                match rx.recv().await {
                    Some(AckUpdate::Response(args)) => {
                        left -= 1;
                        send(args.into_iter().next().unwrap_or(Value::Null));
                    }
                    Some(AckUpdate::Lost) => left -= 1,
                    Some(_) => {}
                    None => return,
                }
            }
        };
        let _ = tokio::time::timeout(timeout, forward).await;
    });
}
