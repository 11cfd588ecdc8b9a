//! The standalone listener: its accept loop, and its HTTP/1.1 connections, served on a small codec of our
//! own so that a connection waiting for its next request, or for the answer to a long-poll, holds no
//! buffer. Hyper keeps an 8 KiB write buffer from a connection's start and an 8 KiB read buffer whenever it
//! waits to read: most of what an idle long-polling session cost, as a client holds two connections (the
//! pending GET's, and the one its POSTs go on).
//!
//! The common requests of the protocol are parsed ([`httparse`]) and answered here: an HTTP/1.1 request
//! without upgrade, `Expect` or chunked body, whose whole body has arrived (a long-poll GET, a small POST, a
//! CORS preflight). Anything else (a WebSocket upgrade, HTTP/1.0, `HEAD`, a chunked, large or slow body, a
//! head that does not parse) goes to hyper, which serves the rest of that connection: every corner of
//! HTTP/1.1 keeps hyper's handling. A connection's first request is looked at (peeked) before it is read,
//! so a WebSocket upgrade reaches hyper on the bare socket; bytes already read go with it otherwise (a
//! later request of a kept-alive connection is read at once).
//!
//! As the reference's Node server, the wait for a request's head is limited: a kept-alive connection with
//! nothing of its next request is closed after `keep_alive_timeout` (5 s), and a head not whole
//! `headers_timeout` (60 s) after its first byte gets 408 (hyper's `header_read_timeout` where hyper serves).
//!
//! Mounted in an application (axum, tower), the endpoint is served by the application's server instead.
//!
//! As hyper does by default, a connection that ends (EOF) while its request is being answered drops the
//! answer: a long-poll whose client went away ends as aborted, as the reference's does.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use bytes::Bytes;
use http::header::{self, HeaderName, HeaderValue};
use http::{Method, Request, Response, StatusCode, Uri, Version};
use http_body_util::{BodyExt as _, Full};
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};

use crate::config::BoxFuture;
use crate::response::ResponseBody;
use crate::service::{Answer, EngineService};

/// Headers a request may carry before it goes to hyper (which allows 100).
const MAX_HEADERS: usize = 48;
/// Bytes of a head (or of pipelined requests) read ahead before the connection goes to hyper.
const MAX_HEAD: usize = 16 * 1024;
/// One read's chunk, on the stack of a synchronous call (never in the connection's future).
const READ_CHUNK: usize = 4096;
/// A response body up to this size goes out in the same write as its head.
const COALESCE: usize = 16 * 1024;

/// Serves an `EngineService` on an already bound listener, one task per connection (HTTP/1.1: the common
/// requests on the crate's own codec, which holds no buffer between them, the rest on hyper).
pub async fn serve_listener(listener: TcpListener, service: EngineService) {
    let mut stopping = service.shared.stopping.subscribe();
    loop {
        let accepted = tokio::select! {
            a = listener.accept() => a,
            _ = stopping.wait_for(|stop| *stop) => return,
        };
        let (stream, remote) = match accepted {
            Ok(x) => x,
            Err(_) => {
                // Out of file descriptors or similar: back off briefly instead of spinning.
                tokio::time::sleep(std::time::Duration::from_millis(20)).await;
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        let svc = EngineService { shared: service.shared.clone(), remote: Some(remote) };
        tokio::spawn(serve(stream, svc));
    }
}

/// Serves one accepted connection until it closes: the connection's task is this future, or hyper's
/// when the connection goes to hyper.
pub(crate) fn serve(stream: TcpStream, svc: EngineService) -> impl Future<Output = ()> + Send + 'static {
    let max_body = svc.shared.config.max_http_buffer_size;
    Connection {
        stream: Some(stream),
        svc,
        buf: Vec::new(),
        max_body,
        keep_alive: true,
        state: State::Head,
        timer: None,
        limit: Limit::New,
        armed: false,
    }
}

/// One connection, a future written by hand so that it holds only what its current step needs (an
/// `async fn` would keep room for every step's locals at once).
struct Connection {
    /// `None` once done.
    stream: Option<TcpStream>,
    svc: EngineService,
    /// Bytes read and not yet consumed; empty (unallocated) between requests.
    buf: Vec<u8>,
    max_body: usize,
    /// Whether the connection stays open after the current response.
    keep_alive: bool,
    state: State,
    /// The timer of the wait for a request's head, made the first time that wait blocks (a connection whose
    /// head is all there at once, a WebSocket's, never has one) and then reset for each wait.
    timer: Option<Pin<Box<tokio::time::Sleep>>>,
    /// The limit the wait for the next head runs under.
    limit: Limit,
    /// Whether `timer` is set for the current wait.
    armed: bool,
}

/// What the wait for a request's head is limited by.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Limit {
    /// A new connection, nothing received yet: `headers_timeout` from its start, then it is closed.
    New,
    /// Between requests, nothing of the next one received: `keep_alive_timeout`, then it is closed.
    Idle,
    /// Part of a head received: `headers_timeout` from its first byte (from the connection's start for
    /// its first request), then 408 and closed.
    Head,
}

