//! Local buckets: a folder per bucket under `.ferry/local/buckets/`, served with S3's
//! path-style API (`PutObject`, `GetObject`, `HeadObject`, `DeleteObject`, `ListObjectsV2`)
//! and firing `ObjectCreated:*` / `ObjectRemoved:*` events in S3's notification shape.

use crate::pool::Pool;
use axum::body::Bytes;
use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// A function subscribed to a bucket.
#[derive(Clone)]
pub struct Subscriber {
    /// The function.
    pub pool: Arc<Pool>,
    /// `created`, `removed`.
    pub created: bool,
    /// Fire on removals.
    pub removed: bool,
    /// Key prefix filter.
    pub prefix: Option<String>,
    /// Key suffix filter.
    pub suffix: Option<String>,
}

/// A bucket.
pub struct Bucket {
    /// Physical name (`service-stage-name`, lower-case).
    pub name: String,
    /// Its folder.
    pub dir: PathBuf,
    /// Functions to notify.
    pub subscribers: Vec<Subscriber>,
}

/// Percent-encodes a key the way S3 notifications do (spaces as `+`).
pub fn encode_key(key: &str) -> String {
    let mut out = String::new();
    for b in key.bytes() {
        match b {
            b'A'..=b'Z'
            | b'a'..=b'z'
            | b'0'..=b'9'
            | b'-'
            | b'_'
            | b'.'
            | b'~'
            | b'/'
            | b'*'
            | b'\''
            | b'('
            | b')'
            | b'!' => out.push(b as char),
            b' ' => out.push('+'),
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

/// Escapes text for XML.
pub fn xml_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&apos;")
}

impl Bucket {
    /// The file of a key, refusing keys that would leave the bucket's folder.
    pub fn path(&self, key: &str) -> Option<PathBuf> {
        if key.is_empty() || key.split('/').any(|s| s == ".." || s == ".") || key.starts_with('/') {
            return None;
        }
        Some(self.dir.join(key))
    }

    /// Every key under `prefix`, sorted, with sizes.
    pub fn list(&self, prefix: &str) -> Vec<(String, u64)> {
        let mut out = Vec::new();
        walk(&self.dir, &self.dir, &mut out);
        out.retain(|(k, _)| k.starts_with(prefix));
        out.sort();
        out
    }

    /// Notifies subscribers of a created or removed object.
    pub fn notify(&self, key: &str, size: u64, created: bool, region: &str) {
        for s in &self.subscribers {
            if (created && !s.created) || (!created && !s.removed) {
                continue;
            }
            if s.prefix
                .as_ref()
                .is_some_and(|p| !key.starts_with(p.as_str()))
                || s.suffix
                    .as_ref()
                    .is_some_and(|x| !key.ends_with(x.as_str()))
            {
                continue;
            }
            let e = self.event(key, size, created, region);
            let pool = s.pool.clone();
            tokio::spawn(async move {
                let _ = pool
                    .invoke(Bytes::from(e.to_string()), uuid::Uuid::new_v4().to_string())
                    .await;
            });
        }
    }

    /// The S3 notification event.
    pub fn event(&self, key: &str, size: u64, created: bool, region: &str) -> Value {
        let now = chrono::Utc::now();
        let mut object = json!({ "key": encode_key(key), "sequencer": format!("{:016X}", now.timestamp_nanos_opt().unwrap_or(0)) });
        if created {
            object["size"] = json!(size);
            object["eTag"] = json!(crate::services::queue::md5_hex(key));
        }
        json!({ "Records": [{
            "eventVersion": "2.1",
            "eventSource": "aws:s3",
            "awsRegion": region,
            "eventTime": now.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string(),
            "eventName": if created { "ObjectCreated:Put" } else { "ObjectRemoved:Delete" },
            "userIdentity": { "principalId": "ferry-local" },
            "requestParameters": { "sourceIPAddress": "127.0.0.1" },
            "responseElements": {},
            "s3": {
                "s3SchemaVersion": "1.0",
                "configurationId": "ferry-local",
                "bucket": { "name": self.name, "ownerIdentity": { "principalId": "ferry-local" }, "arn": format!("arn:aws:s3:::{}", self.name) },
                "object": object,
            },
        }]})
    }
}

fn walk(root: &Path, dir: &Path, out: &mut Vec<(String, u64)>) {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return;
    };
    for e in rd.flatten() {
        let p = e.path();
        if p.is_dir() {
            walk(root, &p, out);
        } else if let (Ok(rel), Ok(meta)) = (p.strip_prefix(root), e.metadata()) {
            out.push((
                rel.components()
                    .map(|c| c.as_os_str().to_string_lossy())
                    .collect::<Vec<_>>()
                    .join("/"),
                meta.len(),
            ));
        }
    }
}
