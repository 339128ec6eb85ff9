//! How VCF shows a task: the tasks API's form and the credentials API's, with sub-tasks, errors
//! on the resource that failed, and the scenario's status casing.

use serde_json::{Value, json};

use super::{Sim, Status, Task};
use crate::rng;
use crate::sandbox::reply;
use crate::sandbox::scenario::StatusCase;

impl Sim {
    fn task_status(&self, status: Status) -> &'static str {
        match self.status_case {
            StatusCase::Upper => status.upper(),
            StatusCase::Title => status.title(),
            // What the real API mixes: upper case while pending and when failed, title case otherwise.
            StatusCase::Mixed => match status {
                Status::Pending | Status::Failed => status.upper(),
                _ => status.title(),
            },
        }
    }

    fn errors_of(task: &Task) -> Vec<Value> {
        if task.status != Status::Failed {
            return Vec::new();
        }
        vec![json!({
            "errorCode": task.error.code,
            "errorType": "ERROR",
            "arguments": [],
            "context": {},
            "message": task.error.message,
            "remediationMessage": task.error.remediation,
            "causes": [],
            "nestedErrors": [],
            "referenceToken": format!("{:06X}", rng::hash(0, &[task.id.as_bytes()]) & 0xFF_FFFF),
        })]
    }

    /// Index of the resource the failure is about (named in the message), else the first.
    fn failing_resource(task: &Task) -> usize {
        task.resources
            .iter()
            .position(|r| task.error.message.contains(&r.name))
            .unwrap_or(0)
    }

    /// A failed task failed on one resource; the others went through.
    fn resource_status(task: &Task, index: usize, failing: usize) -> Status {
        match task.status {
            Status::Failed if index == failing => Status::Failed,
            Status::Failed => Status::Successful,
            s => s,
        }
    }

    fn completed(task: &Task, body: &mut Value) {
        if let Some(done) = task.completed.filter(|_| !task.status.running()) {
            body["completionTimestamp"] = json!(reply::iso(done));
        }
    }

    pub(super) fn task_json(&self, task: &Task) -> Value {
        let failing = Self::failing_resource(task);
        let sub_tasks: Vec<Value> = task
            .resources
            .iter()
            .enumerate()
            .map(|(i, r)| {
                let status = Self::resource_status(task, i, failing);
                json!({
                    "name": format!("{} {} password of {}", task.operation_type, r.credential_type, r.name),
                    "type": format!("CREDENTIALS_{}", task.operation_type),
                    "description": format!("{} the {} password of {} on {}", task.operation_type.to_lowercase(), r.credential_type, r.username, r.name),
                    "status": status.upper(),
                    "creationTimestamp": reply::iso(task.created),
                    "errors": if status == Status::Failed { Self::errors_of(task) } else { Vec::new() },
                    "resources": [{"resourceId": rng::uuid(self.seed, &[b"vcf-resource", r.name.as_bytes()]), "fqdn": r.name, "type": r.kind, "name": r.name}],
                })
            })
            .collect();
        let mut body = json!({
            "id": task.id,
            "name": task.name,
            "localizableDescriptionPack": {
                "component": "CredentialsManager",
                "messageKey": format!("credentials.{}", task.operation_type.to_lowercase()),
                "arguments": [],
                "message": task.name,
            },
            "type": format!("CREDENTIALS_{}", task.operation_type),
            "status": self.task_status(task.status),
            "creationTimestamp": reply::iso(task.created),
            "subTasks": sub_tasks,
            "errors": Self::errors_of(task),
            "resources": task.resources.iter().map(|r| json!({"resourceId": rng::uuid(self.seed, &[b"vcf-resource", r.name.as_bytes()]), "fqdn": r.name, "type": r.kind, "name": r.name})).collect::<Vec<_>>(),
            "resolutionStatus": if task.status == Status::Failed { "UNRESOLVED" } else { "RESOLVED" },
            "isCancellable": task.status.running(),
            "isRetryable": task.status == Status::Failed && task.retryable,
        });
        Self::completed(task, &mut body);
        body
    }

    pub(super) fn credentials_task_json(&self, task: &Task) -> Value {
        let failing = Self::failing_resource(task);
        let sub_tasks: Vec<Value> = task
            .resources
            .iter()
            .enumerate()
            .map(|(i, r)| {
                let status = Self::resource_status(task, i, failing);
                json!({
                    "id": rng::uuid(self.seed, &[b"vcf-subtask", task.id.as_bytes(), r.name.as_bytes()]),
                    "resourceName": r.name,
                    "name": format!("{} {}", task.operation_type, r.name),
                    "description": format!("{} the {} password of {}", task.operation_type.to_lowercase(), r.credential_type, r.username),
                    "status": status.upper(),
                    "dependentSubTasks": [],
                    "errors": if status == Status::Failed { Self::errors_of(task) } else { Vec::new() },
                    "entityType": r.kind,
                    "username": r.username,
                    "credentialType": r.credential_type,
                })
            })
            .collect();
        let mut body = json!({
            "id": task.id,
            "name": task.name,
            "type": task.operation_type,
            "status": task.status.upper(),
            "creationTimestamp": reply::iso(task.created),
            "isAutoRotate": false,
            "subTasks": sub_tasks,
            "errors": Self::errors_of(task),
        });
        Self::completed(task, &mut body);
        body
    }
}
