//! Building responses: refusals with their code and status (and the `on_connection_error` hook), plain
//! responses, `Connection: close`, the headers every polling response carries (the `io` cookie and the
//! `initial_headers`/`headers` hooks), and the copy of a request's head a session keeps.

use bytes::Bytes;
use engineio_proto::endpoint::Refusal;
use http::header::{self, HeaderMap, HeaderValue};
use http::{Response, StatusCode, request};
use http_body_util::Full;

use crate::config::ConnectionError;
use crate::shared::EngineShared;

/// The response body type of the endpoint.
pub type ResponseBody = Full<Bytes>;

/// Refuses a request as the endpoint's [`Refusal`] says (status, body, whether the connection closes),
/// after telling the `on_connection_error` hook; `context` is for the hook (what failed). A polling
/// refusal carries the hooks' headers; a refused upgrade none.
pub(crate) fn refuse(
    shared: &EngineShared,
    parts: &request::Parts,
    refusal: Refusal,
    context: Option<&str>,
    extra: HeaderMap,
) -> Response<ResponseBody> {
    crate::telemetry::refused(refusal.code);
    tracing::warn!(
        target: "engineio_server::request",
        code = refusal.code.code(),
        reason = refusal.message(),
        context,
        method = %parts.method,
        path = parts.uri.path(),
        remote = parts.extensions.get::<crate::RemoteAddr>().map(|a| tracing::field::display(a.0)),
        "request refused"
    );
    if let Some(hook) = &shared.config.on_connection_error {
        hook(&ConnectionError { code: refusal.code, message: refusal.message(), context, request: parts });
    }
    let status = StatusCode::from_u16(refusal.status()).expect("400 and 403 are valid statuses");
    let body = Bytes::from(refusal.body());
    if refusal.closes_connection() {
        return closing(plain(status, refusal.content_type(), body, HeaderMap::new()));
    }
    plain(status, refusal.content_type(), body, extra)
}

pub(crate) fn plain(status: StatusCode, content_type: &str, body: Bytes, extra: HeaderMap) -> Response<ResponseBody> {
    let mut res = Response::new(Full::new(body));
    *res.status_mut() = status;
    let headers = res.headers_mut();
    if !content_type.is_empty() {
        headers.insert(header::CONTENT_TYPE, HeaderValue::from_str(content_type).expect("a valid content type"));
    }
    extend(headers, extra);
    res
}

/// `Connection: close` on a response: the connection ends after it (a refused upgrade, a failed request).
pub(crate) fn closing(mut res: Response<ResponseBody>) -> Response<ResponseBody> {
    res.headers_mut().insert(header::CONNECTION, HeaderValue::from_static("close"));
    res
}

/// Appends every value of `extra` (so several `Set-Cookie` survive).
pub(crate) fn extend(headers: &mut HeaderMap, extra: HeaderMap) {
    let mut last = None;
    for (name, value) in extra {
        if let Some(name) = name {
            last = Some(name);
        }
        if let Some(name) = &last {
            headers.append(name.clone(), value);
        }
    }
}

/// The headers of every polling response: the reference's fixed ones, then the `headers` hook (and, on a
/// handshake, the `io` cookie and the `initial_headers` hook before it).
pub(crate) fn polling_headers(
    shared: &EngineShared,
    parts: &request::Parts,
    extra: &mut HeaderMap,
    handshake_sid: Option<&str>,
) {
    extra.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    if parts
        .headers
        .get(header::USER_AGENT)
        .and_then(|ua| ua.to_str().ok())
        .is_some_and(|ua| ua.contains(";MSIE") || ua.contains("Trident/"))
    {
        extra.insert("x-xss-protection", HeaderValue::from_static("0"));
    }
    if let Some(sid) = handshake_sid {
        if let Some(cookie) = &shared.config.cookie
            && let Ok(v) = HeaderValue::from_str(&cookie.serialize(sid))
        {
            extra.append(header::SET_COOKIE, v);
        }
        if let Some(hook) = &shared.config.initial_headers {
            hook(extra, parts);
        }
    }
    if let Some(hook) = &shared.config.headers {
        hook(extra, parts);
    }
}

/// Copies what a session keeps of its handshake request out of the connection's read buffer. hyper hands
/// out header values and the URI as slices of that buffer (8 KiB or more), which would otherwise stay
/// allocated for as long as the session lives.
pub(crate) fn detach(mut parts: request::Parts) -> request::Parts {
    let mut headers = HeaderMap::with_capacity(parts.headers.len());
    for (name, value) in &parts.headers {
        let mut copy = HeaderValue::from_bytes(value.as_bytes()).expect("a header value stays valid when copied");
        copy.set_sensitive(value.is_sensitive());
        headers.append(name.clone(), copy);
    }
    parts.headers = headers;
    if let Ok(uri) = parts.uri.to_string().parse() {
        parts.uri = uri;
    }
    parts
}
