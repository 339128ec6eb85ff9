//! The pipeline up to the plan, as one library call: clients → sources → render → observe →
//! resolve. The CLI gives it a loaded runbook, the history from the state and (for rehearsals)
//! the sandbox's endpoints; it returns the plan with the clients and limiters apply goes on with.

use std::path::PathBuf;
use std::sync::Arc;

use indexmap::IndexMap;

use super::handoff::{self, Placed};
use super::{FileDigest, Plan, PlanAction, PlanJob, items, observe, pinned, resolve};
use crate::limits::Limiter;
use crate::manifest::diagnostic::Diagnostics;
use crate::manifest::model::Manifest;
use crate::manifest::render::Rendered;
use crate::manifest::runbook::Runbook;
use crate::providers::{self, Client, ProviderError, RequestPreview, SandboxEndpoints};
use crate::state::{History, TokenStore};

/// What to plan, and against what.
pub struct Options<'a> {
    /// `--target`: only these jobs (and the jobs they need).
    pub targets: &'a [String],
    /// Read the providers' state (`--refresh`).
    pub refresh: bool,
    /// Let list endpoints settle many targets at once (`--no-bulk-reads` turns it off).
    pub bulk_reads: bool,
    /// Rehearse against the sandbox at these endpoints.
    pub sandbox: Option<&'a SandboxEndpoints>,
    /// What earlier applies did.
    pub history: &'a History,
    /// `--replace`: action or job ids to plan again although an earlier run did them.
    pub replace: &'a [String],
    /// Where providers keep rotated tokens.
    pub tokens: Arc<dyn TokenStore>,
    /// Applying a saved plan: only the actions it approved (by id) may run.
    pub approved: Option<&'a std::collections::HashSet<super::ActionId>>,
    /// Vars set on the command line, already merged into the runbook; recorded in the plan.
    pub vars: &'a IndexMap<String, serde_json::Value>,
    /// Where to tell how far the read-only checks got.
    pub progress: Option<&'a dyn observe::Progress>,
    /// Wait, before reading, for requests an earlier run left on their way (`plan::landing`);
    /// a cooperative runner leaves that to the takeover, which waits for its own.
    pub await_landing: bool,
    /// Hand each action here as it is resolved instead of keeping it in the plan.
    pub sink: Option<&'a mut (dyn ActionSink + Send)>,
    /// Called with the limiters as soon as they exist, before anything is read (a cooperative
    /// runner holds them across runners from there).
    pub limits: Option<&'a dyn Fn(&Limiters)>,
}

/// Where each resolved action goes when the caller writes the plan out as it is made instead
/// of holding it (a plan of a million actions): the plan [`prepare`] then returns has its jobs
/// without their actions, and its summary and job heads whole.
pub trait ActionSink {
    /// The plan is about to be made: its fields that are known before its actions are (the
    /// others are empty).
    fn begin(&mut self, head: &Plan);
    /// Action `action` of job `job` (whose head is `head`), and the request it would send.
    fn action(&mut self, job: usize, head: &PlanJob, action: &PlanAction, request: &RequestPreview);
    /// Every action of job `job` has been handed on; `head` is the job's, complete.
    fn job_done(&mut self, job: usize, head: &PlanJob);
}

/// Every provider's client, by the runbook's name for it.
pub type Clients = IndexMap<String, Client>;
/// Every provider's limiter, by name (providers sharing an endpoint and key share one).
pub type Limiters = IndexMap<String, Arc<Limiter>>;

/// A plan with what it took to make it.
pub struct Prepared {
    pub plan: Plan,
    pub clients: Arc<IndexMap<String, Client>>,
    pub limiters: Arc<IndexMap<String, Arc<Limiter>>>,
}

/// One provider whose state could not be read.
#[derive(Debug)]
pub struct Unreadable {
    pub provider: String,
    /// How many of its actions could not be checked.
    pub actions: usize,
    /// The first error, as the provider layer put it.
    pub error: String,
}

