//! `plan` at a million actions without holding them: each action's diff line is written to an
//! unlinked temporary file as it is resolved, and the diff is written around the lines once
//! the summary (which heads it) is known, so a runbook that fails half-way prints no half
//! diff. The JSON document goes to its [`Stream`], which keeps the same promise its own way.

use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::os::unix::fs::FileExt as _;

use super::stream::Stream;
use crate::plan::prepare::ActionSink;
use crate::plan::{Plan, PlanAction, PlanJob};
use crate::providers::{Idempotency, RequestPreview};
use crate::ui::diff::{self, JobLines};

/// The lines of one output, and where each job's lie.
struct Part {
    store: Store,
    /// Per job, its ranges of the store, in order (a job's actions are usually one range).
    ranges: Vec<Vec<(u64, u64)>>,
}

/// An unlinked temporary file, or memory when the temporary folder cannot be written.
pub(super) enum Store {
    File { w: BufWriter<File>, len: u64 },
    Memory(Vec<u8>),
}

impl Store {
    pub(super) fn new() -> Self {
        match unlinked() {
            Ok(file) => Self::File {
                w: BufWriter::with_capacity(1 << 16, file),
                len: 0,
            },
            Err(_) => Self::Memory(Vec::new()),
        }
    }

    pub(super) fn len(&self) -> u64 {
        match self {
            Self::File { len, .. } => *len,
            Self::Memory(v) => v.len() as u64,
        }
    }

    pub(super) fn append(&mut self, bytes: &[u8]) -> io::Result<()> {
        match self {
            Self::File { w, len } => {
                w.write_all(bytes)?;
                *len += bytes.len() as u64;
                Ok(())
            }
            Self::Memory(v) => {
                v.extend_from_slice(bytes);
                Ok(())
            }
        }
    }

    pub(super) fn flush(&mut self) -> io::Result<()> {
        match self {
            Self::File { w, .. } => w.flush(),
            Self::Memory(_) => Ok(()),
        }
    }

    /// Reads `range` in blocks of up to `buf`'s capacity, handing each to `each`.
    pub(super) fn read(
        &self,
        (mut at, end): (u64, u64),
        buf: &mut Vec<u8>,
        each: &mut dyn FnMut(&[u8]) -> io::Result<()>,
    ) -> io::Result<()> {
        match self {
            Self::File { w, .. } => {
                while at < end {
                    let n =
                        usize::try_from(end - at).map_or(buf.capacity(), |n| n.min(buf.capacity()));
                    buf.resize(n, 0);
                    w.get_ref().read_exact_at(buf, at)?;
                    each(buf)?;
                    at += n as u64;
                }
                Ok(())
            }
            Self::Memory(v) => {
                let range = usize::try_from(at).unwrap_or(usize::MAX)
                    ..usize::try_from(end).unwrap_or(usize::MAX);
                each(&v[range])
            }
        }
    }
}

/// For writers that take any `Write` (the JSON layout).
impl Write for Store {
    fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
        self.append(bytes)?;
        Ok(bytes.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Store::flush(self)
    }
}

/// A file in the temporary folder that nobody else can open and that goes when it is closed.
fn unlinked() -> io::Result<File> {
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let path = std::env::temp_dir().join(format!(".redrive-plan-{}-{n}", std::process::id()));
    let file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create_new(true)
        .open(&path)?;
    std::fs::remove_file(&path)?;
    Ok(file)
}

impl Part {
    fn new() -> Self {
        Self {
            store: Store::new(),
            ranges: Vec::new(),
        }
    }

    fn append(&mut self, j: usize, bytes: &[u8]) -> io::Result<()> {
        if self.ranges.len() <= j {
            self.ranges.resize_with(j + 1, Vec::new);
        }
        let start = self.store.len();
        self.store.append(bytes)?;
        let end = self.store.len();
        match self.ranges[j].last_mut() {
            Some(last) if last.1 == start => last.1 = end,
            _ => self.ranges[j].push((start, end)),
        }
        Ok(())
    }

    fn copy(&self, j: usize, each: &mut dyn FnMut(&[u8]) -> io::Result<()>) -> io::Result<()> {
        let mut buf = Vec::with_capacity(diff::CHUNK);
        for range in self.ranges.get(j).into_iter().flatten() {
            self.store.read(*range, &mut buf, each)?;
        }
        Ok(())
    }
}

