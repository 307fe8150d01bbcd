//! `ferry package`: one deterministic zip per function, cached by an inputs hash, built in
//! parallel.
//!
//! Every function's inputs (its files, dependencies, runtime, handler) are hashed first; zips
//! live in a content-addressed cache (`.ferry/cache/zips/<inputs-hash>.zip`), so identical
//! functions are zipped once and an unchanged function is never zipped again. Only when every
//! function succeeded are the zips linked into the output folder and the index written, so a
//! failed run leaves the previous artifacts as they were.

pub mod bundle;
pub mod node;
pub mod python;
pub mod rust;
pub mod select;
pub mod zipper;

use crate::model::{Architecture, Function, ProviderName, Runtime, Service};
use base64::Engine;
use rayon::prelude::*;
use select::{HashCache, Selector, SourceFile};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use zipper::Entry;

/// Version of `index.json`.
pub const INDEX_VERSION: u32 = 1;

/// Folders never packaged from the service tree itself.
const SKIP_DIRS: &[&str] = &[
    ".git",
    ".ferry",
    ".serverless",
    "node_modules",
    "target",
    "__pycache__",
    ".venv",
    "venv",
    ".tox",
    ".mypy_cache",
    ".pytest_cache",
];

/// Where and what to package.
#[derive(Debug, Clone)]
pub struct PackageOptions {
    /// The folder of the manifest; handler paths are relative to it.
    pub service_dir: PathBuf,
    /// Where the zips and `index.json` go (default `.ferry/build/<stage>/`).
    pub out_dir: PathBuf,
    /// The cache (default `.ferry/cache/`).
    pub cache_dir: PathBuf,
    /// Whose size limits apply (all known ones when `None`).
    pub provider: Option<ProviderName>,
    /// Package only these functions (all when empty).
    pub only: Vec<String>,
}

impl PackageOptions {
    /// The defaults for a service folder and stage.
    pub fn new(service_dir: &Path, stage: &str) -> Self {
        PackageOptions {
            service_dir: service_dir.to_owned(),
            out_dir: service_dir.join(".ferry").join("build").join(stage),
            cache_dir: service_dir.join(".ferry").join("cache"),
            provider: None,
            only: vec![],
        }
    }
}

/// One function's artifact, as recorded in `index.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Artifact {
    /// The zip, relative to the output folder.
    pub path: String,
    /// Hex sha256 of the zip.
    pub sha256: String,
    /// Base64 sha256 of the zip: what AWS Lambda reports as `CodeSha256`.
    pub code_sha256: String,
    /// Zip size in bytes.
    pub size: u64,
    /// Sum of the files' sizes.
    pub unzipped_size: u64,
    /// Number of files.
    pub files: usize,
    /// Hash of everything that went in; equal hashes mean equal zips.
    pub inputs_hash: String,
}

/// `index.json`: every function's artifact.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PackageIndex {
    /// Shape version.
    pub format_version: u32,
    /// Service name.
    pub service: String,
    /// Stage.
    pub stage: String,
    /// Function name → artifact.
    pub functions: BTreeMap<String, Artifact>,
}

/// The result of a run.
#[derive(Debug)]
pub struct Packaged {
    /// The index, as written.
    pub index: PackageIndex,
    /// Functions whose zip came from the cache.
    pub reused: Vec<String>,
    /// Functions that got the zip another function's build made in this run.
    pub shared: Vec<String>,
    /// Things worth telling the user.
    pub notes: Vec<String>,
}

/// Hooks for a progress display.
pub trait Progress: Sync {
    /// `total` functions will be packaged.
    fn begin(&self, _total: usize) {}
    /// One function is done.
    fn done(&self, _function: &str, _reused: bool) {}
}

/// No progress display.
pub struct Quiet;
impl Progress for Quiet {}

