//! Google's REST APIs as ferry calls them: JSON bodies, a bearer token from Application Default
//! Credentials, retries on throttling and server errors (honouring `Retry-After`), and
//! long-running operations polled until done.
//!
//! `FERRY_GCP_ENDPOINT` sends every API to one base instead (`<base>/<api>/<version>/...`,
//! e.g. `http://127.0.0.1:9000/pubsub/v1/projects/...`) and `FERRY_GCP_STORAGE_ENDPOINT`
//! Cloud Storage to another (`<base>/storage/v1/...`, `<base>/upload/storage/v1/...`), for
//! tests against a fake control plane and a storage emulator. `FERRY_GCP_ACCESS_TOKEN` (or
//! `GOOGLE_OAUTH_ACCESS_TOKEN`, as gcloud and Terraform read it) gives a token directly.

use google_cloud_auth::credentials::AccessTokenCredentials;
use serde_json::Value;
use std::time::Duration;

/// A Google API.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Api {
    /// Pub/Sub v1.
    PubSub,
    /// Cloud Functions v2.
    Functions,
    /// Cloud Run Admin v2.
    Run,
    /// Cloud Scheduler v1.
    Scheduler,
    /// Cloud Storage JSON v1.
    Storage,
    /// Cloud Storage uploads.
    StorageUpload,
    /// Eventarc v1.
    Eventarc,
    /// Secret Manager v1.
    Secrets,
    /// Firestore v1 (admin).
    Firestore,
    /// Resource Manager v3.
    Projects,
}

impl Api {
    /// Host and version path of the API.
    fn base(self) -> (&'static str, &'static str) {
        match self {
            Api::PubSub => ("pubsub", "v1"),
            Api::Functions => ("cloudfunctions", "v2"),
            Api::Run => ("run", "v2"),
            Api::Scheduler => ("cloudscheduler", "v1"),
            Api::Storage => ("storage", "storage/v1"),
            Api::StorageUpload => ("storage", "upload/storage/v1"),
            Api::Eventarc => ("eventarc", "v1"),
            Api::Secrets => ("secretmanager", "v1"),
            Api::Firestore => ("firestore", "v1"),
            Api::Projects => ("cloudresourcemanager", "v3"),
        }
    }
}

/// A failed call.
#[derive(Debug, Clone)]
pub struct ApiError {
    /// The HTTP status, when there was an answer.
    pub status: Option<u16>,
    /// Google's message (`error.message`), or what went wrong.
    pub message: String,
    /// Retrying cannot help (a request ferry refused to send).
    pub fatal: bool,
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.status {
            Some(s) => write!(f, "HTTP {s}: {}", self.message),
            None => f.write_str(&self.message),
        }
    }
}

impl ApiError {
    fn new(message: impl Into<String>) -> ApiError {
        ApiError {
            status: None,
            message: message.into(),
            fatal: false,
        }
    }
}

/// An answer: status and JSON body (`Null` when empty or not JSON).
#[derive(Debug, Clone)]
pub struct Response {
    /// HTTP status.
    pub status: u16,
    /// The body.
    pub body: Value,
}

enum Token {
    Fixed(String),
    Adc(AccessTokenCredentials),
}

/// The client.
pub struct Client {
    http: reqwest::Client,
    token: Token,
    endpoint: Option<String>,
    storage_endpoint: Option<String>,
    /// Pause between polls of a long-running operation.
    pub poll: Duration,
    /// Tries of a throttled or failed call before giving up.
    pub attempts: u32,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("endpoint", &self.endpoint)
            .field("storage_endpoint", &self.storage_endpoint)
            .finish_non_exhaustive()
    }
}

fn env(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|s| !s.is_empty())
}