enum State {
    /// Waiting for (the rest of) a request's head.
    Head,
    /// The request's handling.
    Answer(BoxFuture<'static, Answer>),
    /// The wait for its response (a long-poll).
    Wait(BoxFuture<'static, Response<ResponseBody>>),
    /// Writing the response: its head (with a small body) then a large body.
    Write { out: Vec<u8>, body: Bytes, at: usize },
    /// Closing after a response that ends the connection.
    Shutdown,
}

/// How a connection's own service ends.
enum End {
    Closed,
    /// Hyper serves the rest (with `buf` read first).
    Hyper,
}

impl Future for Connection {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let this = self.get_mut();
        let Some(mut stream) = this.stream.take() else { return Poll::Ready(()) };
        match this.drive(&mut stream, cx) {
            Poll::Pending => {
                this.stream = Some(stream);
                Poll::Pending
            }
            Poll::Ready(End::Closed) => Poll::Ready(()),
            Poll::Ready(End::Hyper) => {
                let (svc, buf) = (this.svc.clone(), std::mem::take(&mut this.buf));
                if buf.is_empty() {
                    tokio::spawn(hand_to_hyper(stream, svc));
                } else {
                    tokio::spawn(hand_to_hyper(Rewind { read: Bytes::from(buf), stream }, svc));
                }
                Poll::Ready(())
            }
        }
    }
}

impl Connection {
    fn drive(&mut self, stream: &mut TcpStream, cx: &mut Context<'_>) -> Poll<End> {
        loop {
            match &mut self.state {
                State::Head => {
                    if self.buf.is_empty() && self.limit == Limit::New {
                        // A look at a connection's first request before taking it off the socket: one for
                        // hyper (a WebSocket upgrade, whose client opens a connection for it) goes to it
                        // untouched, on the bare socket; a whole head for this codec is taken off and
                        // answered without being parsed a second time. The later requests of a kept-alive
                        // connection (long-polls and POSTs) are read at once, one `recv` each instead of
                        // two; one of them for hyper gets what was read first (`Rewind`).
                        match self.poll_peek(stream, cx) {
                            Poll::Ready(Peek::End(end)) => return Poll::Ready(end),
                            Poll::Ready(Peek::Head(head)) => match self.take_head(stream, cx, head) {
                                Some(end) => return Poll::Ready(end),
                                None => continue,
                            },
                            Poll::Ready(Peek::More) => self.head_begun(),
                            Poll::Pending => match ready!(self.poll_head_timer(cx)) {
                                Some(end) => return Poll::Ready(end),
                                None => continue,
                            },
                        }
                    }
                    if !self.buf.is_empty() {
                        match parse_head(&self.buf, self.max_body) {
                            Parsed::Ready(head) => match self.start(stream, cx, head) {
                                Some(end) => return Poll::Ready(end),
                                None => continue,
                            },
                            Parsed::Partial if self.buf.len() <= MAX_HEAD => self.head_begun(),
                            Parsed::Partial | Parsed::Hyper => return Poll::Ready(End::Hyper),
                        }
                    }
                    match self.poll_read(stream, cx) {
                        Poll::Ready(Ok(0) | Err(_)) => return Poll::Ready(End::Closed),
                        Poll::Ready(Ok(_)) => {}
                        Poll::Pending => match ready!(self.poll_head_timer(cx)) {
                            Some(end) => return Poll::Ready(end),
                            None => continue,
                        },
                    }
                }
                State::Answer(answer) => match answer.as_mut().poll(cx) {
                    Poll::Ready(Answer::Ready(response)) => self.state = self.write(response),
                    Poll::Ready(Answer::Wait(wait)) => self.state = State::Wait(wait),
                    Poll::Pending => return self.watch(stream, cx),
                },
                State::Wait(wait) => match wait.as_mut().poll(cx) {
                    Poll::Ready(response) => self.state = self.write(response),
                    Poll::Pending => return self.watch(stream, cx),
                },
                State::Write { out, body, at } => {
                    while *at < out.len() + body.len() {
                        let rest = if *at < out.len() { &out[*at..] } else { &body[*at - out.len()..] };
                        match ready!(Pin::new(&mut *stream).poll_write(cx, rest)) {
                            Ok(n) if n > 0 => *at += n,
                            _ => return Poll::Ready(End::Closed),
                        }
                    }
                    self.state = if self.keep_alive { State::Head } else { State::Shutdown };
                    (self.limit, self.armed) = (Limit::Idle, false);
                }
                State::Shutdown => {
                    let _ = ready!(Pin::new(&mut *stream).poll_shutdown(cx));
                    return Poll::Ready(End::Closed);
                }
            }
        }
    }

