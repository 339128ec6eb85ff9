//! Open Telekom Cloud WAF (providers.md §4): an IAM password token (`X-Subject-Token`, cached
//! until shortly before `expires_at`) or a given token, and the `certificates` source paging
//! through `GET /v1/{project_id}/waf/certificate` 100 at a time until `total`.

use std::path::Path;

use reqwest::Method;
use serde_json::{Value, json};
use tokio::sync::Mutex;

use super::http::Http;
use super::provider::{BoxFuture, mismatch, source_query};
use super::secret::Secret;
use super::{Answer, Idempotency, Observed, RequestPreview};
use super::{ProviderError, SecretSource, auth_of};
use crate::manifest::model::{CertificatesQuery, OtcAuth, Provider};
use crate::manifest::model::{SourceKind, Work};

const PAGE_SIZE: usize = 100;
/// Bounds the paging loop whatever `total` says (100 per page: 10 million certificates).
const MAX_PAGES: usize = 100_000;
const EXPIRY_MARGIN: jiff::SignedDuration = jiff::SignedDuration::from_secs(300);

#[derive(Debug)]
pub struct OtcWaf {
    name: String,
    http: Http,
    iam: Option<Http>,
    project_id: String,
    project_name: Option<String>,
    domain: Option<String>,
    username: Option<String>,
    password: Option<SecretSource>,
    given_token: Option<SecretSource>,
    token: Mutex<Option<(Secret, Option<jiff::Timestamp>)>>,
}

impl OtcWaf {
    /// # Errors
    /// An `auth` block that does not fit, or a bad `iam_url`.
    pub fn new(
        name: &str,
        http: Http,
        auth: &Value,
        base: &Path,
        demo: Option<&super::demo::Demo>,
        provider: &Provider,
    ) -> Result<Self, ProviderError> {
        let auth: OtcAuth = auth_of(name, auth)?;
        let mut me = Self {
            name: name.to_owned(),
            http,
            iam: None,
            project_id: auth.project_id.clone(),
            project_name: auth.project_name.clone(),
            domain: auth.domain.clone(),
            username: auth.username.clone(),
            password: auth
                .password
                .as_ref()
                .map(|r| SecretSource::reference(r, base)),
            given_token: auth
                .token
                .as_ref()
                .map(|r| SecretSource::reference(r, base)),
            token: Mutex::new(None),
        };
        let mut iam_url = auth.iam_url.clone();
        if let Some(o) = demo.and_then(|d| d.otc.as_ref()) {
            if let Some((u, domain)) = &o.login {
                me.username = Some(u.username.clone());
                me.domain = Some(domain.clone());
                me.password = Some(SecretSource::Value(Secret::new(u.password.clone())));
            }
            if let Some((id, name)) = &o.project {
                me.project_id.clone_from(id);
                me.project_name = Some(name.clone());
            }
            me.given_token = None;
            iam_url = Some(o.iam_url.clone());
        }
        if let Some(url) = iam_url {
            me.iam =
                Some(
                    Http::new(&url, provider, base).map_err(|error| ProviderError::Setup {
                        provider: name.to_owned(),
                        error,
                    })?,
                );
        }
        Ok(me)
    }

    async fn token(&self) -> Result<Secret, ProviderError> {
        let mut cached = self.token.lock().await;
        let now = jiff::Timestamp::now();
        if let Some((t, expires)) = cached.as_ref()
            && expires.is_none_or(|e| e - EXPIRY_MARGIN > now)
        {
            return Ok(t.clone());
        }
        if let Some(given) = &self.given_token {
            let t = given.get().map_err(|error| ProviderError::Secret {
                provider: self.name.clone(),
                what: "auth.token",
                error,
            })?;
            *cached = Some((t.clone(), None));
            return Ok(t);
        }
        let (Some(iam), Some(user), Some(password), Some(domain)) =
            (&self.iam, &self.username, &self.password, &self.domain)
        else {
            return Err(ProviderError::Config {
                provider: self.name.clone(),
                detail: "auth needs `token`, or `iam_url`, `username`, `password` and `domain`"
                    .into(),
            });
        };
        let password = password.get().map_err(|error| ProviderError::Secret {
            provider: self.name.clone(),
            what: "auth.password",
            error,
        })?;
        let body = json!({"auth": {
            "identity": {"methods": ["password"], "password": {"user": {
                "name": user, "password": password.expose(), "domain": {"name": domain}}}},
            "scope": {"project": {"id": self.project_id}},
        }});
        let mut url = iam.url("auth/tokens");
        url.set_query(Some("nocatalog=true"));
        let request = iam
            .request(Method::POST, url)
            .header("Content-Type", "application/json;charset=utf8")
            .json(&body);
        let reply = iam
            .send(request)
            .await
            .map_err(ProviderError::call(&self.name))?;
        let token = reply
            .header("x-subject-token")
            .filter(|_| reply.status == 201);
        let Some(token) = token else {
            return Err(ProviderError::refused(&self.name, &reply));
        };
        let expires = reply.json().and_then(|b| {
            b["token"]["expires_at"]
                .as_str()
                .and_then(|t| t.parse::<jiff::Timestamp>().ok())
        });
        let token = Secret::registered(token);
        *cached = Some((token.clone(), expires));
        Ok(token)
    }

