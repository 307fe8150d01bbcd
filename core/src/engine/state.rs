//! The state document: what ferry made, one JSON file per (service, stage, provider).

use super::redact::{canonical_json, salted_hash, sha256_hex, Redactor};
use super::resource::{map_leaves, path_in, Attributes, Resource};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};

/// Version of the state document's shape.
pub const STATE_VERSION: u32 = 1;

/// This ferry's version, recorded in state files, plans and locks.
pub const FERRY_VERSION: &str = env!("CARGO_PKG_VERSION");

/// What ferry made for one (service, stage, provider).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct State {
    /// Shape version ([`STATE_VERSION`]).
    pub version: u32,
    /// Random id given when the state is first written; a plan or a backend holding another
    /// lineage is about a different deployment.
    pub lineage: String,
    /// Bumped by every write, so a saved plan can tell that the state moved on.
    pub serial: u64,
    /// The ferry that last wrote it.
    pub ferry_version: String,
    /// Service name.
    pub service: String,
    /// Stage.
    pub stage: String,
    /// Provider.
    pub provider: String,
    /// Salt of the hashes that stand in for sensitive values.
    pub salt: String,
    /// Resources by address.
    pub resources: BTreeMap<String, StateResource>,
}

/// One resource as last applied.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StateResource {
    /// The provider's type.
    pub kind: String,
    /// The function it belongs to, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub function: Option<String>,
    /// What it depended on, so that deletes run in reverse order after it left the manifest.
    #[serde(default, skip_serializing_if = "BTreeSet::is_empty")]
    pub depends_on: BTreeSet<String>,
    /// Paths whose values below are salted hashes (`sha256:...`), not values.
    #[serde(default, skip_serializing_if = "BTreeSet::is_empty")]
    pub sensitive: BTreeSet<String>,
    /// Inputs as compiled, references unresolved (`${ref:role.api.arn}`).
    pub inputs: Attributes,
    /// Attributes the provider returned after apply (ids, ARNs, URLs).
    pub outputs: Attributes,
    /// `sha256:` of the kind and the recorded inputs: changes whenever an input does.
    pub hash: String,
}

impl State {
    /// An empty state with a new lineage and salt.
    pub fn new(service: &str, stage: &str, provider: &str) -> Self {
        State {
            version: STATE_VERSION,
            lineage: uuid::Uuid::new_v4().to_string(),
            serial: 0,
            ferry_version: FERRY_VERSION.to_owned(),
            service: service.to_owned(),
            stage: stage.to_owned(),
            provider: provider.to_owned(),
            salt: super::redact::random_salt(),
            resources: BTreeMap::new(),
        }
    }
}

impl StateResource {
    /// The record of `resource` after an apply that returned `outputs`. Values at sensitive
    /// paths, and any value containing a known secret, are replaced by salted hashes.
    pub fn record(
        resource: &Resource,
        sensitive: &BTreeSet<String>,
        outputs: &Attributes,
        secrets: &Redactor,
        salt: &str,
    ) -> Self {
        let mut hashed = BTreeSet::new();
        let inputs = redact(&resource.attributes, sensitive, secrets, salt, &mut hashed);
        let outputs = redact(outputs, sensitive, secrets, salt, &mut hashed);
        let hash = content_hash(&resource.kind, &inputs);
        StateResource {
            kind: resource.kind.clone(),
            function: resource.function.clone(),
            depends_on: resource.all_dependencies(),
            sensitive: hashed,
            inputs,
            outputs,
            hash,
        }
    }

    /// Inputs overlaid with outputs: what a provider is given as the prior attributes.
    pub fn prior(&self) -> Attributes {
        let mut a = self.inputs.clone();
        for (k, v) in &self.outputs {
            a.insert(k.clone(), v.clone());
        }
        a
    }
}

impl State {
    /// What a provider is given as a recorded resource's prior attributes: its inputs overlaid
    /// with its outputs, and references to other recorded resources replaced by their
    /// recorded values (an ARN, an id), so that reads and deletes can find the live resource.
    /// A reference that cannot be resolved stays as written.
    pub fn prior(&self, address: &str) -> Option<Attributes> {
        let rec = self.resources.get(address)?;
        let mut a = rec.prior();
        for v in a.values_mut() {
            if let Some(r) = super::resource::resolve(v, &mut |rf| {
                super::diff::recorded_value(self.resources.get(&rf.address)?, &rf.attribute)
            }) {
                *v = r;
            }
        }
        Some(a)
    }
}

/// `sha256:` of a kind and its (already redacted) inputs.
pub fn content_hash(kind: &str, inputs: &Attributes) -> String {
    let v = serde_json::json!({"kind": kind, "inputs": inputs});
    format!("sha256:{}", sha256_hex(canonical_json(&v).as_bytes()))
}

/// Replaces values at sensitive paths (and values containing a secret) by salted hashes,
/// adding the paths it replaced to `hashed`.
pub fn redact(
    attrs: &Attributes,
    sensitive: &BTreeSet<String>,
    secrets: &Redactor,
    salt: &str,
    hashed: &mut BTreeSet<String>,
) -> Attributes {
    let mut out = attrs.clone();
    map_leaves(
        &mut out,
        &|path, v| path_in(path, sensitive) || secrets.taints(v),
        &mut |path, v| {
            hashed.insert(path.to_owned());
            serde_json::Value::String(salted_hash(salt, v))
        },
    );
    out
}
