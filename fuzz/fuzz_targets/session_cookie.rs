//! The express-session cookie: arbitrary `Cookie` headers and cookie values never panic; a value we sign
//! verifies with its secret and never with another; an accepted cookie is exactly one we could have made.
#![no_main]

use libfuzzer_sys::fuzz_target;
use session_bridge::signature::{cookie_value, find_cookie, session_id_from_cookie, sign, unsign};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let secrets = ["keyboard cat", "old secret"];
    // Any header, any value: no panic; whatever is accepted re-signs to the same cookie.
    if let Some(raw) = find_cookie(text, "connect.sid") {
        if let Some(sid) = session_id_from_cookie(raw, &secrets) {
            assert!(!sid.is_empty());
            let ours = [cookie_value(&sid, secrets[0]), cookie_value(&sid, secrets[1])];
            let decoded = session_bridge::signature::decode_uri_component(raw).expect("it decoded once");
            assert!(
                ours.iter().any(|c| session_bridge::signature::decode_uri_component(c).as_deref() == Some(decoded.as_str())),
                "accepted a cookie we would not have made: {raw:?}"
            );
        }
    }
    let _ = session_id_from_cookie(text, &secrets);
    // What we sign verifies, with the right secret only.
    let value: String = text.chars().filter(|&c| c != '.').take(64).collect();
    let signed = sign(&value, "keyboard cat");
    assert_eq!(unsign(&signed, &["keyboard cat"]), Some(value.as_str()));
    assert_eq!(unsign(&signed, &["another"]), None);
});
