//! Wire behaviour of the server, checked with raw HTTP and WebSocket: the behaviours exercised by the
//! reference engine.io protocol test suite, and the reference's status codes, error bodies, cookie
//! placement, header hooks, CORS and Origin checks.

mod support;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use engineio_server::{
    BoxError, BoxFuture, CookieOptions, CorsOptions, EngineConfig, Middleware, SameSite, TransportKind,
};
use http::{HeaderMap, HeaderValue, request};
use support::*;

#[tokio::test]
async fn polling_handshake_sends_the_open_packet() {
    let server = start(suite_config()).await;
    let res = get(server.addr, "/engine.io/?EIO=4&transport=polling").await;
    assert_eq!(res.status, 200);
    assert_eq!(res.header("content-type"), Some("text/plain; charset=UTF-8"));
    assert_eq!(res.header("cache-control"), Some("no-store"));
    assert!(res.header("set-cookie").is_none(), "the io cookie is off by default");
    let json: serde_json::Value = serde_json::from_str(res.text().strip_prefix('0').unwrap()).unwrap();
    assert_eq!(json["sid"].as_str().unwrap().len(), 20);
    assert_eq!(json["upgrades"], serde_json::json!(["websocket"]));
    assert_eq!(json["pingInterval"], 300);
    assert_eq!(json["pingTimeout"], 200);
    assert_eq!(json["maxPayload"], 1_000_000);
}

#[tokio::test]
async fn bad_handshakes_get_the_reference_codes() {
    let server = start(suite_config()).await;
    let cases: &[(&str, &str, u16, u64, &str)] = &[
        ("GET", "/engine.io/?transport=polling", 400, 5, "Unsupported protocol version"),
        ("GET", "/engine.io/?EIO=3&transport=polling", 400, 5, "Unsupported protocol version"),
        ("GET", "/engine.io/?EIO=abc&transport=polling", 400, 5, "Unsupported protocol version"),
        ("GET", "/engine.io/?EIO=4&transport=tobi", 400, 0, "Transport unknown"),
        ("GET", "/engine.io/?EIO=4", 400, 0, "Transport unknown"),
        ("POST", "/engine.io/?EIO=4&transport=polling", 400, 2, "Bad handshake method"),
        ("PUT", "/engine.io/?EIO=4&transport=polling", 400, 2, "Bad handshake method"),
        ("OPTIONS", "/engine.io/?EIO=4&transport=polling", 400, 2, "Bad handshake method"),
        ("GET", "/engine.io/?EIO=4&transport=websocket", 400, 3, "Bad request"),
        ("GET", "/engine.io/?EIO=4&transport=polling&sid=nope", 400, 1, "Session ID unknown"),
    ];
    for (method, path, status, code, message) in cases {
        let res = request(server.addr, method, path, &[], b"").await;
        assert_eq!(res.status, *status, "{method} {path}");
        assert_eq!(res.header("content-type"), Some("application/json"), "{method} {path}");
        assert_eq!(res.json(), serde_json::json!({"code": code, "message": message}), "{method} {path}");
    }
}

#[tokio::test]
async fn other_paths_are_not_the_endpoint() {
    let server = start(suite_config()).await;
    assert_eq!(get(server.addr, "/engine.io?EIO=4&transport=polling").await.status, 404);
    assert_eq!(get(server.addr, "/other/?EIO=4&transport=polling").await.status, 404);
}

#[tokio::test]
async fn post_answers_ok_and_messages_echo_in_one_payload() {
    let server = start(suite_config()).await;
    let (sid, _) = handshake(server.addr).await;
    let res = post(server.addr, &poll_path(&sid), b"4hello\x1e4world\x1ebAQID").await;
    assert_eq!(res.status, 200);
    assert_eq!(res.text(), "ok");
    assert_eq!(res.header("content-type"), Some("text/html"));
    let res = get(server.addr, &poll_path(&sid)).await;
    assert_eq!(res.text(), "4hello\x1e4world\x1ebAQID");
}

#[tokio::test]
async fn a_malformed_post_closes_the_session() {
    let server = start(suite_config()).await;
    let (sid, _) = handshake(server.addr).await;
    let res = post(server.addr, &poll_path(&sid), b"abc").await;
    assert_eq!(res.status, 200);
    let res = get(server.addr, &poll_path(&sid)).await;
    assert_eq!(res.status, 400);
    assert_eq!(res.json()["code"], 1);
}

