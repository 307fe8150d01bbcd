//! Every Google Cloud resource a service needs, described once as the REST resource name and
//! the request body its API takes. [`crate::deploy`] sends these bodies; the tests check each
//! one against Google's discovery documents (`Kind::schema`).
//!
//! What a service becomes (names start with `<service>-<stage>`):
//! - a node or python function: a Cloud Function (2nd gen) whose source is uploaded through
//!   `generateUploadUrl`; a rust or provided function: a Cloud Run service deployed from source
//!   on a base image (the prebuilt binary and ferry's adapter in a zip in a ferry bucket, no
//!   container build). Every function answers on its service's URL through ferry's adapter.
//! - a function's event triggers are delivered over HTTP to `<url>/_ferry/events/<trigger>`.
//!   When a function has http triggers (public: `allUsers` may invoke it) its events go to a
//!   second, private deployment `<name>-events` that only the deploy's service account may
//!   invoke, so nobody on the internet can post a fake queue message to it.
//! - a queue: a Pub/Sub topic; each queue trigger a push subscription (ack deadline from the
//!   visibility timeout, a dead-letter topic after `maxReceives`, with the grants Pub/Sub's
//!   service agent needs to move dead letters: publisher on that topic, subscriber on the
//!   subscription); a queue nobody consumes gets a pull subscription so its messages wait.
//! - a topic: a Pub/Sub topic; each topic trigger a push subscription.
//! - a schedule: a Cloud Scheduler job posting to the function (OIDC token of the account).
//! - a bucket: a Cloud Storage bucket (uniform access, public access prevented); a storage
//!   trigger one Eventarc trigger per event kind, to the function's Cloud Run service.
//! - a table: a Firestore database (native mode); a secret: a Secret Manager secret and a
//!   version holding the value (`FERRY_SECRET_<NAME>`), never in state or plans.
//!
//! Values known only after a resource exists (a function's URL, an uploaded object) are engine
//! references (`${ref:ADDRESS.OUTPUT}`, see [`outputs`]).

use ferry_core::engine::reference;
use ferry_core::model::{
    portable_environment, Function, ResourceKind, Runtime, Service, StorageEvent, Trigger,
};
use serde_json::{json, Map, Value};
use sha2::{Digest, Sha256};
use std::collections::{BTreeMap, BTreeSet};

/// The path under a function's URL where ferry delivers its event triggers.
pub const EVENTS_PATH: &str = "/_ferry/events/";

/// What a resource is: which API, which request body.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Kind {
    /// A Pub/Sub topic.
    Topic,
    /// A Pub/Sub subscription (push to a function, or pull).
    Subscription,
    /// A Cloud Function (2nd gen).
    Function,
    /// A Cloud Run service.
    RunService,
    /// Who may invoke a Cloud Run service (its IAM policy).
    Invoker,
    /// The IAM policy of a Pub/Sub topic or subscription (the Pub/Sub service agent's grants
    /// for dead-lettering, the functions' publisher role on a queue or topic they use).
    PubSubPolicy,
    /// The IAM policy of a secret (the functions' accessor role on a secret they use).
    SecretPolicy,
    /// One member of one role in a bucket's IAM policy (the functions' object role on a
    /// bucket they use), added to whatever else the policy holds.
    BucketGrant,
    /// A Cloud Scheduler job.
    Job,
    /// A Cloud Storage bucket.
    Bucket,
    /// An Eventarc trigger.
    Trigger,
    /// A Secret Manager secret.
    Secret,
    /// A version of a secret (its value).
    SecretVersion,
    /// A Firestore database.
    Database,
    /// A Cloud Function's source, uploaded through `generateUploadUrl`.
    FunctionSource,
    /// A Cloud Run service's source, uploaded to ferry's bucket.
    ObjectSource,
}

const KINDS: &[(Kind, &str)] = &[
    (Kind::Topic, "gcp:pubsub.topic"),
    (Kind::Subscription, "gcp:pubsub.subscription"),
    (Kind::Function, "gcp:cloudfunctions.function"),
    (Kind::RunService, "gcp:run.service"),
    (Kind::Invoker, "gcp:run.invoker"),
    (Kind::PubSubPolicy, "gcp:pubsub.policy"),
    (Kind::SecretPolicy, "gcp:secretmanager.policy"),
    (Kind::BucketGrant, "gcp:storage.grant"),
    (Kind::Job, "gcp:cloudscheduler.job"),
    (Kind::Bucket, "gcp:storage.bucket"),
    (Kind::Trigger, "gcp:eventarc.trigger"),
    (Kind::Secret, "gcp:secretmanager.secret"),
    (Kind::SecretVersion, "gcp:secretmanager.version"),
    (Kind::Database, "gcp:firestore.database"),
    (Kind::FunctionSource, "gcp:cloudfunctions.source"),
    (Kind::ObjectSource, "gcp:storage.source"),
];