    /// Every certificate matching `query`, all pages.
    ///
    /// # Errors
    /// An auth or transport failure, or a page that cannot be read.
    pub async fn certificates(
        &self,
        query: &CertificatesQuery,
    ) -> Result<Vec<Value>, ProviderError> {
        let token = self.token().await?;
        let mut items: Vec<Value> = Vec::new();
        for page in 1..=MAX_PAGES {
            let mut url = self
                .http
                .url(&format!("v1/{}/waf/certificate", self.project_id));
            {
                let mut pairs = url.query_pairs_mut();
                pairs.append_pair("page", &page.to_string());
                pairs.append_pair("pagesize", &PAGE_SIZE.to_string());
                pairs.append_pair(
                    "host",
                    if query.host.unwrap_or(true) {
                        "true"
                    } else {
                        "false"
                    },
                );
                if let Some(s) = query.exp_status {
                    pairs.append_pair("exp_status", &s.to_string());
                }
                if let Some(n) = &query.name {
                    pairs.append_pair("name", n);
                }
            }
            let request = self
                .http
                .request(Method::GET, url)
                .header("X-Auth-Token", token.expose())
                .header("Content-Type", "application/json;charset=utf8");
            let reply = self
                .http
                .send(request)
                .await
                .map_err(ProviderError::call(&self.name))?;
            if reply.status == 401 {
                return Err(ProviderError::refused(&self.name, &reply));
            }
            let body = reply
                .json()
                .filter(|_| reply.status == 200)
                .ok_or_else(|| {
                    ProviderError::unexpected(&self.name, "the WAF certificate list", &reply)
                })?;
            let page_items = body["items"].as_array().cloned().unwrap_or_default();
            let total = body["total"]
                .as_u64()
                .and_then(|t| usize::try_from(t).ok())
                .unwrap_or(0);
            let empty = page_items.is_empty();
            items.extend(page_items);
            if empty || items.len() >= total {
                break;
            }
        }
        Ok(items)
    }

    #[must_use]
    pub fn project_name(&self) -> Option<&str> {
        self.project_name.as_deref()
    }
}

impl super::Provider for OtcWaf {
    fn name(&self) -> &str {
        &self.name
    }

    fn target(&self, _work: &Work) -> String {
        String::new()
    }

    fn preview(&self, _work: &Work) -> (RequestPreview, Idempotency) {
        (RequestPreview::default(), Idempotency::Idempotent)
    }

    fn observe<'a>(
        &'a self,
        _work: &'a Work,
    ) -> BoxFuture<'a, Option<Result<Observed, ProviderError>>> {
        Box::pin(async { None })
    }

    /// The WAF is a source only: no action sends to it.
    fn send<'a>(
        &'a self,
        _works: &'a [&'a Work],
    ) -> BoxFuture<'a, Result<Vec<Answer>, ProviderError>> {
        Box::pin(async move { Err(mismatch(&self.name)) })
    }

    fn source<'a>(
        &'a self,
        kind: SourceKind,
        with: &'a Value,
    ) -> Option<BoxFuture<'a, Result<Vec<Value>, ProviderError>>> {
        match kind {
            SourceKind::Certificates => Some(Box::pin(async move {
                let query: CertificatesQuery = source_query(&self.name, with)?;
                self.certificates(&query).await
            })),
            _ => None,
        }
    }
}
