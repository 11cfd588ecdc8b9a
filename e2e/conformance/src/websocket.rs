//! The WebSocket family: the same client byte streams through our framing decoder (with permessage-deflate
//! when the case negotiates it), through `ws`'s server-side Receiver (`e2e/conformance/ws-harness.mjs`) and
//! through tungstenite (in process; it has no permessage-deflate, so compressed cases go to `ws` only).
//!
//! A result is the list of what came out (messages, pings, pongs, the close frame) and the close code the
//! stream ended with, if it broke a rule: every divergence in either is reported, classified against the
//! WebSocket entries of `CONFORMANCE.md`.
//!
//! Streams are generated: valid messages of every length encoding, fragmented at any byte (a character cut
//! between fragments included), masked with random keys, control frames between fragments, compressed
//! messages (context kept between them, as both sides negotiate by default), and the broken ones: bad
//! opcodes, reserved bits, unmasked frames, stray continuations, long or fragmented control frames, invalid
//! UTF-8, close frames with every kind of status, 64-bit lengths with the top bit set, oversize messages
//! and deflate bombs, corrupt deflate data; a third of them then get a random bit flipped, bytes cut off or
//! a slice repeated.

use std::collections::BTreeMap;
use std::io::{self, Read, Write};
use std::path::Path;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use bytes::BytesMut;
use engineio_proto::websocket::deflate::{Negotiated, PerMessageDeflate};
use engineio_proto::websocket::{Decoder, WsMessage, apply_mask};
use flate2::{Compress, Compression, FlushCompress};
use serde_json::{Value as Json, json};

use crate::harness::Harness;
use crate::mutate::Rng;

/// One generated stream.
struct WsCase {
    label: String,
    input: Vec<u8>,
    max: usize,
    deflate: bool,
}

/// Known, deliberate divergences of the WebSocket family (CONFORMANCE.md, "WebSocket framing").
pub(crate) const KNOWN: &[(&str, &str)] = &[
    ("WS-INFLATE-WHOLE", "compressed messages are inflated whole: control frames between their fragments come first"),
    ("WS-INFLATE-LIMIT", "inflating stops at the size limit (1009) before it reaches corrupt data or bad UTF-8"),
    ("TUNG-EAGER", "tungstenite waits for a whole header before refusing a frame that its first bytes condemn"),
    ("TUNG-UTF8-EARLY", "tungstenite checks UTF-8 per fragment and stops before later frames"),
    ("TUNG-CLOSE-CODE", "tungstenite's list of close codes a peer may send differs (it hands out the frame)"),
    ("TUNG-CONTROL-LEN", "tungstenite accepts a control frame whose length is written in the 16 or 64-bit form"),
    ("TUNG-SIZE", "tungstenite checks its size limits differently (frame size, > vs >=)"),
];

