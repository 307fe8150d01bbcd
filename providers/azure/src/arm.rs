//! ARM over HTTP: azure_core's pipeline (retries with exponential backoff honouring
//! `Retry-After`, `retry-after-ms` and `x-ms-retry-after-ms` on 408/429/5xx) with a bearer
//! token from azure_identity's credentials, and long-running operations polled to the end.

use azure_core::credentials::{AccessToken, TokenCredential, TokenRequestOptions};
use azure_core::http::{
    ClientOptions, Context, Method, Pipeline, PipelineSendOptions, Request, Url,
};
use serde_json::Value;
use std::sync::Arc;
use std::time::Duration;

/// The scope of ARM (and of the SCM endpoints of function apps).
pub const ARM_SCOPE: &str = "https://management.azure.com/.default";

/// An error talking to Azure.
#[derive(Debug, Clone)]
pub struct ArmError {
    /// HTTP status, when there was a response.
    pub status: Option<u16>,
    /// What Azure said (its `error.code: error.message`), or what failed.
    pub message: String,
    /// Retrying cannot help (a request ferry refused to send).
    pub fatal: bool,
}

impl std::fmt::Display for ArmError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.status {
            Some(s) => write!(f, "HTTP {s}: {}", self.message),
            None => f.write_str(&self.message),
        }
    }
}

fn fail(message: impl Into<String>) -> ArmError {
    ArmError {
        status: None,
        message: message.into(),
        fatal: false,
    }
}

/// A response: status, a few headers, the body as JSON (Null when empty or not JSON).
#[derive(Debug, Clone)]
pub struct Reply {
    /// Status code.
    pub status: u16,
    /// `Azure-AsyncOperation`.
    pub async_operation: Option<String>,
    /// `Location`.
    pub location: Option<String>,
    /// `Retry-After` in seconds.
    pub retry_after: Option<u64>,
    /// The body.
    pub body: Value,
}

/// A token given as it is (`FERRY_AZURE_ACCESS_TOKEN`, e.g. from `az account get-access-token`).
#[derive(Debug)]
pub struct StaticToken(pub String);

#[async_trait::async_trait]
impl TokenCredential for StaticToken {
    async fn get_token(
        &self,
        _scopes: &[&str],
        _options: Option<TokenRequestOptions<'_>>,
    ) -> azure_core::Result<AccessToken> {
        Ok(AccessToken::new(
            self.0.clone(),
            azure_core::time::OffsetDateTime::now_utc() + azure_core::time::Duration::hours(1),
        ))
    }
}

/// The credential chain: `FERRY_AZURE_ACCESS_TOKEN`; a service principal from
/// `AZURE_TENANT_ID` + `AZURE_CLIENT_ID` + `AZURE_CLIENT_SECRET`; workload identity
/// (`AZURE_FEDERATED_TOKEN_FILE`); managed identity (`IDENTITY_ENDPOINT` or `MSI_ENDPOINT`, or
/// `AZURE_MANAGED_IDENTITY=1` on a VM); else the developer tools (Azure CLI, then azd).
pub fn credential() -> Result<Arc<dyn TokenCredential>, ArmError> {
    let var = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
    let wrap = |e: azure_core::Error| fail(format!("Azure credentials: {e}"));
    if let Some(t) = var("FERRY_AZURE_ACCESS_TOKEN") {
        return Ok(Arc::new(StaticToken(t)));
    }
    if let (Some(tenant), Some(client), Some(secret)) = (
        var("AZURE_TENANT_ID"),
        var("AZURE_CLIENT_ID"),
        var("AZURE_CLIENT_SECRET"),
    ) {
        return Ok(azure_identity::ClientSecretCredential::new(
            &tenant,
            client,
            secret.into(),
            None,
        )
        .map_err(wrap)?);
    }
    if var("AZURE_FEDERATED_TOKEN_FILE").is_some() {
        return Ok(azure_identity::WorkloadIdentityCredential::new(None).map_err(wrap)?);
    }
    if var("IDENTITY_ENDPOINT").is_some()
        || var("MSI_ENDPOINT").is_some()
        || var("AZURE_MANAGED_IDENTITY").is_some()
    {
        return Ok(azure_identity::ManagedIdentityCredential::new(None).map_err(wrap)?);
    }
    Ok(azure_identity::DeveloperToolsCredential::new(None).map_err(wrap)?)
}

/// A client for ARM (or an endpoint standing in for it).
#[derive(Debug, Clone)]
pub struct Arm {
    pipeline: Pipeline,
    credential: Arc<dyn TokenCredential>,
    /// ARM's base URL (`https://management.azure.com`).
    pub base: Url,
    /// Seconds between polls when the service does not say.
    pub poll_interval: Duration,
}

