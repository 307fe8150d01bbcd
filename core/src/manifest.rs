//! The ferry dialect of `serverless.yaml`, as typed structs. These types are the manifest's
//! JSON Schema (`ferry schema`) and are deserialized with unknown keys denied, so a typo is an
//! error that points at its line with a did-you-mean.

use crate::model::{Architecture, ProviderName, StorageEvent};
use indexmap::IndexMap;
use schemars::JsonSchema;
use serde::de::{self, Deserializer, MapAccess, Visitor};
use serde::Deserialize;
use std::collections::BTreeMap;
use std::fmt;
use std::marker::PhantomData;

/// A ferry manifest (`serverless.yaml`).
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
#[schemars(
    title = "ferry manifest",
    description = "A ferry service: functions, their triggers and the services they use. See docs/manifest.md."
)]
pub struct Manifest {
    /// Service name: letters, digits, `-` and `_`, starting with a letter.
    pub service: String,
    /// Provider defaults, shared by every function. `--provider`, `--stage` and `--region` win.
    #[serde(default)]
    pub provider: ProviderBlock,
    /// Values for `${param:name}`: the block of the current stage wins over `default`.
    #[serde(default)]
    pub params: BTreeMap<String, BTreeMap<String, serde_json::Value>>,
    /// Load `.env` and `.env.<stage>` next to the manifest into `${env:..}`.
    #[serde(default)]
    pub use_dotenv: bool,
    /// Free-form values to refer to with `${self:custom...}`.
    #[serde(default)]
    pub custom: Option<serde_json::Value>,
    /// Third-party services (queues, buckets, tables, topics, secrets), by name.
    #[serde(default)]
    pub services: IndexMap<String, ServiceDef>,
    /// Functions, by name.
    #[serde(default)]
    pub functions: IndexMap<String, FunctionDef>,
    /// Package settings shared by every function.
    #[serde(default)]
    pub package: Option<PackageDef>,
}

/// Defaults for every function, and one settings block per provider.
#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ProviderBlock {
    /// Default deployment target: `aws`, `azure`, `gcp` or `local`.
    pub name: Option<ProviderName>,
    /// Region (AWS), location (Azure) or region (Google Cloud).
    pub region: Option<String>,
    /// Default stage when `--stage` is not given (else `dev`).
    pub stage: Option<String>,
    /// Default runtime.
    #[schemars(with = "Option<RuntimeName>")]
    pub runtime: Option<String>,
    /// Default memory in MB.
    #[schemars(with = "Option<U32OrVariable>")]
    pub memory: Option<u32>,
    /// Default timeout in seconds.
    #[schemars(with = "Option<U32OrVariable>")]
    pub timeout: Option<u32>,
    /// Default CPU architecture.
    pub architecture: Option<Architecture>,
    /// Environment variables for every function.
    #[serde(default)]
    pub environment: BTreeMap<String, Scalar>,
    /// Tags (labels) for every resource.
    #[serde(default)]
    pub tags: BTreeMap<String, Scalar>,
    /// AWS settings; ignored by other providers.
    pub aws: Option<serde_json::Value>,
    /// Azure settings (`location`, `resourceGroup`, ...); ignored by other providers.
    pub azure: Option<serde_json::Value>,
    /// Google Cloud settings (`project`, ...); ignored by other providers.
    pub gcp: Option<serde_json::Value>,
    /// Local runtime settings; ignored by cloud providers.
    pub local: Option<serde_json::Value>,
}

/// The runtimes ferry builds.
#[derive(JsonSchema)]
#[allow(dead_code)]
#[schemars(rename_all = "lowercase")]
enum RuntimeName {
    #[schemars(rename = "nodejs20")]
    Nodejs20,
    #[schemars(rename = "nodejs22")]
    Nodejs22,
    #[schemars(rename = "nodejs24")]
    Nodejs24,
    #[schemars(rename = "python3.11")]
    Python311,
    #[schemars(rename = "python3.12")]
    Python312,
    #[schemars(rename = "python3.13")]
    Python313,
    Rust,
    Provided,
}

/// A scalar written where text is expected: numbers and booleans are taken as their text.
#[derive(Debug, Clone, PartialEq, JsonSchema)]
#[schemars(with = "ScalarSchema")]
pub struct Scalar(pub String);

#[derive(JsonSchema)]
#[serde(untagged)]
#[allow(dead_code)]
enum ScalarSchema {
    S(String),
    N(f64),
    B(bool),
}

impl<'de> Deserialize<'de> for Scalar {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        String::deserialize(d).map(Scalar)
    }
}

/// A third-party service.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ServiceDef {
    /// What kind of service.
    #[serde(rename = "type")]
    pub kind: ServiceType,
    /// queue: seconds a received message stays invisible (default 30).
    #[schemars(with = "Option<U32OrVariable>")]
    pub visibility_timeout: Option<u32>,
    /// queue: a dead-letter queue.
    pub dead_letter: Option<DeadLetter>,
    /// queue, topic: first-in-first-out ordering.
    pub fifo: Option<bool>,
    /// bucket: keep old versions of objects.
    pub versioning: Option<bool>,
    /// table: the key.
    pub key: Option<TableKey>,
    /// secret: a description for the provider's console.
    pub description: Option<String>,
}