impl Kind {
    /// The resource type in plans and state (`gcp:pubsub.topic`).
    pub fn type_name(self) -> &'static str {
        KINDS
            .iter()
            .find(|(k, _)| *k == self)
            .expect("every kind")
            .1
    }

    /// The kind of a type name.
    pub fn of(type_name: &str) -> Option<Kind> {
        KINDS.iter().find(|(_, n)| *n == type_name).map(|(k, _)| *k)
    }

    /// The discovery document (`run.v2`) and schema of the request body, for every kind whose
    /// body is JSON sent to a Google API.
    pub fn schema(self) -> Option<(&'static str, &'static str)> {
        Some(match self {
            Kind::Topic => ("pubsub.v1", "Topic"),
            Kind::Subscription => ("pubsub.v1", "Subscription"),
            Kind::Function => ("cloudfunctions.v2", "Function"),
            Kind::RunService => ("run.v2", "GoogleCloudRunV2Service"),
            Kind::Invoker => ("run.v2", "GoogleIamV1SetIamPolicyRequest"),
            Kind::PubSubPolicy => ("pubsub.v1", "SetIamPolicyRequest"),
            Kind::SecretPolicy => ("secretmanager.v1", "SetIamPolicyRequest"),
            Kind::Job => ("cloudscheduler.v1", "Job"),
            Kind::Bucket => ("storage.v1", "Bucket"),
            Kind::Trigger => ("eventarc.v1", "Trigger"),
            Kind::Secret => ("secretmanager.v1", "Secret"),
            Kind::SecretVersion => ("secretmanager.v1", "AddSecretVersionRequest"),
            Kind::Database => ("firestore.v1", "GoogleFirestoreAdminV1Database"),
            Kind::FunctionSource => ("cloudfunctions.v2", "GenerateUploadUrlRequest"),
            // Not sent as it is: the deploy adds the member to the bucket's own policy.
            Kind::ObjectSource | Kind::BucketGrant => return None,
        })
    }
}

/// What the deploy knows that the manifest does not.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Context {
    /// Project id.
    pub project: String,
    /// Project number (it names Google's service agents).
    pub project_number: String,
    /// Region (`europe-west1`).
    pub region: String,
    /// The service account functions run as and events are delivered with.
    pub service_account: String,
    /// A few hex characters that make bucket names (global) unique per project and stage.
    pub suffix: String,
    /// The base image Cloud Run services run on.
    pub base_image: String,
}

impl Context {
    /// A context with the suffix derived from project, service and stage.
    pub fn new(
        service: &Service,
        project: &str,
        project_number: &str,
        region: &str,
        service_account: &str,
        base_image: Option<&str>,
    ) -> Context {
        let h = Sha256::digest(format!("{project}/{}/{}", service.service, service.stage));
        Context {
            project: project.to_owned(),
            project_number: project_number.to_owned(),
            region: region.to_owned(),
            service_account: service_account.to_owned(),
            suffix: hex::encode(h)[..8].to_owned(),
            base_image: base_image.map(str::to_owned).unwrap_or_else(|| {
                format!("{region}-docker.pkg.dev/serverless-runtimes/google-24/runtimes/osonly24")
            }),
        }
    }
}

/// One resource.
#[derive(Debug, Clone, PartialEq)]
pub struct GcpResource {
    /// Its address in plans and state.
    pub address: String,
    /// What it is.
    pub kind: Kind,
    /// Its full REST name (`projects/p/topics/t`; a bucket's is the bucket name).
    pub name: String,
    /// The request body.
    pub body: Value,
    /// Addresses it must come after besides those its references name.
    pub depends: Vec<String>,
    /// The ferry function it belongs to.
    pub function: Option<String>,
}

/// A Cloud Function's or Cloud Run service's deployment of a ferry function.
#[derive(Debug, Clone, PartialEq)]
pub struct Deployment {
    /// The ferry function.
    pub function: String,
    /// Its address (`function.<name>` or `function.<name>.events`).
    pub address: String,
    /// Its id (the Cloud Function's and its Cloud Run service's name).
    pub id: String,
    /// Whether anyone may call it (it serves http triggers).
    pub public: bool,
    /// Cloud Function (node, python) or Cloud Run service (binaries).
    pub kind: Kind,
}

/// Outputs each kind records after apply, readable as `${ref:ADDRESS.OUTPUT}`, with where they
/// are in the API's answer (a JSON pointer).
pub fn outputs(kind: Kind) -> &'static [(&'static str, &'static str)] {
    match kind {
        Kind::Function => &[
            ("uri", "/serviceConfig/uri"),
            ("service", "/serviceConfig/service"),
        ],
        Kind::RunService => &[("uri", "/uri"), ("service", "/name")],
        Kind::SecretVersion => &[("version", "/name")],
        Kind::Bucket => &[("name", "/name")],
        Kind::FunctionSource | Kind::ObjectSource => &[
            ("bucket", "/bucket"),
            ("object", "/object"),
            ("generation", "/generation"),
        ],
        _ => &[],
    }
}

/// `s` as a Google resource id: lower-case letters, digits and `-`, starting with a letter, at
/// most `max` characters (a hash of the whole keeps long names distinct).
pub fn id(s: &str, max: usize) -> String {
    let mut out = ferry_core::names::lower_kebab(s);
    while out.contains("--") {
        out = out.replace("--", "-");
    }
    let mut out = out.trim_matches('-').to_owned();
    if !out.starts_with(|c: char| c.is_ascii_lowercase()) {
        out.insert_str(0, "f-");
    }
    ferry_core::names::fit(&out, max)
}

/// `<service>-<stage>`, the start of every name.
pub fn prefix(service: &Service) -> String {
    id(&format!("{}-{}", service.service, service.stage), 40)
}

