//! Warm worker pools: one per function. A worker is a process speaking the Lambda Runtime API
//! to its own server; the pool reuses idle workers, starts new ones up to the concurrency
//! limit, kills a worker that times out (504) and replaces one that crashes (502).
//!
//! When every worker is busy, requests wait in line (`Slots::waiting`) and a worker that
//! answers takes the oldest one before its answer is even acknowledged
//! (`Pool::hand_over`): ferry's shims send their next `GET /next` with the answer, so the
//! acknowledgement and the next event leave in one write and the worker wakes once per
//! invocation (measured: python workers read 1.83 times per invocation before, 1.06 after).

use crate::log::report_line;
use crate::runtime_api::{self, Invocation, Outcome, Shared};
use crate::Log;
use axum::body::Bytes;
use axum::serve::ListenerExt;
use std::collections::{BTreeMap, VecDeque};
use std::path::PathBuf;
use std::process::Stdio;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;
use std::time::Instant;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::Command;
use tokio::sync::{mpsc, oneshot, Notify};

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

/// A worker process and its Runtime API server. The pool holds it in an `Arc`: the task
/// running its invocation owns it, and its server's answer hook ([`Pool::hand_over`]) sees it.
struct Worker {
    shared: Arc<Shared>,
    tx: mpsc::Sender<Invocation>,
    stop: Arc<Notify>,
    alive: Arc<AtomicBool>,
    generation: u64,
    pid: Option<u32>,
    /// The last peak-memory reading and when it was taken.
    peak: Mutex<Option<(Instant, Option<u64>)>>,
    /// When the invocation in flight was handed to the worker.
    dispatched: Mutex<Instant>,
    /// When the process was started: its init phase runs from here to the end
    /// [`Shared::init_end`] marks.
    spawned: Instant,
    /// Whether an invocation's `REPORT` has shown the init duration (the first one does).
    init_shown: AtomicBool,
    /// The lines the function prints, collected while the invocation in flight asked for
    /// its log tail (None otherwise). A worker collecting is not handed on at its answer.
    tail: Arc<Mutex<Option<String>>>,
    /// The peak the answer hook read when it handed the worker on, for REPORT and the memory
    /// check of the invocation that just ended (so both decide on the same reading).
    answer_peak: Mutex<Option<Option<u64>>>,
    /// A queued invocation the answer hook already gave this worker: a copy of it, when it
    /// was given, and where the worker goes once the invocation in flight is wrapped up.
    successor: Mutex<Option<Successor>>,
}

struct Successor {
    inv: Invocation,
    grant: oneshot::Sender<Grant>,
    at: Instant,
}

/// Lambda's limit on a function's init phase (start-up and module code before the first
/// `GET /next`); the invocation timeout does not count it.
const INIT_LIMIT: Duration = Duration::from_secs(10);

/// How much log Lambda's `LogType: Tail` returns: the last 4 KB.
const LOG_TAIL: usize = 4096;

/// The longest log line passed on whole; a longer one goes on in pieces of this size (the
/// most a CloudWatch Logs event holds is 256 KB, so Lambda splits such lines too).
const MAX_LINE: usize = 256 * 1024;

/// Calls `f` with each line a worker writes to `stream` until it closes: bytes that are not
/// UTF-8 become U+FFFD, a line longer than [`MAX_LINE`] comes in pieces, a last line without
/// its newline still comes. The stream is read to its end whatever it holds: a reader that
/// stopped would close the pipe under the function (every later write failing) or, full,
/// block it.
async fn each_line<R: tokio::io::AsyncRead + Unpin>(stream: R, mut f: impl FnMut(&str)) {
    let mut reader = BufReader::with_capacity(64 * 1024, stream);
    let mut line: Vec<u8> = Vec::new();
    let mut emit = |line: &mut Vec<u8>| {
        if line.last() == Some(&b'\r') {
            line.pop();
        }
        f(&String::from_utf8_lossy(line));
        line.clear();
    };
    loop {
        let buf = match reader.fill_buf().await {
            Ok([]) | Err(_) => break,
            Ok(buf) => buf,
        };
        let (taken, end) = match buf.iter().position(|&b| b == b'\n') {
            Some(i) => (i + 1, Some(i)),
            None => (buf.len(), None),
        };
        let piece = &buf[..end.unwrap_or(taken)];
        // A line that would outgrow MAX_LINE goes on in pieces.
        let room = MAX_LINE - line.len();
        if piece.len() > room {
            line.extend_from_slice(&piece[..room]);
            reader.consume(room);
            emit(&mut line);
            continue;
        }
        line.extend_from_slice(piece);
        reader.consume(taken);
        if end.is_some() {
            emit(&mut line);
        }
    }
    if !line.is_empty() {
        emit(&mut line);
    }
}

