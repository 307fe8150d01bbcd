//! `ferry-adapter` on Cloud Run: the HTTP server of a Cloud Run service that runs a Lambda
//! Runtime API binary (rust, provided). It listens on `$PORT`, starts the function's binary
//! (`fns/<function>/bootstrap`) in the warm pools `ferry dev` uses, and answers what the node
//! and python adapters of Cloud Functions answer (`templates/gcp`):
//!
//! - `POST /_ferry/events/<trigger>`: a Pub/Sub push (queue → SQS event, topic → SNS), a Cloud
//!   Scheduler job (EventBridge Scheduled Event) or an Eventarc Cloud Storage CloudEvent (S3
//!   event, filtered by the trigger's events, prefix and suffix); 204 when the function
//!   succeeded, 500 when it failed, timed out or reported `batchItemFailures`, so Pub/Sub and
//!   Eventarc deliver it again.
//! - anything else: an HTTP request routed to the function's http triggers and answered as
//!   `ferry dev`'s gateway answers it ([`ferry_local::gateway`]).

use axum::body::Bytes;
use axum::extract::ConnectInfo;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use ferry_core::model::HttpTrigger;
use ferry_local::events;
use ferry_local::gateway::{self, Routes};
use ferry_local::pool::{self, Pool};
use ferry_local::records;
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use crate::resources::EVENTS_PATH;

struct Adapter {
    /// `ferry/functions.json`.
    manifest: Value,
    /// The entry of the function this service runs.
    entry: Value,
    function: String,
    pools: BTreeMap<String, Arc<Pool>>,
    routes: Routes,
}

/// The function a package runs: `FERRY_FUNCTION`, or the only one in `functions.json`.
fn selected(manifest: &Value) -> Result<(String, Value), String> {
    let functions = manifest["functions"]
        .as_object()
        .cloned()
        .unwrap_or_default();
    let name = match std::env::var("FERRY_FUNCTION")
        .ok()
        .filter(|s| !s.is_empty())
    {
        Some(n) => n,
        None if functions.len() == 1 => functions.keys().next().cloned().unwrap_or_default(),
        None => {
            return Err(format!(
                "FERRY_FUNCTION is not set and ferry/functions.json has {} functions",
                functions.len()
            ))
        }
    };
    let entry = functions.get(&name).cloned().ok_or_else(|| {
        format!(
            "{name} is not in ferry/functions.json; the package is stale, run ferry deploy again"
        )
    })?;
    Ok((name, entry))
}

/// Serves the package in `root` on `listener` until the process stops.
pub async fn serve(root: PathBuf, listener: tokio::net::TcpListener) -> Result<(), String> {
    let hosted = ferry_local::hosted::load(&root, "gcp", "", 8)?;
    let (function, entry) = selected(&hosted.manifest)?;
    let triggers: Vec<HttpTrigger> = entry["http"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|h| serde_json::from_value(h.clone()).ok())
        .collect();
    let routes = gateway::routes(triggers.iter().map(|h| (function.as_str(), h)));
    let adapter = Arc::new(Adapter {
        manifest: hosted.manifest,
        entry,
        function,
        pools: hosted.pools,
        routes,
    });
    let app = axum::Router::new().fallback(
        move |ConnectInfo(peer): ConnectInfo<SocketAddr>,
              method: Method,
              uri: Uri,
              headers: HeaderMap,
              body: Bytes| {
            let a = adapter.clone();
            async move { a.handle(peer, method, uri, headers, body).await }
        },
    );
    axum::serve(
        listener,
        app.into_make_service_with_connect_info::<SocketAddr>(),
    )
    .await
    .map_err(|e| e.to_string())
}

fn header<'a>(h: &'a HeaderMap, name: &str) -> Option<&'a str> {
    h.get(name).and_then(|v| v.to_str().ok())
}

/// The trace id of `x-cloud-trace-context: TRACE/SPAN;o=1` or `traceparent: 00-TRACE-SPAN-01`.
fn trace_id(h: &HeaderMap) -> Option<String> {
    if let Some(t) = header(h, "x-cloud-trace-context")
        .and_then(|c| c.split('/').next())
        .filter(|t| !t.is_empty())
    {
        return Some(t.to_owned());
    }
    header(h, "traceparent")
        .map(|p| p.split('-').collect::<Vec<_>>())
        .filter(|p| p.len() >= 4 && !p[1].is_empty())
        .map(|p| p[1].to_owned())
}

