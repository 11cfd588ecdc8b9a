//! Any `Serialize` into a [`Value`], directly (not through JSON): bytes stay binary, so a struct with a
//! `bytes::Bytes` field (or `#[serde(with = "serde_bytes")]`) is sent as a binary attachment, as a Node
//! application's `Buffer` is. Numbers, strings, sequences and maps are JSON's; a float that JSON cannot
//! hold (NaN, infinity) becomes `null`, as `JSON.stringify` writes it; map keys become strings.

use bytes::Bytes;
use serde::ser::{self, Impossible, Serialize};

use crate::value::{Map, Value};

/// The error of a value that cannot be a [`Value`] (a map key that is not a string, a number or a bool;
/// or the type's own error).
pub type Error = serde_json::Error;

fn error(msg: impl std::fmt::Display) -> Error {
    <Error as ser::Error>::custom(msg)
}

impl Value {
    /// Converts any serializable value, directly (see [`to_value`]): bytes (`bytes::Bytes`, `serde_bytes`)
    /// stay binary, the rest is what JSON would hold.
    pub fn from_serialize<T: Serialize + ?Sized>(value: &T) -> Result<Value, Error> {
        to_value(value)
    }
}

/// Serializes `value` into a [`Value`], binary kept.
pub fn to_value<T: Serialize + ?Sized>(value: &T) -> Result<Value, Error> {
    value.serialize(ValueSerializer)
}

/// Serializes `value` as the arguments of an event: a tuple is one argument per element, `()` none, and
/// anything else one argument.
pub fn to_args<T: Serialize + ?Sized>(value: &T) -> Result<Vec<Value>, Error> {
    value.serialize(ArgsSerializer)
}

/// The serializer into [`Value`].
#[derive(Debug, Clone, Copy)]
pub struct ValueSerializer;

macro_rules! integers_to_numbers {
    ($($method:ident: $t:ty),*) => {$(
        fn $method(self, v: $t) -> Result<Value, Error> {
            Ok(Value::Number(v.into()))
        }
    )*};
}

impl ser::Serializer for ValueSerializer {
    type Ok = Value;
    type Error = Error;
    type SerializeSeq = SeqBuilder;
    type SerializeTuple = SeqBuilder;
    type SerializeTupleStruct = SeqBuilder;
    type SerializeTupleVariant = VariantBuilder<SeqBuilder>;
    type SerializeMap = MapBuilder;
    type SerializeStruct = MapBuilder;
    type SerializeStructVariant = VariantBuilder<MapBuilder>;

