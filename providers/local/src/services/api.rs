//! The AWS APIs that clients call against `ferry dev`: SQS (JSON protocol, as current SDKs and
//! the aws CLI speak it), SNS `Publish` (query protocol) and S3 path-style object operations.

use super::storage::xml_escape;
use super::Services;
use axum::body::{Body, Bytes};
use axum::http::{HeaderMap, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{json, Value};
use std::time::Duration;

/// Dispatches a request that is not a Lambda `Invoke`.
pub async fn handle(
    s: &Services,
    method: Method,
    path: &str,
    query: &str,
    headers: &HeaderMap,
    body: Bytes,
) -> Response {
    if let Some(target) = headers.get("x-amz-target").and_then(|v| v.to_str().ok()) {
        if let Some(op) = target.strip_prefix("AmazonSQS.") {
            return sqs(s, op, &body).await;
        }
        if let Some(op) = target.strip_prefix("DynamoDB_20120810.") {
            let req: Value = serde_json::from_slice(&body).unwrap_or(json!({}));
            let (status, v) = match super::table::handle(&s.tables, op, &req) {
                Ok(v) => (200, v),
                Err((ty, message)) => (
                    400,
                    json!({ "__type": format!("com.amazonaws.dynamodb.v20120810#{ty}"), "message": message }),
                ),
            };
            return Response::builder()
                .status(status)
                .header("content-type", "application/x-amz-json-1.0")
                .body(Body::from(v.to_string()))
                .unwrap_or_else(|_| StatusCode::BAD_REQUEST.into_response());
        }
        if target == "secretsmanager.GetSecretValue" {
            return get_secret(s, &body);
        }
        return Response::builder()
            .status(400)
            .header("content-type", "application/x-amz-json-1.1")
            .body(Body::from(json!({ "__type": "UnknownOperationException", "message": format!("ferry dev does not emulate {target}") }).to_string()))
            .unwrap_or_else(|_| StatusCode::BAD_REQUEST.into_response());
    }
    let form = headers
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|c| c.starts_with("application/x-www-form-urlencoded"));
    if method == Method::POST && path == "/" && form {
        let params = crate::events::parse_query(&String::from_utf8_lossy(&body));
        let get = |k: &str| params.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone());
        return match get("Action").as_deref() {
            Some("Publish") => sns_publish(s, &params).await,
            Some(a) => xml_error(400, "InvalidAction", &format!("ferry dev does not emulate the query action {a}; use an SDK that speaks SQS's JSON protocol")),
            None => xml_error(400, "MissingAction", "no Action"),
        };
    }
    s3(s, method, path, query, headers, body)
}

fn json_response(v: Value) -> Response {
    (
        StatusCode::OK,
        [("content-type", "application/x-amz-json-1.0")],
        v.to_string(),
    )
        .into_response()
}

/// An SQS error in the JSON protocol: `__type` names the error, and `x-amzn-query-error`
/// carries the code the older query protocol used, which botocore reports as the error's
/// code (SQS's own: `AWS.SimpleQueueService.NonExistentQueue` for a missing queue, plain
/// `InvalidParameterValue`).
fn json_error(status: u16, code: &str, message: &str) -> Response {
    let query_code = match code {
        "QueueDoesNotExist" => "AWS.SimpleQueueService.NonExistentQueue".to_owned(),
        "InvalidParameterValue" => code.to_owned(),
        _ => format!("AWS.SimpleQueueService.{code}"),
    };
    Response::builder()
        .status(status)
        .header("content-type", "application/x-amz-json-1.0")
        .header("x-amzn-query-error", format!("{query_code};Sender"))
        .body(Body::from(
            json!({ "__type": format!("com.amazonaws.sqs#{code}"), "message": message })
                .to_string(),
        ))
        .unwrap_or_else(|_| StatusCode::BAD_REQUEST.into_response())
}

