//! Work: what one plan action acts on — the rendered parameters of one action, or one target of
//! a bulk action (DigiCert's endpoint takes many targets; each is planned, decided and journaled
//! on its own and batched again when sent).

use serde_json::Value;

use super::{ActionKind, ActionParams, AutomationTarget, BulkRetryAutomation};

/// Parameters (of a saved or rendered plan) that do not fit their action.
#[derive(Debug, Clone, thiserror::Error)]
#[error("the parameters do not fit `{kind}`: {detail}")]
pub struct ParamsError {
    pub kind: ActionKind,
    pub detail: String,
}

#[derive(Debug, Clone)]
pub enum Work {
    Single(ActionParams),
    /// One target of a bulk action.
    Bulk {
        action: BulkRetryAutomation,
        // Boxed: a target is several optional strings, and a plan holds one item per target.
        target: Box<AutomationTarget>,
    },
}

impl ActionParams {
    /// The works of one rendered action: itself, or one per target of a bulk action.
    #[must_use]
    pub fn into_works(self) -> Vec<Work> {
        match self {
            Self::BulkRetryAutomation(bulk) => bulk
                .targets
                .iter()
                .map(|t| Work::Bulk {
                    action: bulk.clone(),
                    target: Box::new(t.clone()),
                })
                .collect(),
            other => vec![Work::Single(other)],
        }
    }

    /// How many works it makes.
    #[must_use]
    pub fn works(&self) -> usize {
        match self {
            Self::BulkRetryAutomation(bulk) => bulk.targets.len(),
            _ => 1,
        }
    }
}

impl Work {
    /// The one work a plan action's parameters (JSON text) stand for (a bulk action's carry one
    /// target).
    ///
    /// # Errors
    /// Parameters that do not fit the action, or a bulk action without exactly one target.
    pub fn from_params(kind: ActionKind, text: &str) -> Result<Self, ParamsError> {
        let params =
            ActionParams::from_json(kind, text).map_err(|detail| ParamsError { kind, detail })?;
        let mut works = params.into_works();
        match (works.len(), works.pop()) {
            (1, Some(work)) => Ok(work),
            (n, _) => Err(ParamsError {
                kind,
                detail: format!("a plan action stands for one target, not {n}"),
            }),
        }
    }

    /// The parameters apply needs, as JSON: a bulk target as a bulk action of that one target.
    #[must_use]
    pub fn params(&self) -> Value {
        match self {
            Self::Single(p) => serde_json::to_value(p).unwrap_or(Value::Null),
            Self::Bulk { action, target } => {
                let mut v = serde_json::to_value(action).unwrap_or(Value::Null);
                if let Some(obj) = v.as_object_mut() {
                    obj.insert(
                        "targets".into(),
                        Value::Array(vec![serde_json::to_value(target).unwrap_or(Value::Null)]),
                    );
                }
                v
            }
        }
    }

    /// [`Work::params`] as compact JSON text, without building the value first for a single
    /// action (the plan keeps the text).
    #[must_use]
    pub fn params_raw(&self) -> Box<serde_json::value::RawValue> {
        let raw = match self {
            Self::Single(p) => serde_json::value::to_raw_value(p),
            Self::Bulk { .. } => serde_json::value::to_raw_value(&self.params()),
        };
        raw.expect("parameters serialize")
    }

    /// The single action's parameters, if it is one.
    #[must_use]
    pub fn single(&self) -> Option<&ActionParams> {
        match self {
            Self::Single(p) => Some(p),
            Self::Bulk { .. } => None,
        }
    }

    /// The bulk action and its target, if it is one.
    #[must_use]
    pub fn bulk(&self) -> Option<(&BulkRetryAutomation, &AutomationTarget)> {
        match self {
            Self::Bulk { action, target } => Some((action, target)),
            Self::Single(_) => None,
        }
    }

    /// The file the action reads at send time (a CSR), relative to the runbook.
    #[must_use]
    pub fn file(&self) -> Option<&str> {
        self.single().and_then(ActionParams::file)
    }

    /// What tells this action apart besides its target: an `http` request's body (two requests
    /// to one URL are one action only when they would send the same thing).
    #[must_use]
    pub fn identity(&self) -> Option<String> {
        match self {
            Self::Single(ActionParams::Http(r)) => {
                Some(r.body.as_ref().map_or_else(String::new, |b| {
                    serde_json::to_string(b).unwrap_or_default()
                }))
            }
            _ => None,
        }
    }

    /// The typed parameters of each kind of action, for the provider that owns it.
    #[must_use]
    pub fn retry_certificate(&self) -> Option<&super::RetryCertificate> {
        match self.single() {
            Some(ActionParams::RetryCertificate(a)) => Some(a),
            _ => None,
        }
    }

    #[must_use]
    pub fn retry_credentials_task(&self) -> Option<&super::RetryCredentialsTask> {
        match self.single() {
            Some(ActionParams::RetryCredentialsTask(a)) => Some(a),
            _ => None,
        }
    }

    #[must_use]
    pub fn reissue_certificate(&self) -> Option<&super::ReissueCertificate> {
        match self.single() {
            Some(ActionParams::ReissueCertificate(a)) => Some(a),
            _ => None,
        }
    }

    #[must_use]
    pub fn http(&self) -> Option<&super::HttpRequest> {
        match self.single() {
            Some(ActionParams::Http(a)) => Some(a),
            _ => None,
        }
    }
}
