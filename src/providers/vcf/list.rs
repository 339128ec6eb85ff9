//! The task lists of SDDC Manager (providers.md §3.3) as plan-time sources: failed credentials
//! tasks (`GET /v1/credentials/tasks`, one page: the spec has no paging there) and tasks by
//! status (`GET /v1/tasks?taskStatus=`, every page).

use std::collections::HashSet;

use serde_json::{Value, json};

use super::Vcf;
use crate::manifest::model::{CredentialsTasksQuery, TasksQuery};
use crate::providers::ProviderError;

/// `pageSize` is at most 100 (providers.md §3.3).
const PAGE_SIZE: u64 = 100;
/// Bounds the paging loop whatever the server says its total is.
const MAX_PAGES: u64 = 10_000;

/// Task statuses come as `IN_PROGRESS` or `In Progress`; compare them normalised.
#[must_use]
pub fn normalize_status(status: &str) -> String {
    status.trim().to_ascii_uppercase().replace([' ', '-'], "_")
}

impl Vcf {
    /// `GET /v1/credentials/tasks`: the spec's `getCredentialsTasks` takes only `limit`, no
    /// page, so one request without it answers with every task.
    pub(super) async fn credentials_task_list(&self) -> Result<Value, ProviderError> {
        let reply = self.get("v1/credentials/tasks").await?;
        reply.json().filter(|_| reply.status == 200).ok_or_else(|| {
            ProviderError::unexpected(&self.name, "GET /v1/credentials/tasks", &reply)
        })
    }

    /// Every element of a `PageOf…` list, page after page as `pageMetadata` tells: the next page
    /// is the one after the page the server says it sent, so 0- and 1-based numbering both work,
    /// and a page that adds no new id ends it.
    async fn pages(
        &self,
        path: &str,
        query: &[(&str, String)],
    ) -> Result<Vec<Value>, ProviderError> {
        let mut out = Vec::new();
        let mut seen = HashSet::new();
        let mut number: u64 = 0;
        for _ in 0..MAX_PAGES {
            let mut url = url::Url::parse("http://query.invalid/").expect("a constant URL");
            {
                let mut pairs = url.query_pairs_mut();
                for (key, value) in query {
                    pairs.append_pair(key, value);
                }
                pairs.append_pair("pageNumber", &number.to_string());
                pairs.append_pair("pageSize", &PAGE_SIZE.to_string());
            }
            let target = format!("{path}?{}", url.query().unwrap_or_default());
            let reply = self.get(&target).await?;
            let page = reply
                .json()
                .filter(|_| reply.status == 200)
                .ok_or_else(|| {
                    ProviderError::unexpected(&self.name, &format!("GET /{path}"), &reply)
                })?;
            let elements = page["elements"].as_array().cloned().unwrap_or_default();
            let short = (elements.len() as u64) < PAGE_SIZE;
            let before = out.len();
            for e in elements {
                let id = e["id"].as_str().unwrap_or_default().to_owned();
                if seen.insert(id) {
                    out.push(e);
                }
            }
            let meta = &page["pageMetadata"];
            let total = meta["totalElements"].as_u64().unwrap_or(0);
            let sent = meta["pageNumber"].as_u64().unwrap_or(number);
            let all = if total > 0 {
                out.len() as u64 >= total
            } else {
                short
            };
            if out.len() == before || all {
                break;
            }
            number = sent + 1;
        }
        Ok(out)
    }

    /// The `credentials_tasks` source: the tasks with a wanted status and operation type, with
    /// the resources each one touched.
    pub(super) async fn credentials_tasks(
        &self,
        query: &CredentialsTasksQuery,
    ) -> Result<Vec<Value>, ProviderError> {
        let wanted = |list: &[String], value: &str| {
            list.is_empty()
                || list
                    .iter()
                    .any(|w| normalize_status(w) == normalize_status(value))
        };
        let page = self.credentials_task_list().await?;
        Ok(page["elements"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|t| {
                wanted(&query.status, t["status"].as_str().unwrap_or_default())
                    && wanted(
                        &query.operation_type,
                        t["type"].as_str().unwrap_or_default(),
                    )
            })
            .map(|t| {
                let resources: Vec<Value> = t["subTasks"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .map(|s| {
                        json!({
                            "resource_name": s["resourceName"],
                            "resource_type": s["entityType"],
                            "credential_type": s["credentialType"],
                            "username": s["username"],
                            "status": s["status"],
                        })
                    })
                    .collect();
                json!({
                    "id": t["id"],
                    "name": t["name"],
                    "operation_type": t["type"],
                    "status": normalize_status(t["status"].as_str().unwrap_or_default()),
                    "elements": elements(&resources),
                    "resources": resources,
                })
            })
            .collect())
    }

    /// The `tasks` source: `GET /v1/tasks` by status and type, every page.
    pub(super) async fn tasks(&self, query: &TasksQuery) -> Result<Vec<Value>, ProviderError> {
        let mut filters = Vec::new();
        if let Some(s) = &query.status {
            filters.push(("taskStatus", s.clone()));
        }
        if let Some(t) = &query.task_type {
            filters.push(("taskType", t.clone()));
        }
        Ok(self
            .pages("v1/tasks", &filters)
            .await?
            .iter()
            .filter(|t| {
                query
                    .retryable
                    .is_none_or(|r| t["isRetryable"].as_bool() == Some(r))
            })
            .map(|t| {
                json!({
                    "id": t["id"],
                    "name": t["name"],
                    "type": t["type"],
                    "status": normalize_status(t["status"].as_str().unwrap_or_default()),
                    "is_retryable": t["isRetryable"],
                    "creation_timestamp": t["creationTimestamp"],
                })
            })
            .collect())
    }
}

/// The task's resources as `retry_credentials_task`'s `elements`: one per resource, with the
/// credentials its sub-tasks named (the same spec again, as far as the task shows it).
fn elements(resources: &[Value]) -> Vec<Value> {
    let mut out: Vec<Value> = Vec::new();
    for r in resources {
        let credential =
            json!({"credential_type": r["credential_type"], "username": r["username"]});
        let same = out.iter_mut().find(|e| {
            e["resource_name"] == r["resource_name"] && e["resource_type"] == r["resource_type"]
        });
        match same {
            Some(e) => {
                if let Some(list) = e["credentials"].as_array_mut() {
                    list.push(credential);
                }
            }
            None => out.push(json!({
                "resource_name": r["resource_name"],
                "resource_type": r["resource_type"],
                "credentials": [credential],
            })),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::normalize_status;

    #[test]
    fn statuses_normalise() {
        assert_eq!(normalize_status("In Progress"), "IN_PROGRESS");
        assert_eq!(normalize_status("Successful"), "SUCCESSFUL");
    }
}
