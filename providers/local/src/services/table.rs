//! Local tables: an in-memory store behind DynamoDB's JSON API (`PutItem`, `GetItem`,
//! `DeleteItem`, `Query` on the partition key with an optional sort-key condition, `Scan`),
//! enough for functions that use a table through the AWS SDKs. Data lives for the session.

use serde_json::{json, Map, Value};
use std::collections::BTreeMap;
use std::sync::Mutex;

/// A table.
pub struct Table {
    /// Physical name.
    pub name: String,
    /// Partition key attribute.
    pub partition: String,
    /// Sort key attribute.
    pub sort: Option<String>,
    items: Mutex<BTreeMap<(String, String), Map<String, Value>>>,
}

/// A DynamoDB error (`__type`, message).
pub type Error = (&'static str, String);

/// The comparable text of a key attribute value (`{"S": "a"}`, `{"N": "1"}`, `{"B": ".."}`).
fn key_text(v: &Value) -> Option<String> {
    let o = v.as_object()?;
    let (ty, val) = o.iter().next()?;
    match ty.as_str() {
        // Numbers sort numerically: pad to a fixed width for the ordered map.
        "N" => val
            .as_str()?
            .parse::<f64>()
            .ok()
            .map(|n| format!("{:030.10}", n + 1e15)),
        "S" | "B" => val.as_str().map(str::to_owned),
        _ => None,
    }
}

impl Table {
    /// A new, empty table.
    pub fn new(name: String, partition: String, sort: Option<String>) -> Self {
        Table {
            name,
            partition,
            sort,
            items: Mutex::new(BTreeMap::new()),
        }
    }

    fn key_of(&self, item: &Map<String, Value>) -> Result<(String, String), Error> {
        let missing = |k: &str| {
            (
                "ValidationException",
                format!(
                    "One or more parameter values were invalid: Missing the key {k} in the item"
                ),
            )
        };
        let pk = item
            .get(&self.partition)
            .and_then(key_text)
            .ok_or_else(|| missing(&self.partition))?;
        let sk = match &self.sort {
            Some(s) => item.get(s).and_then(key_text).ok_or_else(|| missing(s))?,
            None => String::new(),
        };
        Ok((pk, sk))
    }

    /// `PutItem`.
    pub fn put(&self, item: Map<String, Value>) -> Result<Value, Error> {
        let key = self.key_of(&item)?;
        self.items.lock().expect("table lock").insert(key, item);
        Ok(json!({}))
    }

    /// `GetItem`.
    pub fn get(&self, key: &Map<String, Value>) -> Result<Value, Error> {
        let k = self.key_of(key)?;
        Ok(match self.items.lock().expect("table lock").get(&k) {
            Some(item) => json!({ "Item": item }),
            None => json!({}),
        })
    }

    /// `DeleteItem`.
    pub fn delete(&self, key: &Map<String, Value>) -> Result<Value, Error> {
        let k = self.key_of(key)?;
        self.items.lock().expect("table lock").remove(&k);
        Ok(json!({}))
    }

    /// `Scan`.
    pub fn scan(&self) -> Value {
        let items: Vec<&Map<String, Value>> = Vec::new();
        let guard = self.items.lock().expect("table lock");
        let mut items = items;
        items.extend(guard.values());
        json!({ "Items": items, "Count": items.len(), "ScannedCount": items.len() })
    }

    /// `Query` with `KeyConditionExpression`: `pk = :v` and optionally `AND sk <op> :w`,
    /// `AND begins_with(sk, :p)` or `AND sk BETWEEN :a AND :b`; `#names` are resolved.
    pub fn query(&self, req: &Value) -> Result<Value, Error> {
        let bad = |m: &str| ("ValidationException", m.to_owned());
        let expr = req["KeyConditionExpression"]
            .as_str()
            .ok_or_else(|| bad("KeyConditionExpression is required"))?;
        let names = req["ExpressionAttributeNames"]
            .as_object()
            .cloned()
            .unwrap_or_default();
        let values = req["ExpressionAttributeValues"]
            .as_object()
            .cloned()
            .unwrap_or_default();
        let name = |t: &str| {
            names
                .get(t)
                .and_then(Value::as_str)
                .map(str::to_owned)
                .unwrap_or_else(|| t.to_owned())
        };
        let value = |t: &str| {
            values
                .get(t)
                .and_then(key_text)
                .ok_or_else(|| bad(&format!("missing or invalid value {t}")))
        };
        let lower = expr.to_ascii_lowercase();
        let split = lower.find(" and ").map(|i| (&expr[..i], &expr[i + 5..]));
        let (pk_part, sk_part) = match split {
            Some((a, b)) if !a.to_ascii_lowercase().contains("between") => (a, Some(b)),
            _ => (expr, None),
        };
        let (pk_name, pk_val) = pk_part
            .split_once('=')
            .ok_or_else(|| bad("the partition key condition must be `key = :value`"))?;
        if name(pk_name.trim()) != self.partition {
            return Err(bad(&format!(
                "Query condition missed key schema element: {}",
                self.partition
            )));
        }
        let pk = value(pk_val.trim())?;
        let sk_filter: Box<dyn Fn(&str) -> bool> = match sk_part.map(str::trim) {
            None => Box::new(|_| true),
            Some(c) if c.to_ascii_lowercase().starts_with("begins_with") => {
                let inner = c[c.find('(').ok_or_else(|| bad("begins_with("))? + 1
                    ..c.rfind(')').ok_or_else(|| bad(")"))?]
                    .to_owned();
                let (_, v) = inner
                    .split_once(',')
                    .ok_or_else(|| bad("begins_with(key, :value)"))?;
                let p = value(v.trim())?;
                Box::new(move |s| s.starts_with(&p))
            }
            Some(c) if c.to_ascii_lowercase().contains(" between ") => {
                let i = c.to_ascii_lowercase().find(" between ").unwrap_or(0);
                let rest = &c[i + 9..];
                let j = rest
                    .to_ascii_lowercase()
                    .find(" and ")
                    .ok_or_else(|| bad("BETWEEN :a AND :b"))?;
                let (a, b) = (value(rest[..j].trim())?, value(rest[j + 5..].trim())?);
                Box::new(move |s| s >= a.as_str() && s <= b.as_str())
            }
            Some(c) => {
                let op = ["<=", ">=", "<", ">", "="]
                    .into_iter()
                    .find(|o| c.contains(o))
                    .ok_or_else(|| bad("unsupported sort key condition"))?;
                let (_, v) = c.split_once(op).unwrap_or((c, ""));
                let w = value(v.trim())?;
                Box::new(move |s| match op {
                    "<=" => s <= w.as_str(),
                    ">=" => s >= w.as_str(),
                    "<" => s < w.as_str(),
                    ">" => s > w.as_str(),
                    _ => s == w,
                })
            }
        };
        let guard = self.items.lock().expect("table lock");
        let mut items: Vec<&Map<String, Value>> = guard
            .iter()
            .filter(|((p, s), _)| *p == pk && sk_filter(s))
            .map(|(_, v)| v)
            .collect();
        if req["ScanIndexForward"] == Value::Bool(false) {
            items.reverse();
        }
        if let Some(limit) = req["Limit"].as_u64() {
            items.truncate(limit as usize);
        }
        Ok(json!({ "Items": items, "Count": items.len(), "ScannedCount": items.len() }))
    }
}

/// Dispatches `DynamoDB_20120810.<op>`.
pub fn handle(
    tables: &BTreeMap<String, std::sync::Arc<Table>>,
    op: &str,
    req: &Value,
) -> Result<Value, Error> {
    let table = || {
        let name = req["TableName"].as_str().unwrap_or("");
        tables.get(name).cloned().ok_or_else(|| {
            (
                "ResourceNotFoundException",
                format!("Requested resource not found: Table: {name} not found"),
            )
        })
    };
    let obj = |k: &str| {
        req[k]
            .as_object()
            .cloned()
            .ok_or_else(|| ("ValidationException", format!("{k} is required")))
    };
    match op {
        "PutItem" => table()?.put(obj("Item")?),
        "GetItem" => table()?.get(&obj("Key")?),
        "DeleteItem" => table()?.delete(&obj("Key")?),
        "Query" => table()?.query(req),
        "Scan" => Ok(table()?.scan()),
        "ListTables" => Ok(json!({ "TableNames": tables.keys().collect::<Vec<_>>() })),
        "DescribeTable" => {
            let t = table()?;
            let mut schema = vec![json!({ "AttributeName": t.partition, "KeyType": "HASH" })];
            if let Some(s) = &t.sort {
                schema.push(json!({ "AttributeName": s, "KeyType": "RANGE" }));
            }
            Ok(
                json!({ "Table": { "TableName": t.name, "TableStatus": "ACTIVE", "KeySchema": schema } }),
            )
        }
        other => Err((
            "UnknownOperationException",
            format!("ferry dev does not emulate DynamoDB {other}"),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn put_get_query_delete() {
        let t = Table::new("t".into(), "id".into(), Some("ts".into()));
        for (id, ts) in [("a", "1"), ("a", "2"), ("a", "10"), ("b", "1")] {
            t.put(
                json!({"id": {"S": id}, "ts": {"N": ts}, "v": {"S": "x"}})
                    .as_object()
                    .unwrap()
                    .clone(),
            )
            .unwrap();
        }
        let got = t
            .get(
                json!({"id": {"S": "a"}, "ts": {"N": "2"}})
                    .as_object()
                    .unwrap(),
            )
            .unwrap();
        assert_eq!(got["Item"]["v"]["S"], "x");
        let q = t
            .query(&json!({"KeyConditionExpression": "#k = :a AND ts >= :t", "ExpressionAttributeNames": {"#k": "id"}, "ExpressionAttributeValues": {":a": {"S": "a"}, ":t": {"N": "2"}}}))
            .unwrap();
        let ts: Vec<&str> = q["Items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|i| i["ts"]["N"].as_str().unwrap())
            .collect();
        assert_eq!(ts, ["2", "10"], "numbers sort numerically");
        t.delete(
            json!({"id": {"S": "a"}, "ts": {"N": "2"}})
                .as_object()
                .unwrap(),
        )
        .unwrap();
        assert_eq!(t.scan()["Count"], 3);
        assert!(
            t.put(json!({"id": {"S": "a"}}).as_object().unwrap().clone())
                .is_err(),
            "the sort key is required"
        );
    }
}