async fn sqs(s: &Services, op: &str, body: &[u8]) -> Response {
    let req: Value = serde_json::from_slice(body).unwrap_or(json!({}));
    let queue = || {
        req["QueueUrl"]
            .as_str()
            .and_then(|u| s.queue_by_url(u))
            .ok_or_else(|| {
                json_error(
                    400,
                    "QueueDoesNotExist",
                    "The specified queue does not exist.",
                )
            })
    };
    let attrs = |v: &Value| v.get("MessageAttributes").cloned().unwrap_or(json!({}));
    match op {
        "SendMessage" => match queue() {
            Ok(q) => {
                let body = req["MessageBody"].as_str().unwrap_or("").to_owned();
                let md5 = super::queue::md5_hex(&body);
                let delay = Duration::from_secs(req["DelaySeconds"].as_u64().unwrap_or(0));
                let id = q.send(body, attrs(&req), delay);
                json_response(json!({ "MessageId": id, "MD5OfMessageBody": md5 }))
            }
            Err(e) => e,
        },
        "SendMessageBatch" => match queue() {
            Ok(q) => {
                let mut ok = Vec::new();
                for e in req["Entries"].as_array().into_iter().flatten() {
                    let body = e["MessageBody"].as_str().unwrap_or("").to_owned();
                    let md5 = super::queue::md5_hex(&body);
                    let delay = Duration::from_secs(e["DelaySeconds"].as_u64().unwrap_or(0));
                    let id = q.send(body, attrs(e), delay);
                    ok.push(json!({ "Id": e["Id"], "MessageId": id, "MD5OfMessageBody": md5 }));
                }
                json_response(json!({ "Successful": ok, "Failed": [] }))
            }
            Err(e) => e,
        },
        "ReceiveMessage" => match queue() {
            Ok(q) => {
                let max = req["MaxNumberOfMessages"]
                    .as_u64()
                    .unwrap_or(1)
                    .clamp(1, 10) as usize;
                let vis = req["VisibilityTimeout"].as_u64().map(Duration::from_secs);
                let wait = req["WaitTimeSeconds"].as_u64().unwrap_or(0);
                if wait > 20 {
                    return json_error(
                        400,
                        "InvalidParameterValue",
                        "Value for parameter WaitTimeSeconds is invalid. Reason: Must be >= 0 and <= 20, if provided.",
                    );
                }
                // Long polling: up to WaitTimeSeconds for a message, looking again at least
                // every 200 ms (a delayed message becomes visible without a wake-up).
                let until = std::time::Instant::now() + Duration::from_secs(wait);
                let got = loop {
                    let got = q.receive(max, vis);
                    let left = until.saturating_duration_since(std::time::Instant::now());
                    if !got.is_empty() || left.is_zero() {
                        break got;
                    }
                    q.wait(left.min(Duration::from_millis(200))).await;
                };
                let msgs: Vec<Value> = got
                    .iter()
                    .map(|m| {
                        json!({
                            "MessageId": m.id, "ReceiptHandle": m.receipt, "MD5OfBody": super::queue::md5_hex(&m.body), "Body": m.body,
                            "Attributes": { "ApproximateReceiveCount": m.receives.to_string(), "SentTimestamp": m.sent_ms.to_string() },
                        })
                    })
                    .collect();
                json_response(if msgs.is_empty() {
                    json!({})
                } else {
                    json!({ "Messages": msgs })
                })
            }
            Err(e) => e,
        },
        "DeleteMessage" => match queue() {
            Ok(q) => {
                q.delete(req["ReceiptHandle"].as_str().unwrap_or(""));
                json_response(json!({}))
            }
            Err(e) => e,
        },
        "PurgeQueue" => match queue() {
            Ok(q) => {
                q.purge();
                json_response(json!({}))
            }
            Err(e) => e,
        },
        "GetQueueUrl" => {
            let name = req["QueueName"].as_str().unwrap_or("");
            if s.queues.contains_key(name) {
                json_response(json!({ "QueueUrl": s.queue_url(name) }))
            } else {
                json_error(
                    400,
                    "QueueDoesNotExist",
                    "The specified queue does not exist.",
                )
            }
        }
        "ListQueues" => json_response(
            json!({ "QueueUrls": s.queues.keys().map(|n| s.queue_url(n)).collect::<Vec<_>>() }),
        ),
        "GetQueueAttributes" => match queue() {
            Ok(q) => json_response(json!({ "Attributes": {
                "QueueArn": q.arn,
                "ApproximateNumberOfMessages": q.len().to_string(),
                "VisibilityTimeout": q.visibility.as_secs().to_string(),
            }})),
            Err(e) => e,
        },
        other => json_error(
            400,
            "UnsupportedOperation",
            &format!("ferry dev does not emulate SQS {other}"),
        ),
    }
}