/// The labels everything gets.
fn labels(service: &Service) -> Value {
    let v = |s: &str| id(s, 63);
    json!({"ferry-service": v(&service.service), "ferry-stage": v(&service.stage)})
}

/// Whether a function runs on Cloud Run (binaries) rather than Cloud Functions.
fn on_run(f: &Function) -> bool {
    matches!(f.runtime, Runtime::Rust | Runtime::Provided)
}

/// Trigger ids: `<kind><n>`, counted per kind (`queue0`, `schedule0`, `schedule1`).
pub fn trigger_ids(f: &Function) -> Vec<String> {
    let mut seen: BTreeMap<&str, usize> = BTreeMap::new();
    f.triggers
        .iter()
        .map(|t| {
            let n = seen.entry(t.kind()).or_default();
            let id = format!("{}{n}", t.kind());
            *n += 1;
            id
        })
        .collect()
}

/// The id of what a trigger becomes (`<service>-<stage>-<fn>-<trigger>`): its subscription,
/// Scheduler job or Eventarc trigger, and the rule its Scheduled Events name.
fn trigger_resource_id(service: &Service, function: &str, trigger: &str) -> String {
    id(&format!("{}-{function}-{trigger}", prefix(service)), 63)
}

/// The deployments of a function: the one serving http triggers (or a function without
/// triggers) and the private one for event triggers; one when it has only one kind.
pub fn deployments(service: &Service, name: &str, f: &Function) -> Vec<Deployment> {
    let has_http = f.triggers.iter().any(|t| matches!(t, Trigger::Http(_)));
    let has_events = f.triggers.iter().any(|t| !matches!(t, Trigger::Http(_)));
    let kind = if on_run(f) {
        Kind::RunService
    } else {
        Kind::Function
    };
    let base = id(&format!("{}-{name}", prefix(service)), 49);
    let mut out = Vec::new();
    if has_http || !has_events {
        out.push(Deployment {
            function: name.to_owned(),
            address: format!("function.{name}"),
            id: base.clone(),
            public: has_http,
            kind,
        });
    }
    if has_events {
        let (address, id) = if out.is_empty() {
            (format!("function.{name}"), base)
        } else {
            (format!("function.{name}.events"), format!("{base}-events"))
        };
        out.push(Deployment {
            function: name.to_owned(),
            address,
            id,
            public: false,
            kind,
        });
    }
    out
}

/// The deployment that receives a function's event triggers.
fn events_deployment(service: &Service, name: &str, f: &Function) -> Deployment {
    deployments(service, name, f)
        .pop()
        .expect("a function has a deployment")
}

/// The address of a function's source upload.
pub fn source_address(function: &str) -> String {
    format!("source.{function}")
}

/// The address of the bucket holding Cloud Run sources.
pub const SOURCES: &str = "sources";

/// The Cloud Functions runtime id (`nodejs22`, `python312`).
fn gcf_runtime(r: &Runtime) -> Option<String> {
    match r {
        Runtime::Node(v) => Some(format!("nodejs{v}")),
        Runtime::Python(v) => Some(format!("python3{v}")),
        _ => None,
    }
}

/// A pub/sub topic's full name.
fn topic_name(ctx: &Context, service: &Service, t: &str) -> String {
    format!(
        "projects/{}/topics/{}",
        ctx.project,
        id(&format!("{}-{t}", prefix(service)), 255)
    )
}

/// A bucket's (global) name.
pub fn bucket_name(ctx: &Context, service: &Service, b: &str) -> String {
    id(&format!("{}-{b}-{}", prefix(service), ctx.suffix), 63)
}

fn secret_name(ctx: &Context, service: &Service, s: &str) -> String {
    format!(
        "projects/{}/secrets/{}",
        ctx.project,
        id(&format!("{}-{s}", prefix(service)), 255)
    )
}

fn database_name(ctx: &Context, service: &Service, t: &str) -> String {
    format!(
        "projects/{}/databases/{}",
        ctx.project,
        id(&format!("{}-{t}", prefix(service)), 63)
    )
}

fn located(ctx: &Context, collection: &str, id: &str) -> String {
    format!(
        "projects/{}/locations/{}/{collection}/{id}",
        ctx.project, ctx.region
    )
}

/// Where an event trigger is delivered: the events deployment's URL and the trigger's path.
fn event_url(d: &Deployment, trigger: &str) -> String {
    format!("{}{EVENTS_PATH}{trigger}", reference(&d.address, "uri"))
}

/// The value the local runtime and AWS give `<NAME>_QUEUE_URL` & co., for Google Cloud.
fn injected_value(ctx: &Context, service: &Service, name: &str, kind: &ResourceKind) -> String {
    match kind {
        ResourceKind::Queue { .. } | ResourceKind::Topic { .. } => topic_name(ctx, service, name),
        ResourceKind::Bucket { .. } => bucket_name(ctx, service, name),
        ResourceKind::Table { .. } => database_name(ctx, service, name),
        ResourceKind::Secret { .. } => {
            format!("{}/versions/latest", secret_name(ctx, service, name))
        }
    }
}

