//! `conformance`: runs our Engine.IO and Socket.IO codecs and the reference npm parsers
//! (`engine.io-parser`, `socket.io-parser`, `socket.io-msgpack-parser`, through `e2e/conformance/harness.mjs`)
//! on the same inputs, and reports every divergence: accepted or rejected, the decoded structure, and the
//! exact bytes of encodings.
//!
//! ```text
//! conformance [--cases N] [--seed S] [--max-print N]
//! ```
//!
//! Inputs come from three sources: generated valid packets (round trips: each side encodes, the other
//! decodes, and both encodings must be identical), mutations of valid frames, and the fuzz corpora in
//! `fuzz/corpus/`. Each divergence is classified as known (an entry of `CONFORMANCE.md`, mirrored in
//! `known.rs`) or unknown; the exit code is 1 when any is unknown, so the run can gate CI.
//!
//! A second family, `websocket.rs`, runs as many generated WebSocket byte streams through our framing
//! decoder, `ws`'s Receiver (`e2e/conformance/ws-harness.mjs`) and tungstenite.

mod compare;
mod corpus;
mod generate;
mod harness;
mod known;
mod mutate;
mod ours;
mod websocket;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use proptest::test_runner::{Config, RngAlgorithm, TestRng, TestRunner};
use serde_json::{Value as Json, json};

use crate::compare::{differ, json_eq};
use crate::generate::draw;
use crate::mutate::Rng;

/// Where a case comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Source {
    /// Generated valid packets, round-tripped.
    Generated,
    /// Mutations of valid frames.
    Mutated,
    /// Files of the fuzz corpora.
    Corpus,
}

impl Source {
    fn name(self) -> &'static str {
        match self {
            Source::Generated => "generated",
            Source::Mutated => "mutated",
            Source::Corpus => "corpus",
        }
    }
}

/// What a check compares.
enum Expect {
    /// Our result for the same request against the reference's.
    Same,
    /// As `Same`, and the reference's result must also be this one (it decodes our encoding of a known
    /// packet).
    SameAnd(Json),
    /// An encoding: exact equality with ours, and our decoder given the reference's encoding must give this.
    Encode(Json),
}

struct Check {
    request: Json,
    expect: Expect,
}

/// One input and the checks made on it.
struct Case {
    source: Source,
    family: &'static str,
    label: String,
    checks: Vec<Check>,
}

/// A divergence between our codec and the reference.
pub(crate) struct Divergence {
    /// Where the case came from.
    pub(crate) source: Source,
    /// The codec family and the generator, mutation or corpus file.
    pub(crate) family: &'static str,
    /// The mutation name, generator name or corpus file.
    pub(crate) label: String,
    /// `op aspect`, e.g. `sio.decode accept`.
    pub(crate) category: String,
    /// The harness request (the input).
    pub(crate) request: Json,
    /// Our result (or, for a round trip, what was expected).
    pub(crate) ours: Json,
    /// The reference's result.
    pub(crate) theirs: Json,
    /// The id of the known divergence it matches, if any.
    pub(crate) known: Option<&'static str>,
}

struct Options {
    cases: usize,
    seed: u64,
    max_print: usize,
    /// A file of harness requests (JSON lines, with their `op`) to run on both sides instead of the sources.
    input: Option<PathBuf>,
}

fn parse_args() -> Result<Options, String> {
    let mut o = Options { cases: 2000, seed: 1, max_print: 20, input: None };
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        let mut value = |name: &str| args.next().ok_or(format!("{name} needs a value"));
        match a.as_str() {
            "--cases" => o.cases = value("--cases")?.parse().map_err(|e| format!("--cases: {e}"))?,
            "--seed" => o.seed = value("--seed")?.parse().map_err(|e| format!("--seed: {e}"))?,
            "--max-print" => o.max_print = value("--max-print")?.parse().map_err(|e| format!("--max-print: {e}"))?,
            "--input" => o.input = Some(PathBuf::from(value("--input")?)),
            "-h" | "--help" => {
                println!("usage: conformance [--cases N (2000)] [--seed S (1)] [--max-print N (20)] [--input FILE]");
                println!("  --input FILE: run the harness requests in FILE (JSON lines, e.g. an input printed by a");
                println!("  run plus its \"op\") on both sides and print both results and the classification");
                std::process::exit(0);
            }
            _ => return Err(format!("unknown argument {a}")),
        }
    }
    Ok(o)
}

