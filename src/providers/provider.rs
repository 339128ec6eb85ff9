//! The provider seam: everything the plan, the engine and the renderers need from one API —
//! its targets, request previews, read-only checks, sends (one request for one or many works),
//! answer classification, polling and reconciliation rules. Each built-in provider is one module
//! implementing it; nothing outside the registry and the manifest model matches on kinds.

use std::fmt;
use std::future::Future;
use std::pin::Pin;

use serde_json::Value;
use serde_json::value::RawValue;

use super::{Answer, Idempotency, Observed, ProviderError, RequestPreview, TaskState};
use crate::manifest::model::{SourceKind, Work};

/// A boxed future: the seam is a trait object, one per configured provider.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// How a provider's works are grouped into one request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Batching {
    /// At most this many works per request.
    pub size: usize,
    /// No two works of one request may share this key (DigiCert answers per `ip:port`).
    pub exclusive: String,
}

/// One configured API.
pub trait Provider: Send + Sync + fmt::Debug {
    /// The runbook's name for it.
    fn name(&self) -> &str;

    /// The text a work is known by in plans, journals and reports; its id is derived from it.
    fn target(&self, work: &Work) -> String;

    /// What would be sent for review (secrets as references), and whether repeating it is
    /// safe. Pure.
    fn preview(&self, work: &Work) -> (RequestPreview, Idempotency);

    /// The read-only check: is the work still needed? `None` when the provider has none.
    fn observe<'a>(
        &'a self,
        work: &'a Work,
    ) -> BoxFuture<'a, Option<Result<Observed, ProviderError>>>;

    /// Observes many works from list endpoints, a page at a time: one entry per work, in
    /// order, `None` for a work the lists cannot settle (it gets its own check). `None` when no
    /// list helps. A list only ever settles what it shows, never a target by its absence: offset
    /// paging can skip an item that moved between two pages.
    fn observe_many<'a>(
        &'a self,
        _works: &'a [&'a Work],
    ) -> Option<BoxFuture<'a, Result<Vec<Option<Observed>>, ProviderError>>> {
        None
    }

    /// Sends the works as one request (one work unless [`Provider::batching`] groups them);
    /// one answer per work, in order.
    fn send<'a>(
        &'a self,
        works: &'a [&'a Work],
    ) -> BoxFuture<'a, Result<Vec<Answer>, ProviderError>>;

    /// Whether and how works share a request.
    fn batching(&self, _work: &Work) -> Option<Batching> {
        None
    }

    /// The state of an asynchronous result (a VCF task) that a send answered with.
    fn poll<'a>(&'a self, task: &'a str) -> BoxFuture<'a, Result<TaskState, ProviderError>> {
        Box::pin(async move {
            Ok(TaskState::Succeeded {
                status: format!("accepted (nothing to poll for {task})"),
            })
        })
    }

    /// After a lost answer the check says "not needed": is that because the task the send
    /// started is running? Then it is polled, by this id.
    fn running_task(&self, _work: &Work, _observed: &Observed) -> Option<String> {
        None
    }

    /// For a provider whose operations run one at a time: an operation already running on the
    /// server (whoever started it) that a send of `work` would collide with, described.
    fn busy<'a>(&'a self, _work: &'a Work) -> BoxFuture<'a, Result<Option<String>, ProviderError>> {
        Box::pin(async { Ok(None) })
    }

    /// Whether "still needed" after an earlier success proves a new need (a task that failed
    /// again) rather than the old one seen again.
    fn success_is_undone_by_a_new_failure(&self) -> bool {
        false
    }

    /// Whether the observed facts show that a request sent at `sent_at` (RFC 3339) took
    /// effect although the check says "still needed".
    fn took_effect_since(&self, _facts: Option<&RawValue>, _sent_at: &str) -> bool {
        false
    }

    /// Reads a plan-time source; `None` when this provider has no such source.
    fn source<'a>(
        &'a self,
        _kind: SourceKind,
        _with: &'a Value,
    ) -> Option<BoxFuture<'a, Result<Vec<Value>, ProviderError>>> {
        None
    }
}

/// The send of a provider that takes one work per request: each work's parameters (as `pick`
/// finds them) sent in turn, one answer each.
///
/// # Errors
/// A work that is not the provider's action, or the first send that fails.
pub async fn each<'a, T: ?Sized + 'a, Fut>(
    provider: &str,
    works: &'a [&'a Work],
    pick: fn(&'a Work) -> Option<&'a T>,
    send: impl Fn(&'a T) -> Fut,
) -> Result<Vec<Answer>, ProviderError>
where
    Fut: Future<Output = Result<Answer, ProviderError>>,
{
    let mut out = Vec::with_capacity(works.len());
    for work in works {
        let params = pick(work).ok_or_else(|| mismatch(provider))?;
        out.push(send(params).await?);
    }
    Ok(out)
}

/// A source's `with`, as the query type of its kind.
///
/// # Errors
/// Filters that do not fit the query.
pub fn source_query<T: serde::de::DeserializeOwned>(
    provider: &str,
    with: &Value,
) -> Result<T, ProviderError> {
    serde_json::from_value(with.clone()).map_err(|e| ProviderError::Config {
        provider: provider.to_owned(),
        detail: format!("its source query does not fit: {e}"),
    })
}

/// Stops a paged listing that would cost more requests than the per-target reads it saves.
pub const fn worth_listing(pages: u64, works: usize) -> bool {
    pages <= works as u64
}

/// The error of a work handed to a provider that does not own its action.
#[must_use]
pub fn mismatch(provider: &str) -> ProviderError {
    ProviderError::Config {
        provider: provider.to_owned(),
        detail: "the action does not fit its provider".into(),
    }
}
