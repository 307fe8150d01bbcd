//! Helpers shared by the integration tests (each test crate uses a part of them).
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Child, Output};

/// A child process (a server a test started) that is stopped when dropped.
pub struct Process(pub Child);

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A loopback port nobody listens on right now.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// The workspace root.
pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// An environment variable scripts/test.sh sets.
pub fn required(var: &str) -> String {
    std::env::var(var)
        .unwrap_or_else(|_| panic!("{var} is set by scripts/test.sh; run the tests through it"))
}

/// A command's stdout and stderr together; the command must have succeeded.
pub fn ok(o: &Output) -> String {
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(o.status.success(), "ferry failed ({:?}):\n{text}", o.status);
    text
}

/// A copy of `from` in `to`, without what builds and runs leave behind.
pub fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap().flatten() {
        let name = e.file_name();
        if [".ferry", "node_modules", "target", "__pycache__"]
            .iter()
            .any(|n| name == *n)
        {
            continue;
        }
        let p = e.path();
        if p.is_dir() {
            copy_dir(&p, &to.join(&name));
        } else if p.is_file() {
            std::fs::copy(&p, to.join(&name)).unwrap();
        }
    }
}

/// A copy of `examples/<name>` in a temporary folder.
pub fn copy_example(name: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    copy_dir(&root().join("examples").join(name), dir.path());
    dir
}

/// The index of the first recorded call containing `needle`.
pub fn position(calls: &[String], needle: &str) -> usize {
    calls
        .iter()
        .position(|c| c.contains(needle))
        .unwrap_or_else(|| panic!("no call matching {needle:?} in {calls:#?}"))
}

/// Every `serverless.yml`/`serverless.yaml` under `dir` (node_modules left out), sorted.
pub fn manifests(dir: &Path, out: &mut Vec<PathBuf>) {
    let mut entries: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .collect();
    entries.sort();
    for p in entries {
        if p.is_dir() {
            if p.file_name().is_some_and(|n| n == "node_modules") {
                continue;
            }
            manifests(&p, out);
        } else if p
            .file_name()
            .is_some_and(|n| n == "serverless.yml" || n == "serverless.yaml")
        {
            out.push(p);
        }
    }
}

/// A two-thread runtime and a listener on a free loopback port for an in-process fake cloud,
/// with the fake's base URL (the fake needs it before it serves).
pub fn bind_fake() -> (tokio::runtime::Runtime, tokio::net::TcpListener, String) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let listener = rt
        .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
        .unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    (rt, listener, base)
}

/// Serves every request on `listener` with `handle`, without a body size limit (packages
/// carry executables).
pub fn serve_fake<F, Fut>(
    rt: &tokio::runtime::Runtime,
    listener: tokio::net::TcpListener,
    handle: F,
) where
    F: Fn(axum::http::Method, axum::http::Uri, axum::http::HeaderMap, axum::body::Bytes) -> Fut
        + Clone
        + Send
        + Sync
        + 'static,
    Fut: std::future::Future<Output = axum::response::Response> + Send + 'static,
{
    let app = axum::Router::new()
        .fallback(
            move |m: axum::http::Method,
                  u: axum::http::Uri,
                  h: axum::http::HeaderMap,
                  b: axum::body::Bytes| handle(m, u, h, b),
        )
        .layer(axum::extract::DefaultBodyLimit::disable());
    rt.spawn(async move { axum::serve(listener, app).await.unwrap() });
}
