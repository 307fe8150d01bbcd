//! An in-process fake of the Google Cloud control planes ferry calls (Pub/Sub, Cloud Functions
//! v2, Cloud Run v2, Cloud Scheduler, Eventarc, Secret Manager, Firestore admin, Resource
//! Manager), for tests/gcp.rs. It
//! - checks every request body against its schema in Google's discovery documents
//!   (tests/gcp/discovery.rs: closed objects, no output-only fields, required fields present);
//! - answers like the APIs: creates and updates of functions, services, triggers and databases
//!   are long-running operations that finish after a few polls, resources come back with the
//!   output fields and server-side defaults Google adds (a Cloud Run container's `ports`, Cloud
//!   Functions' `LOG_EXECUTION_ID`, ...), one Cloud Scheduler create is throttled (429 with
//!   `Retry-After`);
//! - refuses what the APIs refuse for ferry's resources: a subscription to a topic that does not
//!   exist, a function whose uploaded source is not in storage, an Eventarc trigger to a Cloud
//!   Run service or a bucket that does not exist, an invoker policy on a missing service;
//! - keeps storage real: Cloud Storage calls go through to a `gcp-storage-emulator` (PyPI), and
//!   `generateUploadUrl` hands out an upload URL on the emulator itself, so the package lands
//!   there byte for byte.

#[path = "discovery.rs"]
pub mod discovery;

use axum::body::Bytes;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use discovery::Discovery;
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::sync::Mutex;

/// The project number the fake's Resource Manager answers with.
pub const PROJECT_NUMBER: &str = "123456789012";
/// The bucket Cloud Functions' upload URLs point into.
pub const UPLOADS: &str = "gcf-v2-uploads-123456789012-europe-west1";

#[derive(Default)]
pub struct State {
    /// Full REST name → the resource as GET returns it (buckets live in the emulator).
    pub resources: BTreeMap<String, Value>,
    /// `METHOD /api/version/path?query` of every request.
    pub calls: Vec<String>,
    /// The JSON body of each call that had one, by call index.
    pub bodies: BTreeMap<usize, Value>,
    /// Requests the fake refused as invalid (a test expects none).
    pub invalid: Vec<String>,
    /// Secret version name → the payload it was given (base64, as sent).
    pub payloads: BTreeMap<String, String>,
    /// Operation name → (polls left, the finished operation).
    ops: BTreeMap<String, (u32, Value)>,
    /// The next mutating call whose path contains this fails with a 400.
    pub fail_next: Option<String>,
    /// Bucket name → its IAM policy (the emulator has none); a bucket's first read gives the
    /// legacy project bindings Cloud Storage starts every bucket with.
    pub bucket_policies: BTreeMap<String, Value>,
    throttled: bool,
    n: u64,
}

pub struct Fake {
    pub state: Mutex<State>,
    discovery: Discovery,
    /// The fake's own base URL.
    pub base: String,
    /// The storage emulator's base URL.
    pub gcs: String,
    http: reqwest::Client,
}

fn js(status: StatusCode, v: Value) -> Response {
    (
        status,
        [("content-type", "application/json")],
        v.to_string(),
    )
        .into_response()
}

fn ok(v: Value) -> Response {
    js(StatusCode::OK, v)
}

/// A Google error body.
fn error(status: StatusCode, message: &str) -> Response {
    let code = match status.as_u16() {
        400 => "INVALID_ARGUMENT",
        404 => "NOT_FOUND",
        409 => "ALREADY_EXISTS",
        429 => "RESOURCE_EXHAUSTED",
        412 => "FAILED_PRECONDITION",
        _ => "UNKNOWN",
    };
    js(
        status,
        json!({"error": {"code": status.as_u16(), "message": message, "status": code}}),
    )
}

fn now() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Micros, true)
}

/// Copies the fields an `updateMask` names (`a,b.c`) from `from` into `to`.
fn apply_mask(to: &mut Value, from: &Value, mask: &str) {
    for path in mask.split(',').filter(|p| !p.is_empty()) {
        let parts: Vec<&str> = path.split('.').collect();
        let mut src = from;
        for p in &parts {
            src = &src[*p];
        }
        let mut dst = &mut *to;
        for p in &parts[..parts.len() - 1] {
            if dst.get(*p).is_none() {
                dst[*p] = json!({});
            }
            dst = &mut dst[*p];
        }
        let last = parts[parts.len() - 1];
        if src.is_null() {
            if let Some(o) = dst.as_object_mut() {
                o.remove(last);
            }
        } else {
            dst[last] = src.clone();
        }
    }
}

/// Whether a call asks for a server-side dry run (`validateOnly=true`).
fn validate_only(uri: &Uri) -> bool {
    query(uri, "validateOnly").as_deref() == Some("true")
}

/// The answer to a `validateOnly` call: a finished operation; nothing is made or changed.
fn validated(name: &str, resource: Value) -> Response {
    ok(json!({
        "name": format!("{}/operations/validate-{}", location_of(name), uuid::Uuid::new_v4()),
        "done": true,
        "response": resource,
    }))
}

