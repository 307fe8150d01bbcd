//! The HTTP gateway's answer to one request, as API Gateway gives it: the route table picks the
//! function, the request becomes the trigger's event (payload 2.0, 1.0 or the `lambda`
//! template), the result becomes the response; CORS preflight for routes that enable it, 404
//! `{"message":"Not Found"}` for what no route takes, 502/504 when the function fails or times
//! out. `ferry dev` serves it on 127.0.0.1; Cloud Run's `ferry-adapter` serves the same answer
//! behind a Google URL.

use crate::events::{self, Matched, Request};
use crate::pool::{self, Pool};
use crate::routes::Table;
use axum::body::{Body, Bytes};
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use ferry_core::model::{HttpTrigger, PayloadVersion};
use std::collections::BTreeMap;
use std::sync::Arc;

/// What a route leads to: a function and the trigger that routes to it.
#[derive(Debug, Clone)]
pub struct HttpTarget {
    /// The function.
    pub function: String,
    /// The http trigger.
    pub trigger: HttpTrigger,
}

/// A service's route table.
pub type Routes = Table<Arc<HttpTarget>>;

/// The route table of http triggers (function, trigger).
pub fn routes<'a>(triggers: impl IntoIterator<Item = (&'a str, &'a HttpTrigger)>) -> Routes {
    Table::new(
        triggers
            .into_iter()
            .map(|(function, h)| {
                (
                    h.method.clone(),
                    h.path.clone(),
                    Arc::new(HttpTarget {
                        function: function.to_owned(),
                        trigger: h.clone(),
                    }),
                )
            })
            .collect(),
    )
}

/// The request as the gateway sees it (headers in arrival order, names lower-case).
pub fn incoming(
    method: &Method,
    uri: &Uri,
    headers: &HeaderMap,
    body: Bytes,
    source_ip: String,
    domain: &str,
) -> Request {
    Request {
        method: method.as_str().to_ascii_uppercase(),
        path: uri.path().to_owned(),
        query: uri.query().unwrap_or("").to_owned(),
        headers: headers
            .iter()
            .map(|(k, v)| {
                (
                    k.as_str().to_owned(),
                    String::from_utf8_lossy(v.as_bytes()).into_owned(),
                )
            })
            .collect(),
        body,
        source_ip,
        domain: domain.to_owned(),
    }
}

/// An [`events::Response`] as an HTTP response; `cors` adds `access-control-allow-origin: *`
/// unless the function set it.
pub fn to_response(r: events::Response, cors: bool) -> Response {
    let mut b = Response::builder().status(r.status);
    for (k, v) in &r.headers {
        b = b.header(k.as_str(), v.as_str());
    }
    if cors
        && !r
            .headers
            .iter()
            .any(|(k, _)| k == "access-control-allow-origin")
    {
        b = b.header("access-control-allow-origin", "*");
    }
    b.body(Body::from(r.body))
        .unwrap_or_else(|_| StatusCode::BAD_GATEWAY.into_response())
}

/// The CORS preflight answer for an OPTIONS request no route takes, when a route with
/// `cors: true` has its path.
fn preflight(table: &Routes, req: &Request) -> Option<Response> {
    let r = table
        .find_any_method(&req.path)
        .filter(|r| r.target.trigger.cors)?;
    let allow_headers = req
        .headers
        .iter()
        .find(|(k, _)| k == "access-control-request-headers")
        .map_or("*", |(_, v)| v.as_str())
        .to_owned();
    let methods: Vec<String> = table
        .routes()
        .iter()
        .filter(|x| x.template == r.template)
        .map(|x| x.method.clone())
        .collect();
    Some(
        Response::builder()
            .status(204)
            .header("access-control-allow-origin", "*")
            .header(
                "access-control-allow-methods",
                format!("{},OPTIONS", methods.join(",")),
            )
            .header("access-control-allow-headers", allow_headers)
            .header("access-control-max-age", "600")
            .body(Body::empty())
            .unwrap_or_else(|_| StatusCode::NO_CONTENT.into_response()),
    )
}

/// Answers one request: route, invoke the function's pool, map the result.
pub async fn answer(
    table: &Routes,
    pools: &BTreeMap<String, Arc<Pool>>,
    req: Request,
    request_id: String,
) -> Response {
    let Some((route, params)) = table.find(&req.method, &req.path) else {
        if req.method == "OPTIONS" {
            if let Some(r) = preflight(table, &req) {
                return r;
            }
        }
        return to_response(events::Response::message(404, "Not Found"), false);
    };
    let target = route.target.clone();
    let matched = Matched {
        route_key: format!("{} {}", route.method, route.template),
        resource: route.template.clone(),
        params,
    };
    let event = events::request_event(target.trigger.payload, &req, &matched, &request_id);
    let Some(pool) = pools.get(&target.function) else {
        return to_response(
            events::Response::message(502, "Internal Server Error"),
            false,
        );
    };
    let event = event.to_string();
    if event.len() > crate::runtime_api::PAYLOAD_LIMIT {
        // The body fits API Gateway's 10 MB, but the event (the body base64-encoded or
        // escaped, with the request around it) is over what Lambda takes.
        return to_response(
            events::Response::message(413, "Request Entity Too Large"),
            target.trigger.cors,
        );
    }
    let result = pool.invoke(Bytes::from(event), request_id).await;
    let cors = target.trigger.cors;
    let r = match result {
        pool::Result::Ok(b) => events::response(target.trigger.payload, &b),
        pool::Result::FunctionError(_) if target.trigger.payload == PayloadVersion::Lambda => {
            events::Response::message(500, "Internal server error")
        }
        pool::Result::FunctionError(_) | pool::Result::Failed(_) => {
            events::Response::message(502, "Internal Server Error")
        }
        pool::Result::Timeout => events::Response::message(504, "Endpoint request timed out"),
    };
    to_response(r, cors)
}
