//! An in-process fake of Azure Resource Manager and of the function apps' SCM (Kudu) sites,
//! for tests/azure.rs. It checks every request body against the JSON Schema of its resource
//! type and API version (generated from the Azure REST API specifications by
//! tests/azure/arm_schemas.py), answers like ARM (ids, read-only outputs, long-running
//! operations through `Azure-AsyncOperation` and `Location`, one 429 with `Retry-After`),
//! refuses what ARM refuses for ferry's resources (a child before its parent, an Event Grid
//! subscription to a function that is not deployed, a role assignment to an unknown principal),
//! and records the calls. Storage is real: containers and queues are created in Azurite, and
//! one-deploy writes the package into the app's deployment container there.

use axum::body::Bytes;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use serde_json::{json, Value};
use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};

pub const TENANT: &str = "72f988bf-0000-0000-0000-000000000001";
/// Azurite's well-known development account.
pub const ACCOUNT: &str = "devstoreaccount1";
const ACCOUNT_KEY: &str =
    "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==";

#[derive(Default)]
pub struct State {
    /// Lower-cased id → the stored resource (as GET returns it).
    pub resources: BTreeMap<String, Value>,
    /// `METHOD path` of every request, the subscription and group shortened to `~`.
    pub calls: Vec<String>,
    /// Bodies of the mutating calls, by call index.
    pub bodies: BTreeMap<usize, Value>,
    /// Requests the fake refused as invalid (a test expects none).
    pub invalid: Vec<String>,
    /// Polls left per operation id.
    ops: HashMap<String, u32>,
    /// Site name → the Azure functions in its deployed package.
    pub deployed: BTreeMap<String, Vec<String>>,
    /// The next PUT whose path contains this fails with a 400 (a non-retryable error).
    pub fail_next_put: Option<String>,
    throttled: bool,
}

pub struct Fake {
    pub state: Mutex<State>,
    schemas: serde_json::Map<String, Value>,
    pub base: String,
    pub blob: String,
    pub queue: String,
    http: reqwest::Client,
}

/// A JSON body.
struct Js(Value);

impl IntoResponse for Js {
    fn into_response(self) -> Response {
        ([("content-type", "application/json")], self.0.to_string()).into_response()
    }
}

fn lower(s: &str) -> String {
    s.to_ascii_lowercase()
}

fn error(status: StatusCode, code: &str, message: &str) -> Response {
    (
        status,
        Js(json!({"error": {"code": code, "message": message}})),
    )
        .into_response()
}

/// The resource type of an ARM path (`Microsoft.Web/sites/config`), and whether it is a
/// resource group.
fn resource_type(path: &str) -> Option<String> {
    let segs: Vec<&str> = path.trim_matches('/').split('/').collect();
    if segs.len() == 4 && lower(segs[2]) == "resourcegroups" {
        return Some("Microsoft.Resources/resourceGroups".into());
    }
    let i = segs.iter().rposition(|s| lower(s) == "providers")?;
    let rest = &segs[i + 1..];
    if rest.len() < 3 {
        return None;
    }
    let mut t = rest[0].to_owned();
    for pair in rest[1..].chunks(2) {
        t.push('/');
        t.push_str(pair[0]);
    }
    Some(t)
}

/// HMAC-SHA256 (RFC 2104) over sha2.
fn hmac_sha256(key: &[u8], msg: &[u8]) -> [u8; 32] {
    use sha2::{Digest, Sha256};
    let mut k = [0u8; 64];
    if key.len() > 64 {
        k[..32].copy_from_slice(&Sha256::digest(key));
    } else {
        k[..key.len()].copy_from_slice(key);
    }
    let mut inner = Sha256::new();
    inner.update(k.map(|b| b ^ 0x36));
    inner.update(msg);
    let mut outer = Sha256::new();
    outer.update(k.map(|b| b ^ 0x5c));
    outer.update(inner.finalize());
    outer.finalize().into()
}

impl Fake {
    pub fn new(
        base: String,
        blob: String,
        queue: String,
        schemas: serde_json::Map<String, Value>,
    ) -> Self {
        Fake {
            state: Mutex::new(State::default()),
            schemas,
            base,
            blob,
            queue,
            http: reqwest::Client::new(),
        }
    }