#[tokio::test]
async fn octet_stream_posts_are_refused() {
    let server = start(suite_config()).await;
    let (sid, _) = handshake(server.addr).await;
    let res =
        request(server.addr, "POST", &poll_path(&sid), &[("Content-Type", "application/octet-stream")], b"4x").await;
    assert_eq!(res.status, 400);
}

#[tokio::test]
async fn a_duplicate_get_closes_the_session() {
    let server = start(suite_config()).await;
    let (sid, _) = handshake(server.addr).await;
    let path = poll_path(&sid);
    let addr = server.addr;
    let first = tokio::spawn({
        let path = path.clone();
        async move { get(addr, &path).await }
    });
    // The first GET must be pending before the second arrives; nothing outside the session shows a
    // pending GET, so give it a moment (it is answered by the duplicate with `1`, which the asserts check).
    tokio::time::sleep(Duration::from_millis(50)).await;
    let second = get(addr, &path).await;
    assert_eq!(second.status, 400);
    let first = first.await.unwrap();
    assert_eq!(first.status, 200);
    assert_eq!(first.text(), "1");
    assert_eq!(get(addr, &path).await.json()["code"], 1);
}

#[tokio::test(start_paused = true)]
async fn ping_pong_keeps_the_session_and_silence_ends_it() {
    // The reference's defaults (ping every 25 s, 20 s for the pong) on tokio's paused clock.
    let real = std::time::Instant::now();
    let server = start(EngineConfig::default()).await;
    let t0 = tokio::time::Instant::now();
    let (sid, _) = handshake(server.addr).await;
    let path = poll_path(&sid);
    tokio::time::sleep_until(t0 + Duration::from_millis(25_010)).await;
    assert_eq!(get(server.addr, &path).await.text(), "2", "the first ping after the interval");
    assert_eq!(post(server.addr, &path, b"3").await.text(), "ok");
    tokio::time::sleep_until(t0 + Duration::from_millis(50_020)).await;
    assert_eq!(get(server.addr, &path).await.text(), "2", "the session lives on after a pong");
    // No pong this time: just before the pong deadline the session lives, after it the session is gone.
    tokio::time::sleep_until(t0 + Duration::from_millis(69_900)).await;
    assert_eq!(post(server.addr, &path, b"4alive").await.text(), "ok");
    tokio::time::sleep_until(t0 + Duration::from_millis(70_100)).await;
    let res = get(server.addr, &path).await;
    assert_eq!(res.status, 400);
    assert_eq!(res.json()["code"], 1);
    assert!(real.elapsed() < Duration::from_secs(10), "the heartbeat did not run on tokio's clock");
}

#[tokio::test]
async fn a_client_close_releases_the_pending_poll_with_a_noop() {
    let server = start(EngineConfig::default()).await;
    let (sid, _) = handshake(server.addr).await;
    let path = poll_path(&sid);
    let addr = server.addr;
    let pending = tokio::spawn({
        let path = path.clone();
        async move { get(addr, &path).await }
    });
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert_eq!(post(addr, &path, b"1").await.text(), "ok");
    assert_eq!(pending.await.unwrap().text(), "6");
    assert_eq!(get(addr, &path).await.status, 400);
}

#[tokio::test]
async fn a_server_close_on_polling_delivers_data_then_the_close_packet() {
    let server = start(EngineConfig::default()).await;
    let (sid, _) = handshake(server.addr).await;
    let path = poll_path(&sid);
    post(server.addr, &path, b"4bye\x1e4close").await;
    let res = get(server.addr, &path).await;
    assert_eq!(res.text(), "4bye", "the data drains first");
    assert_eq!(get(server.addr, &path).await.text(), "1", "then the close packet, alone");
    assert_eq!(get(server.addr, &path).await.status, 400);
}

