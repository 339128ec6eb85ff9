//! Compaction of a local journal: once most of its lines are ones no history reads any more,
//! the lines that still count replace the file, so a journal grows with its actions, not with
//! the number of applies.

use std::collections::HashMap;
use std::fs::File;
use std::io::Write as _;
use std::path::Path;

use super::{JournalError, line, replay};
use crate::state::{History, Record, State};

/// A journal shorter than this is left alone, however much of it is dead: reading it costs
/// nothing worth a rewrite.
pub const MIN_DEAD_LINES: usize = 10_000;

/// What a compaction did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Compacted {
    /// Lines before, damaged ones included.
    pub before: usize,
    /// Lines kept.
    pub after: usize,
}

/// The positions in `records` (oldest first) that [`History::of`] still reads, in order: per
/// action its last record that is not a skip (or, when it was only ever skipped, its first),
/// its last `sent` and its last success. Folding just these gives the same history.
#[must_use]
pub fn live(records: &[Record]) -> Vec<usize> {
    #[derive(Default)]
    struct Kept {
        first: usize,
        last: Option<usize>,
        sent: Option<usize>,
        succeeded: Option<usize>,
    }
    let mut by_action: HashMap<&str, Kept> = HashMap::new();
    for (i, r) in records.iter().enumerate() {
        let kept = by_action.entry(r.action.as_str()).or_insert(Kept {
            first: i,
            ..Kept::default()
        });
        match r.state {
            State::Succeeded | State::Converged => kept.succeeded = Some(i),
            State::Sent => kept.sent = Some(i),
            _ => {}
        }
        if r.state != State::Skipped {
            kept.last = Some(i);
        }
    }
    let mut out: Vec<usize> = by_action
        .into_values()
        .flat_map(|k| [Some(k.last.unwrap_or(k.first)), k.sent, k.succeeded])
        .flatten()
        .collect();
    out.sort_unstable();
    out.dedup();
    out
}

/// The history of the journal at `path`, which the caller alone writes (it holds the apply
/// lock); when at least half of its lines (and [`MIN_DEAD_LINES`]) are dead, the live ones
/// replace it first. The file is swapped whole by a rename, so a crash leaves the old journal
/// or the new one, never a mix.
///
/// # Errors
/// When the journal cannot be read, or its compacted copy cannot be written.
pub fn history(path: &Path) -> Result<(History, Option<Compacted>), JournalError> {
    let (records, damaged) = replay(path)?;
    let before = records.len() + damaged.len();
    let keep = live(&records);
    let dead = before - keep.len();
    if dead < MIN_DEAD_LINES || dead < keep.len() {
        return Ok((History::of(records, damaged), None));
    }
    rewrite(path, &records, &keep).map_err(|error| JournalError::Io {
        path: path.to_owned(),
        error,
    })?;
    let compacted = Compacted {
        before,
        after: keep.len(),
    };
    // Damaged lines are gone from the file now, but this run still reports them.
    Ok((History::of(records, damaged), Some(compacted)))
}

fn rewrite(path: &Path, records: &[Record], keep: &[usize]) -> std::io::Result<()> {
    let mut name = path.file_name().unwrap_or_default().to_owned();
    name.push(".compacting");
    let tmp = path.with_file_name(name);
    let written = (|| {
        let mut out = std::io::BufWriter::with_capacity(1 << 20, File::create(&tmp)?);
        for &i in keep {
            out.write_all(&line(&records[i]))?;
        }
        let file = out
            .into_inner()
            .map_err(std::io::IntoInnerError::into_error)?;
        file.sync_all()?;
        std::fs::rename(&tmp, path)?;
        // The rename itself is durable once the folder is.
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            File::open(dir)?.sync_all()?;
        }
        Ok(())
    })();
    if written.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    written
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;

    const STATES: [State; 7] = [
        State::Planned,
        State::Sent,
        State::Succeeded,
        State::Converged,
        State::Failed,
        State::Unknown,
        State::Skipped,
    ];

    fn record(i: usize, action: u64, state: State) -> Record {
        Record {
            at: format!("2026-12-02T00:00:{i:02}Z"),
            run: format!("r{}", i / 5),
            action: format!("a{action}"),
            job: "j".into(),
            target: format!("t{action}"),
            state,
            attempt: u32::try_from(i).unwrap_or_default(),
            http_status: None,
            detail: format!("line {i}"),
        }
    }

    /// Everything a history says, in a comparable form.
    fn seen(h: &History) -> BTreeMap<String, (Record, Option<String>, Option<String>)> {
        h.actions
            .iter()
            .map(|(id, p)| {
                let past = (p.last.clone(), p.succeeded_at.clone(), p.sent_at.clone());
                (id.clone(), past)
            })
            .collect()
    }

    /// Any sequence of states, over a few actions: the kept lines fold into the same history.
    #[test]
    fn the_live_lines_fold_into_the_same_history() {
        for journal in 0..3000_u64 {
            let len = usize::try_from(crate::rng::mix(journal) % 40).unwrap_or_default();
            let records: Vec<Record> = (0..len)
                .map(|i| {
                    let bits = crate::rng::hash(journal, &[&i.to_le_bytes()]);
                    let state = STATES[usize::try_from(bits % 7).unwrap_or_default()];
                    record(i, (bits >> 8) % 4, state)
                })
                .collect();
            let kept: Vec<Record> = live(&records)
                .into_iter()
                .map(|i| records[i].clone())
                .collect();
            assert!(
                kept.len() <= 3 * 4,
                "journal {journal}: {} kept",
                kept.len()
            );
            assert_eq!(
                seen(&History::of(kept, Vec::new())),
                seen(&History::of(records, Vec::new())),
                "journal {journal}"
            );
        }
    }

    fn write(path: &Path, records: &[Record]) {
        let mut text = Vec::new();
        for r in records {
            text.extend(line(r));
        }
        std::fs::write(path, text).expect("write the journal");
    }

    #[test]
    fn a_mostly_dead_journal_is_rewritten_with_its_live_lines_only() {
        let dir = std::env::temp_dir().join(format!("redrive-compact-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("a folder");
        let path = dir.join("j.journal.jsonl");
        // Ten applies of 2,000 actions: planned, sent, succeeded each time.
        let mut records = Vec::new();
        for run in 0..10 {
            for a in 0..2000 {
                for state in [State::Planned, State::Sent, State::Succeeded] {
                    records.push(record(run, a, state));
                }
            }
        }
        write(&path, &records);
        let (history, compacted) = history(&path).expect("compacted");
        assert_eq!(
            compacted,
            Some(Compacted {
                before: 60_000,
                after: 4_000
            })
        );
        let (reread, damaged) = replay(&path).expect("the new journal");
        assert_eq!(reread.len(), 4_000);
        assert!(damaged.is_empty());
        assert_eq!(seen(&History::of(reread, damaged)), seen(&history));
        assert!(!dir.join("j.journal.jsonl.compacting").exists());
        // Now mostly live: read as it is.
        let (_, again) = super::history(&path).expect("read");
        assert_eq!(again, None);
        // A small journal is never rewritten, however dead.
        write(&path, &records[..9_000]);
        assert_eq!(super::history(&path).expect("read").1, None);
        assert_eq!(replay(&path).expect("read").0.len(), 9_000);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
