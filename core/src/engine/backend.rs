//! Where state lives: a trait, so remote backends (S3, Azure Blob, GCS) slot in, and the
//! local file backend under `.ferry/state/`.

use super::state::{State, FERRY_VERSION, STATE_VERSION};
use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use std::fmt;
use std::io::Write;
use std::path::{Path, PathBuf};

/// Who holds a state lock.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LockInfo {
    /// Random id of this lock.
    pub id: String,
    /// The user (`$USER`) running ferry.
    pub holder: String,
    /// What they are doing (`deploy`, `remove`).
    pub operation: String,
    /// Process id.
    pub pid: u32,
    /// Host name.
    pub host: String,
    /// When the lock was taken (RFC 3339, UTC).
    pub created: String,
    /// The ferry version holding it.
    pub ferry_version: String,
}

impl LockInfo {
    /// A lock for this process.
    pub fn for_this_process(operation: &str) -> Self {
        let holder = std::env::var("USER")
            .or_else(|_| std::env::var("USERNAME"))
            .unwrap_or_else(|_| "unknown".into());
        LockInfo {
            id: uuid::Uuid::new_v4().to_string(),
            holder,
            operation: operation.to_owned(),
            pid: std::process::id(),
            host: gethostname::gethostname().to_string_lossy().into_owned(),
            created: rfc3339_now(),
            ferry_version: FERRY_VERSION.to_owned(),
        }
    }

    /// Whether the holder process is known to be gone: same host and no such process. `None`
    /// when this cannot be told (another host, or no `/proc`).
    pub fn holder_is_gone(&self) -> Option<bool> {
        let host = gethostname::gethostname().to_string_lossy().into_owned();
        if host != self.host || !Path::new("/proc/self").exists() {
            return None;
        }
        Some(!Path::new(&format!("/proc/{}", self.pid)).exists())
    }
}

impl fmt::Display for LockInfo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}@{} (pid {}, `{}`, since {}, lock id {})",
            self.holder, self.host, self.pid, self.operation, self.created, self.id
        )
    }
}

/// State storage errors.
#[derive(Debug, thiserror::Error)]
pub enum StateError {
    /// Someone else is deploying.
    #[error("the state is locked by {0}; wait for that run to finish, or if it is gone (crashed, killed), run `ferry state unlock`")]
    Locked(LockInfo),
    /// `unlock` was asked for but there is no lock.
    #[error("the state is not locked")]
    NotLocked,
    /// `unlock` without `--force` on a lock whose holder may still be running.
    #[error("the lock is held by {0}, which may still be running; if you are sure it is not, run `ferry state unlock --force`")]
    MaybeAlive(LockInfo),
    /// The stored document is not a state this ferry understands.
    #[error("{path}: not a ferry state file: {reason}; restore it from a backup, or move it away to start afresh (ferry would then recreate every resource)")]
    Corrupt {
        /// Where.
        path: String,
        /// Why.
        reason: String,
    },
    /// A newer ferry wrote it.
    #[error("{path} has state version {found}, newer than this ferry understands ({STATE_VERSION}); upgrade ferry")]
    TooNew {
        /// Where.
        path: String,
        /// The version found.
        found: u32,
    },
    /// Reading or writing failed.
    #[error("{action} {path}: {source}")]
    Io {
        /// What was being done.
        action: &'static str,
        /// Where.
        path: String,
        /// The cause.
        source: std::io::Error,
    },
}

/// Storage for one state document and its lock.
#[async_trait]
pub trait StateBackend: Send + Sync {
    /// Where the state is, for messages (`.ferry/state/shop-dev-aws.json`).
    fn location(&self) -> String;
    /// The stored state, or `None` before the first apply.
    async fn read(&self) -> Result<Option<State>, StateError>;
    /// Replaces the stored state atomically: a reader sees the old document or the new one.
    async fn write(&self, state: &State) -> Result<(), StateError>;
    /// Takes the lock, or fails at once with [`StateError::Locked`] naming the holder.
    async fn lock(&self, info: &LockInfo) -> Result<(), StateError>;
    /// Releases a lock this process holds (by id).
    async fn unlock(&self, id: &str) -> Result<(), StateError>;
    /// The current lock, if any.
    async fn lock_info(&self) -> Result<Option<LockInfo>, StateError>;
    /// Removes whatever lock there is (`ferry state unlock`): refuses when the holder may
    /// still be running, unless `force`. Returns the lock that was removed.
    async fn force_unlock(&self, force: bool) -> Result<LockInfo, StateError>;
}

/// State in a local file: `<root>/.ferry/state/<service>-<stage>-<provider>.json`, with a lock
/// file next to it.
#[derive(Debug, Clone)]
pub struct LocalBackend {
    path: PathBuf,
    lock_path: PathBuf,
}

impl LocalBackend {
    /// The backend for a service folder.
    pub fn new(root: &Path, service: &str, stage: &str, provider: &str) -> Self {
        let dir = root.join(".ferry").join("state");
        let stem = format!("{service}-{stage}-{provider}");
        LocalBackend {
            path: dir.join(format!("{stem}.json")),
            lock_path: dir.join(format!("{stem}.lock")),
        }
    }

