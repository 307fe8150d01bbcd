//! The neutral service model: what every provider compiles and what `ferry print` shows.
//!
//! Both manifest dialects (ferry's own and the Serverless Framework v3's) lower into this one
//! shape. It is deterministic (ordered maps, normalised triggers) and versioned, so plans diff
//! the model rather than the YAML that produced it.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fmt;

/// Version of the model's JSON form (`ferry print --format json`).
pub const MODEL_VERSION: u32 = 1;

/// A whole service, resolved for one stage.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Service {
    /// Version of this document's shape.
    pub model_version: u32,
    /// Service name.
    pub service: String,
    /// Effective stage.
    pub stage: String,
    /// The provider chosen by `--provider` or `provider.name`, if any.
    pub provider: Option<ProviderName>,
    /// Region (or location) when set.
    pub region: Option<String>,
    /// Which dialect the manifest was written in.
    pub dialect: Dialect,
    /// Tags (labels) applied to every resource.
    pub tags: BTreeMap<String, String>,
    /// Provider-specific settings blocks, opaque to the core and typed by each provider crate.
    pub settings: BTreeMap<String, serde_json::Value>,
    /// Third-party services (queues, buckets, tables, topics, secrets), by name.
    pub services: BTreeMap<String, Resource>,
    /// Functions, by name.
    pub functions: BTreeMap<String, Function>,
    /// AWS-only pass-through: raw CloudFormation (`resources:` of a Serverless Framework file).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cloudformation: Option<serde_json::Value>,
    /// AWS-only pass-through: IAM statements shared by every function's role.
    #[serde(skip_serializing_if = "Vec::is_empty", default)]
    pub iam_statements: Vec<serde_json::Value>,
}

/// The manifest dialect.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum Dialect {
    /// ferry's own dialect.
    Ferry,
    /// A Serverless Framework v3 `serverless.yml`.
    ServerlessV3,
}

/// A deployment target.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, JsonSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum ProviderName {
    /// Amazon Web Services: Lambda and friends.
    Aws,
    /// Microsoft Azure: Function Apps.
    Azure,
    /// Google Cloud: Cloud Functions v2 and Cloud Run.
    #[serde(alias = "google")]
    Gcp,
    /// The bundled local runtime (`ferry dev`).
    Local,
}

impl ProviderName {
    /// Every provider.
    pub const ALL: [ProviderName; 4] = [
        ProviderName::Aws,
        ProviderName::Azure,
        ProviderName::Gcp,
        ProviderName::Local,
    ];

    /// The name as written in manifests and on the command line.
    pub fn as_str(self) -> &'static str {
        match self {
            ProviderName::Aws => "aws",
            ProviderName::Azure => "azure",
            ProviderName::Gcp => "gcp",
            ProviderName::Local => "local",
        }
    }
}

impl fmt::Display for ProviderName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for ProviderName {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        Ok(match s {
            "aws" => ProviderName::Aws,
            "azure" => ProviderName::Azure,
            "gcp" | "google" => ProviderName::Gcp,
            "local" => ProviderName::Local,
            _ => {
                return Err(format!(
                    "unknown provider `{s}` (expected aws, azure, gcp or local)"
                ))
            }
        })
    }
}

/// A function runtime.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Runtime {
    /// Node.js, by major version.
    Node(u32),
    /// Python 3, by minor version.
    Python(u32),
    /// A Rust binary speaking the Lambda Runtime API, built by ferry.
    Rust,
    /// A prebuilt `bootstrap` binary speaking the Lambda Runtime API.
    Provided,
    /// A runtime ferry does not build (java, go, ruby, dotnet, ...), kept by its AWS name; such
    /// functions deploy from a prebuilt `package.artifact`.
    Other(String),
}

/// The runtimes the ferry dialect accepts.
pub const RUNTIMES: &[&str] = &[
    "nodejs20",
    "nodejs22",
    "nodejs24",
    "python3.11",
    "python3.12",
    "python3.13",
    "rust",
    "provided",
];

impl Runtime {
    /// The canonical name (`nodejs22`, `python3.12`, `rust`, `provided`, or the foreign name).
    pub fn name(&self) -> String {
        match self {
            Runtime::Node(v) => format!("nodejs{v}"),
            Runtime::Python(v) => format!("python3.{v}"),
            Runtime::Rust => "rust".into(),
            Runtime::Provided => "provided".into(),
            Runtime::Other(s) => s.clone(),
        }
    }

    /// Parses a ferry runtime name, also accepting AWS's spelling (`nodejs22.x`, `provided.al2023`).
    pub fn parse(s: &str) -> Option<Runtime> {
        let s = s.trim();
        if let Some(v) = s.strip_prefix("nodejs") {
            let v = v.strip_suffix(".x").unwrap_or(v);
            return v.parse().ok().map(Runtime::Node);
        }
        if let Some(v) = s.strip_prefix("python3.") {
            return v.parse().ok().map(Runtime::Python);
        }
        match s {
            "rust" => Some(Runtime::Rust),
            "provided" | "provided.al2" | "provided.al2023" => Some(Runtime::Provided),
            _ => None,
        }
    }