/// Why no plan could be made.
#[derive(Debug, thiserror::Error)]
pub enum PrepareError {
    /// The runbook does not render: diagnostics with locations.
    #[error("the runbook does not render")]
    Render(Diagnostics),
    #[error("provider `{provider}`: its url `{url}` cannot be rendered: {error}")]
    Url {
        provider: String,
        url: String,
        error: String,
    },
    #[error(transparent)]
    Setup(ProviderError),
    #[error("cannot read the runbook's sources: {0}")]
    Sources(ProviderError),
    /// Could not find out: the plan would be a guess.
    #[error("{}", unreadable_text(.0))]
    Unreadable(Vec<Unreadable>),
    #[error("cannot read {what} ({}): {error}", path.display())]
    Io {
        what: String,
        path: PathBuf,
        error: std::io::Error,
    },
}

fn unreadable_text(all: &[Unreadable]) -> String {
    let mut out = String::from("could not read the current state, so no plan was made:");
    for u in all {
        out.push_str(&format!(
            "\n  provider `{}`: {} action(s) not checked: {}",
            u.provider, u.actions, u.error
        ));
    }
    out
}

impl PrepareError {
    /// What the user can do about it.
    #[must_use]
    pub fn hint(&self) -> Option<&'static str> {
        match self {
            Self::Url { .. } => Some(
                "set the environment variables it reads (listed under `env:`), or plan against the simulator with --sandbox",
            ),
            Self::Unreadable(_) | Self::Sources(_) => Some(
                "check the provider's url, credentials and network; `--refresh=false` plans without reading (non-idempotent actions of unknown outcome are then held back)",
            ),
            _ => None,
        }
    }
}

/// `--target` with everything it needs, in runbook order, and which of those were pulled in.
#[must_use]
pub fn with_needs(manifest: &Manifest, targets: &[String]) -> (Vec<String>, Vec<String>) {
    if targets.is_empty() {
        return (Vec::new(), Vec::new());
    }
    let mut wanted: std::collections::HashSet<&str> = targets.iter().map(String::as_str).collect();
    let mut stack: Vec<&str> = targets.iter().map(String::as_str).collect();
    // Bounded by the number of jobs: each is pushed at most once.
    while let Some(id) = stack.pop() {
        if let Some(job) = manifest.jobs.iter().find(|j| j.id == id) {
            for n in &job.needs {
                if wanted.insert(n.as_str()) {
                    stack.push(n.as_str());
                }
            }
        }
    }
    let all: Vec<String> = manifest
        .jobs
        .iter()
        .filter(|j| wanted.contains(j.id.as_str()))
        .map(|j| j.id.clone())
        .collect();
    let pulled = all
        .iter()
        .filter(|j| !targets.contains(j))
        .cloned()
        .collect();
    (all, pulled)
}

/// The clients of every provider, pointed at the sandbox when it runs, and their limiters: one
/// per endpoint and key, so two providers of a runbook that name the same API key and endpoint
/// share one set of limits.
///
/// # Errors
/// A url that does not render, or a provider that cannot be set up.
pub fn clients(
    rb: &Runbook,
    sandbox: Option<&SandboxEndpoints>,
    tokens: &Arc<dyn TokenStore>,
) -> Result<(Clients, Limiters), PrepareError> {
    let cx = rb.context();
    let mut clients = IndexMap::new();
    let mut limiters = IndexMap::new();
    let mut by_key: std::collections::HashMap<String, Arc<Limiter>> =
        std::collections::HashMap::new();
    for (name, p) in &rb.manifest.providers {
        let url = match (sandbox, &p.url) {
            (Some(s), _) if s.urls.contains_key(&p.kind) => String::new(),
            // Never contacted: rehearsals hold back what the sandbox does not simulate.
            (Some(_), _) => "http://127.0.0.1:9".to_owned(),
            (_, Some(url)) => cx.render_text(url).map_err(|e| PrepareError::Url {
                provider: name.clone(),
                url: url.clone(),
                error: e.to_string(),
            })?,
            (_, None) => {
                return Err(PrepareError::Setup(ProviderError::Config {
                    provider: name.clone(),
                    detail: "it has no url".into(),
                }));
            }
        };
        // Limits belong to the endpoint and key, not to the name a runbook gives them.
        let key = format!(
            "{}\0{url}\0{}",
            p.kind,
            serde_json::to_string(&p.auth).unwrap_or_default()
        );
        let limiter = by_key
            .entry(key)
            .or_insert_with(|| {
                let limits = p.limits.as_ref().or(rb.manifest.defaults.limits.as_ref());
                Arc::new(Limiter::new(
                    limits,
                    &providers::registry::documented_limits(p.kind),
                ))
            })
            .clone();
        let client = providers::build(
            name,
            p,
            &url,
            rb.dir(),
            sandbox,
            tokens.clone(),
            limiter.clone(),
        )
        .map_err(PrepareError::Setup)?;
        clients.insert(name.clone(), client);
        limiters.insert(name.clone(), limiter);
    }
    Ok((clients, limiters))
}