    /// Starts answering a parsed request; `Some` when the connection ends instead (its body is not all
    /// here: hyper streams it).
    fn start(&mut self, stream: &mut TcpStream, cx: &mut Context<'_>, head: Head) -> Option<End> {
        let end = head.len + head.content_length;
        if let Some(ended) = self.read_to(stream, cx, end) {
            return Some(ended);
        }
        let body = Bytes::copy_from_slice(&self.buf[head.len..end]);
        consume(&mut self.buf, end);
        self.keep_alive = !head.close;
        self.state = State::Answer(self.svc.answer(head.into_request(body)));
        None
    }

    /// Part of a head has arrived: the wait for the rest runs under `headers_timeout`.
    fn head_begun(&mut self) {
        match self.limit {
            Limit::Idle => (self.limit, self.armed) = (Limit::Head, false),
            // A new connection's first head: still from the connection's start.
            Limit::New => self.limit = Limit::Head,
            Limit::Head => {}
        }
    }

    /// Waits for the limit of the wait for a head (setting the timer for it first), while that wait
    /// blocks. When it passes: a connection with part of a head gets 408 (`None`: that response is now
    /// the state, written next), any other is closed, as the reference's server does.
    fn poll_head_timer(&mut self, cx: &mut Context<'_>) -> Poll<Option<End>> {
        let config = &self.svc.shared.config;
        let limit = match self.limit {
            Limit::Idle => config.keep_alive_timeout,
            Limit::New | Limit::Head => config.headers_timeout,
        };
        let Some(limit) = limit else { return Poll::Pending };
        if !self.armed {
            let at = tokio::time::Instant::now() + limit;
            match &mut self.timer {
                Some(timer) => timer.as_mut().reset(at),
                None => self.timer = Some(Box::pin(tokio::time::sleep_until(at))),
            }
            self.armed = true;
        }
        if let Some(timer) = &mut self.timer {
            ready!(timer.as_mut().poll(cx));
        }
        self.armed = false;
        if self.limit != Limit::Head {
            return Poll::Ready(Some(End::Closed));
        }
        self.buf = Vec::new();
        self.keep_alive = false;
        let out = b"HTTP/1.1 408 Request Timeout\r\nconnection: close\r\ncontent-length: 0\r\n\r\n".to_vec();
        self.state = State::Write { out, body: Bytes::new(), at: 0 };
        Poll::Ready(None)
    }

    /// Looks at what has arrived without taking it (waiting for it).
    fn poll_peek(&self, stream: &TcpStream, cx: &mut Context<'_>) -> Poll<Peek> {
        let mut chunk = [0u8; READ_CHUNK];
        let mut peeked = ReadBuf::new(&mut chunk);
        Poll::Ready(match ready!(stream.poll_peek(cx, &mut peeked)) {
            Ok(0) | Err(_) => Peek::End(End::Closed),
            Ok(_) => match parse_head(peeked.filled(), self.max_body) {
                Parsed::Hyper => Peek::End(End::Hyper),
                Parsed::Ready(head) => Peek::Head(head),
                Parsed::Partial => Peek::More,
            },
        })
    }