fn query(uri: &Uri, key: &str) -> Option<String> {
    url::form_urlencoded::parse(uri.query().unwrap_or_default().as_bytes())
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.into_owned())
}

/// `projects/p/locations/l/services/s` → `projects/p/locations/l`.
fn location_of(name: &str) -> String {
    name.split('/').take(4).collect::<Vec<_>>().join("/")
}

fn last(name: &str) -> &str {
    name.rsplit('/').next().unwrap_or(name)
}

impl Fake {
    pub fn new(base: String, gcs: String, discovery: Discovery) -> Self {
        Fake {
            state: Mutex::new(State::default()),
            discovery,
            base,
            gcs,
            http: reqwest::Client::new(),
        }
    }

    /// Refuses a body that breaks its schema (recorded in `invalid`).
    fn valid(&self, what: &str, doc: &str, schema: &str, body: &Value) -> Result<(), Response> {
        let errors = self.discovery.check(doc, schema, body);
        if errors.is_empty() {
            return Ok(());
        }
        let message = format!("{what}: {} against {doc} {schema}", errors.join("; "));
        self.state.lock().unwrap().invalid.push(message.clone());
        Err(error(StatusCode::BAD_REQUEST, &message))
    }

    /// A request that breaks a rule of the API (not a schema): recorded and refused.
    fn refuse(&self, status: StatusCode, message: String) -> Response {
        self.state.lock().unwrap().invalid.push(message.clone());
        error(status, &message)
    }

    /// A long-running operation that finishes after two polls with `response`.
    fn operation(&self, parent: &str, response: Value, schema_type: &str) -> Response {
        let mut st = self.state.lock().unwrap();
        st.n += 1;
        let name = format!("{parent}/operations/operation-{}", st.n);
        let metadata = json!({"@type": schema_type, "createTime": now()});
        let mut response = response;
        if let Some(o) = response.as_object_mut() {
            o.insert(
                "@type".into(),
                json!(schema_type.replace("OperationMetadata", "")),
            );
        }
        let done = json!({"name": name, "done": true, "metadata": metadata, "response": response});
        st.ops.insert(name.clone(), (2, done));
        ok(json!({"name": name, "done": false, "metadata": metadata}))
    }

    /// A request to the storage emulator.
    pub async fn gcs_call(
        &self,
        method: reqwest::Method,
        path_and_query: &str,
        body: Option<(Vec<u8>, String)>,
    ) -> reqwest::Response {
        let mut r = self
            .http
            .request(method, format!("{}{path_and_query}", self.gcs));
        if let Some((b, ct)) = body {
            r = r.header("content-type", ct).body(b);
        }
        r.send().await.expect("the storage emulator answers")
    }

    /// Whether an object is in the emulator (at `generation`, when given).
    async fn object_exists(&self, bucket: &str, object: &str, generation: Option<&str>) -> bool {
        let path = format!(
            "/storage/v1/b/{bucket}/o/{}",
            url::form_urlencoded::byte_serialize(object.as_bytes()).collect::<String>()
        );
        let r = self.gcs_call(reqwest::Method::GET, &path, None).await;
        if !r.status().is_success() {
            return false;
        }
        let o: Value = r.json().await.unwrap_or_default();
        generation.is_none_or(|g| g.is_empty() || o["generation"].as_str() == Some(g))
    }

    async fn bucket_exists(&self, bucket: &str) -> bool {
        self.gcs_call(
            reqwest::Method::GET,
            &format!("/storage/v1/b/{bucket}"),
            None,
        )
        .await
        .status()
        .is_success()
    }

    pub async fn handle(
        self: std::sync::Arc<Self>,
        m: Method,
        u: Uri,
        h: HeaderMap,
        b: Bytes,
    ) -> Response {
        let path = u.path().to_owned();
        let call = match u.query() {
            Some(q) => format!("{m} {path}?{q}"),
            None => format!("{m} {path}"),
        };
        let body: Value = serde_json::from_slice(&b).unwrap_or(Value::Null);
        {
            let mut st = self.state.lock().unwrap();
            st.calls.push(call.clone());
            if !body.is_null() {
                let i = st.calls.len() - 1;
                st.bodies.insert(i, body.clone());
            }
            if m != Method::GET {
                if let Some(f) = st.fail_next.clone() {
                    if path.contains(&f) {
                        st.fail_next = None;
                        return error(StatusCode::BAD_REQUEST, "injected failure");
                    }
                }
            }
        }
        if h.get("authorization").and_then(|v| v.to_str().ok()) != Some("Bearer test-token") {
            return error(StatusCode::UNAUTHORIZED, "no or wrong bearer token");
        }
        let mut segs = path.trim_start_matches('/').splitn(3, '/');
        let (api, _version, rest) = (
            segs.next().unwrap_or_default().to_owned(),
            segs.next().unwrap_or_default().to_owned(),
            segs.next().unwrap_or_default().to_owned(),
        );
        if api == "gcs" {
            return self.storage(m, &u, &h, b, body).await;
        }
        // Operations of every API.
        if m == Method::GET && rest.contains("/operations/") {
            let mut st = self.state.lock().unwrap();
            return match st.ops.get_mut(&rest) {
                Some((left, done)) if *left == 0 => ok(done.clone()),
                Some((left, _)) => {
                    *left -= 1;
                    ok(json!({"name": rest, "done": false}))
                }
                None => error(StatusCode::NOT_FOUND, "no such operation"),
            };
        }
        match api.as_str() {
            "cloudresourcemanager" => {
                let project = rest.trim_start_matches("projects/");
                ok(
                    json!({"name": format!("projects/{PROJECT_NUMBER}"), "projectId": project, "state": "ACTIVE"}),
                )
            }
            "pubsub" => self.pubsub(m, &u, &rest, body).await,
            "cloudfunctions" => self.functions(m, &u, &rest, body).await,
            "run" => self.run(m, &u, &rest, body).await,
            "cloudscheduler" => self.scheduler(m, &u, &rest, body),
            "eventarc" => self.eventarc(m, &u, &rest, body).await,
            "secretmanager" => self.secrets(m, &u, &rest, body),
            "firestore" => self.firestore(m, &u, &rest, body),
            _ => error(StatusCode::NOT_FOUND, &format!("no API {api}")),
        }
    }

