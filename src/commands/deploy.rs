//! `ferry plan`, `ferry deploy` and `ferry remove`: load, compile through the provider, plan,
//! render, apply. The engine does the work (`ferry_core::engine`); this is the wiring.

use super::{runtime, Exit};
use crate::cli::{Format, Global, PlanArgs};
use crate::output::print_plan;
use anyhow::Context;
use ferry_core::engine::{
    self, render, ApplyOptions, Artifact, Artifacts, EngineError, Event, EventSink, Inputs, Plan,
    PlanOptions, Provider, SecretValues,
};
use ferry_core::model::{ProviderName, ResourceKind, Service};
use indicatif::{ProgressBar, ProgressStyle};
use std::io::IsTerminal;
use std::path::Path;

/// What a provider needs to know besides the model.
#[derive(Debug, Clone, Default)]
pub struct ProviderOptions {
    /// `--region`.
    pub region: Option<String>,
    /// `ferry remove --force`: delete buckets with their objects.
    pub force: bool,
}

/// The providers this build knows. Each provider crate adds one arm.
fn provider(
    name: ProviderName,
    service: &Service,
    o: &ProviderOptions,
    rt: &tokio::runtime::Runtime,
) -> Result<Option<Box<dyn Provider>>, String> {
    Ok(match name {
        ProviderName::Aws => Some(Box::new(ferry_aws::AwsProvider::new(
            ferry_aws::AwsOptions {
                region: o.region.clone().or_else(|| service.region.clone()),
                force: o.force,
            },
        ))),
        ProviderName::Azure => Some(Box::new(rt.block_on(
            ferry_azure::deploy::AzureProvider::connect(
                service,
                &ferry_azure::deploy::AzureOptions {
                    location: o.region.clone(),
                    ..Default::default()
                },
            ),
        )?)),
        ProviderName::Gcp => Some(Box::new(rt.block_on(
            ferry_gcp::deploy::GcpProvider::connect(
                service,
                &ferry_gcp::deploy::GcpOptions {
                    region: o.region.clone(),
                    force: o.force,
                    ..Default::default()
                },
            ),
        )?)),
        _ => None,
    })
}

/// Shows engine events on stderr: a progress bar on a terminal (problems printed above it),
/// one line per event otherwise (CI logs), nothing with `-q` but problems.
struct Progress {
    quiet: bool,
    bar: Option<ProgressBar>,
}

impl Progress {
    fn new(g: &Global) -> Self {
        let tty = std::io::stderr().is_terminal() && !g.quiet && g.format != Some(Format::Json);
        Progress {
            quiet: g.quiet,
            bar: tty.then(|| {
                let b = ProgressBar::new(0);
                b.set_style(
                    ProgressStyle::with_template(
                        "{spinner} {prefix} [{bar:30}] {pos}/{len} {wide_msg}",
                    )
                    .expect("valid template")
                    .progress_chars("=> "),
                );
                b
            }),
        }
    }

    /// Starts a phase of `total` steps.
    fn phase(&self, name: &str, total: u64) {
        if let Some(b) = &self.bar {
            b.reset();
            b.set_prefix(name.to_owned());
            b.set_length(total);
        }
    }

    fn done(&self) {
        if let Some(b) = &self.bar {
            b.finish_and_clear();
        }
    }
}

impl EventSink for Progress {
    fn event(&self, e: &Event) {
        let Some(b) = &self.bar else {
            let problem = matches!(e, Event::Failed { .. });
            if !self.quiet || problem {
                eprintln!("{e}");
            }
            return;
        };
        match e {
            Event::Refreshing { address } => {
                b.inc(1);
                b.set_message(address.clone());
            }
            Event::Applying { .. } => b.set_message(e.to_string()),
            Event::Applied { .. } => {
                b.inc(1);
                b.set_message(e.to_string());
            }
            Event::StateWritten { .. } => {}
            _ => b.println(e.to_string()),
        }
    }
}

/// The values of `secret` services, from `FERRY_SECRET_<NAME>` environment variables
/// (`db-password` → `FERRY_SECRET_DB_PASSWORD`).
pub fn secrets_from_env(service: &Service) -> SecretValues {
    service
        .services
        .iter()
        .filter(|(_, s)| matches!(s.kind, ResourceKind::Secret { .. }))
        .filter_map(|(name, _)| {
            std::env::var(ferry_core::model::secret_value_env(name))
                .ok()
                .map(|v| (name.clone(), v))
        })
        .collect()
}

