//! A small in-memory provider for the engine tests: live resources in a map, calls counted
//! per kind, and knobs to fail on the Nth apply, fail transiently, drift, and measure
//! concurrency.
#![allow(dead_code)]

use async_trait::async_trait;
use ferry_core::engine::{
    reference, ApplyRequest, Attributes, Inputs, Operation, Provider, ProviderError, ReadRequest,
    Resource,
};
use ferry_core::model::{EnvValue, ResourceKind, Service};
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::Duration;

#[derive(Default)]
pub struct TestProvider {
    /// Live resources by address.
    pub live: Mutex<BTreeMap<String, Attributes>>,
    /// Calls by kind: `read`, `create`, `update`, `delete`.
    pub calls: Mutex<BTreeMap<String, usize>>,
    /// Fail (not retryable) on this apply call, counting from 1.
    pub fail_on_apply: Mutex<Option<usize>>,
    /// The message of that failure.
    pub fail_message: Mutex<String>,
    /// Address → how many more times its apply fails with a retryable error.
    pub transient: Mutex<BTreeMap<String, u32>>,
    /// Time each apply takes.
    pub delay: Mutex<Duration>,
    applies: AtomicUsize,
    in_flight: AtomicUsize,
    /// Most applies seen running at once.
    pub max_in_flight: AtomicUsize,
    /// Dry runs asked for: address and the attributes sent (functions offer them).
    pub dry_runs: Mutex<Vec<(String, Attributes)>>,
    /// The address whose dry run is refused, and the message.
    pub refuse_dry_run: Mutex<Option<(String, String)>>,
}

impl TestProvider {
    pub fn new() -> Self {
        Self::default()
    }
    pub fn calls(&self, kind: &str) -> usize {
        self.calls.lock().unwrap().get(kind).copied().unwrap_or(0)
    }
    pub fn mutating_calls(&self) -> usize {
        self.calls("create") + self.calls("update") + self.calls("delete")
    }
    pub fn reset_calls(&self) {
        self.calls.lock().unwrap().clear();
    }
    pub fn live_addresses(&self) -> Vec<String> {
        self.live.lock().unwrap().keys().cloned().collect()
    }
    /// Changes a live attribute behind ferry's back.
    pub fn drift(&self, address: &str, attr: &str, value: Value) {
        self.live
            .lock()
            .unwrap()
            .get_mut(address)
            .expect("drifted resource exists")
            .insert(attr.into(), value);
    }
    /// Deletes a live resource behind ferry's back.
    pub fn vanish(&self, address: &str) {
        self.live.lock().unwrap().remove(address);
    }
    fn count(&self, kind: &str) {
        *self.calls.lock().unwrap().entry(kind.into()).or_default() += 1;
    }
}

#[async_trait]
impl Provider for TestProvider {
    fn name(&self) -> &str {
        "test"
    }

    fn compile(&self, inputs: &Inputs<'_>) -> Result<Vec<Resource>, ProviderError> {
        let s: &Service = inputs.service;
        let prefix = format!("{}-{}", s.service, s.stage);
        let mut out = Vec::new();
        for (name, svc) in &s.services {
            match &svc.kind {
                ResourceKind::Secret { .. } => {
                    let value = inputs.secrets.get(name).ok_or_else(|| {
                        ProviderError::fatal(format!("no value for secret `{name}`"))
                    })?;
                    out.push(
                        Resource::new(format!("secret.{name}"), "test:secret")
                            .attr("name", format!("{prefix}-{name}"))
                            .attr("value", value.clone())
                            .sensitive("value"),
                    );
                }
                ResourceKind::Queue {
                    fifo,
                    visibility_timeout,
                    ..
                } => out.push(
                    Resource::new(format!("queue.{name}"), "test:queue")
                        .attr("name", format!("{prefix}-{name}"))
                        .attr("fifo", *fifo)
                        .attr("visibility_timeout", *visibility_timeout)
                        .force_new("fifo")
                        .force_new("name"),
                ),
                other => out.push(
                    Resource::new(
                        format!("{}.{name}", other.name()),
                        format!("test:{}", other.name()),
                    )
                    .attr("name", format!("{prefix}-{name}")),
                ),
            }
        }
        for (name, f) in &s.functions {
            let role = format!("role.{name}");
            out.push(
                Resource::new(&role, "test:role")
                    .attr("name", format!("{prefix}-{name}-role"))
                    .function(name),
            );
            let mut env = serde_json::Map::new();
            for (k, v) in &f.environment {
                if let EnvValue::Text(t) = v {
                    env.insert(k.clone(), json!(t));
                }
            }
            for u in &f.uses {
                match s.services.get(u).map(|x| &x.kind) {
                    Some(kind @ ResourceKind::Queue { .. }) => {
                        env.insert(
                            ferry_core::model::injected_env_name(u, kind),
                            json!(reference(&format!("queue.{u}"), "url")),
                        );
                    }
                    Some(ResourceKind::Secret { .. }) => {
                        env.insert(
                            format!("{}_VALUE", u.to_uppercase().replace('-', "_")),
                            json!(reference(&format!("secret.{u}"), "value")),
                        );
                    }
                    _ => {}
                }
            }
            let mut r = Resource::new(format!("function.{name}"), "test:function")
                .attr("name", format!("{prefix}-{name}"))
                .attr("runtime", f.runtime.name())
                .attr("memory", f.memory)
                .attr("timeout", f.timeout)
                .attr("role", reference(&role, "arn"))
                .attr("environment", Value::Object(env))
                .force_new("name")
                .function(name);
            if let Some(a) = inputs.artifacts.functions.get(name) {
                r = r.attr("code_sha256", a.sha256.clone());
            }
            out.push(r);
        }
        Ok(out)
    }