/// Keeps the last `max` bytes of `text` (fewer, to start on a character).
fn keep_last(text: &mut String, max: usize) {
    if text.len() > max {
        let mut cut = text.len() - max;
        while !text.is_char_boundary(cut) {
            cut += 1;
        }
        text.drain(..cut);
    }
}

/// What a Lambda `Invoke` call may ask of an invocation beyond its event.
#[derive(Debug, Default)]
pub struct Extras {
    /// The client context (decoded JSON), which the function sees as
    /// `context.clientContext` / `context.client_context`.
    pub client_context: Option<String>,
    /// Whether to collect the invocation's log for `LogType: Tail`.
    pub log_tail: bool,
}

/// How long a peak-memory reading is reused. Reading `/proc/<pid>/status` took ~70 µs of
/// every request on the hot path; the peak only grows, so a reading this recent is a fair
/// "Max Memory Used" for REPORT, and under load the reads drop from one per request to a
/// few per second per worker.
const PEAK_TTL: Duration = Duration::from_millis(100);

impl Worker {
    /// The worker's peak resident memory in MB right after an answer: a reading at most
    /// [`PEAK_TTL`] old, or a new one when the invocation ran long enough for a cached reading
    /// to miss its peak.
    fn peak_after_answer(&self) -> Option<u64> {
        let now = Instant::now();
        let ran = now.duration_since(*self.dispatched.lock().expect("dispatched lock"));
        let mut peak = self.peak.lock().expect("peak lock");
        match *peak {
            Some((at, mb)) if now.duration_since(at) < PEAK_TTL && ran < WATCH_INTERVAL / 5 => mb,
            _ => {
                let mb = self.pid.and_then(peak_rss_mb);
                *peak = Some((now, mb));
                mb
            }
        }
    }

    /// How long the worker's init phase took, the first time it is asked for once the
    /// phase is over (the `Init Duration` of the first `REPORT`, as Lambda's cold starts show).
    fn first_init(&self) -> Option<Duration> {
        // A load first: every later invocation stops here, without a write.
        if self.init_shown.load(Ordering::Relaxed) {
            return None;
        }
        let end = self.shared.init_end()?;
        (!self.init_shown.swap(true, Ordering::SeqCst)).then(|| end - self.spawned)
    }

    /// The log of the invocation that just ended, as Lambda's `LogType: Tail` gives it: its
    /// `START`, the lines the function printed, `END` and `REPORT`, the last 4 KB of that.
    /// Stops collecting the worker's lines.
    async fn log_tail(&self, id: &str, report: &str) -> String {
        // The function wrote its lines to its pipes before its answer to the Runtime API;
        // the tasks reading the pipes were woken no later than the answer's and run first
        // once this task yields (the runtime runs woken tasks in order).
        for _ in 0..2 {
            tokio::task::yield_now().await;
        }
        let lines = self
            .tail
            .lock()
            .expect("tail lock")
            .take()
            .unwrap_or_default();
        let mut all = format!(
            "START RequestId: {id} Version: $LATEST\n{lines}END RequestId: {id}\n{report}\n"
        );
        keep_last(&mut all, LOG_TAIL);
        all
    }

    fn healthy(&self, generation: u64) -> bool {
        self.alive.load(Ordering::SeqCst) && self.generation == generation
    }

    fn kill(&self) {
        self.alive.store(false, Ordering::SeqCst);
        self.stop.notify_one();
    }
}

/// What a queued invocation receives when its turn comes.
enum Grant {
    /// A worker that already has the invocation, and since when.
    Dispatched(Arc<Worker>, Instant),
    /// A free slot: start a worker for the invocation (handed back).
    Spawn(Invocation, oneshot::Sender<Outcome>),
}

