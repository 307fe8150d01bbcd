//! Local buckets: a folder per bucket under `.ferry/local/buckets/`, served with S3's
//! path-style API (`PutObject`, `GetObject`, `HeadObject`, `DeleteObject`, `ListObjectsV2`)
//! and firing `ObjectCreated:*` / `ObjectRemoved:*` events in S3's notification shape.

use crate::pool::Pool;
use axum::body::Bytes;
use serde_json::Value;
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

pub use crate::records::encode_key;

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
        let sequencer = format!("{:016X}", now.timestamp_nanos_opt().unwrap_or(0));
        crate::records::s3_event(&crate::records::ObjectChange {
            bucket: &self.name,
            bucket_arn: &format!("arn:aws:s3:::{}", self.name),
            key,
            created,
            size,
            etag: &crate::records::md5_hex(key),
            sequencer: &sequencer,
            time: &crate::records::now_millis(),
            principal: "ferry-local",
            configuration: "ferry-local",
            source_ip: "127.0.0.1",
            region,
        })
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
