//! Typed arguments for event handlers. An event handler is a closure of up to eight arguments, each of a
//! type that knows how to take itself from the incoming event ([`FromEvent`]):
//!
//! | argument | what it is |
//! |---|---|
//! | [`Socket`] | the socket that received the event |
//! | [`Data<T>`] | the next argument of the event, moved out and deserialized (one `Data` per argument, in order) |
//! | [`TryData<T>`] | the same, with the deserialization error instead of refusing the call |
//! | [`Args<T>`] | every remaining argument, deserialized as one value (a tuple, a `Vec`, a struct) |
//! | [`AckSender`] | the acknowledgement handle (sending on it does nothing if the client asked for none) |
//! | `Option<AckSender>` | the acknowledgement handle, if the client asked for one |
//! | [`State<T>`] | the application state of type `T` kept with [`crate::SocketIo::set_state`] |
//! | [`SocketIo`] | the server |
//! | [`Request`] | the HTTP request that carried the event, when it came in a long-polling POST |
//! | [`Event`] | the rest of the event: its name, the arguments not taken yet, its acknowledgement |
//!
//! ```no_run
//! # use socketio_server::{SocketIo, Socket};
//! use socketio_server::extract::{Data, State};
//! use socketio_server::AckSender;
//!
//! #[derive(serde::Deserialize)]
//! struct Order { item: String, quantity: u32 }
//! struct Stock(std::sync::Mutex<u32>);
//!
//! let io = SocketIo::default();
//! io.set_state(Stock(std::sync::Mutex::new(10)));
//! io.on_connection(|socket: Socket| async move {
//!     socket.on("order", |Data(order): Data<Order>, State(stock): State<Stock>, ack: AckSender| async move {
//!         let mut left = stock.0.lock().unwrap();
//!         *left = left.saturating_sub(order.quantity);
//!         ack.send(&(order.item, *left));
//!     });
//! });
//! ```
//!
//! Arguments are taken in the order of the closure's parameters. When one cannot be taken (a `Data<T>` that
//! does not deserialize, a `State<T>` never set), the handler is not called and the [`ExtractError`] goes to
//! the server's error hook ([`crate::SocketIo::on_handler_error`]) with the event's name. A closure that
//! takes `(Socket, Event)` is the plain form: the event as it came.

use std::future::Future;
use std::sync::Arc;

use serde::de::DeserializeOwned;
use socketio_proto::Value;

use crate::event::{AckSender, DataRequest, Event};
use crate::handler::{HandlerResult, report};
use crate::server::SocketIo;
use crate::socket::Socket;
use crate::types::BoxFuture;

/// What an event handler's arguments are taken from: the socket and the parts of the event not taken yet.
pub struct EventParts {
    socket: Socket,
    name: String,
    args: Vec<Value>,
    /// Arguments before this one were taken by [`Data`] or [`TryData`].
    next: usize,
    ack: Option<AckSender>,
    request: Option<DataRequest>,
    /// Whether the name must stay here after an [`Event`] is taken (it is needed to report an error).
    keep_name: bool,
}

impl std::fmt::Debug for EventParts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EventParts").field("name", &self.name).field("next", &self.next).finish_non_exhaustive()
    }
}

impl EventParts {
    /// The socket that received the event.
    pub fn socket(&self) -> &Socket {
        &self.socket
    }

    /// The event's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The arguments not taken yet.
    pub fn remaining_args(&self) -> &[Value] {
        &self.args[self.next.min(self.args.len())..]
    }

    /// Takes the next argument (`null` past the last one), returning it with its index.
    pub fn take_next_arg(&mut self) -> (usize, Value) {
        let i = self.next;
        self.next += 1;
        (i, self.args.get_mut(i).map(std::mem::take).unwrap_or(Value::Null))
    }

    /// Takes every remaining argument.
    pub fn take_remaining_args(&mut self) -> Vec<Value> {
        let start = self.next.min(self.args.len());
        self.next = self.args.len();
        if start == 0 { std::mem::take(&mut self.args) } else { self.args.split_off(start) }
    }

    /// Takes the acknowledgement handle, if the client asked for one and it was not taken yet.
    pub fn take_ack(&mut self) -> Option<AckSender> {
        self.ack.take()
    }
}

/// Why a handler argument could not be taken from an event; the handler was not called.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ExtractError {
    /// Argument `index` did not deserialize into the handler's type.
    #[error("argument {index} of the event: {source}")]
    Data {
        /// The argument's position (0 is the first after the event name).
        index: usize,
        /// The deserialization error.
        source: serde_json::Error,
    },
    /// The remaining arguments did not deserialize into the handler's type.
    #[error("the arguments of the event: {0}")]
    Args(serde_json::Error),
    /// No application state of this type was kept with [`crate::SocketIo::set_state`].
    #[error("no application state of type {0} (see SocketIo::set_state)")]
    MissingState(&'static str),
    /// The server was dropped.
    #[error("the server is gone")]
    ServerGone,
}

/// A handler argument: takes itself from the event.
pub trait FromEvent: Sized {
    /// Takes the value from what is left of the event.
    fn from_event(parts: &mut EventParts) -> Result<Self, ExtractError>;
}

/// The next argument of the event, moved out of it (no copy) and deserialized into `T`. A missing
/// argument is `null` (so `Data<Option<T>>` is `None`).
#[derive(Debug, Clone, PartialEq)]
pub struct Data<T>(pub T);

impl<T: DeserializeOwned + 'static> FromEvent for Data<T> {
    fn from_event(parts: &mut EventParts) -> Result<Self, ExtractError> {
        let (index, value) = parts.take_next_arg();
        value.deserialize_into().map(Data).map_err(|source| ExtractError::Data { index, source })
    }
}

