//! The standalone listener's HTTP/1.1 connections, from a raw client: kept alive across requests, pipelined
//! requests answered in order, heads and bodies in pieces, a long-poll ended by its connection closing, and
//! the requests the crate's own codec leaves to hyper (chunked bodies, `Expect`, HTTP/1.0, an upgrade on a
//! connection that polled before).

mod support;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use engineio_server::{CorsOptions, EngineConfig};
use support::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// A kept-alive connection and what was read past the last response.
struct Client {
    stream: TcpStream,
    read: Vec<u8>,
}

impl Client {
    async fn connect(addr: SocketAddr) -> Self {
        Client { stream: TcpStream::connect(addr).await.unwrap(), read: Vec::new() }
    }

    async fn send(&mut self, bytes: &[u8]) {
        self.stream.write_all(bytes).await.unwrap();
    }

    /// Reads one response (its body by `content-length`, none when absent).
    async fn response(&mut self) -> RawResponse {
        self.response_within(Duration::from_secs(5)).await
    }

    /// The same, waiting up to `within` for it.
    async fn response_within(&mut self, within: Duration) -> RawResponse {
        loop {
            if let Some(end) = self.read.windows(4).position(|w| w == b"\r\n\r\n") {
                let head = parse_response(&self.read[..end + 4]);
                let len: usize = head.header("content-length").map_or(0, |v| v.parse().unwrap());
                if self.read.len() >= end + 4 + len {
                    let res = parse_response(&self.read[..end + 4 + len]);
                    self.read.drain(..end + 4 + len);
                    return res;
                }
            }
            let mut chunk = [0u8; 4096];
            let n =
                tokio::time::timeout(within, self.stream.read(&mut chunk)).await.expect("a response in time").unwrap();
            assert!(n > 0, "the connection closed before a whole response: {:?}", String::from_utf8_lossy(&self.read));
            self.read.extend_from_slice(&chunk[..n]);
        }
    }

    /// Whether the server closes the connection (within 5 s) with nothing more to read.
    async fn closed(&mut self) -> bool {
        let mut chunk = [0u8; 64];
        matches!(tokio::time::timeout(Duration::from_secs(5), self.stream.read(&mut chunk)).await, Ok(Ok(0)))
    }
}

fn get_head(path: &str) -> String {
    format!("GET {path} HTTP/1.1\r\nHost: localhost\r\n\r\n")
}

fn post_head(path: &str, len: usize) -> String {
    format!(
        "POST {path} HTTP/1.1\r\nHost: localhost\r\nContent-Type: text/plain;charset=UTF-8\r\nContent-Length: {len}\r\n\r\n"
    )
}

fn open_sid(res: &RawResponse) -> String {
    assert_eq!(res.status, 200, "{}", res.text());
    let json: serde_json::Value = serde_json::from_str(res.text().strip_prefix('0').unwrap()).unwrap();
    json["sid"].as_str().unwrap().to_owned()
}

async fn bounded<F: Future<Output = ()>>(f: F) {
    tokio::time::timeout(Duration::from_secs(30), f).await.expect("the test finished within 30 s");
}

/// One connection carries a session's handshake, POSTs and polls in turn, and requests written together
/// are answered in order; every response has `date` and the `content-length` of its body, and none closes
/// the connection.
#[tokio::test]
async fn a_kept_alive_connection_answers_requests_in_turn_and_pipelined() {
    bounded(async {
        let server = start(EngineConfig::default()).await;
        let mut c = Client::connect(server.addr).await;
        c.send(get_head("/engine.io/?EIO=4&transport=polling").as_bytes()).await;
        let sid = open_sid(&c.response().await);
        let path = poll_path(&sid);
        // A POST and the GET that reads its echo, in one write.
        let pipelined = format!("{}4hello{}", post_head(&path, 6), get_head(&path));
        c.send(pipelined.as_bytes()).await;
        let posted = c.response().await;
        assert_eq!((posted.status, posted.text().as_str()), (200, "ok"));
        let polled = c.response().await;
        assert_eq!((polled.status, polled.text().as_str()), (200, "4hello"));
        for res in [&posted, &polled] {
            assert!(res.header("date").is_some(), "{:?}", res.headers);
            assert_eq!(res.header("content-length"), Some(res.body.len().to_string().as_str()));
            assert_eq!(res.header("connection"), None);
        }
        // And again, after a pause, on the same connection.
        tokio::time::sleep(Duration::from_millis(50)).await;
        c.send(format!("{}4again", post_head(&path, 6)).as_bytes()).await;
        assert_eq!(c.response().await.text(), "ok");
        c.send(get_head(&path).as_bytes()).await;
        assert_eq!(c.response().await.text(), "4again");
    })
    .await;
}