/// Runs `cases` generated streams on the three decoders; prints a summary and returns the number of
/// unknown divergences.
pub(crate) fn run(root: &Path, cases: usize, seed: u64, max_print: usize) -> io::Result<usize> {
    let mut harness = Harness::spawn_script(root, "ws-harness.mjs", "ws")?;
    let versions = harness.call_batch(&[json!({ "op": "ping" })])?.remove(0).unwrap_or_default()["versions"].clone();
    let mut rng = Rng::new(seed ^ 0x5753);
    let mut by_category: BTreeMap<String, (usize, Option<&'static str>, String)> = BTreeMap::new();
    let mut known_seen: BTreeMap<&'static str, usize> = BTreeMap::new();
    // Every unknown divergence is counted; the first `max_print` are printed in full.
    let mut n_unknown = 0;
    let mut unknown: Vec<String> = Vec::new();
    let mut total = 0;
    let mut generated = 0;
    while generated < cases {
        let batch: Vec<WsCase> = (0..(cases - generated).min(500)).map(|_| generate(&mut rng)).collect();
        generated += batch.len();
        let requests: Vec<Json> = batch
            .iter()
            .map(|c| json!({ "op": "ws.decode", "input": STANDARD.encode(&c.input), "max": c.max, "deflate": c.deflate }))
            .collect();
        let results = harness.call_batch(&requests)?;
        for (case, theirs) in batch.iter().zip(results) {
            let ours = ours(case);
            let mut found = Vec::new();
            let mut ws_agrees = false;
            match theirs {
                Ok(ws) => {
                    let ws = json!({ "events": ws["events"], "error": ws["error"]["code"] });
                    ws_agrees = ws == ours;
                    if !ws_agrees {
                        found.push(("ws", ws));
                    }
                }
                Err(e) => found.push(("ws", json!({ "harness_error": e }))),
            }
            if !case.deflate {
                let tung = tungstenite_decode(case);
                if tung != ours {
                    found.push(("tungstenite", tung));
                }
            }
            for (peer, theirs) in found {
                total += 1;
                let category = format!("{peer}: {}", aspect(&ours, &theirs));
                let known = classify(peer, case, &ours, &theirs, ws_agrees);
                let entry = by_category.entry(category.clone()).or_insert_with(|| {
                    (0, known, format!("{} {}\n      ours:   {ours}\n      theirs: {theirs}", case.label, hex(case)))
                });
                entry.0 += 1;
                let Some(id) = known else {
                    n_unknown += 1;
                    if unknown.len() < max_print {
                        unknown.push(format!(
                            "- [{category}] {} (max {}, deflate {})\n  input:  {}\n  ours:   {ours}\n  theirs: {theirs}",
                            case.label,
                            case.max,
                            case.deflate,
                            hex(case)
                        ));
                    }
                    continue;
                };
                *known_seen.entry(id).or_default() += 1;
            }
        }
    }
    println!("websocket: {cases} streams against ws {} and tungstenite", versions["ws"]);
    println!("divergences: {total} ({} known, {n_unknown} unknown)", total - n_unknown);
    for (category, (count, known, example)) in &by_category {
        println!("  {category}: {count} [{}]\n    e.g. {example}", known.unwrap_or("UNKNOWN"));
    }
    for (id, what) in KNOWN {
        if let Some(n) = known_seen.get(id) {
            println!("  {id:<18} {n:>6}  {what}");
        }
    }
    if n_unknown > 0 {
        println!("\nUNKNOWN WebSocket divergences ({n_unknown}; the first {} in full):", unknown.len());
        for u in &unknown {
            println!("{u}");
        }
    }
    Ok(n_unknown)
}

fn hex(case: &WsCase) -> String {
    let shown: String = case.input.iter().take(48).map(|b| format!("{b:02x}")).collect();
    if case.input.len() > 48 { format!("{shown}… ({} bytes)", case.input.len()) } else { shown }
}

/// What differs: the error, or the events.
fn aspect(ours: &Json, theirs: &Json) -> String {
    if ours["error"] != theirs["error"] {
        format!("close code {} vs {}", ours["error"], theirs["error"])
    } else {
        "events".to_owned()
    }
}

// ------------------------------------------------------------------ the three decoders

fn event(m: &WsMessage) -> Json {
    match m {
        WsMessage::Text(t) => json!({ "text": &**t }),
        WsMessage::Binary(b) => json!({ "binary": STANDARD.encode(b) }),
        WsMessage::Ping(b) => json!({ "ping": STANDARD.encode(b) }),
        WsMessage::Pong(b) => json!({ "pong": STANDARD.encode(b) }),
        WsMessage::Close(None) => json!({ "close": 1005, "reason": "" }),
        WsMessage::Close(Some(f)) => json!({ "close": f.code, "reason": STANDARD.encode(f.reason.as_bytes()) }),
        WsMessage::Compressed { .. } => json!({ "still_compressed": true }),
    }
}

/// Our decoder as the server runs it: messages until an error or a close frame; compressed ones inflated.
fn ours(case: &WsCase) -> Json {
    let mut decoder = Decoder::new(case.max).permessage_deflate(case.deflate);
    let mut deflate = PerMessageDeflate::new(Negotiated::default(), usize::MAX, case.max);
    let mut buf = BytesMut::from(&case.input[..]);
    let mut events = Vec::new();
    loop {
        let message = match decoder.decode(&mut buf) {
            Ok(Some(WsMessage::Compressed { text, payload })) => deflate.inflate(text, &payload),
            Ok(Some(m)) => Ok(m),
            Ok(None) => return json!({ "events": events, "error": null }),
            Err(e) => Err(e),
        };
        match message {
            Ok(m) => {
                events.push(event(&m));
                if matches!(m, WsMessage::Close(_)) {
                    return json!({ "events": events, "error": null });
                }
            }
            Err(e) => return json!({ "events": events, "error": e.close_code() }),
        }
    }
}

/// The client's bytes to read, and what the server writes (pongs, the close echo) thrown away. The end of
/// the input reads as "would block": more may come.
struct Stream {
    input: io::Cursor<Vec<u8>>,
}

impl Read for Stream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self.input.read(buf)? {
            0 => Err(io::ErrorKind::WouldBlock.into()),
            n => Ok(n),
        }
    }
}

