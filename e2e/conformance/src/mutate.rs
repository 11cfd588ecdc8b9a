//! Mutations of valid frames: each takes an input our encoder produced for a generated packet and breaks
//! it in one named way (truncation, wrong type digits, bad JSON, lying attachment counts, odd namespaces,
//! huge ack ids, Unicode, empty input, malformed msgpack...). The name travels with the case as its label.

use serde_json::Value as Json;

/// A small deterministic generator (SplitMix64) for the mutation choices.
#[derive(Debug, Clone)]
pub(crate) struct Rng(u64);

impl Rng {
    /// A generator from a seed.
    pub(crate) fn new(seed: u64) -> Self {
        Rng(seed ^ 0x9e37_79b9_7f4a_7c15)
    }

    /// The next 64 random bits.
    pub(crate) fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// A number below `n` (0 when `n` is 0).
    pub(crate) fn below(&mut self, n: usize) -> usize {
        if n == 0 { 0 } else { (self.next_u64() % n as u64) as usize }
    }

    /// True with probability `p`.
    pub(crate) fn chance(&mut self, p: f64) -> bool {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64 > 1.0 - p
    }

    /// One element of a non-empty slice.
    pub(crate) fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }
}

fn char_boundaries(s: &str) -> Vec<usize> {
    let mut v: Vec<usize> = s.char_indices().map(|(i, _)| i).collect();
    v.push(s.len());
    v
}

fn truncate_str(rng: &mut Rng, s: &str) -> String {
    let b = char_boundaries(s);
    let cut = b[rng.below(b.len())];
    s[..cut].to_owned()
}

fn insert_pick(rng: &mut Rng, s: &str, choices: &[&str]) -> String {
    let what = *rng.pick(choices);
    insert_at_boundary(rng, s, what)
}

fn insert_at_boundary(rng: &mut Rng, s: &str, what: &str) -> String {
    let b = char_boundaries(s);
    let at = b[rng.below(b.len())];
    format!("{}{}{}", &s[..at], what, &s[at..])
}

const ODD_CHARS: &[&str] = &[
    "0", "1", "4", "7", "9", "a", "b", "x", " ", "\t", "-", "+", ".", ",", "/", "é", "😀", "\u{0}", "\u{1e}", "[", "{",
];

// ------------------------------------------------------------------ Engine.IO

/// Mutates the text of a WebSocket text frame. Returns the label and the new text.
pub(crate) fn eio_text(rng: &mut Rng, text: &str) -> (&'static str, String) {
    match rng.below(7) {
        0 => ("truncate", truncate_str(rng, text)),
        1 => {
            let rest = text.char_indices().nth(1).map_or("", |(i, _)| &text[i..]);
            ("type-digit", format!("{}{}", rng.pick(ODD_CHARS), rest))
        }
        2 => ("trailing-data", format!("{text}{}", rng.pick(&["x", "probe", "probes", "{}", " ", "1", "\u{1e}"]))),
        3 => {
            let b64 = *rng.pick(&["AQID", "AQIDBA==", "AQIDBA", "AQ=ID", "A Q I D", "-_-_", "!!", "", "=", "AQ\nID"]);
            ("base64-text-frame", format!("b{b64}"))
        }
        4 => ("empty", String::new()),
        5 => ("unicode", insert_pick(rng, text, &["é", "😀", "\u{feff}", "\u{2028}", "\u{fffd}"])),
        _ => ("odd-char", insert_pick(rng, text, ODD_CHARS)),
    }
}

