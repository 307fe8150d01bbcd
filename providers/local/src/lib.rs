//! ferry-local: the bundled local runtime behind `ferry dev`.
//!
//! One HTTP gateway on 127.0.0.1 routes the service's http triggers to warm worker processes
//! that speak the AWS Lambda Runtime API (so unmodified Lambda binaries, AWS's own runtime
//! clients and ferry's node/python shims all run as in the cloud), and a second listener
//! answers the AWS APIs that real clients call (Lambda `Invoke`).
#![deny(missing_docs)]

pub mod events;
pub mod gateway;
pub mod hosted;
pub mod log;
pub mod pool;
pub mod records;
pub mod routes;
pub mod runtime_api;
pub mod samples;
pub mod services;

use axum::body::Bytes;
use axum::extract::{ConnectInfo, Path, State};
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::Router;
use ferry_core::model::{injected_env_name, EnvValue, ResourceKind, Runtime, Service, Trigger};
pub use log::Log;
use pool::{Pool, Spec};
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path as FsPath, PathBuf};
use std::sync::Arc;
use std::time::Duration;

/// The node shim, embedded in the binary.
pub const NODE_SHIM: &str = include_str!("../../../templates/runtime/node/bootstrap.cjs");
/// The python shim, embedded in the binary.
pub const PYTHON_SHIM: &str = include_str!("../../../templates/runtime/python/bootstrap.py");

/// Options of `ferry dev`.
#[derive(Debug, Clone)]
pub struct DevOptions {
    /// Address to listen on (127.0.0.1 unless told otherwise).
    pub host: String,
    /// Gateway port (0 picks a free one).
    pub port: u16,
    /// Port of the AWS API endpoints (0 picks a free one).
    pub aws_port: u16,
    /// The service folder (`LAMBDA_TASK_ROOT`).
    pub service_dir: PathBuf,
    /// Most workers per function.
    pub concurrency: usize,
    /// Start one worker per function before the first request.
    pub warm: bool,
    /// Colour in logs.
    pub color: bool,
    /// Rust binaries, by function name (built by the caller).
    pub binaries: BTreeMap<String, PathBuf>,
}

/// Why `ferry dev` could not start.
#[derive(Debug, thiserror::Error)]
pub enum DevError {
    /// A port is taken or not allowed.
    #[error("cannot listen on {addr}: {source}\n  hint: choose another port with --port, or stop what uses it")]
    Bind {
        /// Address.
        addr: String,
        /// Cause.
        source: std::io::Error,
    },
    /// Writing the shims failed.
    #[error("cannot write the runtime shims to {}: {source}", path.display())]
    Shims {
        /// Path.
        path: PathBuf,
        /// Cause.
        source: std::io::Error,
    },
    /// A function's runtime cannot run locally.
    #[error("function `{function}`: {message}")]
    Unsupported {
        /// Function.
        function: String,
        /// Why and what to do.
        message: String,
    },
}

struct App {
    service: Service,
    services: Arc<services::Services>,
    pools: BTreeMap<String, Arc<Pool>>,
    table: gateway::Routes,
    domain: String,
}

