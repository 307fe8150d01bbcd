//! `ferry dev`: the service on 127.0.0.1, with hot reload.

use super::Exit;
use crate::cli::Global;
use crate::output::color_stderr;
use ferry_core::model::{Architecture, Runtime};
use ferry_local::DevOptions;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// `ferry dev` options.
pub struct Args {
    pub host: String,
    pub port: u16,
    pub aws_port: u16,
    pub concurrency: usize,
    pub watch: bool,
    pub warm: bool,
}

pub fn build_rust(
    service: &ferry_core::Service,
    dir: &Path,
) -> anyhow::Result<BTreeMap<String, PathBuf>> {
    let bins: Vec<(String, String)> = service
        .functions
        .iter()
        .filter(|(_, f)| f.runtime == Runtime::Rust)
        .map(|(n, f)| (n.clone(), f.handler.clone()))
        .collect();
    if bins.is_empty() {
        return Ok(BTreeMap::new());
    }
    // Local workers run on this machine: build for it.
    let arch = if cfg!(target_arch = "aarch64") {
        Architecture::Arm64
    } else {
        Architecture::X86_64
    };
    let built = ferry_core::package::rust::build(dir, &bins, arch)?;
    Ok(bins
        .into_iter()
        .filter_map(|(f, b)| {
            built
                .binaries
                .iter()
                .find(|(n, _)| *n == b)
                .map(|(_, p)| (f, p.clone()))
        })
        .collect())
}

/// Runs the command.
pub fn run(g: &Global, a: Args) -> anyhow::Result<Exit> {
    let (loaded, service_dir) = match super::load_service(g)? {
        Ok(x) => x,
        Err(code) => return Ok(code),
    };
    let binaries = match build_rust(&loaded.service, &service_dir) {
        Ok(b) => b,
        Err(e) => {
            eprintln!("error: {e}");
            return Ok(Exit::Failure);
        }
    };
    let opts = DevOptions {
        host: a.host,
        port: a.port,
        aws_port: a.aws_port,
        service_dir: service_dir.clone(),
        concurrency: a.concurrency,
        warm: a.warm,
        color: color_stderr(g),
        binaries,
    };
    // One thread: a request hops gateway → worker's Runtime API server → gateway, and keeping
    // the hops on one thread avoids a cross-thread wake-up per hop (measured: the bottleneck).
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    rt.block_on(async move {
        let dev = match ferry_local::start(loaded.service.clone(), opts).await {
            Ok(d) => d,
            Err(e) => {
                eprintln!("error: {e}");
                return Ok(Exit::Failure);
            }
        };
        if g.format == Some(crate::cli::Format::Json) {
            // One line for scripts (and tests) that start `ferry dev --port 0`.
            outln!("{}", serde_json::json!({ "gateway": format!("http://{}", dev.gateway), "aws": format!("http://{}", dev.aws) }));
        }
        if !g.quiet {
            ferry_local::log::say(&dev.describe());
        }
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<PathBuf>();
        let _watcher = if a.watch { watch(&service_dir, tx) } else { None };
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
        loop {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => break,
                _ = term.recv() => break,
                Some(first) = rx.recv() => {
                    // Let a burst of writes settle, then reload once.
                    tokio::time::sleep(Duration::from_millis(150)).await;
                    let mut changed = vec![first];
                    while let Ok(p) = rx.try_recv() {
                        changed.push(p);
                    }
                    let shown = describe_changes(&changed, &service_dir);
                    // Rust functions are rebuilt in place first; a failed build keeps the
                    // running workers.
                    if let Err(e) = build_rust(&loaded.service, &service_dir) {
                        ferry_local::log::say(&format!("ferry: rebuild failed, keeping the running workers: {e}"));
                        continue;
                    }
                    dev.reload();
                    ferry_local::log::say(&format!("ferry: {shown} changed; workers restart on the next request"));
                }
            }
        }
        ferry_local::log::say("ferry: stopping");
        dev.shutdown();
        Ok(Exit::Ok)
    })
}

/// What changed, for the reload line: the files still there once the burst settled (an editor's
/// or `sed -i`'s temporary file is gone by then, renamed over the real one), relative to the
/// service, the first and how many more.
fn describe_changes(changed: &[PathBuf], service_dir: &Path) -> String {
    let mut seen: Vec<&PathBuf> = Vec::new();
    for p in changed {
        if !seen.contains(&p) {
            seen.push(p);
        }
    }
    let present: Vec<&PathBuf> = seen.iter().copied().filter(|p| p.exists()).collect();
    let list = if present.is_empty() { &seen } else { &present };
    let rel = |p: &Path| {
        p.strip_prefix(service_dir)
            .unwrap_or(p)
            .display()
            .to_string()
    };
    match list.len() {
        0 => "a file".to_owned(),
        1 => rel(list[0]),
        n => format!("{} and {} more", rel(list[0]), n - 1),
    }
}

fn watch(
    dir: &Path,
    tx: tokio::sync::mpsc::UnboundedSender<PathBuf>,
) -> Option<notify::RecommendedWatcher> {
    use notify::{EventKind, RecursiveMode, Watcher};
    let root = dir.to_owned();
    let mut w = notify::recommended_watcher(move |res: notify::Result<notify::Event>| {
        let Ok(ev) = res else { return };
        if !matches!(
            ev.kind,
            EventKind::Create(_) | EventKind::Modify(_) | EventKind::Remove(_)
        ) {
            return;
        }
        for p in ev.paths {
            let rel = p.strip_prefix(&root).unwrap_or(&p);
            let ignored = rel.components().any(|c| {
                matches!(
                    c.as_os_str().to_str(),
                    Some(
                        ".ferry"
                            | ".git"
                            | "target"
                            | "node_modules"
                            | "__pycache__"
                            | ".serverless"
                    )
                )
            });
            if !ignored {
                let _ = tx.send(p);
            }
        }
    })
    .ok()?;
    w.watch(dir, RecursiveMode::Recursive).ok()?;
    Some(w)
}

#[cfg(test)]
mod tests {
    use super::describe_changes;

    #[test]
    fn reload_lines_name_the_files_that_remain() {
        let t = tempfile::tempdir().unwrap();
        let real = t.path().join("handler.py");
        std::fs::write(&real, "x").unwrap();
        let temp = t.path().join("sedAb12Cd");
        // sed -i: its temporary file appears, is renamed over handler.py, and is gone.
        let one = describe_changes(&[temp.clone(), real.clone(), real.clone()], t.path());
        assert_eq!(one, "handler.py");
        let other = t.path().join("lib.py");
        std::fs::write(&other, "y").unwrap();
        assert_eq!(
            describe_changes(&[real.clone(), other, temp.clone()], t.path()),
            "handler.py and 1 more"
        );
        // A deleted file is still worth naming when nothing else is left.
        assert_eq!(describe_changes(&[temp], t.path()), "sedAb12Cd");
    }
}
