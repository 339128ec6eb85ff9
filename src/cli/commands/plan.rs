//! `redrive plan FILE`: reads the providers' state and shows what apply would send, as a diff
//! (text), a versioned document (JSON) or a pull-request comment (Markdown); `--out` saves it.

use std::net::{IpAddr, Ipv4Addr};
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context as _;
use indexmap::IndexMap;

use crate::exit::ExitStatus;
use crate::manifest::model::ProviderType;
use crate::manifest::runbook::Runbook;
use crate::plan::{self, Plan, file, items, markdown, observe, resolve, text};
use crate::providers::{self, Client, SandboxEndpoints};
use crate::sandbox::{self, Kind, Scenario};
use crate::ui::printer::Printer;

/// How to print the plan.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum PlanFormat {
    Text,
    Json,
    Markdown,
}

/// Everything `redrive plan` was asked.
pub type Request = crate::cli::args::PlanArgs;

pub fn run(request: &Request, printer: &mut Printer) -> anyhow::Result<ExitStatus> {
    let Some(rb) = super::load_runbook(&request.file, printer)? else {
        return Ok(ExitStatus::Invalid);
    };
    if let Some(status) = super::check_targets(&rb, &request.targets, printer)? {
        return Ok(status);
    }
    let scenario = match (&request.scenario, request.sandbox) {
        (Some(_), false) => {
            printer.note("error: `--scenario` only applies with `--sandbox`\n")?;
            return Ok(ExitStatus::Invalid);
        }
        (Some(path), true) => match Scenario::load(path) {
            Ok(s) => Some(s),
            Err(e) => {
                printer.note(&format!("error: {e}\n"))?;
                return Ok(ExitStatus::Invalid);
            }
        },
        (None, true) => Some(Scenario::builtin()),
        (None, false) => None,
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    let prepared = runtime.block_on(async {
        let prepared = prepare(
            &rb,
            &request.targets,
            request.refresh,
            scenario.as_ref(),
            printer,
        )
        .await?;
        anyhow::Ok(prepared)
    })?;
    let Some(prepared) = prepared else {
        return Ok(ExitStatus::Invalid);
    };
    let plan = prepared.plan;
    if let Some(r) = prepared.running {
        runtime.block_on(r.stop());
    }
    if let Some(out) = &request.out {
        file::save(&plan, out)
            .with_context(|| format!("cannot write the plan to {}", out.display()))?;
        printer.note(&format!("Saved the plan to {}.\n", out.display()))?;
    }
    match request.format {
        PlanFormat::Text => {
            let color = printer.color();
            text::render_to(&plan, color, &mut |chunk| printer.data(chunk))?;
        }
        PlanFormat::Json => printer.data(&format!("{}\n", serde_json::to_string_pretty(&plan)?))?,
        PlanFormat::Markdown => {
            printer.data(&markdown::render(&plan, markdown::GITHUB_COMMENT_LIMIT))?;
        }
    }
    Ok(if plan.has_changes() {
        ExitStatus::Changes
    } else {
        ExitStatus::Success
    })
}

fn kind_of(t: ProviderType) -> Option<Kind> {
    Some(match t {
        ProviderType::VenafiTpp => Kind::VenafiTpp,
        ProviderType::Digicert => Kind::Digicert,
        ProviderType::Vcf => Kind::Vcf,
        ProviderType::OtcWaf => Kind::OtcWaf,
        ProviderType::Ncloud => Kind::Ncloud,
        ProviderType::Http => return None,
    })
}

/// The clients of every provider, pointed at the sandbox when it runs.
fn clients(
    rb: &Runbook,
    sandbox: Option<&SandboxEndpoints>,
) -> anyhow::Result<IndexMap<String, Client>> {
    let cx = rb.context();
    let mut out = IndexMap::new();
    for (name, p) in &rb.manifest.providers {
        let url = match (sandbox, &p.url) {
            (Some(s), _) if s.urls.contains_key(&p.kind) => String::new(),
            // Never contacted: rehearsals block generic requests (see `prepare`).
            (Some(_), _) if p.kind == ProviderType::Http => "http://127.0.0.1:9".to_owned(),
            (_, Some(url)) => cx.render_text(url).map_err(|e| {
                anyhow::anyhow!(
                    "provider `{name}`: its url `{url}` cannot be rendered: {e}\nhint: set the environment variables it reads (listed under `env:`), or plan against the simulator with --sandbox"
                )
            })?,
            (_, None) => anyhow::bail!("provider `{name}` has no url"),
        };
        out.insert(
            name.clone(),
            providers::build(name, p, &url, rb.dir(), sandbox)?,
        );
    }
    Ok(out)
}

/// A plan with what it took to make it: the clients (and the sandbox) apply goes on with.
pub struct Prepared {
    pub plan: Plan,
    pub clients: Arc<IndexMap<String, Client>>,
    pub limiters: Arc<IndexMap<String, crate::limits::Limiter>>,
    pub running: Option<sandbox::Running>,
}

/// Starts the sandbox if asked, builds the clients, reads the sources, renders and observes:
/// `None` after printing the diagnostics of a runbook that does not render.
///
/// # Errors
/// A provider or sandbox that cannot be set up, or sources that cannot be read.
pub async fn prepare(
    rb: &Runbook,
    targets: &[String],
    refresh: bool,
    scenario: Option<&Scenario>,
    printer: &mut Printer,
) -> anyhow::Result<Option<Prepared>> {
    let running = match scenario {
        Some(s) => Some(
            sandbox::start(
                s,
                sandbox::Options {
                    ip: IpAddr::V4(Ipv4Addr::LOCALHOST),
                    port: 0,
                    world: None,
                },
            )
            .await?,
        ),
        None => None,
    };
    let endpoints = match (&running, scenario) {
        (Some(r), Some(s)) => Some(SandboxEndpoints {
            urls: rb
                .manifest
                .providers
                .values()
                .filter_map(|p| kind_of(p.kind).map(|k| (p.kind, r.url(k))))
                .collect(),
            otc_iam_url: r.iam_url(),
            scenario: s.clone(),
        }),
        _ => None,
    };
    let clients = Arc::new(clients(rb, endpoints.as_ref())?);
    let needs_sources = !rb.manifest.sources.is_empty();
    let sources = if needs_sources {
        Some(
            observe::sources(&rb.manifest, &clients)
                .await
                .context("cannot read the runbook's sources")?,
        )
    } else {
        None
    };
    let mut jobs = match rb.render(sources.as_ref(), targets) {
        Ok(jobs) => jobs,
        Err(problems) => {
            super::report(&problems, printer)?;
            return Ok(None);
        }
    };
    let all = Arc::new(items::expand(&mut jobs));
    let providers: Vec<String> = jobs.iter().map(|j| j.provider.clone()).collect();
    let limiters: Arc<IndexMap<String, crate::limits::Limiter>> = Arc::new(
        rb.manifest
            .providers
            .iter()
            .map(|(name, p)| {
                let limits = p.limits.as_ref().or(rb.manifest.defaults.limits.as_ref());
                (name.clone(), crate::limits::Limiter::new(limits))
            })
            .collect(),
    );
    let reads = if refresh {
        observe::check(all.clone(), &providers, clients.clone(), limiters.clone()).await
    } else {
        Vec::new()
    };
    let meta = resolve::Meta {
        created_at: jiff::Timestamp::now().to_string(),
        runbook: file::file_digest(None, rb.path())?,
        inputs: input_digests(rb)?,
        sandbox: running.is_some(),
        refreshed: refresh,
    };
    // The observation tasks are done: the items are ours alone again.
    let all = Arc::try_unwrap(all).unwrap_or_else(|shared| (*shared).clone());
    let mut plan = resolve::resolve(meta, &rb.manifest, &jobs, all, reads, |item| {
        observe::preview(&clients[&providers[item.job]], &item.what)
    });
    if running.is_some() {
        // The sandbox simulates the five APIs only: a generic request would go to the real
        // endpoint of a rehearsal.
        for job in plan.jobs.iter_mut().filter(|j| j.provider_type == "http") {
            for a in job
                .actions
                .iter_mut()
                .filter(|a| a.decision == plan::Decision::Run)
            {
                a.decision = plan::Decision::Blocked(
                    "the sandbox does not simulate generic http providers; not sent in a rehearsal"
                        .into(),
                );
            }
        }
        plan.recount();
    }
    Ok(Some(Prepared {
        plan,
        clients,
        limiters,
        running,
    }))
}

fn input_digests(rb: &Runbook) -> anyhow::Result<Vec<plan::FileDigest>> {
    rb.manifest
        .inputs
        .iter()
        .map(|(name, spec)| {
            let path: PathBuf = rb.dir().join(&spec.file);
            file::file_digest(Some(name), &path)
                .with_context(|| format!("cannot read input `{name}` ({})", path.display()))
        })
        .collect()
}
