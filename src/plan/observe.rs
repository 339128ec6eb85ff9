//! The read-only half of planning: fetches the sources, then asks each provider whether each
//! item is still needed, concurrently within the provider's `limits` (concurrency and rate).

use std::sync::Arc;
use std::time::Duration;

use indexmap::IndexMap;
use serde_json::Value;
use serde_json::value::RawValue;

use super::items::Item;
use crate::limits::Limiter;
use crate::manifest::model::{Manifest, Work};
use crate::providers::{Client, Observed, ProviderError, Verdict};

/// In-flight observe calls over all providers.
const GLOBAL_CONCURRENCY: usize = 64;

/// Attempts of one read-only check before its failure is the plan's.
const READ_ATTEMPTS: u32 = 5;
/// The pause after a failed read grows by this much each time.
const READ_PAUSE: std::time::Duration = std::time::Duration::from_millis(200);

/// What the read-only check of one item found: `None` when the action has no such check,
/// `Err` when the state could not be read.
pub type Read = Option<Result<Seen, String>>;

/// A provider's answer to a read-only check, kept small: a plan holds one per action.
#[derive(Debug, Clone)]
pub struct Seen {
    pub verdict: Verdict,
    /// The facts shown in the diff, as JSON text (a map of one or two entries costs several
    /// times its text in memory).
    pub facts: Option<Box<RawValue>>,
}

impl From<Observed> for Seen {
    fn from(o: Observed) -> Self {
        let facts = if o.facts.is_empty() {
            None
        } else {
            serde_json::value::to_raw_value(&o.facts).ok()
        };
        Self {
            verdict: o.verdict,
            facts,
        }
    }
}

/// One read-only check. Reads are safe to repeat, so a 429, a 5xx or a broken connection is
/// retried after a growing pause; `limiter`'s slot, when given, is held for each attempt.
pub async fn read(
    client: &Client,
    work: &Work,
    limiter: Option<&Limiter>,
) -> Option<Result<Observed, ProviderError>> {
    let mut attempt = 0;
    loop {
        attempt += 1;
        let result = match limiter {
            Some(l) => {
                let _slot = l.acquire().await;
                client.observe(work).await
            }
            None => client.observe(work).await,
        };
        match &result {
            Some(Err(e)) if attempt < READ_ATTEMPTS && e.is_transient() => {
                tokio::time::sleep(READ_PAUSE * attempt).await;
            }
            _ => return result,
        }
    }
}

/// Told how far the read-only checks got (`done` of `total`); `ui/` shows it.
pub trait Progress: Send + Sync {
    fn read(&self, done: usize, total: usize);
    /// The checks are over.
    fn finish(&self) {}
    /// Before the checks, planning waits `wait` for `requests` an earlier run left on their
    /// way (`plan::landing`).
    fn landing(&self, _wait: Duration, _requests: usize) {}
}

/// How the read-only checks go.
#[derive(Clone, Copy)]
pub struct Reads<'a> {
    /// Let list endpoints settle many items at once.
    pub bulk: bool,
    /// Where to tell how far they got.
    pub progress: Option<&'a dyn Progress>,
}

/// Observes every item: the results are in item order. Providers with a list endpoint settle
/// what their lists show first, a page at a time; the rest get one read-only check each.
pub async fn check(
    items: Arc<Vec<Item>>,
    providers: &[String],
    clients: Arc<IndexMap<String, Client>>,
    limiters: Arc<IndexMap<String, Arc<Limiter>>>,
    reads: Reads<'_>,
) -> Vec<Read> {
    let progress = reads.progress;
    let mut out: Vec<Read> = vec![None; items.len()];
    // What the lists settled is done at once: one report, not one per item.
    let mut done = if reads.bulk {
        listed(&items, providers, &clients, &mut out).await
    } else {
        0
    };
    if let Some(p) = progress.filter(|_| done > 0) {
        p.read(done, items.len());
    }
    // A window of tasks, not one per item: memory follows the concurrency, not the plan size.
    let mut tasks = tokio::task::JoinSet::new();
    let mut next = 0;
    loop {
        while tasks.len() < GLOBAL_CONCURRENCY && next < items.len() {
            let i = next;
            next += 1;
            if out[i].is_some() {
                continue;
            }
            let provider = providers[items[i].job].clone();
            let (items, clients, limiters) = (items.clone(), clients.clone(), limiters.clone());
            tasks.spawn(async move {
                let item = &items[i];
                let client = &clients[&provider];
                let limiter = &limiters[&provider];
                let observed = read(client, &item.what, Some(limiter)).await;
                (
                    i,
                    observed.map(|r| r.map(Seen::from).map_err(|e| e.to_string())),
                )
            });
        }
        let Some(joined) = tasks.join_next().await else {
            break;
        };
        done_count(&mut done, progress, items.len());
        match joined {
            Ok((i, observed)) => out[i] = observed,
            Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
            Err(_) => {}
        }
    }
    if let Some(p) = progress {
        p.finish();
    }
    out
}

/// The bulk step: each provider's lists over all of its items (providers one after another, as
/// their own limiters pace the pages). Fills `out` for what the lists settle and says how many.
/// A list that fails (after retries, as reads are safe to repeat) fails all of its provider's
/// items: the plan could not be made, and thousands of single reads would not help a server
/// that cannot list.
async fn listed(
    items: &[Item],
    providers: &[String],
    clients: &IndexMap<String, Client>,
    out: &mut [Read],
) -> usize {
    let mut settled = 0;
    for (name, client) in clients {
        let (index, works): (Vec<usize>, Vec<&Work>) = items
            .iter()
            .enumerate()
            .filter(|(_, item)| providers[item.job] == *name)
            .map(|(i, item)| (i, &*item.what))
            .unzip();
        if works.is_empty() {
            continue;
        }
        let mut attempt = 0;
        let seen = loop {
            attempt += 1;
            let Some(list) = client.observe_many(&works) else {
                break None;
            };
            match list.await {
                Err(e) if attempt < READ_ATTEMPTS && e.is_transient() => {
                    tokio::time::sleep(READ_PAUSE * attempt).await;
                }
                other => break Some(other),
            }
        };
        match seen {
            None => {}
            Some(Ok(seen)) => {
                for (i, observed) in index.into_iter().zip(seen) {
                    if let Some(o) = observed {
                        out[i] = Some(Ok(Seen::from(o)));
                        settled += 1;
                    }
                }
            }
            Some(Err(e)) => {
                let e = e.to_string();
                for i in index {
                    out[i] = Some(Err(e.clone()));
                    settled += 1;
                }
            }
        }
    }
    settled
}

fn done_count(done: &mut usize, progress: Option<&dyn Progress>, total: usize) {
    *done += 1;
    if let Some(p) = progress {
        p.read(*done, total);
    }
}

/// Reads every source the runbook declares, all pages.
///
/// # Errors
/// The first source that cannot be read.
pub async fn sources(
    manifest: &Manifest,
    clients: &IndexMap<String, Client>,
) -> Result<IndexMap<String, Value>, ProviderError> {
    let mut out = IndexMap::new();
    for (name, source) in &manifest.sources {
        let read = clients
            .get(&source.provider)
            .and_then(|c| c.source(source.kind, &source.with));
        let Some(read) = read else {
            return Err(ProviderError::Config {
                provider: source.provider.clone(),
                detail: format!(
                    "it offers no `{}` source (source `{name}`)",
                    source.kind.name()
                ),
            });
        };
        out.insert(name.clone(), Value::Array(read.await?));
    }
    Ok(out)
}
