//! The small types every module shares (socket ids, room names, boxed futures), kept in a leaf so that
//! naming one does not pull in the module that happens to use it most.

use std::sync::Arc;

/// The id of a socket (unique per namespace connection, 20 URL-safe characters).
pub type SocketId = Arc<str>;

/// A room name. Every socket is in the room named by its own id.
pub type Room = Arc<str>;

/// A boxed future returned by the asynchronous adapter methods and by handlers.
pub type BoxFuture<'a, T> = std::pin::Pin<Box<dyn std::future::Future<Output = T> + Send + 'a>>;

/// A random 20-character URL-safe id, as the reference's `base64id`.
pub(crate) fn random_id() -> String {
    engineio_proto::handshake::sid_from_bytes(rand::random())
}
