//! Secret references: runbooks name where a secret lives, never the secret itself.

use std::borrow::Cow;
use std::fmt;

use schemars::{JsonSchema, Schema, SchemaGenerator, json_schema};
use serde::{Deserialize, Serialize};

/// Where a secret is read from at send time: an environment variable or a file.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum SecretRef {
    /// The name of an environment variable.
    Env(String),
    /// A file path, relative to the runbook; one trailing newline is dropped.
    File(String),
}

/// The schema name; the schema check recognises secret slots by it.
pub const SECRET_REF: &str = "SecretRef";

impl fmt::Display for SecretRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Env(name) => write!(f, "{{env: {name}}}"),
            Self::File(path) => write!(f, "{{file: {path}}}"),
        }
    }
}

impl JsonSchema for SecretRef {
    fn schema_name() -> Cow<'static, str> {
        SECRET_REF.into()
    }

    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "description": "A reference to a secret, resolved when a request is sent: `{env: NAME}` or `{file: path}`. Secrets are never written inline.",
            "type": "object",
            "oneOf": [
                {
                    "properties": { "env": { "type": "string", "pattern": "^[A-Za-z_][A-Za-z0-9_]*$", "description": "Environment variable holding the secret." } },
                    "required": ["env"],
                    "additionalProperties": false
                },
                {
                    "properties": { "file": { "type": "string", "minLength": 1, "description": "File holding the secret, relative to the runbook." } },
                    "required": ["file"],
                    "additionalProperties": false
                }
            ]
        })
    }
}
