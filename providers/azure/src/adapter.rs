//! `ferry-adapter`: the custom handler of ferry's `custom` Function Apps. The Functions host
//! sends each invocation as an HTTP request (`POST /<azure function>` with `Data` and
//! `Metadata`); the adapter turns it into the Lambda event `ferry dev` would build, hands it to
//! the function's binary through the Lambda Runtime API (the same warm pools `ferry dev` uses),
//! and answers with the custom handler response (`ReturnValue` for HTTP). So one Rust binary
//! built on `lambda_runtime` serves AWS, Azure and local.

use axum::body::Bytes;
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use ferry_core::model::PayloadVersion;
use ferry_local::events::{self, Matched, Request};
use ferry_local::pool::{self, Pool, Spec};
use ferry_local::routes::Table;
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

/// Where a custom app keeps each function's files: `fns/<function>/` (its `bootstrap`, ...).
pub fn function_dir(function: &str) -> String {
    format!("fns/{function}")
}

struct Adapter {
    manifest: Value,
    pools: BTreeMap<String, Arc<Pool>>,
}

/// The Lambda environment of one function, on top of the app settings.
fn lambda_env(
    root: &Path,
    manifest: &Value,
    function: &str,
    fn_entry: &Value,
) -> BTreeMap<String, String> {
    let mut env: BTreeMap<String, String> = std::env::vars()
        .filter(|(k, _)| !k.starts_with("AWS_LAMBDA_") && k != "AWS_LAMBDA_RUNTIME_API")
        .collect();
    let service = manifest["service"].as_str().unwrap_or("service");
    let stage = manifest["stage"].as_str().unwrap_or("dev");
    let region = manifest["region"]
        .as_str()
        .map(str::to_owned)
        .or_else(|| std::env::var("REGION_NAME").ok())
        .unwrap_or_else(|| "azure".into());
    let deployed = format!("{service}-{stage}-{function}");
    let dir = root.join(function_dir(function));
    for (k, v) in [
        ("AWS_LAMBDA_FUNCTION_NAME", deployed.clone()),
        (
            "AWS_LAMBDA_FUNCTION_MEMORY_SIZE",
            fn_entry["memory"].as_u64().unwrap_or(128).to_string(),
        ),
        ("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST".into()),
        (
            "AWS_LAMBDA_LOG_GROUP_NAME",
            format!("/azure/functions/{deployed}"),
        ),
        ("AWS_LAMBDA_LOG_STREAM_NAME", "azure/[$LATEST]ferry".into()),
        ("AWS_LAMBDA_INITIALIZATION_TYPE", "on-demand".into()),
        ("AWS_EXECUTION_ENV", "AWS_Lambda_provided.al2023".into()),
        ("AWS_REGION", region.clone()),
        ("LAMBDA_TASK_ROOT", dir.display().to_string()),
        (
            "_HANDLER",
            fn_entry["handler"].as_str().unwrap_or_default().to_owned(),
        ),
    ] {
        env.insert(k.into(), v);
    }
    env
}

/// Runs the adapter in the app folder `root` on `port` until the process is stopped.
pub async fn serve(root: PathBuf, listener: tokio::net::TcpListener) -> Result<(), String> {
    let path = root.join("ferry/functions.json");
    let text = std::fs::read_to_string(&path).map_err(|e| format!("{}: {e}", path.display()))?;
    let manifest: Value =
        serde_json::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))?;
    let log = ferry_local::Log::new(false);
    let mut pools = BTreeMap::new();
    for entry in manifest["functions"]
        .as_object()
        .into_iter()
        .flat_map(|m| m.values())
    {
        let function = entry["function"].as_str().unwrap_or_default().to_owned();
        if pools.contains_key(&function) {
            continue;
        }
        let command = entry["command"].as_str().unwrap_or("bootstrap");
        let dir = root.join(function_dir(&function));
        let spec = Spec {
            name: function.clone(),
            command: vec![dir.join(command).display().to_string()],
            cwd: dir,
            env: lambda_env(&root, &manifest, &function, entry),
            timeout: Duration::from_secs(entry["timeout"].as_u64().unwrap_or(30).max(1)),
            concurrency: 8,
            arn: format!("azure:functions:{function}"),
            memory: entry["memory"].as_u64().unwrap_or(128) as u32,
        };
        pools.insert(function, Pool::new(spec, log.clone()));
    }
    let adapter = Arc::new(Adapter { manifest, pools });
    let app = axum::Router::new().fallback(move |uri: Uri, headers: HeaderMap, body: Bytes| {
        let a = adapter.clone();
        async move { a.handle(uri, headers, body).await }
    });
    axum::serve(listener, app).await.map_err(|e| e.to_string())
}