fn workspace_root() -> PathBuf {
    // The crate is e2e/conformance in the workspace.
    let here = Path::new(env!("CARGO_MANIFEST_DIR"));
    here.parent().and_then(Path::parent).expect("the crate is in the workspace").to_path_buf()
}

// ------------------------------------------------------------------ cases

fn b64(b: &[u8]) -> String {
    STANDARD.encode(b)
}

/// Binary in CONNECT / CONNECT_ERROR data, as the default parser writes it (`Buffer.toJSON()`).
fn inline_binary(v: &Json) -> Json {
    match v {
        Json::Array(a) => Json::Array(a.iter().map(inline_binary).collect()),
        Json::Object(o) => {
            if o.len() == 1
                && let Some(Json::String(b)) = o.get("$bin")
            {
                return json!({ "type": "Buffer", "data": ours::unbase64(b) });
            }
            Json::Object(o.iter().map(|(k, v)| (k.clone(), inline_binary(v))).collect())
        }
        _ => v.clone(),
    }
}

fn generated(runner: &mut TestRunner, rng: &mut Rng) -> Case {
    let (family, checks) = match rng.below(12) {
        0..=1 => {
            let p = draw(runner, &generate::eio_packet(false));
            let enc = json!({ "op": "eio.encodePacket", "packet": p, "supportsBinary": true });
            let ours = ours::run(&enc);
            let dec = json!({ "op": "eio.decodePacket", "input": ours["encoded"] });
            let expected = json!({ "accepted": true, "packet": p });
            (
                "eio.packet",
                vec![
                    Check { request: enc, expect: Expect::Encode(expected.clone()) },
                    Check { request: dec, expect: Expect::SameAnd(expected) },
                ],
            )
        }
        2..=3 => {
            let ps = draw(runner, &generate::eio_payload());
            let enc = json!({ "op": "eio.encodePayload", "packets": ps });
            let ours = ours::run(&enc);
            let body = ours["encoded"]["text"].as_str().unwrap_or("").as_bytes().to_vec();
            let dec = json!({ "op": "eio.decodePayload", "input": b64(&body) });
            let expected = json!({ "accepted": true, "packets": ps });
            (
                "eio.payload",
                vec![
                    Check { request: enc, expect: Expect::Encode(expected.clone()) },
                    Check { request: dec, expect: Expect::SameAnd(expected) },
                ],
            )
        }
        10..=11 => {
            let ps = draw(runner, &generate::eio_payload());
            let supports_binary = rng.chance(0.5);
            let enc = json!({ "op": "eio3.encodePayload", "packets": ps, "supportsBinary": supports_binary });
            let ours = ours::run(&enc);
            let (body, binary) = match ours["encoded"].get("bin").and_then(Json::as_str) {
                Some(bin) => (ours::unbase64(bin), true),
                None => (ours["encoded"]["text"].as_str().unwrap_or("").as_bytes().to_vec(), false),
            };
            let dec = json!({ "op": "eio3.decodePayload", "input": b64(&body), "binary": binary });
            let expected = json!({ "accepted": true, "packets": ps });
            (
                "eio3.payload",
                vec![
                    Check { request: enc, expect: Expect::Encode(expected.clone()) },
                    Check { request: dec, expect: Expect::SameAnd(expected) },
                ],
            )
        }
        4..=7 => {
            let p = draw(runner, &generate::sio_packet(true));
            let enc = json!({ "op": "sio.encode", "packet": p });
            let ours = ours::run(&enc);
            let dec = json!({ "op": "sio.decode", "messages": ours["messages"] });
            let mut want = p.clone();
            if matches!(p["type"].as_u64(), Some(0 | 4))
                && let Some(d) = p.get("data")
            {
                want["data"] = inline_binary(d);
            }
            let expected = json!({ "accepted": true, "packets": [want], "pending": false });
            (
                "sio.json",
                vec![
                    Check { request: enc, expect: Expect::Encode(expected.clone()) },
                    Check { request: dec, expect: Expect::SameAnd(expected) },
                ],
            )
        }
        _ => {
            let p = draw(runner, &generate::sio_packet(true));
            let enc = json!({ "op": "msgpack.encode", "packet": p });
            let ours = ours::run(&enc);
            let dec = json!({ "op": "msgpack.decode", "input": ours["encoded"] });
            let expected = json!({ "accepted": true, "packet": p });
            (
                "sio.msgpack",
                vec![
                    Check { request: enc, expect: Expect::Encode(expected.clone()) },
                    Check { request: dec, expect: Expect::SameAnd(expected) },
                ],
            )
        }
    };
    Case { source: Source::Generated, family, label: "round-trip".into(), checks }
}

