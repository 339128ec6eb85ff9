//! Bulk observation against the independent fakes: `plan` with list reads and `plan
//! --no-bulk-reads` decide every target alike (listed, missing, ineligible, and one that a
//! change between two pages pushed off the list), while the lists cost a few pages instead of
//! one or two reads per target.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use serde_json::Value;

use super::apply::{redrive, temp_dir, text};
use super::fake::digicert::{self, Automation, DigicertFake, Status};
use super::fake::ncloud::{self, Certificate, NcloudFake};
use super::fake::venafi::{self, VenafiFake};
use super::fake::venafi_api::Cert;

/// target → (decision, reason): what apply would do with each action.
type Decisions = BTreeMap<String, (String, String)>;

/// Runs `plan --format json runbook.yaml` (with `--no-bulk-reads` unless `bulk`) in `dir` and
/// reads the decision of every action by its target.
fn plan(dir: &Path, bulk: bool, env: &[(&str, &str)]) -> Decisions {
    let mut args = vec!["plan", "--format", "json"];
    if !bulk {
        args.push("--no-bulk-reads");
    }
    args.push("runbook.yaml");
    let out = redrive(dir, &args, env);
    // 2: the plan has changes (some targets run).
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    let plan: Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("a JSON plan: {e}\n{}", text(&out)));
    let mut decisions = Decisions::new();
    let actions = plan["jobs"]
        .as_array()
        .expect("jobs")
        .iter()
        .flat_map(|j| j["actions"].as_array().expect("actions"));
    for a in actions {
        let target = a["target"].as_str().expect("a target").to_owned();
        let d = &a["decision"];
        let decision = d["decision"].as_str().expect("a decision").to_owned();
        let reason = d["reason"].as_str().unwrap_or_default().to_owned();
        let dup = decisions.insert(target.clone(), (decision, reason));
        assert!(dup.is_none(), "two actions on {target}");
    }
    decisions
}

fn write_runbook(dir: &Path, providers: &str, jobs: &str) {
    let runbook = format!("version: 1\nname: bulk\nproviders:\n{providers}jobs:\n{jobs}");
    std::fs::write(dir.join("runbook.yaml"), runbook).expect("runbook");
}

/// Plans `scenario` twice, each on a fresh fake built by `fake` (hooks included) and in its own
/// directory: with bulk reads, then without. Returns both plans and both fakes.
fn both<F>(
    name: &str,
    fake: impl Fn() -> F,
    runbook: impl Fn(&Path, &F),
    env: &[(&str, &str)],
) -> ((Decisions, F), (Decisions, F)) {
    let run = |bulk: bool| {
        let f = fake();
        let dir = temp_dir(&format!(
            "bulk-{name}-{}",
            if bulk { "list" } else { "each" }
        ));
        runbook(&dir, &f);
        (plan(&dir, bulk, env), f)
    };
    let listed = run(true);
    let each = run(false);
    (listed, each)
}

/// The decision kind of `target`.
fn kind<'a>(plan: &'a Decisions, target: &str) -> &'a str {
    plan.get(target)
        .unwrap_or_else(|| panic!("no action on {target}"))
        .0
        .as_str()
}

/// Same target set, same decision kind for each; the targets whose reasons differ in wording.
fn assert_same(listed: &Decisions, each: &Decisions) -> Vec<String> {
    assert_eq!(
        listed.keys().collect::<Vec<_>>(),
        each.keys().collect::<Vec<_>>(),
        "the same actions"
    );
    let differ: Vec<String> = listed
        .iter()
        .filter(|(t, d)| each[*t].0 != d.0)
        .map(|(t, d)| format!("{t}: bulk {d:?}, per target {:?}", each[t]))
        .collect();
    assert!(
        differ.is_empty(),
        "bulk and per-target decisions differ:\n{}",
        differ.join("\n")
    );
    listed
        .iter()
        .filter(|(t, d)| each[*t].1 != d.1)
        .map(|(t, _)| t.clone())
        .collect()
}

fn counts(plan: &Decisions) -> BTreeMap<&str, usize> {
    let mut out = BTreeMap::new();
    for (decision, _) in plan.values() {
        *out.entry(decision.as_str()).or_default() += 1;
    }
    out
}

// ---------------------------------------------------------------------------------------------
// Venafi TPP

const TPP_FOLDER: &str = r"\VED\Policy\Bulk";
/// More than one search page (`Limit=1000`).
const TPP_IN_ERROR: usize = 1100;

fn tpp_dn(name: &str) -> String {
    format!(r"{TPP_FOLDER}\{name}")
}

