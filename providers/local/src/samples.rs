//! Realistic sample events, for `ferry invoke --event <kind>`: the same shapes the local
//! runtime sends for each trigger.

use crate::events;
use bytes::Bytes;
use ferry_core::model::PayloadVersion;
use serde_json::{json, Value};

/// The kinds `--event` accepts.
pub const KINDS: &[&str] = &["http", "queue", "schedule", "storage", "topic"];

/// A sample event of a kind, or `None` for an unknown kind.
pub fn sample(kind: &str, region: &str) -> Option<Value> {
    Some(match kind {
        "http" => {
            let r = events::Request {
                method: "GET".into(),
                path: "/".into(),
                query: "name=ferry".into(),
                headers: vec![
                    ("host".into(), "127.0.0.1".into()),
                    ("user-agent".into(), "ferry-invoke".into()),
                ],
                body: Bytes::new(),
                source_ip: "127.0.0.1".into(),
                domain: "127.0.0.1".into(),
            };
            let m = events::Matched {
                route_key: "GET /".into(),
                resource: "/".into(),
                params: Default::default(),
            };
            events::request_event(
                PayloadVersion::V2,
                &r,
                &m,
                &uuid::Uuid::new_v4().to_string(),
            )
        }
        "queue" => {
            let q = crate::services::queue::Queue::new(
                "sample-queue".into(),
                region,
                std::time::Duration::from_secs(30),
                None,
                None,
            );
            q.send(
                json!({ "hello": "ferry" }).to_string(),
                json!({}),
                std::time::Duration::ZERO,
            );
            let batch = q.receive(1, None);
            q.event(&batch, region)
        }
        "schedule" => crate::services::schedule::event("sample-rule", region, None),
        "storage" => crate::services::storage::Bucket {
            name: "sample-bucket".into(),
            dir: std::env::temp_dir(),
            subscribers: vec![],
        }
        .event(
            "incoming/sample.txt",
            Some((42, "9e107d9d372bb6826bd81d3542a419d6")),
            region,
        ),
        "topic" => json!({ "Records": [{
            "EventSource": "aws:sns",
            "EventVersion": "1.0",
            "EventSubscriptionArn": format!("arn:aws:sns:{region}:123456789012:sample-topic:{}", uuid::Uuid::new_v4()),
            "Sns": {
                "Type": "Notification",
                "MessageId": uuid::Uuid::new_v4().to_string(),
                "TopicArn": format!("arn:aws:sns:{region}:123456789012:sample-topic"),
                "Subject": null,
                "Message": "hello from ferry",
                "Timestamp": chrono::Utc::now().format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string(),
                "SignatureVersion": "1",
                "Signature": "ferry-local",
                "MessageAttributes": {},
            },
        }]}),
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    #[test]
    fn every_kind_has_a_sample() {
        for k in super::KINDS {
            assert!(super::sample(k, "us-east-1").is_some(), "{k}");
        }
        assert_eq!(
            super::sample("queue", "us-east-1").unwrap()["Records"][0]["eventSource"],
            "aws:sqs"
        );
        assert_eq!(
            super::sample("storage", "us-east-1").unwrap()["Records"][0]["eventSource"],
            "aws:s3"
        );
        assert!(super::sample("nope", "us-east-1").is_none());
    }
}
