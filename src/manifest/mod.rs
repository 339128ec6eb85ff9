//! Loading a runbook: YAML with spans, schema check, semantic check, templates and rendering.
pub mod check;
pub mod diagnostic;
pub mod input_values;
pub mod inputs;
pub mod load;
pub mod model;
pub mod node;
pub mod params;
pub mod paths;
pub mod render;
pub mod runbook;
pub mod schema;
pub mod schema_check;
pub mod secrets;
pub mod source;
pub mod span;
pub mod template;
