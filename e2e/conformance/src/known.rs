//! Known, deliberate divergences: the table of `CONFORMANCE.md`, and the rules that recognise each one.
//!
//! A rule looks at the input and at both results and matches only the divergence it documents (for
//! encodings, by rewriting the packet as JavaScript would hold it and checking that this alone explains the
//! difference), so that an unrelated divergence in the same case still shows up as unknown.

use serde_json::Value as Json;

use crate::Divergence;
use crate::compare::json_eq;
use crate::ours::{self, MAX_SAFE_INTEGER};

/// The ids of `CONFORMANCE.md`, with a one-line summary each.
pub(crate) const KNOWN: &[(&str, &str)] = &[
    ("EIO-CONTROL-DATA", "data after a close/ping/pong/upgrade/noop packet is refused"),
    ("EIO-BASE64-STRICT", "'b' binary messages (payload entries, text frames) must be canonical padded base64"),
    ("EIO-PAYLOAD-UTF8", "a polling body that is not UTF-8 is refused whole"),
    ("EIO3-LENGTH", "a v3 payload length is decimal digits that end between characters"),
    ("EIO3-B64-TYPE", "a v3 'b' entry must be a message ('b4')"),
    ("EIO3-BINARY-CONTROL", "a v3 control packet in binary form is taken without its data"),
    ("SIO-NO-DATA", "EVENT, ACK and CONNECT_ERROR need a payload"),
    ("SIO-TYPE-COERCION", "the type must be a digit (JavaScript reads '' and whitespace as 0)"),
    ("SIO-ACK-ID-COERCION", "ack ids are ASCII digits only (JavaScript lets whitespace in)"),
    ("SIO-ATTACHMENTS-FORMAT", "the attachment count is ASCII digits only"),
    ("BIG-ACK-ID", "ack ids are exact 64-bit integers (JavaScript holds doubles)"),
    ("SIO-LONE-SURROGATE", "JSON escapes of unpaired surrogates are refused"),
    ("SIO-JSON-DEPTH", "JSON nested 128 levels or deeper is refused"),
    ("SIO-JSON-NUMBER-RANGE", "JSON numbers beyond the double range are refused"),
    ("SIO-PLACEHOLDER-FRACTION", "a fractional placeholder index is refused"),
    ("JS-KEY-ORDER", "object keys keep their order (JavaScript puts integer-like keys first)"),
    ("BIG-INT-DATA", "integers beyond 2^53 in data are written exactly"),
    ("MP-FLOAT-INT", "doubles are written as msgpack float 64 even when integral"),
    ("REF-NOTEPACK-BIG-FLOAT", "reference bug: notepack wraps integral doubles outside [-2^63, 2^64)"),
    ("MP-ID-TYPE", "msgpack type and id must be non-negative integers, not floats"),
    ("MP-NULL-ABSENT", "msgpack nil id or data is read as absent"),
    ("MP-EVENT-CHECKS", "msgpack EVENT data gets the default parser's event checks"),
    ("MP-EXTENSIONS", "msgpack extensions: only notepack's type 0 and the timestamp (-1)"),
    ("MP-STR-UTF8", "a msgpack str that is not UTF-8 is binary (refused as a key, name or namespace)"),
    ("MP-MAP-KEYS", "msgpack map keys: strings, integers (exact), booleans, UTF-8 binary"),
    ("MP-PROTO-KEY", "a msgpack \"__proto__\" key stays a key"),
];

/// The id of the known divergence `d` is an instance of, if any.
pub(crate) fn classify(d: &Divergence) -> Option<&'static str> {
    let (op, aspect) = d.category.split_once(' ').unwrap_or((&d.category, ""));
    match op {
        "eio.decodePacket" => eio_packet(d),
        "eio.decodePayload" => eio_payload(d),
        "eio3.decodePayload" => eio3_payload(d),
        "sio.decode" => sio_decode(d, aspect),
        "sio.encode" | "msgpack.encode" => encode(d, op, aspect),
        "msgpack.decode" => msgpack_decode(d, aspect),
        _ => None,
    }
}

fn accepted(r: &Json) -> bool {
    r["accepted"] == Json::Bool(true)
}

