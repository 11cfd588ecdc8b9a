//! The message model of socket.io-adapter's `ClusterAdapter`, which `@socket.io/redis-adapter`'s sharded
//! adapter and `@socket.io/redis-streams-adapter` both speak (the classic adapter has its own, in
//! [`crate::wire`]): messages `{type, data, uid, nsp}` with the numbered types below, and their three
//! encodings — JSON, or notepack msgpack when the data holds binary (sharded Pub/Sub); msgpack always
//! (the streams adapter's Pub/Sub); and stream entries `uid nsp type data`, whose `data` is JSON or the
//! base64 of msgpack when it holds binary.
//!
//! This module is the part the transports share. Nothing here talks to Redis yet: the sharded and streams
//! transports that will use it are the next step of the scale-out work.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use socketio_server::adapter::BroadcastOptions;
use socketio_server::proto::{Map, Packet, Value};

/// The message types, numbered as on the wire. (1, 2 and 13 are the heartbeats and the close of the
/// protocol's heartbeat variant, which neither of these Node adapters uses.)
pub(crate) mod message_type {
    pub(crate) const BROADCAST: u64 = 3;
    pub(crate) const SOCKETS_JOIN: u64 = 4;
    pub(crate) const SOCKETS_LEAVE: u64 = 5;
    pub(crate) const DISCONNECT_SOCKETS: u64 = 6;
    pub(crate) const FETCH_SOCKETS: u64 = 7;
    pub(crate) const FETCH_SOCKETS_RESPONSE: u64 = 8;
    pub(crate) const SERVER_SIDE_EMIT: u64 = 9;
    pub(crate) const SERVER_SIDE_EMIT_RESPONSE: u64 = 10;
    pub(crate) const BROADCAST_CLIENT_COUNT: u64 = 11;
    pub(crate) const BROADCAST_ACK: u64 = 12;

    /// The types whose data may hold binary (packets and acknowledgements), the only ones written as
    /// msgpack by the sharded adapter and base64 msgpack in a stream.
    pub(crate) fn may_hold_binary(kind: u64) -> bool {
        matches!(
            kind,
            BROADCAST | FETCH_SOCKETS_RESPONSE | SERVER_SIDE_EMIT | SERVER_SIDE_EMIT_RESPONSE | BROADCAST_ACK
        )
    }
}

/// One message between the servers of a cluster.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Message {
    /// The type (see [`message_type`]).
    pub(crate) kind: u64,
    /// The sender's id (a response carries the responder's).
    pub(crate) uid: String,
    /// The namespace.
    pub(crate) nsp: String,
    /// The type's fields, if it has any.
    pub(crate) data: Option<Value>,
}

impl Message {
    /// The message as a value `{type, data?, uid, nsp}`, in the reference's key order.
    pub(crate) fn to_value(&self) -> Value {
        let mut o = Map::new();
        o.insert("type".into(), Value::from(self.kind));
        if let Some(d) = &self.data {
            o.insert("data".into(), d.clone());
        }
        o.insert("uid".into(), Value::from(self.uid.as_str()));
        o.insert("nsp".into(), Value::from(self.nsp.as_str()));
        Value::Object(o)
    }

    /// A message from its value; `None` without a numeric type or a string uid and namespace.
    pub(crate) fn from_value(v: &Value) -> Option<Message> {
        Some(Message {
            kind: v.get("type")?.as_u64()?,
            uid: v.get("uid")?.as_str()?.to_owned(),
            nsp: v.get("nsp")?.as_str()?.to_owned(),
            data: v.get("data").cloned(),
        })
    }

    /// Whether the sharded adapter writes this message as msgpack: a type that carries packets or
    /// acknowledgements, with binary in its data.
    fn is_binary(&self) -> bool {
        message_type::may_hold_binary(self.kind) && self.data.as_ref().is_some_and(has_binary)
    }

    /// The sharded adapter's encoding: JSON, or msgpack when the data holds binary.
    pub(crate) fn encode_sharded(&self) -> Vec<u8> {
        if self.is_binary() {
            crate::wire::to_msgpack(&self.to_value())
        } else {
            serde_json::to_vec(&self.to_value().into_json()).expect("JSON without binary always encodes")
        }
    }

    /// The streams adapter's Pub/Sub encoding: msgpack, always.
    pub(crate) fn encode_msgpack(&self) -> Vec<u8> {
        crate::wire::to_msgpack(&self.to_value())
    }

    /// A message in either Pub/Sub encoding: JSON when it starts with `{`, msgpack otherwise.
    pub(crate) fn decode(bytes: &[u8]) -> Option<Message> {
        Message::from_value(&crate::wire::decode_message(bytes)?)
    }

