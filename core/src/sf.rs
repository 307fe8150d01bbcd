//! Lowering of Serverless Framework v3 `serverless.yml` files (`provider.name: aws`, functions
//! with `events:`) into the neutral model. What a file asks for that ferry cannot honour is a
//! warning (when ignoring it is harmless to the deployed behaviour) or an error (when ignoring
//! it would deploy something different), each naming the key and its line.

use crate::diag::{did_you_mean, Diag};
use crate::lower::{DEFAULT_BATCH, DEFAULT_TIMEOUT};
use crate::model::*;
use crate::source::Span;
use crate::spans::{join, SpanIndex};
use crate::yaml::{Node, Value};
use std::collections::BTreeMap;

/// Providers the Serverless Framework has plugins for that ferry does not read.
pub fn is_serverless_v3(root: &Node) -> bool {
    let functions = root
        .get("functions")
        .and_then(Node::as_map)
        .unwrap_or_default();
    // `triggers:` is ferry's word; a file that uses it is ferry's, whatever else it has (its
    // unknown keys are then reported as such).
    if functions.iter().any(|(_, f)| f.get("triggers").is_some()) {
        return false;
    }
    let has_events = functions.iter().any(|(_, f)| f.get("events").is_some());
    let sf_only_keys = ["frameworkVersion", "plugins", "resources"]
        .iter()
        .any(|k| root.get(k).is_some());
    let provider = root.get("provider");
    let provider_is_string = provider.and_then(Node::as_str).is_some();
    let sf_provider_keys =
        provider.is_some_and(|p| p.get("memorySize").is_some() || p.get("iam").is_some());
    has_events || sf_only_keys || provider_is_string || sf_provider_keys
}

/// Top-level keys that ferry knows but does not deploy (warned about).
const TOP_WARNED: &[&str] = &["outputs", "layers", "stepFunctions", "stages"];
/// Top-level keys that are used, or only steer the framework itself (no warning).
const TOP_SILENT: &[&str] = &[
    "service",
    "provider",
    "functions",
    "resources",
    "package",
    "custom",
    "params",
    "useDotenv",
    "plugins",
    "frameworkVersion",
    "variablesResolutionMode",
    "configValidationMode",
    "disabledDeprecations",
    "deprecationNotificationMode",
    "org",
    "app",
    "console",
];
const PROVIDER_USED: &[&str] = &[
    "name",
    "runtime",
    "stage",
    "region",
    "memorySize",
    "timeout",
    "environment",
    "iam",
    "iamRoleStatements",
    "tags",
    "stackTags",
    "architecture",
    "httpApi",
];
/// Provider keys that only tune the Serverless Framework's own deployment machinery.
const PROVIDER_SILENT: &[&str] = &[
    "lambdaHashingVersion",
    "versionFunctions",
    "profile",
    "deploymentMethod",
    "deploymentPrefix",
    "variableSyntax",
];
const FUNCTION_USED: &[&str] = &[
    "handler",
    "runtime",
    "memorySize",
    "timeout",
    "environment",
    "events",
    "description",
    "package",
    "architecture",
    "tags",
];
const PLUGINS_NATIVE: &[(&str, &str)] = &[
    ("serverless-offline", "`ferry dev` runs the service locally"),
    (
        "serverless-python-requirements",
        "`ferry package` vendors requirements.txt",
    ),
    (
        "serverless-iam-roles-per-function",
        "ferry gives every function its own role",
    ),
    ("serverless-dotenv-plugin", "use `useDotenv: true`"),
];

/// AWS Lambda runtime identifiers, current and deprecated.
const AWS_RUNTIMES: &[&str] = &[
    "nodejs",
    "nodejs4.3",
    "nodejs6.10",
    "nodejs8.10",
    "nodejs10.x",
    "nodejs12.x",
    "nodejs14.x",
    "nodejs16.x",
    "nodejs18.x",
    "nodejs20.x",
    "nodejs22.x",
    "nodejs24.x",
    "python2.7",
    "python3.6",
    "python3.7",
    "python3.8",
    "python3.9",
    "python3.10",
    "python3.11",
    "python3.12",
    "python3.13",
    "python3.14",
    "java8",
    "java8.al2",
    "java11",
    "java17",
    "java21",
    "java25",
    "dotnetcore1.0",
    "dotnetcore2.1",
    "dotnetcore3.1",
    "dotnet6",
    "dotnet8",
    "go1.x",
    "ruby2.5",
    "ruby2.7",
    "ruby3.2",
    "ruby3.3",
    "ruby3.4",
    "provided",
    "provided.al2",
    "provided.al2023",
];
/// Runtimes AWS no longer accepts for new functions.
const AWS_DEPRECATED: &[&str] = &[
    "nodejs",
    "nodejs4.3",
    "nodejs6.10",
    "nodejs8.10",
    "nodejs10.x",
    "nodejs12.x",
    "nodejs14.x",
    "nodejs16.x",
    "nodejs18.x",
    "python2.7",
    "python3.6",
    "python3.7",
    "python3.8",
    "python3.9",
    "java8",
    "dotnetcore1.0",
    "dotnetcore2.1",
    "dotnetcore3.1",
    "dotnet6",
    "go1.x",
    "ruby2.5",
    "ruby2.7",
    "provided",
];

