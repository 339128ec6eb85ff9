//! VCF token pairs (providers.md §3.1): `POST /v1/tokens` with a password or an API key, HS256
//! JWTs that expire, reusable refresh ids, and revocation.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use base64::Engine;
use hmac::{KeyInit, Mac};
use serde_json::{Value, json};

use super::{Sim, unauthorized, vcf_error};
use crate::rng;
use crate::sandbox::reply::{self, bearer, json as answer, parse_json};

type HmacSha256 = hmac::Hmac<sha2::Sha256>;

fn b64url(bytes: &[u8]) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

impl Sim {
    fn jwt(&self, username: &str, n: u64) -> String {
        let now = reply::now().as_second();
        let header = b64url(br#"{"alg":"HS256","typ":"JWT"}"#);
        let claims = json!({
            "iss": "vcf-auth",
            "aud": "sddc-services",
            "sub": username,
            "user": username,
            "name": username,
            "scope": ["BACKUP_CONFIG_READ", "CREDENTIAL_READ", "CREDENTIAL_WRITE", "TASK_READ", "TASK_WRITE"],
            "iat": now,
            "exp": now + i64::try_from(self.token_ttl.as_secs()).unwrap_or(i64::MAX / 2),
            "jti": rng::uuid(self.seed, &[b"vcf-jti", &n.to_le_bytes()]),
        });
        let payload = b64url(claims.to_string().as_bytes());
        let signing_input = format!("{header}.{payload}");
        let mut mac = HmacSha256::new_from_slice(&self.secret).expect("any key length works");
        mac.update(signing_input.as_bytes());
        format!("{signing_input}.{}", b64url(&mac.finalize().into_bytes()))
    }

    /// Checks signature and expiry of the bearer JWT.
    pub(super) fn authorize(&self, headers: &HeaderMap) -> Result<(), Response> {
        let token = bearer(headers).ok_or_else(unauthorized)?;
        let mut parts = token.split('.');
        let (Some(header), Some(payload), Some(signature), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(unauthorized());
        };
        let engine = base64::engine::general_purpose::URL_SAFE_NO_PAD;
        let signature = engine.decode(signature).map_err(|_| unauthorized())?;
        let mut mac = HmacSha256::new_from_slice(&self.secret).expect("any key length works");
        mac.update(format!("{header}.{payload}").as_bytes());
        mac.verify_slice(&signature).map_err(|_| unauthorized())?;
        let claims: Value = engine
            .decode(payload)
            .ok()
            .and_then(|p| serde_json::from_slice(&p).ok())
            .ok_or_else(unauthorized)?;
        let exp = claims.get("exp").and_then(Value::as_i64).unwrap_or(0);
        if exp <= reply::now().as_second() {
            return Err(unauthorized());
        }
        Ok(())
    }
}

pub(super) async fn tokens(State(sim): State<Arc<Sim>>, body: Bytes) -> Response {
    let Some(body) = parse_json(&body) else {
        return vcf_error(
            StatusCode::BAD_REQUEST,
            "INVALID_INPUT",
            "The request body is not valid JSON.",
            None,
        );
    };
    let field = |name: &str| body.get(name).and_then(Value::as_str);
    let username = match (field("username"), field("password"), field("apiKey")) {
        (Some(u), Some(p), _)
            if sim
                .users
                .iter()
                .any(|x| x.username.eq_ignore_ascii_case(u) && x.password == p) =>
        {
            u.to_owned()
        }
        (_, _, Some(k)) if sim.api_keys.iter().any(|x| x == k) => "api-key-user".to_owned(),
        _ => {
            return vcf_error(
                StatusCode::BAD_REQUEST,
                "TOKEN_CREATION_FAILED",
                "Invalid username or password.",
                Some("Check the credentials and the user's role (ADMIN, OPERATOR or VIEWER)."),
            );
        }
    };
    let mut state = sim.lock();
    state.issued += 1;
    let n = state.issued;
    let refresh_id = rng::uuid(sim.seed, &[b"vcf-refresh", &n.to_le_bytes()]);
    state.refresh.insert(refresh_id.clone(), username.clone());
    let access = sim.jwt(&username, n);
    answer(
        sim.token_status,
        &json!({"accessToken": access, "refreshToken": {"id": refresh_id}}),
    )
}

/// The refresh id arrives bare (PowerVCF) or as a JSON string (vcf-sdk-go).
fn refresh_id(body: &[u8]) -> String {
    let text = String::from_utf8_lossy(body);
    let text = text.trim();
    serde_json::from_str::<String>(text).unwrap_or_else(|_| text.trim_matches('"').to_owned())
}

pub(super) async fn refresh(State(sim): State<Arc<Sim>>, body: Bytes) -> Response {
    let id = refresh_id(&body);
    let mut state = sim.lock();
    let Some(username) = state.refresh.get(id.as_str()).cloned() else {
        return vcf_error(
            StatusCode::NOT_FOUND,
            "REFRESH_TOKEN_NOT_FOUND",
            "The refresh token is unknown, expired or revoked.",
            Some("Create a new token pair with POST /v1/tokens."),
        );
    };
    state.issued += 1;
    let access = sim.jwt(&username, state.issued);
    answer(StatusCode::OK, &Value::String(access))
}

pub(super) async fn revoke(State(sim): State<Arc<Sim>>, body: Bytes) -> Response {
    let id = refresh_id(&body);
    if sim.lock().refresh.remove(id.as_str()).is_some() {
        reply::empty(StatusCode::NO_CONTENT)
    } else {
        vcf_error(
            StatusCode::NOT_FOUND,
            "REFRESH_TOKEN_NOT_FOUND",
            "The refresh token is unknown.",
            None,
        )
    }
}
#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refresh_ids_arrive_bare_or_quoted() {
        assert_eq!(refresh_id(b"3c6b3c30-3bf2"), "3c6b3c30-3bf2");
        assert_eq!(refresh_id(b"\"3c6b3c30-3bf2\"\n"), "3c6b3c30-3bf2");
    }
}
