//! Read and apply, one resource kind at a time, through the AWS SDK.
//!
//! Every create is "find or create": when the resource already exists under its name (a
//! deploy was killed between making it and recording it), it is adopted and brought to the
//! desired settings, so the next run converges instead of failing or leaving an orphan.
//! Every delete succeeds when the resource is already gone.

use crate::compile::kinds;
use crate::{AwsProvider, Clients, Fail};
use aws_smithy_types::Blob;
use ferry_core::engine::{ApplyRequest, Attributes, Operation, ReadRequest};
use serde_json::{json, Value};
use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

type R<T> = Result<T, Fail>;

// ---- attribute helpers ----------------------------------------------------------------

fn text(a: &Attributes, k: &str) -> R<String> {
    match a.get(k) {
        Some(Value::String(s)) => Ok(s.clone()),
        Some(other) => Err(Fail::new(format!("attribute `{k}` is {other}, not text"))),
        None => Err(Fail::new(format!("attribute `{k}` is missing"))),
    }
}

fn opt_text(a: &Attributes, k: &str) -> Option<String> {
    a.get(k).and_then(Value::as_str).map(str::to_owned)
}

fn int(a: &Attributes, k: &str) -> Option<i32> {
    a.get(k).and_then(Value::as_i64).map(|n| n as i32)
}

fn flag(a: &Attributes, k: &str) -> bool {
    a.get(k).and_then(Value::as_bool).unwrap_or(false)
}

fn tags(a: &Attributes) -> BTreeMap<String, String> {
    a.get("tags")
        .and_then(Value::as_object)
        .map(|o| {
            o.iter()
                .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_owned()))
                .collect()
        })
        .unwrap_or_default()
}

fn desired<'a>(req: &'a ApplyRequest<'_>) -> R<&'a Attributes> {
    req.desired
        .ok_or_else(|| Fail::new("no desired attributes for a create or update"))
}

fn prior<'a>(req: &'a ApplyRequest<'_>) -> R<&'a Attributes> {
    req.prior
        .ok_or_else(|| Fail::new("no recorded attributes for an update or delete"))
}

fn out(pairs: &[(&str, Value)]) -> Attributes {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), v.clone()))
        .collect()
}

/// Ok(None) for "not found", the error otherwise.
fn absent<T>(r: R<T>) -> R<Option<T>> {
    match r {
        Ok(v) => Ok(Some(v)),
        Err(e) if e.not_found() => Ok(None),
        Err(e) => Err(e),
    }
}

/// Ok for "not found" (a delete of something already gone).
fn gone_ok<T>(r: R<T>) -> R<()> {
    absent(r).map(|_| ())
}

fn parse_doc(s: &str) -> Option<Value> {
    serde_json::from_str(s).ok().or_else(|| {
        let decoded = percent_decode(s);
        serde_json::from_str(&decoded).ok()
    })
}

/// IAM returns policy documents URL-encoded.
fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' && i + 2 < b.len() {
            if let Some(v) = std::str::from_utf8(&b[i + 1..i + 3])
                .ok()
                .and_then(|h| u8::from_str_radix(h, 16).ok())
            {
                out.push(v);
                i += 3;
                continue;
            }
        }
        out.push(if b[i] == b'+' { b' ' } else { b[i] });
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

async fn pause(attempt: u32) {
    let ms = (100u64 << attempt.min(5)).min(2000);
    tokio::time::sleep(Duration::from_millis(ms)).await;
}

// ---- dispatch ---------------------------------------------------------------------------

pub async fn read(p: &AwsProvider, req: &ReadRequest<'_>) -> R<Option<Attributes>> {
    let c = p.clients().await;
    let a = req.recorded;
    let snap = p.snapshot();
    if let Some(s) = snap.as_deref() {
        if let Some(found) = s.lookup(req.kind, a) {
            return Ok(found);
        }
    }
    match req.kind {
        kinds::ROLE => read_role(c, a, snap.as_deref()).await,
        kinds::FUNCTION => read_function(c, a).await,
        kinds::PERMISSION => read_permission(c, a, snap.as_deref()).await,
        kinds::API => read_api(c, a).await,
        kinds::INTEGRATION => read_integration(c, a).await,
        kinds::ROUTE => read_route(c, a).await,
        kinds::STAGE => read_stage(c, a).await,
        kinds::QUEUE => read_queue(c, a).await,
        kinds::MAPPING => read_mapping(c, a).await,
        kinds::RULE => read_rule(c, a).await,
        kinds::BUCKET => read_bucket(c, a).await,
        kinds::NOTIFICATION => read_notification(c, a).await,
        kinds::TOPIC => read_topic(c, a).await,
        kinds::SUBSCRIPTION => read_subscription(c, a).await,
        kinds::TABLE => read_table(c, a).await,
        kinds::SECRET => read_secret(c, a).await,
        other => Err(Fail::new(format!("unknown resource kind `{other}`"))),
    }
}

pub async fn apply(p: &AwsProvider, req: &ApplyRequest<'_>) -> R<Attributes> {
    let c = p.clients().await;
    let op = req.operation;
    if op == Operation::Delete {
        let a = prior(req)?;
        match req.kind {
            kinds::ROLE => delete_role(c, a).await?,
            kinds::FUNCTION => gone_ok(
                c.lambda
                    .delete_function()
                    .function_name(text(a, "name")?)
                    .send()
                    .await
                    .map_err(Fail::from),
            )?,
            kinds::PERMISSION => gone_ok(
                c.lambda
                    .remove_permission()
                    .function_name(text(a, "function")?)
                    .statement_id(text(a, "statementId")?)
                    .send()
                    .await
                    .map_err(Fail::from),
            )?,
            kinds::API => gone_ok(
                c.apigw
                    .delete_api()
                    .api_id(text(a, "id")?)
                    .send()
                    .await
                    .map_err(Fail::from),
            )?,
            kinds::INTEGRATION => gone_ok(
                c.apigw
                    .delete_integration()
                    .api_id(text(a, "api")?)
                    .integration_id(text(a, "id")?)
                    .send()
                    .await
                    .map_err(Fail::from),
            )?,
            kinds::ROUTE => gone_ok(
                c.apigw
                    .delete_route()
                    .api_id(text(a, "api")?)
                    .route_id(text(a, "id")?)
                    .send()
                    .await
                    .map_err(Fail::from),
            )?,
            kinds::STAGE => gone_ok(
                c.apigw
                    .delete_stage()
                    .api_id(text(a, "api")?)
                    .stage_name(text(a, "name")?)
                    .send()
                    .await
                    .map_err(Fail::from),
            )?,
            kinds::QUEUE => delete_queue(c, a).await?,
            kinds::MAPPING => delete_mapping(c, a).await?,
            kinds::RULE => delete_rule(c, a).await?,
            kinds::BUCKET => delete_bucket(c, a, p.options.force).await?,
            kinds::NOTIFICATION => delete_notification(c, a).await?,
            kinds::TOPIC => gone_ok(
                c.sns
                    .delete_topic()
                    .topic_arn(text(a, "arn")?)
                    .send()
                    .await
                    .map_err(Fail::from),
            )?,
            kinds::SUBSCRIPTION => gone_ok(
                c.sns
                    .unsubscribe()
                    .subscription_arn(text(a, "arn")?)
                    .send()
                    .await
                    .map_err(Fail::from),
            )?,
            kinds::TABLE => gone_ok(
                c.dynamodb
                    .delete_table()
                    .table_name(text(a, "name")?)
                    .send()
                    .await
                    .map_err(Fail::from),
            )?,
            kinds::SECRET => gone_ok(
                c.secrets
                    .delete_secret()
                    .secret_id(text(a, "name")?)
                    .force_delete_without_recovery(true)
                    .send()
                    .await
                    .map_err(Fail::from),
            )?,
            other => return Err(Fail::new(format!("unknown resource kind `{other}`"))),
        }
        return Ok(Attributes::new());
    }
    let d = desired(req)?;
    let prior = req.prior;
    match req.kind {
        kinds::ROLE => put_role(c, d, op).await,
        kinds::FUNCTION => put_function(p, c, d, op).await,
        kinds::PERMISSION => put_permission(c, d).await,
        kinds::API => put_api(c, d, prior).await,
        kinds::INTEGRATION => put_integration(c, d, prior).await,
        kinds::ROUTE => put_route(c, d, prior).await,
        kinds::STAGE => put_stage(c, d, op).await,
        kinds::QUEUE => put_queue(c, d, op, prior).await,
        kinds::MAPPING => put_mapping(c, d, prior).await,
        kinds::RULE => put_rule(c, d).await,
        kinds::BUCKET => put_bucket(c, d, op).await,
        kinds::NOTIFICATION => put_notification(c, d).await,
        kinds::TOPIC => put_topic(c, d).await,
        kinds::SUBSCRIPTION => put_subscription(c, d, prior).await,
        kinds::TABLE => put_table(c, d).await,
        kinds::SECRET => put_secret(c, d).await,
        other => Err(Fail::new(format!("unknown resource kind `{other}`"))),
    }
}

