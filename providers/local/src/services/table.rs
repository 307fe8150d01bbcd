//! Local tables: an in-memory store behind DynamoDB's JSON API (`PutItem`, `GetItem`,
//! `UpdateItem`, `DeleteItem` with condition expressions and `ReturnValues`, `BatchWriteItem`,
//! `BatchGetItem`, `Query` on the partition key with an optional sort-key condition, `Scan`,
//! both with `FilterExpression`), enough for functions that use a table through the AWS SDKs.
//! Data lives for the session.

use super::expr::{Condition, Names, Update};
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

    /// `PutItem` (with `ConditionExpression` and `ReturnValues: ALL_OLD`).
    pub fn put(&self, item: Map<String, Value>, req: &Value) -> Result<Value, Error> {
        let key = self.key_of(&item)?;
        let condition = condition(req, "ConditionExpression")?;
        let mut items = self.items.lock().expect("table lock");
        let old = items.get(&key).cloned();
        check(condition.as_ref(), old.as_ref())?;
        items.insert(key, item);
        Ok(returned(req, old.as_ref(), None, &[]))
    }

    /// `UpdateItem`: the item is created when there is none (with its key attributes).
    pub fn update(&self, key: &Map<String, Value>, req: &Value) -> Result<Value, Error> {
        let k = self.key_of(key)?;
        for extra in key.keys() {
            if *extra != self.partition && Some(extra) != self.sort.as_ref() {
                return Err(invalid(
                    "The provided key element does not match the schema",
                ));
            }
        }
        if req.get("AttributeUpdates").is_some() || req.get("Expected").is_some() {
            return Err(invalid(
                "ferry dev's tables take expressions (UpdateExpression, ConditionExpression), not the legacy AttributeUpdates/Expected parameters",
            ));
        }
        let condition = condition(req, "ConditionExpression")?;
        let update = match req["UpdateExpression"].as_str() {
            Some(text) => {
                Some(Update::parse(text, &names(req)).map_err(invalid_expr("UpdateExpression"))?)
            }
            None => None,
        };
        let paths: Vec<&str> = update.as_ref().map(Update::paths).unwrap_or_default();
        if let Some(p) = paths
            .iter()
            .find(|p| **p == self.partition || Some(**p) == self.sort.as_deref())
        {
            return Err(invalid(&format!(
                "One or more parameter values were invalid: Cannot update attribute {p}. This attribute is part of the key"
            )));
        }
        let mut items = self.items.lock().expect("table lock");
        let old = items.get(&k).cloned();
        check(condition.as_ref(), old.as_ref())?;
        let base = old.clone().unwrap_or_else(|| key.clone());
        let new = match &update {
            Some(u) => u.apply(&base).map_err(|e| invalid(&e))?,
            None => base,
        };
        items.insert(k, new.clone());
        Ok(returned(req, old.as_ref(), Some(&new), &paths))
    }

    /// `GetItem`.
    pub fn get(&self, key: &Map<String, Value>) -> Result<Value, Error> {
        let k = self.key_of(key)?;
        Ok(match self.items.lock().expect("table lock").get(&k) {
            Some(item) => json!({ "Item": item }),
            None => json!({}),
        })
    }

    /// `DeleteItem` (with `ConditionExpression` and `ReturnValues: ALL_OLD`).
    pub fn delete(&self, key: &Map<String, Value>, req: &Value) -> Result<Value, Error> {
        let k = self.key_of(key)?;
        let condition = condition(req, "ConditionExpression")?;
        let mut items = self.items.lock().expect("table lock");
        let old = items.get(&k).cloned();
        check(condition.as_ref(), old.as_ref())?;
        items.remove(&k);
        Ok(returned(req, old.as_ref(), None, &[]))
    }

    /// `Scan` (with `FilterExpression`).
    pub fn scan(&self, req: &Value) -> Result<Value, Error> {
        let filter = condition(req, "FilterExpression")?;
        let start = self.start_key(req)?;
        let guard = self.items.lock().expect("table lock");
        let items = guard
            .iter()
            .filter(|(k, _)| start.as_ref().is_none_or(|s| *k > s))
            .map(|(_, v)| v)
            .collect();
        self.page(items, req, filter.as_ref())
    }

    /// `ExclusiveStartKey`, as the map's key: where the previous page stopped.
    fn start_key(&self, req: &Value) -> Result<Option<(String, String)>, Error> {
        req["ExclusiveStartKey"]
            .as_object()
            .map(|k| self.key_of(k))
            .transpose()
    }

    /// One page of a `Query`/`Scan`: `Limit` items evaluated at most (before the filter, as
    /// DynamoDB counts), and `LastEvaluatedKey` when more remain, so clients that page (the
    /// SDKs' paginators) get every item.
    fn page(
        &self,
        mut items: Vec<&Map<String, Value>>,
        req: &Value,
        filter: Option<&Condition>,
    ) -> Result<Value, Error> {
        let mut last = None;
        if let Some(limit) = req.get("Limit").filter(|l| !l.is_null()) {
            let limit = limit
                .as_u64()
                .filter(|l| *l >= 1)
                .ok_or_else(|| invalid("1 validation error detected: Value at 'limit' failed to satisfy constraint: Member must have value greater than or equal to 1"))?
                as usize;
            if items.len() > limit {
                items.truncate(limit);
                last = items.last().map(|i| {
                    let mut key = Map::new();
                    for name in std::iter::once(&self.partition).chain(&self.sort) {
                        if let Some(v) = i.get(name) {
                            key.insert(name.clone(), v.clone());
                        }
                    }
                    key
                });
            }
        }
        let mut answer = listed(items, filter);
        if let Some(key) = last {
            answer["LastEvaluatedKey"] = Value::Object(key);
        }
        Ok(answer)
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
        let forward = req["ScanIndexForward"] != Value::Bool(false);
        let start = self.start_key(req)?;
        let filter = condition(req, "FilterExpression")?;
        let guard = self.items.lock().expect("table lock");
        let mut items: Vec<&Map<String, Value>> = guard
            .iter()
            .filter(|((p, s), _)| *p == pk && sk_filter(s))
            .filter(|(k, _)| match &start {
                None => true,
                Some(s) if forward => *k > s,
                Some(s) => *k < s,
            })
            .map(|(_, v)| v)
            .collect();
        if !forward {
            items.reverse();
        }
        self.page(items, req, filter.as_ref())
    }
}

