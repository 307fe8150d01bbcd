//! The AWS Lambda Runtime API (2018-06-01), one server per worker process: the worker's
//! `AWS_LAMBDA_RUNTIME_API` is the bare `127.0.0.1:<port>` of its own server, as AWS's Python
//! and Node clients and aws-lambda-go require.

use axum::body::{Body, Bytes};
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};
use tokio::sync::{mpsc, oneshot, Notify};

/// Lambda's limit on an invocation's response and on a synchronous invocation's request:
/// 6 MiB and 100 bytes, the figure its errors name.
pub const PAYLOAD_LIMIT: usize = 6_291_556;

/// One invocation handed to a worker.
#[derive(Debug, Clone)]
pub struct Invocation {
    /// The request id (`Lambda-Runtime-Aws-Request-Id`).
    pub id: String,
    /// The event.
    pub payload: Bytes,
    /// How long the function has once it gets the invocation: `GET /next` turns it into
    /// `Lambda-Runtime-Deadline-Ms` (an epoch in milliseconds) when it hands the event out.
    pub timeout: Duration,
    /// `Lambda-Runtime-Invoked-Function-Arn`.
    pub arn: String,
    /// `Lambda-Runtime-Trace-Id`.
    pub trace_id: String,
    /// `Lambda-Runtime-Client-Context`: the JSON a Lambda `Invoke` call passed (base64) in
    /// `X-Amz-Client-Context`, decoded, as Lambda hands it to the runtime.
    pub client_context: Option<String>,
    /// Whether the caller wants the invocation's log (Lambda `Invoke`'s `LogType: Tail`); the
    /// pool's business, not sent to the worker.
    pub log_tail: bool,
}

/// How an invocation ended.
#[derive(Debug)]
pub enum Outcome {
    /// `POST /invocation/{id}/response`.
    Response(Bytes),
    /// `POST /invocation/{id}/error`: the function threw.
    Error(Bytes),
    /// `POST /init/error`: the worker could not start the function.
    InitError(Bytes),
    /// The process exited while the invocation was in flight.
    Crashed(String),
}

/// State shared by a worker's Runtime API server and its pool.
pub struct Shared {
    next: tokio::sync::Mutex<mpsc::Receiver<Invocation>>,
    pending: Mutex<HashMap<String, oneshot::Sender<Outcome>>>,
    /// The body of `/init/error`, once posted: every later invocation fails with it.
    init_error: Mutex<Option<Bytes>>,
    /// When the worker's init phase ended: its first `GET /next`, its `/init/error`, or its
    /// exit, whichever came first.
    init_end: OnceLock<Instant>,
    /// Wakes whoever waits for the end of the init phase ([`Shared::initialized`]).
    init_waiters: Notify,
    /// Called when the worker answers an invocation (response or error), before the answer
    /// is acknowledged: the pool gives the worker its next invocation here (and says whether
    /// it did), so that a `GET /next` pipelined behind the answer finds it at once.
    on_answer: std::sync::OnceLock<Box<dyn Fn() -> bool + Send + Sync>>,
}

impl Shared {
    /// A new server state and the sender that feeds it invocations.
    pub fn new() -> (Arc<Shared>, mpsc::Sender<Invocation>) {
        let (tx, rx) = mpsc::channel(1);
        (
            Arc::new(Shared {
                next: tokio::sync::Mutex::new(rx),
                pending: Mutex::new(HashMap::new()),
                init_error: Mutex::new(None),
                init_end: OnceLock::new(),
                init_waiters: Notify::new(),
                on_answer: std::sync::OnceLock::new(),
            }),
            tx,
        )
    }

    /// Registers the receiver of an invocation's outcome (before the invocation is sent, so
    /// that a crash in between still reaches it).
    pub fn expect(&self, id: &str, tx: oneshot::Sender<Outcome>) {
        if let Some(body) = self.init_error.lock().expect("init lock").clone() {
            let _ = tx.send(Outcome::InitError(body));
            return;
        }
        self.pending
            .lock()
            .expect("pending lock")
            .insert(id.to_owned(), tx);
    }

    /// The init error the worker reported, if any.
    pub fn init_error(&self) -> Option<Bytes> {
        self.init_error.lock().expect("init lock").clone()
    }

