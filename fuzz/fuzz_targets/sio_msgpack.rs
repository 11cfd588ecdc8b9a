//! Decodes arbitrary bytes with the msgpack parser; what decodes must re-encode and decode to itself.
#![no_main]

use engineio_proto::Message;
use libfuzzer_sys::fuzz_target;
use socketio_proto::Parser;
use socketio_proto::msgpack::MsgpackParser;

fuzz_target!(|data: &[u8]| {
    let mut decoder = MsgpackParser.decoder();
    if let Ok(Some(packet)) = decoder.decode(Message::Binary(data.to_vec().into())) {
        let encoded = MsgpackParser.encode(&packet);
        let back = MsgpackParser.decoder().decode(encoded[0].clone()).expect("what we encode decodes").expect("a packet");
        assert_eq!(back, packet);
    }
});
