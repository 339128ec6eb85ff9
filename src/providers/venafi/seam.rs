//! Venafi behind the provider seam: how the plan and the engine reach this module.

use super::*;
use crate::manifest::model::{SourceKind, TppCertificatesQuery, Work};
use crate::providers::provider::{BoxFuture, each, source_query};
use crate::providers::{Answer, Idempotency, Observed, Provider, ProviderError, RequestPreview};

impl Provider for Venafi {
    fn name(&self) -> &str {
        &self.name
    }

    fn target(&self, work: &Work) -> String {
        work.retry_certificate()
            .map(|a| a.certificate_dn.clone())
            .unwrap_or_default()
    }

    fn preview(&self, work: &Work) -> (RequestPreview, Idempotency) {
        let preview = work
            .retry_certificate()
            .map(|a| self.preview(a))
            .unwrap_or_default();
        (preview, Self::idempotency())
    }

    fn observe<'a>(
        &'a self,
        work: &'a Work,
    ) -> BoxFuture<'a, Option<Result<Observed, ProviderError>>> {
        Box::pin(async move { Some(self.observe(work.retry_certificate()?).await) })
    }

    fn observe_many<'a>(
        &'a self,
        works: &'a [&'a Work],
    ) -> Option<BoxFuture<'a, Result<Vec<Option<Observed>>, ProviderError>>> {
        Self::lists(works).then(|| Box::pin(self.observe_many(works)) as BoxFuture<'a, _>)
    }

    fn source<'a>(
        &'a self,
        kind: SourceKind,
        with: &'a Value,
    ) -> Option<BoxFuture<'a, Result<Vec<Value>, ProviderError>>> {
        (kind == SourceKind::TppCertificates).then(|| {
            Box::pin(async move {
                let query: TppCertificatesQuery = source_query(&self.name, with)?;
                self.certificates(&query).await
            }) as BoxFuture<'a, _>
        })
    }

    fn send<'a>(
        &'a self,
        works: &'a [&'a Work],
    ) -> BoxFuture<'a, Result<Vec<Answer>, ProviderError>> {
        Box::pin(each(&self.name, works, Work::retry_certificate, |a| {
            self.execute(a)
        }))
    }
}