/// As hyper and the reference: a long-poll whose connection closes while it waits ends its session (the
/// reference's "poll connection closed prematurely").
#[tokio::test]
async fn a_long_poll_whose_connection_closes_ends_its_session() {
    bounded(async {
        let server = start(EngineConfig::default()).await;
        let (sid, _) = handshake(server.addr).await;
        let mut c = Client::connect(server.addr).await;
        c.send(get_head(&poll_path(&sid)).as_bytes()).await;
        tokio::time::sleep(Duration::from_millis(100)).await;
        drop(c);
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            let res = post(server.addr, &poll_path(&sid), b"4x").await;
            if res.status == 400 {
                assert_eq!(res.json()["code"], 1, "unknown session: {}", res.text());
                break;
            }
            assert!(Instant::now() < deadline, "the session outlived its aborted long-poll");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await;
}

/// A head written a byte at a time is answered; a POST whose body comes later than its head is read
/// (by hyper, which then serves the rest of the connection).
#[tokio::test]
async fn heads_and_bodies_in_pieces() {
    bounded(async {
        let server = start(EngineConfig::default()).await;
        let mut c = Client::connect(server.addr).await;
        for b in get_head("/engine.io/?EIO=4&transport=polling").bytes() {
            c.send(&[b]).await;
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        let sid = open_sid(&c.response().await);
        let path = poll_path(&sid);
        c.send(post_head(&path, 9).as_bytes()).await;
        tokio::time::sleep(Duration::from_millis(100)).await;
        c.send(b"4late").await;
        tokio::time::sleep(Duration::from_millis(100)).await;
        c.send(b"body").await;
        assert_eq!(c.response().await.text(), "ok");
        c.send(get_head(&path).as_bytes()).await;
        assert_eq!(c.response().await.text(), "4latebody");
    })
    .await;
}

/// What the codec leaves to hyper is still served: a chunked POST, `Expect: 100-continue`, HTTP/1.0 (its
/// connection closed after the response), a body over `max_http_buffer_size` (413), a malformed head (400).
#[tokio::test]
async fn requests_left_to_hyper_are_served() {
    bounded(async {
        let server = start({
            let mut c = EngineConfig::default();
            c.max_http_buffer_size = 100;
            c
        })
        .await;
        let (sid, _) = handshake(server.addr).await;
        let path = poll_path(&sid);

        let mut c = Client::connect(server.addr).await;
        let chunked = format!(
            "POST {path} HTTP/1.1\r\nHost: localhost\r\nTransfer-Encoding: chunked\r\n\r\n3\r\n4ch\r\n5\r\nunked\r\n0\r\n\r\n"
        );
        c.send(chunked.as_bytes()).await;
        assert_eq!(c.response().await.text(), "ok");
        c.send(get_head(&path).as_bytes()).await;
        assert_eq!(c.response().await.text(), "4chunked");

        let mut c = Client::connect(server.addr).await;
        c.send(format!("POST {path} HTTP/1.1\r\nHost: localhost\r\nExpect: 100-continue\r\nContent-Length: 6\r\n\r\n").as_bytes())
            .await;
        assert_eq!(c.response().await.status, 100);
        c.send(b"4cont.").await;
        assert_eq!(c.response().await.text(), "ok");

        let mut c = Client::connect(server.addr).await;
        c.send(b"GET /engine.io/?EIO=4&transport=polling HTTP/1.0\r\n\r\n").await;
        let res = c.response().await;
        open_sid(&res);
        assert!(c.closed().await, "an HTTP/1.0 connection without keep-alive closes after its response");

        let mut c = Client::connect(server.addr).await;
        c.send(format!("{}{}", post_head(&path, 101), "4".repeat(101)).as_bytes()).await;
        assert_eq!(c.response().await.status, 413);

        let mut c = Client::connect(server.addr).await;
        c.send(b"GET /engine.io/ HTTP/1.1\r\nBad Header Name: 1\r\n\r\n").await;
        assert_eq!(c.response().await.status, 400);
    })
    .await;
}

/// A connection that polled, then upgrades to WebSocket (a client reusing its kept-alive connection): the
/// probe is answered over it.
#[tokio::test]
async fn an_upgrade_on_a_connection_that_polled() {
    bounded(async {
        let server = start(EngineConfig::default()).await;
        let mut c = Client::connect(server.addr).await;
        c.send(get_head("/engine.io/?EIO=4&transport=polling").as_bytes()).await;
        let sid = open_sid(&c.response().await);
        let upgrade = format!(
            "GET /engine.io/?EIO=4&transport=websocket&sid={sid} HTTP/1.1\r\nHost: localhost\r\nUpgrade: websocket\r\n\
             Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
        );
        c.send(upgrade.as_bytes()).await;
        let res = c.response().await;
        assert_eq!(res.status, 101);
        assert_eq!(res.header("sec-websocket-accept"), Some("s3pPLMBiTxaQ9kYGzzhZRbK+xOo="));
        // A masked text frame "2probe"; the answer is an unmasked "3probe".
        let mask = [1u8, 2, 3, 4];
        let mut frame = vec![0x81, 0x80 | 6];
        frame.extend_from_slice(&mask);
        frame.extend(b"2probe".iter().enumerate().map(|(i, b)| b ^ mask[i % 4]));
        c.send(&frame).await;
        let mut got = std::mem::take(&mut c.read);
        while got.len() < 8 {
            let mut chunk = [0u8; 64];
            let n = tokio::time::timeout(Duration::from_secs(5), c.stream.read(&mut chunk)).await.unwrap().unwrap();
            assert!(n > 0);
            got.extend_from_slice(&chunk[..n]);
        }
        assert_eq!(&got[..8], b"\x81\x063probe");
    })
    .await;
}

/// `Connection: close` is answered with `connection: close` and the connection ends; a CORS preflight's
/// 204 has no `content-length`.
#[tokio::test]
async fn closing_and_bodiless_responses() {
    bounded(async {
        let server = start({
            let mut c = EngineConfig::default();
            c.cors = Some(CorsOptions::with_credentials(["https://app.example"]));
            c
        })
        .await;
        let res = get(server.addr, "/engine.io/?EIO=4&transport=polling").await;
        assert_eq!(res.header("connection"), Some("close"));
        open_sid(&res);

        let mut c = Client::connect(server.addr).await;
        c.send(
            b"OPTIONS /engine.io/?EIO=4&transport=polling HTTP/1.1\r\nHost: localhost\r\nOrigin: https://app.example\r\n\
              Access-Control-Request-Method: POST\r\n\r\n",
        )
        .await;
        let res = c.response().await;
        assert_eq!(res.status, 204);
        assert_eq!(res.header("content-length"), None, "{:?}", res.headers);
        assert_eq!(res.header("access-control-allow-origin"), Some("https://app.example"));
        // The connection is still usable.
        c.send(get_head("/engine.io/?EIO=4&transport=polling").as_bytes()).await;
        open_sid(&c.response().await);
    })
    .await;
}

/// Reads until the server ends the connection; `None` if it is still open after `within` (simulated time).
async fn read_to_end(c: &mut Client, within: Duration) -> Option<Vec<u8>> {
    let mut got = std::mem::take(&mut c.read);
    let until = tokio::time::Instant::now() + within;
    loop {
        let mut chunk = [0u8; 256];
        match tokio::time::timeout_at(until, c.stream.read(&mut chunk)).await {
            Err(_) => return None,
            Ok(Ok(0) | Err(_)) => return Some(got),
            Ok(Ok(n)) => got.extend_from_slice(&chunk[..n]),
        }
    }
}

/// A server with `keep_alive_timeout: None`, and a connection that made a handshake on it.
async fn handshake_without_keep_alive_limit() -> (TestServer, Client) {
    let server = start({
        let mut config = EngineConfig::default();
        config.keep_alive_timeout = None;
        config
    })
    .await;
    let mut c = Client::connect(server.addr).await;
    c.send(get_head("/engine.io/?EIO=4&transport=polling").as_bytes()).await;
    open_sid(&c.response().await);
    (server, c)
}

/// As the reference's server (`keepAliveTimeout`, 5 s): a kept-alive connection with nothing of a next
/// request is closed after `keep_alive_timeout`, counted again after each response; a pending long-poll is
/// not idle; `None` keeps it open. (Simulated clock: the runtime's time is paused.)
#[tokio::test(start_paused = true)]
async fn an_idle_kept_alive_connection_is_closed_after_keep_alive_timeout() {
    let server = start(EngineConfig::default()).await;
    let mut c = Client::connect(server.addr).await;
    c.send(get_head("/engine.io/?EIO=4&transport=polling").as_bytes()).await;
    let sid = open_sid(&c.response().await);
    let path = poll_path(&sid);
    // Each request just before the limit starts it again.
    for round in 0..3 {
        tokio::time::sleep(Duration::from_millis(4_900)).await;
        c.send(format!("{}4r{round}", post_head(&path, 3)).as_bytes()).await;
        assert_eq!(c.response().await.text(), "ok", "round {round}");
    }
    // A long-poll held until the next ping (25 s) is not idle time.
    c.send(get_head(&path).as_bytes()).await;
    assert_eq!(c.response().await.text(), "4r0\u{1e}4r1\u{1e}4r2");
    c.send(get_head(&path).as_bytes()).await;
    assert_eq!(c.response_within(Duration::from_secs(15)).await.text(), "2", "the ping, 25 s after the handshake");
    // Then 5 s of nothing closes it, with nothing written.
    assert_eq!(read_to_end(&mut c, Duration::from_millis(4_900)).await, None, "still open before 5 s");
    assert_eq!(read_to_end(&mut c, Duration::from_millis(200)).await, Some(Vec::new()), "closed at 5 s");

    let (_server, mut c) = handshake_without_keep_alive_limit().await;
    assert_eq!(read_to_end(&mut c, Duration::from_secs(600)).await, None, "no limit: still open");
}

/// As the reference's server (`headersTimeout`, 60 s): a head that does not arrive whole within
/// `headers_timeout` of its first byte is answered 408 and its connection closed, on the crate's codec and
/// on a connection it handed to hyper; a new connection that sends nothing is closed at the same limit
/// without an answer.
#[tokio::test(start_paused = true)]
async fn a_head_that_does_not_arrive_in_time_gets_408() {
    let server = start(EngineConfig::default()).await;
    // Its first request.
    let mut c = Client::connect(server.addr).await;
    c.send(b"GET /engine.io/?EIO=4&transport=polling HTTP/1.1\r\nHost: loc").await;
    assert_eq!(read_to_end(&mut c, Duration::from_secs(59)).await, None, "still waiting before 60 s");
    let got = read_to_end(&mut c, Duration::from_secs(2)).await.expect("closed at 60 s");
    assert_eq!(parse_response(&got).status, 408, "{:?}", String::from_utf8_lossy(&got));

    // A later request, 30 s of idle (without a keep-alive limit) not counted.
    let (server, mut c) = handshake_without_keep_alive_limit().await;
    tokio::time::sleep(Duration::from_secs(30)).await;
    c.send(b"GET /engine.io/?EIO=4&transport=polling HTTP/1.1\r\n").await;
    assert_eq!(read_to_end(&mut c, Duration::from_secs(59)).await, None, "60 s from the head's first byte");
    let got = read_to_end(&mut c, Duration::from_secs(2)).await.expect("closed at 60 s");
    assert_eq!(parse_response(&got).status, 408);

    // Nothing at all.
    let mut c = Client::connect(server.addr).await;
    assert_eq!(read_to_end(&mut c, Duration::from_secs(59)).await, None);
    assert_eq!(read_to_end(&mut c, Duration::from_secs(2)).await, Some(Vec::new()), "closed without an answer");

    // On a connection hyper serves (it had a chunked POST), its next head likewise.
    let (sid, _) = handshake(server.addr).await;
    let path = poll_path(&sid);
    let mut c = Client::connect(server.addr).await;
    c.send(
        format!("POST {path} HTTP/1.1\r\nHost: localhost\r\nTransfer-Encoding: chunked\r\n\r\n2\r\n4x\r\n0\r\n\r\n")
            .as_bytes(),
    )
    .await;
    assert_eq!(c.response().await.text(), "ok");
    c.send(get_head(&path).as_bytes()).await;
    assert_eq!(c.response().await.text(), "4x");
    c.send(b"GET /engine.io/?EIO=4 HTTP/1.1\r\nHost: loc").await;
    assert_eq!(read_to_end(&mut c, Duration::from_secs(59)).await, None);
    assert!(read_to_end(&mut c, Duration::from_secs(2)).await.is_some(), "hyper closed it at 60 s");
}

/// As the reference ("data request overlap from client"): a POST that arrives while another one's body is
/// still arriving is answered 400 and ends the session; a POST whose body came with its head (sent to the
/// session with its start, in one step) is not an overlap with the next one.
#[tokio::test]
async fn a_post_overlapping_another_is_refused() {
    bounded(async {
        let server = start(EngineConfig::default()).await;
        let (sid, _) = handshake(server.addr).await;
        let path = poll_path(&sid);
        // Whole POSTs in turn, on two connections.
        let (mut a, mut b) = (Client::connect(server.addr).await, Client::connect(server.addr).await);
        for i in 0..3 {
            let c = if i == 1 { &mut b } else { &mut a };
            c.send(format!("{}4m{i}", post_head(&path, 3)).as_bytes()).await;
            assert_eq!(c.response().await.text(), "ok");
        }
        // One whose body is still coming, then another.
        a.send(format!("{}4sl", post_head(&path, 6)).as_bytes()).await;
        tokio::time::sleep(Duration::from_millis(100)).await;
        b.send(format!("{}4b", post_head(&path, 2)).as_bytes()).await;
        assert_eq!(b.response().await.status, 400);
        // The session is closed.
        let res = get(server.addr, &path).await;
        assert_eq!(res.status, 400, "{}", res.text());
    })
    .await;
}