struct Ctx<'a> {
    spans: &'a mut SpanIndex,
    errors: Vec<Diag>,
    warnings: Vec<Diag>,
    services: BTreeMap<String, Resource>,
}

impl Ctx<'_> {
    fn warn(&mut self, code: &'static str, msg: String, at: Span, help: &str) {
        // A provider default shared by every function is reported once.
        if self
            .warnings
            .iter()
            .any(|w| w.code == code && w.span == Some(at))
        {
            return;
        }
        self.warnings
            .push(Diag::warning(code, msg).at(at).help(help));
    }
    fn unsupported(&mut self, msg: String, at: Span, help: &str) {
        self.errors
            .push(Diag::error("unsupported-feature", msg).at(at).help(help));
    }
}

/// Lowers a resolved Serverless Framework v3 tree. Warnings are appended to `warnings`.
pub fn lower(
    root: &Node,
    stage: &str,
    provider_override: Option<ProviderName>,
    region_override: Option<&str>,
    spans: &mut SpanIndex,
    warnings: &mut Vec<Diag>,
) -> Result<(Service, Vec<Diag>), Vec<Diag>> {
    let mut cx = Ctx {
        spans,
        errors: vec![],
        warnings: vec![],
        services: BTreeMap::new(),
    };
    let empty = Node::new(Value::Map(vec![]), root.span);
    let provider = root.get("provider").unwrap_or(&empty);

    for (k, _) in root.as_map().unwrap_or_default() {
        let key = k.as_str().unwrap_or_default();
        if TOP_SILENT.contains(&key) {
            continue;
        }
        let help = match did_you_mean(key, TOP_SILENT.iter().chain(TOP_WARNED).copied()) {
            Some(s) if s != key => format!("did you mean `{s}`?"),
            _ => "ferry does not deploy it; remove it or deploy it separately".to_owned(),
        };
        cx.warn(
            "ignored-key",
            format!("top-level `{key}` is ignored by ferry"),
            k.span,
            &help,
        );
    }
    if let Some(plugins) = root.get("plugins") {
        let list: Vec<&Node> = match &plugins.value {
            Value::Seq(items) => items.iter().collect(),
            Value::Map(_) => plugins
                .get("modules")
                .and_then(Node::as_seq)
                .map(|s| s.iter().collect())
                .unwrap_or_default(),
            _ => vec![],
        };
        for p in list {
            let name = p.as_str().unwrap_or_default();
            let help = PLUGINS_NATIVE
                .iter()
                .find(|(n, _)| *n == name)
                .map(|(_, h)| h.to_string())
                .unwrap_or_else(|| "ferry does not run Serverless Framework plugins; check that the service works without it".to_owned());
            cx.warn(
                "plugin-ignored",
                format!("plugin `{name}` is not run"),
                p.span,
                &help,
            );
        }
    }

    let service = match root.get("service") {
        Some(n) => match &n.value {
            Value::Map(_) => n.get("name").and_then(Node::scalar_text),
            _ => n.scalar_text(),
        },
        None => None,
    };
    let Some(service) = service.filter(|s| !s.is_empty()) else {
        return Err(vec![Diag::error(
            "missing-key",
            "the manifest has no `service` name",
        )
        .at(root.span)
        .help("add `service: my-service` at the top")]);
    };

    // Provider defaults.
    if let Value::Map(entries) = &provider.value {
        for (k, _) in entries {
            let key = k.as_str().unwrap_or_default();
            if PROVIDER_USED.contains(&key) || PROVIDER_SILENT.contains(&key) {
                continue;
            }
            let help = match did_you_mean(key, PROVIDER_USED.iter().copied()) {
                Some(s) => format!("did you mean `{s}`?"),
                None => "ferry's AWS provider does not apply this setting".to_owned(),
            };
            cx.warn(
                "ignored-key",
                format!("`provider.{key}` is ignored"),
                k.span,
                &help,
            );
        }
    }
    if let Some(n) = provider.get("name") {
        if n.as_str() != Some("aws") {
            cx.errors.push(
                Diag::error("unsupported-provider", format!("a Serverless Framework file is read for `provider.name: aws`, not `{}`", n.scalar_text().unwrap_or_default()))
                    .at(n.span)
                    .help("set `provider.name: aws`, or write the ferry dialect (`triggers:` instead of `events:`) and choose the cloud with `--provider`"),
            );
        }
    }
    let default_runtime = provider.get("runtime");
    let default_memory = int(provider.get("memorySize"), &mut cx, "provider.memorySize");
    let default_timeout = int(provider.get("timeout"), &mut cx, "provider.timeout");
    let default_arch = provider.get("architecture").and_then(|n| arch(n, &mut cx));
    let provider_env = env_map(provider.get("environment"), &mut cx);
    let mut tags = BTreeMap::new();
    for key in ["stackTags", "tags"] {
        if let Some(Value::Map(entries)) = provider.get(key).map(|n| &n.value) {
            for (k, v) in entries {
                tags.insert(
                    k.scalar_text().unwrap_or_default(),
                    v.scalar_text().unwrap_or_default(),
                );
            }
        }
    }
    let http_api_cors = provider
        .get("httpApi")
        .and_then(|h| h.get("cors"))
        .is_some_and(|c| c.value != Value::Bool(false));
    let mut iam_statements = Vec::new();
    for node in [
        provider
            .get("iam")
            .and_then(|i| i.get("role"))
            .and_then(|r| r.get("statements")),
        provider.get("iamRoleStatements"),
    ]
    .into_iter()
    .flatten()
    {
        if let Value::Seq(items) = &node.value {
            iam_statements.extend(items.iter().map(Node::to_json));
        }
    }
    if let Some(role) = provider.get("iam").and_then(|i| i.get("role")) {
        if role.as_str().is_some() {
            cx.warn(
                "ignored-key",
                "`provider.iam.role` names an existing role; ferry creates one role per function"
                    .into(),
                role.span,
                "ferry grants what `uses` and the IAM statements ask for",
            );
        }
    }

    let shared_pkg = root.get("package");
    let mut functions = BTreeMap::new();
    if let Some(fs) = root.get("functions") {
        let entries: Vec<(Node, Node)> = match &fs.value {
            Value::Map(e) => e.clone(),
            // `functions:` may be a list of mappings (files merged by the framework).
            Value::Seq(items) => items
                .iter()
                .filter_map(|i| i.as_map())
                .flat_map(|m| m.to_vec())
                .collect(),
            Value::Null => vec![],
            _ => {
                cx.errors.push(
                    Diag::error(
                        "invalid-type",
                        "`functions` must be a mapping of function names",
                    )
                    .at(fs.span),
                );
                vec![]
            }
        };
        for (k, f) in &entries {
            let name = k.scalar_text().unwrap_or_default();
            let path = format!("functions.{name}");
            cx.spans.insert(format!("{path}#key"), k.span);
            cx.spans.insert(path.clone(), f.span);
            if let Some(func) = function(
                &name,
                f,
                &path,
                &mut cx,
                FnDefaults {
                    runtime: default_runtime,
                    memory: default_memory,
                    timeout: default_timeout,
                    arch: default_arch,
                    env: &provider_env,
                    http_api_cors,
                    shared_pkg,
                },
            ) {
                functions.insert(name, func);
            }
        }
    }

    let cloudformation = root.get("resources").map(|r| match &r.value {
        // `resources:` may be a list of fragments; they merge section by section.
        Value::Seq(items) => {
            let mut merged = serde_json::Map::new();
            for item in items {
                if let serde_json::Value::Object(o) = item.to_json() {
                    for (section, body) in o {
                        match (merged.get_mut(&section), body) {
                            (Some(serde_json::Value::Object(a)), serde_json::Value::Object(b)) => {
                                a.extend(b)
                            }
                            (_, b) => {
                                merged.insert(section, b);
                            }
                        }
                    }
                }
            }
            serde_json::Value::Object(merged)
        }
        _ => r.to_json(),
    });
    if let Some(r) = root.get_key("resources") {
        cx.warn(
            "cloudformation-passthrough",
            "`resources:` goes into the CloudFormation artifact only; `ferry deploy` does not create it".into(),
            r.span,
            "declare queues, buckets, tables, topics and secrets under ferry's `services:` to have them deployed directly",
        );
    }

    warnings.append(&mut cx.warnings);
    let region = region_override
        .map(str::to_owned)
        .or_else(|| provider.get("region").and_then(Node::scalar_text))
        .or_else(|| Some("us-east-1".to_owned()));
    let service = Service {
        model_version: MODEL_VERSION,
        service,
        stage: stage.to_owned(),
        provider: Some(provider_override.unwrap_or(ProviderName::Aws)),
        region,
        dialect: Dialect::ServerlessV3,
        tags,
        settings: BTreeMap::new(),
        services: cx.services,
        functions,
        cloudformation,
        iam_statements,
    };
    Ok((service, cx.errors))
}