fn tpp_name(n: usize) -> String {
    format!("c{n:04}.example.com")
}

/// 1,100 certificates in error under one folder, one healthy, one being processed (not in
/// error, a stage and a status), one in error in another folder (not a target), and a hook:
/// right after the first search page `c0010` (on page 1) leaves error, so page 2 starts one
/// later and `c1000`, which was first on page 2, is on no page at all.
fn tpp_fake() -> VenafiFake {
    let mut b = VenafiFake::builder();
    for n in 0..TPP_IN_ERROR {
        b = b.certificate(Cert::new(&tpp_dn(&tpp_name(n))));
    }
    let mut processing = Cert::new(&tpp_dn("processing.example.com"));
    (processing.in_error, processing.stage, processing.status) =
        (false, 300, "Retrying.".to_owned());
    let fake = b
        .certificate(Cert::new(&tpp_dn("healthy.example.com")).healthy())
        .certificate(processing)
        .certificate(Cert::new(r"\VED\Policy\Elsewhere\other.example.com"))
        .spawn_thread();
    fake.fix_after_page(1, &tpp_dn(&tpp_name(10)));
    fake
}

fn tpp_runbook(dir: &Path, fake: &VenafiFake) {
    let mut names: Vec<String> = (0..TPP_IN_ERROR).map(tpp_name).collect();
    names.extend(["healthy", "processing", "missing"].map(|n| format!("{n}.example.com")));
    let providers = format!(
        "  tpp:\n    type: venafi_tpp\n    url: {}\n    auth: {{client_id: redrive, username: svc-redrive, password: {{env: TPP_PASSWORD}}}}\n",
        fake.base_url()
    );
    let jobs = format!(
        "  - id: retry\n    provider: tpp\n    action: retry_certificate\n    for_each: [{}]\n    with: {{certificate_dn: '{TPP_FOLDER}\\{{{{ item }}}}'}}\n",
        names.join(", ")
    );
    write_runbook(dir, &providers, &jobs);
}

/// The DNs the client looked up one by one (`Config/DnToGuid`): the per-target checks.
fn tpp_checked(fake: &VenafiFake) -> BTreeSet<String> {
    fake.log()
        .matching("POST", "/vedsdk/Config/DnToGuid")
        .iter()
        .filter_map(|r| Some(r.body_json()?["ObjectDN"].as_str()?.to_owned()))
        .collect()
}

#[test]
fn venafi_search_pages_decide_like_one_check_per_certificate() {
    let ((listed, bulk), (each, single)) = both(
        "venafi",
        tpp_fake,
        tpp_runbook,
        &[("TPP_PASSWORD", "sandbox")],
    );
    let reworded = assert_same(&listed, &each);
    assert!(reworded.is_empty(), "reasons differ for {reworded:?}");
    assert_eq!(listed.len(), TPP_IN_ERROR + 3);
    // Listed on page 1 before it left error; per target it was never changed (no search ran).
    assert_eq!(kind(&listed, &tpp_dn(&tpp_name(10))), "run");
    // Pushed off both pages by the change: its own check still finds it in error.
    assert_eq!(kind(&listed, &tpp_dn(&tpp_name(1000))), "run");
    assert_eq!(kind(&listed, &tpp_dn("healthy.example.com")), "skip");
    let processing = &listed[&tpp_dn("processing.example.com")];
    assert_eq!(processing.0, "skip");
    assert!(processing.1.contains("being processed"), "{processing:?}");
    let missing = &listed[&tpp_dn("missing.example.com")];
    assert_eq!(missing.0, "blocked");
    assert!(missing.1.contains("no such certificate"), "{missing:?}");
    assert_eq!(
        counts(&listed),
        BTreeMap::from([("blocked", 1), ("run", TPP_IN_ERROR), ("skip", 2)])
    );

    // Bulk: two search pages, then a check (DnToGuid, then the certificate) only for what they
    // did not show; the missing one stops at DnToGuid.
    assert_eq!(bulk.pending_changes(), 0, "the change ran after page 1");
    assert_eq!(bulk.requests(venafi::SEARCH), 2);
    let fallback: BTreeSet<String> = [
        tpp_name(1000),
        "healthy.example.com".into(),
        "processing.example.com".into(),
        "missing.example.com".into(),
    ]
    .iter()
    .map(|n| tpp_dn(n))
    .collect();
    assert_eq!(tpp_checked(&bulk), fallback);
    assert_eq!(bulk.requests(venafi::DN_TO_GUID), 4);
    assert_eq!(bulk.requests(venafi::DETAILS), 3);
    assert_eq!(bulk.requests(venafi::OAUTH), 1);
    let searches = bulk.log().matching("GET", "/vedsdk/Certificates/");
    for s in &searches {
        let q = s.query.as_deref().unwrap_or_default();
        assert!(
            q.contains("ParentDnRecursive=%5Cved%5Cpolicy%5Cbulk") && q.contains("InError=true"),
            "{q}"
        );
    }
    let offsets: Vec<bool> = ["Offset=0", "Offset=1000"]
        .iter()
        .map(|o| searches.iter().any(|s| s.target().contains(o)))
        .collect();
    assert_eq!(offsets, [true, true], "pages at offsets 0 and 1000");

    // Per target: two reads each (one for the missing one), no search; the hook never ran.
    assert_eq!(single.requests(venafi::SEARCH), 0);
    assert_eq!(single.pending_changes(), 1);
    assert_eq!(single.requests(venafi::DN_TO_GUID), TPP_IN_ERROR + 3);
    assert_eq!(single.requests(venafi::DETAILS), TPP_IN_ERROR + 2);
    assert_eq!(single.requests(venafi::OAUTH), 1);
}