/// Secrets Manager `GetSecretValue` for the service's `secret` services: the value comes
/// from `FERRY_SECRET_<NAME>` (as for deploys), else a local placeholder.
fn get_secret(s: &Services, body: &[u8]) -> Response {
    let req: Value = serde_json::from_slice(body).unwrap_or(json!({}));
    let id = req["SecretId"].as_str().unwrap_or("");
    let found = s.secrets.iter().find(|(name, arn)| {
        arn.as_str() == id || id.ends_with(&format!(":{}", name)) || id == name.as_str()
    });
    let Some((name, arn)) = found else {
        return Response::builder()
            .status(400)
            .header("content-type", "application/x-amz-json-1.1")
            .body(Body::from(json!({ "__type": "ResourceNotFoundException", "message": "Secrets Manager can't find the specified secret." }).to_string()))
            .unwrap_or_else(|_| StatusCode::BAD_REQUEST.into_response());
    };
    let value = super::secret_value(name);
    (
        StatusCode::OK,
        [("content-type", "application/x-amz-json-1.1")],
        json!({ "ARN": arn, "Name": name, "SecretString": value, "VersionId": "ferry-local", "VersionStages": ["AWSCURRENT"], "CreatedDate": 1.7e9 }).to_string(),
    )
        .into_response()
}

fn xml(status: u16, body: String) -> Response {
    Response::builder()
        .status(status)
        .header("content-type", "application/xml")
        .body(Body::from(body))
        .unwrap_or_else(|_| StatusCode::INTERNAL_SERVER_ERROR.into_response())
}

fn xml_error(status: u16, code: &str, message: &str) -> Response {
    xml(
        status,
        format!(
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>{}</Code><Message>{}</Message><RequestId>ferry</RequestId></Error>",
            xml_escape(code),
            xml_escape(message)
        ),
    )
}

async fn sns_publish(s: &Services, params: &[(String, String)]) -> Response {
    let get = |k: &str| params.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone());
    let arn = get("TopicArn")
        .or_else(|| get("TargetArn"))
        .unwrap_or_default();
    let Some(topic) = s.topics.get(&arn).cloned() else {
        return xml_error(404, "NotFound", "Topic does not exist");
    };
    let message = get("Message").unwrap_or_default();
    let subject = get("Subject");
    // MessageAttributes.entry.N.Name / .Value.DataType / .Value.StringValue
    let mut attributes = serde_json::Map::new();
    for n in 1.. {
        let Some(name) = get(&format!("MessageAttributes.entry.{n}.Name")) else {
            break;
        };
        let ty = get(&format!("MessageAttributes.entry.{n}.Value.DataType"))
            .unwrap_or_else(|| "String".into());
        let value =
            get(&format!("MessageAttributes.entry.{n}.Value.StringValue")).unwrap_or_default();
        attributes.insert(name, json!({ "Type": ty, "Value": value }));
    }
    let id = uuid::Uuid::new_v4().to_string();
    for sub in &topic.subscribers {
        if let Some(filter) = &sub.filter {
            let passes = filter
                .as_object()
                .into_iter()
                .flatten()
                .all(|(k, allowed)| {
                    let v = attributes.get(k).and_then(|a| a["Value"].as_str());
                    allowed.as_array().is_some_and(|a| {
                        a.iter().any(|x| Some(x.as_str().unwrap_or_default()) == v)
                    })
                });
            if !passes {
                continue;
            }
        }
        let subscription = format!("{}:{}", topic.arn, uuid::Uuid::new_v4());
        let event = crate::records::sns_event(&crate::records::Notification {
            topic: &topic.arn,
            subscription: &subscription,
            id: &id,
            subject: subject.as_deref(),
            message: &message,
            time: &crate::records::now_millis(),
            attributes: Value::Object(attributes.clone()),
            signature: "ferry-local",
        });
        let pool = sub.pool.clone();
        tokio::spawn(async move {
            let _ = pool
                .invoke(
                    Bytes::from(event.to_string()),
                    uuid::Uuid::new_v4().to_string(),
                )
                .await;
        });
    }
    xml(
        200,
        format!(
            "<PublishResponse xmlns=\"http://sns.amazonaws.com/doc/2010-03-31/\"><PublishResult><MessageId>{id}</MessageId></PublishResult><ResponseMetadata><RequestId>{}</RequestId></ResponseMetadata></PublishResponse>",
            uuid::Uuid::new_v4()
        ),
    )
}

