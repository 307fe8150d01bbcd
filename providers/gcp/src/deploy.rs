//! `ferry deploy --provider gcp`: the engine's [`Provider`] for Google Cloud. The resources are
//! [`crate::resources`]; each kind is created, read, updated and deleted the way its API
//! does it (Pub/Sub `PUT`, Cloud Functions `POST ?functionId=` + operation, Cloud Storage
//! `POST /b`, ...). Long-running operations are polled; sources are uploaded before the
//! functions that name them.

use crate::client::{Api, ApiError, Client};
use crate::package::write_function;
use crate::resources::{outputs, resources, Context, GcpResource, Kind};
use async_trait::async_trait;
use base64::Engine as _;
use ferry_core::engine::{
    ApplyRequest, Attributes, Inputs, Operation, Provider, ProviderError, ReadRequest, Resource,
};
use reqwest::Method;
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Mutex;

/// Where and as whom to deploy.
#[derive(Debug, Clone, Default)]
pub struct GcpOptions {
    /// Project id (`GOOGLE_CLOUD_PROJECT`, `provider.gcp.project`).
    pub project: Option<String>,
    /// Region (`--region`, `provider.region`).
    pub region: Option<String>,
    /// `ferry remove --force`: delete buckets with their objects.
    pub force: bool,
}

/// Google Cloud as the engine sees it.
#[derive(Debug)]
pub struct GcpProvider {
    client: Client,
    ctx: Context,
    force: bool,
    /// Source zip by source address, filled by `compile`.
    zips: Mutex<BTreeMap<String, PathBuf>>,
}

fn err(e: ApiError) -> ProviderError {
    if e.fatal {
        return ProviderError::fatal(e.to_string());
    }
    ProviderError::http(e.status, e.to_string())
}

fn setting(service: &ferry_core::model::Service, key: &str) -> Option<String> {
    service
        .settings
        .get("gcp")
        .and_then(|s| s.get(key))
        .and_then(Value::as_str)
        .map(str::to_owned)
}

/// The API of a kind.
fn api(kind: Kind) -> Api {
    match kind {
        Kind::Topic | Kind::Subscription | Kind::PubSubPolicy => Api::PubSub,
        Kind::Function | Kind::FunctionSource => Api::Functions,
        Kind::RunService | Kind::Invoker => Api::Run,
        Kind::Job => Api::Scheduler,
        Kind::Bucket | Kind::ObjectSource | Kind::BucketGrant => Api::Storage,
        Kind::Trigger => Api::Eventarc,
        Kind::Secret | Kind::SecretVersion | Kind::SecretPolicy => Api::Secrets,
        Kind::Database => Api::Firestore,
    }
}

/// Whether the API answers a create, update or delete of this kind with a long-running
/// operation to wait for.
fn long_running(kind: Kind) -> bool {
    matches!(
        kind,
        Kind::Function | Kind::Trigger | Kind::Database | Kind::RunService
    )
}

/// `projects/p/locations/l/functions/f` → (`projects/p/locations/l`, `functions`, `f`).
fn split_name(name: &str) -> (&str, &str, &str) {
    let (rest, id) = name.rsplit_once('/').unwrap_or(("", name));
    let (parent, collection) = rest.rsplit_once('/').unwrap_or(("", rest));
    (parent, collection, id)
}

/// The top-level fields of a body, for `updateMask` (less those that cannot change).
fn mask(body: &Value, skip: &[&str]) -> String {
    body.as_object()
        .map(|o| {
            o.keys()
                .filter(|k| !skip.contains(&k.as_str()))
                .cloned()
                .collect::<Vec<_>>()
                .join(",")
        })
        .unwrap_or_default()
}

