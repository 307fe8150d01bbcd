//! `ferry deploy --provider azure`: the engine's [`Provider`] for Azure. The resources are
//! [`crate::resources`] with every token made concrete; each is PUT to ARM (long-running
//! operations polled), read back with GET, and deleted with DELETE. The app packages go up
//! through the SCM site's one-deploy endpoint (`POST /api/publish`), the documented path for
//! Flex Consumption, after the app settings and role assignments and before the Event Grid
//! subscriptions (Event Grid checks that the function exists).

use crate::app;
use crate::arm::{credential, Arm, ArmError};
use crate::package::write_app;
use crate::resources::{outputs, package_address, resources, site_address, AzResource};
use crate::template::{pieces, referenced, Piece};
use async_trait::async_trait;
use azure_core::http::{Method, Url};
use ferry_core::engine::{
    reference, ApplyRequest, Attributes, Inputs, Operation, Provider, ProviderError, ReadRequest,
    Resource,
};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Mutex;

const RESOURCE_GROUP: &str = "resource-group";
const KIND_GROUP: &str = "azure:resourceGroup";
const KIND_PACKAGE: &str = "azure:package";

/// Where and as whom to deploy.
#[derive(Debug, Clone, Default)]
pub struct AzureOptions {
    /// Subscription id (`AZURE_SUBSCRIPTION_ID`, `provider.azure.subscriptionId`).
    pub subscription: Option<String>,
    /// Resource group (`provider.azure.resourceGroup`; default `<service>-<stage>`).
    pub resource_group: Option<String>,
    /// Location (`--region`, `provider.region`).
    pub location: Option<String>,
}

/// Azure as the engine sees it.
#[derive(Debug)]
pub struct AzureProvider {
    arm: Arm,
    scm_override: Option<Url>,
    subscription: String,
    tenant: String,
    group: String,
    location: String,
    /// Zip path by package address, filled by `compile`.
    zips: Mutex<BTreeMap<String, PathBuf>>,
}

fn err(e: ArmError) -> ProviderError {
    if e.fatal {
        return ProviderError::fatal(e.to_string());
    }
    ProviderError::http(e.status, e.to_string())
}

impl AzureProvider {
    /// Connects: the credential, the subscription's tenant (one GET), the names.
    /// `FERRY_AZURE_ARM_ENDPOINT` replaces `https://management.azure.com/` and
    /// `FERRY_AZURE_SCM_ENDPOINT` the SCM sites (`<it>/<site>` instead of
    /// `https://<site>.scm.azurewebsites.net`), for tests.
    pub async fn connect(
        service: &ferry_core::model::Service,
        o: &AzureOptions,
    ) -> Result<Self, String> {
        let settings = service.settings.get("azure");
        let setting = |k: &str| {
            settings
                .and_then(|s| s.get(k))
                .and_then(Value::as_str)
                .map(str::to_owned)
        };
        let subscription = o
            .subscription
            .clone()
            .or_else(|| {
                std::env::var("AZURE_SUBSCRIPTION_ID")
                    .ok()
                    .filter(|s| !s.is_empty())
            })
            .or_else(|| setting("subscriptionId"))
            .ok_or(
                "no Azure subscription: set AZURE_SUBSCRIPTION_ID or provider.azure.subscriptionId",
            )?;
        let location = o
            .location
            .clone()
            .or_else(|| service.region.clone())
            .ok_or("no Azure location: pass --region (e.g. westeurope) or set provider.region")?;
        let group = o
            .resource_group
            .clone()
            .or_else(|| setting("resourceGroup"))
            .unwrap_or_else(|| format!("{}-{}", service.service, service.stage));
        let base = std::env::var("FERRY_AZURE_ARM_ENDPOINT")
            .unwrap_or_else(|_| "https://management.azure.com/".into());
        let mut base = Url::parse(&base).map_err(|e| format!("FERRY_AZURE_ARM_ENDPOINT: {e}"))?;
        if !base.path().ends_with('/') {
            base.set_path(&format!("{}/", base.path()));
        }
        let scm_override = match std::env::var("FERRY_AZURE_SCM_ENDPOINT") {
            Ok(s) => Some(Url::parse(&s).map_err(|e| format!("FERRY_AZURE_SCM_ENDPOINT: {e}"))?),
            Err(_) => None,
        };
        let mut arm =
            Arm::new(base, credential().map_err(|e| e.to_string())?).map_err(|e| e.to_string())?;
        if let Ok(ms) = std::env::var("FERRY_AZURE_POLL_MS") {
            arm.poll_interval = std::time::Duration::from_millis(ms.parse().unwrap_or(5000));
        }
        let url = arm
            .url(&format!("/subscriptions/{subscription}"), "2022-12-01")
            .map_err(|e| e.to_string())?;
        let sub = arm
            .send(Method::Get, url, None)
            .await
            .map_err(|e| format!("reading subscription {subscription}: {e}"))?;
        let tenant = sub.body["tenantId"]
            .as_str()
            .ok_or_else(|| format!("subscription {subscription} was not found or has no tenant"))?
            .to_owned();
        Ok(AzureProvider {
            arm,
            scm_override,
            subscription,
            tenant,
            group,
            location,
            zips: Mutex::new(BTreeMap::new()),
        })
    }

