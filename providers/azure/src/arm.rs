//! The ARM deployment template: every Azure resource a service needs, in one resource group.
//!
//! - a storage account (identity-based access only: no shared keys) holding the queues,
//!   containers (buckets and one deployment container per app) and tables;
//! - per app, a Flex Consumption plan (FC1) and a Linux function app with `functionAppConfig`
//!   (runtime, instance memory, the deployment container) and a system-assigned identity;
//! - a Key Vault (RBAC) with one secret per `secret` service, valued from a secure parameter
//!   named like the variable ferry reads it from (`FERRY_SECRET_API_TOKEN`);
//! - Application Insights on a Log Analytics workspace;
//! - an Event Grid topic per `topic` service and, for storage triggers, a system topic on the
//!   storage account; their subscriptions deliver to the functions and are conditional on the
//!   `eventSubscriptions` parameter, because Event Grid checks that the function exists, so
//!   they can be created only after the code is deployed;
//! - role assignments granting each app's identity what its functions `use`.

use crate::app::{queue_name, App, Family};
use ferry_core::model::{
    injected_env_name, secret_value_env, EnvValue, ResourceKind, Runtime, Service, StorageEvent,
    Trigger,
};
use serde_json::{json, Map, Value};
use std::collections::BTreeMap;

/// `$schema` of the template.
pub const SCHEMA: &str =
    "https://schema.management.azure.com/schemas/2019-04-01/deploymentTemplate.json#";

const STORAGE_API: &str = "2023-05-01";
const WEB_API: &str = "2024-04-01";
const VAULT_API: &str = "2023-07-01";
const INSIGHTS_API: &str = "2020-02-02";
const WORKSPACE_API: &str = "2023-09-01";
const EVENTGRID_API: &str = "2022-06-15";
const ROLES_API: &str = "2022-04-01";

