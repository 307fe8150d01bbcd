//! ferry example: a tiny JSON API on AWS Lambda's Rust runtime.
//!
//! One function serves three routes (see `serverless.yaml`):
//!
//! - `GET  /items`      list every item
//! - `GET  /items/{id}` one item, or 404
//! - `POST /items`      create an item from `{"name": "...", "price": 1.5}`, answers 201
//!
//! Data lives in memory, so it lasts as long as one warm Lambda instance (or one `ferry dev`
//! worker): good enough to show the routing, not a database.

use lambda_http::{run, service_fn, Body, Error, Request, RequestExt, Response};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

/// An item as stored and returned.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Item {
    id: u64,
    name: String,
    price: f64,
}

/// The body of `POST /items`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct NewItem {
    name: String,
    #[serde(default)]
    price: f64,
}

/// The in-memory store, shared by every invocation of this instance.
#[derive(Debug)]
struct Store {
    items: Mutex<BTreeMap<u64, Item>>,
}

impl Store {
    /// A store with two sample items, so `GET /items` has something to show.
    fn seeded() -> Self {
        let items = [(1, "kettle", 24.5), (2, "teapot", 18.0)]
            .into_iter()
            .map(|(id, name, price)| {
                let item = Item {
                    id,
                    name: name.to_owned(),
                    price,
                };
                (id, item)
            })
            .collect();
        Store {
            items: Mutex::new(items),
        }
    }

    fn list(&self) -> Vec<Item> {
        self.items.lock().unwrap().values().cloned().collect()
    }

    fn get(&self, id: u64) -> Option<Item> {
        self.items.lock().unwrap().get(&id).cloned()
    }

    fn insert(&self, new: NewItem) -> Item {
        let mut items = self.items.lock().unwrap();
        let id = items.keys().next_back().map_or(1, |last| last + 1);
        let item = Item {
            id,
            name: new.name,
            price: new.price,
        };
        items.insert(id, item.clone());
        item
    }
}

/// A JSON response with the given status.
fn json(status: u16, value: &impl Serialize) -> Result<Response<Body>, Error> {
    Ok(Response::builder()
        .status(status)
        .header("content-type", "application/json")
        .body(Body::from(serde_json::to_string(value)?))?)
}

/// A JSON error body: `{"error": "..."}`.
fn error(status: u16, message: &str) -> Result<Response<Body>, Error> {
    json(status, &serde_json::json!({ "error": message }))
}

/// Routes one request. The gateway has already matched the route, so the method and the
/// presence of the `{id}` path parameter are enough to tell the three routes apart.
async fn handle(store: &Store, req: Request) -> Result<Response<Body>, Error> {
    let id = req.path_parameters().first("id").map(str::to_owned);
    match (req.method().as_str(), id) {
        ("GET", None) => json(200, &store.list()),
        ("GET", Some(id)) => match id.parse::<u64>().ok().and_then(|id| store.get(id)) {
            Some(item) => json(200, &item),
            None => error(404, &format!("no item with id `{id}`")),
        },
        ("POST", None) => match serde_json::from_slice::<NewItem>(req.body().as_ref()) {
            Ok(new) if new.name.trim().is_empty() => error(400, "`name` must not be empty"),
            Ok(new) => json(201, &store.insert(new)),
            Err(e) => error(400, &format!("invalid item: {e}")),
        },
        (method, _) => error(405, &format!("method {method} is not allowed here")),
    }
}

#[tokio::main]
async fn main() -> Result<(), Error> {
    lambda_http::tracing::init_default_subscriber();
    let store = Arc::new(Store::seeded());
    run(service_fn(move |req: Request| {
        let store = Arc::clone(&store);
        async move { handle(&store, req).await }
    }))
    .await
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn request(method: &str, path: &str, id: Option<&str>, body: &str) -> Request {
        let req = lambda_http::http::Request::builder()
            .method(method)
            .uri(path)
            .header("content-type", "application/json")
            .body(Body::from(body.to_owned()))
            .unwrap();
        match id {
            Some(id) => req.with_path_parameters(HashMap::from([("id".to_owned(), id.to_owned())])),
            None => req,
        }
    }

    fn body_json(resp: &Response<Body>) -> serde_json::Value {
        serde_json::from_slice(resp.body().as_ref()).unwrap()
    }

    #[tokio::test]
    async fn lists_gets_and_creates() {
        let store = Store::seeded();

        let list = handle(&store, request("GET", "/items", None, ""))
            .await
            .unwrap();
        assert_eq!(list.status(), 200);
        assert_eq!(body_json(&list).as_array().unwrap().len(), 2);

        let one = handle(&store, request("GET", "/items/2", Some("2"), ""))
            .await
            .unwrap();
        assert_eq!(one.status(), 200);
        assert_eq!(body_json(&one)["name"], "teapot");

        let missing = handle(&store, request("GET", "/items/9", Some("9"), ""))
            .await
            .unwrap();
        assert_eq!(missing.status(), 404);

        let created = handle(
            &store,
            request("POST", "/items", None, r#"{"name":"mug","price":6.5}"#),
        )
        .await
        .unwrap();
        assert_eq!(created.status(), 201);
        assert_eq!(body_json(&created)["id"], 3);
        assert_eq!(store.list().len(), 3);
    }

    #[tokio::test]
    async fn rejects_bad_bodies() {
        let store = Store::seeded();
        for body in ["", "{", r#"{"name":""}"#, r#"{"name":"x","colour":"red"}"#] {
            let resp = handle(&store, request("POST", "/items", None, body))
                .await
                .unwrap();
            assert_eq!(resp.status(), 400, "body {body:?}");
        }
    }
}
