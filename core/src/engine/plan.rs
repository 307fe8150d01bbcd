//! The plan: one data type, saved as JSON, rendered as text, JSON or Markdown.

use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::BTreeMap;

/// Version of the plan's JSON shape (`--out plan.json`, `--format json`); see
/// `docs/plan-json.md`. Bumped on any change that could break a reader.
pub const PLAN_FORMAT_VERSION: u32 = 1;

/// What happens to one resource.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Action {
    /// Made anew.
    Create,
    /// Changed in place.
    Update,
    /// Deleted, then made anew (an attribute that cannot change in place changed).
    Replace,
    /// Deleted.
    Delete,
    /// Left alone.
    NoOp,
}

impl Action {
    /// The word for it.
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Create => "create",
            Action::Update => "update",
            Action::Replace => "replace",
            Action::Delete => "delete",
            Action::NoOp => "no-op",
        }
    }

    /// The one-character marker used in text and Markdown (`+`, `~`, `-/+`, `-`).
    pub fn symbol(self) -> &'static str {
        match self {
            Action::Create => "+",
            Action::Update => "~",
            Action::Replace => "-/+",
            Action::Delete => "-",
            Action::NoOp => " ",
        }
    }
}

/// A value as a plan shows it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", content = "value", rename_all = "lowercase")]
pub enum PlanValue {
    /// A value known now.
    Known(Value),
    /// Known only after apply (it comes from a resource being created or replaced).
    Unknown,
    /// A secret, or derived from one: never shown.
    Sensitive,
}

/// One attribute path that changes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AttributeChange {
    /// Dotted path: `memory`, `environment.DB_HOST`.
    pub path: String,
    /// The value before (absent for a new attribute).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub before: Option<PlanValue>,
    /// The value after (absent for a removed attribute).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub after: Option<PlanValue>,
    /// This change is why the resource is replaced.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub forces_replacement: bool,
}

/// Changes made outside ferry, found by refreshing.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Drift {
    /// The resource no longer exists.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub gone: bool,
    /// Recorded value → live value, per path.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub changes: Vec<AttributeChange>,
}

/// What the plan does to one resource.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ResourceChange {
    /// Address.
    pub address: String,
    /// The provider's type.
    pub kind: String,
    /// The action.
    pub action: Action,
    /// The function it belongs to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub function: Option<String>,
    /// Attribute-level before → after (only the paths that change).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub changes: Vec<AttributeChange>,
    /// Set when the live resource differs from the state: the change puts it back.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub drift: Option<Drift>,
    /// What must be applied first (for a delete: what it depended on).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub depends_on: Vec<String>,
    /// Salted hash of the desired resource, checked again at apply time.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub desired_hash: Option<String>,
}

/// The counts of a plan, Terraform's way: a replacement counts as one add and one destroy.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Summary {
    /// Creates and replacements.
    pub add: usize,
    /// Updates.
    pub change: usize,
    /// Deletes and replacements.
    pub destroy: usize,
    /// Replacements alone.
    pub replace: usize,
    /// Resources left alone.
    pub no_op: usize,
    /// Resources that drifted.
    pub drift: usize,
}

impl Summary {
    /// Counts the changes.
    pub fn of(changes: &[ResourceChange]) -> Self {
        let mut s = Summary::default();
        for c in changes {
            match c.action {
                Action::Create => s.add += 1,
                Action::Update => s.change += 1,
                Action::Replace => {
                    s.add += 1;
                    s.destroy += 1;
                    s.replace += 1
                }
                Action::Delete => s.destroy += 1,
                Action::NoOp => s.no_op += 1,
            }
            if c.drift.is_some() {
                s.drift += 1;
            }
        }
        s
    }

    /// True when applying would change something.
    pub fn has_changes(&self) -> bool {
        self.add + self.change + self.destroy > 0
    }

    /// `Plan: 2 to add, 1 to change, 0 to destroy.`
    pub fn line(&self) -> String {
        format!(
            "Plan: {} to add, {} to change, {} to destroy.",
            self.add, self.change, self.destroy
        )
    }
}

/// The state a plan was made against.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StateRef {
    /// State lineage.
    pub lineage: String,
    /// State serial.
    pub serial: u64,
}

/// A plan: what apply would do, and what it was computed from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Plan {
    /// [`PLAN_FORMAT_VERSION`].
    pub format_version: u32,
    /// The ferry that made it.
    pub ferry_version: String,
    /// Service name.
    pub service: String,
    /// Stage.
    pub stage: String,
    /// Provider.
    pub provider: String,
    /// A destroy plan (`ferry plan --destroy`, `ferry remove`).
    pub destroy: bool,
    /// `--target` functions (empty: everything).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub targets: Vec<String>,
    /// Whether live resources were read (`--refresh=false` plans from state alone).
    pub refreshed: bool,
    /// Whether sensitive values were revealed on request; such a plan holds secrets.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub sensitive_revealed: bool,
    /// The state it was made against (`None`: no state yet).
    pub state: Option<StateRef>,
    /// Salted hash of the service model.
    pub manifest_hash: String,
    /// Function → sha256 of its package.
    #[serde(default)]
    pub artifacts: BTreeMap<String, String>,
    /// Salt of this plan's hashes.
    pub salt: String,
    /// Counts.
    pub summary: Summary,
    /// Every resource in scope, by address, no-ops included.
    pub changes: Vec<ResourceChange>,
    /// The cloud's own verdict on changes it could check without making anything (server-side
    /// dry runs, `ferry plan` only).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub checks: Vec<ServerCheck>,
}

/// A server-side dry run of one planned change.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServerCheck {
    /// The change's address.
    pub address: String,
    /// Whether the cloud accepted the request.
    pub accepted: bool,
    /// Why it refused (secrets scrubbed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

impl Plan {
    /// True when applying would change something.
    pub fn has_changes(&self) -> bool {
        self.summary.has_changes()
    }

    /// The changes the cloud refused in a dry run.
    pub fn refused(&self) -> impl Iterator<Item = &ServerCheck> {
        self.checks.iter().filter(|c| !c.accepted)
    }

    /// `service/stage/provider`, as in the Markdown marker.
    pub fn key(&self) -> String {
        format!("{}/{}/{}", self.service, self.stage, self.provider)
    }

    /// Reads a saved plan, refusing shapes this ferry does not know.
    pub fn from_json(text: &str) -> Result<Plan, String> {
        let raw: Value = serde_json::from_str(text).map_err(|e| format!("not JSON: {e}"))?;
        match raw.get("format_version").and_then(Value::as_u64) {
            Some(v) if v == u64::from(PLAN_FORMAT_VERSION) => {}
            Some(v) => {
                return Err(format!(
                    "plan format_version {v} is not {PLAN_FORMAT_VERSION}, the one this ferry reads; make the plan again with this ferry"
                ))
            }
            None => return Err("no `format_version`: not a ferry plan".into()),
        }
        serde_json::from_value(raw).map_err(|e| format!("not a ferry plan: {e}"))
    }
}
