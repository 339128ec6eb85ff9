//! The cooperative apply's primitives (issue 18, docs/state.md): the actions of one run (one
//! saved plan) as rows of `redrive.leases`, claimed by any number of runners with
//! `SELECT … FOR UPDATE SKIP LOCKED` under a lease on the server's clock; and ([`slots`])
//! `redrive.rate_events`, a sliding log that holds a provider's limit across runners.
//!
//! Every change a runner makes to a lease is conditioned on still owning it, so a runner that
//! stalled past its lease and was taken over cannot finish, release or mark what is no longer
//! its own. A claim says whose expired lease it took over and whether a request had gone out
//! under it: such an action is reconciled by observation first, never resent blindly.

use std::sync::Arc;
use std::time::Duration;

use super::PgStore;
use super::bridge::{Bridge, database, timed};
use crate::state::StateError;

mod slots;

/// One runner's handle on the leases of one run.
#[derive(Debug, Clone)]
pub struct Leases {
    bridge: Arc<Bridge>,
    key: String,
    run: String,
    owner: String,
    lease_ms: f64,
}

/// An action this runner now holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Claim {
    pub action: String,
    pub job: String,
    pub position: i32,
    /// The runner whose lease had expired, when this claim took it over.
    pub taken_over_from: Option<String>,
    /// A request for it was sent under an earlier lease: observe before sending anything.
    pub sent_before: bool,
    /// How long before this claim it was last marked sent, on the server's clock (`None`: not
    /// since the mark was timed, or never).
    pub marked_ago: Option<Duration>,
}

impl Leases {
    /// `owner` names this runner (host/pid and a nonce); `lease` is how long a claim outlives a
    /// runner that stopped renewing it.
    #[must_use]
    pub fn new(store: &PgStore, run: &str, owner: &str, lease: Duration) -> Self {
        Self {
            bridge: store.bridge().clone(),
            key: store.key().to_owned(),
            run: run.to_owned(),
            owner: owner.to_owned(),
            lease_ms: lease.as_secs_f64() * 1000.0,
        }
    }

    /// Runs `work` with a connection on the store's runtime, with its timeout and error.
    pub(super) async fn on_store<T, F, Fut>(
        &self,
        what: &'static str,
        work: F,
    ) -> Result<T, StateError>
    where
        T: Send + 'static,
        F: FnOnce(deadpool_postgres::Object) -> Fut + Send + 'static,
        Fut: Future<Output = Result<T, tokio_postgres::Error>> + Send + 'static,
    {
        let location = self.bridge.location().to_owned();
        let pool = self.bridge.pool().clone();
        let joined = self
            .bridge
            .spawn(async move {
                let doing = database(&location, what);
                let client = timed(&location, pool.get())
                    .await?
                    .map_err(|e| doing.at(&e))?;
                timed(&location, work(client))
                    .await?
                    .map_err(|e| doing.at(&e))
            })
            .await;
        joined.unwrap_or_else(|e| {
            Err(StateError::Setting {
                name: "the state runtime",
                why: e.to_string(),
            })
        })
    }

    /// Creates the run with its actions in plan order (`(id, job)`), or joins it: every runner
    /// of one apply seeds the same plan, and the first one's rows stand.
    ///
    /// # Errors
    /// [`StateError::PlanMismatch`] when the run exists for another plan; database errors.
    pub async fn seed(
        &self,
        plan_digest: &str,
        actions: &[(String, String)],
    ) -> Result<(), StateError> {
        let (key, run, digest) = (self.key.clone(), self.run.clone(), plan_digest.to_owned());
        let ids: Vec<String> = actions.iter().map(|(id, _)| id.clone()).collect();
        let jobs: Vec<String> = actions.iter().map(|(_, job)| job.clone()).collect();
        let count = i32::try_from(actions.len()).unwrap_or(i32::MAX);
        let existing = self
            .on_store("seed the run's leases", move |mut client| async move {
                let tx = client.transaction().await?;
                let created = tx
                    .execute(
                        "INSERT INTO redrive.runs (state_key, run, plan_digest, actions)
                         VALUES ($1, $2, $3, $4) ON CONFLICT (state_key, run) DO NOTHING",
                        &[&key, &run, &digest, &count],
                    )
                    .await?
                    == 1;
                let row = tx
                    .query_one(
                        "SELECT plan_digest FROM redrive.runs WHERE state_key = $1 AND run = $2",
                        &[&key, &run],
                    )
                    .await?;
                let existing: String = row.get(0);
                // The run's row and its leases commit together: a runner that finds the row
                // (a joiner, waiting on the unique index while the first one seeds) finds
                // every lease too, and need not send 20,000 ids to conflict with them.
                if existing == digest && created {
                    tx.execute(
                        "INSERT INTO redrive.leases (state_key, run, action, job, position)
                         SELECT $1, $2, u.action, u.job, (u.n - 1)::int4
                         FROM unnest($3::text[], $4::text[]) WITH ORDINALITY AS u(action, job, n)
                         ON CONFLICT DO NOTHING",
                        &[&key, &run, &ids, &jobs],
                    )
                    .await?;
                }
                tx.commit().await?;
                Ok(existing)
            })
            .await?;
        if existing != plan_digest {
            return Err(StateError::PlanMismatch {
                run: self.run.clone(),
                location: self.bridge.location().to_owned(),
            });
        }
        Ok(())
    }

