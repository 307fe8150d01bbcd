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

    /// Stores an object the way S3 does, whole or not at all: readers and listings see the old
    /// object or the new one, never a partly written file. The bytes go to a temporary file
    /// beside the bucket's folder (so that listings never show it) and are renamed into place.
    pub fn put(&self, file: &Path, data: &[u8]) -> std::io::Result<()> {
        if let Some(dir) = file.parent() {
            std::fs::create_dir_all(dir)?;
        }
        let parent = self.dir.parent().unwrap_or(&self.dir);
        let tmp = parent.join(format!(".put-{}", uuid::Uuid::new_v4()));
        std::fs::write(&tmp, data)?;
        std::fs::rename(&tmp, file).inspect_err(|_| {
            let _ = std::fs::remove_file(&tmp);
        })
    }

    /// Notifies subscribers of a created (with its size and ETag) or removed object.
    pub fn notify(&self, key: &str, created: Option<(u64, &str)>, region: &str) {
        let is_created = created.is_some();
        for s in &self.subscribers {
            if (is_created && !s.created) || (!is_created && !s.removed) {
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
            let e = self.event(key, created, region);
            let pool = s.pool.clone();
            tokio::spawn(async move {
                let _ = pool
                    .invoke(Bytes::from(e.to_string()), uuid::Uuid::new_v4().to_string())
                    .await;
            });
        }
    }

    /// The S3 notification event.
    pub fn event(&self, key: &str, created: Option<(u64, &str)>, region: &str) -> Value {
        let (size, etag) = created.unwrap_or((0, ""));
        let now = chrono::Utc::now();
        let sequencer = format!("{:016X}", now.timestamp_nanos_opt().unwrap_or(0));
        crate::records::s3_event(&crate::records::ObjectChange {
            bucket: &self.name,
            bucket_arn: &format!("arn:aws:s3:::{}", self.name),
            key,
            created: created.is_some(),
            size,
            etag,
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