fn error(r: &Json) -> &str {
    r["error"].as_str().unwrap_or("")
}

// ------------------------------------------------------------------ Engine.IO

/// The rule for one text packet (a frame or a payload entry) that we refuse and engine.io-parser accepts.
fn eio_entry(text: &str, our_error: &str) -> Option<&'static str> {
    let first = text.chars().next()?;
    if first == 'b' {
        return our_error.contains("base64").then_some("EIO-BASE64-STRICT");
    }
    if "12356".contains(first) && text.len() > 1 && our_error.contains("unexpected data") {
        return Some("EIO-CONTROL-DATA");
    }
    None
}

fn eio_packet(d: &Divergence) -> Option<&'static str> {
    let text = d.request["input"]["text"].as_str()?;
    if accepted(&d.ours) || !accepted(&d.theirs) {
        return None;
    }
    eio_entry(text, error(&d.ours))
}

fn eio_payload(d: &Divergence) -> Option<&'static str> {
    let body = ours::unbase64(d.request["input"].as_str()?);
    if accepted(&d.ours) {
        return None;
    }
    let Ok(text) = std::str::from_utf8(&body) else {
        return error(&d.ours).contains("UTF-8").then_some("EIO-PAYLOAD-UTF8");
    };
    // The packets before our first bad entry must agree; that entry must be one the rules explain.
    let ours = d.ours["packets"].as_array()?;
    let theirs = d.theirs["packets"].as_array()?;
    let k = ours.len();
    if theirs.len() < k || !ours.iter().zip(theirs).all(|(a, b)| json_eq(a, b)) {
        return None;
    }
    let entry = text.split('\u{1e}').nth(k)?;
    // When the reference also stopped there, nothing diverged at that entry.
    if theirs.len() == k && !accepted(&d.theirs) {
        return None;
    }
    eio_entry(entry, error(&d.ours))
}

/// The entries of a v3 text payload as the reference reads them, up to the one it cannot read: (the length
/// text, the entry) each, cut by JavaScript's rules (a length in UTF-16 code units, read by `Number()`).
fn eio3_text_entries(text: &str) -> Vec<(String, String)> {
    let units: Vec<u16> = text.encode_utf16().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while let Some(colon) = units[i..].iter().position(|&u| u == u16::from(b':')) {
        let length = String::from_utf16_lossy(&units[i..i + colon]);
        let Some(n) = js_number(&length).filter(|n| n.fract() == 0.0 && *n >= 0.0) else { break };
        let start = i + colon + 1;
        let end = (start + n as usize).min(units.len());
        out.push((length, String::from_utf16_lossy(&units[start..end])));
        i = end;
    }
    out
}

/// JavaScript's `Number(s)` for the strings a length field can hold (decimal with sign, fraction and
/// exponent, hexadecimal, whitespace around), `None` for NaN.
fn js_number(s: &str) -> Option<f64> {
    let t = s.trim_matches(js_space);
    if t.is_empty() {
        return Some(0.0);
    }
    if let Some(hex) = t.strip_prefix("0x").or_else(|| t.strip_prefix("0X")) {
        return u64::from_str_radix(hex, 16).ok().map(|v| v as f64);
    }
    if t.chars().all(|c| c.is_ascii_digit() || "+-.eE".contains(c)) { t.parse().ok() } else { None }
}