/// Decodes an `aws-chunked` body (`<hex>[;chunk-signature=..]\r\n<data>\r\n...0\r\n<trailers>`).
fn aws_chunked(body: &[u8]) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    let mut i = 0;
    loop {
        let line_end = body[i..].windows(2).position(|w| w == b"\r\n")? + i;
        let size_text = std::str::from_utf8(&body[i..line_end]).ok()?;
        let size = usize::from_str_radix(size_text.split(';').next()?.trim(), 16).ok()?;
        i = line_end + 2;
        if size == 0 {
            return Some(out);
        }
        out.extend_from_slice(body.get(i..i + size)?);
        i += size + 2;
    }
}

/// A write the bucket's folder cannot take. S3 keeps `a` and `a/b` side by side, a folder
/// cannot: that conflict is the caller's to resolve (400, which SDKs do not retry); anything
/// else is the machine's (500).
fn key_conflict(key: &str, e: &std::io::Error) -> Response {
    use std::io::ErrorKind::{AlreadyExists, IsADirectory, NotADirectory};
    match e.kind() {
        NotADirectory | IsADirectory | AlreadyExists => xml_error(
            400,
            "InvalidRequest",
            &format!(
                "ferry dev keeps a bucket as a folder, where `a` and `a/b` cannot both exist (S3 allows it): the key `{key}` collides with an object on its path or with objects under it; rename one of them"
            ),
        ),
        _ => xml_error(500, "InternalError", &e.to_string()),
    }
}

/// A query parameter's value (empty for a bare `?uploads`).
fn param<'a>(params: &'a [(String, String)], name: &str) -> Option<&'a str> {
    params
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}

/// S3 sub-resources ferry's buckets do not keep (beyond `?location` and `?versioning` reads).
const SUBRESOURCES: &[&str] = &[
    "accelerate",
    "acl",
    "analytics",
    "attributes",
    "cors",
    "encryption",
    "intelligent-tiering",
    "inventory",
    "legal-hold",
    "lifecycle",
    "location",
    "logging",
    "metrics",
    "notification",
    "object-lock",
    "ownershipControls",
    "policy",
    "policyStatus",
    "publicAccessBlock",
    "replication",
    "requestPayment",
    "restore",
    "retention",
    "select",
    "tagging",
    "torrent",
    "versioning",
    "versions",
    "website",
];

/// An object's bytes as sent: `aws-chunked` bodies (botocore's streaming uploads with
/// checksum trailers) decoded.
fn object_bytes(headers: &HeaderMap, body: &Bytes) -> Vec<u8> {
    let chunked = headers
        .get("content-encoding")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.contains("aws-chunked"))
        || headers
            .get("x-amz-content-sha256")
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.starts_with("STREAMING-"));
    if chunked {
        aws_chunked(body).unwrap_or_else(|| body.to_vec())
    } else {
        body.to_vec()
    }
}

/// The bytes a copy reads: the object `x-amz-copy-source` names (`bucket/key`, URL-encoded,
/// perhaps with `?versionId=`), or the `x-amz-copy-source-range` of it (`UploadPartCopy`).
fn copy_source(s: &Services, headers: &HeaderMap) -> Result<Vec<u8>, Response> {
    let source = headers
        .get("x-amz-copy-source")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let source = source.split('?').next().unwrap_or("");
    let source = crate::events::percent_decode(&source.replace('+', "%2B"));
    let (bucket, key) = source
        .trim_start_matches('/')
        .split_once('/')
        .unwrap_or((&source, ""));
    let Some(from) = s.buckets.get(bucket) else {
        return Err(xml_error(
            404,
            "NoSuchBucket",
            &format!("The specified bucket does not exist: {bucket}"),
        ));
    };
    let data = from
        .path(key)
        .and_then(|f| std::fs::read(f).ok())
        .ok_or_else(|| xml_error(404, "NoSuchKey", "The specified key does not exist."))?;
    match headers
        .get("x-amz-copy-source-range")
        .and_then(|v| v.to_str().ok())
    {
        None => Ok(data),
        Some(range) => match byte_range(range, data.len()) {
            Ok(Some(span)) => Ok(data[span].to_vec()),
            _ => Err(xml_error(
                400,
                "InvalidArgument",
                "The x-amz-copy-source-range value must be of the form bytes=first-last where first and last are the zero-based offsets of the first and last bytes to copy",
            )),
        },
    }
}

