//! Where a runbook's state lives when it is not the files beside it: a shared PostgreSQL
//! database, named by a secret reference (the DSN holds a password).

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::SecretRef;

/// The shared state of this runbook (journal, apply lock, rotated tokens). `--state` and
/// `REDRIVE_STATE` win over it; without any of them the state is `.redrive/` beside the runbook.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct StateSpec {
    /// The PostgreSQL DSN (`postgres://USER:PASSWORD@HOST:PORT/DB`), read from the environment
    /// or a file, never written in the runbook.
    pub dsn: SecretRef,
}