/// A function's environment: its own variables, what its `uses` inject, and ferry's.
fn environment(
    ctx: &Context,
    service: &Service,
    name: &str,
    f: &Function,
    errors: &mut Vec<String>,
) -> BTreeMap<String, String> {
    let mut env: BTreeMap<String, String> = portable_environment(
        service,
        name,
        f,
        "Google Cloud",
        |u, kind| injected_value(ctx, service, u, kind),
        errors,
    )
    .into_iter()
    .collect();
    env.insert("FERRY_PROVIDER".into(), "gcp".into());
    env.insert("FERRY_FUNCTION".into(), name.into());
    env
}

/// The Google name of the service a trigger of function `function` names: ours (`name()`), or
/// the existing one's, which must be given as a string.
fn existing_or(
    function: &str,
    what: &str,
    service: &str,
    res: &ferry_core::model::Resource,
    errors: &mut Vec<String>,
    name: impl FnOnce() -> String,
) -> Option<String> {
    match &res.external {
        None => Some(name()),
        Some(Value::String(s)) => Some(s.clone()),
        Some(_) => {
            errors.push(format!("function `{function}`: {what} `{service}` is an AWS reference; on Google Cloud give its name as a string"));
            None
        }
    }
}

/// Cloud Scheduler's schedule for `rate()` and AWS `cron()`: rates in its English form
/// (`every 5 minutes`, exact for any period), crons as unix cron.
pub fn scheduler_schedule(expr: &str) -> Result<String, String> {
    use ferry_core::schedule::{parse, unix_cron, RateUnit, Schedule};
    match parse(expr)? {
        Schedule::Rate { value, unit } => Ok(match unit {
            RateUnit::Minute => format!("every {value} minutes"),
            RateUnit::Hour => format!("every {value} hours"),
            RateUnit::Day => format!("every {} hours", value * 24),
        }),
        Schedule::Cron(fields) => unix_cron(&fields, expr, "Cloud Scheduler's unix cron"),
    }
}

/// Memory as Google writes it, and the CPUs that much memory needs.
fn memory(mb: u32) -> (String, Option<&'static str>) {
    let cpu = match mb {
        0..=4096 => None,
        4097..=16384 => Some("2"),
        16385..=24576 => Some("4"),
        _ => Some("8"),
    };
    (format!("{mb}Mi"), cpu)
}

/// An IAM policy body granting `role` to `member`.
fn policy(role: &str, member: &str) -> Value {
    json!({"policy": {"bindings": [{"role": role, "members": [member]}]}})
}

/// The Pub/Sub service agent, which forwards undeliverable messages to a dead-letter topic.
fn pubsub_agent(ctx: &Context) -> String {
    format!(
        "serviceAccount:service-{}@gcp-sa-pubsub.iam.gserviceaccount.com",
        ctx.project_number
    )
}

/// Adds a resource; returns its index.
fn push(
    out: &mut Vec<GcpResource>,
    address: String,
    kind: Kind,
    name: String,
    body: Value,
) -> usize {
    out.push(GcpResource {
        address,
        kind,
        name,
        body,
        depends: Vec::new(),
        function: None,
    });
    out.len() - 1
}

/// The keys of `provider.gcp` ferry reads.
pub const SETTINGS: &[(&str, &str)] = &[
    ("project", "the project id (GOOGLE_CLOUD_PROJECT wins)"),
    (
        "serviceAccount",
        "the service account functions run as and events are delivered with (default: the project's Compute Engine default service account)",
    ),
    (
        "baseImage",
        "the base image Cloud Run services run on (default: Google's osonly24 runtime image in the region)",
    ),
];

/// Every key of `provider.gcp` that ferry does not read or whose value is not a string, with
/// the closest key it does read.
fn check_settings(block: Option<&Value>, errors: &mut Vec<String>) {
    let Some(block) = block else {
        return;
    };
    let Some(map) = block.as_object() else {
        errors.push("provider.gcp must be a mapping (project, serviceAccount, baseImage)".into());
        return;
    };
    let known = SETTINGS.iter().map(|(k, _)| *k);
    for (k, v) in map {
        if !SETTINGS.iter().any(|(n, _)| n == k) {
            let hint = ferry_core::diag::did_you_mean(k, known.clone())
                .map(|m| format!("; did you mean `{m}`?"))
                .unwrap_or_else(|| {
                    format!(
                        "; ferry reads {}",
                        SETTINGS
                            .iter()
                            .map(|(n, _)| format!("`{n}`"))
                            .collect::<Vec<_>>()
                            .join(", ")
                    )
                });
            errors.push(format!("provider.gcp: unknown key `{k}`{hint}"));
        } else if !v.is_string() {
            errors.push(format!("provider.gcp.{k} must be a string"));
        }
    }
}

