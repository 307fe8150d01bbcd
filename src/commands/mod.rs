//! One module per command.

pub mod completions;
pub mod dev;
pub mod package;
pub mod print;
pub mod schema;
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
