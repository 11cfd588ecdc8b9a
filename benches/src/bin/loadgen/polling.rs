//! The load generator's long-polling clients: [`Polling`], on hyper's client (two connections per session,
//! as a browser holds them: the idle long-polling scenario), and [`RawPolling`], one kept-alive connection
//! per session with its HTTP/1.1 spoken by hand (polling echo, where hyper's client cost more per round trip
//! than the servers did).

use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::net::TcpStream;

use super::{Res, tcp_connect};

pub(super) type HttpClient = Client<Connector, Full<Bytes>>;

/// The long-polling client's connector: TCP with `TCP_NODELAY`, from the load generator's loopback source
/// addresses like the WebSocket connections (see [`tcp_connect`]; 15,000 polling sessions keep 30,000
/// connections open).
#[derive(Clone, Copy)]
pub(super) struct Connector;

impl tower_service::Service<hyper::Uri> for Connector {
    type Response = TokioIo<TcpStream>;
    type Error = std::io::Error;
    type Future = std::pin::Pin<Box<dyn std::future::Future<Output = std::io::Result<TokioIo<TcpStream>>> + Send>>;

    fn poll_ready(&mut self, _: &mut std::task::Context<'_>) -> std::task::Poll<std::io::Result<()>> {
        std::task::Poll::Ready(Ok(()))
    }

    fn call(&mut self, uri: hyper::Uri) -> Self::Future {
        Box::pin(async move {
            let host = uri.host().ok_or_else(|| std::io::Error::other(format!("no host in {uri}")))?;
            let authority = format!("{host}:{}", uri.port_u16().unwrap_or(80));
            let tcp = tcp_connect(&authority).await.map_err(std::io::Error::other)?;
            tcp.set_nodelay(true)?;
            Ok(TokioIo::new(tcp))
        })
    }
}

/// A long-poll's payload: its packets, and how many of them are pings (to be answered); an error when
/// the server closed the session.
fn payload_packets(body: Vec<u8>) -> Res<(Vec<String>, usize)> {
    let text = String::from_utf8(body).map_err(|_| "payload is not UTF-8".to_owned())?;
    let packets: Vec<String> = text.split('\u{1e}').map(str::to_owned).collect();
    if packets.iter().any(|p| p.starts_with('1')) {
        return Err("server closed the session".into());
    }
    let pings = packets.iter().filter(|p| p.starts_with('2')).count();
    Ok((packets, pings))
}

/// The CONNECT's reply among a long-poll's packets: `Ok` for `40{...}`, an error for `44`; `None` if
/// neither came yet.
fn connect_reply(packets: Vec<String>) -> Option<Res<()>> {
    packets.into_iter().find_map(|p| {
        if p.starts_with("40{") {
            Some(Ok(()))
        } else if p.starts_with("44") {
            Some(Err(format!("CONNECT refused: {p}")))
        } else {
            None
        }
    })
}

/// The `sid` of the open packet that starts a polling handshake's response.
fn open_packet_sid(body: &[u8]) -> Res<String> {
    let text = std::str::from_utf8(body).map_err(|_| "open packet is not UTF-8".to_owned())?;
    let open = text.split('\u{1e}').next().unwrap_or_default();
    let handshake: serde_json::Value = open
        .strip_prefix('0')
        .and_then(|j| serde_json::from_str(j).ok())
        .ok_or_else(|| format!("expected an open packet, got {text:?}"))?;
    handshake["sid"].as_str().map(str::to_owned).ok_or_else(|| "open packet without sid".to_owned())
}

pub(super) struct Polling {
    client: HttpClient,
    base: String,
}

impl Polling {
    /// A session's client on a client shared by the scenario (`polling_client`), for the endpoint `base`.
    pub(super) fn new(client: &HttpClient, base: &str) -> Self {
        Polling { client: client.clone(), base: base.to_owned() }
    }

    async fn request(&self, method: hyper::Method, uri: &str, body: Option<String>) -> Res<Bytes> {
        let mut req = hyper::Request::builder().method(method).uri(uri);
        if body.is_some() {
            req = req.header("content-type", "text/plain;charset=UTF-8");
        }
        let req =
            req.body(Full::new(body.map(Bytes::from).unwrap_or_default())).map_err(|e| format!("request: {e}"))?;
        let resp = self.client.request(req).await.map_err(|e| format!("http: {e}"))?;
        let status = resp.status();
        let body = resp.into_body().collect().await.map_err(|e| format!("http body: {e}"))?.to_bytes();
        if !status.is_success() {
            return Err(format!("http {status}: {}", String::from_utf8_lossy(&body)));
        }
        Ok(body)
    }

    /// Polling handshake + CONNECT; returns the session's URI.
    pub(super) async fn open(&self) -> Res<String> {
        let body = self.request(hyper::Method::GET, &format!("{}?EIO=4&transport=polling", self.base), None).await?;
        let sid = open_packet_sid(&body)?;
        let uri = format!("{}?EIO=4&transport=polling&sid={sid}", self.base);
        self.post(&uri, "40".into()).await?;
        loop {
            if let Some(reply) = connect_reply(self.get(&uri).await?) {
                return reply.map(|()| uri);
            }
        }
    }

    pub(super) async fn post(&self, uri: &str, payload: String) -> Res<()> {
        self.request(hyper::Method::POST, uri, Some(payload)).await.map(|_| ())
    }

