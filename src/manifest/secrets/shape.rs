//! What a secret looks like: secret-like key and header names, and values with the shape of
//! a credential (a password in a URL, a token query parameter, `Bearer …`, a JWT, a token with
//! a vendor prefix). Hand-written scanners: the crate has no regex dependency, and these run
//! over every line of every runbook, so they stay linear.

use std::ops::Range;

/// Words that make a key name a secret slot, matched inside the normalised key.
const SECRET_WORDS: [&str; 11] = [
    "password",
    "passwd",
    "passphrase",
    "secret",
    "token",
    "api_key",
    "apikey",
    "access_key",
    "private_key",
    "authorization",
    "bearer",
];

/// Header names that carry credentials beyond the words above.
const SECRET_HEADERS: [&str; 4] = ["cookie", "x_dc_devkey", "x_api_key", "api_key"];

/// Query parameters whose value is a credential.
const SECRET_QUERY: [&str; 6] = ["key", "sig", "signature", "auth", "pwd", "pass"];

/// Vendor prefixes of tokens (GitHub, GitLab, Slack, Stripe), each followed by the token body.
const TOKEN_PREFIXES: [&str; 12] = [
    "ghp_",
    "gho_",
    "ghu_",
    "ghs_",
    "ghr_",
    "github_pat_",
    "glpat-",
    "xoxb-",
    "xoxp-",
    "xoxa-",
    "sk_live_",
    "rk_live_",
];

fn normalise(name: &str) -> String {
    name.trim_matches(|c| c == '"' || c == '\'')
        .chars()
        .map(|c| match c {
            '-' | '.' | ' ' => '_',
            c => c.to_ascii_lowercase(),
        })
        .collect()
}

/// Whether a mapping key names a secret (`password`, `api_key`, `client_secret`, …).
#[must_use]
pub fn is_secret_key(key: &str) -> bool {
    let key = normalise(key);
    SECRET_WORDS.iter().any(|w| key.contains(w))
}

/// Whether an HTTP header carries a credential (`Authorization`, `X-Api-Key`, `Cookie`, …).
/// `Idempotency-Key` is the one `…-Key` header that is not secret.
#[must_use]
pub fn is_secret_header(name: &str) -> bool {
    let name = normalise(name);
    if name.contains("idempotency") {
        return false;
    }
    is_secret_key(&name) || SECRET_HEADERS.contains(&name.as_str()) || name.ends_with("_key")
}

fn is_secret_query(name: &str) -> bool {
    let name = normalise(name);
    is_secret_key(&name) || SECRET_QUERY.contains(&name.as_str())
}

fn token_char(c: u8) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, b'.' | b'_' | b'~' | b'+' | b'/' | b'=' | b'-')
}

/// The end of a run of token characters starting at `start`.
fn token_end(b: &[u8], start: usize) -> usize {
    b[start..]
        .iter()
        .position(|&c| !token_char(c))
        .map_or(b.len(), |n| start + n)
}

/// Where a value inside a URL or a line stops.
fn url_stop(c: u8) -> bool {
    c.is_ascii_whitespace() || matches!(c, b'"' | b'\'' | b',' | b'}' | b']' | b'#' | b'&' | b'`')
}

/// Credential-shaped parts of `text`, each with what it is. Templates (`{{ … }}`) are never a
/// credential: they name where a value comes from.
#[must_use]
pub fn credential_shapes(text: &str) -> Vec<(Range<usize>, &'static str)> {
    let mut out = Vec::new();
    url_passwords(text, &mut out);
    query_secrets(text, &mut out);
    auth_schemes(text, &mut out);
    tokens(text, &mut out);
    out.retain(|(r, _)| !text[r.clone()].contains("{{") && !text[r.clone()].contains("{%"));
    out.sort_by_key(|(r, _)| (r.start, r.end));
    out.dedup_by(|a, b| a.0.start < b.0.end);
    out
}