fn eio3_payload(d: &Divergence) -> Option<&'static str> {
    let body = ours::unbase64(d.request["input"].as_str()?);
    let binary = d.request["binary"].as_bool()?;
    if accepted(&d.ours) {
        return eio3_binary_control(d, binary);
    }
    let ours = d.ours["packets"].as_array()?;
    let theirs = d.theirs["packets"].as_array()?;
    let k = ours.len();
    if theirs.len() < k || !ours.iter().zip(theirs).all(|(a, b)| json_eq(a, b)) {
        return eio3_binary_control(d, binary);
    }
    if theirs.len() == k && !accepted(&d.theirs) {
        return None;
    }
    let our_error = error(&d.ours);
    if binary {
        // Entries split the same way (the splitter is the reference's); the one we refuse is not UTF-8
        // (the reference's lenient decoder takes surrogate code points), or a text packet refused as in a
        // frame.
        return if our_error.contains("UTF-8") {
            Some("EIO-PAYLOAD-UTF8")
        } else if our_error.contains("unexpected data") {
            Some("EIO-CONTROL-DATA")
        } else if our_error.contains("base64") {
            Some("EIO-BASE64-STRICT")
        } else {
            None
        };
    }
    let Ok(text) = std::str::from_utf8(&body) else {
        return our_error.contains("UTF-8").then_some("EIO-PAYLOAD-UTF8");
    };
    let entries = eio3_text_entries(text);
    // Our k-th non-empty entry is where we stopped; find it among the reference's entries.
    let mut seen = 0;
    for (length, entry) in &entries {
        if entry.is_empty() && length.trim_matches(js_space).parse::<f64>().is_ok_and(|n| n == 0.0) {
            if !length.bytes().all(|b| b.is_ascii_digit()) {
                return our_error.contains("length").then_some("EIO3-LENGTH");
            }
            continue;
        }
        if seen < k {
            if !length.bytes().all(|b| b.is_ascii_digit()) {
                return None;
            }
            seen += 1;
            continue;
        }
        // The entry we refused.
        if our_error.contains("length") {
            let plain = !length.is_empty() && length.bytes().all(|b| b.is_ascii_digit());
            // A length that is not plain digits, or that ends inside a surrogate pair (the entry the
            // reference reads then holds a lone surrogate, shown as U+FFFD).
            return (!plain || entry.contains('\u{fffd}')).then_some("EIO3-LENGTH");
        }
        if let Some(rest) = entry.strip_prefix('b') {
            if !rest.starts_with('4') && our_error.contains("base64") {
                return Some("EIO3-B64-TYPE");
            }
            return our_error.contains("base64").then_some("EIO-BASE64-STRICT");
        }
        return eio_entry(entry, our_error);
    }
    None
}

/// A binary payload whose binary entries hold control packets: the reference reports their data (and an
/// open packet, which its server ignores), we take them without it (and drop the open packet). Every
/// difference must be that one.
fn eio3_binary_control(d: &Divergence, binary: bool) -> Option<&'static str> {
    let ours = d.ours["packets"].as_array()?;
    let all_theirs = d.theirs["packets"].as_array()?;
    let theirs: Vec<&Json> = all_theirs
        .iter()
        .filter(|p| p["type"] != "open" || p.get("data").is_some_and(|d| d.get("text").is_some()))
        .collect();
    let dropped_open = theirs.len() != all_theirs.len();
    if !binary || ours.len() != theirs.len() || d.ours["accepted"] != d.theirs["accepted"] {
        return None;
    }
    let mut any = dropped_open;
    for (a, &b) in ours.iter().zip(&theirs) {
        if json_eq(a, b) {
            continue;
        }
        let control = a["type"] != "message" && a["type"] == b["type"] && a.get("data").is_none();
        if !control || b["data"].get("bin").is_none() {
            return None;
        }
        any = true;
    }
    any.then_some("EIO3-BINARY-CONTROL")
}

// ------------------------------------------------------------------ Socket.IO text

/// Whitespace as JavaScript's `Number()` trims it (so `Number(c) == c` holds for it, as for digits).
fn js_space(c: char) -> bool {
    matches!(
        c,
        '\t' | '\n' | '\u{b}' | '\u{c}' | '\r' | ' ' | '\u{a0}' | '\u{1680}' | '\u{2000}'
            ..='\u{200a}' | '\u{2028}' | '\u{2029}' | '\u{202f}' | '\u{205f}' | '\u{3000}' | '\u{feff}'
    )
}

/// How socket.io-parser's `decodeString` splits a text packet: (type char, attachment field, namespace,
/// the ack-id run — digits and whitespace, as its `Number(c) == c` loop reads them —, the rest).
struct JsSplit<'a> {
    first: Option<char>,
    attachments: Option<&'a str>,
    id_run: &'a str,
    json: &'a str,
}