/// Everything a plan or an apply needs, made once: the model, the provider, the state backend
/// (the same one `ferry state` uses), the secret values and the built packages.
struct Ready {
    service: Service,
    provider: Box<dyn Provider>,
    backend: Box<dyn engine::StateBackend>,
    secrets: SecretValues,
    artifacts: Artifacts,
    rt: tokio::runtime::Runtime,
}

impl Ready {
    fn inputs(&self) -> Inputs<'_> {
        Inputs {
            service: &self.service,
            artifacts: &self.artifacts,
            secrets: &self.secrets,
        }
    }
}

/// Loads, picks the provider and the state backend, and (unless only deleting) packages every
/// function, so that plans hash the real packages and deploys upload them.
fn prepare(g: &Global, o: &ProviderOptions, destroy: bool) -> Result<Ready, Exit> {
    let rt = runtime().map_err(|e| {
        eprintln!("error: {e}");
        Exit::Failure
    })?;
    let located = super::state::locate(g, &rt, true)?;
    let service = located.service;
    let provider = match provider(located.provider, &service, o, &rt) {
        Ok(p) => p,
        Err(e) => {
            eprintln!("error: {e}");
            return Err(Exit::Failure);
        }
    };
    let Some(provider) = provider else {
        // Only `local` has no deploy: it is the runtime `ferry dev` serves.
        eprintln!(
            "error: provider `{}` is not deployed to: `ferry dev` serves the service on this machine and `ferry invoke` calls its functions",
            located.provider
        );
        return Err(Exit::Failure);
    };
    let secrets = secrets_from_env(&service);
    let artifacts = if destroy {
        Artifacts::default()
    } else {
        build_packages(g, &service, &located.root, located.provider)?
    };
    Ok(Ready {
        service,
        provider,
        backend: located.backend,
        secrets,
        artifacts,
        rt,
    })
}

/// Packages every function (from the cache when unchanged) for the engine.
fn build_packages(
    g: &Global,
    service: &Service,
    root: &Path,
    provider: ProviderName,
) -> Result<Artifacts, Exit> {
    let mut opts = ferry_core::package::PackageOptions::new(root, &service.stage);
    opts.provider = Some(provider);
    let packaged = ferry_core::package::package(service, &opts, &ferry_core::package::Quiet)
        .map_err(|e| {
            eprintln!("error: packaging failed: {e}");
            if e.is_user_error() {
                Exit::UserError
            } else {
                Exit::Failure
            }
        })?;
    if !g.quiet {
        for n in &packaged.notes {
            eprintln!("note: {n}");
        }
    }
    Ok(Artifacts {
        functions: packaged
            .index
            .functions
            .into_iter()
            .map(|(name, a)| {
                (
                    name,
                    Artifact {
                        sha256: a.sha256,
                        path: opts.out_dir.join(a.path),
                    },
                )
            })
            .collect(),
    })
}

fn engine_error(e: EngineError) -> Exit {
    eprintln!("error: {e}");
    if e.is_user_error() {
        Exit::UserError
    } else {
        Exit::Failure
    }
}

fn plan_options(args: &PlanArgs, destroy: bool) -> PlanOptions {
    PlanOptions {
        refresh: args.refresh,
        destroy,
        targets: args.targets.clone(),
        reveal_sensitive: args.show_sensitive,
        ..Default::default()
    }
}

/// `ferry plan`. With `--detailed-exitcode` every error exits 1, so that 2 only ever means
/// "there are changes".
pub fn plan(g: &Global, args: &PlanArgs, destroy: bool) -> anyhow::Result<Exit> {
    Ok(match plan_inner(g, args, destroy)? {
        Ok(true) => Exit::Changes,
        Ok(false) => Exit::Ok,
        Err(_) if args.detailed_exitcode => Exit::Failure,
        Err(code) => code,
    })
}

