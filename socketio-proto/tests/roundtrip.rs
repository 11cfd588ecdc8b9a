//! Property tests: every packet survives encode → decode with both parsers; decoding arbitrary input never
//! panics, and what decodes re-encodes to something that decodes to the same packet.

use bytes::Bytes;
use engineio_proto::Message;
use proptest::prelude::*;
use socketio_proto::msgpack::MsgpackParser;
use socketio_proto::{ArgsPacket, Frames, JsonParser, Map, Packet, Parser, RESERVED_EVENTS, Value};

fn leaf() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        // Integral floats come back as integers (JSON has one number type), so keep a fraction.
        (-1e12f64..1e12).prop_filter("a fraction", |f| f.fract() != 0.0).prop_map(Value::from),
        ".*".prop_map(Value::String),
        proptest::collection::vec(any::<u8>(), 0..16).prop_map(|b| Value::Binary(Bytes::from(b))),
    ]
}

fn value() -> impl Strategy<Value = Value> {
    leaf().prop_recursive(4, 48, 6, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            proptest::collection::vec(
                ("[a-z_]{0,6}".prop_filter("not a placeholder", |k| k != "_placeholder"), inner),
                0..6
            )
            .prop_map(|kv| Value::Object(kv.into_iter().collect::<Map>())),
        ]
    })
}

/// JSON without binary: the data of CONNECT and CONNECT_ERROR, which have no binary packet type.
fn json_value() -> impl Strategy<Value = Value> {
    value().prop_filter("no binary", |v| !v.has_binary())
}

fn object() -> impl Strategy<Value = Value> {
    proptest::collection::vec(("[a-z]{1,6}", json_value()), 0..4).prop_map(|kv| Value::Object(kv.into_iter().collect()))
}

fn nsp() -> impl Strategy<Value = String> {
    prop_oneof![Just("/".to_owned()), "/[a-z0-9-]{1,8}"]
}

fn event_name() -> impl Strategy<Value = String> {
    "[a-zA-Z:_-]{1,12}".prop_filter("not reserved", |n| !RESERVED_EVENTS.contains(&n.as_str()))
}

fn packet() -> impl Strategy<Value = Packet> {
    prop_oneof![
        (nsp(), proptest::option::of(object())).prop_map(|(n, d)| Packet::connect(n, d)),
        nsp().prop_map(Packet::disconnect),
        (nsp(), event_name(), proptest::collection::vec(value(), 0..5), proptest::option::of(any::<u64>()))
            .prop_map(|(n, e, a, id)| Packet::event(n, &e, a, id)),
        (nsp(), any::<u64>(), proptest::collection::vec(value(), 0..5)).prop_map(|(n, id, a)| Packet::ack(n, id, a)),
        (nsp(), ".*", proptest::option::of(json_value())).prop_map(|(n, m, d)| Packet::connect_error(n, &m, d)),
    ]
}

fn decode_all(parser: &dyn Parser, messages: Vec<Message>) -> Packet {
    let mut d = parser.decoder();
    let mut out = None;
    for m in messages {
        assert!(out.is_none(), "a packet completed before its last message");
        out = d.decode(m).expect("what we encode decodes");
    }
    out.expect("a complete packet")
}

/// What a decoder gives back for `p`: the same packet with its plain type (EVENT, ACK), binary or not.
fn normalized(mut p: Packet) -> Packet {
    p.kind = p.kind.plain();
    p
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn json_parser_round_trips(p in packet()) {
        let messages = JsonParser::default().encode(&p);
        let binaries = messages.iter().filter(|m| matches!(m, Message::Binary(_))).count();
        prop_assert_eq!(binaries + 1, messages.len());
        let back = decode_all(&JsonParser { max_attachments: usize::MAX }, messages);
        prop_assert_eq!(back, normalized(p));
    }

    #[test]
    fn msgpack_parser_round_trips(p in packet()) {
        let messages = MsgpackParser.encode(&p);
        prop_assert_eq!(messages.len(), 1);
        let back = decode_all(&MsgpackParser, messages);
        prop_assert_eq!(back, normalized(p));
    }

    #[test]
    fn frames_are_the_encoded_messages(p in packet()) {
        let json = JsonParser::default();
        prop_assert_eq!(json.encode_frames(&p), Frames::from_messages(&json.encode(&p)));
        prop_assert_eq!(MsgpackParser.encode_frames(&p), Frames::from_messages(&MsgpackParser.encode(&p)));
    }

    #[test]
    fn packets_from_parts_encode_as_the_packet(
        n in nsp(),
        name in event_name(),
        args in proptest::collection::vec(value(), 0..5),
        id in proptest::option::of(any::<u64>()),
    ) {
        let parsers: [&dyn Parser; 2] = [&JsonParser::default(), &MsgpackParser];
        for parser in parsers {
            let event = ArgsPacket::Event { name: &name, ack_id: id };
            let as_packet = Packet::event(n.as_str(), &name, args.clone(), id);
            prop_assert_eq!(parser.encode_args(&n, event, &args), parser.encode_frames(&as_packet));
            let ack = ArgsPacket::Ack { id: id.unwrap_or(7) };
            let as_packet = Packet::ack(n.as_str(), id.unwrap_or(7), args.clone());
            prop_assert_eq!(parser.encode_args(&n, ack, &args), parser.encode_frames(&as_packet));
        }
    }

    #[test]
    fn strings_are_escaped_as_json(s in prop_oneof!["[\\x00-\\x7f]{0,40}", ".{0,40}", "[a\"\\\\\\n]{0,20}"]) {
        let mut out = String::new();
        Value::String(s.clone()).write_json_inline(&mut out);
        prop_assert_eq!(out, serde_json::to_string(&s).unwrap());
    }

    #[test]
    fn decoding_arbitrary_text_never_panics(s in ".*") {
        let parser = JsonParser::default();
        if let Ok(Some(p)) = parser.decoder().decode(Message::from(s.as_str())) {
            let back = decode_all(&parser, parser.encode(&p));
            prop_assert_eq!(back, normalized(p));
        }
    }

    #[test]
    fn decoding_packet_like_text_never_panics(
        kind in 0u8..8,
        attachments in proptest::option::of(0usize..20),
        ns in proptest::option::of("/[a-z]{0,4},?"),
        id in proptest::option::of("[0-9]{1,22}"),
        json in prop_oneof![Just(String::new()), value().prop_map(|v| serde_json::to_string(&v.into_json()).unwrap()), ".{0,12}"],
    ) {
        let mut s = kind.to_string();
        if let Some(a) = attachments { s.push_str(&format!("{a}-")); }
        if let Some(n) = ns { s.push_str(&n); }
        if let Some(i) = id { s.push_str(&i); }
        s.push_str(&json);
        let parser = JsonParser::default();
        let mut d = parser.decoder();
        if let Ok(Some(p)) = d.decode(Message::from(s.as_str())) {
            let back = decode_all(&parser, parser.encode(&p));
            prop_assert_eq!(back, normalized(p));
        }
    }

    #[test]
    fn decoding_arbitrary_msgpack_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..64)) {
        if let Ok(Some(p)) = MsgpackParser.decoder().decode(Message::Binary(bytes.into())) {
            let back = decode_all(&MsgpackParser, MsgpackParser.encode(&p));
            prop_assert_eq!(back, p);
        }
    }
}

#[test]
fn deeply_nested_json_is_an_error_not_a_crash() {
    let deep = format!("2[\"e\",{}{}]", "[".repeat(100_000), "]".repeat(100_000));
    assert!(JsonParser::default().decoder().decode(Message::from(deep.as_str())).is_err());
}