fn js_split(t: &str) -> JsSplit<'_> {
    let first = t.chars().next();
    let mut rest = first.map_or("", |c| &t[c.len_utf8()..]);
    let mut attachments = None;
    if matches!(first, Some('5' | '6')) {
        let end = rest.find('-').unwrap_or(rest.len());
        attachments = Some(&rest[..end]);
        rest = rest.get(end + 1..).unwrap_or("");
    }
    if rest.starts_with('/') {
        let end = rest.find(',').map_or(rest.len(), |e| e + 1);
        rest = &rest[end..];
    }
    let run = rest.char_indices().find(|&(_, c)| !(c.is_ascii_digit() || js_space(c))).map_or(rest.len(), |(i, _)| i);
    JsSplit { first, attachments, id_run: &rest[..run], json: &rest[run..] }
}

fn first_text(d: &Divergence) -> Option<&str> {
    d.request["messages"].as_array()?.iter().find_map(|m| m["text"].as_str())
}

fn packets(r: &Json) -> &[Json] {
    r["packets"].as_array().map_or(&[], Vec::as_slice)
}

/// The characters of JSON text outside string literals (each string's opening quote included, so that it
/// still separates what comes before it from what follows).
fn outside_strings(s: &str) -> impl Iterator<Item = char> + '_ {
    let (mut in_str, mut esc) = (false, false);
    s.chars().filter(move |&c| {
        if in_str {
            match (esc, c) {
                (true, _) => esc = false,
                (false, '\\') => esc = true,
                (false, '"') => in_str = false,
                _ => {}
            }
            return false;
        }
        in_str = c == '"';
        true
    })
}

