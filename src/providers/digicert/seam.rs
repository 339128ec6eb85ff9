//! DigiCert behind the provider seam: how the plan and the engine reach this module.

use serde_json::Value;

use super::{DEFAULT_BATCH, Digicert, target_key};
use crate::manifest::model::{AutomatedIpsQuery, SourceKind, Work};
use crate::providers::provider::{Batching, BoxFuture, mismatch, source_query};
use crate::providers::{Answer, Idempotency, Observed, ProviderError, RequestPreview};

impl crate::providers::Provider for Digicert {
    fn name(&self) -> &str {
        &self.name
    }

    fn target(&self, work: &Work) -> String {
        work.bulk().map(|(_, t)| target_key(t)).unwrap_or_default()
    }

    fn preview(&self, work: &Work) -> (RequestPreview, Idempotency) {
        let preview = work
            .bulk()
            .map(|(action, target)| self.preview(action, target))
            .unwrap_or_default();
        (preview, Self::idempotency())
    }

    fn observe<'a>(
        &'a self,
        work: &'a Work,
    ) -> BoxFuture<'a, Option<Result<Observed, ProviderError>>> {
        Box::pin(async move {
            let (action, target) = work.bulk()?;
            Some(self.observe(action, target).await)
        })
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
        with: &'a Value,
    ) -> Option<BoxFuture<'a, Result<Vec<Value>, ProviderError>>> {
        (kind == SourceKind::AutomatedIps).then(|| {
            Box::pin(async move {
                let query: AutomatedIpsQuery = source_query(&self.name, with)?;
                self.automated_ips(&query).await
            }) as BoxFuture<'a, _>
        })
    }

    fn send<'a>(
        &'a self,
        works: &'a [&'a Work],
    ) -> BoxFuture<'a, Result<Vec<Answer>, ProviderError>> {
        Box::pin(async move {
            let Some((base, _)) = works.first().and_then(|w| w.bulk()) else {
                return Err(mismatch(&self.name));
            };
            let targets = works
                .iter()
                .map(|w| {
                    w.bulk()
                        .map(|(_, t)| t.clone())
                        .ok_or_else(|| mismatch(&self.name))
                })
                .collect::<Result<Vec<_>, _>>()?;
            self.execute(base, &targets).await
        })
    }

    /// The bulk endpoint takes `batch_size` targets (50 by default) and answers per `ip:port`,
    /// so SNI targets sharing one go in separate requests.
    fn batching(&self, work: &Work) -> Option<Batching> {
        let (action, target) = work.bulk()?;
        Some(Batching {
            size: action
                .batch_size
                .and_then(|s| usize::try_from(s.max(1)).ok())
                .unwrap_or(DEFAULT_BATCH),
            exclusive: format!("{}:{}", target.ip, target.port),
        })
    }
}
