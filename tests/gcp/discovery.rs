//! Checks a JSON body against a schema of a Google API discovery document (the documents
//! shipped in PyPI's google-api-python-client, `FERRY_GCP_DISCOVERY`), strictly:
//! - objects are closed: a property the schema does not name is refused (maps, the schemas with
//!   `additionalProperties`, check each value instead);
//! - a property marked `readOnly` or described as "Output only." is refused, since the API
//!   ignores or rejects it and ferry would be diffing against something it cannot set;
//! - every property described as "Required." is present in each object sent (except `name`,
//!   which most APIs take from the URL);
//! - types follow the proto3 JSON mapping the discovery `format`s name: int32 numbers, int64 as
//!   a number or a decimal string, `google-duration` as `<seconds>s`, enums from the list.

use serde_json::Value;
use std::collections::BTreeMap;
use std::path::PathBuf;

/// The discovery documents in a folder, loaded on demand.
pub struct Discovery {
    dir: PathBuf,
    docs: std::sync::Mutex<BTreeMap<String, std::sync::Arc<Value>>>,
}

impl Discovery {
    /// The documents of `FERRY_GCP_DISCOVERY` (set by scripts/test.sh).
    pub fn from_env() -> Discovery {
        let dir = std::env::var("FERRY_GCP_DISCOVERY").unwrap_or_else(|_| {
            panic!("FERRY_GCP_DISCOVERY is set by scripts/test.sh; run the tests through it")
        });
        Discovery {
            dir: dir.into(),
            docs: Default::default(),
        }
    }

    fn doc(&self, name: &str) -> std::sync::Arc<Value> {
        let mut docs = self.docs.lock().unwrap();
        docs.entry(name.to_owned())
            .or_insert_with(|| {
                let path = self.dir.join(format!("{name}.json"));
                let text = std::fs::read_to_string(&path)
                    .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
                std::sync::Arc::new(serde_json::from_str(&text).unwrap())
            })
            .clone()
    }

    /// Every way `body` breaks schema `schema` of document `doc` (`pubsub.v1`); empty when
    /// it is valid.
    pub fn check(&self, doc: &str, schema: &str, body: &Value) -> Vec<String> {
        let d = self.doc(doc);
        let schemas = &d["schemas"];
        assert!(
            schemas.get(schema).is_some(),
            "{doc} has no schema {schema}"
        );
        let mut errors = Vec::new();
        check_ref(schemas, schema, body, schema, &mut errors);
        errors
    }
}

fn output_only(p: &Value) -> bool {
    p["readOnly"] == true
        || p["description"]
            .as_str()
            .is_some_and(|d| d.trim_start().starts_with("Output only"))
}

fn required(p: &Value) -> bool {
    p["description"]
        .as_str()
        .is_some_and(|d| d.trim_start().starts_with("Required."))
        && !output_only(p)
}

fn check_ref(schemas: &Value, name: &str, v: &Value, at: &str, errors: &mut Vec<String>) {
    let s = &schemas[name];
    if s.is_null() {
        errors.push(format!("{at}: the document has no schema {name}"));
        return;
    }
    check(schemas, s, v, at, errors);
}

fn check(schemas: &Value, s: &Value, v: &Value, at: &str, errors: &mut Vec<String>) {
    if let Some(r) = s["$ref"].as_str() {
        return check_ref(schemas, r, v, at, errors);
    }
    let ty = s["type"].as_str().unwrap_or("any");
    let format = s["format"].as_str().unwrap_or("");
    let bad = |what: &str| format!("{at}: expected {what}, got {v}");
    match ty {
        "any" => {}
        "string" => match v.as_str() {
            None => errors.push(bad("a string")),
            Some(text) => {
                if let Some(values) = s["enum"].as_array() {
                    if !values.iter().any(|e| e == v) {
                        errors.push(format!("{at}: {v} is not one of {}", s["enum"]));
                    }
                }
                match format {
                    "google-duration" => {
                        let secs = text.strip_suffix('s').unwrap_or("x");
                        if secs.parse::<f64>().is_err() || secs.starts_with(['+', '-']) {
                            errors.push(bad("a duration like \"30s\""));
                        }
                    }
                    "int64" | "uint64" if text.parse::<i128>().is_err() => {
                        errors.push(bad("a decimal integer"))
                    }
                    "byte" => {
                        use base64::Engine;
                        let e = &base64::engine::general_purpose::STANDARD;
                        if e.decode(text).is_err() {
                            errors.push(bad("base64"));
                        }
                    }
                    _ => {}
                }
            }
        },
        "integer" => {
            let ok = v.as_i64().is_some()
                || v.as_u64().is_some()
                || (matches!(format, "int64" | "uint64")
                    && v.as_str().is_some_and(|t| t.parse::<i128>().is_ok()));
            if !ok {
                errors.push(bad("an integer"));
            }
            if format == "int32" && v.as_i64().is_some_and(|n| i32::try_from(n).is_err()) {
                errors.push(bad("an int32"));
            }
        }
        "number" => {
            if !v.is_number() {
                errors.push(bad("a number"));
            }
        }
        "boolean" => {
            if !v.is_boolean() {
                errors.push(bad("a boolean"));
            }
        }
        "array" => match v.as_array() {
            None => errors.push(bad("an array")),
            Some(items) => {
                for (i, item) in items.iter().enumerate() {
                    check(schemas, &s["items"], item, &format!("{at}[{i}]"), errors);
                }
            }
        },
        "object" => {
            let Some(o) = v.as_object() else {
                errors.push(bad("an object"));
                return;
            };
            if let Some(extra) = s.get("additionalProperties") {
                for (k, x) in o {
                    check(schemas, extra, x, &format!("{at}.{k}"), errors);
                }
                return;
            }
            let props = s["properties"].as_object().cloned().unwrap_or_default();
            for (k, x) in o {
                match props.get(k) {
                    None => errors.push(format!("{at}: unknown property `{k}`")),
                    Some(p) if output_only(p) => errors.push(format!("{at}.{k} is output only")),
                    Some(p) => check(schemas, p, x, &format!("{at}.{k}"), errors),
                }
            }
            for (k, p) in &props {
                if k != "name" && required(p) && !o.contains_key(k) {
                    errors.push(format!("{at}: required property `{k}` is missing"));
                }
            }
        }
        other => errors.push(format!("{at}: unknown discovery type {other}")),
    }
}