    fn group_id(&self) -> String {
        format!(
            "/subscriptions/{}/resourceGroups/{}",
            self.subscription, self.group
        )
    }

    /// 13 hex characters that make global names (storage, vault, sites) unique per
    /// subscription, resource group, service and stage.
    fn suffix(&self, service: &ferry_core::model::Service) -> String {
        let h = Sha256::digest(
            format!(
                "{}/{}/{}/{}",
                self.subscription, self.group, service.service, service.stage
            )
            .as_bytes(),
        );
        hex::encode(h)[..13].to_owned()
    }

    /// The SCM base of a site.
    fn scm(&self, site: &str) -> Result<Url, ProviderError> {
        let s = match &self.scm_override {
            Some(u) => format!("{}/{site}/", u.as_str().trim_end_matches('/')),
            None => format!("https://{site}.scm.azurewebsites.net/"),
        };
        Url::parse(&s).map_err(|e| ProviderError::fatal(format!("{s}: {e}")))
    }
}

/// A resource's ARM id with concrete names.
fn arm_id(
    group_id: &str,
    r: &AzResource,
    by: &BTreeMap<&str, &AzResource>,
    subst: &dyn Fn(&str) -> String,
) -> String {
    let (ns, types) = r.rtype.split_once('/').expect("Namespace/type");
    let types: Vec<&str> = types.split('/').collect();
    let mut path = String::new();
    for (t, n) in types.iter().zip(&r.name) {
        path.push_str(&format!("/{t}/{}", subst(n)));
    }
    let scope = match &r.scope {
        Some(Some(a)) => arm_id(group_id, by[a.as_str()], by, subst),
        _ => group_id.to_owned(),
    };
    format!("{scope}/providers/{ns}{path}")
}

/// A deterministic GUID from a seed (for role assignment names).
fn guid(seed: &str) -> String {
    let h = Sha256::digest(seed.as_bytes());
    let mut b = [0u8; 16];
    b.copy_from_slice(&h[..16]);
    b[6] = (b[6] & 0x0f) | 0x50;
    b[8] = (b[8] & 0x3f) | 0x80;
    uuid::Uuid::from_bytes(b).to_string()
}

/// Resolves every token except `${ref:...}` (left to the engine).
fn concrete(v: &Value, f: &dyn Fn(&str) -> String) -> Value {
    match v {
        Value::String(s) => Value::String(f(s)),
        Value::Array(a) => Value::Array(a.iter().map(|x| concrete(x, f)).collect()),
        Value::Object(o) => {
            Value::Object(o.iter().map(|(k, x)| (k.clone(), concrete(x, f))).collect())
        }
        other => other.clone(),
    }
}

fn pointer_path(p: &str) -> String {
    format!("/{}", p.replace('.', "/"))
}

#[async_trait]
impl Provider for AzureProvider {
    fn name(&self) -> &str {
        "azure"
    }