/// Mutates a v3 polling payload (text, or binary when `binary`). Returns the label and the new bytes.
pub(crate) fn eio3_payload(rng: &mut Rng, body: &[u8], binary: bool) -> (&'static str, Vec<u8>) {
    let mut b = body.to_vec();
    let at = rng.below(b.len() + 1);
    if binary {
        return match rng.below(7) {
            0 => ("truncate-bytes", b[..at].to_vec()),
            1 => {
                // A length digit changed, or one that is not a digit.
                if let Some(i) = b.iter().position(|&x| x == 0xff).filter(|&i| i > 1) {
                    b[1 + rng.below(i - 1)] = *rng.pick(&[0, 1, 9, 10, 12, 200]);
                }
                ("length-digit", b)
            }
            2 => {
                b.retain(|&x| x != 0xff || rng.chance(0.5));
                ("length-end", b)
            }
            3 => {
                let entry: &[u8] = rng.pick::<&[u8]>(&[
                    &[0, 1, 0xff, b'2'][..],
                    &[1, 1, 0xff, 2],
                    &[1, 0, 0xff],
                    &[0, 0, 0xff],
                    &[1, 2, 0xff, 9, 1],
                    &[0, 2, 0xff, 0xc3, 0x28],
                    &[0, 3, 0xff, b'1', b'x', b'y'],
                    &[2, 1, 0xff, 4],
                    &[0, 6, 0xff, b'b', b'4', b'A', b'Q', b'=', b'='],
                ]);
                b.extend_from_slice(entry);
                ("entry", b)
            }
            4 => {
                if !b.is_empty() {
                    let i = rng.below(b.len());
                    b[i] ^= 1 << rng.below(8);
                }
                ("bit-flip", b)
            }
            5 => ("empty", Vec::new()),
            _ => {
                b.insert(at, *rng.pick(&[0, 1, 0xff, 4, b':']));
                ("odd-byte", b)
            }
        };
    }
    let text = String::from_utf8_lossy(body).into_owned();
    match rng.below(8) {
        0 => ("truncate-bytes", b[..at].to_vec()),
        1 => {
            let entry = *rng.pick(&[
                "1:2", "0:", "2:2probe", ":", "1:", "01:2", " 1:2", "1e0:2", "x:2", "2:b1", "3:b4!", "5:b2AQ=",
                "4:b4AQ", "3:1xy", "99:4",
            ]);
            ("entry", format!("{text}{entry}").into_bytes())
        }
        2 => {
            // A length off by one either way.
            let s = text.replacen(|c: char| c.is_ascii_digit(), rng.pick::<&str>(&["0", "1", "9", "10"]), 1);
            ("length", s.into_bytes())
        }
        3 => {
            b.insert(at, *rng.pick(&[0xff, 0xc3, 0x80, 0xed]));
            ("invalid-utf8", b)
        }
        4 => ("empty", Vec::new()),
        5 => ("unicode", insert_pick(rng, &text, &["é", "😀", "\u{feff}", "\u{2028}"]).into_bytes()),
        _ => ("odd-char", insert_pick(rng, &text, ODD_CHARS).into_bytes()),
    }
}

/// Mutates a polling payload body. Returns the label and the new bytes.
pub(crate) fn eio_payload(rng: &mut Rng, body: &[u8]) -> (&'static str, Vec<u8>) {
    let text = String::from_utf8_lossy(body).into_owned();
    let entry_starts: Vec<usize> =
        std::iter::once(0).chain(text.char_indices().filter(|&(_, c)| c == '\u{1e}').map(|(i, _)| i + 1)).collect();
    match rng.below(9) {
        0 => {
            let cut = rng.below(body.len() + 1);
            ("truncate-bytes", body[..cut].to_vec())
        }
        1 => {
            let sep = *rng.pick(&["\u{1e}\u{1e}", "\u{1e}"]);
            let at = *rng.pick(&entry_starts);
            let s =
                if rng.chance(0.5) { format!("{text}{sep}") } else { format!("{}{sep}{}", &text[..at], &text[at..]) };
            ("separators", s.into_bytes())
        }
        2 => {
            let at = *rng.pick(&entry_starts);
            let rest = text[at..].char_indices().nth(1).map_or(text.len(), |(i, _)| at + i);
            let s = format!("{}{}{}", &text[..at], rng.pick(ODD_CHARS), &text[rest..]);
            ("entry-type-digit", s.into_bytes())
        }
        3 => {
            // Break the base64 of a binary entry (or make one up).
            let entry =
                *rng.pick(&["bAQID", "bAQIDBA", "bAQIDBA=", "bAQ!D", "bA QID", "b-_-_", "bAQ==ID", "b===", "bAQI\nD"]);
            let at = *rng.pick(&entry_starts);
            let s = if at == 0 {
                format!("{entry}\u{1e}{text}")
            } else {
                format!("{}{entry}\u{1e}{}", &text[..at], &text[at..])
            };
            ("base64-entry", s.into_bytes())
        }
        4 => {
            let mut b = body.to_vec();
            let at = rng.below(b.len() + 1);
            b.insert(at, *rng.pick(&[0xff, 0xc3, 0x80, 0xed]));
            ("invalid-utf8", b)
        }
        5 => {
            let entry = *rng.pick(&["1x", "2probes", "3 ", "5upgrade", "6noop", "0", "4", "1", "2probe"]);
            ("control-with-data", format!("{text}\u{1e}{entry}").into_bytes())
        }
        6 => ("empty", Vec::new()),
        7 => ("unicode", insert_pick(rng, &text, &["é", "😀", "\u{feff}", "\u{2028}"]).into_bytes()),
        _ => ("odd-char", insert_pick(rng, &text, ODD_CHARS).into_bytes()),
    }
}

