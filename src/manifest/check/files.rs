//! Files the providers name (secret files in `auth`, `tls.ca_file`) are confined to the
//! runbook's folder and regular; a CA bundle must also exist, since plan cannot start without
//! it. Secret files may be provisioned just before a run, so only their path is checked when
//! they are missing.

use serde_json::Value;

use crate::manifest::diagnostic::{Diagnostic, Diagnostics};
use crate::manifest::load::Document;
use crate::manifest::model::Manifest;
use crate::manifest::node::push_pointer;
use crate::manifest::paths::{self, Kind};

pub(super) fn files(doc: &Document, m: &Manifest, out: &mut Diagnostics) {
    for (name, p) in &m.providers {
        let base = push_pointer("/providers", name);
        if let Some(auth) = &p.auth {
            secret_files(doc, auth, &push_pointer(&base, "auth"), out);
        }
        if let Some(ca) = p.tls.as_ref().and_then(|t| t.ca_file.as_deref()) {
            let ptr = push_pointer(&push_pointer(&base, "tls"), "ca_file");
            out.0.extend(file_problem(doc, &ptr, "CA bundle", ca, true));
        }
    }
}

/// Every `{file: …}` reference below `v`.
fn secret_files(doc: &Document, v: &Value, ptr: &str, out: &mut Diagnostics) {
    match v {
        Value::Object(map) => {
            if let (1, Some(Value::String(path))) = (map.len(), map.get("file")) {
                let at = push_pointer(ptr, "file");
                out.0
                    .extend(file_problem(doc, &at, "secret file", path, false));
                return;
            }
            for (k, child) in map {
                secret_files(doc, child, &push_pointer(ptr, k), out);
            }
        }
        Value::Array(items) => {
            for (i, child) in items.iter().enumerate() {
                secret_files(doc, child, &push_pointer(ptr, &i.to_string()), out);
            }
        }
        _ => {}
    }
}

/// The problem with a file the runbook names, if any: outside the folder, not a regular
/// file, or (when `must_exist`) missing.
#[must_use]
pub fn file_problem(
    doc: &Document,
    pointer: &str,
    what: &str,
    written: &str,
    must_exist: bool,
) -> Option<Diagnostic> {
    let dir = doc.file.dir();
    let at = |d: Diagnostic, label: &str| {
        d.at(&doc.file, doc.value_span(pointer), label)
            .pointer(pointer)
    };
    let path = match paths::confine(dir, written) {
        Ok(path) => path,
        Err(m) => {
            return Some(
                at(Diagnostic::error("file-path", format!("{what}: {m}")), "refused path")
                    .help("keep files the runbook reads in its folder or below it (e.g. `secrets/…`), named relative to the runbook"),
            );
        }
    };
    match paths::kind(&path) {
        Kind::File => None,
        Kind::Missing if !must_exist => None,
        Kind::Missing => Some(
            at(
                Diagnostic::error("file-missing", format!("{what} `{written}` does not exist")),
                "file not found",
            )
            .help(format!(
                "paths are relative to the runbook's folder (`{}`)",
                dir.display()
            )),
        ),
        Kind::Special(kind) => Some(
            at(
                Diagnostic::error(
                    "file-type",
                    format!("{what} `{written}` is {kind}, not a regular file"),
                ),
                "not a regular file",
            )
            .help("name a regular file; FIFOs, devices and directories are never read"),
        ),
    }
}
