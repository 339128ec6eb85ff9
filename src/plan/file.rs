//! Saved plans: the plan as JSON plus the digests that tell whether it went stale. A saved plan
//! holds no secret values (requests show references), so it is safe to commit.

use std::path::Path;

use sha2::{Digest, Sha256};

use super::{FileDigest, Plan};

/// The SHA-256 of a file, hex.
///
/// # Errors
/// When the file cannot be read.
pub fn digest(path: &Path) -> std::io::Result<String> {
    let bytes = std::fs::read(path)?;
    Ok(Sha256::digest(&bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect())
}

/// A named file and its digest.
///
/// # Errors
/// When the file cannot be read.
pub fn file_digest(name: Option<&str>, path: &Path) -> std::io::Result<FileDigest> {
    Ok(FileDigest {
        name: name.map(str::to_owned),
        path: path.display().to_string(),
        sha256: digest(path)?,
    })
}

/// Writes the plan as pretty JSON (atomically: a temporary file renamed over the target).
///
/// # Errors
/// When the file cannot be written.
pub fn save(plan: &Plan, path: &Path) -> std::io::Result<()> {
    let mut text = serde_json::to_string_pretty(plan).map_err(std::io::Error::other)?;
    text.push('\n');
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, text)?;
    std::fs::rename(&tmp, path)
}

/// Reads a saved plan.
///
/// # Errors
/// When the file cannot be read or is not a plan of this format.
pub fn load(path: &Path) -> anyhow::Result<Plan> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| anyhow::anyhow!("cannot read the plan {}: {e}", path.display()))?;
    let plan: Plan = serde_json::from_str(&text)
        .map_err(|e| anyhow::anyhow!("{} is not a redrive plan: {e}", path.display()))?;
    if plan.format_version != super::FORMAT_VERSION {
        anyhow::bail!(
            "{} has plan format {}, this redrive reads format {}",
            path.display(),
            plan.format_version,
            super::FORMAT_VERSION
        );
    }
    Ok(plan)
}

/// What differs from when the plan was made, one line per file (empty: the plan is current).
/// Paths are relative to where `plan` ran, so a missing file usually means another folder.
#[must_use]
pub fn stale_files(plan: &Plan) -> Vec<String> {
    std::iter::once(&plan.runbook)
        .chain(&plan.inputs)
        .filter_map(|f| match digest(Path::new(&f.path)) {
            Ok(d) if d == f.sha256 => None,
            Ok(_) => Some(format!("{} changed", f.path)),
            Err(e) => Some(format!(
                "{} cannot be read ({e}); run apply from the folder where the plan was made",
                f.path
            )),
        })
        .collect()
}
