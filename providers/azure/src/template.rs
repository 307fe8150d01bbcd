//! Renders [`crate::resources`] as an ARM deployment template (`azuredeploy.json`), for people
//! who deploy with `az deployment group create` or a pipeline instead of `ferry deploy`.
//!
//! Tokens become template expressions: `${suffix}` → `variables('suffix')` (a `uniqueString`
//! of the resource group, service and stage), `${location}` → `parameters('location')`,
//! `${id:A}` → `resourceId(...)`, `${ref:A.OUT}` → `reference(..., 'full').<path>`,
//! `${secret:S}` → a `securestring` parameter named like the variable ferry reads
//! (`FERRY_SECRET_API_TOKEN`). Event Grid subscriptions to functions are conditional on the
//! `eventSubscriptions` parameter: deploy with false, publish the code, deploy again with true.

use crate::resources::{outputs, AzResource};
use ferry_core::model::{secret_value_env, Service};
use serde_json::{json, Map, Value};
use std::collections::BTreeMap;

/// `$schema` of the template.
pub const SCHEMA: &str =
    "https://schema.management.azure.com/schemas/2019-04-01/deploymentTemplate.json#";

/// A piece of a string with tokens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Piece<'a> {
    /// Literal text.
    Text(&'a str),
    /// `${name}` or `${name:arg}`.
    Token(&'a str, &'a str),
}

/// Splits `s` into text and tokens.
pub fn pieces(s: &str) -> Vec<Piece<'_>> {
    let mut out = Vec::new();
    let mut rest = s;
    while let Some(i) = rest.find("${") {
        let Some(end) = rest[i..].find('}') else {
            break;
        };
        if i > 0 {
            out.push(Piece::Text(&rest[..i]));
        }
        let body = &rest[i + 2..i + end];
        let (name, arg) = body.split_once(':').unwrap_or((body, ""));
        out.push(Piece::Token(name, arg));
        rest = &rest[i + end + 1..];
    }
    if !rest.is_empty() {
        out.push(Piece::Text(rest));
    }
    out
}

/// `'text'` inside an ARM expression.
fn lit(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''"))
}

struct Render<'a> {
    by_address: BTreeMap<&'a str, &'a AzResource>,
    parameters: Map<String, Value>,
}

impl<'a> Render<'a> {
    /// The expression for one token.
    fn token(&mut self, name: &str, arg: &str) -> String {
        match name {
            "suffix" => "variables('suffix')".into(),
            "location" => "parameters('location')".into(),
            "tenant" => "subscription().tenantId".into(),
            "subscription" => "subscription().subscriptionId".into(),
            "guid" => format!("guid(resourceGroup().id, {})", lit(arg)),
            "id" => self.resource_id(arg),
            "ref" => {
                let (address, output) = arg.rsplit_once('.').unwrap_or((arg, ""));
                let r = self.by_address[address];
                let path = outputs(r.rtype)
                    .iter()
                    .find(|(o, _)| *o == output)
                    .map(|(_, p)| *p)
                    .unwrap_or_else(|| panic!("{} has no output {output}", r.rtype));
                format!(
                    "reference({}, {}, 'full').{path}",
                    self.resource_id(address),
                    lit(r.api)
                )
            }
            "secret" => {
                let p = secret_value_env(arg);
                self.parameters.insert(
                    p.clone(),
                    json!({"type": "securestring", "metadata": {"description": format!("The value of the secret `{arg}` (ferry passes ${p}).")}}),
                );
                format!("parameters('{p}')")
            }
            other => panic!("unknown token {other}"),
        }
    }

    /// An expression for a string with tokens.
    fn expr(&mut self, s: &str) -> String {
        let parts: Vec<String> = pieces(s)
            .into_iter()
            .map(|p| match p {
                Piece::Text(t) => lit(t),
                Piece::Token(n, a) => self.token(n, a),
            })
            .collect();
        match parts.len() {
            0 => "''".into(),
            1 => parts.into_iter().next().expect("one"),
            _ => format!("concat({})", parts.join(", ")),
        }
    }

    fn resource_id(&mut self, address: &str) -> String {
        let r = self.by_address[address];
        let segs: Vec<String> = r.name.clone().iter().map(|n| self.expr(n)).collect();
        format!("resourceId({}, {})", lit(r.rtype), segs.join(", "))
    }

