//! Warm worker pools: one per function. A worker is a process speaking the Lambda Runtime API
//! to its own server; the pool reuses idle workers, starts new ones up to the concurrency
//! limit, kills a worker that times out (504) and replaces one that crashes (502).

use crate::runtime_api::{self, Invocation, Outcome, Shared};
use crate::Log;
use axum::body::Bytes;
use axum::serve::ListenerExt;
use std::collections::BTreeMap;
use std::future::IntoFuture;
use std::path::PathBuf;
use std::process::Stdio;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::Command;
use tokio::sync::{mpsc, oneshot, Notify, Semaphore};

/// How to start a function's worker.
#[derive(Debug, Clone)]
pub struct Spec {
    /// Function name (log prefix, `AWS_LAMBDA_FUNCTION_NAME` is the deployed name).
    pub name: String,
    /// Program and arguments.
    pub command: Vec<String>,
    /// Working directory (`LAMBDA_TASK_ROOT`).
    pub cwd: PathBuf,
    /// Environment (complete, apart from `AWS_LAMBDA_RUNTIME_API`).
    pub env: BTreeMap<String, String>,
    /// Invocation timeout.
    pub timeout: Duration,
    /// Most workers at once.
    pub concurrency: usize,
    /// `arn:aws:lambda:...` for the invocation header.
    pub arn: String,
    /// Memory setting in MB (reported; enforced where the runtime allows it).
    pub memory: u32,
    /// The worker is one of ferry's own shims, which can reach its Runtime API on a Unix
    /// socket as well ([`LOCAL_SOCKET_ENV`]).
    pub local_socket: bool,
}

/// Where ferry's own shims find their Runtime API on a Unix socket (a path in the temporary
/// folder, removed when the worker ends). `AWS_LAMBDA_RUNTIME_API` stays the TCP
/// `127.0.0.1:<port>` that AWS's clients need, and the shims remove this variable before the
/// function's code loads, so the function sees Lambda's environment. The socket is a
/// transport, not a protocol: the shims speak the same Runtime API over it, and save the
/// loopback TCP stack's cost (15% of a python request's CPU, gateway and worker together, in
/// an A/B run of `bench/dev_cpu.sh`).
pub const LOCAL_SOCKET_ENV: &str = "_FERRY_RUNTIME_API_SOCKET";

/// What an invocation produced, for the caller to map.
#[derive(Debug)]
pub enum Result {
    /// The function answered.
    Ok(Bytes),
    /// The function threw; the body is Lambda's error JSON.
    FunctionError(Bytes),
    /// The function did not answer in time; its worker was killed.
    Timeout,
    /// The worker died or could not start the function.
    Failed(String),
}

struct Worker {
    shared: Arc<Shared>,
    tx: mpsc::Sender<Invocation>,
    stop: Arc<Notify>,
    alive: Arc<AtomicBool>,
    generation: u64,
    pid: Option<u32>,
    /// The last peak-memory reading and when it was taken.
    peak: Option<(std::time::Instant, Option<u64>)>,
}

/// How long a peak-memory reading is reused. Reading `/proc/<pid>/status` took ~70 µs of
/// every request on the hot path; the peak only grows, so a reading this recent is a fair
/// "Max Memory Used" for REPORT, and under load the reads drop from one per request to a
/// few per second per worker.
const PEAK_TTL: std::time::Duration = std::time::Duration::from_millis(100);

impl Worker {
    /// The worker's peak resident memory in MB, read at most every [`PEAK_TTL`].
    fn peak_mb(&mut self) -> Option<u64> {
        let now = std::time::Instant::now();
        match self.peak {
            Some((at, mb)) if now.duration_since(at) < PEAK_TTL => mb,
            _ => {
                let mb = self.pid.and_then(peak_rss_mb);
                self.peak = Some((now, mb));
                mb
            }
        }
    }

    fn kill(&self) {
        self.alive.store(false, Ordering::SeqCst);
        self.stop.notify_one();
    }
}

/// A function's pool.
pub struct Pool {
    spec: Mutex<Spec>,
    idle: Mutex<Vec<Worker>>,
    permits: Semaphore,
    generation: AtomicU64,
    init_reported: AtomicBool,
    log: Log,
    /// Ticks every [`WATCH_INTERVAL`] while the pool lives (started with its first
    /// invocation): running invocations check their worker's memory on each tick. One shared
    /// ticker instead of a timer per invocation: registering a timer that is due before every
    /// other one wakes the runtime's driver (a syscall and an extra turn of the event loop),
    /// and under load that happened on almost every request. With this ticker due within
    /// 100 ms, an invocation's timeout (a second or more) never is the earliest.
    tick: tokio::sync::watch::Sender<()>,
    ticking: AtomicBool,
}

