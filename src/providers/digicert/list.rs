//! DigiCert's `automatedips/list` (providers.md §2.3): the automations of an account by
//! `ip:port` for the ids, the `automated_ips` source, and the bulk observation that settles a
//! target by its listed status.

use std::collections::HashMap;
use std::sync::Arc;

use serde_json::{Value, json};

use super::Digicert;
use crate::manifest::model::{AutomatedIpsQuery, AutomationTarget, Work};
use crate::providers::provider::worth_listing;
use crate::providers::{Observed, ProviderError, Verdict};

/// The list endpoint's largest page.
const PAGE_SIZE: u64 = 512;
/// Bounds the paging loop whatever the server says its total is.
const MAX_PAGES: u64 = 10_000;
/// Passes over a list whose total keeps changing before the last one is taken as it is.
const CONSISTENT_ATTEMPTS: usize = 3;

/// The automations of one account by `ip:port`, as the documented list shows them.
pub(super) type Automations = Arc<HashMap<String, Vec<Listed>>>;

/// One automation in `automatedips/list` (providers.md §2.3: `automationId`, `automatedIp`,
/// `automatedPort`, `certificateCn`, `alias`, … — no domain name).
#[derive(Debug, Clone)]
pub(super) struct Listed {
    pub(super) id: u64,
    cn: String,
    alias: String,
    /// `automationStatus` when the list was read.
    pub(super) status: String,
}

impl Listed {
    /// Whether this automation serves `domain`: its certificate's CN or its alias names it.
    fn serves(&self, domain: &str) -> bool {
        self.cn.eq_ignore_ascii_case(domain) || self.alias.eq_ignore_ascii_case(domain)
    }
}

/// Which automation of an `ip:port` a target means, by documented fields only: the only one
/// there, or the one whose certificate CN or alias is the target's `domain_name`. Ambiguity is a
/// reason to hold the target back, never a guess.
pub(super) fn matching<'a>(
    listed: &'a [Listed],
    target: &AutomationTarget,
) -> Result<&'a Listed, String> {
    let at = format!("{}:{}", target.ip, target.port);
    let ids = |all: &[&Listed]| {
        all.iter()
            .map(|l| format!("{} (CN {})", l.id, l.cn))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let candidates: Vec<&Listed> = match &target.domain_name {
        Some(d) => listed.iter().filter(|l| l.serves(d)).collect(),
        None => listed.iter().collect(),
    };
    match (candidates.as_slice(), &target.domain_name) {
        ([one], _) => Ok(one),
        ([], Some(d)) => Err(format!(
            "no automation at {at} has a certificate CN or alias `{d}` (there: {})",
            ids(&listed.iter().collect::<Vec<_>>())
        )),
        ([], None) => Err(format!("no automation at {at}")),
        (many, Some(d)) => Err(format!(
            "several automations at {at} serve `{d}` ({}); the target is ambiguous",
            ids(many)
        )),
        (many, None) => Err(format!(
            "several automations share {at} ({}); name the target's `domain_name` (its certificate CN or alias)",
            ids(many)
        )),
    }
}

impl Digicert {
    /// Every page of `automatedips/list` for this query body (`accountId` and criteria);
    /// `budget` stops it once the total needs more pages than that. A total that changes
    /// between pages means items moved under the paging (one may have been skipped), so the
    /// list is read again, a few times at most: absence from it holds a target back.
    pub(super) async fn list(
        &self,
        query: &Value,
        budget: Option<usize>,
    ) -> Result<Vec<Value>, ProviderError> {
        let mut out = Vec::new();
        for _ in 0..CONSISTENT_ATTEMPTS {
            let (items, stable) = self.pages(query, budget).await?;
            out = items;
            if stable {
                break;
            }
        }
        Ok(out)
    }