/// S3's multipart upload (`CreateMultipartUpload`, `UploadPart`, `CompleteMultipartUpload`,
/// `AbortMultipartUpload`), which `aws s3 cp` and the SDKs' transfer managers use for large
/// files; None for any other request.
fn multipart(
    s: &Services,
    bucket: &super::storage::Bucket,
    key: &str,
    method: &Method,
    params: &[(String, String)],
    headers: &HeaderMap,
    body: &Bytes,
) -> Option<Response> {
    use super::storage::UploadError;
    let param = |name: &str| param(params, name);
    let no_upload = || {
        xml_error(
            404,
            "NoSuchUpload",
            "The specified upload does not exist. The upload ID may be invalid, or the upload may have been aborted or completed.",
        )
    };
    let names = format!(
        "<Bucket>{}</Bucket><Key>{}</Key>",
        xml_escape(&bucket.name),
        xml_escape(key)
    );
    let r = match (method, param("uploads"), param("uploadId")) {
        (&Method::POST, Some(_), _) => match bucket.begin_upload(key) {
            Ok(id) => xml(200, format!(
                "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<InitiateMultipartUploadResult xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\">{names}<UploadId>{id}</UploadId></InitiateMultipartUploadResult>"
            )),
            Err(e) => xml_error(500, "InternalError", &e.to_string()),
        },
        (&Method::PUT, _, Some(id)) => {
            let Some(n) = param("partNumber")
                .and_then(|n| n.parse::<u32>().ok())
                .filter(|n| (1..=10_000).contains(n))
            else {
                return Some(xml_error(
                    400,
                    "InvalidArgument",
                    "Part number must be an integer between 1 and 10000, inclusive",
                ));
            };
            // UploadPartCopy: the part is (a range of) another object.
            let copied = headers.contains_key("x-amz-copy-source");
            let data = if copied {
                match copy_source(s, headers) {
                    Ok(data) => data,
                    Err(r) => return Some(r),
                }
            } else {
                object_bytes(headers, body)
            };
            match bucket.put_part(id, key, n, &data) {
                Ok(Some(etag)) if copied => xml(200, format!(
                    "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<CopyPartResult><LastModified>2026-01-01T00:00:00.000Z</LastModified><ETag>&quot;{etag}&quot;</ETag></CopyPartResult>"
                )),
                Ok(Some(etag)) => Response::builder()
                    .status(200)
                    .header("etag", format!("\"{etag}\""))
                    .body(Body::empty())
                    .unwrap_or_else(|_| StatusCode::OK.into_response()),
                Ok(None) => no_upload(),
                Err(e) => xml_error(500, "InternalError", &e.to_string()),
            }
        }
        (&Method::POST, _, Some(id)) => {
            let parts = listed_parts(&String::from_utf8_lossy(body));
            match bucket.complete_upload(id, key, &parts) {
                Ok((size, etag)) => {
                    bucket.notify(key, Some((size, &etag)), "CompleteMultipartUpload", &s.region);
                    xml(200, format!(
                        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<CompleteMultipartUploadResult xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\"><Location>{}/{}/{}</Location>{names}<ETag>&quot;{etag}&quot;</ETag></CompleteMultipartUploadResult>",
                        xml_escape(&s.endpoint), xml_escape(&bucket.name), xml_escape(key)
                    ))
                }
                Err(UploadError::NoSuchUpload) => no_upload(),
                Err(UploadError::InvalidPart(n)) => xml_error(
                    400,
                    "InvalidPart",
                    &format!("One or more of the specified parts could not be found. The part may not have been uploaded, or the specified entity tag may not match the part's entity tag. (part {n})"),
                ),
                Err(UploadError::InvalidPartOrder) => xml_error(
                    400,
                    "InvalidPartOrder",
                    "The list of parts was not in ascending order. Parts must be ordered by part number.",
                ),
                Err(UploadError::EntityTooSmall(n)) => xml_error(
                    400,
                    "EntityTooSmall",
                    &format!("Your proposed upload is smaller than the minimum allowed object size. (part {n}: every part but the last must be at least 5 MB)"),
                ),
                Err(UploadError::Io(e)) => xml_error(500, "InternalError", &e),
            }
        }
        (&Method::DELETE, _, Some(id)) => {
            if bucket.abort_upload(id, key) {
                StatusCode::NO_CONTENT.into_response()
            } else {
                no_upload()
            }
        }
        _ => return None,
    };
    Some(r)
}