impl Pool {
    /// A pool; no worker runs until [`Pool::warm`] or the first invocation.
    pub fn new(spec: Spec, log: Log) -> Arc<Pool> {
        let permits = Semaphore::new(spec.concurrency.max(1));
        Arc::new(Pool {
            spec: Mutex::new(spec),
            idle: Mutex::new(vec![]),
            permits,
            generation: AtomicU64::new(0),
            init_reported: AtomicBool::new(false),
            log,
            tick: tokio::sync::watch::Sender::new(()),
            ticking: AtomicBool::new(false),
        })
    }

    /// The function's name.
    pub fn name(&self) -> String {
        self.spec.lock().expect("spec lock").name.clone()
    }

    /// Starts one worker ahead of the first request, so the first response is fast.
    /// Returns once the worker has finished its init (or failed, or 10 s passed).
    pub async fn warm(self: &Arc<Self>) {
        if let Ok(w) = self.spawn().await {
            let shared = w.shared.clone();
            self.idle.lock().expect("idle lock").push(w);
            let _ = tokio::time::timeout(Duration::from_secs(10), shared.ready.notified()).await;
        }
    }

    /// Retires every worker (after a code change): idle ones now, busy ones when they finish.
    pub fn reload(&self, spec: Option<Spec>) {
        if let Some(s) = spec {
            *self.spec.lock().expect("spec lock") = s;
        }
        self.generation.fetch_add(1, Ordering::SeqCst);
        self.init_reported.store(false, Ordering::SeqCst);
        for w in self.idle.lock().expect("idle lock").drain(..) {
            w.kill();
        }
    }

    /// Kills every idle worker (shutdown).
    pub fn shutdown(&self) {
        for w in self.idle.lock().expect("idle lock").drain(..) {
            w.kill();
        }
    }

    async fn spawn(&self) -> std::io::Result<Worker> {
        let spec = self.spec.lock().expect("spec lock").clone();
        let (shared, tx) = Shared::new();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let unix = if spec.local_socket {
            local_socket()?
        } else {
            None
        };
        let app = runtime_api::router(shared.clone());
        let mut cmd = Command::new(&spec.command[0]);
        cmd.args(&spec.command[1..])
            .current_dir(&spec.cwd)
            .env_clear()
            .envs(&spec.env)
            .env("AWS_LAMBDA_RUNTIME_API", addr.to_string());
        if let Some((_, file)) = &unix {
            cmd.env(LOCAL_SOCKET_ENV, &file.0);
        }
        let server = tokio::spawn(async move {
            // No Nagle: a response written right after another (a client that pipelines
            // `POST /response` and `GET /next`) must not wait for the first one's ACK.
            let tcp = axum::serve(
                listener.tap_io(|t| {
                    let _ = t.set_nodelay(true);
                }),
                app.clone(),
            )
            .into_future();
            match unix {
                Some((unix, file)) => {
                    let _ = tokio::join!(tcp, axum::serve(unix, app).into_future());
                    drop(file);
                }
                None => {
                    let _ = tcp.await;
                }
            }
        });
        cmd.stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        let mut child = match cmd.spawn() {
            Ok(c) => c,
            Err(e) => {
                server.abort();
                return Err(std::io::Error::new(
                    e.kind(),
                    format!("cannot start `{}`: {e}", spec.command.join(" ")),
                ));
            }
        };
        for (stream, is_err) in [
            (
                child
                    .stdout
                    .take()
                    .map(|s| Box::new(s) as Box<dyn tokio::io::AsyncRead + Unpin + Send>),
                false,
            ),
            (
                child
                    .stderr
                    .take()
                    .map(|s| Box::new(s) as Box<dyn tokio::io::AsyncRead + Unpin + Send>),
                true,
            ),
        ] {
            if let Some(stream) = stream {
                let log = self.log.clone();
                let name = spec.name.clone();
                tokio::spawn(async move {
                    let mut lines = BufReader::new(stream).lines();
                    while let Ok(Some(line)) = lines.next_line().await {
                        log.function_line(&name, &line, is_err);
                    }
                });
            }
        }
        let pid = child.id();
        let alive = Arc::new(AtomicBool::new(true));
        let stop = Arc::new(Notify::new());
        {
            let shared = shared.clone();
            let alive = alive.clone();
            let stop = stop.clone();
            tokio::spawn(async move {
                let mut child = child;
                let why = tokio::select! {
                    status = child.wait() => format!("the worker exited ({})", status.map_or_else(|e| e.to_string(), |s| s.to_string())),
                    _ = stop.notified() => {
                        let _ = child.kill().await;
                        "the worker was stopped".to_owned()
                    }
                };
                alive.store(false, Ordering::SeqCst);
                shared.fail_all(&why);
                server.abort();
            });
        }
        Ok(Worker {
            peak: None,
            shared,
            tx,
            stop,
            alive,
            generation: self.generation.load(Ordering::SeqCst),
            pid,
        })
    }

