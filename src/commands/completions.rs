//! `ferry completions <shell>`.

use super::Exit;
use crate::cli::Cli;
use clap::CommandFactory;

/// Runs the command.
pub fn run(shell: clap_complete::Shell) -> anyhow::Result<Exit> {
    let mut script = Vec::new();
    clap_complete::generate(shell, &mut Cli::command(), "ferry", &mut script);
    out!("{}", String::from_utf8_lossy(&script));
    Ok(Exit::Ok)
}