// ---------------------------------------------------------------------------------------------
// DigiCert

const DC_ACCOUNT: u64 = 5_153_184;
/// More than one list page (512).
const DC_FAILED: u64 = 600;

fn dc_ip(id: u64) -> String {
    format!("10.3.{}.{}", id / 250, id % 250)
}

/// 600 failed automations on distinct `ip:port`, then one renewed (601), one scheduled (602),
/// one ACTION_REQUIRED that DigiCert will not retry (603), one ACTION_REQUIRED it will (604),
/// one CONFIGURED (605); the last three need their details view. Hook: after list page 1,
/// automation 550 (on page 2) gets scheduled.
fn dc_fake() -> DigicertFake {
    // The fake's documented 100/5 s would make 600 per-target reads take 30 s.
    let mut b = DigicertFake::builder().limits(&[]);
    for id in 1..=DC_FAILED {
        b = b.automation(Automation::new(id, &dc_ip(id), 443).status(Status::AutomationFailed));
    }
    let extra = [
        (601, Status::SuccessfullyRenewed, None),
        (602, Status::AutomationScheduled, None),
        (603, Status::ActionRequired, Some(false)),
        (604, Status::ActionRequired, Some(true)),
        (605, Status::Configured, None),
    ];
    for (id, status, applicable) in extra {
        let mut a = Automation::new(id, &dc_ip(id), 443).status(status);
        if let Some(yes) = applicable {
            a = a.retry_applicable(yes);
        }
        b = b.automation(a);
    }
    let fake = b.spawn_thread();
    fake.set_status_after_page(1, 550, Status::AutomationScheduled);
    fake
}

fn dc_runbook(dir: &Path, fake: &DigicertFake) {
    let mut targets: Vec<String> = (1..=605)
        .map(|id| format!("{{ip: {}, port: 443}}", dc_ip(id)))
        .collect();
    targets.push("{ip: 10.9.9.9, port: 443}".into());
    // A rate well above what the plan sends: the test measures requests, not pacing.
    let providers = format!(
        "  dc:\n    type: digicert\n    url: {}\n    auth: {{api_key: {{env: DC_KEY}}}}\n    limits: {{concurrency: 8, rate: 100000/1s}}\n",
        fake.base_url()
    );
    let jobs = format!(
        "  - id: bulk\n    provider: dc\n    action: bulk_retry_automation\n    with: {{account_id: {DC_ACCOUNT}, division_id: 677793, targets: [{}]}}\n",
        targets.join(", ")
    );
    write_runbook(dir, &providers, &jobs);
}

/// The automations whose details view the client read.
fn dc_detailed(fake: &DigicertFake) -> BTreeSet<u64> {
    fake.log()
        .matching("POST", "/automationws/v1/automation/viewAutomationDetails")
        .iter()
        .filter_map(|r| r.body_json()?["automationId"].as_u64())
        .collect()
}