// ---- IAM role ---------------------------------------------------------------------------

async fn put_role(c: &Clients, d: &Attributes, op: Operation) -> R<Attributes> {
    use aws_sdk_iam::types::Tag;
    let name = text(d, "name")?;
    let assume = d
        .get("assumeRolePolicy")
        .cloned()
        .unwrap_or(Value::Null)
        .to_string();
    let tag_list: Vec<Tag> = tags(d)
        .into_iter()
        .map(|(k, v)| Tag::builder().key(k).value(v).build())
        .collect::<Result<_, _>>()
        .map_err(|e| Fail::new(e.to_string()))?;
    let created = if op == Operation::Create {
        match c
            .iam
            .create_role()
            .role_name(&name)
            .assume_role_policy_document(&assume)
            .description("ferry: execution role of one function")
            .set_tags(Some(tag_list.clone()))
            .send()
            .await
            .map_err(Fail::from)
        {
            Ok(r) => r.role().map(|r| r.arn().to_owned()),
            Err(e) if e.is("EntityAlreadyExists") => None,
            Err(e) => return Err(e),
        }
    } else {
        None
    };
    if created.is_none() {
        c.iam
            .update_assume_role_policy()
            .role_name(&name)
            .policy_document(&assume)
            .send()
            .await?;
        c.iam
            .tag_role()
            .role_name(&name)
            .set_tags(Some(tag_list))
            .send()
            .await?;
    }
    c.iam
        .put_role_policy()
        .role_name(&name)
        .policy_name("ferry")
        .policy_document(d.get("policy").cloned().unwrap_or(Value::Null).to_string())
        .send()
        .await?;
    let arn = match created {
        Some(a) => a,
        None => c
            .iam
            .get_role()
            .role_name(&name)
            .send()
            .await?
            .role()
            .map(|r| r.arn().to_owned())
            .unwrap_or_default(),
    };
    Ok(out(&[("arn", json!(arn))]))
}

async fn read_role(c: &Clients, a: &Attributes, snap: Option<&Snapshot>) -> R<Option<Attributes>> {
    let name = text(a, "name")?;
    let (assume, policy) = match snap.filter(|s| s.listed.contains(&kinds::ROLE)) {
        Some(s) => match s.roles.get(&name) {
            Some(found) => found.clone(),
            None => return Ok(None),
        },
        None => {
            let Some(role) = absent(
                c.iam
                    .get_role()
                    .role_name(&name)
                    .send()
                    .await
                    .map_err(Fail::from),
            )?
            else {
                return Ok(None);
            };
            let policy = absent(
                c.iam
                    .get_role_policy()
                    .role_name(&name)
                    .policy_name("ferry")
                    .send()
                    .await
                    .map_err(Fail::from),
            )?;
            (
                role.role()
                    .and_then(|r| r.assume_role_policy_document())
                    .and_then(parse_doc),
                policy.and_then(|p| parse_doc(p.policy_document())),
            )
        }
    };
    let mut live = Attributes::new();
    live.insert("name".into(), json!(name));
    if let Some(doc) = assume {
        live.insert("assumeRolePolicy".into(), doc);
    }
    live.insert("policy".into(), policy.unwrap_or(Value::Null));
    Ok(Some(live))
}

async fn delete_role(c: &Clients, a: &Attributes) -> R<()> {
    let name = text(a, "name")?;
    gone_ok(
        c.iam
            .delete_role_policy()
            .role_name(&name)
            .policy_name("ferry")
            .send()
            .await
            .map_err(Fail::from),
    )?;
    gone_ok(
        c.iam
            .delete_role()
            .role_name(&name)
            .send()
            .await
            .map_err(Fail::from),
    )
}

// ---- Lambda function --------------------------------------------------------------------

fn env_map(d: &Attributes) -> HashMap<String, String> {
    d.get("environment")
        .and_then(Value::as_object)
        .map(|o| {
            o.iter()
                .map(|(k, v)| {
                    (
                        k.clone(),
                        v.as_str()
                            .map(str::to_owned)
                            .unwrap_or_else(|| v.to_string()),
                    )
                })
                .collect()
        })
        .unwrap_or_default()
}

/// Lambda's limit for a zip sent inline with the request.
const INLINE_MAX: usize = 50 * 1024 * 1024;

/// Where a function's code comes from.
enum Code {
    /// Sent with the request.
    Inline(Vec<u8>),
    /// Uploaded to the deployment bucket first.
    S3 { bucket: String, key: String },
}

/// The package with this `CodeSha256`, inline, or (with `provider.aws.deploymentBucket`)
/// uploaded once under its content hash, so functions sharing a package share the upload.
async fn code_for(p: &AwsProvider, c: &Clients, sha: &str) -> R<Code> {
    let path = p.package_path(sha).ok_or_else(|| {
        Fail::new(format!(
            "no package with code sha256 {sha} was built in this run; run `ferry package` and deploy again"
        ))
    })?;
    let bytes = tokio::fs::read(&path)
        .await
        .map_err(|e| Fail::new(format!("reading {}: {e}", path.display())))?;
    let Some(bucket) = p.deployment_bucket() else {
        if bytes.len() > INLINE_MAX {
            return Err(Fail::new(format!(
                "{} is {} MB; Lambda takes at most 50 MB inline. Set `provider.aws.deploymentBucket` to a bucket of yours and ferry uploads packages there",
                path.display(),
                bytes.len() / (1024 * 1024)
            )));
        }
        return Ok(Code::Inline(bytes));
    };
    use base64::Engine;
    let hex_sha = base64::engine::general_purpose::STANDARD
        .decode(sha)
        .map(hex::encode)
        .map_err(|e| Fail::new(format!("bad code sha256 {sha}: {e}")))?;
    let key = format!("ferry/packages/{hex_sha}.zip");
    let exists = absent(
        c.s3.head_object()
            .bucket(&bucket)
            .key(&key)
            .send()
            .await
            .map_err(Fail::from),
    )?
    .is_some();
    if !exists {
        c.s3.put_object()
            .bucket(&bucket)
            .key(&key)
            .content_type("application/zip")
            .body(aws_sdk_s3::primitives::ByteStream::from(bytes))
            .send()
            .await?;
    }
    Ok(Code::S3 { bucket, key })
}

/// Waits until the function can take the next change: `State=Active` and
/// `LastUpdateStatus` not `InProgress`.
async fn wait_function(c: &Clients, name: &str) -> R<String> {
    use aws_sdk_lambda::types::{LastUpdateStatus, State};
    for attempt in 0..120 {
        let f = c
            .lambda
            .get_function_configuration()
            .function_name(name)
            .send()
            .await?;
        match (f.state(), f.last_update_status()) {
            (Some(State::Failed), _) => {
                return Err(Fail::new(format!(
                    "function {name} failed to become active: {}",
                    f.state_reason().unwrap_or("no reason given")
                )))
            }
            (_, Some(LastUpdateStatus::Failed)) => {
                return Err(Fail::new(format!(
                    "the update of {name} failed: {}",
                    f.last_update_status_reason().unwrap_or("no reason given")
                )))
            }
            (Some(State::Pending), _) | (_, Some(LastUpdateStatus::InProgress)) => {
                pause(attempt).await
            }
            _ => return Ok(f.function_arn().unwrap_or_default().to_owned()),
        }
    }
    Err(Fail::retry(format!("function {name} is still updating")))
}