/// The bytes a `Range` header asks for of an object of `total` bytes: `Ok(None)` for a header
/// S3 ignores (not one `bytes=` range), `Err(())` for a range that starts past the end.
fn byte_range(header: &str, total: usize) -> Result<Option<std::ops::Range<usize>>, ()> {
    let Some((first, last)) = header
        .trim()
        .strip_prefix("bytes=")
        .filter(|r| !r.contains(','))
        .and_then(|r| r.split_once('-'))
    else {
        return Ok(None);
    };
    let (first, last) = (first.trim(), last.trim());
    let span = match (first.parse::<usize>(), last.parse::<usize>()) {
        // The last n bytes.
        (Err(_), Ok(n)) if first.is_empty() => total.saturating_sub(n)..total,
        (Ok(a), Err(_)) if last.is_empty() => a..total,
        (Ok(a), Ok(b)) if a <= b => a..(b + 1).min(total),
        _ => return Ok(None),
    };
    if span.start >= total && !(total == 0 && first.is_empty()) {
        return Err(());
    }
    Ok(Some(span))
}

/// Text from an XML element, its entities decoded.
fn xml_unescape(s: &str) -> String {
    s.replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&apos;", "'")
        .replace("&#34;", "\"")
        .replace("&#39;", "'")
        .replace("&amp;", "&")
}

/// The parts a `CompleteMultipartUpload` body lists: (number, ETag), in the order given.
fn listed_parts(xml: &str) -> Vec<(u32, String)> {
    let inside = |text: &str, tag: &str| -> Option<String> {
        let start = text.find(&format!("<{tag}>"))? + tag.len() + 2;
        let end = text[start..].find(&format!("</{tag}>"))? + start;
        Some(xml_unescape(text[start..end].trim()))
    };
    xml.split("<Part>")
        .skip(1)
        .filter_map(|part| {
            let n = inside(part, "PartNumber")?.parse().ok()?;
            Some((n, inside(part, "ETag").unwrap_or_default()))
        })
        .collect()
}

