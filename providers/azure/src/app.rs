//! The Function App files: `host.json` and one `function.json` per Azure function.
//!
//! Azure gives every function exactly one trigger, so a ferry function with several triggers
//! becomes several Azure functions: `<fn>` when it has one trigger, `<fn>-<kind><n>` otherwise
//! (`nightly-schedule0`, `nightly-schedule1`). Each names the same handler; the adapter turns
//! the Azure invocation into the event shape the handler gets on AWS and under `ferry dev`.

use crate::ncrontab;
use ferry_core::model::{Function, HttpTrigger, ResourceKind, Runtime, Service, Trigger};
use serde_json::{json, Value};
use std::collections::BTreeMap;

/// The language worker of one Function App.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Family {
    /// Node.js (the v3 programming model: `function.json` + `scriptFile`).
    Node,
    /// Python (the v1 programming model: `function.json` + `scriptFile`).
    Python,
    /// A custom handler: ferry's adapter, which runs the function's Lambda Runtime API binary.
    Custom,
}

impl Family {
    /// `FUNCTIONS_WORKER_RUNTIME` / `functionAppConfig.runtime.name`.
    pub fn worker_runtime(self) -> &'static str {
        match self {
            Family::Node => "node",
            Family::Python => "python",
            Family::Custom => "custom",
        }
    }

    fn of(f: &Function) -> Option<Family> {
        match f.runtime {
            Runtime::Node(_) => Some(Family::Node),
            Runtime::Python(_) => Some(Family::Python),
            Runtime::Rust | Runtime::Provided => Some(Family::Custom),
            Runtime::Other(_) => None,
        }
    }
}

/// The adapter each node/python function's `scriptFile` points at, relative to the app root.
pub const NODE_ADAPTER: &str = "ferry/adapter.js";
/// See [`NODE_ADAPTER`].
pub const PYTHON_ADAPTER: &str = "ferry/adapter.py";
/// The custom handler executable (ferry's Runtime API adapter) at the app root.
pub const CUSTOM_ADAPTER: &str = ferry_core::package::bundle::ADAPTER;
/// The app setting holding the storage connection (identity based: `__accountName`).
pub const STORAGE_CONNECTION: &str = "AzureWebJobsStorage";

/// One Function App's files.
#[derive(Debug, Clone, PartialEq)]
pub struct App {
    /// Its language worker.
    pub family: Family,
    /// `host.json`.
    pub host: Value,
    /// Azure function name → its `function.json`.
    pub functions: BTreeMap<String, Value>,
    /// Azure function name → the ferry function it runs.
    pub origin: BTreeMap<String, String>,
    /// `ferry/functions.json`: what the adapters read to run each Azure function (its
    /// handler, memory, timeout and the trigger as the manifest wrote it).
    pub adapter: Value,
}

/// Compiles the service into its apps, or every reason it cannot run on Azure.
pub fn compile(service: &Service) -> Result<Vec<App>, Vec<String>> {
    let mut errors = Vec::new();
    let mut by_family: BTreeMap<Family, Vec<(&String, &Function)>> = BTreeMap::new();
    for (name, f) in &service.functions {
        match Family::of(f) {
            Some(fam) => by_family.entry(fam).or_default().push((name, f)),
            None => errors.push(format!(
                "function `{name}`: runtime `{}` has no Azure Functions equivalent that ferry builds; use nodejs, python, rust or provided",
                f.runtime
            )),
        }
    }
    let mut apps = Vec::new();
    for (family, fns) in by_family {
        let mut app = App {
            family,
            host: Value::Null,
            functions: BTreeMap::new(),
            origin: BTreeMap::new(),
            adapter: Value::Null,
        };
        let mut entries = serde_json::Map::new();
        for (name, f) in &fns {
            if f.triggers.is_empty() {
                errors.push(format!(
                    "function `{name}` has no trigger; an Azure function needs exactly one (add an http, queue, schedule, storage or topic trigger)"
                ));
            }
            for (i, t) in f.triggers.iter().enumerate() {
                let azure_name = azure_name(name, f, i);
                match function_json(family, t) {
                    Ok(fj) => {
                        entries.insert(azure_name.clone(), adapter_entry(name, f, t, &azure_name));
                        app.functions.insert(azure_name.clone(), fj);
                        app.origin.insert(azure_name, (*name).clone());
                    }
                    Err(e) => errors.push(format!("function `{name}`: {e}")),
                }
            }
        }
        app.adapter = json!({
            "service": service.service,
            "stage": service.stage,
            "region": service.region,
            "functions": entries,
        });
        match host_json(service, family, &fns) {
            Ok(h) => app.host = h,
            Err(e) => errors.push(e),
        }
        apps.push(app);
    }
    if errors.is_empty() {
        Ok(apps)
    } else {
        Err(errors)
    }
}

