//! HTTP long-polling: the polling handshake, a long-poll GET handed to its session and answered (gzip or
//! deflate when the client accepts it), a POST's body checked and delivered.

use std::io::Write as _;
use std::sync::Arc;

use bytes::Bytes;
use engineio_proto::{ErrorCode, Protocol, Session, TransportKind};
use http::header::{self, HeaderMap, HeaderValue};
use http::{Response, StatusCode, request};
use http_body::Body;
use http_body_util::{BodyExt, LengthLimitError, Limited};
use tokio::sync::oneshot;

use crate::config::BoxError;
use crate::driver::Driver;
use crate::mailbox::{Command, PollBody, PollError};
use crate::response::{ResponseBody, plain, polling_headers, refuse};
use crate::shared::{EngineShared, Slot, new_socket};
use crate::socket::Socket;
use engineio_proto::endpoint::Refusal;

pub(crate) async fn polling_handshake(
    shared: &Arc<EngineShared>,
    parts: Arc<request::Parts>,
    mut extra: HeaderMap,
    slot: Slot,
    base64: bool,
) -> Response<ResponseBody> {
    let Some(socket) = new_socket(shared, parts.clone(), TransportKind::Polling, slot.address) else {
        let refusal = Refusal::new(ErrorCode::BadRequest, false);
        return refuse(shared, &parts, refusal, Some("generate_id panicked"), extra);
    };
    // The application's hooks run before the session exists: one that panics leaves nothing behind.
    polling_headers(shared, &parts, &mut extra, Some(socket.sid()));
    let now = crate::clock::now();
    let mut session = Session::with_protocol(
        socket.protocol(),
        socket.sid().to_owned(),
        shared.session_config.clone(),
        TransportKind::Polling,
        now,
        shared.config.initial_packet.clone(),
    );
    // A JSONP client reads text only (engine.io-client sends b64 with it anyway).
    session.set_polling_base64(base64 || socket.shared.jsonp.is_some());
    session.handle_poll(now).expect("a new session accepts its first poll");
    let (tx, reply) = oneshot::channel();
    shared.sessions.insert(&socket);
    slot.keep();
    let jsonp = socket.shared.jsonp.clone();
    Box::new(Driver::new(shared.sessions.clone(), session, socket, None, Some(tx))).spawn(TransportKind::Polling);
    poll_response(shared, &parts, jsonp.as_deref(), reply.await.unwrap_or(Err(PollError::Closed)), extra)
}

/// A long-poll GET, answered when its session has something to send. It owns what it needs (a boxed head):
/// a connection holds this future for as long as the poll lasts.
pub(crate) async fn poll(
    shared: Arc<EngineShared>,
    parts: Box<request::Parts>,
    socket: Socket,
    mut extra: HeaderMap,
) -> Response<ResponseBody> {
    polling_headers(&shared, &parts, &mut extra, None);
    let (tx, reply) = oneshot::channel();
    if socket.shared.mailbox.send_control(Command::Poll(tx)).is_err() {
        return poll_response(&shared, &parts, None, Err(PollError::Closed), extra);
    }
    let reply = reply.await.unwrap_or(Err(PollError::Closed));
    poll_response(&shared, &parts, socket.shared.jsonp.as_deref(), reply, extra)
}

/// The answer to a long-poll GET: the payload (a JSONP session's wrapped in its callback), or the error.
pub(crate) fn poll_response(
    shared: &EngineShared,
    parts: &request::Parts,
    jsonp: Option<&str>,
    reply: Result<PollBody, PollError>,
    extra: HeaderMap,
) -> Response<ResponseBody> {
    match reply {
        Ok(PollBody { body, binary }) => {
            let body = match jsonp {
                Some(index) => engineio_proto::jsonp::wrap(index, &body),
                None => body,
            };
            let (body, encoding) = compress(shared, parts, body);
            let content_type = if binary { "application/octet-stream" } else { "text/plain; charset=UTF-8" };
            let mut res = plain(StatusCode::OK, content_type, body, extra);
            if let Some(encoding) = encoding {
                res.headers_mut().insert(header::CONTENT_ENCODING, HeaderValue::from_static(encoding));
            }
            res
        }
        Err(e) => poll_error(shared, parts, e, extra),
    }
}

pub(crate) fn poll_error(
    shared: &EngineShared,
    parts: &request::Parts,
    e: PollError,
    extra: HeaderMap,
) -> Response<ResponseBody> {
    match e {
        PollError::Overlap => plain(StatusCode::BAD_REQUEST, "", Bytes::new(), extra),
        PollError::TransportMismatch => refuse(shared, parts, Refusal::new(ErrorCode::BadRequest, false), None, extra),
        PollError::Closed => refuse(shared, parts, Refusal::new(ErrorCode::UnknownSid, false), None, extra),
    }
}