/// Which documents the plan is written as.
pub struct Wanted {
    /// The JSON document (`--format json`, `--out`), and where it goes.
    pub json: Option<Stream>,
    /// The text diff, and whether in colour.
    pub text: Option<bool>,
}

/// The spooled lines of a plan being made, handed to `prepare` as its [`ActionSink`].
pub struct Spool {
    json: Option<Stream>,
    text: Option<(Part, bool)>,
    /// Per job: how many actions, and whether any is not idempotent.
    shapes: Vec<(usize, bool)>,
    text_line: String,
    /// The first write that failed: reported once the plan is made.
    error: Option<io::Error>,
}

impl Spool {
    #[must_use]
    pub fn new(wanted: Wanted) -> Self {
        Self {
            json: wanted.json,
            text: wanted.text.map(|color| (Part::new(), color)),
            shapes: Vec::new(),
            text_line: String::new(),
            error: None,
        }
    }

    /// Every line is written: the documents can be made.
    ///
    /// # Errors
    /// The first write to the spool that failed.
    pub fn finish(&mut self) -> io::Result<()> {
        if let Some(e) = self.error.take() {
            return Err(e);
        }
        if let Some((part, _)) = &mut self.text {
            part.store.flush()?;
        }
        Ok(())
    }

    /// The JSON document's stream, to be ended once the plan is made.
    pub fn take_json(&mut self) -> Option<Stream> {
        self.json.take()
    }

    /// The plan as the text diff ([`diff::render_to`]'s, byte for byte).
    ///
    /// # Errors
    /// The sink's, and reading the spool.
    pub fn write_text(
        &self,
        plan: &Plan,
        sink: &mut dyn FnMut(&str) -> io::Result<()>,
    ) -> io::Result<()> {
        let (_, color) = self.text.as_ref().expect("the spool was asked for text");
        diff::render_with(plan, *color, sink, &mut SpooledLines(self))
    }

    fn shape(&self, j: usize) -> (usize, bool) {
        self.shapes.get(j).copied().unwrap_or_default()
    }

    fn append(
        &mut self,
        job: usize,
        head: &PlanJob,
        action: &PlanAction,
        request: &RequestPreview,
    ) -> io::Result<()> {
        if self.shapes.len() <= job {
            self.shapes.resize(job + 1, (0, false));
        }
        let (count, non_idempotent) = &mut self.shapes[job];
        *count += 1;
        *non_idempotent |= action.idempotency == Idempotency::NonIdempotent;
        if let Some(json) = &mut self.json {
            json.action(head, action, request);
        }
        if let Some((part, color)) = &mut self.text {
            self.text_line.clear();
            diff::action_line(&mut self.text_line, head, action, request, *color);
            part.append(job, self.text_line.as_bytes())?;
        }
        Ok(())
    }
}

impl ActionSink for Spool {
    fn begin(&mut self, head: &Plan) {
        if let Some(json) = &mut self.json {
            json.begin(head);
        }
    }

    fn job_done(&mut self, _job: usize, head: &PlanJob) {
        if let Some(json) = &mut self.json {
            json.job_done(head);
        }
    }

    fn action(
        &mut self,
        job: usize,
        head: &PlanJob,
        action: &PlanAction,
        request: &RequestPreview,
    ) {
        if self.error.is_none()
            && let Err(e) = self.append(job, head, action, request)
        {
            self.error = Some(e);
        }
    }
}

/// The diff's action lines, read back from the spool.
struct SpooledLines<'s>(&'s Spool);

