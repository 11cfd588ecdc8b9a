//! The wire format of `@socket.io/redis-adapter` 8.x (classic pub/sub): channel names, the msgpack
//! broadcast `[uid, packet, opts]`, and the request/response messages (JSON, except the broadcast with
//! acks and its per-client acks, which are msgpack).

use std::collections::HashSet;
use std::time::Duration;

use socketio_server::adapter::{BroadcastFlags, BroadcastOptions, Room};
use socketio_server::proto::{Map, Packet, PacketType, Value};

/// Request types.
pub(crate) mod request_type {
    pub(crate) const SOCKETS: u64 = 0;
    pub(crate) const ALL_ROOMS: u64 = 1;
    pub(crate) const REMOTE_JOIN: u64 = 2;
    pub(crate) const REMOTE_LEAVE: u64 = 3;
    pub(crate) const REMOTE_DISCONNECT: u64 = 4;
    pub(crate) const REMOTE_FETCH: u64 = 5;
    pub(crate) const SERVER_SIDE_EMIT: u64 = 6;
    pub(crate) const BROADCAST: u64 = 7;
    pub(crate) const BROADCAST_CLIENT_COUNT: u64 = 8;
    pub(crate) const BROADCAST_ACK: u64 = 9;
}

/// The channels of one namespace.
#[derive(Debug, Clone)]
pub(crate) struct Channels {
    /// `key#nsp#`: broadcasts (a room's broadcasts go to `key#nsp#room#`).
    pub(crate) broadcast: String,
    /// `key-request#nsp#`.
    pub(crate) request: String,
    /// `key-response#nsp#`.
    pub(crate) response: String,
    /// `key-response#nsp#uid#`.
    pub(crate) specific_response: String,
}

impl Channels {
    pub(crate) fn new(key: &str, nsp: &str, uid: &str) -> Self {
        Channels {
            broadcast: format!("{key}#{nsp}#"),
            request: format!("{key}-request#{nsp}#"),
            response: format!("{key}-response#{nsp}#"),
            specific_response: format!("{key}-response#{nsp}#{uid}#"),
        }
    }

    /// Where a broadcast to `opts` is published: the room's channel when it targets exactly one room.
    pub(crate) fn broadcast_channel(&self, opts: &BroadcastOptions) -> String {
        match opts.rooms.len() {
            1 => format!("{}{}#", self.broadcast, opts.rooms.iter().next().expect("one room")),
            _ => self.broadcast.clone(),
        }
    }
}

/// A packet as the Node adapter writes it: `{type, data, nsp, id?}`, type 2 even with binary (Node's
/// encoder picks the binary type itself).
pub(crate) fn packet_to_value(packet: &Packet) -> Value {
    let kind = match packet.kind {
        PacketType::BinaryEvent => PacketType::Event,
        PacketType::BinaryAck => PacketType::Ack,
        k => k,
    } as u8;
    let mut o = Map::new();
    o.insert("type".into(), Value::from(kind));
    if let Some(d) = &packet.data {
        o.insert("data".into(), d.clone());
    }
    o.insert("nsp".into(), Value::from(packet.nsp.as_str()));
    if let Some(id) = packet.id {
        o.insert("id".into(), Value::from(id));
    }
    Value::Object(o)
}

/// A packet from the wire; `None` if it is not an event.
pub(crate) fn packet_from_value(v: &Value) -> Option<Packet> {
    let kind = match v.get("type")?.as_u64()? {
        2 | 5 => PacketType::Event,
        _ => return None,
    };
    let nsp = v.get("nsp").and_then(Value::as_str).unwrap_or("/").to_owned();
    let id = v.get("id").and_then(Value::as_u64);
    let data = v.get("data").cloned();
    matches!(data, Some(Value::Array(_))).then_some(Packet { kind, nsp, id, data })
}

fn rooms_value<'a>(rooms: impl Iterator<Item = &'a Room>) -> Value {
    Value::Array(rooms.map(|r| Value::from(&**r)).collect())
}

/// `{rooms, except}` (and `flags` when `with_flags`).
pub(crate) fn opts_to_value(opts: &BroadcastOptions, with_flags: bool) -> Value {
    let mut o = Map::new();
    o.insert("rooms".into(), rooms_value(opts.rooms.iter()));
    o.insert("except".into(), rooms_value(opts.except.iter()));
    if with_flags {
        let mut f = Map::new();
        let flags = &opts.flags;
        if flags.volatile {
            f.insert("volatile".into(), Value::Bool(true));
        }
        if let Some(c) = flags.compress {
            f.insert("compress".into(), Value::Bool(c));
        }
        if flags.local {
            f.insert("local".into(), Value::Bool(true));
        }
        if let Some(t) = flags.timeout {
            f.insert("timeout".into(), Value::from(t.as_millis() as u64));
        }
        o.insert("flags".into(), Value::Object(f));
    }
    Value::Object(o)
}

