//! A YAML document as JSON plus a map from JSON pointers to source spans.
//!
//! This is the one place that knows serde-saphyr. Everything after loading works on
//! `serde_json::Value` (what the schema validator and serde want) and asks the
//! [`SpanMap`] where a pointer came from.

use std::collections::HashMap;
use std::fmt;

use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Number, Value};
use serde_saphyr::{Location, Spanned};

use super::source::{SourceFile, Span};

/// Where a node sits in the file: its value and, for mapping entries, its key.
#[derive(Debug, Clone, Copy)]
pub struct NodeSpan {
    pub value: Span,
    pub key: Option<Span>,
}

/// JSON pointer → span, for every node of a document.
#[derive(Debug, Default)]
pub struct SpanMap(HashMap<String, NodeSpan>);

impl SpanMap {
    #[must_use]
    pub fn get(&self, pointer: &str) -> Option<NodeSpan> {
        self.0.get(pointer).copied()
    }

    /// The span of the node at `pointer`, or of its nearest ancestor that has one.
    #[must_use]
    pub fn value_or_parent(&self, pointer: &str) -> Span {
        let mut p = pointer;
        loop {
            if let Some(s) = self.0.get(p) {
                return s.value;
            }
            match p.rfind('/') {
                Some(i) => p = &p[..i],
                None => return Span::default(),
            }
        }
    }

    /// The key's span for a mapping entry, else the value's.
    #[must_use]
    pub fn key_or_value(&self, pointer: &str) -> Span {
        self.get(pointer)
            .and_then(|s| s.key)
            .unwrap_or_else(|| self.value_or_parent(pointer))
    }
}

/// Appends one reference token to a JSON pointer, escaping it per RFC 6901.
#[must_use]
pub fn push_pointer(base: &str, token: &str) -> String {
    let mut p = String::with_capacity(base.len() + token.len() + 1);
    p.push_str(base);
    p.push('/');
    for c in token.chars() {
        match c {
            '~' => p.push_str("~0"),
            '/' => p.push_str("~1"),
            c => p.push(c),
        }
    }
    p
}

/// A parsed document before it is flattened to JSON.
enum Raw {
    Null,
    Bool(bool),
    Int(i64),
    UInt(u64),
    Float(f64),
    Str(String),
    Seq(Vec<Spanned<Raw>>),
    Map(Vec<(Spanned<Raw>, Spanned<Raw>)>),
}

impl<'de> Deserialize<'de> for Raw {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(RawVisitor)
    }
}

struct RawVisitor;

impl<'de> Visitor<'de> for RawVisitor {
    type Value = Raw;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("any YAML value")
    }

    fn visit_unit<E>(self) -> Result<Raw, E> {
        Ok(Raw::Null)
    }

    fn visit_none<E>(self) -> Result<Raw, E> {
        Ok(Raw::Null)
    }

    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Raw, D::Error> {
        Raw::deserialize(d)
    }

    fn visit_bool<E>(self, v: bool) -> Result<Raw, E> {
        Ok(Raw::Bool(v))
    }

    fn visit_i64<E>(self, v: i64) -> Result<Raw, E> {
        Ok(Raw::Int(v))
    }

    fn visit_u64<E>(self, v: u64) -> Result<Raw, E> {
        Ok(Raw::UInt(v))
    }

    fn visit_i128<E: de::Error>(self, v: i128) -> Result<Raw, E> {
        i64::try_from(v)
            .map(Raw::Int)
            .map_err(|_| E::custom(format!("the integer {v} is too large")))
    }

    fn visit_u128<E: de::Error>(self, v: u128) -> Result<Raw, E> {
        u64::try_from(v)
            .map(Raw::UInt)
            .map_err(|_| E::custom(format!("the integer {v} is too large")))
    }

    fn visit_f64<E>(self, v: f64) -> Result<Raw, E> {
        Ok(Raw::Float(v))
    }

    fn visit_str<E>(self, v: &str) -> Result<Raw, E> {
        Ok(Raw::Str(v.to_owned()))
    }

    fn visit_string<E>(self, v: String) -> Result<Raw, E> {
        Ok(Raw::Str(v))
    }

    fn visit_bytes<E: de::Error>(self, v: &[u8]) -> Result<Raw, E> {
        String::from_utf8(v.to_vec())
            .map(Raw::Str)
            .map_err(|_| E::custom("binary data is not text"))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Raw, A::Error> {
        let mut out = Vec::new();
        while let Some(n) = seq.next_element::<Spanned<Raw>>()? {
            out.push(n);
        }
        Ok(Raw::Seq(out))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Raw, A::Error> {
        let mut out = Vec::new();
        while let Some(k) = map.next_key::<Spanned<Raw>>()? {
            let v = map.next_value::<Spanned<Raw>>()?;
            out.push((k, v));
        }
        Ok(Raw::Map(out))
    }
}

/// A key that is not a plain scalar (`? [a, b]: 1`), which JSON cannot hold.
#[derive(Debug)]
pub struct ComplexKey {
    pub span: Span,
}

/// Parses one YAML document with the limits that keep hostile input cheap.
///
/// # Errors
/// The parser's error: syntax, a duplicate key, a budget (aliases, depth, size) exceeded.
pub fn parse(
    file: &SourceFile,
    max_depth: usize,
) -> Result<(Value, SpanMap, Vec<ComplexKey>), serde_saphyr::Error> {
    let options = serde_saphyr::options! {
        strict_booleans: true,
        budget: serde_saphyr::budget! {
            max_aliases: 1_000,
            max_anchors: 1_000,
            max_depth: max_depth,
            max_nodes: 2_000_000,
        },
    };
    let raw: Spanned<Raw> = serde_saphyr::from_str_with_options(&file.text, options)?;
    let mut flat = Flattener {
        file,
        spans: SpanMap::default(),
        complex: Vec::new(),
    };
    let value = flat.flatten(raw, String::new(), None);
    Ok((value, flat.spans, flat.complex))
}

struct Flattener<'a> {
    file: &'a SourceFile,
    spans: SpanMap,
    complex: Vec<ComplexKey>,
}

