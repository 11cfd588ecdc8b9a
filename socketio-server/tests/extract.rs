//! Typed handler arguments, as a client's packets reach them: `Data<T>` per argument (binary kept),
//! `Args<T>` for the rest, the ack handle, application state, the server, and what happens when an
//! argument cannot be taken (the handler is not called, the error hook hears of it).

use std::sync::{Arc, Mutex};

use serde::{Deserialize, Serialize};
use socketio_server::extract::{Args, Data, Request, State, TryData};
use socketio_server::{AckSender, Event, HandlerError, Socket, SocketIo, Value};

mod support;
use support::*;

#[derive(Debug, Deserialize, Serialize)]
struct Order {
    item: String,
    quantity: u32,
}

#[derive(Debug, Deserialize)]
struct Upload {
    name: String,
    data: bytes::Bytes,
}

struct Stock(Mutex<u32>);

type Seen = Arc<Mutex<Vec<(String, String)>>>;

async fn start() -> (SocketIo, std::net::SocketAddr, Seen) {
    let io = SocketIo::default();
    io.set_state(Stock(Mutex::new(10)));
    let seen: Seen = Arc::default();
    let log = seen.clone();
    io.on_handler_error(move |_: &Socket, event: &str, err: &HandlerError| {
        log.lock().unwrap().push((event.to_owned(), err.to_string()));
    });
    io.on_connection(|socket: Socket| async move {
        socket.on("order", |Data(order): Data<Order>, State(stock): State<Stock>, ack: AckSender| async move {
            let mut left = stock.0.lock().unwrap();
            *left = left.saturating_sub(order.quantity);
            ack.send(&(order.item, *left));
        });
        // Two `Data` take the first two arguments; `Args` the rest; `Event` sees what is left (nothing).
        socket.on(
            "parts",
            |s: Socket, Data(a): Data<String>, Data(b): Data<Option<u8>>, Args(rest): Args<Vec<Value>>, ev: Event| async move {
                s.emit("parts", &(a, b, rest.len(), ev.name, ev.args.len()))
            },
        );
        socket.on("upload", |s: Socket, Data(up): Data<Upload>| async move {
            s.emit("uploaded", (up.name, up.data.len() as u64, up.data))
        });
        socket.on("raw", |s: Socket, Data(v): Data<Value>| async move { s.emit("raw", v) });
        socket.on("try", |s: Socket, TryData(n): TryData<u32>| async move {
            s.emit("try", n.map_err(|e| e.to_string()).err().unwrap_or_default())
        });
        socket.on("no-state", |State(_): State<String>| async move {});
        socket.on("io", |io: SocketIo, s: Socket| async move {
            io.to(s.id()).emit("io", io.of("/").sockets().len() as u64)
        });
        socket.on("maybe-ack", |s: Socket, ack: Option<AckSender>| async move {
            let asked = ack.is_some();
            if let Some(ack) = ack {
                ack.send("yes");
            }
            s.emit("asked", asked)
        });
        socket.on("nothing", || async {});
        // The request that carried the event: a long-polling POST's headers; none over a WebSocket.
        socket.on("tab", |Request(req): Request, ack: AckSender, ev: Event| async move {
            let header = |r: &socketio_server::http::request::Parts| r.headers.get("x-tab").map(|v| v.to_str().unwrap().to_owned());
            assert_eq!(req.as_deref().map(header), ev.request().map(header), "the extractor and Event agree");
            ack.send(&req.as_deref().map(|r| header(r).unwrap_or_else(|| "no header".into())));
        });
        // An async closure (Rust 1.85) is a handler too.
        socket.on("double", async |s: Socket, Data(n): Data<u32>| s.emit("double", n * 2));
    });
    let (addr, _) = io.listen("127.0.0.1:0".parse().unwrap()).await.unwrap();
    (io, addr, seen)
}

async fn joined(addr: std::net::SocketAddr) -> Ws {
    let mut ws = ws_open(addr).await;
    send(&mut ws, "40").await;
    assert!(next_text(&mut ws).await.starts_with("40{"));
    ws
}

