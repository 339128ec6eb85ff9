//! Plans for unit tests: `plan(&[2, 0, 1])` has three jobs of two, no and one action.

use super::{ActionId, Decision, FileDigest, Plan, PlanAction, PlanJob, Summary};
use crate::providers::{Idempotency, RequestPreview};

pub fn action(n: u64) -> Box<PlanAction> {
    Box::new(PlanAction {
        id: ActionId(n),
        index: Some(usize::try_from(n).expect("small")),
        target: format!("t{n}"),
        decision: Decision::Skip("done".into()),
        idempotency: Idempotency::Convergent,
        request: Some(Box::new(RequestPreview::default())),
        observed: None,
        params: serde_json::value::to_raw_value(&serde_json::json!({"n": n})).expect("JSON"),
        previous: None,
    })
}

pub fn plan(actions: &[usize]) -> Plan {
    let jobs = actions
        .iter()
        .enumerate()
        .map(|(j, &n)| PlanJob {
            id: format!("j{j}"),
            provider: "p".into(),
            provider_type: "venafi_tpp".into(),
            // By name: only the model and the registry name kinds in code.
            action: serde_json::from_str("\"retry_certificate\"").expect("an action kind"),
            defined_at: "r.yaml:1:1".into(),
            needs: Vec::new(),
            filtered_by_when: 0,
            actions: (0..n as u64).map(action).collect(),
        })
        .collect();
    Plan {
        format_version: super::FORMAT_VERSION,
        tool: "redrive test".into(),
        created_at: "now".into(),
        runbook: FileDigest {
            name: None,
            path: "r.yaml".into(),
            sha256: "00".into(),
        },
        name: "t".into(),
        inputs: Vec::new(),
        sandbox: false,
        refreshed: false,
        targets: Vec::new(),
        pulled_in: Vec::new(),
        vars: indexmap::IndexMap::new(),
        summary: Summary::default(),
        jobs,
        previews: super::Previews::default(),
    }
}
