//! The express-session cookie: `s:` + session id + `.` + signature, URI-encoded.
//!
//! The signature is `cookie-signature`'s: HMAC-SHA256 of the session id with the secret, in standard
//! base64 (`+` and `/`) without the trailing `=`. Unsigning splits at the last `.`, tries every secret
//! (so secrets can be rotated: sign with the first, accept any) and compares in constant time.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD_NO_PAD;
use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;

type HmacSha256 = Hmac<Sha256>;

fn mac(secret: &[u8], value: &str) -> HmacSha256 {
    let mut mac = HmacSha256::new_from_slice(secret).expect("HMAC takes a key of any length");
    mac.update(value.as_bytes());
    mac
}

/// `value.signature`, as `cookie-signature`'s `sign`.
pub fn sign(value: &str, secret: &str) -> String {
    let tag = mac(secret.as_bytes(), value).finalize().into_bytes();
    format!("{value}.{}", STANDARD_NO_PAD.encode(tag))
}

/// The value of a signed string if one of `secrets` signed it, as `cookie-signature`'s `unsign`.
pub fn unsign<'a, S: AsRef<str>>(signed: &'a str, secrets: &[S]) -> Option<&'a str> {
    let (value, signature) = signed.rsplit_once('.')?;
    let tag = STANDARD_NO_PAD.decode(signature).ok()?;
    // Non-canonical base64 (other trailing bits) would decode to the same tag: require the exact text.
    if STANDARD_NO_PAD.encode(&tag) != signature {
        return None;
    }
    secrets.iter().any(|s| mac(s.as_ref().as_bytes(), value).verify_slice(&tag).is_ok()).then_some(value)
}

/// The cookie value express-session sets for a session id: `s:` + signed id, URI-encoded.
pub fn cookie_value(sid: &str, secret: &str) -> String {
    encode_uri_component(&format!("s:{}", sign(sid, secret)))
}

/// The session id in a `connect.sid` cookie value, if it is signed by one of `secrets`. Unsigned,
/// tampered or malformed values give `None`, and so does a validly signed empty id (express-session
/// treats it as no session).
pub fn session_id_from_cookie<S: AsRef<str>>(raw: &str, secrets: &[S]) -> Option<String> {
    let decoded = decode_uri_component(raw)?;
    let signed = decoded.strip_prefix("s:")?;
    unsign(signed, secrets).filter(|sid| !sid.is_empty()).map(str::to_owned)
}

/// JavaScript's `encodeURIComponent`.
pub fn encode_uri_component(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.!~*'()".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// JavaScript's `decodeURIComponent`; `None` where it would throw.
pub fn decode_uri_component(s: &str) -> Option<String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = s.get(i + 1..i + 3)?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

/// A new session id as express-session makes them (`uid-safe` with 24 bytes): 32 URL-safe characters.
pub fn generate_session_id() -> String {
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let bytes: [u8; 24] = rand::random();
    URL_SAFE_NO_PAD.encode(bytes)
}

/// The value of cookie `name` in a `Cookie` header.
pub fn find_cookie<'a>(header: &'a str, name: &str) -> Option<&'a str> {
    header.split(';').find_map(|pair| {
        let (k, v) = pair.split_once('=')?;
        (k.trim() == name).then(|| v.trim().trim_matches('"'))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sign_and_unsign() {
        let signed = sign("hello", "tobiiscool");
        assert!(signed.starts_with("hello."));
        assert!(!signed.ends_with('='));
        assert_eq!(unsign(&signed, &["tobiiscool"]), Some("hello"));
        assert_eq!(unsign(&signed, &["new", "tobiiscool"]), Some("hello"), "rotated secrets");
        assert_eq!(unsign(&signed, &["luna"]), None);
        assert_eq!(unsign("hello", &["tobiiscool"]), None);
        assert_eq!(unsign("hello.", &["tobiiscool"]), None);
        assert_eq!(unsign(&signed.replace("hello", "hellp"), &["tobiiscool"]), None);
    }

    #[test]
    fn cookie_round_trip() {
        let sid = generate_session_id();
        assert_eq!(sid.len(), 32);
        let value = cookie_value(&sid, "secret");
        assert!(value.starts_with("s%3A"));
        assert_eq!(session_id_from_cookie(&value, &["secret"]).as_deref(), Some(sid.as_str()));
        assert_eq!(session_id_from_cookie(&value, &["other"]), None);
        assert_eq!(session_id_from_cookie(&sid, &["secret"]), None, "unsigned");
        assert_eq!(session_id_from_cookie("s%3A%ZZ", &["secret"]), None, "bad escape");
        assert_eq!(session_id_from_cookie("%E0%A4%A", &["secret"]), None);
        let empty = encode_uri_component(&format!("s:{}", sign("", "secret")));
        assert_eq!(session_id_from_cookie(&empty, &["secret"]), None, "a signed empty id is no session");
    }

    #[test]
    fn finds_cookies() {
        let h = "a=1; connect.sid=s%3Aabc.def; b=\"2\"";
        assert_eq!(find_cookie(h, "connect.sid"), Some("s%3Aabc.def"));
        assert_eq!(find_cookie(h, "b"), Some("2"));
        assert_eq!(find_cookie(h, "c"), None);
    }

    #[test]
    fn uri_component() {
        assert_eq!(encode_uri_component("s:a+b/c=d é"), "s%3Aa%2Bb%2Fc%3Dd%20%C3%A9");
        assert_eq!(decode_uri_component("s%3Aa%2Bb%2Fc%3Dd%20%C3%A9").as_deref(), Some("s:a+b/c=d é"));
    }
}