fn reply(status: StatusCode, v: Value) -> Response {
    (
        status,
        [("content-type", "application/json")],
        v.to_string(),
    )
        .into_response()
}

/// A header map of the custom handler payload (`{"Name": ["v1", "v2"]}` or `{"Name": "v"}`).
fn header_pairs(v: &Value) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for (k, vals) in v.as_object().into_iter().flatten() {
        match vals {
            Value::Array(a) => {
                for x in a {
                    out.push((
                        k.to_ascii_lowercase(),
                        x.as_str().unwrap_or_default().to_owned(),
                    ));
                }
            }
            Value::String(s) => out.push((k.to_ascii_lowercase(), s.clone())),
            _ => {}
        }
    }
    out
}

impl Adapter {
    async fn handle(&self, uri: Uri, _headers: HeaderMap, body: Bytes) -> Response {
        let name = uri.path().trim_start_matches('/').to_owned();
        let Some(entry) = self.manifest["functions"].get(&name) else {
            return reply(
                StatusCode::NOT_FOUND,
                json!({"Logs": [format!("ferry-adapter: no function {name}")]}),
            );
        };
        let payload: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
        let function = entry["function"].as_str().unwrap_or_default();
        let Some(pool) = self.pools.get(function) else {
            return reply(
                StatusCode::INTERNAL_SERVER_ERROR,
                json!({"Logs": ["ferry-adapter: no pool"]}),
            );
        };
        let trigger = &entry["trigger"];
        let request_id = payload["Metadata"]["sys"]["RandGuid"]
            .as_str()
            .map(str::to_owned)
            .unwrap_or_else(|| uuid::Uuid::new_v4().to_string());
        match trigger["kind"].as_str() {
            Some("http") => self.http(pool, trigger, &payload, request_id).await,
            Some(kind) => {
                let event = other_event(kind, trigger, &payload, &request_id, &self.manifest);
                let outcome = pool
                    .invoke(Bytes::from(event.to_string()), request_id)
                    .await;
                let failed = match &outcome {
                    pool::Result::Ok(b) => serde_json::from_slice::<Value>(b)
                        .ok()
                        .and_then(|v| v["batchItemFailures"].as_array().map(|a| !a.is_empty()))
                        .unwrap_or(false),
                    _ => true,
                };
                if failed {
                    // A failed invocation: the host retries the message (or the event).
                    reply(
                        StatusCode::INTERNAL_SERVER_ERROR,
                        json!({"Logs": [format!("ferry-adapter: {name} failed: {}", describe(&outcome))]}),
                    )
                } else {
                    reply(StatusCode::OK, json!({"Outputs": {}, "Logs": []}))
                }
            }
            None => reply(
                StatusCode::INTERNAL_SERVER_ERROR,
                json!({"Logs": ["ferry-adapter: no trigger"]}),
            ),
        }
    }

    async fn http(
        &self,
        pool: &Arc<Pool>,
        trigger: &Value,
        payload: &Value,
        request_id: String,
    ) -> Response {
        let req = &payload["Data"]["req"];
        let url = req["Url"].as_str().unwrap_or("http://localhost/");
        let (path, query) = match azure_core::http::Url::parse(url) {
            Ok(u) => (
                u.path().to_owned(),
                u.query().unwrap_or_default().to_owned(),
            ),
            Err(_) => ("/".to_owned(), String::new()),
        };
        let headers = header_pairs(&req["Headers"]);
        let header = |n: &str| headers.iter().find(|(k, _)| k == n).map(|(_, v)| v.clone());
        let method = req["Method"].as_str().unwrap_or("GET").to_ascii_uppercase();
        let version: PayloadVersion =
            serde_json::from_value(trigger["payload"].clone()).unwrap_or(PayloadVersion::V2);
        let template = trigger["path"].as_str().unwrap_or("/");
        let table = Table::new(vec![(
            trigger["method"].as_str().unwrap_or("ANY").to_owned(),
            template.to_owned(),
            (),
        )]);
        let params = table
            .find(&method, &path)
            .map(|(_, p)| p)
            .unwrap_or_default();
        let r = Request {
            method: method.clone(),
            path: path.clone(),
            query,
            body: Bytes::from(req["Body"].as_str().unwrap_or_default().to_owned()),
            source_ip: header("x-forwarded-for")
                .and_then(|v| v.split(',').next().map(|s| s.trim().to_owned()))
                .unwrap_or_else(|| "127.0.0.1".into()),
            domain: header("host").unwrap_or_else(|| "localhost".into()),
            headers,
        };
        let m = Matched {
            route_key: format!("{} {template}", trigger["method"].as_str().unwrap_or("ANY")),
            resource: template.to_owned(),
            params,
        };
        let event = events::request_event(version, &r, &m, &request_id);
        let outcome = pool
            .invoke(Bytes::from(event.to_string()), request_id)
            .await;
        let resp = match outcome {
            pool::Result::Ok(b) => events::response(version, &b),
            pool::Result::FunctionError(_) | pool::Result::Failed(_) => {
                events::Response::message(502, "Internal Server Error")
            }
            pool::Result::Timeout => events::Response::message(504, "Endpoint request timed out"),
        };
        let mut hs = serde_json::Map::new();
        let mut cookies = Vec::new();
        for (k, v) in &resp.headers {
            if k == "set-cookie" {
                cookies.push(json!(v));
                continue;
            }
            match hs.get_mut(k) {
                Some(Value::String(prev)) => {
                    prev.push_str(", ");
                    prev.push_str(v);
                }
                _ => {
                    hs.insert(k.clone(), json!(v));
                }
            }
        }
        if !cookies.is_empty() {
            hs.insert("set-cookie".into(), Value::Array(cookies));
        }
        let body = String::from_utf8_lossy(&resp.body).into_owned();
        reply(
            StatusCode::OK,
            json!({"Outputs": {}, "Logs": [], "ReturnValue": {"statusCode": resp.status, "headers": hs, "body": body}}),
        )
    }
}

