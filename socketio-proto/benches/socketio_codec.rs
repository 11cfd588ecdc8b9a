//! Criterion benches of the Socket.IO codec: encode and decode with and without binary.

use bytes::Bytes;
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use engineio_proto::Message;
use socketio_proto::{JsonParser, Packet, Parser, Value};
use std::hint::black_box;

fn codec(c: &mut Criterion) {
    let parser = JsonParser::default();
    let text = Packet::event("/", "echo", vec![Value::from("x".repeat(64))], None);
    let binary =
        Packet::event("/", "echo", vec![Value::from("meta"), Value::Binary(Bytes::from(vec![1u8; 1024]))], Some(5));
    for (name, packet) in [("text_64B", &text), ("binary_1KiB", &binary)] {
        let messages = parser.encode(packet);
        let bytes: usize = messages.iter().map(Message::len).sum();
        let mut g = c.benchmark_group(format!("socketio/{name}"));
        g.throughput(Throughput::Bytes(bytes as u64));
        g.bench_function("encode", |b| b.iter(|| parser.encode(black_box(packet))));
        g.bench_function("decode", |b| {
            b.iter(|| {
                let mut d = parser.decoder();
                let mut out = None;
                for m in &messages {
                    out = d.decode(m.clone()).unwrap();
                }
                black_box(out.unwrap())
            })
        });
        g.finish();
    }
}

criterion_group!(benches, codec);
criterion_main!(benches);
