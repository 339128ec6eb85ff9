//! The world a sandbox keeps between runs: every provider's objects, issued tokens and request
//! counters, saved to one file so that a rehearsal remembers what the last run did to it.
//!
//! The file is JSON with a header naming the scenario it grew from (a digest), so a changed
//! scenario starts from the scenario again instead of mixing two worlds. Time-driven progress is
//! stored as wall-clock timestamps, so work that was running finishes on schedule after a
//! restore. Rate-window state is left out on purpose: a restarted process starts new windows.

use std::io::Write as _;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::Sims;
use super::faults::Draws;
use super::scenario::Scenario;
use super::stats::Saved as SavedStats;
use super::{digicert, ncloud, otc_waf, vcf, venafi};

const FORMAT: &str = "redrive-sandbox-world";
const VERSION: u32 = 1;

/// Why a world file cannot be used or kept.
#[derive(Debug, thiserror::Error)]
pub enum WorldError {
    #[error("cannot read the sandbox world {}: {source}", path.display())]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    /// The file is there but is not a world this redrive can restore (torn, garbage, or another
    /// version). The detail names a position, never the content: the file holds tokens.
    #[error("the sandbox world {} cannot be restored: {detail}", path.display())]
    Damaged { path: PathBuf, detail: String },
    #[error("cannot save the sandbox world {}: {source}", path.display())]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
}

impl WorldError {
    /// The file the error is about.
    #[must_use]
    pub fn path(&self) -> &Path {
        match self {
            Self::Read { path, .. } | Self::Damaged { path, .. } | Self::Write { path, .. } => path,
        }
    }
}

/// Where the world of a started sandbox came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WorldOrigin {
    /// No world file was asked for: seeded from the scenario, kept nowhere.
    Scenario,
    /// The file did not exist yet: seeded from the scenario, saved there from now on.
    New { path: PathBuf },
    /// Restored from the file.
    Restored {
        path: PathBuf,
        saved_at: jiff::Timestamp,
    },
    /// The file was made from another scenario: seeded from this one, and the file is
    /// overwritten at the next save.
    Replaced { path: PathBuf },
}

impl WorldOrigin {
    /// A line for people, when there is something worth saying.
    #[must_use]
    pub fn note(&self) -> Option<String> {
        match self {
            Self::Scenario => None,
            Self::New { path } => Some(format!(
                "sandbox world {} does not exist yet; starting from the scenario",
                path.display()
            )),
            Self::Restored { path, saved_at } => Some(format!(
                "sandbox world restored from {} (saved {saved_at:.0})",
                path.display()
            )),
            Self::Replaced { path } => Some(format!(
                "sandbox world {} was made from another scenario; starting from this scenario (the file is replaced at the next save)",
                path.display()
            )),
        }
    }
}

/// What `Running::stop` did with the world.
#[derive(Debug)]
pub enum WorldSave {
    /// The sandbox keeps no world file.
    NotKept,
    Saved(PathBuf),
    Failed(WorldError),
}

/// One provider's share of the file.
#[derive(Serialize, Deserialize)]
struct Provider<O> {
    objects: O,
    stats: SavedStats,
    fault_draws: Draws,
}

#[derive(Deserialize)]
struct Header {
    format: String,
    version: u32,
    scenario: String,
}

#[derive(Serialize, Deserialize)]
struct File {
    format: String,
    version: u32,
    /// The digest of the scenario this world grew from.
    scenario: String,
    saved_at: jiff::Timestamp,
    venafi_tpp: Provider<venafi::Objects>,
    digicert: Provider<digicert::Objects>,
    vcf: Provider<vcf::Objects>,
    otc_waf: Provider<otc_waf::Objects>,
    ncloud: Provider<ncloud::Objects>,
}