/// An invocation waiting for a worker.
struct Job {
    inv: Invocation,
    outcome: oneshot::Sender<Outcome>,
    grant: oneshot::Sender<Grant>,
}

/// Workers and queued invocations, under one lock.
#[derive(Default)]
struct Slots {
    idle: Vec<Arc<Worker>>,
    /// Invocations waiting for a worker, oldest first.
    waiting: VecDeque<Job>,
    /// Workers running an invocation or starting: at most the concurrency setting.
    busy: usize,
}

/// A function's pool.
pub struct Pool {
    me: Weak<Pool>,
    spec: Mutex<Spec>,
    slots: Mutex<Slots>,
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
        Arc::new_cyclic(|me| Pool {
            me: me.clone(),
            spec: Mutex::new(spec),
            slots: Mutex::new(Slots::default()),
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

    fn slots(&self) -> std::sync::MutexGuard<'_, Slots> {
        self.slots.lock().expect("slots lock")
    }

    /// Starts one worker ahead of the first request, so the first response is fast; nothing
    /// when the pool already has a worker (a request came first). The worker takes a slot
    /// like any other, so warming never starts more workers than the concurrency setting,
    /// and it is handed out before its init ends: a request that comes meanwhile waits for
    /// that init instead of starting a worker of its own. Returns once the init is over (or
    /// the spawn failed, or [`INIT_LIMIT`] passed).
    pub async fn warm(self: &Arc<Self>) {
        {
            let mut slots = self.slots();
            if !slots.idle.is_empty() || slots.busy > 0 {
                return;
            }
            slots.busy += 1;
        }
        match self.spawn().await {
            Ok(w) => {
                let shared = w.shared.clone();
                self.give_back(w);
                let _ = tokio::time::timeout(INIT_LIMIT, shared.initialized()).await;
            }
            Err(_) => self.release_slot(),
        }
    }

    /// Retires every worker (after a code change): idle ones now, busy ones when they finish.
    pub fn reload(&self, spec: Option<Spec>) {
        if let Some(s) = spec {
            *self.spec.lock().expect("spec lock") = s;
        }
        self.generation.fetch_add(1, Ordering::SeqCst);
        self.init_reported.store(false, Ordering::SeqCst);
        for w in self.slots().idle.drain(..) {
            w.kill();
        }
    }

    /// Kills every idle worker (shutdown).
    pub fn shutdown(&self) {
        for w in self.slots().idle.drain(..) {
            w.kill();
        }
    }

    async fn spawn(&self) -> std::io::Result<Arc<Worker>> {
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
            let tcp = runtime_api::serve(
                listener.tap_io(|t| {
                    let _ = t.set_nodelay(true);
                }),
                app.clone(),
            );
            match unix {
                Some((unix, file)) => {
                    tokio::join!(tcp, runtime_api::serve(unix, app));
                    drop(file);
                }
                None => tcp.await,
            }
        });
        cmd.stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        let spawned = Instant::now();
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
        // A function's stdout and stderr both become its log lines, as in CloudWatch.
        let streams = [
            child
                .stdout
                .take()
                .map(|s| Box::new(s) as Box<dyn tokio::io::AsyncRead + Unpin + Send>),
            child
                .stderr
                .take()
                .map(|s| Box::new(s) as Box<dyn tokio::io::AsyncRead + Unpin + Send>),
        ];
        let tail: Arc<Mutex<Option<String>>> = Arc::default();
        for stream in streams.into_iter().flatten() {
            let log = self.log.clone();
            let name = spec.name.clone();
            let tail = tail.clone();
            tokio::spawn(each_line(stream, move |line| {
                if let Some(t) = tail.lock().expect("tail lock").as_mut() {
                    t.push_str(line);
                    t.push('\n');
                    // Bounded: only the last LOG_TAIL bytes are ever returned.
                    if t.len() > 2 * LOG_TAIL {
                        keep_last(t, LOG_TAIL);
                    }
                }
                log.function_line(&name, line);
            }));
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
        let worker = Arc::new(Worker {
            shared: shared.clone(),
            tx,
            stop,
            alive,
            generation: self.generation.load(Ordering::SeqCst),
            pid,
            peak: Mutex::new(None),
            dispatched: Mutex::new(Instant::now()),
            spawned,
            init_shown: AtomicBool::new(false),
            tail,
            answer_peak: Mutex::new(None),
            successor: Mutex::new(None),
        });
        let (pool, w) = (self.me.clone(), Arc::downgrade(&worker));
        shared.on_answer(Box::new(move || match (pool.upgrade(), w.upgrade()) {
            (Some(pool), Some(w)) => pool.hand_over(&w),
            _ => false,
        }));
        Ok(worker)
    }