    /// A JSON value with every string's tokens turned into template expressions.
    fn value(&mut self, v: &Value) -> Value {
        match v {
            Value::String(s) if pieces(s).iter().any(|p| matches!(p, Piece::Token(..))) => {
                Value::String(format!("[{}]", self.expr(s)))
            }
            // A literal that starts with `[` would read as an expression; `[[` escapes it.
            Value::String(s) if s.starts_with('[') => Value::String(format!("[{s}")),
            Value::Array(a) => Value::Array(a.iter().map(|x| self.value(x)).collect()),
            Value::Object(o) => {
                Value::Object(o.iter().map(|(k, x)| (k.clone(), self.value(x))).collect())
            }
            other => other.clone(),
        }
    }
}

/// Addresses a value's tokens name (`${id:A}`, `${ref:A.OUT}`).
pub fn referenced(v: &Value, out: &mut Vec<String>) {
    match v {
        Value::String(s) => {
            for p in pieces(s) {
                match p {
                    Piece::Token("id", a) => out.push(a.to_owned()),
                    Piece::Token("ref", a) => {
                        out.push(a.rsplit_once('.').map_or(a, |(x, _)| x).to_owned())
                    }
                    _ => {}
                }
            }
        }
        Value::Array(a) => a.iter().for_each(|x| referenced(x, out)),
        Value::Object(o) => o.values().for_each(|x| referenced(x, out)),
        _ => {}
    }
}

/// The template.
pub fn template(service: &Service, resources: &[AzResource]) -> Value {
    let mut rd = Render {
        by_address: resources.iter().map(|r| (r.address.as_str(), r)).collect(),
        parameters: Map::new(),
    };
    rd.parameters.insert(
        "location".into(),
        json!({"type": "string", "defaultValue": "[resourceGroup().location]",
               "metadata": {"description": "Where the resources go (default: the resource group's location)."}}),
    );
    rd.parameters.insert(
        "eventSubscriptions".into(),
        json!({"type": "bool", "defaultValue": false,
               "metadata": {"description": "Create the Event Grid subscriptions to the functions. Event Grid checks that a function exists: deploy with false, publish the code, deploy again with true."}}),
    );
    let mut out = Vec::new();
    for r in resources {
        let mut t = Map::new();
        if r.after_code.is_some() {
            t.insert(
                "condition".into(),
                json!("[parameters('eventSubscriptions')]"),
            );
        }
        t.insert("type".into(), json!(r.rtype));
        t.insert("apiVersion".into(), json!(r.api));
        let name = r.name.join("/");
        t.insert("name".into(), rd.value(&json!(name)));
        if let Some(Some(a)) = &r.scope {
            let id = rd.resource_id(a);
            t.insert("scope".into(), json!(format!("[{id}]")));
        }
        let mut deps = r.depends.clone();
        referenced(&r.body, &mut deps);
        deps.sort();
        deps.dedup();
        deps.retain(|d| d != &r.address);
        if !deps.is_empty() {
            let ids: Vec<Value> = deps
                .iter()
                .map(|d| json!(format!("[{}]", rd.resource_id(d))))
                .collect();
            t.insert("dependsOn".into(), Value::Array(ids));
        }
        if let Value::Object(body) = rd.value(&r.body) {
            t.extend(body);
        }
        out.push(Value::Object(t));
    }
    let mut outputs_map = Map::new();
    for r in resources
        .iter()
        .filter(|r| r.rtype == "Microsoft.Web/sites")
    {
        let host = rd.token("ref", &format!("{}.defaultHostName", r.address));
        outputs_map.insert(
            format!("{}Url", r.address.replace('.', "-")),
            json!({"type": "string", "value": format!("[concat('https://', {host})]")}),
        );
    }
    json!({
        "$schema": SCHEMA,
        "contentVersion": "1.0.0.0",
        "metadata": {"generator": {"name": "ferry", "version": env!("CARGO_PKG_VERSION")}, "service": service.service, "stage": service.stage},
        "parameters": rd.parameters,
        "variables": {
            "suffix": format!("[uniqueString(resourceGroup().id, {}, {})]", lit(&service.service), lit(&service.stage)),
        },
        "resources": out,
        "outputs": outputs_map,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_tokens() {
        assert_eq!(
            pieces("st${suffix}/x${ref:a.b}"),
            vec![
                Piece::Text("st"),
                Piece::Token("suffix", ""),
                Piece::Text("/x"),
                Piece::Token("ref", "a.b")
            ]
        );
        assert_eq!(pieces("plain"), vec![Piece::Text("plain")]);
        assert_eq!(lit("it's"), "'it''s'");
    }
}