    fn get(&self, name: &str) -> Response {
        match self.state.lock().unwrap().resources.get(name) {
            Some(r) => {
                // The IAM policy is read through `:getIamPolicy`, not with the resource.
                let mut r = r.clone();
                if let Some(o) = r.as_object_mut() {
                    o.remove("policy");
                }
                ok(r)
            }
            None => error(StatusCode::NOT_FOUND, &format!("{name} not found")),
        }
    }

    fn exists(&self, name: &str) -> bool {
        self.state.lock().unwrap().resources.contains_key(name)
    }

    fn store(&self, name: &str, v: Value) {
        self.state
            .lock()
            .unwrap()
            .resources
            .insert(name.to_owned(), v);
    }

    fn remove(&self, name: &str) -> Option<Value> {
        let mut st = self.state.lock().unwrap();
        let prefix = format!("{name}/");
        st.resources.retain(|k, _| !k.starts_with(&prefix));
        st.resources.remove(name)
    }

    /// Updates a stored resource by `updateMask`; the updated resource.
    fn patch(&self, name: &str, body: &Value, mask: &str) -> Option<Value> {
        let mut st = self.state.lock().unwrap();
        let r = st.resources.get_mut(name)?;
        apply_mask(r, body, mask);
        r["updateTime"] = json!(now());
        Some(r.clone())
    }

    /// `:getIamPolicy` and `:setIamPolicy` on a resource of the fake (the policy is kept in
    /// its `policy` field, which reads of the resource leave out); `None` for other calls.
    fn iam(&self, rest: &str, doc: &str, schema: &str, body: &Value) -> Option<Response> {
        if let Some(name) = rest.strip_suffix(":getIamPolicy") {
            let st = self.state.lock().unwrap();
            return Some(match st.resources.get(name) {
                Some(s) => ok(s.get("policy").cloned().unwrap_or(json!({"etag": "ACAB"}))),
                None => error(StatusCode::NOT_FOUND, "resource not found"),
            });
        }
        let name = rest.strip_suffix(":setIamPolicy")?;
        if let Err(r) = self.valid(rest, doc, schema, body) {
            return Some(r);
        }
        let mut st = self.state.lock().unwrap();
        let Some(s) = st.resources.get_mut(name) else {
            drop(st);
            return Some(self.refuse(
                StatusCode::NOT_FOUND,
                format!("setIamPolicy on {name}, which does not exist"),
            ));
        };
        let mut policy = body["policy"].clone();
        policy["etag"] = json!("BwYz");
        s["policy"] = policy.clone();
        Some(ok(policy))
    }

    async fn pubsub(&self, m: Method, _u: &Uri, name: &str, body: Value) -> Response {
        if let Some(r) = self.iam(name, "pubsub.v1", "SetIamPolicyRequest", &body) {
            return r;
        }
        let topic = name.contains("/topics/");
        match m {
            Method::GET => self.get(name),
            Method::DELETE => match self.remove(name) {
                Some(_) => ok(json!({})),
                None => error(StatusCode::NOT_FOUND, "Resource not found"),
            },
            Method::PUT => {
                let schema = if topic { "Topic" } else { "Subscription" };
                if let Err(r) = self.valid(name, "pubsub.v1", schema, &body) {
                    return r;
                }
                if self.exists(name) {
                    return error(
                        StatusCode::CONFLICT,
                        "Resource already exists in the project",
                    );
                }
                if !topic {
                    for t in [&body["topic"], &body["deadLetterPolicy"]["deadLetterTopic"]] {
                        if let Some(t) = t.as_str() {
                            if !self.exists(t) {
                                return self.refuse(
                                    StatusCode::NOT_FOUND,
                                    format!("{name}: Resource not found (resource={t})"),
                                );
                            }
                        }
                    }
                    if let Some(e) = body["pushConfig"]["pushEndpoint"].as_str() {
                        if !e.starts_with("https://") {
                            return self.refuse(
                                StatusCode::BAD_REQUEST,
                                format!("{name}: invalid push endpoint {e}"),
                            );
                        }
                    }
                }
                let mut r = body;
                r["name"] = json!(name);
                r["state"] = json!("ACTIVE");
                self.store(name, r.clone());
                ok(r)
            }
            Method::PATCH => {
                let (schema, key) = if topic {
                    ("UpdateTopicRequest", "topic")
                } else {
                    ("UpdateSubscriptionRequest", "subscription")
                };
                if let Err(r) = self.valid(name, "pubsub.v1", schema, &body) {
                    return r;
                }
                let mask = body["updateMask"].as_str().unwrap_or_default();
                match self.patch(name, &body[key], mask) {
                    Some(r) => {
                        // Pub/Sub has no updateTime.
                        let mut r = r;
                        r.as_object_mut().unwrap().remove("updateTime");
                        self.store(name, r.clone());
                        ok(r)
                    }
                    None => error(StatusCode::NOT_FOUND, "Resource not found"),
                }
            }
            _ => error(StatusCode::METHOD_NOT_ALLOWED, "method"),
        }
    }