struct FnDefaults<'a> {
    runtime: Option<&'a Node>,
    memory: Option<u32>,
    timeout: Option<u32>,
    arch: Option<Architecture>,
    env: &'a BTreeMap<String, EnvValue>,
    http_api_cors: bool,
    shared_pkg: Option<&'a Node>,
}

fn function(name: &str, f: &Node, path: &str, cx: &mut Ctx, d: FnDefaults) -> Option<Function> {
    if let Value::Map(entries) = &f.value {
        for (k, v) in entries {
            let key = k.as_str().unwrap_or_default();
            cx.spans.insert(join(path, key), v.span);
            if FUNCTION_USED.contains(&key) {
                continue;
            }
            match key {
                "image" => cx.unsupported(
                    format!("function `{name}` is a container image; ferry deploys zip packages"),
                    k.span,
                    "build the function as a zip (handler + runtime) to deploy it with ferry",
                ),
                "name" => cx.warn("ignored-key", format!("`functions.{name}.name` is ignored; ferry names the function `<service>-<stage>-{name}`"), k.span, "remove it"),
                _ => {
                    let help = match did_you_mean(key, FUNCTION_USED.iter().copied()) {
                        Some(s) => format!("did you mean `{s}`?"),
                        None => "ferry does not apply this function setting".to_owned(),
                    };
                    cx.warn("ignored-key", format!("`functions.{name}.{key}` is ignored"), k.span, &help);
                }
            }
        }
    } else {
        cx.errors.push(
            Diag::error(
                "invalid-type",
                format!("function `{name}` must be a mapping"),
            )
            .at(f.span),
        );
        return None;
    }
    let runtime_node = f.get("runtime").or(d.runtime);
    let runtime = match runtime_node {
        None => {
            // The Serverless Framework v3 default, which AWS has since deprecated.
            cx.warn(
                "runtime-deprecated",
                format!("function `{name}` has no runtime; the Serverless Framework default `nodejs18.x` is used, which AWS Lambda has deprecated"),
                f.get_key("handler").map_or(f.span, |k| k.span),
                "set `provider.runtime: nodejs22.x` (or another supported runtime)",
            );
            Runtime::Node(18)
        }
        Some(n) => {
            let text = n.scalar_text().unwrap_or_default();
            if !AWS_RUNTIMES.contains(&text.as_str()) {
                let mut diag = Diag::error(
                    "unknown-runtime",
                    format!("`{text}` is not an AWS Lambda runtime"),
                )
                .at(n.span);
                diag = match did_you_mean(&text, AWS_RUNTIMES.iter().copied()) {
                    Some(s) => diag.help(format!("did you mean `{s}`?")),
                    None => diag.help("see the Lambda runtimes list; ferry builds nodejs, python, provided and rust"),
                };
                cx.errors.push(diag);
                return None;
            }
            if AWS_DEPRECATED.contains(&text.as_str()) {
                cx.warn(
                    "runtime-deprecated",
                    format!("runtime `{text}` is deprecated by AWS Lambda and may be refused for new functions"),
                    n.span,
                    "move to a supported runtime such as nodejs22.x or python3.12",
                );
            }
            Runtime::parse(&text).unwrap_or(Runtime::Other(text))
        }
    };
    let handler = match f.get("handler").and_then(Node::scalar_text) {
        Some(h) => h,
        None => {
            if f.get("image").is_none() {
                cx.errors.push(
                    Diag::error("missing-key", format!("function `{name}` has no `handler`"))
                        .at(f.span)
                        .help("add `handler: file.function`"),
                );
            }
            return None;
        }
    };
    let mut environment = d.env.clone();
    environment.extend(env_map(f.get("environment"), cx));
    let memory = int(f.get("memorySize"), cx, &format!("{path}.memorySize"))
        .or(d.memory)
        .unwrap_or(1024);
    let timeout = int(f.get("timeout"), cx, &format!("{path}.timeout"))
        .or(d.timeout)
        .unwrap_or(6);
    let _ = DEFAULT_TIMEOUT;
    let architecture = f
        .get("architecture")
        .and_then(|n| arch(n, cx))
        .or(d.arch)
        .unwrap_or_default();
    let package = package(d.shared_pkg, f.get("package"));
    if !runtime.is_built_by_ferry() && package.artifact.is_none() {
        cx.warn(
            "runtime-prebuilt",
            format!("ferry does not build `{}` functions; `{name}` deploys only with a prebuilt `package.artifact`", runtime.name()),
            runtime_node.map_or(f.span, |n| n.span),
            "build the artifact with the language's tool and set `package: { artifact: path/to.zip }`",
        );
    }
    let mut triggers = Vec::new();
    if let Some(events) = f.get("events") {
        match &events.value {
            Value::Seq(items) => {
                for ev in items {
                    event(name, ev, path, &mut triggers, d.http_api_cors, cx);
                }
            }
            Value::Null => {}
            _ => cx.errors.push(
                Diag::error("invalid-type", "`events` must be a list")
                    .at(events.span)
                    .help("write each event as a `- ` item"),
            ),
        }
    }
    let tags = match f.get("tags").map(|n| &n.value) {
        Some(Value::Map(e)) => e
            .iter()
            .map(|(k, v)| {
                (
                    k.scalar_text().unwrap_or_default(),
                    v.scalar_text().unwrap_or_default(),
                )
            })
            .collect(),
        _ => BTreeMap::new(),
    };
    Some(Function {
        handler,
        runtime,
        memory,
        timeout,
        architecture,
        description: f.get("description").and_then(Node::scalar_text),
        environment,
        uses: vec![],
        triggers,
        package,
        tags,
    })
}