async fn put_function(
    p: &AwsProvider,
    c: &Clients,
    d: &Attributes,
    op: Operation,
) -> R<Attributes> {
    use aws_sdk_lambda::types::{Architecture, Environment, FunctionCode, Runtime};
    let name = text(d, "name")?;
    let sha = text(d, "codeSha256")?;
    let arch = Architecture::from(text(d, "architecture")?.as_str());
    let env = Environment::builder()
        .set_variables(Some(env_map(d)))
        .build();
    let ftags: HashMap<String, String> = tags(d).into_iter().collect();
    if op == Operation::Create {
        let code = match code_for(p, c, &sha).await? {
            Code::Inline(zip) => FunctionCode::builder().zip_file(Blob::new(zip)).build(),
            Code::S3 { bucket, key } => FunctionCode::builder()
                .s3_bucket(bucket)
                .s3_key(key)
                .build(),
        };
        let made = c
            .lambda
            .create_function()
            .function_name(&name)
            .runtime(Runtime::from(text(d, "runtime")?.as_str()))
            .handler(text(d, "handler")?)
            .role(text(d, "role")?)
            .memory_size(int(d, "memory").unwrap_or(128))
            .timeout(int(d, "timeout").unwrap_or(3))
            .architectures(arch.clone())
            .environment(env.clone())
            .set_description(opt_text(d, "description"))
            .set_tags(Some(ftags.clone()))
            .code(code)
            .send()
            .await
            .map_err(Fail::from);
        match made {
            Ok(f) => {
                use aws_sdk_lambda::types::{LastUpdateStatus, State};
                // Often active at once (always on moto); otherwise wait until it is.
                let ready = f.state() == Some(&State::Active)
                    && f.last_update_status() != Some(&LastUpdateStatus::InProgress);
                let arn = match f.function_arn() {
                    Some(arn) if ready => arn.to_owned(),
                    _ => wait_function(c, &name).await?,
                };
                return Ok(out(&[("arn", json!(arn))]));
            }
            Err(e) if e.is("ResourceConflictException") && e.says("already exist") => {}
            Err(e) => return Err(e),
        }
    }
    // Update, or adopt a function a killed run made: compare with what is live, change only
    // what differs, code only when its sha256 differs from the deployed CodeSha256.
    let live = c
        .lambda
        .get_function_configuration()
        .function_name(&name)
        .send()
        .await?;
    if live.code_sha256() != Some(sha.as_str()) || live.architectures().first() != Some(&arch) {
        let update = c
            .lambda
            .update_function_code()
            .function_name(&name)
            .architectures(arch);
        let update = match code_for(p, c, &sha).await? {
            Code::Inline(zip) => update.zip_file(Blob::new(zip)),
            Code::S3 { bucket, key } => update.s3_bucket(bucket).s3_key(key),
        };
        wait_function(c, &name).await?;
        update.send().await?;
        wait_function(c, &name).await?;
    }
    let live_env: HashMap<String, String> = live
        .environment()
        .and_then(|e| e.variables())
        .cloned()
        .unwrap_or_default();
    let config_differs = live.runtime().map(|r| r.as_str()) != Some(text(d, "runtime")?.as_str())
        || live.handler() != Some(text(d, "handler")?.as_str())
        || live.role() != Some(text(d, "role")?.as_str())
        || live.memory_size() != int(d, "memory")
        || live.timeout() != int(d, "timeout")
        || live.description().unwrap_or_default() != opt_text(d, "description").unwrap_or_default()
        || live_env != env_map(d);
    if config_differs {
        c.lambda
            .update_function_configuration()
            .function_name(&name)
            .runtime(Runtime::from(text(d, "runtime")?.as_str()))
            .handler(text(d, "handler")?)
            .role(text(d, "role")?)
            .memory_size(int(d, "memory").unwrap_or(128))
            .timeout(int(d, "timeout").unwrap_or(3))
            .environment(env)
            .description(opt_text(d, "description").unwrap_or_default())
            .send()
            .await?;
    }
    let arn = wait_function(c, &name).await?;
    sync_lambda_tags(c, &arn, ftags).await?;
    Ok(out(&[("arn", json!(arn))]))
}

async fn sync_lambda_tags(c: &Clients, arn: &str, want: HashMap<String, String>) -> R<()> {
    let have = c
        .lambda
        .list_tags()
        .resource(arn)
        .send()
        .await?
        .tags()
        .cloned()
        .unwrap_or_default();
    if have == want {
        return Ok(());
    }
    let stale: Vec<String> = have
        .keys()
        .filter(|k| !want.contains_key(*k))
        .cloned()
        .collect();
    if !stale.is_empty() {
        c.lambda
            .untag_resource()
            .resource(arn)
            .set_tag_keys(Some(stale))
            .send()
            .await?;
    }
    c.lambda
        .tag_resource()
        .resource(arn)
        .set_tags(Some(want))
        .send()
        .await?;
    Ok(())
}

async fn read_function(c: &Clients, a: &Attributes) -> R<Option<Attributes>> {
    let name = text(a, "name")?;
    let Some(f) = absent(
        c.lambda
            .get_function()
            .function_name(&name)
            .send()
            .await
            .map_err(Fail::from),
    )?
    else {
        return Ok(None);
    };
    Ok(f.configuration().map(|f| function_live(&name, a, f)))
}

/// What drift is judged on, from a function's configuration (as `GetFunctionConfiguration`
/// or `ListFunctions` return it).
fn function_live(
    name: &str,
    a: &Attributes,
    f: &aws_sdk_lambda::types::FunctionConfiguration,
) -> Attributes {
    let env: serde_json::Map<String, Value> = f
        .environment()
        .and_then(|e| e.variables())
        .map(|v| v.iter().map(|(k, v)| (k.clone(), json!(v))).collect())
        .unwrap_or_default();
    let mut live = out(&[
        ("name", json!(name)),
        ("runtime", json!(f.runtime().map(|r| r.as_str()))),
        ("handler", json!(f.handler())),
        ("memory", json!(f.memory_size())),
        ("timeout", json!(f.timeout())),
        ("role", json!(f.role())),
        ("codeSha256", json!(f.code_sha256())),
        (
            "architecture",
            json!(f
                .architectures()
                .first()
                .map(|a| a.as_str())
                .unwrap_or("x86_64")),
        ),
        ("environment", Value::Object(env)),
    ]);
    if a.contains_key("description") || f.description().is_some_and(|d| !d.is_empty()) {
        live.insert(
            "description".into(),
            json!(f.description().unwrap_or_default()),
        );
    }
    live
}

// ---- Lambda permission ------------------------------------------------------------------

async fn put_permission(c: &Clients, d: &Attributes) -> R<Attributes> {
    let function = text(d, "function")?;
    let sid = text(d, "statementId")?;
    // A statement with this id may exist (a killed run made it, or it is being replaced):
    // remove it first, so the function never holds two statements for one trigger.
    if read_permission(c, d, None).await?.is_some() {
        gone_ok(
            c.lambda
                .remove_permission()
                .function_name(&function)
                .statement_id(&sid)
                .send()
                .await
                .map_err(Fail::from),
        )?;
    }
    c.lambda
        .add_permission()
        .function_name(&function)
        .statement_id(&sid)
        .action("lambda:InvokeFunction")
        .principal(text(d, "principal")?)
        .source_arn(text(d, "sourceArn")?)
        .send()
        .await?;
    Ok(Attributes::new())
}

async fn read_permission(
    c: &Clients,
    a: &Attributes,
    snap: Option<&Snapshot>,
) -> R<Option<Attributes>> {
    let function = text(a, "function")?;
    let sid = text(a, "statementId")?;
    let doc = match snap {
        Some(s) => s.policy(c, &function).await?,
        None => function_policy(c, &function).await?,
    };
    let found = doc.as_ref().is_some_and(|d| {
        d["Statement"]
            .as_array()
            .is_some_and(|s| s.iter().any(|st| st["Sid"] == json!(sid)))
    });
    Ok(found.then(|| out(&[("function", json!(function)), ("statementId", json!(sid))])))
}

/// A function's resource policy, `None` when it has none (or the function is gone).
async fn function_policy(c: &Clients, function: &str) -> R<Option<Value>> {
    Ok(absent(
        c.lambda
            .get_policy()
            .function_name(function)
            .send()
            .await
            .map_err(Fail::from),
    )?
    .and_then(|p| p.policy().and_then(parse_doc)))
}

/// Live attributes of a route, from `GetRoute` or `GetRoutes` alike.
fn route_live(key: Option<&str>, target: Option<&str>) -> Attributes {
    out(&[("routeKey", json!(key)), ("target", json!(target))])
}

/// Live attributes of an integration, from `GetIntegration` or `GetIntegrations` alike.
fn integration_live(uri: Option<&str>, version: Option<&str>) -> Attributes {
    out(&[
        ("uri", json!(uri)),
        ("payloadFormatVersion", json!(version)),
    ])
}

/// Live attributes of an event source mapping, from the single or the list call alike.
fn mapping_live(source: Option<&str>, batch: Option<i32>) -> Attributes {
    out(&[
        ("eventSourceArn", json!(source)),
        ("batchSize", json!(batch)),
    ])
}

/// Live attributes of a schedule rule, from `DescribeRule` or `ListRules` alike.
fn rule_live(
    name: &str,
    schedule: Option<&str>,
    state: Option<&aws_sdk_eventbridge::types::RuleState>,
) -> Attributes {
    use aws_sdk_eventbridge::types::RuleState;
    out(&[
        ("name", json!(name)),
        ("scheduleExpression", json!(schedule)),
        ("enabled", json!(state == Some(&RuleState::Enabled))),
    ])
}

// ---- API Gateway v2 ---------------------------------------------------------------------

fn cors(d: &Attributes) -> Option<aws_sdk_apigatewayv2::types::Cors> {
    let c = d.get("cors")?;
    let list = |k: &str| -> Option<Vec<String>> {
        c.get(k)?.as_array().map(|a| {
            a.iter()
                .filter_map(|x| x.as_str().map(str::to_owned))
                .collect()
        })
    };
    Some(
        aws_sdk_apigatewayv2::types::Cors::builder()
            .set_allow_origins(list("allowOrigins"))
            .set_allow_methods(list("allowMethods"))
            .set_allow_headers(list("allowHeaders"))
            .build(),
    )
}