    /// The URL Cloud Run gives a service.
    fn run_uri(id: &str) -> String {
        format!("https://{id}-{PROJECT_NUMBER}.europe-west1.run.app")
    }

    async fn functions(&self, m: Method, u: &Uri, rest: &str, body: Value) -> Response {
        if let Some(parent) = rest.strip_suffix("/functions:generateUploadUrl") {
            if let Err(r) = self.valid(rest, "cloudfunctions.v2", "GenerateUploadUrlRequest", &body)
            {
                return r;
            }
            if !self.bucket_exists(UPLOADS).await {
                let r = self
                    .gcs_call(
                        reqwest::Method::POST,
                        "/storage/v1/b?project=p",
                        Some((
                            json!({"name": UPLOADS}).to_string().into_bytes(),
                            "application/json".into(),
                        )),
                    )
                    .await;
                // Two uploads at once may both make it: the second is told it exists.
                assert!(
                    r.status().is_success() || r.status() == 409,
                    "making the uploads bucket: {}",
                    r.status()
                );
            }
            let object = format!("{}.zip", uuid::Uuid::new_v4());
            let _ = parent;
            return ok(json!({
                "uploadUrl": format!("{}/{UPLOADS}/{object}?GoogleAccessId=service-{PROJECT_NUMBER}@gcf-admin-robot.iam.gserviceaccount.com&Expires=1999999999&Signature=c2lnbmVk", self.gcs),
                "storageSource": {"bucket": UPLOADS, "object": object},
            }));
        }
        match m {
            Method::GET => self.get(rest),
            Method::POST => {
                let Some(id) = query(u, "functionId") else {
                    return error(StatusCode::BAD_REQUEST, "functionId is required");
                };
                let name = format!("{rest}/{id}");
                if let Err(r) = self.valid(&name, "cloudfunctions.v2", "Function", &body) {
                    return r;
                }
                if body["name"] != json!(name) {
                    return self.refuse(
                        StatusCode::BAD_REQUEST,
                        format!("{name}: the body names {}", body["name"]),
                    );
                }
                if self.exists(&name) {
                    return error(StatusCode::CONFLICT, "function already exists");
                }
                self.deploy_function(&name, body).await
            }
            Method::PATCH => {
                let Some(mut r) = self.state.lock().unwrap().resources.get(rest).cloned() else {
                    return error(StatusCode::NOT_FOUND, "function not found");
                };
                if let Err(e) = self.valid(rest, "cloudfunctions.v2", "Function", &body) {
                    return e;
                }
                apply_mask(&mut r, &body, &query(u, "updateMask").unwrap_or_default());
                self.deploy_function(rest, r).await
            }
            Method::DELETE => {
                if self.remove(rest).is_none() {
                    return error(StatusCode::NOT_FOUND, "function not found");
                }
                let service = format!("{}/services/{}", location_of(rest), last(rest));
                self.remove(&service);
                self.operation(
                    &location_of(rest),
                    json!({}),
                    "type.googleapis.com/google.cloud.functions.v2.OperationMetadata",
                )
            }
            _ => error(StatusCode::METHOD_NOT_ALLOWED, "method"),
        }
    }

