//! `ferry show plan.json`: renders a saved plan. Reads one file; no manifest, state or cloud.

use super::Exit;
use crate::cli::Global;
use crate::output::print_plan;
use anyhow::Context;
use ferry_core::engine::Plan;
use std::path::Path;

/// Runs the command.
pub fn run(g: &Global, path: &Path) -> anyhow::Result<Exit> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    match Plan::from_json(&text) {
        Ok(plan) => {
            print_plan(g, &plan);
            Ok(Exit::Ok)
        }
        Err(e) => {
            eprintln!("error: {}: {e}", path.display());
            Ok(Exit::UserError)
        }
    }
}