/// The deepest nesting of brackets outside strings.
fn json_depth(s: &str) -> usize {
    let (mut depth, mut max) = (0usize, 0usize);
    for c in outside_strings(s) {
        match c {
            '[' | '{' => {
                depth += 1;
                max = max.max(depth);
            }
            ']' | '}' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    max
}

/// Whether a number literal outside strings overflows a double (JavaScript reads it as Infinity).
fn has_infinite_number(s: &str) -> bool {
    let mut token = String::new();
    let check = |tok: &mut String| {
        let inf = !tok.is_empty() && tok.parse::<f64>().is_ok_and(f64::is_infinite);
        tok.clear();
        inf
    };
    for c in outside_strings(s) {
        if c.is_ascii_digit() || matches!(c, '-' | '+' | '.' | 'e' | 'E') {
            token.push(c);
        } else if check(&mut token) {
            return true;
        }
    }
    check(&mut token)
}

fn has_lone(v: &Json) -> bool {
    let inside = match v {
        Json::Array(a) => a.iter().any(has_lone),
        Json::Object(o) => o.keys().any(|k| k.starts_with("$lone:")) || o.values().any(has_lone),
        _ => false,
    };
    inside || v.get("$lone").is_some()
}

/// `packets` with their ids taken out.
fn without_ids(r: &Json) -> Vec<Json> {
    packets(r)
        .iter()
        .map(|p| {
            let mut p = p.clone();
            if let Some(o) = p.as_object_mut() {
                o.remove("id");
            }
            p
        })
        .collect()
}

fn id_over(run: &str, limit: u128) -> bool {
    !run.is_empty() && run.bytes().all(|b| b.is_ascii_digit()) && run.parse::<u128>().map_or(true, |n| n > limit)
}

fn sio_decode(d: &Divergence, aspect: &str) -> Option<&'static str> {
    let t = first_text(d)?;
    let split = js_split(t);
    let our_error = error(&d.ours);
    let same_but_ids = || {
        let (a, b) = (without_ids(&d.ours), without_ids(&d.theirs));
        a.len() == b.len() && a.iter().zip(&b).all(|(x, y)| json_eq(x, y))
    };
    // Both accepted and decoded the same, but for the ack id.
    if aspect == "result" && accepted(&d.ours) && accepted(&d.theirs) {
        if id_over(split.id_run, u128::from(MAX_SAFE_INTEGER)) && same_but_ids() {
            return Some("BIG-ACK-ID");
        }
        if split.id_run.chars().any(js_space) && same_but_ids() {
            return Some("SIO-ACK-ID-COERCION");
        }
        return None;
    }
    // We refused the first text where the reference decoded it: it accepted the whole sequence, or got
    // further before refusing a later message.
    let ours_first = accepted(&d.ours) || !packets(&d.ours).is_empty();
    let reference_went_further = accepted(&d.theirs) || !packets(&d.theirs).is_empty();
    if ours_first || !reference_went_further {
        return None;
    }
    if our_error == "unknown packet type" && split.first.is_none_or(js_space) {
        return Some("SIO-TYPE-COERCION");
    }
    if our_error == "illegal attachments"
        && split.attachments.is_some_and(|a| a.is_empty() || !a.bytes().all(|b| b.is_ascii_digit()))
    {
        return Some("SIO-ATTACHMENTS-FORMAT");
    }
    if our_error == "invalid ack id" && id_over(split.id_run, u128::from(u64::MAX)) {
        return Some("BIG-ACK-ID");
    }
    if split.id_run.chars().any(js_space) {
        return Some("SIO-ACK-ID-COERCION");
    }
    if our_error == "invalid payload" && packets(&d.theirs).iter().all(|p| p.get("data").is_none()) {
        return Some("SIO-NO-DATA");
    }
    if our_error == "invalid JSON" {
        if has_lone(&d.theirs) {
            return Some("SIO-LONE-SURROGATE");
        }
        if json_depth(split.json) >= 128 {
            return Some("SIO-JSON-DEPTH");
        }
        if has_infinite_number(split.json) {
            return Some("SIO-JSON-NUMBER-RANGE");
        }
    }
    if our_error == "placeholder refers to a missing attachment" && has_fractional_placeholder(split.json) {
        return Some("SIO-PLACEHOLDER-FRACTION");
    }
    None
}

fn has_fractional_placeholder(json: &str) -> bool {
    fn walk(v: &Json) -> bool {
        match v {
            Json::Object(o) => {
                (o.get("_placeholder") == Some(&Json::Bool(true))
                    && o.get("num").and_then(Json::as_f64).is_some_and(|n| n >= 0.0 && n.fract() != 0.0))
                    || o.values().any(walk)
            }
            Json::Array(a) => a.iter().any(walk),
            _ => false,
        }
    }
    serde_json::from_str::<Json>(json).is_ok_and(|v| walk(&v))
}

// ------------------------------------------------------------------ encodings

/// Whether `k` is an array index, which JavaScript lists before the other keys, in ascending order.
fn index_key(k: &str) -> Option<u64> {
    let n: u64 = k.parse().ok()?;
    (n.to_string() == k && n < u64::from(u32::MAX)).then_some(n)
}

/// The data as JavaScript holds it, and which known rules that changed: integer-like keys first, integers
/// rounded to doubles, and (for msgpack, as notepack writes them) integral doubles below 2^63 as integers.
fn jsify(v: &Json, msgpack: bool, why: &mut Vec<&'static str>) -> Json {
    match v {
        Json::Number(n) => {
            let big = n.as_u64().map_or_else(
                || n.as_i64().is_some_and(|i| i.unsigned_abs() > MAX_SAFE_INTEGER),
                |u| u > MAX_SAFE_INTEGER,
            );
            let f = n.as_f64().unwrap_or(0.0);
            if big {
                why.push("BIG-INT-DATA");
            }
            if msgpack && notepack_writes_exactly(f) && (big || n.is_f64()) {
                if n.is_f64() {
                    why.push("MP-FLOAT-INT");
                }
                return if f < 0.0 { Json::from(f as i64) } else { Json::from(f as u64) };
            }
            if big { serde_json::Number::from_f64(f).map_or(Json::Null, Json::Number) } else { v.clone() }
        }
        Json::Array(a) => Json::Array(a.iter().map(|x| jsify(x, msgpack, why)).collect()),
        Json::Object(o) => {
            let mut idx: Vec<(u64, &String)> = o.keys().filter_map(|k| index_key(k).map(|n| (n, k))).collect();
            idx.sort();
            let keys: Vec<&String> =
                idx.iter().map(|(_, k)| *k).chain(o.keys().filter(|k| index_key(k).is_none())).collect();
            if !keys.iter().copied().eq(o.keys()) {
                why.push("JS-KEY-ORDER");
            }
            Json::Object(keys.into_iter().map(|k| (k.clone(), jsify(&o[k], msgpack, why))).collect())
        }
        _ => v.clone(),
    }
}

/// notepack writes an integral double as a msgpack integer; it gets the bytes right from -2^63 up to (not
/// including) 2^64, and wraps them outside (its `>> 0` and `>>> 0` work modulo 2^32).
fn notepack_writes_exactly(f: f64) -> bool {
    f.fract() == 0.0 && (-9_223_372_036_854_775_808.0..18_446_744_073_709_551_616.0).contains(&f)
}

/// A number notepack would write as a wrapped integer: an integral double (or an integer that rounds to one)
/// outside [-2^63, 2^64).
fn has_huge_integral_float(v: &Json) -> bool {
    match v {
        Json::Number(n) => n.as_f64().is_some_and(|f| f.fract() == 0.0 && !notepack_writes_exactly(f)),
        Json::Array(a) => a.iter().any(has_huge_integral_float),
        Json::Object(o) => o.values().any(has_huge_integral_float),
        _ => false,
    }
}

fn encode(d: &Divergence, op: &str, aspect: &str) -> Option<&'static str> {
    let packet = &d.request["packet"];
    let msgpack = op == "msgpack.encode";
    let data = packet.get("data");
    if msgpack && data.is_some_and(has_huge_integral_float) {
        return Some("REF-NOTEPACK-BIG-FLOAT");
    }
    if aspect != "bytes" {
        return None;
    }
    let mut why = Vec::new();
    let mut js = packet.clone();
    if let Some(data) = data {
        js["data"] = jsify(data, msgpack, &mut why);
    }
    let request = serde_json::json!({ "op": op, "packet": js });
    if !json_eq(&ours::run(&request), &d.theirs) {
        return None;
    }
    ["BIG-INT-DATA", "JS-KEY-ORDER", "MP-FLOAT-INT"].into_iter().find(|id| why.contains(id))
}

