//! `ferry state list|show|unlock`: the state of this service, stage and provider, and where
//! it lives (a local file, or S3 when the manifest says so).

use super::{load_options, runtime, Exit};
use crate::cli::{Format, Global, StateCommand};
use crate::output::print_diags;
use ferry_core::engine::{LocalBackend, StateBackend, StateError};
use ferry_core::model::ProviderName;

/// A loaded service with its folder and state backend.
pub struct Located {
    /// The state backend: S3 when `provider.aws.state` names a bucket, else the local file.
    pub backend: Box<dyn StateBackend>,
    /// The model.
    pub service: ferry_core::Service,
    /// The manifest's folder.
    pub root: std::path::PathBuf,
    /// The provider chosen.
    pub provider: ProviderName,
}

/// Loads the manifest in this folder and finds its state backend, or returns the exit code
/// (the error printed). Warnings are printed when `warn` is set.
pub fn locate(g: &Global, rt: &tokio::runtime::Runtime, warn: bool) -> Result<Located, Exit> {
    let l = match ferry_core::load(&load_options(g)) {
        Ok(l) => l,
        Err(f) => {
            print_diags(g, &f.diags, &f.sources);
            return Err(Exit::UserError);
        }
    };
    if warn {
        print_diags(g, &l.warnings, &l.sources);
    }
    let Some(provider) = g.provider.or(l.service.provider) else {
        eprintln!("error: no provider chosen; pass --provider (aws, azure, gcp or local) or set provider.name in the manifest");
        return Err(Exit::UserError);
    };
    let cwd = std::env::current_dir().unwrap_or_default();
    let manifest = if l.path.is_absolute() {
        l.path.clone()
    } else {
        cwd.join(&l.path)
    };
    let root = manifest.parent().map(|p| p.to_path_buf()).unwrap_or(cwd);
    let backend: Box<dyn StateBackend> = match remote_state(&l.service, provider) {
        Ok(Some(loc)) => {
            let conf = rt.block_on(ferry_aws::sdk_config(
                g.region.clone().or_else(|| l.service.region.clone()),
            ));
            let s3 = ferry_aws::Clients::new(&conf).s3;
            Box::new(ferry_aws::S3Backend::new(
                s3,
                &loc,
                &l.service.service,
                &l.service.stage,
            ))
        }
        Ok(None) => Box::new(LocalBackend::new(
            &root,
            &l.service.service,
            &l.service.stage,
            provider.as_str(),
        )),
        Err(e) => {
            eprintln!("error: {e}");
            return Err(Exit::UserError);
        }
    };
    Ok(Located {
        backend,
        service: l.service,
        root,
        provider,
    })
}

/// The remote state location of the manifest, if it names one.
fn remote_state(
    service: &ferry_core::Service,
    provider: ProviderName,
) -> Result<Option<ferry_aws::state_s3::S3Location>, String> {
    match provider {
        ProviderName::Aws => {
            ferry_aws::state_s3::S3Location::from_settings(service.settings.get("aws"))
        }
        _ => Ok(None),
    }
}

/// Runs the command.
pub fn run(g: &Global, cmd: StateCommand) -> anyhow::Result<Exit> {
    let rt = runtime()?;
    let backend = match locate(g, &rt, false) {
        Ok(l) => l.backend,
        Err(code) => return Ok(code),
    };
    match cmd {
        StateCommand::List => {
            let Some(state) = rt.block_on(backend.read())? else {
                eprintln!("no state at {}: nothing deployed yet", backend.location());
                return Ok(Exit::Ok);
            };
            if g.format == Some(Format::Json) {
                let list: Vec<_> = state
                    .resources
                    .iter()
                    .map(|(a, r)| serde_json::json!({"address": a, "kind": r.kind, "function": r.function}))
                    .collect();
                outln!("{}", serde_json::to_string_pretty(&list)?);
            } else {
                for (addr, r) in &state.resources {
                    outln!("{addr}\t{}", r.kind);
                }
                if !g.quiet {
                    eprintln!(
                        "{} resource{} (state serial {}, lineage {})",
                        state.resources.len(),
                        if state.resources.len() == 1 { "" } else { "s" },
                        state.serial,
                        state.lineage
                    );
                }
            }
            Ok(Exit::Ok)
        }
        StateCommand::Show { address } => {
            let state = rt.block_on(backend.read())?;
            match state.as_ref().and_then(|s| s.resources.get(&address)) {
                Some(r) => {
                    outln!("{}", serde_json::to_string_pretty(r)?);
                    Ok(Exit::Ok)
                }
                None => {
                    eprintln!(
                        "error: no resource `{address}` in {}; `ferry state list` shows the addresses",
                        backend.location()
                    );
                    Ok(Exit::UserError)
                }
            }
        }
        StateCommand::Unlock { force } => match rt.block_on(backend.force_unlock(force)) {
            Ok(info) => {
                outln!("released the lock held by {info}");
                Ok(Exit::Ok)
            }
            Err(e @ (StateError::NotLocked | StateError::MaybeAlive(_))) => {
                eprintln!("error: {e}");
                Ok(Exit::UserError)
            }
            Err(e) => Err(e.into()),
        },
    }
}
