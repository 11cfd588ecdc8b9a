//! An Engine.IO echo server: every message comes back as it was sent.
//!
//! `cargo run -p engineio-server --example echo -- --port 3000`
//!
//! Flags (used by the interop tests to start the server with given options): `--port N` (0 picks one),
//! `--path P`, `--ping-interval MS`, `--ping-timeout MS`, `--upgrade-timeout MS`, `--max-http-buffer-size N`,
//! `--transports polling|websocket|polling,websocket`, `--no-upgrades`, `--per-message-deflate`,
//! `--deflate-no-context-takeover` (deflate on, the server asking for no context takeover both ways),
//! `--initial-packet TEXT`, `--allow-eio3` (serve Engine.IO v3 clients too),
//! `--cookie` (the reference defaults), `--cookie-name N`, `--cookie-secure`, `--cookie-same-site-none`,
//! `--cookie-max-age S`, `--cookie-domain D`, `--require-token T` (allow_request refuses handshakes whose
//! query lacks `token=T`, with the message "invalid token"), `--cors-origin URL` (CORS with credentials for
//! that origin, repeatable), `--set-cookie TEXT` (the `headers` hook adds this Set-Cookie to every
//! polling response and 101). It prints `listening on http://ADDR` once bound.
//!
//! Two messages act: `close` makes the server close the session; `binary:N` sends back N bytes 0..N.

use std::net::SocketAddr;
use std::time::Duration;

use engineio_server::{
    Connection, CookieOptions, CorsOptions, Engine, EngineConfig, Handler, Message, SameSite, Socket, TransportKind,
};

struct Echo;

impl Handler for Echo {
    fn on_open(&self, socket: &Socket) -> Box<dyn Connection> {
        Box::new(EchoConnection(socket.clone()))
    }
}

struct EchoConnection(Socket);

impl Connection for EchoConnection {
    fn on_message(&mut self, message: Message) {
        let socket = &self.0;
        match &message {
            Message::Text(t) if &**t == "close" => socket.close(),
            Message::Text(t) if t.starts_with("binary:") => {
                let n: usize = t[7..].parse().unwrap_or(0);
                let _ = socket.send((0..n).map(|i| i as u8).collect::<Vec<u8>>());
            }
            _ => {
                let _ = socket.send(message);
            }
        }
    }
}

fn main() {
    // The log: RUST_LOG (default `info`) on stderr.
    let filter = tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into());
    tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).init();
    let mut config = EngineConfig::default();
    let mut port = 3000u16;
    let mut cors_origins: Vec<String> = Vec::new();
    let mut args = std::env::args().skip(1);
    let ms =
        |v: Option<String>| Duration::from_millis(v.and_then(|v| v.parse().ok()).expect("a number of milliseconds"));
    while let Some(flag) = args.next() {
        match flag.as_str() {
            "--port" => port = args.next().and_then(|v| v.parse().ok()).expect("--port N"),
            "--path" => config.path = args.next().expect("--path P"),
            "--ping-interval" => config.ping_interval = ms(args.next()),
            "--ping-timeout" => config.ping_timeout = ms(args.next()),
            "--upgrade-timeout" => config.upgrade_timeout = ms(args.next()),
            "--max-http-buffer-size" => {
                config.max_http_buffer_size =
                    args.next().and_then(|v| v.parse().ok()).expect("--max-http-buffer-size N")
            }
            "--transports" => {
                config.transports = args
                    .next()
                    .expect("--transports LIST")
                    .split(',')
                    .map(|t| TransportKind::parse(t).expect("polling or websocket"))
                    .collect()
            }
            "--no-upgrades" => config.allow_upgrades = false,
            "--allow-eio3" => config.allow_eio3 = true,
            "--per-message-deflate" => config.per_message_deflate = Some(Default::default()),
            "--deflate-no-context-takeover" => {
                config.per_message_deflate = Some({
                    let mut c = engineio_server::PerMessageDeflate::default();
                    c.server_no_context_takeover = true;
                    c.client_no_context_takeover = true;
                    c
                })
            }
            "--initial-packet" => config.initial_packet = Some(args.next().expect("--initial-packet TEXT").into()),
            "--cookie" => config.cookie = Some(config.cookie.take().unwrap_or_default()),
            "--cookie-name" => {
                config.cookie.get_or_insert_with(CookieOptions::default).name = args.next().expect("name")
            }
            "--cookie-secure" => config.cookie.get_or_insert_with(CookieOptions::default).secure = true,
            "--cookie-same-site-none" => {
                config.cookie.get_or_insert_with(CookieOptions::default).same_site = Some(SameSite::None)
            }
            "--cookie-max-age" => {
                config.cookie.get_or_insert_with(CookieOptions::default).max_age =
                    Some(Duration::from_secs(args.next().and_then(|v| v.parse().ok()).expect("seconds")))
            }
            "--cookie-domain" => config.cookie.get_or_insert_with(CookieOptions::default).domain = args.next(),
            "--require-token" => {
                let token = format!("token={}", args.next().expect("--require-token T"));
                config.allow_request(move |req| {
                    let ok = req.uri.query().is_some_and(|q| q.split('&').any(|p| p == token));
                    async move { if ok { Ok(()) } else { Err("invalid token".to_owned()) } }
                });
            }
            "--cors-origin" => cors_origins.push(args.next().expect("--cors-origin URL")),
            "--set-cookie" => {
                let value =
                    http::HeaderValue::from_str(&args.next().expect("--set-cookie TEXT")).expect("a header value");
                config.headers(move |headers, _req| {
                    headers.append(http::header::SET_COOKIE, value.clone());
                });
            }
            other => panic!("unknown flag {other}"),
        }
    }
    if !cors_origins.is_empty() {
        config.cors = Some(CorsOptions::with_credentials(cors_origins));
    }
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("a tokio runtime");
    runtime.block_on(async move {
        let engine = Engine::new(config, Echo);
        let (addr, task) = engine.listen(SocketAddr::from(([127, 0, 0, 1], port))).await.expect("bind");
        println!("listening on http://{addr}");
        let _ = task.await;
    });
}
