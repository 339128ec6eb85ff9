//! The certificate search of Venafi TPP (providers.md §1.3, item 3): the `tpp_certificates`
//! source, and the bulk observation that settles every target the `InError` search shows.

use std::collections::HashSet;

use reqwest::Method;
use serde_json::{Value, json};

use super::Venafi;
use crate::manifest::model::{TppCertificatesQuery, Work};
use crate::providers::provider::worth_listing;
use crate::providers::{Observed, ProviderError, Verdict};

/// Certificates asked for per page.
const PAGE: u64 = 1000;
/// Bounds the paging loop whatever the server says its total is.
const MAX_PAGES: u64 = 100_000;
/// Below this many targets one read each is as cheap as a search.
const MIN_BULK: usize = 4;

impl Venafi {
    /// `GET Certificates/` with `filters`, every page (`Limit`/`Offset`); stops early once the
    /// total needs more than `budget` pages (what was read still counts: it is what TPP showed).
    async fn search(
        &self,
        filters: &[(&str, String)],
        budget: Option<usize>,
    ) -> Result<Vec<Value>, ProviderError> {
        let mut certificates = Vec::new();
        let mut offset: u64 = 0;
        for _ in 0..MAX_PAGES {
            let mut url = self.http.url("vedsdk/Certificates/");
            {
                let mut pairs = url.query_pairs_mut();
                for (key, value) in filters {
                    pairs.append_pair(key, value);
                }
                pairs.append_pair("Limit", &PAGE.to_string());
                pairs.append_pair("Offset", &offset.to_string());
            }
            let reply = self.call_at(Method::GET, url, None::<&Value>).await?;
            let body = reply
                .json()
                .filter(|_| reply.status == 200)
                .ok_or_else(|| ProviderError::unexpected(&self.name, "Certificates/", &reply))?;
            let page = body["Certificates"].as_array().cloned().unwrap_or_default();
            let total = body["TotalCount"].as_u64().unwrap_or(0);
            let short = (page.len() as u64) < PAGE;
            offset += page.len() as u64;
            certificates.extend(page);
            let over_budget = budget.is_some_and(|b| !worth_listing(total.div_ceil(PAGE), b));
            if short || offset >= total || over_budget {
                break;
            }
        }
        Ok(certificates)
    }

    /// The `tpp_certificates` source: `{dn, guid, name, parent_dn}` of every match.
    pub(super) async fn certificates(
        &self,
        query: &TppCertificatesQuery,
    ) -> Result<Vec<Value>, ProviderError> {
        let found = self.search(&filters(query), None).await?;
        Ok(found
            .iter()
            .map(|c| {
                json!({
                    "dn": c["DN"],
                    "guid": c["Guid"],
                    "name": c["Name"],
                    "parent_dn": c["ParentDn"],
                })
            })
            .collect())
    }

    /// Settles, with one `InError` search under the targets' common folder, every target the
    /// search shows in error; the others keep their own check (one that left the error state,
    /// or moved between two pages, must not be taken for converged by its absence).
    pub(super) async fn observe_many(
        &self,
        works: &[&Work],
    ) -> Result<Vec<Option<Observed>>, ProviderError> {
        let dns: Vec<Option<&str>> = works
            .iter()
            .map(|w| w.retry_certificate().map(|a| a.certificate_dn.as_str()))
            .collect();
        let Some(folder) = common_folder(dns.iter().flatten().copied()) else {
            return Ok(vec![None; works.len()]);
        };
        let filters = [
            ("ParentDnRecursive", folder),
            ("InError", "true".to_owned()),
        ];
        // One read-only check costs two requests per target (DnToGuid, then the certificate).
        let found = self.search(&filters, Some(works.len() * 2)).await?;
        let in_error: HashSet<String> = found
            .iter()
            .filter_map(|c| c["DN"].as_str())
            .map(str::to_lowercase)
            .collect();
        Ok(dns
            .into_iter()
            .map(|dn| {
                dn.filter(|dn| in_error.contains(&dn.to_lowercase()))
                    .map(|_| Observed::new(Verdict::Run).fact("in_error", true))
            })
            .collect())
    }

