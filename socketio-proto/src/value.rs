//! The data of Socket.IO packets: JSON values that may also hold binary.
//!
//! Socket.IO event arguments mix JSON and binary (a `Buffer` in Node, `bytes` in Python). [`Value`] is JSON
//! plus a [`Value::Binary`] variant; the JSON parser moves binary values out into attachments with
//! `{"_placeholder":true,"num":N}` objects in their place (see [`crate::packet`]), the msgpack parser writes
//! them as msgpack `bin`.
//!
//! Typed data goes through serde, directly (no JSON text in between): [`Value::from_serialize`] and
//! [`Value::deserialize_into`]; binary stays binary both ways.

use std::fmt;

use bytes::Bytes;
use indexmap::IndexMap;
use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use serde::ser::{Serialize, SerializeMap, SerializeSeq, Serializer};

use crate::json::{write_number, write_string};
use crate::msgpack_ext::Ext;

/// An object: keys keep their order.
pub type Map = IndexMap<String, Value>;

/// A JSON value that may also be binary.
#[derive(Debug, Clone, PartialEq, Default)]
pub enum Value {
    /// `null` (also what JavaScript's `undefined` becomes).
    #[default]
    Null,
    /// `true` / `false`.
    Bool(bool),
    /// A number.
    Number(serde_json::Number),
    /// A string.
    String(String),
    /// Binary data.
    Binary(Bytes),
    /// An array.
    Array(Vec<Value>),
    /// An object.
    Object(Map),
}