    /// Builds (checks the source is in storage) and stores a function with what Google adds.
    async fn deploy_function(&self, name: &str, mut r: Value) -> Response {
        let src = &r["buildConfig"]["source"]["storageSource"];
        let (bucket, object) = (
            src["bucket"].as_str().unwrap_or_default().to_owned(),
            src["object"].as_str().unwrap_or_default().to_owned(),
        );
        if !self.object_exists(&bucket, &object, None).await {
            return self.refuse(
                StatusCode::BAD_REQUEST,
                format!("{name}: source gs://{bucket}/{object} does not exist"),
            );
        }
        let id = last(name).to_owned();
        let location = location_of(name);
        let service = format!("{location}/services/{id}");
        r["state"] = json!("ACTIVE");
        r["updateTime"] = json!(now());
        r["url"] = json!(format!("https://europe-west1-p.cloudfunctions.net/{id}"));
        r["buildConfig"]["source"]["storageSource"]["generation"] = json!("1");
        r["buildConfig"]["dockerRegistry"] = json!("ARTIFACT_REGISTRY");
        let sc = &mut r["serviceConfig"];
        sc["uri"] = json!(Self::run_uri(&id));
        sc["service"] = json!(service);
        sc["revision"] = json!(format!("{id}-00001-abc"));
        sc["maxInstanceCount"] = json!(100);
        if sc.get("availableCpu").is_none() {
            sc["availableCpu"] = json!("0.1666");
        }
        sc["environmentVariables"]["LOG_EXECUTION_ID"] = json!("true");
        self.store(name, r.clone());
        // The function's Cloud Run service, whose IAM policy says who may invoke it.
        if !self.exists(&service) {
            self.store(
                &service,
                json!({"name": service, "uri": Self::run_uri(&id), "policy": {}}),
            );
        }
        self.operation(
            &location,
            r,
            "type.googleapis.com/google.cloud.functions.v2.OperationMetadata",
        )
    }

    async fn run(&self, m: Method, u: &Uri, rest: &str, body: Value) -> Response {
        if let Some(r) = self.iam(rest, "run.v2", "GoogleIamV1SetIamPolicyRequest", &body) {
            return r;
        }
        match m {
            Method::GET => self.get(rest),
            Method::POST => {
                let Some(id) = query(u, "serviceId") else {
                    return error(StatusCode::BAD_REQUEST, "serviceId is required");
                };
                let name = format!("{rest}/{id}");
                if let Err(r) = self.valid(&name, "run.v2", "GoogleCloudRunV2Service", &body) {
                    return r;
                }
                if self.exists(&name) {
                    return error(StatusCode::CONFLICT, "service already exists");
                }
                self.deploy_service(&name, body, json!({}), validate_only(u))
                    .await
            }
            Method::PATCH => {
                let Some(old) = self.state.lock().unwrap().resources.get(rest).cloned() else {
                    return error(StatusCode::NOT_FOUND, "service not found");
                };
                if let Err(e) = self.valid(rest, "run.v2", "GoogleCloudRunV2Service", &body) {
                    return e;
                }
                self.deploy_service(rest, body, old["policy"].clone(), validate_only(u))
                    .await
            }
            Method::DELETE => {
                if self.remove(rest).is_none() {
                    return error(StatusCode::NOT_FOUND, "service not found");
                }
                self.operation(
                    &location_of(rest),
                    json!({"name": rest}),
                    "type.googleapis.com/google.cloud.run.v2.Service",
                )
            }
            _ => error(StatusCode::METHOD_NOT_ALLOWED, "method"),
        }
    }

    /// A Cloud Run service (replaced whole, as Run v2's PATCH does) with what Google adds;
    /// with `validateOnly`, checked and answered but not made.
    async fn deploy_service(
        &self,
        name: &str,
        mut r: Value,
        policy: Value,
        validate_only: bool,
    ) -> Response {
        let src = &r["template"]["containers"][0]["sourceCode"]["cloudStorageSource"];
        let (bucket, object, generation) = (
            src["bucket"].as_str().unwrap_or_default().to_owned(),
            src["object"].as_str().unwrap_or_default().to_owned(),
            src["generation"].as_str().map(str::to_owned),
        );
        if !self
            .object_exists(&bucket, &object, generation.as_deref())
            .await
        {
            return self.refuse(
                StatusCode::BAD_REQUEST,
                format!("{name}: source gs://{bucket}/{object}#{generation:?} does not exist"),
            );
        }
        let id = last(name).to_owned();
        r["name"] = json!(name);
        r["uri"] = json!(Self::run_uri(&id));
        r["uid"] = json!(uuid::Uuid::new_v4().to_string());
        r["updateTime"] = json!(now());
        r["launchStage"] = json!("GA");
        r["traffic"] = json!([{"type": "TRAFFIC_TARGET_ALLOCATION_TYPE_LATEST", "percent": 100}]);
        r["template"]["scaling"] = json!({"maxInstanceCount": 100});
        if let Some(cs) = r["template"]["containers"].as_array_mut() {
            for c in cs {
                c["ports"] = json!([{"name": "http1", "containerPort": 8080}]);
                c["startupProbe"] = json!({"timeoutSeconds": 240, "periodSeconds": 240, "failureThreshold": 1, "tcpSocket": {"port": 8080}});
            }
        }
        if validate_only {
            return validated(name, r);
        }
        r["policy"] = policy;
        self.store(name, r.clone());
        let mut answer = r;
        answer.as_object_mut().unwrap().remove("policy");
        self.operation(
            &location_of(name),
            answer,
            "type.googleapis.com/google.cloud.run.v2.Service",
        )
    }

