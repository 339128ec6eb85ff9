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
    /// A cooperative run's lock is shared by its runners: the last to leave deletes it.
    run: Option<String>,
}

impl Lock for LeaseLock {}

/// How a runner came to hold a cooperative run's lock.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Joined {
    /// The run every holder of this lock works on (the journal's `run` of its records).
    pub run: String,
    /// Said when the lock was taken over from runners whose lease had expired.
    pub recovered: Option<String>,
}

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
                            expires_at = EXCLUDED.expires_at, run = NULL
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
    Ok((held(bridge, key, token, lease, fence, None), recovered))
}

/// Takes or joins the lock of `key` for the cooperative run of the saved plan `digest`: a live
/// lock of a run of the same plan is joined (its token shared, so the journal fence lets every
/// runner write), an expired one is taken over (its run continued when it was of this plan), a
/// live lock of anything else is refused.
///
/// # Errors
/// [`StateError::Leased`] while another apply holds it; database errors.
pub fn acquire_run(
    bridge: &Arc<Bridge>,
    key: &str,
    holder: &str,
    lease: Duration,
    fence: Arc<Mutex<Option<String>>>,
    digest: &str,
) -> Result<(LeaseLock, Joined), StateError> {
    let fresh = new_token();
    let lease_ms = lease.as_secs_f64() * 1000.0;
    let pool = bridge.pool().clone();
    let location = bridge.location().to_owned();
    // A run is named by the plan and when it started: the same plan applied again after its run
    // ended is a new run (its plan reads what the last one did).
    let prefix = format!("coop-{}-", &digest[..digest.len().min(16)]);
    let new_run = format!("{prefix}{}", jiff::Timestamp::now().as_millisecond());
    let (k, h) = (key.to_owned(), holder.to_owned());
    let (token, joined) = bridge.call(async move {
        let db = database(&location, "take the apply lock");
        let mut client = timed(&location, pool.get()).await?.map_err(|e| db.at(&e))?;
        let work = async {
            let tx = client.transaction().await?;
            // Runners of one run start together: with no row yet there is nothing for
            // `FOR UPDATE` to wait on, so takers of one runbook's lock queue here instead and
            // each sees the row the one before it wrote.
            tx.execute("SELECT pg_advisory_xact_lock(hashtextextended($1, 2))", &[&k])
                .await?;
            let before = tx
                .query_opt(
                    "SELECT token, holder, expires_at::text, expires_at < now(), run
                     FROM redrive.locks WHERE state_key = $1 FOR UPDATE",
                    &[&k],
                )
                .await?;
            let ours = |run: &Option<String>| run.as_deref().is_some_and(|r| r.starts_with(&prefix));
            let outcome = match &before {
                None => {
                    tx.execute(
                        "INSERT INTO redrive.locks (state_key, token, holder, expires_at, run)
                         VALUES ($1, $2, $3, now() + $4::float8 * interval '1 millisecond', $5)",
                        &[&k, &fresh, &h, &lease_ms, &new_run],
                    )
                    .await?;
                    Ok((fresh.clone(), new_run.clone(), None))
                }
                Some(row) => {
                    let (token, old_holder, until, expired, run): (String, String, String, bool, Option<String>) =
                        (row.get(0), row.get(1), row.get(2), row.get(3), row.get(4));
                    if !expired && ours(&run) {
                        // Joining: the row is renewed by every runner of the run.
                        tx.execute(
                            "UPDATE redrive.locks SET heartbeat_at = now(),
                                 expires_at = now() + $2::float8 * interval '1 millisecond'
                             WHERE state_key = $1",
                            &[&k, &lease_ms],
                        )
                        .await?;
                        Ok((token, run.unwrap_or_default(), None))
                    } else if expired {
                        let run = if ours(&run) { run.unwrap_or_default() } else { new_run.clone() };
                        tx.execute(
                            "UPDATE redrive.locks SET token = $2, holder = $3, acquired_at = now(),
                                 heartbeat_at = now(), run = $5,
                                 expires_at = now() + $4::float8 * interval '1 millisecond'
                             WHERE state_key = $1",
                            &[&k, &fresh, &h, &lease_ms, &run],
                        )
                        .await?;
                        Ok((fresh.clone(), run, Some((old_holder, until))))
                    } else {
                        Err((old_holder, until))
                    }
                }
            };
            // A new run: no runner of any other run of this runbook holds the lock, so those
            // runs are over (their results are in the journal) and their leases would only
            // bloat the index every claim walks. A runner of one that lost the lock finds its
            // lease gone and sends nothing, as after an expiry.
            if matches!(&outcome, Ok((_, run, _)) if *run == new_run) {
                tx.execute(
                    "DELETE FROM redrive.runs WHERE state_key = $1 AND run <> $2",
                    &[&k, &new_run],
                )
                .await?;
            }
            tx.commit().await?;
            Ok::<_, tokio_postgres::Error>(outcome)
        };
        match timed(&location, work).await?.map_err(|e| db.at(&e))? {
            Err((holder, until)) => Err(StateError::Leased {
                holder,
                location: location.clone(),
                until,
            }),
            Ok((token, run, took)) => Ok((
                token,
                Joined {
                    run,
                    recovered: took.map(|(holder, until)| {
                        format!(
                            "Took over the apply lock of {holder} in {location}: its lease expired at {until} without a heartbeat (the runner died); its leased actions are taken over and reconciled first.\n"
                        )
                    }),
                },
            )),
        }
    })?;
    let run = Some(joined.run.clone());
    Ok((held(bridge, key, token, lease, fence, run), joined))
}

/// The lock once its row is ours: the journal's fence set to its token and the heartbeat
/// started.
fn held(
    bridge: &Arc<Bridge>,
    key: &str,
    token: String,
    lease: Duration,
    fence: Arc<Mutex<Option<String>>>,
    run: Option<String>,
) -> LeaseLock {
    *fence
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(token.clone());
    let stop = heartbeat(bridge, key, &token, lease);
    LeaseLock {
        bridge: bridge.clone(),
        key: key.to_owned(),
        token,
        fence,
        stop: Some(stop),
        run,
    }
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
        let (key, token, run) = (self.key.clone(), self.token.clone(), self.run.clone());
        // Bounded: an unreachable database leaves the row to expire, which is what a crash does.
        self.bridge.call(async move {
            let _ = tokio::time::timeout(Duration::from_secs(5), async {
                if let Ok(client) = pool.get().await {
                    // A shared lock stays while its run has open actions: other runners still
                    // write under it (an interrupted runner leaves; the rest go on).
                    let _ = client
                        .execute(
                            "DELETE FROM redrive.locks WHERE state_key = $1 AND token = $2
                               AND ($3::text IS NULL OR NOT EXISTS (
                                   SELECT 1 FROM redrive.leases
                                   WHERE state_key = $1 AND run = $3 AND status <> 'done'))",
                            &[&key, &token, &run],
                        )
                        .await;
                }
            })
            .await;
        });
    }
}
