//! Ncloud behind the provider seam: how the plan and the engine reach this module.

use super::*;
use crate::manifest::model::{NcpCertificatesQuery, SourceKind, Work};
use crate::providers::provider::{BoxFuture, each, source_query};
use crate::providers::{Answer, Idempotency, Observed, Provider, ProviderError, RequestPreview};

impl Provider for Ncloud {
    fn name(&self) -> &str {
        &self.name
    }

    fn target(&self, work: &Work) -> String {
        work.reissue_certificate()
            .map(|a| format!("certificate {}", a.certificate_no))
            .unwrap_or_default()
    }

    fn preview(&self, work: &Work) -> (RequestPreview, Idempotency) {
        let preview = work
            .reissue_certificate()
            .map(|a| self.preview(a))
            .unwrap_or_default();
        (preview, Self::idempotency())
    }

    fn observe<'a>(
        &'a self,
        work: &'a Work,
    ) -> BoxFuture<'a, Option<Result<Observed, ProviderError>>> {
        Box::pin(async move { Some(self.observe(work.reissue_certificate()?).await) })
    }

    fn observe_many<'a>(
        &'a self,
        works: &'a [&'a Work],
    ) -> Option<BoxFuture<'a, Result<Vec<Option<Observed>>, ProviderError>>> {
        Some(Box::pin(self.observe_many(works)))
    }

    fn source<'a>(
        &'a self,
        kind: SourceKind,
        with: &'a serde_json::Value,
    ) -> Option<BoxFuture<'a, Result<Vec<serde_json::Value>, ProviderError>>> {
        (kind == SourceKind::NcpCertificates).then(|| {
            Box::pin(async move {
                let query: NcpCertificatesQuery = source_query(&self.name, with)?;
                self.certificates(&query).await
            }) as BoxFuture<'a, _>
        })
    }

    fn send<'a>(
        &'a self,
        works: &'a [&'a Work],
    ) -> BoxFuture<'a, Result<Vec<Answer>, ProviderError>> {
        Box::pin(each(&self.name, works, Work::reissue_certificate, |a| {
            self.execute(a)
        }))
    }

    fn took_effect_since(
        &self,
        facts: Option<&serde_json::value::RawValue>,
        sent_at: &str,
    ) -> bool {
        updated_since(facts, sent_at)
    }
}