    fn compile(&self, inputs: &Inputs<'_>) -> Result<Vec<Resource>, ProviderError> {
        let service = inputs.service;
        let apps = app::compile(service).map_err(|e| ProviderError::fatal(e.join("; ")))?;
        let specs = resources(service, &apps).map_err(|e| ProviderError::fatal(e.join("; ")))?;
        let by: BTreeMap<&str, &AzResource> =
            specs.iter().map(|r| (r.address.as_str(), r)).collect();
        let suffix = self.suffix(service);
        let group_id = self.group_id();
        let secrets = inputs.secrets;
        let missing_secret = Mutex::new(None::<String>);
        // One token's value; `${ref:...}` stays for the engine to resolve at apply time.
        let token = |name: &str, arg: &str| -> String {
            match name {
                "suffix" => suffix.clone(),
                "location" => self.location.clone(),
                "tenant" => self.tenant.clone(),
                "subscription" => self.subscription.clone(),
                "guid" => guid(&format!("{group_id}/{arg}")),
                "secret" => secrets.get(arg).cloned().unwrap_or_else(|| {
                    *missing_secret.lock().expect("lock") = Some(arg.to_owned());
                    String::new()
                }),
                _ => format!("${{{name}:{arg}}}"),
            }
        };
        // `${id:A}` needs the names resolved first, so names expand without `ids`.
        let expand = |s: &str, ids: Option<&BTreeMap<&str, String>>| -> String {
            pieces(s)
                .into_iter()
                .map(|p| match (p, ids) {
                    (Piece::Text(t), _) => t.to_owned(),
                    (Piece::Token("id", a), Some(ids)) => ids[a].clone(),
                    (Piece::Token(n, a), _) => token(n, a),
                })
                .collect()
        };
        let names = |s: &str| expand(s, None);
        let ids: BTreeMap<&str, String> = specs
            .iter()
            .map(|r| (r.address.as_str(), arm_id(&group_id, r, &by, &names)))
            .collect();
        let subst = |s: &str| expand(s, Some(&ids));
        let mut out = vec![Resource::new(RESOURCE_GROUP, KIND_GROUP)
            .attr("id", group_id.clone())
            .attr(
                "body",
                json!({"location": self.location, "tags": {"ferry-service": service.service, "ferry-stage": service.stage}}),
            )
            .force_new("id")];
        for r in &specs {
            let mut deps = r.depends.clone();
            referenced(&r.body, &mut deps);
            let mut res = Resource::new(&r.address, format!("azure:{}", r.rtype))
                .attr("id", ids[r.address.as_str()].clone())
                .attr("apiVersion", r.api)
                .attr("body", concrete(&r.body, &subst))
                .force_new("id")
                .depends_on(RESOURCE_GROUP);
            for d in deps {
                // `${ref:...}` dependencies the engine finds itself; `${id:...}` ones not.
                if d != r.address {
                    res = res.depends_on(&d);
                }
            }
            if r.rtype == "Microsoft.KeyVault/vaults/secrets" {
                res = res.sensitive("body.properties.value");
            }
            if r.rtype == "Microsoft.Authorization/roleAssignments" {
                // ARM refuses to change an assignment's principal (a site made again has a
                // new identity): delete and create.
                res = res.force_new("body.properties.principalId");
            }
            if let Some(fam) = r.after_code {
                res = res.depends_on(&package_address(fam));
            }
            if let Some(f) = &r.function {
                res = res.function(f);
            }
            out.push(res);
        }
        let missing = missing_secret.lock().expect("lock").take();
        if let Some(name) = missing {
            return Err(ProviderError::fatal(format!(
                "the secret `{name}` has no value: set {} (it is stored in Key Vault, never in state or plans)",
                ferry_core::model::secret_value_env(&name)
            )));
        }
        // The packages: one zip per app, from the functions' zips.
        let function_zips: BTreeMap<String, PathBuf> = inputs
            .artifacts
            .functions
            .iter()
            .map(|(k, a)| (k.clone(), a.path.clone()))
            .collect();
        let Some(out_dir) = function_zips
            .values()
            .next()
            .and_then(|p| p.parent())
            .map(PathBuf::from)
        else {
            return Ok(out);
        };
        for a in &apps {
            let adapter = ferry_core::package::bundle::find_adapter();
            let pkg = write_app(a, &out_dir, &function_zips, adapter.as_deref())
                .map_err(ProviderError::fatal)?;
            let address = package_address(a.family);
            self.zips
                .lock()
                .expect("lock")
                .insert(address.clone(), pkg.zip.clone());
            let site = site_address(a.family);
            let site_name = names(&by[site.as_str()].name[0]);
            // The site's id as a reference: a site made again (deleted outside ferry, or
            // replaced) gets its code published again.
            let mut res = Resource::new(&address, KIND_PACKAGE)
                .attr("site", site_name)
                .attr("siteId", reference(&site, "id"))
                .attr("sha256", pkg.sha256)
                .depends_on(&site)
                .depends_on(&format!("appsettings.{}", a.family.worker_runtime()));
            for r in specs.iter().filter(|r| {
                r.address
                    .starts_with(&format!("role.{}.", a.family.worker_runtime()))
            }) {
                res = res.depends_on(&r.address);
            }
            out.push(res);
        }
        Ok(out)
    }