fn message(status: u16, text: &str) -> Response {
    gateway::to_response(events::Response::message(status, text), false)
}

/// A Pub/Sub push message.
struct Push {
    /// The message id (a new id when Pub/Sub gave none).
    id: String,
    data: String,
    attributes: BTreeMap<String, String>,
    publish_time: String,
    attempt: u64,
}

impl Push {
    /// The attributes in the shape of the event (`shape(value)` for each).
    fn attributes(&self, shape: impl Fn(&str) -> Value) -> Value {
        Value::Object(
            self.attributes
                .iter()
                .map(|(k, v)| (k.clone(), shape(v)))
                .collect(),
        )
    }
}

fn push_message(body: &[u8]) -> Option<Push> {
    let v: Value = serde_json::from_slice(body).ok()?;
    let m = v.get("message").filter(|m| m.is_object())?;
    let data = m["data"].as_str().unwrap_or_default();
    let data = base64::engine::general_purpose::STANDARD
        .decode(data)
        .ok()
        .map(|b| String::from_utf8_lossy(&b).into_owned())
        .unwrap_or_default();
    let text = |a: &str, b: &str| {
        m[a].as_str()
            .or_else(|| m[b].as_str())
            .unwrap_or_default()
            .to_owned()
    };
    let id = Some(text("messageId", "message_id"))
        .filter(|id| !id.is_empty())
        .unwrap_or_else(|| uuid::Uuid::new_v4().to_string());
    let attributes = m["attributes"]
        .as_object()
        .into_iter()
        .flatten()
        .map(|(k, v)| {
            let v = v
                .as_str()
                .map(str::to_owned)
                .unwrap_or_else(|| v.to_string());
            (k.clone(), v)
        })
        .collect();
    Some(Push {
        id,
        data,
        attributes,
        publish_time: text("publishTime", "publish_time"),
        attempt: v["deliveryAttempt"].as_u64().unwrap_or(1),
    })
}

/// An Eventarc CloudEvent: binary mode (`ce-*` headers, the GCS object as the body) or
/// structured mode (`application/cloudevents+json`).
struct CloudEvent {
    ty: String,
    id: String,
    time: String,
    subject: String,
    data: Value,
}

fn cloud_event(h: &HeaderMap, body: &[u8]) -> Option<CloudEvent> {
    let ct = header(h, "content-type")
        .unwrap_or_default()
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase();
    let text = |v: &Value| v.as_str().unwrap_or_default().to_owned();
    if ct == "application/cloudevents+json" {
        let e: Value = serde_json::from_slice(body).ok()?;
        let mut data = e.get("data").cloned().unwrap_or(Value::Null);
        if data.is_null() {
            data = e["data_base64"]
                .as_str()
                .and_then(|d| base64::engine::general_purpose::STANDARD.decode(d).ok())
                .and_then(|b| serde_json::from_slice(&b).ok())
                .unwrap_or(Value::Null);
        }
        return Some(CloudEvent {
            ty: text(&e["type"]),
            id: text(&e["id"]),
            time: text(&e["time"]),
            subject: text(&e["subject"]),
            data,
        });
    }
    let ty = header(h, "ce-type")?.to_owned();
    let h = |n: &str| header(h, n).unwrap_or_default().to_owned();
    Some(CloudEvent {
        ty,
        id: h("ce-id"),
        time: h("ce-time"),
        subject: h("ce-subject"),
        data: serde_json::from_slice(body).unwrap_or(Value::Null),
    })
}

/// GCS's generation (microseconds, decimal) as S3's sequencer (16 upper-case hex digits).
fn sequencer(generation: &Value) -> String {
    let g = match generation {
        Value::String(s) => s.parse::<u64>().ok(),
        other => other.as_u64(),
    };
    g.map(|g| format!("{g:016X}")).unwrap_or_default()
}

/// S3's eTag is the hex MD5 of the object; GCS gives it in base64 (`md5Hash`), else its etag.
fn etag(data: &Value) -> String {
    data["md5Hash"]
        .as_str()
        .filter(|s| !s.is_empty())
        .and_then(|m| base64::engine::general_purpose::STANDARD.decode(m).ok())
        .map(hex::encode)
        .unwrap_or_else(|| data["etag"].as_str().unwrap_or_default().to_owned())
}

