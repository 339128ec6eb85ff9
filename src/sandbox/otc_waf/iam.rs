//! OTC IAM (providers.md §4.1): password-scoped tokens for one project, returned in
//! `X-Subject-Token`, with the catalog unless `nocatalog=true`.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{RawQuery, State};
use axum::http::{HeaderValue, StatusCode};
use axum::response::Response;
use base64::Engine;
use serde_json::{Value, json};

use super::{Sim, Token};
use crate::rng;
use crate::sandbox::reply::{self, json as answer, parse_json, url_pairs};
use crate::sandbox::scenario::{OtcProject, OtcUser};

fn iam_error(status: StatusCode, message: &str) -> Response {
    answer(
        status,
        &json!({"error": {"code": status.as_u16(), "message": message, "title": status.canonical_reason().unwrap_or("Error")}}),
    )
}

/// The account and project of a password-scoped token request, or IAM's refusal.
fn password_scope<'a>(
    sim: &'a Sim,
    body: &Value,
) -> Result<(&'a OtcUser, &'a OtcProject), Response> {
    let identity = &body["auth"]["identity"];
    let uses_password = identity["methods"]
        .as_array()
        .is_some_and(|m| m.iter().any(|x| x == "password"));
    let user = &identity["password"]["user"];
    let (Some(name), Some(password), Some(domain)) = (
        user["name"].as_str(),
        user["password"].as_str(),
        user["domain"]["name"].as_str(),
    ) else {
        return Err(iam_error(
            StatusCode::BAD_REQUEST,
            "The request you have made requires authentication: auth.identity.password.user needs name, password and domain.name.",
        ));
    };
    if !uses_password {
        return Err(iam_error(
            StatusCode::BAD_REQUEST,
            "auth.identity.methods must contain \"password\".",
        ));
    }
    let Some(account) = sim
        .users
        .iter()
        .find(|u| u.name == name && u.password == password && u.domain == domain)
    else {
        return Err(iam_error(
            StatusCode::UNAUTHORIZED,
            "The username or password is wrong.",
        ));
    };
    let scope = &body["auth"]["scope"]["project"];
    let project = match (scope["id"].as_str(), scope["name"].as_str()) {
        (Some(id), _) => sim.projects.iter().find(|p| p.id == id),
        (None, Some(n)) => sim.projects.iter().find(|p| p.name == n),
        // WAF is project-scoped: a domain-scoped token cannot call it.
        (None, None) => None,
    };
    let Some(project) = project else {
        return Err(iam_error(
            StatusCode::UNAUTHORIZED,
            "The project in auth.scope.project is unknown or not accessible to this user; WAF needs a project-scoped token.",
        ));
    };
    Ok((account, project))
}

impl Sim {
    /// Issues and remembers a token for `project`.
    fn issue(&self, project: &OtcProject) -> (String, jiff::Timestamp, jiff::Timestamp) {
        let mut tokens = self.tokens();
        let n = tokens.len() as u64 + 1;
        // IAM tokens are PKI blobs of several kilobytes starting with MII.
        let blob: Vec<u8> = (0..24u64)
            .flat_map(|i| {
                rng::bytes::<64>(
                    self.seed,
                    &[b"iam-token", &n.to_le_bytes(), &i.to_le_bytes()],
                )
            })
            .collect();
        let token = format!(
            "MII{}",
            base64::engine::general_purpose::STANDARD
                .encode(blob)
                .replace('/', "-")
        );
        let issued = reply::now();
        let expires = issued + self.token_ttl;
        tokens.insert(
            token.clone(),
            Token {
                project_id: project.id.clone(),
                expires,
            },
        );
        (token, issued, expires)
    }
}

pub(super) async fn iam_tokens(
    State(sim): State<Arc<Sim>>,
    RawQuery(query): RawQuery,
    body: Bytes,
) -> Response {
    let Some(body) = parse_json(&body) else {
        return iam_error(
            StatusCode::BAD_REQUEST,
            "The request body is not valid JSON.",
        );
    };
    let (account, project) = match password_scope(&sim, &body) {
        Ok(found) => found,
        Err(e) => return e,
    };
    let (token, issued, expires) = sim.issue(project);
    let nocatalog = query
        .as_deref()
        .is_some_and(|q| url_pairs(q).any(|(k, v)| k == "nocatalog" && v == "true"));
    let domain_id = format!(
        "{:032x}",
        rng::hash(sim.seed, &[b"iam-domain", account.domain.as_bytes()])
    );
    let mut body = json!({
        "token": {
            "methods": ["password"],
            "expires_at": reply::iso(expires),
            "issued_at": reply::iso(issued),
            "user": {
                "domain": {"id": domain_id, "name": account.domain},
                "id": format!("{:032x}", rng::hash(sim.seed, &[b"iam-user", account.name.as_bytes()])),
                "name": account.name,
                "password_expires_at": "",
            },
            "project": {"id": project.id, "name": project.name, "domain": {"id": domain_id, "name": account.domain}},
            "roles": [{"id": "0", "name": "waf_readonly"}, {"id": "1", "name": "te_agency"}],
        }
    });
    if !nocatalog {
        body["token"]["catalog"] = json!([{
            "endpoints": [{"id": "waf", "interface": "public", "region": project.name, "region_id": project.name, "url": "https://waf.eu-de.otc.t-systems.com"}],
            "id": "waf", "name": "waf", "type": "waf",
        }]);
    }
    let mut response = answer(StatusCode::CREATED, &body);
    if let Ok(v) = HeaderValue::from_str(&token) {
        response.headers_mut().insert("x-subject-token", v);
    }
    response
}