/// A running local runtime.
pub struct Dev {
    /// Where the gateway listens.
    pub gateway: SocketAddr,
    /// Where the AWS API endpoints listen.
    pub aws: SocketAddr,
    app: Arc<App>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Dev {
    /// The startup table: every route and trigger, and the endpoints.
    pub fn describe(&self) -> String {
        let mut out = String::new();
        let g = self.gateway;
        out.push_str(&format!(
            "ferry dev: {} (stage {})\n\n",
            self.app.service.service, self.app.service.stage
        ));
        // Every route and trigger: what starts the function, the function, and where to call
        // it, in aligned columns.
        let mut rows: Vec<(String, &str, String)> = self
            .app
            .table
            .routes()
            .iter()
            .map(|r| {
                (
                    format!("{} {}", r.method, r.template),
                    r.target.function.as_str(),
                    format!("http://{g}{}", r.template),
                )
            })
            .collect();
        for (name, f) in &self.app.service.functions {
            for t in &f.triggers {
                let what = match t {
                    Trigger::Http(_) => continue,
                    Trigger::Queue {
                        queue, batch_size, ..
                    } => format!("queue {queue} (batches of {batch_size})"),
                    Trigger::Schedule { expression, .. } => format!("schedule {expression}"),
                    Trigger::Storage {
                        bucket,
                        events,
                        prefix,
                        suffix,
                    } => {
                        let mut on: Vec<String> = events
                            .iter()
                            .map(|e| format!("{e:?}").to_lowercase())
                            .collect();
                        on.extend(prefix.iter().map(|p| format!("{p}*")));
                        on.extend(suffix.iter().map(|x| format!("*{x}")));
                        format!("storage {bucket} ({})", on.join(", "))
                    }
                    Trigger::Topic { topic, .. } => format!("topic {topic}"),
                };
                rows.push((what, name, String::new()));
            }
        }
        let what_width = rows.iter().map(|r| r.0.chars().count()).max().unwrap_or(0);
        let name_width = rows.iter().map(|r| r.1.chars().count()).max().unwrap_or(0);
        for (what, name, url) in rows {
            let line = format!("  {what:what_width$}  → {name:name_width$}  {url}");
            out.push_str(line.trim_end());
            out.push('\n');
        }
        out.push_str(&format!(
            "\n  AWS endpoints (Lambda Invoke, SQS, SNS Publish, S3): --endpoint-url http://{}\n",
            self.aws
        ));
        for q in self.app.services.queues.keys() {
            out.push_str(&format!("    queue   {}\n", self.app.services.queue_url(q)));
        }
        for b in self.app.services.buckets.values() {
            out.push_str(&format!(
                "    bucket  s3://{}  ({})\n",
                b.name,
                b.dir.display()
            ));
        }
        for t in self.app.services.tables.keys() {
            out.push_str(&format!("    table   {t} (in memory)\n"));
        }
        for t in self.app.services.topics.keys() {
            out.push_str(&format!("    topic   {t}\n"));
        }
        out
    }

    /// Invokes a function directly (as `ferry invoke` does).
    pub async fn invoke(&self, function: &str, payload: Bytes) -> Option<pool::Result> {
        let pool = self.app.pools.get(function)?.clone();
        Some(pool.invoke(payload, uuid::Uuid::new_v4().to_string()).await)
    }

    /// Stops every worker and writes out the log lines still queued.
    pub fn shutdown(self) {
        for p in self.app.pools.values() {
            p.shutdown();
        }
        for t in self.tasks {
            t.abort();
        }
        log::flush();
    }

    /// Retires every worker so that the next request runs the current code.
    /// Rebuilt rust binaries replace the files the workers were started from, so the specs
    /// stay as they are.
    pub fn reload(&self) {
        for p in self.app.pools.values() {
            p.reload(None);
        }
    }
}

fn runtime_dir(service_dir: &FsPath) -> PathBuf {
    service_dir.join(".ferry").join("local").join("runtime")
}

/// Writes the embedded shims where workers can run them. Each is replaced atomically: other
/// `ferry dev` processes in the same service may be starting workers from these files (a
/// plain write truncates first, and a worker started in between loads an empty shim).
fn write_shims(dir: &FsPath) -> Result<(PathBuf, PathBuf), DevError> {
    let node = dir.join("node").join("bootstrap.cjs");
    let python = dir.join("python").join("bootstrap.py");
    for (path, text) in [(&node, NODE_SHIM), (&python, PYTHON_SHIM)] {
        let write = || -> std::io::Result<()> {
            if std::fs::read_to_string(path).ok().as_deref() != Some(text) {
                ferry_core::package::write_atomic(path, text.as_bytes())?;
            }
            Ok(())
        };
        write().map_err(|source| DevError::Shims {
            path: path.clone(),
            source,
        })?;
    }
    Ok((node, python))
}

/// The node workers' `--max-semi-space-size`, in MB (see [`spec_for`]).
const NODE_SEMI_SPACE_MB: u32 = 4;

/// Variables of ferry's own environment that workers do not get, because Lambda does not set
/// them and they change how a runtime starts. `NODE_EXTRA_CA_CERTS` makes every node process
/// parse that bundle before anything else runs: pointed at the system bundle (as on many CI
/// images), 90 of a node worker's 150 ms start. A function that needs it sets it in its
/// `environment`, as it must on Lambda.
const NOT_INHERITED: [&str; 1] = ["NODE_EXTRA_CA_CERTS"];

fn spec_for(
    service: &Service,
    name: &str,
    opts: &DevOptions,
    shims: &(PathBuf, PathBuf),
    aws: SocketAddr,
) -> Result<Spec, DevError> {
    let f = &service.functions[name];
    let local = service.settings.get("local");
    let setting = |k: &str| {
        local
            .and_then(|l| l.get(k))
            .and_then(|v| v.as_str())
            .map(str::to_owned)
    };
    // ferry's own shims, not AWS's clients or the function's own binary.
    let mut shim = false;
    let command = match &f.runtime {
        // The memory setting bounds V8's old generation as Lambda's node runtime does (90% of
        // it). The young generation stays small on purpose (Lambda gives each semi-space 5% of
        // the setting, 51 MB at 1024 MB): here workers share a few cores with the gateway and
        // each other, and a scavenge's pause grows with the young generation; at 51 MB it held
        // the p99 of `bench/dev.sh`'s node route at 3.5-4 ms, at 4 MB 2.1 ms, same throughput.
        Runtime::Node(_) => {
            shim = true;
            vec![
                setting("node").unwrap_or_else(|| "node".into()),
                format!("--max-semi-space-size={NODE_SEMI_SPACE_MB}"),
                format!("--max-old-space-size={}", (u64::from(f.memory) * 9 / 10).max(64)),
                shims.0.display().to_string(),
            ]
        }
        Runtime::Python(_) => {
            let python = setting("python").or_else(|| std::env::var("FERRY_PYTHON").ok()).unwrap_or_else(|| "python3".into());
            match setting("pythonRuntimeClient").as_deref() {
                // AWS's own client, run as Lambda's python runtime runs it.
                Some("awslambdaric") => vec![python, "-m".into(), "awslambdaric".into(), f.handler.clone()],
                _ => {
                    shim = true;
                    vec![python, shims.1.display().to_string()]
                }
            }
        }
        Runtime::Rust => match opts.binaries.get(name) {
            Some(p) => vec![p.display().to_string()],
            None => return Err(DevError::Unsupported { function: name.into(), message: "the rust binary was not built".into() }),
        },
        Runtime::Provided => vec![opts.service_dir.join(&f.handler).display().to_string()],
        Runtime::Other(rt) => {
            return Err(DevError::Unsupported {
                function: name.into(),
                message: format!("runtime `{rt}` does not run locally; ferry dev runs node, python, rust and provided functions"),
            })
        }
    };
    let deployed = format!("{}-{}-{}", service.service, service.stage, name);
    let region = service.region.clone().unwrap_or_else(|| "us-east-1".into());
    let mut env: BTreeMap<String, String> = std::env::vars()
        .filter(|(k, _)| !k.starts_with("AWS_") && !NOT_INHERITED.contains(&k.as_str()))
        .collect();
    let exec_env = match &f.runtime {
        Runtime::Node(v) => format!("AWS_Lambda_nodejs{v}.x"),
        Runtime::Python(v) => format!("AWS_Lambda_python3.{v}"),
        _ => "AWS_Lambda_provided.al2023".into(),
    };
    for (k, v) in [
        ("AWS_LAMBDA_FUNCTION_NAME", deployed.clone()),
        ("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", f.memory.to_string()),
        ("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST".into()),
        (
            "AWS_LAMBDA_LOG_GROUP_NAME",
            format!("/aws/lambda/{deployed}"),
        ),
        ("AWS_LAMBDA_LOG_STREAM_NAME", "local/[$LATEST]ferry".into()),
        ("AWS_LAMBDA_INITIALIZATION_TYPE", "on-demand".into()),
        ("AWS_EXECUTION_ENV", exec_env),
        ("AWS_REGION", region.clone()),
        ("AWS_DEFAULT_REGION", region.clone()),
        ("LAMBDA_TASK_ROOT", opts.service_dir.display().to_string()),
        (
            "LAMBDA_RUNTIME_DIR",
            runtime_dir(&opts.service_dir).display().to_string(),
        ),
        ("_HANDLER", f.handler.clone()),
        ("TZ", ":UTC".into()),
        // Local functions talk to the local endpoints with throwaway credentials, never to
        // a real account by accident.
        ("AWS_ACCESS_KEY_ID", "ferry-local".into()),
        ("AWS_SECRET_ACCESS_KEY", "ferry-local".into()),
        ("AWS_ENDPOINT_URL", format!("http://{aws}")),
    ] {
        env.insert(k.into(), v);
    }
    // Where the services this function uses live locally, under the names it reads in the
    // cloud (`ORDERS_QUEUE_URL`, `UPLOADS_BUCKET_NAME`, ...).
    for u in &f.uses {
        let Some(r) = service.services.get(u) else {
            continue;
        };
        let phys = services::physical(&service.service, &service.stage, u);
        let value = match &r.kind {
            ResourceKind::Queue { .. } => format!("http://{aws}/123456789012/{phys}"),
            ResourceKind::Bucket { .. } => phys.to_ascii_lowercase(),
            ResourceKind::Topic { .. } => format!("arn:aws:sns:{region}:123456789012:{phys}"),
            ResourceKind::Table { .. } => phys,
            ResourceKind::Secret { .. } => {
                format!("arn:aws:secretsmanager:{region}:123456789012:secret:{phys}")
            }
        };
        env.insert(injected_env_name(u, &r.kind), value);
    }
    for (k, v) in &f.environment {
        env.insert(
            k.clone(),
            match v {
                EnvValue::Text(t) => t.clone(),
                EnvValue::Expr(e) => e.to_string(),
            },
        );
    }
    Ok(Spec {
        name: name.to_owned(),
        command,
        cwd: opts.service_dir.clone(),
        env,
        timeout: Duration::from_secs(f.timeout.max(1).into()),
        concurrency: opts.concurrency,
        arn: format!("arn:aws:lambda:{region}:123456789012:function:{deployed}"),
        memory: f.memory,
        local_socket: shim,
    })
}

/// Starts the gateway, the AWS endpoints and (with `warm`) one worker per function.
pub async fn start(service: Service, opts: DevOptions) -> Result<Dev, DevError> {
    let shims = write_shims(&runtime_dir(&opts.service_dir))?;
    let bind = |port: u16| {
        let addr = format!("{}:{port}", opts.host);
        async move {
            tokio::net::TcpListener::bind(&addr)
                .await
                .map_err(|source| DevError::Bind { addr, source })
        }
    };
    let gw_listener = bind(opts.port).await?;
    let aws_listener = bind(opts.aws_port).await?;
    let gateway = gw_listener.local_addr().map_err(|source| DevError::Bind {
        addr: opts.host.clone(),
        source,
    })?;
    let aws = aws_listener.local_addr().map_err(|source| DevError::Bind {
        addr: opts.host.clone(),
        source,
    })?;
    let log = Log::new(opts.color);

    let mut pools = BTreeMap::new();
    for name in service.functions.keys() {
        let spec = spec_for(&service, name, &opts, &shims, aws)?;
        pools.insert(name.clone(), Pool::new(spec, log.clone()));
    }
    let routes = gateway::routes(service.functions.iter().flat_map(|(name, f)| {
        f.triggers.iter().filter_map(move |t| match t {
            Trigger::Http(h) => Some((name.as_str(), h)),
            _ => None,
        })
    }));
    let region = service.region.clone().unwrap_or_else(|| "us-east-1".into());
    let (svcs, background) = build_services(&service, &pools, &opts, &region, aws, &log);
    let services = Arc::new(svcs);
    let app = Arc::new(App {
        service,
        services,
        pools,
        table: routes,
        domain: gateway.to_string(),
    });
    if opts.warm {
        // One at a time, functions with http triggers first: on a small machine, starting
        // every interpreter at once delays the first response of each.
        let mut order: Vec<(bool, Arc<Pool>)> = app
            .service
            .functions
            .iter()
            .map(|(n, f)| {
                (
                    !f.triggers.iter().any(|t| matches!(t, Trigger::Http(_))),
                    app.pools[n].clone(),
                )
            })
            .collect();
        order.sort_by_key(|(not_http, _)| *not_http);
        tokio::spawn(async move {
            for (_, p) in order {
                p.warm().await;
            }
        });
    }
    // API Gateway accepts request bodies up to 10 MB; S3 uploads through the AWS endpoint
    // may be larger.
    let gw = Router::new()
        .fallback(gateway_handler)
        .layer(axum::extract::DefaultBodyLimit::max(10 * 1024 * 1024))
        .with_state(app.clone());
    let aws_router = Router::new()
        .route(
            "/2015-03-31/functions/{name}/invocations",
            axum::routing::post(lambda_invoke),
        )
        .fallback(aws_api)
        .layer(axum::extract::DefaultBodyLimit::max(512 * 1024 * 1024))
        .with_state(app.clone());
    let t1 = tokio::spawn(async move {
        let _ = axum::serve(
            gw_listener,
            gw.into_make_service_with_connect_info::<SocketAddr>(),
        )
        .await;
    });
    let t2 = tokio::spawn(async move {
        let _ = axum::serve(aws_listener, aws_router).await;
    });
    let mut tasks = vec![t1, t2];
    tasks.extend(background);
    Ok(Dev {
        gateway,
        aws,
        app,
        tasks,
    })
}

fn request_id() -> String {
    uuid::Uuid::new_v4().to_string()
}

async fn gateway_handler(
    State(app): State<Arc<App>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let req = gateway::incoming(
        &method,
        &uri,
        &headers,
        body,
        peer.ip().to_string(),
        &app.domain,
    );
    gateway::answer(&app.table, &app.pools, req, request_id()).await
}

/// Lambda's `Invoke` API: `aws lambda invoke --endpoint-url ...` and the SDKs call it.
async fn lambda_invoke(
    State(app): State<Arc<App>>,
    Path(name): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    // Accept the function's ferry name, its deployed name, or an ARN.
    let short = name.rsplit(':').next().unwrap_or(&name).to_owned();
    let prefix = format!("{}-{}-", app.service.service, app.service.stage);
    let key = short.strip_prefix(&prefix).unwrap_or(&short).to_owned();
    let Some(pool) = app.pools.get(&key).cloned() else {
        return lambda_error(
            StatusCode::NOT_FOUND,
            "ResourceNotFoundException",
            &format!("Function not found: {name}"),
        );
    };
    let payload = if body.is_empty() {
        Bytes::from_static(b"{}")
    } else {
        body
    };
    let id = request_id();
    let kind = headers
        .get("x-amz-invocation-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("RequestResponse")
        .to_owned();
    // Lambda's limits on what an invocation may carry: 6 MB called synchronously, 1 MB as an
    // event.
    let limit = if kind == "Event" {
        ASYNC_PAYLOAD_LIMIT
    } else {
        runtime_api::PAYLOAD_LIMIT
    };
    if payload.len() > limit {
        return lambda_error(
            StatusCode::PAYLOAD_TOO_LARGE,
            "RequestTooLargeException",
            &format!("Request must be smaller than {limit} bytes for the InvokeFunction operation"),
        );
    }
    // Lambda takes only JSON events (an empty body is `{}`).
    if let Err(e) = serde_json::from_slice::<serde::de::IgnoredAny>(&payload) {
        return invalid_content(&format!("Could not parse request body into json: {e}"));
    }
    let client_context = match headers.get("x-amz-client-context").map(client_context) {
        None => None,
        Some(Ok(c)) => Some(c),
        Some(Err(why)) => return invalid_content(&why),
    };
    match kind.as_str() {
        "DryRun" => return StatusCode::NO_CONTENT.into_response(),
        "Event" => {
            // Lambda passes the client context to synchronous invocations only.
            let answer = (StatusCode::ACCEPTED, [("x-amzn-requestid", id.clone())], "");
            tokio::spawn(async move {
                let _ = pool.invoke(payload, id).await;
            });
            return answer.into_response();
        }
        _ => {}
    }
    let log_tail = match headers.get("x-amz-log-type").map(|v| v.as_bytes()) {
        None | Some(b"None") => false,
        Some(b"Tail") => true,
        Some(other) => {
            return lambda_error(
                StatusCode::BAD_REQUEST,
                "ValidationException",
                &format!(
                    "1 validation error detected: Value '{}' at 'logType' failed to satisfy constraint: Member must satisfy enum value set: [Tail, None]",
                    String::from_utf8_lossy(other)
                ),
            )
        }
    };
    let extras = pool::Extras {
        client_context,
        log_tail,
    };
    let (result, tail) = pool.invoke_with(payload, id.clone(), extras).await;
    let (error, body) = match result {
        pool::Result::Ok(b) => (None, b),
        pool::Result::FunctionError(b) => (Some("Unhandled"), b),
        pool::Result::Timeout => (
            Some("Unhandled"),
            Bytes::from(
                serde_json::json!({ "errorType": "Sandbox.Timedout", "errorMessage": "Task timed out" }).to_string(),
            ),
        ),
        pool::Result::Failed(why) => (
            Some("Unhandled"),
            Bytes::from(
                serde_json::json!({ "errorType": "Runtime.ExitError", "errorMessage": why }).to_string(),
            ),
        ),
    };
    let mut answer = (
        StatusCode::OK,
        [("x-amz-executed-version", "$LATEST")],
        [("x-amzn-requestid", id)],
        body,
    )
        .into_response();
    let h = answer.headers_mut();
    if let Some(e) = error {
        h.insert(
            "x-amz-function-error",
            axum::http::HeaderValue::from_static(e),
        );
    }
    if let Some(t) = tail {
        use base64::Engine as _;
        let b64 = base64::engine::general_purpose::STANDARD.encode(t);
        if let Ok(v) = axum::http::HeaderValue::from_str(&b64) {
            h.insert("x-amz-log-result", v);
        }
    }
    answer
}

/// Lambda's limit on an asynchronous invocation's payload (1 MB since October 2025).
const ASYNC_PAYLOAD_LIMIT: usize = 1024 * 1024;

/// A Lambda API error: its type (`x-amzn-errortype`, which the SDKs map to an exception) and
/// message.
fn lambda_error(status: StatusCode, error_type: &'static str, message: &str) -> Response {
    (
        status,
        [
            ("content-type", "application/json"),
            ("x-amzn-errortype", error_type),
        ],
        serde_json::json!({ "Type": "User", "message": message }).to_string(),
    )
        .into_response()
}

/// Lambda's `InvalidRequestContentException`.
fn invalid_content(message: &str) -> Response {
    lambda_error(
        StatusCode::BAD_REQUEST,
        "InvalidRequestContentException",
        message,
    )
}

/// The JSON of an `Invoke` call's `X-Amz-Client-Context` header, which carries up to 3,583
/// bytes of base64 that must decode to a JSON object; Lambda refuses anything else.
fn client_context(header: &axum::http::HeaderValue) -> Result<String, String> {
    use base64::Engine as _;
    const MAX: usize = 3583;
    const INVALID: &str = "Client context must be a valid Base64-encoded JSON object.";
    if header.len() > MAX {
        return Err(format!(
            "Client context must be at most {MAX} bytes of Base64 ({} given).",
            header.len()
        ));
    }
    let json = base64::engine::general_purpose::STANDARD
        .decode(header.as_bytes())
        .ok()
        .and_then(|b| String::from_utf8(b).ok())
        .ok_or(INVALID)?;
    match serde_json::from_str::<serde_json::Value>(&json) {
        Ok(serde_json::Value::Object(_)) => Ok(json),
        _ => Err(INVALID.into()),
    }
}

/// Every request to the AWS endpoint other than Lambda `Invoke`.
async fn aws_api(
    State(app): State<Arc<App>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    services::api::handle(
        &app.services,
        method,
        uri.path(),
        uri.query().unwrap_or(""),
        &headers,
        body,
    )
    .await
}

/// Queues, buckets, topics and schedules, and the tasks that drive their triggers.
fn build_services(
    service: &Service,
    pools: &BTreeMap<String, Arc<Pool>>,
    opts: &DevOptions,
    region: &str,
    aws: SocketAddr,
    log: &Log,
) -> (services::Services, Vec<tokio::task::JoinHandle<()>>) {
    use services::{queue::Queue, storage::Bucket, storage::Subscriber, Topic, TopicSubscriber};
    let mut s = services::Services {
        region: region.to_owned(),
        endpoint: format!("http://{aws}"),
        ..Default::default()
    };
    let mut tasks = Vec::new();
    let phys = |n: &str| services::physical(&service.service, &service.stage, n);
    let mut queues_by_name = BTreeMap::new();
    for (name, r) in &service.services {
        match &r.kind {
            ResourceKind::Queue {
                visibility_timeout,
                max_receives,
                ..
            } => {
                let p = phys(name);
                let dlq = max_receives.map(|_| {
                    Queue::new(
                        format!("{p}-dlq"),
                        region,
                        Duration::from_secs(30),
                        None,
                        None,
                    )
                });
                if let Some(d) = &dlq {
                    s.queues.insert(d.name.clone(), d.clone());
                }
                let q = Queue::new(
                    p.clone(),
                    region,
                    Duration::from_secs((*visibility_timeout).into()),
                    *max_receives,
                    dlq,
                );
                s.queues.insert(p, q.clone());
                queues_by_name.insert(name.clone(), q);
            }
            ResourceKind::Bucket { .. } => {
                let p = phys(name).to_ascii_lowercase();
                let dir = opts
                    .service_dir
                    .join(".ferry")
                    .join("local")
                    .join("buckets")
                    .join(&p);
                let _ = std::fs::create_dir_all(&dir);
                let subscribers = service
                    .functions
                    .iter()
                    .flat_map(|(f, def)| def.triggers.iter().map(move |t| (f, t)))
                    .filter_map(|(f, t)| match t {
                        Trigger::Storage {
                            bucket,
                            events,
                            prefix,
                            suffix,
                        } if bucket == name => Some(Subscriber {
                            pool: pools[f].clone(),
                            created: events.contains(&ferry_core::model::StorageEvent::Created),
                            removed: events.contains(&ferry_core::model::StorageEvent::Removed),
                            prefix: prefix.clone(),
                            suffix: suffix.clone(),
                        }),
                        _ => None,
                    })
                    .collect();
                s.buckets.insert(
                    p.clone(),
                    Arc::new(Bucket {
                        name: p,
                        dir,
                        subscribers,
                    }),
                );
            }
            ResourceKind::Topic { .. } => {
                let arn = format!("arn:aws:sns:{region}:123456789012:{}", phys(name));
                let subscribers = service
                    .functions
                    .iter()
                    .flat_map(|(f, def)| def.triggers.iter().map(move |t| (f, t)))
                    .filter_map(|(f, t)| match t {
                        Trigger::Topic { topic, filter } if topic == name => {
                            Some(TopicSubscriber {
                                pool: pools[f].clone(),
                                filter: filter.clone(),
                            })
                        }
                        _ => None,
                    })
                    .collect();
                s.topics.insert(
                    arn.clone(),
                    Arc::new(Topic {
                        name: phys(name),
                        arn,
                        subscribers,
                    }),
                );
            }
            ResourceKind::Secret { .. } => {
                let p = phys(name);
                if std::env::var(services::secret_env(name)).is_err() {
                    log.note(
                        name,
                        &format!(
                            "secret: {} is not set; functions get a local placeholder value",
                            services::secret_env(name)
                        ),
                    );
                }
                s.secrets.insert(
                    p.clone(),
                    format!("arn:aws:secretsmanager:{region}:123456789012:secret:{p}"),
                );
            }
            ResourceKind::Table { partition, sort } => {
                let p = phys(name);
                s.tables.insert(
                    p.clone(),
                    Arc::new(services::table::Table::new(
                        p,
                        partition.clone(),
                        sort.clone(),
                    )),
                );
            }
        }
    }
    for (f, def) in &service.functions {
        for (i, t) in def.triggers.iter().enumerate() {
            match t {
                Trigger::Queue {
                    queue,
                    batch_size,
                    batch_window,
                } => {
                    if let Some(q) = queues_by_name.get(queue) {
                        let window = Duration::from_secs(batch_window.unwrap_or(0).into());
                        tasks.push(tokio::spawn(services::queue::consume(
                            q.clone(),
                            pools[f].clone(),
                            *batch_size as usize,
                            window,
                            region.to_owned(),
                        )));
                    }
                }
                Trigger::Schedule {
                    expression,
                    enabled: true,
                    input,
                } => match services::schedule::timer(expression) {
                    Ok(timer) => {
                        let rule = format!("{}-{i}", phys(f));
                        tasks.push(tokio::spawn(services::schedule::run(
                            timer,
                            pools[f].clone(),
                            rule,
                            region.to_owned(),
                            input.clone(),
                        )));
                    }
                    Err(e) => log.note(f, &e),
                },
                _ => {}
            }
        }
    }
    (s, tasks)
}

#[cfg(test)]
mod tests {
    use axum::http::HeaderValue;
    use base64::Engine as _;

    #[test]
    fn client_contexts_are_base64_json_objects_of_limited_size() {
        let b64 = |s: &str| base64::engine::general_purpose::STANDARD.encode(s);
        let header = |s: &str| HeaderValue::from_str(s).unwrap();
        assert_eq!(
            super::client_context(&header(&b64(r#"{"custom":{"a":"b"}}"#))),
            Ok(r#"{"custom":{"a":"b"}}"#.to_owned())
        );
        for bad in [b64("[]"), b64("{"), b64("\"x\""), "%%%".to_owned()] {
            assert!(super::client_context(&header(&bad)).is_err(), "{bad}");
        }
        // Base64 comes in fours: 3,580 bytes pass, the next size up (3,584) is over 3,583.
        let fits = b64(&format!(r#"{{"custom":{{"p":"{}"}}}}"#, "x".repeat(2666)));
        assert_eq!(fits.len(), 3580);
        let at_limit = b64(&format!(r#"{{"custom":{{"p":"{}"}}}}"#, "x".repeat(2669)));
        assert_eq!(at_limit.len(), 3584);
        assert!(super::client_context(&header(&fits)).is_ok());
        let err = super::client_context(&header(&at_limit)).unwrap_err();
        assert!(err.contains("3583"), "{err}");
    }
}