/// `policy` (a Cloud Storage IAM policy) with `member` added to, or taken from, the
/// unconditional binding of `role`; every other binding, the etag and the version as they were.
fn with_member(policy: &Value, role: &str, member: &str, add: bool) -> Value {
    let mut policy = policy.clone();
    let mut bindings = policy["bindings"].as_array().cloned().unwrap_or_default();
    let at = bindings
        .iter()
        .position(|b| b["role"] == role && b.get("condition").is_none());
    match (at, add) {
        (Some(i), true) => {
            let members = bindings[i]["members"]
                .as_array()
                .cloned()
                .unwrap_or_default();
            if !members.iter().any(|m| m == member) {
                let mut members = members;
                members.push(json!(member));
                bindings[i]["members"] = Value::Array(members);
            }
        }
        (None, true) => bindings.push(json!({"role": role, "members": [member]})),
        (Some(i), false) => {
            let members: Vec<Value> = bindings[i]["members"]
                .as_array()
                .cloned()
                .unwrap_or_default()
                .into_iter()
                .filter(|m| m != member)
                .collect();
            if members.is_empty() {
                bindings.remove(i);
            } else {
                bindings[i]["members"] = Value::Array(members);
            }
        }
        (None, false) => {}
    }
    if let Some(p) = policy.as_object_mut() {
        p.insert("bindings".into(), Value::Array(bindings));
    }
    policy
}

fn enc(s: &str) -> String {
    percent_encoding::utf8_percent_encode(s, UNRESERVED_ONLY).to_string()
}

/// Everything but RFC 3986's unreserved characters is percent-encoded.
const UNRESERVED_ONLY: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// The project: `--project` (options), `GOOGLE_CLOUD_PROJECT`, `CLOUDSDK_CORE_PROJECT` (as
/// gcloud sets it), then `provider.gcp.project`.
fn project_id(service: &ferry_core::model::Service, o: &GcpOptions) -> Option<String> {
    let env = |k: &str| std::env::var(k).ok().filter(|s| !s.is_empty());
    o.project
        .clone()
        .or_else(|| env("GOOGLE_CLOUD_PROJECT"))
        .or_else(|| env("CLOUDSDK_CORE_PROJECT"))
        .or_else(|| setting(service, "project"))
}

/// The context `ferry package` writes sources with, without credentials or calls: unknown
/// values become placeholders (`PROJECT_ID`, `PROJECT_NUMBER-compute@...`); the region
/// defaults to `us-central1`.
pub fn offline_context(service: &ferry_core::model::Service, o: &GcpOptions) -> Context {
    let project = project_id(service, o).unwrap_or_else(|| "PROJECT_ID".into());
    let region = o
        .region
        .clone()
        .or_else(|| service.region.clone())
        .unwrap_or_else(|| "us-central1".into());
    let sa = setting(service, "serviceAccount")
        .unwrap_or_else(|| "PROJECT_NUMBER-compute@developer.gserviceaccount.com".into());
    Context::new(
        service,
        &project,
        "PROJECT_NUMBER",
        &region,
        &sa,
        setting(service, "baseImage").as_deref(),
    )
}

impl GcpProvider {
    /// Connects: credentials, the project, its default service account unless
    /// `provider.gcp.serviceAccount` names one.
    pub async fn connect(
        service: &ferry_core::model::Service,
        o: &GcpOptions,
    ) -> Result<Self, String> {
        let project = project_id(service, o)
            .ok_or("no Google Cloud project: set GOOGLE_CLOUD_PROJECT or provider.gcp.project")?;
        let region = o.region.clone().or_else(|| service.region.clone()).ok_or(
            "no Google Cloud region: pass --region (e.g. europe-west1) or set provider.region",
        )?;
        let client = Client::from_env()?;
        // The project number names Google's service agents and the default service account.
        let url = client.url(Api::Projects, &format!("projects/{project}"));
        let r = client
            .send(Method::GET, &url, None)
            .await
            .map_err(|e| format!("reading project {project}: {e}"))?;
        let number = r.body["name"]
            .as_str()
            .and_then(|n| n.strip_prefix("projects/"))
            .filter(|_| r.status != 404)
            .ok_or_else(|| format!("project {project} was not found (or you may not read it)"))?
            .to_owned();
        // Unless named, the Compute Engine default service account, which Cloud Functions and
        // Cloud Run use when none is given.
        let sa = setting(service, "serviceAccount")
            .unwrap_or_else(|| format!("{number}-compute@developer.gserviceaccount.com"));
        let ctx = Context::new(
            service,
            &project,
            &number,
            &region,
            &sa,
            setting(service, "baseImage").as_deref(),
        );
        Ok(GcpProvider {
            client,
            ctx,
            force: o.force,
            zips: Mutex::new(BTreeMap::new()),
        })
    }