async fn api_outputs(c: &Clients, id: &str, endpoint: Option<&str>) -> R<Attributes> {
    let account = c.account().await?;
    Ok(out(&[
        ("id", json!(id)),
        (
            "endpoint",
            json!(endpoint
                .map(str::to_owned)
                .unwrap_or_else(|| format!("https://{id}.execute-api.{}.amazonaws.com", c.region))),
        ),
        (
            "executionArn",
            json!(format!(
                "arn:{}:execute-api:{}:{account}:{id}",
                c.partition(),
                c.region
            )),
        ),
    ]))
}

async fn put_api(c: &Clients, d: &Attributes, prior: Option<&Attributes>) -> R<Attributes> {
    use aws_sdk_apigatewayv2::types::ProtocolType;
    let name = text(d, "name")?;
    let want_tags: HashMap<String, String> = tags(d).into_iter().collect();
    // The API recorded, else one a killed run made (same name, same ferry tags).
    let mut id = prior.and_then(|p| opt_text(p, "id"));
    if id.is_none() {
        let mut token = None;
        loop {
            let page = c.apigw.get_apis().set_next_token(token).send().await?;
            if let Some(api) = page.items().iter().find(|a| {
                a.name() == Some(name.as_str())
                    && a.tags().and_then(|t| t.get("ferry:service"))
                        == want_tags.get("ferry:service")
                    && a.tags().and_then(|t| t.get("ferry:stage")) == want_tags.get("ferry:stage")
            }) {
                id = api.api_id().map(str::to_owned);
                break;
            }
            token = page.next_token().map(str::to_owned);
            if token.is_none() {
                break;
            }
        }
    }
    if let Some(id) = id {
        let api = c
            .apigw
            .update_api()
            .api_id(&id)
            .name(&name)
            .set_cors_configuration(cors(d))
            .send()
            .await?;
        if d.get("cors").is_none() {
            gone_ok(
                c.apigw
                    .delete_cors_configuration()
                    .api_id(&id)
                    .send()
                    .await
                    .map_err(Fail::from),
            )?;
        }
        return api_outputs(c, &id, api.api_endpoint()).await;
    }
    let api = c
        .apigw
        .create_api()
        .name(&name)
        .protocol_type(ProtocolType::Http)
        .set_cors_configuration(cors(d))
        .set_tags(Some(want_tags))
        .send()
        .await?;
    let id = api
        .api_id()
        .ok_or_else(|| Fail::new("CreateApi returned no id"))?;
    api_outputs(c, id, api.api_endpoint()).await
}

async fn read_api(c: &Clients, a: &Attributes) -> R<Option<Attributes>> {
    let id = text(a, "id")?;
    let Some(api) = absent(
        c.apigw
            .get_api()
            .api_id(&id)
            .send()
            .await
            .map_err(Fail::from),
    )?
    else {
        return Ok(None);
    };
    Ok(Some(out(&[("name", json!(api.name()))])))
}

async fn put_integration(c: &Clients, d: &Attributes, prior: Option<&Attributes>) -> R<Attributes> {
    use aws_sdk_apigatewayv2::types::IntegrationType;
    let api = text(d, "api")?;
    let uri = text(d, "uri")?;
    let version = text(d, "payloadFormatVersion")?;
    let mut id = prior.and_then(|p| opt_text(p, "id"));
    if id.is_none() {
        let list = c.apigw.get_integrations().api_id(&api).send().await?;
        id = list
            .items()
            .iter()
            .find(|i| i.integration_uri() == Some(uri.as_str()))
            .and_then(|i| i.integration_id().map(str::to_owned));
    }
    let id = match id {
        Some(id) => {
            c.apigw
                .update_integration()
                .api_id(&api)
                .integration_id(&id)
                .integration_type(IntegrationType::AwsProxy)
                .integration_uri(&uri)
                .payload_format_version(&version)
                .send()
                .await?;
            id
        }
        None => c
            .apigw
            .create_integration()
            .api_id(&api)
            .integration_type(IntegrationType::AwsProxy)
            .integration_uri(&uri)
            .integration_method("POST")
            .payload_format_version(&version)
            .send()
            .await?
            .integration_id()
            .unwrap_or_default()
            .to_owned(),
    };
    Ok(out(&[("id", json!(id))]))
}

async fn read_integration(c: &Clients, a: &Attributes) -> R<Option<Attributes>> {
    let Some(i) = absent(
        c.apigw
            .get_integration()
            .api_id(text(a, "api")?)
            .integration_id(text(a, "id")?)
            .send()
            .await
            .map_err(Fail::from),
    )?
    else {
        return Ok(None);
    };
    Ok(Some(integration_live(
        i.integration_uri(),
        i.payload_format_version(),
    )))
}

async fn put_route(c: &Clients, d: &Attributes, prior: Option<&Attributes>) -> R<Attributes> {
    let api = text(d, "api")?;
    let key = text(d, "routeKey")?;
    let target = text(d, "target")?;
    let mut id = prior.and_then(|p| opt_text(p, "id"));
    if id.is_none() {
        let list = c.apigw.get_routes().api_id(&api).send().await?;
        id = list
            .items()
            .iter()
            .find(|r| r.route_key() == Some(key.as_str()))
            .and_then(|r| r.route_id().map(str::to_owned));
    }
    let id = match id {
        Some(id) => {
            c.apigw
                .update_route()
                .api_id(&api)
                .route_id(&id)
                .route_key(&key)
                .target(&target)
                .send()
                .await?;
            id
        }
        None => c
            .apigw
            .create_route()
            .api_id(&api)
            .route_key(&key)
            .target(&target)
            .send()
            .await?
            .route_id()
            .unwrap_or_default()
            .to_owned(),
    };
    Ok(out(&[("id", json!(id))]))
}

async fn read_route(c: &Clients, a: &Attributes) -> R<Option<Attributes>> {
    let Some(r) = absent(
        c.apigw
            .get_route()
            .api_id(text(a, "api")?)
            .route_id(text(a, "id")?)
            .send()
            .await
            .map_err(Fail::from),
    )?
    else {
        return Ok(None);
    };
    Ok(Some(route_live(r.route_key(), r.target())))
}

async fn put_stage(c: &Clients, d: &Attributes, op: Operation) -> R<Attributes> {
    let api = text(d, "api")?;
    let name = text(d, "name")?;
    if op == Operation::Create {
        let r = c
            .apigw
            .create_stage()
            .api_id(&api)
            .stage_name(&name)
            .auto_deploy(flag(d, "autoDeploy"))
            .set_tags(Some(tags(d).into_iter().collect()))
            .send()
            .await
            .map_err(Fail::from);
        match r {
            Ok(_) => return Ok(Attributes::new()),
            Err(e) if e.is("ConflictException") => {}
            Err(e) => return Err(e),
        }
    }
    c.apigw
        .update_stage()
        .api_id(&api)
        .stage_name(&name)
        .auto_deploy(flag(d, "autoDeploy"))
        .send()
        .await?;
    Ok(Attributes::new())
}

async fn read_stage(c: &Clients, a: &Attributes) -> R<Option<Attributes>> {
    let Some(s) = absent(
        c.apigw
            .get_stage()
            .api_id(text(a, "api")?)
            .stage_name(text(a, "name")?)
            .send()
            .await
            .map_err(Fail::from),
    )?
    else {
        return Ok(None);
    };
    Ok(Some(out(&[(
        "autoDeploy",
        json!(s.auto_deploy().unwrap_or(false)),
    )])))
}

// ---- SQS --------------------------------------------------------------------------------

fn queue_attributes(d: &Attributes) -> HashMap<aws_sdk_sqs::types::QueueAttributeName, String> {
    use aws_sdk_sqs::types::QueueAttributeName as N;
    let mut m = HashMap::new();
    if let Some(v) = int(d, "visibilityTimeout") {
        m.insert(N::VisibilityTimeout, v.to_string());
    }
    if let Some(v) = int(d, "messageRetentionPeriod") {
        m.insert(N::MessageRetentionPeriod, v.to_string());
    }
    if let Some(r) = d.get("redrive") {
        m.insert(
            N::RedrivePolicy,
            json!({
                "deadLetterTargetArn": r["deadLetterTargetArn"],
                "maxReceiveCount": r["maxReceiveCount"],
            })
            .to_string(),
        );
    }
    m
}

/// A queue's URL and ARN. The ARN follows from the URL (`.../<account>/<name>`), which saves a
/// call per queue; when the URL has another shape, SQS is asked.
async fn queue_outputs(c: &Clients, url: &str) -> R<Attributes> {
    use aws_sdk_sqs::types::QueueAttributeName as N;
    let mut parts = url.trim_end_matches('/').rsplit('/');
    let (name, account) = (parts.next(), parts.next());
    let arn = match (name, account) {
        (Some(n), Some(a)) if a.len() == 12 && a.bytes().all(|b| b.is_ascii_digit()) => {
            format!("arn:{}:sqs:{}:{a}:{n}", c.partition(), c.region)
        }
        _ => c
            .sqs
            .get_queue_attributes()
            .queue_url(url)
            .attribute_names(N::QueueArn)
            .send()
            .await?
            .attributes()
            .and_then(|m| m.get(&N::QueueArn))
            .cloned()
            .unwrap_or_default(),
    };
    Ok(out(&[("url", json!(url)), ("arn", json!(arn))]))
}

