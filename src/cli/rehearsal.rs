//! Rehearsals (`--sandbox`): starts the simulator, and hands its addresses and demo credentials
//! to the clients — the one place where the sandbox and the providers meet.

use std::net::{IpAddr, Ipv4Addr};
use std::path::Path;

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

/// Starts the simulator on loopback and says where each of the runbook's providers is.
///
/// # Errors
/// When it cannot listen.
pub async fn start(
    rb: &Runbook,
    scenario: &Scenario,
) -> anyhow::Result<(sandbox::Running, SandboxEndpoints)> {
    let running = sandbox::start(
        scenario,
        sandbox::Options {
            ip: IpAddr::V4(Ipv4Addr::LOCALHOST),
            port: 0,
        },
    )
    .await?;
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
