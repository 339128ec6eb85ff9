//! Which credential combinations make sense for each provider type; the schema only checks
//! each field's shape, so a password without a username passes it.

use serde_json::Value;

use crate::manifest::model::{
    DigicertAuth, HttpAuth, NcloudAuth, OtcAuth, ProviderType, VcfAuth, VenafiAuth,
};

pub(super) fn auth_help(kind: ProviderType) -> &'static str {
    match kind {
        ProviderType::VenafiTpp => {
            "`auth: {username: svc-redrive, password: {env: TPP_PASSWORD}}`, or `auth: {access_token: {env: TPP_TOKEN}}`"
        }
        ProviderType::Digicert => "`auth: {api_key: {env: DIGICERT_API_KEY}}`",
        ProviderType::Vcf => {
            "`auth: {username: admin@local, password: {env: VCF_PASSWORD}}`, or `auth: {api_key: {env: VCF_API_KEY}}`"
        }
        ProviderType::OtcWaf => {
            "`auth: {project_id: …, domain: …, username: …, password: {env: OTC_PASSWORD}}`, or `auth: {project_id: …, token: {env: OTC_TOKEN}}`"
        }
        ProviderType::Ncloud => {
            "`auth: {access_key: {env: NCLOUD_ACCESS_KEY}, secret_key: {env: NCLOUD_SECRET_KEY}}`"
        }
        ProviderType::Http => {
            "`auth: {bearer: {env: API_TOKEN}}`, `{basic: {username: …, password: {env: …}}}` or `{header: {name: X-Api-Key, value: {env: …}}}`"
        }
    }
}

/// Which credential combinations make sense; the schema only checks each field's shape.
pub(super) fn auth_mode(kind: ProviderType, auth: &Value) -> Option<String> {
    let parse = |v: &Value| -> Option<String> {
        let r = match kind {
            ProviderType::VenafiTpp => serde_json::from_value::<VenafiAuth>(v.clone()).map(|a| {
                match (
                    a.username.is_some() && a.password.is_some(),
                    a.access_token.is_some(),
                ) {
                    (true, true) => Some(
                        "give either `username` + `password` or `access_token`, not both"
                            .to_owned(),
                    ),
                    (false, false) if a.username.is_some() => {
                        Some("`username` needs a `password`".to_owned())
                    }
                    (false, false) if a.password.is_some() => {
                        Some("`password` needs a `username`".to_owned())
                    }
                    (false, false) => Some(
                        "no credentials: give `username` + `password`, or `access_token`"
                            .to_owned(),
                    ),
                    _ if a.refresh_token.is_some() && a.access_token.is_none() => {
                        Some("`refresh_token` goes with `access_token`".to_owned())
                    }
                    _ => None,
                }
            }),
            ProviderType::Digicert => {
                serde_json::from_value::<DigicertAuth>(v.clone()).map(|_| None)
            }
            ProviderType::Vcf => serde_json::from_value::<VcfAuth>(v.clone()).map(|a| {
                match (
                    a.username.is_some(),
                    a.password.is_some(),
                    a.api_key.is_some(),
                ) {
                    (true, true, false) | (false, false, true) => None,
                    (_, _, true) => Some(
                        "give either `username` + `password` or `api_key`, not both".to_owned(),
                    ),
                    (true, false, _) => Some("`username` needs a `password`".to_owned()),
                    (false, true, _) => Some("`password` needs a `username`".to_owned()),
                    (false, false, false) => Some(
                        "no credentials: give `username` + `password`, or `api_key`".to_owned(),
                    ),
                }
            }),
            ProviderType::OtcWaf => serde_json::from_value::<OtcAuth>(v.clone()).map(|a| {
                let password = a.username.is_some() || a.password.is_some() || a.domain.is_some();
                match (password, a.token.is_some()) {
                    (true, true) => {
                        Some("give either a password login or `token`, not both".to_owned())
                    }
                    (false, false) => Some(
                        "no credentials: give `username`, `password` and `domain`, or `token`"
                            .to_owned(),
                    ),
                    (true, false)
                        if a.username.is_none() || a.password.is_none() || a.domain.is_none() =>
                    {
                        Some(
                            "a password login needs `username`, `password` and `domain`".to_owned(),
                        )
                    }
                    _ => None,
                }
            }),
            ProviderType::Ncloud => serde_json::from_value::<NcloudAuth>(v.clone()).map(|_| None),
            ProviderType::Http => serde_json::from_value::<HttpAuth>(v.clone()).map(|a| {
                let n = [a.bearer.is_some(), a.basic.is_some(), a.header.is_some()]
                    .iter()
                    .filter(|b| **b)
                    .count();
                (n > 1).then(|| "give one of `bearer`, `basic` or `header`".to_owned())
            }),
        };
        // A shape error was already reported by the schema check.
        r.ok().flatten()
    };
    parse(auth)
}