    async fn read(&self, request: &ReadRequest<'_>) -> Result<Option<Attributes>, ProviderError> {
        let rec = request.recorded;
        if request.kind == KIND_PACKAGE {
            // What was published is not readable back; the sha256 in state is the record.
            return Ok(Some(rec.clone()));
        }
        let id = rec["id"].as_str().unwrap_or_default();
        let api = rec
            .get("apiVersion")
            .and_then(Value::as_str)
            .unwrap_or(crate::resources::api::RESOURCES);
        let (method, path) = if request.kind == "azure:Microsoft.Web/sites/config" {
            (Method::Post, format!("{id}/list"))
        } else {
            (Method::Get, id.to_owned())
        };
        let url = self.arm.url(&path, api).map_err(err)?;
        let r = self.arm.send(method, url, None).await.map_err(err)?;
        if r.status == 404 {
            return Ok(None);
        }
        let mut live = Attributes::new();
        live.insert("id".into(), json!(id));
        if let Some(a) = rec.get("apiVersion") {
            live.insert("apiVersion".into(), a.clone());
        }
        let desired_body = rec.get("body").cloned().unwrap_or(Value::Null);
        live.insert(
            "body".into(),
            ferry_core::engine::project_live(&desired_body, &r.body),
        );
        for (name, path) in outputs(request.kind.trim_start_matches("azure:")) {
            if let Some(v) = r.body.pointer(&pointer_path(path)) {
                live.insert((*name).into(), v.clone());
            }
        }
        Ok(Some(live))
    }

    async fn apply(&self, request: &ApplyRequest<'_>) -> Result<Attributes, ProviderError> {
        let attrs = match request.operation {
            Operation::Delete => request.prior,
            _ => request.desired,
        }
        .ok_or_else(|| ProviderError::fatal("nothing to apply"))?;
        if request.kind == KIND_PACKAGE {
            return match request.operation {
                // The package goes with its site.
                Operation::Delete => Ok(Attributes::new()),
                _ => self
                    .publish(request.address, attrs)
                    .await
                    .map(|()| attrs.clone()),
            };
        }
        let id = attrs["id"].as_str().unwrap_or_default().to_owned();
        let api = attrs
            .get("apiVersion")
            .and_then(Value::as_str)
            .unwrap_or(crate::resources::api::RESOURCES)
            .to_owned();
        let url = self.arm.url(&id, &api).map_err(err)?;
        if request.operation == Operation::Delete {
            if request.kind == KIND_GROUP && !self.group_is_empty(&id).await? {
                // Something ferry does not manage lives there: keep the group.
                return Ok(Attributes::new());
            }
            let r = self
                .arm
                .send(Method::Delete, url, None)
                .await
                .map_err(err)?;
            self.arm.wait(&r).await.map_err(err)?;
            return Ok(Attributes::new());
        }
        let body = serde_json::to_vec(&attrs["body"]).expect("JSON");
        let r = self
            .arm
            .send(Method::Put, url.clone(), Some((body, "application/json")))
            .await
            .map_err(err)?;
        self.arm.wait(&r).await.map_err(err)?;
        // The final state: GET (a PUT's own answer may predate the operation's end).
        let live = if r.async_operation.is_some() || r.status == 202 || r.body.is_null() {
            self.arm
                .send(Method::Get, url, None)
                .await
                .map_err(err)?
                .body
        } else {
            r.body
        };
        let mut out = Attributes::new();
        out.insert("id".into(), json!(id));
        for (name, path) in outputs(request.kind.trim_start_matches("azure:")) {
            match live.pointer(&pointer_path(path)) {
                Some(v) if !v.is_null() => {
                    out.insert((*name).into(), v.clone());
                }
                _ => {
                    return Err(ProviderError::retryable(format!(
                        "{}: Azure did not return {path} yet",
                        request.address
                    )))
                }
            }
        }
        Ok(out)
    }
}

