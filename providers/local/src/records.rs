//! The events of non-HTTP triggers in the shape Lambda gives them: SQS messages, S3
//! notifications, SNS notifications and EventBridge's Scheduled Event. `ferry dev` builds them
//! from its local queues, folders, topics and timers; the cloud adapters (Azure's custom
//! handler, Cloud Run's `ferry-adapter`) build them from what Azure or Google delivered. One
//! builder per shape, so a handler sees the same fields wherever it runs.

use serde_json::{json, Value};

/// One queue message.
#[derive(Debug, Clone)]
pub struct QueueMessage<'a> {
    /// Message id (also the receipt handle).
    pub id: &'a str,
    /// Receipt handle.
    pub receipt: &'a str,
    /// The body as text.
    pub body: &'a str,
    /// Deliveries so far, this one included.
    pub receive_count: u64,
    /// When it was sent (epoch milliseconds).
    pub sent_ms: u128,
    /// `SenderId` (who sent it).
    pub sender: &'a str,
    /// Message attributes in SQS's shape (`{"k": {"stringValue": ..., "dataType": ...}}`).
    pub attributes: Value,
    /// The queue's ARN (or its name on another cloud).
    pub source: &'a str,
    /// Region.
    pub region: &'a str,
}

/// Lower-case hex MD5 of a string, as SQS reports `MD5OfMessageBody` (clients verify it).
pub fn md5_hex(s: impl AsRef<[u8]>) -> String {
    use md5::{Digest, Md5};
    hex(&Md5::digest(s.as_ref()))
}

/// Bytes (a digest) as lower-case hex.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Now, in epoch milliseconds.
pub fn now_ms() -> u128 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis())
}

/// One record of an SQS event.
pub fn sqs_record(m: &QueueMessage<'_>) -> Value {
    json!({
        "messageId": m.id,
        "receiptHandle": m.receipt,
        "body": m.body,
        "attributes": {
            "ApproximateReceiveCount": m.receive_count.to_string(),
            "SentTimestamp": m.sent_ms.to_string(),
            "SenderId": m.sender,
            "ApproximateFirstReceiveTimestamp": now_ms().to_string(),
        },
        "messageAttributes": m.attributes,
        "md5OfBody": md5_hex(m.body),
        "eventSource": "aws:sqs",
        "eventSourceARN": m.source,
        "awsRegion": m.region,
    })
}

/// S3 event keys are URL-encoded with spaces as `+`, slashes kept.
pub fn encode_key(key: &str) -> String {
    let mut out = String::new();
    for b in key.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' | b'/' => {
                out.push(b as char)
            }
            b' ' => out.push('+'),
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

/// One object change.
#[derive(Debug, Clone)]
pub struct ObjectChange<'a> {
    /// Bucket name as the handler knows it.
    pub bucket: &'a str,
    /// Bucket ARN (or its name on another cloud).
    pub bucket_arn: &'a str,
    /// Object key, not encoded.
    pub key: &'a str,
    /// Created (or overwritten) rather than removed.
    pub created: bool,
    /// Size in bytes (created objects only).
    pub size: u64,
    /// Hex MD5 or the store's etag (created objects only).
    pub etag: &'a str,
    /// S3's sequencer: hex digits that order changes of one key.
    pub sequencer: &'a str,
    /// When it happened (ISO 8601).
    pub time: &'a str,
    /// Who did it.
    pub principal: &'a str,
    /// The notification's id.
    pub configuration: &'a str,
    /// The client address.
    pub source_ip: &'a str,
    /// Region.
    pub region: &'a str,
}

/// The S3 notification event for one change.
pub fn s3_event(o: &ObjectChange<'_>) -> Value {
    let mut object = json!({"key": encode_key(o.key), "sequencer": o.sequencer});
    if o.created {
        object["size"] = json!(o.size);
        object["eTag"] = json!(o.etag);
    }
    json!({"Records": [{
        "eventVersion": "2.1",
        "eventSource": "aws:s3",
        "awsRegion": o.region,
        "eventTime": o.time,
        "eventName": if o.created { "ObjectCreated:Put" } else { "ObjectRemoved:Delete" },
        "userIdentity": {"principalId": o.principal},
        "requestParameters": {"sourceIPAddress": o.source_ip},
        "responseElements": {},
        "s3": {
            "s3SchemaVersion": "1.0",
            "configurationId": o.configuration,
            "bucket": {"name": o.bucket, "ownerIdentity": {"principalId": o.principal}, "arn": o.bucket_arn},
            "object": object,
        },
    }]})
}

/// One topic message to one subscriber.
#[derive(Debug, Clone)]
pub struct Notification<'a> {
    /// The topic's ARN (or its name on another cloud).
    pub topic: &'a str,
    /// The subscription's ARN.
    pub subscription: &'a str,
    /// Message id.
    pub id: &'a str,
    /// Subject, when the publisher gave one.
    pub subject: Option<&'a str>,
    /// The message.
    pub message: &'a str,
    /// When it was published (ISO 8601).
    pub time: &'a str,
    /// Message attributes in SNS's shape (`{"k": {"Type": "String", "Value": ...}}`).
    pub attributes: Value,
    /// `Signature` (ferry cannot sign as SNS does).
    pub signature: &'a str,
}

/// The SNS event for one notification.
pub fn sns_event(n: &Notification<'_>) -> Value {
    json!({"Records": [{
        "EventSource": "aws:sns",
        "EventVersion": "1.0",
        "EventSubscriptionArn": n.subscription,
        "Sns": {
            "Type": "Notification",
            "MessageId": n.id,
            "TopicArn": n.topic,
            "Subject": n.subject,
            "Message": n.message,
            "Timestamp": n.time,
            "SignatureVersion": "1",
            "Signature": n.signature,
            "MessageAttributes": n.attributes,
        },
    }]})
}

/// EventBridge's Scheduled Event, or the trigger's fixed `input` instead.
pub fn scheduled_event(
    id: &str,
    account: &str,
    time: &str,
    region: &str,
    rule: &str,
    input: Option<&Value>,
) -> Value {
    if let Some(i) = input.filter(|i| !i.is_null()) {
        return i.clone();
    }
    json!({
        "version": "0",
        "id": id,
        "detail-type": "Scheduled Event",
        "source": "aws.events",
        "account": account,
        "time": time,
        "region": region,
        "resources": [rule],
        "detail": {},
    })
}

/// UTC now as EventBridge writes times (`2026-12-05T09:00:00Z`).
pub fn now_seconds() -> String {
    chrono::Utc::now().format("%Y-%m-%dT%H:%M:%SZ").to_string()
}

/// UTC now as S3 and SNS write times (`2026-12-05T09:00:00.123Z`).
pub fn now_millis() -> String {
    chrono::Utc::now()
        .format("%Y-%m-%dT%H:%M:%S%.3fZ")
        .to_string()
}

/// Whether a queue handler's result reports failed messages (`batchItemFailures`).
pub fn reports_failures(result: &[u8]) -> bool {
    serde_json::from_slice::<Value>(result)
        .ok()
        .and_then(|v| v["batchItemFailures"].as_array().map(|a| !a.is_empty()))
        .unwrap_or(false)
}