    fn url(&self, kind: Kind, path: &str) -> String {
        self.client.url(api(kind), path)
    }

    async fn get(&self, kind: Kind, path: &str) -> Result<Option<Value>, ProviderError> {
        let r = self
            .client
            .send(Method::GET, &self.url(kind, path), None)
            .await
            .map_err(err)?;
        Ok((r.status != 404).then_some(r.body))
    }

    /// Where a resource is read: its name, or for a bucket `b/<name>`.
    fn path(kind: Kind, name: &str) -> String {
        match kind {
            Kind::Bucket => format!("b/{}", enc(name)),
            Kind::BucketGrant => format!("b/{}/iam", enc(name)),
            Kind::Invoker | Kind::PubSubPolicy | Kind::SecretPolicy => {
                format!("{name}:getIamPolicy")
            }
            _ => name.to_owned(),
        }
    }

    /// The call that creates or updates a resource: method, URL and body.
    fn request(&self, kind: Kind, op: Operation, attrs: &Attributes) -> (Method, String, Value) {
        let name = attrs["name"].as_str().unwrap_or_default();
        let body = &attrs["body"];
        let (parent, collection, id) = split_name(name);
        let create = op == Operation::Create;
        match kind {
            Kind::Topic if create => (Method::PUT, self.url(kind, name), body.clone()),
            Kind::Topic => (
                Method::PATCH,
                self.url(kind, name),
                json!({"topic": body, "updateMask": mask(body, &[])}),
            ),
            Kind::Subscription if create => (Method::PUT, self.url(kind, name), body.clone()),
            Kind::Subscription => (
                Method::PATCH,
                self.url(kind, name),
                json!({"subscription": body, "updateMask": mask(body, &["topic"])}),
            ),
            Kind::Function | Kind::Trigger | Kind::Database | Kind::Secret | Kind::RunService
                if create =>
            {
                let param = match kind {
                    Kind::Function => "functionId",
                    Kind::Trigger => "triggerId",
                    Kind::Database => "databaseId",
                    Kind::Secret => "secretId",
                    _ => "serviceId",
                };
                (
                    Method::POST,
                    format!(
                        "{}?{param}={}",
                        self.url(kind, &format!("{parent}/{collection}")),
                        enc(id)
                    ),
                    body.clone(),
                )
            }
            Kind::RunService => (Method::PATCH, self.url(kind, name), body.clone()),
            Kind::Function | Kind::Trigger | Kind::Database | Kind::Secret | Kind::Job
                if !create =>
            {
                let skip: &[&str] = match kind {
                    Kind::Function => &["name", "environment"],
                    Kind::Database => &["type", "locationId"],
                    _ => &["name"],
                };
                (
                    Method::PATCH,
                    format!(
                        "{}?updateMask={}",
                        self.url(kind, name),
                        enc(&mask(body, skip))
                    ),
                    body.clone(),
                )
            }
            Kind::Job => (
                Method::POST,
                self.url(kind, &format!("{parent}/{collection}")),
                body.clone(),
            ),
            Kind::Bucket if create => (
                Method::POST,
                format!("{}?project={}", self.url(kind, "b"), enc(&self.ctx.project)),
                body.clone(),
            ),
            Kind::Bucket => (
                Method::PATCH,
                self.url(kind, &Self::path(kind, name)),
                body.clone(),
            ),
            Kind::SecretVersion => (
                Method::POST,
                self.url(kind, &format!("{name}:addVersion")),
                body.clone(),
            ),
            Kind::Invoker | Kind::PubSubPolicy | Kind::SecretPolicy => (
                Method::POST,
                self.url(kind, &format!("{name}:setIamPolicy")),
                body.clone(),
            ),
            Kind::FunctionSource | Kind::ObjectSource => unreachable!("sources are uploaded"),
            Kind::BucketGrant => unreachable!("grants are read, changed and written back"),
            _ => unreachable!("every kind is matched"),
        }
    }

