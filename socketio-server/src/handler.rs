//! What the application's handlers may be and return. A handler is a closure that is `Clone` and is
//! cloned once per call, so an `async move` block can take what the closure captured without a clone of
//! its own:
//!
//! ```no_run
//! # use socketio_server::{SocketIo, Socket, Event};
//! # let io = SocketIo::default();
//! let rooms = std::sync::Arc::new(std::sync::Mutex::new(Vec::<String>::new()));
//! io.on_connection(move |socket: Socket| async move {
//!     let rooms = rooms.clone();
//!     socket.on("join", move |s: Socket, ev: Event| async move {
//!         let room: String = ev.arg(0)?;
//!         s.join(room.as_str());
//!         rooms.lock().unwrap().push(room);
//!         Ok::<_, serde_json::Error>(())
//!     });
//! });
//! ```
//!
//! A handler's future may end with `()` or with a `Result`; an error goes to the server's error hook
//! ([`crate::SocketIo::on_handler_error`]), with the socket and the event it handled.
//!
//! The policy for emits: `emit` returns a `Result`, because its failures are facts the application may
//! want (a reserved name, a client too slow to take its data, a socket gone, arguments that do not
//! serialize). In a handler that returns a `Result`, `?` sends them to the error hook; write `let _ =` only
//! where dropping them is the intent (a best-effort notification).

use std::future::Future;
use std::sync::Arc;

use crate::socket::Socket;
use crate::types::BoxFuture;

/// An error a handler returned.
pub type HandlerError = Box<dyn std::error::Error + Send + Sync>;

/// The hook that receives handlers' errors: the socket, the event (`"connection"`, `"disconnect"` or
/// `"disconnecting"` for those handlers), and the error.
pub(crate) type ErrorHook = Arc<dyn Fn(&Socket, &str, &HandlerError) + Send + Sync>;

/// What a handler's future ends with: `()`, or a `Result` whose error goes to the error hook.
pub trait HandlerResult: Send + 'static {
    /// Whether it can be an error (so the caller keeps what the report needs only when it can).
    const CAN_FAIL: bool;
    /// The error, if it is one.
    fn into_error(self) -> Option<HandlerError>;
}

impl HandlerResult for () {
    const CAN_FAIL: bool = false;
    fn into_error(self) -> Option<HandlerError> {
        None
    }
}

impl<E: Into<HandlerError> + Send + 'static> HandlerResult for Result<(), E> {
    const CAN_FAIL: bool = true;
    fn into_error(self) -> Option<HandlerError> {
        self.err().map(Into::into)
    }
}

/// Runs a handler's future, reporting its error (if it can have one) for the socket and the event that
/// `on_error` names: given only when the result can be an error, so a handler ending with `()` costs no
/// clone of the socket or the name.
pub(crate) fn report<Fut>(fut: Fut, on_error: Option<(Socket, String)>) -> BoxFuture<'static, ()>
where
    Fut: Future + Send + 'static,
    Fut::Output: HandlerResult,
{
    Box::pin(async move {
        if let Some(err) = fut.await.into_error()
            && let Some((socket, what)) = on_error
        {
            socket.handler_failed(&what, &err);
        }
    })
}

/// What [`report`] needs, when a handler returning `R` can fail.
pub(crate) fn on_error<R: HandlerResult>(socket: &Socket, what: impl FnOnce() -> String) -> Option<(Socket, String)> {
    R::CAN_FAIL.then(|| (socket.clone(), what()))
}
