//! Desired resources against recorded (and refreshed) state: the per-resource actions and
//! attribute-level changes of a plan. Pure: no I/O.

use super::desired::Desired;
use super::plan::{Action, AttributeChange, Drift, PlanValue, ResourceChange};
use super::redact::{salted_hash, Redactor};
use super::resource::{
    flatten, path_in, path_under, references_in, resolve, Attributes, Reference,
};
use super::state::{State, StateResource};
use serde_json::{json, Value};
use std::collections::{BTreeMap, BTreeSet};

/// A refreshed resource.
#[derive(Debug, Clone)]
pub enum Live {
    /// Deleted outside ferry.
    Gone,
    /// Its live attributes.
    Present(Attributes),
}

/// What [`diff`] compares.
pub struct DiffInput<'a> {
    /// Desired resources.
    pub desired: &'a Desired,
    /// Desired addresses in scope (all, or a `--target` closure).
    pub desired_scope: &'a BTreeSet<String>,
    /// Recorded state, if any.
    pub state: Option<&'a State>,
    /// Recorded addresses in scope for deletion.
    pub state_scope: &'a BTreeSet<String>,
    /// Refresh results (empty without refresh).
    pub live: &'a BTreeMap<String, Live>,
    /// Known secrets (and whether to reveal them).
    pub redactor: &'a Redactor,
    /// Salt of the plan's `desired_hash`es.
    pub plan_salt: &'a str,
}

/// Salted hash of everything about a desired resource that apply depends on.
pub fn desired_hash(salt: &str, r: &super::resource::Resource) -> String {
    salted_hash(
        salt,
        &json!({
            "kind": r.kind, "attributes": r.attributes, "depends_on": r.all_dependencies(),
            "force_new": r.force_new, "sensitive": r.sensitive, "function": r.function,
        }),
    )
}

/// A value of a recorded resource that others may reference: outputs first, then inputs;
/// `None` when it is sensitive (only a hash is stored) or itself unresolved.
pub fn recorded_value(rec: &StateResource, attribute: &str) -> Option<Value> {
    if path_in(attribute, &rec.sensitive)
        || rec
            .sensitive
            .iter()
            .any(|p| p.starts_with(&format!("{attribute}.")))
    {
        return None;
    }
    let v = rec
        .outputs
        .get(attribute)
        .or_else(|| rec.inputs.get(attribute))?;
    references_in(v).is_empty().then(|| v.clone())
}

/// Computes every in-scope resource's change, dependencies first, deletes last.
pub fn diff(input: &DiffInput<'_>) -> Vec<ResourceChange> {
    let mut actions: Actions = BTreeMap::new();
    let mut out = Vec::new();
    let empty = BTreeMap::new();
    let recorded = input.state.map(|s| &s.resources).unwrap_or(&empty);
    let salt = input.state.map(|s| s.salt.as_str()).unwrap_or("");

    for addr in &input.desired.order {
        if !input.desired_scope.contains(addr) {
            continue;
        }
        let r = &input.desired.resources[addr];
        let sens = &input.desired.sensitive[addr];
        let mut deps: Vec<String> = r.all_dependencies().into_iter().collect();
        deps.sort();
        let live = input.live.get(addr);
        let (action, changes, drift) = match recorded.get(addr) {
            Some(rec) if !matches!(live, Some(Live::Gone)) => {
                let mut sens = sens.clone();
                sens.extend(rec.sensitive.iter().cloned());
                compare(input, r, &sens, rec, live, recorded, &actions, salt)
            }
            gone_or_new => {
                let drift = gone_or_new.map(|_| Drift {
                    gone: true,
                    changes: vec![],
                });
                let changes = flatten(&r.attributes)
                    .into_iter()
                    .map(|(path, v)| AttributeChange {
                        after: Some(after_value(input, &path, &v, sens, recorded, &actions)),
                        path,
                        before: None,
                        forces_replacement: false,
                    })
                    .collect();
                (Action::Create, changes, drift)
            }
        };
        let paths = changes
            .iter()
            .map(|c: &AttributeChange| c.path.clone())
            .collect();
        actions.insert(addr, (action, paths));
        out.push(ResourceChange {
            address: addr.clone(),
            kind: r.kind.clone(),
            action,
            function: r.function.clone(),
            changes,
            drift,
            depends_on: deps,
            desired_hash: Some(desired_hash(input.plan_salt, r)),
        });
    }

    for (addr, rec) in recorded {
        if input.desired_scope.contains(addr) || !input.state_scope.contains(addr) {
            continue;
        }
        let changes = flatten(&rec.inputs)
            .into_iter()
            .map(|(path, v)| AttributeChange {
                before: Some(before_value(input, &path, &v, rec, recorded)),
                path,
                after: None,
                forces_replacement: false,
            })
            .collect();
        out.push(ResourceChange {
            address: addr.clone(),
            kind: rec.kind.clone(),
            action: Action::Delete,
            function: rec.function.clone(),
            changes,
            drift: matches!(input.live.get(addr), Some(Live::Gone)).then_some(Drift {
                gone: true,
                changes: vec![],
            }),
            depends_on: rec.depends_on.iter().cloned().collect(),
            desired_hash: None,
        });
    }
    out
}