    /// One pass over the pages, and whether the total stayed the same throughout.
    async fn pages(
        &self,
        query: &Value,
        budget: Option<usize>,
    ) -> Result<(Vec<Value>, bool), ProviderError> {
        let mut out = Vec::new();
        let mut first_total = None;
        let mut stable = true;
        let mut start = 1;
        for _ in 0..MAX_PAGES {
            let mut body = query.clone();
            body["pageSize"] = json!(PAGE_SIZE);
            body["startIndex"] = json!(start);
            let reply = self.post("automatedips/list", &body).await?;
            let body = reply
                .json()
                .filter(|_| reply.status == 200)
                .ok_or_else(|| {
                    ProviderError::unexpected(&self.name, "automatedips/list", &reply)
                })?;
            let items = body["data"]["automatedIps"]
                .as_array()
                .cloned()
                .unwrap_or_default();
            let total = body["data"]["totalCount"].as_u64().unwrap_or(0);
            stable &= *first_total.get_or_insert(total) == total;
            let short = items.len() < PAGE_SIZE as usize;
            out.extend(items);
            start += PAGE_SIZE;
            let over_budget = budget.is_some_and(|b| !worth_listing(total.div_ceil(PAGE_SIZE), b));
            if short || (total > 0 && start > total) || over_budget {
                break;
            }
        }
        Ok((out, stable))
    }

    /// Every automated `ip:port` of the account, listed once and kept for the ids; `fresh`
    /// lists again (the statuses are only as fresh as the list).
    pub(super) async fn automations(
        &self,
        account: u64,
        fresh: bool,
    ) -> Result<Automations, ProviderError> {
        let mut cache = self.automations.lock().await;
        if !fresh && let Some(found) = cache.get(&account) {
            // Shared, not copied: one observation per target must not copy the whole list.
            return Ok(found.clone());
        }
        let mut found: HashMap<String, Vec<Listed>> = HashMap::new();
        for item in self.list(&json!({"accountId": account}), None).await? {
            let ip = item["automatedIp"].as_str().unwrap_or_default();
            let port = item["automatedPort"].as_u64().unwrap_or_default();
            let text = |k: &str| item[k].as_str().unwrap_or_default().to_owned();
            found
                .entry(format!("{ip}:{port}"))
                .or_default()
                .push(Listed {
                    id: item["automationId"].as_u64().unwrap_or_default(),
                    cn: text("certificateCn"),
                    alias: text("alias"),
                    status: text("automationStatus"),
                });
        }
        let found = Arc::new(found);
        cache.insert(account, found.clone());
        Ok(found)
    }

    /// Settles every target whose status in one fresh list of its account decides it; the
    /// others (a status that needs `isRetryApplicable`) keep their own check.
    pub(super) async fn observe_many(
        &self,
        works: &[&Work],
    ) -> Result<Vec<Option<Observed>>, ProviderError> {
        let mut lists: HashMap<u64, Automations> = HashMap::new();
        let mut out = Vec::with_capacity(works.len());
        for work in works {
            let Some((action, target)) = work.bulk() else {
                out.push(None);
                continue;
            };
            let account = target.account_id.unwrap_or(action.account_id);
            let all = match lists.get(&account) {
                Some(all) => all.clone(),
                None => {
                    let all = self.automations(account, true).await?;
                    lists.insert(account, all.clone());
                    all
                }
            };
            out.push(match located(&all, target, account) {
                // Not listed: its own check says so, from the same list (kept).
                Err(_) => None,
                Ok(listed) => decide(listed.id, &listed.status, None, "").map(|verdict| {
                    Observed::new(verdict)
                        .fact("automation_id", listed.id)
                        .fact("automation_status", listed.status.clone())
                }),
            });
        }
        Ok(out)
    }

