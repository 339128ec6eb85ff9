//! Embedded, versioned migrations of the `redrive` schema. `redrive.schema_version` has one row
//! per applied migration; a binary applies the ones it lacks in order, under an advisory lock
//! so that runners starting together migrate once, and refuses a database whose version is
//! newer than it knows (an older binary must not write rows a newer one reads differently).
//! A migration is never edited once released: a change is a new one.

use deadpool_postgres::Pool;

use super::bridge::{database, timed};
use crate::state::StateError;

/// A schema version.
pub type Version = i32;

/// Every migration, oldest first: (version, what it adds, SQL).
const MIGRATIONS: &[(Version, &str, &str)] = &[
    (1, "journal, locks and tokens", V1),
    (2, "cooperative apply: runs, leases and rate windows", V2),
    (3, "cooperative apply: the run a lock is shared by", V3),
    (4, "rate windows counted by when requests end", V4),
    (
        5,
        "cooperative apply: when an action was last marked sent",
        V5,
    ),
];

/// The newest version this binary knows.
pub const SUPPORTED: Version = 5;

/// An arbitrary constant key for `pg_advisory_xact_lock`: concurrent migrators wait for each
/// other instead of racing to create the same objects.
const MIGRATION_LOCK: i64 = 0x7265_6472_6976_6501;

/// Step 1 of issue 18. `state_key` is the runbook's name in every table: one database holds the
/// state of many runbooks. `at` stays the journal record's RFC 3339 text, so history reads back
/// exactly what was written; `written_at` is the server's clock, the one every runner shares.
const V1: &str = "
CREATE TABLE redrive.journal (
    seq         bigserial PRIMARY KEY,
    state_key   text NOT NULL,
    run         text NOT NULL,
    action      text NOT NULL,
    job         text NOT NULL,
    target      text NOT NULL,
    state       text NOT NULL,
    attempt     integer NOT NULL DEFAULT 0,
    http_status integer,
    detail      text NOT NULL DEFAULT '',
    at          text NOT NULL,
    runner      text NOT NULL,
    written_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX journal_by_key ON redrive.journal (state_key, seq);
CREATE INDEX journal_by_action ON redrive.journal (state_key, action, seq);

-- One row per runbook while an apply holds it. A runner renews expires_at (the server's clock)
-- while it lives; a row past expires_at belongs to a runner that died and is taken over.
CREATE TABLE redrive.locks (
    state_key    text PRIMARY KEY,
    token        text NOT NULL,
    holder       text NOT NULL,
    acquired_at  timestamptz NOT NULL DEFAULT now(),
    heartbeat_at timestamptz NOT NULL DEFAULT now(),
    expires_at   timestamptz NOT NULL
);

-- Rotated token pairs by a digest of the provider's endpoint and identity (the same key the
-- local store names its files by). Shared by every runbook of the database on purpose: a
-- single-use refresh token belongs to the account, not to one runbook.
CREATE TABLE redrive.tokens (
    key        text PRIMARY KEY,
    pair       text NOT NULL,
    updated_at timestamptz NOT NULL DEFAULT now()
);
REVOKE ALL ON redrive.tokens FROM PUBLIC;
";

/// Step 2 of issue 18 (docs/state.md): the tables exist now so that a database migrated by this
/// binary is ready for the cooperative apply. `leases` has one row per action of one run
/// (a saved plan); `rate_events` is a sliding log per limiter key shared by every runner.
const V2: &str = "
CREATE TABLE redrive.runs (
    state_key   text NOT NULL,
    run         text NOT NULL,
    plan_digest text NOT NULL,
    actions     integer NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    finished_at timestamptz,
    PRIMARY KEY (state_key, run)
);
CREATE TABLE redrive.leases (
    state_key   text NOT NULL,
    run         text NOT NULL,
    action      text NOT NULL,
    job         text NOT NULL,
    position    integer NOT NULL,
    status      text NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'leased', 'done')),
    owner       text,
    lease_until timestamptz,
    claims      integer NOT NULL DEFAULT 0,
    sent        boolean NOT NULL DEFAULT false,
    PRIMARY KEY (state_key, run, action),
    FOREIGN KEY (state_key, run) REFERENCES redrive.runs ON DELETE CASCADE
);
CREATE INDEX leases_open ON redrive.leases (state_key, run, position) WHERE status <> 'done';
CREATE TABLE redrive.rate_events (
    limiter text NOT NULL,
    at      timestamptz NOT NULL,
    runner  text NOT NULL
);
CREATE INDEX rate_events_by_limiter ON redrive.rate_events (limiter, at);
";