// ------------------------------------------------------------------ Socket.IO text

/// The parts of an encoded text packet, split as the format defines them.
struct Parts {
    digit: String,
    attachments: Option<String>,
    nsp: Option<String>,
    id: String,
    json: String,
}

fn split(text: &str) -> Parts {
    let mut rest = text;
    let digit = rest.chars().next().map(String::from).unwrap_or_default();
    rest = &rest[digit.len()..];
    let mut attachments = None;
    if (digit == "5" || digit == "6")
        && let Some(i) = rest.find('-')
    {
        attachments = Some(rest[..i].to_owned());
        rest = &rest[i + 1..];
    }
    let mut nsp = None;
    if rest.starts_with('/') {
        let end = rest.find(',').unwrap_or(rest.len());
        nsp = Some(rest[..end].to_owned());
        rest = rest.get(end + 1..).unwrap_or("");
    }
    let id_len = rest.bytes().take_while(u8::is_ascii_digit).count();
    let id = rest[..id_len].to_owned();
    Parts { digit, attachments, nsp, id, json: rest[id_len..].to_owned() }
}

impl Parts {
    fn join(&self) -> String {
        let mut s = self.digit.clone();
        if let Some(a) = &self.attachments {
            s.push_str(a);
            s.push('-');
        }
        if let Some(n) = &self.nsp {
            s.push_str(n);
            s.push(',');
        }
        s.push_str(&self.id);
        s.push_str(&self.json);
        s
    }
}

const BAD_JSON: &[&str] = &[
    "undefined",
    "NaN",
    "'a'",
    "[1,]",
    "{\"a\":1,}",
    "1e400",
    "[\"a\",1e400]",
    "-0",
    "[\"a\",01]",
    "[\"a\"]]",
    "[\"a\"",
    "[\"a\",-]",
    "[\"a\",.5]",
    "[\"a\",\"\\x41\"]",
    "[\"a\",\"\t\"]",
    "[\"a\" ,\n1 ]",
    " [\"a\"]",
    "[\"a\"] ",
    "\u{feff}[\"a\"]",
    "[\"a\",\"\\u00\"]",
    "{\"__proto__\":{\"x\":1}}",
    "[\"__proto__\"]",
    "[\"a\",{\"__proto__\":1}]",
    "[true, false, null]",
];

