//! A [`Value`] into any `Deserialize`, directly (not through JSON text or `serde_json::Value`): the
//! counterpart of [`crate::to_value`]. Binary stays binary: a `bytes::Bytes`, `serde_bytes` or
//! `Vec<u8>` field receives it, and a [`Value`] target keeps [`Value::Binary`]. Numbers deserialize as
//! JSON's do; an enum is a string (unit variant) or an object of one key (the variant and its content).
//!
//! A `serde_json::Value` cannot hold binary: asked for as a whole, it gets binary as an array of byte
//! numbers ([`Value::into_json`]); a `serde_json::Value` field inside another type refuses binary.

use serde::de::value::{MapDeserializer, SeqDeserializer};
use serde::de::{self, Deserializer, EnumAccess, IntoDeserializer, VariantAccess, Visitor};
use serde::forward_to_deserialize_any;
use std::any::{Any, TypeId};

use crate::value::Value;

/// The error of a value that does not fit the target type.
pub type Error = serde_json::Error;

fn error(msg: impl std::fmt::Display) -> Error {
    <Error as de::Error>::custom(msg)
}

/// Deserializes `value` into `T`, binary kept. A [`Value`] target is the value itself (no walk), a
/// `Vec<Value>` target is an array's items, a `serde_json::Value` target is [`Value::into_json`].
pub fn from_value<T: de::DeserializeOwned + 'static>(value: Value) -> Result<T, Error> {
    let value = match cast::<Value, T>(value) {
        Ok(same) => return Ok(same),
        Err(value) => value,
    };
    if TypeId::of::<T>() == TypeId::of::<Vec<Value>>() {
        return match value {
            Value::Array(items) => Ok(cast::<Vec<Value>, T>(items).unwrap_or_else(|_| unreachable!("T is Vec<Value>"))),
            other => Err(de::Error::invalid_type(other.unexpected(), &"a sequence")),
        };
    }
    if TypeId::of::<T>() == TypeId::of::<serde_json::Value>() {
        let json = value.into_json();
        return Ok(cast::<serde_json::Value, T>(json).unwrap_or_else(|_| unreachable!("T is serde_json::Value")));
    }
    T::deserialize(value)
}

/// `value` as a `T` when `T` is its very type (moved, neither copied nor boxed); else `value` back.
fn cast<A: 'static, T: 'static>(value: A) -> Result<T, A> {
    let mut slot = Some(value);
    match (&mut slot as &mut dyn Any).downcast_mut::<Option<T>>() {
        Some(same) => Ok(same.take().expect("filled above")),
        None => Err(slot.expect("left untouched")),
    }
}

impl Value {
    /// Deserializes into any type, directly (see [`from_value`]): binary stays binary for `bytes::Bytes`,
    /// `serde_bytes`, `Vec<u8>` and [`Value`] targets.
    pub fn deserialize_into<T: de::DeserializeOwned + 'static>(self) -> Result<T, Error> {
        from_value(self)
    }
}

impl<'de> IntoDeserializer<'de, Error> for Value {
    type Deserializer = Value;
    fn into_deserializer(self) -> Value {
        self
    }
}

impl Value {
    fn unexpected(&self) -> de::Unexpected<'_> {
        match self {
            Value::Null => de::Unexpected::Unit,
            Value::Bool(b) => de::Unexpected::Bool(*b),
            Value::Number(_) => de::Unexpected::Other("number"),
            Value::String(s) => de::Unexpected::Str(s),
            Value::Binary(b) => de::Unexpected::Bytes(b),
            Value::Array(_) => de::Unexpected::Seq,
            Value::Object(_) => de::Unexpected::Map,
        }
    }
}

