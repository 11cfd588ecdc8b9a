//! The fuzz corpora (`fuzz/corpus/<target>/*`) as harness requests for the matching decoder.

use std::path::Path;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde_json::{Value as Json, json};

use crate::ours::{blob_bin, blob_text};

/// One corpus file and the requests it becomes.
pub(crate) struct CorpusFile {
    /// The codec family.
    pub(crate) family: &'static str,
    /// `target/file`.
    pub(crate) name: String,
    /// The decode requests.
    pub(crate) requests: Vec<Json>,
}

/// The records of the `sio_packet` target: `[tag][len lo][len hi][bytes]`, an even tag a text message
/// (left out when not UTF-8), an odd one a binary message; the length is cut to what is left.
pub(crate) fn sio_records(data: &[u8]) -> Vec<Json> {
    let mut out = Vec::new();
    let mut rest = data;
    while rest.len() >= 3 {
        let tag = rest[0];
        let len = (usize::from(rest[1]) | (usize::from(rest[2]) << 8)).min(rest.len() - 3);
        let body = &rest[3..3 + len];
        rest = &rest[3 + len..];
        if tag.is_multiple_of(2) {
            if let Ok(s) = std::str::from_utf8(body) {
                out.push(blob_text(s));
            }
        } else {
            out.push(blob_bin(body));
        }
    }
    out
}

/// Loads every corpus file with a reference counterpart; returns them and the targets left out.
pub(crate) fn load(dir: &Path) -> (Vec<CorpusFile>, Vec<String>) {
    let mut files = Vec::new();
    let mut skipped = Vec::new();
    let Ok(targets) = std::fs::read_dir(dir) else { return (files, skipped) };
    let mut targets: Vec<_> = targets.flatten().map(|e| e.path()).filter(|p| p.is_dir()).collect();
    targets.sort();
    for target in targets {
        let tname = target.file_name().and_then(|n| n.to_str()).unwrap_or("").to_owned();
        let family = match tname.as_str() {
            "eio_packet" => "eio.packet",
            "eio_payload" => "eio.payload",
            "eio3_payload" => "eio3.payload",
            "sio_packet" => "sio.json",
            "sio_msgpack" => "sio.msgpack",
            _ => {
                // eio_session drives the session state machine, which has no counterpart in the parsers.
                let n = std::fs::read_dir(&target).map(|d| d.count()).unwrap_or(0);
                skipped.push(format!("{tname} ({n} files)"));
                continue;
            }
        };
        let Ok(entries) = std::fs::read_dir(&target) else { continue };
        let mut paths: Vec<_> = entries.flatten().map(|e| e.path()).filter(|p| p.is_file()).collect();
        paths.sort();
        for path in paths {
            let Ok(data) = std::fs::read(&path) else { continue };
            let requests = match family {
                "eio.packet" => {
                    let mut r = Vec::new();
                    if let Ok(s) = std::str::from_utf8(&data) {
                        r.push(json!({ "op": "eio.decodePacket", "input": blob_text(s) }));
                    }
                    r.push(json!({ "op": "eio.decodePacket", "input": blob_bin(&data) }));
                    r
                }
                "eio.payload" => vec![json!({ "op": "eio.decodePayload", "input": STANDARD.encode(&data) })],
                "eio3.payload" => [false, true]
                    .map(|binary| json!({ "op": "eio3.decodePayload", "input": STANDARD.encode(&data), "binary": binary }))
                    .to_vec(),
                "sio.json" => vec![json!({ "op": "sio.decode", "messages": sio_records(&data) })],
                _ => vec![json!({ "op": "msgpack.decode", "input": STANDARD.encode(&data) })],
            };
            let name = format!("{tname}/{}", path.file_name().and_then(|n| n.to_str()).unwrap_or("?"));
            files.push(CorpusFile { family, name, requests });
        }
    }
    (files, skipped)
}