/// True for `https`, or for `http` on a loopback address (a test double).
pub fn allowed(url: &Url) -> bool {
    url.scheme() == "https"
        || (url.scheme() == "http"
            && matches!(url.host_str(), Some("127.0.0.1" | "localhost" | "[::1]")))
}

impl Arm {
    /// A client for `base` with `credential`.
    pub fn new(base: Url, credential: Arc<dyn TokenCredential>) -> Result<Self, ArmError> {
        if !allowed(&base) {
            return Err(fail(format!(
                "{base} is neither https nor a loopback address; ferry sends bearer tokens only over TLS"
            )));
        }
        let pipeline = Pipeline::new(
            Some("ferry"),
            Some(env!("CARGO_PKG_VERSION")),
            ClientOptions::default(),
            Vec::new(),
            Vec::new(),
            None,
        );
        Ok(Arm {
            pipeline,
            credential,
            base,
            poll_interval: Duration::from_secs(5),
        })
    }

    /// A URL under ARM's base: `path` (starting with `/`) and `api-version`.
    pub fn url(&self, path: &str, api: &str) -> Result<Url, ArmError> {
        let mut u = self
            .base
            .join(path.trim_start_matches('/'))
            .map_err(|e| fail(format!("{path}: {e}")))?;
        u.query_pairs_mut().append_pair("api-version", api);
        Ok(u)
    }

    /// Sends one request (retried by the pipeline on throttling and server errors).
    pub async fn send(
        &self,
        method: Method,
        url: Url,
        body: Option<(Vec<u8>, &str)>,
    ) -> Result<Reply, ArmError> {
        if !allowed(&url) {
            return Err(ArmError {
                fatal: true,
                ..fail(format!("{url}: not https"))
            });
        }
        let token = self
            .credential
            .get_token(&[ARM_SCOPE], None)
            .await
            .map_err(|e| fail(format!("getting an Azure token: {e}")))?;
        let mut req = Request::new(url.clone(), method);
        req.insert_header("authorization", format!("Bearer {}", token.token.secret()));
        req.insert_header("accept", "application/json");
        if let Some((bytes, content_type)) = body {
            req.insert_header("content-type", content_type.to_owned());
            req.set_body(bytes);
        }
        let ctx = Context::new();
        let resp = self
            .pipeline
            .send(
                &ctx,
                &mut req,
                Some(PipelineSendOptions {
                    skip_checks: true,
                    ..Default::default()
                }),
            )
            .await
            .map_err(|e| fail(format!("{method} {}: {e}", url.path())))?;
        let status = u16::from(resp.status());
        let header = |n: &'static str| resp.headers().get_optional_string(&n.into());
        let reply = Reply {
            status,
            async_operation: header("azure-asyncoperation"),
            location: header("location"),
            retry_after: header("retry-after").and_then(|v| v.trim().parse().ok()),
            body: serde_json::from_slice(resp.body().as_ref()).unwrap_or(Value::Null),
        };
        if status >= 400 && status != 404 {
            let err = &reply.body["error"];
            let message = match (err["code"].as_str(), err["message"].as_str()) {
                (Some(c), Some(m)) => format!("{c}: {m}"),
                _ => reply.body.to_string(),
            };
            return Err(ArmError {
                status: Some(status),
                message: format!("{method} {}: {message}", url.path()),
                fatal: false,
            });
        }
        Ok(reply)
    }

    /// Waits for a long-running operation started by `first` to finish.
    pub async fn wait(&self, first: &Reply) -> Result<(), ArmError> {
        let mut delay = first.retry_after.map(Duration::from_secs);
        if let Some(op) = &first.async_operation {
            let url = Url::parse(op).map_err(|e| fail(format!("{op}: {e}")))?;
            loop {
                tokio::time::sleep(delay.unwrap_or(self.poll_interval)).await;
                let r = self.send(Method::Get, url.clone(), None).await?;
                match r.body["status"].as_str() {
                    Some("Succeeded") => return Ok(()),
                    Some(s @ ("Failed" | "Canceled")) => {
                        return Err(ArmError {
                            status: None,
                            message: format!(
                                "operation {s}: {}",
                                r.body["error"]["message"].as_str().unwrap_or("no details")
                            ),
                            fatal: false,
                        })
                    }
                    _ => delay = r.retry_after.map(Duration::from_secs),
                }
            }
        }
        if let (202, Some(loc)) = (first.status, &first.location) {
            let url = Url::parse(loc).map_err(|e| fail(format!("{loc}: {e}")))?;
            loop {
                tokio::time::sleep(delay.unwrap_or(self.poll_interval)).await;
                let r = self.send(Method::Get, url.clone(), None).await?;
                if r.status != 202 {
                    return Ok(());
                }
                delay = r.retry_after.map(Duration::from_secs);
            }
        }
        Ok(())
    }
}
