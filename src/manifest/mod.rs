//! Loading a runbook: YAML with spans, schema check, semantic check, templates and rendering.
pub mod diagnostic;
pub mod load;
pub mod model;
pub mod node;
pub mod runbook;
pub mod schema;
pub mod schema_check;
pub mod source;
