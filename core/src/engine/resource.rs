//! Resources as providers describe them: a typed, addressed bag of JSON attributes, with
//! dependencies, references to other resources' outputs, and the attributes that force a
//! replacement or hold secrets.

use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};

/// A resource's attributes: ordered, so that hashes, state files and plans are deterministic.
pub type Attributes = BTreeMap<String, Value>;

/// One desired resource, as a provider compiles it from the service model.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Resource {
    /// Stable address, unique in the service: `function.api`, `role.api`, `queue.orders`.
    pub address: String,
    /// The provider's type for it, such as `aws:lambda:function`.
    pub kind: String,
    /// Input attributes. A string may hold references to another resource's output, written
    /// `${ref:ADDRESS.ATTRIBUTE}` (see [`reference`]); they are resolved at apply time.
    pub attributes: Attributes,
    /// Resources that must exist first. References imply dependencies; list others here.
    pub depends_on: BTreeSet<String>,
    /// Attribute paths (`name`, `code.sha256`) whose change needs a new resource.
    pub force_new: BTreeSet<String>,
    /// Attribute paths whose values are secret: redacted in every output, hashed in state.
    pub sensitive: BTreeSet<String>,
    /// The function this resource belongs to, for `--target <function>`.
    pub function: Option<String>,
}

impl Resource {
    /// A resource with no attributes yet.
    pub fn new(address: impl Into<String>, kind: impl Into<String>) -> Self {
        Resource {
            address: address.into(),
            kind: kind.into(),
            attributes: Attributes::new(),
            depends_on: BTreeSet::new(),
            force_new: BTreeSet::new(),
            sensitive: BTreeSet::new(),
            function: None,
        }
    }

    /// Sets an attribute.
    pub fn attr(mut self, name: &str, value: impl Into<Value>) -> Self {
        self.attributes.insert(name.to_owned(), value.into());
        self
    }

    /// Marks an attribute path as forcing replacement when it changes.
    pub fn force_new(mut self, path: &str) -> Self {
        self.force_new.insert(path.to_owned());
        self
    }

    /// Marks an attribute path as sensitive.
    pub fn sensitive(mut self, path: &str) -> Self {
        self.sensitive.insert(path.to_owned());
        self
    }

    /// Adds an explicit dependency.
    pub fn depends_on(mut self, address: &str) -> Self {
        self.depends_on.insert(address.to_owned());
        self
    }

    /// Ties the resource to a function, for `--target`.
    pub fn function(mut self, name: &str) -> Self {
        self.function = Some(name.to_owned());
        self
    }

    /// Every dependency: the explicit ones and those implied by references.
    pub fn all_dependencies(&self) -> BTreeSet<String> {
        let mut deps = self.depends_on.clone();
        for v in self.attributes.values() {
            for r in references_in(v) {
                deps.insert(r.address);
            }
        }
        deps
    }
}

/// The text of a reference to `attribute` of the resource at `address`: `${ref:address.attribute}`.
pub fn reference(address: &str, attribute: &str) -> String {
    format!("${{ref:{address}.{attribute}}}")
}

/// A reference found in an attribute value.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Reference {
    /// The referenced resource.
    pub address: String,
    /// The referenced output attribute (a top-level attribute name).
    pub attribute: String,
}

const REF_OPEN: &str = "${ref:";

/// Splits a string into literal text and references.
fn parse_refs(s: &str) -> Vec<Piece<'_>> {
    let mut out = Vec::new();
    let mut rest = s;
    while let Some(i) = rest.find(REF_OPEN) {
        let after = &rest[i + REF_OPEN.len()..];
        let Some(end) = after.find('}') else { break };
        let body = &after[..end];
        match body.rsplit_once('.') {
            Some((addr, attr)) if !addr.is_empty() && !attr.is_empty() => {
                if i > 0 {
                    out.push(Piece::Text(&rest[..i]));
                }
                out.push(Piece::Ref(Reference {
                    address: addr.to_owned(),
                    attribute: attr.to_owned(),
                }));
            }
            _ => out.push(Piece::Text(&rest[..i + REF_OPEN.len() + end + 1])),
        }
        rest = &after[end + 1..];
    }
    if !rest.is_empty() {
        out.push(Piece::Text(rest));
    }
    out
}