fn event(
    fname: &str,
    ev: &Node,
    fpath: &str,
    out: &mut Vec<Trigger>,
    http_api_cors: bool,
    cx: &mut Ctx,
) {
    let Some([(k, v)]) = ev.as_map() else {
        cx.errors.push(Diag::error("invalid-type", format!("an event of function `{fname}` must be a single-key mapping such as `- httpApi: GET /`")).at(ev.span));
        return;
    };
    let kind = k.as_str().unwrap_or_default();
    let tpath = format!("{fpath}.triggers.{}", out.len());
    cx.spans.insert(tpath.clone(), ev.span);
    let sub = |s: &str| format!("{tpath}.{s}");
    match kind {
        "httpApi" | "http" => {
            let mut payload = if kind == "http" { PayloadVersion::V1 } else { PayloadVersion::V2 };
            // `provider.httpApi.cors` is the HTTP API's; REST (`http`) routes opt in one by one.
            let http_api_cors = http_api_cors && kind == "httpApi";
            let (method, path, cors) = match &v.value {
                Value::Str(s) if s.trim() == "*" => ("ANY".to_owned(), "/{proxy+}".to_owned(), http_api_cors),
                Value::Str(s) => {
                    let mut parts = s.split_whitespace();
                    let a = parts.next().unwrap_or_default();
                    match parts.next() {
                        Some(p) => (a.to_owned(), p.to_owned(), http_api_cors),
                        None => ("ANY".to_owned(), a.to_owned(), http_api_cors),
                    }
                }
                Value::Map(entries) => {
                    let known = ["method", "path", "cors", "authorizer", "private", "request", "integration", "async", "response", "operationId", "summary", "description", "documentation"];
                    for (ek, _) in entries {
                        let key = ek.as_str().unwrap_or_default();
                        match key {
                            "method" | "path" | "cors" | "integration" => {}
                            "authorizer" | "private" => cx.unsupported(
                                format!("`{kind}.{key}` of function `{fname}`: ferry does not deploy authorizers or API keys yet"),
                                ek.span,
                                "remove it to deploy the route without authorization, or keep deploying this service with the Serverless Framework",
                            ),
                            _ if known.contains(&key) => cx.warn("ignored-key", format!("`{kind}.{key}` of function `{fname}` is ignored"), ek.span, "ferry maps the request and response in the payload shape"),
                            _ => {
                                let help = did_you_mean(key, ["method", "path", "cors"]).map(|s| format!("did you mean `{s}`?")).unwrap_or_else(|| "remove it".into());
                                cx.warn("ignored-key", format!("`{kind}.{key}` of function `{fname}` is ignored"), ek.span, &help);
                            }
                        }
                    }
                    if let Some(i) = v.get("integration").and_then(Node::as_str) {
                        match i {
                            "lambda-proxy" | "aws-proxy" | "aws_proxy" => {}
                            "lambda" | "aws" if kind == "http" => payload = PayloadVersion::Lambda,
                            _ => cx.unsupported(
                                format!("`{kind}.integration: {i}` of function `{fname}` is not supported"),
                                v.get_key("integration").map_or(v.span, |n| n.span),
                                "ferry deploys `lambda-proxy` and `lambda` integrations",
                            ),
                        }
                    }
                    let path = v.get("path").and_then(Node::scalar_text).unwrap_or_else(|| "/".into());
                    let method = v.get("method").and_then(Node::scalar_text).unwrap_or_else(|| "ANY".into());
                    let cors = v.get("cors").map_or(http_api_cors, |c| !matches!(c.value, Value::Bool(false) | Value::Null));
                    (method, path, cors)
                }
                _ => {
                    cx.errors.push(Diag::error("invalid-type", format!("`{kind}` needs a route such as `GET /path` or a mapping")).at(v.span));
                    return;
                }
            };
            let method = match method.to_ascii_uppercase().as_str() {
                "*" => "ANY".to_owned(),
                m => m.to_owned(),
            };
            let path = if path.starts_with('/') { path } else { format!("/{path}") };
            cx.spans.insert(sub("http"), v.span);
            out.push(Trigger::Http(HttpTrigger { method, path, cors, payload }));
        }
        "sqs" => {
            event_keys(fname, "sqs", v, &["arn", "batchSize", "maximumBatchingWindow", "functionResponseType", "enabled"], cx);
            let arn = match &v.value {
                Value::Map(_) => v.get("arn").unwrap_or(v),
                _ => v,
            };
            let (name, external) = external_name(arn, "sqs");
            let batch = int(v.get("batchSize"), cx, &sub("batchSize")).unwrap_or(DEFAULT_BATCH);
            let window = int(v.get("maximumBatchingWindow"), cx, &sub("batchWindow"));
            cx.spans.insert(sub("queue"), arn.span);
            cx.services.entry(name.clone()).or_insert(Resource {
                kind: ResourceKind::Queue { visibility_timeout: 30, max_receives: None, fifo: fifo_name(&arn.to_json()) },
                external: Some(external),
            });
            out.push(Trigger::Queue { queue: name, batch_size: batch, batch_window: window });
        }
        "schedule" => {
            event_keys(fname, "schedule", v, &["rate", "enabled", "input", "name", "description"], cx);
            let (rates, enabled, input): (Vec<&Node>, bool, Option<serde_json::Value>) = match &v.value {
                Value::Str(_) => (vec![v], true, None),
                Value::Map(_) => {
                    let rates = match v.get("rate") {
                        Some(Node { value: Value::Seq(items), .. }) => items.iter().collect(),
                        Some(n) => vec![n],
                        None => vec![],
                    };
                    let enabled = v.get("enabled").is_none_or(|e| e.value != Value::Bool(false));
                    (rates, enabled, v.get("input").map(Node::to_json))
                }
                _ => (vec![], true, None),
            };
            if rates.is_empty() {
                cx.errors.push(Diag::error("missing-key", format!("a schedule of function `{fname}` has no `rate`")).at(v.span).help("write `- schedule: rate(5 minutes)`"));
            }
            for r in rates {
                let i = out.len();
                cx.spans.insert(format!("{fpath}.triggers.{i}.schedule"), r.span);
                cx.spans.insert(format!("{fpath}.triggers.{i}"), ev.span);
                out.push(Trigger::Schedule { expression: r.scalar_text().unwrap_or_default().trim().to_owned(), enabled, input: input.clone() });
            }
        }
        "s3" => {
            event_keys(fname, "s3", v, &["bucket", "event", "rules", "existing", "forceDeploy"], cx);
            let bucket_node = match &v.value {
                Value::Map(_) => v.get("bucket").unwrap_or(v),
                _ => v,
            };
            let existing = v.get("existing").is_some_and(|e| e.value == Value::Bool(true));
            let (physical, external) = match &bucket_node.value {
                Value::Str(s) => (s.clone(), serde_json::Value::String(s.clone())),
                _ => external_name(bucket_node, "s3"),
            };
            let name = sanitize(&physical);
            let event = v.get("event").and_then(Node::as_str).unwrap_or("s3:ObjectCreated:*");
            let events = if event.starts_with("s3:ObjectRemoved") {
                vec![StorageEvent::Removed]
            } else if event.starts_with("s3:ObjectCreated") {
                vec![StorageEvent::Created]
            } else {
                cx.unsupported(format!("s3 event `{event}` of function `{fname}` has no neutral equivalent"), v.span, "use s3:ObjectCreated:* or s3:ObjectRemoved:*");
                return;
            };
            let (mut prefix, mut suffix) = (None, None);
            if let Some(Value::Seq(rules)) = v.get("rules").map(|n| &n.value) {
                for r in rules {
                    prefix = prefix.or_else(|| r.get("prefix").and_then(Node::scalar_text));
                    suffix = suffix.or_else(|| r.get("suffix").and_then(Node::scalar_text));
                }
            }
            cx.spans.insert(sub("storage"), bucket_node.span);
            cx.services.entry(name.clone()).or_insert(Resource {
                kind: ResourceKind::Bucket { versioning: false },
                external: (existing || !bucket_node.value.eq(&Value::Str(physical.clone()))).then_some(external),
            });
            out.push(Trigger::Storage { bucket: name, events, prefix, suffix });
        }
        "sns" => {
            event_keys(fname, "sns", v, &["arn", "topicName", "filterPolicy", "displayName"], cx);
            let (topic_node, filter) = match &v.value {
                Value::Map(_) => (v.get("arn").or_else(|| v.get("topicName")).unwrap_or(v), v.get("filterPolicy").map(Node::to_json)),
                _ => (v, None),
            };
            let (name, external) = match topic_node.as_str() {
                Some(s) if !s.starts_with("arn:") => (sanitize(s), None),
                _ => {
                    let (n, e) = external_name(topic_node, "sns");
                    (n, Some(e))
                }
            };
            cx.spans.insert(sub("topic"), topic_node.span);
            cx.services.entry(name.clone()).or_insert(Resource { kind: ResourceKind::Topic { fifo: fifo_name(&topic_node.to_json()) }, external });
            out.push(Trigger::Topic { topic: name, filter });
        }
        "stream" => cx.unsupported(
            format!("`stream` event of function `{fname}`: DynamoDB and Kinesis streams are not in ferry's neutral model yet"),
            k.span,
            "remove the event to deploy the rest, or keep this function on the Serverless Framework for now",
        ),
        other => {
            let known = ["httpApi", "http", "sqs", "schedule", "s3", "sns", "stream"];
            let help = match did_you_mean(other, known) {
                Some(s) => format!("did you mean `{s}`?"),
                None => format!("ferry maps the events {}", known.join(", ")),
            };
            cx.unsupported(format!("`{other}` event of function `{fname}` is not supported"), k.span, &help);
        }
    }
}

