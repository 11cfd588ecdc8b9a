//! Our codecs behind the same operations and result shapes as `e2e/conformance/harness.mjs` (see the shapes
//! documented at the top of that file), so that a result of ours and one of the reference compare as JSON.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use engineio_proto::payload::{PayloadIter, encode_payload};
use engineio_proto::{ByteString, Bytes, DecodeError, Frame, Message, Packet as EioPacket, v3};
use serde_json::{Map as JsonMap, Value as Json, json};
use socketio_proto::msgpack::MsgpackParser;
use socketio_proto::{JsonParser, Packet, PacketType, Parser, Value};

/// The largest integer JavaScript holds exactly (2^53 - 1).
pub(crate) const MAX_SAFE_INTEGER: u64 = (1 << 53) - 1;

/// A message (or raw input) as the harness writes it: `{"text": ...}` or `{"bin": base64}`.
pub(crate) fn blob_text(s: &str) -> Json {
    json!({ "text": s })
}

/// Binary as a blob.
pub(crate) fn blob_bin(b: &[u8]) -> Json {
    json!({ "bin": STANDARD.encode(b) })
}

/// A message as a blob.
pub(crate) fn blob_of_message(m: &Message) -> Json {
    match m {
        Message::Text(t) => blob_text(t),
        Message::Binary(b) => blob_bin(b),
    }
}

/// A blob as a message.
pub(crate) fn message_of_blob(blob: &Json) -> Message {
    if let Some(t) = blob.get("text").and_then(Json::as_str) {
        Message::from(t)
    } else {
        Message::Binary(Bytes::from(unbase64(blob.get("bin").and_then(Json::as_str).unwrap_or(""))))
    }
}

/// Decodes base64 written by the harness or by us (always valid).
pub(crate) fn unbase64(s: &str) -> Vec<u8> {
    STANDARD.decode(s).unwrap_or_default()
}

// ---------------------------------------------------------------- Engine.IO

fn eio_type_name(p: &EioPacket) -> &'static str {
    match p {
        EioPacket::Open(_) => "open",
        EioPacket::Close => "close",
        EioPacket::Ping | EioPacket::PingProbe => "ping",
        EioPacket::Pong | EioPacket::PongProbe => "pong",
        EioPacket::Message(_) => "message",
        EioPacket::Upgrade => "upgrade",
        EioPacket::Noop => "noop",
    }
}

/// A packet in the harness's EioPacket shape (no `data` for the empty string).
pub(crate) fn eio_packet_json(p: &EioPacket) -> Json {
    let mut o = JsonMap::new();
    o.insert("type".into(), json!(eio_type_name(p)));
    let data = match p {
        EioPacket::Open(t) | EioPacket::Message(Message::Text(t)) if !t.is_empty() => Some(blob_text(t)),
        EioPacket::PingProbe | EioPacket::PongProbe => Some(blob_text("probe")),
        EioPacket::Message(Message::Binary(b)) => Some(blob_bin(b)),
        _ => None,
    };
    if let Some(d) = data {
        o.insert("data".into(), d);
    }
    Json::Object(o)
}

/// The packet an EioPacket shape describes (the generators only produce shapes that have one).
pub(crate) fn eio_packet_of_json(j: &Json) -> EioPacket {
    let data = j.get("data");
    let text = data.and_then(|d| d.get("text")).and_then(Json::as_str);
    match (j["type"].as_str().unwrap_or(""), data) {
        ("open", _) => EioPacket::Open(ByteString::from(text.unwrap_or(""))),
        ("close", _) => EioPacket::Close,
        ("ping", Some(_)) => EioPacket::PingProbe,
        ("ping", None) => EioPacket::Ping,
        ("pong", Some(_)) => EioPacket::PongProbe,
        ("pong", None) => EioPacket::Pong,
        ("upgrade", _) => EioPacket::Upgrade,
        ("noop", _) => EioPacket::Noop,
        (_, Some(d)) => EioPacket::Message(message_of_blob(d)),
        (_, None) => EioPacket::Message(Message::from("")),
    }
}

/// `eio.decodePacket`: a WebSocket frame (text or binary).
pub(crate) fn eio_decode_packet(input: &Json) -> Json {
    let frame = match message_of_blob(input) {
        Message::Text(t) => Frame::Text(t),
        Message::Binary(b) => Frame::Binary(b),
    };
    match EioPacket::decode_frame(frame) {
        Ok(p) => json!({ "accepted": true, "packet": eio_packet_json(&p) }),
        Err(e) => json!({ "accepted": false, "error": e.to_string() }),
    }
}

/// `eio.encodePacket` (as on a WebSocket: binary stays binary).
pub(crate) fn eio_encode_packet(packet: &Json) -> Json {
    let frame = eio_packet_of_json(packet).encode();
    json!({ "encoded": frame_blob(&frame) })
}

