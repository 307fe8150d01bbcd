//! API Gateway event shapes: requests into payload 2.0 (HTTP API), 1.0 (REST API proxy) or
//! the Serverless Framework's `lambda` integration template, and function results back into
//! HTTP responses, following API Gateway's documented mapping rules.

use base64::Engine;
use bytes::Bytes;
use ferry_core::model::PayloadVersion;
use serde_json::{json, Map, Value};
use std::collections::BTreeMap;

/// An HTTP request as the gateway saw it.
#[derive(Debug, Clone)]
pub struct Request {
    /// Upper-case method.
    pub method: String,
    /// Path without the query string.
    pub path: String,
    /// The raw query string (no `?`).
    pub query: String,
    /// Headers in arrival order, names lower-cased.
    pub headers: Vec<(String, String)>,
    /// Body bytes.
    pub body: Bytes,
    /// Client address.
    pub source_ip: String,
    /// `host:port` the gateway listens on.
    pub domain: String,
}

/// What matched: the route key and the path parameters.
#[derive(Debug, Clone)]
pub struct Matched {
    /// `GET /items/{id}`.
    pub route_key: String,
    /// The route's path template (`/items/{id}`).
    pub resource: String,
    /// `{id}` → value.
    pub params: BTreeMap<String, String>,
}

/// A response to send back.
#[derive(Debug, Clone, PartialEq)]
pub struct Response {
    /// Status code.
    pub status: u16,
    /// Headers (a name may repeat, e.g. `set-cookie`).
    pub headers: Vec<(String, String)>,
    /// Body bytes.
    pub body: Bytes,
}

impl Response {
    /// A JSON error body in API Gateway's style (`{"message": ...}`).
    pub fn message(status: u16, message: &str) -> Self {
        Response {
            status,
            headers: vec![("content-type".into(), "application/json".into())],
            body: Bytes::from(json!({ "message": message }).to_string()),
        }
    }
}

/// Content types whose bodies API Gateway passes as text; anything else is base64.
pub fn is_text(content_type: Option<&str>) -> bool {
    let Some(ct) = content_type else { return true };
    let ct = ct
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    ct.is_empty()
        || ct.starts_with("text/")
        || ct.ends_with("+json")
        || ct.ends_with("+xml")
        || matches!(
            ct.as_str(),
            "application/json"
                | "application/xml"
                | "application/javascript"
                | "application/x-www-form-urlencoded"
                | "application/graphql"
        )
}

fn header<'a>(r: &'a Request, name: &str) -> Option<&'a str> {
    r.headers
        .iter()
        .find(|(n, _)| n == name)
        .map(|(_, v)| v.as_str())
}

fn body_field(r: &Request) -> (Value, bool) {
    if r.body.is_empty() {
        return (Value::Null, false);
    }
    if is_text(header(r, "content-type")) {
        if let Ok(s) = std::str::from_utf8(&r.body) {
            return (Value::String(s.to_owned()), false);
        }
    }
    (
        Value::String(base64::engine::general_purpose::STANDARD.encode(&r.body)),
        true,
    )
}

/// Splits and percent-decodes `a=1&b=2&a=3` into ordered pairs.
pub fn parse_query(q: &str) -> Vec<(String, String)> {
    q.split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (percent_decode(k), percent_decode(v))
        })
        .collect()
}

/// Decodes `%XX` escapes and `+` (as a space, as in query strings).
pub fn percent_decode(s: &str) -> String {
    decode(s, true)
}

/// Decodes `%XX` escapes in a path segment, where `+` is itself.
pub fn percent_decode_path(s: &str) -> String {
    decode(s, false)
}

fn decode(s: &str, plus_is_space: bool) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'+' if plus_is_space => out.push(b' '),
            b'%' if i + 2 < b.len() => {
                match u8::from_str_radix(std::str::from_utf8(&b[i + 1..i + 3]).unwrap_or("zz"), 16)
                {
                    Ok(v) => {
                        out.push(v);
                        i += 2;
                    }
                    Err(_) => out.push(b'%'),
                }
            }
            c => out.push(c),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn now() -> (String, i64) {
    let ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64);
    (http_date_like(ms), ms)
}