fn describe(o: &pool::Result) -> String {
    match o {
        pool::Result::Ok(b) => format!("batchItemFailures {}", String::from_utf8_lossy(b)),
        pool::Result::FunctionError(b) => String::from_utf8_lossy(b).into_owned(),
        pool::Result::Timeout => "timed out".into(),
        pool::Result::Failed(m) => m.clone(),
    }
}

/// The SQS, EventBridge, S3 or SNS event for a non-HTTP invocation (as the node and python
/// adapters build them).
fn other_event(
    kind: &str,
    trigger: &Value,
    payload: &Value,
    request_id: &str,
    manifest: &Value,
) -> Value {
    let data = payload["Data"]
        .as_object()
        .and_then(|d| d.values().next())
        .cloned()
        .unwrap_or(Value::Null);
    let meta = &payload["Metadata"];
    let now = chrono::Utc::now().format("%Y-%m-%dT%H:%M:%SZ").to_string();
    let region = manifest["region"].as_str().unwrap_or_default();
    match kind {
        "queue" => {
            let body = match &data {
                Value::String(s) => s.clone(),
                other => other.to_string(),
            };
            let id = meta["Id"]
                .as_str()
                .map(str::to_owned)
                .unwrap_or_else(|| request_id.to_owned());
            json!({"Records": [{
                "messageId": id, "receiptHandle": id, "body": body,
                "attributes": {
                    "ApproximateReceiveCount": meta["DequeueCount"].as_u64().unwrap_or(1).to_string(),
                    "SentTimestamp": "0", "SenderId": "azure-storage-queue",
                    "ApproximateFirstReceiveTimestamp": "0",
                },
                "messageAttributes": {}, "eventSource": "aws:sqs",
                "eventSourceARN": trigger["queue"], "awsRegion": region,
            }]})
        }
        "schedule" => {
            if !trigger["input"].is_null() {
                return trigger["input"].clone();
            }
            json!({
                "version": "0", "id": request_id, "detail-type": "Scheduled Event",
                "source": "aws.events", "account": "000000000000", "time": now,
                "region": region, "resources": [trigger["rule"]], "detail": {},
            })
        }
        _ => {
            let ev: Value = match &data {
                Value::String(s) => serde_json::from_str(s).unwrap_or(Value::Null),
                other => other.clone(),
            };
            if kind == "storage" {
                let subject = ev["subject"].as_str().unwrap_or_default();
                let key = subject
                    .split_once("/blobs/")
                    .map(|(_, k)| k)
                    .unwrap_or_default();
                let created = ev["eventType"]
                    .as_str()
                    .unwrap_or_default()
                    .ends_with("BlobCreated");
                json!({"Records": [{
                    "eventVersion": "2.1", "eventSource": "aws:s3", "awsRegion": region,
                    "eventTime": ev["eventTime"],
                    "eventName": if created { "ObjectCreated:Put" } else { "ObjectRemoved:Delete" },
                    "s3": {"s3SchemaVersion": "1.0", "bucket": {"name": trigger["bucket"]},
                           "object": {"key": key, "size": ev["data"]["contentLength"], "sequencer": ev["data"]["sequencer"]}},
                }]})
            } else {
                let message = match &ev["data"] {
                    Value::String(s) => s.clone(),
                    other => other.to_string(),
                };
                json!({"Records": [{
                    "EventSource": "aws:sns", "EventVersion": "1.0",
                    "Sns": {"Type": "Notification", "MessageId": ev["id"], "TopicArn": trigger["topic"],
                            "Subject": ev["subject"], "Message": message, "Timestamp": ev["eventTime"]},
                }]})
            }
        }
    }
}
