//! Helpers shared by the integration tests.

use std::path::{Path, PathBuf};

/// Every `serverless.yml`/`serverless.yaml` under `dir` (node_modules left out), sorted.
pub fn manifests(dir: &Path, out: &mut Vec<PathBuf>) {
    let mut entries: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .collect();
    entries.sort();
    for p in entries {
        if p.is_dir() {
            if p.file_name().is_some_and(|n| n == "node_modules") {
                continue;
            }
            manifests(&p, out);
        } else if p
            .file_name()
            .is_some_and(|n| n == "serverless.yml" || n == "serverless.yaml")
        {
            out.push(p);
        }
    }
}