/// Why packaging failed. Every message names the function, the path and the fix.
#[derive(Debug, thiserror::Error)]
pub enum PackageError {
    /// A file the function needs is not there.
    #[error("function `{function}`: {} is missing\n  hint: {hint}", path.display())]
    Missing {
        /// Function(s).
        function: String,
        /// The file.
        path: PathBuf,
        /// The fix.
        hint: String,
    },
    /// A build step failed.
    #[error("function `{function}`: `{command}` failed\n{output}\n  hint: {hint}")]
    Build {
        /// Function(s).
        function: String,
        /// The command.
        command: String,
        /// Its output (the end of it).
        output: String,
        /// The fix.
        hint: String,
    },
    /// The package is over a provider's limit.
    #[error("function `{function}`: the package is {} ({what}), over {provider}'s limit of {}; largest files:\n{largest}\n  hint: leave files out with `package.exclude`, or move large dependencies to a layer or a container image", mb(*size), mb(*limit))]
    TooLarge {
        /// Function.
        function: String,
        /// Provider.
        provider: &'static str,
        /// `zipped` or `unzipped`.
        what: &'static str,
        /// Size.
        size: u64,
        /// Limit.
        limit: u64,
        /// The largest files, one per line.
        largest: String,
    },
    /// A bad glob in `package.include` / `package.exclude`.
    #[error("function `{function}`: bad package pattern `{pattern}`: {reason}\n  hint: use glob syntax such as `src/**` or `**/*.test.js`")]
    Glob {
        /// Function.
        function: String,
        /// Pattern.
        pattern: String,
        /// Why.
        reason: String,
    },
    /// Reading or writing a file failed.
    #[error("{}: {message}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The error.
        message: String,
    },
}

impl PackageError {
    fn io(path: &Path, e: std::io::Error) -> Self {
        PackageError::Io {
            path: path.to_owned(),
            message: e.to_string(),
        }
    }

    /// Whether the user's manifest or files are at fault (exit code 2) rather than a tool.
    pub fn is_user_error(&self) -> bool {
        matches!(
            self,
            PackageError::Missing { .. }
                | PackageError::TooLarge { .. }
                | PackageError::Glob { .. }
        )
    }
}

fn mb(bytes: u64) -> String {
    format!("{:.1} MB", bytes as f64 / (1024.0 * 1024.0))
}

/// Published package size limits (zipped, unzipped), in bytes. AWS Lambda: 50 MB zipped for a
/// direct upload, 250 MB unzipped. Google Cloud Functions: 100 MB zipped source upload,
/// 500 MB unzipped. Azure publishes no smaller limit than these for zip deployment.
pub fn size_limits(provider: Option<ProviderName>) -> Vec<(&'static str, u64, u64)> {
    const MIB: u64 = 1024 * 1024;
    let all = [("aws", 50 * MIB, 250 * MIB), ("gcp", 100 * MIB, 500 * MIB)];
    match provider {
        None => all.to_vec(),
        Some(p) => all
            .iter()
            .filter(|(n, _, _)| *n == p.as_str())
            .copied()
            .collect(),
    }
}

/// What goes into one function's zip, before hashing.
struct Plan {
    function: String,
    /// Sorted by name; shared by functions that select the same files.
    entries: Arc<Vec<Entry>>,
    /// A prebuilt zip given by `package.artifact`.
    prebuilt: Option<PathBuf>,
}

