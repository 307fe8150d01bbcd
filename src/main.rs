//! The `ferry` command line. Thin: it parses arguments, calls ferry-core and renders.

/// `print!` for ferry's results on stdout, through [`output::out`]: a reader that goes away
/// early (`ferry print | head`) ends ferry as it ends a Unix tool, not with a panic.
macro_rules! out {
    ($($arg:tt)*) => { $crate::output::out(format_args!($($arg)*)) };
}

/// `println!` through [`output::out`] (see [`out!`]).
macro_rules! outln {
    () => { $crate::output::out(format_args!("\n")) };
    ($($arg:tt)*) => { $crate::output::out(format_args!("{}\n", format_args!($($arg)*))) };
}

mod cli;
mod commands;
mod output;

use clap::Parser;
use cli::{Cli, Command};
use commands::Exit;

/// Twice the CPUs, at most 8: on a small machine more workers than that only add context
/// switches (measured: 4 beats 8 on 2 cores, especially under load).
fn default_concurrency() -> usize {
    std::thread::available_parallelism()
        .map_or(2, |n| n.get())
        .saturating_mul(2)
        .clamp(1, 8)
}

fn main() {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Validate { allow_unresolved } => {
            commands::validate::run(&cli.global, allow_unresolved)
        }
        Command::Print { model } => commands::print::run(&cli.global, model),
        Command::Package { out, functions } => commands::package::run(&cli.global, out, functions),
        Command::Dev {
            host,
            port,
            aws_port,
            concurrency,
            no_watch,
            lazy,
        } => commands::dev::run(
            &cli.global,
            commands::dev::Args {
                host,
                port,
                aws_port,
                concurrency: concurrency.unwrap_or_else(default_concurrency),
                watch: !no_watch,
                warm: !lazy,
            },
        ),
        Command::Invoke {
            function,
            data,
            path,
            event,
        } => commands::invoke::run(
            &cli.global,
            commands::invoke::Args {
                function,
                data,
                path,
                event,
            },
        ),
        Command::Schema => commands::schema::run(),
        Command::Plan { plan, destroy } => commands::deploy::plan(&cli.global, &plan, destroy),
        Command::Deploy {
            plan,
            saved,
            parallelism,
        } => commands::deploy::deploy(&cli.global, &plan, saved.as_deref(), parallelism.into()),
        Command::Remove {
            plan,
            parallelism,
            force,
        } => commands::deploy::remove(&cli.global, &plan, parallelism.into(), force),
        Command::Info => commands::info::run(&cli.global),
        Command::Show { plan } => commands::show::run(&cli.global, &plan),
        Command::State(cmd) => commands::state::run(&cli.global, cmd),
        Command::Completions { shell } => commands::completions::run(shell),
    };
    let code = match result {
        Ok(exit) => exit as i32,
        Err(e) => {
            eprintln!("error: {e}");
            for cause in e.chain().skip(1) {
                eprintln!("caused by: {cause}");
            }
            Exit::Failure as i32
        }
    };
    std::process::exit(code);
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    #[test]
    fn cli_definition_is_consistent() {
        super::Cli::command().debug_assert();
    }
}
