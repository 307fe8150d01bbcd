//! ferry's AWS provider.
//!
//! [`AwsProvider`] implements the engine's [`Provider`]: [`compile`] turns the neutral model
//! into AWS resources (pure), and `read`/`apply` talk to the AWS APIs through the aws-sdk-rust
//! crates, one resource at a time; the engine orders, parallelises, retries and records them.
//! There is no CloudFormation stack, and so no 500-resource cap. [`template`] writes the
//! equivalent CloudFormation template for people who deploy with CloudFormation or SAM, and
//! [`S3Backend`] keeps the state in S3 with a conditional-write lock.

#![deny(missing_docs)]

pub mod compile;
mod error;
mod ops;
pub mod state_s3;
pub mod template;

pub use error::Fail;
pub use state_s3::S3Backend;

use async_trait::async_trait;
use aws_config::{BehaviorVersion, SdkConfig};
use ferry_core::engine::{
    ApplyRequest, Artifacts, Attributes, Inputs, Provider, ProviderError, ReadRequest, Resource,
};
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Mutex;
use tokio::sync::OnceCell;

/// How to reach AWS.
#[derive(Debug, Clone, Default)]
pub struct AwsOptions {
    /// Region (else the manifest's, else the AWS chain's: `AWS_REGION`, the profile, IMDS).
    pub region: Option<String>,
    /// Let `remove` delete buckets that still hold objects (their objects first).
    pub force: bool,
}

/// The SDK clients, made once from one shared configuration.
pub struct Clients {
    /// Region in use.
    pub region: String,
    /// Lambda.
    pub lambda: aws_sdk_lambda::Client,
    /// IAM.
    pub iam: aws_sdk_iam::Client,
    /// API Gateway v2.
    pub apigw: aws_sdk_apigatewayv2::Client,
    /// SQS.
    pub sqs: aws_sdk_sqs::Client,
    /// EventBridge.
    pub events: aws_sdk_eventbridge::Client,
    /// S3 (path-style addressing when an endpoint is overridden).
    pub s3: aws_sdk_s3::Client,
    /// SNS.
    pub sns: aws_sdk_sns::Client,
    /// DynamoDB.
    pub dynamodb: aws_sdk_dynamodb::Client,
    /// Secrets Manager.
    pub secrets: aws_sdk_secretsmanager::Client,
    /// STS.
    pub sts: aws_sdk_sts::Client,
    account: OnceCell<String>,
}

/// True when the endpoint of S3 (or of every service) is overridden, as for moto or LocalStack.
fn endpoint_overridden() -> bool {
    ["AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3"]
        .iter()
        .any(|k| std::env::var(k).is_ok_and(|v| !v.is_empty()))
}

/// The shared SDK configuration: the standard credential chain (environment, profile, SSO,
/// IMDS), and `AWS_ENDPOINT_URL` / `AWS_ENDPOINT_URL_<SERVICE>` as the SDK reads them.
pub async fn sdk_config(region: Option<String>) -> SdkConfig {
    let mut loader = aws_config::defaults(BehaviorVersion::latest());
    if let Some(r) = region {
        loader = loader.region(aws_config::Region::new(r));
    }
    loader.load().await
}

impl Clients {
    /// Clients for a configuration.
    pub fn new(conf: &SdkConfig) -> Self {
        let s3 = aws_sdk_s3::config::Builder::from(conf)
            .force_path_style(endpoint_overridden())
            .build();
        Clients {
            region: conf
                .region()
                .map(|r| r.to_string())
                .unwrap_or_else(|| "us-east-1".into()),
            lambda: aws_sdk_lambda::Client::new(conf),
            iam: aws_sdk_iam::Client::new(conf),
            apigw: aws_sdk_apigatewayv2::Client::new(conf),
            sqs: aws_sdk_sqs::Client::new(conf),
            events: aws_sdk_eventbridge::Client::new(conf),
            s3: aws_sdk_s3::Client::from_conf(s3),
            sns: aws_sdk_sns::Client::new(conf),
            dynamodb: aws_sdk_dynamodb::Client::new(conf),
            secrets: aws_sdk_secretsmanager::Client::new(conf),
            sts: aws_sdk_sts::Client::new(conf),
            account: OnceCell::new(),
        }
    }

    /// The ARN partition of the region (`aws`, `aws-cn`, `aws-us-gov`).
    pub fn partition(&self) -> &'static str {
        if self.region.starts_with("cn-") {
            "aws-cn"
        } else if self.region.starts_with("us-gov-") {
            "aws-us-gov"
        } else {
            "aws"
        }
    }

    /// The account id of the credentials in use (asked of STS once).
    pub async fn account(&self) -> Result<String, Fail> {
        self.account
            .get_or_try_init(|| async {
                let id = self.sts.get_caller_identity().send().await?;
                Ok::<_, Fail>(id.account().unwrap_or_default().to_owned())
            })
            .await
            .cloned()
    }
}

/// The AWS provider.
pub struct AwsProvider {
    options: AwsOptions,
    clients: OnceCell<Clients>,
    /// Package paths by `codeSha256`, learnt at compile time, read when code is uploaded.
    packages: Mutex<BTreeMap<String, PathBuf>>,
    /// `provider.aws.deploymentBucket`: where packages are uploaded (else they go inline).
    deployment_bucket: Mutex<Option<String>>,
    /// Live state listed in bulk for a refresh; dropped at the first apply.
    snapshot: Mutex<Option<std::sync::Arc<ops::Snapshot>>>,
}