    /// The `automated_ips` source: every automation with a wanted status and agent, with the
    /// target that `bulk_retry_automation` takes for it. The account (or each given division)
    /// is listed whole and filtered here: only the whole list shows which automations share an
    /// `ip:port` (SNI), and those need their `domain_name`, which is their certificate's CN.
    pub(super) async fn automated_ips(
        &self,
        query: &AutomatedIpsQuery,
    ) -> Result<Vec<Value>, ProviderError> {
        let divisions: Vec<Option<u64>> = if query.division_ids.is_empty() {
            vec![None]
        } else {
            query.division_ids.iter().copied().map(Some).collect()
        };
        let mut all: Vec<(Option<u64>, Value)> = Vec::new();
        for division in divisions {
            let mut body = json!({"accountId": query.account_id});
            if let Some(d) = division {
                body["divisionIds"] = json!([d]);
            }
            all.extend(
                self.list(&body, None)
                    .await?
                    .into_iter()
                    .map(|a| (division, a)),
            );
        }
        let mut sharing: HashMap<String, usize> = HashMap::new();
        for (_, a) in &all {
            *sharing.entry(at(a)).or_default() += 1;
        }
        let wanted = |list: &[String], value: &Value| {
            list.is_empty() || list.iter().any(|w| Some(w.as_str()) == value.as_str())
        };
        Ok(all
            .iter()
            .filter(|(_, a)| {
                wanted(&query.automation_status, &a["automationStatus"])
                    && wanted(&query.agent_name, &a["agentName"])
            })
            .map(|(division, a)| {
                let mut target = json!({
                    "ip": a["automatedIp"],
                    "port": a["automatedPort"],
                    "account_id": query.account_id,
                });
                if let Some(d) = division {
                    target["division_id"] = json!(d);
                }
                if let Some(m) = a["managementIp"].as_str().filter(|m| !m.is_empty()) {
                    target["management_ip"] = json!(m);
                }
                if sharing.get(&at(a)).copied().unwrap_or(0) > 1
                    && let Some(cn) = a["certificateCn"].as_str().filter(|c| !c.is_empty())
                {
                    target["domain_name"] = json!(cn);
                }
                json!({
                    "automation_id": a["automationId"],
                    "automation_status": a["automationStatus"],
                    "certificate_cn": a["certificateCn"],
                    "certificate_expires_on": a["certificateExpiresOn"],
                    "alias": a["alias"],
                    "agent_name": a["agentName"],
                    "target": target,
                })
            })
            .collect())
    }
}

/// The `ip:port` of a listed automation.
fn at(a: &Value) -> String {
    format!(
        "{}:{}",
        a["automatedIp"].as_str().unwrap_or_default(),
        a["automatedPort"].as_u64().unwrap_or_default()
    )
}

/// The one automation a target means in its account's list, or the verdict holding it back.
pub(super) fn located<'a>(
    all: &'a Automations,
    target: &AutomationTarget,
    account: u64,
) -> Result<&'a Listed, Observed> {
    let listed = all
        .get(&format!("{}:{}", target.ip, target.port))
        .map_or(&[][..], Vec::as_slice);
    matching(listed, target)
        .map_err(|why| Observed::new(Verdict::Blocked(format!("{why} in account {account}"))))
}

/// providers.md §2.3's plan rule, one for the list and the details: a failed automation is
/// retried; a renewed or scheduled one is done; any other needs `isRetryApplicable`, and `None`
/// says it is not known yet.
pub(super) fn decide(
    id: u64,
    status: &str,
    applicable: Option<bool>,
    cause: &str,
) -> Option<Verdict> {
    Some(if status.ends_with("FAILED") {
        Verdict::Run
    } else if status.contains("RENEWED") {
        Verdict::Converged(format!("automation {id} is {status}"))
    } else if status.contains("SCHEDULED") {
        Verdict::Converged(format!("a retry of automation {id} is already scheduled"))
    } else if applicable? {
        Verdict::Run
    } else {
        Verdict::Blocked(format!(
            "DigiCert offers no retry for automation {id} ({status}){}",
            if cause.is_empty() {
                String::new()
            } else {
                format!(": {cause}")
            }
        ))
    })
}