/// The scenario's digest: over its parsed form, so comments and layout do not count.
#[must_use]
pub fn digest(scenario: &Scenario) -> String {
    let bytes = serde_json::to_vec(scenario).expect("a scenario serializes");
    Sha256::digest(&bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn provider<O>(objects: O, host: &super::host::Host) -> Provider<O> {
    Provider {
        objects,
        stats: host.stats.saved(),
        fault_draws: host.injector.draws(),
    }
}

fn snapshot(sims: &Sims, scenario: &str) -> File {
    File {
        format: FORMAT.into(),
        version: VERSION,
        scenario: scenario.to_owned(),
        saved_at: jiff::Timestamp::now(),
        venafi_tpp: provider(sims.venafi.saved(), &sims.venafi.host),
        digicert: provider(sims.digicert.saved(), &sims.digicert.host),
        vcf: provider(sims.vcf.saved(), &sims.vcf.host),
        otc_waf: provider(sims.otc.saved(), &sims.otc.host),
        ncloud: provider(sims.ncloud.saved(), &sims.ncloud.host),
    }
}

fn apply<O>(p: Provider<O>, host: &super::host::Host, restore: impl FnOnce(O)) {
    restore(p.objects);
    host.stats.restore(p.stats);
    host.injector.restore_draws(p.fault_draws);
}

/// Says where a JSON error is without quoting the text around it.
fn damaged(path: &Path, e: &serde_json::Error) -> WorldError {
    let at = format!("line {}, column {}", e.line(), e.column());
    let detail = match e.classify() {
        serde_json::error::Category::Eof => {
            format!("it ends early at {at} (a torn write?)")
        }
        serde_json::error::Category::Syntax => format!("it is not JSON at {at}"),
        serde_json::error::Category::Data | serde_json::error::Category::Io => {
            format!("unexpected content at {at}")
        }
    };
    WorldError::Damaged {
        path: path.to_owned(),
        detail,
    }
}

/// Restores `sims` from `path` when it holds a world of the same scenario.
///
/// # Errors
/// When the file exists but cannot be read or restored; `sims` is unchanged then.
pub(super) fn restore(path: &Path, scenario: &str, sims: &Sims) -> Result<WorldOrigin, WorldError> {
    let text = match std::fs::read(path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Ok(WorldOrigin::New {
                path: path.to_owned(),
            });
        }
        Err(source) => {
            return Err(WorldError::Read {
                path: path.to_owned(),
                source,
            });
        }
    };
    let header: Header = serde_json::from_slice(&text).map_err(|e| damaged(path, &e))?;
    if header.format != FORMAT {
        return Err(WorldError::Damaged {
            path: path.to_owned(),
            detail: "it is not a sandbox world file".into(),
        });
    }
    if header.version != VERSION {
        return Err(WorldError::Damaged {
            path: path.to_owned(),
            detail: format!(
                "it has format version {}; this redrive reads version {VERSION}",
                header.version
            ),
        });
    }
    if header.scenario != scenario {
        return Ok(WorldOrigin::Replaced {
            path: path.to_owned(),
        });
    }
    let file: File = serde_json::from_slice(&text).map_err(|e| damaged(path, &e))?;
    let saved_at = file.saved_at;
    apply(file.venafi_tpp, &sims.venafi.host, |o| {
        sims.venafi.restore(o)
    });
    apply(file.digicert, &sims.digicert.host, |o| {
        sims.digicert.restore(o)
    });
    apply(file.vcf, &sims.vcf.host, |o| sims.vcf.restore(o));
    apply(file.otc_waf, &sims.otc.host, |o| sims.otc.restore(o));
    apply(file.ncloud, &sims.ncloud.host, |o| sims.ncloud.restore(o));
    Ok(WorldOrigin::Restored {
        path: path.to_owned(),
        saved_at,
    })
}

/// Saves the world: serialized here, written to a temporary file beside `path`, synced, renamed
/// over it. A crash leaves either the old file or the new one, never a mix.
///
/// # Errors
/// When the file cannot be written.
pub(super) fn save(path: &Path, scenario: &str, sims: &Sims) -> Result<(), WorldError> {
    let file = snapshot(sims, scenario);
    let bytes = serde_json::to_vec(&file).expect("a world serializes");
    write_atomically(path, &bytes).map_err(|source| WorldError::Write {
        path: path.to_owned(),
        source,
    })
}

fn write_atomically(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let dir = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or_else(|| Path::new("."));
    let name = path.file_name().ok_or_else(|| {
        std::io::Error::new(std::io::ErrorKind::InvalidInput, "the path names no file")
    })?;
    let temporary = dir.join(format!(".{}.tmp", name.to_string_lossy()));
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt as _;
        // The world holds live tokens of the simulated providers: owner-only, like the
        // token store.
        options.mode(0o600);
    }
    let mut file = options.open(&temporary)?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        // A temporary file left by a crash keeps its old mode through `open`.
        file.set_permissions(std::fs::Permissions::from_mode(0o600))?;
    }
    file.write_all(bytes)?;
    file.sync_all()?;
    drop(file);
    std::fs::rename(&temporary, path)?;
    // The rename is durable only once the directory is synced; a failure there still left a
    // complete file behind.
    #[cfg(unix)]
    if let Ok(d) = std::fs::File::open(dir) {
        let _ = d.sync_all();
    }
    Ok(())
}

/// Deletes a world file, so that the next start seeds from the scenario; a missing file is fine.
///
/// # Errors
/// When the file exists and cannot be deleted.
pub fn reset(path: &Path) -> Result<(), WorldError> {
    match std::fs::remove_file(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(source) => Err(WorldError::Write {
            path: path.to_owned(),
            source,
        }),
    }
}
