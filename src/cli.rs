//! The command line: every command, option and help text.

use clap::{Args, Parser, Subcommand, ValueEnum};
use ferry_core::model::ProviderName;
use std::path::PathBuf;

/// ferry: one serverless manifest, deployed to AWS, Azure or Google Cloud, or run locally.
#[derive(Debug, Parser)]
#[command(
    name = "ferry",
    version,
    about,
    long_about = "ferry reads one serverless.yaml (or a Serverless Framework v3 serverless.yml) describing \
functions, their triggers and the services they use, and compiles it for AWS Lambda, Azure Functions, \
Google Cloud, or the bundled local runtime.",
    after_help = "Examples:\n  ferry validate                     check the manifest in this folder\n  ferry print --format json          show it with every variable resolved\n  ferry -s prod --param retention=30 print --model\n  ferry schema > serverless.schema.json\n  ferry completions zsh > ~/.zfunc/_ferry",
    propagate_version = true
)]
pub struct Cli {
    #[command(flatten)]
    pub global: Global,
    #[command(subcommand)]
    pub command: Command,
}

/// Options every command shares.
#[derive(Debug, Args, Clone)]
pub struct Global {
    /// The manifest [default: serverless.yaml, serverless.yml or serverless.json in the current folder]
    #[arg(short = 'c', long = "config", global = true, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Stage (`${sls:stage}`); else `provider.stage`, else `dev`
    #[arg(short = 's', long, global = true, env = "FERRY_STAGE")]
    pub stage: Option<String>,
    /// Target provider; else `provider.name`
    #[arg(short = 'p', long, global = true, value_parser = parse_provider)]
    pub provider: Option<ProviderName>,
    /// Region (or Azure location); else `provider.region`
    #[arg(short = 'r', long, global = true)]
    pub region: Option<String>,
    /// A value for `${param:KEY}`, winning over the manifest's `params`; repeatable
    #[arg(long = "param", global = true, value_name = "KEY=VALUE", value_parser = parse_param)]
    pub params: Vec<(String, String)>,
    /// Output format for machine-readable output
    #[arg(long, global = true, value_enum)]
    pub format: Option<Format>,
    /// When to colour output
    #[arg(long, global = true, value_enum, default_value_t = ColorChoice::Auto)]
    pub color: ColorChoice,
    /// Print errors only: no warnings, no summaries
    #[arg(short, long, global = true)]
    pub quiet: bool,
}

/// Output formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    /// For people.
    Text,
    /// For scripts.
    Json,
    /// YAML (`print`).
    Yaml,
    /// Markdown, for pull-request comments (`show`, `plan`).
    Markdown,
}

/// Colour.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ColorChoice {
    /// Colour when writing to a terminal and NO_COLOR is unset.
    Auto,
    /// Always.
    Always,
    /// Never.
    Never,
}

/// Commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Check the manifest: syntax, variables, references, routes, schedules and limits
    ///
    /// Exits 0 when valid (warnings allowed), 2 when the manifest has errors. With
    /// `--format json` prints {"valid", "file", "service", "stage", "diagnostics": [...]}.
    Validate {
        /// Keep missing environment variables, options and files as written, with a warning
        /// (for CI jobs that validate without secrets, like `terraform validate`)
        #[arg(long)]
        allow_unresolved: bool,
    },
    /// Print the manifest with every variable resolved (YAML by default)
    Print {
        /// Print the neutral model that providers compile instead of the resolved manifest
        #[arg(long)]
        model: bool,
    },
    /// Build one deterministic zip per function, plus index.json
    ///
    /// node and python functions get the files their `package.include`/`exclude` select
    /// (ferry leaves out .git, .ferry, tests, dotfiles and the manifest by default), node's
    /// production dependencies from node_modules and python's requirements.txt vendored with
    /// pip; rust functions are built with cargo and shipped as `bootstrap`. Unchanged
    /// functions come from the cache in .ferry/cache.
    Package {
        /// Output folder [default: .ferry/build/<stage>/ next to the manifest]
        #[arg(long, short = 'o', value_name = "DIR")]
        out: Option<PathBuf>,
        /// Package only this function; repeatable
        #[arg(long = "function", short = 'f', value_name = "NAME")]
        functions: Vec<String>,
    },
    /// Run the service locally: an HTTP gateway and warm workers speaking the Lambda Runtime API
    ///
    /// Routes every http trigger on 127.0.0.1 (API Gateway payload 2.0 events, 1.0 for
    /// Serverless Framework `http` events), runs node and python functions through ferry's
    /// shims and rust/provided binaries as they are, answers Lambda `Invoke` for the aws CLI
    /// and SDKs, and restarts workers when sources change.
    Dev {
        /// Address to listen on
        #[arg(long, default_value = "127.0.0.1")]
        host: String,
        /// Gateway port
        #[arg(long, default_value_t = 3000)]
        port: u16,
        /// Port of the AWS API endpoints (Lambda Invoke) [default: a free port]
        #[arg(long, default_value_t = 0)]
        aws_port: u16,
        /// Most concurrent workers per function [default: twice the CPUs, at most 8]
        #[arg(long)]
        concurrency: Option<usize>,
        /// Do not restart workers when files change
        #[arg(long)]
        no_watch: bool,
        /// Start workers on the first request instead of at startup
        #[arg(long)]
        lazy: bool,
    },
    /// Invoke one function once and print its result: on the local runtime, or the deployed
    /// function with `--provider aws`
    ///
    /// The event is `{}` unless given with --data, --path or --event (a realistic sample of
    /// http, queue, schedule, storage or topic events, as `ferry dev` sends them). Exits 1 when
    /// the function fails.
    Invoke {
        /// The function
        function: String,
        /// The event, as JSON
        #[arg(long, conflicts_with_all = ["path", "event"])]
        data: Option<String>,
        /// A file holding the event
        #[arg(long, conflicts_with = "event")]
        path: Option<PathBuf>,
        /// A sample event of this kind
        #[arg(long, value_parser = ["http", "queue", "schedule", "storage", "topic"])]
        event: Option<String>,
    },
    /// Print the JSON Schema of the ferry manifest dialect, for editors
    Schema,
    /// Show what `deploy` would change: refresh, diff, and print the plan
    ///
    /// Exits 0 on success; with `--detailed-exitcode`, 0 when there is nothing to change,
    /// 2 when there are changes, 1 on errors.
    Plan {
        #[command(flatten)]
        plan: PlanArgs,
        /// Plan to delete everything (or the `--target` functions)
        #[arg(long)]
        destroy: bool,
    },
    /// Deploy: plan and apply, or apply a saved plan exactly (`--plan plan.json`)
    Deploy {
        #[command(flatten)]
        plan: PlanArgs,
        /// Apply this saved plan; refused when it is stale (state, manifest or packages changed)
        #[arg(long = "plan", value_name = "FILE")]
        saved: Option<PathBuf>,
        /// Changes in flight at once
        #[arg(long, default_value_t = ferry_core::engine::DEFAULT_PARALLELISM as u16, value_parser = clap::value_parser!(u16).range(1..=256))]
        parallelism: u16,
    },
    /// Delete everything deployed for this service and stage (a destroy plan, applied)
    Remove {
        #[command(flatten)]
        plan: PlanArgs,
        /// Changes in flight at once
        #[arg(long, default_value_t = ferry_core::engine::DEFAULT_PARALLELISM as u16, value_parser = clap::value_parser!(u16).range(1..=256))]
        parallelism: u16,
        /// Also delete buckets that still hold objects (their objects and versions first)
        #[arg(long)]
        force: bool,
    },
    /// Print what is deployed: the HTTP endpoint, function names, queue URLs, buckets, tables,
    /// topics and secrets, from the state (no cloud calls); `--format json` for scripts
    Info,
    /// Render a saved plan (text, --format json or --format markdown); needs no cloud access
    Show {
        /// The plan file written by `ferry plan --out`
        plan: PathBuf,
    },
    /// Inspect the deployment state, or release a stale lock
    #[command(subcommand)]
    State(StateCommand),
    /// Print shell completions
    Completions {
        /// The shell
        shell: clap_complete::Shell,
    },
}

/// Options shared by `plan`, `deploy` and `remove`.
#[derive(Debug, Args, Clone)]
pub struct PlanArgs {
    /// Only this function (and what it needs); repeatable
    #[arg(long = "target", value_name = "FUNCTION")]
    pub targets: Vec<String>,
    /// Read live resources before diffing (`--refresh=false`: plan from state alone)
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set, value_name = "BOOL")]
    pub refresh: bool,
    /// Exit 2 when there are changes, 0 when there are none, 1 on errors
    #[arg(long)]
    pub detailed_exitcode: bool,
    /// Save the plan as JSON, for `ferry show` and `ferry deploy --plan`
    #[arg(long, value_name = "FILE")]
    pub out: Option<PathBuf>,
    /// Show sensitive values in the plan (never in the state file)
    #[arg(long)]
    pub show_sensitive: bool,
}

/// `ferry state ...`
#[derive(Debug, Subcommand)]
pub enum StateCommand {
    /// List the resources in the state
    List,
    /// Show one resource's recorded attributes (sensitive values are hashes)
    Show {
        /// The resource's address, as `ferry state list` prints it
        address: String,
    },
    /// Release the state lock left by a deploy that died
    Unlock {
        /// Release it even if its holder may still be running
        #[arg(long)]
        force: bool,
    },
}

fn parse_provider(s: &str) -> Result<ProviderName, String> {
    s.parse()
}

fn parse_param(s: &str) -> Result<(String, String), String> {
    match s.split_once('=') {
        Some((k, v)) if !k.trim().is_empty() => Ok((k.trim().to_owned(), v.to_owned())),
        _ => Err(format!("`{s}` is not KEY=VALUE")),
    }
}