/// Warns about options of an event mapping that ferry does not apply.
fn event_keys(fname: &str, kind: &str, v: &Node, allowed: &[&str], cx: &mut Ctx) {
    let Some(entries) = v.as_map() else { return };
    for (k, val) in entries {
        let key = k.as_str().unwrap_or_default();
        if key == "enabled" && kind == "sqs" && val.value == Value::Bool(false) {
            cx.unsupported(
                format!("`sqs.enabled: false` of function `{fname}`: ferry would deploy the queue mapping enabled"),
                k.span,
                "remove the event to stop the function from reading the queue",
            );
        } else if !allowed.contains(&key) {
            let help = match did_you_mean(key, allowed.iter().copied()) {
                Some(s) => format!("did you mean `{s}`?"),
                None => "ferry does not apply this option; check that the function behaves the same without it".into(),
            };
            cx.warn(
                "ignored-key",
                format!("`{kind}.{key}` of function `{fname}` is ignored"),
                k.span,
                &help,
            );
        }
    }
}

/// A name and reference for a resource given as an ARN or a CloudFormation expression.
fn external_name(n: &Node, service: &str) -> (String, serde_json::Value) {
    match &n.value {
        Value::Str(s) => {
            let last = s.rsplit([':', '/']).next().unwrap_or(s);
            (sanitize(last), serde_json::Value::String(s.clone()))
        }
        _ => {
            let json = n.to_json();
            // {"Fn::GetAtt": ["Queue", "Arn"]} or {"Ref": "Topic"} → the logical id.
            let logical = json
                .get("Fn::GetAtt")
                .and_then(|a| a.get(0))
                .or_else(|| json.get("Ref"))
                .and_then(|v| v.as_str())
                .map(sanitize)
                .unwrap_or_else(|| format!("{service}-import"));
            (logical, json)
        }
    }
}

