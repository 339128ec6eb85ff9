//! Hostile servers against the real binary: a redirector that tries to pull credentials to
//! another origin (`origins`), an echo that sends every request back (`echoes`), and a second
//! apply of the same runbook from a copy (`identity_lock`). The runbooks here point each
//! provider type, with each of its auth kinds, at one URL and take planted canary secrets
//! from the environment.

mod echoes;
mod identity_lock;
mod origins;

use std::path::Path;
use std::process::Output;

/// Planted secrets, by environment variable: none may show up anywhere.
pub(crate) const CANARIES: [(&str, &str); 13] = [
    ("CANARY_TPP_PASSWORD", "cnry-tpp-password-7f3a91"),
    ("CANARY_TPP_ACCESS", "cnry-tpp-access-token-52be0c"),
    ("CANARY_TPP_REFRESH", "cnry-tpp-refresh-token-a41d77"),
    ("CANARY_DC_KEY", "cnry-digicert-key-90ce13"),
    ("CANARY_VCF_PASSWORD", "cnry-vcf-password-3b8e2f"),
    ("CANARY_VCF_KEY", "cnry-vcf-apikey-e1f004"),
    ("CANARY_OTC_PASSWORD", "cnry-otc-password-6d2c88"),
    ("CANARY_OTC_TOKEN", "cnry-otc-token-0c9a5b"),
    ("CANARY_NCP_AK", "CNRYNCPACCESSKEY0001"),
    ("CANARY_NCP_SK", "cnry-ncp-secret-key-4411aa"),
    ("CANARY_BEARER", "cnry-http-bearer-8a7b6c"),
    ("CANARY_HEADER", "cnry-http-header-secret-19f0e2"),
    ("CANARY_BASIC", "cnry-http-basic-password-77d1c3"),
];

/// The secret of the job-level header in the `http` runbooks.
pub(crate) const CUSTOM: (&str, &str) = ("CANARY_CUSTOM", "cnry-custom-header-secret-5e5e5e");

/// Every value that must not leak: the canaries, the custom header's secret and the Basic
/// credential as it travels (base64 of `user:password`).
pub(crate) fn secrets() -> Vec<String> {
    use base64::Engine as _;
    let mut out: Vec<String> = CANARIES.iter().map(|(_, v)| (*v).to_owned()).collect();
    out.push(CUSTOM.1.to_owned());
    out.push(
        base64::engine::general_purpose::STANDARD.encode(format!("svc-basic:{}", CANARIES[12].1)),
    );
    out
}

/// One provider type with one auth kind, as a runbook pointed at `url`.
pub(crate) struct Case {
    pub name: &'static str,
    pub providers: &'static str,
    pub jobs: &'static str,
}

const NCP_JOB: &str = "  - id: j\n    provider: p\n    action: reissue_certificate\n    with: {certificate_no: 1, csr: \"-----BEGIN CERTIFICATE REQUEST-----\\nMIIB\\n-----END CERTIFICATE REQUEST-----\\n\", certificate_name: one, common_name: one.example.co.kr}\n";