/// The resources of a service, or every reason it cannot run on Google Cloud.
pub fn resources(service: &Service, ctx: &Context) -> Result<Vec<GcpResource>, Vec<String>> {
    let mut errors = Vec::new();
    check_settings(service.settings.get("gcp"), &mut errors);
    let mut out = Vec::new();
    let labels = labels(service);
    let sa = ctx.service_account.clone();

    // Services.
    let mut consumed: BTreeSet<&str> = BTreeSet::new();
    for f in service.functions.values() {
        for t in &f.triggers {
            if let Trigger::Queue { queue, .. } = t {
                consumed.insert(queue);
            }
        }
    }
    let mut dead_letters: BTreeMap<String, (String, u32)> = BTreeMap::new();
    for (name, res) in &service.services {
        if res.external.is_some() {
            continue;
        }
        match &res.kind {
            ResourceKind::Queue {
                max_receives, fifo, ..
            } => {
                if *fifo {
                    errors.push(format!("queue `{name}` is FIFO; Pub/Sub ordering keys are not supported by ferry yet, so it cannot be deployed to Google Cloud"));
                    continue;
                }
                let topic = topic_name(ctx, service, name);
                push(
                    &mut out,
                    format!("queue.{name}"),
                    Kind::Topic,
                    topic.clone(),
                    json!({"labels": labels, "messageRetentionDuration": "604800s"}),
                );
                if let Some(n) = max_receives {
                    let dlq = format!("{topic}-dlq");
                    push(
                        &mut out,
                        format!("queue.{name}.dlq"),
                        Kind::Topic,
                        dlq.clone(),
                        json!({"labels": labels, "messageRetentionDuration": "604800s"}),
                    );
                    // Dead letters wait in a pull subscription, as in an SQS dead-letter queue.
                    let sub = dlq.replace("/topics/", "/subscriptions/");
                    let i = push(
                        &mut out,
                        format!("subscription.{name}.dlq"),
                        Kind::Subscription,
                        sub,
                        json!({"topic": dlq, "labels": labels, "ackDeadlineSeconds": 60, "messageRetentionDuration": "604800s", "expirationPolicy": {}}),
                    );
                    out[i].depends.push(format!("queue.{name}.dlq"));
                    // Pub/Sub's service agent publishes the dead letters.
                    let i = push(
                        &mut out,
                        format!("policy.queue.{name}.dlq"),
                        Kind::PubSubPolicy,
                        dlq.clone(),
                        policy("roles/pubsub.publisher", &pubsub_agent(ctx)),
                    );
                    out[i].depends.push(format!("queue.{name}.dlq"));
                    // Pub/Sub allows 5 to 100 delivery attempts.
                    dead_letters.insert(name.clone(), (dlq, (*n).clamp(5, 100)));
                }
                if !consumed.contains(name.as_str()) {
                    let sub = topic.replace("/topics/", "/subscriptions/");
                    let i = push(
                        &mut out,
                        format!("subscription.{name}"),
                        Kind::Subscription,
                        sub,
                        json!({"topic": topic, "labels": labels, "ackDeadlineSeconds": 60, "messageRetentionDuration": "604800s", "expirationPolicy": {}}),
                    );
                    out[i].depends.push(format!("queue.{name}"));
                }
            }
            ResourceKind::Topic { fifo } => {
                if *fifo {
                    errors.push(format!("topic `{name}` is FIFO; Pub/Sub ordering keys are not supported by ferry yet, so it cannot be deployed to Google Cloud"));
                    continue;
                }
                push(
                    &mut out,
                    format!("topic.{name}"),
                    Kind::Topic,
                    topic_name(ctx, service, name),
                    json!({"labels": labels}),
                );
            }
            ResourceKind::Bucket { versioning } => {
                let b = bucket_name(ctx, service, name);
                push(
                    &mut out,
                    format!("bucket.{name}"),
                    Kind::Bucket,
                    b.clone(),
                    json!({
                        "name": b,
                        "location": ctx.region.to_uppercase(),
                        "labels": labels,
                        "versioning": {"enabled": versioning},
                        "iamConfiguration": {"uniformBucketLevelAccess": {"enabled": true}, "publicAccessPrevention": "enforced"},
                    }),
                );
            }
            ResourceKind::Table { .. } => {
                push(
                    &mut out,
                    format!("table.{name}"),
                    Kind::Database,
                    database_name(ctx, service, name),
                    json!({"type": "FIRESTORE_NATIVE", "locationId": ctx.region, "deleteProtectionState": "DELETE_PROTECTION_DISABLED"}),
                );
            }
            ResourceKind::Secret { .. } => {
                let s = secret_name(ctx, service, name);
                push(
                    &mut out,
                    format!("secret.{name}"),
                    Kind::Secret,
                    s.clone(),
                    json!({"replication": {"automatic": {}}, "labels": labels}),
                );
                let i = push(
                    &mut out,
                    format!("secret.{name}.version"),
                    Kind::SecretVersion,
                    s,
                    json!({"payload": {"data": format!("${{secret:{name}}}")}}),
                );
                out[i].depends.push(format!("secret.{name}"));
            }
        }
    }

    // What `uses` needs, as on AWS: the service account the functions run as gets a role on
    // each of ferry's queues, topics, secrets and buckets a function uses (an existing
    // service's access is its owner's to grant). Topics and secrets start with an empty
    // policy, so the policy ferry sets is the whole of it; a bucket starts with Google's
    // legacy project bindings, so the account is added to its policy instead. Firestore's
    // roles exist only per project: see docs/providers/gcp.md.
    let member = format!("serviceAccount:{sa}");
    let used: BTreeSet<&str> = service
        .functions
        .values()
        .flat_map(|f| f.uses.iter().map(String::as_str))
        .collect();
    for name in used {
        let Some(res) = service.services.get(name) else {
            continue;
        };
        if res.external.is_some() {
            continue;
        }
        let (what, kind, target, body) = match &res.kind {
            ResourceKind::Queue { fifo: false, .. } => (
                "queue",
                Kind::PubSubPolicy,
                topic_name(ctx, service, name),
                policy("roles/pubsub.publisher", &member),
            ),
            ResourceKind::Topic { fifo: false } => (
                "topic",
                Kind::PubSubPolicy,
                topic_name(ctx, service, name),
                policy("roles/pubsub.publisher", &member),
            ),
            ResourceKind::Secret { .. } => (
                "secret",
                Kind::SecretPolicy,
                secret_name(ctx, service, name),
                policy("roles/secretmanager.secretAccessor", &member),
            ),
            ResourceKind::Bucket { .. } => (
                "bucket",
                Kind::BucketGrant,
                bucket_name(ctx, service, name),
                json!({"role": "roles/storage.objectAdmin", "member": member}),
            ),
            _ => continue,
        };
        let i = push(
            &mut out,
            format!("policy.uses.{what}.{name}"),
            kind,
            target,
            body,
        );
        out[i].depends.push(format!("{what}.{name}"));
    }

    // Functions.
    let needs_sources = service.functions.values().any(on_run);
    if needs_sources {
        let b = id(&format!("{}-sources-{}", prefix(service), ctx.suffix), 63);
        push(
            &mut out,
            SOURCES.into(),
            Kind::Bucket,
            b.clone(),
            json!({
                "name": b,
                "location": ctx.region.to_uppercase(),
                "labels": labels,
                "iamConfiguration": {"uniformBucketLevelAccess": {"enabled": true}, "publicAccessPrevention": "enforced"},
            }),
        );
    }
    for (name, f) in &service.functions {
        let env = environment(ctx, service, name, f, &mut errors);
        let (mem, cpu) = memory(f.memory);
        let source = source_address(name);
        let run = on_run(f);
        if !run && gcf_runtime(&f.runtime).is_none() {
            errors.push(format!(
                "function `{name}`: runtime `{}` has no Google Cloud equivalent that ferry builds; use nodejs, python, rust or provided",
                f.runtime
            ));
            continue;
        }
        if f.memory > 32768 {
            errors.push(format!(
                "function `{name}`: {} MB is more than Google Cloud's 32768 MB",
                f.memory
            ));
        }
        let i = if run {
            push(
                &mut out,
                source.clone(),
                Kind::ObjectSource,
                format!("{name}.zip"),
                json!({"bucket": reference(SOURCES, "name")}),
            )
        } else {
            push(
                &mut out,
                source.clone(),
                Kind::FunctionSource,
                format!("projects/{}/locations/{}", ctx.project, ctx.region),
                json!({"environment": "GEN_2"}),
            )
        };
        out[i].function = Some(name.clone());
        if run {
            out[i].depends.push(SOURCES.into());
        }
        for d in deployments(service, name, f) {
            let body = if run {
                let mut limits = json!({"memory": mem, "cpu": cpu.unwrap_or("1")});
                if f.memory < 512 {
                    // CPU always allocated needs 512 MiB; requests-only CPU is enough here.
                    limits["cpu"] = json!("1");
                }
                let mut b = json!({
                    "labels": labels,
                    "ingress": "INGRESS_TRAFFIC_ALL",
                    "template": {
                        "serviceAccount": sa,
                        "timeout": format!("{}s", f.timeout),
                        "maxInstanceRequestConcurrency": 8,
                        "containers": [{
                            "image": "scratch",
                            "baseImageUri": ctx.base_image,
                            "command": [format!("/workspace/{}", crate::package::RUN_ADAPTER)],
                            "sourceCode": {"cloudStorageSource": {
                                "bucket": reference(&source, "bucket"),
                                "object": reference(&source, "object"),
                                "generation": reference(&source, "generation"),
                            }},
                            "env": env.iter().map(|(k, v)| json!({"name": k, "value": v})).collect::<Vec<_>>(),
                            "resources": {"limits": limits, "cpuIdle": true},
                        }],
                    },
                });
                if let Some(desc) = &f.description {
                    b["description"] = json!(desc);
                }
                b
            } else {
                let mut service_config = json!({
                    "availableMemory": mem,
                    "timeoutSeconds": f.timeout,
                    "environmentVariables": env,
                    "ingressSettings": "ALLOW_ALL",
                    "serviceAccountEmail": sa,
                    "allTrafficOnLatestRevision": true,
                });
                if let Some(c) = cpu {
                    service_config["availableCpu"] = json!(c);
                }
                let mut b = json!({
                    "name": located(ctx, "functions", &d.id),
                    "environment": "GEN_2",
                    "labels": labels,
                    "buildConfig": {
                        "runtime": gcf_runtime(&f.runtime),
                        "entryPoint": crate::package::ENTRY_POINT,
                        "source": {"storageSource": {
                            "bucket": reference(&source, "bucket"),
                            "object": reference(&source, "object"),
                        }},
                    },
                    "serviceConfig": service_config,
                });
                if let Some(desc) = &f.description {
                    b["description"] = json!(desc);
                }
                b
            };
            let collection = if run { "services" } else { "functions" };
            let i = push(
                &mut out,
                d.address.clone(),
                d.kind,
                located(ctx, collection, &d.id),
                body,
            );
            out[i].function = Some(name.clone());
            let member = if d.public {
                "allUsers".to_owned()
            } else {
                format!("serviceAccount:{sa}")
            };
            let i = push(
                &mut out,
                d.address.replacen("function.", "invoker.", 1),
                Kind::Invoker,
                reference(&d.address, "service"),
                policy("roles/run.invoker", &member),
            );
            out[i].function = Some(name.clone());
        }
        let events = events_deployment(service, name, f);
        for (t, tid) in f.triggers.iter().zip(trigger_ids(f)) {
            let fid = trigger_resource_id(service, name, &tid);
            match t {
                Trigger::Http(_) => {}
                Trigger::Queue { queue: source, .. } | Trigger::Topic { topic: source, .. } => {
                    let queue = matches!(t, Trigger::Queue { .. });
                    if let Trigger::Topic {
                        filter: Some(_), ..
                    } = t
                    {
                        errors.push(format!("function `{name}`: topic filters are not translated to Pub/Sub subscription filters yet; remove `filter` to deploy to Google Cloud"));
                        continue;
                    }
                    let Some(res) = service.services.get(source) else {
                        continue;
                    };
                    let what = if queue { "queue" } else { "topic" };
                    let Some(topic) = existing_or(name, what, source, res, &mut errors, || {
                        topic_name(ctx, service, source)
                    }) else {
                        continue;
                    };
                    // Pub/Sub waits this long for the push to answer before it redelivers: the
                    // queue's visibility timeout, or the function's timeout for a topic.
                    let ack = match &res.kind {
                        ResourceKind::Queue {
                            visibility_timeout, ..
                        } => *visibility_timeout,
                        _ => f.timeout,
                    };
                    let mut body = json!({
                        "topic": topic,
                        "labels": labels,
                        "ackDeadlineSeconds": ack.clamp(10, 600),
                        "pushConfig": {"pushEndpoint": event_url(&events, &tid), "oidcToken": {"serviceAccountEmail": sa}},
                        "retryPolicy": {"minimumBackoff": "10s", "maximumBackoff": "600s"},
                        "expirationPolicy": {},
                    });
                    if queue {
                        body["messageRetentionDuration"] = json!("604800s");
                    }
                    let dead_letter = dead_letters.get(source.as_str()).filter(|_| queue);
                    if let Some((dlq, attempts)) = dead_letter {
                        body["deadLetterPolicy"] =
                            json!({"deadLetterTopic": dlq, "maxDeliveryAttempts": attempts});
                    }
                    let subscription = format!("projects/{}/subscriptions/{fid}", ctx.project);
                    let address = format!("subscription.{name}.{tid}");
                    let i = push(
                        &mut out,
                        address.clone(),
                        Kind::Subscription,
                        subscription.clone(),
                        body,
                    );
                    out[i].function = Some(name.clone());
                    if res.external.is_none() {
                        out[i].depends.push(format!("{what}.{source}"));
                        if dead_letter.is_some() {
                            out[i].depends.push(format!("queue.{source}.dlq"));
                        }
                    }
                    if dead_letter.is_some() {
                        // ... and acknowledges them on the subscription they left.
                        let i = push(
                            &mut out,
                            format!("policy.{address}"),
                            Kind::PubSubPolicy,
                            subscription,
                            policy("roles/pubsub.subscriber", &pubsub_agent(ctx)),
                        );
                        out[i].function = Some(name.clone());
                        out[i].depends.push(address);
                    }
                }
                Trigger::Schedule {
                    expression,
                    enabled,
                    ..
                } => {
                    let schedule = match scheduler_schedule(expression) {
                        Ok(s) => s,
                        Err(e) => {
                            errors.push(format!("function `{name}`: {e}"));
                            continue;
                        }
                    };
                    if !enabled {
                        // A paused job is a separate call (`:pause`); a disabled schedule is
                        // simply not deployed.
                        continue;
                    }
                    let job = located(ctx, "jobs", &fid);
                    let i = push(
                        &mut out,
                        format!("job.{name}.{tid}"),
                        Kind::Job,
                        job.clone(),
                        json!({
                            "name": job,
                            "description": format!("{expression} for function {name} (ferry)"),
                            "schedule": schedule,
                            "timeZone": "Etc/UTC",
                            "attemptDeadline": format!("{}s", (f.timeout + 30).clamp(15, 1800)),
                            "httpTarget": {
                                "uri": event_url(&events, &tid),
                                "httpMethod": "POST",
                                "oidcToken": {"serviceAccountEmail": sa, "audience": reference(&events.address, "uri")},
                            },
                        }),
                    );
                    out[i].function = Some(name.clone());
                }
                Trigger::Storage {
                    bucket,
                    events: kinds,
                    ..
                } => {
                    let Some(b) = service.services.get(bucket) else {
                        continue;
                    };
                    let Some(bname) = existing_or(name, "bucket", bucket, b, &mut errors, || {
                        bucket_name(ctx, service, bucket)
                    }) else {
                        continue;
                    };
                    for k in kinds {
                        let (ty, short) = match k {
                            StorageEvent::Created => {
                                ("google.cloud.storage.object.v1.finalized", "created")
                            }
                            StorageEvent::Removed => {
                                ("google.cloud.storage.object.v1.deleted", "removed")
                            }
                        };
                        let trig = located(ctx, "triggers", &id(&format!("{fid}-{short}"), 63));
                        let i = push(
                            &mut out,
                            format!("trigger.{name}.{tid}.{short}"),
                            Kind::Trigger,
                            trig.clone(),
                            json!({
                                "name": trig,
                                "labels": labels,
                                "eventFilters": [
                                    {"attribute": "type", "value": ty},
                                    {"attribute": "bucket", "value": bname},
                                ],
                                "destination": {"cloudRun": {
                                    "service": events.id,
                                    "region": ctx.region,
                                    "path": format!("{EVENTS_PATH}{tid}"),
                                }},
                                "serviceAccount": sa,
                            }),
                        );
                        out[i].function = Some(name.clone());
                        out[i].depends.push(events.address.clone());
                        if b.external.is_none() {
                            out[i].depends.push(format!("bucket.{bucket}"));
                        }
                    }
                }
            }
        }
    }
    if errors.is_empty() {
        Ok(out)
    } else {
        Err(errors)
    }
}