    /// The fields of the message's stream entry, in the reference's order: `uid`, `nsp`, `type` (decimal)
    /// and `data` (JSON, or base64 msgpack when it holds binary), `data` left out when there is none.
    /// With `only_plaintext`, `data` is JSON whatever it holds (binary as Node writes a `Buffer` in JSON).
    pub(crate) fn to_stream_fields(&self, only_plaintext: bool) -> Vec<(&'static str, String)> {
        let mut fields = vec![("uid", self.uid.clone()), ("nsp", self.nsp.clone()), ("type", self.kind.to_string())];
        if let Some(d) = &self.data {
            let data = if only_plaintext {
                let mut out = String::new();
                d.write_json_inline(&mut out);
                out
            } else if self.is_binary() {
                STANDARD.encode(crate::wire::to_msgpack(d))
            } else {
                serde_json::to_string(&d.clone().into_json()).expect("JSON without binary always encodes")
            };
            fields.push(("data", data));
        }
        fields
    }

    /// A message from a stream entry's fields; `None` when `uid`, `nsp` or a numeric `type` is missing, or
    /// `data` does not decode.
    pub(crate) fn from_stream_fields<'a>(fields: impl IntoIterator<Item = (&'a str, &'a [u8])>) -> Option<Message> {
        let (mut uid, mut nsp, mut kind, mut data) = (None, None, None, None);
        for (k, v) in fields {
            match k {
                "uid" => uid = Some(std::str::from_utf8(v).ok()?.to_owned()),
                "nsp" => nsp = Some(std::str::from_utf8(v).ok()?.to_owned()),
                "type" => kind = Some(std::str::from_utf8(v).ok()?.trim().parse::<u64>().ok()?),
                "data" => data = Some(v),
                _ => {}
            }
        }
        let data = match data {
            None => None,
            Some(d) if d.first() == Some(&b'{') => {
                Some(Value::from(serde_json::from_slice::<serde_json::Value>(d).ok()?))
            }
            Some(d) => Some(rmp_serde::from_slice::<Value>(&STANDARD.decode(d).ok()?).ok()?),
        };
        Some(Message { kind: kind?, uid: uid?, nsp: nsp?, data })
    }
}

/// Whether a value holds binary anywhere.
pub(crate) fn has_binary(v: &Value) -> bool {
    match v {
        Value::Binary(_) => true,
        Value::Array(a) => a.iter().any(has_binary),
        Value::Object(o) => o.values().any(has_binary),
        _ => false,
    }
}

/// A packet as a `BROADCAST` carries it: `{type, data}`, the namespace and ack id left out (the receiver
/// sets its own), type 2 even with binary.
pub(crate) fn packet_value(packet: &Packet) -> Value {
    let mut v = crate::wire::packet_to_value(packet);
    if let Value::Object(o) = &mut v {
        o.shift_remove("nsp");
        o.shift_remove("id");
    }
    v
}

/// The event packet of a `BROADCAST`, for namespace `nsp`; `None` if it is not an event with arguments.
pub(crate) fn packet_from_value(v: &Value, nsp: &str) -> Option<Packet> {
    // The classic decoder, then this namespace: no copy of the packet just to add its `nsp`.
    crate::wire::packet_from_value(v).map(|p| Packet { nsp: nsp.to_owned(), ..p })
}

/// Broadcast options as these adapters write them: `{rooms, except, flags}`.
pub(crate) fn opts_value(opts: &BroadcastOptions) -> Value {
    crate::wire::opts_to_value(opts, true)
}