fn invalid(message: &str) -> Error {
    ("ValidationException", message.to_owned())
}

fn invalid_expr(which: &'static str) -> impl Fn(String) -> Error {
    move |e| invalid(&format!("Invalid {which}: {e}"))
}

/// The request's placeholder maps.
fn names(req: &Value) -> Names<'_> {
    static EMPTY: std::sync::OnceLock<Map<String, Value>> = std::sync::OnceLock::new();
    let empty = EMPTY.get_or_init(Map::new);
    Names {
        names: req["ExpressionAttributeNames"].as_object().unwrap_or(empty),
        values: req["ExpressionAttributeValues"]
            .as_object()
            .unwrap_or(empty),
    }
}

/// The request's condition `field` (`ConditionExpression`, `FilterExpression`), parsed.
fn condition(req: &Value, field: &'static str) -> Result<Option<Condition>, Error> {
    req[field]
        .as_str()
        .map(|text| Condition::parse(text, &names(req)).map_err(invalid_expr(field)))
        .transpose()
}

/// Fails as DynamoDB does when the item (none: an empty one) does not meet the condition.
fn check(condition: Option<&Condition>, item: Option<&Map<String, Value>>) -> Result<(), Error> {
    let empty = Map::new();
    match condition {
        Some(c) if !c.holds(item.unwrap_or(&empty)) => Err((
            "ConditionalCheckFailedException",
            "The conditional request failed".into(),
        )),
        _ => Ok(()),
    }
}