    /// Creates or updates; returns the resource as the API answers it afterwards.
    async fn put(
        &self,
        kind: Kind,
        op: Operation,
        attrs: &Attributes,
    ) -> Result<Value, ProviderError> {
        if kind == Kind::BucketGrant {
            return self.bucket_grant(attrs, true).await;
        }
        let name = attrs["name"].as_str().unwrap_or_default();
        let c = &self.client;
        let (method, url, sent) = self.request(kind, op, attrs);
        let r = c.json(method, &url, &sent).await.map_err(err)?;
        if !long_running(kind) {
            return Ok(r.body);
        }
        let done = c.wait(api(kind), &r.body).await.map_err(err)?;
        // The operation's response is the resource; read it back when it is not.
        if done.get("name").is_some() {
            Ok(done)
        } else {
            Ok(self.get(kind, name).await?.unwrap_or(Value::Null))
        }
    }

    async fn upload(
        &self,
        request: &ApplyRequest<'_>,
        attrs: &Attributes,
    ) -> Result<Value, ProviderError> {
        let kind = Kind::of(request.kind).expect("a gcp kind");
        let zip = self
            .zips
            .lock()
            .expect("lock")
            .get(request.address)
            .cloned()
            .ok_or_else(|| {
                ProviderError::fatal(format!("{}: no package was built", request.address))
            })?;
        let bytes = std::fs::read(&zip)
            .map_err(|e| ProviderError::fatal(format!("{}: {e}", zip.display())))?;
        let c = &self.client;
        if kind == Kind::FunctionSource {
            let parent = attrs["name"].as_str().unwrap_or_default();
            let url = self.url(kind, &format!("{parent}/functions:generateUploadUrl"));
            let r = c
                .json(Method::POST, &url, &attrs["body"])
                .await
                .map_err(err)?;
            let upload = r.body["uploadUrl"].as_str().ok_or_else(|| {
                ProviderError::retryable("generateUploadUrl answered without an uploadUrl")
            })?;
            // A signed URL: it carries its own authorisation.
            let put = reqwest::Client::new()
                .put(upload)
                .header("content-type", "application/zip")
                .body(bytes)
                .send()
                .await
                .map_err(|e| {
                    ProviderError::retryable(format!("uploading {}: {e}", zip.display()))
                })?;
            if !put.status().is_success() {
                let status = put.status();
                let text = put.text().await.unwrap_or_default();
                return Err(ProviderError {
                    message: format!("uploading {}: HTTP {status}: {text}", zip.display()),
                    retryable: status.is_server_error() || status.as_u16() == 429,
                });
            }
            let s = &r.body["storageSource"];
            return Ok(
                json!({"bucket": s["bucket"], "object": s["object"], "generation": s.get("generation").cloned().unwrap_or(json!(""))}),
            );
        }
        let bucket = attrs["body"]["bucket"].as_str().unwrap_or_default();
        let object = attrs["name"].as_str().unwrap_or_default();
        let url = format!(
            "{}?uploadType=media&name={}",
            c.url(Api::StorageUpload, &format!("b/{}/o", enc(bucket))),
            enc(object)
        );
        let r = c
            .send(Method::POST, &url, Some((bytes, "application/zip")))
            .await
            .map_err(err)?;
        Ok(
            json!({"bucket": r.body["bucket"], "object": r.body["name"], "generation": r.body["generation"]}),
        )
    }