    /// Runs one invocation.
    pub async fn invoke(self: &Arc<Self>, payload: Bytes, request_id: String) -> Result {
        if !self.ticking.swap(true, Ordering::SeqCst) {
            self.start_ticker();
        }
        // The invocation runs in its own task: a caller that goes away (a client that hangs
        // up) must not cancel it halfway and lose the warm worker.
        let pool = self.clone();
        match tokio::spawn(async move { pool.run(payload, request_id).await }).await {
            Ok(r) => r,
            Err(e) => Result::Failed(format!("the invocation task failed: {e}")),
        }
    }

    /// Sends [`Pool::tick`] every [`WATCH_INTERVAL`] until the pool is dropped.
    fn start_ticker(self: &Arc<Self>) {
        let pool = Arc::downgrade(self);
        tokio::spawn(async move {
            let mut every = tokio::time::interval(WATCH_INTERVAL);
            every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                every.tick().await;
                match pool.upgrade() {
                    Some(p) => p.tick.send_replace(()),
                    None => break,
                };
            }
        });
    }

    async fn run(&self, payload: Bytes, request_id: String) -> Result {
        let Ok(_permit) = self.permits.acquire().await else {
            return Result::Failed("shutting down".into());
        };
        let mut worker = loop {
            let w = self.idle.lock().expect("idle lock").pop();
            match w {
                Some(w)
                    if w.alive.load(Ordering::SeqCst)
                        && w.generation == self.generation.load(Ordering::SeqCst) =>
                {
                    break w
                }
                Some(w) => w.kill(),
                None => match self.spawn().await {
                    Ok(w) => break w,
                    Err(e) => return Result::Failed(e.to_string()),
                },
            }
        };
        let (name, timeout, arn, memory) = {
            let s = self.spec.lock().expect("spec lock");
            (s.name.clone(), s.timeout, s.arn.clone(), s.memory)
        };
        let deadline = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis())
            + timeout.as_millis();
        let (tx, rx) = oneshot::channel();
        worker.shared.expect(&request_id, tx);
        let inv = Invocation {
            id: request_id.clone(),
            payload,
            deadline_ms: deadline,
            arn,
            trace_id: trace_id(deadline / 1000, &request_id),
        };
        if worker.tx.send(inv).await.is_err() {
            worker.kill();
            return Result::Failed("the worker stopped".into());
        }
        let started = std::time::Instant::now();
        self.log.start(&name, &request_id);
        // The memory setting is enforced as Lambda enforces it: a worker whose resident
        // memory goes over it is killed. Checked on the pool's ticks (every WATCH_INTERVAL)
        // while the invocation runs, and the peak once it is done.
        let pid = worker.pid;
        let mut tick = self.tick.subscribe();
        let watch = async {
            loop {
                if tick.changed().await.is_err() {
                    std::future::pending::<()>().await;
                }
                if let Some(rss) = pid.and_then(|p| status_mb(p, "VmRSS:")) {
                    if rss > u64::from(memory) {
                        return rss;
                    }
                }
            }
        };
        let mut rx = rx;
        let outcome = tokio::select! {
            r = tokio::time::timeout(timeout, &mut rx) => Some(r),
            _ = watch => None,
        };
        let elapsed = started.elapsed();
        if elapsed >= WATCH_INTERVAL / 5 {
            // Long enough for the cached reading to miss a peak: read it again.
            worker.peak = None;
        }
        let peak = worker.peak_mb();
        self.log.report(&name, &request_id, elapsed, memory, peak);
        let over = outcome.is_none() || peak.is_some_and(|p| p > u64::from(memory));
        if over {
            worker.kill();
            self.log.note(
                &self.name(),
                &format!(
                    "went over its memory ({} MB > {memory} MB); the worker was stopped",
                    peak.unwrap_or_default()
                ),
            );
            return Result::FunctionError(Bytes::from(
                serde_json::json!({
                    "errorType": "Runtime.OutOfMemory",
                    "errorMessage": format!("RequestId: {request_id} Error: Runtime exited with error: signal: killed"),
                })
                .to_string(),
            ));
        }
        let outcome = outcome.expect("checked above");
        match outcome {
            Ok(Ok(Outcome::Response(b))) => {
                self.give_back(worker);
                Result::Ok(b)
            }
            Ok(Ok(Outcome::Error(b))) => {
                self.give_back(worker);
                Result::FunctionError(b)
            }
            Ok(Ok(Outcome::InitError(b))) => {
                worker.kill();
                if !self.init_reported.swap(true, Ordering::SeqCst) {
                    self.log
                        .init_error(&self.name(), &String::from_utf8_lossy(&b));
                }
                Result::Failed(format!("init error: {}", String::from_utf8_lossy(&b)))
            }
            Ok(Ok(Outcome::Crashed(why))) => self.crashed(worker, why),
            Ok(Err(_)) => self.crashed(worker, "the worker went away".into()),
            Err(_) => {
                worker.kill();
                self.log.note(
                    &self.name(),
                    &format!("timed out after {timeout:?}; the worker was stopped"),
                );
                Result::Timeout
            }
        }
    }

    fn crashed(&self, worker: Worker, why: String) -> Result {
        worker.kill();
        self.log.note(
            &self.name(),
            &format!("worker crashed: {why}; a new one starts on the next request"),
        );
        Result::Failed(why)
    }

    fn give_back(&self, w: Worker) {
        if w.alive.load(Ordering::SeqCst) && w.generation == self.generation.load(Ordering::SeqCst)
        {
            self.idle.lock().expect("idle lock").push(w);
        } else {
            w.kill();
        }
    }
}

