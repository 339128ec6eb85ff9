//! Compaction of a local journal: once most of its lines are ones no history reads any more,
//! the lines that still count replace the file, so a journal grows with its actions, not with
//! the number of applies.

use std::collections::HashMap;
use std::fs::File;
use std::io::Write as _;
use std::path::Path;

use super::{JournalError, each, line};
use crate::state::{History, Reads, Record};

/// A journal shorter than this is left alone, however much of it is dead: reading it costs
/// nothing worth a rewrite.
pub const MIN_DEAD_LINES: usize = 10_000;

/// What a compaction did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Compaction {
    /// The journal was read as it is.
    Kept,
    Done(Compacted),
    /// The copy could not be written; the journal is as it was, and the apply goes on.
    Failed(String),
}

/// The lines of a compacted journal.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Compacted {
    /// Lines before, damaged ones included.
    pub before: usize,
    /// Lines kept.
    pub after: usize,
}

/// Per action, the positions of the records [`History::fold`] still reads: its last that is
/// not a skip (or, when it was only ever skipped, its first), its last `sent` and its last
/// success. Folding just these gives the same history.
#[derive(Default)]
struct Live {
    by_action: HashMap<String, Kept>,
}

struct Kept {
    first: usize,
    last: Option<usize>,
    sent: Option<usize>,
    succeeded: Option<usize>,
}

impl Live {
    /// Record `i` (counted from 0, in journal order).
    fn see(&mut self, i: usize, r: &Record) {
        if !self.by_action.contains_key(&r.action) {
            let kept = Kept {
                first: i,
                last: None,
                sent: None,
                succeeded: None,
            };
            self.by_action.insert(r.action.clone(), kept);
        }
        let kept = self.by_action.get_mut(&r.action).expect("inserted above");
        let reads = Reads::of(r.state);
        if reads.success {
            kept.succeeded = Some(i);
        }
        if reads.sent {
            kept.sent = Some(i);
        }
        if reads.last {
            kept.last = Some(i);
        }
    }

    /// The positions to keep, in order.
    fn kept(self) -> Vec<usize> {
        let mut out: Vec<usize> = self
            .by_action
            .into_values()
            .flat_map(|k| [Some(k.last.unwrap_or(k.first)), k.sent, k.succeeded])
            .flatten()
            .collect();
        out.sort_unstable();
        out.dedup();
        out
    }
}

/// The history of the journal at `path`, which the caller alone writes (it holds the apply
/// lock); when at least half of its lines (and [`MIN_DEAD_LINES`]) are dead, the live ones
/// replace it first. The file is swapped whole by a rename, so a crash leaves the old journal
/// or the new one, never a mix. Both passes stream: no more than the history is held.
///
/// # Errors
/// When the journal cannot be read. A copy that cannot be written is only reported: the
/// journal is still whole.
pub fn history(path: &Path) -> Result<(History, Compaction), JournalError> {
    let mut history = History::default();
    let mut live = Live::default();
    let mut read = 0;
    history.damaged = each(path, |r| {
        live.see(read, &r);
        read += 1;
        history.fold(r);
    })?;
    let before = read + history.damaged.len();
    let keep = live.kept();
    let dead = before - keep.len();
    if dead < MIN_DEAD_LINES || dead < keep.len() {
        return Ok((history, Compaction::Kept));
    }
    // Damaged lines are gone from the file once compacted, but this run still reports them.
    let compaction = match rewrite(path, &keep) {
        Ok(()) => Compaction::Done(Compacted {
            before,
            after: keep.len(),
        }),
        Err(e) => Compaction::Failed(e.to_string()),
    };
    Ok((history, compaction))
}

/// Writes the records at `keep` (positions among the readable ones) beside the journal, and
/// renames the copy over it.
fn rewrite(path: &Path, keep: &[usize]) -> Result<(), JournalError> {
    let io = |error| JournalError::Io {
        path: path.to_owned(),
        error,
    };
    let mut name = path.file_name().unwrap_or_default().to_owned();
    name.push(".compacting");
    let tmp = path.with_file_name(name);
    let written = (|| {
        let mut out = std::io::BufWriter::with_capacity(1 << 20, File::create(&tmp).map_err(io)?);
        let (mut i, mut next, mut failed) = (0, keep.iter().peekable(), None);
        each(path, |r| {
            if next.peek() == Some(&&i) {
                next.next();
                if failed.is_none() {
                    failed = out.write_all(&line(&r)).err();
                }
            }
            i += 1;
        })?;
        if let Some(error) = failed {
            return Err(io(error));
        }
        let file = out
            .into_inner()
            .map_err(|e| io(std::io::IntoInnerError::into_error(e)))?;
        file.sync_all().map_err(io)?;
        std::fs::rename(&tmp, path).map_err(io)?;
        // The rename itself is durable once the folder is.
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            File::open(dir).and_then(|d| d.sync_all()).map_err(io)?;
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
    use crate::state::State;
    use crate::state::journal::replay;

    const STATES: [State; 7] = State::ALL;

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
            let mut live = Live::default();
            for (i, r) in records.iter().enumerate() {
                live.see(i, r);
            }
            let kept: Vec<Record> = live
                .kept()
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
            Compaction::Done(Compacted {
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
        assert_eq!(again, Compaction::Kept);
        // A copy that cannot be made leaves the journal as it was, and is only reported.
        write(&path, &records);
        std::fs::create_dir(dir.join("j.journal.jsonl.compacting")).expect("in the way");
        let (kept, failed) = super::history(&path).expect("read");
        assert!(matches!(failed, Compaction::Failed(_)), "{failed:?}");
        assert_eq!(seen(&kept), seen(&history));
        assert_eq!(replay(&path).expect("read").0.len(), 60_000);
        std::fs::remove_dir(dir.join("j.journal.jsonl.compacting")).expect("removed");
        // A small journal is never rewritten, however dead.
        write(&path, &records[..9_000]);
        assert_eq!(super::history(&path).expect("read").1, Compaction::Kept);
        assert_eq!(replay(&path).expect("read").0.len(), 9_000);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