fn s3(
    s: &Services,
    method: Method,
    path: &str,
    query: &str,
    headers: &HeaderMap,
    body: Bytes,
) -> Response {
    let path = crate::events::percent_decode(&path.replace('+', "%2B"));
    let trimmed = path.trim_start_matches('/');
    if trimmed.is_empty() {
        let buckets: String = s.buckets.keys().map(|b| format!("<Bucket><Name>{}</Name><CreationDate>2026-01-01T00:00:00.000Z</CreationDate></Bucket>", xml_escape(b))).collect();
        return xml(200, format!("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<ListAllMyBucketsResult><Owner><ID>ferry</ID></Owner><Buckets>{buckets}</Buckets></ListAllMyBucketsResult>"));
    }
    let (bucket_name, key) = trimmed.split_once('/').unwrap_or((trimmed, ""));
    let Some(bucket) = s.buckets.get(bucket_name).cloned() else {
        return xml_error(
            404,
            "NoSuchBucket",
            &format!("The specified bucket does not exist: {bucket_name}"),
        );
    };
    // Sub-resources (`?acl`, `?tagging`, `?policy`, ...) are other operations on the same
    // path: acting on the object or the listing instead (a PutObjectTagging that overwrote
    // the object, a DeleteObjectTagging that deleted it) would lose data. The two that cost
    // nothing to answer are answered; the rest are refused.
    let params = crate::events::parse_query(query);
    let sub = params
        .iter()
        .map(|(k, _)| k.as_str())
        .find(|k| SUBRESOURCES.contains(k));
    match (sub, key.is_empty(), &method) {
        (None, ..) => {}
        (Some("location"), true, &Method::GET) => {
            return xml(200, format!(
                "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<LocationConstraint xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\">{}</LocationConstraint>",
                if s.region == "us-east-1" { "" } else { s.region.as_str() }
            ))
        }
        (Some("versioning"), true, &Method::GET) => {
            return xml(200, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<VersioningConfiguration xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\"/>".into())
        }
        (Some(sub), ..) => {
            return xml_error(
                501,
                "NotImplemented",
                &format!("ferry dev's S3 does not emulate the ?{sub} operations ({method} {path})"),
            )
        }
    }
    if key.is_empty() {
        return match method {
            Method::GET => {
                let prefix = param(&params, "prefix").unwrap_or("");
                let delimiter = param(&params, "delimiter").filter(|d| !d.is_empty());
                // With a delimiter, keys that go on past it after the prefix roll up into
                // one common prefix each (the "folders" `aws s3 ls` shows as PRE).
                let mut contents = String::new();
                let mut prefixes: Vec<String> = Vec::new();
                let mut count = 0;
                for (k, size) in bucket.list(prefix) {
                    let folder = delimiter.and_then(|d| {
                        k[prefix.len()..]
                            .find(d)
                            .map(|i| k[..prefix.len() + i + d.len()].to_owned())
                    });
                    match folder {
                        Some(f) if prefixes.last() != Some(&f) => prefixes.push(f),
                        Some(_) => {}
                        None => {
                            count += 1;
                            contents.push_str(&format!("<Contents><Key>{}</Key><Size>{size}</Size><StorageClass>STANDARD</StorageClass><LastModified>2026-01-01T00:00:00.000Z</LastModified></Contents>", xml_escape(&k)));
                        }
                    }
                }
                let common: String = prefixes
                    .iter()
                    .map(|p| {
                        format!(
                            "<CommonPrefixes><Prefix>{}</Prefix></CommonPrefixes>",
                            xml_escape(p)
                        )
                    })
                    .collect();
                let delimiter = delimiter
                    .map(|d| format!("<Delimiter>{}</Delimiter>", xml_escape(d)))
                    .unwrap_or_default();
                xml(200, format!(
                    "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<ListBucketResult xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\"><Name>{}</Name><Prefix>{}</Prefix>{delimiter}<KeyCount>{}</KeyCount><MaxKeys>1000</MaxKeys><IsTruncated>false</IsTruncated>{contents}{common}</ListBucketResult>",
                    xml_escape(bucket_name), xml_escape(prefix), count + prefixes.len()
                ))
            }
            // DeleteObjects (`aws s3 rm --recursive`): every listed key, each one's event.
            Method::POST if param(&params, "delete").is_some() => {
                let text = String::from_utf8_lossy(&body);
                let mut deleted = String::new();
                for object in text.split("<Object>").skip(1) {
                    let Some(key) = object
                        .split_once("<Key>")
                        .and_then(|(_, rest)| rest.split_once("</Key>"))
                        .map(|(k, _)| xml_unescape(k))
                    else {
                        continue;
                    };
                    if let Some(file) = bucket.path(&key) {
                        if std::fs::remove_file(&file).is_ok() {
                            bucket.notify(&key, None, "Delete", &s.region);
                        }
                    }
                    deleted.push_str(&format!(
                        "<Deleted><Key>{}</Key></Deleted>",
                        xml_escape(&key)
                    ));
                }
                xml(200, format!(
                    "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<DeleteResult xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\">{deleted}</DeleteResult>"
                ))
            }
            Method::PUT | Method::HEAD => StatusCode::OK.into_response(),
            _ => xml_error(405, "MethodNotAllowed", "not supported on a bucket"),
        };
    }
    let Some(file) = bucket.path(key) else {
        return xml_error(400, "InvalidKey", "invalid key");
    };
    if let Some(r) = multipart(s, &bucket, key, &method, &params, headers, &body) {
        return r;
    }
    match method {
        Method::PUT => {
            // CopyObject: the bytes come from the object `x-amz-copy-source` names.
            let copied = headers.contains_key("x-amz-copy-source");
            let data = if copied {
                match copy_source(s, headers) {
                    Ok(data) => data,
                    Err(r) => return r,
                }
            } else {
                object_bytes(headers, &body)
            };
            // A "folder" marker (an empty object whose key ends in `/`) is the folder itself.
            if key.ends_with('/') && data.is_empty() {
                return match std::fs::create_dir_all(&file) {
                    Ok(()) => Response::builder()
                        .status(200)
                        .header("etag", format!("\"{}\"", super::queue::md5_hex(b"")))
                        .body(Body::empty())
                        .unwrap_or_else(|_| StatusCode::OK.into_response()),
                    Err(e) => key_conflict(key, &e),
                };
            }
            if let Err(e) = bucket.put(&file, &data) {
                return key_conflict(key, &e);
            }
            let etag = super::queue::md5_hex(&data);
            let how = if copied { "Copy" } else { "Put" };
            bucket.notify(key, Some((data.len() as u64, &etag)), how, &s.region);
            if copied {
                return xml(200, format!(
                    "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<CopyObjectResult><LastModified>2026-01-01T00:00:00.000Z</LastModified><ETag>&quot;{etag}&quot;</ETag></CopyObjectResult>"
                ));
            }
            Response::builder()
                .status(200)
                .header("etag", format!("\"{etag}\""))
                .body(Body::empty())
                .unwrap_or_else(|_| StatusCode::OK.into_response())
        }
        Method::GET | Method::HEAD => match std::fs::read(&file) {
            Ok(data) => {
                let total = data.len();
                // `Range: bytes=a-b` (also `a-` and `-n`): what the CLI's and SDKs' downloads of
                // large objects ask for, part by part.
                let range = headers
                    .get("range")
                    .and_then(|v| v.to_str().ok())
                    .map(|r| byte_range(r, total));
                let (status, span) = match range {
                    None | Some(Ok(None)) => (200, 0..total),
                    Some(Ok(Some(span))) => (206, span),
                    Some(Err(())) => {
                        return xml_error(
                            416,
                            "InvalidRange",
                            "The requested range is not satisfiable",
                        )
                    }
                };
                let mut b = Response::builder()
                    .status(status)
                    .header("etag", format!("\"{}\"", super::queue::md5_hex(&data)))
                    .header("content-length", span.len())
                    .header("accept-ranges", "bytes")
                    .header("last-modified", "Thu, 01 Jan 2026 00:00:00 GMT")
                    .header("content-type", "application/octet-stream");
                if status == 206 {
                    b = b.header(
                        "content-range",
                        format!("bytes {}-{}/{total}", span.start, span.end - 1),
                    );
                }
                let body = if method == Method::HEAD {
                    Body::empty()
                } else if status == 206 {
                    Body::from(Bytes::from(data).slice(span))
                } else {
                    Body::from(data)
                };
                b.body(body)
                    .unwrap_or_else(|_| StatusCode::OK.into_response())
            }
            Err(_) if method == Method::HEAD => StatusCode::NOT_FOUND.into_response(),
            Err(_) => xml_error(404, "NoSuchKey", "The specified key does not exist."),
        },
        Method::DELETE => {
            if std::fs::remove_file(&file).is_ok() {
                bucket.notify(key, None, "Delete", &s.region);
            }
            StatusCode::NO_CONTENT.into_response()
        }
        _ => xml_error(405, "MethodNotAllowed", "not supported"),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn byte_ranges() {
        use super::byte_range;
        assert_eq!(byte_range("bytes=0-9", 100), Ok(Some(0..10)));
        assert_eq!(byte_range("bytes=90-200", 100), Ok(Some(90..100)));
        assert_eq!(byte_range("bytes=95-", 100), Ok(Some(95..100)));
        assert_eq!(byte_range("bytes=-10", 100), Ok(Some(90..100)));
        assert_eq!(byte_range("bytes=-500", 100), Ok(Some(0..100)));
        assert_eq!(byte_range("bytes=100-", 100), Err(()));
        // Ignored, as S3 ignores them: several ranges, other units, nonsense.
        for ignored in ["bytes=0-1,5-6", "items=0-1", "bytes=5-2", "bytes=x-y"] {
            assert_eq!(byte_range(ignored, 100), Ok(None), "{ignored}");
        }
    }

    #[test]
    fn listed_parts_in_order() {
        let body = r#"<CompleteMultipartUpload xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><Part><ETag>&quot;aa&quot;</ETag><PartNumber>1</PartNumber></Part><Part><PartNumber>2</PartNumber><ETag>"bb"</ETag></Part></CompleteMultipartUpload>"#;
        assert_eq!(
            super::listed_parts(body),
            [(1, "\"aa\"".to_owned()), (2, "\"bb\"".to_owned())]
        );
    }

    #[test]
    fn aws_chunked_bodies_decode() {
        let body = b"5;chunk-signature=abc\r\nhello\r\n6\r\n world\r\n0\r\nx-amz-checksum-crc32:abc=\r\n\r\n";
        assert_eq!(super::aws_chunked(body).unwrap(), b"hello world");
    }
}