    fn serialize_bool(self, v: bool) -> Result<Value, Error> {
        Ok(Value::Bool(v))
    }
    integers_to_numbers!(serialize_i8: i8, serialize_i16: i16, serialize_i32: i32, serialize_i64: i64,
        serialize_u8: u8, serialize_u16: u16, serialize_u32: u32, serialize_u64: u64);
    fn serialize_f32(self, v: f32) -> Result<Value, Error> {
        self.serialize_f64(f64::from(v))
    }
    fn serialize_f64(self, v: f64) -> Result<Value, Error> {
        Ok(serde_json::Number::from_f64(v).map_or(Value::Null, Value::Number))
    }
    fn serialize_char(self, v: char) -> Result<Value, Error> {
        Ok(Value::String(v.to_string()))
    }
    fn serialize_str(self, v: &str) -> Result<Value, Error> {
        Ok(Value::String(v.to_owned()))
    }
    fn serialize_bytes(self, v: &[u8]) -> Result<Value, Error> {
        Ok(Value::Binary(Bytes::copy_from_slice(v)))
    }
    fn serialize_none(self) -> Result<Value, Error> {
        Ok(Value::Null)
    }
    fn serialize_some<T: Serialize + ?Sized>(self, value: &T) -> Result<Value, Error> {
        value.serialize(self)
    }
    fn serialize_unit(self) -> Result<Value, Error> {
        Ok(Value::Null)
    }
    fn serialize_unit_struct(self, _name: &'static str) -> Result<Value, Error> {
        Ok(Value::Null)
    }
    fn serialize_unit_variant(self, _name: &'static str, _index: u32, variant: &'static str) -> Result<Value, Error> {
        Ok(Value::String(variant.to_owned()))
    }
    fn serialize_newtype_struct<T: Serialize + ?Sized>(self, _name: &'static str, value: &T) -> Result<Value, Error> {
        value.serialize(self)
    }
    fn serialize_newtype_variant<T: Serialize + ?Sized>(
        self,
        _name: &'static str,
        _index: u32,
        variant: &'static str,
        value: &T,
    ) -> Result<Value, Error> {
        let mut map = Map::new();
        map.insert(variant.to_owned(), value.serialize(self)?);
        Ok(Value::Object(map))
    }
    fn serialize_seq(self, len: Option<usize>) -> Result<SeqBuilder, Error> {
        Ok(SeqBuilder(Vec::with_capacity(len.unwrap_or(0).min(4096))))
    }
    fn serialize_tuple(self, len: usize) -> Result<SeqBuilder, Error> {
        self.serialize_seq(Some(len))
    }
    fn serialize_tuple_struct(self, _name: &'static str, len: usize) -> Result<SeqBuilder, Error> {
        self.serialize_seq(Some(len))
    }
    fn serialize_tuple_variant(
        self,
        _name: &'static str,
        _index: u32,
        variant: &'static str,
        len: usize,
    ) -> Result<VariantBuilder<SeqBuilder>, Error> {
        Ok(VariantBuilder { variant, inner: self.serialize_seq(Some(len))? })
    }
    fn serialize_map(self, _len: Option<usize>) -> Result<MapBuilder, Error> {
        Ok(MapBuilder { map: Map::new(), key: None })
    }
    fn serialize_struct(self, _name: &'static str, len: usize) -> Result<MapBuilder, Error> {
        self.serialize_map(Some(len))
    }
    fn serialize_struct_variant(
        self,
        _name: &'static str,
        _index: u32,
        variant: &'static str,
        len: usize,
    ) -> Result<VariantBuilder<MapBuilder>, Error> {
        Ok(VariantBuilder { variant, inner: self.serialize_map(Some(len))? })
    }
}

/// The elements of a sequence or tuple being serialized.
#[derive(Debug)]
pub struct SeqBuilder(Vec<Value>);

impl ser::SerializeSeq for SeqBuilder {
    type Ok = Value;
    type Error = Error;
    fn serialize_element<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), Error> {
        self.0.push(to_value(value)?);
        Ok(())
    }
    fn end(self) -> Result<Value, Error> {
        Ok(Value::Array(self.0))
    }
}

impl ser::SerializeTuple for SeqBuilder {
    type Ok = Value;
    type Error = Error;
    fn serialize_element<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), Error> {
        ser::SerializeSeq::serialize_element(self, value)
    }
    fn end(self) -> Result<Value, Error> {
        ser::SerializeSeq::end(self)
    }
}

impl ser::SerializeTupleStruct for SeqBuilder {
    type Ok = Value;
    type Error = Error;
    fn serialize_field<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), Error> {
        ser::SerializeSeq::serialize_element(self, value)
    }
    fn end(self) -> Result<Value, Error> {
        ser::SerializeSeq::end(self)
    }
}

/// The entries of a map or struct being serialized.
#[derive(Debug)]
pub struct MapBuilder {
    map: Map,
    key: Option<String>,
}

impl ser::SerializeMap for MapBuilder {
    type Ok = Value;
    type Error = Error;
    fn serialize_key<T: Serialize + ?Sized>(&mut self, key: &T) -> Result<(), Error> {
        self.key = Some(key.serialize(KeySerializer)?);
        Ok(())
    }
    fn serialize_value<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), Error> {
        let key = self.key.take().ok_or_else(|| error("a map value without its key"))?;
        self.map.insert(key, to_value(value)?);
        Ok(())
    }
    fn end(self) -> Result<Value, Error> {
        Ok(Value::Object(self.map))
    }
}

