//! `redrive sandbox`: runs the five simulated providers on loopback until interrupted, after
//! printing their URLs and the scenario's demo credentials.

use std::fmt::Write as _;
use std::net::{IpAddr, Ipv4Addr};
use std::path::Path;

use anyhow::Context;
use serde_json::json;

use crate::cli::args::DiagnosticFormat;
use crate::exit::ExitStatus;
use crate::sandbox::{self, Kind, Running, Scenario};
use crate::ui::printer::Printer;

/// What `redrive sandbox` was asked for.
pub struct Settings<'a> {
    pub scenario_file: Option<&'a Path>,
    pub port: u16,
    pub format: DiagnosticFormat,
    pub world: Option<&'a Path>,
    /// Delete the world file before starting.
    pub reset: bool,
}

pub fn run(settings: &Settings<'_>, printer: &mut Printer) -> anyhow::Result<ExitStatus> {
    let (port, format) = (settings.port, settings.format);
    let (scenario, origin) = match settings.scenario_file {
        Some(path) => match Scenario::load(path) {
            Ok(s) => (s, path.display().to_string()),
            Err(e) => {
                printer.note(&format!(
                    "error: {e}\nhint: `redrive schema --scenario` prints the scenario schema; examples/sandbox/default.yaml is a complete example\n"
                ))?;
                return Ok(ExitStatus::Invalid);
            }
        },
        None => (
            Scenario::builtin(),
            "built-in (examples/sandbox/default.yaml)".to_owned(),
        ),
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    if let (Some(path), true) = (settings.world, settings.reset) {
        sandbox::world::reset(path)?;
    }
    runtime.block_on(async {
        let options = sandbox::Options {
            ip: IpAddr::V4(Ipv4Addr::LOCALHOST),
            port,
            world: settings.world.map(Path::to_path_buf),
        };
        let running = match sandbox::start(&scenario, options).await {
            Ok(running) => running,
            Err(sandbox::StartError::World(e)) => {
                printer.note(&format!(
                    "error: {e}\nhint: `--reset` deletes it and starts from the scenario\n"
                ))?;
                return Ok(ExitStatus::Failure);
            }
            Err(e) => anyhow::bail!("{e}; pick other ports with --port N (0 for any free ones)"),
        };
        if let Some(note) = running.world_origin().note() {
            printer.note(&format!("{note}\n"))?;
        }
        match format {
            DiagnosticFormat::Text => printer.data(&banner(&running, &scenario, &origin))?,
            DiagnosticFormat::Json => {
                let mut line = serde_json::to_string(&urls(&running))?;
                line.push('\n');
                printer.data(&line)?;
            }
        }
        printer.note("Serving until Ctrl-C.\n")?;
        wait_for_interrupt().await?;
        printer.note("Stopping the sandbox.\n")?;
        match running.stop().await {
            sandbox::WorldSave::NotKept => Ok(ExitStatus::Success),
            sandbox::WorldSave::Saved(path) => {
                printer.note(&format!("sandbox world saved to {}\n", path.display()))?;
                Ok(ExitStatus::Success)
            }
            sandbox::WorldSave::Failed(e) => {
                printer.note(&format!("error: {e}\n"))?;
                Ok(ExitStatus::Failure)
            }
        }
    })
}

async fn wait_for_interrupt() -> anyhow::Result<()> {
    #[cfg(unix)]
    {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
            .context("cannot listen for SIGTERM")?;
        tokio::select! {
            r = tokio::signal::ctrl_c() => r.context("cannot listen for Ctrl-C")?,
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    tokio::signal::ctrl_c()
        .await
        .context("cannot listen for Ctrl-C")?;
    Ok(())
}

fn urls(running: &Running) -> serde_json::Value {
    let mut providers = serde_json::Map::new();
    for kind in Kind::ALL {
        providers.insert(kind.as_str().into(), json!(running.url(kind)));
    }
    json!({
        "providers": providers,
        "otc_iam_url": running.iam_url(),
        "stats": format!("http://{}/_sandbox/stats", running.addr(Kind::VenafiTpp)),
        "state": format!("http://{}/_sandbox/state", running.addr(Kind::VenafiTpp)),
    })
}

fn banner(running: &Running, s: &Scenario, origin: &str) -> String {
    let first_user = |users: &[sandbox::scenario::User]| {
        users.first().map_or_else(
            || "(no users)".to_owned(),
            |u| format!("user {} / password {}", u.username, u.password),
        )
    };
    let venafi = format!(
        "client_id {}, {}",
        s.venafi_tpp
            .clients
            .first()
            .map_or("(none)", |c| c.client_id.as_str()),
        first_user(&s.venafi_tpp.users)
    );
    let digicert = format!(
        "X-DC-DEVKEY {}, accountId {}",
        s.digicert.api_keys.first().map_or("(none)", String::as_str),
        s.digicert.account_id
    );
    let vcf = first_user(&s.vcf.users);
    let otc = s.otc_waf.users.first().map_or_else(
        || "(no users)".to_owned(),
        |u| {
            format!(
                "iam_url {}, user {} / password {}, domain {}, project {}",
                running.iam_url(),
                u.name,
                u.password,
                u.domain,
                s.otc_waf.projects.first().map_or("", |p| p.id.as_str())
            )
        },
    );
    let ncloud = s.ncloud.keys.first().map_or_else(
        || "(no keys)".to_owned(),
        |k| format!("access key {}, secret key {}", k.access_key, k.secret_key),
    );
    let mut out = format!("redrive sandbox: scenario {origin}, seed {}\n\n", s.seed);
    for (kind, creds) in [
        (Kind::VenafiTpp, venafi),
        (Kind::Digicert, digicert),
        (Kind::Vcf, vcf),
        (Kind::OtcWaf, otc),
        (Kind::Ncloud, ncloud),
    ] {
        let _ = writeln!(
            out,
            "  {:<11} {:<42} {creds}",
            kind.as_str(),
            running.url(kind)
        );
    }
    let _ = writeln!(
        out,
        "\nEvery listener also answers GET /_sandbox/stats and GET /_sandbox/state, e.g.\n  curl -s http://{}/_sandbox/stats",
        running.addr(Kind::VenafiTpp)
    );
    out
}
