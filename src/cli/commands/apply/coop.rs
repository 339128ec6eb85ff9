//! `redrive apply PLAN.json` with a shared state is a cooperative run (docs/state.md, step 2):
//! every runner given the same saved plan joins the run that plan's first runner started,
//! claims its share of the actions, and holds the providers' rolling windows together with the
//! others. This module makes the pieces: the plan's digest, the run's lock, the engine's plan
//! (the saved one, identical in every runner) and the `Cooperation` the engine is given.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use sha2::Digest as _;

use crate::apply::share::Cooperation;
use crate::manifest::runbook::Runbook;
use crate::plan::prepare::Limiters;
use crate::plan::{ActionId, Decision, Plan};
use crate::state::StateError;
use crate::state::postgres::share::PgShare;
use crate::state::postgres::{Joined, PgStore};

/// What every runner of one cooperative run agrees on.
#[derive(Debug, Clone)]
pub struct Run {
    pub joined: Joined,
    /// The SHA-256 of the saved plan file: runners of another plan are refused.
    pub digest: String,
}

/// The saved plan's digest: its bytes, so a plan edited by one byte is another run.
///
/// # Errors
/// When the file cannot be read (it was just loaded, so rarely).
pub fn digest(path: &Path) -> std::io::Result<String> {
    let bytes = std::fs::read(path)?;
    let digest = sha2::Sha256::digest(&bytes);
    Ok(digest.iter().map(|b| format!("{b:02x}")).collect())
}

/// Takes or joins the run's lock (exit 5 while a different apply holds the runbook).
///
/// # Errors
/// [`StateError::Leased`] and database errors.
pub fn join(
    store: &PgStore,
    digest: String,
) -> Result<(Box<dyn crate::state::Lock>, Run), StateError> {
    let (lock, joined) = store.join_run(&digest)?;
    Ok((lock, Run { joined, digest }))
}

/// The plan the engine runs and how it shares it. The saved plan is what every runner has
/// alike (its jobs, waves and positions); this runner's own plan, made from the state as it is
/// now, only holds back actions it finds done, converged or blocked by now.
///
/// # Errors
/// A run of another plan, and database errors.
pub async fn cooperation(
    rb: &Runbook,
    store: &PgStore,
    run: &Run,
    saved: &Plan,
    fresh: &Plan,
) -> Result<(Plan, Cooperation), StateError> {
    let jobs: Vec<(String, Vec<String>)> = saved
        .jobs
        .iter()
        .map(|j| {
            let ids = j.actions.iter().filter(|a| a.decision == Decision::Run);
            (j.id.clone(), ids.map(|a| a.id.to_string()).collect())
        })
        .collect();
    let share = PgShare::join(store, &run.joined.run, &run.digest, &jobs).await?;
    let fresh_decisions: HashMap<ActionId, &Decision> = fresh
        .jobs
        .iter()
        .flat_map(|j| &j.actions)
        .map(|a| (a.id, &a.decision))
        .collect();
    let held_back = saved
        .jobs
        .iter()
        .flat_map(|j| &j.actions)
        .filter(|a| a.decision == Decision::Run)
        .filter_map(|a| {
            let now = fresh_decisions.get(&a.id)?;
            (**now != Decision::Run).then(|| (a.id.to_string(), (*now).clone()))
        })
        .collect();
    // The limiters' windows were shared before planning (`share_windows`), so the plan-time
    // reads count in them too.
    let plan = saved.clone().without_previews();
    // A request of a runner that stalled may still land this long after it left.
    let in_flight = rb
        .manifest
        .providers
        .iter()
        .map(|(name, p)| (name.clone(), crate::providers::http::landing_window(p)))
        .collect();
    let coop = Cooperation {
        share: Arc::new(share),
        held_back,
        in_flight,
    };
    Ok((plan, coop))
}

/// Every limiter with rolling windows holds them across runners, and one whose operations run
/// one at a time holds that across runners too; unlimited ones are left
/// alone, so their requests never wait on the database. A limiter is keyed as `prepare` keys
/// it: the provider's kind, rendered endpoint and credential references (never values).
///
/// Called as soon as the limiters exist, before the sources and the read-only checks: a runner
/// that plans while the others send keeps its reads within the same windows.
pub fn share_windows(rb: &Runbook, store: &PgStore, run: &Run, limiters: &Limiters) {
    let run = run.joined.run.as_str();
    let cx = rb.context();
    for (name, limiter) in limiters {
        let windows = limiter.windows();
        let Some(p) = rb.manifest.providers.get(name) else {
            continue;
        };
        if windows.is_empty() && !limiter.exclusive() {
            continue;
        }
        let url = p
            .url
            .as_deref()
            .map(|u| cx.render_text(u).unwrap_or_else(|_| u.to_owned()))
            .unwrap_or_default();
        let identity = format!(
            "{}\0{url}\0{}",
            p.kind,
            serde_json::to_string(&p.auth).unwrap_or_default()
        );
        if limiter.exclusive() {
            limiter.share_operations(Arc::new(PgShare::operation(store, &identity)));
        }
        if !windows.is_empty() {
            // Slots are counted by ends on the database's clock, as the local ones are on this
            // process's (`limits::window`): no margin for how late a granted request leaves.
            // A slot whose end is never recorded (its runner died) is held for the longest its
            // request could take, and a minute more.
            let bound = crate::providers::http::timeout_of(p) + Duration::from_secs(60);
            limiter.share(Arc::new(PgShare::window(
                store, run, &identity, windows, bound,
            )));
        }
    }
}