    async fn dry_run(&self, req: &ApplyRequest<'_>) -> Result<bool, ProviderError> {
        if req.kind != "test:function" {
            return Ok(false);
        }
        let attrs = req.desired.cloned().unwrap_or_default();
        self.dry_runs
            .lock()
            .unwrap()
            .push((req.address.to_owned(), attrs));
        match self.refuse_dry_run.lock().unwrap().as_ref() {
            Some((a, m)) if a == req.address => Err(ProviderError::fatal(m.clone())),
            _ => Ok(true),
        }
    }

    async fn read(&self, req: &ReadRequest<'_>) -> Result<Option<Attributes>, ProviderError> {
        self.count("read");
        Ok(self.live.lock().unwrap().get(req.address).cloned())
    }

    async fn apply(&self, req: &ApplyRequest<'_>) -> Result<Attributes, ProviderError> {
        let n = self.applies.fetch_add(1, Ordering::SeqCst) + 1;
        let now = self.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
        self.max_in_flight.fetch_max(now, Ordering::SeqCst);
        let delay = *self.delay.lock().unwrap();
        if !delay.is_zero() {
            tokio::time::sleep(delay).await;
        }
        self.in_flight.fetch_sub(1, Ordering::SeqCst);

        if *self.fail_on_apply.lock().unwrap() == Some(n) {
            return Err(ProviderError::fatal(
                self.fail_message.lock().unwrap().clone(),
            ));
        }
        if let Some(k) = self.transient.lock().unwrap().get_mut(req.address) {
            if *k > 0 {
                *k -= 1;
                self.count("transient");
                return Err(ProviderError::retryable("Throttling: rate exceeded"));
            }
        }
        let op = match req.operation {
            Operation::Create => "create",
            Operation::Update => "update",
            Operation::Delete => "delete",
        };
        self.count(op);
        let mut live = self.live.lock().unwrap();
        match req.operation {
            Operation::Delete => {
                live.remove(req.address);
                Ok(Attributes::new())
            }
            Operation::Create | Operation::Update => {
                let desired = req
                    .desired
                    .expect("create and update carry desired attributes");
                for v in desired.values() {
                    assert!(
                        !v.to_string().contains("${ref:"),
                        "{}: unresolved reference reached the provider: {v}",
                        req.address
                    );
                }
                let mut attrs = desired.clone();
                attrs.insert(
                    "arn".into(),
                    json!(format!("arn:test:{}:{}", req.kind, req.address)),
                );
                if req.kind == "test:queue" {
                    attrs.insert(
                        "url".into(),
                        json!(format!("https://queue.test/{}", req.address)),
                    );
                }
                live.insert(req.address.to_owned(), attrs.clone());
                Ok(attrs)
            }
        }
    }
}

/// Writes `yaml` as the manifest in `dir` and loads it (no environment variables).
#[allow(dead_code)] // each test crate uses its own part of this module
pub fn load(dir: &std::path::Path, yaml: &str) -> ferry_core::model::Service {
    std::fs::write(dir.join("serverless.yaml"), yaml).unwrap();
    let opts = ferry_core::LoadOptions {
        cwd: dir.to_path_buf(),
        env: Some(Default::default()),
        ..Default::default()
    };
    match ferry_core::load(&opts) {
        Ok(l) => l.service,
        Err(f) => panic!("manifest does not load: {:?}", f.diags),
    }
}
