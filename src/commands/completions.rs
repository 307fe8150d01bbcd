//! `ferry completions <shell>`.

use super::Exit;
use crate::cli::Cli;
use clap::CommandFactory;

/// Runs the command.
pub fn run(shell: clap_complete::Shell) -> anyhow::Result<Exit> {
    clap_complete::generate(shell, &mut Cli::command(), "ferry", &mut std::io::stdout());
    Ok(Exit::Ok)
}
