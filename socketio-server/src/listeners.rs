//! A socket's listeners: event handlers, catch-all listeners both ways, packet middlewares, error and
//! disconnect handlers.

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use socketio_proto::Value;

use crate::event::Event;
use crate::handler::{HandlerResult, on_error, report};
use crate::socket::{
    AnyListener, DisconnectHandler, DisconnectReason, ErrorHandler, EventHandler, PacketMiddleware, Socket,
};

/// Identifies a catch-all listener, to remove it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ListenerId(u64);

pub(crate) static NEXT_LISTENER: AtomicU64 = AtomicU64::new(1);

#[derive(Default)]
pub(crate) struct Listeners {
    /// The event handlers, sorted by name: looked up for every event by binary search. A socket has a few
    /// (a hash map would cost it twice the memory, and hashing a short name is no faster).
    events: Vec<(Box<str>, EventHandler)>,
    pub(crate) disconnect: Vec<DisconnectHandler>,
    /// The kinds most sockets never use, boxed: a socket holds them only once one is added.
    rare: Option<Box<RareListeners>>,
}

#[derive(Default)]
pub(crate) struct RareListeners {
    pub(crate) any_incoming: Vec<(ListenerId, AnyListener)>,
    pub(crate) any_outgoing: Vec<(ListenerId, AnyListener)>,
    pub(crate) packet_middlewares: Vec<PacketMiddleware>,
    pub(crate) error: Vec<ErrorHandler>,
    pub(crate) disconnecting: Vec<DisconnectHandler>,
    pub(crate) upgrade: Vec<UpgradeListener>,
    pub(crate) data_change: Vec<UpgradeListener>,
}

static NO_RARE_LISTENERS: RareListeners = RareListeners {
    any_incoming: Vec::new(),
    any_outgoing: Vec::new(),
    packet_middlewares: Vec::new(),
    error: Vec::new(),
    disconnecting: Vec::new(),
    upgrade: Vec::new(),
    data_change: Vec::new(),
};

impl Listeners {
    /// The handler of `event`, if any.
    pub(crate) fn event(&self, event: &str) -> Option<&EventHandler> {
        let i = self.events.binary_search_by(|(name, _)| (**name).cmp(event)).ok()?;
        Some(&self.events[i].1)
    }

    /// Sets the handler of `event`, replacing any.
    fn set_event(&mut self, event: &str, handler: EventHandler) {
        match self.events.binary_search_by(|(name, _)| (**name).cmp(event)) {
            Ok(i) => self.events[i].1 = handler,
            Err(i) => self.events.insert(i, (event.into(), handler)),
        }
    }

    /// Removes the handler of `event`.
    fn remove_event(&mut self, event: &str) {
        if let Ok(i) = self.events.binary_search_by(|(name, _)| (**name).cmp(event)) {
            self.events.remove(i);
        }
    }

    /// The rarely used kinds (all empty until one is added).
    pub(crate) fn rare(&self) -> &RareListeners {
        self.rare.as_deref().unwrap_or(&NO_RARE_LISTENERS)
    }

    /// The rarely used kinds, made on first use.
    pub(crate) fn rare_mut(&mut self) -> &mut RareListeners {
        self.rare.get_or_insert_default()
    }
}

/// Told when a socket's connection moves to WebSocket (see [`Socket::on_upgrade`]) or its `data` is
/// replaced (see [`Socket::on_data_change`]).
pub(crate) type UpgradeListener = Arc<dyn Fn(&Socket) + Send + Sync>;

impl Socket {
    /// Handles an event. Handlers finishing at once run in the order events arrive. The handler is a
    /// closure of typed arguments ([`crate::extract`]: `Socket`, `Data<T>`, `AckSender`, `State<T>`,
    /// `Event`, ...), cloned for each call (see [`crate::handler`]); its future may end with `()` or a
    /// `Result` whose error goes to [`crate::SocketIo::on_handler_error`].
    pub fn on<H, T>(&self, event: &str, handler: H)
    where
        H: crate::extract::EventHandler<T>,
        T: 'static,
    {
        let h: EventHandler = Arc::new(move |s: Socket, e: Event| handler.clone().call(s, e));
        self.listeners().set_event(event, h);
    }

    /// Removes an event's handler.
    pub fn off(&self, event: &str) {
        self.listeners().remove_event(event);
    }

    /// Adds a catch-all listener for incoming events, called before the event's handler.
    pub fn on_any(&self, listener: impl Fn(&Socket, &str, &[Value]) + Send + Sync + 'static) -> ListenerId {
        let id = ListenerId(NEXT_LISTENER.fetch_add(1, Ordering::Relaxed));
        self.listeners().rare_mut().any_incoming.push((id, Arc::new(listener)));
        id
    }

    /// Adds a catch-all listener for incoming events, before the others.
    pub fn prepend_any(&self, listener: impl Fn(&Socket, &str, &[Value]) + Send + Sync + 'static) -> ListenerId {
        let id = ListenerId(NEXT_LISTENER.fetch_add(1, Ordering::Relaxed));
        self.listeners().rare_mut().any_incoming.insert(0, (id, Arc::new(listener)));
        id
    }

    /// Removes an incoming catch-all listener (`None`: all of them).
    pub fn off_any(&self, id: Option<ListenerId>) {
        let mut l = self.listeners();
        match id {
            Some(id) => l.rare_mut().any_incoming.retain(|(i, _)| *i != id),
            None => l.rare_mut().any_incoming.clear(),
        }
    }