/// `25/Nov/2026:15:04:05 +0000`, API Gateway's `requestContext.time` format.
fn http_date_like(ms: i64) -> String {
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let secs = ms.div_euclid(1000);
    let days = secs.div_euclid(86400);
    let rem = secs.rem_euclid(86400);
    // Civil-from-days (Howard Hinnant's algorithm).
    let z = days + 719468;
    let era = z.div_euclid(146097);
    let doe = z - era * 146097;
    let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = if m <= 2 { y + 1 } else { y };
    format!(
        "{:02}/{}/{}:{:02}:{:02}:{:02} +0000",
        d,
        MONTHS[(m - 1) as usize],
        y,
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// Builds the event a function receives for a request.
pub fn request_event(version: PayloadVersion, r: &Request, m: &Matched, request_id: &str) -> Value {
    match version {
        PayloadVersion::V2 => v2(r, m, request_id),
        PayloadVersion::V1 => v1(r, m, request_id),
        PayloadVersion::Lambda => lambda_template(r, m),
    }
}

fn joined_headers(r: &Request) -> Map<String, Value> {
    let mut out: Map<String, Value> = Map::new();
    for (k, v) in &r.headers {
        if k == "cookie" {
            continue;
        }
        match out.get_mut(k) {
            Some(Value::String(prev)) => {
                prev.push(',');
                prev.push_str(v);
            }
            _ => {
                out.insert(k.clone(), Value::String(v.clone()));
            }
        }
    }
    out
}

fn v2(r: &Request, m: &Matched, request_id: &str) -> Value {
    let (time, epoch) = now();
    let mut headers = joined_headers(r);
    let cookies: Vec<Value> = r
        .headers
        .iter()
        .filter(|(k, _)| k == "cookie")
        .flat_map(|(_, v)| {
            v.split(';')
                .map(|c| Value::String(c.trim().to_owned()))
                .collect::<Vec<_>>()
        })
        .filter(|c| c.as_str().is_some_and(|s| !s.is_empty()))
        .collect();
    if let Some(c) = r.headers.iter().find(|(k, _)| k == "cookie") {
        // HTTP APIs move cookies to `cookies`; the header itself is not forwarded.
        let _ = c;
        headers.remove("cookie");
    }
    let mut qs: Map<String, Value> = Map::new();
    for (k, v) in parse_query(&r.query) {
        match qs.get_mut(&k) {
            Some(Value::String(prev)) => {
                prev.push(',');
                prev.push_str(&v);
            }
            _ => {
                qs.insert(k, Value::String(v));
            }
        }
    }
    let (body, b64) = body_field(r);
    let mut e = json!({
        "version": "2.0",
        "routeKey": m.route_key,
        "rawPath": r.path,
        "rawQueryString": r.query,
        "headers": headers,
        "requestContext": {
            "accountId": "123456789012",
            "apiId": "local",
            "domainName": r.domain,
            "domainPrefix": r.domain.split('.').next().unwrap_or("local"),
            "http": {
                "method": r.method,
                "path": r.path,
                "protocol": "HTTP/1.1",
                "sourceIp": r.source_ip,
                "userAgent": header(r, "user-agent").unwrap_or(""),
            },
            "requestId": request_id,
            "routeKey": m.route_key,
            "stage": "$default",
            "time": time,
            "timeEpoch": epoch,
        },
        "isBase64Encoded": b64,
    });
    let o = e.as_object_mut().expect("object");
    if !cookies.is_empty() {
        o.insert("cookies".into(), Value::Array(cookies));
    }
    if !qs.is_empty() {
        o.insert("queryStringParameters".into(), Value::Object(qs));
    }
    if !m.params.is_empty() {
        o.insert("pathParameters".into(), json!(m.params));
    }
    if !body.is_null() {
        o.insert("body".into(), body);
    }
    e
}

fn v1(r: &Request, m: &Matched, request_id: &str) -> Value {
    let (time, epoch) = now();
    let mut headers = Map::new();
    let mut multi: Map<String, Value> = Map::new();
    for (k, v) in &r.headers {
        headers.insert(k.clone(), Value::String(v.clone()));
        multi
            .entry(k.clone())
            .or_insert_with(|| Value::Array(vec![]))
            .as_array_mut()
            .expect("array")
            .push(Value::String(v.clone()));
    }
    let mut qs = Map::new();
    let mut mqs: Map<String, Value> = Map::new();
    for (k, v) in parse_query(&r.query) {
        qs.insert(k.clone(), Value::String(v.clone()));
        mqs.entry(k)
            .or_insert_with(|| Value::Array(vec![]))
            .as_array_mut()
            .expect("array")
            .push(Value::String(v));
    }
    let (body, b64) = body_field(r);
    let null_if_empty = |m: Map<String, Value>| {
        if m.is_empty() {
            Value::Null
        } else {
            Value::Object(m)
        }
    };
    json!({
        "resource": m.resource,
        "path": r.path,
        "httpMethod": r.method,
        "headers": null_if_empty(headers),
        "multiValueHeaders": null_if_empty(multi),
        "queryStringParameters": null_if_empty(qs),
        "multiValueQueryStringParameters": null_if_empty(mqs),
        "pathParameters": if m.params.is_empty() { Value::Null } else { json!(m.params) },
        "stageVariables": null,
        "requestContext": {
            "accountId": "123456789012",
            "apiId": "local",
            "domainName": r.domain,
            "httpMethod": r.method,
            "path": format!("/dev{}", r.path),
            "protocol": "HTTP/1.1",
            "requestId": request_id,
            "requestTime": time,
            "requestTimeEpoch": epoch,
            "resourcePath": m.resource,
            "stage": "dev",
            "identity": { "sourceIp": r.source_ip, "userAgent": header(r, "user-agent") },
        },
        "body": body,
        "isBase64Encoded": b64,
    })
}

/// The Serverless Framework's default request template for `integration: lambda`.
fn lambda_template(r: &Request, m: &Matched) -> Value {
    let body = if r.body.is_empty() {
        json!({})
    } else {
        serde_json::from_slice(&r.body)
            .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&r.body).into_owned()))
    };
    let headers: Map<String, Value> = r
        .headers
        .iter()
        .map(|(k, v)| (k.clone(), Value::String(v.clone())))
        .collect();
    let query: Map<String, Value> = parse_query(&r.query)
        .into_iter()
        .map(|(k, v)| (k, Value::String(v)))
        .collect();
    json!({
        "body": body,
        "method": r.method,
        "principalId": "",
        "stage": "dev",
        "cognitoPoolClaims": { "sub": "" },
        "enhancedAuthContext": {},
        "headers": headers,
        "query": query,
        "path": m.params,
        "identity": { "sourceIp": r.source_ip, "userAgent": header(r, "user-agent") },
        "stageVariables": {},
        "requestPath": m.resource,
    })
}