pub(crate) const CASES: [Case; 11] = [
    Case {
        name: "venafi-password",
        providers: "type: venafi_tpp\n    auth: {username: svc-redrive, password: {env: CANARY_TPP_PASSWORD}}",
        jobs: "  - id: j\n    provider: p\n    action: retry_certificate\n    with: {certificate_dn: '\\VED\\Policy\\A\\a.example.com'}\n",
    },
    Case {
        name: "venafi-tokens",
        providers: "type: venafi_tpp\n    auth: {access_token: {env: CANARY_TPP_ACCESS}, refresh_token: {env: CANARY_TPP_REFRESH}}",
        jobs: "  - id: j\n    provider: p\n    action: retry_certificate\n    with: {certificate_dn: '\\VED\\Policy\\A\\a.example.com'}\n",
    },
    Case {
        name: "digicert",
        providers: "type: digicert\n    auth: {api_key: {env: CANARY_DC_KEY}}",
        jobs: "  - id: j\n    provider: p\n    action: bulk_retry_automation\n    with: {account_id: 5153184, targets: [{ip: 10.1.1.1, port: 443}]}\n",
    },
    Case {
        name: "vcf-password",
        providers: "type: vcf\n    auth: {username: administrator@vsphere.local, password: {env: CANARY_VCF_PASSWORD}}",
        jobs: "  - id: j\n    provider: p\n    action: retry_credentials_task\n    with: {task_id: 7b9e2c1a-3d4f-4e5a-8b6c-1d2e3f4a5b6c, operation_type: ROTATE, elements: [{resource_type: ESXI, credentials: [{username: root}]}]}\n",
    },
    Case {
        name: "vcf-api-key",
        providers: "type: vcf\n    auth: {api_key: {env: CANARY_VCF_KEY}}",
        jobs: "  - id: j\n    provider: p\n    action: retry_credentials_task\n    with: {task_id: 7b9e2c1a-3d4f-4e5a-8b6c-1d2e3f4a5b6c, operation_type: ROTATE, elements: [{resource_type: ESXI, credentials: [{username: root}]}]}\n",
    },
    Case {
        name: "otc-password",
        providers: "type: otc_waf\n    auth: {iam_url: '@URL@/v3', project_id: 0a3f9b6c1e2d4f5a8b7c6d5e4f3a2b1c, project_name: eu-de, domain: d, username: u, password: {env: CANARY_OTC_PASSWORD}}\n  ncp:\n    type: ncloud\n    url: '@URL@'\n    auth: {access_key: {env: CANARY_NCP_AK}, secret_key: {env: CANARY_NCP_SK}}\nsources:\n  waf:\n    provider: p\n    type: certificates\n    with: {exp_status: 2}",
        jobs: "  - id: j\n    provider: ncp\n    action: reissue_certificate\n    for_each: \"{{ sources.waf }}\"\n    with: {certificate_no: 1, csr: \"-----BEGIN CERTIFICATE REQUEST-----\\nMIIB\\n-----END CERTIFICATE REQUEST-----\\n\", certificate_name: '{{ item.name }}', common_name: one.example.co.kr}\n",
    },
    Case {
        name: "otc-token",
        providers: "type: otc_waf\n    auth: {project_id: 0a3f9b6c1e2d4f5a8b7c6d5e4f3a2b1c, token: {env: CANARY_OTC_TOKEN}}\n  ncp:\n    type: ncloud\n    url: '@URL@'\n    auth: {access_key: {env: CANARY_NCP_AK}, secret_key: {env: CANARY_NCP_SK}}\nsources:\n  waf:\n    provider: p\n    type: certificates\n    with: {exp_status: 2}",
        jobs: "  - id: j\n    provider: ncp\n    action: reissue_certificate\n    for_each: \"{{ sources.waf }}\"\n    with: {certificate_no: 1, csr: \"-----BEGIN CERTIFICATE REQUEST-----\\nMIIB\\n-----END CERTIFICATE REQUEST-----\\n\", certificate_name: '{{ item.name }}', common_name: one.example.co.kr}\n",
    },
    Case {
        name: "ncloud",
        providers: "type: ncloud\n    auth: {access_key: {env: CANARY_NCP_AK}, secret_key: {env: CANARY_NCP_SK}}",
        jobs: NCP_JOB,
    },
    Case {
        name: "http-bearer",
        providers: "type: http\n    auth: {bearer: {env: CANARY_BEARER}}",
        jobs: "  - id: j\n    provider: p\n    action: http\n    with: {method: POST, url: /things, headers: {X-Custom-Secret: {env: CANARY_CUSTOM}}, body: {a: 1}}\n",
    },
    Case {
        name: "http-header",
        providers: "type: http\n    auth: {header: {name: X-Api-Secret, value: {env: CANARY_HEADER}}}",
        jobs: "  - id: j\n    provider: p\n    action: http\n    with: {method: PUT, url: things/1, body: {a: 1}}\n",
    },
    Case {
        name: "http-basic",
        providers: "type: http\n    auth: {basic: {username: svc-basic, password: {env: CANARY_BASIC}}}",
        jobs: "  - id: j\n    provider: p\n    action: http\n    with: {method: GET, url: /things}\n",
    },
];

/// Writes `case` pointed at `url` into a fresh folder as `runbook.yaml` (named `name`).
pub(crate) fn write(case: &Case, url: &str, folder: &str, name: &str) -> std::path::PathBuf {
    let dir = crate::apply::temp_dir(folder);
    // The `ncp` provider and the IAM endpoint of the OTC cases are on the same server.
    let providers = case.providers.replace("@URL@", url);
    let text = format!(
        "version: 1\nname: {name}\ndefaults: {{retry: {{attempts: 2, initial_delay: 10ms, max_delay: 20ms}}}}\nproviders:\n  p:\n    url: {url}\n    timeout: 5s\n    {providers}\njobs:\n{}",
        case.jobs
    );
    std::fs::write(dir.join("runbook.yaml"), text).expect("write the runbook");
    dir
}

/// Runs the binary in `dir` with every canary in its environment.
pub(crate) fn run(dir: &Path, args: &[&str]) -> Output {
    let mut env: Vec<(&str, &str)> = CANARIES.to_vec();
    env.push(CUSTOM);
    crate::apply::redrive(dir, args, &env)
}
