//! Running application code: handlers, listeners and middlewares are called with their panics contained,
//! and the futures they return run inline until they wait.

use std::task::Context;

use crate::types::BoxFuture;

/// Runs a future to completion: first polled here, so handlers that finish at once run inline and in
/// order; one that waits is spawned to finish on the runtime. A panic in it ends it there (see
/// [`contain`]).
pub(crate) fn run_detached(fut: BoxFuture<'static, ()>) {
    run_detached_in(fut, &tracing::Span::current());
}

/// [`run_detached`] inside `span` (a socket's): the inline poll enters it, and a spawned rest carries it.
pub(crate) fn run_detached_in(fut: BoxFuture<'static, ()>, span: &tracing::Span) {
    if span.is_none() {
        // No subscriber wants the span: nothing to enter or carry (the common case costs no span work).
        if let Some(rest) = poll_inline(fut) {
            tokio::spawn(rest);
        }
    } else if let Some(rest) = span.in_scope(|| poll_inline(fut)) {
        tokio::spawn(tracing::Instrument::instrument(rest, span.clone()));
    }
}

/// Polls a future once, here, its panic contained; what is left of it if it waits.
fn poll_inline(fut: BoxFuture<'static, ()>) -> Option<impl std::future::Future<Output = ()> + Send + 'static> {
    use futures_util::FutureExt as _;
    let mut fut = std::panic::AssertUnwindSafe(fut).catch_unwind().map(|r| {
        if r.is_err() {
            tracing::warn!(target: "socketio_server::handler", "application code panicked; that call was dropped");
        }
    });
    let mut cx = Context::from_waker(std::task::Waker::noop());
    fut.poll_unpin(&mut cx).is_pending().then_some(fut)
}

/// Runs application code (a handler, a listener, a middleware): a panic in it ends that call and no more.
/// The panic hook has already reported it; the socket, its session and the server go on (no lock is held
/// across application code, so none is poisoned). `None` if it panicked.
pub(crate) fn contain<R>(f: impl FnOnce() -> R) -> Option<R> {
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)).ok();
    if result.is_none() {
        tracing::warn!(target: "socketio_server::handler", "application code panicked; that call was dropped");
    }
    result
}

/// Calls a handler and runs the future it returns as [`run_detached_in`] does, inside the socket's span
/// (entered once for the call and the inline poll); a panic in either is contained.
pub(crate) fn run_handler(span: &tracing::Span, f: impl FnOnce() -> BoxFuture<'static, ()>) {
    if span.is_none() {
        if let Some(rest) = contain(f).and_then(poll_inline) {
            tokio::spawn(rest);
        }
    } else if let Some(rest) = span.in_scope(|| contain(f).and_then(poll_inline)) {
        tokio::spawn(tracing::Instrument::instrument(rest, span.clone()));
    }
}