#[tokio::test]
async fn typed_data_state_and_ack_in_one_line_of_logic() {
    let (_io, addr, seen) = start().await;
    let mut ws = joined(addr).await;
    send(&mut ws, r#"421["order",{"item":"tea","quantity":3}]"#).await;
    assert_eq!(next_text(&mut ws).await, r#"431["tea",7]"#);
    send(&mut ws, r#"422["order",{"item":"tea","quantity":4}]"#).await;
    assert_eq!(next_text(&mut ws).await, r#"432["tea",3]"#, "the state is shared");
    assert!(seen.lock().unwrap().is_empty());
}

#[tokio::test]
async fn data_takes_arguments_in_order_and_args_the_rest() {
    let (_io, addr, _) = start().await;
    let mut ws = joined(addr).await;
    send(&mut ws, r#"42["parts","a",7,true,null,{}]"#).await;
    assert_eq!(next_text(&mut ws).await, r#"42["parts","a",7,3,"parts",0]"#);
    // A missing argument is null: an Option is None, the rest empty.
    send(&mut ws, r#"42["parts","a"]"#).await;
    assert_eq!(next_text(&mut ws).await, r#"42["parts","a",null,0,"parts",0]"#);
}

#[tokio::test]
async fn binary_reaches_typed_fields_and_values_unchanged() {
    let (_io, addr, _) = start().await;
    let mut ws = joined(addr).await;
    send(&mut ws, r#"451-["upload",{"name":"a.bin","data":{"_placeholder":true,"num":0}}]"#).await;
    send_binary(&mut ws, &[1, 2, 3]).await;
    assert_eq!(next_text(&mut ws).await, r#"451-["uploaded","a.bin",3,{"_placeholder":true,"num":0}]"#);
    assert_eq!(next_binary(&mut ws).await, vec![1, 2, 3]);
    send(&mut ws, r#"451-["raw",[{"_placeholder":true,"num":0}]]"#).await;
    send_binary(&mut ws, &[9]).await;
    assert_eq!(next_text(&mut ws).await, r#"451-["raw",[{"_placeholder":true,"num":0}]]"#, "Data<Value> keeps binary");
    assert_eq!(next_binary(&mut ws).await, vec![9]);
}

#[tokio::test]
async fn an_argument_that_does_not_fit_goes_to_the_error_hook_and_the_handler_is_not_called() {
    let (_io, addr, seen) = start().await;
    let mut ws = joined(addr).await;
    send(&mut ws, r#"421["order",{"item":"tea"}]"#).await;
    send(&mut ws, r#"42["no-state"]"#).await;
    // TryData hands the error to the handler instead.
    send(&mut ws, r#"42["try","x"]"#).await;
    let reply = next_text(&mut ws).await;
    assert!(reply.starts_with(r#"42["try","invalid type: string"#), "{reply}");
    eventually(|| seen.lock().unwrap().len() == 2).await;
    let seen = seen.lock().unwrap().clone();
    assert_eq!(seen[0].0, "order");
    assert!(seen[0].1.contains("argument 0") && seen[0].1.contains("missing field `quantity`"), "{seen:?}");
    assert_eq!(seen[1].0, "no-state");
    assert!(seen[1].1.contains("no application state of type alloc::string::String"), "{seen:?}");
}

#[tokio::test]
async fn the_server_and_an_optional_ack_are_arguments_too() {
    let (_io, addr, _) = start().await;
    let mut ws = joined(addr).await;
    send(&mut ws, r#"42["io"]"#).await;
    assert_eq!(next_text(&mut ws).await, r#"42["io",1]"#);
    send(&mut ws, r#"42["maybe-ack"]"#).await;
    assert_eq!(next_text(&mut ws).await, r#"42["asked",false]"#);
    send(&mut ws, r#"425["maybe-ack"]"#).await;
    assert_eq!(next_text(&mut ws).await, r#"435["yes"]"#);
    assert_eq!(next_text(&mut ws).await, r#"42["asked",true]"#);
    // An AckSender when none was asked for sends nothing; a handler of no arguments runs.
    send(&mut ws, r#"42["order",{"item":"x","quantity":1}]"#).await;
    send(&mut ws, r#"42["nothing"]"#).await;
    send(&mut ws, r#"42["io"]"#).await;
    assert_eq!(next_text(&mut ws).await, r#"42["io",1]"#, "no ack packet came before");
    send(&mut ws, r#"42["double",21]"#).await;
    assert_eq!(next_text(&mut ws).await, r#"42["double",42]"#);
}

#[tokio::test]
async fn a_handler_sees_the_post_that_carried_its_event() {
    let (_io, addr, _) = start().await;
    let path = polling_session(addr).await;
    assert_eq!(http(addr, "POST", &path, "40").await.0, 200);
    assert!(poll_replies(addr, &path, 1).await[0].starts_with("40{"));
    // Two POSTs with different headers: each event sees its own request, not the handshake's.
    for tab in ["1", "2"] {
        let (status, _) = http_with(addr, "POST", &path, &[("x-tab", tab)], "421[\"tab\"]").await;
        assert_eq!(status, 200);
        assert_eq!(poll_replies(addr, &path, 1).await, vec![format!("431[\"{tab}\"]")]);
    }
    assert_eq!(http(addr, "POST", &path, "422[\"tab\"]").await.0, 200);
    assert_eq!(poll_replies(addr, &path, 1).await, vec!["432[\"no header\"]".to_owned()]);
    // Over a WebSocket there is no request per message.
    let mut ws = joined(addr).await;
    send(&mut ws, r#"423["tab"]"#).await;
    assert_eq!(next_text(&mut ws).await, r#"433[null]"#);
}