/// Packages every function of `service`.
pub fn package(
    service: &Service,
    opts: &PackageOptions,
    progress: &dyn Progress,
) -> Result<Packaged, PackageError> {
    let root = &opts.service_dir;
    let functions: Vec<(&String, &Function)> = service
        .functions
        .iter()
        .filter(|(n, _)| opts.only.is_empty() || opts.only.contains(n))
        .collect();
    for name in &opts.only {
        if !service.functions.contains_key(name) {
            return Err(PackageError::Missing {
                function: name.clone(),
                path: PathBuf::from(name),
                hint: format!(
                    "there is no function `{name}`; the functions are {}",
                    service
                        .functions
                        .keys()
                        .cloned()
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            });
        }
    }
    progress.begin(functions.len());
    let mut notes = Vec::new();
    // The output folder may sit inside the service folder (`--out dist`): never package it.
    let tree: Vec<SourceFile> = select::list_files(root, SKIP_DIRS)
        .map_err(|e| PackageError::io(root, e))?
        .into_iter()
        .filter(|f| !f.abs.starts_with(&opts.out_dir) && !f.abs.starts_with(&opts.cache_dir))
        .collect();

    // Dependencies, once per service.
    let mut node_files: Vec<SourceFile> = Vec::new();
    if functions
        .iter()
        .any(|(_, f)| matches!(f.runtime, Runtime::Node(_)) && f.package.artifact.is_none())
    {
        let deps = node::production_deps(root);
        notes.extend(deps.warnings);
        for pkg in &deps.packages {
            let dir = root.join(pkg);
            for mut f in select::list_files(&dir, &["node_modules", ".bin"])
                .map_err(|e| PackageError::io(&dir, e))?
            {
                f.rel = format!("{pkg}/{}", f.rel);
                node_files.push(f);
            }
        }
    }
    let mut python_deps: BTreeMap<(u32, Architecture), Vec<SourceFile>> = BTreeMap::new();
    for (name, f) in &functions {
        if let (Runtime::Python(minor), None) = (&f.runtime, &f.package.artifact) {
            let key = (*minor, f.architecture);
            if python_deps.contains_key(&key) {
                continue;
            }
            let files = match python::vendor(root, &opts.cache_dir, *minor, f.architecture, name)? {
                Some((dir, warnings)) => {
                    notes.extend(warnings);
                    select::list_files(&dir, &["__pycache__", "bin"])
                        .map_err(|e| PackageError::io(&dir, e))?
                        .into_iter()
                        .filter(|f| f.rel != ".ferry-complete" && !f.rel.ends_with(".pyc"))
                        .collect()
                }
                None => vec![],
            };
            python_deps.insert(key, files);
        }
    }
    // Rust binaries, one cargo invocation per architecture.
    let mut rust_bins: BTreeMap<String, PathBuf> = BTreeMap::new();
    for arch in [Architecture::X86_64, Architecture::Arm64] {
        let bins: Vec<(String, String)> = functions
            .iter()
            .filter(|(_, f)| {
                f.runtime == Runtime::Rust && f.architecture == arch && f.package.artifact.is_none()
            })
            .map(|(n, f)| ((*n).clone(), f.handler.clone()))
            .collect();
        if bins.is_empty() {
            continue;
        }
        let built = rust::build(root, &bins, arch)?;
        notes.push(format!("rust: {}", built.how));
        for (function, bin) in &bins {
            let exe = built
                .binaries
                .iter()
                .find(|(n, _)| n == bin)
                .map(|(_, p)| p.clone())
                .expect("checked by build");
            rust_bins.insert(function.clone(), exe);
        }
    }

    // What goes into each zip. Functions with the same runtime family and patterns select the
    // same files, so a selection is computed (and later hashed) once and shared.
    type Key = (String, Vec<String>, Vec<String>, Vec<String>);
    let mut selections: BTreeMap<Key, Arc<Vec<Entry>>> = BTreeMap::new();
    let mut plans = Vec::with_capacity(functions.len());
    for (name, f) in &functions {
        if let Some(artifact) = &f.package.artifact {
            let path = root.join(artifact);
            if !path.is_file() {
                return Err(PackageError::Missing {
                    function: (*name).clone(),
                    path,
                    hint: "build the artifact first, or fix `package.artifact`".into(),
                });
            }
            plans.push(Plan {
                function: (*name).clone(),
                entries: Arc::new(vec![]),
                prebuilt: Some(path),
            });
            continue;
        }
        let entries = match &f.runtime {
            Runtime::Rust => Arc::new(vec![Entry { name: "bootstrap".into(), source: rust_bins[*name].clone(), executable: true }]),
            Runtime::Other(rt) => {
                return Err(PackageError::Missing {
                    function: (*name).clone(),
                    path: root.join("<package.artifact>"),
                    hint: format!("ferry does not build `{rt}` functions; build a zip with your language's tools and set `package.artifact`"),
                })
            }
            rt => {
                let family = match rt {
                    Runtime::Python(minor) => format!("python3.{minor}-{:?}", f.architecture),
                    Runtime::Provided => format!("provided:{}", f.handler),
                    _ => "node".to_owned(),
                };
                let key = (family, f.package.include.clone(), f.package.exclude.clone(), f.package.patterns.clone());
                let selector = Selector::new(&f.package.include, &f.package.exclude, &f.package.patterns)
                    .map_err(|g| PackageError::Glob { function: (*name).clone(), pattern: g.pattern, reason: g.reason })?;
                let entries = match selections.get(&key) {
                    Some(e) => e.clone(),
                    None => {
                        let mut entries: Vec<Entry> = tree
                            .iter()
                            .filter(|sf| selector.selects(&sf.rel))
                            .map(|sf| Entry { name: sf.rel.clone(), source: sf.abs.clone(), executable: sf.executable })
                            .collect();
                        let deps = match rt {
                            Runtime::Node(_) => node_files.as_slice(),
                            Runtime::Python(minor) => python_deps.get(&(*minor, f.architecture)).map_or(&[][..], Vec::as_slice),
                            _ => &[],
                        };
                        entries.extend(deps.iter().map(|d| Entry { name: d.rel.clone(), source: d.abs.clone(), executable: d.executable }));
                        if *rt == Runtime::Provided && !entries.iter().any(|e| e.name == "bootstrap") {
                            entries.push(Entry { name: "bootstrap".into(), source: root.join(&f.handler), executable: true });
                        }
                        entries.sort_by(|a, b| a.name.cmp(&b.name));
                        let e = Arc::new(entries);
                        selections.insert(key, e.clone());
                        e
                    }
                };
                check_handler(name, f, rt, root, &entries, &selector)?;
                entries
            }
        };
        plans.push(Plan {
            function: (*name).clone(),
            entries,
            prebuilt: None,
        });
    }

    // Hash every distinct file once (from the cache when size and mtime are unchanged), then
    // every distinct selection once.
    let hashes = HashCache::load(opts.cache_dir.join("file-hashes.json"));
    // Walk each shared selection once (not once per function), then dedupe the paths.
    let mut seen_selections: std::collections::HashSet<*const Vec<Entry>> =
        std::collections::HashSet::new();
    let mut files: Vec<&Path> = Vec::new();
    for p in &plans {
        if seen_selections.insert(Arc::as_ptr(&p.entries)) {
            files.extend(p.entries.iter().map(|e| e.source.as_path()));
        }
        files.extend(p.prebuilt.as_deref());
    }
    let files: Vec<&Path> = {
        let mut unique = std::collections::HashSet::with_capacity(files.len());
        files.into_iter().filter(|f| unique.insert(*f)).collect()
    };
    let file_hashes: Vec<Result<(&Path, String), PackageError>> = files
        .par_iter()
        .map(|f| {
            hashes
                .sha256(f)
                .map(|h| (*f, h))
                .map_err(|e| PackageError::io(f, e))
        })
        .collect();
    let mut sha: HashMap<&Path, String> = HashMap::with_capacity(file_hashes.len());
    for r in file_hashes {
        let (f, h) = r?;
        sha.insert(f, h);
    }
    let mut by_selection: HashMap<(*const Vec<Entry>, Option<&Path>), String> = HashMap::new();
    let mut inputs = Vec::with_capacity(plans.len());
    for p in &plans {
        let key = (Arc::as_ptr(&p.entries), p.prebuilt.as_deref());
        let hash = by_selection
            .entry(key)
            .or_insert_with(|| {
                // Only what changes the bytes of the zip counts: runtime, architecture and
                // handler are deployment settings, and functions that ship the same files
                // share one zip.
                let mut h = Sha256::new();
                h.update(b"ferry-package-v1");
                if let Some(pre) = &p.prebuilt {
                    h.update(sha[pre.as_path()].as_bytes());
                }
                for e in p.entries.iter() {
                    h.update(
                        format!(
                            "\n{}\0{}\0{}",
                            e.name,
                            u8::from(e.executable),
                            sha[e.source.as_path()]
                        )
                        .as_bytes(),
                    );
                }
                select::hex(&h.finalize())
            })
            .clone();
        inputs.push(hash);
    }

    // Build each distinct zip once, into the content-addressed cache.
    let zips = opts.cache_dir.join("zips");
    std::fs::create_dir_all(&zips).map_err(|e| PackageError::io(&zips, e))?;
    let mut unique: BTreeMap<&str, usize> = BTreeMap::new();
    for (i, h) in inputs.iter().enumerate() {
        unique.entry(h.as_str()).or_insert(i);
    }
    let built: Vec<Result<(String, Built), PackageError>> = unique
        .par_iter()
        .map(|(hash, &i)| {
            let p = &plans[i];
            let path = zips.join(format!("{hash}.zip"));
            let meta_path = zips.join(format!("{hash}.json"));
            if let Some(b) = std::fs::read(&meta_path)
                .ok()
                .and_then(|m| serde_json::from_slice::<Built>(&m).ok())
            {
                if path.metadata().is_ok_and(|m| m.len() == b.size) {
                    return Ok(((*hash).to_owned(), Built { reused: true, ..b }));
                }
            }
            let b = build_zip(p, &path)?;
            let meta = serde_json::to_vec(&b)
                .map_err(|e| PackageError::io(&meta_path, std::io::Error::other(e)))?;
            write_atomic(&meta_path, &meta).map_err(|e| PackageError::io(&meta_path, e))?;
            Ok(((*hash).to_owned(), b))
        })
        .collect();
    let mut by_hash: BTreeMap<String, Built> = BTreeMap::new();
    let mut first_error = None;
    for r in built {
        match r {
            Ok((h, b)) => {
                by_hash.insert(h, b);
            }
            Err(e) => {
                first_error.get_or_insert(e);
            }
        }
    }
    if let Some(e) = first_error {
        return Err(e);
    }

    // Limits, before anything reaches the output folder.
    for (p, hash) in plans.iter().zip(&inputs) {
        let b = &by_hash[hash];
        for (provider, zipped, unzipped) in size_limits(opts.provider) {
            let over = if b.size > zipped {
                Some(("zipped", b.size, zipped))
            } else if b.unzipped_size > unzipped {
                Some(("unzipped", b.unzipped_size, unzipped))
            } else {
                None
            };
            if let Some((what, size, limit)) = over {
                let mut files: Vec<(u64, String)> = p
                    .entries
                    .iter()
                    .map(|e| {
                        (
                            std::fs::metadata(&e.source).map_or(0, |m| m.len()),
                            e.name.clone(),
                        )
                    })
                    .collect();
                files.sort_by(|a, b| b.cmp(a));
                let largest = files
                    .iter()
                    .take(5)
                    .map(|(s, n)| format!("    {:>10}  {n}", mb(*s)))
                    .collect::<Vec<_>>()
                    .join("\n");
                return Err(PackageError::TooLarge {
                    function: p.function.clone(),
                    provider,
                    what,
                    size,
                    limit,
                    largest,
                });
            }
        }
    }

    // Everything succeeded: link the zips into the output folder and write the index.
    std::fs::create_dir_all(&opts.out_dir).map_err(|e| PackageError::io(&opts.out_dir, e))?;
    let mut index = PackageIndex {
        format_version: INDEX_VERSION,
        service: service.service.clone(),
        stage: service.stage.clone(),
        functions: BTreeMap::new(),
    };
    let mut reused = Vec::new();
    let mut shared = Vec::new();
    let mut first_use: std::collections::HashSet<&str> = std::collections::HashSet::new();
    for (p, hash) in plans.iter().zip(&inputs) {
        let b = &by_hash[hash];
        let file = format!("{}.zip", p.function);
        let dest = opts.out_dir.join(&file);
        link_or_copy(&zips.join(format!("{hash}.zip")), &dest)
            .map_err(|e| PackageError::io(&dest, e))?;
        if b.reused {
            reused.push(p.function.clone());
        } else if !first_use.insert(hash.as_str()) {
            shared.push(p.function.clone());
        }
        progress.done(&p.function, b.reused);
        index.functions.insert(
            p.function.clone(),
            Artifact {
                path: file,
                sha256: b.sha256.clone(),
                code_sha256: b.code_sha256.clone(),
                size: b.size,
                unzipped_size: b.unzipped_size,
                files: b.files,
                inputs_hash: hash.clone(),
            },
        );
    }
    let index_path = opts.out_dir.join("index.json");
    let mut bytes = serde_json::to_vec_pretty(&index)
        .map_err(|e| PackageError::io(&index_path, std::io::Error::other(e)))?;
    bytes.push(b'\n');
    if std::fs::read(&index_path).ok().as_deref() != Some(bytes.as_slice()) {
        write_atomic(&index_path, &bytes).map_err(|e| PackageError::io(&index_path, e))?;
    }
    let _ = hashes.save();
    Ok(Packaged {
        index,
        reused,
        shared,
        notes,
    })
}

/// What the cache remembers about a zip.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Built {
    sha256: String,
    code_sha256: String,
    size: u64,
    unzipped_size: u64,
    files: usize,
    #[serde(skip)]
    reused: bool,
}

