//! Comparing a result of ours with one of the reference.

use serde_json::Value as Json;

/// Structural equality: numbers compare as the doubles JavaScript would hold (so `1.0` equals `1`, and an
/// integer past 2^53 equals its rounding), objects compare as unordered maps, everything else exactly
/// (encoded strings and base64 bytes included).
pub(crate) fn json_eq(a: &Json, b: &Json) -> bool {
    match (a, b) {
        (Json::Number(x), Json::Number(y)) => x.as_f64() == y.as_f64(),
        (Json::Array(x), Json::Array(y)) => x.len() == y.len() && x.iter().zip(y).all(|(p, q)| json_eq(p, q)),
        (Json::Object(x), Json::Object(y)) => {
            x.len() == y.len() && x.iter().all(|(k, v)| y.get(k).is_some_and(|w| json_eq(v, w)))
        }
        _ => a == b,
    }
}

/// Whether an operation encodes (its results are compared byte for byte).
pub(crate) fn is_encode(op: &str) -> bool {
    op.ends_with("encode") || op.ends_with("encodePacket") || op.ends_with("encodePayload")
}

/// Compares two results of the same operation on the same input; returns the aspect that differs:
/// `bytes` for encoders, `accept` when one side accepts and the other rejects, `result` when both accept
/// (or both reject) but what they decoded differs. Error messages are not compared; neither is the
/// decoder's pending state once both sides have rejected (the connection is closed then).
pub(crate) fn differ(op: &str, ours: &Json, theirs: &Json) -> Option<&'static str> {
    if is_encode(op) {
        return (!json_eq(ours, theirs)).then_some("bytes");
    }
    let (a, b) = (strip(ours), strip(theirs));
    if a.get("accepted") != b.get("accepted") {
        return Some("accept");
    }
    (!json_eq(&a, &b)).then_some("result")
}

fn strip(r: &Json) -> Json {
    let mut r = r.clone();
    if let Some(o) = r.as_object_mut() {
        o.remove("error");
        if o.get("accepted") == Some(&Json::Bool(false)) {
            o.remove("pending");
        }
    }
    r
}
