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
use ferry_local::pool::{self, Pool};
use ferry_local::records;
use ferry_local::routes::Table;
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;

pub use ferry_local::hosted::function_dir;

struct Adapter {
    manifest: Value,
    pools: BTreeMap<String, Arc<Pool>>,
}

/// Runs the adapter in the app folder `root` on `listener` until the process is stopped.
pub async fn serve(root: PathBuf, listener: tokio::net::TcpListener) -> Result<(), String> {
    let region = std::env::var("REGION_NAME").unwrap_or_else(|_| "azure".into());
    let hosted = ferry_local::hosted::load(&root, "azure", &region, 8)?;
    let adapter = Arc::new(Adapter {
        manifest: hosted.manifest,
        pools: hosted.pools,
    });
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
                    pool::Result::Ok(b) => records::reports_failures(b),
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
    let region = manifest["region"].as_str().unwrap_or_default();
    let text = |v: &Value| match v {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    };
    match kind {
        "queue" => {
            let body = text(&data);
            let id = meta["Id"].as_str().unwrap_or(request_id);
            let record = records::sqs_record(&records::QueueMessage {
                id,
                receipt: id,
                body: &body,
                receive_count: meta["DequeueCount"].as_u64().unwrap_or(1),
                sent_ms: 0,
                sender: "azure-storage-queue",
                attributes: json!({}),
                source: trigger["queue"].as_str().unwrap_or_default(),
                region,
            });
            json!({"Records": [record]})
        }
        "schedule" => records::scheduled_event(
            request_id,
            "000000000000",
            &records::now_seconds(),
            region,
            trigger["rule"].as_str().unwrap_or_default(),
            Some(&trigger["input"]),
        ),
        _ => {
            let ev: Value = match &data {
                Value::String(s) => serde_json::from_str(s).unwrap_or(Value::Null),
                other => other.clone(),
            };
            let time = text(&ev["eventTime"]);
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
                let bucket = trigger["bucket"].as_str().unwrap_or_default();
                records::s3_event(&records::ObjectChange {
                    bucket,
                    bucket_arn: bucket,
                    key,
                    created,
                    size: ev["data"]["contentLength"].as_u64().unwrap_or(0),
                    etag: ev["data"]["eTag"].as_str().unwrap_or_default(),
                    sequencer: ev["data"]["sequencer"].as_str().unwrap_or_default(),
                    time: &time,
                    principal: "",
                    configuration: "ferry",
                    source_ip: "",
                    region,
                })
            } else {
                let topic = trigger["topic"].as_str().unwrap_or_default();
                records::sns_event(&records::Notification {
                    topic,
                    subscription: topic,
                    id: ev["id"].as_str().unwrap_or(request_id),
                    subject: ev["subject"].as_str(),
                    message: &text(&ev["data"]),
                    time: &time,
                    attributes: json!({}),
                    signature: "",
                })
            }
        }
    }
}