    fn scheduler(&self, m: Method, u: &Uri, rest: &str, body: Value) -> Response {
        match m {
            Method::GET => self.get(rest),
            Method::DELETE => match self.remove(rest) {
                Some(_) => ok(json!({})),
                None => error(StatusCode::NOT_FOUND, "job not found"),
            },
            Method::POST => {
                if let Err(r) = self.valid(rest, "cloudscheduler.v1", "Job", &body) {
                    return r;
                }
                {
                    let mut st = self.state.lock().unwrap();
                    if !st.throttled {
                        st.throttled = true;
                        drop(st);
                        let mut r = error(StatusCode::TOO_MANY_REQUESTS, "quota exceeded");
                        r.headers_mut().insert("retry-after", "0".parse().unwrap());
                        return r;
                    }
                }
                let name = body["name"].as_str().unwrap_or_default().to_owned();
                if location_of(&name) != rest.trim_end_matches("/jobs") {
                    return self.refuse(
                        StatusCode::BAD_REQUEST,
                        format!("job {name} is not under {rest}"),
                    );
                }
                if !body["httpTarget"]["uri"]
                    .as_str()
                    .is_some_and(|s| s.starts_with("https://"))
                {
                    return self.refuse(
                        StatusCode::BAD_REQUEST,
                        format!("job {name}: the target is not https"),
                    );
                }
                if self.exists(&name) {
                    return error(StatusCode::CONFLICT, "job already exists");
                }
                let mut r = body;
                r["state"] = json!("ENABLED");
                r["userUpdateTime"] = json!(now());
                r["retryConfig"] = json!({"maxBackoffDuration": "3600s", "minBackoffDuration": "5s", "maxDoublings": 5});
                r["httpTarget"]["headers"] = json!({"User-Agent": "Google-Cloud-Scheduler"});
                self.store(&name, r.clone());
                ok(r)
            }
            Method::PATCH => {
                if let Err(r) = self.valid(rest, "cloudscheduler.v1", "Job", &body) {
                    return r;
                }
                match self.patch(rest, &body, &query(u, "updateMask").unwrap_or_default()) {
                    Some(r) => ok(r),
                    None => error(StatusCode::NOT_FOUND, "job not found"),
                }
            }
            _ => error(StatusCode::METHOD_NOT_ALLOWED, "method"),
        }
    }

    async fn eventarc(&self, m: Method, u: &Uri, rest: &str, body: Value) -> Response {
        match m {
            Method::GET => self.get(rest),
            Method::POST | Method::PATCH => {
                let name = match (&m, query(u, "triggerId")) {
                    (&Method::POST, Some(id)) => format!("{rest}/{id}"),
                    (&Method::POST, None) => {
                        return error(StatusCode::BAD_REQUEST, "triggerId is required")
                    }
                    _ => rest.to_owned(),
                };
                if let Err(r) = self.valid(&name, "eventarc.v1", "Trigger", &body) {
                    return r;
                }
                let mut r = if m == Method::POST {
                    if self.exists(&name) {
                        return error(StatusCode::CONFLICT, "trigger already exists");
                    }
                    body.clone()
                } else {
                    let Some(mut r) = self.state.lock().unwrap().resources.get(&name).cloned()
                    else {
                        return error(StatusCode::NOT_FOUND, "trigger not found");
                    };
                    apply_mask(&mut r, &body, &query(u, "updateMask").unwrap_or_default());
                    r
                };
                let run = &r["destination"]["cloudRun"];
                let service = format!(
                    "{}/services/{}",
                    location_of(&name),
                    run["service"].as_str().unwrap_or_default()
                );
                if !self.exists(&service) {
                    return self.refuse(
                        StatusCode::BAD_REQUEST,
                        format!("{name}: the Cloud Run service {service} does not exist"),
                    );
                }
                let filters = r["eventFilters"].as_array().cloned().unwrap_or_default();
                for f in &filters {
                    if f["attribute"] == "bucket" {
                        let b = f["value"].as_str().unwrap_or_default();
                        if !self.bucket_exists(b).await {
                            return self.refuse(
                                StatusCode::BAD_REQUEST,
                                format!("{name}: bucket {b} does not exist"),
                            );
                        }
                    }
                }
                if validate_only(u) {
                    return validated(&name, r);
                }
                r["uid"] = json!(uuid::Uuid::new_v4().to_string());
                r["updateTime"] = json!(now());
                r["transport"] = json!({"pubsub": {
                    "topic": format!("projects/p/topics/eventarc-europe-west1-{}", last(&name)),
                    "subscription": format!("projects/p/subscriptions/eventarc-europe-west1-{}", last(&name)),
                }});
                self.store(&name, r.clone());
                self.operation(
                    &location_of(&name),
                    r,
                    "type.googleapis.com/google.cloud.eventarc.v1.OperationMetadata",
                )
            }
            Method::DELETE => {
                if self.remove(rest).is_none() {
                    return error(StatusCode::NOT_FOUND, "trigger not found");
                }
                self.operation(
                    &location_of(rest),
                    json!({"name": rest}),
                    "type.googleapis.com/google.cloud.eventarc.v1.OperationMetadata",
                )
            }
            _ => error(StatusCode::METHOD_NOT_ALLOWED, "method"),
        }
    }