    /// Adds (or takes away) one member of one role in a bucket's IAM policy and writes the
    /// policy back with every other binding as it was: a bucket starts with Google's legacy
    /// project bindings, which a whole-policy write would drop. The policy's etag goes back
    /// with it, so a change made in between fails the write (412) and the engine tries again.
    async fn bucket_grant(&self, attrs: &Attributes, add: bool) -> Result<Value, ProviderError> {
        let bucket = attrs["name"].as_str().unwrap_or_default();
        let role = attrs["body"]["role"].as_str().unwrap_or_default();
        let member = attrs["body"]["member"].as_str().unwrap_or_default();
        let url = self.url(Kind::BucketGrant, &Self::path(Kind::BucketGrant, bucket));
        let c = &self.client;
        let live = c.send(Method::GET, &url, None).await.map_err(err)?;
        if live.status == 404 {
            if add {
                return Err(ProviderError::retryable(format!(
                    "bucket {bucket} does not exist (yet)"
                )));
            }
            return Ok(Value::Null);
        }
        let policy = with_member(&live.body, role, member, add);
        if policy != live.body {
            c.json(Method::PUT, &url, &policy).await.map_err(|e| {
                if e.status == Some(412) {
                    ProviderError::retryable(format!(
                        "the IAM policy of bucket {bucket} changed while ferry wrote it: {e}"
                    ))
                } else {
                    err(e)
                }
            })?;
        }
        Ok(json!({"role": role, "member": member}))
    }

    async fn empty_bucket(&self, bucket: &str) -> Result<(), ProviderError> {
        let c = &self.client;
        loop {
            let url = format!(
                "{}?versions=true",
                c.url(Api::Storage, &format!("b/{}/o", enc(bucket)))
            );
            let r = c.send(Method::GET, &url, None).await.map_err(err)?;
            let items = r.body["items"].as_array().cloned().unwrap_or_default();
            if items.is_empty() {
                return Ok(());
            }
            for o in items {
                let name = o["name"].as_str().unwrap_or_default();
                let mut url = c.url(Api::Storage, &format!("b/{}/o/{}", enc(bucket), enc(name)));
                if let Some(g) = o["generation"].as_str() {
                    url.push_str(&format!("?generation={g}"));
                }
                c.send(Method::DELETE, &url, None).await.map_err(err)?;
            }
        }
    }

    async fn delete(
        &self,
        kind: Kind,
        address: &str,
        attrs: &Attributes,
    ) -> Result<(), ProviderError> {
        let name = attrs["name"].as_str().unwrap_or_default();
        let c = &self.client;
        let (method, url, body) = match kind {
            Kind::FunctionSource | Kind::ObjectSource => return Ok(()),
            Kind::BucketGrant => return self.bucket_grant(attrs, false).await.map(drop),
            Kind::SecretVersion => {
                let Some(v) = attrs.get("version").and_then(Value::as_str) else {
                    return Ok(());
                };
                (
                    Method::POST,
                    self.url(kind, &format!("{v}:destroy")),
                    Some(json!({})),
                )
            }
            Kind::Invoker | Kind::PubSubPolicy | Kind::SecretPolicy => (
                Method::POST,
                self.url(kind, &format!("{name}:setIamPolicy")),
                Some(json!({"policy": {}})),
            ),
            Kind::Bucket => {
                if address == crate::resources::SOURCES || self.force {
                    self.empty_bucket(name).await?;
                }
                (
                    Method::DELETE,
                    self.url(kind, &Self::path(kind, name)),
                    None,
                )
            }
            _ => (Method::DELETE, self.url(kind, name), None),
        };
        let r = match body {
            Some(b) => c.json(method, &url, &b).await,
            None => c.send(method, &url, None).await,
        };
        let r = match r {
            Ok(r) => r,
            Err(e) if kind == Kind::Bucket && e.status == Some(409) => {
                return Err(ProviderError::fatal(format!(
                    "bucket {name} is not empty; empty it, or run `ferry remove --force` to delete its objects too ({e})"
                )))
            }
            Err(e) => return Err(err(e)),
        };
        if r.status == 404 {
            return Ok(());
        }
        if long_running(kind) {
            c.wait(api(kind), &r.body).await.map_err(err)?;
        }
        Ok(())
    }
}