impl<'de> Deserializer<'de> for Value {
    type Error = Error;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        match self {
            Value::Null => visitor.visit_unit(),
            Value::Bool(b) => visitor.visit_bool(b),
            Value::Number(n) => n.deserialize_any(visitor),
            Value::String(s) => visitor.visit_string(s),
            Value::Binary(b) => visitor.visit_byte_buf(b.into()),
            Value::Array(a) => {
                let mut seq = SeqDeserializer::new(a.into_iter());
                let v = visitor.visit_seq(&mut seq)?;
                seq.end()?;
                Ok(v)
            }
            Value::Object(o) => {
                let mut map = MapDeserializer::new(o.into_iter());
                let v = visitor.visit_map(&mut map)?;
                map.end()?;
                Ok(v)
            }
        }
    }

    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        match self {
            Value::Null => visitor.visit_none(),
            other => visitor.visit_some(other),
        }
    }

    /// Binary is a sequence of its bytes here, for targets such as `Vec<u8>` and `[u8; N]`.
    fn deserialize_seq<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        match self {
            Value::Binary(b) => {
                let mut seq = SeqDeserializer::new(b.into_iter());
                let v = visitor.visit_seq(&mut seq)?;
                seq.end()?;
                Ok(v)
            }
            other => other.deserialize_any(visitor),
        }
    }

    fn deserialize_tuple<V: Visitor<'de>>(self, _len: usize, visitor: V) -> Result<V::Value, Error> {
        self.deserialize_seq(visitor)
    }

    fn deserialize_tuple_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _len: usize,
        visitor: V,
    ) -> Result<V::Value, Error> {
        self.deserialize_seq(visitor)
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(self, _name: &'static str, visitor: V) -> Result<V::Value, Error> {
        visitor.visit_newtype_struct(self)
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _variants: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, Error> {
        match self {
            Value::String(variant) => visitor.visit_enum(Enum { variant: Value::String(variant), content: None }),
            Value::Object(o) if o.len() == 1 => {
                let (variant, content) = o.into_iter().next().expect("one entry");
                visitor.visit_enum(Enum { variant: Value::String(variant), content: Some(content) })
            }
            other => Err(de::Error::invalid_type(other.unexpected(), &"a string or an object of one key")),
        }
    }

    forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string
        bytes byte_buf unit unit_struct map struct identifier ignored_any
    }
}

/// An enum: the variant's name and, unless it is a unit variant, its content.
struct Enum {
    variant: Value,
    content: Option<Value>,
}

impl<'de> EnumAccess<'de> for Enum {
    type Error = Error;
    type Variant = Variant;

    fn variant_seed<S: de::DeserializeSeed<'de>>(self, seed: S) -> Result<(S::Value, Variant), Error> {
        Ok((seed.deserialize(self.variant)?, Variant(self.content)))
    }
}

struct Variant(Option<Value>);

impl<'de> VariantAccess<'de> for Variant {
    type Error = Error;

    fn unit_variant(self) -> Result<(), Error> {
        match self.0 {
            None | Some(Value::Null) => Ok(()),
            Some(other) => Err(de::Error::invalid_type(other.unexpected(), &"a unit variant")),
        }
    }