    /// True for runtimes whose sources ferry packages itself.
    pub fn is_built_by_ferry(&self) -> bool {
        !matches!(self, Runtime::Other(_))
    }
}

impl fmt::Display for Runtime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.name())
    }
}

impl Serialize for Runtime {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.name())
    }
}

impl<'de> Deserialize<'de> for Runtime {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Ok(Runtime::parse(&s).unwrap_or(Runtime::Other(s)))
    }
}

/// CPU architecture.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Serialize,
    Deserialize,
    JsonSchema,
    Default,
    PartialOrd,
    Ord,
    Hash,
)]
#[serde(rename_all = "snake_case")]
pub enum Architecture {
    /// x86-64.
    #[default]
    X86_64,
    /// 64-bit ARM (Graviton on AWS).
    Arm64,
}

/// One function.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Function {
    /// node/python: `file.export`; rust: the cargo binary name; provided: the executable.
    pub handler: String,
    /// Runtime.
    pub runtime: Runtime,
    /// Memory in MB.
    pub memory: u32,
    /// Timeout in seconds.
    pub timeout: u32,
    /// CPU architecture.
    pub architecture: Architecture,
    /// Description.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Environment variables: provider defaults merged with the function's own.
    pub environment: BTreeMap<String, EnvValue>,
    /// Services this function may use: least-privilege grants and injected variables.
    pub uses: Vec<String>,
    /// What starts the function.
    pub triggers: Vec<Trigger>,
    /// What goes into the function's package.
    pub package: PackageSpec,
    /// Tags on the function (on top of the service's).
    pub tags: BTreeMap<String, String>,
}

/// An environment variable's value: text, or (AWS only) a CloudFormation expression.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum EnvValue {
    /// Plain text.
    Text(String),
    /// A CloudFormation intrinsic such as `{"Ref": "Bucket"}`, resolved at deploy time.
    Expr(serde_json::Value),
}

/// Which files form a function's package.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PackageSpec {
    /// Globs to include (empty: everything under the service folder).
    pub include: Vec<String>,
    /// Globs to leave out.
    pub exclude: Vec<String>,
    /// Serverless Framework `patterns`, in order: everything (less the default excludes) is
    /// in, `!glob` takes files out and `glob` puts them back; the last match wins.
    #[serde(skip_serializing_if = "Vec::is_empty", default)]
    pub patterns: Vec<String>,
    /// A prebuilt zip to deploy as it is.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub artifact: Option<String>,
}

/// What starts a function.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", tag = "type")]
pub enum Trigger {
    /// An HTTP route.
    Http(HttpTrigger),
    /// Messages on a queue service.
    #[serde(rename_all = "camelCase")]
    Queue {
        /// The queue service's name.
        queue: String,
        /// Messages per invocation.
        batch_size: u32,
        /// Seconds to wait to fill a batch.
        #[serde(skip_serializing_if = "Option::is_none")]
        batch_window: Option<u32>,
    },
    /// A timer.
    Schedule {
        /// The expression as written: `rate(5 minutes)` or `cron(0 12 * * ? *)`.
        expression: String,
        /// Whether it fires.
        enabled: bool,
        /// A constant event to send instead of the provider's schedule event.
        #[serde(skip_serializing_if = "Option::is_none")]
        input: Option<serde_json::Value>,
    },
    /// Changes to objects in a bucket service.
    Storage {
        /// The bucket service's name.
        bucket: String,
        /// `created` and/or `removed`.
        events: Vec<StorageEvent>,
        /// Only keys starting with this.
        #[serde(skip_serializing_if = "Option::is_none")]
        prefix: Option<String>,
        /// Only keys ending with this.
        #[serde(skip_serializing_if = "Option::is_none")]
        suffix: Option<String>,
    },
    /// Messages published to a topic service.
    #[serde(rename_all = "camelCase")]
    Topic {
        /// The topic service's name.
        topic: String,
        /// A subscription filter (SNS filter policy shape).
        #[serde(skip_serializing_if = "Option::is_none")]
        filter: Option<serde_json::Value>,
    },
}

impl Trigger {
    /// The trigger's kind as a word.
    pub fn kind(&self) -> &'static str {
        match self {
            Trigger::Http(_) => "http",
            Trigger::Queue { .. } => "queue",
            Trigger::Schedule { .. } => "schedule",
            Trigger::Storage { .. } => "storage",
            Trigger::Topic { .. } => "topic",
        }
    }
}

/// An HTTP route.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HttpTrigger {
    /// Upper-case method, or `ANY`.
    pub method: String,
    /// Path starting with `/`, with `{param}` and a final `{proxy+}` allowed.
    pub path: String,
    /// Whether the gateway answers CORS preflight requests.
    pub cors: bool,
    /// The event shape: API Gateway HTTP API payload 2.0, or 1.0 for SF `http` events.
    pub payload: PayloadVersion,
}