/// The Azure function for a ferry function's `index`-th trigger: `<fn>` when it has one
/// trigger, else `<fn>-<kind><n>` with `n` counting the triggers of that kind before it.
pub fn azure_name(function: &str, f: &Function, index: usize) -> String {
    if f.triggers.len() == 1 {
        return function.to_owned();
    }
    let kind = f.triggers[index].kind();
    let n = f.triggers[..index]
        .iter()
        .filter(|t| t.kind() == kind)
        .count();
    format!("{function}-{kind}{n}")
}

/// An Azure Storage queue name: 3-63 lower-case letters, digits and single hyphens.
pub fn queue_name(q: &str) -> String {
    let mut out = String::new();
    for c in q.chars() {
        let c = if c.is_ascii_alphanumeric() {
            c.to_ascii_lowercase()
        } else {
            '-'
        };
        if !(c == '-' && (out.is_empty() || out.ends_with('-'))) {
            out.push(c);
        }
    }
    let mut out = out.trim_end_matches('-').to_owned();
    while out.len() < 3 {
        out.push('0');
    }
    out.truncate(63);
    out
}

fn route(h: &HttpTrigger) -> String {
    // `{proxy+}` (API Gateway's greedy parameter) is `{*proxy}` in ASP.NET routing.
    h.path
        .trim_start_matches('/')
        .split('/')
        .map(
            |seg| match seg.strip_prefix('{').and_then(|s| s.strip_suffix("+}")) {
                Some(p) => format!("{{*{p}}}"),
                None => seg.to_owned(),
            },
        )
        .collect::<Vec<_>>()
        .join("/")
}

/// One Azure function's entry in `ferry/functions.json`.
fn adapter_entry(name: &str, f: &Function, t: &Trigger, azure_name: &str) -> Value {
    let trigger = match t {
        Trigger::Http(h) => json!({
            "kind": "http",
            "method": h.method,
            "path": h.path,
            "payload": h.payload,
            "cors": h.cors,
        }),
        Trigger::Queue {
            queue, batch_size, ..
        } => json!({"kind": "queue", "queue": queue, "batchSize": batch_size}),
        Trigger::Schedule { input, .. } => {
            json!({"kind": "schedule", "rule": azure_name, "input": input})
        }
        Trigger::Storage {
            bucket,
            prefix,
            suffix,
            ..
        } => json!({"kind": "storage", "bucket": bucket, "prefix": prefix, "suffix": suffix}),
        Trigger::Topic { topic, .. } => json!({"kind": "topic", "topic": topic}),
    };
    let mut entry = json!({
        "function": name,
        "handler": f.handler,
        "memory": f.memory,
        "timeout": f.timeout,
        "trigger": trigger,
    });
    // The executable ferry-adapter starts, in the function's folder `fns/<function>/`.
    match f.runtime {
        Runtime::Rust => entry["command"] = json!("bootstrap"),
        Runtime::Provided => entry["command"] = json!(f.handler),
        _ => {}
    }
    entry
}

/// function.json's `entryPoint` in the node and python adapters, per trigger kind.
fn entry_point(t: &Trigger) -> &'static str {
    match t {
        Trigger::Http(_) => "http",
        Trigger::Queue { .. } => "queue",
        Trigger::Schedule { .. } => "timer",
        Trigger::Storage { .. } | Trigger::Topic { .. } => "event",
    }
}