/// FIFO queues and topics are named `*.fifo`; the name is read before it is sanitised.
fn fifo_name(v: &serde_json::Value) -> bool {
    v.as_str().is_some_and(|s| s.ends_with(".fifo"))
}

fn sanitize(s: &str) -> String {
    let out: String = s
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '-'
            }
        })
        .collect();
    if out.starts_with(|c: char| c.is_ascii_alphabetic()) {
        out
    } else {
        format!("r-{out}")
    }
}

fn int(n: Option<&Node>, cx: &mut Ctx, path: &str) -> Option<u32> {
    let n = n?;
    cx.spans.insert(path.to_owned(), n.span);
    match &n.value {
        Value::Int(i) if *i >= 0 => u32::try_from(*i).ok(),
        Value::Str(s) if s.trim().parse::<u32>().is_ok() => s.trim().parse().ok(),
        // `memorySize: 1536MB`: the framework passes it on and CloudFormation rejects it;
        // the intent is clear, so take the number and say how to write it.
        Value::Str(s)
            if s.trim()
                .strip_suffix("MB")
                .is_some_and(|d| d.trim().parse::<u32>().is_ok()) =>
        {
            let v: u32 = s.trim().trim_end_matches("MB").trim().parse().ok()?;
            cx.warn(
                "unit-suffix",
                format!("`{s}` has a unit; the value is a number of MB"),
                n.span,
                &format!("write `{v}`"),
            );
            Some(v)
        }
        _ => {
            cx.errors.push(
                Diag::error(
                    "invalid-type",
                    format!("expected a whole number, found {}", n.type_name()),
                )
                .at(n.span),
            );
            None
        }
    }
}