#[tokio::test]
async fn websocket_only_sessions() {
    let server = start(suite_config()).await;
    let (mut ws, _) = ws_connect(server.addr, "/engine.io/?EIO=4&transport=websocket", &[]).await.unwrap();
    let open = ws_text(&mut ws).await;
    let json: serde_json::Value = serde_json::from_str(open.strip_prefix('0').unwrap()).unwrap();
    assert_eq!(json["upgrades"], serde_json::json!([]));
    ws_send(&mut ws, "4hi").await;
    assert_eq!(ws_text(&mut ws).await, "4hi");
    // The server pings; answering keeps the session.
    assert_eq!(ws_text(&mut ws).await, "2");
    ws_send(&mut ws, "3").await;
    assert_eq!(ws_text(&mut ws).await, "2");
    // Not answering closes it.
    ws_closed(&mut ws).await;
    wait_until(|| async { server.engine.session_count() == 0 }).await;
}

#[tokio::test]
async fn upgrade_from_polling_to_websocket() {
    let server = start(suite_config()).await;
    let (sid, _) = handshake(server.addr).await;
    let path = poll_path(&sid);
    let addr = server.addr;
    let pending = tokio::spawn({
        let path = path.clone();
        async move { get(addr, &path).await }
    });
    let ws_path = format!("/engine.io/?EIO=4&transport=websocket&sid={sid}");
    let (mut ws, _) = ws_connect(addr, &ws_path, &[]).await.unwrap();
    ws_send(&mut ws, "2probe").await;
    assert_eq!(ws_text(&mut ws).await, "3probe");
    assert_eq!(pending.await.unwrap().text(), "6", "the pending poll is released for the upgrade");
    ws_send(&mut ws, "5").await;
    ws_send(&mut ws, "4after").await;
    assert_eq!(ws_text(&mut ws).await, "4after");
    // Polling is over for this session.
    let res = get(addr, &path).await;
    assert_eq!(res.status, 400);
    assert_eq!(res.json()["code"], 3);
    // A second WebSocket for the same session is closed.
    let (mut dup, _) = ws_connect(addr, &ws_path, &[]).await.unwrap();
    ws_closed(&mut dup).await;
    ws_send(&mut ws, "4still").await;
    assert_eq!(ws_text(&mut ws).await, "4still");
}

#[tokio::test(start_paused = true)]
async fn an_unfinished_upgrade_times_out_and_polling_goes_on() {
    // The reference's default upgrade timeout (10 s), on tokio's paused clock.
    let real = std::time::Instant::now();
    let server = start(EngineConfig::default()).await;
    let (sid, _) = handshake(server.addr).await;
    let ws_path = format!("/engine.io/?EIO=4&transport=websocket&sid={sid}");
    let (mut ws, _) = ws_connect(server.addr, &ws_path, &[]).await.unwrap();
    ws_send(&mut ws, "2probe").await;
    assert_eq!(ws_text(&mut ws).await, "3probe");
    let probed = tokio::time::Instant::now();
    // The probe is closed by the server when the timeout passes (no helper with its own time limit here).
    while let Some(Ok(msg)) = futures_util::StreamExt::next(&mut ws).await {
        if msg.is_close() {
            break;
        }
    }
    let waited = probed.elapsed();
    assert!(waited >= Duration::from_secs(10) && waited < Duration::from_millis(10_100), "{waited:?}");
    post(server.addr, &poll_path(&sid), b"4still polling").await;
    assert_eq!(get(server.addr, &poll_path(&sid)).await.text(), "4still polling");
    assert!(real.elapsed() < Duration::from_secs(5), "the upgrade timeout did not run on tokio's clock");
}

#[tokio::test]
async fn oversized_posts_get_413_and_oversized_frames_close_1009() {
    let config = {
        let mut c = EngineConfig::default();
        c.max_http_buffer_size = 100;
        c
    };
    let server = start(config).await;
    let (sid, open) = handshake(server.addr).await;
    assert_eq!(open["maxPayload"], 100);
    let big = format!("4{}", "x".repeat(200));
    let res = post(server.addr, &poll_path(&sid), big.as_bytes()).await;
    assert_eq!(res.status, 413);
    assert!(res.body.is_empty());
    let fits = format!("4{}", "y".repeat(90));
    assert_eq!(post(server.addr, &poll_path(&sid), fits.as_bytes()).await.text(), "ok");

    let (mut ws, _) = ws_connect(server.addr, "/engine.io/?EIO=4&transport=websocket", &[]).await.unwrap();
    ws_text(&mut ws).await;
    ws_send(&mut ws, &big).await;
    assert_eq!(ws_closed(&mut ws).await, Some(1009));
}