    /// Takes off the socket the head a peek parsed (its bytes are there: the peek saw them), then answers
    /// it as [`Connection::start`] does; `Some` when the connection ends instead.
    fn take_head(&mut self, stream: &mut TcpStream, cx: &mut Context<'_>, head: Head) -> Option<End> {
        // All there after the peek; were it not, hyper would take what was read and the rest.
        if let Some(ended) = self.read_to(stream, cx, head.len) {
            return Some(ended);
        }
        self.start(stream, cx, head)
    }

    /// Reads until `buf` holds `len` bytes, with what has arrived; `Some` when the connection ends
    /// instead: closed, or (the rest not here yet: a slow body) handed to hyper, which streams it.
    fn read_to(&mut self, stream: &mut TcpStream, cx: &mut Context<'_>, len: usize) -> Option<End> {
        while self.buf.len() < len {
            match read_into(stream, cx, &mut self.buf) {
                Ok(0) => return Some(End::Closed),
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Some(End::Hyper),
                Err(_) => return Some(End::Closed),
            }
        }
        None
    }

    /// Reads what has arrived onto `buf`, waiting for it.
    fn poll_read(&mut self, stream: &mut TcpStream, cx: &mut Context<'_>) -> Poll<io::Result<usize>> {
        match read_into(stream, cx, &mut self.buf) {
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => Poll::Pending,
            r => Poll::Ready(r),
        }
    }

    /// While a request is answered: watches the connection. It ending (EOF or error) ends the service
    /// (the answer is dropped: its client is gone); bytes arriving meanwhile (a pipelined request) are
    /// kept, up to a bound.
    fn watch(&mut self, stream: &mut TcpStream, cx: &mut Context<'_>) -> Poll<End> {
        while self.buf.len() <= MAX_HEAD {
            match ready!(self.poll_read(stream, cx)) {
                Ok(0) | Err(_) => return Poll::Ready(End::Closed),
                Ok(_) => {}
            }
        }
        Poll::Pending
    }

