//! Criterion benches of the Engine.IO codecs: packet and polling payload encode and decode.

use bytes::Bytes;
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use engineio_proto::packet::{Frame, Packet};
use engineio_proto::payload::{decode_payload, encode_payload};
use std::hint::black_box;

fn packets(c: &mut Criterion) {
    let text = format!("4{}", "x".repeat(64));
    let mut g = c.benchmark_group("packet");
    g.throughput(Throughput::Bytes(text.len() as u64));
    g.bench_function("decode_text_64B", |b| {
        let frame = Frame::Text(text.as_str().into());
        b.iter(|| Packet::decode_frame(black_box(frame.clone())).unwrap())
    });
    g.bench_function("encode_text_64B", |b| {
        let packet = Packet::decode_text(text.as_str().into()).unwrap();
        b.iter(|| black_box(&packet).encode())
    });
    g.finish();
}

fn payloads(c: &mut Criterion) {
    let frames: Vec<Frame> = (0..16)
        .map(|i| if i % 4 == 0 { Frame::Binary(Bytes::from(vec![7u8; 64])) } else { Frame::message(&"y".repeat(64)) })
        .collect();
    let encoded = encode_payload(&frames);
    let mut g = c.benchmark_group("payload");
    g.throughput(Throughput::Bytes(encoded.len() as u64));
    g.bench_function("encode_16_mixed", |b| b.iter(|| encode_payload(black_box(&frames))));
    g.bench_function("decode_16_mixed", |b| b.iter(|| decode_payload(black_box(encoded.clone()), 1_000_000).unwrap()));
    g.finish();
}

criterion_group!(benches, packets, payloads);
criterion_main!(benches);
