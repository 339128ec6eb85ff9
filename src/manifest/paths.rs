//! Files a runbook names (inputs, secret files, CSRs, CA bundles) stay inside its folder and
//! are regular files.
//!
//! A runbook under review must not be able to read `/etc/shadow` or `~/.ssh` into a request,
//! nor hang the tool on a FIFO. Paths are checked twice: when the runbook is validated, and
//! again when the file is read ([`open_confined`]), because a file may be swapped for a
//! symlink between the two.

use std::fs::File;
use std::io::Read;
use std::path::{Component, Path, PathBuf};

/// Resolves `written` against the runbook's folder `dir`, refusing absolute paths, `..` that
/// leaves the folder, and (when the file exists) symlinks that lead outside it.
///
/// # Errors
/// Why the path is refused, as a message fragment.
pub fn confine(dir: &Path, written: &str) -> Result<PathBuf, String> {
    let relative = Path::new(written);
    if relative.is_absolute() || relative.has_root() || written.starts_with('~') {
        return Err(format!(
            "`{written}` is an absolute path; paths are relative to the runbook's folder"
        ));
    }
    // Lexical check first: `..` may point outside even when the target does not exist.
    let mut depth: i64 = 0;
    for c in relative.components() {
        match c {
            Component::ParentDir => depth -= 1,
            Component::Normal(_) => depth += 1,
            Component::Prefix(_) | Component::RootDir => {
                return Err(format!("`{written}` is an absolute path"));
            }
            Component::CurDir => {}
        }
        if depth < 0 {
            return Err(format!("`{written}` leaves the runbook's folder"));
        }
    }
    let joined = dir.join(relative);
    contained(dir, &joined, written)?;
    Ok(joined)
}

/// Symlinks may lead outside: compare the real paths when the file exists.
fn contained(dir: &Path, joined: &Path, written: &str) -> Result<(), String> {
    if let (Ok(real_dir), Ok(real)) = (dir.canonicalize(), joined.canonicalize())
        && !real.starts_with(&real_dir)
    {
        return Err(format!(
            "`{written}` resolves to `{}`, outside the runbook's folder",
            real.display()
        ));
    }
    Ok(())
}

/// What is at a path: nothing, a regular file, or something that must not be read.
#[derive(Debug, PartialEq, Eq)]
pub enum Kind {
    Missing,
    File,
    /// A directory, FIFO, socket or device, named for messages.
    Special(&'static str),
}

/// Looks at a path without opening it (opening a FIFO for reading blocks).
#[must_use]
pub fn kind(path: &Path) -> Kind {
    match std::fs::metadata(path) {
        Err(_) => Kind::Missing,
        Ok(m) => special(&m).map_or(Kind::File, Kind::Special),
    }
}

fn special(m: &std::fs::Metadata) -> Option<&'static str> {
    let t = m.file_type();
    if t.is_file() {
        return None;
    }
    if t.is_dir() {
        return Some("a directory");
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::FileTypeExt;
        if t.is_fifo() {
            return Some("a FIFO");
        }
        if t.is_socket() {
            return Some("a socket");
        }
        if t.is_block_device() || t.is_char_device() {
            return Some("a device");
        }
    }
    Some("not a regular file")
}

/// `O_NONBLOCK`, so that opening a FIFO swapped in after the type check does not block.
/// Spelled out because the crate forbids `unsafe` and has no `libc` dependency of its own.
#[cfg(all(
    target_os = "linux",
    not(any(
        target_arch = "mips",
        target_arch = "mips64",
        target_arch = "sparc",
        target_arch = "sparc64"
    ))
))]
const O_NONBLOCK: i32 = 0o4000;
#[cfg(any(target_os = "macos", target_os = "ios", target_os = "freebsd"))]
const O_NONBLOCK: i32 = 0x0004;
#[cfg(not(any(
    all(
        target_os = "linux",
        not(any(
            target_arch = "mips",
            target_arch = "mips64",
            target_arch = "sparc",
            target_arch = "sparc64"
        ))
    ),
    target_os = "macos",
    target_os = "ios",
    target_os = "freebsd"
)))]
const O_NONBLOCK: i32 = 0;

/// Opens a path for reading only if it is a regular file: the type is checked before opening
/// (so a FIFO is never opened) and again on the open handle (so a swap in between is caught).
///
/// # Errors
/// The I/O error, or `InvalidInput` for a file that is not regular.
pub fn open_regular(path: &Path) -> std::io::Result<File> {
    let refuse = |what: &str| {
        std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            format!("it is {what}, not a regular file"),
        )
    };
    if let Kind::Special(what) = kind(path) {
        return Err(refuse(what));
    }
    let mut options = std::fs::OpenOptions::new();
    options.read(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.custom_flags(O_NONBLOCK);
    }
    let file = options.open(path)?;
    if let Some(what) = special(&file.metadata()?) {
        return Err(refuse(what));
    }
    Ok(file)
}

/// Reads a file named in the runbook at send time: confined to `dir` and regular, checked
/// on the real path at the moment of reading.
///
/// # Errors
/// A refused path (as `PermissionDenied`), or the I/O error.
pub fn read_confined(dir: &Path, written: &str) -> std::io::Result<Vec<u8>> {
    let path = confine(dir, written)
        .map_err(|m| std::io::Error::new(std::io::ErrorKind::PermissionDenied, m))?;
    // Canonicalise now and read that path, so a symlink swapped in after the check above
    // cannot redirect the read.
    let real = path.canonicalize()?;
    let real_dir = dir.canonicalize()?;
    if !real.starts_with(&real_dir) {
        return Err(std::io::Error::new(
            std::io::ErrorKind::PermissionDenied,
            format!("`{written}` resolves outside the runbook's folder"),
        ));
    }
    let mut bytes = Vec::new();
    open_regular(&real)?.read_to_end(&mut bytes)?;
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_are_refused() {
        let dir = Path::new(".");
        assert!(confine(dir, "../x").is_err());
        assert!(confine(dir, "a/../../x").is_err());
        assert!(confine(dir, "/etc/passwd").is_err());
        assert!(confine(dir, "~/.ssh/id_rsa").is_err());
        assert!(confine(dir, "a/../b.txt").is_ok());
    }

    #[test]
    fn special_files_are_named() {
        assert_eq!(kind(Path::new("/definitely/not/here")), Kind::Missing);
        assert_eq!(kind(Path::new(".")), Kind::Special("a directory"));
        assert!(open_regular(Path::new(".")).is_err());
        assert_eq!(kind(Path::new("Cargo.toml")), Kind::File);
    }
}