    fn secrets(&self, m: Method, u: &Uri, rest: &str, body: Value) -> Response {
        if let Some(r) = self.iam(rest, "secretmanager.v1", "SetIamPolicyRequest", &body) {
            return r;
        }
        if let Some(secret) = rest.strip_suffix(":addVersion") {
            if let Err(r) = self.valid(rest, "secretmanager.v1", "AddSecretVersionRequest", &body) {
                return r;
            }
            let mut st = self.state.lock().unwrap();
            if !st.resources.contains_key(secret) {
                drop(st);
                return self.refuse(
                    StatusCode::NOT_FOUND,
                    format!("addVersion to {secret}, which does not exist"),
                );
            }
            let n = st
                .resources
                .keys()
                .filter(|k| k.starts_with(&format!("{secret}/versions/")))
                .count()
                + 1;
            let name = format!("{secret}/versions/{n}");
            let v = json!({"name": name, "state": "ENABLED", "createTime": now()});
            st.resources.insert(name.clone(), v.clone());
            let data = body["payload"]["data"]
                .as_str()
                .unwrap_or_default()
                .to_owned();
            st.payloads.insert(name, data);
            return ok(v);
        }
        if let Some(version) = rest.strip_suffix(":access") {
            // The payload of an enabled version; a destroyed one cannot be accessed.
            let st = self.state.lock().unwrap();
            return match (st.resources.get(version), st.payloads.get(version)) {
                (Some(v), Some(data)) if v["state"] == "ENABLED" => {
                    ok(json!({"name": version, "payload": {"data": data}}))
                }
                // FAILED_PRECONDITION, which Google sends as HTTP 400.
                (Some(_), _) => js(
                    StatusCode::BAD_REQUEST,
                    json!({"error": {"code": 400, "message": "version is destroyed", "status": "FAILED_PRECONDITION"}}),
                ),
                _ => error(StatusCode::NOT_FOUND, "version not found"),
            };
        }
        if let Some(version) = rest.strip_suffix(":destroy") {
            let mut st = self.state.lock().unwrap();
            return match st.resources.get_mut(version) {
                Some(v) => {
                    v["state"] = json!("DESTROYED");
                    ok(v.clone())
                }
                None => error(StatusCode::NOT_FOUND, "version not found"),
            };
        }
        match m {
            Method::GET => self.get(rest),
            Method::DELETE => match self.remove(rest) {
                Some(_) => ok(json!({})),
                None => error(StatusCode::NOT_FOUND, "secret not found"),
            },
            Method::POST => {
                let Some(id) = query(u, "secretId") else {
                    return error(StatusCode::BAD_REQUEST, "secretId is required");
                };
                let name = format!("{rest}/{id}");
                if let Err(r) = self.valid(&name, "secretmanager.v1", "Secret", &body) {
                    return r;
                }
                if self.exists(&name) {
                    return error(StatusCode::CONFLICT, "secret already exists");
                }
                let mut r = body;
                r["name"] = json!(name);
                r["createTime"] = json!(now());
                r["etag"] = json!("\"1\"");
                self.store(&name, r.clone());
                ok(r)
            }
            Method::PATCH => {
                if let Err(r) = self.valid(rest, "secretmanager.v1", "Secret", &body) {
                    return r;
                }
                match self.patch(rest, &body, &query(u, "updateMask").unwrap_or_default()) {
                    Some(mut r) => {
                        r.as_object_mut().unwrap().remove("updateTime");
                        self.store(rest, r.clone());
                        ok(r)
                    }
                    None => error(StatusCode::NOT_FOUND, "secret not found"),
                }
            }
            _ => error(StatusCode::METHOD_NOT_ALLOWED, "method"),
        }
    }

    fn firestore(&self, m: Method, u: &Uri, rest: &str, body: Value) -> Response {
        let schema = "GoogleFirestoreAdminV1Database";
        let op_type = "type.googleapis.com/google.firestore.admin.v1.CreateDatabaseMetadata";
        match m {
            Method::GET => self.get(rest),
            Method::POST => {
                let Some(id) = query(u, "databaseId") else {
                    return error(StatusCode::BAD_REQUEST, "databaseId is required");
                };
                let name = format!("{rest}/{id}");
                if let Err(r) = self.valid(&name, "firestore.v1", schema, &body) {
                    return r;
                }
                if !(4..=63).contains(&id.len()) {
                    return self.refuse(
                        StatusCode::BAD_REQUEST,
                        format!("database id {id} is not 4 to 63 characters"),
                    );
                }
                if self.exists(&name) {
                    return error(StatusCode::CONFLICT, "database already exists");
                }
                let mut r = body;
                r["name"] = json!(name);
                r["uid"] = json!(uuid::Uuid::new_v4().to_string());
                r["createTime"] = json!(now());
                r["concurrencyMode"] = json!("PESSIMISTIC");
                r["pointInTimeRecoveryEnablement"] = json!("POINT_IN_TIME_RECOVERY_DISABLED");
                self.store(&name, r.clone());
                self.operation(rest, r, op_type)
            }
            Method::PATCH => {
                if let Err(r) = self.valid(rest, "firestore.v1", schema, &body) {
                    return r;
                }
                match self.patch(rest, &body, &query(u, "updateMask").unwrap_or_default()) {
                    Some(r) => self.operation(rest, r, op_type),
                    None => error(StatusCode::NOT_FOUND, "database not found"),
                }
            }
            Method::DELETE => match self.remove(rest) {
                Some(r) => self.operation(rest, r, op_type),
                None => error(StatusCode::NOT_FOUND, "database not found"),
            },
            _ => error(StatusCode::METHOD_NOT_ALLOWED, "method"),
        }
    }