fn frame_blob(f: &Frame) -> Json {
    match f {
        Frame::Text(t) => blob_text(t),
        Frame::Binary(b) => blob_bin(b),
    }
}

/// `eio.decodePayload`: the packets before the first bad entry, and whether there was one.
pub(crate) fn eio_decode_payload(body: &[u8]) -> Json {
    match PayloadIter::new(Bytes::copy_from_slice(body), usize::MAX) {
        Ok(iter) => eio_packets(iter),
        Err(e) => json!({ "accepted": false, "packets": [], "error": e.to_string() }),
    }
}

/// The packets of a payload before its first error, as the harness reports them.
fn eio_packets(items: impl Iterator<Item = Result<EioPacket, DecodeError>>) -> Json {
    let mut packets = Vec::new();
    for item in items {
        match item {
            Ok(p) => packets.push(eio_packet_json(&p)),
            Err(e) => return json!({ "accepted": false, "packets": packets, "error": e.to_string() }),
        }
    }
    json!({ "accepted": true, "packets": packets })
}

/// `eio3.decodePayload`: a v3 text payload, or a binary payload.
pub(crate) fn eio3_decode_payload(body: &[u8], binary: bool) -> Json {
    match v3::decode_payload(Bytes::copy_from_slice(body), binary, usize::MAX) {
        Ok(iter) => eio_packets(iter),
        Err(e) => json!({ "accepted": false, "packets": [], "error": e.to_string() }),
    }
}

/// `eio3.encodePayload`: a text payload, or a binary one when the client supports binary and there is some.
pub(crate) fn eio3_encode_payload(packets: &[Json], supports_binary: bool) -> Json {
    let frames: Vec<Frame> = packets.iter().map(|p| eio_packet_of_json(p).encode()).collect();
    let (body, binary) = v3::encode_payload(&frames, supports_binary);
    let encoded = if binary { blob_bin(&body) } else { blob_text(&String::from_utf8_lossy(&body)) };
    json!({ "encoded": encoded })
}

/// `eio.encodePayload`.
pub(crate) fn eio_encode_payload(packets: &[Json]) -> Json {
    let frames: Vec<Frame> = packets.iter().map(|p| eio_packet_of_json(p).encode()).collect();
    let body = encode_payload(&frames);
    json!({ "encoded": { "text": String::from_utf8_lossy(&body) } })
}

// ---------------------------------------------------------------- Socket.IO values

/// Nesting deeper than this is written `{"$deep": depth of the subtree}`, as the harness does.
const MAX_DEPTH: usize = 64;

fn depth_of(v: &Value) -> usize {
    match v {
        Value::Array(a) => 1 + a.iter().map(depth_of).max().unwrap_or(0),
        Value::Object(o) => 1 + o.values().map(depth_of).max().unwrap_or(0),
        _ => 0,
    }
}

/// A value as harness JSON: binary is `{"$bin": base64}`.
pub(crate) fn value_json(v: &Value) -> Json {
    value_json_at(v, 0)
}

fn value_json_at(v: &Value, depth: usize) -> Json {
    if depth >= MAX_DEPTH && depth_of(v) > 0 {
        return json!({ "$deep": depth_of(v) });
    }
    let value_json = |x: &Value| value_json_at(x, depth + 1);
    match v {
        Value::Null => Json::Null,
        Value::Bool(b) => Json::Bool(*b),
        Value::Number(n) => Json::Number(n.clone()),
        Value::String(s) => Json::String(s.clone()),
        Value::Binary(b) => json!({ "$bin": STANDARD.encode(b) }),
        Value::Array(a) => Json::Array(a.iter().map(value_json).collect()),
        Value::Object(o) => Json::Object(o.iter().map(|(k, v)| (k.clone(), value_json(v))).collect()),
    }
}

/// Harness JSON as a value (`{"$bin": ...}` becomes binary).
pub(crate) fn value_of_json(j: &Json) -> Value {
    match j {
        Json::Null => Value::Null,
        Json::Bool(b) => Value::Bool(*b),
        Json::Number(n) => Value::Number(n.clone()),
        Json::String(s) => Value::String(s.clone()),
        Json::Array(a) => Value::Array(a.iter().map(value_of_json).collect()),
        Json::Object(o) => {
            if o.len() == 1
                && let Some(Json::String(b)) = o.get("$bin")
            {
                return Value::Binary(Bytes::from(unbase64(b)));
            }
            Value::Object(o.iter().map(|(k, v)| (k.clone(), value_of_json(v))).collect())
        }
    }
}

/// An ack id as the harness writes it: a number when JavaScript holds it exactly, else `{"$num": digits}`.
pub(crate) fn id_json(id: u64) -> Json {
    if id <= MAX_SAFE_INTEGER { json!(id) } else { json!({ "$num": id.to_string() }) }
}

