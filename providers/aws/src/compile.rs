//! The neutral model compiled into AWS resources: pure, no network, deterministic.
//!
//! Addresses (stable across runs, the keys of the state):
//!
//! | address | kind | made by |
//! |---|---|---|
//! | `role.<fn>` | `aws:iam:role` | every function: trust policy for Lambda, inline least-privilege policy |
//! | `function.<fn>` | `aws:lambda:function` | every function |
//! | `http-api`, `stage.default` | `aws:apigatewayv2:api`, `aws:apigatewayv2:stage` | the first http trigger |
//! | `integration.<fn>`, `route.<METHOD /path>` | `aws:apigatewayv2:integration`, `...:route` | http triggers |
//! | `permission.<fn>.<source>` | `aws:lambda:permission` | every trigger that invokes through a resource policy |
//! | `queue.<q>`, `dlq.<q>` | `aws:sqs:queue` | queue services (the DLQ when `deadLetter` is set) |
//! | `mapping.<fn>.<q>` | `aws:lambda:event-source-mapping` | queue triggers |
//! | `schedule.<fn>.<n>` | `aws:events:rule` (with its target) | schedule triggers |
//! | `bucket.<b>`, `notification.<b>` | `aws:s3:bucket`, `aws:s3:notification` | bucket services, storage triggers |
//! | `topic.<t>`, `subscription.<fn>.<t>` | `aws:sns:topic`, `aws:sns:subscription` | topic services, topic triggers |
//! | `table.<t>` | `aws:dynamodb:table` | table services |
//! | `secret.<s>` | `aws:secretsmanager:secret` | secret services |

use ferry_core::engine::{reference, Artifacts, Resource, SecretValues};
use ferry_core::model::{
    injected_env_name, Architecture, EnvValue, Function, PayloadVersion, ResourceKind, Runtime,
    Service, StorageEvent, Trigger,
};
use serde_json::{json, Map, Value};
use std::collections::{BTreeMap, BTreeSet};

/// Resource kinds this provider knows.
pub mod kinds {
    /// IAM role with one inline policy.
    pub const ROLE: &str = "aws:iam:role";
    /// Lambda function.
    pub const FUNCTION: &str = "aws:lambda:function";
    /// One statement of a function's resource policy.
    pub const PERMISSION: &str = "aws:lambda:permission";
    /// API Gateway HTTP API.
    pub const API: &str = "aws:apigatewayv2:api";
    /// HTTP API integration with a function.
    pub const INTEGRATION: &str = "aws:apigatewayv2:integration";
    /// HTTP API route.
    pub const ROUTE: &str = "aws:apigatewayv2:route";
    /// HTTP API stage.
    pub const STAGE: &str = "aws:apigatewayv2:stage";
    /// SQS queue.
    pub const QUEUE: &str = "aws:sqs:queue";
    /// Lambda event source mapping (SQS → function).
    pub const MAPPING: &str = "aws:lambda:event-source-mapping";
    /// EventBridge schedule rule with its one target.
    pub const RULE: &str = "aws:events:rule";
    /// S3 bucket.
    pub const BUCKET: &str = "aws:s3:bucket";
    /// A bucket's notification configuration.
    pub const NOTIFICATION: &str = "aws:s3:notification";
    /// SNS topic.
    pub const TOPIC: &str = "aws:sns:topic";
    /// SNS subscription of a function.
    pub const SUBSCRIPTION: &str = "aws:sns:subscription";
    /// DynamoDB table.
    pub const TABLE: &str = "aws:dynamodb:table";
    /// Secrets Manager secret.
    pub const SECRET: &str = "aws:secretsmanager:secret";
}

/// Physical names, shared by the direct deploy and the CloudFormation template.
pub struct Names<'a> {
    service: &'a Service,
}

impl<'a> Names<'a> {
    /// Names for a service.
    pub fn new(service: &'a Service) -> Self {
        Names { service }
    }

    fn prefix(&self) -> String {
        format!("{}-{}", self.service.service, self.service.stage)
    }

    /// `<service>-<stage>-<function>` (validated to fit 64 characters).
    pub fn function(&self, f: &str) -> String {
        fit(&format!("{}-{f}", self.prefix()), 64)
    }