    /// Claims up to `max` actions, in plan order, that are pending or whose lease expired.
    /// Rows another runner is claiming at this moment are skipped, not waited for.
    ///
    /// # Errors
    /// Database errors.
    pub async fn claim(&self, max: usize) -> Result<Vec<Claim>, StateError> {
        self.claim_in(None, 0..i32::MAX, max).await
    }

    /// [`claim`](Self::claim), only among the actions of `job` (when given) whose plan
    /// positions lie in `positions`: one wave of one job.
    ///
    /// # Errors
    /// Database errors.
    pub async fn claim_in(
        &self,
        job: Option<&str>,
        positions: std::ops::Range<i32>,
        max: usize,
    ) -> Result<Vec<Claim>, StateError> {
        let (key, run, owner, lease) = self.leaseholder();
        let job = job.map(str::to_owned);
        let max = i64::try_from(max).unwrap_or(i64::MAX);
        self.on_store("claim actions", move |client| async move {
            let rows = client
                .query(
                    "WITH picked AS (
                         SELECT ctid AS row, owner AS previous, status = 'leased' AS expired,
                                extract(epoch FROM now() - marked_at)::float8 AS marked_ago
                         FROM redrive.leases
                         WHERE state_key = $1 AND run = $2
                           AND (status = 'pending' OR (status = 'leased' AND lease_until < now()))
                           AND ($6::text IS NULL OR job = $6)
                           AND position >= $7 AND position < $8
                         ORDER BY position
                         LIMIT $4
                         FOR UPDATE SKIP LOCKED)
                     UPDATE redrive.leases l
                     SET status = 'leased', owner = $3, claims = l.claims + 1,
                         lease_until = now() + $5::float8 * interval '1 millisecond'
                     FROM picked
                     -- By the row's address: a join on the key made the planner hash the
                     -- whole table (every run's rows) on every claim.
                     WHERE l.ctid = picked.row
                     RETURNING l.action, l.job, l.position,
                               CASE WHEN picked.expired THEN picked.previous END, l.sent,
                               picked.marked_ago",
                    &[
                        &key,
                        &run,
                        &owner,
                        &max,
                        &lease,
                        &job,
                        &positions.start,
                        &positions.end,
                    ],
                )
                .await?;
            let mut claims: Vec<Claim> = rows
                .iter()
                .map(|r| Claim {
                    action: r.get(0),
                    job: r.get(1),
                    position: r.get(2),
                    taken_over_from: r.get(3),
                    sent_before: r.get(4),
                    marked_ago: r
                        .get::<_, Option<f64>>(5)
                        .and_then(|s| Duration::try_from_secs_f64(s.max(0.0)).ok()),
                })
                .collect();
            // UPDATE … RETURNING does not keep the CTE's order.
            claims.sort_by_key(|c| c.position);
            Ok(claims)
        })
        .await
    }

    /// The statement parameters every lease change is scoped by, owned for its closure: the
    /// runbook's key, the run, this runner and its lease (ms).
    fn leaseholder(&self) -> (String, String, String, f64) {
        (
            self.key.clone(),
            self.run.clone(),
            self.owner.clone(),
            self.lease_ms,
        )
    }

