//! Benchmark: plan 1,000 resources with 100 changes (refreshing all of them through an
//! in-memory provider), then render the plan. Reports wall time and peak memory.
//!
//! Run: `bash bench/plan.sh` (or `cargo bench --bench plan`). Knobs: BENCH_RESOURCES
//! (default 1000), BENCH_CHANGES (default 100), BENCH_RUNS (default 5).

use async_trait::async_trait;
use ferry_core::engine::{
    self, reference, render, ApplyOptions, ApplyRequest, Artifacts, Attributes, Inputs,
    LocalBackend, NoEvents, Operation, PlanOptions, Provider, ProviderError, ReadRequest, Resource,
    SecretValues,
};
use serde_json::json;
use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

struct Synthetic {
    n: usize,
    /// Resources whose `memory` is 512 instead of 256.
    changed: Mutex<usize>,
    live: Mutex<BTreeMap<String, Attributes>>,
}

#[async_trait]
impl Provider for Synthetic {
    fn name(&self) -> &str {
        "bench"
    }
    fn compile(&self, _: &Inputs<'_>) -> Result<Vec<Resource>, ProviderError> {
        let changed = *self.changed.lock().unwrap();
        let step = (self.n / changed.max(1)).max(1);
        Ok((0..self.n)
            .map(|i| {
                let mut env = serde_json::Map::new();
                for k in 0..5 {
                    env.insert(format!("VAR_{k}"), json!(format!("value-{i}-{k}")));
                }
                let memory = if changed > 0 && i % step == 0 && i / step < changed {
                    512
                } else {
                    256
                };
                let mut r = Resource::new(format!("function.f{i:04}"), "bench:function")
                    .attr("name", format!("svc-dev-f{i:04}"))
                    .attr("runtime", "nodejs22")
                    .attr("memory", memory)
                    .attr("timeout", 10)
                    .attr("handler", format!("src/f{i}.handler"))
                    .attr("environment", serde_json::Value::Object(env))
                    .attr("tags", json!({"service": "svc", "stage": "dev"}))
                    .force_new("name")
                    .function(&format!("f{i:04}"));
                if i >= 10 {
                    r = r.attr(
                        "parent",
                        reference(&format!("function.f{:04}", i / 10), "arn"),
                    );
                }
                r
            })
            .collect())
    }
    async fn read(&self, req: &ReadRequest<'_>) -> Result<Option<Attributes>, ProviderError> {
        Ok(self.live.lock().unwrap().get(req.address).cloned())
    }
    async fn apply(&self, req: &ApplyRequest<'_>) -> Result<Attributes, ProviderError> {
        let mut live = self.live.lock().unwrap();
        if req.operation == Operation::Delete {
            live.remove(req.address);
            return Ok(Attributes::new());
        }
        let mut a = req.desired.cloned().unwrap_or_default();
        a.insert("arn".into(), json!(format!("arn:bench:{}", req.address)));
        live.insert(req.address.to_owned(), a.clone());
        Ok(a)
    }
}

fn peak_rss_kib() -> Option<u64> {
    let s = std::fs::read_to_string("/proc/self/status").ok()?;
    s.lines()
        .find(|l| l.starts_with("VmHWM:"))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}

fn env_usize(k: &str, d: usize) -> usize {
    std::env::var(k)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(d)
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn main() {
    // `cargo bench` passes `--bench`; nothing else to parse.
    let n = env_usize("BENCH_RESOURCES", 1000);
    let changes = env_usize("BENCH_CHANGES", 100);
    let runs = env_usize("BENCH_RUNS", 5).max(1);
    let dir = tempfile::tempdir().expect("temp dir");
    std::fs::write(
        dir.path().join("serverless.yaml"),
        "service: svc\nprovider: { runtime: nodejs22 }\nfunctions:\n  f: { handler: f.h }\n",
    )
    .expect("write manifest");
    let service = ferry_core::load(&ferry_core::LoadOptions {
        config: None,
        cwd: dir.path().to_path_buf(),
        stage: None,
        region: None,
        provider: None,
        params: Default::default(),
        env: Some(Default::default()),
        allow_unresolved: false,
    })
    .expect("manifest loads")
    .service;
    let provider = Synthetic {
        n,
        changed: Mutex::new(0),
        live: Mutex::new(BTreeMap::new()),
    };
    let artifacts = Artifacts::default();
    let secrets = SecretValues::new();
    let inputs = Inputs {
        service: &service,
        artifacts: &artifacts,
        secrets: &secrets,
    };
    let backend = LocalBackend::new(dir.path(), "svc", "dev", "bench");
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");

    // Deploy everything once, so the plan has a full state and live set to compare with.
    let t = Instant::now();
    let p = rt
        .block_on(engine::plan(
            &provider,
            &inputs,
            &backend,
            &PlanOptions::default(),
            &NoEvents,
        ))
        .expect("initial plan");
    let opts = ApplyOptions {
        parallelism: 32,
        ..Default::default()
    };
    rt.block_on(engine::apply(
        &provider, &inputs, &backend, &p, &opts, &NoEvents,
    ))
    .expect("initial apply");
    let initial_apply = t.elapsed();
    let state_bytes = std::fs::metadata(backend.path())
        .map(|m| m.len())
        .unwrap_or(0);
    let rss_after_apply = peak_rss_kib();

    *provider.changed.lock().unwrap() = changes;
    let mut refreshed = Vec::new();
    let mut from_state = Vec::new();
    let mut plan = None;
    for _ in 0..runs {
        let t = Instant::now();
        let p = rt
            .block_on(engine::plan(
                &provider,
                &inputs,
                &backend,
                &PlanOptions::default(),
                &NoEvents,
            ))
            .expect("plan");
        refreshed.push(t.elapsed());
        let t = Instant::now();
        let opts = PlanOptions {
            refresh: false,
            ..Default::default()
        };
        rt.block_on(engine::plan(&provider, &inputs, &backend, &opts, &NoEvents))
            .expect("plan");
        from_state.push(t.elapsed());
        plan = Some(p);
    }
    let p = plan.expect("at least one run");
    assert_eq!(
        p.summary.change, changes,
        "the plan must find exactly the changes made"
    );
    let t = Instant::now();
    let text = render::text(&p, false);
    let json = render::json(&p);
    let md = render::markdown(&p);
    let render_time = t.elapsed();

    println!(
        "plan benchmark: {n} resources, {} changes, {runs} runs",
        p.summary.change
    );
    println!(
        "  plan (refresh, {n} reads)   median {:>8.1} ms",
        median(refreshed).as_secs_f64() * 1e3
    );
    println!(
        "  plan --refresh=false         median {:>8.1} ms",
        median(from_state).as_secs_f64() * 1e3
    );
    println!(
        "  render text+json+markdown           {:>8.1} ms  ({} / {} / {} bytes)",
        render_time.as_secs_f64() * 1e3,
        text.len(),
        json.len(),
        md.len()
    );
    println!(
        "  first apply ({n} creates, state saved after each) {:.2} s, state file {} KiB",
        initial_apply.as_secs_f64(),
        state_bytes / 1024
    );
    if let (Some(a), Some(b)) = (rss_after_apply, peak_rss_kib()) {
        println!(
            "  peak RSS: {:.1} MiB after the first apply, {:.1} MiB at the end",
            a as f64 / 1024.0,
            b as f64 / 1024.0
        );
    }
}
