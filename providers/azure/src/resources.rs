//! Every Azure resource a service needs, described once. [`crate::template`] renders the list
//! as an ARM deployment template; the deploy renders the same list as concrete REST calls, so
//! the two cannot disagree.
//!
//! What a service becomes (one resource group):
//! - a storage account (identity-based access only: no shared keys) holding the queues,
//!   containers (buckets and one deployment container per app) and tables;
//! - per app, a Flex Consumption plan (FC1), a Linux function app with `functionAppConfig`
//!   (runtime, instance memory, the deployment container) and a system-assigned identity, and
//!   its app settings;
//! - a Key Vault (RBAC) with one secret per `secret` service, valued from the variable ferry
//!   reads it from (`FERRY_SECRET_API_TOKEN`);
//! - Application Insights on a Log Analytics workspace;
//! - an Event Grid topic per `topic` service and, for storage triggers, a system topic on the
//!   storage account; their subscriptions deliver to the functions, so they come after the code
//!   (Event Grid checks that the function exists);
//! - role assignments granting each app's identity what its functions `use`.
//!
//! Strings in names and bodies may hold tokens, resolved by each renderer:
//! `${suffix}` (a per resource group, service and stage suffix that makes global names unique),
//! `${location}`, `${tenant}`, `${subscription}`, `${id:ADDRESS}` (a resource's ARM id),
//! `${ref:ADDRESS.OUTPUT}` (an output of a resource, see [`outputs`]), `${secret:NAME}` (the
//! value of a secret service) and `${guid:SEED}` (a GUID derived from the seed and the
//! resource group, for role assignment names).

use crate::app::{queue_name, App, Family};
use ferry_core::model::{
    portable_environment, Function, ResourceKind, Runtime, Service, StorageEvent, Trigger,
};
use serde_json::{json, Value};
use std::collections::BTreeMap;

/// API versions: each one is the version whose REST API specification the tests check bodies
/// against (see `tests/azure/arm_schemas.py`).
pub mod api {
    /// Microsoft.Resources.
    pub const RESOURCES: &str = "2025-04-01";
    /// Microsoft.Storage.
    pub const STORAGE: &str = "2025-06-01";
    /// Microsoft.Web.
    pub const WEB: &str = "2024-11-01";
    /// Microsoft.KeyVault.
    pub const KEY_VAULT: &str = "2025-05-01";
    /// Microsoft.Insights (components).
    pub const INSIGHTS: &str = "2020-02-02";
    /// Microsoft.OperationalInsights.
    pub const WORKSPACES: &str = "2021-06-01";
    /// Microsoft.EventGrid.
    pub const EVENT_GRID: &str = "2025-02-15";
    /// Microsoft.Authorization.
    pub const ROLES: &str = "2022-04-01";
}

/// Built-in role definition ids.
pub mod role {
    /// Storage Blob Data Owner.
    pub const BLOB_DATA_OWNER: &str = "b7e6dc6d-f1e8-4753-8033-0f276bb0955b";
    /// Storage Queue Data Contributor.
    pub const QUEUE_DATA_CONTRIBUTOR: &str = "974c5e8b-45b9-4653-ba55-5f855dd0fb88";
    /// Storage Table Data Contributor.
    pub const TABLE_DATA_CONTRIBUTOR: &str = "0a9a7e1f-b9d0-4cc4-a60d-0319b160aaa3";
    /// Key Vault Secrets User.
    pub const KEY_VAULT_SECRETS_USER: &str = "4633458b-17de-408a-b874-0445c86b69e6";
    /// EventGrid Data Sender.
    pub const EVENTGRID_DATA_SENDER: &str = "d5a91429-5739-47e2-a06b-3470a27159e7";
    /// Monitoring Metrics Publisher.
    pub const MONITORING_METRICS_PUBLISHER: &str = "3913510d-42f4-4e42-8a64-420c390055eb";

    /// A short name for addresses.
    pub fn short(id: &str) -> &'static str {
        match id {
            BLOB_DATA_OWNER => "blob",
            QUEUE_DATA_CONTRIBUTOR => "queue",
            TABLE_DATA_CONTRIBUTOR => "table",
            KEY_VAULT_SECRETS_USER => "secrets",
            EVENTGRID_DATA_SENDER => "eventgrid",
            MONITORING_METRICS_PUBLISHER => "metrics",
            _ => "role",
        }
    }
}

