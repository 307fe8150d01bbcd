//! A serde `Deserializer` over [`Node`]s. Every error it produces carries the span of the node
//! that caused it, and unknown keys come with a did-you-mean, so the typed manifest structs can
//! use `deny_unknown_fields` and still give errors that point at the line.

use crate::diag::{did_you_mean, Diag};
use crate::source::Span;
use crate::yaml::{Node, Value};
use serde::de::{self, DeserializeSeed, IntoDeserializer, MapAccess, SeqAccess, Visitor};
use std::fmt;

/// A deserialization error with the place it happened.
#[derive(Debug, Clone)]
pub struct DeError {
    /// Message.
    pub message: String,
    /// Where, once known.
    pub span: Option<Span>,
    /// Hint.
    pub help: Option<String>,
    /// Error code.
    pub code: &'static str,
}

impl fmt::Display for DeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}
impl std::error::Error for DeError {}

impl de::Error for DeError {
    fn custom<T: fmt::Display>(msg: T) -> Self {
        DeError {
            message: msg.to_string(),
            span: None,
            help: None,
            code: "invalid-value",
        }
    }
    fn unknown_field(field: &str, expected: &'static [&'static str]) -> Self {
        DeError {
            message: format!("unknown key `{field}`"),
            span: None,
            help: Some(if expected.is_empty() {
                "remove it".to_owned()
            } else {
                suggest(field, expected)
            }),
            code: "unknown-key",
        }
    }
    fn unknown_variant(variant: &str, expected: &'static [&'static str]) -> Self {
        DeError {
            message: format!("unknown value `{variant}`"),
            span: None,
            help: Some(suggest(variant, expected)),
            code: "unknown-value",
        }
    }
    fn missing_field(field: &'static str) -> Self {
        DeError {
            message: format!("missing required key `{field}`"),
            span: None,
            help: Some(format!("add `{field}:` here")),
            code: "missing-key",
        }
    }
}

/// `did you mean `x`?`, or the list of what is expected.
fn suggest(word: &str, expected: &[&str]) -> String {
    match did_you_mean(word, expected.iter().copied()) {
        Some(s) => format!("did you mean `{s}`?"),
        None => format!(
            "expected one of: {}",
            expected
                .iter()
                .map(|e| format!("`{e}`"))
                .collect::<Vec<_>>()
                .join(", ")
        ),
    }
}

impl DeError {
    fn at(mut self, span: Span) -> Self {
        if self.span.is_none() {
            self.span = Some(span);
        }
        self
    }

    /// Converts into a diagnostic.
    pub fn into_diag(self) -> Diag {
        let mut d = Diag::error(self.code, self.message).at_opt(self.span);
        d.help = self.help;
        d
    }
}

/// Deserializes a typed value from a node.
pub fn from_node<'de, T: de::Deserialize<'de>>(node: &'de Node) -> Result<T, DeError> {
    T::deserialize(NodeDe(node)).map_err(|e| e.at(node.span))
}

/// The deserializer.
#[derive(Clone, Copy)]
pub struct NodeDe<'a>(pub &'a Node);

impl<'a> NodeDe<'a> {
    fn invalid(&self, exp: &str) -> DeError {
        DeError {
            message: format!("expected {exp}, found {}", describe(self.0)),
            span: Some(self.0.span),
            help: None,
            code: "invalid-type",
        }
    }
}

fn describe(n: &Node) -> String {
    match &n.value {
        Value::Str(s) if s.len() <= 40 => format!("the string `{s}`"),
        Value::Int(i) => format!("the number {i}"),
        Value::Bool(b) => format!("`{b}`"),
        _ => n.type_name().to_owned(),
    }
}