/// Whether a storage trigger takes an object: its `events`, `prefix` and `suffix`.
fn storage_wants(trigger: &Value, key: &str, created: bool) -> bool {
    let kind = if created { "created" } else { "removed" };
    let events_ok = trigger["events"]
        .as_array()
        .is_none_or(|a| a.iter().any(|e| e == kind));
    let prefix_ok = trigger["prefix"]
        .as_str()
        .is_none_or(|p| key.starts_with(p));
    let suffix_ok = trigger["suffix"].as_str().is_none_or(|s| key.ends_with(s));
    events_ok && prefix_ok && suffix_ok
}

/// What a delivery becomes.
enum Delivery {
    Event {
        event: Value,
        request_id: String,
        queue: bool,
    },
    Skip,
    Bad(u16, &'static str),
}

impl Adapter {
    async fn handle(
        &self,
        peer: SocketAddr,
        method: Method,
        uri: Uri,
        headers: HeaderMap,
        body: Bytes,
    ) -> Response {
        if method == Method::POST {
            if let Some(id) = uri.path().strip_prefix(EVENTS_PATH) {
                let id = events::percent_decode_path(id);
                return self.event(&id, &headers, &body).await;
            }
        }
        let rid = trace_id(&headers).unwrap_or_else(|| uuid::Uuid::new_v4().to_string());
        let ip = header(&headers, "x-forwarded-for")
            .and_then(|f| f.split(',').next())
            .map(|s| s.trim().to_owned())
            .filter(|s| !s.is_empty())
            .unwrap_or_else(|| peer.ip().to_string());
        let domain = header(&headers, "host").unwrap_or("localhost").to_owned();
        let req = gateway::incoming(&method, &uri, &headers, body, ip, &domain);
        gateway::answer(&self.routes, &self.pools, req, rid).await
    }

    fn delivery(&self, id: &str, trigger: &Value, h: &HeaderMap, body: &[u8]) -> Delivery {
        let region = self.manifest["region"].as_str().unwrap_or_default();
        let source = trigger["id"]
            .as_str()
            .or_else(|| trigger["queue"].as_str())
            .or_else(|| trigger["topic"].as_str())
            .unwrap_or_default();
        match trigger["kind"].as_str().unwrap_or_default() {
            kind @ ("queue" | "topic") => {
                let Some(m) = push_message(body) else {
                    return Delivery::Bad(400, "not a Pub/Sub push request");
                };
                let event = if kind == "queue" {
                    let sent_ms = chrono::DateTime::parse_from_rfc3339(&m.publish_time)
                        .map(|t| t.timestamp_millis() as u128)
                        .unwrap_or_else(|_| records::now_ms());
                    let record = records::sqs_record(&records::QueueMessage {
                        id: &m.id,
                        receipt: &m.id,
                        body: &m.data,
                        receive_count: m.attempt,
                        sent_ms,
                        sender: "google-cloud-pubsub",
                        attributes: m.attributes(|v| {
                            json!({"stringValue": v, "stringListValues": [], "binaryListValues": [], "dataType": "String"})
                        }),
                        source,
                        region,
                    });
                    json!({"Records": [record]})
                } else {
                    records::sns_event(&records::Notification {
                        topic: source,
                        // As the node and python adapters give it: the topic (a Pub/Sub push
                        // subscription is ferry's, one per trigger, not the publisher's).
                        subscription: source,
                        id: &m.id,
                        subject: None,
                        message: &m.data,
                        time: &m.publish_time,
                        attributes: m.attributes(|v| json!({"Type": "String", "Value": v})),
                        signature: "",
                    })
                };
                Delivery::Event {
                    event,
                    request_id: m.id,
                    queue: kind == "queue",
                }
            }
            "schedule" => {
                let rid = trace_id(h).unwrap_or_else(|| uuid::Uuid::new_v4().to_string());
                let time = header(h, "x-cloudscheduler-scheduletime")
                    .and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok())
                    .map(|t| {
                        t.with_timezone(&chrono::Utc)
                            .format("%Y-%m-%dT%H:%M:%SZ")
                            .to_string()
                    })
                    .unwrap_or_else(records::now_seconds);
                let account = self.manifest["project"].as_str().unwrap_or("000000000000");
                let rule = trigger["id"]
                    .as_str()
                    .or_else(|| trigger["rule"].as_str())
                    .unwrap_or_default();
                let event = records::scheduled_event(
                    &rid,
                    account,
                    &time,
                    region,
                    rule,
                    Some(&trigger["input"]),
                );
                Delivery::Event {
                    event,
                    request_id: rid,
                    queue: false,
                }
            }
            "storage" => {
                let Some(e) = cloud_event(h, body) else {
                    return Delivery::Bad(400, "not a CloudEvent");
                };
                let created = if e.ty.ends_with(".finalized") {
                    true
                } else if e.ty.ends_with(".deleted") {
                    false
                } else {
                    return Delivery::Skip;
                };
                let key = e.data["name"]
                    .as_str()
                    .map(str::to_owned)
                    .unwrap_or_else(|| {
                        e.subject
                            .strip_prefix("objects/")
                            .unwrap_or(&e.subject)
                            .to_owned()
                    });
                if !storage_wants(trigger, &key, created) {
                    return Delivery::Skip;
                }
                let rid = if e.id.is_empty() {
                    uuid::Uuid::new_v4().to_string()
                } else {
                    e.id.clone()
                };
                let size = match &e.data["size"] {
                    Value::String(s) => s.parse().unwrap_or(0),
                    v => v.as_u64().unwrap_or(0),
                };
                let bucket = trigger["bucket"].as_str().unwrap_or_default();
                let event = records::s3_event(&records::ObjectChange {
                    bucket,
                    bucket_arn: trigger["id"].as_str().unwrap_or(bucket),
                    key: &key,
                    created,
                    size,
                    etag: &etag(&e.data),
                    sequencer: &sequencer(&e.data["generation"]),
                    time: &e.time,
                    principal: "",
                    configuration: id,
                    source_ip: "",
                    region,
                });
                Delivery::Event {
                    event,
                    request_id: rid,
                    queue: false,
                }
            }
            _ => Delivery::Bad(500, "the event trigger has an unknown kind"),
        }
    }