    fn newtype_variant_seed<S: de::DeserializeSeed<'de>>(self, seed: S) -> Result<S::Value, Error> {
        seed.deserialize(self.0.ok_or_else(|| error("a newtype variant without content"))?)
    }

    fn tuple_variant<V: Visitor<'de>>(self, _len: usize, visitor: V) -> Result<V::Value, Error> {
        self.0.ok_or_else(|| error("a tuple variant without content"))?.deserialize_seq(visitor)
    }

    fn struct_variant<V: Visitor<'de>>(self, _fields: &'static [&'static str], visitor: V) -> Result<V::Value, Error> {
        self.0.ok_or_else(|| error("a struct variant without content"))?.deserialize_any(visitor)
    }
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;
    use serde::{Deserialize, Serialize};

    use super::from_value;
    use crate::to_value::to_value;
    use crate::value::Value;

    #[derive(Debug, PartialEq, Serialize, Deserialize)]
    enum Shape {
        Dot,
        Circle(f64),
        Line(i32, i32),
        Rect { w: u32, h: u32 },
    }

    #[derive(Debug, PartialEq, Serialize, Deserialize)]
    struct Msg {
        text: String,
        count: u8,
        tags: Vec<String>,
        note: Option<String>,
        file: Bytes,
        raw: Vec<u8>,
        shapes: Vec<Shape>,
        extra: Value,
        pair: (bool, i64),
    }

    fn msg() -> Msg {
        Msg {
            text: "hé".into(),
            count: 7,
            tags: vec!["a".into(), "b".into()],
            note: None,
            file: Bytes::from_static(&[0, 1, 255]),
            raw: vec![9, 8],
            shapes: vec![Shape::Dot, Shape::Circle(1.5), Shape::Line(-1, 2), Shape::Rect { w: 3, h: 4 }],
            extra: Value::Binary(Bytes::from_static(b"bin")),
            pair: (true, -3),
        }
    }

    #[test]
    fn round_trips_through_value_with_binary_kept() {
        let value = to_value(&msg()).unwrap();
        let Value::Object(o) = &value else { panic!("an object") };
        assert_eq!(o["file"], Value::Binary(Bytes::from_static(&[0, 1, 255])));
        assert_eq!(from_value::<Msg>(value).unwrap(), msg());
    }

    #[test]
    fn a_value_target_keeps_binary() {
        let v = Value::Array(vec![Value::Binary(Bytes::from_static(b"x")), Value::from(1)]);
        assert_eq!(from_value::<Value>(v.clone()).unwrap(), v);
        assert_eq!(from_value::<(Bytes, u64)>(v.clone()).unwrap(), (Bytes::from_static(b"x"), 1));
        let Value::Array(items) = v.clone() else { unreachable!() };
        assert_eq!(from_value::<Vec<Value>>(v).unwrap(), items);
        assert!(from_value::<Vec<Value>>(Value::from(1)).is_err());
        let nested = Value::Array(vec![Value::Array(vec![Value::Binary(Bytes::from_static(b"y"))])]);
        assert_eq!(from_value::<Vec<Vec<Value>>>(nested).unwrap(), vec![vec![Value::Binary(Bytes::from_static(b"y"))]]);
    }

    #[test]
    fn numbers_and_options_as_json() {
        assert_eq!(from_value::<f64>(Value::from(3)).unwrap(), 3.0);
        assert_eq!(from_value::<Option<u8>>(Value::Null).unwrap(), None);
        assert_eq!(from_value::<Option<u8>>(Value::from(4)).unwrap(), Some(4));
        assert_eq!(from_value::<()>(Value::Null).unwrap(), ());
        assert_eq!(from_value::<Vec<u8>>(Value::Array(vec![Value::from(1), Value::from(2)])).unwrap(), vec![1, 2]);
    }

    #[test]
    fn mismatches_are_errors() {
        assert!(from_value::<u8>(Value::from(300)).is_err());
        assert!(from_value::<String>(Value::from(1)).is_err());
        assert!(from_value::<(u8, u8)>(Value::Array(vec![Value::from(1)])).is_err());
        assert!(from_value::<(u8,)>(Value::Array(vec![Value::from(1), Value::from(2)])).is_err(), "extra items");
        assert!(from_value::<Shape>(Value::from(1)).is_err());
        assert!(from_value::<Shape>(Value::from("Circle")).is_err(), "a newtype variant needs content");
        assert!(from_value::<Msg>(Value::Object(Default::default())).is_err());
    }
}

#[cfg(test)]
mod json_target {
    #[test]
    fn binary_into_serde_json_value() {
        let v = crate::Value::Binary(bytes::Bytes::from_static(&[1, 2]));
        let j: serde_json::Value = super::from_value(v).unwrap();
        assert_eq!(j, serde_json::json!([1, 2]));
    }
}