fn build_zip(p: &Plan, dest: &Path) -> Result<Built, PackageError> {
    let tmp = dest.with_extension(format!("tmp-{}", std::process::id()));
    let (unzipped_size, files) = if let Some(pre) = &p.prebuilt {
        std::fs::copy(pre, &tmp).map_err(|e| PackageError::io(pre, e))?;
        zip::ZipArchive::new(std::fs::File::open(pre).map_err(|e| PackageError::io(pre, e))?)
            .map(|z| (z.decompressed_size().unwrap_or(0) as u64, z.len()))
            .unwrap_or((0, 0))
    } else {
        let f = std::fs::File::create(&tmp).map_err(|e| PackageError::io(&tmp, e))?;
        let mut entries = (*p.entries).clone();
        let n = entries.len();
        let total = zipper::write_zip(std::io::BufWriter::new(f), &mut entries)
            .map_err(|e| PackageError::io(&tmp, e))?;
        (total, n)
    };
    let bytes = std::fs::read(&tmp).map_err(|e| PackageError::io(&tmp, e))?;
    let digest = Sha256::digest(&bytes);
    std::fs::rename(&tmp, dest).map_err(|e| PackageError::io(dest, e))?;
    Ok(Built {
        sha256: select::hex(&digest),
        code_sha256: base64::engine::general_purpose::STANDARD.encode(digest),
        size: bytes.len() as u64,
        unzipped_size,
        files,
        reused: false,
    })
}