impl ser::SerializeStruct for MapBuilder {
    type Ok = Value;
    type Error = Error;
    fn serialize_field<T: Serialize + ?Sized>(&mut self, key: &'static str, value: &T) -> Result<(), Error> {
        self.map.insert(key.to_owned(), to_value(value)?);
        Ok(())
    }
    fn end(self) -> Result<Value, Error> {
        Ok(Value::Object(self.map))
    }
}

/// An enum variant with data: `{"Variant": data}`, as serde_json writes it.
#[derive(Debug)]
pub struct VariantBuilder<B> {
    variant: &'static str,
    inner: B,
}

impl<B> VariantBuilder<B> {
    fn wrap(variant: &'static str, value: Value) -> Value {
        let mut map = Map::new();
        map.insert(variant.to_owned(), value);
        Value::Object(map)
    }
}

impl ser::SerializeTupleVariant for VariantBuilder<SeqBuilder> {
    type Ok = Value;
    type Error = Error;
    fn serialize_field<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), Error> {
        ser::SerializeSeq::serialize_element(&mut self.inner, value)
    }
    fn end(self) -> Result<Value, Error> {
        Ok(Self::wrap(self.variant, ser::SerializeSeq::end(self.inner)?))
    }
}

impl ser::SerializeStructVariant for VariantBuilder<MapBuilder> {
    type Ok = Value;
    type Error = Error;
    fn serialize_field<T: Serialize + ?Sized>(&mut self, key: &'static str, value: &T) -> Result<(), Error> {
        ser::SerializeStruct::serialize_field(&mut self.inner, key, value)
    }
    fn end(self) -> Result<Value, Error> {
        Ok(Self::wrap(self.variant, ser::SerializeStruct::end(self.inner)?))
    }
}

/// Map keys: strings, and numbers, bools and chars written as strings (as JavaScript's object keys).
struct KeySerializer;

macro_rules! key_to_string {
    ($($method:ident: $t:ty),*) => {$(
        fn $method(self, v: $t) -> Result<String, Error> {
            Ok(v.to_string())
        }
    )*};
}

impl ser::Serializer for KeySerializer {
    type Ok = String;
    type Error = Error;
    type SerializeSeq = Impossible<String, Error>;
    type SerializeTuple = Impossible<String, Error>;
    type SerializeTupleStruct = Impossible<String, Error>;
    type SerializeTupleVariant = Impossible<String, Error>;
    type SerializeMap = Impossible<String, Error>;
    type SerializeStruct = Impossible<String, Error>;
    type SerializeStructVariant = Impossible<String, Error>;

    key_to_string!(serialize_bool: bool, serialize_i8: i8, serialize_i16: i16, serialize_i32: i32,
        serialize_i64: i64, serialize_u8: u8, serialize_u16: u16, serialize_u32: u32, serialize_u64: u64,
        serialize_char: char, serialize_str: &str);