/// The `Attributes` `ReturnValues` asks for: `ALL_OLD`, `ALL_NEW`, `UPDATED_OLD` or
/// `UPDATED_NEW` (the attributes in `paths`); nothing for `NONE`.
fn returned(
    req: &Value,
    old: Option<&Map<String, Value>>,
    new: Option<&Map<String, Value>>,
    paths: &[&str],
) -> Value {
    let only = |item: Option<&Map<String, Value>>| {
        item.map(|i| {
            i.iter()
                .filter(|(k, _)| paths.contains(&k.as_str()))
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect::<Map<String, Value>>()
        })
    };
    let attributes = match req["ReturnValues"].as_str().unwrap_or("NONE") {
        "ALL_OLD" => old.cloned(),
        "ALL_NEW" => new.cloned(),
        "UPDATED_OLD" => only(old),
        "UPDATED_NEW" => only(new),
        _ => None,
    };
    match attributes {
        Some(a) if !a.is_empty() => json!({ "Attributes": a }),
        _ => json!({}),
    }
}

/// A `Query`/`Scan` answer: the items that pass the filter; `ScannedCount` counts them all.
fn listed(items: Vec<&Map<String, Value>>, filter: Option<&Condition>) -> Value {
    let scanned = items.len();
    let kept: Vec<&Map<String, Value>> = items
        .into_iter()
        .filter(|i| filter.is_none_or(|f| f.holds(i)))
        .collect();
    json!({ "Items": kept, "Count": kept.len(), "ScannedCount": scanned })
}