/// The resources as `ferry package --provider gcp` writes them (`gcp-resources.json`): address,
/// type, REST name, ordering dependencies and request body of each.
pub fn listing(resources: &[GcpResource]) -> Value {
    Value::Array(
        resources
            .iter()
            .map(|r| {
                json!({
                    "address": r.address,
                    "type": r.kind.type_name(),
                    "name": r.name,
                    "depends": r.depends,
                    "body": r.body,
                })
            })
            .collect(),
    )
}

/// `ferry/functions.json` of a function's source: what the adapter runs, and where each of
/// its event triggers is delivered.
pub fn adapter_manifest(service: &Service, ctx: &Context, name: &str, f: &Function) -> Value {
    let mut http = Vec::new();
    let mut events = Map::new();
    for (t, tid) in f.triggers.iter().zip(trigger_ids(f)) {
        match t {
            Trigger::Http(h) => http.push(json!({
                "kind": "http", "method": h.method, "path": h.path, "payload": h.payload, "cors": h.cors,
            })),
            Trigger::Queue {
                queue, batch_size, ..
            } => {
                events.insert(tid, json!({"kind": "queue", "queue": queue, "batchSize": batch_size, "id": topic_name(ctx, service, queue)}));
            }
            Trigger::Schedule { input, .. } => {
                let rule = trigger_resource_id(service, name, &tid);
                events.insert(
                    tid,
                    json!({"kind": "schedule", "rule": rule, "input": input}),
                );
            }
            Trigger::Storage {
                bucket,
                events: kinds,
                prefix,
                suffix,
            } => {
                events.insert(tid, json!({"kind": "storage", "bucket": bucket, "events": kinds, "prefix": prefix, "suffix": suffix, "id": bucket_name(ctx, service, bucket)}));
            }
            Trigger::Topic { topic, .. } => {
                events.insert(tid, json!({"kind": "topic", "topic": topic, "id": topic_name(ctx, service, topic)}));
            }
        }
    }
    let mut entry = json!({
        "function": name,
        "handler": f.handler,
        "memory": f.memory,
        "timeout": f.timeout,
        "http": http,
        "events": events,
    });
    match f.runtime {
        Runtime::Rust => entry["command"] = json!("bootstrap"),
        Runtime::Provided => entry["command"] = json!(f.handler),
        _ => {}
    }
    json!({
        "service": service.service,
        "stage": service.stage,
        "region": ctx.region,
        "project": ctx.project,
        "functions": {name: entry},
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_settings_are_refused_with_the_closest_key() {
        let block = json!({"serviceAcount": "a@b", "project": 3, "zone": "x"});
        let mut errors = Vec::new();
        check_settings(Some(&block), &mut errors);
        assert_eq!(
            errors,
            [
                "provider.gcp: unknown key `serviceAcount`; did you mean `serviceAccount`?",
                "provider.gcp.project must be a string",
                "provider.gcp: unknown key `zone`; ferry reads `project`, `serviceAccount`, `baseImage`",
            ]
        );
    }

    #[test]
    fn ids_follow_google_rules() {
        assert_eq!(id("Queue-Worker_dev", 63), "queue-worker-dev");
        assert_eq!(id("9lives", 63), "f-9lives");
        let long = id(&"a".repeat(80), 63);
        assert_eq!(long.len(), 63);
        assert_ne!(long, id(&format!("{}b", "a".repeat(80)), 63));
        assert!(!id("a--b-", 63).contains("--"));
    }

    #[test]
    fn schedules() {
        assert_eq!(
            scheduler_schedule("rate(5 minutes)").unwrap(),
            "every 5 minutes"
        );
        assert_eq!(
            scheduler_schedule("rate(7 minutes)").unwrap(),
            "every 7 minutes"
        );
        assert_eq!(
            scheduler_schedule("rate(2 days)").unwrap(),
            "every 48 hours"
        );
        assert_eq!(
            scheduler_schedule("cron(0 3 * * ? *)").unwrap(),
            "0 3 * * *"
        );
        assert_eq!(
            scheduler_schedule("cron(30 9 ? * 2-6 *)").unwrap(),
            "30 9 * * 1-5"
        );
        assert!(scheduler_schedule("cron(0 18 L * ? *)")
            .unwrap_err()
            .contains("Cloud Scheduler"));
    }
}