fn mutated(runner: &mut TestRunner, rng: &mut Rng) -> Case {
    let (family, label, request) = match rng.below(12) {
        0..=1 => {
            let p = draw(runner, &generate::eio_packet(false));
            let enc = ours::run(&json!({ "op": "eio.encodePacket", "packet": p, "supportsBinary": true }));
            // A binary frame has no text: mutate its polling form `b<base64>` now and then, else a message.
            let text = match enc["encoded"].get("text").and_then(Json::as_str) {
                Some(t) => t.to_owned(),
                None if rng.chance(0.3) => format!("b{}", enc["encoded"]["bin"].as_str().unwrap_or("")),
                None => format!("4{}", enc["encoded"]["bin"].as_str().unwrap_or("")),
            };
            let (label, t) = mutate::eio_text(rng, &text);
            ("eio.packet", label, json!({ "op": "eio.decodePacket", "input": { "text": t } }))
        }
        2..=3 => {
            let ps = draw(runner, &generate::eio_payload());
            let enc = ours::run(&json!({ "op": "eio.encodePayload", "packets": ps }));
            let body = enc["encoded"]["text"].as_str().unwrap_or("").as_bytes().to_vec();
            let (label, b) = mutate::eio_payload(rng, &body);
            ("eio.payload", label, json!({ "op": "eio.decodePayload", "input": b64(&b) }))
        }
        10..=11 => {
            let ps = draw(runner, &generate::eio_payload());
            let binary = rng.chance(0.5);
            let enc = ours::run(&json!({ "op": "eio3.encodePayload", "packets": ps, "supportsBinary": binary }));
            let body = match enc["encoded"].get("bin").and_then(Json::as_str) {
                Some(bin) => ours::unbase64(bin),
                None => enc["encoded"]["text"].as_str().unwrap_or("").as_bytes().to_vec(),
            };
            // A text payload mutated as binary (and the reverse) now and then: what a wrong content type does.
            let read_as = if rng.chance(0.1) { !binary } else { binary };
            let (label, b) = mutate::eio3_payload(rng, &body, read_as);
            ("eio3.payload", label, json!({ "op": "eio3.decodePayload", "input": b64(&b), "binary": read_as }))
        }
        4..=7 => {
            let p = draw(runner, &generate::sio_packet(false));
            let enc = ours::run(&json!({ "op": "sio.encode", "packet": p }));
            let msgs = enc["messages"].as_array().cloned().unwrap_or_default();
            let text = msgs.first().and_then(|m| m["text"].as_str()).unwrap_or("").to_owned();
            let bins: Vec<Vec<u8>> =
                msgs.iter().skip(1).map(|m| ours::unbase64(m["bin"].as_str().unwrap_or(""))).collect();
            let (label, messages) = mutate::sio_messages(rng, &text, &bins);
            ("sio.json", label, json!({ "op": "sio.decode", "messages": messages }))
        }
        _ => {
            let p = draw(runner, &generate::sio_packet(true));
            let enc = ours::run(&json!({ "op": "msgpack.encode", "packet": p }));
            let bytes = ours::unbase64(enc["encoded"].as_str().unwrap_or(""));
            let (label, b) = mutate::msgpack(rng, &bytes, &p);
            ("sio.msgpack", label, json!({ "op": "msgpack.decode", "input": b64(&b) }))
        }
    };
    Case { source: Source::Mutated, family, label: label.into(), checks: vec![Check { request, expect: Expect::Same }] }
}

