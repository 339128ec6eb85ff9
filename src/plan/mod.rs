//! The plan: what apply would send, action by action, and why each one is in or out.
//!
//! `items` expands rendered jobs into one item per target (pure), `observe` runs the read-only
//! provider checks (async), `resolve` turns both into the immutable [`Plan`] (pure), and `text`,
//! `markdown` and `file` present and store it.

pub mod compare;
pub mod describe;
pub mod file;
#[cfg(test)]
pub mod fixture;
mod handoff;
pub mod items;
pub mod landing;
pub mod line;
pub mod markdown;
pub mod observe;
mod pinned;
pub mod prepare;
pub mod resolve;

use indexmap::IndexMap;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use serde_json::value::RawValue;

use crate::providers::{Idempotency, RequestPreview};

/// Bumped on any incompatible change of the JSON plan.
pub const FORMAT_VERSION: u32 = 1;

/// Where the published plan schema lives.
pub const SCHEMA_ID: &str = "https://redrive.dev/schemas/plan.schema.json";

/// The JSON Schema of `redrive plan --format json` and of saved plans, as committed in
/// `schemas/plan.schema.json`.
#[must_use]
pub fn schema_text() -> String {
    let generator = schemars::generate::SchemaSettings::draft2020_12().into_generator();
    let mut schema = generator.into_root_schema_for::<Plan>().to_value();
    crate::schema_formats::standardize(&mut schema);
    if let Some(obj) = schema.as_object_mut() {
        obj.insert("$id".into(), Value::String(SCHEMA_ID.into()));
    }
    let mut text = serde_json::to_string_pretty(&schema).expect("a schema serializes");
    text.push('\n');
    text
}

/// A plan: ordered jobs, each with its ordered actions.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct Plan {
    pub format_version: u32,
    /// `redrive <version>`.
    pub tool: String,
    /// The runbook's `name`.
    pub name: String,
    /// Planned against the sandbox instead of the runbook's endpoints.
    pub sandbox: bool,
    /// Whether the providers' state was read (`--refresh=false` skips it).
    pub refreshed: bool,
    /// `--target` as given (empty: every job).
    #[serde(skip_serializing_if = "Vec::is_empty", default)]
    pub targets: Vec<String>,
    /// Jobs planned because a `--target` job needs them.
    #[serde(skip_serializing_if = "Vec::is_empty", default)]
    pub pulled_in: Vec<String>,
    /// Runbook vars set on the command line (`--var`, `--var-file`): part of what the plan was
    /// rendered from, so apply of the saved plan renders with them again.
    #[serde(skip_serializing_if = "IndexMap::is_empty", default)]
    pub vars: IndexMap<String, Value>,
    // Written before what is only known once every action is: a plan is written as it is
    // made, and a reader does not depend on the order of fields.
    pub jobs: Vec<PlanJob>,
    pub created_at: String,
    pub runbook: FileDigest,
    pub inputs: Vec<FileDigest>,
    pub summary: Summary,
    /// Builds the request previews of a plan made in this process, which holds none: they are
    /// written as the plan is shown, not kept for a million actions. Empty for a loaded plan,
    /// whose actions carry theirs.
    #[serde(skip)]
    #[schemars(skip)]
    pub previews: Previews,
}

/// How a fresh plan's request previews are made: from the job and the action's parameters.
type PreviewFn = dyn Fn(&PlanJob, &PlanAction) -> RequestPreview + Send + Sync;

/// See [`Plan::previews`].
#[derive(Clone, Default)]
pub struct Previews(Option<std::sync::Arc<PreviewFn>>);

impl Previews {
    #[must_use]
    pub fn new(
        f: impl Fn(&PlanJob, &PlanAction) -> RequestPreview + Send + Sync + 'static,
    ) -> Self {
        Self(Some(std::sync::Arc::new(f)))
    }
}

impl std::fmt::Debug for Previews {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(if self.0.is_some() {
            "Previews(made on demand)"
        } else {
            "Previews(none)"
        })
    }
}

/// A file the plan depends on and its SHA-256.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct FileDigest {
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub name: Option<String>,
    pub path: String,
    pub sha256: String,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Summary {
    pub run: usize,
    pub unchanged: usize,
    pub blocked: usize,
}

impl Summary {
    /// `Plan: 12 to run, 3 unchanged, 1 blocked.`
    #[must_use]
    pub fn sentence(&self) -> String {
        format!(
            "Plan: {} to run, {} unchanged, {} blocked.",
            self.run, self.unchanged, self.blocked
        )
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct PlanJob {
    pub id: String,
    pub provider: String,
    pub provider_type: String,
    pub action: crate::manifest::model::ActionKind,
    /// `file:line:col` of the job in the runbook.
    pub defined_at: String,
    #[serde(skip_serializing_if = "Vec::is_empty", default)]
    pub needs: Vec<String>,
    // Boxed: apply frees each action as soon as it has ended, not the whole job at its end.
    pub actions: Vec<Box<PlanAction>>,
    /// Items `when` filtered out (after the actions: known once the job is rendered).
    #[serde(skip_serializing_if = "is_zero", default)]
    pub filtered_by_when: usize,
}

impl PlanJob {
    /// The job without its actions (for writing them one by one).
    #[must_use]
    pub fn head(&self) -> Self {
        Self {
            id: self.id.clone(),
            provider: self.provider.clone(),
            provider_type: self.provider_type.clone(),
            action: self.action,
            defined_at: self.defined_at.clone(),
            needs: self.needs.clone(),
            filtered_by_when: self.filtered_by_when,
            actions: Vec::new(),
        }
    }
}

fn is_zero(n: &usize) -> bool {
    *n == 0
}

/// An action's stable id: the first 64 bits of a digest of provider, action and target,
/// written as 16 lowercase hex digits. Kept as the number: a plan of a million actions does
/// not hold a million id strings.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ActionId(pub u64);

impl ActionId {
    /// The 16 hex digits, made without the formatting machinery: a plan writes a million.
    fn hex(self) -> [u8; 16] {
        const DIGITS: &[u8; 16] = b"0123456789abcdef";
        let mut out = [0u8; 16];
        for (i, digit) in out.iter_mut().enumerate() {
            *digit = DIGITS[((self.0 >> (60 - 4 * i)) & 0xf) as usize];
        }
        out
    }

    /// The 16 hex digits as a string, as `to_string` makes it but cheaper.
    #[must_use]
    pub fn text(self) -> String {
        String::from_utf8(self.hex().to_vec()).expect("hex digits are ASCII")
    }
}

impl std::fmt::Display for ActionId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(std::str::from_utf8(&self.hex()).expect("hex digits are ASCII"))
    }
}