/// Maps a function's result to an HTTP response.
pub fn response(version: PayloadVersion, result: &[u8]) -> Response {
    let Ok(v) = serde_json::from_slice::<Value>(result) else {
        return Response::message(502, "Internal Server Error");
    };
    match version {
        PayloadVersion::Lambda => Response {
            status: 200,
            headers: vec![("content-type".into(), "application/json".into())],
            body: Bytes::from(v.to_string()),
        },
        PayloadVersion::V1 => match v.get("statusCode") {
            Some(_) => structured(&v),
            // A REST API proxy integration needs a statusCode.
            None => Response::message(502, "Internal server error"),
        },
        PayloadVersion::V2 => match v.as_object() {
            Some(o) if o.contains_key("statusCode") => structured(&v),
            // Payload 2.0 infers a response from any other valid JSON.
            _ => Response {
                status: 200,
                headers: vec![("content-type".into(), "application/json".into())],
                body: Bytes::from(match &v {
                    Value::String(s) => s.clone(),
                    other => other.to_string(),
                }),
            },
        },
    }
}

fn structured(v: &Value) -> Response {
    let status = v["statusCode"]
        .as_u64()
        .or_else(|| v["statusCode"].as_str().and_then(|s| s.parse().ok()))
        .unwrap_or(500);
    let Ok(status) = u16::try_from(status) else {
        return Response::message(502, "Internal Server Error");
    };
    let mut headers: Vec<(String, String)> = Vec::new();
    if let Some(h) = v["headers"].as_object() {
        for (k, val) in h {
            headers.push((k.to_ascii_lowercase(), scalar(val)));
        }
    }
    if let Some(h) = v["multiValueHeaders"].as_object() {
        for (k, vals) in h {
            for val in vals.as_array().into_iter().flatten() {
                headers.push((k.to_ascii_lowercase(), scalar(val)));
            }
        }
    }
    for c in v["cookies"].as_array().into_iter().flatten() {
        headers.push(("set-cookie".into(), scalar(c)));
    }
    let body = match &v["body"] {
        Value::Null => Bytes::new(),
        Value::String(s) if v["isBase64Encoded"] == Value::Bool(true) => {
            match base64::engine::general_purpose::STANDARD.decode(s) {
                Ok(b) => Bytes::from(b),
                Err(_) => return Response::message(502, "Internal Server Error"),
            }
        }
        Value::String(s) => Bytes::from(s.clone()),
        other => Bytes::from(other.to_string()),
    };
    if !headers.iter().any(|(k, _)| k == "content-type") && !body.is_empty() {
        headers.push(("content-type".into(), "application/json".into()));
    }
    Response {
        status,
        headers,
        body,
    }
}