/// `Ok(changes to report)`, or the exit code of an error already printed.
fn plan_inner(g: &Global, args: &PlanArgs, destroy: bool) -> anyhow::Result<Result<bool, Exit>> {
    let o = ProviderOptions {
        region: g.region.clone(),
        ..Default::default()
    };
    let r = match prepare(g, &o, destroy) {
        Ok(r) => r,
        Err(code) => return Ok(Err(code)),
    };
    let progress = Progress::new(g);
    progress.phase("refreshing", recorded_count(&r));
    // Only `ferry plan` asks the cloud for dry runs; a deploy's own plan goes straight on.
    let opts = PlanOptions {
        dry_run: args.refresh,
        ..plan_options(args, destroy)
    };
    let made = r.rt.block_on(engine::plan(
        r.provider.as_ref(),
        &r.inputs(),
        r.backend.as_ref(),
        &opts,
        &progress,
    ));
    progress.done();
    let p = match made {
        Ok(p) => p,
        Err(e) => return Ok(Err(engine_error(e))),
    };
    print_plan(g, &p);
    let refused = p.refused().count();
    if refused > 0 {
        eprintln!(
            "error: the cloud refused {refused} change{} in a dry run (see above); deploying would fail there",
            if refused == 1 { "" } else { "s" }
        );
        return Ok(Err(Exit::Failure));
    }
    if let Some(out) = &args.out {
        engine::backend::write_atomic(out, render::json(&p).as_bytes())
            .with_context(|| format!("writing {}", out.display()))?;
    }
    Ok(Ok(args.detailed_exitcode && p.has_changes()))
}

/// `ferry deploy`.
pub fn deploy(
    g: &Global,
    args: &PlanArgs,
    saved: Option<&Path>,
    parallelism: usize,
) -> anyhow::Result<Exit> {
    apply(
        g,
        args,
        saved,
        parallelism,
        &ProviderOptions::default(),
        false,
    )
}

/// `ferry remove`.
pub fn remove(
    g: &Global,
    args: &PlanArgs,
    parallelism: usize,
    force: bool,
) -> anyhow::Result<Exit> {
    let o = ProviderOptions {
        force,
        ..Default::default()
    };
    apply(g, args, None, parallelism, &o, true)
}

fn apply(
    g: &Global,
    args: &PlanArgs,
    saved: Option<&Path>,
    parallelism: usize,
    o: &ProviderOptions,
    destroy: bool,
) -> anyhow::Result<Exit> {
    let o = ProviderOptions {
        region: g.region.clone(),
        ..o.clone()
    };
    let r = match prepare(g, &o, destroy) {
        Ok(r) => r,
        Err(code) => return Ok(code),
    };
    let inputs = r.inputs();
    let progress = Progress::new(g);
    let rt = &r.rt;
    let p: Plan = match saved {
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("reading {}", path.display()))?;
            match Plan::from_json(&text) {
                Ok(p) => p,
                Err(e) => {
                    eprintln!("error: {}: {e}", path.display());
                    return Ok(Exit::UserError);
                }
            }
        }
        None => {
            progress.phase("refreshing", recorded_count(&r));
            let made = rt.block_on(engine::plan(
                r.provider.as_ref(),
                &inputs,
                r.backend.as_ref(),
                &PlanOptions {
                    // The refresh reads as many at once as the apply changes.
                    parallelism,
                    ..plan_options(args, destroy)
                },
                &progress,
            ));
            match made {
                Ok(p) => p,
                Err(e) => {
                    progress.done();
                    return Ok(engine_error(e));
                }
            }
        }
    };
    progress.done();
    print_plan(g, &p);
    // A replacement is two steps: the delete and the create.
    let steps: u64 = p
        .changes
        .iter()
        .map(|c| match c.action {
            engine::Action::NoOp => 0,
            engine::Action::Replace => 2,
            _ => 1,
        })
        .sum();
    progress.phase("applying", steps);
    let opts = ApplyOptions {
        parallelism,
        ..Default::default()
    };
    match rt.block_on(engine::apply(
        r.provider.as_ref(),
        &inputs,
        r.backend.as_ref(),
        &p,
        &opts,
        &progress,
    )) {
        Ok(report) => {
            progress.done();
            if !g.quiet {
                eprintln!(
                    "done: {} change{} applied (state serial {})",
                    report.applied.len(),
                    if report.applied.len() == 1 { "" } else { "s" },
                    report.serial
                );
            }
            Ok(Exit::Ok)
        }
        Err(e) => {
            progress.done();
            Ok(engine_error(e))
        }
    }
}

/// How many resources the state records (the refresh reads that many), 0 when unknown.
fn recorded_count(r: &Ready) -> u64 {
    r.rt.block_on(r.backend.read())
        .ok()
        .flatten()
        .map_or(0, |s| s.resources.len() as u64)
}