fn corpus_case(file: &corpus::CorpusFile) -> Case {
    let checks = file.requests.iter().map(|r| Check { request: r.clone(), expect: Expect::Same }).collect();
    Case { source: Source::Corpus, family: file.family, label: file.name.clone(), checks }
}

// ------------------------------------------------------------------ evaluation

/// Our decoder applied to the reference's encoding.
fn decode_theirs(op: &str, theirs: &Json) -> Json {
    match op {
        "eio.encodePacket" => ours::eio_decode_packet(&theirs["encoded"]),
        "eio.encodePayload" => ours::eio_decode_payload(theirs["encoded"]["text"].as_str().unwrap_or("").as_bytes()),
        "eio3.encodePayload" => match theirs["encoded"].get("bin").and_then(Json::as_str) {
            Some(bin) => ours::eio3_decode_payload(&ours::unbase64(bin), true),
            None => ours::eio3_decode_payload(theirs["encoded"]["text"].as_str().unwrap_or("").as_bytes(), false),
        },
        "sio.encode" => ours::sio_decode(theirs["messages"].as_array().map_or(&[][..], Vec::as_slice)),
        _ => ours::msgpack_decode(&ours::unbase64(theirs["encoded"].as_str().unwrap_or(""))),
    }
}

fn evaluate(case: &Case, check: &Check, theirs: Result<Json, String>, out: &mut Vec<Divergence>) {
    let op = check.request["op"].as_str().unwrap_or("").to_owned();
    let mut push = |category: String, ours: Json, theirs: Json| {
        let mut d = Divergence {
            source: case.source,
            family: case.family,
            label: case.label.clone(),
            category,
            request: check.request.clone(),
            ours,
            theirs,
            known: None,
        };
        d.known = known::classify(&d);
        out.push(d);
    };
    let ours = ours::run(&check.request);
    let theirs = match theirs {
        Ok(t) => t,
        Err(e) => return push(format!("{op} harness-error"), ours, json!({ "harness_error": e })),
    };
    if let Some(aspect) = differ(&op, &ours, &theirs) {
        push(format!("{op} {aspect}"), ours.clone(), theirs.clone());
    }
    match &check.expect {
        Expect::Same => {}
        Expect::SameAnd(expected) => {
            if differ(&op, expected, &theirs).is_some() {
                push(format!("{op} round-trip: reference decodes ours"), expected.clone(), theirs);
            }
        }
        Expect::Encode(expected) => {
            let back = decode_theirs(&op, &theirs);
            if !json_eq(&strip_error(&back), &strip_error(expected)) {
                push(
                    format!("{op} round-trip: we decode reference's"),
                    expected.clone(),
                    json!({
                        "reference_encoding": theirs, "our_decoding": back
                    }),
                );
            }
        }
    }
}

fn strip_error(v: &Json) -> Json {
    let mut v = v.clone();
    if let Some(o) = v.as_object_mut() {
        o.remove("error");
    }
    v
}

// ------------------------------------------------------------------ report

/// One category of divergences: how many, per known id, and one example (an unknown one if any).
struct Category {
    count: usize,
    ids: BTreeMap<&'static str, usize>,
    example: Divergence,
}

/// What the summary needs, without keeping every divergence of a long run.
#[derive(Default)]
struct Stats {
    total: usize,
    unknown_count: usize,
    categories: BTreeMap<String, Category>,
    known: BTreeMap<&'static str, usize>,
    /// The first unknown divergences, in full.
    unknown: Vec<Divergence>,
}