impl AwsProvider {
    /// A provider; nothing is contacted until the first read or apply.
    pub fn new(options: AwsOptions) -> Self {
        AwsProvider {
            options,
            clients: OnceCell::new(),
            packages: Mutex::new(BTreeMap::new()),
            snapshot: Mutex::new(None),
            deployment_bucket: Mutex::new(None),
        }
    }

    fn deployment_bucket(&self) -> Option<String> {
        self.deployment_bucket
            .lock()
            .expect("deployment bucket lock")
            .clone()
    }

    fn snapshot(&self) -> Option<std::sync::Arc<ops::Snapshot>> {
        self.snapshot.lock().expect("snapshot lock").clone()
    }

    /// The clients, made on first use.
    pub async fn clients(&self) -> &Clients {
        self.clients
            .get_or_init(|| async { Clients::new(&sdk_config(self.options.region.clone()).await) })
            .await
    }

    fn package_path(&self, code_sha256: &str) -> Option<PathBuf> {
        self.packages
            .lock()
            .expect("packages lock")
            .get(code_sha256)
            .cloned()
    }
}

#[async_trait]
impl Provider for AwsProvider {
    fn name(&self) -> &str {
        "aws"
    }

    fn compile(&self, inputs: &Inputs<'_>) -> Result<Vec<Resource>, ProviderError> {
        let resources = compile::compile(inputs.service, inputs.artifacts, inputs.secrets)
            .map_err(ProviderError::fatal)?;
        let bucket = match inputs
            .service
            .settings
            .get("aws")
            .and_then(|a| a.get("deploymentBucket"))
        {
            None => None,
            Some(serde_json::Value::String(b)) if !b.is_empty() => Some(b.clone()),
            Some(other) => {
                return Err(ProviderError::fatal(format!(
                    "provider.aws.deploymentBucket must be a bucket name, not {other}"
                )))
            }
        };
        *self
            .deployment_bucket
            .lock()
            .expect("deployment bucket lock") = bucket;
        remember_packages(&self.packages, inputs.artifacts);
        Ok(resources)
    }

    async fn read(&self, request: &ReadRequest<'_>) -> Result<Option<Attributes>, ProviderError> {
        ops::read(self, request)
            .await
            .map_err(|e| e.context(&format!("reading {}", request.address)))
    }

    async fn prefetch(&self, reads: &[ReadRequest<'_>]) {
        let c = self.clients().await;
        let list: Vec<(&str, &Attributes)> = reads.iter().map(|r| (r.kind, r.recorded)).collect();
        let snap = ops::prefetch(c, &list).await;
        *self.snapshot.lock().expect("snapshot lock") = Some(std::sync::Arc::new(snap));
    }

    async fn apply(&self, request: &ApplyRequest<'_>) -> Result<Attributes, ProviderError> {
        // Whatever was listed for the plan is out of date once anything changes.
        self.snapshot.lock().expect("snapshot lock").take();
        ops::apply(self, request).await.map_err(|e| {
            e.context(&format!("{:?} {}", request.operation, request.address).to_lowercase())
        })
    }

    async fn check_deletes(&self, deletes: &[ReadRequest<'_>]) -> Result<(), ProviderError> {
        if self.options.force {
            return Ok(());
        }
        let c = self.clients().await;
        let mut full = Vec::new();
        for d in deletes.iter().filter(|d| d.kind == compile::kinds::BUCKET) {
            if let Some(name) = d.recorded.get("name").and_then(|v| v.as_str()) {
                if ops::bucket_has_objects(c, name)
                    .await
                    .map_err(|e| e.context(&format!("checking bucket {name}")))?
                {
                    full.push(name.to_owned());
                }
            }
        }
        if full.is_empty() {
            return Ok(());
        }
        Err(ProviderError::fatal(format!(
            "nothing was deleted: bucket{} {} still hold{} objects; empty {}, or run `ferry remove --force` to delete the objects too",
            if full.len() == 1 { "" } else { "s" },
            full.join(", "),
            if full.len() == 1 { "s" } else { "" },
            if full.len() == 1 { "it" } else { "them" },
        )))
    }
}

fn remember_packages(packages: &Mutex<BTreeMap<String, PathBuf>>, artifacts: &Artifacts) {
    let mut map = packages.lock().expect("packages lock");
    for a in artifacts.functions.values() {
        if let Ok(sha) = compile::code_sha256(&a.sha256) {
            map.insert(sha, a.path.clone());
        }
    }
}

/// The result of [`invoke`].
#[derive(Debug, Clone)]
pub struct Invoked {
    /// What the function returned (or its error document).
    pub payload: Vec<u8>,
    /// `Unhandled` or `Handled` when the function failed.
    pub function_error: Option<String>,
}

/// Invokes a deployed function synchronously (`RequestResponse`).
pub async fn invoke(
    region: Option<String>,
    function: &str,
    payload: Vec<u8>,
) -> Result<Invoked, Fail> {
    let conf = sdk_config(region).await;
    let r = aws_sdk_lambda::Client::new(&conf)
        .invoke()
        .function_name(function)
        .payload(aws_smithy_types::Blob::new(payload))
        .send()
        .await?;
    Ok(Invoked {
        payload: r.payload().map(|b| b.as_ref().to_vec()).unwrap_or_default(),
        function_error: r.function_error().map(str::to_owned),
    })
}