// ------------------------------------------------------------------ msgpack

/// A msgpack value read with its encoding kept (what the rules need to know).
#[derive(Debug)]
enum Mv {
    Nil,
    Bool,
    Int(i128),
    Float,
    Str(Vec<u8>),
    Bin,
    Arr(Vec<Mv>),
    Map(Vec<(Mv, Mv)>),
    /// type, length, fixext form
    Ext(i8, usize, bool),
}

struct Reader<'a> {
    b: &'a [u8],
    at: usize,
}

impl Reader<'_> {
    fn take(&mut self, n: usize) -> Option<&[u8]> {
        let s = self.b.get(self.at..self.at.checked_add(n)?)?;
        self.at += n;
        Some(s)
    }
    fn uint(&mut self, n: usize) -> Option<u64> {
        Some(self.take(n)?.iter().fold(0u64, |acc, &x| (acc << 8) | u64::from(x)))
    }
    fn read(&mut self, depth: usize) -> Option<Mv> {
        if depth > 200 {
            return None;
        }
        let m = *self.take(1)?.first()?;
        Some(match m {
            0x00..=0x7f => Mv::Int(i128::from(m)),
            0x80..=0x8f => self.map(usize::from(m & 0x0f), depth)?,
            0x90..=0x9f => self.arr(usize::from(m & 0x0f), depth)?,
            0xa0..=0xbf => Mv::Str(self.take(usize::from(m & 0x1f))?.to_vec()),
            0xc0 => Mv::Nil,
            0xc2 | 0xc3 => Mv::Bool,
            0xc4..=0xc6 => {
                let n = self.uint(1 << (m - 0xc4))? as usize;
                self.take(n)?;
                Mv::Bin
            }
            0xc7..=0xc9 => {
                let n = self.uint(1 << (m - 0xc7))? as usize;
                let t = self.take(1)?[0] as i8;
                self.take(n)?;
                Mv::Ext(t, n, false)
            }
            0xca => {
                self.uint(4)?;
                Mv::Float
            }
            0xcb => {
                self.uint(8)?;
                Mv::Float
            }
            0xcc..=0xcf => Mv::Int(i128::from(self.uint(1 << (m - 0xcc))?)),
            0xd0..=0xd3 => {
                let n = 1 << (m - 0xd0);
                let u = self.uint(n)?;
                let shift = 64 - 8 * n as u32;
                Mv::Int(i128::from(((u << shift) as i64) >> shift))
            }
            0xd4..=0xd8 => {
                let t = self.take(1)?[0] as i8;
                let n = 1 << (m - 0xd4);
                self.take(n)?;
                Mv::Ext(t, n, true)
            }
            0xd9..=0xdb => {
                let n = self.uint(1 << (m - 0xd9))? as usize;
                Mv::Str(self.take(n)?.to_vec())
            }
            0xdc | 0xdd => {
                let n = self.uint(if m == 0xdc { 2 } else { 4 })? as usize;
                self.arr(n, depth)?
            }
            0xde | 0xdf => {
                let n = self.uint(if m == 0xde { 2 } else { 4 })? as usize;
                self.map(n, depth)?
            }
            0xe0..=0xff => Mv::Int(i128::from(m as i8)),
            0xc1 => return None,
        })
    }
    fn arr(&mut self, n: usize, depth: usize) -> Option<Mv> {
        let mut v = Vec::new();
        for _ in 0..n {
            v.push(self.read(depth + 1)?);
        }
        Some(Mv::Arr(v))
    }
    fn map(&mut self, n: usize, depth: usize) -> Option<Mv> {
        let mut v = Vec::new();
        for _ in 0..n {
            let k = self.read(depth + 1)?;
            let x = self.read(depth + 1)?;
            v.push((k, x));
        }
        Some(Mv::Map(v))
    }
}

