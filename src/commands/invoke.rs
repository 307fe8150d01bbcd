//! `ferry invoke <fn>`: one invocation on the local runtime.

use super::Exit;
use crate::cli::Global;
use crate::output::color_stderr;
use std::path::PathBuf;

/// `ferry invoke` options.
pub struct Args {
    pub function: String,
    pub data: Option<String>,
    pub path: Option<PathBuf>,
    pub event: Option<String>,
}

/// Runs the command.
pub fn run(g: &Global, a: Args) -> anyhow::Result<Exit> {
    let remote = g
        .provider
        .filter(|p| *p != ferry_core::model::ProviderName::Local);
    if let Some(p) = remote.filter(|p| *p != ferry_core::model::ProviderName::Aws) {
        eprintln!("error: `ferry invoke --provider {p}` is not available yet; `--provider aws` invokes the deployed function, and without --provider ferry invokes it locally");
        return Ok(Exit::UserError);
    }
    let (loaded, service_dir) = match super::load_service(g)? {
        Ok(x) => x,
        Err(code) => return Ok(code),
    };
    let service = loaded.service;
    if !service.functions.contains_key(&a.function) {
        let names: Vec<&str> = service.functions.keys().map(String::as_str).collect();
        let hint = ferry_core::diag::did_you_mean(&a.function, names.iter().copied())
            .map(|s| format!("did you mean `{s}`?"))
            .unwrap_or_else(|| format!("the functions are {}", names.join(", ")));
        eprintln!(
            "error: there is no function `{}`\n  hint: {hint}",
            a.function
        );
        return Ok(Exit::UserError);
    }
    let region = service.region.clone().unwrap_or_else(|| "us-east-1".into());
    let payload = match (&a.data, &a.path, &a.event) {
        (Some(d), _, _) => d.clone(),
        (_, Some(p), _) => std::fs::read_to_string(p)
            .map_err(|e| anyhow::anyhow!("cannot read {}: {e}", p.display()))?,
        (_, _, Some(kind)) => match ferry_local::samples::sample(kind, &region) {
            Some(e) => e.to_string(),
            None => {
                eprintln!(
                    "error: unknown event kind `{kind}`\n  hint: use one of {}",
                    ferry_local::samples::KINDS.join(", ")
                );
                return Ok(Exit::UserError);
            }
        },
        _ => "{}".to_owned(),
    };
    if serde_json::from_str::<serde_json::Value>(&payload).is_err() {
        eprintln!("error: the event is not valid JSON\n  hint: pass a JSON document with --data, --path or --event");
        return Ok(Exit::UserError);
    }

    if remote.is_some() {
        return invoke_aws(g, &service, &a.function, payload);
    }
    let binaries = super::dev::build_rust(&service, &service_dir)?;
    let opts = ferry_local::DevOptions {
        host: "127.0.0.1".into(),
        port: 0,
        aws_port: 0,
        service_dir,
        concurrency: 1,
        warm: false,
        color: color_stderr(g),
        binaries,
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    rt.block_on(async move {
        let dev = ferry_local::start(service, opts).await?;
        let result = dev.invoke(&a.function, payload.into()).await;
        dev.shutdown();
        Ok(match result {
            Some(ferry_local::pool::Result::Ok(b)) => {
                outln!("{}", String::from_utf8_lossy(&b));
                Exit::Ok
            }
            Some(ferry_local::pool::Result::FunctionError(b)) => {
                outln!("{}", String::from_utf8_lossy(&b));
                Exit::Failure
            }
            Some(ferry_local::pool::Result::Timeout) => {
                eprintln!("error: the function timed out");
                Exit::Failure
            }
            Some(ferry_local::pool::Result::Failed(why)) => {
                eprintln!("error: {why}");
                Exit::Failure
            }
            None => Exit::UserError,
        })
    })
}

/// Invokes the deployed function on AWS Lambda (synchronously) and prints its result.
fn invoke_aws(
    g: &Global,
    service: &ferry_core::Service,
    function: &str,
    payload: String,
) -> anyhow::Result<Exit> {
    let name = ferry_aws::compile::Names::new(service).function(function);
    let region = g.region.clone().or_else(|| service.region.clone());
    let rt = super::runtime()?;
    match rt.block_on(ferry_aws::invoke(region, &name, payload.into_bytes())) {
        Ok(r) => {
            outln!("{}", String::from_utf8_lossy(&r.payload));
            if let Some(e) = r.function_error {
                eprintln!("error: {name} failed ({e})");
                return Ok(Exit::Failure);
            }
            Ok(Exit::Ok)
        }
        Err(e) => {
            eprintln!("error: invoking {name}: {}", e.message);
            Ok(if e.not_found() {
                Exit::UserError
            } else {
                Exit::Failure
            })
        }
    }
}
