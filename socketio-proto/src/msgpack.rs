//! The `socket.io-msgpack-parser` format: each packet is one binary message, the msgpack map
//! `{type, data, nsp, id?}`, with binary as msgpack `bin` inside the data (so there are no attachments and
//! no binary packet types on the wire).

use engineio_proto::Message;
use serde::{Deserialize, Serialize};

use crate::error::DecodeError;
use crate::packet::{Packet, PacketType, payload_valid};
use crate::parser::{Decoder, Parser};
use crate::value::Value;

/// The msgpack parser.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct MsgpackParser;

#[derive(Serialize)]
struct Out<'a> {
    #[serde(rename = "type")]
    kind: u8,
    #[serde(skip_serializing_if = "Option::is_none")]
    data: Option<&'a Value>,
    nsp: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    id: Option<u64>,
}

impl Parser for MsgpackParser {
    fn encode(&self, packet: &Packet) -> Vec<Message> {
        let kind = match packet.kind {
            PacketType::BinaryEvent => PacketType::Event,
            PacketType::BinaryAck => PacketType::Ack,
            k => k,
        } as u8;
        let out = Out { kind, data: packet.data.as_ref(), nsp: &packet.nsp, id: packet.id };
        let bytes = rmp_serde::to_vec_named(&out).expect("a Value always serializes to msgpack");
        vec![Message::Binary(bytes.into())]
    }

    fn decoder(&self) -> Box<dyn Decoder> {
        Box::new(MsgpackDecoder)
    }
}

/// The fields of a decoded packet map.
struct In {
    kind: Option<Value>,
    data: Option<Value>,
    nsp: Option<Value>,
    id: Option<Value>,
}

/// Decodes msgpack packets; stateless.
#[derive(Debug, Clone, Copy, Default)]
pub struct MsgpackDecoder;

impl Decoder for MsgpackDecoder {
    fn decode(&mut self, message: Message) -> Result<Option<Packet>, DecodeError> {
        let Message::Binary(bytes) = message else { return Err(DecodeError::InvalidDataType) };
        // The whole message must be one msgpack map (as notepack's decoder requires: no trailing bytes, no
        // array form); a repeated key keeps its last value, as in JavaScript.
        let mut rest: &[u8] = &bytes;
        let value =
            Value::deserialize(&mut rmp_serde::Deserializer::new(&mut rest)).map_err(|_| DecodeError::InvalidJson)?;
        if !rest.is_empty() {
            return Err(DecodeError::InvalidJson);
        }
        let Value::Object(mut raw) = value else { return Err(DecodeError::UnknownType) };
        let mut field = |name: &str| raw.shift_remove(name);
        let raw = In { kind: field("type"), data: field("data"), nsp: field("nsp"), id: field("id") };
        let kind = match raw.kind.as_ref().and_then(Value::as_u64) {
            Some(0) => PacketType::Connect,
            Some(1) => PacketType::Disconnect,
            Some(2) => PacketType::Event,
            Some(3) => PacketType::Ack,
            Some(4) => PacketType::ConnectError,
            _ => return Err(DecodeError::UnknownType),
        };
        let nsp = match raw.nsp {
            Some(Value::String(s)) => s,
            _ => return Err(DecodeError::InvalidPayload),
        };
        let id = match raw.id {
            None | Some(Value::Null) => None,
            Some(v) => Some(v.as_u64().ok_or(DecodeError::InvalidAckId)?),
        };
        let data = match raw.data {
            Some(Value::Null) | None => None,
            d => d,
        };
        if !payload_valid(kind, data.as_ref()) {
            return Err(DecodeError::InvalidPayload);
        }
        Ok(Some(Packet { kind, nsp, id, data }))
    }

    fn is_reconstructing(&self) -> bool {
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;

    #[test]
    fn round_trips_binary_in_place() {
        let p =
            Packet::event("/chat", "up", vec![Value::Binary(Bytes::from_static(b"\x00\x01")), Value::from(3)], Some(7));
        let msgs = MsgpackParser.encode(&p);
        assert_eq!(msgs.len(), 1);
        let back = MsgpackDecoder.decode(msgs[0].clone()).unwrap().unwrap();
        assert_eq!(back, p);
    }

    #[test]
    fn notepack_undefined_and_dates() {
        // {type: 0, data: undefined, nsp: "/"} as notepack writes it (socket.io-client without auth).
        let bytes = b"\x83\xa4type\x00\xa4data\xd4\x00\x00\xa3nsp\xa1/";
        let p = MsgpackDecoder.decode(Message::Binary(Bytes::from_static(bytes))).unwrap().unwrap();
        assert_eq!(p, Packet::connect("/", None));
        // ["d", new Date(1795000000188)] as a timestamp 64 extension.
        let ts: u64 = ((188_000_000u64) << 34) | 1_795_000_000;
        let mut ev = b"\x83\xa4type\x02\xa4data\x92\xa1d\xd7\xff".to_vec();
        ev.extend_from_slice(&ts.to_be_bytes());
        ev.extend_from_slice(b"\xa3nsp\xa1/");
        let p = MsgpackDecoder.decode(Message::Binary(ev.into())).unwrap().unwrap();
        assert_eq!(p.data, Some(Value::Array(vec![Value::from("d"), Value::from("2026-11-18T11:06:40.188Z")])));
        let bad = b"\x83\xa4type\x02\xa4data\x92\xa1d\xd4\x05\x00\xa3nsp\xa1/";
        assert_eq!(MsgpackDecoder.decode(Message::Binary(Bytes::from_static(bad))), Err(DecodeError::InvalidJson));
    }

    #[test]
    fn rejects_bad_packets() {
        assert_eq!(MsgpackDecoder.decode(Message::from("2[]")), Err(DecodeError::InvalidDataType));
        assert_eq!(MsgpackDecoder.decode(Message::Binary(Bytes::from_static(b"\xc1"))), Err(DecodeError::InvalidJson));
        let bad = rmp_serde::to_vec_named(&serde_json::json!({"type": 2, "nsp": "/", "data": {}})).unwrap();
        assert_eq!(MsgpackDecoder.decode(Message::Binary(bad.into())), Err(DecodeError::InvalidPayload));
        let bad = rmp_serde::to_vec_named(&serde_json::json!({"type": 9, "nsp": "/"})).unwrap();
        assert_eq!(MsgpackDecoder.decode(Message::Binary(bad.into())), Err(DecodeError::UnknownType));
    }

    #[test]
    fn one_map_and_nothing_after_it() {
        // {type: 1, nsp: "/"} then a stray nil: notepack refuses the trailing byte.
        let trailing = b"\x82\xa4type\x01\xa3nsp\xa1/\xc0";
        assert_eq!(MsgpackDecoder.decode(Message::Binary(Bytes::from_static(trailing))), Err(DecodeError::InvalidJson));
        // [2, ["ev"], "/"]: a struct in array form is no packet.
        let array = b"\x93\x02\x91\xa2ev\xa1/";
        assert_eq!(MsgpackDecoder.decode(Message::Binary(Bytes::from_static(array))), Err(DecodeError::UnknownType));
        // {type: 2, type: 0, nsp: "/"}: the last value wins, as in JavaScript.
        let repeated = b"\x83\xa4type\x02\xa4type\x00\xa3nsp\xa1/";
        let p = MsgpackDecoder.decode(Message::Binary(Bytes::from_static(repeated))).unwrap().unwrap();
        assert_eq!(p, Packet::connect("/", None));
    }
}