/// Builds the clients, reads the sources, renders, observes and resolves.
///
/// # Errors
/// See [`PrepareError`]: a runbook that does not render, a provider that cannot be set up or
/// read.
pub async fn prepare(rb: &Runbook, mut options: Options<'_>) -> Result<Prepared, PrepareError> {
    let (clients, limiters) = clients(rb, options.sandbox, &options.tokens)?;
    if let Some(share) = options.limits {
        share(&limiters);
    }
    let (clients, limiters) = (Arc::new(clients), Arc::new(limiters));
    let sources = if rb.manifest.sources.is_empty() {
        None
    } else {
        Some(
            observe::sources(&rb.manifest, &clients)
                .await
                .map_err(PrepareError::Sources)?,
        )
    };
    let (targets, pulled_in) = with_needs(&rb.manifest, options.targets);
    // The jobs `render_each` yields, in its order: the selected ones, in runbook order.
    let heads: Vec<&crate::manifest::model::Job> = rb
        .manifest
        .jobs
        .iter()
        .filter(|j| targets.is_empty() || targets.contains(&j.id))
        .collect();
    let providers: Vec<String> = heads.iter().map(|j| j.provider.clone()).collect();
    let rules = resolve::Rules {
        history: options.history,
        replace: options.replace,
        new_need: &|job: usize| clients[&providers[job]].success_is_undone_by_a_new_failure(),
        took_effect: &|job: usize, facts, sent_at: &str| {
            clients[&providers[job]].took_effect_since(facts, sent_at)
        },
        simulated: &|job: usize| {
            options.sandbox.is_none_or(|s| {
                rb.manifest
                    .providers
                    .get(&providers[job])
                    .is_some_and(|p| s.urls.contains_key(&p.kind))
            })
        },
        approved: options.approved,
    };
    let idempotency = items::classes(heads.len(), |item| {
        clients[&providers[item.job]].preview(&item.what).1
    });
    let mut resolver = resolve::Resolver::new(
        heads
            .iter()
            .map(|j| (j.id.as_str(), j.provider.as_str(), j.action)),
        &rules,
        idempotency,
    );
    // CSR files the actions read: pinned with the inputs.
    let mut files: Vec<String> = Vec::new();
    let mut note_file = |item: &items::Item| {
        if let Some(f) = item
            .what
            .file()
            .filter(|f| !files.iter().any(|seen| seen == f))
        {
            files.push(f.to_owned());
        }
    };
    let target =
        |j: usize, work: &crate::manifest::model::Work| clients[&providers[j]].target(work);
    // A sink gets the jobs' heads with each action (their `defined_at` and `filtered_by_when`
    // are only known once they are rendered, and are in the plan's jobs).
    let job_heads: Vec<PlanJob> = match &options.sink {
        Some(_) => heads
            .iter()
            .map(|j| PlanJob {
                defined_at: rb
                    .manifest
                    .jobs
                    .iter()
                    .position(|m| m.id == j.id)
                    .map_or_else(String::new, |i| {
                        crate::manifest::render::job_defined_at(&rb.doc, i)
                    }),
                ..resolve::job_head(&rb.manifest, &j.id, &j.provider, j.action)
            })
            .collect(),
        None => Vec::new(),
    };
    let (sandbox, refreshed, vars) = (options.sandbox.is_some(), options.refresh, options.vars);
    let targets_asked = options.targets;
    let meta = |created_at, runbook, inputs| resolve::Meta {
        created_at,
        runbook,
        inputs,
        sandbox,
        refreshed,
        targets: targets_asked.to_vec(),
        pulled_in: pulled_in.clone(),
        vars: vars.clone(),
    };
    if let Some(sink) = options.sink.as_mut() {
        sink.begin(&resolve::plan_head(
            meta(String::new(), FileDigest::default(), Vec::new()),
            &rb.manifest,
        ));
    }
    // Made from what the action was rendered from, not parsed back from its parameters.
    let preview =
        |j: usize, what: &crate::manifest::model::Work| clients[&providers[j]].preview(what).0;
    // Kept in the plan, or handed on with its request and dropped.
    let handoff = options.sink.map(|sink| handoff::Handoff {
        sink,
        heads: &job_heads,
        preview: &preview,
    });
    let jobs = if options.refresh {
        // The reads need every item at once; the plan is resolved once they are back.
        let mut all = Vec::new();
        let jobs = rb
            .render_each(sources.as_ref(), &targets, &mut |j, rendered| {
                if let Rendered::Action(action) = rendered {
                    items::works(j, action, &|w| target(j, w), &mut |item| {
                        note_file(&item);
                        all.push(item);
                    });
                }
            })
            .map_err(PrepareError::Render)?;
        if options.await_landing {
            let (history, progress) = (options.history, options.progress);
            super::landing::wait(rb, &heads, &all, &clients, history, progress).await;
        }
        let all = Arc::new(all);
        let reads = observe::check(
            all.clone(),
            &providers,
            clients.clone(),
            limiters.clone(),
            observe::Reads {
                bulk: options.bulk_reads,
                progress: options.progress,
            },
        )
        .await;
        let unreadable = unreadable(&reads, &all, &providers);
        if !unreadable.is_empty() {
            return Err(PrepareError::Unreadable(unreadable));
        }
        // The observation tasks are done: the items are ours alone again.
        let mut all = Arc::try_unwrap(all).unwrap_or_else(|shared| (*shared).clone());
        all.reverse();
        let mut reads = reads.into_iter();
        let mut done = jobs
            .iter()
            .map(|j| resolve::plan_job(&rb.manifest, j))
            .enumerate()
            .peekable();
        handoff::placing(&mut resolver, handoff, |place| {
            while let Some(item) = all.pop() {
                items::shrink_drained(&mut all);
                // The items are in job order: the jobs before this item's are done.
                while let Some((k, head)) = done.next_if(|(k, _)| *k < item.job) {
                    place(Placed::JobDone(k, head));
                }
                place(Placed::Item(item, reads.next()));
            }
            for (k, head) in done {
                place(Placed::JobDone(k, head));
            }
        });
        jobs
    } else {
        // Nothing to read: each action is resolved as it is rendered, and what it was made
        // from is freed at once.
        handoff::placing(&mut resolver, handoff, |place| {
            rb.render_each(
                sources.as_ref(),
                &targets,
                &mut |j, rendered| match rendered {
                    Rendered::Action(action) => {
                        items::works(j, action, &|w| target(j, w), &mut |item| {
                            note_file(&item);
                            place(Placed::Item(item, None));
                        });
                    }
                    Rendered::Done(job) => {
                        place(Placed::JobDone(j, resolve::plan_job(&rb.manifest, job)));
                    }
                },
            )
        })
        .map_err(PrepareError::Render)?
    };
    debug_assert!(jobs.iter().map(|j| &j.id).eq(heads.iter().map(|j| &j.id)));
    let meta = meta(
        jiff::Timestamp::now().to_string(),
        pinned::digest(None, rb.path(), "the runbook")?,
        pinned::pinned_files(rb, &files)?,
    );
    let mut plan = resolver.finish(meta, &rb.manifest, &jobs);
    let shown = clients.clone();
    plan.previews = super::Previews::new(move |job, action| {
        // The parameters were rendered and checked by this process: they fit their action.
        crate::manifest::model::Work::from_params(job.action, action.params.get())
            .map(|work| shown[&job.provider].preview(&work).0)
            .unwrap_or_default()
    });
    Ok(Prepared {
        plan,
        clients,
        limiters,
    })
}

/// The providers whose reads failed, each with its first error.
fn unreadable(
    reads: &[observe::Read],
    items: &[items::Item],
    providers: &[String],
) -> Vec<Unreadable> {
    let mut out: Vec<Unreadable> = Vec::new();
    for (read, item) in reads.iter().zip(items) {
        let Some(Err(error)) = read else { continue };
        let provider = &providers[item.job];
        match out.iter_mut().find(|u| &u.provider == provider) {
            Some(u) => u.actions += 1,
            None => out.push(Unreadable {
                provider: provider.clone(),
                actions: 1,
                error: error.clone(),
            }),
        }
    }
    out
}
