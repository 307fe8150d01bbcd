//! Local buckets: a folder per bucket under `.ferry/local/buckets/`, served with S3's
//! path-style API (`PutObject`, `GetObject`, `HeadObject`, `DeleteObject`, `ListObjectsV2`,
//! and multipart uploads, which `aws s3 cp` uses for files over 8 MB) and firing
//! `ObjectCreated:*` / `ObjectRemoved:*` events in S3's notification shape.

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

    /// Notifies subscribers of a created (with its size and ETag) or removed object; `how`
    /// ends the event's name (`Put`, `CompleteMultipartUpload`, `Delete`).
    pub fn notify(&self, key: &str, created: Option<(u64, &str)>, how: &str, region: &str) {
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
            let mut e = self.event(key, created, region);
            e["Records"][0]["eventName"] = Value::from(format!(
                "{}:{how}",
                if is_created {
                    "ObjectCreated"
                } else {
                    "ObjectRemoved"
                }
            ));
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

/// S3's smallest part of a multipart upload, but for the last one.
const MIN_PART: u64 = 5 * 1024 * 1024;

/// Why a multipart upload cannot be completed, as S3 names it.
#[derive(Debug, PartialEq, Eq)]
pub enum UploadError {
    /// No such upload (never begun, completed or aborted), or one for another key.
    NoSuchUpload,
    /// A listed part was not uploaded, or its ETag differs.
    InvalidPart(u32),
    /// Part numbers are not in ascending order.
    InvalidPartOrder,
    /// A part other than the last is under 5 MB.
    EntityTooSmall(u32),
    /// The bucket's folder could not be written.
    Io(String),
}

impl Bucket {
    /// The folder of a multipart upload: beside the buckets, so listings never show it. None
    /// for an id this bucket could not have made.
    fn upload_dir(&self, id: &str) -> Option<PathBuf> {
        let ok = !id.is_empty() && id.chars().all(|c| c.is_ascii_hexdigit() || c == '-');
        let parent = self.dir.parent().unwrap_or(&self.dir);
        ok.then(|| parent.join(format!(".multipart-{}-{id}", self.name)))
    }

    /// The folder of an upload in progress for `key`.
    fn upload_for(&self, id: &str, key: &str) -> Option<PathBuf> {
        let dir = self.upload_dir(id)?;
        (std::fs::read_to_string(dir.join("key")).ok()? == key).then_some(dir)
    }

    /// Begins a multipart upload of `key`; returns its id.
    pub fn begin_upload(&self, key: &str) -> std::io::Result<String> {
        let id = uuid::Uuid::new_v4().simple().to_string();
        let dir = self.upload_dir(&id).expect("a fresh id is valid");
        std::fs::create_dir_all(&dir)?;
        std::fs::write(dir.join("key"), key)?;
        Ok(id)
    }

    /// Stores part `n` of an upload; returns its ETag (hex MD5), or None when there is no
    /// such upload of `key`.
    pub fn put_part(
        &self,
        id: &str,
        key: &str,
        n: u32,
        data: &[u8],
    ) -> std::io::Result<Option<String>> {
        let Some(dir) = self.upload_for(id, key) else {
            return Ok(None);
        };
        let tmp = dir.join(format!(".part-{n}-{}", uuid::Uuid::new_v4()));
        std::fs::write(&tmp, data)?;
        std::fs::rename(&tmp, dir.join(format!("part-{n:05}")))?;
        Ok(Some(crate::records::md5_hex(data)))
    }

    /// Joins the listed parts (number, ETag) into the object, as S3 does: whole or not at
    /// all, parts in ascending order, each but the last at least 5 MB. Returns the object's
    /// file, size and ETag (the MD5 of the parts' MD5s, then `-<parts>`).
    pub fn complete_upload(
        &self,
        id: &str,
        key: &str,
        parts: &[(u32, String)],
    ) -> Result<(u64, String), UploadError> {
        use md5::{Digest, Md5};
        use std::io::Write;
        let dir = self.upload_for(id, key).ok_or(UploadError::NoSuchUpload)?;
        let file = self.path(key).ok_or(UploadError::NoSuchUpload)?;
        if parts.is_empty() || parts.windows(2).any(|w| w[0].0 >= w[1].0) {
            return Err(UploadError::InvalidPartOrder);
        }
        let io = |e: std::io::Error| UploadError::Io(e.to_string());
        let parent = self.dir.parent().unwrap_or(&self.dir);
        let tmp = parent.join(format!(".put-{}", uuid::Uuid::new_v4()));
        let joined = (|| {
            let mut out = std::fs::File::create(&tmp).map_err(io)?;
            let mut digests = Md5::new();
            let mut size = 0u64;
            for (i, (n, etag)) in parts.iter().enumerate() {
                let data = std::fs::read(dir.join(format!("part-{n:05}")))
                    .map_err(|_| UploadError::InvalidPart(*n))?;
                let digest = Md5::digest(&data);
                if crate::records::hex(&digest) != etag.trim_matches('"') {
                    return Err(UploadError::InvalidPart(*n));
                }
                if i + 1 < parts.len() && (data.len() as u64) < MIN_PART {
                    return Err(UploadError::EntityTooSmall(*n));
                }
                digests.update(digest);
                size += data.len() as u64;
                out.write_all(&data).map_err(io)?;
            }
            out.sync_all().map_err(io)?;
            let etag = crate::records::hex(&digests.finalize());
            Ok((size, format!("{etag}-{}", parts.len())))
        })();
        let done = joined.and_then(|r| {
            if let Some(d) = file.parent() {
                std::fs::create_dir_all(d).map_err(io)?;
            }
            std::fs::rename(&tmp, &file).map_err(io)?;
            Ok(r)
        });
        if done.is_err() {
            let _ = std::fs::remove_file(&tmp);
        } else {
            let _ = std::fs::remove_dir_all(&dir);
        }
        done
    }

    /// Drops an upload and its parts; false when there was none.
    pub fn abort_upload(&self, id: &str, key: &str) -> bool {
        self.upload_for(id, key)
            .is_some_and(|dir| std::fs::remove_dir_all(dir).is_ok())
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

#[cfg(test)]
mod tests {
    use super::{Bucket, UploadError, MIN_PART};

    fn bucket(dir: &std::path::Path) -> Bucket {
        Bucket {
            name: "b".into(),
            dir: dir.join("buckets").join("b"),
            subscribers: Vec::new(),
        }
    }

    #[test]
    fn multipart_uploads_join_whole_or_not_at_all() {
        let dir = tempfile::tempdir().unwrap();
        let b = bucket(dir.path());
        let big = vec![1u8; MIN_PART as usize];
        let id = b.begin_upload("k/obj").unwrap();
        let e1 = b.put_part(&id, "k/obj", 1, &big).unwrap().unwrap();
        let e2 = b.put_part(&id, "k/obj", 2, b"tail").unwrap().unwrap();
        // Another key, an unknown or malformed id: no such upload.
        assert_eq!(b.put_part(&id, "other", 1, b"x").unwrap(), None);
        assert_eq!(b.put_part("../../x", "k/obj", 1, b"x").unwrap(), None);
        // Out of order, a wrong ETag, a missing part: refused, nothing written.
        let refused = [
            (
                vec![(2, e2.clone()), (1, e1.clone())],
                UploadError::InvalidPartOrder,
            ),
            (
                vec![(1, "\"00\"".into()), (2, e2.clone())],
                UploadError::InvalidPart(1),
            ),
            (
                vec![(1, e1.clone()), (3, e2.clone())],
                UploadError::InvalidPart(3),
            ),
        ];
        for (parts, why) in refused {
            assert_eq!(b.complete_upload(&id, "k/obj", &parts), Err(why));
        }
        assert!(b.list("").is_empty());
        let (size, etag) = b
            .complete_upload(&id, "k/obj", &[(1, format!("\"{e1}\"")), (2, e2)])
            .unwrap();
        assert_eq!(size, MIN_PART + 4);
        // S3's multipart ETag: the MD5 of the parts' MD5s, then the count.
        assert!(etag.ends_with("-2") && etag.len() == 32 + 2, "{etag}");
        let data = std::fs::read(b.path("k/obj").unwrap()).unwrap();
        assert_eq!(&data[data.len() - 4..], b"tail");
        assert_eq!(b.list(""), [("k/obj".to_owned(), MIN_PART + 4)]);
        // Completed: the upload is gone, and nothing is left beside the bucket.
        assert_eq!(
            b.complete_upload(&id, "k/obj", &[(1, "x".into())]),
            Err(UploadError::NoSuchUpload)
        );
        let beside: Vec<_> = std::fs::read_dir(dir.path().join("buckets"))
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(beside, ["b"]);
        // A part under 5 MB before the last: too small. Aborting drops the upload.
        let id = b.begin_upload("small").unwrap();
        let s1 = b.put_part(&id, "small", 1, b"a").unwrap().unwrap();
        let s2 = b.put_part(&id, "small", 2, b"b").unwrap().unwrap();
        assert_eq!(
            b.complete_upload(&id, "small", &[(1, s1), (2, s2)]),
            Err(UploadError::EntityTooSmall(1))
        );
        assert!(b.abort_upload(&id, "small"));
        assert!(!b.abort_upload(&id, "small"));
    }
}
