//! Rehearsals (`--sandbox`): starts the simulator, and hands its addresses and demo credentials
//! to the clients — the one place where the sandbox and the providers meet.

use std::net::{IpAddr, Ipv4Addr};
use std::path::{Path, PathBuf};

use crate::manifest::model::ProviderType;
use crate::manifest::runbook::Runbook;
use crate::providers::SandboxEndpoints;
use crate::providers::demo::{Demo, KeyPair, Login, OtcDemo, VenafiDemo};
use crate::sandbox::{self, Kind, Scenario};

/// The scenario for `--sandbox [--scenario FILE]`: `Err` with the message to print.
///
/// # Errors
/// A scenario file that cannot be loaded.
pub fn scenario(path: Option<&Path>) -> Result<Scenario, String> {
    match path {
        Some(p) => Scenario::load(p).map_err(|e| e.to_string()),
        None => Ok(Scenario::builtin()),
    }
}

/// The simulated API of a provider type, by the name both sides give it in runbooks.
fn kind_of(t: ProviderType) -> Option<Kind> {
    let name = t.to_string();
    Kind::ALL.into_iter().find(|k| k.as_str() == name)
}

/// The first credentials of each simulated API.
#[must_use]
pub fn demo(s: &Scenario, iam_url: String) -> Demo {
    let login = |u: &sandbox::scenario::User| Login {
        username: u.username.clone(),
        password: u.password.clone(),
    };
    Demo {
        venafi: Some(VenafiDemo {
            client_id: s.venafi_tpp.clients.first().map(|c| c.client_id.clone()),
            login: s.venafi_tpp.users.first().map(login),
        }),
        digicert_api_key: s.digicert.api_keys.first().cloned(),
        vcf: s.vcf.users.first().map(login),
        otc: Some(OtcDemo {
            login: s.otc_waf.users.first().map(|u| {
                (
                    Login {
                        username: u.name.clone(),
                        password: u.password.clone(),
                    },
                    u.domain.clone(),
                )
            }),
            project: s
                .otc_waf
                .projects
                .first()
                .map(|p| (p.id.clone(), p.name.clone())),
            iam_url,
        }),
        ncloud: s.ncloud.keys.first().map(|k| KeyPair {
            access_key: k.access_key.clone(),
            secret_key: k.secret_key.clone(),
        }),
    }
}

/// The simulated world of a rehearsal, kept in its state directory between runs.
#[must_use]
pub fn world_path(state: &Path) -> PathBuf {
    state.join("world.json")
}

/// Starts the rehearsal over — its world and its journal — when asked (`--sandbox-reset`) or
/// when the scenario changed since the world was made: the journal of another world would
/// decide this one's plan. Returns what to tell the user.
///
/// # Errors
/// When the old state cannot be removed.
pub fn fresh_start(
    state: &Path,
    name: &str,
    scenario: &Scenario,
    reset: bool,
) -> std::io::Result<Option<String>> {
    let marker = state.join("scenario.sha256");
    let digest = sandbox::world::digest(scenario);
    let known = std::fs::read_to_string(&marker).ok();
    let why = match &known {
        _ if reset => Some("--sandbox-reset"),
        Some(k) if k.trim() != digest => Some("the scenario changed"),
        _ => None,
    };
    if why.is_some() {
        for file in [
            world_path(state),
            state.join(format!("{name}.journal.jsonl")),
        ] {
            match std::fs::remove_file(&file) {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(e),
                _ => {}
            }
        }
    }
    if known.as_deref().map(str::trim) != Some(digest.as_str()) {
        std::fs::create_dir_all(state)?;
        std::fs::write(&marker, format!("{digest}\n"))?;
    }
    Ok(why.map(|why| {
        format!("The rehearsal starts from the scenario again ({why}); its earlier world and journal are gone.\n")
    }))
}

/// Stops the simulator, saving its world; the warning to print when that failed.
pub async fn stop(running: sandbox::Running) -> Option<String> {
    match running.stop().await {
        sandbox::WorldSave::Failed(e) => Some(format!(
            "warning: the rehearsal's world could not be saved ({e}); the next rehearsal starts from an older one\n"
        )),
        _ => None,
    }
}

/// Starts the simulator on loopback, with the world kept at `world`, and says where each of
/// the runbook's providers is.
///
/// # Errors
/// When it cannot listen, or the world file cannot be read.
pub async fn start(
    rb: &Runbook,
    scenario: &Scenario,
    world: &Path,
) -> anyhow::Result<(sandbox::Running, SandboxEndpoints)> {
    let running = sandbox::start(
        scenario,
        sandbox::Options {
            ip: IpAddr::V4(Ipv4Addr::LOCALHOST),
            port: 0,
            world: Some(world.to_owned()),
        },
    )
    .await
    .map_err(|e| {
        anyhow::anyhow!(
            "{e}\nhint: pass --sandbox-reset to start the rehearsal from its scenario again"
        )
    })?;
    let endpoints = SandboxEndpoints {
        urls: rb
            .manifest
            .providers
            .values()
            .filter_map(|p| kind_of(p.kind).map(|k| (p.kind, running.url(k))))
            .collect(),
        demo: demo(scenario, running.iam_url()),
    };
    Ok((running, endpoints))
}
