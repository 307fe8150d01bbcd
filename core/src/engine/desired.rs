//! The desired resources, checked and ordered: unique addresses, known dependencies, no
//! cycles, and which attribute paths are sensitive once references carry secrets along.

use super::graph::{Graph, GraphError};
use super::redact::{strings_of, Redactor};
use super::resource::{flatten, path_under, references_in, Resource};
use std::collections::{BTreeMap, BTreeSet};

/// What a provider compiled, ready to diff and apply.
#[derive(Debug, Clone)]
pub struct Desired {
    /// Resources by address.
    pub resources: BTreeMap<String, Resource>,
    /// Addresses, dependencies first.
    pub order: Vec<String>,
    /// Effective sensitive paths per address: the provider's own, plus every path whose
    /// value references a sensitive attribute or contains a known secret.
    pub sensitive: BTreeMap<String, BTreeSet<String>>,
}

impl Desired {
    /// Checks and orders compiled resources. Plain values of sensitive paths are added to
    /// `redactor`, so they are scrubbed from free text (errors, logs) too.
    pub fn build(list: Vec<Resource>, redactor: &mut Redactor) -> Result<Self, GraphError> {
        let mut g = Graph::new(list.iter().map(|r| r.address.clone()))?;
        for r in &list {
            for d in r.all_dependencies() {
                if d == r.address {
                    return Err(GraphError::Cycle(vec![d.clone(), d]));
                }
                if !g.add_edge(&r.address, &d) {
                    return Err(GraphError::UnknownDependency {
                        resource: r.address.clone(),
                        missing: d,
                    });
                }
            }
        }
        let order: Vec<String> = g
            .topo_order()?
            .into_iter()
            .map(|i| g.name(i).to_owned())
            .collect();
        let resources: BTreeMap<String, Resource> =
            list.into_iter().map(|r| (r.address.clone(), r)).collect();

        let mut sensitive: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
        let mut plain = Vec::new();
        for addr in &order {
            let r = &resources[addr];
            let mut set = r.sensitive.clone();
            for (path, leaf) in flatten(&r.attributes) {
                let via_ref = references_in(&leaf).iter().any(|rf| {
                    sensitive.get(&rf.address).is_some_and(|s| {
                        s.iter()
                            .any(|p| path_under(p, &rf.attribute) || path_under(&rf.attribute, p))
                    })
                });
                if via_ref || redactor.taints(&leaf) {
                    set.insert(path.clone());
                }
                if set.iter().any(|p| path_under(&path, p)) && references_in(&leaf).is_empty() {
                    plain.extend(strings_of(&leaf));
                }
            }
            sensitive.insert(addr.clone(), set);
        }
        redactor.extend(plain);
        Ok(Desired {
            resources,
            order,
            sensitive,
        })
    }

    /// No resources (a destroy).
    pub fn empty() -> Self {
        Desired {
            resources: BTreeMap::new(),
            order: vec![],
            sensitive: BTreeMap::new(),
        }
    }
}