#[test]
fn digicert_list_pages_decide_like_one_details_view_per_automation() {
    let ((listed, bulk), (each, single)) = both(
        "digicert",
        dc_fake,
        dc_runbook,
        &[("DC_KEY", "test-devkey")],
    );
    let reworded = assert_same(&listed, &each);
    let at = |id: u64| format!("{}:443", dc_ip(id));
    assert_eq!(listed.len(), 606);
    assert_eq!(kind(&listed, &at(1)), "run");
    assert_eq!(kind(&listed, &at(DC_FAILED)), "run");
    // Scheduled after page 1: page 2 and its details view both show it.
    assert_eq!(kind(&listed, &at(550)), "skip");
    assert_eq!(kind(&listed, &at(601)), "skip");
    assert_eq!(kind(&listed, &at(602)), "skip");
    assert_eq!(kind(&listed, &at(603)), "blocked");
    assert_eq!(kind(&listed, &at(604)), "run");
    assert_eq!(kind(&listed, &at(605)), "blocked");
    let missing = &listed["10.9.9.9:443"];
    assert_eq!(missing.0, "blocked");
    assert!(
        missing.1.contains("no automation at 10.9.9.9:443"),
        "{missing:?}"
    );
    assert_eq!(
        counts(&listed),
        BTreeMap::from([("blocked", 3), ("run", 600), ("skip", 3)])
    );
    // The list spells SUCCESSFULLY_RENEWED, the details view SUCCESFULLY_RENEWED (sic): only
    // that reason's wording may differ.
    assert!(
        reworded.iter().all(|t| *t == at(601)),
        "reasons differ for {reworded:?}"
    );

    // Bulk: the two list pages, then details only for statuses the list cannot decide; the
    // missing target is settled from the same list, without a request.
    assert_eq!(bulk.pending_changes(), 0);
    assert_eq!(bulk.requests(digicert::LIST), 2);
    assert_eq!(dc_detailed(&bulk), BTreeSet::from([603, 604, 605]));
    assert_eq!(bulk.requests(digicert::DETAILS), 3);
    // Per target: the list once (for the ids), then one details view per located target.
    assert_eq!(single.pending_changes(), 0);
    assert_eq!(single.requests(digicert::LIST), 2);
    assert_eq!(single.requests(digicert::DETAILS), 605);
    assert_eq!(bulk.rate_limited() + single.rate_limited(), 0);
}

// ---------------------------------------------------------------------------------------------
// NAVER Cloud

/// Certificates to reissue: more than one list page (100).
const NCP_FAILED: u64 = 150;
/// A certificate of the account that no target names, first in the list.
const NCP_OTHER: u64 = 900;
const NCP_MISSING: u64 = 999;

/// A non-target certificate, then 150 VALIDATION_FAILED ones, one ONGOING (151), one REVOKE
/// (152), one NORMAL (153). Hooks after page 1: the non-target certificate is deleted (every
/// later one moves up, so 100, first on page 2, is on no page) and 150 (page 2) becomes
/// ONGOING. Per target, 150 is checked long after the first list answer (8 at a time, in
/// order), so both paths see it ONGOING.
fn ncp_fake() -> NcloudFake {
    let cert = |no: u64, code: i32| {
        Certificate::new(no, &format!("cert-{no}"), &format!("c{no}.example.co.kr")).status(code)
    };
    let mut b = NcloudFake::builder().certificate(cert(NCP_OTHER, -3));
    for no in 1..=NCP_FAILED {
        b = b.certificate(cert(no, -3));
    }
    let fake = b
        .certificate(cert(151, 0))
        .certificate(cert(152, -5))
        .certificate(cert(153, 1))
        .spawn_thread();
    fake.after_page(1, |certs| certs.retain(|c| c.certificate_no != NCP_OTHER));
    fake.set_status_after_page(1, NCP_FAILED, 0);
    fake
}

fn ncp_runbook(dir: &Path, fake: &NcloudFake) {
    let mut nos: Vec<String> = (1..=153).map(|n: u64| n.to_string()).collect();
    nos.push(NCP_MISSING.to_string());
    let providers = format!(
        "  ncp:\n    type: ncloud\n    url: {}\n    auth: {{access_key: {{env: NCP_AK}}, secret_key: {{env: NCP_SK}}}}\n",
        fake.base_url()
    );
    let jobs = format!(
        "  - id: reissue\n    provider: ncp\n    action: reissue_certificate\n    for_each: [{}]\n    with: {{certificate_no: '{{{{ item }}}}', csr: \"-----BEGIN CERTIFICATE REQUEST-----\\nMIIB\\n-----END CERTIFICATE REQUEST-----\\n\", certificate_name: 'cert-{{{{ item }}}}', common_name: 'c{{{{ item }}}}.example.co.kr'}}\n",
        nos.join(", ")
    );
    write_runbook(dir, &providers, &jobs);
}

/// `certificateName` of every name-filtered list request: the per-target lookups.
fn ncp_looked_up(fake: &NcloudFake) -> Vec<String> {
    let mut names: Vec<String> = fake
        .log()
        .matching("GET", "/api/v2/certificate/certificates")
        .iter()
        .filter_map(|r| {
            let q = r.query.as_deref()?;
            let (_, name) = q.split_once("certificateName=")?;
            Some(name.split('&').next().unwrap_or(name).to_owned())
        })
        .collect();
    names.sort();
    names
}