macro_rules! forward_int {
    ($($m:ident $t:ty => $v:ident),*) => {$(
        fn $m<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
            match &self.0.value {
                Value::Int(i) => match <$t>::try_from(*i) {
                    Ok(x) => visitor.$v(x).map_err(|e: DeError| e.at(self.0.span)),
                    Err(_) => Err(self.invalid(concat!("a number that fits ", stringify!($t)))),
                },
                Value::Str(s) => match s.trim().parse::<$t>() {
                    // Numbers that came through `${env:..}` arrive as strings.
                    Ok(x) => visitor.$v(x).map_err(|e: DeError| e.at(self.0.span)),
                    Err(_) => Err(self.invalid("a whole number")),
                },
                _ => Err(self.invalid("a whole number")),
            }
        }
    )*};
}

impl<'de> de::Deserializer<'de> for NodeDe<'de> {
    type Error = DeError;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        let span = self.0.span;
        let r = match &self.0.value {
            Value::Null => visitor.visit_unit(),
            Value::Bool(b) => visitor.visit_bool(*b),
            Value::Int(i) => visitor.visit_i64(*i),
            Value::Float(f) => visitor.visit_f64(*f),
            Value::Str(s) => visitor.visit_borrowed_str(s),
            Value::Seq(items) => visitor.visit_seq(Seq {
                iter: items.iter(),
                span,
            }),
            Value::Map(entries) => visitor.visit_map(Map {
                iter: entries.iter(),
                value: None,
                span,
            }),
        };
        r.map_err(|e| e.at(span))
    }

    forward_int!(deserialize_u8 u8 => visit_u8, deserialize_u16 u16 => visit_u16, deserialize_u32 u32 => visit_u32,
        deserialize_u64 u64 => visit_u64, deserialize_i8 i8 => visit_i8, deserialize_i16 i16 => visit_i16,
        deserialize_i32 i32 => visit_i32, deserialize_i64 i64 => visit_i64);

    fn deserialize_f64<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        match &self.0.value {
            Value::Int(i) => visitor.visit_f64(*i as f64),
            Value::Float(f) => visitor.visit_f64(*f),
            Value::Str(s) => match s.trim().parse::<f64>() {
                Ok(f) => visitor.visit_f64(f),
                Err(_) => Err(self.invalid("a number")),
            },
            _ => Err(self.invalid("a number")),
        }
        .map_err(|e| e.at(self.0.span))
    }
    fn deserialize_f32<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        self.deserialize_f64(visitor)
    }

    fn deserialize_bool<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        match &self.0.value {
            Value::Bool(b) => visitor.visit_bool(*b),
            Value::Str(s) if s == "true" || s == "false" => visitor.visit_bool(s == "true"),
            _ => Err(self.invalid("`true` or `false`")),
        }
        .map_err(|e| e.at(self.0.span))
    }

    fn deserialize_string<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        self.deserialize_str(visitor)
    }
    fn deserialize_str<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        match &self.0.value {
            Value::Str(s) => visitor.visit_borrowed_str(s),
            // YAML turns `version: 1.0` or `name: 123` into numbers; a string field takes them.
            Value::Int(_) | Value::Float(_) | Value::Bool(_) => {
                visitor.visit_string(self.0.scalar_text().unwrap_or_default())
            }
            _ => Err(self.invalid("a string")),
        }
        .map_err(|e| e.at(self.0.span))
    }

    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        match self.0.value {
            Value::Null => visitor.visit_none(),
            _ => visitor.visit_some(self),
        }
        .map_err(|e| e.at(self.0.span))
    }

    fn deserialize_seq<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        match &self.0.value {
            Value::Seq(items) => visitor.visit_seq(Seq {
                iter: items.iter(),
                span: self.0.span,
            }),
            _ => Err(self.invalid("a list")),
        }
        .map_err(|e| e.at(self.0.span))
    }

    fn deserialize_map<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        match &self.0.value {
            Value::Map(entries) => visitor.visit_map(Map {
                iter: entries.iter(),
                value: None,
                span: self.0.span,
            }),
            Value::Null => visitor.visit_map(Map {
                iter: [].iter(),
                value: None,
                span: self.0.span,
            }),
            _ => Err(self.invalid("a mapping")),
        }
        .map_err(|e| e.at(self.0.span))
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, DeError> {
        self.deserialize_map(visitor)
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _variants: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, DeError> {
        match &self.0.value {
            Value::Str(s) => visitor
                .visit_enum(s.as_str().into_deserializer())
                .map_err(|e: DeError| e.at(self.0.span)),
            Value::Map(entries) if entries.len() == 1 => visitor
                .visit_enum(Enum {
                    key: &entries[0].0,
                    value: &entries[0].1,
                })
                .map_err(|e| e.at(self.0.span)),
            _ => Err(self.invalid("a name or a single-key mapping")),
        }
    }

    fn deserialize_identifier<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        self.deserialize_str(visitor)
    }

    fn deserialize_unit<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        match self.0.value {
            Value::Null => visitor.visit_unit(),
            _ => Err(self.invalid("nothing")),
        }
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        visitor: V,
    ) -> Result<V::Value, DeError> {
        visitor.visit_newtype_struct(self)
    }

    serde::forward_to_deserialize_any! {
        i128 u128 char bytes byte_buf unit_struct tuple tuple_struct ignored_any
    }
}

