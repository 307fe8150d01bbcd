//! `ferry validate`.

use super::{load_options, Exit};
use crate::cli::{Format, Global};
use crate::output::{diags_json, print_diags};

/// Runs the command.
pub fn run(g: &Global, allow_unresolved: bool) -> anyhow::Result<Exit> {
    let json = g.format == Some(Format::Json);
    let mut opts = load_options(g);
    opts.allow_unresolved = allow_unresolved;
    match ferry_core::load(&opts) {
        Ok(l) => {
            let s = &l.service;
            if json {
                let out = serde_json::json!({
                    "valid": true,
                    "file": l.path.display().to_string(),
                    "service": s.service,
                    "stage": s.stage,
                    "dialect": s.dialect,
                    "functions": s.functions.len(),
                    "services": s.services.len(),
                    "triggers": s.functions.values().map(|f| f.triggers.len()).sum::<usize>(),
                    "diagnostics": diags_json(&l.warnings, &l.sources),
                });
                outln!("{}", serde_json::to_string_pretty(&out)?);
            } else {
                print_diags(g, &l.warnings, &l.sources);
                if !g.quiet {
                    let triggers: usize = s.functions.values().map(|f| f.triggers.len()).sum();
                    let warn = l.warnings.len();
                    outln!(
                        "{} is valid: service `{}`, stage `{}`, {} function{}, {} service{}, {} trigger{}{}",
                        l.path.display(),
                        s.service,
                        s.stage,
                        s.functions.len(),
                        plural(s.functions.len()),
                        s.services.len(),
                        plural(s.services.len()),
                        triggers,
                        plural(triggers),
                        if warn > 0 { format!(" ({warn} warning{})", plural(warn)) } else { String::new() }
                    );
                }
            }
            Ok(Exit::Ok)
        }
        Err(f) => {
            if json {
                let out = serde_json::json!({ "valid": false, "diagnostics": diags_json(&f.diags, &f.sources) });
                outln!("{}", serde_json::to_string_pretty(&out)?);
            } else {
                print_diags(g, &f.diags, &f.sources);
            }
            Ok(Exit::UserError)
        }
    }
}

fn plural(n: usize) -> &'static str {
    if n == 1 {
        ""
    } else {
        "s"
    }
}