#[tokio::test]
async fn polling_responses_are_compressed_over_the_threshold() {
    let server = start(EngineConfig::default()).await;
    let (sid, _) = handshake(server.addr).await;
    let message = format!("4{}", "z".repeat(2000));
    post(server.addr, &poll_path(&sid), message.as_bytes()).await;
    let res = request(server.addr, "GET", &poll_path(&sid), &[("Accept-Encoding", "gzip, deflate")], b"").await;
    assert_eq!(res.header("content-encoding"), Some("gzip"));
    let mut text = String::new();
    std::io::Read::read_to_string(&mut flate2::read::GzDecoder::new(&res.body[..]), &mut text).unwrap();
    assert_eq!(text, message);

    post(server.addr, &poll_path(&sid), message.as_bytes()).await;
    let res = request(server.addr, "GET", &poll_path(&sid), &[("Accept-Encoding", "deflate")], b"").await;
    assert_eq!(res.header("content-encoding"), Some("deflate"));
    let mut text = String::new();
    std::io::Read::read_to_string(&mut flate2::read::ZlibDecoder::new(&res.body[..]), &mut text).unwrap();
    assert_eq!(text, message);

    post(server.addr, &poll_path(&sid), b"4small").await;
    let res = request(server.addr, "GET", &poll_path(&sid), &[("Accept-Encoding", "gzip")], b"").await;
    assert_eq!(res.header("content-encoding"), None);
    assert_eq!(res.text(), "4small");
}

#[tokio::test]
async fn the_io_cookie_is_only_on_the_polling_handshake() {
    let config = {
        let mut c = EngineConfig::default();
        c.cookie = Some(CookieOptions::default());
        c
    };
    let server = start(config).await;
    let res = get(server.addr, "/engine.io/?EIO=4&transport=polling").await;
    let sid = serde_json::from_str::<serde_json::Value>(res.text().strip_prefix('0').unwrap()).unwrap()["sid"]
        .as_str()
        .unwrap()
        .to_owned();
    let cookie = res.header("set-cookie").unwrap();
    let mut attrs: Vec<&str> = cookie.split("; ").collect();
    attrs.sort();
    let expected_first = format!("io={sid}");
    let mut expected = vec![expected_first.as_str(), "Path=/", "HttpOnly", "SameSite=Lax"];
    expected.sort();
    assert_eq!(attrs, expected);

    post(server.addr, &poll_path(&sid), b"4x").await;
    assert!(get(server.addr, &poll_path(&sid)).await.header("set-cookie").is_none());
    let (_ws, headers) = ws_connect(server.addr, "/engine.io/?EIO=4&transport=websocket", &[]).await.unwrap();
    assert!(headers.get("set-cookie").is_none(), "no io cookie on a WebSocket handshake");
}

#[tokio::test]
async fn every_cookie_attribute_reaches_the_header() {
    let mut cookie = CookieOptions::default();
    cookie.name = "sticky".into();
    cookie.path = Some("/rt".into());
    cookie.domain = Some("example.com".into());
    cookie.http_only = false;
    cookie.secure = true;
    cookie.same_site = Some(SameSite::None);
    cookie.max_age = Some(Duration::from_secs(600));
    cookie.partitioned = true;
    let mut config = EngineConfig::default();
    config.cookie = Some(cookie);
    let server = start(config).await;
    let res = get(server.addr, "/engine.io/?EIO=4&transport=polling").await;
    let cookie = res.header("set-cookie").unwrap();
    for attr in ["Path=/rt", "Domain=example.com", "Secure", "SameSite=None", "Max-Age=600", "Partitioned"] {
        assert!(cookie.split("; ").any(|a| a == attr), "{attr} missing from {cookie}");
    }
    assert!(cookie.starts_with("sticky="));
    assert!(!cookie.contains("HttpOnly"));
}

