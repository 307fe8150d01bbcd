//! Which files of the service folder go into a function's package, and their content hashes
//! (cached by size and modification time, so an unchanged tree is not read again; a touched
//! but unchanged file is read once and hashes the same).

use globset::{Glob, GlobSet, GlobSetBuilder};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::UNIX_EPOCH;

/// Left out unless a function's own `include` names them: version control, ferry's and the
/// Serverless Framework's own folders, dependencies (added separately), caches, virtual
/// environments, build output, tests, dotfiles and the manifest itself.
pub const DEFAULT_EXCLUDES: &[&str] = &[
    ".*",
    "**/.*",
    "**/.*/**",
    ".*/**",
    "node_modules/**",
    "**/__pycache__/**",
    "**/*.pyc",
    "venv/**",
    "target/**",
    "tests/**",
    "test/**",
    "__tests__/**",
    "**/*.test.js",
    "**/*.spec.js",
    "serverless.yaml",
    "serverless.yml",
    "serverless.json",
    "package-lock.json",
    "requirements.txt",
    "Cargo.toml",
    "Cargo.lock",
];

/// Compiled include / exclude patterns of one function.
pub struct Selector {
    include: Option<GlobSet>,
    exclude: GlobSet,
    /// Ordered Serverless Framework patterns: the glob set and, per glob, whether it excludes.
    patterns: Option<(GlobSet, Vec<bool>)>,
    defaults: &'static GlobSet,
}

/// A bad glob, with the pattern.
#[derive(Debug)]
pub struct BadGlob {
    /// The pattern.
    pub pattern: String,
    /// Why.
    pub reason: String,
}

/// Adds a pattern (and, for a plain path, everything below it) to a builder; returns how many
/// globs were added.
fn add(b: &mut GlobSetBuilder, p: &str) -> Result<usize, BadGlob> {
    let p = p.trim_start_matches("./");
    let bad = |e: globset::Error| BadGlob {
        pattern: p.to_owned(),
        reason: e.kind().to_string(),
    };
    b.add(Glob::new(p).map_err(bad)?);
    // `dir` and `dir/` also mean everything below it.
    if !p.contains('*') {
        b.add(Glob::new(&format!("{}/**", p.trim_end_matches('/'))).map_err(bad)?);
        return Ok(2);
    }
    Ok(1)
}

fn set(patterns: &[String]) -> Result<GlobSet, BadGlob> {
    let mut b = GlobSetBuilder::new();
    for p in patterns {
        add(&mut b, p)?;
    }
    b.build().map_err(|e| BadGlob {
        pattern: patterns.join(", "),
        reason: e.to_string(),
    })
}

fn defaults() -> &'static GlobSet {
    static DEFAULTS: std::sync::OnceLock<GlobSet> = std::sync::OnceLock::new();
    DEFAULTS.get_or_init(|| {
        set(&DEFAULT_EXCLUDES
            .iter()
            .map(|s| s.to_string())
            .collect::<Vec<_>>())
        .expect("default globs compile")
    })
}

impl Selector {
    /// Compiles patterns; an empty include list means everything. Non-empty `patterns` (the
    /// Serverless Framework's ordered form) take the place of include and exclude.
    pub fn new(
        include: &[String],
        exclude: &[String],
        patterns: &[String],
    ) -> Result<Self, BadGlob> {
        let ordered = if patterns.is_empty() {
            None
        } else {
            let mut b = GlobSetBuilder::new();
            let mut negated = Vec::new();
            for p in patterns {
                let (neg, glob) = match p.strip_prefix('!') {
                    Some(g) => (true, g),
                    None => (false, p.as_str()),
                };
                for _ in 0..add(&mut b, glob)? {
                    negated.push(neg);
                }
            }
            let set = b.build().map_err(|e| BadGlob {
                pattern: patterns.join(", "),
                reason: e.to_string(),
            })?;
            Some((set, negated))
        };
        Ok(Selector {
            include: if include.is_empty() {
                None
            } else {
                Some(set(include)?)
            },
            exclude: set(exclude)?,
            patterns: ordered,
            defaults: defaults(),
        })
    }

    /// The verdict of the last ordered pattern that matches, if any.
    fn last_pattern(&self, rel: &str) -> Option<bool> {
        let (set, negated) = self.patterns.as_ref()?;
        set.matches(rel).into_iter().max().map(|i| !negated[i])
    }

    /// Whether a service-relative path goes in. The user's excludes win over includes; an
    /// explicit include wins over ferry's default excludes. With ordered patterns, the last
    /// matching pattern decides, and the defaults decide when none matches.
    pub fn selects(&self, rel: &str) -> bool {
        if self.patterns.is_some() {
            return self
                .last_pattern(rel)
                .unwrap_or_else(|| !self.defaults.is_match(rel));
        }
        if self.exclude.is_match(rel) {
            return false;
        }
        match &self.include {
            Some(inc) => inc.is_match(rel),
            None => !self.defaults.is_match(rel),
        }
    }

    /// Whether a default exclude (and no explicit include) leaves this path out.
    pub fn excluded_by_default(&self, rel: &str) -> bool {
        if self.patterns.is_some() {
            return self.last_pattern(rel).is_none() && self.defaults.is_match(rel);
        }
        self.include.as_ref().is_none_or(|i| !i.is_match(rel)) && self.defaults.is_match(rel)
    }
}

