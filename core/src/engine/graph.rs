//! Dependency graphs: deterministic topological order and cycles reported by their path.

use std::collections::{BTreeMap, BTreeSet};

/// A graph problem in what a provider compiled.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GraphError {
    /// Resources depend on each other in a circle.
    #[error("dependency cycle: {}; break it by removing one of these references", .0.join(" → "))]
    Cycle(Vec<String>),
    /// A dependency or reference names no resource.
    #[error("`{resource}` depends on `{missing}`, which is not a resource of this service")]
    UnknownDependency {
        /// The dependent.
        resource: String,
        /// The name it used.
        missing: String,
    },
    /// Two resources share an address.
    #[error("two resources have the address `{0}`; this is a bug in the provider")]
    Duplicate(String),
}

/// Nodes named by address; an edge `a → b` means `a` needs `b` done first.
#[derive(Debug, Clone, Default)]
pub struct Graph {
    names: Vec<String>,
    index: BTreeMap<String, usize>,
    deps: Vec<BTreeSet<usize>>,
}

impl Graph {
    /// A graph of these nodes and no edges.
    pub fn new<I: IntoIterator<Item = String>>(nodes: I) -> Result<Self, GraphError> {
        let mut g = Graph::default();
        for n in nodes {
            if g.index.contains_key(&n) {
                return Err(GraphError::Duplicate(n));
            }
            g.index.insert(n.clone(), g.names.len());
            g.names.push(n);
            g.deps.push(BTreeSet::new());
        }
        Ok(g)
    }

    /// Number of nodes.
    pub fn len(&self) -> usize {
        self.names.len()
    }

    /// True when there are no nodes.
    pub fn is_empty(&self) -> bool {
        self.names.is_empty()
    }

    /// The node's index.
    pub fn index_of(&self, name: &str) -> Option<usize> {
        self.index.get(name).copied()
    }

    /// The node's name.
    pub fn name(&self, i: usize) -> &str {
        &self.names[i]
    }

    /// Records that `dependent` needs `dependency` first. Returns false (and adds nothing)
    /// when either is not a node.
    pub fn add_edge(&mut self, dependent: &str, dependency: &str) -> bool {
        match (self.index_of(dependent), self.index_of(dependency)) {
            (Some(a), Some(b)) if a != b => {
                self.deps[a].insert(b);
                true
            }
            _ => false,
        }
    }

    /// What node `i` waits for.
    pub fn dependencies(&self, i: usize) -> &BTreeSet<usize> {
        &self.deps[i]
    }

    /// For each node, the nodes waiting for it.
    pub fn dependents(&self) -> Vec<Vec<usize>> {
        let mut out = vec![Vec::new(); self.len()];
        for (a, ds) in self.deps.iter().enumerate() {
            for &b in ds {
                out[b].push(a);
            }
        }
        out
    }

    /// Every node after all of its dependencies; ties broken by name, so the order is
    /// stable. Fails with the path of a cycle.
    pub fn topo_order(&self) -> Result<Vec<usize>, GraphError> {
        let dependents = self.dependents();
        let mut waiting: Vec<usize> = self.deps.iter().map(BTreeSet::len).collect();
        let mut ready: BTreeSet<(&str, usize)> = (0..self.len())
            .filter(|&i| waiting[i] == 0)
            .map(|i| (self.names[i].as_str(), i))
            .collect();
        let mut order = Vec::with_capacity(self.len());
        while let Some(first) = ready.pop_first() {
            let i = first.1;
            order.push(i);
            for &d in &dependents[i] {
                waiting[d] -= 1;
                if waiting[d] == 0 {
                    ready.insert((self.names[d].as_str(), d));
                }
            }
        }
        if order.len() == self.len() {
            Ok(order)
        } else {
            let left: BTreeSet<usize> = (0..self.len()).filter(|&i| waiting[i] > 0).collect();
            Err(GraphError::Cycle(self.find_cycle(&left)))
        }
    }

    /// A cycle among `left` (nodes Kahn's algorithm could not order): walk dependencies that
    /// stay inside `left` until a node repeats.
    fn find_cycle(&self, left: &BTreeSet<usize>) -> Vec<String> {
        let Some(&start) = left.iter().next() else {
            return vec![];
        };
        let mut path = vec![start];
        let mut seen = BTreeMap::from([(start, 0usize)]);
        let mut at = start;
        loop {
            let Some(&next) = self.deps[at].iter().find(|d| left.contains(d)) else {
                return path.iter().map(|&i| self.names[i].clone()).collect();
            };
            if let Some(&pos) = seen.get(&next) {
                let mut cycle: Vec<String> =
                    path[pos..].iter().map(|&i| self.names[i].clone()).collect();
                cycle.push(self.names[next].clone());
                return cycle;
            }
            seen.insert(next, path.len());
            path.push(next);
            at = next;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn graph(nodes: &[&str], edges: &[(&str, &str)]) -> Graph {
        let mut g = Graph::new(nodes.iter().map(|s| s.to_string())).unwrap();
        for (a, b) in edges {
            assert!(g.add_edge(a, b));
        }
        g
    }

    #[test]
    fn orders_dependencies_first_and_stably() {
        let g = graph(
            &["fn", "role", "queue", "map"],
            &[("fn", "role"), ("map", "fn"), ("map", "queue")],
        );
        let names: Vec<&str> = g.topo_order().unwrap().iter().map(|&i| g.name(i)).collect();
        assert_eq!(names, ["queue", "role", "fn", "map"]);
    }

    #[test]
    fn reports_the_cycle_path() {
        let g = graph(
            &["a", "b", "c", "d"],
            &[("a", "b"), ("b", "c"), ("c", "a"), ("d", "a")],
        );
        let err = g.topo_order().unwrap_err();
        assert_eq!(
            err,
            GraphError::Cycle(vec!["a".into(), "b".into(), "c".into(), "a".into()])
        );
        assert!(err.to_string().contains("a → b → c → a"), "{err}");
    }

    #[test]
    fn duplicates_are_refused() {
        assert!(matches!(
            Graph::new(["a".to_string(), "a".to_string()]),
            Err(GraphError::Duplicate(_))
        ));
    }
}
