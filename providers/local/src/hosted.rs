//! Runtime API binaries inside a cloud's function host: Azure's custom handler and Cloud Run's
//! `ferry-adapter` both start each function's binary (`fns/<function>/bootstrap`) in the warm
//! pools `ferry dev` uses, with the Lambda environment the binary expects, and feed it the
//! events they build from what the platform delivered. The package's `ferry/functions.json`
//! says what to run (`function`, `handler`, `command`, `memory`, `timeout` per entry).

use crate::pool::{Pool, Spec};
use crate::Log;
use serde_json::Value;
use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

/// Where a package keeps each function's files: `fns/<function>/` (its `bootstrap`, ...).
pub fn function_dir(function: &str) -> String {
    format!("fns/{function}")
}

/// The package's `ferry/functions.json` and a pool per function it names.
pub struct Hosted {
    /// `ferry/functions.json`.
    pub manifest: Value,
    /// Warm pools by function.
    pub pools: BTreeMap<String, Arc<Pool>>,
}

/// The Lambda environment of one function, on top of the host's own (without any
/// `AWS_LAMBDA_*` the host had). `platform` (`azure`, `gcp`) names the log group and stream.
fn lambda_env(
    root: &Path,
    manifest: &Value,
    platform: &str,
    region: &str,
    function: &str,
    entry: &Value,
) -> BTreeMap<String, String> {
    let mut env: BTreeMap<String, String> = std::env::vars()
        .filter(|(k, _)| !k.starts_with("AWS_LAMBDA_"))
        .collect();
    let service = manifest["service"].as_str().unwrap_or("service");
    let stage = manifest["stage"].as_str().unwrap_or("dev");
    let deployed = format!("{service}-{stage}-{function}");
    let dir = root.join(function_dir(function));
    for (k, v) in [
        ("AWS_LAMBDA_FUNCTION_NAME", deployed.clone()),
        (
            "AWS_LAMBDA_FUNCTION_MEMORY_SIZE",
            entry["memory"].as_u64().unwrap_or(128).to_string(),
        ),
        ("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST".into()),
        (
            "AWS_LAMBDA_LOG_GROUP_NAME",
            format!("/{platform}/functions/{deployed}"),
        ),
        (
            "AWS_LAMBDA_LOG_STREAM_NAME",
            format!("{platform}/[$LATEST]ferry"),
        ),
        ("AWS_LAMBDA_INITIALIZATION_TYPE", "on-demand".into()),
        ("AWS_EXECUTION_ENV", "AWS_Lambda_provided.al2023".into()),
        ("AWS_REGION", region.to_owned()),
        ("LAMBDA_TASK_ROOT", dir.display().to_string()),
        (
            "_HANDLER",
            entry["handler"].as_str().unwrap_or_default().to_owned(),
        ),
    ] {
        env.insert(k.into(), v);
    }
    env
}

/// Reads `root/ferry/functions.json` and makes a pool per function (`concurrency` workers at
/// most each). `region` is used when the manifest names none.
pub fn load(
    root: &Path,
    platform: &str,
    region: &str,
    concurrency: usize,
) -> Result<Hosted, String> {
    let path = root.join("ferry/functions.json");
    let text = std::fs::read_to_string(&path).map_err(|e| format!("{}: {e}", path.display()))?;
    let manifest: Value =
        serde_json::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))?;
    let region = manifest["region"].as_str().unwrap_or(region).to_owned();
    let log = Log::new(false);
    let mut pools = BTreeMap::new();
    for entry in manifest["functions"]
        .as_object()
        .into_iter()
        .flat_map(|m| m.values())
    {
        let function = entry["function"].as_str().unwrap_or_default().to_owned();
        if pools.contains_key(&function) {
            continue;
        }
        let command = entry["command"].as_str().unwrap_or("bootstrap");
        let dir = root.join(function_dir(&function));
        let spec = Spec {
            name: function.clone(),
            command: vec![dir.join(command).display().to_string()],
            cwd: dir,
            env: lambda_env(root, &manifest, platform, &region, &function, entry),
            timeout: Duration::from_secs(entry["timeout"].as_u64().unwrap_or(30).max(1)),
            concurrency,
            arn: format!("{platform}:functions:{function}"),
            memory: entry["memory"].as_u64().unwrap_or(128) as u32,
            local_socket: false,
        };
        pools.insert(function, Pool::new(spec, log.clone()));
    }
    Ok(Hosted { manifest, pools })
}
