//! A socket's incoming side: packets after the connect, packet middlewares, event dispatch to listeners and
//! handlers, acks received, and the close lifecycle (`disconnecting`, leaving rooms, `disconnect`).

use std::sync::atomic::Ordering;

use socketio_proto::{ArgsPacket, Value};

use crate::event::{AckError, AckSender, Event};
use crate::listeners::Listeners;
use crate::run::{contain, run_detached_in, run_handler};
use crate::socket::{AckCallback, AnyListener, DisconnectReason, EventHandler, Socket};
use crate::types::Room;

impl Socket {
    /// Marks the socket connected.
    pub(crate) fn set_connected(&self) {
        tracing::info!(
            target: "socketio_server::socket",
            parent: self.span(),
            ns = self.namespace_name(),
            id = self.id(),
            sid = self.engine_id(),
            recovered = self.inner.recovered,
            "socket connected"
        );
        self.inner.connected.store(true, Ordering::Release);
    }

    /// An event of this socket's namespace, from its client.
    pub(crate) fn on_event(
        &self,
        name: String,
        args: Vec<Value>,
        ack: Option<u64>,
        request: Option<crate::event::DataRequest>,
    ) {
        if !self.connected() {
            return;
        }
        let ack = ack.map(|id| {
            let socket = self.clone();
            AckSender::new(move |args| match args {
                Ok(args) => {
                    let _ = socket.send_args(ArgsPacket::Ack { id }, &args, false);
                }
                Err(e) => socket.handler_failed("ack", &e.into()),
            })
        });
        crate::telemetry::METRICS.events_in.increment(1);
        tracing::debug!(
            target: "socketio_server::event",
            parent: self.span(),
            event = %name,
            args = args.len(),
            ack = ack.is_some(),
            "event in"
        );
        self.dispatch(Event::new(name, args, ack).with_request(request));
    }

    /// The client's acknowledgement of an event this socket sent with ack id `id`.
    pub(crate) fn on_ack(&self, id: u64, args: Vec<Value>) {
        if !self.connected() {
            return;
        }
        tracing::debug!(target: "socketio_server::event", parent: self.span(), id, args = args.len(), "ack in");
        let callback = self.inner.acks.lock().expect("poisoned").as_mut().and_then(|acks| acks.remove(&id));
        if let Some(cb) = callback {
            cb(Ok(args));
        }
    }

    pub(crate) fn dispatch(&self, event: Event) {
        let middlewares = {
            let l = self.inner.listeners.read().expect("poisoned");
            if l.rare().packet_middlewares.is_empty() {
                // One look at the listeners for the common case.
                let (any, handler) = Self::listeners_for(&l, &event.name);
                drop(l);
                return self.run_listeners(event, any, handler);
            }
            l.rare().packet_middlewares.clone()
        };
        let socket = self.clone();
        let span = self.span().clone();
        run_detached_in(
            Box::pin(async move {
                let mut event = event;
                for mw in middlewares {
                    let event_name = event.name.clone();
                    // A panicking middleware drops the event, as a refusal without an error to report.
                    let Some(run) = contain(|| mw(socket.clone(), event)) else { return };
                    let Ok(outcome) = futures_util::FutureExt::catch_unwind(std::panic::AssertUnwindSafe(run)).await
                    else {
                        return;
                    };
                    match outcome {
                        Ok(e) => event = e,
                        Err(err) => {
                            tracing::warn!(
                                target: "socketio_server::handler",
                                ns = socket.namespace_name(),
                                id = socket.id(),
                                event = %event_name,
                                "a per-packet middleware refused the event"
                            );
                            let handlers = socket.inner.listeners.read().expect("poisoned").rare().error.clone();
                            for h in handlers {
                                contain(|| h(socket.clone(), err.clone()));
                            }
                            return;
                        }
                    }
                }
                if socket.connected() {
                    socket.run_event(event);
                }
            }),
            &span,
        );
    }

    pub(crate) fn run_event(&self, event: Event) {
        let (any, handler) = Self::listeners_for(&self.inner.listeners.read().expect("poisoned"), &event.name);
        self.run_listeners(event, any, handler);
    }

    pub(crate) fn listeners_for(l: &Listeners, name: &str) -> (Vec<AnyListener>, Option<EventHandler>) {
        let any: Vec<AnyListener> = l.rare().any_incoming.iter().map(|(_, a)| a.clone()).collect();
        (any, l.event(name).cloned())
    }

    pub(crate) fn run_listeners(&self, event: Event, any: Vec<AnyListener>, handler: Option<EventHandler>) {
        for a in any {
            contain(|| a(self, &event.name, &event.args));
        }
        if let Some(h) = handler {
            run_handler(self.span(), || h(self.clone(), event));
        }
    }

    /// Disconnects from the namespace for `reason` (once): `disconnecting` handlers, recovery state,
    /// leave every room, forget pending acks, `disconnect` handlers.
    pub(crate) fn on_close(&self, reason: DisconnectReason) {
        if !self.inner.connected.swap(false, Ordering::AcqRel) {
            return;
        }
        tracing::info!(
            target: "socketio_server::socket",
            parent: self.span(),
            ns = self.namespace_name(),
            id = self.id(),
            reason = reason.as_str(),
            "socket disconnected"
        );
        let (disconnecting, disconnect) = {
            let l = self.inner.listeners.read().expect("poisoned");
            (l.rare().disconnecting.clone(), l.disconnect.clone())
        };
        for h in disconnecting {
            run_handler(self.span(), || h(self.clone(), reason));
        }
        let adapter = self.inner.ns.adapter();
        let persist = match &self.inner.pid {
            Some(pid) if reason.is_recoverable() => Some((pid, self.rooms().into_iter().collect::<Vec<Room>>())),
            _ => None,
        };
        adapter.del_all(&self.inner.id);
        self.inner.ns.remove_socket(&self.inner.id);
        self.inner.client.remove_socket(self.namespace_name(), self.id());
        // Kept for recovery only once it is out of its rooms and the namespace's map: both are left by id,
        // so a recovery of this id must not find the session before (it would lose what it restored).
        if let Some((pid, rooms)) = persist {
            adapter.persist_session(crate::adapter::PersistedSession::new(
                self.inner.id.clone(),
                pid.to_string(),
                rooms,
                self.data(),
            ));
        }
        let pending: Vec<AckCallback> = self
            .inner
            .acks
            .lock()
            .expect("poisoned")
            .take()
            .map(|acks| acks.into_values().collect())
            .unwrap_or_default();
        for cb in pending {
            cb(Err(AckError::Disconnected));
        }
        for h in disconnect {
            run_handler(self.span(), || h(self.clone(), reason));
        }
    }
}