impl Value {
    /// The string, if this is one.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::String(s) => Some(s),
            _ => None,
        }
    }

    /// The bytes, if this is binary.
    pub fn as_binary(&self) -> Option<&Bytes> {
        match self {
            Value::Binary(b) => Some(b),
            _ => None,
        }
    }

    /// The elements, if this is an array.
    pub fn as_array(&self) -> Option<&Vec<Value>> {
        match self {
            Value::Array(a) => Some(a),
            _ => None,
        }
    }

    /// The entries, if this is an object.
    pub fn as_object(&self) -> Option<&Map> {
        match self {
            Value::Object(o) => Some(o),
            _ => None,
        }
    }

    /// A member of an object.
    pub fn get(&self, key: &str) -> Option<&Value> {
        self.as_object().and_then(|o| o.get(key))
    }

    /// The number as an `f64`, if this is one.
    pub fn as_f64(&self) -> Option<f64> {
        match self {
            Value::Number(n) => n.as_f64(),
            _ => None,
        }
    }

    /// The number as a `u64`, if it is a non-negative integer.
    pub fn as_u64(&self) -> Option<u64> {
        match self {
            Value::Number(n) => n.as_u64(),
            _ => None,
        }
    }

    /// Whether this value or anything inside it is binary.
    pub fn has_binary(&self) -> bool {
        match self {
            Value::Binary(_) => true,
            Value::Array(a) => a.iter().any(Value::has_binary),
            Value::Object(o) => o.values().any(Value::has_binary),
            _ => false,
        }
    }

    /// Converts to a `serde_json::Value`; binary becomes an array of byte numbers.
    pub fn into_json(self) -> serde_json::Value {
        match self {
            Value::Null => serde_json::Value::Null,
            Value::Bool(b) => serde_json::Value::Bool(b),
            Value::Number(n) => serde_json::Value::Number(n),
            Value::String(s) => serde_json::Value::String(s),
            Value::Binary(b) => serde_json::Value::Array(b.iter().map(|&x| serde_json::Value::from(x)).collect()),
            Value::Array(a) => serde_json::Value::Array(a.into_iter().map(Value::into_json).collect()),
            Value::Object(o) => serde_json::Value::Object(o.into_iter().map(|(k, v)| (k, v.into_json())).collect()),
        }
    }

    /// Writes the JSON text of this value, moving binary into `attachments` and writing a placeholder
    /// `{"_placeholder":true,"num":N}` in its place.
    pub fn write_json(&self, out: &mut String, attachments: &mut Vec<Bytes>) {
        self.write(out, &mut Some(attachments));
    }

    /// Writes the JSON text of this value for a packet that cannot carry attachments (CONNECT,
    /// CONNECT_ERROR): binary is written as Node's `Buffer.toJSON()` does, `{"type":"Buffer","data":[...]}`.
    pub fn write_json_inline(&self, out: &mut String) {
        self.write(out, &mut None);
    }

    fn write(&self, out: &mut String, attachments: &mut Option<&mut Vec<Bytes>>) {
        match self {
            Value::Null => out.push_str("null"),
            Value::Bool(true) => out.push_str("true"),
            Value::Bool(false) => out.push_str("false"),
            Value::Number(n) => write_number(n, out),
            Value::String(s) => write_string(s, out),
            Value::Binary(b) => match attachments {
                Some(att) => {
                    out.push_str("{\"_placeholder\":true,\"num\":");
                    out.push_str(&att.len().to_string());
                    out.push('}');
                    att.push(b.clone());
                }
                None => {
                    out.push_str("{\"type\":\"Buffer\",\"data\":[");
                    for (i, byte) in b.iter().enumerate() {
                        if i > 0 {
                            out.push(',');
                        }
                        out.push_str(&byte.to_string());
                    }
                    out.push_str("]}");
                }
            },
            Value::Array(a) => {
                out.push('[');
                for (i, v) in a.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    v.write(out, attachments);
                }
                out.push(']');
            }
            Value::Object(o) => {
                out.push('{');
                for (i, (k, v)) in o.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    write_string(k, out);
                    out.push(':');
                    v.write(out, attachments);
                }
                out.push('}');
            }
        }
    }

    /// About how many bytes the JSON text of this value takes (exact for most values without escapes or
    /// binary), to size buffers before writing.
    pub fn size_hint(&self) -> usize {
        match self {
            Value::Null => 4,
            Value::Bool(_) => 5,
            Value::Number(_) => 24,
            Value::String(s) => s.len() + 2,
            Value::Binary(_) => 32,
            Value::Array(a) => 2 + a.iter().map(|v| v.size_hint() + 1).sum::<usize>(),
            Value::Object(o) => 2 + o.iter().map(|(k, v)| k.len() + 4 + v.size_hint()).sum::<usize>(),
        }
    }

    /// Replaces every placeholder object with the attachment it names. Fails if a placeholder names an
    /// attachment that does not exist.
    pub fn resolve_placeholders(&mut self, attachments: &[Bytes]) -> Result<(), usize> {
        match self {
            Value::Object(o) => {
                if let Some(num) = placeholder_num(o) {
                    let b = attachments.get(num).ok_or(num)?;
                    *self = Value::Binary(b.clone());
                    return Ok(());
                }
                for v in o.values_mut() {
                    v.resolve_placeholders(attachments)?;
                }
                Ok(())
            }
            Value::Array(a) => {
                for v in a {
                    v.resolve_placeholders(attachments)?;
                }
                Ok(())
            }
            _ => Ok(()),
        }
    }
}

/// As the reference's `_reconstructPacket`: any object whose `_placeholder` is `true` is a placeholder
/// (whatever other keys it has), and its `num` must then be an integer index.
fn placeholder_num(o: &Map) -> Option<usize> {
    if o.get("_placeholder") == Some(&Value::Bool(true)) {
        if let Some(n) = o.get("num").and_then(Value::as_f64)
            && n >= 0.0
            && n.fract() == 0.0
            && n < usize::MAX as f64
        {
            return Some(n as usize);
        }
        // A placeholder with a missing or bad number can never be resolved.
        return Some(usize::MAX);
    }
    None
}

impl From<serde_json::Value> for Value {
    fn from(v: serde_json::Value) -> Self {
        match v {
            serde_json::Value::Null => Value::Null,
            serde_json::Value::Bool(b) => Value::Bool(b),
            serde_json::Value::Number(n) => Value::Number(n),
            serde_json::Value::String(s) => Value::String(s),
            serde_json::Value::Array(a) => Value::Array(a.into_iter().map(Value::from).collect()),
            serde_json::Value::Object(o) => Value::Object(o.into_iter().map(|(k, v)| (k, Value::from(v))).collect()),
        }
    }
}

impl From<&str> for Value {
    fn from(s: &str) -> Self {
        Value::String(s.to_owned())
    }
}

impl From<String> for Value {
    fn from(s: String) -> Self {
        Value::String(s)
    }
}