fn arch(n: &Node, cx: &mut Ctx) -> Option<Architecture> {
    match n.as_str() {
        Some("x86_64") => Some(Architecture::X86_64),
        Some("arm64") => Some(Architecture::Arm64),
        _ => {
            cx.errors.push(
                Diag::error("unknown-value", "architecture must be `x86_64` or `arm64`").at(n.span),
            );
            None
        }
    }
}

fn env_map(n: Option<&Node>, cx: &mut Ctx) -> BTreeMap<String, EnvValue> {
    let mut out = BTreeMap::new();
    match n.map(|n| &n.value) {
        Some(Value::Map(entries)) => {
            for (k, v) in entries {
                let value = match &v.value {
                    Value::Map(_) | Value::Seq(_) => EnvValue::Expr(v.to_json()),
                    _ => EnvValue::Text(v.scalar_text().unwrap_or_default()),
                };
                out.insert(k.scalar_text().unwrap_or_default(), value);
            }
        }
        Some(Value::Null) | None => {}
        Some(_) => cx.errors.push(
            Diag::error("invalid-type", "`environment` must be a mapping")
                .at(n.map_or_else(Span::default, |n| n.span)),
        ),
    }
    out
}

fn package(shared: Option<&Node>, own: Option<&Node>) -> PackageSpec {
    // The framework's semantics: ordered patterns over everything, `!` excludes, a plain
    // pattern adds files back; the old `exclude`/`include` lists are `!x` and `x` patterns.
    let mut spec = PackageSpec::default();
    for p in [shared, own].into_iter().flatten() {
        let list = |key: &str| -> Vec<String> {
            match p.get(key).map(|n| &n.value) {
                Some(Value::Seq(items)) => items
                    .iter()
                    .filter_map(Node::as_str)
                    .map(str::to_owned)
                    .collect(),
                _ => vec![],
            }
        };
        spec.patterns.extend(
            list("exclude")
                .into_iter()
                .map(|x| format!("!{}", x.trim_start_matches('!'))),
        );
        spec.patterns.extend(list("include"));
        spec.patterns.extend(list("patterns"));
        if let Some(a) = p.get("artifact").and_then(Node::as_str) {
            spec.artifact = Some(a.to_owned());
        }
    }
    spec
}