/// Kinds of third-party service.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum ServiceType {
    /// A message queue (SQS, Storage Queue, Pub/Sub).
    Queue,
    /// An object store bucket (S3, Blob container, GCS).
    Bucket,
    /// A key-value table (DynamoDB, Storage Table, Firestore).
    Table,
    /// A publish/subscribe topic (SNS, Event Grid, Pub/Sub).
    Topic,
    /// A secret (Secrets Manager, Key Vault, Secret Manager).
    Secret,
}

impl ServiceType {
    /// The keys a service of this type may set besides `type`.
    pub fn allowed_keys(self) -> &'static [&'static str] {
        match self {
            ServiceType::Queue => &["visibilityTimeout", "deadLetter", "fifo"],
            ServiceType::Bucket => &["versioning"],
            ServiceType::Table => &["key"],
            ServiceType::Topic => &["fifo"],
            ServiceType::Secret => &["description"],
        }
    }
}

/// A dead-letter queue.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct DeadLetter {
    /// Receives before a message is moved to the dead-letter queue.
    #[schemars(with = "U32OrVariable")]
    pub max_receives: u32,
}

/// A table's key.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct TableKey {
    /// Partition (hash) key attribute.
    pub partition: String,
    /// Sort (range) key attribute.
    pub sort: Option<String>,
}

/// A function.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct FunctionDef {
    /// node/python: `path/file.export`; rust: the cargo binary name; provided: the executable.
    pub handler: String,
    /// Runtime (default: `provider.runtime`).
    #[schemars(with = "Option<RuntimeName>")]
    pub runtime: Option<String>,
    /// Memory in MB (default: `provider.memory`, else 256).
    #[schemars(with = "Option<U32OrVariable>")]
    pub memory: Option<u32>,
    /// Timeout in seconds (default: `provider.timeout`, else 10).
    #[schemars(with = "Option<U32OrVariable>")]
    pub timeout: Option<u32>,
    /// CPU architecture.
    pub architecture: Option<Architecture>,
    /// Description.
    pub description: Option<String>,
    /// Environment variables, on top of `provider.environment`.
    #[serde(default)]
    pub environment: BTreeMap<String, Scalar>,
    /// Services this function uses: least-privilege grants and injected variables such as
    /// `ORDERS_QUEUE_URL`.
    #[serde(default)]
    pub uses: Vec<String>,
    /// What starts the function.
    #[serde(default)]
    pub triggers: Vec<TriggerDef>,
    /// Which files go into the package.
    pub package: Option<PackageDef>,
    /// Tags for this function's resources.
    #[serde(default)]
    pub tags: BTreeMap<String, Scalar>,
}

/// Package globs.
#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct PackageDef {
    /// Globs of files to include, relative to the service folder.
    #[serde(default)]
    pub include: Vec<String>,
    /// Globs of files to leave out.
    #[serde(default)]
    pub exclude: Vec<String>,
    /// A prebuilt zip to deploy as it is.
    pub artifact: Option<String>,
}

/// One trigger: exactly one of `http`, `queue`, `schedule`, `storage` or `topic`.
#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct TriggerDef {
    /// An HTTP route: `GET /carts/{id}`, or `{ method, path, cors }`.
    #[serde(default, deserialize_with = "string_or_struct")]
    pub http: Option<HttpDef>,
    /// The name of a queue service.
    pub queue: Option<String>,
    /// queue: messages per invocation (default 10).
    #[schemars(with = "Option<U32OrVariable>")]
    pub batch_size: Option<u32>,
    /// queue: seconds to wait to fill a batch.
    #[schemars(with = "Option<U32OrVariable>")]
    pub batch_window: Option<u32>,
    /// `rate(5 minutes)`, `cron(0 12 * * ? *)` (AWS six-field), or `{ expression, enabled, input }`.
    #[serde(default, deserialize_with = "string_or_struct")]
    #[schemars(with = "Option<StringOr<ScheduleDef>>")]
    pub schedule: Option<ScheduleDef>,
    /// A bucket service's name, or `{ bucket, events, prefix, suffix }`.
    #[serde(default, deserialize_with = "string_or_struct")]
    #[schemars(with = "Option<StringOr<StorageDef>>")]
    pub storage: Option<StorageDef>,
    /// The name of a topic service.
    pub topic: Option<String>,
    /// topic: a subscription filter.
    pub filter: Option<serde_json::Value>,
}