const DATA_SHAPES: &[&str] = &[
    "[]",
    "{}",
    "[\"connect\"]",
    "[\"disconnect\",1]",
    "[\"newListener\"]",
    "[1]",
    "[1.5]",
    "[-1]",
    "[null]",
    "[{}]",
    "[[]]",
    "[true]",
    "\"str\"",
    "null",
    "true",
    "1",
    "[\"a\",{\"a\":1,\"a\":2}]",
    "{\"a\":1,\"a\":2}",
    "{\"b\":1,\"1\":2}",
    "[\"a\",{\"_placeholder\":true,\"num\":0}]",
    "[\"a\",{\"_placeholder\":true}]",
    "{\"message\":\"x\",\"data\":[1]}",
    "[\"a\",123456789012345678901234567890]",
    "[\"a\",9007199254740993]",
    "[\"a\",1.0]",
    "[\"a\",1E2,1e-7,-0.0]",
];

const NAMESPACES: &[&str] = &["/a,b", "/", "", "admin", "/é", "/ ", "/😀", "/a/b", ",", "/,", "//", "/a b", "/1"];

const ACK_IDS: &[&str] = &[
    "9007199254740993",
    "9007199254740992",
    "18446744073709551615",
    "18446744073709551616",
    "99999999999999999999999999999",
    "007",
    " 1",
    "1 2",
    "0",
    "-1",
    "1.5",
    "1e3",
    "\t3",
    "\u{0663}",
];

const ATTACHMENT_COUNTS: &[&str] =
    &["0", "11", "10", "99999999999999999999", "1e0", " 1", "+1", "01", "", "x", "-1", "1.0", "0x1", "١"];

const PLACEHOLDER_NUMS: &[&str] = &["0.5", "\"0\"", "-1", "1e400", "99", "1.0", "true", "null", "0,\"x\":1", "1e-400"];

const STRING_INJECTIONS: &[&str] = &[
    "\\ud800",
    "\\udc00",
    "\\ud83d\\ude00",
    "\u{2028}",
    "\\u0000",
    "\u{feff}",
    "\\/",
    "é",
    "\\u00e9",
    "\\uD800\\uDC00",
];

fn deep(depth: usize) -> String {
    format!("[\"a\",{}{}]", "[".repeat(depth), "]".repeat(depth))
}