    /// Whether a search is worth it for these works.
    pub(super) fn lists(works: &[&Work]) -> bool {
        works.len() >= MIN_BULK
    }
}

/// The query string of a source's filters (pytpp's certificate filter names).
fn filters(q: &TppCertificatesQuery) -> Vec<(&'static str, String)> {
    let folder = if q.recursive {
        "ParentDnRecursive"
    } else {
        "ParentDn"
    };
    let mut out = vec![(folder, q.folder.clone())];
    let flags = [
        ("InError", q.in_error),
        ("Disabled", q.disabled),
        ("PendingWorkflow", q.pending_workflow),
    ];
    for (key, value) in flags {
        if let Some(v) = value {
            out.push((key, if v { "true" } else { "false" }.to_owned()));
        }
    }
    let stages = [
        ("Stage", q.stage),
        ("StageGreater", q.stage_greater),
        ("StageLess", q.stage_less),
    ];
    for (key, value) in stages {
        if let Some(v) = value {
            out.push((key, v.to_string()));
        }
    }
    for (key, value) in [
        ("ValidToLess", &q.valid_to_less),
        ("ValidToGreater", &q.valid_to_greater),
    ] {
        if let Some(v) = value {
            out.push((key, v.clone()));
        }
    }
    out
}

/// The deepest policy folder holding every DN, when it is below `\VED\Policy`: a search of the
/// whole tree would read far more than the targets.
fn common_folder<'a>(dns: impl Iterator<Item = &'a str>) -> Option<String> {
    let mut common: Option<Vec<String>> = None;
    for dn in dns {
        let parts: Vec<String> = dn.split('\\').map(str::to_lowercase).collect();
        // The certificate's own name is not a folder.
        let folders = &parts[..parts.len().saturating_sub(1)];
        common = Some(match common {
            None => folders.to_vec(),
            Some(c) => c
                .iter()
                .zip(folders)
                .take_while(|(a, b)| a == b)
                .map(|(a, _)| a.clone())
                .collect(),
        });
    }
    let common = common?;
    // "", "ved", "policy", and at least one folder below.
    if common.len() < 4 || common[1] != "ved" || common[2] != "policy" {
        return None;
    }
    Some(common.join("\\"))
}

#[cfg(test)]
mod tests {
    use super::{common_folder, filters};
    use crate::manifest::model::TppCertificatesQuery;

    #[test]
    fn a_query_becomes_pytpp_s_filter_names() {
        let query = TppCertificatesQuery {
            folder: r"\VED\Policy\X".into(),
            recursive: false,
            in_error: Some(true),
            stage_greater: Some(100),
            disabled: Some(false),
            valid_to_less: Some("2026-12-31".into()),
            ..TppCertificatesQuery::default()
        };
        let pairs: Vec<(&str, String)> = filters(&query);
        let expected = [
            ("ParentDn", r"\VED\Policy\X"),
            ("InError", "true"),
            ("Disabled", "false"),
            ("StageGreater", "100"),
            ("ValidToLess", "2026-12-31"),
        ];
        assert_eq!(pairs, expected.map(|(k, v)| (k, v.to_owned())).to_vec());
    }

    #[test]
    fn the_common_folder_is_below_the_policy_root() {
        let dns = [
            r"\VED\Policy\Certificates\Web\a.example.com",
            r"\VED\Policy\Certificates\web\Inner\b.example.com",
        ];
        assert_eq!(
            common_folder(dns.into_iter()).as_deref(),
            Some(r"\ved\policy\certificates\web")
        );
        let spread = [r"\VED\Policy\A\x", r"\VED\Policy\B\y"];
        assert_eq!(common_folder(spread.into_iter()), None);
        assert_eq!(common_folder([r"\VED\Policy\x"].into_iter()), None);
    }
}