/// Built-in role definition ids.
mod role {
    pub const BLOB_DATA_OWNER: &str = "b7e6dc6d-f1e8-4753-8033-0f276bb0955b";
    pub const QUEUE_DATA_CONTRIBUTOR: &str = "974c5e8b-45b9-4653-ba55-5f855dd0fb88";
    pub const TABLE_DATA_CONTRIBUTOR: &str = "0a9a7e1f-b9d0-4cc4-a60d-0319b160aaa3";
    pub const KEY_VAULT_SECRETS_USER: &str = "4633458b-17de-408a-b874-0445c86b69e6";
    pub const EVENTGRID_DATA_SENDER: &str = "d5a91429-5739-47e2-a06b-3470a27159e7";
    pub const MONITORING_METRICS_PUBLISHER: &str = "3913510d-42f4-4e42-8a64-420c390055eb";
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

fn expr(s: &str) -> Value {
    Value::String(format!("[{s}]"))
}

/// `'text'` inside an ARM expression.
fn lit(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''"))
}

fn storage_id() -> String {
    "resourceId('Microsoft.Storage/storageAccounts', variables('storage'))".into()
}

fn site_var(family: Family) -> String {
    format!("site{}", capitalised(family.worker_runtime()))
}

fn capitalised(s: &str) -> String {
    let mut c = s.chars();
    c.next()
        .map(|f| f.to_ascii_uppercase().to_string() + c.as_str())
        .unwrap_or_default()
}

fn site_id(family: Family) -> String {
    format!(
        "resourceId('Microsoft.Web/sites', variables('{}'))",
        site_var(family)
    )
}

fn principal(family: Family) -> String {
    format!(
        "reference({}, '{WEB_API}', 'full').identity.principalId",
        site_id(family)
    )
}

/// The template for the service's apps, or every reason it cannot be built.
pub fn template(service: &Service, apps: &[App]) -> Result<Value, Vec<String>> {
    let mut errors = Vec::new();
    let prefix: String = format!("{}-{}", service.service, service.stage)
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_lowercase()
            } else {
                '-'
            }
        })
        .take(30)
        .collect();
    let mut variables = Map::new();
    variables.insert(
        "suffix".into(),
        expr(&format!(
            "uniqueString(resourceGroup().id, {}, {})",
            lit(&service.service),
            lit(&service.stage)
        )),
    );
    variables.insert("storage".into(), expr("concat('st', variables('suffix'))"));
    variables.insert("vault".into(), expr("concat('kv', variables('suffix'))"));
    variables.insert("workspace".into(), json!(format!("{prefix}-logs")));
    variables.insert("insights".into(), json!(format!("{prefix}-insights")));
    let tags: Map<String, Value> = service
        .tags
        .iter()
        .map(|(k, v)| (k.clone(), json!(v)))
        .chain([
            ("ferry-service".to_owned(), json!(service.service)),
            ("ferry-stage".to_owned(), json!(service.stage)),
        ])
        .collect();
    let mut parameters = Map::new();
    parameters.insert(
        "location".into(),
        json!({"type": "string", "defaultValue": "[resourceGroup().location]",
               "metadata": {"description": "Where the resources go (default: the resource group's location)."}}),
    );
    parameters.insert(
        "eventSubscriptions".into(),
        json!({"type": "bool", "defaultValue": false,
               "metadata": {"description": "Create the Event Grid subscriptions to the functions. Event Grid checks that a function exists, so ferry deploys with false, uploads the code, then deploys again with true."}}),
    );
    let mut resources: Vec<Value> = Vec::new();
    let base = |ty: &str, api: &str, name: Value| json!({"type": ty, "apiVersion": api, "name": name, "location": "[parameters('location')]", "tags": tags});

    // Storage: the account, its queues, containers and tables.
    let mut account = base(
        "Microsoft.Storage/storageAccounts",
        STORAGE_API,
        expr("variables('storage')"),
    );
    account["kind"] = json!("StorageV2");
    account["sku"] = json!({"name": "Standard_LRS"});
    account["properties"] = json!({
        "minimumTlsVersion": "TLS1_2",
        "allowBlobPublicAccess": false,
        "allowSharedKeyAccess": false,
        "supportsHttpsTrafficOnly": true,
        "defaultToOAuthAuthentication": true,
    });
    resources.push(account);
    let child = |ty: &str, name: &str| {
        json!({
            "type": format!("Microsoft.Storage/storageAccounts/{ty}"),
            "apiVersion": STORAGE_API,
            "name": expr(&format!("format('{{0}}/default/{{1}}', variables('storage'), {})", lit(name))),
            "dependsOn": [expr(&storage_id())],
            "properties": {},
        })
    };
    let mut containers: Vec<String> = apps.iter().map(|a| package_container(a.family)).collect();
    for (name, r) in &service.services {
        if r.external.is_some() {
            continue;
        }
        match &r.kind {
            ResourceKind::Queue { fifo: true, .. } | ResourceKind::Topic { fifo: true } => {
                errors.push(format!(
                    "`{name}` is FIFO; Azure Storage queues and Event Grid topics do not keep order (a Service Bus session queue would; ferry does not build one yet)"
                ));
            }
            ResourceKind::Queue { .. } => {
                resources.push(child("queueServices/queues", &queue_name(name)))
            }
            ResourceKind::Bucket { .. } => containers.push(queue_name(name)),
            ResourceKind::Table { .. } => {
                resources.push(child("tableServices/tables", &table_name(name)))
            }
            ResourceKind::Topic { .. } => {
                let mut t = base(
                    "Microsoft.EventGrid/topics",
                    EVENTGRID_API,
                    json!(format!("{prefix}-{}", queue_name(name))),
                );
                t["properties"] =
                    json!({"inputSchema": "EventGridSchema", "disableLocalAuth": true});
                resources.push(t);
            }
            ResourceKind::Secret { .. } => {}
        }
    }
    for c in containers {
        let mut r = child("blobServices/containers", &c);
        r["properties"] = json!({"publicAccess": "None"});
        resources.push(r);
    }

    // Secrets.
    let secrets: Vec<&String> = service
        .services
        .iter()
        .filter(|(_, r)| matches!(r.kind, ResourceKind::Secret { .. }) && r.external.is_none())
        .map(|(n, _)| n)
        .collect();
    if !secrets.is_empty() {
        let mut kv = base(
            "Microsoft.KeyVault/vaults",
            VAULT_API,
            expr("variables('vault')"),
        );
        kv["properties"] = json!({
            "tenantId": "[subscription().tenantId]",
            "sku": {"family": "A", "name": "standard"},
            "enableRbacAuthorization": true,
            "enableSoftDelete": true,
            "softDeleteRetentionInDays": 7,
        });
        resources.push(kv);
        for s in &secrets {
            let p = secret_value_env(s);
            parameters.insert(
                p.clone(),
                json!({"type": "securestring", "metadata": {"description": format!("The value of the secret `{s}` (ferry passes ${p}).")}}),
            );
            resources.push(json!({
                "type": "Microsoft.KeyVault/vaults/secrets",
                "apiVersion": VAULT_API,
                "name": expr(&format!("format('{{0}}/{{1}}', variables('vault'), {})", lit(&secret_name(s)))),
                "dependsOn": [expr("resourceId('Microsoft.KeyVault/vaults', variables('vault'))")],
                "properties": {"value": expr(&format!("parameters('{p}')"))},
            }));
        }
    }

    // Monitoring.
    let mut ws = base(
        "Microsoft.OperationalInsights/workspaces",
        WORKSPACE_API,
        expr("variables('workspace')"),
    );
    ws["properties"] = json!({"sku": {"name": "PerGB2018"}, "retentionInDays": 30});
    resources.push(ws);
    let mut ai = base(
        "Microsoft.Insights/components",
        INSIGHTS_API,
        expr("variables('insights')"),
    );
    ai["kind"] = json!("web");
    ai["dependsOn"] = json!([expr(
        "resourceId('Microsoft.OperationalInsights/workspaces', variables('workspace'))"
    )]);
    ai["properties"] = json!({
        "Application_Type": "web",
        "WorkspaceResourceId": expr("resourceId('Microsoft.OperationalInsights/workspaces', variables('workspace'))"),
        "DisableLocalAuth": true,
    });
    resources.push(ai);

    // Apps.
    let mut storage_triggers: Vec<(Family, String, &Trigger)> = Vec::new();
    let mut topic_triggers: Vec<(Family, String, &Trigger)> = Vec::new();
    for app in apps {
        let fam = app.family;
        let runtime = fam.worker_runtime();
        let site = site_var(fam);
        variables.insert(
            site.clone(),
            expr(&format!(
                "concat({}, variables('suffix'))",
                lit(&format!("{prefix}-{runtime}-"))
            )),
        );
        let fns: BTreeMap<&String, &ferry_core::model::Function> = app
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
        let (rt_name, rt_version) = match fns.values().next().map(|f| &f.runtime) {
            Some(Runtime::Node(v)) => ("node", v.to_string()),
            Some(Runtime::Python(v)) => ("python", format!("3.{v}")),
            _ => ("custom", "1.0".to_owned()),
        };
        let versions: std::collections::BTreeSet<String> =
            fns.values().map(|f| f.runtime.to_string()).collect();
        if versions.len() > 1 {
            errors.push(format!(
                "the {runtime} app's functions ask for different runtimes ({}); one Function App runs one version, so give them the same `runtime`",
                versions.into_iter().collect::<Vec<_>>().join(", ")
            ));
        }
        // App settings: the union of the functions' environments (one app, one environment).
        let mut settings: BTreeMap<String, (Value, String)> = BTreeMap::new();
        let mut set = |k: &str, v: Value, who: &str, errors: &mut Vec<String>| {
            match settings
            .get(k)
        {
            Some((prev, other)) if *prev != v => errors.push(format!(
                "functions `{other}` and `{who}` give `{k}` different values, but they share the {runtime} Function App's settings; give them the same value"
            )),
            Some(_) => {}
            None => {
                settings.insert(k.to_owned(), (v, who.to_owned()));
            }
        }
        };
        let mut grants: BTreeMap<&str, ()> = BTreeMap::new();
        for (fname, f) in &fns {
            for (k, v) in &f.environment {
                match v {
                    EnvValue::Text(t) => set(k, json!(t), fname, &mut errors),
                    EnvValue::Expr(_) => errors.push(format!(
                        "function `{fname}`: `{k}` is a CloudFormation expression, which only AWS can resolve"
                    )),
                }
            }
            for u in &f.uses {
                let Some(r) = service.services.get(u) else {
                    continue;
                };
                let var = injected_env_name(u, &r.kind);
                let (value, grant) = match &r.kind {
                    ResourceKind::Queue { .. } => (
                        expr(&format!("concat(reference({}, '{STORAGE_API}').primaryEndpoints.queue, {})", storage_id(), lit(&queue_name(u)))),
                        role::QUEUE_DATA_CONTRIBUTOR,
                    ),
                    ResourceKind::Bucket { .. } => (json!(queue_name(u)), role::BLOB_DATA_OWNER),
                    ResourceKind::Table { .. } => (json!(table_name(u)), role::TABLE_DATA_CONTRIBUTOR),
                    ResourceKind::Topic { .. } => (
                        expr(&format!("reference(resourceId('Microsoft.EventGrid/topics', {}), '{EVENTGRID_API}').endpoint", lit(&format!("{prefix}-{}", queue_name(u))))),
                        role::EVENTGRID_DATA_SENDER,
                    ),
                    ResourceKind::Secret { .. } => (
                        expr(&format!("format('{{0}}secrets/{{1}}', reference(resourceId('Microsoft.KeyVault/vaults', variables('vault')), '{VAULT_API}').vaultUri, {})", lit(&secret_name(u)))),
                        role::KEY_VAULT_SECRETS_USER,
                    ),
                };
                let value = match &r.external {
                    Some(Value::String(s)) => json!(s),
                    _ => value,
                };
                set(&var, value, fname, &mut errors);
                grants.insert(grant, ());
            }
            for t in &f.triggers {
                match t {
                    Trigger::Queue { .. } => {
                        grants.insert(role::QUEUE_DATA_CONTRIBUTOR, ());
                    }
                    Trigger::Storage { .. } => storage_triggers.push((fam, (*fname).clone(), t)),
                    Trigger::Topic { .. } => topic_triggers.push((fam, (*fname).clone(), t)),
                    _ => {}
                }
            }
        }
        // The host's own storage and telemetry, through the app's identity.
        grants.insert(role::BLOB_DATA_OWNER, ());
        grants.insert(role::QUEUE_DATA_CONTRIBUTOR, ());
        grants.insert(role::TABLE_DATA_CONTRIBUTOR, ());
        grants.insert(role::MONITORING_METRICS_PUBLISHER, ());
        let mut app_settings = vec![
            json!({"name": "AzureWebJobsStorage__accountName", "value": expr("variables('storage')")}),
            json!({"name": "AzureWebJobsStorage__credential", "value": "managedidentity"}),
            json!({"name": "APPLICATIONINSIGHTS_CONNECTION_STRING", "value": expr(&format!("reference(resourceId('Microsoft.Insights/components', variables('insights')), '{INSIGHTS_API}').ConnectionString"))}),
            json!({"name": "APPLICATIONINSIGHTS_AUTHENTICATION_STRING", "value": "Authorization=AAD"}),
            json!({"name": "FERRY_PROVIDER", "value": "azure"}),
        ];
        for (k, (v, _)) in settings {
            app_settings.push(json!({"name": k, "value": v}));
        }
        let mut plan = base(
            "Microsoft.Web/serverfarms",
            WEB_API,
            json!(format!("{prefix}-{runtime}-plan")),
        );
        plan["kind"] = json!("functionapp");
        plan["sku"] = json!({"name": "FC1", "tier": "FlexConsumption"});
        plan["properties"] = json!({"reserved": true});
        resources.push(plan);
        let cors = fns
            .values()
            .flat_map(|f| &f.triggers)
            .any(|t| matches!(t, Trigger::Http(h) if h.cors));
        let mut site_config =
            json!({"appSettings": app_settings, "minTlsVersion": "1.2", "ftpsState": "Disabled"});
        if cors {
            site_config["cors"] = json!({"allowedOrigins": ["*"]});
        }
        let mut s = base(
            "Microsoft.Web/sites",
            WEB_API,
            expr(&format!("variables('{site}')")),
        );
        s["kind"] = json!("functionapp,linux");
        s["identity"] = json!({"type": "SystemAssigned"});
        s["dependsOn"] = json!([
            expr(&format!("resourceId('Microsoft.Web/serverfarms', {})", lit(&format!("{prefix}-{runtime}-plan")))),
            expr(&format!("resourceId('Microsoft.Storage/storageAccounts/blobServices/containers', variables('storage'), 'default', {})", lit(&package_container(fam)))),
            expr("resourceId('Microsoft.Insights/components', variables('insights'))"),
        ]);
        s["properties"] = json!({
            "serverFarmId": expr(&format!("resourceId('Microsoft.Web/serverfarms', {})", lit(&format!("{prefix}-{runtime}-plan")))),
            "httpsOnly": true,
            "siteConfig": site_config,
            "functionAppConfig": {
                "deployment": {"storage": {
                    "type": "blobContainer",
                    "value": expr(&format!("concat(reference({}, '{STORAGE_API}').primaryEndpoints.blob, {})", storage_id(), lit(&package_container(fam)))),
                    "authentication": {"type": "SystemAssignedIdentity"},
                }},
                "scaleAndConcurrency": {"maximumInstanceCount": 100, "instanceMemoryMB": instance},
                "runtime": {"name": rt_name, "version": rt_version},
            },
        });
        resources.push(s);
        for (role_id, ()) in grants {
            let scope = match role_id {
                role::KEY_VAULT_SECRETS_USER => {
                    "resourceId('Microsoft.KeyVault/vaults', variables('vault'))".to_owned()
                }
                role::MONITORING_METRICS_PUBLISHER => {
                    "resourceId('Microsoft.Insights/components', variables('insights'))".to_owned()
                }
                role::EVENTGRID_DATA_SENDER => "resourceGroup().id".to_owned(),
                _ => storage_id(),
            };
            let mut depends = vec![expr(&site_id(fam))];
            if scope != "resourceGroup().id" {
                depends.push(expr(&scope));
            }
            resources.push(json!({
                "type": "Microsoft.Authorization/roleAssignments",
                "apiVersion": ROLES_API,
                "name": expr(&format!("guid({scope}, {}, {})", site_id(fam), lit(role_id))),
                "scope": expr(&scope),
                "dependsOn": depends,
                "properties": {
                    "roleDefinitionId": expr(&format!("subscriptionResourceId('Microsoft.Authorization/roleDefinitions', {})", lit(role_id))),
                    "principalId": expr(&principal(fam)),
                    "principalType": "ServicePrincipal",
                },
            }));
        }
    }

    // Event Grid subscriptions, after the code (see `eventSubscriptions`).
    let function_id = |fam: Family, azure: &str| {
        expr(&format!(
            "resourceId('Microsoft.Web/sites/functions', variables('{}'), {})",
            site_var(fam),
            lit(azure)
        ))
    };
    let azure_name = |fam: Family, fname: &str, t: &Trigger| {
        apps.iter()
            .filter(|a| a.family == fam)
            .flat_map(|a| &a.origin)
            .filter(|(_, f)| *f == fname)
            .map(|(az, _)| az.clone())
            .find(|az| {
                // The trigger's own Azure function: `<fn>` or `<fn>-<kind><n>`.
                az == fname || az.starts_with(&format!("{fname}-{}", t.kind()))
            })
            .unwrap_or_else(|| fname.to_owned())
    };
    if !storage_triggers.is_empty() {
        let mut st = base(
            "Microsoft.EventGrid/systemTopics",
            EVENTGRID_API,
            json!(format!("{prefix}-storage-events")),
        );
        st["dependsOn"] = json!([expr(&storage_id())]);
        st["properties"] = json!({"source": expr(&storage_id()), "topicType": "Microsoft.Storage.StorageAccounts"});
        resources.push(st);
    }
    for (fam, fname, t) in &storage_triggers {
        let Trigger::Storage {
            bucket,
            events,
            prefix: p,
            suffix,
        } = t
        else {
            continue;
        };
        let az = azure_name(*fam, fname, t);
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
        resources.push(json!({
            "condition": "[parameters('eventSubscriptions')]",
            "type": "Microsoft.EventGrid/systemTopics/eventSubscriptions",
            "apiVersion": EVENTGRID_API,
            "name": format!("{prefix}-storage-events/{az}"),
            "dependsOn": [expr(&format!("resourceId('Microsoft.EventGrid/systemTopics', {})", lit(&format!("{prefix}-storage-events"))))],
            "properties": {
                "destination": {"endpointType": "AzureFunction", "properties": {"resourceId": function_id(*fam, &az), "maxEventsPerBatch": 1}},
                "filter": filter,
                "eventDeliverySchema": "EventGridSchema",
                "retryPolicy": {"maxDeliveryAttempts": 30, "eventTimeToLiveInMinutes": 1440},
            },
        }));
    }
    for (fam, fname, t) in &topic_triggers {
        let Trigger::Topic { topic, filter } = t else {
            continue;
        };
        if filter.is_some() {
            errors.push(format!(
                "function `{fname}`: topic filters are not translated to Event Grid advanced filters yet; remove the filter or deploy to AWS"
            ));
        }
        let az = azure_name(*fam, fname, t);
        let topic_res = format!("{prefix}-{}", queue_name(topic));
        resources.push(json!({
            "condition": "[parameters('eventSubscriptions')]",
            "type": "Microsoft.EventGrid/topics/eventSubscriptions",
            "apiVersion": EVENTGRID_API,
            "name": format!("{topic_res}/{az}"),
            "dependsOn": [expr(&format!("resourceId('Microsoft.EventGrid/topics', {})", lit(&topic_res)))],
            "properties": {
                "destination": {"endpointType": "AzureFunction", "properties": {"resourceId": function_id(*fam, &az), "maxEventsPerBatch": 1}},
                "eventDeliverySchema": "EventGridSchema",
                "retryPolicy": {"maxDeliveryAttempts": 30, "eventTimeToLiveInMinutes": 1440},
            },
        }));
    }
    let mut outputs = Map::new();
    for app in apps {
        outputs.insert(
            format!("{}Url", site_var(app.family)),
            json!({"type": "string", "value": expr(&format!("concat('https://', reference({}, '{WEB_API}').defaultHostName)", site_id(app.family)))}),
        );
    }
    if !errors.is_empty() {
        return Err(errors);
    }
    Ok(json!({
        "$schema": SCHEMA,
        "contentVersion": "1.0.0.0",
        "metadata": {"generator": {"name": "ferry", "version": env!("CARGO_PKG_VERSION")}},
        "parameters": parameters,
        "variables": variables,
        "resources": resources,
        "outputs": outputs,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        assert_eq!(table_name("results"), "results");
        assert_eq!(table_name("9-lives"), "t9lives");
        assert_eq!(secret_name("api_token"), "api-token");
        assert_eq!(lit("it's"), "'it''s'");
    }
}