    /// The state file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The lock file.
    pub fn lock_path(&self) -> &Path {
        &self.lock_path
    }

    fn io(&self, action: &'static str, path: &Path, source: std::io::Error) -> StateError {
        StateError::Io {
            action,
            path: path.display().to_string(),
            source,
        }
    }

    fn read_lock(&self) -> Result<Option<LockInfo>, StateError> {
        match std::fs::read_to_string(&self.lock_path) {
            Ok(text) => serde_json::from_str(&text)
                .map(Some)
                .map_err(|e| StateError::Corrupt {
                    path: self.lock_path.display().to_string(),
                    reason: format!("unreadable lock file ({e})"),
                }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(self.io("reading", &self.lock_path, e)),
        }
    }
}

#[async_trait]
impl StateBackend for LocalBackend {
    fn location(&self) -> String {
        self.path.display().to_string()
    }

    async fn read(&self) -> Result<Option<State>, StateError> {
        let text = match std::fs::read_to_string(&self.path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(self.io("reading", &self.path, e)),
        };
        parse_state(&text, &self.location()).map(Some)
    }

    async fn write(&self, state: &State) -> Result<(), StateError> {
        let text = state_text(state, &self.location())?;
        write_atomic(&self.path, text.as_bytes()).map_err(|e| self.io("writing", &self.path, e))
    }

    async fn lock(&self, info: &LockInfo) -> Result<(), StateError> {
        if let Some(dir) = self.lock_path.parent() {
            std::fs::create_dir_all(dir).map_err(|e| self.io("creating", dir, e))?;
        }
        // create_new is atomic on every platform: exactly one process makes the file.
        match std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&self.lock_path)
        {
            Ok(mut f) => {
                let text = serde_json::to_string_pretty(info).unwrap_or_default();
                f.write_all(text.as_bytes())
                    .and_then(|_| f.sync_all())
                    .map_err(|e| self.io("writing", &self.lock_path, e))
            }
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => match self.read_lock()? {
                Some(holder) => Err(StateError::Locked(holder)),
                // Released between our attempt and the read: try once more.
                None => Box::pin(self.lock(info)).await,
            },
            Err(e) => Err(self.io("creating", &self.lock_path, e)),
        }
    }

    async fn unlock(&self, id: &str) -> Result<(), StateError> {
        match self.read_lock()? {
            Some(l) if l.id == id => std::fs::remove_file(&self.lock_path)
                .map_err(|e| self.io("removing", &self.lock_path, e)),
            Some(other) => Err(StateError::Locked(other)),
            None => Err(StateError::NotLocked),
        }
    }

    async fn lock_info(&self) -> Result<Option<LockInfo>, StateError> {
        self.read_lock()
    }

    async fn force_unlock(&self, force: bool) -> Result<LockInfo, StateError> {
        let info = self.read_lock()?.ok_or(StateError::NotLocked)?;
        if !force && info.holder_is_gone() != Some(true) {
            return Err(StateError::MaybeAlive(info));
        }
        std::fs::remove_file(&self.lock_path)
            .map_err(|e| self.io("removing", &self.lock_path, e))?;
        Ok(info)
    }
}

/// Parses a stored state document; `location` names it in errors. Every backend reads
/// through this, so they all refuse the same corrupt or too-new documents.
pub fn parse_state(text: &str, location: &str) -> Result<State, StateError> {
    let corrupt = |reason: String| StateError::Corrupt {
        path: location.to_owned(),
        reason,
    };
    let raw: serde_json::Value =
        serde_json::from_str(text).map_err(|e| corrupt(format!("invalid JSON ({e})")))?;
    let version = raw.get("version").and_then(|v| v.as_u64()).unwrap_or(0) as u32;
    if version > STATE_VERSION {
        return Err(StateError::TooNew {
            path: location.to_owned(),
            found: version,
        });
    }
    serde_json::from_value(raw).map_err(|e| corrupt(e.to_string()))
}

/// The stored text of a state document (pretty JSON, final newline).
pub fn state_text(state: &State, location: &str) -> Result<String, StateError> {
    let mut text = serde_json::to_string_pretty(state).map_err(|e| StateError::Corrupt {
        path: location.to_owned(),
        reason: e.to_string(),
    })?;
    text.push('\n');
    Ok(text)
}

/// Writes a file so that readers see either the old or the new content, never a mix:
/// a temporary file in the same folder, flushed to disk, renamed over the target, and the
/// folder flushed so the rename itself survives a crash.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir)?;
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = dir.join(format!(".{name}.{}.tmp", std::process::id()));
    {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
    }
    if let Err(e) = std::fs::rename(&tmp, path) {
        let _ = std::fs::remove_file(&tmp);
        return Err(e);
    }
    #[cfg(unix)]
    if let Ok(d) = std::fs::File::open(dir) {
        let _ = d.sync_all();
    }
    Ok(())
}

/// Now as RFC 3339 UTC (`2025-01-31T12:00:00Z`), without a date-time dependency.
pub fn rfc3339_now() -> String {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0);
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    // Howard Hinnant's civil_from_days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}