impl std::fmt::Debug for ActionId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{self}")
    }
}

impl std::str::FromStr for ActionId {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        // Exactly the form redrive writes, so one action has one spelling.
        let hex = |c: u8| c.is_ascii_digit() || (b'a'..=b'f').contains(&c);
        if text.len() != 16 || !text.bytes().all(hex) {
            return Err(format!(
                "`{text}` is not an action id (16 lowercase hex digits)"
            ));
        }
        u64::from_str_radix(text, 16)
            .map(Self)
            .map_err(|e| e.to_string())
    }
}

impl Serialize for ActionId {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(std::str::from_utf8(&self.hex()).expect("hex digits are ASCII"))
    }
}

impl<'de> Deserialize<'de> for ActionId {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

/// One action: one target of one job.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct PlanAction {
    /// Stable: a digest of provider, action and target.
    #[schemars(with = "String")]
    pub id: ActionId,
    /// Position in `for_each` (or in a bulk action's targets).
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub index: Option<usize>,
    /// What the action is about: a DN, an `ip:port`, a task id, a certificate number, a URL.
    pub target: String,
    pub decision: Decision,
    pub idempotency: Idempotency,
    // Always written; absent in memory for a plan made here (see `Plan::request`): 8 bytes an
    // action instead of 56.
    #[schemars(with = "RequestPreview")]
    pub request: Option<Box<RequestPreview>>,
    /// Facts the read-only check found (shown in the diff).
    // Kept as JSON text: a plan holds one set per action, and a small map costs several
    // times its text in memory.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    #[schemars(with = "Option<serde_json::Map<String, Value>>")]
    pub observed: Option<Box<RawValue>>,
    /// The rendered parameters, as apply will use them.
    // JSON text, for the same reason.
    #[schemars(with = "Value")]
    pub params: Box<RawValue>,
    /// How an earlier apply of this action ended, when it failed or its outcome is unknown:
    /// running it now is a re-run (`~` in the diff).
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub previous: Option<String>,
}

/// What apply will do with an action.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(tag = "decision", content = "reason", rename_all = "snake_case")]
pub enum Decision {
    /// Send it.
    Run,
    /// Nothing to do: already converged (the reason says how we know).
    Skip(String),
    /// Not eligible: sending would fail or do harm (the reason says why).
    Blocked(String),
}

impl PlanAction {
    /// The observed facts as a map.
    #[must_use]
    pub fn observed(&self) -> serde_json::Map<String, Value> {
        self.observed
            .as_ref()
            .and_then(|o| serde_json::from_str(o.get()).ok())
            .unwrap_or_default()
    }
}

impl Plan {
    /// Counts the decisions again after some changed.
    pub fn recount(&mut self) {
        self.summary = Summary::default();
        for a in self.jobs.iter().flat_map(|j| &j.actions) {
            match a.decision {
                Decision::Run => self.summary.run += 1,
                Decision::Skip(_) => self.summary.unchanged += 1,
                Decision::Blocked(_) => self.summary.blocked += 1,
            }
        }
    }

    /// The plan without request previews and observed facts: they were for review, and a
    /// 100,000-action run need not hold every request body twice over.
    #[must_use]
    pub fn without_previews(mut self) -> Self {
        self.previews = Previews::default();
        for a in self.jobs.iter_mut().flat_map(|j| j.actions.iter_mut()) {
            a.request = None;
            a.observed = None;
        }
        self
    }

    /// The plan without its jobs (for writing them one by one).
    #[must_use]
    pub fn head(&self) -> Self {
        Self {
            format_version: self.format_version,
            tool: self.tool.clone(),
            created_at: self.created_at.clone(),
            runbook: self.runbook.clone(),
            name: self.name.clone(),
            inputs: self.inputs.clone(),
            sandbox: self.sandbox,
            refreshed: self.refreshed,
            targets: self.targets.clone(),
            pulled_in: self.pulled_in.clone(),
            vars: self.vars.clone(),
            summary: self.summary,
            jobs: Vec::new(),
            previews: Previews::default(),
        }
    }

    /// The request an action would send: the one it carries, or for a plan made here, made
    /// now.
    #[must_use]
    pub fn request<'a>(
        &self,
        job: &PlanJob,
        action: &'a PlanAction,
    ) -> std::borrow::Cow<'a, RequestPreview> {
        match (&action.request, &self.previews.0) {
            (Some(request), _) => std::borrow::Cow::Borrowed(&**request),
            (None, Some(make)) => std::borrow::Cow::Owned(make(job, action)),
            (None, None) => std::borrow::Cow::Owned(RequestPreview::default()),
        }
    }

    /// Whether apply would send anything.
    #[must_use]
    pub fn has_changes(&self) -> bool {
        self.summary.run > 0
    }
}