#[allow(clippy::too_many_arguments)]
fn compare(
    input: &DiffInput<'_>,
    r: &super::resource::Resource,
    sens: &BTreeSet<String>,
    rec: &StateResource,
    live: Option<&Live>,
    recorded: &BTreeMap<String, StateResource>,
    actions: &Actions<'_>,
    salt: &str,
) -> (Action, Vec<AttributeChange>, Option<Drift>) {
    let before = flatten(&rec.inputs);
    let after = flatten(&r.attributes);
    let live_flat = match live {
        Some(Live::Present(l)) => Some(flatten(l)),
        _ => None,
    };

    // Drift: recorded inputs (resolved through recorded outputs) against live values.
    let mut drifted: BTreeMap<&str, &Value> = BTreeMap::new();
    let mut drift_changes = Vec::new();
    if let Some(lf) = &live_flat {
        // What the provider returned after apply is the best record of the live value
        // (references resolved); the inputs stand in where it returned nothing.
        let outputs = flatten(&rec.outputs);
        for (path, recv) in &before {
            let Some(livev) = lf.get(path) else { continue };
            let stored = outputs.get(path);
            let same = if rec.sensitive.contains(path) {
                stored.unwrap_or(recv).as_str() == Some(salted_hash(salt, livev).as_str())
            } else if let Some(o) = stored {
                o == livev
            } else {
                match resolve(recv, &mut |rf| lookup_recorded(recorded, rf)) {
                    Some(expected) => &expected == livev,
                    None => true,
                }
            };
            if !same {
                drifted.insert(path, livev);
                let sensitive = rec.sensitive.contains(path) || path_in(path, sens);
                drift_changes.push(AttributeChange {
                    path: path.clone(),
                    before: Some(before_value(input, path, recv, rec, recorded)),
                    after: Some(shown(input, sensitive, livev)),
                    forces_replacement: false,
                });
            }
        }
    }

    let mut changes = Vec::new();
    let paths: BTreeSet<&String> = before.keys().chain(after.keys()).collect();
    for path in paths {
        let b = before.get(path);
        let a = after.get(path);
        let changed = match (b, a) {
            (None, None) => false,
            (Some(_), None) | (None, Some(_)) => true,
            (Some(bv), Some(av)) => {
                if let Some(livev) = drifted.get(path.as_str()) {
                    resolve(av, &mut |rf| dep_value(recorded, actions, rf)).as_ref() != Some(*livev)
                } else if rec.sensitive.contains(path) {
                    bv.as_str() != Some(salted_hash(salt, av).as_str())
                        || references_in(av).iter().any(|rf| dep_changes(actions, rf))
                } else {
                    bv != av || references_in(av).iter().any(|rf| dep_changes(actions, rf))
                }
            }
        };
        if !changed {
            continue;
        }
        let before_shown = match (drifted.get(path.as_str()), b) {
            (Some(livev), _) => Some(shown(
                input,
                rec.sensitive.contains(path) || path_in(path, sens),
                livev,
            )),
            (None, Some(bv)) => Some(before_value(input, path, bv, rec, recorded)),
            (None, None) => None,
        };
        changes.push(AttributeChange {
            path: path.clone(),
            before: before_shown,
            after: a.map(|av| after_value(input, path, av, sens, recorded, actions)),
            forces_replacement: path_in(path, &r.force_new),
        });
    }
    if r.kind != rec.kind {
        changes.insert(
            0,
            AttributeChange {
                path: "(kind)".into(),
                before: Some(PlanValue::Known(Value::String(rec.kind.clone()))),
                after: Some(PlanValue::Known(Value::String(r.kind.clone()))),
                forces_replacement: true,
            },
        );
    }
    let action = if changes.iter().any(|c| c.forces_replacement) {
        Action::Replace
    } else if changes.is_empty() {
        Action::NoOp
    } else {
        Action::Update
    };
    let drift = (!drift_changes.is_empty()).then_some(Drift {
        gone: false,
        changes: drift_changes,
    });
    (action, changes, drift)
}

