//! Inline secrets: the diagnostic for a secret written into the runbook, and the name of the
//! environment variable it would naturally live in.

use crate::manifest::diagnostic::Diagnostic;
use crate::manifest::load::Document;

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