fn any(v: &Mv, f: &dyn Fn(&Mv) -> bool) -> bool {
    f(v) || match v {
        Mv::Arr(a) => a.iter().any(|x| any(x, f)),
        Mv::Map(m) => m.iter().any(|(k, x)| any(k, f) || any(x, f)),
        _ => false,
    }
}

fn bad_str(v: Option<&Mv>) -> bool {
    matches!(v, Some(Mv::Str(s)) if std::str::from_utf8(s).is_err())
}

fn first_of(v: Option<&Mv>) -> Option<&Mv> {
    match v {
        Some(Mv::Arr(a)) => a.first(),
        _ => None,
    }
}

/// The last value of a top-level key (a repeated key keeps its last value, in both stacks).
fn field<'a>(top: &'a Mv, name: &str) -> Option<&'a Mv> {
    let Mv::Map(m) = top else { return None };
    m.iter().rev().find(|(k, _)| matches!(k, Mv::Str(s) if s == name.as_bytes())).map(|(_, v)| v)
}

fn msgpack_decode(d: &Divergence, aspect: &str) -> Option<&'static str> {
    let bytes = ours::unbase64(d.request["input"].as_str()?);
    let mut r = Reader { b: &bytes, at: 0 };
    let top = r.read(0)?;
    let our_error = error(&d.ours);
    // What the packet holds, anywhere in it.
    let odd_ext = any(&top, &|v| match v {
        Mv::Ext(t, n, fix) => *t != 0 || if *fix { !matches!(n, 1 | 8) } else { matches!(n, 1 | 8) },
        _ => false,
    });
    let bad_utf8 = any(&top, &|v| matches!(v, Mv::Str(s) if std::str::from_utf8(s).is_err()));
    let odd_key = any(&top, &|v| match v {
        Mv::Map(m) => m.iter().any(|(k, _)| !matches!(k, Mv::Str(_) | Mv::Bool | Mv::Int(_) | Mv::Bin)),
        _ => false,
    });
    let bad_key_utf8 = any(&top, &|v| match v {
        Mv::Map(m) => m.iter().any(|(k, _)| matches!(k, Mv::Str(s) if std::str::from_utf8(s).is_err())),
        _ => false,
    });
    // An integer key past 2^53: JavaScript names it after the rounded double.
    let big_int_key = any(&top, &|v| match v {
        Mv::Map(m) => m.iter().any(|(k, _)| matches!(k, Mv::Int(n) if n.unsigned_abs() > u128::from(MAX_SAFE_INTEGER))),
        _ => false,
    });
    let proto_key = any(&top, &|v| match v {
        Mv::Map(m) => m.iter().any(|(k, _)| matches!(k, Mv::Str(s) if s == b"__proto__")),
        _ => false,
    });
    let (ty, id, data) = (field(&top, "type"), field(&top, "id"), field(&top, "data"));
    if aspect == "result" {
        let same_but_ids = {
            let strip = |r: &Json| {
                let mut p = r["packet"].clone();
                if let Some(o) = p.as_object_mut() {
                    o.remove("id");
                }
                p
            };
            json_eq(&strip(&d.ours), &strip(&d.theirs))
        };
        if same_but_ids && matches!(id, Some(Mv::Int(n)) if *n > i128::from(MAX_SAFE_INTEGER)) {
            return Some("BIG-ACK-ID");
        }
        if odd_ext {
            return Some("MP-EXTENSIONS");
        }
        if bad_utf8 {
            return Some("MP-STR-UTF8");
        }
        if proto_key {
            return Some("MP-PROTO-KEY");
        }
        if big_int_key {
            return Some("MP-MAP-KEYS");
        }
        return None;
    }
    if aspect != "accept" {
        return None;
    }
    if accepted(&d.ours) {
        // We accept what the reference refuses: only a nil id or nil data, read as absent.
        let nil_id = matches!(id, Some(Mv::Nil)) && error(&d.theirs) == "invalid packet id";
        let nil_data = matches!(data, Some(Mv::Nil)) && error(&d.theirs) == "invalid payload";
        return (nil_id || nil_data).then_some("MP-NULL-ABSENT");
    }
    match our_error {
        "unknown packet type" if matches!(ty, Some(Mv::Float)) => Some("MP-ID-TYPE"),
        "invalid ack id" if matches!(id, Some(Mv::Float)) || matches!(id, Some(Mv::Int(n)) if *n < 0) => {
            Some("MP-ID-TYPE")
        }
        // A namespace, a CONNECT_ERROR message or an event name that is not UTF-8 is binary here.
        "invalid payload" if [field(&top, "nsp"), data, first_of(data)].into_iter().any(bad_str) => Some("MP-STR-UTF8"),
        "invalid payload" if matches!(ty, Some(Mv::Int(2))) && matches!(data, Some(Mv::Arr(_))) => {
            Some("MP-EVENT-CHECKS")
        }
        "invalid JSON" if odd_ext => Some("MP-EXTENSIONS"),
        "invalid JSON" if bad_key_utf8 => Some("MP-STR-UTF8"),
        "invalid JSON" if odd_key => Some("MP-MAP-KEYS"),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every id of the table is in CONFORMANCE.md, and every id there is in the table.
    #[test]
    fn ids_match_conformance_md() {
        let md = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../CONFORMANCE.md")).unwrap();
        // The rows of the table under "## Known divergences", up to the next section.
        let section = md.split("## Known divergences").nth(1).unwrap().split("\n## ").next().unwrap();
        let documented: Vec<&str> =
            section.lines().filter_map(|l| l.strip_prefix("| `")).filter_map(|l| l.split('`').next()).collect();
        let ids: Vec<&str> = KNOWN.iter().map(|(id, _)| *id).collect();
        assert_eq!(documented, ids, "CONFORMANCE.md's table and known.rs must list the same ids, in order");
    }

    #[test]
    fn splits_like_socket_io_parser() {
        assert_eq!(js_split("2/a,1 2[\"x\"]").id_run, "1 2");
        assert_eq!(js_split("51-/a,9[").attachments, Some("1"));
        assert_eq!(js_split("2\u{feff}[1]").id_run, "\u{feff}");
        assert!(has_infinite_number("[\"a\",1e400]"));
        assert!(!has_infinite_number("[\"1e400\",1e300]"));
        assert_eq!(json_depth("[[\"]]]]\"],{}]"), 2);
    }
}

#[cfg(test)]
mod scan_tests {
    use super::*;

    #[test]
    fn strings_hide_brackets_and_numbers() {
        assert_eq!(json_depth(r#"[{"a":"[[[{"},[[1]]]"#), 3);
        assert_eq!(json_depth(r#""\"[[" "#), 0);
        assert!(has_infinite_number("[1e400]"));
        assert!(!has_infinite_number(r#"["1e400",1]"#));
        assert!(has_infinite_number(r#"{"x\"":-1e999}"#));
        assert!(!has_infinite_number("[1e300,2]"));
    }
}