async fn put_queue(
    c: &Clients,
    d: &Attributes,
    op: Operation,
    prior: Option<&Attributes>,
) -> R<Attributes> {
    use aws_sdk_sqs::types::QueueAttributeName as N;
    let name = text(d, "name")?;
    let mut attrs = queue_attributes(d);
    let want_tags: HashMap<String, String> = tags(d).into_iter().collect();
    if op == Operation::Create {
        let mut create_attrs = attrs.clone();
        if flag(d, "fifo") {
            create_attrs.insert(N::FifoQueue, "true".into());
        }
        // CreateQueue returns the existing queue when the attributes match; when they
        // differ (a queue a killed run made) it is updated below.
        match c
            .sqs
            .create_queue()
            .queue_name(&name)
            .set_attributes(Some(create_attrs))
            .set_tags(Some(want_tags.clone()))
            .send()
            .await
            .map_err(Fail::from)
        {
            Ok(r) => return queue_outputs(c, r.queue_url().unwrap_or_default()).await,
            Err(e)
                if e.says("already exists")
                    || e.is("QueueAlreadyExists")
                    || e.is("QueueNameExists") => {}
            Err(e) => return Err(e),
        }
    }
    let url = match prior.and_then(|p| opt_text(p, "url")) {
        Some(u) => u,
        None => c
            .sqs
            .get_queue_url()
            .queue_name(&name)
            .send()
            .await?
            .queue_url()
            .unwrap_or_default()
            .to_owned(),
    };
    // A dead-letter queue that is no longer wanted: an empty policy removes the redrive.
    if !d.contains_key("redrive") && prior.is_some_and(|p| p.contains_key("redrive")) {
        attrs.insert(N::RedrivePolicy, String::new());
    }
    c.sqs
        .set_queue_attributes()
        .queue_url(&url)
        .set_attributes(Some(attrs))
        .send()
        .await?;
    c.sqs
        .tag_queue()
        .queue_url(&url)
        .set_tags(Some(want_tags))
        .send()
        .await?;
    queue_outputs(c, &url).await
}

async fn read_queue(c: &Clients, a: &Attributes) -> R<Option<Attributes>> {
    use aws_sdk_sqs::types::QueueAttributeName as N;
    let url = text(a, "url")?;
    let Some(r) = absent(
        c.sqs
            .get_queue_attributes()
            .queue_url(&url)
            .attribute_names(N::All)
            .send()
            .await
            .map_err(Fail::from),
    )?
    else {
        return Ok(None);
    };
    let m = r.attributes().cloned().unwrap_or_default();
    let num = |k: &N| m.get(k).and_then(|v| v.parse::<i64>().ok());
    let mut live = out(&[("name", json!(text(a, "name")?))]);
    if a.contains_key("visibilityTimeout") {
        live.insert(
            "visibilityTimeout".into(),
            json!(num(&N::VisibilityTimeout)),
        );
    }
    if a.contains_key("messageRetentionPeriod") {
        live.insert(
            "messageRetentionPeriod".into(),
            json!(num(&N::MessageRetentionPeriod)),
        );
    }
    if let Some(rp) = m.get(&N::RedrivePolicy).and_then(|s| parse_doc(s)) {
        let max = rp["maxReceiveCount"]
            .as_i64()
            .or_else(|| rp["maxReceiveCount"].as_str().and_then(|s| s.parse().ok()));
        live.insert(
            "redrive".into(),
            json!({"deadLetterTargetArn": rp["deadLetterTargetArn"], "maxReceiveCount": max}),
        );
    }
    Ok(Some(live))
}

async fn delete_queue(c: &Clients, a: &Attributes) -> R<()> {
    let url = match opt_text(a, "url") {
        Some(u) => u,
        None => match absent(
            c.sqs
                .get_queue_url()
                .queue_name(text(a, "name")?)
                .send()
                .await
                .map_err(Fail::from),
        )? {
            Some(r) => r.queue_url().unwrap_or_default().to_owned(),
            None => return Ok(()),
        },
    };
    gone_ok(
        c.sqs
            .delete_queue()
            .queue_url(url)
            .send()
            .await
            .map_err(Fail::from),
    )
}

// ---- event source mapping ---------------------------------------------------------------

async fn put_mapping(c: &Clients, d: &Attributes, prior: Option<&Attributes>) -> R<Attributes> {
    use aws_sdk_lambda::types::FunctionResponseType;
    let function = text(d, "function")?;
    let source = text(d, "eventSourceArn")?;
    let types: Vec<FunctionResponseType> = d
        .get("functionResponseTypes")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(Value::as_str)
                .map(FunctionResponseType::from)
                .collect()
        })
        .unwrap_or_default();
    let mut uuid = prior.and_then(|p| opt_text(p, "uuid"));
    if uuid.is_none() {
        let list = c
            .lambda
            .list_event_source_mappings()
            .function_name(&function)
            .event_source_arn(&source)
            .send()
            .await?;
        uuid = list
            .event_source_mappings()
            .first()
            .and_then(|m| m.uuid().map(str::to_owned));
    }
    let uuid = match uuid {
        Some(u) => {
            c.lambda
                .update_event_source_mapping()
                .uuid(&u)
                .batch_size(int(d, "batchSize").unwrap_or(10))
                .maximum_batching_window_in_seconds(int(d, "batchWindow").unwrap_or(0))
                .set_function_response_types(Some(types))
                .send()
                .await?;
            u
        }
        None => c
            .lambda
            .create_event_source_mapping()
            .function_name(&function)
            .event_source_arn(&source)
            .batch_size(int(d, "batchSize").unwrap_or(10))
            .set_maximum_batching_window_in_seconds(int(d, "batchWindow"))
            .set_function_response_types(Some(types))
            .send()
            .await?
            .uuid()
            .unwrap_or_default()
            .to_owned(),
    };
    Ok(out(&[("uuid", json!(uuid))]))
}

async fn read_mapping(c: &Clients, a: &Attributes) -> R<Option<Attributes>> {
    let Some(m) = absent(
        c.lambda
            .get_event_source_mapping()
            .uuid(text(a, "uuid")?)
            .send()
            .await
            .map_err(Fail::from),
    )?
    else {
        return Ok(None);
    };
    Ok(Some(mapping_live(m.event_source_arn(), m.batch_size())))
}

async fn delete_mapping(c: &Clients, a: &Attributes) -> R<()> {
    let Some(uuid) = opt_text(a, "uuid") else {
        return Ok(());
    };
    for attempt in 0..30 {
        match c
            .lambda
            .delete_event_source_mapping()
            .uuid(&uuid)
            .send()
            .await
            .map_err(Fail::from)
        {
            Ok(_) => return Ok(()),
            Err(e) if e.not_found() => return Ok(()),
            // Still being created or updated.
            Err(e) if e.is("ResourceInUseException") => pause(attempt).await,
            Err(e) => return Err(e),
        }
    }
    Err(Fail::retry(format!(
        "event source mapping {uuid} stays in use"
    )))
}

// ---- EventBridge ------------------------------------------------------------------------

async fn put_rule(c: &Clients, d: &Attributes) -> R<Attributes> {
    use aws_sdk_eventbridge::types::{RuleState, Tag, Target};
    let name = text(d, "name")?;
    let tag_list: Vec<Tag> = tags(d)
        .into_iter()
        .map(|(k, v)| Tag::builder().key(k).value(v).build())
        .collect::<Result<_, _>>()
        .map_err(|e| Fail::new(e.to_string()))?;
    let rule = c
        .events
        .put_rule()
        .name(&name)
        .schedule_expression(text(d, "scheduleExpression")?)
        .state(if flag(d, "enabled") {
            RuleState::Enabled
        } else {
            RuleState::Disabled
        })
        .description("ferry: schedule trigger")
        .send()
        .await?;
    let arn = rule.rule_arn().unwrap_or_default().to_owned();
    c.events
        .tag_resource()
        .resource_arn(&arn)
        .set_tags(Some(tag_list))
        .send()
        .await?;
    let t = &d["target"];
    let target = Target::builder()
        .id(t["id"].as_str().unwrap_or("ferry"))
        .arn(t["arn"].as_str().unwrap_or_default())
        .set_input(t["input"].as_str().map(str::to_owned))
        .build()
        .map_err(|e| Fail::new(e.to_string()))?;
    let put = c
        .events
        .put_targets()
        .rule(&name)
        .targets(target)
        .send()
        .await?;
    if put.failed_entry_count() > 0 {
        return Err(Fail::retry(format!(
            "PutTargets on {name} failed: {:?}",
            put.failed_entries()
        )));
    }
    Ok(out(&[("arn", json!(arn))]))
}

