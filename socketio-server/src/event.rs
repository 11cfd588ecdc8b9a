//! Incoming events, acknowledgements, and the arguments of outgoing events.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use serde::de::DeserializeOwned;
use socketio_proto::Value;

/// An event received from a client.
#[derive(Debug)]
pub struct Event {
    /// The event name.
    pub name: String,
    /// The arguments after the name; binary arguments are [`Value::Binary`].
    pub args: Vec<Value>,
    ack: Option<AckSender>,
    request: Option<DataRequest>,
}

/// The HTTP request that carried an event: the long-polling POST (the reference's
/// `socket.conn.transport.dataReq`).
pub type DataRequest = Arc<http::request::Parts>;

impl Event {
    pub(crate) fn new(name: String, args: Vec<Value>, ack: Option<AckSender>) -> Self {
        Event { name, args, ack, request: None }
    }

    pub(crate) fn with_request(mut self, request: Option<DataRequest>) -> Self {
        self.request = request;
        self
    }

    pub(crate) fn into_parts(self) -> (String, Vec<Value>, Option<AckSender>, Option<DataRequest>) {
        (self.name, self.args, self.ack, self.request)
    }

    /// The HTTP request that carried this event when it came in a long-polling POST (its headers, cookies
    /// included, may differ from the handshake's); `None` for an event that came over a WebSocket, whose
    /// only request is the handshake ([`crate::Socket::handshake`]).
    pub fn request(&self) -> Option<&http::request::Parts> {
        self.request.as_deref()
    }

    /// Argument `i`, deserialized.
    pub fn arg<T: DeserializeOwned + 'static>(&self, i: usize) -> Result<T, serde_json::Error> {
        self.args.get(i).cloned().unwrap_or(Value::Null).deserialize_into()
    }

    /// All arguments, deserialized as one value (a tuple, a `Vec`, or a struct from a sequence).
    pub fn args_as<T: DeserializeOwned + 'static>(&self) -> Result<T, serde_json::Error> {
        Value::Array(self.args.clone()).deserialize_into()
    }

    /// Argument `i`, taken out of the event (left `null` in its place) and deserialized: no copy of it is
    /// made, which matters for large or binary arguments.
    pub fn take_arg<T: DeserializeOwned + 'static>(&mut self, i: usize) -> Result<T, serde_json::Error> {
        self.args.get_mut(i).map(std::mem::take).unwrap_or(Value::Null).deserialize_into()
    }

    /// All arguments, taken out of the event and deserialized as one value (as [`Event::args_as`], without
    /// copying them).
    pub fn take_args_as<T: DeserializeOwned + 'static>(&mut self) -> Result<T, serde_json::Error> {
        Value::Array(std::mem::take(&mut self.args)).deserialize_into()
    }

    /// Whether the client asked for an acknowledgement.
    pub fn wants_ack(&self) -> bool {
        self.ack.is_some()
    }

    /// Takes the acknowledgement handle, to answer later or from elsewhere.
    pub fn take_ack(&mut self) -> Option<AckSender> {
        self.ack.take()
    }

    /// Acknowledges with these arguments (does nothing if no ack was asked for or it was already sent).
    pub fn ack(&mut self, args: impl IntoArgs) {
        if let Some(ack) = self.ack.take() {
            ack.send(args);
        }
    }
}

/// Answers one event's acknowledgement; only the first answer is sent.
#[derive(Clone)]
pub struct AckSender {
    reply: Arc<dyn Reply>,
}

impl std::fmt::Debug for AckSender {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AckSender").field("sent", &self.reply.sent().load(Ordering::Relaxed)).finish()
    }
}

/// The socket's side of an acknowledgement: whether it went out, and how to send it. Made by the dispatch
/// of an event (which knows the socket and the ack id), so that this module needs no socket.
trait Reply: Send + Sync {
    fn sent(&self) -> &AtomicBool;
    /// Sends the arguments, or reports why there are none (they could not be serialized).
    fn send(&self, args: Result<Vec<Value>, ArgsError>);
}

struct ReplyWith<F> {
    sent: AtomicBool,
    send: F,
}

impl<F: Fn(Result<Vec<Value>, ArgsError>) + Send + Sync> Reply for ReplyWith<F> {
    fn sent(&self) -> &AtomicBool {
        &self.sent
    }
    fn send(&self, args: Result<Vec<Value>, ArgsError>) {
        (self.send)(args)
    }
}

impl AckSender {
    /// An acknowledgement that `send` delivers (called at most once), or whose serialization error it
    /// reports.
    pub(crate) fn new(send: impl Fn(Result<Vec<Value>, ArgsError>) + Send + Sync + 'static) -> Self {
        AckSender { reply: Arc::new(ReplyWith { sent: AtomicBool::new(false), send }) }
    }

    /// A handle for an event without an acknowledgement: sending on it does nothing.
    pub(crate) fn none() -> Self {
        AckSender { reply: Arc::new(ReplyWith { sent: AtomicBool::new(true), send: |_| {} }) }
    }

