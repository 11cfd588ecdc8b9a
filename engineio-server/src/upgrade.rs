//! The WebSocket upgrade: the `101` answer (accept key, permessage-deflate negotiation, hooks), and the
//! upgraded connection made a new session's transport or handed to a polling session as its probe.

use std::sync::Arc;

use bytes::Bytes;
use engineio_proto::{Session, TransportKind};
use http::header::{self, HeaderMap, HeaderValue};
use http::{Response, StatusCode, request};
use http_body_util::Full;
use hyper_util::rt::TokioIo;

use crate::driver::Driver;
use crate::mailbox::Command;
use crate::response::{ResponseBody, extend};
use crate::shared::{EngineShared, Slot, new_socket};
use crate::socket::Socket;
use engineio_proto::websocket::deflate::PerMessageDeflate;

/// A WebSocket request the endpoint accepted: its `Sec-WebSocket-Accept`, whether the client cannot read
/// binary frames (`b64`), and hyper's handle on the connection once upgraded.
pub(crate) struct Accepted {
    pub(crate) accept: String,
    pub(crate) base64: bool,
    pub(crate) on_upgrade: hyper::upgrade::OnUpgrade,
}

/// Answers 101 and, once the connection is upgraded, starts a WebSocket session or hands the WebSocket to
/// `existing` as an upgrade probe.
pub(crate) fn accept_websocket(
    shared: &Arc<EngineShared>,
    parts: Arc<request::Parts>,
    mut extra: HeaderMap,
    ws: Accepted,
    existing: Option<Socket>,
    slot: Option<Slot>,
) -> Response<ResponseBody> {
    let Accepted { accept, base64, on_upgrade } = ws;
    let deflate = shared.config.per_message_deflate.and_then(|opts| {
        let offers = parts.headers.get_all(header::SEC_WEBSOCKET_EXTENSIONS).iter().filter_map(|v| v.to_str().ok());
        engineio_proto::websocket::deflate::negotiate(offers).map(|mut n| {
            // The server may ask for either parameter even when the offer did not include it (RFC 7692 7.1.1).
            n.server_no_context_takeover |= opts.server_no_context_takeover;
            n.client_no_context_takeover |= opts.client_no_context_takeover;
            (n, opts.threshold)
        })
    });
    if existing.is_none()
        && let Some(hook) = &shared.config.initial_headers
    {
        hook(&mut extra, &parts);
    }
    if let Some(hook) = &shared.config.headers {
        hook(&mut extra, &parts);
    }
    let mut res = Response::new(Full::new(Bytes::new()));
    *res.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
    let headers = res.headers_mut();
    headers.insert(header::UPGRADE, HeaderValue::from_static("websocket"));
    headers.insert(header::CONNECTION, HeaderValue::from_static("Upgrade"));
    headers.insert(header::SEC_WEBSOCKET_ACCEPT, HeaderValue::from_str(&accept).expect("base64 is a valid header"));
    if let Some((n, _)) = &deflate {
        headers.insert(header::SEC_WEBSOCKET_EXTENSIONS, HeaderValue::from_str(&n.response()).expect("a valid header"));
    }
    extend(headers, extra);

    let shared = shared.clone();
    tokio::spawn(async move {
        // A failed upgrade drops the slot, which gives it back.
        let Ok(upgraded) = on_upgrade.await else { return };
        // The session runs on a task of its own, which holds only the driver (this one ends here).
        if let Some(driver) = upgraded_session(shared, parts, deflate, upgraded, base64, existing, slot) {
            driver.spawn(TransportKind::WebSocket);
        }
    });
    res
}

/// The WebSocket of an upgraded connection: a new session's driver, or (for an upgrade of a polling
/// session) handed to that session as its probe.
pub(crate) fn upgraded_session(
    shared: Arc<EngineShared>,
    parts: Arc<request::Parts>,
    deflate: Option<(engineio_proto::websocket::deflate::Negotiated, usize)>,
    upgraded: hyper::upgrade::Upgraded,
    base64: bool,
    existing: Option<Socket>,
    slot: Option<Slot>,
) -> Option<Box<Driver>> {
    let max = shared.config.max_http_buffer_size;
    let deflate = deflate.map(|(n, threshold)| PerMessageDeflate::new(n, threshold, max));
    let ws = crate::ws::WebSocket::new(TokioIo::new(upgraded), max, deflate);
    match existing {
        Some(socket) => {
            let upgrade = Command::Upgrade { ws: Box::new(ws), base64 };
            if let Err(Command::Upgrade { ws, .. }) = socket.shared.mailbox.send_control(upgrade) {
                tokio::spawn(crate::driver::close_ws(*ws, None));
            }
            None
        }
        None => {
            let slot = slot?;
            // The 101 has gone out: if `generate_id` panicked, the connection is dropped, as the
            // reference ends it after a failed handshake on an upgraded socket.
            let socket = new_socket(&shared, parts, TransportKind::WebSocket, slot.address)?;
            let mut session = Session::with_protocol(
                socket.protocol(),
                socket.sid().to_owned(),
                shared.session_config.clone(),
                TransportKind::WebSocket,
                crate::clock::now(),
                shared.config.initial_packet.clone(),
            );
            let _ = session.set_websocket_base64(engineio_proto::Channel::Main, base64);
            shared.sessions.insert(&socket);
            slot.keep();
            Some(Box::new(Driver::new(shared.sessions.clone(), session, socket, Some(ws), None)))
        }
    }
}
