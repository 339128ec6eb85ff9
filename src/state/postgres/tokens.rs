//! Rotated token pairs in `redrive.tokens`, so that a CI runner started from scratch presents the
//! refresh token the last run was given, not the consumed seed token. Keyed, like the local
//! files, by a digest of the key; never written to the journal.

use std::sync::Arc;

use sha2::{Digest as _, Sha256};

use super::bridge::{Bridge, database, timed};
use crate::state::{StateError, TokenPair, TokenStore};

#[derive(Debug)]
pub struct PgTokens {
    bridge: Arc<Bridge>,
}

impl PgTokens {
    pub fn new(bridge: Arc<Bridge>) -> Self {
        Self { bridge }
    }
}

fn digest(key: &str) -> String {
    Sha256::digest(key.as_bytes())[..12]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

impl TokenStore for PgTokens {
    fn get(&self, key: &str) -> Result<Option<TokenPair>, StateError> {
        let pool = self.bridge.pool().clone();
        let location = self.bridge.location().to_owned();
        let key = digest(key);
        self.bridge.call(async move {
            let db = database(&location, "read a stored token");
            let client = timed(&location, pool.get()).await?.map_err(|e| db.at(&e))?;
            let row = timed(
                &location,
                client.query_opt("SELECT pair FROM redrive.tokens WHERE key = $1", &[&key]),
            )
            .await?
            .map_err(|e| db.at(&e))?;
            let Some(row) = row else { return Ok(None) };
            let text: String = row.get(0);
            serde_json::from_str(&text)
                .map(Some)
                .map_err(|e| StateError::Database {
                    location: location.clone(),
                    what: "read a stored token".to_owned(),
                    error: format!("not a stored token pair: {e}"),
                    hint: "delete that row of `redrive.tokens`; the next run authenticates with the runbook's credentials",
                })
        })
    }

    fn put(&self, key: &str, pair: &TokenPair) -> Result<(), StateError> {
        let pool = self.bridge.pool().clone();
        let location = self.bridge.location().to_owned();
        let key = digest(key);
        let text = serde_json::to_string(pair).expect("token pairs serialize");
        self.bridge.call(async move {
            let db = database(&location, "store a rotated token");
            let client = timed(&location, pool.get()).await?.map_err(|e| db.at(&e))?;
            // Durable when it returns (a synchronous commit): the provider has already consumed
            // the old refresh token, so losing the new one would lock the next run out.
            timed(
                &location,
                client.execute(
                    "INSERT INTO redrive.tokens (key, pair) VALUES ($1, $2)
                     ON CONFLICT (key) DO UPDATE SET pair = EXCLUDED.pair, updated_at = now()",
                    &[&key, &text],
                ),
            )
            .await?
            .map_err(|e| db.at(&e))?;
            Ok(())
        })
    }
}
