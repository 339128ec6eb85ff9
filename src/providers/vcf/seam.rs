//! Vcf behind the provider seam: how the plan and the engine reach this module.

use super::*;
use crate::manifest::model::{CredentialsTasksQuery, SourceKind, TasksQuery, Work};
use crate::providers::provider::{BoxFuture, each, mismatch, source_query};
use crate::providers::{Answer, Idempotency, Observed, Provider, ProviderError, RequestPreview};

impl Provider for Vcf {
    fn name(&self) -> &str {
        &self.name
    }

    fn target(&self, work: &Work) -> String {
        work.retry_credentials_task()
            .map(|a| a.task_id.clone())
            .unwrap_or_default()
    }

    fn preview(&self, work: &Work) -> (RequestPreview, Idempotency) {
        let preview = work
            .retry_credentials_task()
            .map(|a| self.preview(a))
            .unwrap_or_default();
        (preview, Self::idempotency())
    }

    fn observe<'a>(
        &'a self,
        work: &'a Work,
    ) -> BoxFuture<'a, Option<Result<Observed, ProviderError>>> {
        Box::pin(async move { Some(self.observe(work.retry_credentials_task()?).await) })
    }

    fn source<'a>(
        &'a self,
        kind: SourceKind,
        with: &'a serde_json::Value,
    ) -> Option<BoxFuture<'a, Result<Vec<serde_json::Value>, ProviderError>>> {
        match kind {
            SourceKind::CredentialsTasks => Some(Box::pin(async move {
                let query: CredentialsTasksQuery = source_query(&self.name, with)?;
                self.credentials_tasks(&query).await
            })),
            SourceKind::Tasks => Some(Box::pin(async move {
                let query: TasksQuery = source_query(&self.name, with)?;
                self.tasks(&query).await
            })),
            _ => None,
        }
    }

    fn send<'a>(
        &'a self,
        works: &'a [&'a Work],
    ) -> BoxFuture<'a, Result<Vec<Answer>, ProviderError>> {
        Box::pin(each(&self.name, works, Work::retry_credentials_task, |a| {
            self.execute(a)
        }))
    }

    fn poll<'a>(&'a self, task: &'a str) -> BoxFuture<'a, Result<TaskState, ProviderError>> {
        Box::pin(self.poll(task))
    }

    fn busy<'a>(&'a self, work: &'a Work) -> BoxFuture<'a, Result<Option<String>, ProviderError>> {
        Box::pin(async move {
            let own = work
                .retry_credentials_task()
                .ok_or_else(|| mismatch(&self.name))?;
            self.running_operation(&own.task_id).await
        })
    }

    /// A task seen PENDING or IN_PROGRESS after a lost answer was started by that send.
    fn running_task(&self, work: &Work, observed: &Observed) -> Option<String> {
        let status = observed.facts.get("status")?.as_str()?;
        let running = matches!(normalize_status(status).as_str(), "PENDING" | "IN_PROGRESS");
        running.then(|| self.target(work))
    }

    /// A task that succeeded stays succeeded; seen failed again, it was re-run and failed since.
    fn success_is_undone_by_a_new_failure(&self) -> bool {
        true
    }
}
