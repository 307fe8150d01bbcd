//! Log output of the local runtime: lines functions print, prefixed with the function's name,
//! and Lambda's `START`/`END`/`REPORT` lines for every invocation.
//!
//! Every line goes through one writer thread. The runtime runs on one thread, and a write to
//! stderr blocks it while a terminal is slow or paused; and each `write!` to the unbuffered
//! stderr was a system call per formatted piece (about 20 per invocation, a fifth of the
//! gateway's CPU under load). The writer thread wakes on a line, waits a few milliseconds
//! for more and writes them all with one system call, so a busy runtime pays one wake-up and
//! one write per batch, and a line still shows within milliseconds. The queue is bounded: a
//! stalled stderr eventually slows the runtime down instead of filling memory.

use std::io::Write;
use std::sync::mpsc::{sync_channel, Receiver, SyncSender};
use std::sync::OnceLock;
use std::time::Duration;

/// Lines waiting for the writer before senders wait.
const QUEUE: usize = 16 * 1024;

/// How long the writer waits after the first line of a batch for more: short enough that a
/// line shows at once to a reader, long enough to batch a busy runtime's lines.
const LINGER: Duration = Duration::from_millis(4);

enum Msg {
    Text(String),
    Flush(SyncSender<()>),
}

fn writer() -> &'static SyncSender<Msg> {
    static SINK: OnceLock<SyncSender<Msg>> = OnceLock::new();
    SINK.get_or_init(|| {
        let (tx, rx) = sync_channel(QUEUE);
        std::thread::Builder::new()
            .name("ferry-log".into())
            .spawn(move || write_batches(&rx))
            .expect("the log thread starts");
        tx
    })
}

fn write_batches(rx: &Receiver<Msg>) {
    let mut out = std::io::BufWriter::with_capacity(64 * 1024, std::io::stderr());
    let mut acks = Vec::new();
    while let Ok(first) = rx.recv() {
        // Lines come one per invocation step; waking this thread for each would cost as much
        // as the write it saves. Let the lines of the next few milliseconds join the batch
        // (a sender wakes nobody while this thread sleeps).
        std::thread::sleep(LINGER);
        for m in std::iter::once(first).chain(std::iter::from_fn(|| rx.try_recv().ok())) {
            match m {
                // A closed stream is no reason to stop serving: write errors are dropped.
                Msg::Text(t) => drop(out.write_all(t.as_bytes())),
                Msg::Flush(ack) => acks.push(ack),
            }
        }
        let _ = out.flush();
        for ack in acks.drain(..) {
            let _ = ack.send(());
        }
    }
}

/// Queues text (whole lines) for stderr.
fn emit(text: String) {
    let _ = writer().send(Msg::Text(text));
}

/// Writes a line of ferry's own to stderr, after every log line queued before it.
pub fn say(line: &str) {
    emit(format!("{line}\n"));
}

/// Waits (up to a second) until every line queued so far is written: before the process exits.
pub fn flush() {
    let (tx, rx) = sync_channel(1);
    if writer().send(Msg::Flush(tx)).is_ok() {
        let _ = rx.recv_timeout(Duration::from_secs(1));
    }
}

/// Lambda's `REPORT` line of an invocation, unprefixed and without its newline; `init` is the
/// worker's init duration, which Lambda shows on the first invocation of a new execution
/// environment (a cold start).
pub fn report_line(
    id: &str,
    took: Duration,
    memory: u32,
    max_used: Option<u64>,
    init: Option<Duration>,
) -> String {
    let ms = took.as_secs_f64() * 1000.0;
    let used = max_used.map_or_else(|| "n/a".to_owned(), |m| format!("{m} MB"));
    let init = init.map_or_else(String::new, |d| {
        format!("\tInit Duration: {:.2} ms", d.as_secs_f64() * 1000.0)
    });
    format!(
        "REPORT RequestId: {id}\tDuration: {ms:.2} ms\tBilled Duration: {} ms\tMemory Size: {memory} MB\tMax Memory Used: {used}{init}",
        ms.ceil() as u64
    )
}

/// Log output: function lines prefixed with the function's name. Logs go to stderr (stdout
/// carries `--format json` output).
#[derive(Clone)]
pub struct Log {
    color: bool,
}

/// A function's `[name]` prefix, in a colour of its own when the log is coloured; written
/// straight into the line it starts.
struct Tag<'a> {
    name: &'a str,
    color: bool,
}

impl std::fmt::Display for Tag<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if !self.color {
            return write!(f, "[{}]", self.name);
        }
        let hue = 31
            + (self
                .name
                .bytes()
                .fold(0u32, |h, b| h.wrapping_mul(31).wrapping_add(b.into()))
                % 6);
        write!(f, "\x1b[{hue}m[{}]\x1b[0m", self.name)
    }
}

impl Log {
    /// A logger.
    pub fn new(color: bool) -> Self {
        Log { color }
    }

    fn paint<'a>(&self, name: &'a str) -> Tag<'a> {
        Tag {
            name,
            color: self.color,
        }
    }

    /// A line a function printed (on stdout or stderr).
    pub fn function_line(&self, name: &str, line: &str) {
        emit(format!("{} {line}\n", self.paint(name)));
    }

    /// `START` line of an invocation, as Lambda logs it.
    pub fn start(&self, name: &str, id: &str) {
        emit(format!(
            "{} START RequestId: {id} Version: $LATEST\n",
            self.paint(name)
        ));
    }

    /// `END` and `REPORT` lines of an invocation (the latter from [`report_line`]).
    pub fn report(&self, name: &str, id: &str, report: &str) {
        let p = self.paint(name);
        emit(format!("{p} END RequestId: {id}\n{p} {report}\n"));
    }

    /// A note from ferry about a function.
    pub fn note(&self, name: &str, msg: &str) {
        emit(format!("{} ferry: {msg}\n", self.paint(name)));
    }

    /// An init error, reported once per code version.
    pub fn init_error(&self, name: &str, body: &str) {
        let detail = serde_json::from_str::<serde_json::Value>(body)
            .ok()
            .and_then(|v| {
                Some(format!(
                    "{}: {}",
                    v["errorType"].as_str()?,
                    v["errorMessage"].as_str().unwrap_or("")
                ))
            })
            .unwrap_or_else(|| body.to_owned());
        self.note(name, &format!("the function failed to start: {detail}"));
    }
}