    async fn event(&self, id: &str, h: &HeaderMap, body: &[u8]) -> Response {
        let Some(trigger) = self.entry["events"].get(id) else {
            return message(404, "Not Found");
        };
        let (event, request_id, queue) = match self.delivery(id, trigger, h, body) {
            Delivery::Event {
                event,
                request_id,
                queue,
            } => (event, request_id, queue),
            Delivery::Skip => return StatusCode::NO_CONTENT.into_response(),
            Delivery::Bad(status, text) => return message(status, text),
        };
        let Some(pool) = self.pools.get(&self.function) else {
            return message(500, "no worker pool");
        };
        let outcome = pool
            .invoke(Bytes::from(event.to_string()), request_id.clone())
            .await;
        let failed = match &outcome {
            pool::Result::Ok(b) => queue && records::reports_failures(b),
            _ => true,
        };
        if failed {
            eprintln!(
                "ferry: {} failed on {id} ({request_id}); the event is delivered again",
                self.function
            );
            return message(500, "the handler failed; the event is delivered again");
        }
        StatusCode::NO_CONTENT.into_response()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn storage_ids_and_filters() {
        assert_eq!(sequencer(&json!("1700000000000001")), "00060A24181E4001");
        assert_eq!(sequencer(&json!("x")), "");
        // md5 of "" in base64 → hex.
        assert_eq!(
            etag(&json!({"md5Hash": "1B2M2Y8AsgTpgAmY7PhCfg=="})),
            "d41d8cd98f00b204e9800998ecf8427e"
        );
        assert_eq!(etag(&json!({"etag": "CJb"})), "CJb");
        let t = json!({"events": ["created"], "prefix": "in/", "suffix": ".csv"});
        assert!(storage_wants(&t, "in/a.csv", true));
        assert!(!storage_wants(&t, "in/a.csv", false));
        assert!(!storage_wants(&t, "out/a.csv", true));
        assert!(!storage_wants(&t, "in/a.txt", true));
        assert!(storage_wants(&json!({}), "x", false));
    }

    #[test]
    fn push_messages_and_trace_ids() {
        let m = push_message(
            br#"{"message":{"data":"aGk=","attributes":{"a":"b"},"messageId":"7","publishTime":"2026-12-02T10:00:00.000Z"},"subscription":"s","deliveryAttempt":3}"#,
        )
        .unwrap();
        assert_eq!((m.id.as_str(), m.data.as_str(), m.attempt), ("7", "hi", 3));
        assert!(push_message(b"{}").is_none());
        let mut h = HeaderMap::new();
        h.insert("traceparent", "00-abc-def-01".parse().unwrap());
        assert_eq!(trace_id(&h).as_deref(), Some("abc"));
        h.insert("x-cloud-trace-context", "t1/2;o=1".parse().unwrap());
        assert_eq!(trace_id(&h).as_deref(), Some("t1"));
    }
}