    /// A Shared Key signed request to Azurite (blob or queue service).
    pub async fn storage(
        &self,
        method: reqwest::Method,
        url: &str,
        body: Vec<u8>,
        extra: &[(&str, &str)],
    ) -> reqwest::Response {
        use base64::Engine;
        let u = reqwest::Url::parse(url).unwrap();
        let date = httpdate();
        let mut ms: Vec<(String, String)> = vec![
            ("x-ms-date".into(), date),
            ("x-ms-version".into(), "2021-08-06".into()),
        ];
        for (k, v) in extra {
            ms.push(((*k).into(), (*v).into()));
        }
        ms.sort();
        let len = if body.is_empty() {
            String::new()
        } else {
            body.len().to_string()
        };
        let content_type = extra
            .iter()
            .find(|(k, _)| *k == "content-type")
            .map(|(_, v)| *v)
            .unwrap_or("");
        let mut canon_headers = String::new();
        for (k, v) in ms.iter().filter(|(k, _)| k.starts_with("x-ms-")) {
            canon_headers.push_str(&format!("{k}:{v}\n"));
        }
        // Azurite's path is /<account>/<resource>; the canonical resource repeats the account.
        let mut canon_resource = format!("/{ACCOUNT}{}", u.path());
        let mut q: Vec<(String, String)> = u
            .query_pairs()
            .map(|(k, v)| (lower(&k), v.into_owned()))
            .collect();
        q.sort();
        for (k, v) in q {
            canon_resource.push_str(&format!("\n{k}:{v}"));
        }
        let sts = format!(
            "{}\n\n\n{len}\n\n{content_type}\n\n\n\n\n\n\n{canon_headers}{canon_resource}",
            method.as_str()
        );
        let key = base64::engine::general_purpose::STANDARD
            .decode(ACCOUNT_KEY)
            .unwrap();
        let sig =
            base64::engine::general_purpose::STANDARD.encode(hmac_sha256(&key, sts.as_bytes()));
        let mut req = self.http.request(method, u).body(body);
        for (k, v) in &ms {
            req = req.header(k.as_str(), v.as_str());
        }
        req.header("authorization", format!("SharedKey {ACCOUNT}:{sig}"))
            .send()
            .await
            .unwrap()
    }