async fn read_rule(c: &Clients, a: &Attributes) -> R<Option<Attributes>> {
    let name = text(a, "name")?;
    let Some(r) = absent(
        c.events
            .describe_rule()
            .name(&name)
            .send()
            .await
            .map_err(Fail::from),
    )?
    else {
        return Ok(None);
    };
    Ok(Some(rule_live(&name, r.schedule_expression(), r.state())))
}

async fn delete_rule(c: &Clients, a: &Attributes) -> R<()> {
    let name = text(a, "name")?;
    gone_ok(
        c.events
            .remove_targets()
            .rule(&name)
            .ids("ferry")
            .send()
            .await
            .map_err(Fail::from),
    )?;
    gone_ok(
        c.events
            .delete_rule()
            .name(&name)
            .send()
            .await
            .map_err(Fail::from),
    )
}

// ---- S3 ---------------------------------------------------------------------------------

async fn put_bucket(c: &Clients, d: &Attributes, op: Operation) -> R<Attributes> {
    use aws_sdk_s3::types::{
        BucketLocationConstraint, BucketVersioningStatus, CreateBucketConfiguration, Tag, Tagging,
        VersioningConfiguration,
    };
    let name = text(d, "name")?;
    let mut create = c.s3.create_bucket().bucket(&name);
    if c.region != "us-east-1" {
        create = create.create_bucket_configuration(
            CreateBucketConfiguration::builder()
                .location_constraint(BucketLocationConstraint::from(c.region.as_str()))
                .build(),
        );
    }
    match create.send().await.map_err(Fail::from) {
        Ok(_) => {}
        Err(e) if e.is("BucketAlreadyOwnedByYou") => {}
        Err(e) => return Err(e),
    }
    let tag_set: Vec<Tag> = tags(d)
        .into_iter()
        .map(|(k, v)| Tag::builder().key(k).value(v).build())
        .collect::<Result<_, _>>()
        .map_err(|e| Fail::new(e.to_string()))?;
    c.s3.put_bucket_tagging()
        .bucket(&name)
        .tagging(
            Tagging::builder()
                .set_tag_set(Some(tag_set))
                .build()
                .map_err(|e| Fail::new(e.to_string()))?,
        )
        .send()
        .await?;
    // A new bucket is unversioned; an existing one is set either way (S3 can only suspend
    // versioning once it was on).
    if flag(d, "versioning") || op == Operation::Update {
        let status = if flag(d, "versioning") {
            BucketVersioningStatus::Enabled
        } else {
            BucketVersioningStatus::Suspended
        };
        c.s3.put_bucket_versioning()
            .bucket(&name)
            .versioning_configuration(VersioningConfiguration::builder().status(status).build())
            .send()
            .await?;
    }
    Ok(out(&[
        ("name", json!(name)),
        ("arn", json!(format!("arn:{}:s3:::{name}", c.partition()))),
    ]))
}

async fn read_bucket(c: &Clients, a: &Attributes) -> R<Option<Attributes>> {
    let name = text(a, "name")?;
    Ok(absent(
        c.s3.head_bucket()
            .bucket(&name)
            .send()
            .await
            .map_err(Fail::from),
    )?
    .map(|_| out(&[("name", json!(name))])))
}

async fn delete_bucket(c: &Clients, a: &Attributes, force: bool) -> R<()> {
    use aws_sdk_s3::types::{Delete, ObjectIdentifier};
    let name = text(a, "name")?;
    loop {
        let Some(listing) = absent(
            c.s3.list_object_versions()
                .bucket(&name)
                .max_keys(1000)
                .send()
                .await
                .map_err(Fail::from),
        )?
        else {
            return Ok(());
        };
        let mut ids = Vec::new();
        for v in listing.versions() {
            ids.push((
                v.key().unwrap_or_default().to_owned(),
                v.version_id().map(str::to_owned),
            ));
        }
        for m in listing.delete_markers() {
            ids.push((
                m.key().unwrap_or_default().to_owned(),
                m.version_id().map(str::to_owned),
            ));
        }
        if ids.is_empty() {
            break;
        }
        if !force {
            return Err(Fail::new(format!(
                "bucket {name} is not empty ({}{} object version{}); empty it first, or run `ferry remove --force` to delete its objects too",
                ids.len(),
                if listing.is_truncated() == Some(true) { "+" } else { "" },
                if ids.len() == 1 { "" } else { "s" }
            )));
        }
        let objects: Vec<ObjectIdentifier> = ids
            .into_iter()
            .map(|(k, v)| {
                ObjectIdentifier::builder()
                    .key(k)
                    .set_version_id(v.filter(|v| v != "null"))
                    .build()
            })
            .collect::<Result<_, _>>()
            .map_err(|e| Fail::new(e.to_string()))?;
        c.s3.delete_objects()
            .bucket(&name)
            .delete(
                Delete::builder()
                    .set_objects(Some(objects))
                    .quiet(true)
                    .build()
                    .map_err(|e| Fail::new(e.to_string()))?,
            )
            .send()
            .await?;
    }
    gone_ok(
        c.s3.delete_bucket()
            .bucket(&name)
            .send()
            .await
            .map_err(Fail::from),
    )
}

/// True when the bucket exists and holds at least one object (or object version).
pub async fn bucket_has_objects(c: &Clients, name: &str) -> R<bool> {
    let listing = absent(
        c.s3.list_object_versions()
            .bucket(name)
            .max_keys(1)
            .send()
            .await
            .map_err(Fail::from),
    )?;
    Ok(listing.is_some_and(|l| !l.versions().is_empty() || !l.delete_markers().is_empty()))
}

async fn put_notification(c: &Clients, d: &Attributes) -> R<Attributes> {
    use aws_sdk_s3::types::{
        Event, FilterRule, FilterRuleName, LambdaFunctionConfiguration, NotificationConfiguration,
        NotificationConfigurationFilter, S3KeyFilter,
    };
    let bucket = text(d, "bucket")?;
    let mut configs = Vec::new();
    for l in d
        .get("lambda")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let mut rules = Vec::new();
        for (k, name) in [
            ("prefix", FilterRuleName::Prefix),
            ("suffix", FilterRuleName::Suffix),
        ] {
            if let Some(v) = l["filter"][k].as_str() {
                rules.push(FilterRule::builder().name(name).value(v).build());
            }
        }
        let mut b = LambdaFunctionConfiguration::builder()
            .id(l["id"].as_str().unwrap_or_default())
            .lambda_function_arn(l["functionArn"].as_str().unwrap_or_default())
            .set_events(Some(
                l["events"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(Value::as_str)
                    .map(Event::from)
                    .collect(),
            ));
        if !rules.is_empty() {
            b = b.filter(
                NotificationConfigurationFilter::builder()
                    .key(S3KeyFilter::builder().set_filter_rules(Some(rules)).build())
                    .build(),
            );
        }
        configs.push(b.build().map_err(|e| Fail::new(e.to_string()))?);
    }
    c.s3.put_bucket_notification_configuration()
        .bucket(&bucket)
        .notification_configuration(
            NotificationConfiguration::builder()
                .set_lambda_function_configurations(Some(configs))
                .build(),
        )
        .send()
        .await?;
    Ok(Attributes::new())
}

async fn read_notification(c: &Clients, a: &Attributes) -> R<Option<Attributes>> {
    let bucket = text(a, "bucket")?;
    let Some(n) = absent(
        c.s3.get_bucket_notification_configuration()
            .bucket(&bucket)
            .send()
            .await
            .map_err(Fail::from),
    )?
    else {
        return Ok(None);
    };
    if n.lambda_function_configurations().is_empty() {
        return Ok(None);
    }
    let arns: Vec<&str> = n
        .lambda_function_configurations()
        .iter()
        .map(|l| l.lambda_function_arn())
        .collect();
    Ok(Some(out(&[
        ("bucket", json!(bucket)),
        ("functionArns", json!(arns)),
    ])))
}

async fn delete_notification(c: &Clients, a: &Attributes) -> R<()> {
    use aws_sdk_s3::types::NotificationConfiguration;
    let bucket = text(a, "bucket")?;
    gone_ok(
        c.s3.put_bucket_notification_configuration()
            .bucket(&bucket)
            .notification_configuration(NotificationConfiguration::builder().build())
            .send()
            .await
            .map_err(Fail::from),
    )
}

// ---- SNS --------------------------------------------------------------------------------