impl Write for Stream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

fn tungstenite_decode(case: &WsCase) -> Json {
    use tungstenite::protocol::{Role, WebSocket, WebSocketConfig};
    use tungstenite::{Error, Message};
    let config = WebSocketConfig::default().max_message_size(Some(case.max)).max_frame_size(Some(case.max));
    let stream = Stream { input: io::Cursor::new(case.input.clone()) };
    let mut ws = WebSocket::from_raw_socket(stream, Role::Server, Some(config));
    let mut events = Vec::new();
    loop {
        let error = match ws.read() {
            Ok(Message::Text(t)) => {
                events.push(json!({ "text": t.as_str() }));
                continue;
            }
            Ok(Message::Binary(b)) => {
                events.push(json!({ "binary": STANDARD.encode(&b) }));
                continue;
            }
            Ok(Message::Ping(b)) => {
                events.push(json!({ "ping": STANDARD.encode(&b) }));
                continue;
            }
            Ok(Message::Pong(b)) => {
                events.push(json!({ "pong": STANDARD.encode(&b) }));
                continue;
            }
            Ok(Message::Close(frame)) => {
                let (code, reason) = frame.map_or((1005, String::new()), |f| (u16::from(f.code), f.reason.to_string()));
                events.push(json!({ "close": code, "reason": STANDARD.encode(reason.as_bytes()) }));
                Json::Null
            }
            Ok(Message::Frame(_)) => continue,
            Err(Error::Protocol(_)) => json!(1002),
            Err(Error::Capacity(_)) => json!(1009),
            Err(Error::Utf8(_)) => json!(1007),
            Err(_) => Json::Null,
        };
        return json!({ "events": events, "error": error });
    }
}

// ------------------------------------------------------------------ known divergences

/// Whether `short` is a prefix of `long` (both arrays of events).
fn prefix(short: &Json, long: &Json) -> bool {
    let (a, b) = (short.as_array(), long.as_array());
    a.zip(b).is_some_and(|(a, b)| a.len() <= b.len() && b[..a.len()] == a[..])
}

