//! Inline secrets: recognising them by key and by shape, masking them in every quoted line,
//! and the diagnostic for one written into the runbook.
//!
//! Recognition works on raw text as well as on the loaded document, because a runbook that
//! does not parse (a syntax error, a duplicate key) is still quoted in its diagnostic.

use std::borrow::Cow;

use crate::manifest::diagnostic::Diagnostic;
use crate::manifest::load::Document;
use crate::manifest::node::push_pointer;
use crate::manifest::source::{SourceFile, Span};

pub(crate) mod scan;
mod shape;

pub use self::scan::secret_spans;
pub use self::shape::{credential_shapes, is_secret_header, is_secret_key};

/// The environment variable a secret at `pointer` would naturally live in.
fn suggested_env(pointer: &str) -> String {
    let parts: Vec<&str> = pointer
        .split('/')
        .filter(|p| !p.is_empty() && p.parse::<usize>().is_err())
        .collect();
    let pick: Vec<&str> = match parts.as_slice() {
        ["providers", name, .., last] => vec![name, last],
        [.., last] => vec![last],
        [] => vec!["SECRET"],
    };
    pick.iter()
        .map(|p| {
            p.chars()
                .map(|c| {
                    if c.is_ascii_alphanumeric() {
                        c.to_ascii_uppercase()
                    } else {
                        '_'
                    }
                })
                .collect::<String>()
        })
        .collect::<Vec<_>>()
        .join("_")
}

pub(crate) fn inline_secret(doc: &Document, pointer: &str) -> Diagnostic {
    let span = doc.value_span(pointer);
    let key = pointer.rsplit('/').next().unwrap_or("secret");
    let env = suggested_env(pointer);
    let mut d = Diagnostic::error("inline-secret", format!("inline secret in `{key}`: secrets must be references"))
        .at(&doc.file, span, "secret written into the runbook")
        .pointer(pointer)
        .help(format!("write `{key}: {{env: {env}}}` (an environment variable) or `{key}: {{file: secrets/{}}}`, and rotate this secret if the file was ever committed", key.replace('_', "-")));
    d.mask.push(span);
    d
}

/// Replaces every secret value of `file` (and the `extra` spans) found in `text` by `*****`:
/// messages may quote a value (a parser message, an unknown enum value), and a quoted secret
/// is as leaked as a shown one.
#[must_use]
pub fn scrub<'a>(file: &SourceFile, extra: &[Span], text: &'a str) -> Cow<'a, str> {
    let mut out = Cow::Borrowed(text);
    for span in file.secret_spans().iter().chain(extra) {
        let secret = &file.text[file.clamp(span.start)..file.clamp(span.end)];
        // A very short value would scrub ordinary words; it is masked in the snippet anyway.
        let secret = secret.trim_matches(|c: char| c == '"' || c == '\'' || c.is_whitespace());
        if secret.len() >= 4 && out.contains(secret) {
            out = Cow::Owned(out.replace(secret, "*****"));
        }
    }
    out
}

/// Where in the runbook a string is, which decides the rules it is held to.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Place {
    /// `vars`: printed in plans and reports, so a secret-like key must not hold a literal.
    Vars,
    /// A provider's or an `http` job's `headers`.
    Headers {
        provider: bool,
    },
    /// An `http` job's `body`, sent as JSON.
    Body,
    Elsewhere,
}

fn place(pointer: &[&str]) -> Place {
    match pointer {
        ["vars", _, ..] => Place::Vars,
        ["providers", _, "headers", _] => Place::Headers { provider: true },
        ["jobs", _, "with", "headers", _] => Place::Headers { provider: false },
        ["jobs", _, "with", "body", _, ..] => Place::Body,
        _ => Place::Elsewhere,
    }
}

/// Every literal credential in the document, found by key and by shape. `known` are spans
/// the schema check already reported as inline secrets (a `SecretRef` slot holding a string).
#[must_use]
pub fn find(doc: &Document, known: &[Span]) -> Vec<Diagnostic> {
    let mut out = Vec::new();
    walk(doc, &doc.value, &mut Vec::new(), known, &mut out);
    out
}

