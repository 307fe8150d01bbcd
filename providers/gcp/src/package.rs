//! A function's source as Google Cloud runs it: the function's own package plus ferry's
//! adapter, one folder and one deterministic zip per function.
//!
//! ```text
//! node (Cloud Functions)        python (Cloud Functions)      rust, provided (Cloud Run)
//! src/handler.js ...            worker.py ...                 fns/<function>/bootstrap
//! package.json  (main: ferry/)  main.py (the adapter entry)   ferry-adapter (the command)
//! ferry/index.js, lambda.js     ferry/ferry_lambda.py         ferry/functions.json
//! ferry/functions.json          ferry/functions.json
//! ```
//!
//! The Functions Framework loads `package.json`'s `main` (node) or `main.py` (python) and calls
//! [`ENTRY_POINT`]; the adapter reads `ferry/functions.json` and calls the Lambda handler.

use crate::resources::{adapter_manifest, Context};
use ferry_core::model::{Function, Runtime, Service};
use ferry_core::package::bundle::{Bundle, Written};
use serde_json::{json, Value};
use std::path::Path;

/// The function every Cloud Function's `buildConfig.entryPoint` names.
pub const ENTRY_POINT: &str = "ferry";
/// The executable a Cloud Run service starts (ferry's Runtime API adapter, [`crate::adapter`]).
pub const RUN_ADAPTER: &str = ferry_core::package::bundle::ADAPTER;

/// The shared Lambda-shape part of the node adapters (`templates/adapters/node/lambda.js`).
pub const NODE_LAMBDA: &str = include_str!("../../../templates/adapters/node/lambda.js");
/// The Cloud Functions entry for node (`templates/gcp/node/index.js`).
pub const NODE_ENTRY: &str = include_str!("../../../templates/gcp/node/index.js");
/// The shared Lambda-shape part of the python adapters.
pub const PYTHON_LAMBDA: &str = include_str!("../../../templates/adapters/python/ferry_lambda.py");
/// The Cloud Functions entry for python (`templates/gcp/python/main.py`).
pub const PYTHON_ENTRY: &str = include_str!("../../../templates/gcp/python/main.py");

const PLATFORM: &str = "Google Cloud";

fn pretty(v: &Value) -> Vec<u8> {
    let mut s = serde_json::to_string_pretty(v).expect("JSON serialises");
    s.push('\n');
    s.into_bytes()
}

/// Writes function `name`'s source under `out_dir/gcp/<name>/` and zips it to
/// `out_dir/gcp-<name>.zip`. `function_zip` is the zip `ferry_core::package` made for it;
/// `run_adapter` the adapter executable for Cloud Run services.
pub fn write_function(
    service: &Service,
    ctx: &Context,
    name: &str,
    f: &Function,
    function_zip: &Path,
    out_dir: &Path,
    run_adapter: Option<&Path>,
) -> Result<Written, String> {
    let mut b = Bundle::new();
    let run = matches!(f.runtime, Runtime::Rust | Runtime::Provided);
    let prefix = if run {
        format!("fns/{name}/")
    } else {
        String::new()
    };
    b.add_zip(name, function_zip, &prefix, "one source")?;
    let manifest = adapter_manifest(service, ctx, name, f);
    b.add_generated(
        "ferry/functions.json",
        pretty(&manifest),
        false,
        PLATFORM,
        false,
    )?;
    match f.runtime {
        Runtime::Node(_) => {
            // The user's package.json keeps its dependencies; `main` becomes the adapter.
            let mut pkg = match b.get("package.json") {
                Some(bytes) => serde_json::from_slice::<Value>(bytes)
                    .map_err(|e| format!("function `{name}`: package.json: {e}"))?,
                None => json!({"name": crate::resources::id(name, 214), "private": true}),
            };
            pkg["main"] = json!("ferry/index.js");
            b.add_generated("package.json", pretty(&pkg), false, PLATFORM, true)?;
            b.add_generated("ferry/index.js", NODE_ENTRY.into(), false, PLATFORM, false)?;
            b.add_generated(
                "ferry/lambda.js",
                NODE_LAMBDA.into(),
                false,
                PLATFORM,
                false,
            )?;
            // The adapter is CommonJS whatever the function's package says.
            b.add_generated(
                "ferry/package.json",
                b"{\"type\": \"commonjs\"}\n".to_vec(),
                false,
                PLATFORM,
                false,
            )?;
        }
        Runtime::Python(_) => {
            b.add_generated("main.py", PYTHON_ENTRY.into(), false, PLATFORM, false)?;
            b.add_generated(
                "ferry/ferry_lambda.py",
                PYTHON_LAMBDA.into(),
                false,
                PLATFORM,
                false,
            )?;
        }
        _ => {
            let exe = run_adapter.ok_or_else(ferry_core::package::bundle::missing_adapter)?;
            let bytes = std::fs::read(exe).map_err(|e| format!("{}: {e}", exe.display()))?;
            b.add_generated(RUN_ADAPTER, bytes, true, PLATFORM, false)?;
        }
    }
    b.write(
        &out_dir.join("gcp").join(name),
        &out_dir.join(format!("gcp-{name}.zip")),
    )
}