/// Dispatches `DynamoDB_20120810.<op>`.
pub fn handle(
    tables: &BTreeMap<String, std::sync::Arc<Table>>,
    op: &str,
    req: &Value,
) -> Result<Value, Error> {
    let find = |name: &str| {
        tables.get(name).cloned().ok_or_else(|| {
            (
                "ResourceNotFoundException",
                format!("Requested resource not found: Table: {name} not found"),
            )
        })
    };
    let table = || find(req["TableName"].as_str().unwrap_or(""));
    let obj = |k: &str| {
        req[k]
            .as_object()
            .cloned()
            .ok_or_else(|| ("ValidationException", format!("{k} is required")))
    };
    match op {
        "PutItem" => table()?.put(obj("Item")?, req),
        "GetItem" => table()?.get(&obj("Key")?),
        "UpdateItem" => table()?.update(&obj("Key")?, req),
        "DeleteItem" => table()?.delete(&obj("Key")?, req),
        "Query" => table()?.query(req),
        "Scan" => table()?.scan(req),
        "BatchWriteItem" => {
            for (name, writes) in obj("RequestItems")? {
                let t = find(&name)?;
                for w in writes.as_array().into_iter().flatten() {
                    if let Some(item) = w["PutRequest"]["Item"].as_object() {
                        t.put(item.clone(), &Value::Null)?;
                    } else if let Some(key) = w["DeleteRequest"]["Key"].as_object() {
                        t.delete(key, &Value::Null)?;
                    } else {
                        return Err(invalid("each write needs a PutRequest or a DeleteRequest"));
                    }
                }
            }
            Ok(json!({ "UnprocessedItems": {} }))
        }
        "BatchGetItem" => {
            let mut responses = Map::new();
            for (name, get) in obj("RequestItems")? {
                let t = find(&name)?;
                let mut found = Vec::new();
                for key in get["Keys"].as_array().into_iter().flatten() {
                    let key = key.as_object().cloned().unwrap_or_default();
                    if let Some(item) = t.get(&key)?.get("Item") {
                        found.push(item.clone());
                    }
                }
                responses.insert(name, Value::Array(found));
            }
            Ok(json!({ "Responses": responses, "UnprocessedKeys": {} }))
        }
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
                &Value::Null,
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
            &Value::Null,
        )
        .unwrap();
        assert_eq!(t.scan(&Value::Null).unwrap()["Count"], 3);
        assert!(
            t.put(
                json!({"id": {"S": "a"}}).as_object().unwrap().clone(),
                &Value::Null
            )
            .is_err(),
            "the sort key is required"
        );
    }

    #[test]
    fn conditions_updates_and_batches() {
        let t = std::sync::Arc::new(Table::new("t".into(), "id".into(), None));
        let tables = BTreeMap::from([("t".to_owned(), t.clone())]);
        let call = |op: &str, req: Value| handle(&tables, op, &req);
        let once = json!({"TableName": "t", "Item": {"id": {"S": "a"}, "n": {"N": "1"}}, "ConditionExpression": "attribute_not_exists(id)"});
        call("PutItem", once.clone()).unwrap();
        assert_eq!(
            call("PutItem", once).unwrap_err().0,
            "ConditionalCheckFailedException",
            "put-if-absent refuses the second put"
        );
        // A counter: created by the first update, incremented by the next.
        let bump = json!({"TableName": "t", "Key": {"id": {"S": "hits"}}, "UpdateExpression": "ADD #n :one SET seen = :now", "ExpressionAttributeNames": {"#n": "n"}, "ExpressionAttributeValues": {":one": {"N": "1"}, ":now": {"S": "today"}}, "ReturnValues": "UPDATED_NEW"});
        call("UpdateItem", bump.clone()).unwrap();
        let r = call("UpdateItem", bump).unwrap();
        assert_eq!(
            r["Attributes"],
            json!({"n": {"N": "2"}, "seen": {"S": "today"}})
        );
        let guarded = json!({"TableName": "t", "Key": {"id": {"S": "hits"}}, "UpdateExpression": "SET n = n - :one", "ConditionExpression": "n > :one", "ExpressionAttributeValues": {":one": {"N": "1"}}, "ReturnValues": "ALL_OLD"});
        let r = call("UpdateItem", guarded.clone()).unwrap();
        assert_eq!(r["Attributes"]["n"], json!({"N": "2"}));
        assert_eq!(
            call("UpdateItem", guarded).unwrap_err().0,
            "ConditionalCheckFailedException"
        );
        let key_update = json!({"TableName": "t", "Key": {"id": {"S": "a"}}, "UpdateExpression": "SET id = :v", "ExpressionAttributeValues": {":v": {"S": "b"}}});
        assert!(call("UpdateItem", key_update)
            .unwrap_err()
            .1
            .contains("part of the key"));
        // Batches, and a filter that counts what it scanned.
        call(
            "BatchWriteItem",
            json!({"RequestItems": {"t": [
                {"PutRequest": {"Item": {"id": {"S": "b"}, "n": {"N": "7"}}}},
                {"DeleteRequest": {"Key": {"id": {"S": "a"}}}}
            ]}}),
        )
        .unwrap();
        let got = call(
            "BatchGetItem",
            json!({"RequestItems": {"t": {"Keys": [{"id": {"S": "a"}}, {"id": {"S": "b"}}]}}}),
        )
        .unwrap();
        assert_eq!(
            got["Responses"]["t"],
            json!([{"id": {"S": "b"}, "n": {"N": "7"}}])
        );
        let scan = call("Scan", json!({"TableName": "t", "FilterExpression": "n >= :five", "ExpressionAttributeValues": {":five": {"N": "5"}}})).unwrap();
        assert_eq!(
            (scan["Count"].clone(), scan["ScannedCount"].clone()),
            (json!(1), json!(2))
        );
        // Pages: Limit counts what is evaluated; LastEvaluatedKey leads to the next page.
        for i in 0..5 {
            call(
                "PutItem",
                json!({"TableName": "t", "Item": {"id": {"S": format!("p{i}")}}}),
            )
            .unwrap();
        }
        let mut seen = Vec::new();
        let mut start = Value::Null;
        loop {
            let mut req = json!({"TableName": "t", "Limit": 2});
            if !start.is_null() {
                req["ExclusiveStartKey"] = start.clone();
            }
            let page = call("Scan", req).unwrap();
            for i in page["Items"].as_array().unwrap() {
                seen.push(i["id"]["S"].as_str().unwrap().to_owned());
            }
            match page.get("LastEvaluatedKey") {
                Some(k) => start = k.clone(),
                None => break,
            }
        }
        assert_eq!(seen, ["b", "hits", "p0", "p1", "p2", "p3", "p4"]);
        assert!(call("Scan", json!({"TableName": "t", "Limit": 0})).is_err());
        let bad = json!({"TableName": "t", "FilterExpression": "n.x = :v", "ExpressionAttributeValues": {":v": {"N": "5"}}});
        let e = call("Scan", bad).unwrap_err();
        assert!(
            e.0 == "ValidationException" && e.1.contains("Invalid FilterExpression"),
            "{e:?}"
        );
    }
}