#[tokio::test]
async fn header_hooks_reach_polling_responses_and_the_101() {
    let mut config = EngineConfig::default();
    config.cookie = Some(CookieOptions::default());
    config
        .initial_headers(|h, _| {
            h.append("set-cookie", HeaderValue::from_static("first=1"));
        })
        .headers(|h, _| {
            h.append("set-cookie", HeaderValue::from_static("every=1"));
            h.insert("x-hook", HeaderValue::from_static("yes"));
        });
    let server = start(config).await;
    let res = get(server.addr, "/engine.io/?EIO=4&transport=polling").await;
    let cookies = res.all("set-cookie");
    assert_eq!(cookies.len(), 3, "{cookies:?}");
    assert!(cookies[0].starts_with("io="));
    assert!(cookies.contains(&"first=1") && cookies.contains(&"every=1"));
    let sid = serde_json::from_str::<serde_json::Value>(res.text().strip_prefix('0').unwrap()).unwrap()["sid"]
        .as_str()
        .unwrap()
        .to_owned();
    post(server.addr, &poll_path(&sid), b"4x").await;
    let res = get(server.addr, &poll_path(&sid)).await;
    assert_eq!(res.all("set-cookie"), vec!["every=1"]);
    assert_eq!(res.header("x-hook"), Some("yes"));

    let (_ws, headers) = ws_connect(server.addr, "/engine.io/?EIO=4&transport=websocket", &[]).await.unwrap();
    let cookies: Vec<&str> = headers.get_all("set-cookie").iter().map(|v| v.to_str().unwrap()).collect();
    assert_eq!(cookies, vec!["first=1", "every=1"]);
    let ws_path = format!("/engine.io/?EIO=4&transport=websocket&sid={sid}");
    let (_ws, headers) = ws_connect(server.addr, &ws_path, &[]).await.unwrap();
    let cookies: Vec<&str> = headers.get_all("set-cookie").iter().map(|v| v.to_str().unwrap()).collect();
    assert_eq!(cookies, vec!["every=1"], "an upgrade is not a handshake");
}

#[tokio::test]
async fn allow_request_refuses_on_both_transports() {
    let calls = Arc::new(AtomicUsize::new(0));
    let seen = calls.clone();
    let mut config = EngineConfig::default();
    config.allow_request(move |req| {
        seen.fetch_add(1, Ordering::SeqCst);
        let allowed = req.headers.get("x-token").is_some_and(|v| v == "ok");
        async move {
            // Really asynchronous: the decision comes after a pause.
            tokio::time::sleep(Duration::from_millis(5)).await;
            if allowed { Ok(()) } else { Err("no token".to_owned()) }
        }
    });
    let server = start(config).await;
    let res = get(server.addr, "/engine.io/?EIO=4&transport=polling").await;
    assert_eq!(res.status, 403);
    assert_eq!(res.json(), serde_json::json!({"code": 4, "message": "no token"}));
    let err = ws_connect(server.addr, "/engine.io/?EIO=4&transport=websocket", &[]).await.unwrap_err();
    match err {
        tokio_tungstenite::tungstenite::Error::Http(res) => {
            assert_eq!(res.status(), 400);
            assert_eq!(res.body().as_deref(), Some(&b"no token"[..]));
        }
        other => panic!("expected an HTTP refusal, got {other:?}"),
    }
    let res = request(server.addr, "GET", "/engine.io/?EIO=4&transport=polling", &[("x-token", "ok")], b"").await;
    assert_eq!(res.status, 200);
    assert!(ws_connect(server.addr, "/engine.io/?EIO=4&transport=websocket", &[("x-token", "ok")]).await.is_ok());
    // Not asked again for requests of an existing session.
    let before = calls.load(Ordering::SeqCst);
    let (sid, _) = {
        let res = request(server.addr, "GET", "/engine.io/?EIO=4&transport=polling", &[("x-token", "ok")], b"").await;
        let v: serde_json::Value = serde_json::from_str(res.text().strip_prefix('0').unwrap()).unwrap();
        (v["sid"].as_str().unwrap().to_owned(), v)
    };
    post(server.addr, &poll_path(&sid), b"4x").await;
    get(server.addr, &poll_path(&sid)).await;
    assert_eq!(calls.load(Ordering::SeqCst), before + 1);
}

