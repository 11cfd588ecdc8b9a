//! Generators of valid packets (proptest strategies), in the harness's JSON shapes (see `ours`).
//!
//! "Valid" means a packet both stacks should carry unchanged: namespaces start with `/` and hold no comma,
//! ack ids are safe integers, event names are not reserved, payload texts hold no record separator. A few
//! values that are valid but known to print differently (integer-like object keys, integers past 2^53) are
//! drawn now and then on purpose, so the known divergences they cause stay exercised.

use proptest::prelude::*;
use proptest::strategy::{BoxedStrategy, ValueTree};
use proptest::test_runner::TestRunner;
use serde_json::{Map as JsonMap, Value as Json, json};
use socketio_proto::RESERVED_EVENTS;

use crate::ours::{MAX_SAFE_INTEGER, blob_bin, blob_text};

/// Draws one value from a strategy.
pub(crate) fn draw<T: std::fmt::Debug>(runner: &mut TestRunner, s: &BoxedStrategy<T>) -> T {
    s.new_tree(runner).expect("strategies here never reject").current()
}

fn special_string() -> BoxedStrategy<String> {
    prop::sample::select(vec![
        "",
        " ",
        "é",
        "\u{2028}\u{2029}",
        "😀",
        "\u{feff}bom",
        "a\"b\\c",
        "\n\r\t\u{8}\u{c}",
        "\u{0}\u{1f}\u{7f}",
        "</script>",
        "{\"_placeholder\":true}",
        "1e3",
        "-",
        "/",
        ",",
        "\u{10ffff}",
        "\u{fffd}",
    ])
    .prop_map(str::to_owned)
    .boxed()
}

/// Strings: mostly readable, some arbitrary Unicode, some chosen edge cases.
pub(crate) fn string() -> BoxedStrategy<String> {
    prop_oneof![
        6 => "[a-zA-Z0-9 _.:-]{0,16}",
        3 => any::<String>(),
        2 => special_string(),
    ]
    .boxed()
}

fn key() -> BoxedStrategy<String> {
    prop_oneof![
        12 => "[a-z_][a-zA-Z0-9_]{0,8}",
        3 => string(),
        // Integer-like keys: JavaScript orders them first (known divergence JS-KEY-ORDER).
        1 => "(0|[1-9][0-9]{0,3})",
    ]
    .prop_filter("keys the harness or the placeholder format give a meaning", |k| {
        k != "$bin" && k != "_placeholder" && !k.starts_with("$lone:")
    })
    .boxed()
}

fn number() -> BoxedStrategy<Json> {
    prop_oneof![
        8 => (-1000i64..1000).prop_map(Json::from),
        4 => (-(MAX_SAFE_INTEGER as i64)..=MAX_SAFE_INTEGER as i64).prop_map(Json::from),
        4 => any::<f64>().prop_filter_map("finite", |f| serde_json::Number::from_f64(f).map(Json::Number)),
        2 => prop::sample::select(vec![
            0.1, 0.5, -1.5, 1e21, 1e-7, 1.5e-7, 1e-6, 123456789.125, 5e-324, 1.7976931348623157e308, 1e300,
            -0.0, 1.0, 2.5e20, 1e20, 0.000001234,
        ])
        .prop_map(|f| serde_json::Number::from_f64(f).map_or(Json::Null, Json::Number)),
        // Integers JavaScript cannot hold exactly (known divergence BIG-INT-DATA).
        1 => prop_oneof![
            ((MAX_SAFE_INTEGER + 2)..=u64::MAX).prop_map(Json::from),
            (i64::MIN..-(MAX_SAFE_INTEGER as i64 + 1)).prop_map(Json::from)
        ],
    ]
    .boxed()
}

fn bytes() -> BoxedStrategy<Vec<u8>> {
    prop_oneof![3 => prop::collection::vec(any::<u8>(), 0..24), 1 => prop::collection::vec(any::<u8>(), 200..400)]
        .boxed()
}

/// JSON values; with `binary`, `{"$bin": ...}` leaves too.
pub(crate) fn value(binary: bool) -> BoxedStrategy<Json> {
    let leaf = if binary {
        prop_oneof![
            1 => Just(Json::Null),
            1 => any::<bool>().prop_map(Json::Bool),
            4 => number(),
            4 => string().prop_map(Json::String),
            2 => bytes().prop_map(|b| json!({ "$bin": base64_of(&b) })),
        ]
        .boxed()
    } else {
        prop_oneof![
            1 => Just(Json::Null),
            1 => any::<bool>().prop_map(Json::Bool),
            4 => number(),
            4 => string().prop_map(Json::String),
        ]
        .boxed()
    };
    leaf.prop_recursive(3, 24, 5, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..5).prop_map(Json::Array),
            prop::collection::vec((key(), inner), 0..5).prop_map(|kv| Json::Object(kv.into_iter().collect())),
        ]
    })
    .boxed()
}