/// One Azure resource.
#[derive(Debug, Clone, PartialEq)]
pub struct AzResource {
    /// Stable address in the service (`storage`, `queue.jobs`, `site.python`).
    pub address: String,
    /// The ARM resource type (`Microsoft.Web/sites`).
    pub rtype: &'static str,
    /// Its API version.
    pub api: &'static str,
    /// Name segments, one per type segment after the namespace (`[account, default, queue]`).
    pub name: Vec<String>,
    /// The request body (location, tags, kind, sku, identity, properties, ...).
    pub body: Value,
    /// Addresses that must exist first, besides those its tokens name.
    pub depends: Vec<String>,
    /// For extension resources (role assignments): the address of the resource they apply to;
    /// `None` means the resource group.
    pub scope: Option<Option<String>>,
    /// Needs the app's code deployed first (Event Grid subscriptions to functions).
    pub after_code: Option<Family>,
    /// The ferry function it belongs to.
    pub function: Option<String>,
}

/// Outputs a token may name: `(resource type, output, path in the resource's GET response)`.
pub fn outputs(rtype: &str) -> &'static [(&'static str, &'static str)] {
    match rtype {
        "Microsoft.Storage/storageAccounts" => &[
            ("blobEndpoint", "properties.primaryEndpoints.blob"),
            ("queueEndpoint", "properties.primaryEndpoints.queue"),
            ("tableEndpoint", "properties.primaryEndpoints.table"),
        ],
        "Microsoft.Web/sites" => &[
            ("principalId", "identity.principalId"),
            ("defaultHostName", "properties.defaultHostName"),
        ],
        "Microsoft.KeyVault/vaults" => &[("vaultUri", "properties.vaultUri")],
        "Microsoft.Insights/components" => &[("connectionString", "properties.ConnectionString")],
        "Microsoft.EventGrid/topics" => &[("endpoint", "properties.endpoint")],
        _ => &[],
    }
}

/// A table name: letters and digits, starting with a letter, 3-63 long.
pub fn table_name(t: &str) -> String {
    let mut s: String = t.chars().filter(char::is_ascii_alphanumeric).collect();
    if !s.starts_with(|c: char| c.is_ascii_alphabetic()) {
        s.insert(0, 't');
    }
    while s.len() < 3 {
        s.push('0');
    }
    s.truncate(63);
    s
}

/// A Key Vault secret name: letters, digits and `-`, 1-127 long.
pub fn secret_name(s: &str) -> String {
    let mut out: String = s
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .collect();
    out.truncate(127);
    out
}

/// The deployment container of an app.
pub fn package_container(family: Family) -> String {
    format!("app-package-{}", family.worker_runtime())
}

/// Flex Consumption instance sizes, in MB.
const INSTANCE_MEMORY: [u32; 3] = [512, 2048, 4096];

/// The address of an app's site (`site.python`).
pub fn site_address(family: Family) -> String {
    format!("site.{}", family.worker_runtime())
}

/// The address of an app's code package (`package.python`).
pub fn package_address(family: Family) -> String {
    format!("package.{}", family.worker_runtime())
}

fn r(rtype: &'static str, api: &'static str, address: String, name: Vec<String>) -> AzResource {
    AzResource {
        address,
        rtype,
        api,
        name,
        body: json!({}),
        depends: vec![],
        scope: None,
        after_code: None,
        function: None,
    }
}

fn id(address: &str) -> String {
    format!("${{id:{address}}}")
}

fn out(address: &str, output: &str) -> String {
    format!("${{ref:{address}.{output}}}")
}

const STORAGE: &str = "storage";
const VAULT: &str = "vault";
const INSIGHTS: &str = "insights";
const WORKSPACE: &str = "workspace";
const STORAGE_EVENTS: &str = "storage-events";