#[tokio::test]
async fn cors_preflight_and_credentials() {
    let config = {
        let mut c = EngineConfig::default();
        let mut cors = CorsOptions::with_credentials(["https://app.example"]);
        cors.max_age = Some(Duration::from_secs(86400));
        c.cors = Some(cors);
        c
    };
    let server = start(config).await;
    let res = request(
        server.addr,
        "OPTIONS",
        "/engine.io/?EIO=4&transport=polling",
        &[("Origin", "https://app.example"), ("Access-Control-Request-Method", "POST")],
        b"",
    )
    .await;
    assert_eq!(res.status, 204);
    assert_eq!(res.header("access-control-allow-origin"), Some("https://app.example"));
    assert_eq!(res.header("access-control-allow-credentials"), Some("true"));
    assert_eq!(res.header("access-control-allow-methods"), Some("GET,HEAD,PUT,PATCH,POST,DELETE"));
    assert_eq!(res.header("access-control-max-age"), Some("86400"));

    let res =
        request(server.addr, "GET", "/engine.io/?EIO=4&transport=polling", &[("Origin", "https://app.example")], b"")
            .await;
    assert_eq!(res.status, 200);
    assert_eq!(res.header("access-control-allow-origin"), Some("https://app.example"));
    assert_eq!(res.header("access-control-allow-credentials"), Some("true"));

    // Another origin is refused, on polling and on the WebSocket upgrade (cross-site WebSocket hijacking).
    let res =
        request(server.addr, "GET", "/engine.io/?EIO=4&transport=polling", &[("Origin", "https://evil.example")], b"")
            .await;
    assert_eq!(res.status, 400);
    assert_eq!(res.json()["code"], 3);
    let err = ws_connect(server.addr, "/engine.io/?EIO=4&transport=websocket", &[("Origin", "https://evil.example")])
        .await
        .unwrap_err();
    assert!(matches!(err, tokio_tungstenite::tungstenite::Error::Http(ref r) if r.status() == 400), "{err:?}");
    assert!(
        ws_connect(server.addr, "/engine.io/?EIO=4&transport=websocket", &[("Origin", "https://app.example")])
            .await
            .is_ok()
    );
    // Clients without an Origin (not browsers) are not affected.
    assert_eq!(get(server.addr, "/engine.io/?EIO=4&transport=polling").await.status, 200);
}

/// Reads a header into the request's extensions, sets a response cookie, and fails on demand.
struct Tagger;

#[derive(Clone, Debug, PartialEq)]
struct Tag(String);

impl Middleware for Tagger {
    fn handle<'a>(
        &'a self,
        req: &'a mut request::Parts,
        res: &'a mut HeaderMap,
    ) -> BoxFuture<'a, Result<(), BoxError>> {
        Box::pin(async move {
            if req.headers.contains_key("x-fail") {
                return Err("middleware said no".into());
            }
            let tag = req.headers.get("x-tag").map(|v| v.to_str().unwrap().to_owned()).unwrap_or_default();
            req.extensions.insert(Tag(tag));
            res.append("set-cookie", HeaderValue::from_static("mw=1"));
            Ok(())
        })
    }
}

struct RecordTag(Arc<std::sync::Mutex<Vec<Tag>>>);

impl engineio_server::Handler for RecordTag {
    fn on_open(&self, socket: &engineio_server::Socket) -> Box<dyn engineio_server::Connection> {
        self.0.lock().unwrap().push(socket.request().extensions.get::<Tag>().cloned().unwrap());
        Box::new(EchoConnection(socket.clone()))
    }
}

#[tokio::test]
async fn middlewares_run_on_every_request_and_the_upgrade() {
    let tags = Arc::new(std::sync::Mutex::new(Vec::new()));
    let mut config = EngineConfig::default();
    config.middleware(Tagger);
    let server = start_with(config, RecordTag(tags.clone())).await;
    let res = request(server.addr, "GET", "/engine.io/?EIO=4&transport=polling", &[("x-tag", "polling")], b"").await;
    assert_eq!(res.status, 200);
    assert_eq!(res.all("set-cookie"), vec!["mw=1"]);
    let (_ws, headers) =
        ws_connect(server.addr, "/engine.io/?EIO=4&transport=websocket", &[("x-tag", "ws")]).await.unwrap();
    assert_eq!(headers.get("set-cookie").unwrap(), "mw=1");
    wait_until(|| async { tags.lock().unwrap().len() == 2 }).await;
    assert_eq!(*tags.lock().unwrap(), vec![Tag("polling".into()), Tag("ws".into())]);

    let res = request(server.addr, "GET", "/engine.io/?EIO=4&transport=polling", &[("x-fail", "1")], b"").await;
    assert_eq!(res.status, 400);
    assert_eq!(res.json(), serde_json::json!({"code": 3, "message": "Bad request"}));
    let err = ws_connect(server.addr, "/engine.io/?EIO=4&transport=websocket", &[("x-fail", "1")]).await.unwrap_err();
    assert!(matches!(err, tokio_tungstenite::tungstenite::Error::Http(ref r) if r.status() == 400), "{err:?}");
}

