//! `ferry schema`.

use super::Exit;

/// Runs the command.
pub fn run() -> anyhow::Result<Exit> {
    outln!(
        "{}",
        serde_json::to_string_pretty(&ferry_core::manifest::json_schema())?
    );
    Ok(Exit::Ok)
}
