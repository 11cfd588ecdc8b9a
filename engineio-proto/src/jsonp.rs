//! JSONP long-polling: the polling transport of clients that can make neither XHR nor CORS requests
//! (engine.io-client 3's `forceJSONP`, and its fallback in old browsers), as the reference serves it.
//!
//! A session whose handshake GET has a `j` query parameter is a JSONP session for its whole life. Its GET
//! responses are JavaScript that calls the client's callback with the payload as a string:
//! `___eio[<j>]("<payload>");` (the JSON string of the payload, with U+2028 and U+2029 escaped too, as
//! they end lines in JavaScript). Its POSTs are HTML form submissions: the body is
//! `application/x-www-form-urlencoded` with the payload in the field `d`, in which the client wrote each
//! newline as `\n` and each `\n` already there as `\\n`. A JSONP client never takes binary: its payloads
//! are text, binary as base64.

use bytes::{BufMut, Bytes, BytesMut};

use crate::handshake::query_pairs;

/// The callback index of a JSONP request: the digits of its `j` parameter, as the reference keeps them
/// (anything else dropped). `None` when the request has no `j`, so it is not JSONP.
pub fn callback_index(j: Option<&str>) -> Option<String> {
    j.map(|j| j.chars().filter(char::is_ascii_digit).collect())
}

/// The body of a JSONP GET response: `___eio[<index>]("<payload as a JSON string>");`. The payload is a
/// text payload (UTF-8); invalid UTF-8 is written as U+FFFD.
pub fn wrap(index: &str, payload: &[u8]) -> Bytes {
    let text = String::from_utf8_lossy(payload);
    let json = serde_json::to_string(&*text).expect("a string serializes");
    let mut out = BytesMut::with_capacity(json.len() + index.len() + 10);
    out.put_slice(b"___eio[");
    out.put_slice(index.as_bytes());
    out.put_slice(b"](");
    // JSON allows the line and paragraph separators raw; JavaScript before 2019 does not.
    let mut rest = json.as_str();
    while let Some(i) = rest.find(['\u{2028}', '\u{2029}']) {
        out.put_slice(&rest.as_bytes()[..i]);
        let c = rest[i..].chars().next().expect("found a character");
        out.put_slice(if c == '\u{2028}' { b"\\u2028" } else { b"\\u2029" });
        rest = &rest[i + c.len_utf8()..];
    }
    out.put_slice(rest.as_bytes());
    out.put_slice(b");");
    out.freeze()
}

/// The payload of a JSONP POST: the form field `d` of the body, its newline escapes undone as the
/// reference does (`\n` not preceded by a backslash becomes a newline, then `\\n` becomes `\n`). `None`
/// when the body has no single `d` field (the reference then ignores the POST).
pub fn unwrap_post(body: &[u8]) -> Option<Bytes> {
    let text = std::str::from_utf8(body).ok()?;
    let mut fields = query_pairs(text).filter(|(k, _)| k == "d").map(|(_, v)| v);
    let d = fields.next()?;
    if fields.next().is_some() {
        return None;
    }
    Some(Bytes::from(unescape_newlines(&d)))
}

/// `\n` (backslash, n) becomes a newline unless a backslash comes before it; then `\\n` becomes `\n`.
fn unescape_newlines(d: &str) -> String {
    let mut once = String::with_capacity(d.len());
    let mut rest = d;
    // The reference's `/(\\)?\\n/g`: a match is `\\n` (kept) or `\n` (replaced), left to right.
    while let Some(i) = rest.find("\\n") {
        if i > 0 && rest.as_bytes()[i - 1] == b'\\' {
            // `\\n`: kept whole.
            once.push_str(&rest[..i + 2]);
        } else {
            once.push_str(&rest[..i]);
            once.push('\n');
        }
        rest = &rest[i + 2..];
    }
    once.push_str(rest);
    once.replace("\\\\n", "\\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_callback_index_keeps_digits() {
        assert_eq!(callback_index(Some("12")).as_deref(), Some("12"));
        assert_eq!(callback_index(Some("1a2);alert(1")).as_deref(), Some("121"));
        assert_eq!(callback_index(Some("")).as_deref(), Some(""));
        assert_eq!(callback_index(None), None);
    }

    #[test]
    fn get_responses_are_a_call_with_the_payload_as_a_string() {
        assert_eq!(&wrap("0", b"2:40")[..], b"___eio[0](\"2:40\");");
        let payload = "9:42[\"a\\\"\n\u{2028}\"]".as_bytes();
        assert_eq!(
            std::str::from_utf8(&wrap("3", payload)).unwrap(),
            "___eio[3](\"9:42[\\\"a\\\\\\\"\\n\\u2028\\\"]\");"
        );
    }

    #[test]
    fn post_bodies_are_the_field_d_with_newlines_unescaped() {
        assert_eq!(unwrap_post(b"d=6%3A4hello").as_deref(), Some(&b"6:4hello"[..]));
        // A newline the client escaped, and a `\n` it escaped twice.
        assert_eq!(unwrap_post(b"d=3%3A4a%5Cnb").as_deref(), Some(&b"3:4a\nb"[..]));
        assert_eq!(unwrap_post(b"d=5%3A4a%5C%5Cnb").as_deref(), Some(&b"5:4a\\nb"[..]));
        assert_eq!(unwrap_post(b"d=a+b").as_deref(), Some(&b"a b"[..]));
        assert_eq!(unwrap_post(b"x=1"), None);
        assert_eq!(unwrap_post(b"d=1&d=2"), None);
    }
}