/// A regular file of the service folder.
#[derive(Debug, Clone)]
pub struct SourceFile {
    /// `/`-separated path relative to the service folder.
    pub rel: String,
    /// Absolute path.
    pub abs: PathBuf,
    /// Size in bytes.
    pub size: u64,
    /// Executable bit.
    pub executable: bool,
}

/// Lists the files below `root`, skipping folders that are never packaged from the tree
/// (`.git`, `.ferry`, `node_modules`, `target`, ...), sorted by path.
pub fn list_files(root: &Path, skip_dirs: &[&str]) -> std::io::Result<Vec<SourceFile>> {
    let mut out = Vec::new();
    let walker = walkdir::WalkDir::new(root)
        .follow_links(false)
        .sort_by_file_name()
        .into_iter()
        .filter_entry(|e| {
            e.depth() == 0
                || !(e.file_type().is_dir() && skip_dirs.iter().any(|d| e.file_name() == *d))
        });
    for entry in walker {
        let entry = entry.map_err(std::io::Error::other)?;
        let ft = entry.file_type();
        let path = entry.path();
        // Symbolic links to files are packaged as the file they point to.
        let meta = if ft.is_symlink() {
            std::fs::metadata(path).ok()
        } else {
            entry.metadata().ok()
        };
        let Some(meta) = meta else { continue };
        if !meta.is_file() {
            continue;
        }
        let rel = path.strip_prefix(root).unwrap_or(path);
        let rel = rel
            .components()
            .map(|c| c.as_os_str().to_string_lossy())
            .collect::<Vec<_>>()
            .join("/");
        out.push(SourceFile {
            rel,
            abs: path.to_owned(),
            size: meta.len(),
            executable: is_executable(&meta),
        });
    }
    Ok(out)
}

#[cfg(unix)]
fn is_executable(meta: &std::fs::Metadata) -> bool {
    use std::os::unix::fs::PermissionsExt;
    meta.permissions().mode() & 0o111 != 0
}

#[cfg(not(unix))]
fn is_executable(_: &std::fs::Metadata) -> bool {
    false
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
struct Cached {
    size: u64,
    mtime_ns: u128,
    sha256: String,
}

/// Content hashes of files, remembered across runs in `.ferry/cache/file-hashes.json`.
#[derive(Debug, Default)]
pub struct HashCache {
    path: Option<PathBuf>,
    entries: Mutex<HashMap<PathBuf, Cached>>,
    dirty: Mutex<bool>,
}

impl HashCache {
    /// Loads the cache file (a missing or unreadable cache is an empty one).
    pub fn load(path: PathBuf) -> Self {
        let entries = std::fs::read(&path)
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .unwrap_or_default();
        HashCache {
            path: Some(path),
            entries: Mutex::new(entries),
            dirty: Mutex::new(false),
        }
    }

    /// The hex sha256 of a file's content.
    pub fn sha256(&self, path: &Path) -> std::io::Result<String> {
        let meta = std::fs::metadata(path)?;
        let mtime_ns = meta
            .modified()
            .ok()
            .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
            .map_or(0, |d| d.as_nanos());
        if let Some(c) = self.entries.lock().expect("cache lock").get(path) {
            if c.size == meta.len() && c.mtime_ns == mtime_ns {
                return Ok(c.sha256.clone());
            }
        }
        let sha = sha256_file(path)?;
        self.entries.lock().expect("cache lock").insert(
            path.to_owned(),
            Cached {
                size: meta.len(),
                mtime_ns,
                sha256: sha.clone(),
            },
        );
        *self.dirty.lock().expect("cache lock") = true;
        Ok(sha)
    }

    /// Writes the cache back when it changed.
    pub fn save(&self) -> std::io::Result<()> {
        let Some(path) = &self.path else {
            return Ok(());
        };
        if !*self.dirty.lock().expect("cache lock") {
            return Ok(());
        }
        let entries = self.entries.lock().expect("cache lock");
        let bytes = serde_json::to_vec(&*entries).map_err(std::io::Error::other)?;
        super::write_atomic(path, &bytes)
    }
}

/// The hex sha256 of a file.
pub fn sha256_file(path: &Path) -> std::io::Result<String> {
    let mut f = std::fs::File::open(path)?;
    let mut h = Sha256::new();
    std::io::copy(&mut f, &mut h)?;
    Ok(hex(&h.finalize()))
}

/// Lower-case hex.
pub fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write;
    bytes
        .iter()
        .fold(String::with_capacity(bytes.len() * 2), |mut s, b| {
            let _ = write!(s, "{b:02x}");
            s
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn includes_excludes_and_defaults() {
        let s = Selector::new(&[], &["**/*.md".into()], &[]).unwrap();
        assert!(s.selects("src/handler.js"));
        assert!(!s.selects("README.md"));
        assert!(!s.selects(".env"));
        assert!(!s.selects("src/.secret"));
        assert!(!s.selects(".git/config"));
        assert!(!s.selects("tests/test_x.py"));
        assert!(!s.selects("serverless.yaml"));
        let s = Selector::new(
            &["src/**".into(), "tests/fixtures".into()],
            &["**/*_test.js".into()],
            &[],
        )
        .unwrap();
        assert!(s.selects("src/a.js"));
        assert!(!s.selects("lib/a.js"));
        assert!(
            s.selects("tests/fixtures/data.json"),
            "an explicit include wins over the defaults"
        );
        assert!(!s.selects("src/a_test.js"), "an exclude wins over includes");
        assert!(
            s.excluded_by_default("tests/x.py")
                && !s.excluded_by_default("tests/fixtures/data.json")
        );
    }
}