/// Replaces `${secret:NAME}` with the base64 of the value (Secret Manager's payload encoding).
fn with_secrets(
    v: &Value,
    secrets: &BTreeMap<String, String>,
    missing: &mut Option<String>,
) -> Value {
    match v {
        Value::String(s) => match s
            .strip_prefix("${secret:")
            .and_then(|r| r.strip_suffix('}'))
        {
            Some(name) => match secrets.get(name) {
                Some(value) => json!(base64::engine::general_purpose::STANDARD.encode(value)),
                None => {
                    *missing = Some(name.to_owned());
                    json!("")
                }
            },
            None => v.clone(),
        },
        Value::Array(a) => Value::Array(
            a.iter()
                .map(|x| with_secrets(x, secrets, missing))
                .collect(),
        ),
        Value::Object(o) => Value::Object(
            o.iter()
                .map(|(k, x)| (k.clone(), with_secrets(x, secrets, missing)))
                .collect(),
        ),
        other => other.clone(),
    }
}

/// The engine resource of a [`GcpResource`].
pub fn engine_resource(r: &GcpResource) -> Resource {
    let mut res = Resource::new(&r.address, r.kind.type_name())
        .attr("name", r.name.clone())
        .attr("body", r.body.clone())
        .force_new("name");
    for d in &r.depends {
        res = res.depends_on(d);
    }
    if let Some(f) = &r.function {
        res = res.function(f);
    }
    match r.kind {
        Kind::SecretVersion => {
            // A new value is a new version; the old one is destroyed.
            res = res
                .sensitive("body.payload.data")
                .force_new("body.payload.data");
        }
        Kind::Subscription => res = res.force_new("body.topic"),
        Kind::Trigger => res = res.force_new("body.eventFilters"),
        Kind::Database => res = res.force_new("body.type").force_new("body.locationId"),
        Kind::Bucket => res = res.force_new("body.location"),
        _ => {}
    }
    res
}

#[async_trait]
impl Provider for GcpProvider {
    fn name(&self) -> &str {
        "gcp"
    }

    fn compile(&self, inputs: &Inputs<'_>) -> Result<Vec<Resource>, ProviderError> {
        let service = inputs.service;
        let specs =
            resources(service, &self.ctx).map_err(|e| ProviderError::fatal(e.join("; ")))?;
        let mut missing = None;
        let out_dir = inputs
            .artifacts
            .functions
            .values()
            .next()
            .and_then(|a| a.path.parent())
            .map(PathBuf::from);
        let adapter = ferry_core::package::bundle::find_adapter();
        let mut out = Vec::new();
        for r in &specs {
            let mut r = r.clone();
            r.body = with_secrets(&r.body, inputs.secrets, &mut missing);
            let mut res = engine_resource(&r);
            if matches!(r.kind, Kind::FunctionSource | Kind::ObjectSource) {
                let fname = r.function.as_deref().expect("a source has a function");
                let f = &service.functions[fname];
                let (Some(dir), Some(a)) = (&out_dir, inputs.artifacts.functions.get(fname)) else {
                    continue;
                };
                let w = write_function(
                    service,
                    &self.ctx,
                    fname,
                    f,
                    &a.path,
                    dir,
                    adapter.as_deref(),
                )
                .map_err(ProviderError::fatal)?;
                if r.kind == Kind::ObjectSource {
                    // A new object per content, so the service names exactly what it runs.
                    res = res.attr("name", format!("{fname}/{}.zip", &w.sha256[..16]));
                }
                res = res.attr("sha256", w.sha256.clone());
                self.zips
                    .lock()
                    .expect("lock")
                    .insert(r.address.clone(), w.zip.clone());
            }
            out.push(res);
        }
        if let Some(name) = missing {
            return Err(ProviderError::fatal(format!(
                "the secret `{name}` has no value: set {} (it is stored in Secret Manager, never in state or plans)",
                ferry_core::model::secret_value_env(&name)
            )));
        }
        Ok(out)
    }

