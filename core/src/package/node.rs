//! Node.js production dependencies, read from `package-lock.json` (npm 7+ lockfiles mark
//! development-only packages with `"dev": true`) or, without a lockfile, by walking
//! `dependencies` through `node_modules` with Node's resolution rules. No `npm` process is
//! started.

use serde_json::Value;
use std::collections::{BTreeSet, VecDeque};
use std::path::{Path, PathBuf};

/// What was found.
#[derive(Debug, Default)]
pub struct NodeDeps {
    /// Package folders to ship, relative to the service folder (`node_modules/a`,
    /// `node_modules/a/node_modules/b`), sorted.
    pub packages: Vec<String>,
    /// Problems worth a warning (a declared dependency that is not installed, ...).
    pub warnings: Vec<String>,
}

/// Production dependencies of the service in `root`.
pub fn production_deps(root: &Path) -> NodeDeps {
    let mut out = NodeDeps::default();
    let pkg: Value = match std::fs::read(root.join("package.json")) {
        Ok(b) => match serde_json::from_slice(&b) {
            Ok(v) => v,
            Err(e) => {
                out.warnings.push(format!(
                    "package.json is not valid JSON ({e}); no dependencies are packaged"
                ));
                return out;
            }
        },
        Err(_) => return out,
    };
    let declared = dep_names(&pkg);
    if declared.is_empty() {
        return out;
    }
    if !root.join("node_modules").is_dir() {
        out.warnings.push(format!(
            "package.json declares {} dependenc{} but node_modules is missing; run `npm ci --omit=dev` first",
            declared.len(),
            if declared.len() == 1 { "y" } else { "ies" }
        ));
        return out;
    }
    let lock = std::fs::read(root.join("package-lock.json"))
        .ok()
        .and_then(|b| serde_json::from_slice::<Value>(&b).ok());
    let from_lock = lock.as_ref().and_then(|l| {
        let version = l.get("lockfileVersion")?.as_u64()?;
        if version < 2 {
            return None;
        }
        let packages = l.get("packages")?.as_object()?;
        let mut v = Vec::new();
        for (key, meta) in packages {
            if !key.starts_with("node_modules/")
                || meta.get("dev").and_then(Value::as_bool) == Some(true)
            {
                continue;
            }
            // A link points elsewhere; an optional package may be absent on this platform.
            if meta.get("link").and_then(Value::as_bool) == Some(true) || !root.join(key).is_dir() {
                continue;
            }
            v.push(key.clone());
        }
        Some(v)
    });
    out.packages = match from_lock {
        Some(v) => v,
        None => walk(root, &declared, &mut out.warnings),
    };
    out.packages.sort();
    out.packages.dedup();
    out
}

fn dep_names(pkg: &Value) -> Vec<String> {
    let mut names = Vec::new();
    for key in ["dependencies", "optionalDependencies"] {
        if let Some(o) = pkg.get(key).and_then(Value::as_object) {
            names.extend(o.keys().cloned());
        }
    }
    names
}

/// Node's resolution: from a package folder, look in its own `node_modules`, then in each
/// ancestor's, up to the service folder.
fn resolve(root: &Path, from: &Path, name: &str) -> Option<PathBuf> {
    let mut dir = from.to_owned();
    loop {
        let candidate = dir.join("node_modules").join(name);
        if candidate.join("package.json").is_file() {
            return Some(candidate);
        }
        if dir == root || !dir.pop() || !dir.starts_with(root) {
            return None;
        }
    }
}

fn walk(root: &Path, declared: &[String], warnings: &mut Vec<String>) -> Vec<String> {
    let mut seen: BTreeSet<PathBuf> = BTreeSet::new();
    let mut queue: VecDeque<(PathBuf, String, bool)> = declared
        .iter()
        .map(|n| (root.to_owned(), n.clone(), true))
        .collect();
    while let Some((from, name, top)) = queue.pop_front() {
        let Some(dir) = resolve(root, &from, &name) else {
            if top {
                warnings.push(format!(
                    "dependency `{name}` is not installed in node_modules; run `npm ci --omit=dev`"
                ));
            }
            continue;
        };
        if !seen.insert(dir.clone()) {
            continue;
        }
        if let Some(pkg) = std::fs::read(dir.join("package.json"))
            .ok()
            .and_then(|b| serde_json::from_slice::<Value>(&b).ok())
        {
            for d in dep_names(&pkg) {
                queue.push_back((dir.clone(), d, false));
            }
        }
    }
    seen.iter()
        .filter_map(|p| p.strip_prefix(root).ok())
        .map(|p| {
            p.components()
                .map(|c| c.as_os_str().to_string_lossy())
                .collect::<Vec<_>>()
                .join("/")
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pkg(dir: &Path, rel: &str, deps: &[&str]) {
        let d = dir.join(rel);
        std::fs::create_dir_all(&d).unwrap();
        let deps: serde_json::Map<String, Value> = deps
            .iter()
            .map(|n| (n.to_string(), Value::from("*")))
            .collect();
        std::fs::write(
            d.join("package.json"),
            serde_json::json!({"name": rel, "dependencies": deps}).to_string(),
        )
        .unwrap();
        std::fs::write(d.join("index.js"), "module.exports = 1;\n").unwrap();
    }

    #[test]
    fn walks_production_dependencies_without_a_lockfile() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        std::fs::write(
            root.join("package.json"),
            r#"{"dependencies": {"a": "1"}, "devDependencies": {"jest": "1"}}"#,
        )
        .unwrap();
        pkg(root, "node_modules/a", &["b", "c"]);
        pkg(root, "node_modules/b", &[]);
        pkg(root, "node_modules/a/node_modules/c", &["b"]);
        pkg(root, "node_modules/jest", &["b"]);
        let d = production_deps(root);
        assert_eq!(
            d.packages,
            [
                "node_modules/a",
                "node_modules/a/node_modules/c",
                "node_modules/b"
            ]
        );
        assert!(d.warnings.is_empty());
    }

    #[test]
    fn lockfile_dev_flags_leave_dev_dependencies_out() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        std::fs::write(
            root.join("package.json"),
            r#"{"dependencies": {"a": "1"}, "devDependencies": {"jest": "1"}}"#,
        )
        .unwrap();
        pkg(root, "node_modules/a", &[]);
        pkg(root, "node_modules/jest", &[]);
        std::fs::write(
            root.join("package-lock.json"),
            r#"{"lockfileVersion": 3, "packages": {"": {}, "node_modules/a": {"version": "1.0.0"}, "node_modules/jest": {"dev": true}, "node_modules/fsevents": {"optional": true}}}"#,
        )
        .unwrap();
        assert_eq!(production_deps(root).packages, ["node_modules/a"]);
    }

    #[test]
    fn missing_node_modules_is_a_warning() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("package.json"),
            r#"{"dependencies": {"a": "1"}}"#,
        )
        .unwrap();
        let d = production_deps(dir.path());
        assert!(d.packages.is_empty());
        assert!(d.warnings[0].contains("npm ci --omit=dev"));
    }
}
