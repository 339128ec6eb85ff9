//! Venafi's `/vedauth` (providers.md §1.1): password grants, single-use refresh tokens that
//! rotate on every redemption, verify and revoke.

use std::collections::HashMap;
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use base64::Engine;
use serde_json::{Value, json};

use super::{Grant, Objects, Sim, Token, str_field, unauthorized};
use crate::rng;
use crate::sandbox::reply::{self, bearer, json as answer, parse_json};

fn oauth_error(code: &str, description: &str) -> Response {
    answer(
        StatusCode::BAD_REQUEST,
        &json!({"error": code, "error_description": description}),
    )
}

/// Scope strings look like `certificate:manage,revoke;configuration`.
fn scope_allows(allowed: &str, requested: &str) -> bool {
    let parse = |s: &str| -> HashMap<String, Vec<String>> {
        s.split(';')
            .filter(|p| !p.trim().is_empty())
            .map(|p| {
                let (name, restrictions) = p.split_once(':').unwrap_or((p, ""));
                (
                    name.trim().to_ascii_lowercase(),
                    restrictions
                        .split(',')
                        .map(|r| r.trim().to_ascii_lowercase())
                        .filter(|r| !r.is_empty())
                        .collect(),
                )
            })
            .collect()
    };
    let allowed = parse(allowed);
    parse(requested).iter().all(|(name, wanted)| {
        allowed
            .get(name)
            .is_some_and(|have| wanted.iter().all(|w| have.contains(w)))
    })
}

pub(super) fn has_scope(scope: &str, name: &str, restriction: &str) -> bool {
    scope_allows(scope, &format!("{name}:{restriction}"))
}

impl Sim {
    fn issue(
        &self,
        state: &mut Objects,
        client_id: &str,
        username: &str,
        scope: &str,
        grant_issued: Option<jiff::Timestamp>,
    ) -> Value {
        state.issued += 1;
        let n = state.issued.to_le_bytes();
        let b64 = base64::engine::general_purpose::STANDARD;
        let access = b64.encode(rng::bytes::<16>(self.seed, &[b"venafi-access", &n]));
        let refresh = b64.encode(rng::bytes::<16>(self.seed, &[b"venafi-refresh", &n]));
        let now = reply::now();
        let expires = now + self.token_ttl;
        let grant_issued = grant_issued.unwrap_or(now);
        let refresh_until = grant_issued + self.refresh_ttl;
        state.tokens.insert(
            access.clone(),
            Token {
                client_id: client_id.to_owned(),
                username: username.to_owned(),
                scope: scope.to_owned(),
                issued: now,
                expires,
                grant_issued,
            },
        );
        state.grants.insert(
            refresh.clone(),
            Grant {
                client_id: client_id.to_owned(),
                username: username.to_owned(),
                scope: scope.to_owned(),
                issued: grant_issued,
                refresh_until,
            },
        );
        json!({
            "access_token": access,
            "expires": expires.as_second(),
            "expires_in": self.token_ttl.as_secs(),
            "identity": format!("local:{{{}}}", rng::uuid(self.seed, &[b"venafi-identity", username.as_bytes()])),
            "refresh_token": refresh,
            "refresh_until": refresh_until.as_second(),
            "scope": scope,
            "token_type": "Bearer",
        })
    }
}

pub(super) async fn oauth(State(sim): State<Arc<Sim>>, body: Bytes) -> Response {
    let Some(body) = parse_json(&body) else {
        return oauth_error("invalid_request", "The request body is not valid JSON.");
    };
    let (Some(client_id), Some(username), Some(password)) = (
        str_field(&body, "client_id"),
        str_field(&body, "username"),
        str_field(&body, "password"),
    ) else {
        return oauth_error(
            "invalid_request",
            "client_id, username and password are required.",
        );
    };
    let scope = str_field(&body, "scope").unwrap_or("certificate");
    // client_id is case-sensitive here.
    let Some(client) = sim.clients.iter().find(|c| c.client_id == client_id) else {
        return oauth_error("invalid_client", "Unknown client_id.");
    };
    if !sim
        .users
        .iter()
        .any(|u| u.username.eq_ignore_ascii_case(username) && u.password == password)
    {
        return oauth_error("invalid_grant", "Username/password combination not valid");
    }
    if !scope_allows(&client.scope, scope) {
        return oauth_error(
            "invalid_scope",
            "The requested scope is not allowed for this API integration.",
        );
    }
    let mut state = sim.lock();
    let mut token = sim.issue(&mut state, client_id, username, scope, None);
    if let Some(s) = body.get("state") {
        token["state"] = s.clone();
    }
    answer(StatusCode::OK, &token)
}