impl Client {
    /// A client with credentials from the environment (see the module docs).
    pub fn from_env() -> Result<Client, String> {
        let token = match env("FERRY_GCP_ACCESS_TOKEN").or_else(|| env("GOOGLE_OAUTH_ACCESS_TOKEN"))
        {
            Some(t) => Token::Fixed(t),
            None => Token::Adc(
                google_cloud_auth::credentials::Builder::default()
                    .build_access_token_credentials()
                    .map_err(|e| {
                        format!("no Google Cloud credentials ({e}); run `gcloud auth application-default login`, set GOOGLE_APPLICATION_CREDENTIALS to a key file, or FERRY_GCP_ACCESS_TOKEN")
                    })?,
            ),
        };
        let trim = |s: String| s.trim_end_matches('/').to_owned();
        Ok(Client {
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(300))
                .build()
                .map_err(|e| e.to_string())?,
            token,
            endpoint: env("FERRY_GCP_ENDPOINT").map(trim),
            storage_endpoint: env("FERRY_GCP_STORAGE_ENDPOINT").map(trim),
            poll: Duration::from_millis(
                env("FERRY_GCP_POLL_MS")
                    .and_then(|s| s.parse().ok())
                    .unwrap_or(2000),
            ),
            attempts: 6,
        })
    }

    /// A client with a fixed token and `endpoint` for every API (unit tests).
    #[cfg(test)]
    pub(crate) fn for_tests(endpoint: &str) -> Client {
        Client {
            http: reqwest::Client::new(),
            token: Token::Fixed("test-token".into()),
            endpoint: Some(endpoint.to_owned()),
            storage_endpoint: Some(endpoint.to_owned()),
            poll: Duration::from_millis(1),
            attempts: 6,
        }
    }

    /// The URL of `path` (`projects/p/topics/t`) in `api`.
    pub fn url(&self, api: Api, path: &str) -> String {
        let (host, version) = api.base();
        let path = path.trim_start_matches('/');
        let base = match api {
            Api::Storage | Api::StorageUpload => self.storage_endpoint.clone(),
            _ => self.endpoint.as_ref().map(|e| format!("{e}/{host}")),
        };
        match base {
            Some(b) => format!("{b}/{version}/{path}"),
            None => format!("https://{host}.googleapis.com/{version}/{path}"),
        }
    }

    async fn bearer(&self) -> Result<String, ApiError> {
        match &self.token {
            Token::Fixed(t) => Ok(t.clone()),
            Token::Adc(c) => c
                .access_token()
                .await
                .map(|t| t.token)
                .map_err(|e| ApiError::new(format!("getting a Google Cloud access token: {e}"))),
        }
    }

    /// Sends a request, retrying 408, 429 and 5xx answers and connection errors with
    /// exponential backoff (or the answer's `Retry-After`). 404 is an answer, not an error;
    /// any other 4xx is an error with Google's message.
    pub async fn send(
        &self,
        method: reqwest::Method,
        url: &str,
        body: Option<(Vec<u8>, &str)>,
    ) -> Result<Response, ApiError> {
        let loopback = url.starts_with("http://127.0.0.1")
            || url.starts_with("http://localhost")
            || url.starts_with("http://[::1]");
        if !url.starts_with("https://") && !loopback {
            return Err(ApiError {
                fatal: true,
                ..ApiError::new(format!(
                    "{url} is not https; ferry sends credentials only over https or to loopback"
                ))
            });
        }
        let token = self.bearer().await?;
        let mut delay = Duration::from_millis(500);
        let mut last = ApiError::new("no attempt");
        for attempt in 0..self.attempts {
            if attempt > 0 {
                tokio::time::sleep(delay).await;
                delay = (delay * 2).min(Duration::from_secs(30));
            }
            let mut r = self.http.request(method.clone(), url).bearer_auth(&token);
            if let Some((bytes, ct)) = &body {
                r = r.header("content-type", *ct).body(bytes.clone());
            }
            let resp = match r.send().await {
                Ok(r) => r,
                Err(e) => {
                    last = ApiError::new(format!("{method} {url}: {e}"));
                    continue;
                }
            };
            let status = resp.status().as_u16();
            let retry_after = resp
                .headers()
                .get("retry-after")
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.parse::<u64>().ok());
            let bytes = resp.bytes().await.unwrap_or_default();
            let body: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
            if status < 400 || status == 404 {
                return Ok(Response { status, body });
            }
            let message = body
                .pointer("/error/message")
                .and_then(Value::as_str)
                .map(str::to_owned)
                .unwrap_or_else(|| String::from_utf8_lossy(&bytes).into_owned());
            last = ApiError {
                status: Some(status),
                message: format!("{method} {url}: {message}"),
                fatal: false,
            };
            if !matches!(status, 408 | 429 | 500..=599) {
                return Err(last);
            }
            if let Some(s) = retry_after {
                delay = Duration::from_secs(s.min(60));
            }
        }
        Err(last)
    }

    /// Sends JSON.
    pub async fn json(
        &self,
        method: reqwest::Method,
        url: &str,
        body: &Value,
    ) -> Result<Response, ApiError> {
        let bytes = serde_json::to_vec(body).expect("JSON");
        self.send(method, url, Some((bytes, "application/json")))
            .await
    }

    /// Waits for a long-running operation (`{"name": ..., "done": ...}`) of `api` to finish and
    /// returns its `response`; an operation that ends with `error` is an error.
    pub async fn wait(&self, api: Api, op: &Value) -> Result<Value, ApiError> {
        let mut op = op.clone();
        let name = op["name"].as_str().unwrap_or_default().to_owned();
        for _ in 0..1800 {
            if op["done"] == Value::Bool(true) {
                if let Some(e) = op.get("error") {
                    return Err(ApiError {
                        status: e["code"].as_u64().map(|c| c as u16),
                        message: format!(
                            "operation {name} failed: {}",
                            e["message"].as_str().unwrap_or("no message")
                        ),
                        fatal: false,
                    });
                }
                return Ok(op.get("response").cloned().unwrap_or(Value::Null));
            }
            if name.is_empty() {
                return Ok(op);
            }
            tokio::time::sleep(self.poll).await;
            op = self
                .send(reqwest::Method::GET, &self.url(api, &name), None)
                .await?
                .body;
        }
        Err(ApiError::new(format!("operation {name} did not finish")))
    }
}