async fn put_topic(c: &Clients, d: &Attributes) -> R<Attributes> {
    use aws_sdk_sns::types::Tag;
    let name = text(d, "name")?;
    let tag_list: Vec<Tag> = tags(d)
        .into_iter()
        .map(|(k, v)| Tag::builder().key(k).value(v).build())
        .collect::<Result<_, _>>()
        .map_err(|e| Fail::new(e.to_string()))?;
    let mut attrs = HashMap::new();
    if flag(d, "fifo") {
        attrs.insert("FifoTopic".to_owned(), "true".to_owned());
    }
    // CreateTopic is idempotent for the same name and attributes.
    let t = c
        .sns
        .create_topic()
        .name(&name)
        .set_attributes(Some(attrs))
        .send()
        .await?;
    let arn = t.topic_arn().unwrap_or_default().to_owned();
    c.sns
        .tag_resource()
        .resource_arn(&arn)
        .set_tags(Some(tag_list))
        .send()
        .await?;
    Ok(out(&[("arn", json!(arn))]))
}

async fn read_topic(c: &Clients, a: &Attributes) -> R<Option<Attributes>> {
    let arn = text(a, "arn")?;
    Ok(absent(
        c.sns
            .get_topic_attributes()
            .topic_arn(&arn)
            .send()
            .await
            .map_err(Fail::from),
    )?
    .map(|_| out(&[("name", json!(text(a, "name").unwrap_or_default()))])))
}

async fn put_subscription(
    c: &Clients,
    d: &Attributes,
    prior: Option<&Attributes>,
) -> R<Attributes> {
    let filter = d.get("filterPolicy").map(Value::to_string);
    if let Some(arn) = prior.and_then(|p| opt_text(p, "arn")) {
        c.sns
            .set_subscription_attributes()
            .subscription_arn(&arn)
            .attribute_name("FilterPolicy")
            .attribute_value(filter.unwrap_or_default())
            .send()
            .await?;
        return Ok(out(&[("arn", json!(arn))]));
    }
    let mut attrs = HashMap::new();
    if let Some(f) = filter {
        attrs.insert("FilterPolicy".to_owned(), f);
    }
    // Subscribe is idempotent: the same topic, protocol and endpoint give the same ARN.
    let s = c
        .sns
        .subscribe()
        .topic_arn(text(d, "topic")?)
        .protocol("lambda")
        .endpoint(text(d, "endpoint")?)
        .set_attributes((!attrs.is_empty()).then_some(attrs))
        .return_subscription_arn(true)
        .send()
        .await?;
    Ok(out(&[("arn", json!(s.subscription_arn()))]))
}

async fn read_subscription(c: &Clients, a: &Attributes) -> R<Option<Attributes>> {
    let arn = text(a, "arn")?;
    let Some(s) = absent(
        c.sns
            .get_subscription_attributes()
            .subscription_arn(&arn)
            .send()
            .await
            .map_err(Fail::from),
    )?
    else {
        return Ok(None);
    };
    let m = s.attributes().cloned().unwrap_or_default();
    let mut live = Attributes::new();
    if let Some(e) = m.get("Endpoint") {
        live.insert("endpoint".into(), json!(e));
    }
    if let Some(t) = m.get("TopicArn") {
        live.insert("topic".into(), json!(t));
    }
    Ok(Some(live))
}

// ---- DynamoDB ---------------------------------------------------------------------------

async fn put_table(c: &Clients, d: &Attributes) -> R<Attributes> {
    use aws_sdk_dynamodb::types::{
        AttributeDefinition, BillingMode, KeySchemaElement, KeyType, ScalarAttributeType,
        TableStatus, Tag,
    };
    let name = text(d, "name")?;
    let tag_list: Vec<Tag> = tags(d)
        .into_iter()
        .map(|(k, v)| Tag::builder().key(k).value(v).build())
        .collect::<Result<_, _>>()
        .map_err(|e| Fail::new(e.to_string()))?;
    let mut keys = vec![(text(d, "partition")?, KeyType::Hash)];
    if let Some(s) = opt_text(d, "sort") {
        keys.push((s, KeyType::Range));
    }
    let mut defs = Vec::new();
    let mut schema = Vec::new();
    for (k, t) in keys {
        defs.push(
            AttributeDefinition::builder()
                .attribute_name(&k)
                .attribute_type(ScalarAttributeType::S)
                .build()
                .map_err(|e| Fail::new(e.to_string()))?,
        );
        schema.push(
            KeySchemaElement::builder()
                .attribute_name(&k)
                .key_type(t)
                .build()
                .map_err(|e| Fail::new(e.to_string()))?,
        );
    }
    let arn = match c
        .dynamodb
        .create_table()
        .table_name(&name)
        .set_attribute_definitions(Some(defs))
        .set_key_schema(Some(schema))
        .billing_mode(BillingMode::PayPerRequest)
        .set_tags(Some(tag_list.clone()))
        .send()
        .await
        .map_err(Fail::from)
    {
        Ok(r) => r
            .table_description()
            .and_then(|t| t.table_arn())
            .unwrap_or_default()
            .to_owned(),
        Err(e) if e.is("ResourceInUseException") => {
            let t = c.dynamodb.describe_table().table_name(&name).send().await?;
            let arn = t
                .table()
                .and_then(|t| t.table_arn())
                .unwrap_or_default()
                .to_owned();
            c.dynamodb
                .tag_resource()
                .resource_arn(&arn)
                .set_tags(Some(tag_list))
                .send()
                .await?;
            arn
        }
        Err(e) => return Err(e),
    };
    for attempt in 0..60 {
        let t = c.dynamodb.describe_table().table_name(&name).send().await?;
        if t.table().and_then(|t| t.table_status()) == Some(&TableStatus::Active) {
            break;
        }
        pause(attempt).await;
    }
    Ok(out(&[("name", json!(name)), ("arn", json!(arn))]))
}

async fn read_table(c: &Clients, a: &Attributes) -> R<Option<Attributes>> {
    use aws_sdk_dynamodb::types::KeyType;
    let name = text(a, "name")?;
    let Some(t) = absent(
        c.dynamodb
            .describe_table()
            .table_name(&name)
            .send()
            .await
            .map_err(Fail::from),
    )?
    else {
        return Ok(None);
    };
    let mut live = out(&[("name", json!(name))]);
    for k in t.table().map(|t| t.key_schema()).unwrap_or_default() {
        let attr = if k.key_type() == &KeyType::Hash {
            "partition"
        } else {
            "sort"
        };
        live.insert(attr.into(), json!(k.attribute_name()));
    }
    Ok(Some(live))
}

// ---- Secrets Manager --------------------------------------------------------------------

async fn put_secret(c: &Clients, d: &Attributes) -> R<Attributes> {
    use aws_sdk_secretsmanager::types::Tag;
    let name = text(d, "name")?;
    let tag_list: Vec<Tag> = tags(d)
        .into_iter()
        .map(|(k, v)| Tag::builder().key(k).value(v).build())
        .collect();
    let value = opt_text(d, "value");
    let arn = match c
        .secrets
        .create_secret()
        .name(&name)
        .set_description(opt_text(d, "description"))
        .set_secret_string(value.clone())
        .set_tags(Some(tag_list.clone()))
        .send()
        .await
        .map_err(Fail::from)
    {
        Ok(r) => r.arn().unwrap_or_default().to_owned(),
        Err(e) if e.is("ResourceExistsException") => {
            let s = c.secrets.describe_secret().secret_id(&name).send().await?;
            if s.deleted_date().is_some() {
                c.secrets.restore_secret().secret_id(&name).send().await?;
            }
            c.secrets
                .update_secret()
                .secret_id(&name)
                .description(opt_text(d, "description").unwrap_or_default())
                .set_secret_string(value)
                .send()
                .await?;
            c.secrets
                .tag_resource()
                .secret_id(&name)
                .set_tags(Some(tag_list))
                .send()
                .await?;
            s.arn().unwrap_or_default().to_owned()
        }
        Err(e) => return Err(e),
    };
    Ok(out(&[("arn", json!(arn))]))
}

async fn read_secret(c: &Clients, a: &Attributes) -> R<Option<Attributes>> {
    let name = text(a, "name")?;
    let Some(s) = absent(
        c.secrets
            .describe_secret()
            .secret_id(&name)
            .send()
            .await
            .map_err(Fail::from),
    )?
    else {
        return Ok(None);
    };
    if s.deleted_date().is_some() {
        return Ok(None);
    }
    let mut live = out(&[("name", json!(name))]);
    if a.contains_key("description") {
        live.insert("description".into(), json!(s.description()));
    }
    Ok(Some(live))
}

// ---- refresh in bulk --------------------------------------------------------------------