#[tokio::test]
async fn connection_errors_are_observable() {
    let seen = Arc::new(std::sync::Mutex::new(Vec::new()));
    let log = seen.clone();
    let mut config = EngineConfig::default();
    config.on_connection_error(move |e| {
        log.lock().unwrap().push((e.code.code(), e.message.to_owned()));
    });
    let server = start(config).await;
    get(server.addr, "/engine.io/?EIO=4&transport=nope").await;
    get(server.addr, "/engine.io/?EIO=4&transport=polling&sid=zzz").await;
    assert_eq!(*seen.lock().unwrap(), vec![(0, "Transport unknown".to_owned()), (1, "Session ID unknown".to_owned())]);
}

#[tokio::test]
async fn transports_and_upgrades_options() {
    let config = {
        let mut c = EngineConfig::default();
        c.transports = vec![TransportKind::WebSocket];
        c
    };
    let server = start(config).await;
    assert_eq!(get(server.addr, "/engine.io/?EIO=4&transport=polling").await.json()["code"], 0);
    assert!(ws_connect(server.addr, "/engine.io/?EIO=4&transport=websocket", &[]).await.is_ok());

    let server = start({
        let mut c = EngineConfig::default();
        c.allow_upgrades = false;
        c
    })
    .await;
    let (sid, open) = handshake(server.addr).await;
    assert_eq!(open["upgrades"], serde_json::json!([]));
    let ws_path = format!("/engine.io/?EIO=4&transport=websocket&sid={sid}");
    let (mut ws, _) = ws_connect(server.addr, &ws_path, &[]).await.unwrap();
    ws_closed(&mut ws).await;
}

#[tokio::test]
async fn the_initial_packet_follows_the_open_packet() {
    let config = {
        let mut c = EngineConfig::default();
        c.initial_packet = Some("welcome".into());
        c
    };
    let server = start(config).await;
    let res = get(server.addr, "/engine.io/?EIO=4&transport=polling").await;
    let text = res.text();
    let (open, rest) = text.split_once('\x1e').unwrap();
    assert!(open.starts_with("0{"));
    assert_eq!(rest, "4welcome");
}

#[tokio::test]
async fn custom_path_and_trailing_slash() {
    let config = {
        let mut c = EngineConfig::default();
        c.path = "/rt".into();
        c.add_trailing_slash = false;
        c
    };
    let server = start(config).await;
    assert_eq!(get(server.addr, "/rt?EIO=4&transport=polling").await.status, 200);
    assert_eq!(get(server.addr, "/engine.io/?EIO=4&transport=polling").await.status, 404);
}

#[tokio::test]
async fn upgrades_on_other_paths_are_ended() {
    let config = {
        let mut c = EngineConfig::default();
        c.destroy_upgrade_timeout = Duration::from_millis(100);
        c
    };
    let server = start(config).await;
    let started = std::time::Instant::now();
    let err = ws_connect(server.addr, "/elsewhere", &[]).await.unwrap_err();
    assert!(matches!(err, tokio_tungstenite::tungstenite::Error::Http(ref r) if r.status() == 400), "{err:?}");
    assert!(started.elapsed() >= Duration::from_millis(100));
}

#[tokio::test]
async fn the_service_works_as_a_tower_service() {
    use tower_service::Service as _;
    let engine = engineio_server::Engine::new(EngineConfig::default(), Echo);
    let mut svc = engine.service();
    let req = http::Request::get("/engine.io/?EIO=4&transport=polling")
        .body(http_body_util::Full::new(bytes::Bytes::new()))
        .unwrap();
    std::future::poll_fn(|cx| {
        tower_service::Service::<http::Request<http_body_util::Full<bytes::Bytes>>>::poll_ready(&mut svc, cx)
    })
    .await
    .unwrap();
    let res = svc.call(req).await.unwrap();
    assert_eq!(res.status(), 200);
    let body = http_body_util::BodyExt::collect(res.into_body()).await.unwrap().to_bytes();
    assert!(body.starts_with(b"0{\"sid\":"));
    assert_eq!(engine.session_count(), 1);
}