fn scalar(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req() -> Request {
        Request {
            method: "POST".into(),
            path: "/items/42".into(),
            query: "a=1&b=x%20y&a=2".into(),
            headers: vec![
                ("content-type".into(), "application/json".into()),
                ("cookie".into(), "s=1; t=2".into()),
                ("x-multi".into(), "a".into()),
                ("x-multi".into(), "b".into()),
            ],
            body: Bytes::from_static(b"{\"n\":1}"),
            source_ip: "127.0.0.1".into(),
            domain: "127.0.0.1:3000".into(),
        }
    }

    fn matched() -> Matched {
        Matched {
            route_key: "POST /items/{id}".into(),
            resource: "/items/{id}".into(),
            params: [("id".to_owned(), "42".to_owned())].into(),
        }
    }

    #[test]
    fn payload_v2_shape() {
        let e = request_event(PayloadVersion::V2, &req(), &matched(), "rid");
        assert_eq!(e["version"], "2.0");
        assert_eq!(e["routeKey"], "POST /items/{id}");
        assert_eq!(e["rawQueryString"], "a=1&b=x%20y&a=2");
        assert_eq!(e["queryStringParameters"], json!({"a": "1,2", "b": "x y"}));
        assert_eq!(e["pathParameters"], json!({"id": "42"}));
        assert_eq!(e["cookies"], json!(["s=1", "t=2"]));
        assert_eq!(e["headers"]["x-multi"], "a,b");
        assert!(e["headers"].get("cookie").is_none());
        assert_eq!(e["body"], "{\"n\":1}");
        assert_eq!(e["isBase64Encoded"], false);
        assert_eq!(e["requestContext"]["http"]["method"], "POST");
    }

    #[test]
    fn binary_bodies_are_base64() {
        let mut r = req();
        r.headers[0].1 = "image/png".into();
        r.body = Bytes::from_static(&[0xff, 0x00, 0x01]);
        let e = request_event(PayloadVersion::V2, &r, &matched(), "rid");
        assert_eq!(e["isBase64Encoded"], true);
        assert_eq!(e["body"], "/wAB");
    }

    #[test]
    fn payload_v1_shape() {
        let e = request_event(PayloadVersion::V1, &req(), &matched(), "rid");
        assert_eq!(e["httpMethod"], "POST");
        assert_eq!(e["resource"], "/items/{id}");
        assert_eq!(e["multiValueQueryStringParameters"]["a"], json!(["1", "2"]));
        assert_eq!(e["queryStringParameters"]["a"], "2");
        assert_eq!(e["multiValueHeaders"]["x-multi"], json!(["a", "b"]));
    }

    #[test]
    fn responses() {
        let r = response(
            PayloadVersion::V2,
            br#"{"statusCode":201,"headers":{"X-A":"1"},"cookies":["c=1"],"body":"hi"}"#,
        );
        assert_eq!(r.status, 201);
        assert!(r.headers.contains(&("x-a".into(), "1".into())));
        assert!(r.headers.contains(&("set-cookie".into(), "c=1".into())));
        assert_eq!(r.body, "hi");
        let r = response(PayloadVersion::V2, br#"{"hello":"world"}"#);
        assert_eq!(
            (r.status, r.body.as_ref()),
            (200, br#"{"hello":"world"}"#.as_ref())
        );
        let r = response(PayloadVersion::V2, br#""plain""#);
        assert_eq!(r.body, "plain");
        let r = response(
            PayloadVersion::V2,
            br#"{"statusCode":200,"body":"AAE=","isBase64Encoded":true}"#,
        );
        assert_eq!(r.body.as_ref(), &[0u8, 1]);
        assert_eq!(response(PayloadVersion::V1, br#"{"hello":1}"#).status, 502);
        assert_eq!(response(PayloadVersion::V2, b"not json").status, 502);
    }

    #[test]
    fn path_segments_keep_plus() {
        assert_eq!(percent_decode_path("a+b%20c"), "a+b c");
        assert_eq!(percent_decode("a+b%20c"), "a b c");
    }

    #[test]
    fn dates() {
        assert_eq!(http_date_like(0), "01/Jan/1970:00:00:00 +0000");
        assert_eq!(
            http_date_like(1_795_000_000_000),
            "18/Nov/2026:11:06:40 +0000"
        );
    }
}
