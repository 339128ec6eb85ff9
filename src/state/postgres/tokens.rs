//! Rotated token pairs in `redrive.tokens`, so that a CI runner started from scratch presents the
//! refresh token the last run was given, not the consumed seed token. Keyed, like the local
//! files, by a digest of the key; never written to the journal.
//!
//! A renewal holds the row in a transaction of its own (docs/state.md, "Token rotation across
//! runners"): `SELECT … FOR UPDATE`, the refresh, the new pair, `COMMIT`. Runners sharing the
//! database therefore present each single-use refresh token once.

use std::sync::Arc;

use sha2::{Digest as _, Sha256};

use super::bridge::{Bridge, database, timed};
use crate::state::tokens::HeldPair;
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

fn parse(location: &str, what: &str, text: &str) -> Result<TokenPair, StateError> {
    serde_json::from_str(text).map_err(|e| StateError::Database {
        location: location.to_owned(),
        what: what.to_owned(),
        error: format!("not a stored token pair: {e}"),
        hint: "delete that row of `redrive.tokens`; the next run authenticates with the runbook's credentials",
    })
}

const UPSERT: &str = "INSERT INTO redrive.tokens (key, pair) VALUES ($1, $2)
     ON CONFLICT (key) DO UPDATE SET pair = EXCLUDED.pair, updated_at = now()";

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
            parse(&location, "read a stored token", &row.get::<_, String>(0)).map(Some)
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
            timed(&location, client.execute(UPSERT, &[&key, &text]))
                .await?
                .map_err(|e| db.at(&e))?;
            Ok(())
        })
    }

    fn hold(&self, key: &str) -> Result<Box<dyn HeldPair + '_>, StateError> {
        let pool = self.bridge.pool().clone();
        let location = self.bridge.location().to_owned();
        let key = digest(key);
        let (client, current) = {
            let (location, key) = (location.clone(), key.clone());
            self.bridge.call(async move {
                let db = database(&location, "take a stored token for renewal");
                let client = timed(&location, pool.get()).await?.map_err(|e| db.at(&e))?;
                let read = async {
                    client.batch_execute("BEGIN").await?;
                    // The row lock alone would not serialize the first renewal of a key that
                    // has no row yet (every runner starting from the runbook's seed token).
                    client
                        .execute(
                            "SELECT pg_advisory_xact_lock(hashtextextended('redrive.tokens' || $1, 0))",
                            &[&key],
                        )
                        .await?;
                    client
                        .query_opt(
                            "SELECT pair FROM redrive.tokens WHERE key = $1 FOR UPDATE",
                            &[&key],
                        )
                        .await
                };
                // On failure the connection is mid-transaction: it must not go back to the pool.
                let row = match timed(&location, read).await {
                    Ok(Ok(row)) => row,
                    Ok(Err(e)) => {
                        drop(deadpool_postgres::Object::take(client));
                        return Err(db.at(&e));
                    }
                    Err(timeout) => {
                        drop(deadpool_postgres::Object::take(client));
                        return Err(timeout);
                    }
                };
                let current = match row {
                    Some(row) => Some(parse(&location, "read a stored token", &row.get::<_, String>(0))?),
                    None => None,
                };
                Ok((client, current))
            })?
        };
        Ok(Box::new(PgHeld {
            bridge: self.bridge.clone(),
            location,
            key,
            client: Some(client),
            current,
        }))
    }
}

/// The row held by an open transaction on a connection of the pool.
struct PgHeld {
    bridge: Arc<Bridge>,
    location: String,
    key: String,
    client: Option<deadpool_postgres::Object>,
    current: Option<TokenPair>,
}

impl HeldPair for PgHeld {
    fn current(&self) -> Option<&TokenPair> {
        self.current.as_ref()
    }

    fn commit(mut self: Box<Self>, pair: &TokenPair) -> Result<(), StateError> {
        let client = self
            .client
            .take()
            .expect("a held pair has its connection until it ends");
        let (location, key) = (self.location.clone(), self.key.clone());
        let text = serde_json::to_string(pair).expect("token pairs serialize");
        self.bridge.call(async move {
            let db = database(&location, "store a rotated token");
            // A synchronous commit (the default): the provider has already consumed the old
            // refresh token, so losing the new one would lock every runner out.
            let write = async {
                client.execute(UPSERT, &[&key, &text]).await?;
                client.batch_execute("COMMIT").await
            };
            match timed(&location, write).await {
                Ok(Ok(())) => Ok(()),
                Ok(Err(e)) => {
                    drop(deadpool_postgres::Object::take(client));
                    Err(db.at(&e))
                }
                Err(timeout) => {
                    drop(deadpool_postgres::Object::take(client));
                    Err(timeout)
                }
            }
        })
    }
}

impl Drop for PgHeld {
    fn drop(&mut self) {
        // Not committed (the renewal failed, or another runner's pair was used): roll back in
        // the background, so the row is free for the next holder at once.
        if let Some(client) = self.client.take() {
            let location = self.location.clone();
            self.bridge.spawn(async move {
                let rolled_back = timed(&location, client.batch_execute("ROLLBACK")).await;
                if !matches!(rolled_back, Ok(Ok(()))) {
                    drop(deadpool_postgres::Object::take(client));
                }
            });
        }
    }
}