pub(crate) async fn post<B>(
    shared: &Arc<EngineShared>,
    parts: &Arc<request::Parts>,
    socket: &Socket,
    body: B,
    mut extra: HeaderMap,
) -> Response<ResponseBody>
where
    B: Body<Data = Bytes> + Send + 'static,
    B::Error: Into<BoxError>,
{
    polling_headers(shared, parts, &mut extra, None);
    // As the reference: the exact content type, no parameters. A binary payload exists only in v3.
    let binary = parts.headers.get(header::CONTENT_TYPE).is_some_and(|ct| ct == "application/octet-stream");
    if binary && socket.protocol() == Protocol::V4 {
        return plain(StatusCode::BAD_REQUEST, "", Bytes::new(), extra);
    }
    let max = shared.config.max_http_buffer_size;
    let declared = parts.headers.get(header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()?.parse::<u64>().ok());
    let too_large = declared.is_some_and(|len| len > max as u64);
    let mut collecting = std::pin::pin!(Limited::new(body, max).collect());
    // A body that arrived with its head (the crate's codec reads it before answering) goes to the session
    // with the POST's start, in one command. (A JSONP form is unwrapped below.)
    let early = if too_large || socket.shared.jsonp.is_some() {
        None
    } else {
        futures_util::FutureExt::now_or_never(collecting.as_mut())
    };
    let early = match early {
        Some(Ok(collected)) => {
            let (tx, reply) = oneshot::channel();
            let command = Command::Post(collected.to_bytes(), binary, parts.clone(), tx);
            let outcome = match socket.shared.mailbox.send_control(command) {
                Ok(()) => reply.await.unwrap_or(Err(PollError::Closed)),
                Err(_) => Err(PollError::Closed),
            };
            return match outcome {
                Ok(()) => plain(StatusCode::OK, "text/html", Bytes::from_static(b"ok"), extra),
                Err(e) => poll_error(shared, parts, e, extra),
            };
        }
        // Over the limit once read, or broken: answered as below, after the POST's start.
        failed => failed,
    };
    let (tx, reply) = oneshot::channel();
    if socket.shared.mailbox.send_control(Command::PostStart(tx)).is_err() {
        return poll_error(shared, parts, PollError::Closed, extra);
    }
    if let Err(e) = reply.await.unwrap_or(Err(PollError::Closed)) {
        return poll_error(shared, parts, e, extra);
    }
    let result = if too_large {
        Err(BodyError::TooLarge)
    } else {
        let collected = match early {
            Some(done) => done,
            None => collecting.await,
        };
        match collected {
            Ok(collected) => Ok(collected.to_bytes()),
            Err(e) if e.downcast_ref::<LengthLimitError>().is_some() => Err(BodyError::TooLarge),
            Err(_) => Err(BodyError::Broken),
        }
    };
    let (tx, reply) = oneshot::channel();
    let payload = match (&result, socket.shared.jsonp.is_some()) {
        // A JSONP POST is a form; without its field `d` there is nothing to deliver, as in the reference.
        (Ok(body), true) => engineio_proto::jsonp::unwrap_post(body),
        (result, _) => result.clone().ok(),
    };
    let command = Command::PostBody(payload, binary, parts.clone(), tx);
    let delivered = socket.shared.mailbox.send_control(command).is_ok();
    let outcome = if delivered { reply.await.unwrap_or(Err(PollError::Closed)) } else { Err(PollError::Closed) };
    match (result, outcome) {
        (Err(BodyError::TooLarge), _) => plain(StatusCode::PAYLOAD_TOO_LARGE, "", Bytes::new(), extra),
        (Err(BodyError::Broken), _) => plain(StatusCode::BAD_REQUEST, "", Bytes::new(), extra),
        (Ok(_), Err(e)) => poll_error(shared, parts, e, extra),
        (Ok(_), Ok(())) => plain(StatusCode::OK, "text/html", Bytes::from_static(b"ok"), extra),
    }
}

/// Why a POST's body could not be read.
#[derive(Debug, Clone, Copy)]
enum BodyError {
    /// Over `max_http_buffer_size` (declared or read): 413.
    TooLarge,
    /// The connection failed while it was read: 400.
    Broken,
}

/// Gzip or deflate a long-poll body when the client accepts it and it is over the threshold.
pub(crate) fn compress(shared: &EngineShared, parts: &request::Parts, body: Bytes) -> (Bytes, Option<&'static str>) {
    let Some(opts) = shared.config.http_compression else { return (body, None) };
    if body.len() < opts.threshold {
        return (body, None);
    }
    let Some(encoding) =
        parts.headers.get(header::ACCEPT_ENCODING).and_then(|v| v.to_str().ok()).and_then(pick_encoding)
    else {
        return (body, None);
    };
    let level = flate2::Compression::default();
    let out = if encoding == "gzip" {
        let mut enc = flate2::write::GzEncoder::new(Vec::with_capacity(body.len() / 2), level);
        enc.write_all(&body).and_then(|_| enc.finish())
    } else {
        let mut enc = flate2::write::ZlibEncoder::new(Vec::with_capacity(body.len() / 2), level);
        enc.write_all(&body).and_then(|_| enc.finish())
    };
    match out {
        Ok(v) => (Bytes::from(v), Some(encoding)),
        Err(_) => (body, None),
    }
}

/// The preferred of gzip and deflate by the `Accept-Encoding` q-values; gzip wins ties.
pub(crate) fn pick_encoding(accept: &str) -> Option<&'static str> {
    let mut best: Option<(&'static str, f32)> = None;
    for item in accept.split(',') {
        let mut it = item.split(';');
        let name = it.next().unwrap_or("").trim().to_ascii_lowercase();
        let q = it.find_map(|p| p.trim().strip_prefix("q=").and_then(|q| q.trim().parse::<f32>().ok())).unwrap_or(1.0);
        let enc = match name.as_str() {
            "gzip" | "*" => "gzip",
            "deflate" => "deflate",
            _ => continue,
        };
        if q > 0.0 && best.is_none_or(|(_, bq)| q > bq) {
            best = Some((enc, q));
        }
    }
    best.map(|(e, _)| e)
}

#[cfg(test)]
mod tests {
    use super::pick_encoding;

    #[test]
    fn picks_encodings() {
        assert_eq!(pick_encoding("gzip, deflate, br"), Some("gzip"));
        assert_eq!(pick_encoding("deflate"), Some("deflate"));
        assert_eq!(pick_encoding("gzip;q=0.5, deflate"), Some("deflate"));
        assert_eq!(pick_encoding("gzip;q=0, br"), None);
        assert_eq!(pick_encoding("identity"), None);
    }
}