impl From<bool> for Value {
    fn from(b: bool) -> Self {
        Value::Bool(b)
    }
}

impl From<Bytes> for Value {
    fn from(b: Bytes) -> Self {
        Value::Binary(b)
    }
}

impl From<Vec<Value>> for Value {
    fn from(a: Vec<Value>) -> Self {
        Value::Array(a)
    }
}

macro_rules! from_number {
    ($($t:ty),*) => {$(
        impl From<$t> for Value {
            fn from(n: $t) -> Self {
                Value::Number(serde_json::Number::from(n))
            }
        }
    )*};
}
from_number!(i8, i16, i32, i64, u8, u16, u32, u64, usize, isize);

/// A float read off the wire. JavaScript has one number type and writes an integral number below 1e21 as
/// plain digits (`12e4` goes out as `120000`, `-0` as `0`), which read back as an integer: so an integral
/// float that an integer type holds exactly is kept as that integer, and a packet decodes to the same value
/// after it is encoded again.
fn decoded_float(v: f64) -> Value {
    const PLAIN_DIGITS_BELOW: f64 = 1e21;
    if v.fract() == 0.0 && v.abs() < PLAIN_DIGITS_BELOW {
        if v >= 0.0 && v < u64::MAX as f64 {
            return Value::from(v as u64);
        }
        if v < 0.0 && v >= i64::MIN as f64 {
            return Value::from(v as i64);
        }
    }
    Value::from(v)
}

impl From<f64> for Value {
    fn from(f: f64) -> Self {
        serde_json::Number::from_f64(f).map(Value::Number).unwrap_or(Value::Null)
    }
}

impl Serialize for Value {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            Value::Null => serializer.serialize_unit(),
            Value::Bool(b) => serializer.serialize_bool(*b),
            Value::Number(n) => n.serialize(serializer),
            Value::String(s) => serializer.serialize_str(s),
            Value::Binary(b) => serializer.serialize_bytes(b),
            Value::Array(a) => {
                let mut seq = serializer.serialize_seq(Some(a.len()))?;
                for v in a {
                    seq.serialize_element(v)?;
                }
                seq.end()
            }
            Value::Object(o) => {
                let mut map = serializer.serialize_map(Some(o.len()))?;
                for (k, v) in o {
                    map.serialize_entry(k, v)?;
                }
                map.end()
            }
        }
    }
}

impl<'de> Deserialize<'de> for Value {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Value, D::Error> {
        deserializer.deserialize_any(ValueVisitor)
    }
}

struct ValueVisitor;

impl<'de> Visitor<'de> for ValueVisitor {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON or msgpack value")
    }

    fn visit_bool<E>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }
    fn visit_i64<E>(self, v: i64) -> Result<Value, E> {
        Ok(Value::from(v))
    }
    fn visit_u64<E>(self, v: u64) -> Result<Value, E> {
        Ok(Value::from(v))
    }
    fn visit_f64<E>(self, v: f64) -> Result<Value, E> {
        Ok(decoded_float(v))
    }
    fn visit_str<E>(self, v: &str) -> Result<Value, E> {
        Ok(Value::String(v.to_owned()))
    }
    fn visit_string<E>(self, v: String) -> Result<Value, E> {
        Ok(Value::String(v))
    }
    fn visit_bytes<E>(self, v: &[u8]) -> Result<Value, E> {
        Ok(Value::Binary(Bytes::copy_from_slice(v)))
    }
    fn visit_byte_buf<E>(self, v: Vec<u8>) -> Result<Value, E> {
        Ok(Value::Binary(Bytes::from(v)))
    }
    fn visit_none<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        Value::deserialize(d)
    }
    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
    /// msgpack extensions (rmp-serde presents them as a newtype of `(tag, bytes)`): notepack's type 0 is
    /// `undefined` (absent), a `Date` or an `ArrayBuffer` by its length; a date (notepack's type 0 or the
    /// msgpack timestamp, type -1) becomes its ISO string as Node's JSON writes a `Date`; other types are
    /// refused.
    fn visit_newtype_struct<D: Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        Ok(match d.deserialize_any(crate::msgpack_ext::ExtVisitor)? {
            Ext::Undefined => Value::Null,
            Ext::Date(iso) => Value::String(iso),
            Ext::Binary(b) => Value::Binary(b),
        })
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut v = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(1024));
        while let Some(x) = seq.next_element()? {
            v.push(x);
        }
        Ok(Value::Array(v))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut m = Map::with_capacity(map.size_hint().unwrap_or(0).min(1024));
        while let Some((k, v)) = map.next_entry::<MapKey, Value>()? {
            // A repeated key keeps its first position and its last value, as in JavaScript.
            m.insert(k.0, v);
        }
        Ok(Value::Object(m))
    }
}