/// A Unix listener for a worker's Runtime API, at a fresh path in the temporary folder, and
/// that path. None where the path would be too long for a socket address.
#[cfg(unix)]
fn local_socket() -> std::io::Result<Option<(tokio::net::UnixListener, SocketFile)>> {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let path = std::env::temp_dir().join(format!(
        "ferry-{}-{}.sock",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    ));
    // sun_path holds 104 bytes on macOS, 108 on Linux, with the terminating NUL.
    if path.as_os_str().len() > 100 {
        return Ok(None);
    }
    // A file left by an earlier process with this pid.
    let _ = std::fs::remove_file(&path);
    let listener = tokio::net::UnixListener::bind(&path)?;
    Ok(Some((listener, SocketFile(path))))
}

#[cfg(not(unix))]
fn local_socket() -> std::io::Result<Option<(tokio::net::UnixListener, SocketFile)>> {
    Ok(None)
}

/// A socket file, removed when the server that listens on it ends.
struct SocketFile(PathBuf);

impl Drop for SocketFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// How often a running invocation's resident memory is checked against its setting.
const WATCH_INTERVAL: Duration = Duration::from_millis(100);

/// The peak resident memory of a process in MB, where the OS tells (Linux `/proc`).
fn peak_rss_mb(pid: u32) -> Option<u64> {
    status_mb(pid, "VmHWM:")
}

/// A `/proc/<pid>/status` field in MB (`VmHWM:` peak, `VmRSS:` current resident memory).
fn status_mb(pid: u32, field: &str) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with(field))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb.div_ceil(1024))
}

/// An X-Ray trace header (`Root=1-<8 hex epoch>-<24 hex>`) for an invocation: the request id's
/// hex digits when it is a UUID, else a hash of it (a cloud's own ids, such as a Pub/Sub
/// message id `1234`, can be any string).
fn trace_id(epoch_seconds: u128, request_id: &str) -> String {
    let hex: String = request_id.chars().filter(|c| *c != '-').collect();
    let root = if hex.len() >= 24 && hex.chars().all(|c| c.is_ascii_hexdigit()) {
        hex[..24].to_ascii_lowercase()
    } else {
        crate::records::md5_hex(request_id)[..24].to_owned()
    };
    format!("Root=1-{epoch_seconds:08x}-{root}")
}

#[cfg(test)]
mod trace_tests {
    #[test]
    fn trace_ids_from_any_request_id() {
        assert_eq!(
            super::trace_id(0x6760_0000, "0f2cf420-22e9-4c20-b57f-36e11b38b157"),
            "Root=1-67600000-0f2cf42022e94c20b57f36e1"
        );
        let t = super::trace_id(1, "1234");
        assert_eq!(t.len(), "Root=1-00000001-".len() + 24, "{t}");
        assert_ne!(t, super::trace_id(1, "1235"));
    }
}
