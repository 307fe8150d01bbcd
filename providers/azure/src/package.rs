//! The Function App package: one folder per app (what `func start` or the platform runs) and
//! its deterministic zip, from the function zips `ferry_core::package` built.
//!
//! Layout of an app (node shown; python has `ferry/adapter.py` and `ferry/ferry_lambda.py`,
//! custom apps `ferry-adapter`):
//!
//! ```text
//! host.json
//! <azure function>/function.json   one per trigger (see `app`)
//! ferry/functions.json             what the adapter runs for each Azure function
//! ferry/adapter.js                 Azure invocation -> neutral fields, and the result back
//! ferry/lambda.js                  neutral fields -> Lambda event -> handler (shared with the
//!                                  other providers' adapters)
//! src/handler.js ...               the union of the app's function packages
//! ```

use crate::app::{App, Family, CUSTOM_ADAPTER, NODE_ADAPTER, PYTHON_ADAPTER};
use ferry_core::package::bundle::Bundle;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// The node adapter (`templates/azure/node/adapter.js`), shipped inside the binary.
pub const NODE_ADAPTER_SOURCE: &str = include_str!("../../../templates/azure/node/adapter.js");
/// The python adapter (`templates/azure/python/adapter.py`).
pub const PYTHON_ADAPTER_SOURCE: &str = include_str!("../../../templates/azure/python/adapter.py");
/// The provider-neutral Lambda layer the node adapter requires
/// (`templates/adapters/node/lambda.js`), written next to it.
pub const NODE_LAMBDA_SOURCE: &str = include_str!("../../../templates/adapters/node/lambda.js");
/// The provider-neutral Lambda layer the python adapter imports
/// (`templates/adapters/python/ferry_lambda.py`), written next to it.
pub const PYTHON_LAMBDA_SOURCE: &str =
    include_str!("../../../templates/adapters/python/ferry_lambda.py");
/// Where a node app has [`NODE_LAMBDA_SOURCE`].
pub const NODE_LAMBDA: &str = "ferry/lambda.js";
/// Where a python app has [`PYTHON_LAMBDA_SOURCE`].
pub const PYTHON_LAMBDA: &str = "ferry/ferry_lambda.py";

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

/// Writes `app` under `out_dir/azure/<runtime>/` and zips it to `out_dir/azure-<runtime>.zip`.
/// `function_zips` are the zips `ferry_core::package` made, by function; `custom_adapter` the
/// adapter executable for the custom app.
pub fn write_app(
    app: &App,
    out_dir: &Path,
    function_zips: &BTreeMap<String, PathBuf>,
    custom_adapter: Option<&Path>,
) -> Result<AppPackage, String> {
    let runtime = app.family.worker_runtime();
    let mut b = Bundle::new();
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
        b.add_zip(function, path, &prefix, "one Function App")?;
    }
    let pretty = |v: &serde_json::Value| {
        let mut s = serde_json::to_string_pretty(v).expect("JSON serialises");
        s.push('\n');
        s.into_bytes()
    };
    let mut generated: Vec<(String, Vec<u8>, bool)> = Vec::new();
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
        Family::Node => {
            generated.push((NODE_ADAPTER.into(), NODE_ADAPTER_SOURCE.into(), false));
            generated.push((NODE_LAMBDA.into(), NODE_LAMBDA_SOURCE.into(), false));
        }
        Family::Python => {
            generated.push((PYTHON_ADAPTER.into(), PYTHON_ADAPTER_SOURCE.into(), false));
            generated.push((PYTHON_LAMBDA.into(), PYTHON_LAMBDA_SOURCE.into(), false));
        }
        Family::Custom => {
            let exe = custom_adapter.ok_or_else(ferry_core::package::bundle::missing_adapter)?;
            let bytes = std::fs::read(exe).map_err(|e| format!("{}: {e}", exe.display()))?;
            generated.push((CUSTOM_ADAPTER.into(), bytes, true));
        }
    }
    for (name, bytes, exec) in generated {
        b.add_generated(&name, bytes, exec, "Azure", false)?;
    }
    let w = b.write(
        &out_dir.join("azure").join(runtime),
        &out_dir.join(format!("azure-{runtime}.zip")),
    )?;
    Ok(AppPackage {
        family: app.family,
        dir: w.dir,
        zip: w.zip,
        sha256: w.sha256,
        size: w.size,
        files: w.files,
    })
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