/// A map key: strings, and (for msgpack) numbers and booleans written as JavaScript would.
struct MapKey(String);

impl<'de> Deserialize<'de> for MapKey {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct KeyVisitor;
        impl Visitor<'_> for KeyVisitor {
            type Value = MapKey;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a map key")
            }
            fn visit_str<E>(self, v: &str) -> Result<MapKey, E> {
                Ok(MapKey(v.to_owned()))
            }
            fn visit_string<E>(self, v: String) -> Result<MapKey, E> {
                Ok(MapKey(v))
            }
            fn visit_i64<E>(self, v: i64) -> Result<MapKey, E> {
                Ok(MapKey(v.to_string()))
            }
            fn visit_u64<E>(self, v: u64) -> Result<MapKey, E> {
                Ok(MapKey(v.to_string()))
            }
            fn visit_bool<E>(self, v: bool) -> Result<MapKey, E> {
                Ok(MapKey(v.to_string()))
            }
            fn visit_bytes<E: de::Error>(self, v: &[u8]) -> Result<MapKey, E> {
                std::str::from_utf8(v).map(|s| MapKey(s.to_owned())).map_err(E::custom)
            }
        }
        d.deserialize_any(KeyVisitor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn json(v: &Value) -> (String, Vec<Bytes>) {
        let mut out = String::new();
        let mut att = Vec::new();
        v.write_json(&mut out, &mut att);
        (out, att)
    }

    #[test]
    fn integral_floats_decode_as_the_integers_they_are_written_as() {
        for (text, back) in [("12e4", "120000"), ("-0.0", "0"), ("-3e2", "-300"), ("1e17", "100000000000000000")] {
            let v: Value = serde_json::from_str(text).unwrap();
            let mut out = String::new();
            v.write_json_inline(&mut out);
            assert_eq!(out, back);
            assert_eq!(serde_json::from_str::<Value>(&out).unwrap(), v, "{text}");
        }
        // Beyond plain digits, or with a fraction, a float stays a float.
        assert_eq!(serde_json::from_str::<Value>("1e21").unwrap().as_u64(), None);
        assert_eq!(serde_json::from_str::<Value>("2.5").unwrap().as_f64(), Some(2.5));
    }

    #[test]
    fn writes_json_like_javascript() {
        let v: Value = serde_json::from_str(r#"{"a":[1,2.5,-3,true,null,"x\"y\n\u0001é"],"b":{}}"#).unwrap();
        assert_eq!(json(&v).0, r#"{"a":[1,2.5,-3,true,null,"x\"y\n\u0001é"],"b":{}}"#);
        assert_eq!(json(&Value::from(1.0)).0, "1");
        assert_eq!(json(&Value::from(1e21)).0, "1e+21");
        assert_eq!(json(&Value::from(1.5e-7)).0, "1.5e-7");
        assert_eq!(json(&Value::from(0.1)).0, "0.1");
        assert_eq!(json(&Value::from(-0.0)).0, "0");
        assert_eq!(json(&Value::from(1152921504606846976.0)).0, "1152921504606847000");
        assert_eq!(json(&Value::from(-9007199254740993.0)).0, "-9007199254740992");
        assert_eq!(json(&Value::from(1e20)).0, "100000000000000000000");
        // The double nearest -1219709511202380.2 is -1219709511202380.25: a tie, which goes to the even digit.
        assert_eq!(json(&Value::from(-1_219_709_511_202_380.2)).0, "-1219709511202380.2");
        assert_eq!(json(&Value::from(1e-6)).0, "0.000001");
        assert_eq!(json(&Value::from(1.234e-6)).0, "0.000001234");
        assert_eq!(json(&Value::from(123456789.125)).0, "123456789.125");
        assert_eq!(json(&Value::from(1.7976931348623157e308)).0, "1.7976931348623157e+308");
        assert_eq!(json(&Value::from(5e-324)).0, "5e-324");
        assert_eq!(json(&Value::from(-2.5e-9)).0, "-2.5e-9");
        assert_eq!(json(&Value::from(1e16)).0, "10000000000000000");
        assert_eq!(json(&Value::from(1.5)).0, "1.5");
    }

    #[test]
    fn placeholders_as_the_reference_reads_them() {
        let att = [Bytes::from_static(b"a")];
        let mut extra: Value = serde_json::from_str(r#"[{"_placeholder":true,"num":0,"x":1}]"#).unwrap();
        extra.resolve_placeholders(&att).unwrap();
        assert_eq!(extra, Value::Array(vec![Value::Binary(att[0].clone())]));
        for bad in
            [r#"{"_placeholder":true}"#, r#"{"_placeholder":true,"num":"0"}"#, r#"{"_placeholder":true,"num":0.5}"#]
        {
            let mut v: Value = serde_json::from_str(bad).unwrap();
            assert!(v.resolve_placeholders(&att).is_err(), "{bad}");
        }
        let mut not_one: Value = serde_json::from_str(r#"{"_placeholder":1,"num":0}"#).unwrap();
        assert_eq!(not_one.resolve_placeholders(&att), Ok(()));
    }

    #[cfg(feature = "msgpack")]
    #[test]
    fn notepack_type_0_extensions() {
        fn ext(bytes: &[u8]) -> Value {
            rmp_serde::from_slice(bytes).unwrap()
        }
        // fixext 1: undefined; fixext 8: a Date (ms); ext 8 of 3 bytes: an ArrayBuffer.
        assert_eq!(ext(b"\xd4\x00\x00"), Value::Null);
        let mut date = b"\xd7\x00".to_vec();
        date.extend_from_slice(&1_795_000_000_188i64.to_be_bytes());
        assert_eq!(ext(&date), Value::from("2026-11-18T11:06:40.188Z"));
        assert_eq!(ext(b"\xc7\x03\x00\x01\x02\x03"), Value::Binary(Bytes::from_static(&[1, 2, 3])));
    }

    #[test]
    fn binary_becomes_placeholders_and_back() {
        let v = Value::Array(vec![
            Value::from("ev"),
            Value::Binary(Bytes::from_static(b"ab")),
            Value::Object(Map::from_iter([("x".to_owned(), Value::Binary(Bytes::from_static(b"c")))])),
        ]);
        let (text, att) = json(&v);
        assert_eq!(text, r#"["ev",{"_placeholder":true,"num":0},{"x":{"_placeholder":true,"num":1}}]"#);
        assert_eq!(att, vec![Bytes::from_static(b"ab"), Bytes::from_static(b"c")]);
        let mut back: Value = serde_json::from_str(&text).unwrap();
        back.resolve_placeholders(&att).unwrap();
        assert_eq!(back, v);
        let mut missing: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(missing.resolve_placeholders(&att[..1]), Err(1));
        let mut inline = String::new();
        v.write_json_inline(&mut inline);
        assert_eq!(inline, r#"["ev",{"type":"Buffer","data":[97,98]},{"x":{"type":"Buffer","data":[99]}}]"#);
    }

    #[test]
    fn typed_round_trip() {
        #[derive(serde::Serialize, serde::Deserialize, PartialEq, Debug)]
        struct Msg {
            text: String,
            n: u32,
            data: Vec<u8>,
        }
        let mut v = Value::from_serialize(&serde_json::json!({"text": "hi", "n": 3})).unwrap();
        if let Value::Object(o) = &mut v {
            o.insert("data".into(), Value::Binary(Bytes::from_static(&[1, 2])));
        }
        let m: Msg = v.deserialize_into().unwrap();
        assert_eq!(m, Msg { text: "hi".into(), n: 3, data: vec![1, 2] });
    }

    #[test]
    fn repeated_keys_keep_the_last_value() {
        let v: Value = serde_json::from_str(r#"{"a":1,"b":2,"a":3}"#).unwrap();
        assert_eq!(json(&v).0, r#"{"a":3,"b":2}"#);
    }
}
