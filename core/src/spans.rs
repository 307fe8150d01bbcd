//! Where each part of the model came from: model paths (`functions.api.uses.0`) mapped to the
//! source spans that produced them, so that checks on the model report file:line:col whichever
//! dialect the manifest was written in.

use crate::source::Span;
use crate::yaml::{Node, Value};
use std::collections::HashMap;

/// Model path → span.
#[derive(Debug, Default, Clone)]
pub struct SpanIndex {
    map: HashMap<String, Span>,
    root: Option<Span>,
}

impl SpanIndex {
    /// Records a span for a path (`#key` suffix for the key of a mapping entry).
    pub fn insert(&mut self, path: impl Into<String>, span: Span) {
        self.map.insert(path.into(), span);
    }

    /// Indexes every node of a tree under its path, keys as `path#key`.
    pub fn index_tree(&mut self, node: &Node, path: &str) {
        if path.is_empty() {
            self.root = Some(node.span);
        }
        self.map.insert(path.to_owned(), node.span);
        match &node.value {
            Value::Map(entries) => {
                for (k, v) in entries {
                    let p = join(path, &k.scalar_text().unwrap_or_default());
                    self.map.insert(format!("{p}#key"), k.span);
                    self.index_tree(v, &p);
                }
            }
            Value::Seq(items) => {
                for (i, v) in items.iter().enumerate() {
                    self.index_tree(v, &join(path, &i.to_string()));
                }
            }
            _ => {}
        }
    }

    /// The span of a path, or of its closest recorded ancestor.
    pub fn find(&self, path: &str) -> Option<Span> {
        let mut p = path;
        loop {
            if let Some(s) = self.map.get(p) {
                return Some(*s);
            }
            match p.rfind(['.', '#']) {
                Some(i) => p = &p[..i],
                None => return self.map.get(p).copied().or(self.root),
            }
        }
    }

    /// The span recorded for exactly this path.
    pub fn exact(&self, path: &str) -> Option<Span> {
        self.map.get(path).copied()
    }

    /// The span of a mapping key, falling back to its value.
    pub fn key(&self, path: &str) -> Option<Span> {
        self.map
            .get(&format!("{path}#key"))
            .copied()
            .or_else(|| self.find(path))
    }
}

/// `base.seg`.
pub fn join(base: &str, seg: &str) -> String {
    if base.is_empty() {
        seg.to_owned()
    } else {
        format!("{base}.{seg}")
    }
}
