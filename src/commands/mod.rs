//! One module per command.

pub mod completions;
pub mod deploy;
pub mod dev;
pub mod info;
pub mod invoke;
pub mod package;
pub mod print;
pub mod schema;
pub mod show;
pub mod state;
pub mod validate;

use crate::cli::Global;
use ferry_core::LoadOptions;

/// Exit status: user errors (2) are kept apart from failures (1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    /// Success.
    Ok = 0,
    /// ferry or the cloud failed.
    Failure = 1,
    /// The user's input is wrong.
    UserError = 2,
}

#[allow(non_upper_case_globals)]
impl Exit {
    /// `--detailed-exitcode`: the plan has changes (shares 2 with user errors, as in Terraform).
    pub const Changes: Exit = Exit::UserError;
}

/// Loader options from the global flags.
pub fn load_options(g: &Global) -> LoadOptions {
    LoadOptions {
        config: g.config.clone(),
        cwd: std::env::current_dir().unwrap_or_default(),
        stage: g.stage.clone(),
        region: g.region.clone(),
        provider: g.provider,
        params: g.params.iter().cloned().collect(),
        env: None,
        allow_unresolved: false,
    }
}

/// A runtime for the engine's async calls; one thread is plenty for a CLI waiting on I/O.
pub fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?)
}

/// Loads the manifest for a command that works in the service's folder: prints warnings
/// (or the errors, returning the exit code), and returns the model and that folder.
pub fn load_service(
    g: &Global,
) -> anyhow::Result<Result<(ferry_core::Loaded, std::path::PathBuf), Exit>> {
    let loaded = match ferry_core::load(&load_options(g)) {
        Ok(l) => l,
        Err(f) => {
            crate::output::print_diags(g, &f.diags, &f.sources);
            return Ok(Err(Exit::UserError));
        }
    };
    crate::output::print_diags(g, &loaded.warnings, &loaded.sources);
    let cwd = std::env::current_dir()?;
    let manifest = if loaded.path.is_absolute() {
        loaded.path.clone()
    } else {
        cwd.join(&loaded.path)
    };
    let dir = manifest
        .parent()
        .map(std::path::PathBuf::from)
        .unwrap_or(cwd);
    Ok(Ok((loaded, dir)))
}