/// Mutates the messages of an encoded Socket.IO packet (text part first, then its attachments).
/// Returns the label and the new message sequence (blobs).
pub(crate) fn sio_messages(rng: &mut Rng, text: &str, attachments: &[Vec<u8>]) -> (&'static str, Vec<Json>) {
    use crate::ours::{blob_bin, blob_text};
    let mut parts = split(text);
    let mut bins: Vec<Vec<u8>> = attachments.to_vec();
    let label = match rng.below(16) {
        0 => {
            let t = truncate_str(rng, text);
            return ("truncate", std::iter::once(blob_text(&t)).chain(bins.iter().map(|b| blob_bin(b))).collect());
        }
        1 => {
            parts.digit = (*rng.pick(ODD_CHARS)).to_owned();
            "type-digit"
        }
        2 => {
            if parts.json.is_empty() {
                parts.json = (*rng.pick(BAD_JSON)).to_owned();
            } else {
                parts.json =
                    insert_pick(rng, &parts.json, &["{", "}", "[", "]", ",", ":", "\"", "\\", "x", " ", "\u{0}"]);
            }
            "bad-json"
        }
        3 => {
            parts.json = (*rng.pick(BAD_JSON)).to_owned();
            "odd-json"
        }
        4 => {
            if parts.attachments.is_some() {
                parts.attachments = Some((*rng.pick(ATTACHMENT_COUNTS)).to_owned());
            } else {
                // A non-binary packet made binary, with a count of 1 and no placeholder.
                parts.digit = (*rng.pick(&["5", "6"])).to_owned();
                parts.attachments = Some((*rng.pick(&["1", "0", "2"])).to_owned());
                bins.push(vec![1, 2, 3]);
            }
            "attachment-count"
        }
        5 => {
            // Lie about the attachments by sending more or fewer than announced.
            if rng.chance(0.5) {
                bins.pop();
            } else {
                bins.push(vec![9]);
            }
            "attachment-messages"
        }
        6 => {
            parts.nsp = Some((*rng.pick(NAMESPACES)).to_owned());
            if parts.nsp.as_deref() == Some("") || rng.chance(0.2) {
                // A namespace with no comma after it.
                let n = parts.nsp.take().unwrap_or_default();
                parts.id = format!("{n}{}", parts.id);
            }
            "namespace"
        }
        7 => {
            if let Some(n) = parts.nsp.take() {
                parts.id = format!("{n}{}", parts.id); // the comma is gone
            } else {
                parts.nsp = Some("/x".into());
                parts.id = format!("/y{}", parts.id);
            }
            "namespace-comma"
        }
        8 => {
            parts.id = (*rng.pick(ACK_IDS)).to_owned();
            "ack-id"
        }
        9 => {
            let inj = *rng.pick(STRING_INJECTIONS);
            match parts.json.find('"') {
                Some(i) => parts.json.insert_str(i + 1, inj),
                None => parts.json = format!("[\"{inj}\"]"),
            }
            "unicode-string"
        }
        10 => {
            parts.json = (*rng.pick(DATA_SHAPES)).to_owned();
            "data-shape"
        }
        11 => {
            parts.json = deep(*rng.pick(&[100, 126, 127, 128, 200, 1000]));
            "deep-nesting"
        }
        12 => {
            let num = *rng.pick(PLACEHOLDER_NUMS);
            if parts.json.contains("\"_placeholder\":true,\"num\":") {
                let at = parts.json.find("\"num\":").unwrap_or(0) + 6;
                let end = parts.json[at..].find('}').map_or(parts.json.len(), |e| at + e);
                parts.json.replace_range(at..end, num);
            } else {
                parts.json = format!("[\"a\",{{\"_placeholder\":true,\"num\":{num}}}]");
            }
            if rng.chance(0.3) {
                parts.json = parts.json.replacen("\"_placeholder\":true", "\"_placeholder\":true,\"extra\":1", 1);
            }
            "placeholder"
        }
        13 => {
            let seq: Vec<Json> = match rng.below(4) {
                0 => std::iter::once(blob_bin(&[1])).chain(std::iter::once(blob_text(text))).collect(),
                1 => vec![blob_text(text), blob_text(text)],
                2 => std::iter::once(blob_text(text))
                    .chain(bins.iter().map(|b| blob_bin(b)))
                    .chain([blob_bin(&[7])])
                    .collect(),
                _ => std::iter::once(blob_text(text)).chain([blob_text("2[\"after\"]")]).collect(),
            };
            return ("sequence", seq);
        }
        14 => {
            let t = *rng.pick(&[
                "",
                " ",
                "\t",
                "\n2[\"a\"]",
                " 2[\"a\"]",
                "2",
                "3",
                "4",
                "21",
                "31",
                "5",
                "51-",
                "0/",
                "0/a,",
            ]);
            return ("short", vec![blob_text(t)]);
        }
        _ => {
            let t = insert_pick(rng, text, ODD_CHARS);
            return ("odd-char", std::iter::once(blob_text(&t)).chain(bins.iter().map(|b| blob_bin(b))).collect());
        }
    };
    let joined = parts.join();
    (label, std::iter::once(blob_text(&joined)).chain(bins.iter().map(|b| blob_bin(b))).collect())
}

// ------------------------------------------------------------------ msgpack

/// A msgpack value to write, including encodings a generic serializer would not choose.
#[derive(Debug, Clone)]
pub(crate) enum Mp {
    /// nil
    Nil,
    /// true / false
    Bool(bool),
    /// An unsigned integer (smallest encoding).
    U(u64),
    /// A signed integer (smallest encoding).
    I(i64),
    /// float 64
    F64(f64),
    /// float 32
    F32(f32),
    /// A string, written as given (may be invalid UTF-8).
    Str(Vec<u8>),
    /// bin
    Bin(Vec<u8>),
    /// An array.
    Arr(Vec<Mp>),
    /// A map, entries in order (duplicates allowed).
    Map(Vec<(Mp, Mp)>),
    /// An extension, with the fixext form when its length allows.
    Ext(i8, Vec<u8>),
    /// An extension always in the ext 8 form.
    Ext8(i8, Vec<u8>),
}

