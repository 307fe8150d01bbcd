//! State in S3, selected in the manifest:
//!
//! ```yaml
//! provider:
//!   aws:
//!     state: { bucket: my-ferry-state, prefix: ferry/ }
//! ```
//!
//! The document is `<prefix><service>-<stage>-aws.json`. The lock is a second object next to
//! it, `<...>.json.lock`, created with a conditional write (`If-None-Match: *`), which S3
//! guarantees only one writer wins; no DynamoDB table is needed.

use aws_sdk_s3::primitives::ByteStream;
use ferry_core::engine::backend::{parse_state, state_text};
use ferry_core::engine::{LockInfo, State, StateBackend, StateError};
use serde::Deserialize;

/// Where the state lives in S3 (`provider.aws.state`).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct S3Location {
    /// The bucket (it must exist; ferry does not create it).
    pub bucket: String,
    /// A key prefix such as `ferry/` (default: none).
    #[serde(default)]
    pub prefix: String,
}

impl S3Location {
    /// The `state` block of `provider.aws`, if there is one.
    pub fn from_settings(aws: Option<&serde_json::Value>) -> Result<Option<Self>, String> {
        match aws.and_then(|a| a.get("state")) {
            None => Ok(None),
            Some(v) => serde_json::from_value(v.clone()).map(Some).map_err(|e| {
                format!("provider.aws.state: {e} (expected `{{ bucket: NAME, prefix: PATH/ }}`)")
            }),
        }
    }
}

/// The S3 state backend.
pub struct S3Backend {
    s3: aws_sdk_s3::Client,
    bucket: String,
    key: String,
    lock_key: String,
}

impl S3Backend {
    /// The backend for a service, stage and location.
    pub fn new(s3: aws_sdk_s3::Client, loc: &S3Location, service: &str, stage: &str) -> Self {
        let key = format!("{}{service}-{stage}-aws.json", loc.prefix);
        S3Backend {
            s3,
            bucket: loc.bucket.clone(),
            lock_key: format!("{key}.lock"),
            key,
        }
    }

    fn io(&self, action: &'static str, key: &str, e: impl std::fmt::Display) -> StateError {
        StateError::Io {
            action,
            path: format!("s3://{}/{key}", self.bucket),
            source: std::io::Error::other(e.to_string()),
        }
    }

    async fn get(&self, key: &str) -> Result<Option<String>, StateError> {
        match self
            .s3
            .get_object()
            .bucket(&self.bucket)
            .key(key)
            .send()
            .await
        {
            Ok(o) => {
                let bytes = o
                    .body
                    .collect()
                    .await
                    .map_err(|e| self.io("reading", key, e))?
                    .into_bytes();
                Ok(Some(String::from_utf8_lossy(&bytes).into_owned()))
            }
            Err(e) => {
                let f = crate::Fail::from(e);
                if f.not_found() {
                    Ok(None)
                } else {
                    Err(self.io("reading", key, f.message))
                }
            }
        }
    }

    async fn read_lock(&self) -> Result<Option<LockInfo>, StateError> {
        match self.get(&self.lock_key).await? {
            None => Ok(None),
            Some(t) => serde_json::from_str(&t)
                .map(Some)
                .map_err(|e| StateError::Corrupt {
                    path: format!("s3://{}/{}", self.bucket, self.lock_key),
                    reason: e.to_string(),
                }),
        }
    }

    async fn delete_lock(&self) -> Result<(), StateError> {
        self.s3
            .delete_object()
            .bucket(&self.bucket)
            .key(&self.lock_key)
            .send()
            .await
            .map(|_| ())
            .map_err(|e| self.io("removing", &self.lock_key, crate::Fail::from(e).message))
    }
}

#[async_trait::async_trait]
impl StateBackend for S3Backend {
    fn location(&self) -> String {
        format!("s3://{}/{}", self.bucket, self.key)
    }

    async fn read(&self) -> Result<Option<State>, StateError> {
        match self.get(&self.key).await? {
            None => Ok(None),
            Some(text) => parse_state(&text, &self.location()).map(Some),
        }
    }

    async fn write(&self, state: &State) -> Result<(), StateError> {
        let text = state_text(state, &self.location())?;
        // One PUT replaces the object atomically: readers see the old or the new document.
        self.s3
            .put_object()
            .bucket(&self.bucket)
            .key(&self.key)
            .content_type("application/json")
            .body(ByteStream::from(text.into_bytes()))
            .send()
            .await
            .map(|_| ())
            .map_err(|e| self.io("writing", &self.key, crate::Fail::from(e).message))
    }

    async fn lock(&self, info: &LockInfo) -> Result<(), StateError> {
        let text = serde_json::to_string_pretty(info).unwrap_or_default();
        for _ in 0..3 {
            let put = self
                .s3
                .put_object()
                .bucket(&self.bucket)
                .key(&self.lock_key)
                .if_none_match("*")
                .content_type("application/json")
                .body(ByteStream::from(text.clone().into_bytes()))
                .send()
                .await;
            match put {
                Ok(_) => return Ok(()),
                Err(e) => {
                    let f = crate::Fail::from(e);
                    // 412: the lock exists. 409: a concurrent conditional write; look again.
                    if f.status == Some(412) || f.is("PreconditionFailed") || f.status == Some(409)
                    {
                        if let Some(holder) = self.read_lock().await? {
                            return Err(StateError::Locked(holder));
                        }
                        continue;
                    }
                    return Err(self.io("creating", &self.lock_key, f.message));
                }
            }
        }
        Err(self.io(
            "creating",
            &self.lock_key,
            "the lock changed hands three times in a row",
        ))
    }

    async fn unlock(&self, id: &str) -> Result<(), StateError> {
        match self.read_lock().await? {
            Some(l) if l.id == id => self.delete_lock().await,
            Some(other) => Err(StateError::Locked(other)),
            None => Err(StateError::NotLocked),
        }
    }

    async fn lock_info(&self) -> Result<Option<LockInfo>, StateError> {
        self.read_lock().await
    }

    async fn force_unlock(&self, force: bool) -> Result<LockInfo, StateError> {
        let info = self.read_lock().await?.ok_or(StateError::NotLocked)?;
        if !force && info.holder_is_gone() != Some(true) {
            return Err(StateError::MaybeAlive(info));
        }
        self.delete_lock().await?;
        Ok(info)
    }
}