/// API Gateway event shape.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum PayloadVersion {
    /// REST API / payload 1.0.
    #[serde(rename = "1.0")]
    V1,
    /// HTTP API payload 2.0.
    #[serde(rename = "2.0")]
    V2,
    /// REST API non-proxy `lambda` integration (Serverless Framework `integration: lambda`):
    /// the event is the framework's default request template (`body`, `method`, `headers`,
    /// `query`, `path`, ...) and the function's result is the response body.
    #[serde(rename = "lambda")]
    Lambda,
}

/// A storage event kind.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, JsonSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum StorageEvent {
    /// An object was written.
    Created,
    /// An object was deleted.
    Removed,
}

/// A third-party service the functions use.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Resource {
    /// What it is, with its settings.
    #[serde(flatten)]
    pub kind: ResourceKind,
    /// Set when the service already exists and ferry only refers to it (an ARN, a
    /// CloudFormation reference); ferry then neither creates nor deletes it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub external: Option<serde_json::Value>,
}

/// The kinds of third-party service, with their settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", tag = "type")]
pub enum ResourceKind {
    /// A message queue.
    #[serde(rename_all = "camelCase")]
    Queue {
        /// Seconds a received message stays invisible.
        visibility_timeout: u32,
        /// Receives before a message moves to the dead-letter queue.
        #[serde(skip_serializing_if = "Option::is_none")]
        max_receives: Option<u32>,
        /// First-in-first-out ordering.
        fifo: bool,
    },
    /// An object store bucket.
    Bucket {
        /// Keep old versions of objects.
        versioning: bool,
    },
    /// A key-value table.
    Table {
        /// Partition key attribute.
        partition: String,
        /// Sort key attribute.
        #[serde(skip_serializing_if = "Option::is_none")]
        sort: Option<String>,
    },
    /// A publish/subscribe topic.
    Topic {
        /// First-in-first-out ordering.
        fifo: bool,
    },
    /// A secret value: never printed, never written in plain text.
    Secret {
        /// Description shown in the provider's console.
        #[serde(skip_serializing_if = "Option::is_none")]
        description: Option<String>,
    },
}

impl ResourceKind {
    /// The kind as a word (`queue`, `bucket`, ...).
    pub fn name(&self) -> &'static str {
        match self {
            ResourceKind::Queue { .. } => "queue",
            ResourceKind::Bucket { .. } => "bucket",
            ResourceKind::Table { .. } => "table",
            ResourceKind::Topic { .. } => "topic",
            ResourceKind::Secret { .. } => "secret",
        }
    }
}

/// A name as it appears in an environment variable: upper-case, other characters as `_`.
pub fn env_var_part(name: &str) -> String {
    name.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_uppercase()
            } else {
                '_'
            }
        })
        .collect()
}

/// The variable that holds a secret's value for deploys and `ferry dev`
/// (`db-password` → `FERRY_SECRET_DB_PASSWORD`).
pub fn secret_value_env(secret: &str) -> String {
    format!("FERRY_SECRET_{}", env_var_part(secret))
}

/// The environment variable ferry injects for a service a function uses, e.g.
/// `ORDERS_QUEUE_URL` for the queue `orders`.
pub fn injected_env_name(service: &str, kind: &ResourceKind) -> String {
    let base = env_var_part(service);
    let suffix = match kind {
        ResourceKind::Queue { .. } => "QUEUE_URL",
        ResourceKind::Bucket { .. } => "BUCKET_NAME",
        ResourceKind::Table { .. } => "TABLE_NAME",
        ResourceKind::Topic { .. } => "TOPIC_ARN",
        ResourceKind::Secret { .. } => "SECRET_ARN",
    };
    format!("{base}_{suffix}")
}

/// A function's environment on a provider other than AWS, in order: its own variables, then one
/// variable per service it `uses` ([`injected_env_name`]). A service the deploy makes is valued
/// by `ours(name, kind)`; an existing one (`external`) by the name or URL given as a string.
/// What cannot be carried over (CloudFormation expressions, existing services given as AWS
/// references) is pushed to `errors`, naming the function and `platform`.
pub fn portable_environment(
    service: &Service,
    function: &str,
    f: &Function,
    platform: &str,
    mut ours: impl FnMut(&str, &ResourceKind) -> String,
    errors: &mut Vec<String>,
) -> Vec<(String, String)> {
    let mut env = Vec::new();
    for (k, v) in &f.environment {
        match v {
            EnvValue::Text(t) => env.push((k.clone(), t.clone())),
            EnvValue::Expr(_) => errors.push(format!(
                "function `{function}`: `{k}` is a CloudFormation expression, which only AWS can resolve"
            )),
        }
    }
    for u in &f.uses {
        let Some(res) = service.services.get(u) else {
            continue;
        };
        let value = match &res.external {
            Some(serde_json::Value::String(s)) => s.clone(),
            Some(_) => {
                errors.push(format!(
                    "function `{function}` uses `{u}`, an existing service given as an AWS reference; on {platform} give its name or URL as a string"
                ));
                continue;
            }
            None => ours(u, &res.kind),
        };
        env.push((injected_env_name(u, &res.kind), value));
    }
    env
}