enum Piece<'a> {
    Text(&'a str),
    Ref(Reference),
}

/// Every reference inside a value (strings, arrays and objects, recursively).
pub fn references_in(v: &Value) -> Vec<Reference> {
    let mut out = Vec::new();
    walk_strings(v, &mut |s| {
        if s.contains(REF_OPEN) {
            for p in parse_refs(s) {
                if let Piece::Ref(r) = p {
                    out.push(r);
                }
            }
        }
    });
    out
}

fn walk_strings(v: &Value, f: &mut impl FnMut(&str)) {
    match v {
        Value::String(s) => f(s),
        Value::Array(a) => a.iter().for_each(|x| walk_strings(x, f)),
        Value::Object(o) => o.values().for_each(|x| walk_strings(x, f)),
        _ => {}
    }
}

/// Replaces every reference in `v` using `lookup`. A string that is exactly one reference
/// takes the referenced value as it is (a number stays a number); a reference inside longer
/// text is spliced in as text. Returns `None` as soon as `lookup` cannot answer (the value is
/// then "known after apply").
pub fn resolve(v: &Value, lookup: &mut impl FnMut(&Reference) -> Option<Value>) -> Option<Value> {
    Some(match v {
        Value::String(s) if s.contains(REF_OPEN) => {
            let pieces = parse_refs(s);
            if let [Piece::Ref(r)] = pieces.as_slice() {
                return lookup(r);
            }
            let mut text = String::new();
            for p in pieces {
                match p {
                    Piece::Text(t) => text.push_str(t),
                    Piece::Ref(r) => match lookup(&r)? {
                        Value::String(s) => text.push_str(&s),
                        other => text.push_str(&other.to_string()),
                    },
                }
            }
            Value::String(text)
        }
        Value::Array(a) => Value::Array(
            a.iter()
                .map(|x| resolve(x, lookup))
                .collect::<Option<Vec<_>>>()?,
        ),
        Value::Object(o) => {
            let mut m = serde_json::Map::new();
            for (k, x) in o {
                m.insert(k.clone(), resolve(x, lookup)?);
            }
            Value::Object(m)
        }
        other => other.clone(),
    })
}

/// Flattens attributes into leaf paths: objects are walked (`environment.DB_HOST`), while
/// scalars, arrays and empty objects are leaves. This is the granularity of diffs,
/// `force_new` and `sensitive`.
pub fn flatten(attrs: &Attributes) -> BTreeMap<String, Value> {
    let mut out = BTreeMap::new();
    for (k, v) in attrs {
        flatten_into(k.clone(), v, &mut out);
    }
    out
}

fn flatten_into(path: String, v: &Value, out: &mut BTreeMap<String, Value>) {
    match v {
        Value::Object(o) if !o.is_empty() => {
            for (k, x) in o {
                flatten_into(format!("{path}.{k}"), x, out);
            }
        }
        _ => {
            out.insert(path, v.clone());
        }
    }
}

/// True when `path` is `prefix` or lies under it (`environment.X` under `environment`).
pub fn path_under(path: &str, prefix: &str) -> bool {
    path == prefix
        || (path.len() > prefix.len()
            && path.starts_with(prefix)
            && path.as_bytes()[prefix.len()] == b'.')
}

/// True when `path` is covered by one of `set`'s paths.
pub fn path_in(path: &str, set: &BTreeSet<String>) -> bool {
    set.iter().any(|p| path_under(path, p))
}

/// Applies `f` to the value at every leaf path for which `pick` is true, in place.
pub fn map_leaves(
    attrs: &mut Attributes,
    pick: &dyn Fn(&str, &Value) -> bool,
    f: &mut dyn FnMut(&str, &Value) -> Value,
) {
    for (k, v) in attrs.iter_mut() {
        map_leaf(k.clone(), v, pick, f);
    }
}