/// `scheme://user:PASSWORD@host`.
fn url_passwords(text: &str, out: &mut Vec<(Range<usize>, &'static str)>) {
    let b = text.as_bytes();
    for (i, _) in text.match_indices("://") {
        let start = i + 3;
        let end = b[start..]
            .iter()
            .position(|&c| c == b'/' || c == b'?' || url_stop(c))
            .map_or(b.len(), |n| start + n);
        let authority = &text[start..end];
        if let Some(at) = authority.rfind('@')
            && let Some(colon) = authority[..at].find(':')
            && colon + 1 < at
        {
            out.push((start + colon + 1..start + at, "a password in a URL"));
        }
    }
}

/// `?token=VALUE`, `&api_key=VALUE`, and other credential query parameters.
fn query_secrets(text: &str, out: &mut Vec<(Range<usize>, &'static str)>) {
    let b = text.as_bytes();
    for (i, c) in b.iter().enumerate() {
        if *c != b'?' && *c != b'&' {
            continue;
        }
        let name_start = i + 1;
        let Some(eq) = b[name_start..]
            .iter()
            .position(|&c| c == b'=' || url_stop(c) || c == b'?')
            .map(|n| name_start + n)
            .filter(|&e| b.get(e) == Some(&b'='))
        else {
            continue;
        };
        let value_start = eq + 1;
        let value_end = b[value_start..]
            .iter()
            .position(|&c| url_stop(c))
            .map_or(b.len(), |n| value_start + n);
        if value_end > value_start && is_secret_query(&text[name_start..eq]) {
            out.push((value_start..value_end, "a credential in a URL's query"));
        }
    }
}

/// `Bearer TOKEN`, `Basic BASE64`, `Token TOKEN`: the token must look like one (12 characters
/// or more, with a digit or punctuation), so prose such as "Basic authentication" is not one.
fn auth_schemes(text: &str, out: &mut Vec<(Range<usize>, &'static str)>) {
    let b = text.as_bytes();
    let lower = text.to_ascii_lowercase();
    for scheme in ["bearer ", "basic ", "token "] {
        for (i, _) in lower.match_indices(scheme) {
            if i > 0 && b[i - 1].is_ascii_alphanumeric() {
                continue;
            }
            let start = i + scheme.len();
            let end = token_end(b, start);
            if looks_like_token(&text[start..end]) {
                out.push((start..end, "a credential after an HTTP auth scheme"));
            }
        }
    }
}

fn looks_like_token(t: &str) -> bool {
    t.len() >= 12
        && t.bytes()
            .any(|c| c.is_ascii_digit() || matches!(c, b'.' | b'_' | b'+' | b'/' | b'=' | b'-'))
}

/// JSON Web Tokens and tokens with a vendor prefix.
fn tokens(text: &str, out: &mut Vec<(Range<usize>, &'static str)>) {
    let b = text.as_bytes();
    let boundary = |i: usize| i == 0 || !token_char(b[i - 1]);
    for (i, _) in text.match_indices("eyJ") {
        if !boundary(i) {
            continue;
        }
        let end = token_end(b, i);
        let parts: Vec<&str> = text[i..end].split('.').collect();
        if parts.len() == 3 && parts[0].len() >= 8 && parts[1].len() >= 8 {
            out.push((i..end, "a JSON Web Token"));
        }
    }
    for prefix in TOKEN_PREFIXES {
        for (i, _) in text.match_indices(prefix) {
            let end = token_end(b, i);
            if boundary(i) && end - i >= prefix.len() + 16 {
                out.push((i..end, "an access token"));
            }
        }
    }
    for (i, _) in text.match_indices("AKIA") {
        let end = token_end(b, i);
        if boundary(i) && end - i == 20 {
            out.push((i..end, "an AWS access key id"));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn found(text: &str) -> Vec<&str> {
        credential_shapes(text)
            .into_iter()
            .map(|(r, _)| &text[r])
            .collect()
    }

    #[test]
    fn keys_and_headers() {
        for k in [
            "password",
            "API_KEY",
            "client-secret",
            "refresh_token",
            "Authorization",
        ] {
            assert!(is_secret_key(k), "{k}");
        }
        for k in ["username", "certificate_dn", "agent_license", "url"] {
            assert!(!is_secret_key(k), "{k}");
        }
        for h in [
            "X-Api-Key",
            "Authorization",
            "X-DC-DEVKEY",
            "Cookie",
            "X-Auth-Token",
        ] {
            assert!(is_secret_header(h), "{h}");
        }
        for h in ["Content-Type", "Idempotency-Key", "Accept"] {
            assert!(!is_secret_header(h), "{h}");
        }
    }

    #[test]
    fn shapes() {
        assert_eq!(found("https://admin:s3cr3t@vcf.example.com/x"), ["s3cr3t"]);
        assert_eq!(found("https://admin@vcf.example.com/x"), Vec::<&str>::new());
        assert_eq!(found("https://h/x?a=1&token=abc123&b=2"), ["abc123"]);
        assert_eq!(found("https://h/x?api_key=k-1"), ["k-1"]);
        assert_eq!(found("Bearer abc.def-123456"), ["abc.def-123456"]);
        assert_eq!(
            found("Basic dXNlcjpwYXNzd29yZA=="),
            ["dXNlcjpwYXNzd29yZA=="]
        );
        assert!(found("Basic authentication is off").is_empty());
        assert_eq!(
            found("t: eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJyIn0.c2ln"),
            ["eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJyIn0.c2ln"]
        );
        assert_eq!(
            found("ghp_0123456789abcdefABCDEF"),
            ["ghp_0123456789abcdefABCDEF"]
        );
        assert!(found("https://u:{{ env.P }}@h").is_empty());
        assert!(found("\\VED\\Policy\\Certificates\\web01").is_empty());
        assert!(found("5f0c6a2e-1b7d-4c1e-9a53-2f8e7d6c5b4a").is_empty());
    }
}
