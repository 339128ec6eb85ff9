//! Ncloud behind the provider seam: how the plan and the engine reach this module.

use super::*;
use crate::manifest::model::Work;
use crate::providers::provider::{BoxFuture, each};
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