    /// Cloud Storage: bucket bodies are checked, then everything goes to the emulator.
    async fn storage(&self, m: Method, u: &Uri, h: &HeaderMap, b: Bytes, body: Value) -> Response {
        let path = u.path().trim_start_matches("/gcs");
        if let Some(bucket) = path
            .strip_prefix("/storage/v1/b/")
            .and_then(|r| r.strip_suffix("/iam"))
        {
            return self.bucket_iam(m, bucket, &body).await;
        }
        let pq = match u.query() {
            Some(q) => format!("{path}?{q}"),
            None => path.to_owned(),
        };
        let is_bucket = path == "/storage/v1/b"
            || (path.starts_with("/storage/v1/b/")
                && !path["/storage/v1/b/".len()..].contains('/'));
        if is_bucket && (m == Method::POST || m == Method::PATCH) {
            if let Err(r) = self.valid(path, "storage.v1", "Bucket", &body) {
                return r;
            }
        }
        let ct = h
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("application/octet-stream")
            .to_owned();
        let method = reqwest::Method::from_bytes(m.as_str().as_bytes()).unwrap();
        let r = self
            .gcs_call(
                method,
                &pq,
                (!b.is_empty()).then(|| (b.to_vec(), ct.clone())),
            )
            .await;
        let mut status = r.status().as_u16();
        let mut answer = r.bytes().await.unwrap_or_default().to_vec();
        if m == Method::POST && path == "/storage/v1/b" && status == 200 {
            // The emulator makes the bucket with its defaults and ignores the rest of the body
            // on insert (it honours PATCH): patch it so it holds what was asked, as GCS does.
            let name = body["name"].as_str().unwrap_or_default();
            let r = self
                .gcs_call(
                    reqwest::Method::PATCH,
                    &format!("/storage/v1/b/{name}"),
                    Some((b.to_vec(), ct)),
                )
                .await;
            status = r.status().as_u16();
            answer = r.bytes().await.unwrap_or_default().to_vec();
        }
        (
            StatusCode::from_u16(status).unwrap(),
            [("content-type", "application/json")],
            answer,
        )
            .into_response()
    }

    /// `GET` and `PUT /storage/v1/b/{bucket}/iam`: the policy as Cloud Storage keeps it, with
    /// an etag that must match on `PUT` (412 otherwise), bodies checked against `Policy`.
    async fn bucket_iam(&self, m: Method, bucket: &str, body: &Value) -> Response {
        let exists = self
            .gcs_call(
                reqwest::Method::GET,
                &format!("/storage/v1/b/{bucket}"),
                None,
            )
            .await
            .status()
            .is_success();
        if !exists {
            return error(
                StatusCode::NOT_FOUND,
                "The specified bucket does not exist.",
            );
        }
        let path = format!("/storage/v1/b/{bucket}/iam");
        if m == Method::PUT {
            if let Err(r) = self.valid(&path, "storage.v1", "Policy", body) {
                return r;
            }
        }
        let mut st = self.state.lock().unwrap();
        let current = st
            .bucket_policies
            .entry(bucket.to_owned())
            .or_insert_with(|| {
                json!({
                    "kind": "storage#policy",
                    "resourceId": format!("projects/_/buckets/{bucket}"),
                    "version": 1,
                    "etag": "CAE=",
                    "bindings": [
                        {"role": "roles/storage.legacyBucketOwner", "members": ["projectEditor:ferry-test", "projectOwner:ferry-test"]},
                        {"role": "roles/storage.legacyBucketReader", "members": ["projectViewer:ferry-test"]},
                    ],
                })
            })
            .clone();
        match m {
            Method::GET => ok(current),
            Method::PUT => {
                if body.get("etag").is_some_and(|e| e != &current["etag"]) {
                    return error(StatusCode::PRECONDITION_FAILED, "Precondition Failed");
                }
                st.n += 1;
                let mut next = body.clone();
                next["etag"] = json!(base64::Engine::encode(
                    &base64::engine::general_purpose::STANDARD,
                    st.n.to_be_bytes()
                ));
                next["kind"] = json!("storage#policy");
                next["resourceId"] = current["resourceId"].clone();
                st.bucket_policies.insert(bucket.to_owned(), next.clone());
                ok(next)
            }
            _ => error(StatusCode::METHOD_NOT_ALLOWED, "method not allowed"),
        }
    }
}