    /// Renews the leases of `actions`; returns the ones this runner no longer holds (taken over
    /// after it missed its lease): stop working on those.
    ///
    /// A renewal of a row marked sent moves its `marked_at` too: a request may leave at any
    /// moment while its runner lives (after a wait in a rate window or a 429 pause, say), so
    /// only the last sign of life bounds when it can have left, for a runner that takes the
    /// action over (`apply::share::wave`).
    ///
    /// The renewal never waits for a row: one that another statement holds at this moment
    /// (this runner's own `finish` of it, say) is skipped, renewed on the next beat and not
    /// counted lost. Waiting made the renewal and a finish of the same runner, each locking
    /// its rows in its own order, deadlock; the finish lost, and its actions stayed leased.
    ///
    /// # Errors
    /// Database errors.
    pub async fn renew(&self, actions: &[String]) -> Result<Vec<String>, StateError> {
        let (key, run, owner, lease) = self.leaseholder();
        let actions = actions.to_vec();
        self.on_store("renew leases", move |client| async move {
            let rows = client
                .query(
                    "WITH locked AS (
                         SELECT ctid AS row FROM redrive.leases
                         WHERE state_key = $1 AND run = $2 AND owner = $3 AND status = 'leased'
                           AND action = ANY($4)
                         FOR UPDATE SKIP LOCKED),
                     renewed AS (
                         UPDATE redrive.leases l
                         SET lease_until = now() + $5::float8 * interval '1 millisecond',
                             marked_at = CASE WHEN l.sent THEN now() ELSE l.marked_at END
                         FROM locked WHERE l.ctid = locked.row)
                     -- Held, by the statement's snapshot: a row skipped above is still ours.
                     SELECT action FROM redrive.leases
                     WHERE state_key = $1 AND run = $2 AND owner = $3 AND status = 'leased'
                       AND action = ANY($4)",
                    &[&key, &run, &owner, &actions, &lease],
                )
                .await?;
            let held: std::collections::HashSet<String> = rows.iter().map(|r| r.get(0)).collect();
            Ok(actions.into_iter().filter(|a| !held.contains(a)).collect())
        })
        .await
    }

    /// Records that a request for `action` is about to leave, under this runner's lease;
    /// `false`: the lease is lost, so the request must not be sent.
    ///
    /// # Errors
    /// Database errors.
    pub async fn mark_sent(&self, action: &str) -> Result<bool, StateError> {
        self.mark_all_sent(&[action.to_owned()])
            .await
            .map(|marked| !marked.is_empty())
    }

    /// [`mark_sent`](Self::mark_sent) for every action of one request (a batch); the ones
    /// that were still this runner's, and are marked now.
    ///
    /// The mark renews the lease too: a request leaves only within a third of a lease after
    /// its mark (`apply::attempt`), so another runner can take the action over no sooner than
    /// two thirds of a lease after the request left, and knows how long it may still land.
    ///
    /// # Errors
    /// Database errors.
    pub async fn mark_all_sent(
        &self,
        actions: &[String],
    ) -> Result<std::collections::HashSet<String>, StateError> {
        let (key, run, owner, lease) = self.leaseholder();
        let actions = actions.to_vec();
        self.on_store("mark actions sent", move |client| async move {
            let rows = client
                .query(
                    "UPDATE redrive.leases
                     SET sent = true, marked_at = now(),
                         lease_until = now() + $5::float8 * interval '1 millisecond'
                     WHERE state_key = $1 AND run = $2 AND owner = $3 AND status = 'leased'
                       AND action = ANY($4)
                     RETURNING action",
                    &[&key, &run, &owner, &actions, &lease],
                )
                .await?;
            Ok(rows.iter().map(|r| r.get(0)).collect())
        })
        .await
    }

    /// Marks `actions` final (their outcome is in the journal); returns how many were still
    /// this runner's.
    ///
    /// # Errors
    /// Database errors.
    pub async fn finish(&self, actions: &[String]) -> Result<u64, StateError> {
        self.set_all(
            actions,
            "finish actions",
            "status = 'done', owner = NULL, lease_until = NULL",
        )
        .await
    }

    /// Gives `actions` back unfinished (an interrupted runner), for another runner to claim.
    ///
    /// # Errors
    /// Database errors.
    pub async fn release(&self, actions: &[String]) -> Result<u64, StateError> {
        self.set_all(
            actions,
            "release actions",
            "status = 'pending', owner = NULL, lease_until = NULL",
        )
        .await
    }

    /// Applies `assignment` to those of `actions` this runner still leases.
    async fn set_all(
        &self,
        actions: &[String],
        what: &'static str,
        assignment: &'static str,
    ) -> Result<u64, StateError> {
        let (key, run, owner) = (self.key.clone(), self.run.clone(), self.owner.clone());
        let actions = actions.to_vec();
        self.on_store(what, move |client| async move {
            client
                .execute(
                    &format!(
                        "UPDATE redrive.leases SET {assignment}
                         WHERE state_key = $1 AND run = $2 AND owner = $3 AND status = 'leased'
                           AND action = ANY($4)"
                    ),
                    &[&key, &run, &owner, &actions],
                )
                .await
        })
        .await
    }

    /// How many actions of the run are not final yet: every runner ends when it is 0.
    ///
    /// # Errors
    /// Database errors.
    pub async fn open(&self) -> Result<u64, StateError> {
        let (key, run) = (self.key.clone(), self.run.clone());
        self.on_store("count open actions", move |client| async move {
            let row = client
                .query_one(
                    "SELECT count(*) FROM redrive.leases
                     WHERE state_key = $1 AND run = $2 AND status <> 'done'",
                    &[&key, &run],
                )
                .await?;
            Ok(u64::try_from(row.get::<_, i64>(0)).unwrap_or_default())
        })
        .await
    }
}
