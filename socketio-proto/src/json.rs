//! A JSON writer that gives the bytes JavaScript's `JSON.stringify` gives: string escapes and number layout
//! as in ECMAScript, so that our encodings are byte for byte the reference's (CONFORMANCE.md).

/// Writes a JSON string as JavaScript's `JSON.stringify` does.
pub(crate) fn write_string(s: &str, out: &mut String) {
    out.reserve(s.len() + 2);
    out.push('"');
    let bytes = s.as_bytes();
    let mut start = 0;
    let mut i = 0;
    // Bytes, not chars: only ASCII needs escaping, and no byte of a multi-byte UTF-8 sequence is ASCII, so
    // every cut below falls on a character boundary. Runs of bytes that need nothing are skipped eight at
    // a time.
    while i < bytes.len() {
        while i + 8 <= bytes.len() && !word_needs_escape(&bytes[i..i + 8]) {
            i += 8;
        }
        let end = (i + 8).min(bytes.len());
        while i < end && !needs_escape(bytes[i]) {
            i += 1;
        }
        if i == end {
            continue;
        }
        let b = bytes[i];
        out.push_str(&s[start..i]);
        match b {
            b'"' => out.push_str("\\\""),
            b'\\' => out.push_str("\\\\"),
            b'\n' => out.push_str("\\n"),
            b'\r' => out.push_str("\\r"),
            b'\t' => out.push_str("\\t"),
            0x08 => out.push_str("\\b"),
            0x0c => out.push_str("\\f"),
            _ => {
                const HEX: &[u8; 16] = b"0123456789abcdef";
                out.push_str("\\u00");
                out.push(char::from(HEX[usize::from(b >> 4)]));
                out.push(char::from(HEX[usize::from(b & 0xf)]));
            }
        }
        i += 1;
        start = i;
    }
    out.push_str(&s[start..]);
    out.push('"');
}

fn needs_escape(b: u8) -> bool {
    b < 0x20 || b == b'"' || b == b'\\'
}

/// Whether any of 8 bytes is a control character, `"` or `\\` (the bit tricks "has a byte less than n"
/// and "has a zero byte", exact for the question whether any byte matches).
fn word_needs_escape(chunk: &[u8]) -> bool {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGH: u64 = 0x8080_8080_8080_8080;
    let mut w = [0u8; 8];
    w.copy_from_slice(chunk);
    let x = u64::from_le_bytes(w);
    let control = x.wrapping_sub(ONES * 0x20) & !x;
    let quote = x ^ (ONES * u64::from(b'"'));
    let backslash = x ^ (ONES * u64::from(b'\\'));
    let zero = |v: u64| v.wrapping_sub(ONES) & !v;
    (control | zero(quote) | zero(backslash)) & HIGH != 0
}

/// Writes a number as JavaScript's `Number::toString` does: the shortest digits that read back as the same
/// double (an exact tie goes to the even digit), laid out as plain decimals from 1e-7 (exclusive) up to 1e21
/// (exclusive) and with a signed exponent beyond; `-0` is `0`. serde_json's own writer (ryu) picks the same
/// digits (Rust's `{}` can pick the other one of a tie: -1219709511202380.25 is `...380.3` there, `...380.2`
/// in JavaScript), so the digits come from it and only the layout is redone here.
pub(crate) fn write_number(n: &serde_json::Number, out: &mut String) {
    if !n.is_f64() {
        out.push_str(&n.to_string());
        return;
    }
    if n.as_f64() == Some(0.0) {
        out.push('0');
        return;
    }
    let text = n.to_string();
    let (negative, text) = match text.strip_prefix('-') {
        Some(t) => (true, t),
        None => (false, text.as_str()),
    };
    let (mantissa, exp) = match text.split_once(['e', 'E']) {
        Some((m, e)) => (m, e.parse::<i32>().unwrap_or(0)),
        None => (text, 0),
    };
    let (int, frac) = mantissa.split_once('.').unwrap_or((mantissa, ""));
    // The value is 0.DIGITS x 10^point.
    let mut digits: String = int.chars().chain(frac.chars()).collect();
    let mut point = int.len() as i32 + exp;
    let leading = digits.len() - digits.trim_start_matches('0').len();
    digits.drain(..leading);
    point -= leading as i32;
    digits.truncate(digits.trim_end_matches('0').len());
    let k = digits.len() as i32;
    if negative {
        out.push('-');
    }
    if k <= point && point <= 21 {
        out.push_str(&digits);
        out.extend(std::iter::repeat_n('0', (point - k) as usize));
    } else if 0 < point && point <= 21 {
        out.push_str(&digits[..point as usize]);
        out.push('.');
        out.push_str(&digits[point as usize..]);
    } else if -6 < point && point <= 0 {
        out.push_str("0.");
        out.extend(std::iter::repeat_n('0', (-point) as usize));
        out.push_str(&digits);
    } else {
        out.push_str(&digits[..1]);
        if k > 1 {
            out.push('.');
            out.push_str(&digits[1..]);
        }
        out.push('e');
        out.push(if point > 0 { '+' } else { '-' });
        out.push_str(&(point - 1).abs().to_string());
    }
}