fn kind_of(n: u64) -> PacketType {
    match n {
        0 => PacketType::Connect,
        1 => PacketType::Disconnect,
        2 => PacketType::Event,
        3 => PacketType::Ack,
        4 => PacketType::ConnectError,
        5 => PacketType::BinaryEvent,
        _ => PacketType::BinaryAck,
    }
}

/// A decoded packet in the harness's SioPacket shape. A binary type is reported as EVENT / ACK, as the
/// reference does once the attachments are in place (our decoders already give the plain type; a packet
/// built by hand may carry either).
pub(crate) fn sio_packet_json(p: &Packet) -> Json {
    let kind = match p.kind {
        PacketType::BinaryEvent => PacketType::Event,
        PacketType::BinaryAck => PacketType::Ack,
        k => k,
    };
    let mut o = JsonMap::new();
    o.insert("type".into(), json!(kind as u8));
    o.insert("nsp".into(), json!(p.nsp));
    if let Some(id) = p.id {
        o.insert("id".into(), id_json(id));
    }
    if let Some(d) = &p.data {
        o.insert("data".into(), value_json(d));
    }
    Json::Object(o)
}

/// The packet a SioPacket shape describes.
pub(crate) fn sio_packet_of_json(j: &Json) -> Packet {
    Packet {
        kind: kind_of(j["type"].as_u64().unwrap_or(0)),
        nsp: j["nsp"].as_str().unwrap_or("/").to_owned(),
        id: j.get("id").and_then(Json::as_u64),
        data: j.get("data").map(value_of_json),
    }
}

/// `sio.decode`: one default-parser decoder fed the messages in order, stopping at the first error.
pub(crate) fn sio_decode(messages: &[Json]) -> Json {
    let mut decoder = JsonParser::default().decoder();
    let mut packets = Vec::new();
    for m in messages {
        match decoder.decode(message_of_blob(m)) {
            Ok(Some(p)) => packets.push(sio_packet_json(&p)),
            Ok(None) => {}
            Err(e) => {
                return json!({ "accepted": false, "packets": packets, "pending": decoder.is_reconstructing(),
                               "error": e.to_string() });
            }
        }
    }
    json!({ "accepted": true, "packets": packets, "pending": decoder.is_reconstructing() })
}

/// `sio.encode` with the default parser.
pub(crate) fn sio_encode(packet: &Json) -> Json {
    let messages = JsonParser::default().encode(&sio_packet_of_json(packet));
    json!({ "messages": messages.iter().map(blob_of_message).collect::<Vec<_>>() })
}

/// `msgpack.decode`.
pub(crate) fn msgpack_decode(bytes: &[u8]) -> Json {
    match MsgpackParser.decoder().decode(Message::Binary(Bytes::copy_from_slice(bytes))) {
        Ok(Some(p)) => json!({ "accepted": true, "packet": sio_packet_json(&p) }),
        Ok(None) => json!({ "accepted": false, "error": "no packet" }),
        Err(e) => json!({ "accepted": false, "error": e.to_string() }),
    }
}

/// `msgpack.encode`.
pub(crate) fn msgpack_encode(packet: &Json) -> Json {
    let messages = MsgpackParser.encode(&sio_packet_of_json(packet));
    let bytes = match messages.first() {
        Some(Message::Binary(b)) => b.to_vec(),
        _ => Vec::new(),
    };
    json!({ "encoded": STANDARD.encode(bytes) })
}

/// Runs one harness request on our side.
pub(crate) fn run(request: &Json) -> Json {
    let empty = Vec::new();
    match request["op"].as_str().unwrap_or("") {
        "eio.decodePacket" => eio_decode_packet(&request["input"]),
        "eio.encodePacket" => eio_encode_packet(&request["packet"]),
        "eio.decodePayload" => eio_decode_payload(&unbase64(request["input"].as_str().unwrap_or(""))),
        "eio.encodePayload" => eio_encode_payload(request["packets"].as_array().unwrap_or(&empty)),
        "eio3.decodePayload" => eio3_decode_payload(
            &unbase64(request["input"].as_str().unwrap_or("")),
            request["binary"].as_bool().unwrap_or(false),
        ),
        "eio3.encodePayload" => eio3_encode_payload(
            request["packets"].as_array().unwrap_or(&empty),
            request["supportsBinary"].as_bool().unwrap_or(false),
        ),
        "sio.decode" => sio_decode(request["messages"].as_array().unwrap_or(&empty)),
        "sio.encode" => sio_encode(&request["packet"]),
        "msgpack.decode" => msgpack_decode(&unbase64(request["input"].as_str().unwrap_or(""))),
        "msgpack.encode" => msgpack_encode(&request["packet"]),
        op => json!({ "accepted": false, "error": format!("unknown op {op}") }),
    }
}