fn function_json(family: Family, t: &Trigger) -> Result<Value, String> {
    let (trigger, output) = match t {
        Trigger::Http(h) => {
            let mut b = json!({
                "type": "httpTrigger",
                "direction": "in",
                "name": "req",
                "authLevel": "anonymous",
                "route": route(h),
            });
            if h.method != "ANY" {
                b["methods"] = json!([h.method.to_ascii_lowercase()]);
            }
            (
                b,
                Some(json!({"type": "http", "direction": "out", "name": "$return"})),
            )
        }
        Trigger::Queue { queue, .. } => (
            json!({
                "type": "queueTrigger",
                "direction": "in",
                "name": "message",
                "queueName": queue_name(queue),
                "connection": STORAGE_CONNECTION,
            }),
            None,
        ),
        Trigger::Schedule { expression, .. } => (
            json!({
                "type": "timerTrigger",
                "direction": "in",
                "name": "timer",
                "schedule": ncrontab::translate(expression)?,
                "useMonitor": true,
            }),
            None,
        ),
        // Storage and topic events arrive through Event Grid subscriptions (a system topic on
        // the storage account, a custom topic per topic service) that deliver to the function
        // directly, so the filters live on the subscription, not here. That the names refer to
        // a bucket and a topic is checked by the loader (`validate::check_kind`).
        Trigger::Storage { .. } | Trigger::Topic { .. } => (
            json!({"type": "eventGridTrigger", "direction": "in", "name": "event"}),
            None,
        ),
    };
    let mut bindings = vec![trigger];
    bindings.extend(output);
    let mut fj = json!({ "bindings": bindings });
    if let Trigger::Schedule { enabled: false, .. } = t {
        fj["disabled"] = json!(true);
    }
    match family {
        Family::Node => {
            fj["scriptFile"] = json!(format!("../{NODE_ADAPTER}"));
            fj["entryPoint"] = json!(entry_point(t));
        }
        Family::Python => {
            fj["scriptFile"] = json!(format!("../{PYTHON_ADAPTER}"));
            fj["entryPoint"] = json!(entry_point(t));
        }
        Family::Custom => {}
    }
    Ok(fj)
}

fn host_json(
    service: &Service,
    family: Family,
    fns: &[(&String, &Function)],
) -> Result<Value, String> {
    // functionTimeout is app-wide: the longest of the app's functions.
    let timeout = fns.iter().map(|(_, f)| f.timeout).max().unwrap_or(30);
    let mut host = json!({
        "version": "2.0",
        "extensionBundle": {
            "id": "Microsoft.Azure.Functions.ExtensionBundle",
            "version": "[4.*, 5.0.0)",
        },
        "functionTimeout": hms(timeout),
        "extensions": { "http": { "routePrefix": "" } },
        "logging": { "logLevel": { "default": "Information" } },
    });
    // Dead-lettering is app-wide too (maxDequeueCount, then `<queue>-poison`).
    let mut receives: BTreeMap<u32, Vec<&str>> = BTreeMap::new();
    for (_, f) in fns {
        for t in &f.triggers {
            if let Trigger::Queue { queue, .. } = t {
                if let Some(ResourceKind::Queue {
                    max_receives: Some(m),
                    ..
                }) = service.services.get(queue).map(|r| &r.kind)
                {
                    receives.entry(*m).or_default().push(queue);
                }
            }
        }
    }
    if receives.len() > 1 {
        return Err(format!(
            "the {} app's queues ask for different deadLetter.maxReceives ({}); Azure sets one maxDequeueCount per app, so give them the same value",
            family.worker_runtime(),
            receives
                .iter()
                .map(|(m, qs)| format!("{m} for {}", qs.join(", ")))
                .collect::<Vec<_>>()
                .join("; ")
        ));
    }
    if let Some(m) = receives.keys().next() {
        host["extensions"]["queues"] = json!({ "maxDequeueCount": m });
    }
    if family == Family::Custom {
        host["customHandler"] = json!({
            "description": {
                "defaultExecutablePath": CUSTOM_ADAPTER,
                "workingDirectory": "",
                "arguments": [],
            },
            "enableForwardingHttpRequest": false,
        });
    }
    Ok(host)
}

fn hms(secs: u32) -> String {
    format!("{:02}:{:02}:{:02}", secs / 3600, secs / 60 % 60, secs % 60)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn queue_names_follow_azure_rules() {
        assert_eq!(queue_name("jobs"), "jobs");
        assert_eq!(queue_name("Big_Jobs--x"), "big-jobs-x");
        assert_eq!(queue_name("q"), "q00");
        assert_eq!(queue_name(&"a".repeat(80)).len(), 63);
    }

    #[test]
    fn greedy_routes() {
        let h = HttpTrigger {
            method: "ANY".into(),
            path: "/files/{proxy+}".into(),
            cors: false,
            payload: ferry_core::model::PayloadVersion::V2,
        };
        assert_eq!(route(&h), "files/{*proxy}");
    }

    #[test]
    fn hms_format() {
        assert_eq!(hms(10), "00:00:10");
        assert_eq!(hms(3725), "01:02:05");
    }
}