    /// The function's execution role (64 characters at most).
    pub fn role(&self, f: &str) -> String {
        fit(&format!("{}-{f}-role", self.prefix()), 64)
    }

    /// The HTTP API.
    pub fn api(&self) -> String {
        fit(&self.prefix(), 128)
    }

    /// A queue (80 characters, `.fifo` included).
    pub fn queue(&self, q: &str, fifo: bool) -> String {
        with_fifo(fit(&format!("{}-{q}", self.prefix()), 75), fifo)
    }

    /// A queue's dead-letter queue.
    pub fn dlq(&self, q: &str, fifo: bool) -> String {
        with_fifo(fit(&format!("{}-{q}-dlq", self.prefix()), 75), fifo)
    }

    /// A schedule rule (64 characters).
    pub fn rule(&self, f: &str, n: usize) -> String {
        fit(&format!("{}-{f}-{n}", self.prefix()), 64)
    }

    /// A bucket: lower case, 63 characters, only letters, digits and hyphens.
    pub fn bucket(&self, b: &str) -> String {
        let raw = ferry_core::names::lower_kebab(&format!("{}-{b}", self.prefix()));
        fit(raw.trim_matches('-'), 63)
    }

    /// A table (255 characters).
    pub fn table(&self, t: &str) -> String {
        fit(&format!("{}-{t}", self.prefix()), 255)
    }

    /// A topic (256 characters, `.fifo` included).
    pub fn topic(&self, t: &str, fifo: bool) -> String {
        with_fifo(fit(&format!("{}-{t}", self.prefix()), 250), fifo)
    }

    /// A secret: `<service>/<stage>/<name>`.
    pub fn secret(&self, s: &str) -> String {
        fit(
            &format!("{}/{}/{s}", self.service.service, self.service.stage),
            512,
        )
    }
}

fn with_fifo(name: String, fifo: bool) -> String {
    if fifo {
        format!("{name}.fifo")
    } else {
        name
    }
}

pub use ferry_core::names::fit;

/// The tags every resource carries: the service's tags, then `ferry:service` and `ferry:stage`.
pub fn base_tags(service: &Service) -> BTreeMap<String, String> {
    let mut t = service.tags.clone();
    t.insert("ferry:service".into(), service.service.clone());
    t.insert("ferry:stage".into(), service.stage.clone());
    t
}

/// Lambda's name for a runtime.
pub fn lambda_runtime(r: &Runtime) -> String {
    match r {
        Runtime::Node(v) => format!("nodejs{v}.x"),
        Runtime::Python(v) => format!("python3.{v}"),
        Runtime::Rust | Runtime::Provided => "provided.al2023".into(),
        Runtime::Other(s) => s.clone(),
    }
}

/// Lambda's handler setting: `bootstrap` for binaries (Lambda ignores it for them).
pub fn lambda_handler(f: &Function) -> String {
    match f.runtime {
        Runtime::Rust | Runtime::Provided => "bootstrap".into(),
        _ => f.handler.clone(),
    }
}

/// Lambda's name for an architecture.
pub fn lambda_arch(a: Architecture) -> &'static str {
    match a {
        Architecture::X86_64 => "x86_64",
        Architecture::Arm64 => "arm64",
    }
}

/// The S3 event names for storage events.
pub fn s3_events(events: &[StorageEvent]) -> Vec<String> {
    let mut out: Vec<String> = events
        .iter()
        .map(|e| match e {
            StorageEvent::Created => "s3:ObjectCreated:*".to_owned(),
            StorageEvent::Removed => "s3:ObjectRemoved:*".to_owned(),
        })
        .collect();
    out.sort();
    out.dedup();
    out
}

/// API Gateway's route key for an http trigger.
pub fn route_key(method: &str, path: &str) -> String {
    format!("{} {}", method.to_ascii_uppercase(), path)
}

/// A value of a service for references: its `attr` (`arn`, or what is injected) from the
/// resource ferry makes, or derived from the ARN of an external one.
struct ServiceRef<'a> {
    service: &'a Service,
    names: Names<'a>,
}