impl Stats {
    fn add(&mut self, d: Divergence, max_print: usize) {
        self.total += 1;
        match d.known {
            Some(id) => *self.known.entry(id).or_default() += 1,
            None => self.unknown_count += 1,
        }
        let id = d.known.unwrap_or("UNKNOWN");
        let unknown = d.known.is_none();
        let keep = unknown && self.unknown.len() < max_print;
        let copy = || Divergence {
            source: d.source,
            family: d.family,
            label: d.label.clone(),
            category: d.category.clone(),
            request: d.request.clone(),
            ours: d.ours.clone(),
            theirs: d.theirs.clone(),
            known: d.known,
        };
        match self.categories.get_mut(&d.category) {
            Some(c) => {
                c.count += 1;
                *c.ids.entry(id).or_default() += 1;
                if unknown && c.example.known.is_some() {
                    c.example = copy();
                }
            }
            None => {
                let example = copy();
                self.categories
                    .insert(d.category.clone(), Category { count: 1, ids: BTreeMap::from([(id, 1)]), example });
            }
        }
        if keep {
            self.unknown.push(d);
        }
    }
}

fn short(v: &Json, max: usize) -> String {
    let s = v.to_string();
    if s.chars().count() <= max { s } else { format!("{}…", s.chars().take(max).collect::<String>()) }
}

fn input_of(request: &Json) -> Json {
    let mut r = request.clone();
    if let Some(o) = r.as_object_mut() {
        o.remove("op");
    }
    r
}

/// `--input`: each line a request; prints ours, theirs and what differs.
fn run_input(harness: &mut harness::Harness, path: &Path) -> ExitCode {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) => {
            eprintln!("conformance: {}: {e}", path.display());
            return ExitCode::from(2);
        }
    };
    let requests: Vec<Json> = match text.lines().filter(|l| !l.trim().is_empty()).map(serde_json::from_str).collect() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("conformance: {}: {e}", path.display());
            return ExitCode::from(2);
        }
    };
    let results = match harness.call_batch(&requests) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("conformance: harness failure: {e}");
            return ExitCode::from(2);
        }
    };
    let mut unknown = 0;
    for (request, theirs) in requests.iter().zip(results) {
        let case = Case {
            source: Source::Corpus,
            family: "input",
            label: path.display().to_string(),
            checks: vec![Check { request: request.clone(), expect: Expect::Same }],
        };
        let mut found = Vec::new();
        evaluate(&case, &case.checks[0], theirs, &mut found);
        println!("{}", input_of(request));
        println!("  ours:   {}", ours::run(request));
        for d in &found {
            println!("  theirs: {}", d.theirs);
            println!("  => {} ({})", d.category, d.known.unwrap_or("UNKNOWN"));
            unknown += usize::from(d.known.is_none());
        }
        if found.is_empty() {
            println!("  => same");
        }
    }
    if unknown > 0 { ExitCode::from(1) } else { ExitCode::SUCCESS }
}