fn rooms_from(v: Option<&Value>) -> HashSet<Room> {
    match v {
        Some(Value::Array(a)) => a.iter().filter_map(Value::as_str).map(Room::from).collect(),
        _ => HashSet::new(),
    }
}

/// Options from the wire (missing parts are empty).
pub(crate) fn opts_from_value(v: Option<&Value>) -> BroadcastOptions {
    let Some(v) = v else { return BroadcastOptions::default() };
    let flags = v.get("flags");
    let flag = |name: &str| flags.and_then(|f| f.get(name));
    BroadcastOptions {
        rooms: rooms_from(v.get("rooms")),
        except: rooms_from(v.get("except")),
        flags: BroadcastFlags {
            local: matches!(flag("local"), Some(Value::Bool(true))),
            volatile: matches!(flag("volatile"), Some(Value::Bool(true))),
            compress: match flag("compress") {
                Some(Value::Bool(b)) => Some(*b),
                _ => None,
            },
            timeout: flag("timeout").and_then(Value::as_f64).map(|ms| Duration::from_millis(ms.max(0.0) as u64)),
        },
    }
}

/// A list of room names as JSON.
pub(crate) fn rooms_json(rooms: &[Room]) -> serde_json::Value {
    serde_json::Value::Array(rooms.iter().map(|r| serde_json::Value::from(&**r)).collect())
}

/// Encodes a value as msgpack (notepack-compatible: smallest integers, binary as `bin`).
pub(crate) fn to_msgpack(v: &Value) -> Vec<u8> {
    rmp_serde::to_vec(v).expect("a Value always encodes")
}

/// Decodes a request or response: JSON when it starts with `{`, msgpack otherwise.
pub(crate) fn decode_message(bytes: &[u8]) -> Option<Value> {
    if bytes.first() == Some(&b'{') {
        serde_json::from_slice::<serde_json::Value>(bytes).ok().map(Value::from)
    } else {
        rmp_serde::from_slice::<Value>(bytes).ok()
    }
}

/// Decodes a broadcast message `[uid, packet, opts]`.
pub(crate) fn decode_broadcast(bytes: &[u8]) -> Option<(String, Packet, BroadcastOptions)> {
    let v: Value = rmp_serde::from_slice(bytes).ok()?;
    let Value::Array(parts) = v else { return None };
    let uid = parts.first()?.as_str()?.to_owned();
    let packet = packet_from_value(parts.get(1)?)?;
    Some((uid, packet, opts_from_value(parts.get(2))))
}

/// Encodes a broadcast message `[uid, packet, opts]`.
pub(crate) fn encode_broadcast(uid: &str, packet: &Packet, opts: &BroadcastOptions) -> Vec<u8> {
    to_msgpack(&Value::Array(vec![Value::from(uid), packet_to_value(packet), opts_to_value(opts, true)]))
}

/// A short random id, as the reference's `uid2(6)`.
pub(crate) fn uid(len: usize) -> String {
    const CHARS: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    (0..len).map(|_| CHARS[rand::random_range(0..CHARS.len())] as char).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;

    #[test]
    fn broadcast_round_trip() {
        let packet =
            Packet::event("/chat", "msg", vec![Value::from(1), Value::Binary(Bytes::from_static(b"\x01"))], None);
        let opts = BroadcastOptions {
            rooms: HashSet::from([Room::from("r1")]),
            except: HashSet::from([Room::from("sid")]),
            flags: BroadcastFlags { volatile: true, ..BroadcastFlags::default() },
        };
        let bytes = encode_broadcast("abc123", &packet, &opts);
        let (uid, back, back_opts) = decode_broadcast(&bytes).unwrap();
        assert_eq!(uid, "abc123");
        assert_eq!(back, Packet { kind: PacketType::Event, ..packet });
        assert_eq!(back_opts, opts);
        let v: Value = rmp_serde::from_slice(&bytes).unwrap();
        assert_eq!(v.as_array().unwrap()[1].get("type").and_then(Value::as_u64), Some(2), "type 2 even with binary");
    }

    #[test]
    fn channels() {
        let c = Channels::new("socket.io", "/", "u1");
        assert_eq!(c.broadcast, "socket.io#/#");
        assert_eq!(c.request, "socket.io-request#/#");
        assert_eq!(c.specific_response, "socket.io-response#/#u1#");
        let one = BroadcastOptions { rooms: HashSet::from([Room::from("room1")]), ..BroadcastOptions::default() };
        assert_eq!(c.broadcast_channel(&one), "socket.io#/#room1#");
        assert_eq!(c.broadcast_channel(&BroadcastOptions::default()), "socket.io#/#");
    }

    #[test]
    fn messages_are_json_or_msgpack() {
        assert_eq!(decode_message(br#"{"type":1}"#).unwrap().get("type").and_then(Value::as_u64), Some(1));
        let mp = to_msgpack(&Value::from(serde_json::json!({"type": 9})));
        assert_eq!(decode_message(&mp).unwrap().get("type").and_then(Value::as_u64), Some(9));
        assert!(decode_message(b"\xc1").is_none());
    }
}