impl AzureProvider {
    async fn group_is_empty(&self, group_id: &str) -> Result<bool, ProviderError> {
        let url = self
            .arm
            .url(
                &format!("{group_id}/resources"),
                crate::resources::api::RESOURCES,
            )
            .map_err(err)?;
        let r = self.arm.send(Method::Get, url, None).await.map_err(err)?;
        Ok(r.status == 404 || r.body["value"].as_array().is_none_or(Vec::is_empty))
    }

    /// One-deploy: `POST <scm>/api/publish` with the zip, then poll the deployment.
    async fn publish(&self, address: &str, attrs: &Attributes) -> Result<(), ProviderError> {
        let zip = self
            .zips
            .lock()
            .expect("lock")
            .get(address)
            .cloned()
            .ok_or_else(|| ProviderError::fatal(format!("{address}: no package was built")))?;
        let bytes = std::fs::read(&zip)
            .map_err(|e| ProviderError::fatal(format!("{}: {e}", zip.display())))?;
        let site = attrs["site"].as_str().unwrap_or_default();
        let base = self.scm(site)?;
        let mut url = base.join("api/publish").expect("relative URL");
        url.query_pairs_mut()
            .append_pair("RemoteBuild", "false")
            .append_pair("Deployer", "ferry");
        let r = self
            .arm
            .send(Method::Post, url, Some((bytes, "application/zip")))
            .await
            .map_err(err)?;
        let status_url = match &r.location {
            Some(l) => Url::parse(l)
                .or_else(|_| base.join(l.trim_start_matches('/')))
                .map_err(|e| ProviderError::fatal(format!("{l}: {e}")))?,
            None => base.join("api/deployments/latest").expect("relative URL"),
        };
        for _ in 0..600 {
            let s = self
                .arm
                .send(Method::Get, status_url.clone(), None)
                .await
                .map_err(err)?;
            // Kudu's DeployStatus: 3 failed, 4 succeeded.
            match s.body["status"].as_i64() {
                Some(4) => return Ok(()),
                Some(3) => {
                    return Err(ProviderError::fatal(format!(
                        "the deployment of {site} failed: {}",
                        s.body["status_text"].as_str().unwrap_or("no details")
                    )))
                }
                _ => tokio::time::sleep(self.arm.poll_interval).await,
            }
        }
        Err(ProviderError::retryable(format!(
            "the deployment of {site} did not finish"
        )))
    }
}

#[cfg(test)]
mod refusal_tests {
    use super::*;
    use crate::arm::StaticToken;

    #[tokio::test]
    async fn a_plain_http_url_is_refused_and_never_retried() {
        let arm = Arm::new(
            Url::parse("http://127.0.0.1:9/").expect("url"),
            std::sync::Arc::new(StaticToken("test-token".into())),
        )
        .expect("a loopback base is allowed");
        let e = arm
            .send(
                Method::Get,
                Url::parse("http://example.com/subscriptions").expect("url"),
                None,
            )
            .await
            .expect_err("refused");
        assert!(e.fatal, "{e}");
        assert!(!err(e).retryable);
        let e = ArmError {
            status: None,
            message: "the connection was reset".into(),
            fatal: false,
        };
        assert!(err(e).retryable);
    }
}