impl ServiceRef<'_> {
    fn address(&self, name: &str) -> Result<String, String> {
        let r = self
            .service
            .services
            .get(name)
            .ok_or_else(|| format!("no service `{name}`"))?;
        Ok(format!("{}.{name}", r.kind.name()))
    }

    /// The ARN of service `name`.
    fn arn(&self, name: &str) -> Result<String, String> {
        match self.external(name)? {
            Some(arn) => Ok(arn),
            None => Ok(reference(&self.address(name)?, "arn")),
        }
    }

    /// What ferry injects for service `name` (queue URL, bucket name, ...).
    fn injected(&self, name: &str) -> Result<String, String> {
        let r = &self.service.services[name];
        let Some(arn) = self.external(name)? else {
            let attr = match r.kind {
                ResourceKind::Queue { .. } => "url",
                ResourceKind::Bucket { .. } | ResourceKind::Table { .. } => "name",
                ResourceKind::Topic { .. } | ResourceKind::Secret { .. } => "arn",
            };
            return Ok(reference(&self.address(name)?, attr));
        };
        let parts: Vec<&str> = arn.splitn(6, ':').collect();
        let last = parts.get(5).copied().unwrap_or_default();
        Ok(match r.kind {
            ResourceKind::Queue { .. } => format!(
                "https://sqs.{}.amazonaws.com/{}/{last}",
                parts.get(3).copied().unwrap_or_default(),
                parts.get(4).copied().unwrap_or_default()
            ),
            ResourceKind::Bucket { .. } => last.to_owned(),
            ResourceKind::Table { .. } => last.trim_start_matches("table/").to_owned(),
            ResourceKind::Topic { .. } | ResourceKind::Secret { .. } => arn.clone(),
        })
    }

    /// The ARN of an external service, `None` for one ferry makes.
    fn external(&self, name: &str) -> Result<Option<String>, String> {
        let r = self
            .service
            .services
            .get(name)
            .ok_or_else(|| format!("no service `{name}`"))?;
        match &r.external {
            None => Ok(None),
            Some(Value::String(s)) if s.starts_with("arn:") => Ok(Some(s.clone())),
            Some(Value::String(s)) if matches!(r.kind, ResourceKind::Bucket { .. }) => {
                Ok(Some(format!("arn:aws:s3:::{s}")))
            }
            Some(other) => Err(format!(
                "service `{name}` refers to an existing resource by `{other}`; the direct deploy needs its ARN (a string starting with `arn:`); CloudFormation expressions only work in the template from `ferry package`"
            )),
        }
    }

    fn bucket_name(&self, name: &str) -> Result<String, String> {
        match self.external(name)? {
            Some(arn) => Ok(arn.rsplit(':').next().unwrap_or_default().to_owned()),
            None => Ok(reference(&self.address(name)?, "name")),
        }
    }

    fn names(&self) -> &Names<'_> {
        &self.names
    }
}

/// What a function may do to a service it `uses`: the actions, and the resources as suffixes
/// of the service's ARN (`""` for the ARN itself). The direct deploy and the CloudFormation
/// template both grant exactly this.
pub fn use_grant(kind: &ResourceKind) -> (&'static [&'static str], &'static [&'static str]) {
    match kind {
        ResourceKind::Queue { .. } => (
            &[
                "sqs:SendMessage",
                "sqs:GetQueueAttributes",
                "sqs:GetQueueUrl",
            ],
            &[""],
        ),
        ResourceKind::Bucket { .. } => (
            &[
                "s3:GetObject",
                "s3:PutObject",
                "s3:DeleteObject",
                "s3:ListBucket",
            ],
            &["", "/*"],
        ),
        ResourceKind::Table { .. } => (
            &[
                "dynamodb:GetItem",
                "dynamodb:PutItem",
                "dynamodb:UpdateItem",
                "dynamodb:DeleteItem",
                "dynamodb:Query",
                "dynamodb:Scan",
                "dynamodb:BatchGetItem",
                "dynamodb:BatchWriteItem",
                "dynamodb:ConditionCheckItem",
            ],
            &["", "/index/*"],
        ),
        ResourceKind::Topic { .. } => (&["sns:Publish"], &[""]),
        ResourceKind::Secret { .. } => (
            &[
                "secretsmanager:GetSecretValue",
                "secretsmanager:DescribeSecret",
            ],
            &[""],
        ),
    }
}

