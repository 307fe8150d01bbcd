//! Printing diagnostics and results: colour only on a terminal, JSON for scripts.

use crate::cli::{ColorChoice, Global};
use ferry_core::source::Sources;
use ferry_core::Diag;
use std::io::IsTerminal;

/// Writes ferry's output to stdout. When the reader has gone away (a closed pipe, as in
/// `ferry print | head`), ferry stops there with the status a Unix tool killed by `SIGPIPE`
/// has (141) and no message; `print!` would panic instead. Any other write error is reported
/// and ends ferry with status 1.
pub fn out(args: std::fmt::Arguments<'_>) {
    use std::io::Write;
    let mut stdout = std::io::stdout().lock();
    if let Err(e) = stdout.write_fmt(args).and_then(|()| stdout.flush()) {
        if e.kind() == std::io::ErrorKind::BrokenPipe {
            std::process::exit(141);
        }
        eprintln!("error: writing to standard output: {e}");
        std::process::exit(1);
    }
}

/// Whether stderr gets colour.
pub fn color_stderr(g: &Global) -> bool {
    match g.color {
        ColorChoice::Always => true,
        ColorChoice::Never => false,
        ColorChoice::Auto => {
            std::env::var_os("NO_COLOR").is_none() && std::io::stderr().is_terminal()
        }
    }
}

/// Prints diagnostics for people on stderr, and a count line.
pub fn print_diags(g: &Global, diags: &[Diag], sources: &Sources) {
    let color = color_stderr(g);
    for d in diags {
        if g.quiet && !d.is_error() {
            continue;
        }
        eprint!("{}", d.render(sources, color));
        eprintln!();
    }
    let errors = diags.iter().filter(|d| d.is_error()).count();
    let warnings = diags.len() - errors;
    if errors > 0 {
        eprintln!(
            "{} error{}{}; nothing was written",
            errors,
            if errors == 1 { "" } else { "s" },
            if warnings > 0 {
                format!(
                    ", {warnings} warning{}",
                    if warnings == 1 { "" } else { "s" }
                )
            } else {
                String::new()
            }
        );
    }
}

/// Diagnostics as JSON values.
pub fn diags_json(diags: &[Diag], sources: &Sources) -> Vec<serde_json::Value> {
    diags
        .iter()
        .map(|d| serde_json::to_value(d.to_json(sources)).expect("diagnostics serialize"))
        .collect()
}

/// Whether stdout gets colour.
pub fn color_stdout(g: &Global) -> bool {
    match g.color {
        ColorChoice::Always => true,
        ColorChoice::Never => false,
        ColorChoice::Auto => {
            std::env::var_os("NO_COLOR").is_none() && std::io::stdout().is_terminal()
        }
    }
}

/// Prints a plan in the chosen format: text (default), JSON or Markdown.
pub fn print_plan(g: &Global, plan: &ferry_core::engine::Plan) {
    use crate::cli::Format;
    use ferry_core::engine::render;
    match g.format {
        Some(Format::Json) => out!("{}", render::json(plan)),
        Some(Format::Markdown) => out!("{}", render::markdown(plan)),
        _ => out!("{}", render::text(plan, color_stdout(g))),
    }
}
