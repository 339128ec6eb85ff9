//! The cooperative apply on PostgreSQL: [`PgShare`] implements apply's `Share` seam over
//! `redrive.leases` (claims, renewals, `sent` marks, finals) and the shared journal, and
//! [`PgWindow`] holds a provider's rolling windows for every runner over `redrive.rate_events`.
//! Leases are renewed by one statement every third of the lease for everything this runner
//! holds, on the store's own runtime, so a busy engine never lets them lapse.

use std::collections::{HashMap, HashSet};
use std::ops::Range;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use sha2::Digest as _;
use tokio::sync::oneshot;

use super::PgStore;
use super::bridge::Bridge;
use super::lease::Leases;
use crate::apply::share::{Answer, Claimed, Share};
use crate::limits::{SharedOperation, SharedWindow, Take};
use crate::state::{Record, StateError};

/// One runner's share of one cooperative run.
#[derive(Debug)]
pub struct PgShare {
    leases: Leases,
    key: String,
    run: String,
    /// Each job's first plan position: a wave's range of the job's runnable actions is the
    /// same range of positions from there in every runner.
    bases: HashMap<String, usize>,
    held: Arc<Mutex<HashSet<String>>>,
    poll: Duration,
    lease: Duration,
    _renewing: oneshot::Sender<()>,
}

/// A tenth of the lease, within 50 ms … 1 s: a dead runner's actions are found soon after its
/// lease ends, and idle runners ask the database a few times a second.
fn poll(lease: Duration) -> Duration {
    (lease / 10).clamp(Duration::from_millis(50), Duration::from_secs(1))
}

/// A limiter's key in the tables: a digest, so no endpoint or credential name is stored.
fn hashed(identity: &str) -> String {
    let digest = sha2::Sha256::digest(identity.as_bytes());
    digest[..16].iter().map(|b| format!("{b:02x}")).collect()
}

/// Who this runner is in the leases: host/pid and a nonce (a pid is reused after a restart).
fn owner() -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default()
        .as_nanos();
    format!("{}/{:x}", super::journal::runner_id(), now & 0xff_ffff)
}

impl PgShare {
    /// Seeds the run (or joins it: the first runner's rows stand) with the saved plan's
    /// runnable actions, `(job, ids)` in plan order, and starts renewing what this runner holds.
    ///
    /// # Errors
    /// [`StateError::PlanMismatch`] for a run of another plan; database errors.
    pub async fn join(
        store: &PgStore,
        run: &str,
        digest: &str,
        jobs: &[(String, Vec<String>)],
    ) -> Result<Self, StateError> {
        let lease = store.lease();
        let leases = Leases::new(store, run, &owner(), lease);
        let mut bases = HashMap::new();
        let mut actions = Vec::new();
        for (job, ids) in jobs {
            bases.insert(job.clone(), actions.len());
            actions.extend(ids.iter().map(|id| (id.clone(), job.clone())));
        }
        leases.seed(digest, &actions).await?;
        let held = Arc::new(Mutex::new(HashSet::new()));
        let renewing = renew(store, leases.clone(), held.clone(), lease);
        Ok(Self {
            leases,
            key: store.key().to_owned(),
            run: run.to_owned(),
            bases,
            held,
            poll: poll(lease),
            lease,
            _renewing: renewing,
        })
    }

    /// A shared window for a limiter of `windows` keyed by `identity` (its provider kind,
    /// endpoint and credential reference, hashed here so no part of it is stored), whose slots
    /// are held at most `bound` without an end. Needs no seeded run: a runner holds its
    /// plan-time reads in it before it joins the run's leases.
    #[must_use]
    pub fn window(
        store: &PgStore,
        run: &str,
        identity: &str,
        windows: Vec<(u32, Duration)>,
        bound: Duration,
    ) -> PgWindow {
        PgWindow {
            leases: Leases::new(store, run, &owner(), store.lease()),
            key: hashed(identity),
            windows,
            bound,
        }
    }

    /// The exclusive operations of a limiter keyed by `identity`, held across runners.
    #[must_use]
    pub fn operation(store: &PgStore, identity: &str) -> PgOperation {
        PgOperation {
            bridge: store.bridge().clone(),
            key: hashed(identity),
            poll: poll(store.lease()),
        }
    }

    fn positions(&self, job: &str, wave: &Range<usize>) -> Range<i32> {
        let base = self.bases.get(job).copied().unwrap_or_default();
        let at = |n: usize| i32::try_from(base + n).unwrap_or(i32::MAX);
        at(wave.start)..at(wave.end)
    }