/// The cooperative apply (docs/state.md, step 2): the lock row names the run its holders share.
/// NULL is a plain apply, which nobody joins; runners given the same saved plan join a row whose
/// run was started from that plan, and all of them renew it.
const V3: &str = "
ALTER TABLE redrive.locks ADD COLUMN run text;
";

/// A rate-limit slot counts until `ends`: set when it is granted to the latest its request can
/// end (its provider's timeout and more) and, once the answer is in, to that moment
/// (`limits::window`). Rows from before keep their start as their end.
const V4: &str = "
ALTER TABLE redrive.rate_events ADD COLUMN id bigserial, ADD COLUMN ends timestamptz;
UPDATE redrive.rate_events SET ends = at;
ALTER TABLE redrive.rate_events ALTER COLUMN ends SET NOT NULL;
CREATE INDEX rate_events_by_end ON redrive.rate_events (limiter, ends);
";

/// `marked_at` is the server's clock when a runner last marked the action sent: a runner
/// taking it over knows from it how long the request may still land (`apply::share::wave`).
/// Rows marked before have none, and are waited for as long as a request could take.
const V5: &str = "
ALTER TABLE redrive.leases ADD COLUMN marked_at timestamptz;
";

/// Brings the schema to [`SUPPORTED`], or says why it cannot.
///
/// # Errors
/// When the database cannot be reached or changed, or is newer than this binary.
pub async fn migrate(pool: &Pool, location: &str) -> Result<(), StateError> {
    let connect = database(location, "connect");
    let mut client = timed(location, pool.get())
        .await?
        .map_err(|e| connect.at(&e))?;
    // The common case reads one row and needs no privilege beyond reading: a `status` with a
    // read-only user works on a database that is up to date.
    if let Some(found) = current(&client, location).await? {
        check(found, location)?;
        if found == SUPPORTED {
            return Ok(());
        }
    }
    let migrate = database(location, "migrate the `redrive` schema");
    let tx = timed(location, client.transaction())
        .await?
        .map_err(|e| migrate.at(&e))?;
    let steps = async {
        tx.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK])
            .await?;
        tx.batch_execute(
            "CREATE SCHEMA IF NOT EXISTS redrive;
             CREATE TABLE IF NOT EXISTS redrive.schema_version (
                 version     integer PRIMARY KEY,
                 description text NOT NULL,
                 applied_at  timestamptz NOT NULL DEFAULT now()
             );",
        )
        .await?;
        let row = tx
            .query_one(
                "SELECT coalesce(max(version), 0) FROM redrive.schema_version",
                &[],
            )
            .await?;
        Ok::<_, tokio_postgres::Error>(row.get::<_, Version>(0))
    };
    let found = timed(location, steps).await?.map_err(|e| migrate.at(&e))?;
    // Checked again under the lock: another binary may have migrated in the meantime.
    check(found, location)?;
    for (version, description, sql) in MIGRATIONS.iter().filter(|(v, ..)| *v > found) {
        let step = async {
            tx.batch_execute(sql).await?;
            tx.execute(
                "INSERT INTO redrive.schema_version (version, description) VALUES ($1, $2)",
                &[version, description],
            )
            .await
        };
        timed(location, step).await?.map_err(|e| migrate.at(&e))?;
    }
    timed(location, tx.commit())
        .await?
        .map_err(|e| migrate.at(&e))
}

/// The version of an existing `redrive` schema; `None` before the first migration.
async fn current(
    client: &tokio_postgres::Client,
    location: &str,
) -> Result<Option<Version>, StateError> {
    let read = database(location, "read the schema version");
    let exists = timed(
        location,
        client.query_one(
            "SELECT to_regclass('redrive.schema_version') IS NOT NULL",
            &[],
        ),
    )
    .await?
    .map_err(|e| read.at(&e))?;
    if !exists.get::<_, bool>(0) {
        return Ok(None);
    }
    let row = timed(
        location,
        client.query_one(
            "SELECT coalesce(max(version), 0) FROM redrive.schema_version",
            &[],
        ),
    )
    .await?
    .map_err(|e| read.at(&e))?;
    Ok(Some(row.get(0)))
}

fn check(found: Version, location: &str) -> Result<(), StateError> {
    if found > SUPPORTED {
        return Err(StateError::TooNew {
            location: location.to_owned(),
            found,
            supported: SUPPORTED,
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn migrations_are_numbered_one_by_one_up_to_the_supported_version() {
        let versions: Vec<Version> = MIGRATIONS.iter().map(|(v, ..)| *v).collect();
        let expected: Vec<Version> = (1..=SUPPORTED).collect();
        assert_eq!(versions, expected);
    }
}
