//! The Function App package: one folder per app (what `func start` or the platform runs) and
//! its deterministic zip, from the function zips `ferry_core::package` built.
//!
//! Layout of an app (node shown; python has `ferry/adapter.py`, custom apps `ferry-adapter`):
//!
//! ```text
//! host.json
//! <azure function>/function.json   one per trigger (see `app`)
//! ferry/functions.json             what the adapter runs for each Azure function
//! ferry/adapter.js                 Azure invocation -> Lambda event -> handler -> response
//! src/handler.js ...               the union of the app's function packages
//! ```

use crate::app::{App, Family, CUSTOM_ADAPTER, NODE_ADAPTER, PYTHON_ADAPTER};
use ferry_core::package::zipper::{write_zip, Entry};
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Path, PathBuf};

/// The node adapter (`templates/azure/node/adapter.js`), shipped inside the binary.
pub const NODE_ADAPTER_SOURCE: &str = include_str!("../../../templates/azure/node/adapter.js");
/// The python adapter (`templates/azure/python/adapter.py`).
pub const PYTHON_ADAPTER_SOURCE: &str = include_str!("../../../templates/azure/python/adapter.py");

/// The owner recorded for the files ferry generates (not a function name: those cannot
/// contain spaces).
const GENERATED: &str = "ferry (generated)";

/// One app's package, as written.
#[derive(Debug, Clone, PartialEq)]
pub struct AppPackage {
    /// Its language worker.
    pub family: Family,
    /// The unpacked app folder.
    pub dir: PathBuf,
    /// The zip of that folder.
    pub zip: PathBuf,
    /// Hex sha256 of the zip.
    pub sha256: String,
    /// Zip size in bytes.
    pub size: u64,
    /// Files in the zip.
    pub files: usize,
}

/// Azure function names: a letter, then up to 127 letters, digits, `_` and `-`.
fn valid_function_name(n: &str) -> bool {
    let mut c = n.chars();
    c.next().is_some_and(|f| f.is_ascii_alphabetic())
        && n.len() <= 128
        && c.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
}

/// `ferry-azure-adapter`, the custom handler: installed next to the `ferry` executable.
pub fn find_custom_adapter() -> Option<PathBuf> {
    let exe = std::env::current_exe().ok()?;
    let p = exe.with_file_name(format!(
        "ferry-azure-adapter{}",
        std::env::consts::EXE_SUFFIX
    ));
    p.is_file().then_some(p)
}

