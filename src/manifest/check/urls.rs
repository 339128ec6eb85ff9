//! Provider URLs that plan would refuse, refused at validate time with a location: a scheme
//! other than http/https, and plain `http://` to a host that is not loopback without
//! `tls.allow_http: true`.
//!
//! The rule mirrors `providers::http::base_url`, which applies it again when the client is
//! built; manifest cannot call it (it knows nothing of reqwest), so both must change together.

use url::Url;

use crate::manifest::diagnostic::{Diagnostic, Diagnostics};
use crate::manifest::load::Document;
use crate::manifest::model::{Manifest, Provider};
use crate::manifest::node::push_pointer;
use crate::manifest::template;

pub(super) fn urls(doc: &Document, m: &Manifest, out: &mut Diagnostics) {
    for (name, p) in &m.providers {
        let base = push_pointer("/providers", name);
        // Templated URLs are checked once rendered (`runbook::validate`).
        if let Some(url) = p.url.as_deref().filter(|u| !template::is_template(u)) {
            out.0
                .extend(url_problem(doc, &push_pointer(&base, "url"), url, p));
        }
        let iam = p
            .auth
            .as_ref()
            .and_then(|a| a.get("iam_url"))
            .and_then(serde_json::Value::as_str)
            .filter(|u| !template::is_template(u));
        if let Some(iam) = iam {
            let ptr = push_pointer(&push_pointer(&base, "auth"), "iam_url");
            out.0.extend(url_problem(doc, &ptr, iam, p));
        }
    }
}

/// Why plan would refuse `url` as a base URL of provider `p`, located at `pointer`.
#[must_use]
pub fn url_problem(doc: &Document, pointer: &str, url: &str, p: &Provider) -> Option<Diagnostic> {
    // A rendered URL may carry a credential from the environment: never quote it.
    let mut shown = url.to_owned();
    for (r, _) in crate::manifest::secrets::credential_shapes(url)
        .into_iter()
        .rev()
    {
        shown.replace_range(r, "*****");
    }
    let problem = refusal(&shown, p.tls.as_ref().is_some_and(|t| t.allow_http))?;
    let (message, label, help) = problem;
    Some(
        Diagnostic::error("provider-url", message)
            .at(&doc.file, doc.value_span(pointer), label)
            .pointer(pointer)
            .help(help),
    )
}

/// The message, label and help for a URL plan would refuse; `None` when it is acceptable.
pub(super) fn refusal(url: &str, allow_http: bool) -> Option<(String, &'static str, String)> {
    let parsed = match Url::parse(url) {
        Ok(u) => u,
        Err(e) => {
            return Some((
                format!("`{url}` is not a valid URL: {e}"),
                "not a URL",
                "write an absolute URL such as `https://api.example.com`".to_owned(),
            ));
        }
    };
    match parsed.scheme() {
        "https" => None,
        "http" if allow_http || is_loopback(&parsed) => None,
        "http" => Some((
            format!("`{url}` is plain http to a host that is not loopback"),
            "credentials would travel unencrypted",
            "use https, or set `tls: {allow_http: true}` on the provider if you really mean it"
                .to_owned(),
        )),
        other => Some((
            format!("the scheme `{other}` of `{url}` is not http or https"),
            "unsupported scheme",
            "providers speak HTTP: write `https://…`".to_owned(),
        )),
    }
}

fn is_loopback(url: &Url) -> bool {
    match url.host() {
        Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        None => false,
    }
}

#[cfg(test)]
mod tests {
    use super::refusal;

    #[test]
    fn the_plain_http_rule_matches_plan() {
        assert!(refusal("https://tpp.example.com", false).is_none());
        assert!(refusal("http://127.0.0.1:7400", false).is_none());
        assert!(refusal("http://localhost/x", false).is_none());
        assert!(refusal("http://[::1]:80", false).is_none());
        assert!(refusal("http://tpp.example.com", false).is_some());
        assert!(refusal("http://tpp.example.com", true).is_none());
        assert!(refusal("ftp://x", true).is_some());
        assert!(refusal("not a url", false).is_some());
    }
}
