//! The runbook's JSON Schema: generated from the model, and used to check loaded runbooks.

use schemars::generate::SchemaSettings;
use serde_json::Value;

use super::model::Manifest;

/// Where the published schema lives, for the `$id` and the editors' modeline.
pub const SCHEMA_ID: &str = "https://redrive.dev/schemas/redrive.schema.json";

/// The JSON Schema (draft 2020-12) of a runbook.
#[must_use]
pub fn generate() -> Value {
    let generator = SchemaSettings::draft2020_12().into_generator();
    let mut schema = generator.into_root_schema_for::<Manifest>().to_value();
    crate::schema_formats::standardize(&mut schema);
    if let Some(obj) = schema.as_object_mut() {
        obj.insert("$id".into(), Value::String(SCHEMA_ID.into()));
    }
    schema
}

/// The schema as committed in `schemas/`: pretty JSON with a final newline.
#[must_use]
pub fn generate_text() -> String {
    let mut text = serde_json::to_string_pretty(&generate()).expect("a schema serializes");
    text.push('\n');
    text
}
