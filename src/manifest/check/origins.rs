//! `http` actions whose `with.url` is absolute must stay at their provider's origin (scheme,
//! host and port): the provider's credentials go with every request it sends, so a URL
//! elsewhere would hand them to another host, or send them over plain http.
//!
//! The client refuses such a request again when it is sent (`providers::generic`), for URLs
//! that only a template produces; here a literal one is refused before anything runs.

use url::Url;

use super::urls::refusal;
use crate::manifest::diagnostic::{Diagnostic, Diagnostics};
use crate::manifest::load::Document;
use crate::manifest::model::{ActionKind, Manifest};
use crate::manifest::template;

pub(super) fn origins(doc: &Document, m: &Manifest, out: &mut Diagnostics) {
    for (i, job) in m.jobs.iter().enumerate() {
        if job.action != ActionKind::Http {
            continue;
        }
        let Some(p) = m.providers.get(&job.provider) else {
            continue;
        };
        let Some(text) = job
            .with
            .get("url")
            .and_then(serde_json::Value::as_str)
            .filter(|u| !template::is_template(u))
        else {
            continue;
        };
        // A relative URL is joined to the provider's and cannot leave it.
        let Ok(url) = Url::parse(text) else {
            continue;
        };
        let pointer = format!("/jobs/{i}/with/url");
        let shown = url.origin().ascii_serialization();
        let own = p
            .url
            .as_deref()
            .filter(|u| !template::is_template(u))
            .and_then(|u| Url::parse(u).ok());
        let problem = match own {
            Some(own) if own.origin() != url.origin() => Some((
                format!(
                    "`url` of job `{}` goes to {shown}, not to the origin of provider `{}` ({})",
                    job.id,
                    job.provider,
                    own.origin().ascii_serialization()
                ),
                "the provider's credentials would go to another origin".to_owned(),
                format!(
                    "write a path relative to the provider's `url` (e.g. `{}`), or define another `http` provider for {shown} and use it in this job",
                    url.path()
                ),
            )),
            Some(_) => None,
            // The provider's URL is known only once rendered: hold this one to the same rule
            // as a provider URL, and the client checks the origin when it sends.
            None => refusal(&shown, p.tls.as_ref().is_some_and(|t| t.allow_http))
                .map(|(message, label, help)| (message, label.to_owned(), help)),
        };
        if let Some((message, label, help)) = problem {
            out.push(
                Diagnostic::error("foreign-origin", message)
                    .at(&doc.file, doc.value_span(&pointer), label)
                    .pointer(pointer)
                    .help(help),
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use crate::manifest::runbook;

    fn problems(url: &str, job_url: &str) -> Vec<String> {
        let text = format!(
            "version: 1\nname: o\nproviders:\n  api:\n    type: http\n    url: {url}\n    auth: {{bearer: {{env: API_TOKEN}}}}\njobs:\n  - id: j\n    provider: api\n    action: http\n    with: {{method: GET, url: '{job_url}'}}\n"
        );
        match runbook::load_text(Path::new("o.yaml"), text) {
            Ok(_) => Vec::new(),
            Err(d) => {
                d.0.iter()
                    .map(|d| format!("{} {}", d.code, d.message))
                    .collect()
            }
        }
    }

    #[test]
    fn absolute_urls_stay_at_the_provider_origin() {
        let own = "https://api.example.com/v1";
        assert!(problems(own, "/items").is_empty());
        assert!(problems(own, "https://api.example.com:443/v2/items").is_empty());
        for elsewhere in [
            "https://evil.example.com/steal",
            "http://api.example.com/v1/items",
            "https://api.example.com:8443/v1/items",
            "HTTPS://evil.example.com/x",
            "http:evil.example.com",
        ] {
            let p = problems(own, elsewhere);
            assert!(
                p.iter().any(|p| p.starts_with("foreign-origin")),
                "{elsewhere}: {p:?}"
            );
        }
        let loopback = "http://127.0.0.1:7400";
        let p = problems(loopback, "http://[::ffff:127.0.0.1]:7400/steal");
        assert!(p.iter().any(|p| p.starts_with("foreign-origin")), "{p:?}");
        // A templated provider URL: the plain-http rule still holds.
        let p = problems("\"{{ vars.base }}\"", "http://api.example.com/x");
        assert!(p.iter().any(|p| p.contains("plain http")), "{p:?}");
    }
}
