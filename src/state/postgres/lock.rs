//! The apply lock of the shared state: a row in `redrive.locks` with a lease on the server's
//! clock. The holder renews it every third of the lease while it lives; a row past its expiry
//! belongs to a runner that died (`kill -9`, a lost machine) and the next apply takes it over,
//! saying so, without anyone editing the table. The lock's token fences the journal: a runner
//! that stalled past its lease and lost the lock can write nothing more.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use sha2::Digest as _;
use tokio::sync::oneshot;

use super::bridge::{Bridge, database, timed};
use crate::state::{Lock, StateError};

/// The lock, renewed until dropped; dropping it deletes the row.
#[derive(Debug)]
pub struct LeaseLock {
    bridge: Arc<Bridge>,
    key: String,
    token: String,
    fence: Arc<Mutex<Option<String>>>,
    stop: Option<oneshot::Sender<()>>,
}

impl Lock for LeaseLock {}

/// A token no other lock of any runner has: the holder's identity, the time and a digest.
fn new_token() -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default()
        .as_nanos();
    let seed = format!("{}/{now}/{:p}", super::journal::runner_id(), &now);
    let digest = sha2::Sha256::digest(seed.as_bytes());
    digest[..16].iter().map(|b| format!("{b:02x}")).collect()
}

/// Takes the lock of `key`, or says who holds it; the second value says whose expired lock was
/// taken over.
///
/// # Errors
/// [`StateError::Leased`] while a live runner holds it; database errors.
pub fn acquire(
    bridge: &Arc<Bridge>,
    key: &str,
    holder: &str,
    lease: Duration,
    fence: Arc<Mutex<Option<String>>>,
) -> Result<(LeaseLock, Option<String>), StateError> {
    let token = new_token();
    let lease_ms = i64::try_from(lease.as_millis()).unwrap_or(i64::MAX);
    let pool = bridge.pool().clone();
    let location = bridge.location().to_owned();
    let (k, t, h) = (key.to_owned(), token.clone(), holder.to_owned());
    let recovered = bridge.call(async move {
        let db = database(&location, "take the apply lock");
        let mut client = timed(&location, pool.get()).await?.map_err(|e| db.at(&e))?;
        let work = async {
            let tx = client.transaction().await?;
            // The row, locked for this transaction: a concurrent taker waits here, then sees
            // this one's lock.
            let before = tx
                .query_opt(
                    "SELECT holder, expires_at::text, expires_at < now() FROM redrive.locks
                     WHERE state_key = $1 FOR UPDATE",
                    &[&k],
                )
                .await?;
            let taken = tx
                .query_opt(
                    "INSERT INTO redrive.locks AS l (state_key, token, holder, expires_at)
                     VALUES ($1, $2, $3, now() + $4::float8 * interval '1 millisecond')
                     ON CONFLICT (state_key) DO UPDATE
                        SET token = EXCLUDED.token, holder = EXCLUDED.holder,
                            acquired_at = now(), heartbeat_at = now(),
                            expires_at = EXCLUDED.expires_at
                        WHERE l.expires_at < now()
                     RETURNING l.token",
                    &[&k, &t, &h, &(lease_ms as f64)],
                )
                .await?;
            let held_by = match (&taken, &before) {
                (None, Some(row)) => Some((row.get::<_, String>(0), row.get::<_, String>(1))),
                (None, None) => Some(("a runner that is starting".to_owned(), "now".to_owned())),
                (Some(_), _) => None,
            };
            tx.commit().await?;
            Ok::<_, tokio_postgres::Error>((held_by, before))
        };
        let (held_by, before) = timed(&location, work).await?.map_err(|e| db.at(&e))?;
        if let Some((holder, until)) = held_by {
            return Err(StateError::Leased {
                holder,
                location: location.clone(),
                until,
            });
        }
        // A row that was there and is now ours had expired: its runner died.
        Ok(before.map(|row| {
            format!(
                "Took over the apply lock of {} in {location}: its lease expired at {} without a heartbeat (the runner died); the plan reconciles what it left unanswered.\n",
                row.get::<_, String>(0),
                row.get::<_, String>(1)
            )
        }))
    })?;
    *fence
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(token.clone());
    let stop = heartbeat(bridge, key, &token, lease);
    Ok((
        LeaseLock {
            bridge: bridge.clone(),
            key: key.to_owned(),
            token,
            fence,
            stop: Some(stop),
        },
        recovered,
    ))
}

/// Renews the lease every third of it until told to stop. A failed renewal is tried again at
/// the next beat: two in a row may fail before the lease runs out. A renewal that finds the row
/// gone or someone else's ends the beat; the journal's fence stops the writes.
fn heartbeat(bridge: &Bridge, key: &str, token: &str, lease: Duration) -> oneshot::Sender<()> {
    let (stop_tx, mut stop) = oneshot::channel::<()>();
    let pool = bridge.pool().clone();
    let (key, token) = (key.to_owned(), token.to_owned());
    let lease_ms = i64::try_from(lease.as_millis()).unwrap_or(i64::MAX) as f64;
    let beat = (lease / 3).max(Duration::from_millis(100));
    bridge.spawn(async move {
        // Bounded in count: a lease renewed for a week is an apply that no longer ends.
        for _ in 0..(7 * 24 * 3600 * 1000 / beat.as_millis().max(1)) {
            tokio::select! {
                _ = &mut stop => return,
                () = tokio::time::sleep(beat) => {}
            }
            let renewed = tokio::time::timeout(beat, async {
                let client = pool.get().await.ok()?;
                client
                    .execute(
                        "UPDATE redrive.locks
                         SET heartbeat_at = now(), expires_at = now() + $3::float8 * interval '1 millisecond'
                         WHERE state_key = $1 AND token = $2",
                        &[&key, &token, &lease_ms],
                    )
                    .await
                    .ok()
            })
            .await;
            if let Ok(Some(0)) = renewed {
                return;
            }
        }
    });
    stop_tx
}

impl Drop for LeaseLock {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        *self
            .fence
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = None;
        let pool = self.bridge.pool().clone();
        let (key, token) = (self.key.clone(), self.token.clone());
        // Bounded: an unreachable database leaves the row to expire, which is what a crash does.
        self.bridge.call(async move {
            let _ = tokio::time::timeout(Duration::from_secs(5), async {
                if let Ok(client) = pool.get().await {
                    let _ = client
                        .execute(
                            "DELETE FROM redrive.locks WHERE state_key = $1 AND token = $2",
                            &[&key, &token],
                        )
                        .await;
                }
            })
            .await;
        });
    }
}
