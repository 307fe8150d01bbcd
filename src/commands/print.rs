//! `ferry print`.

use super::{load_options, Exit};
use crate::cli::{Format, Global};
use crate::output::print_diags;

/// Runs the command.
pub fn run(g: &Global, model: bool) -> anyhow::Result<Exit> {
    match ferry_core::load(&load_options(g)) {
        Ok(l) => {
            print_diags(g, &l.warnings, &l.sources);
            let value = if model {
                serde_json::to_value(&l.service)?
            } else {
                l.resolved.to_json()
            };
            match g.format.unwrap_or(Format::Yaml) {
                Format::Json => outln!("{}", serde_json::to_string_pretty(&value)?),
                Format::Yaml | Format::Text | Format::Markdown => {
                    out!("{}", ferry_core::yaml::to_yaml(&value))
                }
            }
            Ok(Exit::Ok)
        }
        Err(f) => {
            print_diags(g, &f.diags, &f.sources);
            Ok(Exit::UserError)
        }
    }
}