impl JobLines for SpooledLines<'_> {
    fn shape(&self, j: usize) -> (bool, bool) {
        let (count, non_idempotent) = self.0.shape(j);
        (count > 0, non_idempotent)
    }

    fn write(
        &mut self,
        j: usize,
        out: &mut String,
        sink: &mut dyn FnMut(&str) -> io::Result<()>,
    ) -> io::Result<()> {
        let (part, _) = self.0.text.as_ref().expect("the spool was asked for text");
        // Blocks end anywhere, lines are whole: hand on up to the last line end of each block.
        let mut carry: Vec<u8> = Vec::new();
        part.copy(j, &mut |bytes| {
            carry.extend_from_slice(bytes);
            let whole = carry.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1);
            let text = std::str::from_utf8(&carry[..whole]).map_err(io::Error::other)?;
            out.push_str(text);
            carry.drain(..whole);
            if out.len() >= diff::CHUNK {
                sink(out)?;
                out.clear();
            }
            Ok(())
        })?;
        debug_assert!(carry.is_empty(), "the spool holds whole lines");
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::super::stream::{Stream, Written};
    use super::{Spool, Wanted};
    use crate::plan::fixture::plan;
    use crate::plan::prepare::ActionSink as _;
    use crate::plan::{Decision, Plan};
    use crate::providers::{Idempotency, RequestPreview};

    /// A plan whose actions vary in what the lines show: decisions, re-runs, facts, a request.
    fn varied(shape: &[usize]) -> Plan {
        let mut plan = plan(shape);
        for (n, a) in plan
            .jobs
            .iter_mut()
            .flat_map(|j| &mut j.actions)
            .enumerate()
        {
            match n % 4 {
                0 => a.decision = Decision::Run,
                1 => a.decision = Decision::Blocked("no — «é»".into()),
                2 => {
                    a.decision = Decision::Run;
                    a.previous = Some("failed: 503".into());
                    a.idempotency = Idempotency::NonIdempotent;
                }
                _ => {}
            }
            a.observed = Some(
                serde_json::value::to_raw_value(&serde_json::json!({"stage": n})).expect("JSON"),
            );
            a.request = Some(Box::new(RequestPreview {
                method: "POST".into(),
                url: format!("https://tpp.example/vedsdk/x/{n}").into(),
                ..RequestPreview::default()
            }));
        }
        plan
    }

    /// Fed the actions one by one (each job's in turn, or `interleaved`, which only the diff
    /// may be), then written around the plan's head.
    fn spooled(plan: &Plan, memory: bool, interleaved: bool) -> (Option<Vec<u8>>, String) {
        let json = (!interleaved).then(|| {
            if memory {
                Stream::in_memory()
            } else {
                Stream::spooled()
            }
        });
        let mut spool = Spool::new(Wanted {
            json,
            text: Some(true),
        });
        let mut head = plan.clone();
        for job in &mut head.jobs {
            job.actions.clear();
        }
        spool.begin(&head);
        let mut order: Vec<(usize, usize)> = plan
            .jobs
            .iter()
            .enumerate()
            .flat_map(|(j, job)| (0..job.actions.len()).map(move |k| (j, k)))
            .collect();
        if interleaved {
            order.sort_by_key(|&(j, k)| (k, j));
        }
        let mut done = 0;
        for (j, k) in order {
            while !interleaved && done < j {
                spool.job_done(done, &head.jobs[done]);
                done += 1;
            }
            let (job, action) = (&plan.jobs[j], &plan.jobs[j].actions[k]);
            let request = plan.request(job, action).into_owned();
            spool.action(j, &job.head(), action, &request);
        }
        for (j, job) in head.jobs.iter().enumerate().skip(done) {
            spool.job_done(j, job);
        }
        let json = spool.take_json().map(|json| {
            let mut out = Vec::new();
            match json.end(&head).expect("ended") {
                Written::Spooled(mut json) => json
                    .copy(&mut |bytes| {
                        out.extend_from_slice(bytes);
                        Ok(())
                    })
                    .expect("copied"),
                Written::InPlace => unreachable!("a spool is copied"),
            }
            out
        });
        spool.finish().expect("spooled");
        let mut text = String::new();
        spool
            .write_text(&head, &mut |chunk| {
                text.push_str(chunk);
                Ok(())
            })
            .expect("written");
        (json, text)
    }

    /// The spooled documents are the held plan's, byte for byte, for every shape of plan, in
    /// a file or in memory, whatever order the jobs' actions came in.
    #[test]
    fn spooled_plans_are_the_held_plans_byte_for_byte() {
        for shape in [&[][..], &[0], &[3], &[2, 0, 5], &[4000]] {
            let plan = varied(shape);
            let mut json = Vec::new();
            crate::plan::file::write_json(&plan, &mut json).expect("written");
            let text = crate::ui::diff::render(&plan, true);
            for (memory, interleaved) in [(false, false), (true, false), (false, true)] {
                let (j, t) = spooled(&plan, memory, interleaved);
                assert!(
                    j.is_none_or(|j| j == json),
                    "{shape:?} memory={memory} interleaved={interleaved}: JSON"
                );
                assert!(
                    t == text,
                    "{shape:?} memory={memory} interleaved={interleaved}: text"
                );
            }
        }
    }
}