    /// Sends the acknowledgement. Arguments that cannot be serialized send nothing and go to the server's
    /// error hook ([`crate::SocketIo::on_handler_error`], as event `"ack"`).
    pub fn send(&self, args: impl IntoArgs) {
        if self.reply.sent().swap(true, Ordering::SeqCst) {
            return;
        }
        self.reply.send(args.into_args());
    }
}

/// Anything that can be the arguments of an event:
/// - a reference to anything `Serialize` (`&order`, `&(1, "two")`, `"text"`): a tuple is one argument per
///   element, `()` none, anything else one argument; bytes (`bytes::Bytes`, `serde_bytes`) stay binary;
/// - by value: `()`, a [`Value`], a `Vec<Value>` (the arguments themselves, as an event handler received
///   them), `String`, numbers, `bool`, `bytes::Bytes`, `serde_json::Value`, or a tuple of values convertible
///   into [`Value`]. These move into the packet without a serialization pass.
///
/// A value that cannot be serialized (a map whose keys are not strings, numbers or bools; a type's own
/// error) is an [`EmitError::Serialize`].
pub trait IntoArgs {
    /// The arguments, in order.
    fn into_args(self) -> Result<Vec<Value>, ArgsError>;
}

/// Why arguments could not be made: the serialization error of a `Serialize` value.
pub type ArgsError = socketio_proto::to_value::Error;

impl<T: serde::Serialize + ?Sized> IntoArgs for &T {
    fn into_args(self) -> Result<Vec<Value>, ArgsError> {
        socketio_proto::to_value::to_args(self)
    }
}

impl IntoArgs for () {
    fn into_args(self) -> Result<Vec<Value>, ArgsError> {
        Ok(Vec::new())
    }
}

impl IntoArgs for Vec<Value> {
    fn into_args(self) -> Result<Vec<Value>, ArgsError> {
        Ok(self)
    }
}

impl IntoArgs for Value {
    fn into_args(self) -> Result<Vec<Value>, ArgsError> {
        Ok(vec![self])
    }
}

impl IntoArgs for serde_json::Value {
    fn into_args(self) -> Result<Vec<Value>, ArgsError> {
        Ok(vec![Value::from(self)])
    }
}

impl IntoArgs for String {
    fn into_args(self) -> Result<Vec<Value>, ArgsError> {
        Ok(vec![Value::from(self)])
    }
}

macro_rules! single_arg {
    ($($t:ty),*) => {$(
        impl IntoArgs for $t {
            fn into_args(self) -> Result<Vec<Value>, ArgsError> {
                Ok(vec![Value::from(self)])
            }
        }
    )*};
}
single_arg!(bool, i32, i64, u32, u64, usize, f64, bytes::Bytes);

macro_rules! tuple_args {
    ($($name:ident),+) => {
        impl<$($name: Into<Value>),+> IntoArgs for ($($name,)+) {
            #[allow(non_snake_case)]
            fn into_args(self) -> Result<Vec<Value>, ArgsError> {
                let ($($name,)+) = self;
                Ok(vec![$($name.into()),+])
            }
        }
    };
}
tuple_args!(A);
tuple_args!(A, B);
tuple_args!(A, B, C);
tuple_args!(A, B, C, D);
tuple_args!(A, B, C, D, E);
tuple_args!(A, B, C, D, E, F);

/// Why an acknowledgement did not come.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum AckError {
    /// The timeout passed first ("operation has timed out").
    #[error("operation has timed out")]
    Timeout,
    /// The socket disconnected first.
    #[error("the socket disconnected before acknowledging")]
    Disconnected,
    /// The event could not be sent (for example a reserved event name).
    #[error(transparent)]
    Emit(#[from] EmitError),
    /// An answer did not deserialize into the type asked for.
    #[error("an answer does not fit the type asked for: {0}")]
    Deserialize(String),
}

/// A broadcast acknowledgement that did not complete: the error and the responses received in time.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{error} ({} responses received)", responses.len())]
pub struct BroadcastAckError {
    /// What went wrong (usually [`AckError::Timeout`]).
    pub error: AckError,
    /// The responses that did arrive, each the ack arguments of one client.
    pub responses: Vec<Vec<Value>>,
}

/// Why an emit was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum EmitError {
    /// The name is one of the reserved events (`connect`, `disconnect`, ...).
    #[error("\"{0}\" is a reserved event name")]
    Reserved(String),
    /// The socket's outgoing queue is full (a slow client).
    #[error("the outgoing queue is full")]
    QueueFull,
    /// The socket is disconnected.
    #[error("the socket is disconnected")]
    Disconnected,
    /// The adapter failed (for example a cluster adapter lost its broker).
    #[error("adapter error: {0}")]
    Adapter(String),
    /// The arguments could not be serialized.
    #[error("the arguments cannot be serialized: {0}")]
    Serialize(String),
}

impl From<ArgsError> for EmitError {
    fn from(e: ArgsError) -> Self {
        EmitError::Serialize(e.to_string())
    }
}

pub(crate) fn check_reserved(event: &str) -> Result<(), EmitError> {
    if socketio_proto::RESERVED_EVENTS.contains(&event) { Err(EmitError::Reserved(event.to_owned())) } else { Ok(()) }
}