/// The next argument of the event, as [`Data`], with the deserialization error instead of a refusal: for
/// handlers that answer bad input themselves.
#[derive(Debug)]
pub struct TryData<T>(pub Result<T, serde_json::Error>);

impl<T: DeserializeOwned + 'static> FromEvent for TryData<T> {
    fn from_event(parts: &mut EventParts) -> Result<Self, ExtractError> {
        Ok(TryData(parts.take_next_arg().1.deserialize_into()))
    }
}

/// Every argument not taken yet, deserialized as one sequence: a tuple (`Args<(String, u32)>`), a `Vec`, or
/// a struct from a sequence.
#[derive(Debug, Clone, PartialEq)]
pub struct Args<T>(pub T);

impl<T: DeserializeOwned + 'static> FromEvent for Args<T> {
    fn from_event(parts: &mut EventParts) -> Result<Self, ExtractError> {
        Value::Array(parts.take_remaining_args()).deserialize_into().map(Args).map_err(ExtractError::Args)
    }
}

/// The application state of type `T`, kept with [`crate::SocketIo::set_state`].
#[derive(Debug)]
pub struct State<T>(pub Arc<T>);

impl<T> Clone for State<T> {
    fn clone(&self) -> Self {
        State(self.0.clone())
    }
}

impl<T> std::ops::Deref for State<T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.0
    }
}

impl<T: Send + Sync + 'static> FromEvent for State<T> {
    fn from_event(parts: &mut EventParts) -> Result<Self, ExtractError> {
        let io = parts.socket.io().ok_or(ExtractError::ServerGone)?;
        io.state::<T>().map(State).ok_or(ExtractError::MissingState(std::any::type_name::<T>()))
    }
}

impl FromEvent for Socket {
    fn from_event(parts: &mut EventParts) -> Result<Self, ExtractError> {
        Ok(parts.socket.clone())
    }
}

impl FromEvent for SocketIo {
    fn from_event(parts: &mut EventParts) -> Result<Self, ExtractError> {
        parts.socket.io().ok_or(ExtractError::ServerGone)
    }
}

/// The HTTP request that carried the event, if it came in a long-polling POST (see [`Event::request`]).
#[derive(Debug, Clone)]
pub struct Request(pub Option<DataRequest>);

impl FromEvent for Request {
    fn from_event(parts: &mut EventParts) -> Result<Self, ExtractError> {
        Ok(Request(parts.request.clone()))
    }
}

/// The acknowledgement handle; when the client asked for none (or an earlier argument took it), sending on
/// it does nothing.
impl FromEvent for AckSender {
    fn from_event(parts: &mut EventParts) -> Result<Self, ExtractError> {
        Ok(parts.ack.take().unwrap_or_else(AckSender::none))
    }
}

impl FromEvent for Option<AckSender> {
    fn from_event(parts: &mut EventParts) -> Result<Self, ExtractError> {
        Ok(parts.ack.take())
    }
}

/// The rest of the event: its name, the arguments no earlier parameter took, and its acknowledgement
/// unless an earlier parameter took it.
impl FromEvent for Event {
    fn from_event(parts: &mut EventParts) -> Result<Self, ExtractError> {
        let name = if parts.keep_name { parts.name.clone() } else { std::mem::take(&mut parts.name) };
        Ok(Event::new(name, parts.take_remaining_args(), parts.ack.take()).with_request(parts.request.take()))
    }
}

/// An event handler: a closure (or function) of up to eight [`FromEvent`] arguments, `Clone` (it is cloned
/// for each call), returning a future that ends with `()` or a `Result` (see [`crate::handler`]). `T` is the
/// tuple of its argument types; it only tells the implementations apart.
pub trait EventHandler<T>: Clone + Send + Sync + 'static {
    /// Takes the arguments from the event and calls the handler: the future reports the handler's error,
    /// or the [`ExtractError`] if an argument could not be taken.
    fn call(self, socket: Socket, event: Event) -> BoxFuture<'static, ()>;
}

macro_rules! event_handler {
    ($($arg:ident),*) => {
        impl<F, Fut, $($arg,)*> EventHandler<($($arg,)*)> for F
        where
            F: FnOnce($($arg),*) -> Fut + Clone + Send + Sync + 'static,
            Fut: Future + Send + 'static,
            Fut::Output: HandlerResult,
            $($arg: FromEvent,)*
        {
            #[allow(non_snake_case, unused_mut)]
            fn call(self, socket: Socket, event: Event) -> BoxFuture<'static, ()> {
                let (name, args, ack, request) = event.into_parts();
                const COUNT: usize = <[&str]>::len(&[$(stringify!($arg)),*]);
                let mut parts = EventParts {
                    socket,
                    name,
                    args,
                    next: 0,
                    ack,
                    request,
                    keep_name: <Fut::Output as HandlerResult>::CAN_FAIL || COUNT > 1,
                };
                $(
                    let $arg = match $arg::from_event(&mut parts) {
                        Ok(v) => v,
                        Err(e) => {
                            parts.socket.handler_failed(&parts.name, &e.into());
                            return Box::pin(std::future::ready(()));
                        }
                    };
                )*
                // What an error report needs, moved (not cloned) out of the parts, only when it can fail.
                let EventParts { socket, name, .. } = parts;
                let on_error = <Fut::Output as HandlerResult>::CAN_FAIL.then(|| (socket, name));
                report(self($($arg),*), on_error)
            }
        }
    };
}

event_handler!();
event_handler!(A);
event_handler!(A, B);
event_handler!(A, B, C);
event_handler!(A, B, C, D);
event_handler!(A, B, C, D, E);
event_handler!(A, B, C, D, E, G);
event_handler!(A, B, C, D, E, G, H);
event_handler!(A, B, C, D, E, G, H, I);