fn object(binary: bool) -> BoxedStrategy<Json> {
    prop::collection::vec((key(), value(binary)), 0..4)
        .prop_map(|kv| Json::Object(kv.into_iter().collect::<JsonMap<_, _>>()))
        .boxed()
}

fn base64_of(b: &[u8]) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(b)
}

/// Namespaces: `/`, or `/` followed by characters other than the comma.
pub(crate) fn namespace() -> BoxedStrategy<String> {
    prop_oneof![
        4 => Just("/".to_owned()),
        4 => "/[a-zA-Z0-9_.-]{1,10}",
        1 => "/[a-z]{1,4}/[a-z0-9]{1,4}",
        1 => any::<String>().prop_map(|s| format!("/{}", s.replace(',', ""))),
    ]
    .boxed()
}

fn ack_id() -> BoxedStrategy<u64> {
    prop_oneof![4 => 0u64..1000, 1 => 0..=MAX_SAFE_INTEGER].boxed()
}

fn event_name() -> BoxedStrategy<Json> {
    prop_oneof![
        8 => string().prop_filter("reserved", |s| !RESERVED_EVENTS.contains(&s.as_str())).prop_map(Json::String),
        1 => (-100i64..100).prop_map(Json::from),
    ]
    .boxed()
}

fn with(nsp: String, ty: u8, id: Option<u64>, data: Option<Json>) -> Json {
    let mut o = JsonMap::new();
    o.insert("type".into(), json!(ty));
    o.insert("nsp".into(), json!(nsp));
    if let Some(id) = id {
        o.insert("id".into(), json!(id));
    }
    if let Some(d) = data {
        o.insert("data".into(), d);
    }
    Json::Object(o)
}

/// Socket.IO packets (types 0 to 4; binary anywhere in the data). `binary_in_connect` allows binary in the
/// data of CONNECT and CONNECT_ERROR (which the default parser writes inline, as `Buffer.toJSON()`).
pub(crate) fn sio_packet(binary_in_connect: bool) -> BoxedStrategy<Json> {
    let connect =
        (namespace(), prop::option::of(object(binary_in_connect))).prop_map(|(nsp, data)| with(nsp, 0, None, data));
    let disconnect = namespace().prop_map(|nsp| with(nsp, 1, None, None));
    let event = (namespace(), prop::option::of(ack_id()), event_name(), prop::collection::vec(value(true), 0..4))
        .prop_map(|(nsp, id, name, args)| {
            let mut data = vec![name];
            data.extend(args);
            with(nsp, 2, id, Some(Json::Array(data)))
        });
    let ack = (namespace(), ack_id(), prop::collection::vec(value(true), 0..4))
        .prop_map(|(nsp, id, args)| with(nsp, 3, Some(id), Some(Json::Array(args))));
    let connect_error = (
        namespace(),
        prop_oneof![
            1 => string().prop_map(Json::String),
            3 => (string(), prop::option::of(value(binary_in_connect))).prop_map(|(m, d)| {
                let mut o = JsonMap::new();
                o.insert("message".into(), Json::String(m));
                if let Some(d) = d {
                    o.insert("data".into(), d);
                }
                Json::Object(o)
            }),
        ],
    )
        .prop_map(|(nsp, data)| with(nsp, 4, None, Some(data)));
    prop_oneof![2 => connect, 1 => disconnect, 5 => event, 3 => ack, 1 => connect_error].boxed()
}

fn eio_text(allow_separator: bool) -> BoxedStrategy<String> {
    string().prop_map(move |s| if allow_separator { s } else { s.replace('\u{1e}', "") }).boxed()
}

/// Engine.IO packets (the EioPacket shape). In a payload, texts hold no record separator.
pub(crate) fn eio_packet(in_payload: bool) -> BoxedStrategy<Json> {
    prop_oneof![
        1 => eio_text(!in_payload).prop_map(|t| json!({ "type": "open", "data": blob_text(&t) })),
        1 => prop::sample::select(vec!["close", "ping", "pong", "upgrade", "noop"]).prop_map(|t| json!({ "type": t })),
        1 => prop::sample::select(vec!["ping", "pong"]).prop_map(|t| json!({ "type": t, "data": blob_text("probe") })),
        6 => eio_text(!in_payload).prop_map(|t| json!({ "type": "message", "data": blob_text(&t) })),
        3 => bytes().prop_map(|b| json!({ "type": "message", "data": blob_bin(&b) })),
    ]
    .prop_map(|mut p| {
        // The empty string is "no data" in the EioPacket shape.
        if p.pointer("/data/text").and_then(Json::as_str) == Some("")
            && let Some(o) = p.as_object_mut()
        {
            o.remove("data");
        }
        p
    })
    .boxed()
}

/// Polling payloads: one to six packets.
pub(crate) fn eio_payload() -> BoxedStrategy<Vec<Json>> {
    prop::collection::vec(eio_packet(true), 1..7).boxed()
}
