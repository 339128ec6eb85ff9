//! The files a plan is rendered from, pinned by their digests: a saved plan is refused when
//! any of them changed.

use std::path::Path;

use super::prepare::PrepareError;
use super::{FileDigest, file};
use crate::manifest::runbook::Runbook;

pub(super) fn digest(
    name: Option<&str>,
    path: &Path,
    what: &str,
) -> Result<FileDigest, PrepareError> {
    file::file_digest(name, path).map_err(|error| PrepareError::Io {
        what: what.to_owned(),
        path: path.to_owned(),
        error,
    })
}

/// Every file the plan was rendered from besides the runbook: inputs, CSR files and CA bundles.
/// A saved plan is refused when any of them changed.
pub(super) fn pinned_files(
    rb: &Runbook,
    files: &[String],
) -> Result<Vec<FileDigest>, PrepareError> {
    let mut out = Vec::new();
    for (name, spec) in &rb.manifest.inputs {
        let path = rb.dir().join(&spec.file);
        out.push(digest(Some(name), &path, &format!("input `{name}`"))?);
    }
    for (name, p) in &rb.manifest.providers {
        if let Some(ca) = p.tls.as_ref().and_then(|t| t.ca_file.as_ref()) {
            let path = rb.dir().join(ca);
            let label = format!("provider `{name}` CA file");
            out.push(digest(Some(&label), &path, &label)?);
        }
    }
    for file in files {
        let path = rb.dir().join(file);
        if out.iter().any(|f| Path::new(&f.path) == path) {
            continue;
        }
        out.push(digest(Some("csr"), &path, &format!("the CSR file {file}"))?);
    }
    Ok(out)
}