/// The service's resources for its apps, or every reason they cannot be built.
pub fn resources(service: &Service, apps: &[App]) -> Result<Vec<AzResource>, Vec<String>> {
    let mut errors = Vec::new();
    let prefix: String =
        ferry_core::names::lower_kebab(&format!("{}-{}", service.service, service.stage))
            .chars()
            .take(30)
            .collect();
    let mut tags = serde_json::Map::new();
    for (k, v) in &service.tags {
        tags.insert(k.clone(), json!(v));
    }
    tags.insert("ferry-service".into(), json!(service.service));
    tags.insert("ferry-stage".into(), json!(service.stage));
    let tracked = |mut b: Value| {
        b["location"] = json!("${location}");
        b["tags"] = Value::Object(tags.clone());
        b
    };
    let storage_name = "st${suffix}".to_owned();
    let mut out_list: Vec<AzResource> = Vec::new();

    // Storage: the account, its queues, containers and tables.
    let mut account = r(
        "Microsoft.Storage/storageAccounts",
        api::STORAGE,
        STORAGE.into(),
        vec![storage_name.clone()],
    );
    account.body = tracked(json!({
        "kind": "StorageV2",
        "sku": {"name": "Standard_LRS"},
        "properties": {
            "minimumTlsVersion": "TLS1_2",
            "allowBlobPublicAccess": false,
            "allowSharedKeyAccess": false,
            "supportsHttpsTrafficOnly": true,
            "defaultToOAuthAuthentication": true,
        },
    }));
    out_list.push(account);
    let child = |rtype: &'static str, kind: &str, name: &str, props: Value| {
        let mut c = r(
            rtype,
            api::STORAGE,
            format!("{kind}.{name}"),
            vec![storage_name.clone(), "default".into(), name.to_owned()],
        );
        c.body = json!({ "properties": props });
        c.depends = vec![STORAGE.into()];
        c
    };
    let mut containers: Vec<String> = apps.iter().map(|a| package_container(a.family)).collect();
    let mut topics: BTreeMap<&str, String> = BTreeMap::new();
    for (name, res) in &service.services {
        if res.external.is_some() {
            continue;
        }
        match &res.kind {
            ResourceKind::Queue { fifo: true, .. } | ResourceKind::Topic { fifo: true } => {
                errors.push(format!(
                    "`{name}` is FIFO; Azure Storage queues and Event Grid topics do not keep order (a Service Bus session queue would; ferry does not build one yet)"
                ));
            }
            ResourceKind::Queue { .. } => out_list.push(child(
                "Microsoft.Storage/storageAccounts/queueServices/queues",
                "queue",
                &queue_name(name),
                json!({}),
            )),
            ResourceKind::Bucket { .. } => containers.push(queue_name(name)),
            ResourceKind::Table { .. } => out_list.push(child(
                "Microsoft.Storage/storageAccounts/tableServices/tables",
                "table",
                &table_name(name),
                json!({}),
            )),
            ResourceKind::Topic { .. } => {
                let address = format!("topic.{name}");
                let mut t = r(
                    "Microsoft.EventGrid/topics",
                    api::EVENT_GRID,
                    address.clone(),
                    vec![format!("{prefix}-{}", queue_name(name))],
                );
                t.body = tracked(json!({
                    "properties": {"inputSchema": "EventGridSchema", "disableLocalAuth": true},
                }));
                out_list.push(t);
                topics.insert(name, address);
            }
            ResourceKind::Secret { .. } => {}
        }
    }
    for c in containers {
        out_list.push(child(
            "Microsoft.Storage/storageAccounts/blobServices/containers",
            "container",
            &c,
            json!({"publicAccess": "None"}),
        ));
    }

    // Secrets.
    let secrets: Vec<&String> = service
        .services
        .iter()
        .filter(|(_, s)| matches!(s.kind, ResourceKind::Secret { .. }) && s.external.is_none())
        .map(|(n, _)| n)
        .collect();
    if !secrets.is_empty() {
        let mut kv = r(
            "Microsoft.KeyVault/vaults",
            api::KEY_VAULT,
            VAULT.into(),
            vec!["kv${suffix}".into()],
        );
        kv.body = tracked(json!({
            "properties": {
                "tenantId": "${tenant}",
                "sku": {"family": "A", "name": "standard"},
                "enableRbacAuthorization": true,
                "enableSoftDelete": true,
                "softDeleteRetentionInDays": 7,
            },
        }));
        out_list.push(kv);
        for s in &secrets {
            let mut sr = r(
                "Microsoft.KeyVault/vaults/secrets",
                api::KEY_VAULT,
                format!("secret.{s}"),
                vec!["kv${suffix}".into(), secret_name(s)],
            );
            sr.body = json!({"properties": {"value": format!("${{secret:{s}}}")}});
            sr.depends = vec![VAULT.into()];
            out_list.push(sr);
        }
    }

    // Monitoring.
    let mut ws = r(
        "Microsoft.OperationalInsights/workspaces",
        api::WORKSPACES,
        WORKSPACE.into(),
        vec![format!("{prefix}-logs")],
    );
    ws.body = tracked(json!({"properties": {"sku": {"name": "PerGB2018"}, "retentionInDays": 30}}));
    out_list.push(ws);
    let mut ai = r(
        "Microsoft.Insights/components",
        api::INSIGHTS,
        INSIGHTS.into(),
        vec![format!("{prefix}-insights")],
    );
    ai.body = tracked(json!({
        "kind": "web",
        "properties": {
            "Application_Type": "web",
            "WorkspaceResourceId": id(WORKSPACE),
            "DisableLocalAuth": true,
        },
    }));
    out_list.push(ai);

    // Apps.
    let mut event_triggers: Vec<(Family, String, String, &Trigger)> = Vec::new();
    for app in apps {
        let fam = app.family;
        let runtime = fam.worker_runtime();
        let site = site_address(fam);
        let fns: BTreeMap<&String, &Function> = app
            .origin
            .values()
            .filter_map(|n| service.functions.get_key_value(n))
            .collect();
        let memory = fns.values().map(|f| f.memory).max().unwrap_or(128);
        let Some(instance) = INSTANCE_MEMORY.iter().find(|m| **m >= memory) else {
            errors.push(format!(
                "the {runtime} app needs {memory} MB; Flex Consumption instances have at most 4096 MB"
            ));
            continue;
        };
        let versions: std::collections::BTreeSet<String> =
            fns.values().map(|f| f.runtime.to_string()).collect();
        if versions.len() > 1 {
            errors.push(format!(
                "the {runtime} app's functions ask for different runtimes ({}); one Function App runs one version, so give them the same `runtime`",
                versions.into_iter().collect::<Vec<_>>().join(", ")
            ));
        }
        let (rt_name, rt_version) = match fns.values().next().map(|f| &f.runtime) {
            Some(Runtime::Node(v)) => ("node", v.to_string()),
            Some(Runtime::Python(v)) => ("python", format!("3.{v}")),
            _ => ("custom", "1.0".to_owned()),
        };
        // App settings: the union of the functions' environments (one app, one environment).
        let mut settings: BTreeMap<String, (String, String)> = BTreeMap::new();
        let mut grants: BTreeMap<&'static str, Option<String>> = BTreeMap::new();
        for (fname, f) in &fns {
            let mut set = |k: &str, v: String, errors: &mut Vec<String>| {
                match settings.get(k) {
                Some((prev, other)) if *prev != v => errors.push(format!(
                    "functions `{other}` and `{fname}` give `{k}` different values, but they share the {runtime} Function App's settings; give them the same value"
                )),
                Some(_) => {}
                None => {
                    settings.insert(k.to_owned(), (v, (*fname).clone()));
                }
            }
            };
            let env = portable_environment(
                service,
                fname,
                f,
                "Azure",
                |u, kind| {
                    let (value, grant, scope) = match kind {
                        ResourceKind::Queue { .. } => (
                            format!("{}{}", out(STORAGE, "queueEndpoint"), queue_name(u)),
                            role::QUEUE_DATA_CONTRIBUTOR,
                            Some(STORAGE.to_owned()),
                        ),
                        ResourceKind::Bucket { .. } => (
                            queue_name(u),
                            role::BLOB_DATA_OWNER,
                            Some(STORAGE.to_owned()),
                        ),
                        ResourceKind::Table { .. } => (
                            table_name(u),
                            role::TABLE_DATA_CONTRIBUTOR,
                            Some(STORAGE.to_owned()),
                        ),
                        ResourceKind::Topic { .. } => (
                            out(&format!("topic.{u}"), "endpoint"),
                            role::EVENTGRID_DATA_SENDER,
                            Some(format!("topic.{u}")),
                        ),
                        ResourceKind::Secret { .. } => (
                            format!("{}secrets/{}", out(VAULT, "vaultUri"), secret_name(u)),
                            role::KEY_VAULT_SECRETS_USER,
                            Some(VAULT.to_owned()),
                        ),
                    };
                    grants.insert(grant, scope);
                    value
                },
                &mut errors,
            );
            for (k, v) in env {
                set(&k, v, &mut errors);
            }
            for (i, t) in f.triggers.iter().enumerate() {
                match t {
                    Trigger::Queue { .. } => {
                        grants.insert(role::QUEUE_DATA_CONTRIBUTOR, Some(STORAGE.into()));
                    }
                    Trigger::Storage { .. } | Trigger::Topic { .. } => {
                        let az = crate::app::azure_name(fname, f, i);
                        event_triggers.push((fam, (*fname).clone(), az, t));
                    }
                    _ => {}
                }
            }
        }
        // The host's own storage and telemetry, through the app's identity.
        grants.insert(role::BLOB_DATA_OWNER, Some(STORAGE.into()));
        grants.insert(role::QUEUE_DATA_CONTRIBUTOR, Some(STORAGE.into()));
        grants.insert(role::TABLE_DATA_CONTRIBUTOR, Some(STORAGE.into()));
        grants.insert(role::MONITORING_METRICS_PUBLISHER, Some(INSIGHTS.into()));

        let plan_address = format!("plan.{runtime}");
        let mut plan = r(
            "Microsoft.Web/serverfarms",
            api::WEB,
            plan_address.clone(),
            vec![format!("{prefix}-{runtime}-plan")],
        );
        plan.body = tracked(json!({
            "kind": "functionapp",
            "sku": {"name": "FC1", "tier": "FlexConsumption"},
            "properties": {"reserved": true},
        }));
        out_list.push(plan);
        let cors = fns
            .values()
            .flat_map(|f| &f.triggers)
            .any(|t| matches!(t, Trigger::Http(h) if h.cors));
        let mut site_config = json!({"minTlsVersion": "1.2", "ftpsState": "Disabled"});
        if cors {
            site_config["cors"] = json!({"allowedOrigins": ["*"]});
        }
        let container = package_container(fam);
        let mut s = r(
            "Microsoft.Web/sites",
            api::WEB,
            site.clone(),
            vec![format!("{prefix}-{runtime}-${{suffix}}")],
        );
        s.body = tracked(json!({
            "kind": "functionapp,linux",
            "identity": {"type": "SystemAssigned"},
            "properties": {
                "serverFarmId": id(&plan_address),
                "httpsOnly": true,
                "siteConfig": site_config,
                "functionAppConfig": {
                    "deployment": {"storage": {
                        "type": "blobContainer",
                        "value": format!("{}{container}", out(STORAGE, "blobEndpoint")),
                        "authentication": {"type": "SystemAssignedIdentity"},
                    }},
                    "scaleAndConcurrency": {"maximumInstanceCount": 100, "instanceMemoryMB": instance},
                    "runtime": {"name": rt_name, "version": rt_version},
                },
            },
        }));
        s.depends = vec![format!("container.{container}"), INSIGHTS.into()];
        out_list.push(s);

        // App settings (their own resource: ARM reads them back only through a POST .../list).
        let mut values = serde_json::Map::new();
        values.insert(
            "AzureWebJobsStorage__accountName".into(),
            json!(storage_name),
        );
        values.insert(
            "AzureWebJobsStorage__credential".into(),
            json!("managedidentity"),
        );
        values.insert(
            "APPLICATIONINSIGHTS_CONNECTION_STRING".into(),
            json!(out(INSIGHTS, "connectionString")),
        );
        values.insert(
            "APPLICATIONINSIGHTS_AUTHENTICATION_STRING".into(),
            json!("Authorization=AAD"),
        );
        values.insert("FERRY_PROVIDER".into(), json!("azure"));
        for (k, (v, _)) in settings {
            values.insert(k, json!(v));
        }
        let mut cfg = r(
            "Microsoft.Web/sites/config",
            api::WEB,
            format!("appsettings.{runtime}"),
            vec![
                format!("{prefix}-{runtime}-${{suffix}}"),
                "appsettings".into(),
            ],
        );
        cfg.body = json!({"properties": values});
        cfg.depends = vec![site.clone()];
        out_list.push(cfg);

        for (role_id, scope) in grants {
            let mut ra = r(
                "Microsoft.Authorization/roleAssignments",
                api::ROLES,
                format!("role.{runtime}.{}", role::short(role_id)),
                // A deterministic GUID: the same app, role and scope always name the same
                // assignment, so a redeploy finds it.
                vec![format!("${{guid:{site}/{role_id}}}")],
            );
            ra.scope = Some(scope.clone());
            ra.body = json!({
                "properties": {
                    "roleDefinitionId": format!("/subscriptions/${{subscription}}/providers/Microsoft.Authorization/roleDefinitions/{role_id}"),
                    "principalId": out(&site, "principalId"),
                    "principalType": "ServicePrincipal",
                },
            });
            ra.depends = scope.into_iter().collect();
            out_list.push(ra);
        }
    }

    // Event Grid: the storage account's system topic and the subscriptions to functions.
    if event_triggers
        .iter()
        .any(|(_, _, _, t)| matches!(t, Trigger::Storage { .. }))
    {
        let mut st = r(
            "Microsoft.EventGrid/systemTopics",
            api::EVENT_GRID,
            STORAGE_EVENTS.into(),
            vec![format!("{prefix}-storage-events")],
        );
        st.body = tracked(json!({
            "properties": {"source": id(STORAGE), "topicType": "Microsoft.Storage.StorageAccounts"},
        }));
        out_list.push(st);
    }
    for (fam, fname, az, t) in event_triggers {
        let function_id = format!("{}/functions/{az}", id(&site_address(fam)));
        let destination = json!({
            "endpointType": "AzureFunction",
            "properties": {"resourceId": function_id, "maxEventsPerBatch": 1},
        });
        let retry = json!({"maxDeliveryAttempts": 30, "eventTimeToLiveInMinutes": 1440});
        let mut sub = match t {
            Trigger::Storage {
                bucket,
                events,
                prefix: p,
                suffix,
            } => {
                let mut filter = json!({
                    "includedEventTypes": events.iter().map(|e| match e {
                        StorageEvent::Created => "Microsoft.Storage.BlobCreated",
                        StorageEvent::Removed => "Microsoft.Storage.BlobDeleted",
                    }).collect::<Vec<_>>(),
                    "subjectBeginsWith": format!("/blobServices/default/containers/{}/blobs/{}", queue_name(bucket), p.as_deref().unwrap_or("")),
                });
                if let Some(s) = suffix {
                    filter["subjectEndsWith"] = json!(s);
                }
                let mut s = r(
                    "Microsoft.EventGrid/systemTopics/eventSubscriptions",
                    api::EVENT_GRID,
                    format!("subscription.{az}"),
                    vec![format!("{prefix}-storage-events"), az.clone()],
                );
                s.body = json!({"properties": {
                    "destination": destination, "filter": filter,
                    "eventDeliverySchema": "EventGridSchema", "retryPolicy": retry,
                }});
                s.depends = vec![STORAGE_EVENTS.into()];
                s
            }
            Trigger::Topic { topic, filter } => {
                if filter.is_some() {
                    errors.push(format!(
                        "function `{fname}`: topic filters are not translated to Event Grid advanced filters yet; remove the filter or deploy to AWS"
                    ));
                }
                let Some(topic_address) = topics.get(topic.as_str()) else {
                    errors.push(format!(
                        "function `{fname}`: the topic `{topic}` is an existing one; ferry subscribes only to topics it creates on Azure"
                    ));
                    continue;
                };
                let mut s = r(
                    "Microsoft.EventGrid/topics/eventSubscriptions",
                    api::EVENT_GRID,
                    format!("subscription.{az}"),
                    vec![format!("{prefix}-{}", queue_name(topic)), az.clone()],
                );
                s.body = json!({"properties": {
                    "destination": destination,
                    "eventDeliverySchema": "EventGridSchema", "retryPolicy": retry,
                }});
                s.depends = vec![topic_address.clone()];
                s
            }
            _ => continue,
        };
        sub.after_code = Some(fam);
        sub.function = Some(fname);
        out_list.push(sub);
    }
    if errors.is_empty() {
        Ok(out_list)
    } else {
        Err(errors)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        assert_eq!(table_name("results"), "results");
        assert_eq!(table_name("9-lives"), "t9lives");
        assert_eq!(secret_name("api_token"), "api-token");
    }
}