    fn held(&self) -> std::sync::MutexGuard<'_, HashSet<String>> {
        self.held.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// Renews every lease in `held` each third of the lease until the sender drops; leases found
/// lost (taken over after this runner missed its lease) are forgotten: `mark_sent` refuses them.
fn renew(
    store: &PgStore,
    leases: Leases,
    held: Arc<Mutex<HashSet<String>>>,
    lease: Duration,
) -> oneshot::Sender<()> {
    let (tx, mut stop) = oneshot::channel::<()>();
    let beat = (lease / 3).max(Duration::from_millis(100));
    store.bridge().spawn(async move {
        // Bounded in count like the lock's heartbeat: a week of beats.
        for _ in 0..(7 * 24 * 3600 * 1000 / beat.as_millis().max(1)) {
            tokio::select! {
                _ = &mut stop => return,
                () = tokio::time::sleep(beat) => {}
            }
            let now: Vec<String> = held
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .iter()
                .cloned()
                .collect();
            if now.is_empty() {
                continue;
            }
            if let Ok(lost) = leases.renew(&now).await {
                let mut held = held.lock().unwrap_or_else(PoisonError::into_inner);
                for a in lost {
                    held.remove(&a);
                }
            }
        }
    });
    tx
}

impl Share for PgShare {
    fn claim(&self, job: &str, wave: Range<usize>, max: usize) -> Answer<'_, Vec<Claimed>> {
        let positions = self.positions(job, &wave);
        let base = self.bases.get(job).copied().unwrap_or_default();
        let job = job.to_owned();
        Box::pin(async move {
            let claims = self.leases.claim_in(Some(&job), positions, max).await?;
            self.held().extend(claims.iter().map(|c| c.action.clone()));
            Ok(claims
                .into_iter()
                .map(|c| Claimed {
                    index: usize::try_from(c.position).unwrap_or_default()
                        - base.min(usize::try_from(c.position).unwrap_or_default()),
                    action: c.action,
                    taken_over_from: c.taken_over_from,
                    sent_before: c.sent_before,
                    marked_ago: c.marked_ago,
                })
                .collect())
        })
    }

    fn mark_sent(&self, actions: Vec<String>) -> Answer<'_, Vec<String>> {
        Box::pin(async move {
            let marked: HashSet<String> = self.leases.mark_all_sent(&actions).await?;
            Ok(actions
                .into_iter()
                .filter(|a| !marked.contains(a))
                .collect())
        })
    }

    fn finish(&self, actions: Vec<String>) -> Answer<'_, ()> {
        Box::pin(async move {
            let changed = self.leases.finish(&actions).await;
            // Forgotten either way: renewed for ever, an action whose change failed would
            // hold its run open; its lease runs out instead (`feed::retried`).
            let mut held = self.held();
            for a in &actions {
                held.remove(a);
            }
            changed.map(drop)
        })
    }

    fn release(&self, actions: Vec<String>) -> Answer<'_, ()> {
        Box::pin(async move {
            let changed = self.leases.release(&actions).await;
            // Forgotten either way: renewed for ever, an action whose change failed would
            // hold its run open; its lease runs out instead (`feed::retried`).
            let mut held = self.held();
            for a in &actions {
                held.remove(a);
            }
            changed.map(drop)
        })
    }

    fn open(&self, job: &str, wave: Range<usize>) -> Answer<'_, u64> {
        let positions = self.positions(job, &wave);
        let (key, run, job) = (self.key.clone(), self.run.clone(), job.to_owned());
        Box::pin(
            self.leases
                .on_store("count open actions", move |client| async move {
                    let row = client
                        .query_one(
                            "SELECT count(*) FROM redrive.leases
                     WHERE state_key = $1 AND run = $2 AND job = $3
                       AND position >= $4 AND position < $5 AND status <> 'done'",
                            &[&key, &run, &job, &positions.start, &positions.end],
                        )
                        .await?;
                    Ok(u64::try_from(row.get::<_, i64>(0)).unwrap_or_default())
                }),
        )
    }

    fn finals(&self, actions: Vec<String>) -> Answer<'_, HashMap<String, Record>> {
        let (key, run) = (self.key.clone(), self.run.clone());
        Box::pin(
            self.leases
                .on_store("read the run's results", move |client| async move {
                    // A loser's "skipped" (its lease went to another runner) never hides the result.
                    let rows = client
                .query(
                    "SELECT DISTINCT ON (action) at, run, action, job, target, state, attempt,
                            http_status, detail
                     FROM redrive.journal
                     WHERE state_key = $1 AND run = $2 AND action = ANY($3)
                       AND state NOT IN ('planned', 'sent')
                     ORDER BY action, state = 'skipped', seq DESC",
                    &[&key, &run, &actions],
                )
                .await?;
                    let mut out = HashMap::with_capacity(rows.len());
                    for row in rows {
                        let Some(state) = super::state_of(&row.get::<_, String>(5)) else {
                            continue;
                        };
                        let record = Record {
                            at: row.get(0),
                            run: row.get(1),
                            action: row.get(2),
                            job: row.get(3),
                            target: row.get(4),
                            state,
                            attempt: u32::try_from(row.get::<_, i32>(6)).unwrap_or_default(),
                            http_status: row
                                .get::<_, Option<i32>>(7)
                                .and_then(|s| u16::try_from(s).ok()),
                            detail: row.get(8),
                        };
                        out.insert(record.action.clone(), record);
                    }
                    Ok(out)
                }),
        )
    }

    fn sent_at(&self, action: String) -> Answer<'_, String> {
        let (key, run) = (self.key.clone(), self.run.clone());
        Box::pin(self.leases.on_store("read when an action was sent", move |client| async move {
            let row = client
                .query_one(
                    "SELECT coalesce(
                         (SELECT at FROM redrive.journal
                          WHERE state_key = $1 AND run = $2 AND action = $3 AND state = 'sent'
                          ORDER BY seq DESC LIMIT 1),
                         (SELECT to_char(created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"')
                          FROM redrive.runs WHERE state_key = $1 AND run = $2),
                         '')",
                    &[&key, &run, &action],
                )
                .await?;
            Ok(row.get(0))
        }))
    }

    fn poll(&self) -> Duration {
        self.poll
    }

    fn lease(&self) -> Duration {
        self.lease
    }
}

