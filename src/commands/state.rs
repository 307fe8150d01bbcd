//! `ferry state list|show|unlock`: the local state of this service, stage and provider.

use super::{load_options, runtime, Exit};
use crate::cli::{Format, Global, StateCommand};
use crate::output::print_diags;
use ferry_core::engine::{LocalBackend, StateBackend, StateError};

/// The state backend for the manifest in this folder, or the exit code when there is none.
pub fn backend(g: &Global) -> Result<(LocalBackend, ferry_core::Service), Exit> {
    let l = match ferry_core::load(&load_options(g)) {
        Ok(l) => l,
        Err(f) => {
            print_diags(g, &f.diags, &f.sources);
            return Err(Exit::UserError);
        }
    };
    let Some(provider) = g.provider.or(l.service.provider) else {
        eprintln!("error: no provider chosen; pass --provider (aws, azure, gcp or local) or set provider.name in the manifest");
        return Err(Exit::UserError);
    };
    let root = l.path.parent().map(|p| p.to_path_buf()).unwrap_or_default();
    let b = LocalBackend::new(
        &root,
        &l.service.service,
        &l.service.stage,
        provider.as_str(),
    );
    Ok((b, l.service))
}

/// Runs the command.
pub fn run(g: &Global, cmd: StateCommand) -> anyhow::Result<Exit> {
    let (backend, _) = match backend(g) {
        Ok(b) => b,
        Err(code) => return Ok(code),
    };
    let rt = runtime()?;
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
                println!("{}", serde_json::to_string_pretty(&list)?);
            } else {
                for (addr, r) in &state.resources {
                    println!("{addr}\t{}", r.kind);
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
                    println!("{}", serde_json::to_string_pretty(r)?);
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
                println!("released the lock held by {info}");
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