#[tokio::test]
async fn closed_sessions_free_their_resources() {
    let server = start(suite_config()).await;
    for _ in 0..20 {
        handshake(server.addr).await;
    }
    assert_eq!(server.engine.session_count(), 20);
    // Nobody polls again: every session ends by ping timeout (300 + 200 ms).
    wait_until(|| async { server.engine.session_count() == 0 }).await;
}

async fn wait_until<F, Fut>(mut f: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    for _ in 0..200 {
        if f().await {
            return;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("condition not met within 5 s");
}

#[tokio::test]
async fn session_limits_in_total_and_per_address() {
    let config = {
        let mut c = EngineConfig::default();
        c.max_sessions = Some(2);
        c
    };
    let server = start(config).await;
    let (first, _) = handshake(server.addr).await;
    let (_ws, _) = ws_connect(server.addr, "/engine.io/?EIO=4&transport=websocket", &[]).await.unwrap();
    let res = get(server.addr, "/engine.io/?EIO=4&transport=polling").await;
    assert_eq!(res.status, 403);
    assert_eq!(res.json(), serde_json::json!({"code": 4, "message": "too many sessions"}));
    let err = ws_connect(server.addr, "/engine.io/?EIO=4&transport=websocket", &[]).await.unwrap_err();
    assert!(matches!(err, tokio_tungstenite::tungstenite::Error::Http(ref r) if r.status() == 400), "{err:?}");
    // A session that ends gives its slot back.
    post(server.addr, &poll_path(&first), b"1").await;
    wait_until(|| async { server.engine.session_count() == 1 }).await;
    assert_eq!(get(server.addr, "/engine.io/?EIO=4&transport=polling").await.status, 200);

    // Per address: every client here is 127.0.0.1.
    let config = {
        let mut c = EngineConfig::default();
        c.max_sessions_per_address = Some(1);
        c
    };
    let server = start(config).await;
    handshake(server.addr).await;
    let res = get(server.addr, "/engine.io/?EIO=4&transport=polling").await;
    assert_eq!(res.json(), serde_json::json!({"code": 4, "message": "too many sessions from this address"}));
}

#[tokio::test]
async fn graceful_close_stops_accepting_tells_clients_and_is_bounded() {
    let server = start(EngineConfig::default()).await;
    let (mut ws, _) = ws_connect(server.addr, "/engine.io/?EIO=4&transport=websocket", &[]).await.unwrap();
    ws_text(&mut ws).await;
    // A polling client that will never poll again would hold its session for `close_timeout` (30 s).
    let _ = handshake(server.addr).await;
    assert_eq!(server.engine.session_count(), 2);
    let started = std::time::Instant::now();
    let all_closed = server.engine.close_within(Duration::from_millis(500)).await;
    assert!(started.elapsed() < Duration::from_secs(2), "bounded: {:?}", started.elapsed());
    assert!(!all_closed, "the absent polling client could not be told in time");
    ws_closed(&mut ws).await;
    // New connections are no longer accepted.
    tokio::time::sleep(Duration::from_millis(50)).await;
    let refused = tokio::net::TcpStream::connect(server.addr).await;
    assert!(refused.is_err(), "the listener is closed");
}

#[tokio::test]
async fn a_closing_engine_answers_handshakes_on_open_connections_with_503() {
    use tokio::io::AsyncWriteExt;
    let server = start(EngineConfig::default()).await;
    // A connection accepted before the close (as a proxy keeps them), used after it.
    let mut stream = tokio::net::TcpStream::connect(server.addr).await.unwrap();
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert!(server.engine.close_within(Duration::from_millis(500)).await);
    let head = format!("GET /engine.io/?EIO=4&transport=polling HTTP/1.1\r\nHost: {}\r\n\r\n", server.addr);
    stream.write_all(head.as_bytes()).await.unwrap();
    let res = read_response(&mut stream).await;
    assert_eq!(res.status, 503, "{}", res.text());
    assert_eq!(res.header("connection"), Some("close"));
    assert_eq!(server.engine.session_count(), 0, "no session was made");
}