#[test]
fn ncloud_list_pages_decide_like_one_lookup_per_certificate() {
    let env = [
        ("NCP_AK", "EXAMPLEACCESSKEY0001"),
        ("NCP_SK", "EXAMPLESECRETKEY000000000000000000000001"),
    ];
    let ((listed, bulk), (each, single)) = both("ncloud", ncp_fake, ncp_runbook, &env);
    let ncp = |no: &str| format!("certificate {no}");
    let reworded = assert_same(&listed, &each);
    assert!(reworded.is_empty(), "reasons differ for {reworded:?}");
    assert_eq!(listed.len(), 154);
    assert_eq!(kind(&listed, &ncp("1")), "run");
    // Pushed off both pages by the deletion: its own lookup finds it.
    assert_eq!(kind(&listed, &ncp("100")), "run");
    assert_eq!(kind(&listed, &ncp(&NCP_FAILED.to_string())), "blocked");
    assert!(
        listed[&ncp("151")].1.contains("ONGOING"),
        "{:?}",
        listed[&ncp("151")]
    );
    assert!(
        listed[&ncp("152")].1.contains("REVOKE"),
        "{:?}",
        listed[&ncp("152")]
    );
    assert_eq!(kind(&listed, &ncp("153")), "run");
    let missing = &listed[&ncp(&NCP_MISSING.to_string())];
    assert_eq!(missing.0, "blocked");
    assert!(missing.1.contains("no certificate 999"), "{missing:?}");
    assert_eq!(
        counts(&listed),
        BTreeMap::from([("blocked", 4), ("run", 150)])
    );

    // Bulk: two pages, then a lookup by name for 100 (found at once) and for the missing one
    // (by name, then both pages of the whole list).
    assert_eq!(bulk.pending_changes(), 0);
    assert_eq!(ncp_looked_up(&bulk), ["cert-100", "cert-999"]);
    assert_eq!(bulk.requests(ncloud::LIST_V2), 2 + 1 + 3);
    // Per target: one lookup by name each, three for the missing one.
    assert_eq!(single.pending_changes(), 0);
    assert_eq!(ncp_looked_up(&single).len(), 154);
    assert_eq!(single.requests(ncloud::LIST_V2), 153 + 3);
    assert_eq!(
        bulk.requests(ncloud::REISSUE) + single.requests(ncloud::REISSUE),
        0
    );
}

/// An automation deleted after the first list page moves every later one up a place, so the
/// first of page 2 is on no page: the changed total makes the client read the list again rather
/// than hold that target back as missing.
#[test]
fn digicert_reads_a_shifted_list_again() {
    let fake = || {
        let mut b = DigicertFake::builder().limits(&[]);
        // Not a target, first in the list.
        b = b.automation(Automation::new(9000, "10.8.8.8", 443).status(Status::AutomationFailed));
        for id in 1..=DC_FAILED {
            b = b.automation(Automation::new(id, &dc_ip(id), 443).status(Status::AutomationFailed));
        }
        let fake = b.spawn_thread();
        fake.after_page(1, |all| all.retain(|a| a.automation_id != 9000));
        fake
    };
    let runbook = |dir: &Path, fake: &DigicertFake| {
        let targets: Vec<String> = (1..=DC_FAILED)
            .map(|id| format!("{{ip: {}, port: 443}}", dc_ip(id)))
            .collect();
        let providers = format!(
            "  dc:\n    type: digicert\n    url: {}\n    auth: {{api_key: {{env: DC_KEY}}}}\n    limits: {{concurrency: 8, rate: 100000/1s}}\n",
            fake.base_url()
        );
        let jobs = format!(
            "  - id: bulk\n    provider: dc\n    action: bulk_retry_automation\n    with: {{account_id: {DC_ACCOUNT}, division_id: 677793, targets: [{}]}}\n",
            targets.join(", ")
        );
        write_runbook(dir, &providers, &jobs);
    };
    let ((listed, bulk), (each, single)) = both(
        "digicert-shift",
        fake,
        runbook,
        &[("DC_KEY", "test-devkey")],
    );
    assert_same(&listed, &each);
    let shifted = format!("{}:443", dc_ip(512));
    assert_eq!(kind(&listed, &shifted), "run");
    assert_eq!(counts(&listed), BTreeMap::from([("run", 600)]));
    // Two pages whose totals differ, then two that agree.
    assert_eq!(bulk.requests(digicert::LIST), 4);
    assert_eq!(single.requests(digicert::LIST), 4);
}