    fn serialize_f32(self, _v: f32) -> Result<String, Error> {
        Err(error("a map key cannot be a float"))
    }
    fn serialize_f64(self, _v: f64) -> Result<String, Error> {
        Err(error("a map key cannot be a float"))
    }
    fn serialize_bytes(self, _v: &[u8]) -> Result<String, Error> {
        Err(error("a map key cannot be bytes"))
    }
    fn serialize_none(self) -> Result<String, Error> {
        Err(error("a map key cannot be none"))
    }
    fn serialize_some<T: Serialize + ?Sized>(self, value: &T) -> Result<String, Error> {
        value.serialize(self)
    }
    fn serialize_unit(self) -> Result<String, Error> {
        Err(error("a map key cannot be unit"))
    }
    fn serialize_unit_struct(self, _name: &'static str) -> Result<String, Error> {
        Err(error("a map key cannot be unit"))
    }
    fn serialize_unit_variant(self, _name: &'static str, _index: u32, variant: &'static str) -> Result<String, Error> {
        Ok(variant.to_owned())
    }
    fn serialize_newtype_struct<T: Serialize + ?Sized>(self, _name: &'static str, value: &T) -> Result<String, Error> {
        value.serialize(self)
    }
    fn serialize_newtype_variant<T: Serialize + ?Sized>(
        self,
        _name: &'static str,
        _index: u32,
        _variant: &'static str,
        _value: &T,
    ) -> Result<String, Error> {
        Err(error("a map key must be a string"))
    }
    fn serialize_seq(self, _len: Option<usize>) -> Result<Self::SerializeSeq, Error> {
        Err(error("a map key must be a string"))
    }
    fn serialize_tuple(self, _len: usize) -> Result<Self::SerializeTuple, Error> {
        Err(error("a map key must be a string"))
    }
    fn serialize_tuple_struct(self, _name: &'static str, _len: usize) -> Result<Self::SerializeTupleStruct, Error> {
        Err(error("a map key must be a string"))
    }
    fn serialize_tuple_variant(
        self,
        _name: &'static str,
        _index: u32,
        _variant: &'static str,
        _len: usize,
    ) -> Result<Self::SerializeTupleVariant, Error> {
        Err(error("a map key must be a string"))
    }
    fn serialize_map(self, _len: Option<usize>) -> Result<Self::SerializeMap, Error> {
        Err(error("a map key must be a string"))
    }
    fn serialize_struct(self, _name: &'static str, _len: usize) -> Result<Self::SerializeStruct, Error> {
        Err(error("a map key must be a string"))
    }
    fn serialize_struct_variant(
        self,
        _name: &'static str,
        _index: u32,
        _variant: &'static str,
        _len: usize,
    ) -> Result<Self::SerializeStructVariant, Error> {
        Err(error("a map key must be a string"))
    }
}

/// The arguments of an event: the top level decides how many (a tuple: one per element; unit: none).
struct ArgsSerializer;

/// A tuple's elements, each one argument.
struct ArgsTuple(Vec<Value>);

impl ser::SerializeTuple for ArgsTuple {
    type Ok = Vec<Value>;
    type Error = Error;
    fn serialize_element<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), Error> {
        self.0.push(to_value(value)?);
        Ok(())
    }
    fn end(self) -> Result<Vec<Value>, Error> {
        Ok(self.0)
    }
}

/// Everything but a tuple or unit: one argument, built by [`ValueSerializer`].
struct One<B>(B);

macro_rules! one_arg {
    ($($method:ident: $t:ty),*) => {$(
        fn $method(self, v: $t) -> Result<Vec<Value>, Error> {
            Ok(vec![ValueSerializer.$method(v)?])
        }
    )*};
}

impl ser::Serializer for ArgsSerializer {
    type Ok = Vec<Value>;
    type Error = Error;
    type SerializeSeq = One<SeqBuilder>;
    type SerializeTuple = ArgsTuple;
    type SerializeTupleStruct = One<SeqBuilder>;
    type SerializeTupleVariant = One<VariantBuilder<SeqBuilder>>;
    type SerializeMap = One<MapBuilder>;
    type SerializeStruct = One<MapBuilder>;
    type SerializeStructVariant = One<VariantBuilder<MapBuilder>>;

    one_arg!(serialize_bool: bool, serialize_i8: i8, serialize_i16: i16, serialize_i32: i32,
        serialize_i64: i64, serialize_u8: u8, serialize_u16: u16, serialize_u32: u32, serialize_u64: u64,
        serialize_f32: f32, serialize_f64: f64, serialize_char: char, serialize_str: &str,
        serialize_bytes: &[u8]);

