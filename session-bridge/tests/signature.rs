//! Properties of the cookie signature: what we sign verifies, anything else does not.

use proptest::prelude::*;
use session_bridge::signature::{
    cookie_value, decode_uri_component, encode_uri_component, session_id_from_cookie, sign, unsign,
};

proptest! {
    #[test]
    fn signed_values_verify_with_their_secret_only(value in "[^.]{0,40}", secret in ".{1,20}", other in ".{1,20}") {
        let signed = sign(&value, &secret);
        prop_assert_eq!(unsign(&signed, &[secret.as_str()]), Some(value.as_str()));
        if other != secret {
            prop_assert_eq!(unsign(&signed, &[other.as_str()]), None);
            prop_assert_eq!(unsign(&signed, &[other.as_str(), secret.as_str()]), Some(value.as_str()));
        }
    }

    #[test]
    fn any_change_to_a_cookie_is_refused(sid in "[A-Za-z0-9_-]{32}", secret in "[a-z]{1,12}", pos in 0usize..200, c in any::<char>()) {
        let value = cookie_value(&sid, &secret);
        let mut chars: Vec<char> = value.chars().collect();
        let i = pos % chars.len();
        if chars[i] != c {
            chars[i] = c;
            let tampered: String = chars.into_iter().collect();
            let got = session_id_from_cookie(&tampered, &[secret.as_str()]);
            // A change can only survive if it decodes to the same text (e.g. %3A vs %3a).
            if decode_uri_component(&tampered) != decode_uri_component(&value) {
                prop_assert_eq!(got, None, "tampered: {}", tampered);
            }
        }
    }

    #[test]
    fn arbitrary_cookies_never_panic(raw in ".{0,80}") {
        let _ = session_id_from_cookie(&raw, &["secret"]);
    }

    #[test]
    fn uri_components_round_trip(s in ".{0,40}") {
        prop_assert_eq!(decode_uri_component(&encode_uri_component(&s)), Some(s));
    }
}

#[test]
fn known_vector() {
    // cookie-signature's README example: sign('hello', 'tobiiscool').
    assert_eq!(sign("hello", "tobiiscool"), "hello.DGDUkGlIkCzPz+C0B064FNgHdEjox7ch8tOBGslZ5QI");
}