    /// Marks the end of the worker's init phase (once; later calls change nothing).
    fn end_init(&self) {
        if self.init_end.get().is_none() && self.init_end.set(Instant::now()).is_ok() {
            self.init_waiters.notify_waiters();
        }
    }

    /// When the worker's init phase ended, if it has.
    pub fn init_end(&self) -> Option<Instant> {
        self.init_end.get().copied()
    }

    /// Returns once the worker's init phase is over: it asked for its first invocation,
    /// reported an init error or exited.
    pub async fn initialized(&self) -> Instant {
        loop {
            let woken = self.init_waiters.notified();
            tokio::pin!(woken);
            woken.as_mut().enable();
            if let Some(at) = self.init_end() {
                return at;
            }
            woken.await;
        }
    }

    /// Fails every invocation in flight (the process died).
    pub fn fail_all(&self, why: &str) {
        self.end_init();
        let drained: Vec<_> = self.pending.lock().expect("pending lock").drain().collect();
        for (_, tx) in drained {
            let _ = tx.send(Outcome::Crashed(why.to_owned()));
        }
    }

    /// Sets what runs when the worker answers an invocation (once).
    pub fn on_answer(&self, f: Box<dyn Fn() -> bool + Send + Sync>) {
        let _ = self.on_answer.set(f);
    }

    /// Takes back where the outcome of an invocation not answered yet was to go.
    pub fn forget(&self, id: &str) -> Option<oneshot::Sender<Outcome>> {
        self.pending.lock().expect("pending lock").remove(id)
    }

    /// Delivers an invocation's outcome; false for an id not in flight.
    async fn finish(&self, id: &str, outcome: Outcome) -> bool {
        let Some(tx) = self.forget(id) else {
            return false;
        };
        if tx.send(outcome).is_ok() {
            let handed_over = self.on_answer.get().is_some_and(|f| f());
            if !handed_over {
                // Nothing was queued for the worker at this instant, but requests read in
                // the same turn of the event loop may be about to queue. One yield lets them,
                // and lets the task that ran this invocation wrap it up: it gives the worker
                // the oldest queued invocation before the `202` goes out, so the pipelined
                // `GET /next` still finds it ready. Without load this costs one task poll.
                tokio::task::yield_now().await;
            }
        }
        true
    }
}

/// The router of one worker's Runtime API.
pub fn router(shared: Arc<Shared>) -> Router {
    Router::new()
        .route("/2018-06-01/runtime/invocation/next", get(next))
        .route(
            "/2018-06-01/runtime/invocation/{id}/response",
            post(response),
        )
        .route("/2018-06-01/runtime/invocation/{id}/error", post(error))
        .route("/2018-06-01/runtime/init/error", post(init_error))
        .with_state(shared)
}

async fn next(State(s): State<Arc<Shared>>) -> Response {
    s.end_init();
    // Long poll: held until the pool hands this worker an invocation.
    let inv = { s.next.lock().await.recv().await };
    let Some(inv) = inv else {
        return (StatusCode::GONE, "shutting down").into_response();
    };
    let mut h = HeaderMap::new();
    let put = |h: &mut HeaderMap, k: &'static str, v: &str| {
        if let Ok(v) = HeaderValue::from_str(v) {
            h.insert(k, v);
        }
    };
    put(&mut h, "lambda-runtime-aws-request-id", &inv.id);
    let deadline = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis())
        + inv.timeout.as_millis();
    put(&mut h, "lambda-runtime-deadline-ms", &deadline.to_string());
    put(&mut h, "lambda-runtime-invoked-function-arn", &inv.arn);
    put(&mut h, "lambda-runtime-trace-id", &inv.trace_id);
    if let Some(c) = &inv.client_context {
        put(&mut h, "lambda-runtime-client-context", c);
    }
    put(&mut h, "content-type", "application/json");
    (StatusCode::OK, h, inv.payload).into_response()
}

fn accepted() -> Response {
    (
        StatusCode::ACCEPTED,
        [("content-type", "application/json")],
        r#"{"status":"OK"}"#,
    )
        .into_response()
}