    /// One long-poll: the payload's packets. Pings are answered here (and returned too).
    pub(super) async fn get(&self, uri: &str) -> Res<Vec<String>> {
        let (packets, pings) = payload_packets(self.request(hyper::Method::GET, uri, None).await?.to_vec())?;
        for _ in 0..pings {
            self.post(uri, "3".into()).await?;
        }
        Ok(packets)
    }
}

/// A long-polling session on one kept-alive connection, its HTTP/1.1 spoken by hand (`content-length`
/// bodies only), for polling echo: hyper's client (its pool, request and header maps, a `Uri` parsed per
/// request) cost this load generator about 13 µs per round trip, more than the servers (about 11 µs), so
/// the round trips per second measured it rather than them. Here a request is one `write` and its response
/// usually one `read`.
pub(super) struct RawPolling {
    stream: TcpStream,
    /// `Host` header value.
    host: String,
    /// The request target of the session's requests (path and query, `sid` included once known).
    target: String,
    /// Bytes read past the last response.
    read: Vec<u8>,
    /// The request being written (kept to reuse its buffer).
    out: Vec<u8>,
}

impl RawPolling {
    pub(super) async fn connect(authority: &str, path: &str) -> Res<Self> {
        let stream = tcp_connect(authority).await?;
        let _ = stream.set_nodelay(true);
        Ok(RawPolling {
            stream,
            host: authority.to_owned(),
            target: format!("{path}?EIO=4&transport=polling"),
            read: Vec::new(),
            out: Vec::new(),
        })
    }

    /// One request on the connection and its response's body; an error unless 200.
    async fn request(&mut self, body: Option<&str>) -> Res<Vec<u8>> {
        use std::io::Write as _;
        use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
        self.out.clear();
        let method = if body.is_some() { "POST" } else { "GET" };
        let _ = write!(self.out, "{method} {} HTTP/1.1\r\nHost: {}\r\n", self.target, self.host);
        if let Some(body) = body {
            let _ = write!(
                self.out,
                "Content-Type: text/plain;charset=UTF-8\r\nContent-Length: {}\r\n\r\n{body}",
                body.len()
            );
        } else {
            self.out.extend_from_slice(b"\r\n");
        }
        self.stream.write_all(&self.out).await.map_err(|e| format!("write: {e}"))?;
        loop {
            if let Some((status, head_len, len)) = parse_response_head(&self.read)?
                && self.read.len() >= head_len + len
            {
                let body = self.read[head_len..head_len + len].to_vec();
                self.read.drain(..head_len + len);
                if status != 200 {
                    return Err(format!("http {status}: {}", String::from_utf8_lossy(&body)));
                }
                return Ok(body);
            }
            let mut chunk = [0u8; 4096];
            let n = self.stream.read(&mut chunk).await.map_err(|e| format!("read: {e}"))?;
            if n == 0 {
                return Err("the server closed the connection".into());
            }
            self.read.extend_from_slice(&chunk[..n]);
        }
    }

    /// Polling handshake + CONNECT.
    pub(super) async fn open(&mut self) -> Res<()> {
        let body = self.request(None).await?;
        let sid = open_packet_sid(&body)?;
        self.target = format!("{}&sid={sid}", self.target);
        self.post("40").await?;
        loop {
            if let Some(reply) = connect_reply(self.get().await?) {
                return reply;
            }
        }
    }

    pub(super) async fn post(&mut self, payload: &str) -> Res<()> {
        self.request(Some(payload)).await.map(|_| ())
    }

    /// One long-poll: the payload's packets. Pings are answered here (and returned too).
    pub(super) async fn get(&mut self) -> Res<Vec<String>> {
        let (packets, pings) = payload_packets(self.request(None).await?)?;
        for _ in 0..pings {
            self.post("3").await?;
        }
        Ok(packets)
    }
}

/// A response head at the start of `buf`: its status, its length and its body's `content-length`; `None`
/// while it is not all there. A response without `content-length` (chunked) is an error here.
fn parse_response_head(buf: &[u8]) -> Res<Option<(u16, usize, usize)>> {
    let mut headers = [httparse::EMPTY_HEADER; 32];
    let mut res = httparse::Response::new(&mut headers);
    let head_len = match res.parse(buf) {
        Ok(httparse::Status::Complete(n)) => n,
        Ok(httparse::Status::Partial) => return Ok(None),
        Err(e) => return Err(format!("response head: {e}")),
    };
    let status = res.code.unwrap_or(0);
    let len = res
        .headers
        .iter()
        .find(|h| h.name.eq_ignore_ascii_case("content-length"))
        .and_then(|h| std::str::from_utf8(h.value).ok()?.trim().parse::<usize>().ok());
    match len {
        Some(len) => Ok(Some((status, head_len, len))),
        // A 204 or 304 has no body.
        None if status == 204 || status == 304 => Ok(Some((status, head_len, 0))),
        None => Err(format!("http {status}: a response without content-length")),
    }
}

/// An HTTP/1.1 client with keep-alive, as the long-polling scenarios share.
pub(super) fn polling_client() -> HttpClient {
    Client::builder(TokioExecutor::new()).pool_idle_timeout(Duration::from_secs(60)).build(Connector)
}