/// The known divergence this one is an instance of. A tungstenite divergence is known only where `ws`
/// agrees with us on the same stream.
fn classify(peer: &str, case: &WsCase, ours: &Json, theirs: &Json, ws_agrees: bool) -> Option<&'static str> {
    let same_events = ours["events"] == theirs["events"];
    if peer == "ws" {
        if case.deflate {
            // ws inflates each compressed fragment as it arrives, so it refuses a corrupt or oversized one
            // before the pings and pongs that follow it; we inflate the whole message once it is in: only
            // control frames in between.
            let only_control_more = prefix(&theirs["events"], &ours["events"])
                && ours["events"].as_array().is_some_and(|o| {
                    let n = theirs["events"].as_array().map_or(0, Vec::len);
                    o[n..].iter().all(|e| e.get("ping").is_some() || e.get("pong").is_some())
                });
            // The fault ws finds in a fragment (1007 corrupt or not UTF-8, 1009 over the limit) may then come
            // before one we find in a later frame, or before the end of a stream cut short.
            let inflate_fault = matches!(theirs["error"].as_u64(), Some(1007 | 1009));
            if inflate_fault && only_control_more {
                return Some("WS-INFLATE-WHOLE");
            }
            // A compressed message that is over the limit once inflated and also corrupt or not UTF-8: we stop
            // inflating at the limit (1009); ws's zlib stream may meet the fault first (1007).
            if ours["error"] == json!(1009)
                && theirs["error"] == json!(1007)
                && prefix(&theirs["events"], &ours["events"])
            {
                return Some("WS-INFLATE-LIMIT");
            }
        }
        return None;
    }
    if !ws_agrees {
        return None;
    }
    // tungstenite reads a whole header before judging a frame: on a stream cut short it is still waiting
    // where we (and ws) already refused the frame from its first bytes.
    if same_events && ours["error"] != Json::Null && theirs["error"] == Json::Null {
        return Some("TUNG-EAGER");
    }
    // tungstenite validates text per fragment: it stops (1007) where we still read control frames that
    // came between the fragments, or where we stop for another reason first, or wait for more.
    if theirs["error"] == json!(1007) && prefix(&theirs["events"], &ours["events"]) {
        return Some("TUNG-UTF8-EARLY");
    }
    // A close frame whose status tungstenite judges otherwise: one no peer may send (1004-1006, 1015, under
    // 1000, 1016-2999, 5000 and up), which tungstenite hands out where we refuse it as ws does, or 1014 (bad
    // gateway, registered), which tungstenite turns into 1002 where we accept it as ws does.
    let last_close = |e: &Json| e["events"].as_array().and_then(|e| e.last()).is_some_and(|e| e.get("close").is_some());
    if theirs["error"] == Json::Null && last_close(theirs) && (ours["error"] == json!(1002) || last_close(ours)) {
        return Some("TUNG-CLOSE-CODE");
    }
    // A ping, pong or close whose length is written in the 16 or 64-bit form: RFC 6455 wants the shortest
    // form and at most 125 bytes in a control frame; ws refuses it from the 7-bit field, as we do.
    if ours["error"] == json!(1002) && prefix(&ours["events"], &theirs["events"]) && has_wide_control(case) {
        return Some("TUNG-CONTROL-LEN");
    }
    // tungstenite applies its limits per frame and per message with other comparisons, and reads 64-bit
    // lengths with the top bit set as too big.
    if ours["error"] == json!(1009) || theirs["error"] == json!(1009) {
        return Some("TUNG-SIZE");
    }
    None
}

fn has_wide_control(case: &WsCase) -> bool {
    case.input.windows(2).any(|w| matches!(w[0] & 0x0f, 0x8..=0xa) && w[1] & 0x7f >= 126)
}

// ------------------------------------------------------------------ generation

const CLOSE_CODES: &[u16] = &[
    1000, 1001, 1002, 1003, 1004, 1005, 1006, 1007, 1008, 1011, 1012, 1013, 1014, 1015, 1016, 999, 2999, 3000, 4999,
    5000, 0, 65535,
];

fn frame(out: &mut Vec<u8>, rng: &mut Rng, first: u8, payload: &[u8]) {
    out.push(first);
    let len = payload.len();
    // Now and then a longer length encoding than needed (both sides accept it).
    let wide = rng.chance(0.05);
    if len < 126 && !wide {
        out.push(0x80 | len as u8);
    } else if len <= 0xffff && !(wide && rng.chance(0.5)) {
        out.push(0x80 | 126);
        out.extend_from_slice(&(len as u16).to_be_bytes());
    } else {
        out.push(0x80 | 127);
        out.extend_from_slice(&(len as u64).to_be_bytes());
    }
    let key = (rng.next_u64() as u32).to_be_bytes();
    out.extend_from_slice(&key);
    let mut body = payload.to_vec();
    apply_mask(&mut body, key);
    out.extend(body);
}