pub(crate) fn lookup_recorded(
    recorded: &BTreeMap<String, StateResource>,
    rf: &Reference,
) -> Option<Value> {
    recorded_value(recorded.get(&rf.address)?, &rf.attribute)
}

/// Planned action and changed paths, per address planned so far.
type Actions<'a> = BTreeMap<&'a str, (Action, Vec<String>)>;

/// Whether the referenced value changes in this plan: the dependency is made or remade, or
/// the referenced attribute is updated.
fn dep_changes(actions: &Actions<'_>, rf: &Reference) -> bool {
    match actions.get(rf.address.as_str()) {
        Some((Action::Create | Action::Replace, _)) => true,
        Some((Action::Update, paths)) => paths
            .iter()
            .any(|p| path_under(p, &rf.attribute) || path_under(&rf.attribute, p)),
        _ => false,
    }
}

/// A dependency's value as the plan can know it: unknown while it changes (the new value
/// comes from the provider), else as recorded.
fn dep_value(
    recorded: &BTreeMap<String, StateResource>,
    actions: &Actions<'_>,
    rf: &Reference,
) -> Option<Value> {
    if dep_changes(actions, rf) {
        None
    } else {
        lookup_recorded(recorded, rf)
    }
}

fn shown(input: &DiffInput<'_>, sensitive: bool, v: &Value) -> PlanValue {
    if (sensitive || input.redactor.taints(v)) && !input.redactor.reveals() {
        PlanValue::Sensitive
    } else {
        PlanValue::Known(v.clone())
    }
}

fn after_value(
    input: &DiffInput<'_>,
    path: &str,
    v: &Value,
    sens: &BTreeSet<String>,
    recorded: &BTreeMap<String, StateResource>,
    actions: &Actions<'_>,
) -> PlanValue {
    let sensitive = path_in(path, sens);
    if sensitive && !input.redactor.reveals() {
        return PlanValue::Sensitive;
    }
    match resolve(v, &mut |rf| dep_value(recorded, actions, rf)) {
        Some(x) => shown(input, sensitive, &x),
        None => PlanValue::Unknown,
    }
}

fn before_value(
    input: &DiffInput<'_>,
    path: &str,
    v: &Value,
    rec: &StateResource,
    recorded: &BTreeMap<String, StateResource>,
) -> PlanValue {
    if rec.sensitive.contains(path) {
        // Only a salted hash is stored: there is nothing to reveal.
        return PlanValue::Sensitive;
    }
    let x = resolve(v, &mut |rf| lookup_recorded(recorded, rf)).unwrap_or_else(|| v.clone());
    shown(input, false, &x)
}