    fn serialize_none(self) -> Result<Vec<Value>, Error> {
        Ok(vec![Value::Null])
    }
    fn serialize_some<T: Serialize + ?Sized>(self, value: &T) -> Result<Vec<Value>, Error> {
        Ok(vec![to_value(value)?])
    }
    fn serialize_unit(self) -> Result<Vec<Value>, Error> {
        Ok(Vec::new())
    }
    fn serialize_unit_struct(self, _name: &'static str) -> Result<Vec<Value>, Error> {
        Ok(vec![Value::Null])
    }
    fn serialize_unit_variant(
        self,
        name: &'static str,
        index: u32,
        variant: &'static str,
    ) -> Result<Vec<Value>, Error> {
        Ok(vec![ValueSerializer.serialize_unit_variant(name, index, variant)?])
    }
    fn serialize_newtype_struct<T: Serialize + ?Sized>(
        self,
        _name: &'static str,
        value: &T,
    ) -> Result<Vec<Value>, Error> {
        Ok(vec![to_value(value)?])
    }
    fn serialize_newtype_variant<T: Serialize + ?Sized>(
        self,
        name: &'static str,
        index: u32,
        variant: &'static str,
        value: &T,
    ) -> Result<Vec<Value>, Error> {
        Ok(vec![ValueSerializer.serialize_newtype_variant(name, index, variant, value)?])
    }
    fn serialize_seq(self, len: Option<usize>) -> Result<One<SeqBuilder>, Error> {
        Ok(One(ValueSerializer.serialize_seq(len)?))
    }
    fn serialize_tuple(self, len: usize) -> Result<ArgsTuple, Error> {
        Ok(ArgsTuple(Vec::with_capacity(len)))
    }
    fn serialize_tuple_struct(self, name: &'static str, len: usize) -> Result<One<SeqBuilder>, Error> {
        Ok(One(ValueSerializer.serialize_tuple_struct(name, len)?))
    }
    fn serialize_tuple_variant(
        self,
        name: &'static str,
        index: u32,
        variant: &'static str,
        len: usize,
    ) -> Result<One<VariantBuilder<SeqBuilder>>, Error> {
        Ok(One(ValueSerializer.serialize_tuple_variant(name, index, variant, len)?))
    }
    fn serialize_map(self, len: Option<usize>) -> Result<One<MapBuilder>, Error> {
        Ok(One(ValueSerializer.serialize_map(len)?))
    }
    fn serialize_struct(self, name: &'static str, len: usize) -> Result<One<MapBuilder>, Error> {
        Ok(One(ValueSerializer.serialize_struct(name, len)?))
    }
    fn serialize_struct_variant(
        self,
        name: &'static str,
        index: u32,
        variant: &'static str,
        len: usize,
    ) -> Result<One<VariantBuilder<MapBuilder>>, Error> {
        Ok(One(ValueSerializer.serialize_struct_variant(name, index, variant, len)?))
    }
}

impl ser::SerializeSeq for One<SeqBuilder> {
    type Ok = Vec<Value>;
    type Error = Error;
    fn serialize_element<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), Error> {
        ser::SerializeSeq::serialize_element(&mut self.0, value)
    }
    fn end(self) -> Result<Vec<Value>, Error> {
        Ok(vec![ser::SerializeSeq::end(self.0)?])
    }
}

impl ser::SerializeTupleStruct for One<SeqBuilder> {
    type Ok = Vec<Value>;
    type Error = Error;
    fn serialize_field<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), Error> {
        ser::SerializeSeq::serialize_element(&mut self.0, value)
    }
    fn end(self) -> Result<Vec<Value>, Error> {
        Ok(vec![ser::SerializeSeq::end(self.0)?])
    }
}

impl ser::SerializeTupleVariant for One<VariantBuilder<SeqBuilder>> {
    type Ok = Vec<Value>;
    type Error = Error;
    fn serialize_field<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), Error> {
        ser::SerializeTupleVariant::serialize_field(&mut self.0, value)
    }
    fn end(self) -> Result<Vec<Value>, Error> {
        Ok(vec![ser::SerializeTupleVariant::end(self.0)?])
    }
}

impl ser::SerializeMap for One<MapBuilder> {
    type Ok = Vec<Value>;
    type Error = Error;
    fn serialize_key<T: Serialize + ?Sized>(&mut self, key: &T) -> Result<(), Error> {
        ser::SerializeMap::serialize_key(&mut self.0, key)
    }
    fn serialize_value<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), Error> {
        ser::SerializeMap::serialize_value(&mut self.0, value)
    }
    fn end(self) -> Result<Vec<Value>, Error> {
        Ok(vec![ser::SerializeMap::end(self.0)?])
    }
}

