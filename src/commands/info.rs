//! `ferry info`: what is deployed, from the state alone (no cloud calls): the HTTP endpoint and
//! its routes, and each function's and service's physical name, URL or ARN.

use super::{runtime, Exit};
use crate::cli::{Format, Global};
use ferry_core::engine::StateResource;
use serde_json::{json, Map, Value};

fn text(r: &StateResource, k: &str) -> Option<String> {
    r.outputs
        .get(k)
        .or_else(|| r.inputs.get(k))
        .and_then(Value::as_str)
        .map(str::to_owned)
}

/// Runs the command.
pub fn run(g: &Global) -> anyhow::Result<Exit> {
    let rt = runtime()?;
    let located = match super::state::locate(g, &rt, false) {
        Ok(l) => l,
        Err(code) => return Ok(code),
    };
    let Some(state) = rt.block_on(located.backend.read())? else {
        eprintln!(
            "nothing deployed: no state at {}; `ferry deploy` makes one",
            located.backend.location()
        );
        return Ok(Exit::Ok);
    };
    let mut endpoint = None;
    let mut routes = Map::new();
    let mut functions = Map::new();
    // Azure: one function app per runtime family.
    let mut apps = Map::new();
    let mut sections: [(&str, &str, Map<String, Value>); 5] = [
        ("queues", "url", Map::new()),
        ("buckets", "name", Map::new()),
        ("tables", "name", Map::new()),
        ("topics", "arn", Map::new()),
        ("secrets", "arn", Map::new()),
    ];
    for (addr, r) in &state.resources {
        let (prefix, name) = addr.split_once('.').unwrap_or((addr.as_str(), ""));
        let section = match prefix {
            "http-api" => {
                endpoint = text(r, "endpoint");
                continue;
            }
            "route" => {
                routes.insert(name.to_owned(), json!(r.function));
                continue;
            }
            // A Google Cloud function's second, private deployment for its events is not
            // listed; neither are the parts of a resource (`queue.jobs.dlq`).
            _ if name.contains('.') => continue,
            "function" => {
                let mut f = json!({"name": text(r, "name"), "arn": text(r, "arn")});
                if let Some(url) = text(r, "uri") {
                    f["url"] = json!(url);
                }
                functions.insert(name.to_owned(), f);
                continue;
            }
            "site" => {
                let host = text(r, "defaultHostName");
                let id = text(r, "id").unwrap_or_default();
                apps.insert(
                    name.to_owned(),
                    json!({"name": id.rsplit('/').next(), "url": host.map(|h| format!("https://{h}"))}),
                );
                continue;
            }
            "queue" => 0,
            "bucket" => 1,
            // Azure's containers; the apps' deployment containers are not buckets.
            "container" if !name.starts_with("app-package-") => 1,
            "table" => 2,
            "topic" => 3,
            "secret" => 4,
            _ => continue,
        };
        let (_, key, map) = &mut sections[section];
        // AWS records the URL, name or ARN; Azure the resource id (and a topic's endpoint);
        // Google Cloud the resource name.
        let value = text(r, key)
            .or_else(|| text(r, "endpoint"))
            .or_else(|| text(r, "id"))
            .or_else(|| text(r, "name"));
        map.insert(name.to_owned(), json!(value));
    }

    if g.format == Some(Format::Json) {
        let mut doc = json!({
            "service": state.service,
            "stage": state.stage,
            "provider": state.provider,
            "state": located.backend.location(),
            "endpoint": endpoint,
            "routes": routes,
            "functions": functions,
            "apps": apps,
        });
        for (title, _, map) in sections {
            doc[title] = Value::Object(map);
        }
        outln!("{}", serde_json::to_string_pretty(&doc)?);
        return Ok(Exit::Ok);
    }
    outln!(
        "service {} · stage {} · {} (state serial {}, {})",
        state.service,
        state.stage,
        state.provider,
        state.serial,
        located.backend.location()
    );
    if let Some(e) = &endpoint {
        outln!("\nendpoint: {e}");
        for (key, f) in &routes {
            outln!("  {key:<32} → {}", f.as_str().unwrap_or("?"));
        }
    }
    if !apps.is_empty() {
        outln!("\napps:");
        for (runtime, a) in &apps {
            outln!(
                "  {runtime:<8} {}  {}",
                a["name"].as_str().unwrap_or("?"),
                a["url"].as_str().unwrap_or("?")
            );
        }
    }
    let width = functions
        .keys()
        .chain(sections.iter().flat_map(|s| s.2.keys()))
        .map(String::len)
        .max()
        .unwrap_or(0);
    if !functions.is_empty() {
        outln!("\nfunctions:");
        for (f, v) in &functions {
            let url = v["url"]
                .as_str()
                .map(|u| format!("  {u}"))
                .unwrap_or_default();
            outln!("  {f:<width$}  {}{url}", v["name"].as_str().unwrap_or("?"));
        }
    }
    for (title, _, map) in &sections {
        if map.is_empty() {
            continue;
        }
        outln!("\n{title}:");
        for (n, v) in map {
            outln!("  {n:<width$}  {}", v.as_str().unwrap_or("?"));
        }
    }
    Ok(Exit::Ok)
}
