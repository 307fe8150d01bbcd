//! `ferry package`.

use super::Exit;
use crate::cli::{Format, Global};
use crate::output::color_stderr;
use ferry_core::model::ProviderName;
use ferry_core::package::{self, PackageOptions, Progress};
use indicatif::{ProgressBar, ProgressStyle};
use std::io::IsTerminal;
use std::path::PathBuf;

struct Bar(ProgressBar);

impl Progress for Bar {
    fn begin(&self, total: usize) {
        self.0.set_length(total as u64);
    }
    fn done(&self, function: &str, reused: bool) {
        self.0.set_message(format!(
            "{function}{}",
            if reused { " (cached)" } else { "" }
        ));
        self.0.inc(1);
    }
}

/// Runs the command.
pub fn run(g: &Global, out: Option<PathBuf>, functions: Vec<String>) -> anyhow::Result<Exit> {
    let (loaded, service_dir) = match super::load_service(g)? {
        Ok(x) => x,
        Err(code) => return Ok(code),
    };
    let cwd = std::env::current_dir()?;
    let mut opts = PackageOptions::new(&service_dir, &loaded.service.stage);
    if let Some(o) = out {
        opts.out_dir = if o.is_absolute() { o } else { cwd.join(o) };
    }
    opts.provider = g.provider.or(loaded.service.provider);
    if !functions.is_empty() && opts.provider == Some(ProviderName::Azure) {
        eprintln!("error: --function does not apply to Azure: a Function App holds every function of its runtime, so ferry packages them together; drop --function");
        return Ok(Exit::UserError);
    }
    opts.only = functions;
    // What cannot run on Azure is refused before anything is written.
    let azure_apps = if opts.provider == Some(ProviderName::Azure) {
        let compiled = ferry_azure::app::compile(&loaded.service).and_then(|apps| {
            let resources = ferry_azure::resources::resources(&loaded.service, &apps)?;
            let template = ferry_azure::template::template(&loaded.service, &resources);
            Ok((apps, template))
        });
        match compiled {
            Ok(a) => Some(a),
            Err(errors) => return Ok(refused(&errors)),
        }
    } else {
        None
    };
    // Google Cloud: the resources are checked the same way (offline, with placeholders for
    // what only the project knows).
    let gcp = if opts.provider == Some(ProviderName::Gcp) {
        let ctx = ferry_gcp::deploy::offline_context(
            &loaded.service,
            &ferry_gcp::deploy::GcpOptions {
                region: g.region.clone(),
                ..Default::default()
            },
        );
        match ferry_gcp::resources::resources(&loaded.service, &ctx) {
            Ok(r) => Some((ctx, r)),
            Err(errors) => return Ok(refused(&errors)),
        }
    } else {
        None
    };

    let show_bar = !g.quiet && std::io::stderr().is_terminal() && g.format != Some(Format::Json);
    let bar = ProgressBar::hidden();
    if show_bar {
        bar.set_draw_target(indicatif::ProgressDrawTarget::stderr());
        bar.set_style(
            ProgressStyle::with_template("{spinner} packaging [{bar:30}] {pos}/{len} {wide_msg}")
                .expect("valid template")
                .progress_chars("=> "),
        );
    }
    let progress = Bar(bar);
    let started = std::time::Instant::now();
    let result = package::package(&loaded.service, &opts, &progress);
    progress.0.finish_and_clear();
    let packaged = match result {
        Ok(p) => p,
        Err(e) => {
            let prefix = if color_stderr(g) {
                "\x1b[31merror\x1b[0m"
            } else {
                "error"
            };
            eprintln!("{prefix}: {e}");
            eprintln!("nothing in {} was changed", opts.out_dir.display());
            return Ok(if e.is_user_error() {
                Exit::UserError
            } else {
                Exit::Failure
            });
        }
    };
    let mut notes = packaged.notes.clone();
    if opts.provider == Some(ProviderName::Aws) {
        let paths = packaged
            .index
            .functions
            .iter()
            .map(|(k, a)| (k.clone(), a.path.clone()))
            .collect();
        let (template, more) = ferry_aws::template::template(&loaded.service, &paths);
        let path = opts.out_dir.join("template.json");
        let mut text = serde_json::to_string_pretty(&template)?;
        text.push('\n');
        std::fs::write(&path, text)
            .map_err(|e| anyhow::anyhow!("writing {}: {e}", path.display()))?;
        notes.extend(more);
        notes.push(format!(
            "CloudFormation template: {} (upload the zips under {}/{}/ to a bucket and pass it as ArtifactBucket)",
            path.strip_prefix(&cwd).unwrap_or(&path).display(),
            loaded.service.service,
            loaded.service.stage
        ));
    }
    if let Some((apps, template)) = &azure_apps {
        let path = opts.out_dir.join("azuredeploy.json");
        let mut text = serde_json::to_string_pretty(template)?;
        text.push('\n');
        std::fs::write(&path, text)
            .map_err(|e| anyhow::anyhow!("writing {}: {e}", path.display()))?;
        notes.push(format!(
            "ARM template: {}",
            path.strip_prefix(&cwd).unwrap_or(&path).display()
        ));
        let zips = packaged
            .index
            .functions
            .iter()
            .map(|(k, a)| (k.clone(), opts.out_dir.join(&a.path)))
            .collect();
        for app in apps {
            let adapter = ferry_core::package::bundle::find_adapter();
            let p = match ferry_azure::package::write_app(
                app,
                &opts.out_dir,
                &zips,
                adapter.as_deref(),
            ) {
                Ok(p) => p,
                Err(e) => {
                    eprintln!("error: {e}");
                    return Ok(Exit::UserError);
                }
            };
            notes.push(format!(
                "Azure {} app: {} ({} files, {}; unpacked in {})",
                app.family.worker_runtime(),
                p.zip.strip_prefix(&cwd).unwrap_or(&p.zip).display(),
                p.files,
                human(p.size),
                p.dir.strip_prefix(&cwd).unwrap_or(&p.dir).display(),
            ));
        }
    }
    if let Some((ctx, resources)) = &gcp {
        let path = opts.out_dir.join("gcp-resources.json");
        let mut text = serde_json::to_string_pretty(&ferry_gcp::resources::listing(resources))?;
        text.push('\n');
        std::fs::write(&path, text)
            .map_err(|e| anyhow::anyhow!("writing {}: {e}", path.display()))?;
        notes.push(format!(
            "Google Cloud resources (request bodies, for project {} in {}): {}",
            ctx.project,
            ctx.region,
            path.strip_prefix(&cwd).unwrap_or(&path).display()
        ));
        let adapter = ferry_core::package::bundle::find_adapter();
        for (name, a) in &packaged.index.functions {
            let f = &loaded.service.functions[name];
            let w = match ferry_gcp::package::write_function(
                &loaded.service,
                ctx,
                name,
                f,
                &opts.out_dir.join(&a.path),
                &opts.out_dir,
                adapter.as_deref(),
            ) {
                Ok(w) => w,
                Err(e) => {
                    eprintln!("error: {e}");
                    return Ok(Exit::UserError);
                }
            };
            notes.push(format!(
                "Google Cloud source of {name}: {} ({} files, {}; unpacked in {})",
                w.zip.strip_prefix(&cwd).unwrap_or(&w.zip).display(),
                w.files,
                human(w.size),
                w.dir.strip_prefix(&cwd).unwrap_or(&w.dir).display(),
            ));
        }
    }
    for n in &notes {
        if !g.quiet {
            eprintln!("note: {n}");
        }
    }
    if g.format == Some(Format::Json) {
        outln!("{}", serde_json::to_string_pretty(&packaged.index)?);
        return Ok(Exit::Ok);
    }
    if !g.quiet {
        let width = packaged
            .index
            .functions
            .keys()
            .map(String::len)
            .max()
            .unwrap_or(8)
            .max(8);
        outln!(
            "{:width$}  {:>10}  {:>6}  {:<12}  state",
            "function",
            "size",
            "files",
            "sha256"
        );
        for (name, a) in &packaged.index.functions {
            let state = if packaged.reused.contains(name) {
                "cached"
            } else if packaged.shared.contains(name) {
                "shared"
            } else {
                "built"
            };
            outln!(
                "{name:width$}  {:>10}  {:>6}  {:<12}  {state}",
                human(a.size),
                a.files,
                &a.sha256[..12]
            );
        }
        outln!(
            "{} function{} packaged into {} in {:.2?} ({} from cache)",
            packaged.index.functions.len(),
            if packaged.index.functions.len() == 1 {
                ""
            } else {
                "s"
            },
            opts.out_dir
                .strip_prefix(&cwd)
                .unwrap_or(&opts.out_dir)
                .display(),
            started.elapsed(),
            packaged.reused.len()
        );
    }
    Ok(Exit::Ok)
}

fn human(bytes: u64) -> String {
    if bytes >= 1024 * 1024 {
        format!("{:.1} MiB", bytes as f64 / (1024.0 * 1024.0))
    } else {
        format!("{:.1} KiB", bytes as f64 / 1024.0)
    }
}

/// What a provider cannot build from the service: every reason, then nothing is written.
fn refused(errors: &[String]) -> Exit {
    for e in errors {
        eprintln!("error: {e}");
    }
    eprintln!("nothing was written");
    Exit::UserError
}