impl ser::SerializeStruct for One<MapBuilder> {
    type Ok = Vec<Value>;
    type Error = Error;
    fn serialize_field<T: Serialize + ?Sized>(&mut self, key: &'static str, value: &T) -> Result<(), Error> {
        ser::SerializeStruct::serialize_field(&mut self.0, key, value)
    }
    fn end(self) -> Result<Vec<Value>, Error> {
        Ok(vec![ser::SerializeStruct::end(self.0)?])
    }
}

impl ser::SerializeStructVariant for One<VariantBuilder<MapBuilder>> {
    type Ok = Vec<Value>;
    type Error = Error;
    fn serialize_field<T: Serialize + ?Sized>(&mut self, key: &'static str, value: &T) -> Result<(), Error> {
        ser::SerializeStructVariant::serialize_field(&mut self.0, key, value)
    }
    fn end(self) -> Result<Vec<Value>, Error> {
        Ok(vec![ser::SerializeStructVariant::end(self.0)?])
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Serialize;

    #[derive(Serialize)]
    struct Upload<'a> {
        name: &'a str,
        size: u32,
        data: Bytes,
        tags: Vec<&'a str>,
        ratio: f64,
        missing: Option<u8>,
    }

    #[derive(Serialize)]
    enum Shape {
        Dot,
        Circle(f64),
        Rect { w: u8, h: u8 },
        Pair(u8, u8),
    }

    fn json(v: &Value) -> String {
        serde_json::to_string(&v.clone().into_json()).unwrap()
    }

    #[test]
    fn structs_keep_their_bytes_binary_and_the_rest_as_json_writes_it() {
        let up = Upload {
            name: "a.png",
            size: 3,
            data: Bytes::from_static(b"\x01\x02"),
            tags: vec!["x"],
            ratio: f64::NAN,
            missing: None,
        };
        let v = to_value(&up).unwrap();
        assert_eq!(v.get("data"), Some(&Value::Binary(Bytes::from_static(b"\x01\x02"))));
        assert!(v.has_binary());
        let mut no_bin = v.clone();
        if let Value::Object(m) = &mut no_bin {
            m.shift_remove("data");
        }
        assert_eq!(json(&no_bin), r#"{"name":"a.png","size":3,"tags":["x"],"ratio":null,"missing":null}"#);
        // Everything without bytes comes out as serde_json writes it.
        for shape in [Shape::Dot, Shape::Circle(1.5), Shape::Rect { w: 1, h: 2 }, Shape::Pair(3, 4)] {
            assert_eq!(json(&to_value(&shape).unwrap()), serde_json::to_string(&shape).unwrap());
        }
        let mut keyed = std::collections::BTreeMap::new();
        keyed.insert(7u32, "seven");
        assert_eq!(json(&to_value(&keyed).unwrap()), r#"{"7":"seven"}"#);
        let mut bad = std::collections::BTreeMap::new();
        bad.insert(vec![1u8], 1);
        assert!(to_value(&bad).is_err(), "a key that cannot be a string is an error");
    }

    #[test]
    fn arguments_are_one_per_tuple_element_none_for_unit_else_one() {
        assert_eq!(to_args(&()).unwrap(), Vec::<Value>::new());
        assert_eq!(to_args(&(1, "two")).unwrap(), vec![Value::from(1), Value::from("two")]);
        assert_eq!(to_args("one").unwrap(), vec![Value::from("one")]);
        assert_eq!(to_args(&vec![1, 2]).unwrap(), vec![Value::Array(vec![Value::from(1), Value::from(2)])]);
        let up =
            Upload { name: "n", size: 1, data: Bytes::from_static(b"z"), tags: vec![], ratio: 0.5, missing: Some(1) };
        let args = to_args(&(&up, Bytes::from_static(b"raw"))).unwrap();
        assert_eq!(args.len(), 2);
        assert_eq!(args[0].get("data"), Some(&Value::Binary(Bytes::from_static(b"z"))));
        assert_eq!(args[1], Value::Binary(Bytes::from_static(b"raw")));
    }
}