fn text(rng: &mut Rng, len: usize) -> Vec<u8> {
    const ALPHABET: &[&str] = &["a", "b", " ", "é", "€", "😀", "\u{0}", "z"];
    let mut s = String::new();
    while s.len() < len {
        s.push_str(rng.pick::<&str>(ALPHABET));
    }
    s.into_bytes()
}

fn deflate_message(c: &mut Compress, message: &[u8]) -> Vec<u8> {
    let mut z = Vec::with_capacity(message.len() + 64);
    let mut input = message;
    loop {
        let before = c.total_in();
        let _ = c.compress_vec(input, &mut z, FlushCompress::Sync);
        input = &input[(c.total_in() - before) as usize..];
        // Done when all input is taken and the sync flush fit in the vector.
        if input.is_empty() && z.len() < z.capacity() {
            break;
        }
        z.reserve(z.capacity().max(64));
    }
    if z.ends_with(&[0, 0, 0xff, 0xff]) {
        z.truncate(z.len() - 4);
    }
    z
}

fn generate(rng: &mut Rng) -> WsCase {
    let max = *rng.pick(&[16usize, 125, 300, 1000]);
    let deflate = rng.chance(0.3);
    let mut compressor = Compress::new(Compression::fast(), false);
    let mut out = Vec::new();
    let mut labels = Vec::new();
    for _ in 0..1 + rng.below(4) {
        match rng.below(12) {
            0..=5 => {
                let is_text = rng.chance(0.6);
                let len = match rng.below(4) {
                    0 => rng.below(8),
                    1 => max.saturating_sub(2) + rng.below(5),
                    _ => rng.below(max + max / 4 + 1),
                };
                let mut payload =
                    if is_text { text(rng, len) } else { (0..len).map(|_| rng.next_u64() as u8).collect() };
                let mut label = String::from(if is_text { "text" } else { "binary" });
                if is_text && rng.chance(0.1) && !payload.is_empty() {
                    let at = rng.below(payload.len());
                    payload[at] = *rng.pick(&[0xff, 0xc0, 0x80, 0xed]);
                    label.push_str("(bad utf8)");
                }
                let compressed = deflate && rng.chance(0.7);
                if compressed {
                    label.push_str("(deflate)");
                    payload = if rng.chance(0.05) {
                        label.push_str("(corrupt)");
                        (0..payload.len().max(4)).map(|_| rng.next_u64() as u8).collect()
                    } else if rng.chance(0.05) {
                        label.push_str("(bomb)");
                        deflate_message(&mut compressor, &vec![b'a'; max * 50])
                    } else {
                        deflate_message(&mut compressor, &payload)
                    };
                }
                let pieces = 1 + if rng.chance(0.4) { rng.below(4) } else { 0 };
                let mut cuts: Vec<usize> = (0..pieces - 1).map(|_| rng.below(payload.len() + 1)).collect();
                cuts.sort_unstable();
                cuts.push(payload.len());
                if pieces > 1 {
                    label.push_str(&format!("/{pieces} fragments"));
                }
                let mut start = 0;
                for (i, &end) in cuts.iter().enumerate() {
                    let opcode = if i > 0 {
                        0
                    } else if is_text {
                        1
                    } else {
                        2
                    };
                    let fin = if i + 1 == cuts.len() { 0x80 } else { 0 };
                    let rsv1 = if i == 0 && compressed { 0x40 } else { 0 };
                    frame(&mut out, rng, fin | rsv1 | opcode, &payload[start..end]);
                    start = end;
                    if fin == 0 && rng.chance(0.3) {
                        let len = rng.below(6);
                        let payload: Vec<u8> = text(rng, len);
                        frame(&mut out, rng, 0x89, &payload);
                        label.push_str("+ping");
                    }
                }
                labels.push(label);
            }
            6 => {
                let len = if rng.chance(0.1) { 126 + rng.below(4) } else { rng.below(20) };
                let payload: Vec<u8> = (0..len).map(|_| rng.next_u64() as u8).collect();
                let opcode = if rng.chance(0.5) { 0x9 } else { 0xa };
                let fin = if rng.chance(0.1) { 0 } else { 0x80 };
                frame(&mut out, rng, fin | opcode, &payload);
                labels.push(format!(
                    "{}{}",
                    if opcode == 9 { "ping" } else { "pong" },
                    if fin == 0 { "(no fin)" } else { "" }
                ));
            }
            7 => {
                let mut payload = Vec::new();
                match rng.below(8) {
                    0 => {}
                    1 => payload.push(0x03),
                    _ => {
                        payload.extend_from_slice(&rng.pick(CLOSE_CODES).to_be_bytes());
                        if rng.chance(0.5) {
                            let len = rng.below(10);
                            payload.extend(text(rng, len));
                        }
                        if rng.chance(0.1) {
                            payload.push(0xff);
                        }
                    }
                }
                frame(&mut out, rng, 0x88, &payload);
                labels.push("close".into());
            }
            8 => {
                let opcode = *rng.pick(&[3u8, 4, 5, 6, 7, 0xb, 0xc, 0xd, 0xe, 0xf]);
                frame(&mut out, rng, 0x80 | opcode, b"x");
                labels.push(format!("opcode {opcode}"));
            }
            9 => {
                let rsv = *rng.pick(&[0x40u8, 0x20, 0x10, 0x70]);
                let opcode = *rng.pick(&[0u8, 1, 2, 9]);
                frame(&mut out, rng, 0x80 | rsv | opcode, b"hi");
                labels.push(format!("rsv {rsv:#x} on opcode {opcode}"));
            }
            10 => {
                // Unmasked, or a stray continuation.
                if rng.chance(0.5) {
                    out.extend_from_slice(&[0x81, 0x02, b'h', b'i']);
                    labels.push("unmasked".into());
                } else {
                    frame(&mut out, rng, 0x80, b"more");
                    labels.push("stray continuation".into());
                }
            }
            _ => {
                // A 64-bit length: huge, or with its top bit set.
                out.push(0x82);
                out.push(0x80 | 127);
                let len: u64 = if rng.chance(0.5) { 1 << 63 | rng.below(100) as u64 } else { 1 << 40 };
                out.extend_from_slice(&len.to_be_bytes());
                out.extend_from_slice(&[1, 2, 3, 4]);
                labels.push("64-bit length".into());
            }
        }
    }
    if rng.chance(0.3) && !out.is_empty() {
        match rng.below(3) {
            0 => {
                let at = rng.below(out.len());
                out[at] ^= 1 << rng.below(8);
                labels.push("bit flipped".into());
            }
            1 => {
                out.truncate(rng.below(out.len()));
                labels.push("cut".into());
            }
            _ => {
                let a = rng.below(out.len());
                let b = a + rng.below(out.len() - a).min(16);
                let slice = out[a..b].to_vec();
                out.splice(b..b, slice);
                labels.push("slice repeated".into());
            }
        }
    }
    WsCase { label: labels.join(", "), input: out, max, deflate }
}

#[cfg(test)]
mod tests {
    use super::KNOWN;

    #[test]
    fn every_known_id_is_documented_in_conformance_md() {
        let doc = include_str!("../../../CONFORMANCE.md");
        for (id, _) in KNOWN {
            assert!(doc.contains(&format!("| `{id}` |")), "{id} is not in CONFORMANCE.md's WebSocket table");
        }
    }
}