impl TriggerDef {
    /// The trigger kinds set on this item.
    pub fn kinds(&self) -> Vec<&'static str> {
        let mut k = Vec::new();
        if self.http.is_some() {
            k.push("http");
        }
        if self.queue.is_some() {
            k.push("queue");
        }
        if self.schedule.is_some() {
            k.push("schedule");
        }
        if self.storage.is_some() {
            k.push("storage");
        }
        if self.topic.is_some() {
            k.push("topic");
        }
        k
    }
}

/// An HTTP route.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
#[schemars(with = "HttpSchema")]
pub struct HttpDef {
    /// Method (`GET`, `POST`, ... or `ANY`).
    #[serde(default = "any_method")]
    pub method: String,
    /// Path, starting with `/`.
    pub path: String,
    /// Answer CORS preflight requests.
    #[serde(default)]
    pub cors: bool,
}

fn any_method() -> String {
    "ANY".into()
}

#[derive(JsonSchema)]
#[serde(untagged)]
#[allow(dead_code)]
enum HttpSchema {
    Short(HttpShort),
    Long(HttpLong),
}

/// `METHOD /path`, or just `/path` for any method.
#[derive(JsonSchema)]
#[allow(dead_code)]
struct HttpShort(#[schemars(pattern(r"^(?:[A-Za-z]+\s+)?/\S*$"))] String);

#[derive(JsonSchema)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)]
struct HttpLong {
    method: Option<String>,
    path: String,
    cors: Option<bool>,
}

impl std::str::FromStr for HttpDef {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let s = s.trim();
        let (method, path) = match s.split_once(char::is_whitespace) {
            Some((m, p)) => (m.to_owned(), p.trim().to_owned()),
            None => ("ANY".to_owned(), s.to_owned()),
        };
        Ok(HttpDef {
            method,
            path,
            cors: false,
        })
    }
}

/// A schedule.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ScheduleDef {
    /// `rate(...)` or `cron(...)`.
    pub expression: String,
    /// Whether it fires (default true).
    #[serde(default = "yes")]
    pub enabled: bool,
    /// A constant event to deliver.
    pub input: Option<serde_json::Value>,
}

fn yes() -> bool {
    true
}

impl std::str::FromStr for ScheduleDef {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        Ok(ScheduleDef {
            expression: s.to_owned(),
            enabled: true,
            input: None,
        })
    }
}

/// A storage trigger.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct StorageDef {
    /// The bucket service's name.
    pub bucket: String,
    /// Which events (default: `[created]`).
    #[serde(default)]
    pub events: Vec<StorageEvent>,
    /// Only keys starting with this.
    pub prefix: Option<String>,
    /// Only keys ending with this.
    pub suffix: Option<String>,
}

impl std::str::FromStr for StorageDef {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        Ok(StorageDef {
            bucket: s.to_owned(),
            events: vec![],
            prefix: None,
            suffix: None,
        })
    }
}

/// Schema of a number that may also be written as a variable (`${self:custom.memory}`): the
/// schema checks the manifest as written, before variables are resolved.
#[derive(JsonSchema)]
#[serde(untagged)]
#[allow(dead_code)]
enum U32OrVariable {
    Number(u32),
    Variable(Variable),
}

/// A `${...}` variable.
#[derive(JsonSchema)]
#[allow(dead_code)]
struct Variable(#[schemars(pattern(r"\$\{"))] String);

/// Schema of a value written as a short string or as the full mapping.
#[derive(JsonSchema)]
#[serde(untagged)]
#[allow(dead_code)]
enum StringOr<T> {
    Short(String),
    Full(T),
}

/// Deserializes `T` from a string through `FromStr`, or from a mapping.
fn string_or_struct<'de, T, D>(d: D) -> Result<Option<T>, D::Error>
where
    T: Deserialize<'de> + std::str::FromStr<Err = String>,
    D: Deserializer<'de>,
{
    struct V<T>(PhantomData<T>);
    impl<'de, T: Deserialize<'de> + std::str::FromStr<Err = String>> Visitor<'de> for V<T> {
        type Value = Option<T>;
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a string or a mapping")
        }
        fn visit_str<E: de::Error>(self, v: &str) -> Result<Option<T>, E> {
            v.parse().map(Some).map_err(E::custom)
        }
        fn visit_map<M: MapAccess<'de>>(self, m: M) -> Result<Option<T>, M::Error> {
            T::deserialize(de::value::MapAccessDeserializer::new(m)).map(Some)
        }
        fn visit_unit<E: de::Error>(self) -> Result<Option<T>, E> {
            Ok(None)
        }
    }
    d.deserialize_any(V(PhantomData))
}

/// The manifest's JSON Schema, as committed in `schema/serverless.schema.json`.
pub fn json_schema() -> serde_json::Value {
    let schema = schemars::schema_for!(Manifest);
    let mut v = serde_json::to_value(schema).expect("schema serializes");
    if let Some(o) = v.as_object_mut() {
        o.insert(
            "$id".into(),
            "https://ferry.dev/schema/serverless.schema.json".into(),
        );
    }
    v
}