/// Writes `app` under `out_dir/azure/<runtime>/` and zips it to `out_dir/azure-<runtime>.zip`.
/// `function_zips` maps each ferry function to the zip `ferry_core::package` made for it. A
/// custom app keeps each function's files under `fns/<function>/` and gets `custom_adapter`
/// (the `ferry-azure-adapter` executable) as its custom handler.
pub fn write_app(
    app: &App,
    out_dir: &Path,
    function_zips: &BTreeMap<String, PathBuf>,
    custom_adapter: Option<&Path>,
) -> Result<AppPackage, String> {
    let runtime = app.family.worker_runtime();
    let dir = out_dir.join("azure").join(runtime);
    if dir.exists() {
        std::fs::remove_dir_all(&dir).map_err(|e| format!("clearing {}: {e}", dir.display()))?;
    }
    // path in the app → (the function whose package brought it, its bytes)
    let mut files: BTreeMap<String, (String, Vec<u8>, bool)> = BTreeMap::new();
    let mut sources: Vec<&String> = app.origin.values().collect();
    sources.sort();
    sources.dedup();
    for function in sources {
        let path = function_zips
            .get(function)
            .ok_or_else(|| format!("function `{function}` was not packaged"))?;
        let prefix = match app.family {
            Family::Custom => format!("{}/", crate::adapter::function_dir(function)),
            _ => String::new(),
        };
        unzip_into(function, path, &prefix, &mut files)?;
    }
    let mut generated: Vec<(String, Vec<u8>, bool)> = Vec::new();
    let pretty = |v: &serde_json::Value| {
        let mut s = serde_json::to_string_pretty(v).expect("JSON serialises");
        s.push('\n');
        s.into_bytes()
    };
    generated.push(("host.json".into(), pretty(&app.host), false));
    for (name, fj) in &app.functions {
        if !valid_function_name(name) {
            return Err(format!(
                "`{name}` is not a valid Azure function name (a letter, then letters, digits, `_` or `-`, at most 128); rename the function"
            ));
        }
        generated.push((format!("{name}/function.json"), pretty(fj), false));
    }
    generated.push(("ferry/functions.json".into(), pretty(&app.adapter), false));
    match app.family {
        Family::Node => generated.push((NODE_ADAPTER.into(), NODE_ADAPTER_SOURCE.into(), false)),
        Family::Python => {
            generated.push((PYTHON_ADAPTER.into(), PYTHON_ADAPTER_SOURCE.into(), false))
        }
        Family::Custom => {
            let exe = custom_adapter.ok_or_else(|| {
                "ferry-azure-adapter (the custom handler that runs Runtime API binaries on Azure) is not next to the ferry executable; it is built and installed with ferry (`cargo install --path .` installs both)".to_owned()
            })?;
            let bytes = std::fs::read(exe).map_err(|e| format!("{}: {e}", exe.display()))?;
            generated.push((CUSTOM_ADAPTER.into(), bytes, true));
        }
    }
    for (name, bytes, exec) in generated {
        let top = name.split('/').next().unwrap_or_default();
        let dir_prefix = format!("{top}/");
        let clash = files.iter().find(|(k, (owner, _, _))| {
            owner != GENERATED
                && (*k == &name
                    || name.contains('/') && (k.starts_with(&dir_prefix) || k.as_str() == top))
        });
        if let Some((_, (owner, _, _))) = clash {
            return Err(format!(
                "`{name}` is a file ferry generates for Azure, but function `{owner}`'s package has `{top}` too; rename the function or move that file"
            ));
        }
        files.insert(name, (GENERATED.into(), bytes, exec));
    }
    let mut entries = Vec::new();
    for (name, (_, bytes, executable)) in &files {
        let path = dir.join(name);
        std::fs::create_dir_all(path.parent().expect("inside the app folder"))
            .and_then(|()| std::fs::write(&path, bytes))
            .map_err(|e| format!("writing {}: {e}", path.display()))?;
        #[cfg(unix)]
        if *executable {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755))
                .map_err(|e| format!("chmod {}: {e}", path.display()))?;
        }
        entries.push(Entry {
            name: name.clone(),
            source: path,
            executable: *executable,
        });
    }
    let zip = out_dir.join(format!("azure-{runtime}.zip"));
    let tmp = zip.with_extension("zip.tmp");
    let file = std::fs::File::create(&tmp).map_err(|e| format!("{}: {e}", tmp.display()))?;
    write_zip(std::io::BufWriter::new(file), &mut entries)
        .map_err(|e| format!("writing {}: {e}", tmp.display()))?;
    std::fs::rename(&tmp, &zip).map_err(|e| format!("{}: {e}", zip.display()))?;
    let bytes = std::fs::read(&zip).map_err(|e| format!("{}: {e}", zip.display()))?;
    Ok(AppPackage {
        family: app.family,
        dir,
        sha256: hex::encode(Sha256::digest(&bytes)),
        size: bytes.len() as u64,
        files: entries.len(),
        zip,
    })
}

/// Adds a function zip's files; the same path from two functions must hold the same bytes.
fn unzip_into(
    function: &str,
    path: &Path,
    prefix: &str,
    files: &mut BTreeMap<String, (String, Vec<u8>, bool)>,
) -> Result<(), String> {
    let f = std::fs::File::open(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let mut z = zip::ZipArchive::new(f).map_err(|e| format!("{}: {e}", path.display()))?;
    for i in 0..z.len() {
        let mut e = z
            .by_index(i)
            .map_err(|e| format!("{}: {e}", path.display()))?;
        if e.is_dir() {
            continue;
        }
        let Some(name) = e.enclosed_name() else {
            return Err(format!("{}: unsafe path {:?}", path.display(), e.name()));
        };
        let name = format!("{prefix}{}", name.to_string_lossy().replace('\\', "/"));
        let executable = e.unix_mode().is_some_and(|m| m & 0o111 != 0);
        let mut bytes = Vec::with_capacity(e.size() as usize);
        e.read_to_end(&mut bytes)
            .map_err(|e| format!("{}: {e}", path.display()))?;
        match files.get(&name) {
            Some((other, prev, _)) if *prev != bytes => {
                return Err(format!(
                    "functions `{other}` and `{function}` share one Function App but package different `{name}`; give them the same file or the same package settings"
                ));
            }
            Some(_) => {}
            None => {
                files.insert(name, (function.to_owned(), bytes, executable));
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn function_names() {
        assert!(valid_function_name("hello"));
        assert!(valid_function_name("nightly-schedule0"));
        assert!(!valid_function_name("0day"));
        assert!(!valid_function_name("a.b"));
        assert!(!valid_function_name(&"a".repeat(129)));
    }
}