/// A string value.
pub(crate) fn s(x: &str) -> Mp {
    Mp::Str(x.as_bytes().to_vec())
}

impl Mp {
    /// The msgpack encoding.
    pub(crate) fn write(&self, out: &mut Vec<u8>) {
        match self {
            Mp::Nil => out.push(0xc0),
            Mp::Bool(b) => out.push(if *b { 0xc3 } else { 0xc2 }),
            Mp::U(v) => write_uint(*v, out),
            Mp::I(v) if *v >= 0 => write_uint(*v as u64, out),
            Mp::I(v) => {
                let v = *v;
                if v >= -32 {
                    out.push(v as u8);
                } else if v >= i8::MIN as i64 {
                    out.extend([0xd0, v as u8]);
                } else if v >= i16::MIN as i64 {
                    out.push(0xd1);
                    out.extend((v as i16).to_be_bytes());
                } else if v >= i32::MIN as i64 {
                    out.push(0xd2);
                    out.extend((v as i32).to_be_bytes());
                } else {
                    out.push(0xd3);
                    out.extend(v.to_be_bytes());
                }
            }
            Mp::F64(f) => {
                out.push(0xcb);
                out.extend(f.to_be_bytes());
            }
            Mp::F32(f) => {
                out.push(0xca);
                out.extend(f.to_be_bytes());
            }
            Mp::Str(b) => {
                let n = b.len();
                if n < 32 {
                    out.push(0xa0 | n as u8);
                } else if n < 256 {
                    out.extend([0xd9, n as u8]);
                } else {
                    out.push(0xda);
                    out.extend((n as u16).to_be_bytes());
                }
                out.extend(b);
            }
            Mp::Bin(b) => {
                let n = b.len();
                if n < 256 {
                    out.extend([0xc4, n as u8]);
                } else {
                    out.push(0xc5);
                    out.extend((n as u16).to_be_bytes());
                }
                out.extend(b);
            }
            Mp::Arr(a) => {
                if a.len() < 16 {
                    out.push(0x90 | a.len() as u8);
                } else {
                    out.push(0xdc);
                    out.extend((a.len() as u16).to_be_bytes());
                }
                for v in a {
                    v.write(out);
                }
            }
            Mp::Map(m) => {
                if m.len() < 16 {
                    out.push(0x80 | m.len() as u8);
                } else {
                    out.push(0xde);
                    out.extend((m.len() as u16).to_be_bytes());
                }
                for (k, v) in m {
                    k.write(out);
                    v.write(out);
                }
            }
            Mp::Ext(t, d) => {
                let marker = match d.len() {
                    1 => Some(0xd4),
                    2 => Some(0xd5),
                    4 => Some(0xd6),
                    8 => Some(0xd7),
                    16 => Some(0xd8),
                    _ => None,
                };
                match marker {
                    Some(m) => out.extend([m, *t as u8]),
                    None => out.extend([0xc7, d.len() as u8, *t as u8]),
                }
                out.extend(d);
            }
            Mp::Ext8(t, d) => {
                out.extend([0xc7, d.len() as u8, *t as u8]);
                out.extend(d);
            }
        }
    }

    /// The encoding as a new vector.
    pub(crate) fn bytes(&self) -> Vec<u8> {
        let mut v = Vec::new();
        self.write(&mut v);
        v
    }
}

fn write_uint(v: u64, out: &mut Vec<u8>) {
    if v < 128 {
        out.push(v as u8);
    } else if v < 256 {
        out.extend([0xcc, v as u8]);
    } else if v < 65536 {
        out.push(0xcd);
        out.extend((v as u16).to_be_bytes());
    } else if v < 1 << 32 {
        out.push(0xce);
        out.extend((v as u32).to_be_bytes());
    } else {
        out.push(0xcf);
        out.extend(v.to_be_bytes());
    }
}