fn walk(
    doc: &Document,
    v: &serde_json::Value,
    path: &mut Vec<String>,
    known: &[Span],
    out: &mut Vec<Diagnostic>,
) {
    use serde_json::Value;
    match v {
        Value::Object(map) => {
            for (k, child) in map {
                path.push(k.clone());
                walk(doc, child, path, known, out);
                path.pop();
            }
        }
        Value::Array(items) => {
            for (i, child) in items.iter().enumerate() {
                path.push(i.to_string());
                walk(doc, child, path, known, out);
                path.pop();
            }
        }
        Value::String(s) => string(doc, s, path, known, out),
        _ => {}
    }
}

/// Checks one string; `path` holds the keys and indexes that lead to it.
fn string(doc: &Document, s: &str, path: &[String], known: &[Span], out: &mut Vec<Diagnostic>) {
    if s.is_empty() {
        return;
    }
    let full: Vec<&str> = path.iter().map(String::as_str).collect();
    let pointer = full.iter().fold(String::new(), |p, t| push_pointer(&p, t));
    let span = doc.value_span(&pointer);
    if known.contains(&span) {
        return;
    }
    let key = full.last().copied().unwrap_or("");
    let templated = s.contains("{{") || s.contains("{%");
    let by_key = match place(&full) {
        Place::Headers { .. } if !templated && is_secret_header(key) => {
            Some(format!("the `{key}` header holds a literal credential"))
        }
        Place::Vars | Place::Body if !templated && is_secret_key(key) => {
            Some(format!("`{key}` holds a literal secret"))
        }
        _ => None,
    };
    let (what, mask) = match by_key {
        Some(what) => (what, span),
        None => {
            let Some((range, shape)) = credential_shapes(s).into_iter().next() else {
                return;
            };
            (
                format!("`{key}` holds {shape}"),
                part_of(doc, span, &s[range]),
            )
        }
    };
    let mut d = shaped(doc, &pointer, span, &full, &what);
    d.mask.push(mask);
    out.push(d);
}

/// The span of `part` inside the value at `span`, so only the credential is masked; the whole
/// value when the source text differs from the value (escapes, block scalars).
fn part_of(doc: &Document, span: Span, part: &str) -> Span {
    let source = &doc.file.text[doc.file.clamp(span.start)..doc.file.clamp(span.end)];
    source.find(part).map_or(span, |i| {
        Span::new(span.start + i, span.start + i + part.len())
    })
}

fn shaped(doc: &Document, pointer: &str, span: Span, full: &[&str], what: &str) -> Diagnostic {
    let key = full.last().copied().unwrap_or("secret");
    let env = suggested_env(pointer);
    let help = match place(full) {
        Place::Headers { provider: true } => format!(
            "provider headers are plain text; move the credential to the provider's `auth` (`auth: {{bearer: {{env: {env}}}}}` or `auth: {{header: {{name: {key}, value: {{env: {env}}}}}}}`), and rotate it if the file was ever committed"
        ),
        Place::Headers { provider: false } => format!(
            "write the header as a reference, `{key}: {{env: {env}}}` or `{key}: {{file: secrets/{}}}`, or use the provider's `auth`; rotate the credential if the file was ever committed",
            key.to_ascii_lowercase()
        ),
        _ if what.contains("URL") => "take the credential out of the URL and give it to the provider's `auth` as `{env: NAME}` or `{file: path}`; rotate it if the file was ever committed".to_owned(),
        _ => format!(
            "runbooks, plans and reports show this value; read the secret where it is used from `{{env: {env}}}` or `{{file: path}}` (or the provider's `auth`), and rotate it if the file was ever committed"
        ),
    };
    Diagnostic::error("inline-secret", format!("inline secret: {what}"))
        .at(&doc.file, span, "secret written into the runbook")
        .pointer(pointer)
        .help(help)
}