    /// Runs one invocation.
    pub async fn invoke(self: &Arc<Self>, payload: Bytes, request_id: String) -> Result {
        self.invoke_with(payload, request_id, Extras::default())
            .await
            .0
    }

    /// Runs one invocation with what a Lambda `Invoke` call may add to its event; returns
    /// the log tail too when one was asked for.
    pub async fn invoke_with(
        self: &Arc<Self>,
        payload: Bytes,
        request_id: String,
        extras: Extras,
    ) -> (Result, Option<String>) {
        if !self.ticking.swap(true, Ordering::SeqCst) {
            self.start_ticker();
        }
        // The invocation runs in its own task: a caller that goes away (a client that hangs
        // up) must not cancel it halfway and lose the warm worker.
        let pool = self.clone();
        let task = tokio::spawn(async move {
            let mut tail = None;
            let r = pool.run(payload, request_id, extras, &mut tail).await;
            (r, tail)
        });
        match task.await {
            Ok(done) => done,
            Err(e) => (
                Result::Failed(format!("the invocation task failed: {e}")),
                None,
            ),
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

    async fn run(
        &self,
        payload: Bytes,
        request_id: String,
        extras: Extras,
        log_tail: &mut Option<String>,
    ) -> Result {
        let (name, timeout, arn, memory) = {
            let s = self.spec.lock().expect("spec lock");
            (s.name.clone(), s.timeout, s.arn.clone(), s.memory)
        };
        let (tx, rx) = oneshot::channel();
        let inv = Invocation {
            id: request_id.clone(),
            payload,
            timeout,
            arn,
            trace_id: String::new(),
            client_context: extras.client_context,
            log_tail: extras.log_tail,
        };
        let (worker, dispatched) = match self.checkout(inv, tx).await {
            Ok(w) => w,
            Err(why) => return Result::Failed(why),
        };
        // As on Lambda, a new worker's init is not part of its first invocation: the timeout
        // counts from the end of the init phase, which has a limit of its own. Past that
        // limit the invocation's timeout covers the rest (Lambda retries such an init within
        // the invocation's timeout).
        let started = match worker.shared.init_end() {
            Some(end) => end.max(dispatched),
            None => tokio::time::timeout(INIT_LIMIT, worker.shared.initialized())
                .await
                .map_or_else(|_| Instant::now(), |end| end.max(dispatched)),
        };
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
        let due = tokio::time::Instant::from_std(started + timeout);
        let outcome = tokio::select! {
            r = tokio::time::timeout_at(due, &mut rx) => Some(r),
            _ = watch => None,
        };
        let elapsed = started.elapsed();
        let peak = worker
            .answer_peak
            .lock()
            .expect("answer peak lock")
            .take()
            .unwrap_or_else(|| worker.peak_after_answer());
        let report = report_line(&request_id, elapsed, memory, peak, worker.first_init());
        if extras.log_tail {
            *log_tail = Some(worker.log_tail(&request_id, &report).await);
        }
        self.log.report(&name, &request_id, &report);
        let over = outcome.is_none() || peak.is_some_and(|p| p > u64::from(memory));
        if over {
            self.retire(&worker);
            self.log.note(
                &name,
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
                self.wrap_up(worker);
                Result::Ok(b)
            }
            Ok(Ok(Outcome::Error(b))) => {
                self.wrap_up(worker);
                Result::FunctionError(b)
            }
            Ok(Ok(Outcome::InitError(b))) => {
                self.retire(&worker);
                if !self.init_reported.swap(true, Ordering::SeqCst) {
                    self.log.init_error(&name, &String::from_utf8_lossy(&b));
                }
                Result::Failed(format!("init error: {}", String::from_utf8_lossy(&b)))
            }
            Ok(Ok(Outcome::Crashed(why))) => self.crashed(&worker, why),
            Ok(Err(_)) => self.crashed(&worker, "the worker went away".into()),
            Err(_) => {
                self.retire(&worker);
                self.log.note(
                    &name,
                    &format!("timed out after {timeout:?}; the worker was stopped"),
                );
                Result::Timeout
            }
        }
    }

    /// A worker that has the invocation, and when it got it: an idle one, a new one while
    /// fewer than the concurrency setting run, or else the first to come free (the request
    /// waits in line; a full pool never turns it away).
    async fn checkout(
        &self,
        inv: Invocation,
        outcome: oneshot::Sender<Outcome>,
    ) -> std::result::Result<(Arc<Worker>, Instant), String> {
        enum Step {
            Take(Arc<Worker>),
            Spawn,
            Wait(oneshot::Receiver<Grant>),
        }
        let concurrency = self.spec.lock().expect("spec lock").concurrency.max(1);
        let generation = self.generation.load(Ordering::SeqCst);
        let mut carried = Some((inv, outcome));
        let step = {
            let mut slots = self.slots();
            let free = loop {
                match slots.idle.pop() {
                    Some(w) if w.healthy(generation) => break Some(w),
                    Some(w) => w.kill(),
                    None => break None,
                }
            };
            match free {
                Some(w) => {
                    slots.busy += 1;
                    Step::Take(w)
                }
                None if slots.busy < concurrency => {
                    slots.busy += 1;
                    Step::Spawn
                }
                None => {
                    let (inv, outcome) = carried.take().expect("not yet moved");
                    let (grant, granted) = oneshot::channel();
                    slots.waiting.push_back(Job {
                        inv,
                        outcome,
                        grant,
                    });
                    Step::Wait(granted)
                }
            }
        };
        match (step, carried) {
            (Step::Take(w), Some((inv, outcome))) => {
                let at = self.dispatch(&w, inv, outcome);
                Ok((w, at))
            }
            (Step::Spawn, Some((inv, outcome))) => self.start(inv, outcome).await,
            (Step::Wait(granted), _) => match granted.await {
                Ok(Grant::Dispatched(w, at)) => Ok((w, at)),
                Ok(Grant::Spawn(inv, outcome)) => self.start(inv, outcome).await,
                Err(_) => Err("the pool stopped".into()),
            },
            (_, None) => unreachable!("only a waiting invocation gives its parts away"),
        }
    }

    /// Starts a worker for an invocation, in a slot already counted as busy.
    async fn start(
        &self,
        inv: Invocation,
        outcome: oneshot::Sender<Outcome>,
    ) -> std::result::Result<(Arc<Worker>, Instant), String> {
        match self.spawn().await {
            Ok(w) => {
                let at = self.dispatch(&w, inv, outcome);
                Ok((w, at))
            }
            Err(e) => {
                self.release_slot();
                Err(e.to_string())
            }
        }
    }

    /// Gives a worker that is not running anything an invocation; returns when. The outcome
    /// always arrives: a worker that has stopped fails it at once.
    fn dispatch(
        &self,
        w: &Worker,
        mut inv: Invocation,
        outcome: oneshot::Sender<Outcome>,
    ) -> Instant {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        inv.trace_id = trace_id(now.into(), &inv.id);
        let at = Instant::now();
        *w.dispatched.lock().expect("dispatched lock") = at;
        *w.tail.lock().expect("tail lock") = inv.log_tail.then(String::new);
        let id = inv.id.clone();
        w.shared.expect(&id, outcome);
        // A worker that exited before the invocation was registered had its invocations
        // failed already (`alive` is cleared before that): fail this one too.
        if !w.alive.load(Ordering::SeqCst) || w.tx.try_send(inv).is_err() {
            if let Some(tx) = w.shared.forget(&id) {
                let _ = tx.send(Outcome::Crashed("the worker stopped".into()));
            }
        }
        at
    }

    /// Called by a worker's Runtime API server the moment the worker answers (before the
    /// `202` is written): gives the worker the oldest queued invocation right away, so that
    /// the `GET /next` the client sent with its answer (ferry's shims pipeline it) finds the
    /// event ready and both go out in one write. The task that ran the answered invocation
    /// then passes the worker on ([`Pool::wrap_up`]). A worker that is stale, has gone over
    /// its memory or failed its init is not handed on; its invocation's task retires it.
    fn hand_over(&self, w: &Arc<Worker>) -> bool {
        if !w.healthy(self.generation.load(Ordering::SeqCst))
            || w.shared.init_error().is_some()
            || w.tail.lock().expect("tail lock").is_some()
        {
            return false;
        }
        let memory = self.spec.lock().expect("spec lock").memory;
        let peak = w.peak_after_answer();
        *w.answer_peak.lock().expect("answer peak lock") = Some(peak);
        if peak.is_some_and(|p| p > u64::from(memory)) {
            return false;
        }
        let Some(job) = self.slots().waiting.pop_front() else {
            return false;
        };
        let copy = job.inv.clone();
        let at = self.dispatch(w, job.inv, job.outcome);
        *w.successor.lock().expect("successor lock") = Some(Successor {
            inv: copy,
            grant: job.grant,
            at,
        });
        true
    }

    /// After an answered invocation: the worker goes to the invocation the answer hook gave
    /// it, or to the next one waiting, or back to the idle list.
    fn wrap_up(&self, w: Arc<Worker>) {
        let successor = w.successor.lock().expect("successor lock").take();
        match successor {
            Some(s) => self.pass_on(s.grant, w, s.at),
            None => self.give_back(w),
        }
    }

    /// Gives a waiting invocation the worker that now has it; stops the worker when nobody
    /// waits any more (the runtime is stopping).
    fn pass_on(&self, grant: oneshot::Sender<Grant>, w: Arc<Worker>, at: Instant) {
        if let Err(Grant::Dispatched(w, _)) = grant.send(Grant::Dispatched(w, at)) {
            w.kill();
            self.release_slot();
        }
    }

    fn give_back(&self, w: Arc<Worker>) {
        if !w.healthy(self.generation.load(Ordering::SeqCst)) {
            w.kill();
            self.release_slot();
            return;
        }
        let job = {
            let mut slots = self.slots();
            let job = slots.waiting.pop_front();
            if job.is_none() {
                slots.busy -= 1;
                slots.idle.push(w.clone());
            }
            job
        };
        if let Some(job) = job {
            let at = self.dispatch(&w, job.inv, job.outcome);
            self.pass_on(job.grant, w, at);
        }
    }

    /// Stops a worker whose invocation ended badly (timeout, memory, crash, init error) and
    /// frees its slot. An invocation the answer hook had already given it (possible only when
    /// the answer and the failure race) is started again elsewhere.
    fn retire(&self, w: &Worker) {
        w.kill();
        let successor = w.successor.lock().expect("successor lock").take();
        let Some(s) = successor else {
            self.release_slot();
            return;
        };
        match w.shared.forget(&s.inv.id) {
            Some(outcome) => {
                if s.grant.send(Grant::Spawn(s.inv, outcome)).is_err() {
                    self.release_slot();
                }
            }
            // Its outcome is already decided (the worker failed it): the waiting task sees
            // its grant dropped and reports the worker gone.
            None => self.release_slot(),
        }
    }

    /// A slot comes free: the oldest waiting invocation gets it, or the count goes down.
    fn release_slot(&self) {
        let mut slots = self.slots();
        while let Some(job) = slots.waiting.pop_front() {
            match job.grant.send(Grant::Spawn(job.inv, job.outcome)) {
                Ok(()) => return,
                Err(_) => continue,
            }
        }
        slots.busy = slots.busy.saturating_sub(1);
    }

    fn crashed(&self, worker: &Worker, why: String) -> Result {
        self.retire(worker);
        self.log.note(
            &self.name(),
            &format!("worker crashed: {why}; a new one starts on the next request"),
        );
        Result::Failed(why)
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
mod line_tests {
    use super::{each_line, MAX_LINE};

    async fn lines(input: &[u8]) -> Vec<String> {
        let mut out = Vec::new();
        each_line(input, |l| out.push(l.to_owned())).await;
        out
    }

    #[tokio::test]
    async fn any_bytes_become_lines() {
        assert_eq!(
            lines(b"a\nb\r\nbad \xff byte\n\nlast").await,
            ["a", "b", "bad \u{FFFD} byte", "", "last"]
        );
        // Longer than MAX_LINE: pieces, and no empty line after one that fills a piece.
        let mut long = vec![b'x'; 2 * MAX_LINE + 10];
        long.extend_from_slice(b"\nnext\n");
        let got = lines(&long).await;
        let sizes: Vec<usize> = got.iter().map(String::len).collect();
        assert_eq!(sizes, [MAX_LINE, MAX_LINE, 10, 4]);
        let mut exact = vec![b'y'; MAX_LINE];
        exact.push(b'\n');
        assert_eq!(lines(&exact).await.len(), 1);
    }
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

#[cfg(test)]
mod hand_over_tests {
    use super::*;

    /// A Runtime API client on a raw socket that answers with the event it got (and its
    /// next `GET /next` in the same write), and notes for each answer whether the next event
    /// arrived together with the `202`, with no read of its own.
    const WORKER: &str = r#"
import os, re, socket, sys
host, port = os.environ["AWS_LAMBDA_RUNTIME_API"].rsplit(":", 1)
s = socket.create_connection((host, int(port)))
s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
NEXT = b"GET /2018-06-01/runtime/invocation/next HTTP/1.1\r\nHost: x\r\n\r\n"
buf = b""
def read_one():
    global buf
    reads = 0
    while True:
        end = buf.find(b"\r\n\r\n")
        if end >= 0:
            head = buf[:end].decode("latin-1")
            length = int(re.search(r"(?im)^content-length: *(\d+)", head).group(1))
            if len(buf) >= end + 4 + length:
                body = buf[end + 4:end + 4 + length]
                buf = buf[end + 4 + length:]
                return head, body, reads
        chunk = s.recv(65536)
        if not chunk:
            sys.exit(0)
        buf += chunk
        reads += 1
s.sendall(NEXT)
head, body, _ = read_one()
while True:
    rid = re.search(r"(?im)^lambda-runtime-aws-request-id: *(\S+)", head).group(1)
    s.sendall(b"POST /2018-06-01/runtime/invocation/%s/response HTTP/1.1\r\nHost: x\r\n"
              b"Content-Length: %d\r\n\r\n%s%s" % (rid.encode(), len(body), body, NEXT))
    status, _, _ = read_one()
    assert " 202 " in status.split("\r\n")[0], status
    head, body, reads = read_one()
    with open(os.environ["RESULT"], "a") as f:
        f.write("together\n" if reads == 0 else "apart\n")
"#;

    fn python() -> String {
        std::env::var("FERRY_TEST_PYTHON").unwrap_or_else(|_| "python3".into())
    }

    fn spec(name: &str, script: &str, dir: &std::path::Path, timeout: Duration) -> Spec {
        let mut env = BTreeMap::new();
        env.insert("PATH".to_owned(), std::env::var("PATH").unwrap_or_default());
        env.insert(
            "RESULT".to_owned(),
            dir.join("result").display().to_string(),
        );
        Spec {
            name: name.into(),
            command: vec![python(), "-c".into(), script.into()],
            cwd: dir.to_owned(),
            env,
            timeout,
            concurrency: 1,
            arn: format!("arn:aws:lambda:us-east-1:000000000000:function:{name}"),
            memory: 1024,
            local_socket: false,
        }
    }

    /// A worker whose init (module code before its first `GET /next`) takes 1.5 s, then
    /// answers each event with the milliseconds its deadline header left it.
    const SLOW_INIT: &str = r#"
import os, time, urllib.request
time.sleep(1.5)
api = "http://" + os.environ["AWS_LAMBDA_RUNTIME_API"] + "/2018-06-01/runtime/invocation/"
while True:
    with urllib.request.urlopen(api + "next") as r:
        rid = r.headers["Lambda-Runtime-Aws-Request-Id"]
        left = int(r.headers["Lambda-Runtime-Deadline-Ms"]) - int(time.time() * 1000)
    urllib.request.urlopen(urllib.request.Request(api + rid + "/response", data=str(left).encode()))
"#;

    /// Waits until the pool has `idle` idle and `busy` busy workers.
    async fn until(pool: &Pool, idle: usize, busy: usize) {
        let since = Instant::now();
        loop {
            {
                let slots = pool.slots();
                if (slots.idle.len(), slots.busy) == (idle, busy) {
                    return;
                }
                assert!(
                    since.elapsed() < Duration::from_secs(20),
                    "idle {}, busy {}",
                    slots.idle.len(),
                    slots.busy
                );
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }

    #[tokio::test]
    async fn warming_never_starts_more_workers_than_the_concurrency_setting() {
        let dir = tempfile::tempdir().expect("temp dir");
        let spec = spec("warm", SLOW_INIT, dir.path(), Duration::from_secs(5));
        // A request first: warming a pool that has its worker starting adds none.
        let pool = Pool::new(spec.clone(), Log::new(false));
        let call = tokio::spawn({
            let pool = pool.clone();
            async move { pool.invoke(Bytes::from("{}"), "id-0".into()).await }
        });
        until(&pool, 0, 1).await;
        pool.warm().await;
        assert!(matches!(call.await.expect("task"), Result::Ok(_)));
        until(&pool, 1, 0).await;
        pool.shutdown();
        // Warming first: a request that comes during the init takes that worker and waits
        // for its init, with its whole timeout still ahead of it.
        let pool = Pool::new(spec, Log::new(false));
        let warming = tokio::spawn({
            let pool = pool.clone();
            async move { pool.warm().await }
        });
        until(&pool, 1, 0).await;
        match pool.invoke(Bytes::from("{}"), "id-1".into()).await {
            Result::Ok(left) => assert!(
                std::str::from_utf8(&left)
                    .expect("utf-8")
                    .parse::<i64>()
                    .is_ok_and(|ms| ms > 4000),
                "{left:?}"
            ),
            other => panic!("{other:?}"),
        }
        warming.await.expect("warm task");
        until(&pool, 1, 0).await;
        pool.shutdown();
    }

    #[tokio::test]
    async fn a_new_workers_init_does_not_count_towards_its_first_invocations_timeout() {
        let dir = tempfile::tempdir().expect("temp dir");
        let pool = Pool::new(
            spec("slow-init", SLOW_INIT, dir.path(), Duration::from_secs(1)),
            Log::new(false),
        );
        // Longer than the 1 s timeout to start, yet both the cold and the warm invocation
        // get their whole second (the deadline the worker is told, too).
        for n in 0..2 {
            match pool.invoke(Bytes::from("{}"), format!("id-{n}")).await {
                Result::Ok(left) => {
                    let left: i64 = std::str::from_utf8(&left)
                        .expect("utf-8")
                        .parse()
                        .expect("a number");
                    assert!(
                        (500..=1000).contains(&left),
                        "invocation {n}: {left} ms left"
                    );
                }
                other => panic!("invocation {n}: {other:?}"),
            }
        }
        pool.shutdown();
    }

    #[tokio::test]
    async fn a_queued_invocation_goes_out_with_the_answers_acknowledgement() {
        let dir = tempfile::tempdir().expect("temp dir");
        let result = dir.path().join("result");
        let pool = Pool::new(
            spec("echo", WORKER, dir.path(), Duration::from_secs(20)),
            Log::new(false),
        );
        // Six at once on one worker: five wait in line while the first starts it.
        let calls: Vec<_> = (0..6)
            .map(|n| {
                let pool = pool.clone();
                tokio::spawn(async move {
                    let r = pool
                        .invoke(Bytes::from(format!(r#"{{"n":{n}}}"#)), format!("id-{n}"))
                        .await;
                    (n, r)
                })
            })
            .collect();
        for call in calls {
            let (n, r) = call.await.expect("invocation task");
            match r {
                Result::Ok(b) => assert_eq!(b, format!(r#"{{"n":{n}}}"#)),
                other => panic!("invocation {n}: {other:?}"),
            }
        }
        pool.shutdown();
        let seen = std::fs::read_to_string(&result).expect("the worker's notes");
        assert_eq!(
            seen.lines().collect::<Vec<_>>(),
            vec!["together"; 5],
            "every answer but the last had an invocation waiting, which must arrive with its 202"
        );
    }
}