fn main() -> ExitCode {
    let opts = match parse_args() {
        Ok(o) => o,
        Err(e) => {
            eprintln!("conformance: {e}");
            return ExitCode::from(2);
        }
    };
    let started = Instant::now();
    let root = workspace_root();
    let mut harness = match harness::Harness::spawn(&root) {
        Ok(h) => h,
        Err(e) => {
            eprintln!("conformance: cannot start the harness: {e}");
            return ExitCode::from(2);
        }
    };
    let versions = match harness.call_batch(&[json!({ "op": "ping" })]) {
        Ok(mut v) => v.remove(0).unwrap_or_default()["versions"].clone(),
        Err(e) => {
            eprintln!("conformance: the harness does not answer: {e}");
            return ExitCode::from(2);
        }
    };

    if let Some(path) = &opts.input {
        return run_input(&mut harness, path);
    }

    let (corpus_files, skipped) = corpus::load(&root.join("fuzz/corpus"));
    let n_corpus = corpus_files.len().min(opts.cases);
    let rest = opts.cases - n_corpus;
    let n_generated = rest.div_ceil(2);

    let mut seed_bytes = [0u8; 32];
    seed_bytes[..8].copy_from_slice(&opts.seed.to_le_bytes());
    let mut runner = TestRunner::new_with_rng(Config::default(), TestRng::from_seed(RngAlgorithm::ChaCha, &seed_bytes));
    let mut rng = Rng::new(opts.seed);

    let mut plan: Vec<Source> = Vec::with_capacity(opts.cases);
    plan.extend(std::iter::repeat_n(Source::Corpus, n_corpus));
    // Generated and mutated cases alternate (the generated ones first when the count is odd).
    for i in 0..rest {
        plan.push(if i % 2 == 0 { Source::Generated } else { Source::Mutated });
    }
    debug_assert_eq!(plan.iter().filter(|s| **s == Source::Generated).count(), n_generated);

    let mut per_source: BTreeMap<Source, (usize, usize)> = BTreeMap::new();
    let mut stats = Stats::default();
    let mut corpus_iter = corpus_files.iter();
    for chunk in plan.chunks(500) {
        let cases: Vec<Case> = chunk
            .iter()
            .map(|s| match s {
                Source::Generated => generated(&mut runner, &mut rng),
                Source::Mutated => mutated(&mut runner, &mut rng),
                Source::Corpus => corpus_case(corpus_iter.next().expect("counted")),
            })
            .collect();
        let requests: Vec<Json> = cases.iter().flat_map(|c| c.checks.iter().map(|k| k.request.clone())).collect();
        let mut results = match harness.call_batch(&requests) {
            Ok(r) => r.into_iter(),
            Err(e) => {
                eprintln!("conformance: harness failure: {e}");
                return ExitCode::from(2);
            }
        };
        let mut found = Vec::new();
        for case in &cases {
            let e = per_source.entry(case.source).or_default();
            e.0 += 1;
            e.1 += case.checks.len();
            for check in &case.checks {
                let theirs = results.next().expect("one result per request");
                evaluate(case, check, theirs, &mut found);
            }
        }
        for d in found {
            stats.add(d, opts.max_print);
        }
    }
    drop(harness);
    let elapsed = started.elapsed();

    // ---- summary
    println!("conformance: seed {}, {} cases in {:.1} s", opts.seed, opts.cases, elapsed.as_secs_f64());
    println!("reference: {}", versions);
    for (source, (cases, checks)) in &per_source {
        println!("  {:<10} {:>7} cases {:>7} checks", source.name(), cases, checks);
    }
    if !skipped.is_empty() {
        println!("  (corpus files with no reference counterpart, not run: {})", skipped.join(", "));
    }
    let unknown = stats.unknown_count;
    println!("divergences: {} ({} known, {} unknown)", stats.total, stats.total - unknown, unknown);
    for (category, c) in &stats.categories {
        let ids: Vec<String> = c.ids.iter().map(|(k, n)| format!("{k}×{n}")).collect();
        println!("  {category}: {} [{}]", c.count, ids.join(", "));
        let ex = &c.example;
        println!(
            "    e.g. ({} {} {}) {}\n         ours:   {}\n         theirs: {}",
            ex.source.name(),
            ex.family,
            ex.label,
            short(&input_of(&ex.request), 200),
            short(&ex.ours, 200),
            short(&ex.theirs, 200)
        );
    }
    if !stats.known.is_empty() {
        println!("known divergences seen (CONFORMANCE.md):");
        for (id, what) in known::KNOWN {
            if let Some(n) = stats.known.get(id) {
                println!("  {id:<26} {n:>6}  {what}");
            }
        }
    }

    // The WebSocket framing against ws and tungstenite.
    println!();
    let ws_unknown = match websocket::run(&root, opts.cases, opts.seed, opts.max_print) {
        Ok(n) => n,
        Err(e) => {
            eprintln!("conformance: WebSocket harness failure: {e}");
            return ExitCode::from(2);
        }
    };
    if unknown > 0 {
        println!("\nUNKNOWN divergences ({unknown}; the first {} in full):", unknown.min(opts.max_print));
        for d in &stats.unknown {
            println!("- [{}] {} {} {}", d.category, d.source.name(), d.family, d.label);
            println!("  input:  {}", input_of(&d.request));
            println!("  ours:   {}", d.ours);
            println!("  theirs: {}", d.theirs);
        }
        return ExitCode::from(1);
    }
    if ws_unknown > 0 {
        return ExitCode::from(1);
    }
    println!("no unknown divergence");
    ExitCode::SUCCESS
}