fn map_leaf(
    path: String,
    v: &mut Value,
    pick: &dyn Fn(&str, &Value) -> bool,
    f: &mut dyn FnMut(&str, &Value) -> Value,
) {
    match v {
        Value::Object(o) if !o.is_empty() => {
            for (k, x) in o.iter_mut() {
                map_leaf(format!("{path}.{k}"), x, pick, f);
            }
        }
        _ => {
            if pick(&path, v) {
                *v = f(&path, v);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn references_are_found_and_resolved() {
        let v = json!({"role": reference("role.api", "arn"), "x": ["a-${ref:q.orders.url}-b"]});
        let refs = references_in(&v);
        assert_eq!(refs.len(), 2);
        assert_eq!(refs[0].address, "role.api");
        assert_eq!(refs[0].attribute, "arn");
        let got = resolve(&v, &mut |r| Some(json!(format!("<{}>", r.address)))).unwrap();
        assert_eq!(got, json!({"role": "<role.api>", "x": ["a-<q.orders>-b"]}));
        assert!(resolve(&v, &mut |_| None).is_none());
        // A whole-string reference keeps the referenced type.
        let n = resolve(&json!("${ref:a.n}"), &mut |_| Some(json!(3))).unwrap();
        assert_eq!(n, json!(3));
    }

    #[test]
    fn malformed_references_stay_text() {
        let v = json!("${ref:nodot} and ${ref:unterminated");
        assert!(references_in(&v).is_empty());
        assert_eq!(resolve(&v, &mut |_| None), Some(v.clone()));
    }

    #[test]
    fn paths() {
        assert!(path_under("environment.A", "environment"));
        assert!(path_under("environment", "environment"));
        assert!(!path_under("environments", "environment"));
        let mut a = Attributes::new();
        a.insert("env".into(), json!({"A": "1", "B": {}}));
        a.insert("n".into(), json!(1));
        let f = flatten(&a);
        assert_eq!(f.keys().collect::<Vec<_>>(), ["env.A", "env.B", "n"]);
    }
}

/// The part of a live value (as a cloud API answers) that has the shape of what ferry sent:
/// objects keep the keys of `desired`, lists of the same length are projected element by
/// element, anything else is taken as it is. The fields a provider adds (outputs, server-side
/// defaults such as a Cloud Run container's `ports`) so do not show as drift, while a changed
/// or missing field does. Providers use it in `read` before the engine diffs.
pub fn project_live(desired: &Value, live: &Value) -> Value {
    match (desired, live) {
        (Value::Object(d), Value::Object(l)) => Value::Object(
            d.iter()
                .filter_map(|(k, dv)| l.get(k).map(|lv| (k.clone(), project_live(dv, lv))))
                .collect(),
        ),
        (Value::Array(d), Value::Array(l)) if d.len() == l.len() => Value::Array(
            d.iter()
                .zip(l)
                .map(|(dv, lv)| project_live(dv, lv))
                .collect(),
        ),
        (_, l) => l.clone(),
    }
}

#[cfg(test)]
mod project_tests {
    use super::project_live;
    use serde_json::json;

    #[test]
    fn added_fields_are_left_out_changed_ones_kept() {
        let desired = json!({"a": 1, "list": [{"x": 1}], "o": {"k": "v"}});
        let live = json!({"a": 2, "extra": true, "list": [{"x": 1, "port": 8080}], "o": {"k": "v", "d": 0}});
        assert_eq!(
            project_live(&desired, &live),
            json!({"a": 2, "list": [{"x": 1}], "o": {"k": "v"}})
        );
        // A list of another length is taken whole, so the diff shows it.
        let live = json!({"list": [{"x": 1}, {"x": 2}]});
        assert_eq!(project_live(&desired, &live)["list"], live["list"]);
    }
}