/// A server or request id as the reference makes them: 8 random bytes in lowercase hex.
pub(crate) fn random_id() -> String {
    let bytes: [u8; 8] = rand::random();
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use bytes::Bytes;
    use socketio_server::adapter::Room;

    use super::*;

    fn broadcast(data: Vec<Value>) -> Message {
        let packet = Packet::event("/", "x", data, None);
        let opts = BroadcastOptions { rooms: HashSet::from([Room::from("room1")]), ..BroadcastOptions::default() };
        let mut d = Map::new();
        d.insert("packet".into(), packet_value(&packet));
        d.insert("opts".into(), opts_value(&opts));
        Message {
            kind: message_type::BROADCAST,
            uid: "3a84eae2c2d96207".into(),
            nsp: "/".into(),
            data: Some(Value::Object(d)),
        }
    }

    #[test]
    fn a_broadcast_in_json_as_the_sharded_adapter_writes_it() {
        let m = broadcast(vec![Value::from(1)]);
        let json: serde_json::Value = serde_json::from_slice(&m.encode_sharded()).unwrap();
        // What the reference published (captured), read back as JSON.
        let captured: serde_json::Value = serde_json::from_str(
            r#"{"type":3,"data":{"packet":{"type":2,"data":["x",1]},"opts":{"rooms":["room1"],"except":[],"flags":{}}},"uid":"3a84eae2c2d96207","nsp":"/"}"#,
        )
        .unwrap();
        assert_eq!(json, captured);
        assert_eq!(Message::decode(&m.encode_sharded()), Some(m));
    }

    #[test]
    fn binary_makes_it_msgpack() {
        let m = broadcast(vec![Value::Binary(Bytes::from_static(&[1, 2, 3]))]);
        let bytes = m.encode_sharded();
        assert_ne!(bytes[0], b'{');
        let back = Message::decode(&bytes).unwrap();
        assert_eq!(back, m);
        let packet = packet_from_value(back.data.as_ref().unwrap().get("packet").unwrap(), "/chat").unwrap();
        assert_eq!(packet.nsp, "/chat");
        assert_eq!(packet.data.unwrap().as_array().unwrap()[1], Value::Binary(Bytes::from_static(&[1, 2, 3])));
        // A join never is, whatever it holds.
        let join = Message { kind: message_type::SOCKETS_JOIN, ..m.clone() };
        assert_eq!(join.encode_sharded()[0], b'{');
        assert_ne!(m.encode_msgpack()[0], b'{');
    }

    #[test]
    fn stream_entries_as_the_streams_adapter_writes_them() {
        let m = broadcast(vec![Value::from(1)]);
        let fields = m.to_stream_fields(false);
        let names: Vec<&str> = fields.iter().map(|(k, _)| *k).collect();
        assert_eq!(names, ["uid", "nsp", "type", "data"]);
        assert_eq!(fields[2].1, "3");
        // The reference's entries (captured), text and base64 msgpack.
        let captured = [
            ("uid", &b"3a84eae2c2d96207"[..]),
            ("nsp", b"/"),
            ("type", b"3"),
            ("data", br#"{"packet":{"type":2,"data":["x",1]},"opts":{"rooms":["room1"],"except":[],"flags":{}}}"#),
        ];
        assert_eq!(Message::from_stream_fields(captured), Some(m));
        let binary = [
            ("uid", &b"3a84eae2c2d96207"[..]),
            ("nsp", b"/"),
            ("type", b"3"),
            ("data", b"gqZwYWNrZXSCpHR5cGUCpGRhdGGSo2JpbsQDAQIDpG9wdHODpXJvb21zkaVyb29tMaZleGNlcHSQpWZsYWdzgA=="),
        ];
        let back = Message::from_stream_fields(binary).unwrap();
        let packet = back.data.as_ref().unwrap().get("packet").unwrap();
        let args = packet.get("data").unwrap().as_array().unwrap();
        assert_eq!(args[0], Value::from("bin"));
        assert_eq!(args[1], Value::Binary(Bytes::from_static(&[1, 2, 3])));
        // And ours with binary reads back the same way.
        let m = broadcast(vec![Value::Binary(Bytes::from_static(&[1, 2, 3]))]);
        let fields = m.to_stream_fields(false);
        let again = Message::from_stream_fields(fields.iter().map(|(k, v)| (*k, v.as_bytes())));
        assert_eq!(again, Some(m));
        // A message without data has no data field.
        let bare = Message { kind: 2, uid: "u".into(), nsp: "/".into(), data: None };
        assert_eq!(bare.to_stream_fields(false).len(), 3);
        assert_eq!(Message::from_stream_fields([("uid", &b"u"[..]), ("nsp", b"/")]), None, "no type");
    }

    #[test]
    fn only_plaintext_writes_json_whatever_the_data() {
        let text = broadcast(vec![Value::from(1)]);
        assert_eq!(text.to_stream_fields(true), text.to_stream_fields(false));
        // Binary as the reference writes it with `onlyPlaintext` (JSON.stringify of a Buffer).
        let m = broadcast(vec![Value::Binary(Bytes::from_static(&[1, 255]))]);
        let fields = m.to_stream_fields(true);
        assert_eq!(
            fields[3].1,
            r#"{"packet":{"type":2,"data":["x",{"type":"Buffer","data":[1,255]}]},"opts":{"rooms":["room1"],"except":[],"flags":{}}}"#
        );
    }

    #[test]
    fn ids_are_sixteen_hex_digits() {
        let id = random_id();
        assert_eq!(id.len(), 16);
        assert!(id.bytes().all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase()));
        assert_ne!(random_id(), id);
    }
}