pub(super) async fn refresh(State(sim): State<Arc<Sim>>, body: Bytes) -> Response {
    let Some(body) = parse_json(&body) else {
        return oauth_error("invalid_request", "The request body is not valid JSON.");
    };
    let (Some(client_id), Some(refresh_token)) = (
        str_field(&body, "client_id"),
        str_field(&body, "refresh_token"),
    ) else {
        return oauth_error(
            "invalid_request",
            "client_id and refresh_token are required.",
        );
    };
    let mut state = sim.lock();
    // Single use: the grant is gone whatever happens next.
    let Some(grant) = state.grants.remove(refresh_token) else {
        state.refresh_refused += 1;
        return oauth_error(
            "invalid_grant",
            "Grant has been revoked, has expired, or the refresh token is invalid",
        );
    };
    if grant.refresh_until <= reply::now() {
        state.refresh_refused += 1;
        return oauth_error(
            "invalid_grant",
            "Grant has been revoked, has expired, or the refresh token is invalid",
        );
    }
    if grant.client_id != client_id {
        state.grants.insert(refresh_token.to_owned(), grant);
        return oauth_error(
            "invalid_request",
            "The client_id value being requested with the refresh token does not match the client_id of the access token making the call",
        );
    }
    let token = sim.issue(
        &mut state,
        &grant.client_id,
        &grant.username,
        &grant.scope,
        Some(grant.issued),
    );
    answer(StatusCode::OK, &token)
}

pub(super) async fn verify(State(sim): State<Arc<Sim>>, headers: HeaderMap) -> Response {
    let Some(token) = bearer(&headers) else {
        return unauthorized();
    };
    let state = sim.lock();
    let Some(t) = state.tokens.get(token).filter(|t| t.expires > reply::now()) else {
        return unauthorized();
    };
    let valid_for = (t.expires - reply::now()).get_seconds().max(0);
    answer(
        StatusCode::OK,
        &json!({
            "access_issued_on_ISO8601": reply::iso(t.issued),
            "access_issued_on_unix_time": t.issued.as_second(),
            "application": t.client_id,
            "expires_ISO8601": reply::iso(t.expires),
            "expires_unix_time": t.expires.as_second(),
            "grant_issued_on_ISO8601": reply::iso(t.grant_issued),
            "grant_issued_on_unix_time": t.grant_issued.as_second(),
            "identity": format!("local:{{{}}}", rng::uuid(sim.seed, &[b"venafi-identity", t.username.as_bytes()])),
            "scope": t.scope,
            "valid_for": valid_for,
        }),
    )
}

pub(super) async fn revoke(State(sim): State<Arc<Sim>>, headers: HeaderMap) -> Response {
    let Some(token) = bearer(&headers) else {
        return unauthorized();
    };
    let mut state = sim.lock();
    match state.tokens.remove(token) {
        Some(t) => {
            // Revoking the access token revokes its grant too.
            state
                .grants
                .retain(|_, g| !(g.username == t.username && g.issued == t.grant_issued));
            reply::empty(StatusCode::OK)
        }
        None => unauthorized(),
    }
}

pub(super) async fn is_auth_server() -> Response {
    let mut response = Response::new(axum::body::Body::from("Venafi Authentication Server"));
    *response.status_mut() = StatusCode::ACCEPTED;
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scopes_compare_by_name_and_restriction() {
        let allowed = "certificate:manage,revoke;configuration";
        assert!(scope_allows(allowed, "certificate:manage"));
        assert!(scope_allows(allowed, "Certificate:Manage;configuration"));
        assert!(!scope_allows(allowed, "certificate:delete"));
        assert!(!scope_allows(allowed, "ssh:manage"));
        assert!(has_scope(
            "certificate:manage,revoke",
            "certificate",
            "manage"
        ));
        assert!(!has_scope("certificate", "certificate", "manage"));
    }
}