    pub async fn handle(
        self: Arc<Self>,
        method: Method,
        uri: Uri,
        headers: HeaderMap,
        body: Bytes,
    ) -> Response {
        let path = uri.path().to_owned();
        let query: HashMap<String, String> = uri
            .query()
            .map(|q| {
                url::form_urlencoded::parse(q.as_bytes())
                    .into_owned()
                    .collect()
            })
            .unwrap_or_default();
        let short = {
            let segs: Vec<&str> = path.split('/').collect();
            if segs.len() > 5 && lower(segs.get(3).copied().unwrap_or("")) == "resourcegroups" {
                format!("~/{}", segs[5..].join("/"))
            } else {
                path.clone()
            }
        };
        let index = {
            let mut st = self.state.lock().unwrap();
            st.calls.push(format!("{method} {short}"));
            st.calls.len() - 1
        };
        if !headers
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.starts_with("Bearer ") && v.len() > 7)
        {
            return error(
                StatusCode::UNAUTHORIZED,
                "AuthenticationFailed",
                "no bearer token",
            );
        }
        if let Some(rest) = path.strip_prefix("/scm/") {
            return self.scm(&method, rest, &body).await;
        }
        if let Some(op) = path.strip_prefix("/operations/") {
            return self.operation(op);
        }
        let segs: Vec<&str> = path.trim_matches('/').split('/').collect();
        if method == Method::GET && segs.len() == 2 && segs[0] == "subscriptions" {
            return Js(json!({"id": path, "subscriptionId": segs[1], "tenantId": TENANT, "state": "Enabled"})).into_response();
        }
        let Some(api) = query.get("api-version").cloned() else {
            return error(
                StatusCode::BAD_REQUEST,
                "MissingApiVersionParameter",
                "The api-version query parameter (?api-version=) is required for all requests.",
            );
        };
        if method == Method::GET && lower(&path).ends_with("/resources") && segs.len() == 5 {
            let prefix = lower(path.trim_end_matches("/resources"));
            let st = self.state.lock().unwrap();
            let value: Vec<Value> = st
                .resources
                .iter()
                .filter(|(k, _)| {
                    k.starts_with(&format!("{prefix}/providers/"))
                        && !k.contains("/providers/microsoft.authorization/")
                })
                .filter(|(k, _)| k.matches("/providers/").count() == 1 && k.split('/').count() == 9)
                .map(|(_, v)| json!({"id": v["id"], "type": v["type"]}))
                .collect();
            return Js(json!({ "value": value })).into_response();
        }
        if method == Method::POST && path.ends_with("/config/appsettings/list") {
            let id = lower(path.trim_end_matches("/list"));
            return match self.state.lock().unwrap().resources.get(&id) {
                Some(v) => Js(v.clone()).into_response(),
                None => error(StatusCode::NOT_FOUND, "ResourceNotFound", "no app settings"),
            };
        }
        let Some(rtype) = resource_type(&path) else {
            return error(StatusCode::BAD_REQUEST, "InvalidResourceId", &path);
        };
        let id = lower(&path);
        match method {
            Method::GET => match self.state.lock().unwrap().resources.get(&id) {
                Some(v) => Js(v.clone()).into_response(),
                None => error(
                    StatusCode::NOT_FOUND,
                    "ResourceNotFound",
                    &format!("The Resource '{path}' was not found."),
                ),
            },
            Method::DELETE => {
                let mut st = self.state.lock().unwrap();
                let existed = st.resources.contains_key(&id);
                st.resources
                    .retain(|k, _| k != &id && !k.starts_with(&format!("{id}/")));
                if !existed {
                    return StatusCode::NO_CONTENT.into_response();
                }
                if rtype == "Microsoft.Resources/resourceGroups" {
                    let op = uuid::Uuid::new_v4().to_string();
                    st.ops.insert(op.clone(), 1);
                    return (
                        StatusCode::ACCEPTED,
                        [
                            (
                                "location",
                                format!("{}/operations/{op}?api-version={api}", self.base),
                            ),
                            ("retry-after", "0".into()),
                        ],
                    )
                        .into_response();
                }
                StatusCode::OK.into_response()
            }
            Method::PUT => {
                {
                    let mut st = self.state.lock().unwrap();
                    if st
                        .fail_next_put
                        .as_deref()
                        .is_some_and(|f| path.contains(f))
                    {
                        st.fail_next_put = None;
                        return error(StatusCode::BAD_REQUEST, "BadRequest", "injected failure");
                    }
                }
                let body: Value = match serde_json::from_slice(&body) {
                    Ok(v) => v,
                    Err(e) => return self.invalid(format!("PUT {short}: body is not JSON: {e}")),
                };
                self.state
                    .lock()
                    .unwrap()
                    .bodies
                    .insert(index, body.clone());
                self.put(&path, &id, &rtype, &api, body).await
            }
            _ => error(
                StatusCode::METHOD_NOT_ALLOWED,
                "MethodNotAllowed",
                &format!("{method} {path}"),
            ),
        }
    }

    fn invalid(&self, message: String) -> Response {
        self.state.lock().unwrap().invalid.push(message.clone());
        error(StatusCode::BAD_REQUEST, "InvalidRequestContent", &message)
    }

    fn operation(&self, op: &str) -> Response {
        let mut st = self.state.lock().unwrap();
        let Some(left) = st.ops.get_mut(op) else {
            return error(StatusCode::NOT_FOUND, "OperationNotFound", op);
        };
        if *left > 0 {
            *left -= 1;
            return (
                StatusCode::ACCEPTED,
                [("retry-after", "0")],
                Js(json!({"status": "InProgress"})),
            )
                .into_response();
        }
        (StatusCode::OK, Js(json!({"status": "Succeeded"}))).into_response()
    }

    async fn put(&self, path: &str, id: &str, rtype: &str, api: &str, body: Value) -> Response {
        let key = format!("{rtype}@{api}");
        let Some(schema) = self.schemas.get(&key) else {
            return self.invalid(format!(
                "PUT {path}: no API version {api} for {rtype} in the REST API specifications"
            ));
        };
        let errors: Vec<String> = {
            let schema = schema.clone();
            let body = body.clone();
            // The specs' schemas nest deeply; compile them on a thread with room.
            std::thread::Builder::new()
                .stack_size(256 << 20)
                .spawn(move || {
                    let v = jsonschema::draft7::new(&schema).expect("schema compiles");
                    v.iter_errors(&body)
                        .map(|e| format!("{e} at {}", e.instance_path))
                        .collect()
                })
                .unwrap()
                .join()
                .unwrap()
        };
        if !errors.is_empty() {
            return self.invalid(format!("PUT {path} ({key}): {}", errors.join("; ")));
        }
        // The parent must exist (the resource group for top-level resources).
        let segs: Vec<&str> = path.trim_matches('/').split('/').collect();
        let parent = if rtype == "Microsoft.Resources/resourceGroups" {
            None
        } else if rtype == "Microsoft.Authorization/roleAssignments" {
            let i = lower(path)
                .rfind("/providers/microsoft.authorization/")
                .unwrap();
            Some(lower(&path[..i]))
        } else {
            let i = segs.iter().rposition(|s| lower(s) == "providers").unwrap();
            let depth = segs.len() - i - 1; // ns + (type, name) pairs
            if depth > 3 {
                // storageAccounts/x/blobServices/default/containers/y: the account is the parent
                // (blobServices/default exists with it).
                let keep = if rtype.contains("Services/") {
                    segs.len() - 4
                } else {
                    segs.len() - 2
                };
                Some(lower(&format!("/{}", segs[..keep].join("/"))))
            } else {
                Some(lower(&format!("/{}", segs[..4].join("/"))))
            }
        };
        let (lro, created, stored, op, name) =
            match self.store(path, id, rtype, &body, parent, &segs) {
                Ok(x) => x,
                Err(r) => return r,
            };
        if lro != Some("async") {
            self.side_effects(rtype, &name).await;
        }
        match lro {
            Some("async") => (
                StatusCode::CREATED,
                [
                    (
                        "azure-asyncoperation",
                        format!("{}/operations/{op}?api-version=2024-11-01", self.base),
                    ),
                    ("retry-after", "0".into()),
                ],
                Js(stored),
            )
                .into_response(),
            Some(_) => (
                StatusCode::ACCEPTED,
                [
                    (
                        "location",
                        format!("{}/operations/{op}?api-version=2025-06-01", self.base),
                    ),
                    ("retry-after", "0".into()),
                ],
            )
                .into_response(),
            None => (
                if created {
                    StatusCode::CREATED
                } else {
                    StatusCode::OK
                },
                Js(stored),
            )
                .into_response(),
        }
    }

    /// The synchronous part of a PUT: checks, outputs, storing.
    #[allow(clippy::type_complexity)]
    fn store(
        &self,
        path: &str,
        id: &str,
        rtype: &str,
        body: &Value,
        parent: Option<String>,
        segs: &[&str],
    ) -> Result<(Option<&'static str>, bool, Value, String, String), Response> {
        let mut st = self.state.lock().unwrap();
        if let Some(p) = parent {
            if !st.resources.contains_key(&p) {
                drop(st);
                return Err(self.invalid(format!(
                    "PUT {path}: the parent {p} does not exist (ParentResourceNotFound)"
                )));
            }
        }
        let name = segs.last().copied().unwrap_or_default().to_owned();
        let mut stored = body.clone();
        stored["id"] = json!(path);
        stored["name"] = json!(name);
        stored["type"] = json!(rtype);
        let props = |s: &mut Value| {
            if !s["properties"].is_object() {
                s["properties"] = json!({});
            }
        };
        props(&mut stored);
        stored["properties"]["provisioningState"] = json!("Succeeded");
        let mut lro = None;
        match rtype {
            "Microsoft.Storage/storageAccounts" => {
                stored["properties"]["primaryEndpoints"] = json!({
                    "blob": format!("{}/{ACCOUNT}/", self.blob),
                    "queue": format!("{}/{ACCOUNT}/", self.queue),
                    "table": format!("{}/{ACCOUNT}/", self.queue),
                });
                lro = Some("location");
            }
            "Microsoft.Web/sites" => {
                if let Some(plan) = body["properties"]["serverFarmId"].as_str() {
                    if !st.resources.contains_key(&lower(plan)) {
                        drop(st);
                        return Err(
                            self.invalid(format!("PUT {path}: serverFarmId {plan} does not exist"))
                        );
                    }
                }
                let previous = st
                    .resources
                    .get(id)
                    .and_then(|p| p["identity"]["principalId"].as_str().map(str::to_owned));
                stored["identity"]["principalId"] =
                    json!(previous.unwrap_or_else(|| uuid::Uuid::new_v4().to_string()));
                stored["identity"]["tenantId"] = json!(TENANT);
                stored["properties"]["defaultHostName"] =
                    json!(format!("{name}.azurewebsites.net"));
                lro = Some("async");
            }
            "Microsoft.Web/serverfarms" => {
                if !st.throttled {
                    st.throttled = true;
                    return Err((
                        StatusCode::TOO_MANY_REQUESTS,
                        [("retry-after", "1")],
                        Js(json!({"error": {"code": "TooManyRequests", "message": "throttled"}})),
                    )
                        .into_response());
                }
                lro = Some("async");
            }
            "Microsoft.Web/sites/config" => {
                stored = json!({"id": path, "name": "appsettings", "type": rtype, "properties": body["properties"]});
            }
            "Microsoft.KeyVault/vaults" => {
                stored["properties"]["vaultUri"] =
                    json!(format!("https://{name}.vault.azure.net/"));
            }
            "Microsoft.KeyVault/vaults/secrets" => {
                // Like Key Vault: the value is never returned.
                stored["properties"]
                    .as_object_mut()
                    .unwrap()
                    .remove("value");
            }
            "Microsoft.Insights/components" => {
                stored["properties"]["ConnectionString"] = json!(format!("InstrumentationKey={};IngestionEndpoint=https://westeurope.in.applicationinsights.azure.com/", uuid::Uuid::new_v4()));
            }
            "Microsoft.EventGrid/topics" => {
                stored["properties"]["endpoint"] = json!(format!(
                    "https://{name}.westeurope-1.eventgrid.azure.net/api/events"
                ));
            }
            "Microsoft.Authorization/roleAssignments" => {
                let principal = body["properties"]["principalId"]
                    .as_str()
                    .unwrap_or_default();
                let known = st
                    .resources
                    .values()
                    .any(|r| r["identity"]["principalId"].as_str() == Some(principal));
                let previous = st
                    .resources
                    .get(id)
                    .and_then(|r| r["properties"]["principalId"].as_str().map(str::to_owned));
                if previous.is_some_and(|p| p != principal) {
                    drop(st);
                    return Err(self.invalid(format!("PUT {path}: RoleAssignmentUpdateNotPermitted (the principal of an assignment cannot change)")));
                }
                if !known {
                    drop(st);
                    return Err(self.invalid(format!(
                        "PUT {path}: principal {principal} does not exist (PrincipalNotFound)"
                    )));
                }
            }
            t if t.ends_with("/eventSubscriptions") => {
                let target = body["properties"]["destination"]["properties"]["resourceId"]
                    .as_str()
                    .unwrap_or_default();
                let parts: Vec<&str> = target.split('/').collect();
                let (site, func) = (
                    parts.get(8).copied().unwrap_or_default(),
                    parts.get(10).copied().unwrap_or_default(),
                );
                let deployed = st
                    .deployed
                    .get(site)
                    .is_some_and(|f| f.iter().any(|x| x == func));
                if !deployed {
                    drop(st);
                    return Err(self.invalid(format!("PUT {path}: destination function {site}/{func} is not deployed (Event Grid validates the endpoint)")));
                }
            }
            _ => {}
        }
        let created = !st.resources.contains_key(id);
        st.resources.insert(id.to_owned(), stored.clone());
        let op = uuid::Uuid::new_v4().to_string();
        if lro.is_some() {
            st.ops.insert(op.clone(), 1);
        }
        drop(st);
        Ok((lro, created, stored, op, name))
    }

    /// Containers and queues exist in Azurite too.
    async fn side_effects(&self, rtype: &str, name: &str) {
        match rtype {
            "Microsoft.Storage/storageAccounts/blobServices/containers" => {
                let r = self
                    .storage(
                        reqwest::Method::PUT,
                        &format!("{}/{ACCOUNT}/{name}?restype=container", self.blob),
                        vec![],
                        &[],
                    )
                    .await;
                assert!(
                    r.status().is_success() || r.status() == 409,
                    "Azurite container {name}: {}",
                    r.status()
                );
            }
            "Microsoft.Storage/storageAccounts/queueServices/queues" => {
                let r = self
                    .storage(
                        reqwest::Method::PUT,
                        &format!("{}/{ACCOUNT}/{name}", self.queue),
                        vec![],
                        &[],
                    )
                    .await;
                assert!(
                    r.status().is_success() || r.status() == 409 || r.status() == 204,
                    "Azurite queue {name}: {}",
                    r.status()
                );
            }
            _ => {}
        }
    }

    /// Kudu: one-deploy and its status.
    async fn scm(&self, method: &Method, rest: &str, body: &Bytes) -> Response {
        let (site, tail) = rest.split_once('/').unwrap_or((rest, ""));
        if *method == Method::GET && tail.starts_with("api/deployments/") {
            return Js(json!({"id": tail.rsplit('/').next(), "status": 4, "status_text": "", "complete": true})).into_response();
        }
        if !(*method == Method::POST && tail == "api/publish") {
            return error(StatusCode::NOT_FOUND, "NotFound", tail);
        }
        // The site must exist and name its deployment container.
        let container = {
            let st = self.state.lock().unwrap();
            let site_res = st
                .resources
                .values()
                .find(|r| r["type"] == "Microsoft.Web/sites" && r["name"] == site);
            site_res.and_then(|s| {
                s["properties"]["functionAppConfig"]["deployment"]["storage"]["value"]
                    .as_str()
                    .map(|v| v.rsplit('/').next().unwrap_or_default().to_owned())
            })
        };
        let Some(container) = container else {
            return self.invalid(format!(
                "publish to {site}: no such site, or it has no deployment container"
            ));
        };
        let mut functions = Vec::new();
        let zip = zip::ZipArchive::new(std::io::Cursor::new(body.to_vec()));
        let Ok(mut zip) = zip else {
            return self.invalid(format!("publish to {site}: the body is not a zip"));
        };
        let mut has_host = false;
        for i in 0..zip.len() {
            let name = zip.by_index(i).unwrap().name().unwrap().into_owned();
            has_host |= name == "host.json";
            if let Some(f) = name.strip_suffix("/function.json") {
                functions.push(f.to_owned());
            }
        }
        if !has_host {
            return self.invalid(format!("publish to {site}: the zip has no host.json"));
        }
        let r = self
            .storage(
                reqwest::Method::PUT,
                &format!("{}/{ACCOUNT}/{container}/released-package.zip", self.blob),
                body.to_vec(),
                &[
                    ("x-ms-blob-type", "BlockBlob"),
                    ("content-type", "application/zip"),
                ],
            )
            .await;
        assert!(
            r.status().is_success(),
            "Azurite upload: {} {}",
            r.status(),
            r.text().await.unwrap_or_default()
        );
        self.state
            .lock()
            .unwrap()
            .deployed
            .insert(site.to_owned(), functions);
        let id = uuid::Uuid::new_v4();
        (
            StatusCode::ACCEPTED,
            [(
                "location",
                format!("{}/scm/{site}/api/deployments/{id}", self.base),
            )],
        )
            .into_response()
    }
}

fn httpdate() -> String {
    // RFC 1123, as the storage services want it.
    chrono::Utc::now()
        .format("%a, %d %b %Y %H:%M:%S GMT")
        .to_string()
}