impl Flattener<'_> {
    fn span(&self, loc: &Location, container: bool) -> Span {
        let s = loc.span();
        // Byte offsets are absent for some tokens; line and column always come through.
        let start = match s.byte_offset() {
            Some(b) if usize::try_from(b).is_ok_and(|b| b <= self.file.text.len()) => {
                usize::try_from(b).unwrap_or(0)
            }
            _ => self.file.offset_of(
                usize::try_from(loc.line()).unwrap_or(1),
                usize::try_from(loc.column()).unwrap_or(1),
            ),
        };
        let start = self.file.clamp(start);
        let len = s
            .byte_len()
            .and_then(|l| usize::try_from(l).ok())
            .unwrap_or(0);
        let len = if container || len == 0 || start + len > self.file.text.len() {
            1
        } else {
            len
        };
        Span::new(start, self.file.clamp(start + len))
    }

    fn flatten(&mut self, node: Spanned<Raw>, pointer: String, key: Option<Span>) -> Value {
        let container = matches!(node.value, Raw::Seq(_) | Raw::Map(_));
        let span = self.span(&node.referenced, container);
        let value = match node.value {
            Raw::Null => Value::Null,
            Raw::Bool(b) => Value::Bool(b),
            Raw::Int(i) => Value::Number(i.into()),
            Raw::UInt(u) => Value::Number(u.into()),
            Raw::Float(f) => Number::from_f64(f).map_or(Value::Null, Value::Number),
            Raw::Str(s) => Value::String(s),
            Raw::Seq(items) => Value::Array(
                items
                    .into_iter()
                    .enumerate()
                    .map(|(i, item)| {
                        self.flatten(item, push_pointer(&pointer, &i.to_string()), None)
                    })
                    .collect(),
            ),
            Raw::Map(entries) => {
                let mut map = Map::with_capacity(entries.len());
                for (k, v) in entries {
                    let key_span = self.span(&k.referenced, false);
                    let text = match k.value {
                        Raw::Str(s) => s,
                        Raw::Int(i) => i.to_string(),
                        Raw::UInt(u) => u.to_string(),
                        Raw::Bool(b) => b.to_string(),
                        Raw::Float(f) => f.to_string(),
                        Raw::Null => "null".to_owned(),
                        Raw::Seq(_) | Raw::Map(_) => {
                            self.complex.push(ComplexKey { span: key_span });
                            continue;
                        }
                    };
                    let child = push_pointer(&pointer, &text);
                    let value = self.flatten(v, child, Some(key_span));
                    map.insert(text, value);
                }
                Value::Object(map)
            }
        };
        self.spans.0.insert(pointer, NodeSpan { value: span, key });
        value
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;

    fn load(text: &str) -> (Value, SpanMap) {
        let f = SourceFile::new(Path::new("t.yaml"), text.to_owned());
        let (v, s, _) = parse(&f, 64).unwrap();
        (v, s)
    }

    #[test]
    fn spans_follow_pointers() {
        let (v, spans) = load("a: 1\nb:\n  - x\n  - {y: 2, \"z/w\": \"q\"}\nc: yes\n");
        assert_eq!(v["c"], Value::String("yes".into()));
        assert_eq!(spans.get("/a").unwrap().value, Span::new(3, 4));
        assert_eq!(spans.get("/a").unwrap().key, Some(Span::new(0, 1)));
        assert_eq!(spans.get("/b/0").unwrap().value, Span::new(12, 13));
        assert_eq!(spans.get("/b/1/z~1w").unwrap().value, Span::new(32, 35));
        assert_eq!(
            spans.value_or_parent("/b/1/missing"),
            spans.get("/b/1").unwrap().value
        );
    }

    #[test]
    fn duplicate_keys_are_errors() {
        let f = SourceFile::new(Path::new("t.yaml"), "a: 1\na: 2\n".to_owned());
        assert!(parse(&f, 64).is_err());
    }
}