/// What a queue trigger's function may do to its queue.
pub const QUEUE_TRIGGER_ACTIONS: &[&str] = &[
    "sqs:ReceiveMessage",
    "sqs:DeleteMessage",
    "sqs:ChangeMessageVisibility",
    "sqs:GetQueueAttributes",
];

/// What a storage trigger's function may do to its bucket's objects (`<arn>/*`).
pub const STORAGE_TRIGGER_ACTIONS: &[&str] = &["s3:GetObject"];

fn statement(actions: &[&str], resources: Vec<String>) -> Value {
    json!({"Effect": "Allow", "Action": actions, "Resource": resources})
}

/// The inline policy of a function's role: logs, what `uses` needs, what its triggers need,
/// and the service-wide statements of a Serverless Framework file.
fn policy(
    service: &Service,
    refs: &ServiceRef<'_>,
    fname: &str,
    f: &Function,
) -> Result<Value, String> {
    let fnname = refs.names().function(fname);
    let mut st = vec![
        statement(
            &["logs:CreateLogGroup"],
            vec![format!("arn:aws:logs:*:*:log-group:/aws/lambda/{fnname}")],
        ),
        statement(
            &["logs:CreateLogStream", "logs:PutLogEvents"],
            vec![format!("arn:aws:logs:*:*:log-group:/aws/lambda/{fnname}:*")],
        ),
    ];
    for u in &f.uses {
        let (actions, suffixes) = use_grant(&service.services[u].kind);
        let arn = refs.arn(u)?;
        st.push(statement(
            actions,
            suffixes.iter().map(|s| format!("{arn}{s}")).collect(),
        ));
    }
    for t in &f.triggers {
        match t {
            Trigger::Queue { queue, .. } => {
                st.push(statement(QUEUE_TRIGGER_ACTIONS, vec![refs.arn(queue)?]))
            }
            Trigger::Storage { bucket, .. } => {
                let arn = refs.arn(bucket)?;
                st.push(statement(STORAGE_TRIGGER_ACTIONS, vec![format!("{arn}/*")]));
            }
            _ => {}
        }
    }
    for s in &service.iam_statements {
        if has_intrinsic(s) {
            return Err(format!(
                "an IAM statement of the service uses a CloudFormation function ({}); the direct deploy cannot resolve it. Write the ARN out, or deploy the template from `ferry package --provider aws` with CloudFormation",
                s
            ));
        }
        st.push(s.clone());
    }
    // Identical statements (two triggers on one queue) once.
    let mut seen = BTreeSet::new();
    st.retain(|s| seen.insert(s.to_string()));
    Ok(json!({"Version": "2012-10-17", "Statement": st}))
}

/// True when a value holds a CloudFormation intrinsic function (`Ref`, `Fn::...`).
pub fn has_intrinsic(v: &Value) -> bool {
    match v {
        Value::Object(o) => {
            (o.len() == 1
                && o.keys()
                    .next()
                    .is_some_and(|k| k == "Ref" || k.starts_with("Fn::")))
                || o.values().any(has_intrinsic)
        }
        Value::Array(a) => a.iter().any(has_intrinsic),
        _ => false,
    }
}

fn tags_value(tags: &BTreeMap<String, String>) -> Value {
    Value::Object(
        tags.iter()
            .map(|(k, v)| (k.clone(), Value::String(v.clone())))
            .collect::<Map<String, Value>>(),
    )
}

/// Base64 of the sha256 whose hex is given: Lambda's `CodeSha256`.
pub fn code_sha256(hex_sha: &str) -> Result<String, String> {
    use base64::Engine;
    let bytes = hex::decode(hex_sha).map_err(|e| format!("bad sha256 `{hex_sha}`: {e}"))?;
    Ok(base64::engine::general_purpose::STANDARD.encode(bytes))
}

/// The trust policy that lets Lambda assume a function's role.
pub fn assume_role_policy() -> Value {
    json!({
        "Version": "2012-10-17",
        "Statement": [{
            "Effect": "Allow",
            "Principal": {"Service": "lambda.amazonaws.com"},
            "Action": "sts:AssumeRole"
        }]
    })
}

