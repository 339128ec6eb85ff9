//! Saved plans: the plan as JSON plus the digests that tell whether it went stale. A saved plan
//! holds no secret values (requests show references), so it is safe to commit.

use std::io::Write;
use std::path::Path;

use sha2::{Digest, Sha256};

use super::{FileDigest, Plan, PlanJob};

/// The SHA-256 of a file, hex.
///
/// # Errors
/// When the file cannot be read.
pub fn digest(path: &Path) -> std::io::Result<String> {
    // Read in blocks: an input of a million lines is not held whole to be hashed.
    let mut hasher = Sha256::new();
    let mut file = std::fs::File::open(path)?;
    let mut block = vec![0u8; 1 << 16];
    loop {
        let n = std::io::Read::read(&mut file, &mut block)?;
        if n == 0 {
            break;
        }
        hasher.update(&block[..n]);
    }
    Ok(hasher
        .finalize()
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

/// Writes the plan as JSON, one action a line, as it goes: a plan of a million actions is never
/// held as one string. The document is the one `plan --format json` prints and the schema
/// describes; only its layout is this one, which keeps a saved plan small (no indentation
/// repeated a million times) and makes a review diff show one line per changed action.
///
/// # Errors
/// The writer's.
pub fn write_json(plan: &Plan, w: &mut dyn Write) -> std::io::Result<()> {
    let mut lines = super::line::ActionLines::default();
    let mut layout = Layout::default();
    layout.begin(w, plan)?;
    for job in &plan.jobs {
        layout.job_begin(w, job)?;
        for action in &job.actions {
            layout.action(w)?;
            match plan.request(job, action) {
                // A plan made here: the action with its preview, made for this line only (the
                // action is borrowed, not copied with it).
                std::borrow::Cow::Owned(request) => lines.write(w, action, &request)?,
                std::borrow::Cow::Borrowed(_) => {
                    serde_json::to_writer(&mut *w, action).map_err(std::io::Error::other)?;
                }
            }
        }
        layout.job_end(w, job)?;
    }
    layout.end(w, plan)
}

/// The document of [`write_json`], written in the order a plan is made: the plan's fields up
/// to `jobs`, each job's up to `actions`, one action a line, then what is only known once
/// they are all made (a job's `filtered_by_when`, the plan's digests and summary). The parts
/// around the lists are serde's text of the types, so their attributes stay the one
/// description of the format.
#[derive(Default)]
pub struct Layout {
    jobs: usize,
    /// Actions written in the open job.
    actions: Option<usize>,
}

impl Layout {
    /// The plan's fields before its jobs; only those of `plan` are read.
    ///
    /// # Errors
    /// The writer's.
    pub fn begin(&mut self, w: &mut dyn Write, plan: &Plan) -> std::io::Result<()> {
        w.write_all(around(&plan.head(), "jobs")?.0.as_bytes())
    }

    /// Opens a job; only its fields before `actions` are read.
    ///
    /// # Errors
    /// The writer's.
    pub fn job_begin(&mut self, w: &mut dyn Write, job: &PlanJob) -> std::io::Result<()> {
        debug_assert!(self.actions.is_none(), "a job is open");
        w.write_all(separator(self.jobs))?;
        w.write_all(around(&job.head(), "actions")?.0.as_bytes())?;
        self.jobs += 1;
        self.actions = Some(0);
        Ok(())
    }

    /// Whether a job is open.
    #[must_use]
    pub fn in_job(&self) -> bool {
        self.actions.is_some()
    }

    /// What goes before the open job's next action line (which the caller writes).
    ///
    /// # Errors
    /// The writer's.
    pub fn action(&mut self, w: &mut dyn Write) -> std::io::Result<()> {
        let k = self.actions.as_mut().expect("a job is open");
        w.write_all(separator(*k))?;
        *k += 1;
        Ok(())
    }

    /// Closes the open job; only its fields after `actions` are read.
    ///
    /// # Errors
    /// The writer's.
    pub fn job_end(&mut self, w: &mut dyn Write, job: &PlanJob) -> std::io::Result<()> {
        let any = self.actions.take().expect("a job is open") > 0;
        w.write_all(if any { b"\n" } else { b"" })?;
        w.write_all(around(&job.head(), "actions")?.1.as_bytes())
    }

    /// Ends the document; only the plan's fields after its jobs are read.
    ///
    /// # Errors
    /// The writer's.
    pub fn end(&mut self, w: &mut dyn Write, plan: &Plan) -> std::io::Result<()> {
        debug_assert!(self.actions.is_none(), "a job is open");
        w.write_all(if self.jobs > 0 { b"\n" } else { b"" })?;
        w.write_all(around(&plan.head(), "jobs")?.1.as_bytes())?;
        w.write_all(b"\n")
    }
}

/// What goes before the `k`th item of a list written one a line.
fn separator(k: usize) -> &'static [u8] {
    if k == 0 { b"\n" } else { b",\n" }
}

/// A value's serde text around its field `key`, an empty list: `{…,"key":[` and `],…}`, for the
/// list's items to be written in between.
fn around(value: &impl serde::Serialize, key: &str) -> std::io::Result<(String, String)> {
    let text = serde_json::to_string(value).map_err(std::io::Error::other)?;
    let fields: indexmap::IndexMap<String, Box<serde_json::value::RawValue>> =
        serde_json::from_str(&text).map_err(std::io::Error::other)?;
    let (mut before, mut after) = (String::from("{"), String::new());
    let mut past = false;
    for (i, (name, value)) in fields.iter().enumerate() {
        let part = if past { &mut after } else { &mut before };
        if i > 0 {
            part.push(',');
        }
        part.push_str(&serde_json::to_string(name).map_err(std::io::Error::other)?);
        part.push(':');
        if name == key {
            debug_assert_eq!(value.get(), "[]", "`{key}` is written in place");
            before.push('[');
            after.push(']');
            past = true;
        } else {
            part.push_str(value.get());
        }
    }
    debug_assert!(past, "`{key}` is a field");
    after.push('}');
    Ok((before, after))
}

/// Writes the plan (atomically: a temporary file renamed over the target), as [`write_json`].
///
/// # Errors
/// When the file cannot be written.
pub fn save(plan: &Plan, path: &Path) -> std::io::Result<()> {
    save_with(path, &mut |w| write_json(plan, w))
}

/// Where a file is written before it is renamed over `path`.
#[must_use]
pub fn temporary_beside(path: &Path) -> std::path::PathBuf {
    path.with_extension("tmp")
}

/// Writes a file atomically: `write` fills a temporary file, which is renamed over `path`.
///
/// # Errors
/// When the file cannot be written, and `write`'s.
pub fn save_with(
    path: &Path,
    write: &mut dyn FnMut(&mut dyn Write) -> std::io::Result<()>,
) -> std::io::Result<()> {
    let tmp = temporary_beside(path);
    let written = (|| {
        let mut w = std::io::BufWriter::with_capacity(1 << 16, std::fs::File::create(&tmp)?);
        write(&mut w)?;
        w.into_inner()
            .map_err(std::io::IntoInnerError::into_error)?;
        std::fs::rename(&tmp, path)
    })();
    // A file that could not be finished is not left beside the one it was to replace.
    if written.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    written
}

/// Reads a saved plan.
///
/// # Errors
/// When the file cannot be read or is not a plan of this format.
pub fn load(path: &Path) -> anyhow::Result<Plan> {
    let file = std::fs::File::open(path)
        .map_err(|e| anyhow::anyhow!("cannot read the plan {}: {e}", path.display()))?;
    // Read as it is parsed: the text of a large plan is not held beside the plan.
    let parsed: Result<Plan, _> =
        serde_json::from_reader(std::io::BufReader::with_capacity(1 << 16, file));
    let version = match &parsed {
        Ok(plan) => Some(plan.format_version),
        // Another format may not parse as this one: its version tells why.
        Err(_) => format_version(path),
    };
    match (parsed, version) {
        (_, Some(v)) if v != super::FORMAT_VERSION => anyhow::bail!(
            "{} has plan format {v}, this redrive reads format {}\nhint: plan again with this redrive (`redrive plan RUNBOOK --out PLAN`) and review the new plan",
            path.display(),
            super::FORMAT_VERSION
        ),
        (Ok(plan), _) => Ok(plan),
        (Err(e), _) => Err(anyhow::anyhow!(
            "{} is not a redrive plan: {e}",
            path.display()
        )),
    }
}

/// The `format_version` of a JSON document, whatever else it holds.
fn format_version(path: &Path) -> Option<u32> {
    #[derive(serde::Deserialize)]
    struct Versioned {
        format_version: u32,
    }
    let file = std::fs::File::open(path).ok()?;
    let v: Versioned =
        serde_json::from_reader(std::io::BufReader::with_capacity(1 << 16, file)).ok()?;
    Some(v.format_version)
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

#[cfg(test)]
mod tests {
    use super::super::fixture::plan;
    use super::super::{ActionId, Decision, PlanAction};
    use crate::providers::RequestPreview;

    /// A file whose writing fails leaves neither a temporary file nor a change to the old one.
    #[test]
    fn a_failed_save_leaves_no_temporary_file() {
        let dir = std::env::temp_dir().join(format!("redrive-save-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("dir");
        let path = dir.join("plan.md");
        std::fs::write(&path, "old").expect("old");
        let failed = super::save_with(&path, &mut |w| {
            w.write_all(b"half")?;
            Err(std::io::Error::other("the template failed"))
        });
        assert!(failed.is_err());
        assert!(
            !super::temporary_beside(&path).exists(),
            "a temporary file was left"
        );
        assert_eq!(std::fs::read_to_string(&path).expect("read"), "old");
        super::save_with(&path, &mut |w| w.write_all(b"new")).expect("saved");
        assert_eq!(std::fs::read_to_string(&path).expect("read"), "new");
        std::fs::remove_dir_all(&dir).expect("cleaned");
    }

    /// The streamed layout is the same document serde writes whole, for every shape of plan.
    #[test]
    fn the_streamed_plan_is_the_whole_document() {
        for shape in [&[][..], &[0], &[3], &[2, 0, 1]] {
            let plan = plan(shape);
            let mut out = Vec::new();
            super::write_json(&plan, &mut out).expect("written");
            let text = String::from_utf8(out).expect("UTF-8");
            let streamed: serde_json::Value = serde_json::from_str(&text).expect("JSON");
            let whole = serde_json::to_value(&plan).expect("JSON");
            assert_eq!(streamed, whole, "{shape:?}: {text}");
            let actions: usize = shape.iter().sum();
            // Each action is a line of its own.
            let lines = text.lines().filter(|l| l.starts_with(r#"{"id":"00000000"#));
            assert_eq!(lines.count(), actions, "{text}");
        }
    }

    /// A plan made here holds no previews: each line is the action with its preview made for
    /// it, field for field what the action would serialize as with the preview in it.
    #[test]
    fn a_line_with_a_preview_made_for_it_is_the_action_with_it() {
        let mut plan = plan(&[3]);
        let preview = RequestPreview {
            method: "POST".into(),
            ..RequestPreview::default()
        };
        for (n, a) in plan.jobs[0].actions.iter_mut().enumerate() {
            a.request = None;
            if n == 1 {
                a.observed = Some(
                    serde_json::value::to_raw_value(&serde_json::json!({"s": 1})).expect("JSON"),
                );
                a.previous = Some("failed before".into());
                a.index = None;
                a.decision = Decision::Run;
            }
        }
        let made = preview.clone();
        plan.previews = super::super::Previews::new(move |_, _| made.clone());
        let mut out = Vec::new();
        super::write_json(&plan, &mut out).expect("written");
        let streamed: serde_json::Value = serde_json::from_slice(&out).expect("JSON");
        for (n, a) in plan.jobs[0].actions.iter().enumerate() {
            let whole = PlanAction {
                request: Some(Box::new(preview.clone())),
                ..(**a).clone()
            };
            let whole = serde_json::to_value(&whole).expect("JSON");
            assert_eq!(streamed["jobs"][0]["actions"][n], whole, "{n}");
        }
    }

    #[test]
    fn ids_are_written_as_sixteen_hex_digits_and_read_only_so() {
        let id = ActionId(0xc578_341e_cedd_3a63);
        assert_eq!(id.to_string(), "c578341ecedd3a63");
        assert_eq!(ActionId(0xab).to_string(), "00000000000000ab");
        for n in [0, 0xab, 0xc578_341e_cedd_3a63, u64::MAX] {
            assert_eq!(ActionId(n).text(), ActionId(n).to_string());
        }
        assert_eq!(
            serde_json::to_string(&ActionId(u64::MAX)).expect("JSON"),
            r#""ffffffffffffffff""#
        );
        assert_eq!("c578341ecedd3a63".parse::<ActionId>(), Ok(id));
        for bad in [
            "C578341ECEDD3A63",
            "c578341ecedd3a6",
            "c578341ecedd3a634",
            "g578341ecedd3a63",
        ] {
            assert!(bad.parse::<ActionId>().is_err(), "{bad}");
        }
    }

    /// A plan of another format is refused by its version, even when it does not parse as
    /// this one.
    #[test]
    fn another_format_version_is_named() {
        let dir = std::env::temp_dir().join(format!("redrive-planfile-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("a folder");
        let path = dir.join("plan.json");
        std::fs::write(&path, r#"{"format_version": 99, "actions": "elsewhere"}"#)
            .expect("written");
        let error = super::load(&path).expect_err("refused").to_string();
        assert!(
            error.contains("has plan format 99, this redrive reads format 1"),
            "{error}"
        );
        std::fs::write(&path, r#"{"jobs": 1}"#).expect("written");
        let error = super::load(&path).expect_err("refused").to_string();
        assert!(error.contains("is not a redrive plan"), "{error}");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