/// Harness JSON data as msgpack.
pub(crate) fn mp_of_json(j: &Json) -> Mp {
    match j {
        Json::Null => Mp::Nil,
        Json::Bool(b) => Mp::Bool(*b),
        Json::Number(n) => {
            if let Some(u) = n.as_u64() {
                Mp::U(u)
            } else if let Some(i) = n.as_i64() {
                Mp::I(i)
            } else {
                Mp::F64(n.as_f64().unwrap_or(0.0))
            }
        }
        Json::String(x) => s(x),
        Json::Array(a) => Mp::Arr(a.iter().map(mp_of_json).collect()),
        Json::Object(o) => {
            if o.len() == 1
                && let Some(Json::String(b)) = o.get("$bin")
            {
                return Mp::Bin(crate::ours::unbase64(b));
            }
            Mp::Map(o.iter().map(|(k, v)| (s(k), mp_of_json(v))).collect())
        }
    }
}

/// Mutates a msgpack packet: byte-level damage to our encoding of `packet`, or a packet map rebuilt with
/// one field given an odd value or encoding. Returns the label and the bytes.
pub(crate) fn msgpack(rng: &mut Rng, encoded: &[u8], packet: &Json) -> (&'static str, Vec<u8>) {
    let ty = Mp::U(packet["type"].as_u64().unwrap_or(2));
    let nsp = s(packet["nsp"].as_str().unwrap_or("/"));
    let data = packet.get("data").map(mp_of_json);
    let id = packet.get("id").and_then(Json::as_u64).map(Mp::U);
    let build = |ty: Option<Mp>, data: Option<Mp>, nsp: Option<Mp>, id: Option<Mp>| {
        let mut m = Vec::new();
        if let Some(t) = ty {
            m.push((s("type"), t));
        }
        if let Some(d) = data {
            m.push((s("data"), d));
        }
        if let Some(n) = nsp {
            m.push((s("nsp"), n));
        }
        if let Some(i) = id {
            m.push((s("id"), i));
        }
        Mp::Map(m).bytes()
    };
    let event = |args: Vec<Mp>| Some(Mp::Arr(std::iter::once(s("ev")).chain(args).collect()));
    match rng.below(12) {
        0 => {
            let cut = rng.below(encoded.len());
            ("truncate", encoded[..cut].to_vec())
        }
        1 => {
            let mut b = encoded.to_vec();
            let at = rng.below(b.len());
            b[at] ^= 1 << rng.below(8);
            ("bit-flip", b)
        }
        2 => {
            let mut b = encoded.to_vec();
            b.extend(*rng.pick(&[&[0xc0][..], &[0x00], &[0x81, 0xa1, 0x61, 0x01], &[0xc1]]));
            ("trailing-bytes", b)
        }
        3 => {
            let t = rng
                .pick(&[Mp::F64(2.0), Mp::U(5), Mp::U(6), Mp::I(-1), s("2"), Mp::Nil, Mp::F64(2.5), Mp::U(256)])
                .clone();
            let t = if rng.chance(0.15) { None } else { Some(t) };
            ("type-field", build(t, event(vec![]), Some(nsp), id))
        }
        4 => {
            let n = rng
                .pick(&[Mp::Nil, Mp::U(1), Mp::Bin(b"/".to_vec()), s(""), s("/a,b"), Mp::Str(vec![b'/', 0xff])])
                .clone();
            let n = if rng.chance(0.15) { None } else { Some(n) };
            ("nsp-field", build(Some(ty), data, n, id))
        }
        5 => {
            let i = rng
                .pick(&[
                    Mp::Nil,
                    Mp::I(-1),
                    Mp::F64(1.0),
                    Mp::F64(1.5),
                    Mp::U((1 << 53) + 1),
                    Mp::U(u64::MAX),
                    s("1"),
                    Mp::F32(3.0),
                    Mp::I(i64::MIN),
                    Mp::Ext(0, vec![0]),
                ])
                .clone();
            ("id-field", build(Some(Mp::U(2)), event(vec![]), Some(nsp), Some(i)))
        }
        6 => {
            let d = rng
                .pick(&[
                    Some(Mp::Nil),
                    Some(Mp::Ext(0, vec![0])),
                    None,
                    Some(Mp::Arr(vec![])),
                    Some(Mp::Arr(vec![s("connect")])),
                    Some(Mp::Map(vec![])),
                    Some(Mp::Arr(vec![Mp::U(1)])),
                    Some(Mp::Arr(vec![Mp::Map(vec![])])),
                    Some(s("str")),
                ])
                .clone();
            let t = *rng.pick(&[0u64, 1, 2, 3, 4]);
            ("data-field", build(Some(Mp::U(t)), d, Some(nsp), None))
        }
        7 => {
            let ms: u64 = 1_795_000_000_188;
            let ts64 = ((188_000_000u64) << 34) | 1_795_000_000;
            let v = rng
                .pick(&[
                    Mp::Ext(0, ms.to_be_bytes().to_vec()),
                    Mp::Ext(-1, ts64.to_be_bytes().to_vec()),
                    Mp::Ext(-1, 1_795_000_000u32.to_be_bytes().to_vec()),
                    Mp::Ext(5, vec![1, 2]),
                    Mp::Ext8(0, vec![1, 2, 3]),
                    Mp::Ext8(0, vec![]),
                    Mp::Ext(0, vec![7]),
                    Mp::Ext(0, vec![1, 2, 3, 4]),
                    Mp::Ext(-1, vec![0; 12]),
                ])
                .clone();
            ("extension", build(Some(Mp::U(2)), event(vec![v]), Some(nsp), None))
        }
        8 => {
            let v = rng
                .pick(&[
                    Mp::Map(vec![(Mp::U(1), Mp::U(2))]),
                    Mp::Map(vec![(Mp::F64(1.5), Mp::U(2))]),
                    Mp::Map(vec![(Mp::Nil, Mp::U(2))]),
                    Mp::Map(vec![(Mp::Bin(b"k".to_vec()), Mp::U(2))]),
                    Mp::Map(vec![(Mp::Bool(true), Mp::U(2))]),
                    Mp::Map(vec![(s("a"), Mp::U(1)), (s("a"), Mp::U(2))]),
                    Mp::Map(vec![(s("b"), Mp::U(1)), (s("1"), Mp::U(2))]),
                    Mp::Map(vec![(s("__proto__"), Mp::Map(vec![(s("x"), Mp::U(1))])), (s("y"), Mp::U(2))]),
                    Mp::Str(vec![0xff, 0xfe]),
                    Mp::F64(f64::NAN),
                    Mp::F64(f64::INFINITY),
                    Mp::F32(0.1),
                    Mp::F64(-0.0),
                    Mp::I(i64::MIN),
                    Mp::U(u64::MAX),
                ])
                .clone();
            ("data-values", build(Some(Mp::U(2)), event(vec![v]), Some(nsp), None))
        }
        9 => {
            let shape = rng.below(4);
            let b = match shape {
                0 => Mp::Arr(vec![Mp::U(2), Mp::Arr(vec![s("ev")]), s("/")]).bytes(),
                1 => Mp::Map(vec![(s("type"), Mp::U(2)), (s("type"), Mp::U(0)), (s("nsp"), s("/"))]).bytes(),
                2 => Mp::Map(vec![(s("type"), Mp::U(0)), (s("nsp"), s("/")), (s("extra"), Mp::U(1))]).bytes(),
                _ => Mp::Map(vec![(s("type"), Mp::U(0)), (s("nsp"), s("/")), (s("nsp"), s("/x"))]).bytes(),
            };
            ("packet-shape", b)
        }
        10 => ("empty", Vec::new()),
        _ => {
            let mut b = encoded.to_vec();
            let at = rng.below(b.len() + 1);
            b.insert(at, *rng.pick(&[0xc1, 0xd4, 0xc7, 0xdf, 0x00, 0xff]));
            ("byte-insert", b)
        }
    }
}