    async fn read(&self, request: &ReadRequest<'_>) -> Result<Option<Attributes>, ProviderError> {
        let rec = request.recorded;
        let Some(kind) = Kind::of(request.kind) else {
            return Err(ProviderError::fatal(format!(
                "unknown kind {}",
                request.kind
            )));
        };
        let name = rec["name"].as_str().unwrap_or_default();
        match kind {
            // What was uploaded is named by its hash in state.
            Kind::FunctionSource | Kind::ObjectSource => return Ok(Some(rec.clone())),
            Kind::SecretVersion => {
                let Some(v) = rec.get("version").and_then(Value::as_str) else {
                    return Ok(None);
                };
                // The value itself, so that a version added outside ferry shows as drift; only
                // its hash is compared and recorded.
                let url = self.url(kind, &format!("{v}:access"));
                let r = match self.client.send(Method::GET, &url, None).await {
                    Ok(r) => r,
                    // FAILED_PRECONDITION: the version is disabled or destroyed.
                    Err(e) if e.status == Some(400) => return Ok(None),
                    Err(e) => return Err(err(e)),
                };
                if r.status == 404 {
                    return Ok(None);
                }
                let mut live = rec.clone();
                live.insert(
                    "body".into(),
                    json!({"payload": {"data": r.body["payload"]["data"]}}),
                );
                return Ok(Some(live));
            }
            _ => {}
        }
        let Some(live) = self.get(kind, &Self::path(kind, name)).await? else {
            return Ok(None);
        };
        let mut attrs = Attributes::new();
        attrs.insert("name".into(), json!(name));
        let desired = rec.get("body").cloned().unwrap_or(Value::Null);
        let body = match kind {
            Kind::Invoker | Kind::PubSubPolicy | Kind::SecretPolicy => {
                json!({"policy": {"bindings": live.get("bindings").cloned().unwrap_or(json!([]))}})
            }
            // The grant as it stands: there (adding it would change nothing), or missing
            // (which the plan shows as a change).
            Kind::BucketGrant => {
                let role = desired["role"].as_str().unwrap_or_default();
                let member = desired["member"].as_str().unwrap_or_default();
                if live.is_object() && with_member(&live, role, member, true) == live {
                    json!({"role": role, "member": member})
                } else {
                    json!({})
                }
            }
            _ => live.clone(),
        };
        attrs.insert(
            "body".into(),
            ferry_core::engine::project_live(&desired, &body),
        );
        for (o, pointer) in outputs(kind) {
            if let Some(v) = live.pointer(pointer) {
                attrs.insert((*o).into(), v.clone());
            }
        }
        Ok(Some(attrs))
    }

    /// Cloud Run services and Eventarc triggers take `validateOnly`: the API checks the
    /// request, permissions included, and makes nothing. The other APIs ferry calls have no
    /// server-side dry run.
    async fn dry_run(&self, request: &ApplyRequest<'_>) -> Result<bool, ProviderError> {
        let Some(kind @ (Kind::RunService | Kind::Trigger)) = Kind::of(request.kind) else {
            return Ok(false);
        };
        let Some(attrs) = request.desired else {
            return Ok(false);
        };
        let (method, url, body) = self.request(kind, request.operation, attrs);
        let sep = if url.contains('?') { '&' } else { '?' };
        let url = format!("{url}{sep}validateOnly=true");
        self.client.json(method, &url, &body).await.map_err(err)?;
        Ok(true)
    }

