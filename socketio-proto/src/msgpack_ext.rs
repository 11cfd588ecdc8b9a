//! msgpack extensions read into a [`Value`]: notepack.io's type 0 (`undefined`, a `Date`, an
//! `ArrayBuffer`) and the msgpack timestamp (type -1). Used by `Value`'s `Deserialize` when a msgpack
//! deserializer presents an extension; plain serde, so it builds without the `msgpack` feature.

use std::fmt;

use bytes::Bytes;
use serde::de::{self, Deserialize, Deserializer, SeqAccess, Visitor};

/// What an extension stands for. `Value` turns it into a value (`Undefined` into `null`, a date into its
/// ISO string as Node's JSON writes a `Date`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Ext {
    Undefined,
    Date(String),
    Binary(Bytes),
}

/// An extension's data: the bytes after its type.
struct Data(Bytes);

impl<'de> Deserialize<'de> for Data {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Data;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("the bytes of a msgpack extension")
            }
            fn visit_bytes<E>(self, v: &[u8]) -> Result<Data, E> {
                Ok(Data(Bytes::copy_from_slice(v)))
            }
            fn visit_byte_buf<E>(self, v: Vec<u8>) -> Result<Data, E> {
                Ok(Data(Bytes::from(v)))
            }
        }
        d.deserialize_bytes(V)
    }
}

/// msgpack extensions, as rmp-serde presents them (a newtype of `(tag, bytes)`); see
/// `Value`'s `visit_newtype_struct`.
pub(crate) struct ExtVisitor;

impl<'de> Visitor<'de> for ExtVisitor {
    type Value = Ext;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a msgpack extension")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Ext, A::Error> {
        let tag: i8 = seq.next_element()?.ok_or_else(|| de::Error::custom("extension without a type"))?;
        let Data(b) = seq.next_element()?.ok_or_else(|| de::Error::custom("extension without data"))?;
        match (tag, b.len()) {
            // notepack.io's own type 0: `undefined` as fixext 1, a `Date` (milliseconds, signed 64-bit
            // big-endian) as fixext 8, and an `ArrayBuffer` or typed array as ext 8/16/32 of any length. The
            // marker is not visible here, so a 1- or 8-byte ArrayBuffer reads as undefined or a Date.
            (0, 1) => Ok(Ext::Undefined),
            (0, 8) => {
                let ms = i64::from_be_bytes([b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7]]);
                Ok(Ext::Date(crate::date::to_iso(ms)))
            }
            (0, _) => Ok(Ext::Binary(b)),
            (-1, 4) => {
                let secs = u32::from_be_bytes([b[0], b[1], b[2], b[3]]);
                Ok(Ext::Date(crate::date::to_iso(i64::from(secs) * 1000)))
            }
            (-1, 8) => {
                let v = u64::from_be_bytes([b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7]]);
                let (nanos, secs) = ((v >> 34) as i64, (v & 0x3_ffff_ffff) as i64);
                Ok(Ext::Date(crate::date::to_iso(secs * 1000 + nanos / 1_000_000)))
            }
            (-1, 12) => {
                let nanos = i64::from(u32::from_be_bytes([b[0], b[1], b[2], b[3]]));
                let secs = i64::from_be_bytes([b[4], b[5], b[6], b[7], b[8], b[9], b[10], b[11]]);
                Ok(Ext::Date(crate::date::to_iso(secs.saturating_mul(1000).saturating_add(nanos / 1_000_000))))
            }
            _ => Err(de::Error::custom("unsupported msgpack extension")),
        }
    }
}