fn check_handler(
    name: &str,
    f: &Function,
    rt: &Runtime,
    root: &Path,
    entries: &[Entry],
    selector: &Selector,
) -> Result<(), PackageError> {
    // Python splits the handler at its last dot; AWS's Node client splits the last path
    // segment at its first dot (`handler.v2.fn` is `v2.fn` in `handler.js`).
    let module = match rt {
        Runtime::Node(_) => {
            let (dir, last) = f
                .handler
                .rsplit_once('/')
                .unwrap_or(("", f.handler.as_str()));
            let file = last.split_once('.').map_or(last, |(m, _)| m);
            if dir.is_empty() {
                file.to_owned()
            } else {
                format!("{dir}/{file}")
            }
        }
        _ => f
            .handler
            .rsplit_once('.')
            .map_or(f.handler.as_str(), |(m, _)| m)
            .to_owned(),
    };
    let module = module.as_str();
    let candidates: Vec<String> = match rt {
        Runtime::Node(_) => ["js", "mjs", "cjs"]
            .iter()
            .map(|ext| format!("{module}.{ext}"))
            .collect(),
        Runtime::Python(_) => {
            let m = if module.contains('/') {
                module.to_owned()
            } else {
                module.replace('.', "/")
            };
            vec![format!("{m}.py"), format!("{m}/__init__.py")]
        }
        Runtime::Provided => vec![f.handler.clone(), "bootstrap".into()],
        _ => return Ok(()),
    };
    let candidates: Vec<String> = candidates
        .into_iter()
        .map(|c| c.trim_start_matches("./").to_owned())
        .collect();
    if entries.iter().any(|e| candidates.contains(&e.name)) {
        return Ok(());
    }
    let first = &candidates[0];
    let exists = candidates.iter().find(|c| root.join(c).is_file());
    Err(PackageError::Missing {
        function: name.to_owned(),
        path: root.join(exists.unwrap_or(first)),
        hint: match exists {
            Some(c) if selector.excluded_by_default(c) => format!("`{c}` exists but ferry leaves it out by default; add it to the function's `package.include`"),
            Some(c) => format!("`{c}` exists but `package.include`/`package.exclude` leave it out; adjust the patterns"),
            None => format!("handler `{}` needs `{}`; create it or fix `handler`", f.handler, candidates.join("` or `")),
        },
    })
}

fn link_or_copy(src: &Path, dest: &Path) -> std::io::Result<()> {
    // Already the same file (a hard link from an earlier run): nothing to do.
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        if let (Ok(a), Ok(b)) = (std::fs::metadata(src), std::fs::metadata(dest)) {
            if a.ino() == b.ino() && a.dev() == b.dev() {
                return Ok(());
            }
        }
    }
    let tmp = dest.with_extension(format!("zip.tmp-{}", std::process::id()));
    let _ = std::fs::remove_file(&tmp);
    if std::fs::hard_link(src, &tmp).is_err() {
        std::fs::copy(src, &tmp)?;
    }
    std::fs::rename(&tmp, dest)
}

/// Writes a file atomically: a temporary file in the same folder, fsync, rename.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let tmp = path.with_extension(format!("tmp-{}", std::process::id()));
    {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
    }
    std::fs::rename(&tmp, path)
}