    async fn apply(&self, request: &ApplyRequest<'_>) -> Result<Attributes, ProviderError> {
        let kind = Kind::of(request.kind)
            .ok_or_else(|| ProviderError::fatal(format!("unknown kind {}", request.kind)))?;
        if request.operation == Operation::Delete {
            let prior = request
                .prior
                .ok_or_else(|| ProviderError::fatal("nothing to delete"))?;
            self.delete(kind, request.address, prior).await?;
            return Ok(Attributes::new());
        }
        let attrs = request
            .desired
            .ok_or_else(|| ProviderError::fatal("nothing to apply"))?;
        let live = match kind {
            Kind::FunctionSource | Kind::ObjectSource => self.upload(request, attrs).await?,
            _ => self.put(kind, request.operation, attrs).await?,
        };
        let mut out = Attributes::new();
        out.insert("name".into(), attrs["name"].clone());
        for (o, pointer) in outputs(kind) {
            match live.pointer(pointer) {
                Some(v) if !v.is_null() => {
                    out.insert((*o).into(), v.clone());
                }
                _ => {
                    return Err(ProviderError::retryable(format!(
                        "{}: Google Cloud did not return {pointer} yet",
                        request.address
                    )))
                }
            }
        }
        Ok(out)
    }
}

#[cfg(test)]
mod refusal_tests {
    use super::*;

    #[tokio::test]
    async fn a_plain_http_endpoint_is_refused_and_never_retried() {
        let client = Client::for_tests("http://example.com");
        let e = client
            .send(
                reqwest::Method::GET,
                "http://example.com/v1/projects/p",
                None,
            )
            .await
            .expect_err("refused");
        assert!(e.fatal, "{e}");
        assert!(!err(e).retryable);
        // Any other failure without an answer (here: a loopback port nobody listens on)
        // is worth another try.
        let mut client = Client::for_tests("http://127.0.0.1:9");
        client.attempts = 1;
        let e = client
            .send(
                reqwest::Method::GET,
                "http://127.0.0.1:9/v1/projects/p",
                None,
            )
            .await
            .expect_err("nothing listens");
        assert!(!e.fatal, "{e}");
        assert!(err(e).retryable);
    }
}

#[cfg(test)]
mod enc_tests {
    #[test]
    fn only_unreserved_characters_stay_as_they_are() {
        assert_eq!(super::enc("AZaz09-._~"), "AZaz09-._~");
        assert_eq!(
            super::enc("dir/file name+1.txt"),
            "dir%2Ffile%20name%2B1.txt"
        );
        assert_eq!(super::enc("é?#&="), "%C3%A9%3F%23%26%3D");
    }
}

#[cfg(test)]
mod grant_tests {
    use super::with_member;
    use serde_json::json;

    #[test]
    fn a_member_is_added_and_taken_away_leaving_the_rest() {
        let legacy = json!({
            "kind": "storage#policy",
            "etag": "CAE=",
            "bindings": [
                {"role": "roles/storage.legacyBucketOwner", "members": ["projectOwner:p", "projectEditor:p"]},
                {"role": "roles/storage.objectAdmin", "members": ["user:a@example.com"], "condition": {"title": "t", "expression": "true"}},
            ],
        });
        let sa = "serviceAccount:f@p.iam.gserviceaccount.com";
        let granted = with_member(&legacy, "roles/storage.objectAdmin", sa, true);
        assert_eq!(granted["etag"], "CAE=");
        assert_eq!(granted["bindings"].as_array().unwrap().len(), 3);
        assert_eq!(granted["bindings"][0], legacy["bindings"][0]);
        assert_eq!(
            granted["bindings"][1], legacy["bindings"][1],
            "a conditional binding is another binding"
        );
        assert_eq!(
            granted["bindings"][2],
            json!({"role": "roles/storage.objectAdmin", "members": [sa]})
        );
        // Granting twice changes nothing; another member joins the same binding.
        assert_eq!(
            with_member(&granted, "roles/storage.objectAdmin", sa, true),
            granted
        );
        let two = with_member(
            &granted,
            "roles/storage.objectAdmin",
            "user:b@example.com",
            true,
        );
        assert_eq!(
            two["bindings"][2]["members"],
            json!([sa, "user:b@example.com"])
        );
        // Taking it away again gives the policy it started as.
        let back = with_member(&granted, "roles/storage.objectAdmin", sa, false);
        assert_eq!(back, legacy);
        assert_eq!(
            with_member(&legacy, "roles/storage.objectAdmin", sa, false),
            legacy
        );
    }
}