struct Seq<'a> {
    iter: std::slice::Iter<'a, Node>,
    span: Span,
}

impl<'de> SeqAccess<'de> for Seq<'de> {
    type Error = DeError;
    fn next_element_seed<T: DeserializeSeed<'de>>(
        &mut self,
        seed: T,
    ) -> Result<Option<T::Value>, DeError> {
        let _ = self.span;
        match self.iter.next() {
            Some(n) => seed
                .deserialize(NodeDe(n))
                .map(Some)
                .map_err(|e| e.at(n.span)),
            None => Ok(None),
        }
    }
    fn size_hint(&self) -> Option<usize> {
        Some(self.iter.len())
    }
}

struct Map<'a> {
    iter: std::slice::Iter<'a, (Node, Node)>,
    value: Option<&'a Node>,
    span: Span,
}

impl<'de> MapAccess<'de> for Map<'de> {
    type Error = DeError;
    fn next_key_seed<K: DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, DeError> {
        let _ = self.span;
        match self.iter.next() {
            Some((k, v)) => {
                self.value = Some(v);
                seed.deserialize(NodeDe(k))
                    .map(Some)
                    .map_err(|e| e.at(k.span))
            }
            None => Ok(None),
        }
    }
    fn next_value_seed<V: DeserializeSeed<'de>>(&mut self, seed: V) -> Result<V::Value, DeError> {
        let v = self.value.take().expect("value after key");
        seed.deserialize(NodeDe(v)).map_err(|e| e.at(v.span))
    }
}

struct Enum<'a> {
    key: &'a Node,
    value: &'a Node,
}

impl<'de> de::EnumAccess<'de> for Enum<'de> {
    type Error = DeError;
    type Variant = NodeDe<'de>;
    fn variant_seed<V: DeserializeSeed<'de>>(
        self,
        seed: V,
    ) -> Result<(V::Value, NodeDe<'de>), DeError> {
        let v = seed
            .deserialize(NodeDe(self.key))
            .map_err(|e| e.at(self.key.span))?;
        Ok((v, NodeDe(self.value)))
    }
}

impl<'de> de::VariantAccess<'de> for NodeDe<'de> {
    type Error = DeError;
    fn unit_variant(self) -> Result<(), DeError> {
        Ok(())
    }
    fn newtype_variant_seed<T: DeserializeSeed<'de>>(self, seed: T) -> Result<T::Value, DeError> {
        seed.deserialize(self).map_err(|e| e.at(self.0.span))
    }
    fn tuple_variant<V: Visitor<'de>>(self, _len: usize, visitor: V) -> Result<V::Value, DeError> {
        de::Deserializer::deserialize_seq(self, visitor)
    }
    fn struct_variant<V: Visitor<'de>>(
        self,
        _fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, DeError> {
        de::Deserializer::deserialize_map(self, visitor)
    }
}