    /// The step that writes `response`.
    fn write(&mut self, response: Response<ResponseBody>) -> State {
        let (parts, body) = response.into_parts();
        // A `Full` body is one frame, ready at once.
        let body = futures_util::FutureExt::now_or_never(body.collect()).and_then(Result::ok).map(|c| c.to_bytes());
        let mut body = body.unwrap_or_default();
        let closing = closes(&parts.headers);
        self.keep_alive &= !closing;
        let no_body = parts.status.is_informational()
            || parts.status == StatusCode::NO_CONTENT
            || parts.status == StatusCode::NOT_MODIFIED;
        if no_body {
            body = Bytes::new();
        }
        let mut out = head_bytes(&parts, (!no_body).then_some(body.len()), !self.keep_alive && !closing);
        if body.len() <= COALESCE {
            out.extend_from_slice(&body);
            body = Bytes::new();
        }
        State::Write { out, body, at: 0 }
    }
}

/// Reads what the socket has onto the end of `buf`; `WouldBlock` when it has nothing (the task is then
/// woken when it has). Through tokio's `poll_read`, which marks the socket not readable after a read
/// shorter than the chunk (the socket's buffer is drained): the next wait for a request, or the watch
/// while one is answered, then costs no `recv` that would only find nothing.
fn read_into(stream: &mut TcpStream, cx: &mut Context<'_>, buf: &mut Vec<u8>) -> io::Result<usize> {
    let mut chunk = [0u8; READ_CHUNK];
    let mut read = ReadBuf::new(&mut chunk);
    match Pin::new(stream).poll_read(cx, &mut read) {
        Poll::Ready(Ok(())) => {
            buf.extend_from_slice(read.filled());
            Ok(read.filled().len())
        }
        Poll::Ready(Err(e)) => Err(e),
        Poll::Pending => Err(io::ErrorKind::WouldBlock.into()),
    }
}

/// Drops the first `n` bytes of `buf`; an emptied buffer gives its memory back.
fn consume(buf: &mut Vec<u8>, n: usize) {
    if n >= buf.len() {
        *buf = Vec::new();
    } else {
        buf.drain(..n);
    }
}

/// A request head this codec answers.
#[derive(Debug)]
struct Head {
    method: Method,
    uri: Uri,
    headers: http::HeaderMap,
    /// Bytes of the head, blank line included.
    len: usize,
    content_length: usize,
    /// `Connection: close`.
    close: bool,
}

impl Head {
    fn into_request(self, body: Bytes) -> Request<Full<Bytes>> {
        let mut req = Request::new(Full::new(body));
        *req.method_mut() = self.method;
        *req.uri_mut() = self.uri;
        *req.version_mut() = Version::HTTP_11;
        *req.headers_mut() = self.headers;
        req
    }
}

/// What a peek at the next request found. Only ever a local, as [`Parsed`].
#[allow(clippy::large_enum_variant)]
enum Peek {
    End(End),
    /// A whole head for this codec, not yet taken off the socket.
    Head(Head),
    /// Not a whole head yet: read it.
    More,
}

/// Only ever a local (never kept in a future), so its size does not matter.
#[allow(clippy::large_enum_variant)]
#[derive(Debug)]
enum Parsed {
    Ready(Head),
    /// More bytes are needed.
    Partial,
    /// Not one this codec answers: hyper takes the connection.
    Hyper,
}

/// Parses the head at the start of `buf`. A body longer than `max_body` goes to hyper (which streams it to
/// the endpoint, which answers 413 without reading it all).
fn parse_head(buf: &[u8], max_body: usize) -> Parsed {
    let mut slots = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut req = httparse::Request::new(&mut slots);
    let len = match req.parse(buf) {
        Ok(httparse::Status::Complete(len)) => len,
        Ok(httparse::Status::Partial) => return Parsed::Partial,
        Err(_) => return Parsed::Hyper,
    };
    if req.version != Some(1) {
        return Parsed::Hyper;
    }
    let method = match req.method.map(|m| Method::from_bytes(m.as_bytes())) {
        Some(Ok(m)) if m != Method::HEAD && m != Method::CONNECT => m,
        _ => return Parsed::Hyper,
    };
    let Some(Ok(uri)) = req.path.map(Uri::try_from) else { return Parsed::Hyper };
    let mut headers = http::HeaderMap::with_capacity(req.headers.len());
    let mut content_length: Option<usize> = None;
    let mut close = false;
    for h in req.headers.iter() {
        let (Ok(name), Ok(value)) = (HeaderName::from_bytes(h.name.as_bytes()), HeaderValue::from_bytes(h.value))
        else {
            return Parsed::Hyper;
        };
        if name == header::TRANSFER_ENCODING || name == header::EXPECT || name == header::UPGRADE {
            return Parsed::Hyper;
        }
        if name == header::CONNECTION {
            let Ok(tokens) = value.to_str() else { return Parsed::Hyper };
            for token in tokens.split(',').map(str::trim) {
                if token.eq_ignore_ascii_case("upgrade") {
                    return Parsed::Hyper;
                }
                close |= token.eq_ignore_ascii_case("close");
            }
        }
        if name == header::CONTENT_LENGTH {
            let n = match std::str::from_utf8(h.value)
                .ok()
                .filter(|v| !v.is_empty() && v.bytes().all(|b| b.is_ascii_digit()))
            {
                Some(v) => match v.parse::<usize>() {
                    Ok(n) => n,
                    Err(_) => return Parsed::Hyper,
                },
                None => return Parsed::Hyper,
            };
            if content_length.is_some_and(|c| c != n) || n > max_body {
                return Parsed::Hyper;
            }
            content_length = Some(n);
        }
        headers.append(name, value);
    }
    Parsed::Ready(Head { method, uri, headers, len, content_length: content_length.unwrap_or(0), close })
}

fn closes(headers: &http::HeaderMap) -> bool {
    headers
        .get_all(header::CONNECTION)
        .iter()
        .any(|v| v.to_str().is_ok_and(|v| v.split(',').any(|t| t.trim().eq_ignore_ascii_case("close"))))
}

/// The status line and headers, as hyper writes them: lowercase names, `date`, the body's
/// `content-length` (none on a response without a body), and `connection: close` when `add_close` (the
/// connection ends after it and the response does not say so already).
fn head_bytes(parts: &http::response::Parts, content_length: Option<usize>, add_close: bool) -> Vec<u8> {
    let mut out = Vec::with_capacity(256);
    out.extend_from_slice(b"HTTP/1.1 ");
    out.extend_from_slice(parts.status.as_str().as_bytes());
    out.push(b' ');
    out.extend_from_slice(parts.status.canonical_reason().unwrap_or("").as_bytes());
    out.extend_from_slice(b"\r\n");
    for (name, value) in &parts.headers {
        if name == header::CONTENT_LENGTH || name == header::TRANSFER_ENCODING {
            continue;
        }
        out.extend_from_slice(name.as_str().as_bytes());
        out.extend_from_slice(b": ");
        out.extend_from_slice(value.as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    if add_close {
        out.extend_from_slice(b"connection: close\r\n");
    }
    if !parts.headers.contains_key(header::DATE) {
        out.extend_from_slice(b"date: ");
        push_date(&mut out);
        out.extend_from_slice(b"\r\n");
    }
    if let Some(n) = content_length {
        out.extend_from_slice(b"content-length: ");
        out.extend_from_slice(n.to_string().as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b"\r\n");
    out
}

thread_local! {
    /// The `date` header's value and the second it was written for: formatted once a second per thread,
    /// as hyper caches it, not once per response.
    static DATE: std::cell::RefCell<(u64, String)> = const { std::cell::RefCell::new((0, String::new())) };
}

/// Appends the current `date` value (IMF-fixdate).
fn push_date(out: &mut Vec<u8>) {
    let now = std::time::SystemTime::now();
    let second = now.duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs());
    DATE.with(|date| {
        let mut date = date.borrow_mut();
        if date.0 != second || date.1.is_empty() {
            *date = (second, httpdate::fmt_http_date(now));
        }
        out.extend_from_slice(date.1.as_bytes());
    });
}

/// Hyper serves the rest of the connection.
async fn hand_to_hyper<I>(io: I, svc: EngineService)
where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let mut builder = hyper::server::conn::http1::Builder::new();
    // The same limit on a head as this codec's.
    builder.timer(hyper_util::rt::TokioTimer::new()).header_read_timeout(svc.shared.config.headers_timeout);
    let _ = builder.serve_connection(TokioIo::new(io), svc).with_upgrades().await;
}

/// A connection whose first bytes were already read: they are read again, then the socket.
#[derive(Debug)]
pub(crate) struct Rewind {
    read: Bytes,
    stream: TcpStream,
}

impl AsyncRead for Rewind {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if !this.read.is_empty() {
            let n = this.read.len().min(buf.remaining());
            buf.put_slice(&this.read.split_to(n));
            if this.read.is_empty() {
                this.read = Bytes::new();
            }
            return Poll::Ready(Ok(()));
        }
        Pin::new(&mut this.stream).poll_read(cx, buf)
    }
}

impl AsyncWrite for Rewind {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().stream).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().stream).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().stream).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().stream).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ready(raw: &str) -> Head {
        match parse_head(raw.as_bytes(), 1000) {
            Parsed::Ready(h) => h,
            other => panic!("{raw:?}: {other:?}"),
        }
    }

    fn hyper(raw: &str) {
        assert!(matches!(parse_head(raw.as_bytes(), 1000), Parsed::Hyper), "{raw:?} should go to hyper");
    }

    /// What an idle connection's task holds: its cell (header, this future, trailer) in jemalloc's 384-byte
    /// class (hyper's connection holds two 8 KiB buffers besides).
    #[test]
    fn an_idle_connection_is_small() {
        fn future_size<F: FnOnce(TcpStream, EngineService) -> Fut, Fut>(_: F) -> usize {
            std::mem::size_of::<Fut>()
        }
        assert!(future_size(serve) <= 192, "{}", future_size(serve));
    }

    #[test]
    fn parses_a_long_poll_and_a_post() {
        let get =
            "GET /engine.io/?EIO=4&transport=polling&sid=abc HTTP/1.1\r\nHost: x\r\nCookie: a=1\r\nCookie: b=2\r\n\r\n";
        let h = ready(get);
        assert_eq!((h.method.clone(), h.len, h.content_length, h.close), (Method::GET, get.len(), 0, false));
        assert_eq!(h.uri.query(), Some("EIO=4&transport=polling&sid=abc"));
        assert_eq!(h.headers.get_all("cookie").iter().count(), 2, "repeated headers are all kept, in order");
        let post = "POST /engine.io/?EIO=4 HTTP/1.1\r\nContent-Length: 5\r\nConnection: keep-alive, close\r\n\r\n4ping";
        let h = ready(post);
        assert_eq!((h.method, h.len, h.content_length, h.close), (Method::POST, post.len() - 5, 5, true));
    }

    #[test]
    fn waits_for_the_rest_of_a_head() {
        assert!(matches!(parse_head(b"GET / HTTP/1.1\r\nHost: x\r\n", 1000), Parsed::Partial));
        assert!(matches!(parse_head(b"GE", 1000), Parsed::Partial));
    }

    #[test]
    fn leaves_everything_else_to_hyper() {
        hyper("GET / HTTP/1.0\r\n\r\n");
        hyper("HEAD / HTTP/1.1\r\n\r\n");
        hyper("GET / HTTP/1.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n");
        hyper("GET / HTTP/1.1\r\nConnection: keep-alive, Upgrade\r\n\r\n");
        hyper("POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n");
        hyper("POST / HTTP/1.1\r\nExpect: 100-continue\r\nContent-Length: 3\r\n\r\n");
        hyper("POST / HTTP/1.1\r\nContent-Length: 1001\r\n\r\n");
        hyper("POST / HTTP/1.1\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\n");
        hyper("POST / HTTP/1.1\r\nContent-Length: +3\r\n\r\n");
        hyper("POST / HTTP/1.1\r\nContent-Length: 99999999999999999999999\r\n\r\n");
        hyper("GET /\x01 HTTP/1.1\r\n\r\n");
        hyper("GET / HTTP/1.1\r\nBad Header: 1\r\n\r\n");
        let many: String = (0..MAX_HEADERS + 1).map(|i| format!("X-{i}: 1\r\n")).collect();
        hyper(&format!("GET / HTTP/1.1\r\n{many}\r\n"));
        // The same length twice is one length.
        assert_eq!(ready("POST / HTTP/1.1\r\nContent-Length: 3\r\nContent-Length: 3\r\n\r\n").content_length, 3);
    }

    #[test]
    fn the_date_is_the_current_one() {
        // A value cached for an earlier second is not reused.
        DATE.with(|d| *d.borrow_mut() = (1, "Thu, 01 Jan 1970 00:00:01 GMT".to_owned()));
        let mut out = Vec::new();
        push_date(&mut out);
        let date = httpdate::parse_http_date(std::str::from_utf8(&out).unwrap()).expect("an HTTP date");
        let off = std::time::SystemTime::now().duration_since(date).unwrap_or_default();
        assert!(off < std::time::Duration::from_secs(2), "{off:?}");
    }

    #[test]
    fn writes_heads_as_hyper_does() {
        let mut res = Response::new(());
        res.headers_mut().insert("content-type", HeaderValue::from_static("text/plain"));
        res.headers_mut().append("set-cookie", HeaderValue::from_static("a=1"));
        res.headers_mut().append("set-cookie", HeaderValue::from_static("b=2"));
        res.headers_mut().insert("content-length", HeaderValue::from_static("99"));
        let (parts, ()) = res.into_parts();
        let head = String::from_utf8(head_bytes(&parts, Some(2), false)).unwrap();
        assert!(
            head.starts_with("HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\nset-cookie: a=1\r\nset-cookie: b=2\r\n")
        );
        assert!(head.contains("\r\ndate: ") && head.ends_with("content-length: 2\r\n\r\n"), "{head}");
        assert!(!head.contains("99") && !head.contains("connection"));
        let head = String::from_utf8(head_bytes(&parts, None, true)).unwrap();
        assert!(head.contains("connection: close\r\n") && !head.contains("content-length"), "{head}");
    }
}