fn permission(fname: &str, source: &str, principal: &str, source_arn: String) -> Resource {
    Resource::new(format!("permission.{fname}.{source}"), kinds::PERMISSION)
        .attr("function", reference(&format!("function.{fname}"), "name"))
        .attr("statementId", format!("ferry-{source}"))
        .attr("principal", principal)
        .attr("sourceArn", source_arn)
        .force_new("function")
        .force_new("statementId")
        .force_new("principal")
        .force_new("sourceArn")
        .function(fname)
}

/// Compiles the service into resources. `artifacts` must hold every function's package.
pub fn compile(
    service: &Service,
    artifacts: &Artifacts,
    secrets: &SecretValues,
) -> Result<Vec<Resource>, String> {
    let names = Names::new(service);
    let refs = ServiceRef {
        service,
        names: Names::new(service),
    };
    let tags = base_tags(service);
    let mut out = Vec::new();

    // Services.
    for (name, r) in &service.services {
        if r.external.is_some() {
            continue;
        }
        let addr = format!("{}.{name}", r.kind.name());
        let res = match &r.kind {
            ResourceKind::Queue {
                visibility_timeout,
                max_receives,
                fifo,
            } => {
                let mut q = Resource::new(&addr, kinds::QUEUE)
                    .attr("name", names.queue(name, *fifo))
                    .attr("fifo", *fifo)
                    .attr("visibilityTimeout", *visibility_timeout)
                    .attr("tags", tags_value(&tags))
                    .force_new("name")
                    .force_new("fifo");
                if let Some(max) = max_receives {
                    let dlq = format!("dlq.{name}");
                    out.push(
                        Resource::new(&dlq, kinds::QUEUE)
                            .attr("name", names.dlq(name, *fifo))
                            .attr("fifo", *fifo)
                            .attr("messageRetentionPeriod", 1_209_600)
                            .attr("tags", tags_value(&tags))
                            .force_new("name")
                            .force_new("fifo"),
                    );
                    q = q.attr(
                        "redrive",
                        json!({"deadLetterTargetArn": reference(&dlq, "arn"), "maxReceiveCount": max}),
                    );
                }
                q
            }
            ResourceKind::Bucket { versioning } => Resource::new(&addr, kinds::BUCKET)
                .attr("name", names.bucket(name))
                .attr("versioning", *versioning)
                .attr("tags", tags_value(&tags))
                .force_new("name"),
            ResourceKind::Table { partition, sort } => {
                let mut t = Resource::new(&addr, kinds::TABLE)
                    .attr("name", names.table(name))
                    .attr("partition", partition.as_str())
                    .attr("tags", tags_value(&tags))
                    .force_new("name")
                    .force_new("partition")
                    .force_new("sort");
                if let Some(s) = sort {
                    t = t.attr("sort", s.as_str());
                }
                t
            }
            ResourceKind::Topic { fifo } => Resource::new(&addr, kinds::TOPIC)
                .attr("name", names.topic(name, *fifo))
                .attr("fifo", *fifo)
                .attr("tags", tags_value(&tags))
                .force_new("name")
                .force_new("fifo"),
            ResourceKind::Secret { description } => {
                let mut s = Resource::new(&addr, kinds::SECRET)
                    .attr("name", names.secret(name))
                    .attr("tags", tags_value(&tags))
                    .force_new("name");
                if let Some(d) = description {
                    s = s.attr("description", d.as_str());
                }
                if let Some(v) = secrets.get(name) {
                    s = s.attr("value", v.as_str()).sensitive("value");
                }
                s
            }
        };
        out.push(res);
    }

    let mut notifications: BTreeMap<&str, (Vec<Value>, BTreeSet<String>)> = BTreeMap::new();
    let mut routes: Vec<Resource> = Vec::new();
    for (fname, f) in &service.functions {
        let Some(artifact) = artifacts.functions.get(fname) else {
            return Err(format!(
                "function `{fname}` has no package; `ferry package` builds it"
            ));
        };
        let fnname = names.function(fname);
        let mut ftags = tags.clone();
        ftags.extend(f.tags.iter().map(|(k, v)| (k.clone(), v.clone())));

        let role_addr = format!("role.{fname}");
        out.push(
            Resource::new(&role_addr, kinds::ROLE)
                .attr("name", names.role(fname))
                .attr("assumeRolePolicy", assume_role_policy())
                .attr("policy", policy(service, &refs, fname, f)?)
                .attr("tags", tags_value(&ftags))
                .force_new("name")
                .function(fname),
        );

        let mut env: BTreeMap<String, Value> = BTreeMap::new();
        for u in &f.uses {
            let r = &service.services[u];
            env.insert(
                injected_env_name(u, &r.kind),
                Value::String(refs.injected(u)?),
            );
        }
        for (k, v) in &f.environment {
            match v {
                EnvValue::Text(t) => {
                    env.insert(k.clone(), Value::String(t.clone()));
                }
                EnvValue::Expr(e) => {
                    return Err(format!(
                        "function `{fname}`: environment variable `{k}` is a CloudFormation expression ({e}); the direct deploy cannot resolve it. Use a plain value, or deploy the template from `ferry package --provider aws` with CloudFormation"
                    ))
                }
            }
        }
        let func_addr = format!("function.{fname}");
        let mut func = Resource::new(&func_addr, kinds::FUNCTION)
            .attr("name", fnname.as_str())
            .attr("runtime", lambda_runtime(&f.runtime))
            .attr("handler", lambda_handler(f))
            .attr("memory", f.memory)
            .attr("timeout", f.timeout)
            .attr("architecture", lambda_arch(f.architecture))
            .attr("role", reference(&role_addr, "arn"))
            .attr("codeSha256", code_sha256(&artifact.sha256)?)
            .attr("environment", Value::Object(env.into_iter().collect()))
            .attr("tags", tags_value(&ftags))
            .force_new("name")
            .function(fname);
        if let Some(d) = &f.description {
            func = func.attr("description", d.as_str());
        }
        out.push(func);
        let fn_arn = reference(&func_addr, "arn");

        let mut http_payload = None;
        let mut schedules = 0;
        let mut storage_perms = BTreeSet::new();
        for t in &f.triggers {
            match t {
                Trigger::Http(h) => {
                    http_payload.get_or_insert(h.payload);
                    let key = route_key(&h.method, &h.path);
                    routes.push(
                        Resource::new(format!("route.{key}"), kinds::ROUTE)
                            .attr("api", reference("http-api", "id"))
                            .attr("routeKey", key.as_str())
                            .attr(
                                "target",
                                format!(
                                    "integrations/{}",
                                    reference(&format!("integration.{fname}"), "id")
                                ),
                            )
                            .force_new("api")
                            .function(fname),
                    );
                }
                Trigger::Queue {
                    queue,
                    batch_size,
                    batch_window,
                } => {
                    let mut m = Resource::new(format!("mapping.{fname}.{queue}"), kinds::MAPPING)
                        .attr("function", fn_arn.as_str())
                        .attr("eventSourceArn", refs.arn(queue)?)
                        .attr("batchSize", *batch_size)
                        .attr("functionResponseTypes", json!(["ReportBatchItemFailures"]))
                        .force_new("function")
                        .force_new("eventSourceArn")
                        // The role must allow sqs:ReceiveMessage before AWS accepts the mapping.
                        .depends_on(&role_addr)
                        .function(fname);
                    if let Some(w) = batch_window {
                        m = m.attr("batchWindow", *w);
                    }
                    out.push(m);
                }
                Trigger::Schedule {
                    expression,
                    enabled,
                    input,
                } => {
                    schedules += 1;
                    let addr = format!("schedule.{fname}.{schedules}");
                    let mut target = json!({"id": "ferry", "arn": fn_arn});
                    if let Some(i) = input {
                        target["input"] = Value::String(i.to_string());
                    }
                    out.push(
                        Resource::new(&addr, kinds::RULE)
                            .attr("name", names.rule(fname, schedules))
                            .attr("scheduleExpression", expression.as_str())
                            .attr("enabled", *enabled)
                            .attr("target", target)
                            .attr("tags", tags_value(&ftags))
                            .force_new("name")
                            .function(fname),
                    );
                    out.push(permission(
                        fname,
                        &format!("schedule-{schedules}"),
                        "events.amazonaws.com",
                        reference(&addr, "arn"),
                    ));
                }
                Trigger::Storage {
                    bucket,
                    events,
                    prefix,
                    suffix,
                } => {
                    let source = format!("storage-{bucket}");
                    if storage_perms.insert(bucket.clone()) {
                        out.push(permission(
                            fname,
                            &source,
                            "s3.amazonaws.com",
                            refs.arn(bucket)?,
                        ));
                    }
                    let entry = notifications.entry(bucket.as_str()).or_default();
                    let mut filter = Map::new();
                    if let Some(p) = prefix {
                        filter.insert("prefix".into(), Value::String(p.clone()));
                    }
                    if let Some(s) = suffix {
                        filter.insert("suffix".into(), Value::String(s.clone()));
                    }
                    entry.0.push(json!({
                        "id": format!("{fname}-{}", entry.0.len() + 1),
                        "functionArn": fn_arn,
                        "events": s3_events(events),
                        "filter": filter,
                    }));
                    entry.1.insert(format!("permission.{fname}.{source}"));
                }
                Trigger::Topic { topic, filter } => {
                    let mut s =
                        Resource::new(format!("subscription.{fname}.{topic}"), kinds::SUBSCRIPTION)
                            .attr("topic", refs.arn(topic)?)
                            .attr("endpoint", fn_arn.as_str())
                            .force_new("topic")
                            .force_new("endpoint")
                            .function(fname);
                    if let Some(fp) = filter {
                        s = s.attr("filterPolicy", fp.clone());
                    }
                    out.push(s);
                    out.push(permission(
                        fname,
                        &format!("topic-{topic}"),
                        "sns.amazonaws.com",
                        refs.arn(topic)?,
                    ));
                }
            }
        }
        if let Some(payload) = http_payload {
            out.push(
                Resource::new(format!("integration.{fname}"), kinds::INTEGRATION)
                    .attr("api", reference("http-api", "id"))
                    .attr("uri", fn_arn.as_str())
                    .attr(
                        "payloadFormatVersion",
                        if payload == PayloadVersion::V2 {
                            "2.0"
                        } else {
                            "1.0"
                        },
                    )
                    .force_new("api")
                    .function(fname),
            );
            out.push(permission(
                fname,
                "http",
                "apigateway.amazonaws.com",
                format!("{}/*", reference("http-api", "executionArn")),
            ));
        }
    }

    if !routes.is_empty() {
        let cors = service.functions.values().any(|f| {
            f.triggers
                .iter()
                .any(|t| matches!(t, Trigger::Http(h) if h.cors))
        });
        let mut api = Resource::new("http-api", kinds::API)
            .attr("name", names.api())
            .attr("tags", tags_value(&tags));
        if cors {
            api = api.attr(
                "cors",
                json!({"allowOrigins": ["*"], "allowMethods": ["*"], "allowHeaders": ["*"]}),
            );
        }
        out.push(api);
        out.push(
            Resource::new("stage.default", kinds::STAGE)
                .attr("api", reference("http-api", "id"))
                .attr("name", "$default")
                .attr("autoDeploy", true)
                .attr("tags", tags_value(&tags))
                .force_new("api")
                .force_new("name"),
        );
        out.extend(routes);
    }

    for (bucket, (configs, perms)) in notifications {
        let mut n = Resource::new(format!("notification.{bucket}"), kinds::NOTIFICATION)
            .attr("bucket", refs.bucket_name(bucket)?)
            .attr("lambda", Value::Array(configs))
            .force_new("bucket");
        // S3 checks that it may invoke each function when the configuration is written.
        for p in perms {
            n = n.depends_on(&p);
        }
        out.push(n);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_names_are_cut_with_a_hash() {
        let long = "a".repeat(100);
        let f = fit(&long, 64);
        assert_eq!(f.len(), 64);
        assert_ne!(fit(&format!("{long}b"), 64), f);
        assert_eq!(fit("short", 64), "short");
    }

    #[test]
    fn intrinsics_are_found() {
        assert!(has_intrinsic(
            &json!({"Resource": {"Fn::GetAtt": ["A", "Arn"]}})
        ));
        assert!(has_intrinsic(&json!([{"Ref": "X"}])));
        assert!(!has_intrinsic(
            &json!({"Resource": "arn:aws:s3:::x", "Refs": 1})
        ));
    }

    #[test]
    fn code_sha_is_lambdas_base64() {
        // sha256("") in hex and in base64.
        assert_eq!(
            code_sha256("e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")
                .unwrap(),
            "47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU="
        );
    }
}