    /// Adds a catch-all listener for outgoing events (emits from this socket).
    pub fn on_any_outgoing(&self, listener: impl Fn(&Socket, &str, &[Value]) + Send + Sync + 'static) -> ListenerId {
        let id = ListenerId(NEXT_LISTENER.fetch_add(1, Ordering::Relaxed));
        self.listeners().rare_mut().any_outgoing.push((id, Arc::new(listener)));
        self.inner.has_outgoing.store(true, Ordering::Release);
        id
    }

    /// Adds an outgoing catch-all listener before the others.
    pub fn prepend_any_outgoing(
        &self,
        listener: impl Fn(&Socket, &str, &[Value]) + Send + Sync + 'static,
    ) -> ListenerId {
        let id = ListenerId(NEXT_LISTENER.fetch_add(1, Ordering::Relaxed));
        self.listeners().rare_mut().any_outgoing.insert(0, (id, Arc::new(listener)));
        self.inner.has_outgoing.store(true, Ordering::Release);
        id
    }

    /// Removes an outgoing catch-all listener (`None`: all of them).
    pub fn off_any_outgoing(&self, id: Option<ListenerId>) {
        let mut l = self.listeners();
        match id {
            Some(id) => l.rare_mut().any_outgoing.retain(|(i, _)| *i != id),
            None => l.rare_mut().any_outgoing.clear(),
        }
        self.inner.has_outgoing.store(!l.rare().any_outgoing.is_empty(), Ordering::Release);
    }

    /// Adds a per-packet middleware: it sees every incoming event before its handler and may change it;
    /// `Err(value)` drops the event and reports `value` to the [`Socket::on_error`] handlers.
    pub fn use_middleware<F, Fut>(&self, middleware: F)
    where
        F: FnOnce(Socket, Event) -> Fut + Clone + Send + Sync + 'static,
        Fut: Future<Output = Result<Event, Value>> + Send + 'static,
    {
        self.listeners().rare_mut().packet_middlewares.push(Arc::new(move |s, e| Box::pin((middleware.clone())(s, e))));
    }

    /// Handles errors reported by per-packet middlewares.
    pub fn on_error(&self, handler: impl Fn(Socket, Value) + Send + Sync + 'static) {
        self.listeners().rare_mut().error.push(Arc::new(handler));
    }

    /// Runs when the socket is about to disconnect; its rooms are still readable.
    pub fn on_disconnecting<F, Fut>(&self, handler: F)
    where
        F: FnOnce(Socket, DisconnectReason) -> Fut + Clone + Send + Sync + 'static,
        Fut: Future + Send + 'static,
        Fut::Output: HandlerResult,
    {
        self.listeners().rare_mut().disconnecting.push(disconnect_handler(handler, "disconnecting"));
    }

    /// Runs when the socket's connection moves from long-polling to WebSocket (the reference's
    /// `socket.conn.on("upgrade")`).
    pub fn on_upgrade(&self, listener: impl Fn(&Socket) + Send + Sync + 'static) {
        self.listeners().rare_mut().upgrade.push(Arc::new(listener));
    }

    /// Runs after each [`Socket::set_data`] (or [`Socket::set_data_as`]) on this socket, with the new
    /// `data` readable; the reference's admin UI learns of changes to `socket.data` the same way.
    pub fn on_data_change(&self, listener: impl Fn(&Socket) + Send + Sync + 'static) {
        self.listeners().rare_mut().data_change.push(Arc::new(listener));
    }

    /// Runs when the socket has disconnected.
    pub fn on_disconnect<F, Fut>(&self, handler: F)
    where
        F: FnOnce(Socket, DisconnectReason) -> Fut + Clone + Send + Sync + 'static,
        Fut: Future + Send + 'static,
        Fut::Output: HandlerResult,
    {
        self.listeners().disconnect.push(disconnect_handler(handler, "disconnect"));
    }

    pub(crate) fn listeners(&self) -> std::sync::RwLockWriteGuard<'_, Listeners> {
        self.inner.listeners.write().expect("poisoned")
    }
}

/// A `disconnecting` or `disconnect` handler, cloned per call, its errors reported as event `what`.
fn disconnect_handler<F, Fut>(handler: F, what: &'static str) -> DisconnectHandler
where
    F: FnOnce(Socket, DisconnectReason) -> Fut + Clone + Send + Sync + 'static,
    Fut: Future + Send + 'static,
    Fut::Output: HandlerResult,
{
    Arc::new(move |s: Socket, r| {
        let on_error = on_error::<Fut::Output>(&s, || what.into());
        report((handler.clone())(s, r), on_error)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn handler() -> EventHandler {
        Arc::new(|_: Socket, _: Event| Box::pin(async {}))
    }

    #[test]
    fn event_handlers_are_found_replaced_and_removed_by_name() {
        let mut l = Listeners::default();
        let names = ["message", "chat", "zeta", "a", "chat:typing", "ünïcode", ""];
        let handlers: Vec<EventHandler> = names.iter().map(|_| handler()).collect();
        for (name, h) in names.iter().zip(&handlers) {
            l.set_event(name, h.clone());
        }
        for (name, h) in names.iter().zip(&handlers) {
            assert!(Arc::ptr_eq(l.event(name).expect(name), h), "{name}");
        }
        assert!(l.event("nope").is_none());
        assert!(l.event("cha").is_none());
        let replacement = handler();
        l.set_event("chat", replacement.clone());
        assert!(Arc::ptr_eq(l.event("chat").unwrap(), &replacement));
        assert_eq!(l.events.len(), names.len(), "replaced, not added");
        l.remove_event("chat");
        l.remove_event("never added");
        assert!(l.event("chat").is_none());
        assert!(l.event("chat:typing").is_some() && l.event("message").is_some());
        assert_eq!(l.events.len(), names.len() - 1);
    }
}
