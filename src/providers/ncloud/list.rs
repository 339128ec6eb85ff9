//! The v2 certificate list of NAVER Cloud (providers.md §5.3): one certificate's check, the
//! `ncp_certificates` source, and the bulk observation that settles a page of targets at once.

use std::collections::HashMap;

use reqwest::Method;
use serde_json::{Value, json};

use super::{Ncloud, status_name};
use crate::manifest::model::{NcpCertificatesQuery, ReissueCertificate, Work};
use crate::providers::provider::worth_listing;
use crate::providers::{Observed, ProviderError, Verdict};

const PAGE_SIZE: usize = 100;
const MAX_PAGES: usize = 10_000;
/// Statuses a reissue may start from (providers.md §5.3): NORMAL, EXPIRE, VALIDATION_FAILED,
/// VALIDATION_EXPIRE.
const REISSUABLE: [i64; 4] = [1, -2, -3, -4];

impl Ncloud {
    /// One page of `ListCertificates`: its certificates and the total.
    async fn page(
        &self,
        page: usize,
        name: Option<&str>,
    ) -> Result<(Vec<Value>, usize), ProviderError> {
        let mut url = self.http.url("api/v2/certificate/certificates");
        {
            let mut q = url.query_pairs_mut();
            q.append_pair("page", &page.to_string());
            q.append_pair("pageSize", &PAGE_SIZE.to_string());
            if let Some(name) = name {
                q.append_pair("certificateName", name);
            }
        }
        let reply = self.send(Method::GET, url, None).await?;
        let body = reply
            .json()
            .filter(|_| reply.status == 200)
            .ok_or_else(|| ProviderError::unexpected(&self.name, "ListCertificates", &reply))?;
        if body["returnCode"].as_str().is_some_and(|c| c != "0") {
            return Err(ProviderError::Unexpected {
                provider: self.name.clone(),
                what: "ListCertificates".into(),
                status: reply.status,
                detail: format!(
                    "returnCode {}: {}",
                    body["returnCode"],
                    body["returnMessage"].as_str().unwrap_or_default()
                ),
            });
        }
        let list = body["sslCertificateList"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        let total = body["totalCount"]
            .as_u64()
            .and_then(|t| usize::try_from(t).ok())
            .unwrap_or(0);
        Ok((list, total))
    }

    /// Every page of the list (filtered by `name`); stops once the total needs more pages than
    /// `budget`.
    async fn every(
        &self,
        name: Option<&str>,
        budget: Option<usize>,
    ) -> Result<Vec<Value>, ProviderError> {
        let mut out = Vec::new();
        for page in 1..=MAX_PAGES {
            let (list, total) = self.page(page, name).await?;
            let empty = list.is_empty();
            out.extend(list);
            let pages = total.div_ceil(PAGE_SIZE) as u64;
            if empty
                || page * PAGE_SIZE >= total
                || budget.is_some_and(|b| !worth_listing(pages, b))
            {
                break;
            }
        }
        Ok(out)
    }

    /// Finds the certificate in the v2 list: by name first, then through every page.
    async fn find(&self, action: &ReissueCertificate) -> Result<Option<Value>, ProviderError> {
        for name in [Some(action.certificate_name.as_str()), None] {
            for page in 1..=MAX_PAGES {
                let (list, total) = self.page(page, name).await?;
                if let Some(found) = list
                    .iter()
                    .find(|c| c["certificateNo"].as_u64() == Some(action.certificate_no))
                {
                    return Ok(Some(found.clone()));
                }
                if list.is_empty() || page * PAGE_SIZE >= total {
                    break;
                }
            }
        }
        Ok(None)
    }

    /// Plan check: is the certificate there, and may a reissue start from its status?
    ///
    /// # Errors
    /// A transport failure, a refused key, or an answer that cannot be read.
    pub async fn observe(&self, action: &ReissueCertificate) -> Result<Observed, ProviderError> {
        Ok(match self.find(action).await? {
            Some(cert) => judge(&cert),
            None => Observed::new(Verdict::Blocked(format!(
                "no certificate {} in Certificate Manager",
                action.certificate_no
            ))),
        })
    }

    /// Settles every target the whole list shows; one it does not show keeps its own check.
    pub(super) async fn observe_many(
        &self,
        works: &[&Work],
    ) -> Result<Vec<Option<Observed>>, ProviderError> {
        let all = self.every(None, Some(works.len())).await?;
        let by_no: HashMap<u64, &Value> = all
            .iter()
            .filter_map(|c| Some((c["certificateNo"].as_u64()?, c)))
            .collect();
        Ok(works
            .iter()
            .map(|w| {
                let no = w.reissue_certificate()?.certificate_no;
                by_no.get(&no).map(|c| judge(c))
            })
            .collect())
    }

    /// The `ncp_certificates` source: every certificate of the list with a wanted status.
    pub(super) async fn certificates(
        &self,
        query: &NcpCertificatesQuery,
    ) -> Result<Vec<Value>, ProviderError> {
        let all = self.every(query.certificate_name.as_deref(), None).await?;
        Ok(all
            .iter()
            .filter(|c| {
                let code = c["statusCode"].as_i64().unwrap_or(i64::MIN);
                let name = c["statusName"]
                    .as_str()
                    .unwrap_or_else(|| status_name(code));
                (query.status_code.is_empty() || query.status_code.contains(&code))
                    && (query.status_name.is_empty()
                        || query
                            .status_name
                            .iter()
                            .any(|n| n.eq_ignore_ascii_case(name)))
            })
            .map(|c| {
                json!({
                    "certificate_no": c["certificateNo"],
                    "certificate_name": c["certificateName"],
                    "common_name": c["commonName"],
                    "dns_name": c["dnsName"],
                    "status_code": c["statusCode"],
                    "status_name": c["statusName"],
                    "valid_end_date": c["validEndDate"],
                    "update_date": c["updateDate"],
                })
            })
            .collect())
    }
}

/// providers.md §5.3's plan rule on one listed certificate, with the facts the diff shows.
fn judge(cert: &Value) -> Observed {
    let code = cert["statusCode"].as_i64().unwrap_or(i64::MIN);
    let name = cert["statusName"]
        .as_str()
        .map_or_else(|| status_name(code).to_owned(), str::to_owned);
    let verdict = if code == 0 {
        Verdict::Blocked(
            "an issuance is already running (ONGOING); a reissue now would start another".into(),
        )
    } else if REISSUABLE.contains(&code) {
        Verdict::Run
    } else {
        Verdict::Blocked(format!("a certificate in status {name} cannot be reissued"))
    };
    let mut observed = Observed::new(verdict)
        .fact("status", format!("{code} {name}"))
        .fact("common_name", cert["commonName"].clone());
    if let Some(end) = cert["validEndDate"].as_str() {
        observed = observed.fact("valid_end", end);
    }
    // Tells a reissue whose answer was lost from one that never arrived (`updated_since`).
    if let Some(updated) = cert["updateDate"].as_str() {
        observed = observed.fact("updated", updated);
    }
    observed
}