/// A provider's windows held across every runner (`Leases::take_slots`).
#[derive(Debug)]
pub struct PgWindow {
    leases: Leases,
    key: String,
    windows: Vec<(u32, Duration)>,
    /// The longest a slot stays held without its end recorded.
    bound: Duration,
}

impl SharedWindow for PgWindow {
    fn take(&self) -> std::pin::Pin<Box<dyn Future<Output = Result<Take, String>> + Send + '_>> {
        Box::pin(async move {
            self.leases
                .take_slots(&self.key, &self.windows, self.bound)
                .await
                .map_err(|e| e.to_string())
        })
    }

    fn ended(&self, slot: i64) -> std::pin::Pin<Box<dyn Future<Output = ()> + Send + '_>> {
        Box::pin(async move {
            // An end that cannot be recorded leaves the slot held until its bound: later
            // requests wait longer, none goes over the limit.
            let _ = self.leases.end_slot(slot).await;
        })
    }
}

/// An exclusive operation across runners: a session-level advisory lock on a connection of its
/// own, held while the operation runs. A runner that dies closes its connection, and the
/// server frees the lock with it: nothing to expire, nothing to clean up.
#[derive(Debug)]
pub struct PgOperation {
    bridge: Arc<Bridge>,
    key: String,
    poll: Duration,
}

/// The held lock: its connection, closed (not returned to the pool) when dropped.
struct HeldOperation {
    _client: deadpool_postgres::ClientWrapper,
}

impl SharedOperation for PgOperation {
    fn hold(&self) -> std::pin::Pin<Box<dyn Future<Output = Box<dyn Send + Sync>> + Send + '_>> {
        Box::pin(async move {
            // Bounded: an hour of tries; after that the operation goes ahead on this runner's
            // own permit, and the provider's own check (`busy`) still stands between them.
            let tries = (3600 * 1000 / self.poll.as_millis().max(1)).max(1);
            for _ in 0..tries {
                let (pool, key) = (self.bridge.pool().clone(), self.key.clone());
                let got = self
                    .bridge
                    .spawn(async move {
                        let client = pool.get().await.ok()?;
                        let row = client
                            .query_one(
                                "SELECT pg_try_advisory_lock(hashtextextended($1, 1))",
                                &[&key],
                            )
                            .await
                            .ok()?;
                        // Detached from the pool: the lock lives and dies with this connection.
                        row.get::<_, bool>(0)
                            .then(|| deadpool_postgres::Object::take(client))
                    })
                    .await
                    .ok()
                    .flatten();
                if let Some(client) = got {
                    let held: Box<dyn Send + Sync> = Box::new(HeldOperation { _client: client });
                    return held;
                }
                tokio::time::sleep(self.poll).await;
            }
            Box::new(())
        })
    }
}