/// Live state listed in bulk before a refresh, so that a plan of hundreds of resources costs
/// a few list calls instead of one call each: functions (`ListFunctions`), schedule rules
/// (`ListRules` by the service's name prefix), roles with their trust and inline policies
/// (`GetAccountAuthorizationDetails`), event source mappings, and each HTTP API's
/// routes and integrations; resource policies are fetched once per function, not once per
/// permission. Kinds with fewer recorded resources than [`BULK_MIN`] are read one by one (in
/// a large account, listing everything would cost more). Dropped at the first apply.
pub struct Snapshot {
    /// (kind, key) → live attributes; a kind listed here with a key missing means "gone".
    found: HashMap<(&'static str, String), Attributes>,
    functions: HashMap<String, aws_sdk_lambda::types::FunctionConfiguration>,
    /// Role name → its trust policy and its inline policy `ferry`.
    roles: HashMap<String, (Option<Value>, Option<Value>)>,
    listed: Vec<&'static str>,
    policies:
        tokio::sync::Mutex<HashMap<String, std::sync::Arc<tokio::sync::OnceCell<Option<Value>>>>>,
}

/// The fewest recorded resources of a kind for which listing beats reading one by one.
pub const BULK_MIN: usize = 10;

impl Snapshot {
    /// The live attributes of a recorded resource if this snapshot covers its kind.
    fn lookup(&self, kind: &str, a: &Attributes) -> Option<Option<Attributes>> {
        let (k, key) = match kind {
            kinds::FUNCTION => {
                if !self.listed.contains(&kinds::FUNCTION) {
                    return None;
                }
                let name = opt_text(a, "name")?;
                return Some(
                    self.functions
                        .get(&name)
                        .map(|f| function_live(&name, a, f)),
                );
            }
            kinds::RULE => (kinds::RULE, opt_text(a, "name")?),
            kinds::MAPPING => (kinds::MAPPING, opt_text(a, "uuid")?),
            kinds::ROUTE => (
                kinds::ROUTE,
                format!("{}/{}", opt_text(a, "api")?, opt_text(a, "id")?),
            ),
            kinds::INTEGRATION => (
                kinds::INTEGRATION,
                format!("{}/{}", opt_text(a, "api")?, opt_text(a, "id")?),
            ),
            _ => return None,
        };
        if k == kinds::ROUTE || k == kinds::INTEGRATION {
            let api = key.split('/').next().unwrap_or_default();
            if !self.listed.contains(&k)
                || !self
                    .found
                    .keys()
                    .any(|(kk, kkey)| *kk == "api-listed" && kkey == api)
            {
                return None;
            }
        } else if !self.listed.contains(&k) {
            return None;
        }
        Some(self.found.get(&(k, key)).cloned())
    }

    /// A function's resource policy, fetched once however many permissions ask.
    async fn policy(&self, c: &Clients, function: &str) -> R<Option<Value>> {
        let cell = self
            .policies
            .lock()
            .await
            .entry(function.to_owned())
            .or_default()
            .clone();
        cell.get_or_try_init(|| function_policy(c, function))
            .await
            .cloned()
    }
}

/// Lists what the reads will ask about. A failed listing leaves that kind to single reads.
pub async fn prefetch(c: &Clients, reads: &[(&str, &Attributes)]) -> Snapshot {
    let count = |k: &str| reads.iter().filter(|(kind, _)| *kind == k).count();
    let mut snap = Snapshot {
        found: HashMap::new(),
        functions: HashMap::new(),
        roles: HashMap::new(),
        listed: Vec::new(),
        policies: Default::default(),
    };
    let functions = async {
        if count(kinds::FUNCTION) < BULK_MIN {
            return None;
        }
        let mut out = HashMap::new();
        let mut pages = c.lambda.list_functions().into_paginator().send();
        while let Some(page) = pages.next().await {
            for f in page.ok()?.functions() {
                if let Some(n) = f.function_name() {
                    out.insert(n.to_owned(), f.clone());
                }
            }
        }
        Some(out)
    };
    let roles = async {
        use aws_sdk_iam::types::EntityType;
        if count(kinds::ROLE) < BULK_MIN {
            return None;
        }
        // Every role with its trust policy and inline policies, a page of many roles a call.
        let mut out = HashMap::new();
        let mut pages = c
            .iam
            .get_account_authorization_details()
            .filter(EntityType::Role)
            .into_paginator()
            .send();
        while let Some(page) = pages.next().await {
            for r in page.ok()?.role_detail_list() {
                let Some(name) = r.role_name() else { continue };
                let policy = r
                    .role_policy_list()
                    .iter()
                    .find(|p| p.policy_name() == Some("ferry"))
                    .and_then(|p| p.policy_document().and_then(parse_doc));
                out.insert(
                    name.to_owned(),
                    (r.assume_role_policy_document().and_then(parse_doc), policy),
                );
            }
        }
        Some(out)
    };
    let rules = async {
        if count(kinds::RULE) < BULK_MIN {
            return None;
        }
        // Rule names start with `<service>-<stage>-`: list only those.
        let names: Vec<String> = reads
            .iter()
            .filter(|(k, _)| *k == kinds::RULE)
            .filter_map(|(_, a)| opt_text(a, "name"))
            .collect();
        let prefix = common_prefix(&names);
        let mut out = HashMap::new();
        let mut token = None;
        loop {
            let page = c
                .events
                .list_rules()
                .name_prefix(&prefix)
                .set_next_token(token)
                .send()
                .await
                .ok()?;
            for r in page.rules() {
                let name = r.name().unwrap_or_default().to_owned();
                out.insert(
                    name.clone(),
                    rule_live(&name, r.schedule_expression(), r.state()),
                );
            }
            token = page.next_token().map(str::to_owned);
            if token.is_none() {
                break;
            }
        }
        Some(out)
    };
    let mappings = async {
        if count(kinds::MAPPING) < BULK_MIN {
            return None;
        }
        let mut out = HashMap::new();
        let mut pages = c
            .lambda
            .list_event_source_mappings()
            .into_paginator()
            .send();
        while let Some(page) = pages.next().await {
            for m in page.ok()?.event_source_mappings() {
                if let Some(u) = m.uuid() {
                    out.insert(
                        u.to_owned(),
                        mapping_live(m.event_source_arn(), m.batch_size()),
                    );
                }
            }
        }
        Some(out)
    };
    let apis: std::collections::BTreeSet<String> = reads
        .iter()
        .filter(|(k, _)| *k == kinds::ROUTE || *k == kinds::INTEGRATION)
        .filter_map(|(_, a)| opt_text(a, "api"))
        .collect();
    let web = async {
        if count(kinds::ROUTE) + count(kinds::INTEGRATION) < BULK_MIN {
            return None;
        }
        let mut routes = HashMap::new();
        let mut integrations = HashMap::new();
        let mut listed = Vec::new();
        for api in &apis {
            let mut token = None;
            loop {
                let page = c
                    .apigw
                    .get_routes()
                    .api_id(api)
                    .set_next_token(token)
                    .send()
                    .await
                    .ok()?;
                for r in page.items() {
                    routes.insert(
                        format!("{api}/{}", r.route_id().unwrap_or_default()),
                        route_live(r.route_key(), r.target()),
                    );
                }
                token = page.next_token().map(str::to_owned);
                if token.is_none() {
                    break;
                }
            }
            let mut token = None;
            loop {
                let page = c
                    .apigw
                    .get_integrations()
                    .api_id(api)
                    .set_next_token(token)
                    .send()
                    .await
                    .ok()?;
                for i in page.items() {
                    integrations.insert(
                        format!("{api}/{}", i.integration_id().unwrap_or_default()),
                        integration_live(i.integration_uri(), i.payload_format_version()),
                    );
                }
                token = page.next_token().map(str::to_owned);
                if token.is_none() {
                    break;
                }
            }
            listed.push(api.clone());
        }
        Some((routes, integrations, listed))
    };
    let (functions, roles, rules, mappings, web) =
        tokio::join!(functions, roles, rules, mappings, web);
    if let Some(f) = functions {
        snap.functions = f;
        snap.listed.push(kinds::FUNCTION);
    }
    if let Some(r) = roles {
        snap.roles = r;
        snap.listed.push(kinds::ROLE);
    }
    for (kind, found) in [(kinds::RULE, rules), (kinds::MAPPING, mappings)] {
        if let Some(m) = found {
            snap.listed.push(kind);
            snap.found
                .extend(m.into_iter().map(|(k, v)| ((kind, k), v)));
        }
    }
    if let Some((routes, integrations, listed)) = web {
        snap.listed.push(kinds::ROUTE);
        snap.listed.push(kinds::INTEGRATION);
        snap.found
            .extend(routes.into_iter().map(|(k, v)| ((kinds::ROUTE, k), v)));
        snap.found.extend(
            integrations
                .into_iter()
                .map(|(k, v)| ((kinds::INTEGRATION, k), v)),
        );
        for api in listed {
            snap.found.insert(("api-listed", api), Attributes::new());
        }
    }
    snap
}

/// The longest common prefix of some names.
fn common_prefix(names: &[String]) -> String {
    let Some(first) = names.first() else {
        return String::new();
    };
    let mut len = first.len();
    for n in &names[1..] {
        len = len.min(
            first
                .bytes()
                .zip(n.bytes())
                .take_while(|(a, b)| a == b)
                .count(),
        );
    }
    while !first.is_char_boundary(len) {
        len -= 1;
    }
    first[..len].to_owned()
}
