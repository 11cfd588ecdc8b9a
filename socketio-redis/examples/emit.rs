//! Emits one event to a Socket.IO cluster through Redis, without being a server: the `RedisEmitter` from the
//! command line. `emit --redis URL [--nsp /] [--room R]... [--except R]... EVENT [ARG...]`; each ARG is JSON if
//! it parses as JSON, else a string.

use socketio_redis::RedisEmitter;
use socketio_server::Value;

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let mut args = std::env::args().skip(1);
    let (mut url, mut nsp, mut rooms, mut except, mut rest) =
        (None, "/".to_owned(), Vec::new(), Vec::new(), Vec::new());
    while let Some(a) = args.next() {
        match a.as_str() {
            "--redis" => url = args.next(),
            "--nsp" => nsp = args.next().expect("--nsp NAME"),
            "--room" => rooms.push(args.next().expect("--room R")),
            "--except" => except.push(args.next().expect("--except R")),
            _ => rest.push(a),
        }
    }
    let url = url.expect("--redis URL");
    let event = rest.first().cloned().expect("an event name");
    let values: Vec<Value> = rest[1..]
        .iter()
        .map(|a| {
            serde_json::from_str::<serde_json::Value>(a).map(Value::from).unwrap_or_else(|_| Value::from(a.as_str()))
        })
        .collect();
    let emitter = RedisEmitter::connect(&url).await.expect("connect to Redis").of(&nsp).to(rooms).except(except);
    emitter.emit(&event, values).await.expect("publish");
}
