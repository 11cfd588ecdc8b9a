//! The endpoint mounted in axum beside the application's routes, with the client's address taken from
//! axum's `ConnectInfo` (the `axum` feature, which the workspace's demo turns on, so `cargo test
//! --workspace` runs this file).
#![cfg(feature = "axum")]

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::routing::get;
use engineio_server::{Engine, EngineConfig, RemoteAddr};

mod support;

#[tokio::test]
async fn mounted_in_axum_with_the_remote_address_from_connect_info() {
    let seen: Arc<Mutex<Vec<SocketAddr>>> = Arc::default();
    let log = seen.clone();
    let mut config = EngineConfig::default();
    config.max_sessions_per_address = Some(1);
    config.allow_request(move |req| {
        let log = log.clone();
        async move {
            if let Some(RemoteAddr(addr)) = req.extensions.get::<RemoteAddr>() {
                log.lock().unwrap().push(*addr);
            }
            Ok(())
        }
    });
    let engine = Engine::new(config, support::Echo);
    let app = Router::new().route("/hello", get(|| async { "hi" })).route_service("/engine.io/", engine.service());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        axum::serve(listener, app.into_make_service_with_connect_info::<SocketAddr>()).await.unwrap();
    });
    assert_eq!(support::get(addr, "/hello").await.text(), "hi", "the application's route");
    let open = support::get(addr, "/engine.io/?EIO=4&transport=polling").await;
    assert_eq!(open.status, 200);
    assert!(open.text().starts_with("0{"), "{}", open.text());
    assert_eq!(
        seen.lock().unwrap().first().map(SocketAddr::ip),
        Some(addr.ip()),
        "the client's address reached the hook"
    );
    // The per-address limit counts by that address: a second session from it is refused.
    let second = support::get(addr, "/engine.io/?EIO=4&transport=polling").await;
    assert_eq!(second.status, 403, "{}", second.text());
}

#[tokio::test]
async fn as_a_layer_in_front_of_the_application_routes() {
    let mut config = EngineConfig::default();
    config.max_sessions_per_address = Some(2);
    let engine = Engine::new(config, support::Echo);
    let app = Router::new().route("/hello", get(|| async { "hi" })).layer(engine.layer());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        axum::serve(listener, app.into_make_service_with_connect_info::<SocketAddr>()).await.unwrap();
    });
    assert_eq!(support::get(addr, "/hello").await.text(), "hi", "the application's route");
    // Another path is the application's too: its 404 (empty), not the endpoint's ("Not Found").
    let other = support::get(addr, "/nowhere").await;
    assert_eq!((other.status, other.text()), (404, String::new()));
    // The endpoint: a polling session (POST then GET echoes) and a WebSocket session.
    let (sid, _) = support::handshake(addr).await;
    assert_eq!(support::post(addr, &support::poll_path(&sid), b"4hello").await.status, 200);
    assert_eq!(support::get(addr, &support::poll_path(&sid)).await.text(), "4hello");
    let (mut ws, _) = support::ws_connect(addr, "/engine.io/?EIO=4&transport=websocket", &[]).await.unwrap();
    assert!(support::ws_text(&mut ws).await.starts_with("0{"));
    support::ws_send(&mut ws, "4over ws").await;
    assert_eq!(support::ws_text(&mut ws).await, "4over ws");
    // The address came from ConnectInfo through the layer: a third session from it is refused.
    let third = support::get(addr, "/engine.io/?EIO=4&transport=polling").await;
    assert_eq!(third.status, 403, "{}", third.text());
}
