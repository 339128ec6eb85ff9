//! Generated schemas keep to the formats JSON Schema defines. schemars writes Rust's integer
//! types as formats (`uint32`, `uint64`, `uint`, `int64`, `double`…), which strict validators
//! refuse (ajv in its default strict mode: `unknown format "uint32"`); this rewrites each as
//! the bounds it means and drops the format.

use serde_json::{Map, Value};

/// The formats of JSON Schema draft 2020-12 (format-annotation vocabulary).
const STANDARD: &[&str] = &[
    "date-time",
    "date",
    "time",
    "duration",
    "email",
    "idn-email",
    "hostname",
    "idn-hostname",
    "ipv4",
    "ipv6",
    "uri",
    "uri-reference",
    "iri",
    "iri-reference",
    "uuid",
    "uri-template",
    "json-pointer",
    "relative-json-pointer",
    "regex",
];

/// The bounds an integer format stands for.
fn bounds(format: &str) -> Option<(Value, Value)> {
    Some(match format {
        "uint8" => (0.into(), u8::MAX.into()),
        "int8" => (i8::MIN.into(), i8::MAX.into()),
        "uint16" => (0.into(), u16::MAX.into()),
        "int16" => (i16::MIN.into(), i16::MAX.into()),
        "uint32" => (0.into(), u32::MAX.into()),
        "int32" => (i32::MIN.into(), i32::MAX.into()),
        "uint64" | "uint" => (0.into(), u64::MAX.into()),
        "int64" | "int" => (i64::MIN.into(), i64::MAX.into()),
        _ => return None,
    })
}

fn fix_object(map: &mut Map<String, Value>) {
    let format = map.get("format").and_then(Value::as_str).map(str::to_owned);
    if let Some(format) = format
        && !STANDARD.contains(&format.as_str())
    {
        map.remove("format");
        if let Some((min, max)) = bounds(&format) {
            // A tighter bound the type already states stays.
            map.entry("minimum").or_insert(min);
            map.entry("maximum").or_insert(max);
        }
    }
    for value in map.values_mut() {
        standardize(value);
    }
}

/// Rewrites every non-standard `format` in a schema, in place.
pub fn standardize(schema: &mut Value) {
    match schema {
        Value::Object(map) => fix_object(map),
        Value::Array(items) => items.iter_mut().for_each(standardize),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn integer_formats_become_bounds() {
        let mut s = serde_json::json!({
            "properties": {
                "a": {"type": "integer", "format": "uint32", "minimum": 0},
                "b": {"type": "integer", "format": "uint16", "minimum": 1, "maximum": 120},
                "c": {"type": "number", "format": "double"},
                "d": {"type": "string", "format": "date-time"},
                "format": {"type": "string"}
            }
        });
        standardize(&mut s);
        let p = &s["properties"];
        assert_eq!(
            p["a"],
            serde_json::json!({"type": "integer", "minimum": 0, "maximum": 4_294_967_295_u64})
        );
        assert_eq!(
            p["b"],
            serde_json::json!({"type": "integer", "minimum": 1, "maximum": 120})
        );
        assert_eq!(p["c"], serde_json::json!({"type": "number"}));
        assert_eq!(p["d"]["format"], "date-time");
        // A property named `format` is not a format.
        assert_eq!(p["format"], serde_json::json!({"type": "string"}));
    }
}