fn unknown(id: &str) -> Response {
    (
        StatusCode::BAD_REQUEST,
        [("content-type", "application/json")],
        format!(r#"{{"errorMessage":"Invalid request ID: {id}","errorType":"InvalidRequestID"}}"#),
    )
        .into_response()
}

async fn response(State(s): State<Arc<Shared>>, Path(id): Path<String>, body: Body) -> Response {
    answered(&s, &id, body, Outcome::Response).await
}

async fn error(State(s): State<Arc<Shared>>, Path(id): Path<String>, body: Body) -> Response {
    answered(&s, &id, body, Outcome::Error).await
}

/// An answer (`/response` or `/error`) to an invocation. One over [`PAYLOAD_LIMIT`] fails the
/// invocation as Lambda fails it (`Function.ResponseSizeTooLarge`) and is refused with `413`;
/// its body is read to the end all the same, so the connection (and a `GET /next` pipelined
/// behind it) goes on.
async fn answered(s: &Shared, id: &str, body: Body, outcome: fn(Bytes) -> Outcome) -> Response {
    let (outcome, answer): (Outcome, fn() -> Response) = match read_capped(body, PAYLOAD_LIMIT).await {
        Ok(b) => (outcome(b), accepted),
        Err(Some(size)) => (
            Outcome::Error(Bytes::from(
                serde_json::json!({
                    "errorMessage": format!("Response payload size ({size} bytes) exceeded maximum allowed payload size ({PAYLOAD_LIMIT} bytes)."),
                    "errorType": "Function.ResponseSizeTooLarge",
                })
                .to_string(),
            )),
            too_large,
        ),
        Err(None) => return StatusCode::BAD_REQUEST.into_response(),
    };
    if s.finish(id, outcome).await {
        answer()
    } else {
        unknown(id)
    }
}

fn too_large() -> Response {
    (
        StatusCode::PAYLOAD_TOO_LARGE,
        [("content-type", "application/json")],
        format!(r#"{{"errorMessage":"Exceeded maximum allowed payload size ({PAYLOAD_LIMIT} bytes).","errorType":"RequestEntityTooLarge"}}"#),
    )
        .into_response()
}

/// A request body read to its end, kept when it is at most `cap` bytes: `Err(Some(size))`
/// when it is larger, `Err(None)` when it breaks off. A body in one piece is not copied.
async fn read_capped(body: Body, cap: usize) -> Result<Bytes, Option<usize>> {
    use hyper::body::Body as _;
    let mut body = std::pin::pin!(body);
    let (mut first, mut more) = (None::<Bytes>, None::<bytes::BytesMut>);
    let mut size = 0;
    while let Some(frame) = std::future::poll_fn(|cx| body.as_mut().poll_frame(cx)).await {
        let Ok(data) = frame.map_err(|_| None)?.into_data() else {
            continue;
        };
        size += data.len();
        if size > cap {
            (first, more) = (None, None);
            continue;
        }
        match (&mut first, &mut more) {
            (None, None) => first = Some(data),
            (Some(f), None) => {
                let mut m = bytes::BytesMut::from(&f[..]);
                m.extend_from_slice(&data);
                (first, more) = (None, Some(m));
            }
            (_, Some(m)) => m.extend_from_slice(&data),
        }
    }
    if size > cap {
        return Err(Some(size));
    }
    Ok(more.map_or_else(|| first.unwrap_or_default(), bytes::BytesMut::freeze))
}

async fn init_error(State(s): State<Arc<Shared>>, body: Bytes) -> Response {
    *s.init_error.lock().expect("init lock") = Some(body.clone());
    s.end_init();
    let drained: Vec<_> = s.pending.lock().expect("pending lock").drain().collect();
    let mut body = Some(body);
    for (_, tx) in drained {
        let _ = tx.send(Outcome::InitError(body.take().unwrap_or_default()));
    }
    accepted()
}

/// Serves a worker's Runtime API on `listener` until the task is dropped: HTTP/1.1 with
/// pipelined responses flushed together (hyper's `pipeline_flush`), which `axum::serve`
/// does not offer.
pub async fn serve<L>(mut listener: L, app: Router)
where
    L: axum::serve::Listener,
    L::Io: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    loop {
        let (io, _) = listener.accept().await;
        let service = hyper_util::service::TowerToHyperService::new(app.clone());
        tokio::spawn(async move {
            let _ = hyper::server::conn::http1::Builder::new()
                .pipeline_flush(true)
                .serve_connection(hyper_util::rt::TokioIo::new(io), service)
                .await;
        });
    }
}
