//! Local queues with SQS semantics: messages become invisible for the visibility timeout when
//! received, come back when not deleted, and move to the dead-letter queue after
//! `maxReceives`. Functions with a queue trigger are fed batches, with partial batch failures
//! (`batchItemFailures`) honoured as with `ReportBatchItemFailures`.

use crate::pool::{self, Pool};
use axum::body::Bytes;
use serde_json::{json, Value};
use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::Notify;

/// One message.
#[derive(Debug, Clone)]
pub struct Message {
    /// Message id.
    pub id: String,
    /// Body.
    pub body: String,
    /// Receipt handle of the current receive.
    pub receipt: String,
    /// How often it was received.
    pub receives: u32,
    /// Epoch ms when it was sent.
    pub sent_ms: u128,
    /// When it may be received again.
    visible_at: Instant,
    /// Message attributes as SQS JSON (`{"k": {"DataType": "String", "StringValue": "v"}}`).
    pub attributes: Value,
}

/// A queue.
pub struct Queue {
    /// Local name (`service-stage-name`).
    pub name: String,
    /// `arn:aws:sqs:...`.
    pub arn: String,
    /// Seconds a received message stays invisible.
    pub visibility: Duration,
    /// Receives before a message moves to the dead-letter queue.
    pub max_receives: Option<u32>,
    /// The dead-letter queue.
    pub dlq: Option<Arc<Queue>>,
    messages: Mutex<VecDeque<Message>>,
    arrived: Notify,
}

pub use crate::records::{md5_hex, now_ms};

impl Queue {
    /// A new queue.
    pub fn new(
        name: String,
        region: &str,
        visibility: Duration,
        max_receives: Option<u32>,
        dlq: Option<Arc<Queue>>,
    ) -> Arc<Queue> {
        Arc::new(Queue {
            arn: format!("arn:aws:sqs:{region}:123456789012:{name}"),
            name,
            visibility,
            max_receives,
            dlq,
            messages: Mutex::new(VecDeque::new()),
            arrived: Notify::new(),
        })
    }

    /// Adds a message; returns its id.
    pub fn send(&self, body: String, attributes: Value, delay: Duration) -> String {
        let id = uuid::Uuid::new_v4().to_string();
        let m = Message {
            id: id.clone(),
            body,
            receipt: String::new(),
            receives: 0,
            sent_ms: now_ms(),
            visible_at: Instant::now() + delay,
            attributes,
        };
        self.messages.lock().expect("queue lock").push_back(m);
        self.arrived.notify_waiters();
        self.arrived.notify_one();
        id
    }

    /// Receives up to `max` visible messages, making them invisible for `visibility`.
    pub fn receive(&self, max: usize, visibility: Option<Duration>) -> Vec<Message> {
        let now = Instant::now();
        let vis = visibility.unwrap_or(self.visibility);
        let mut out = Vec::new();
        let mut dead = Vec::new();
        {
            let mut q = self.messages.lock().expect("queue lock");
            let mut i = 0;
            while i < q.len() && out.len() < max {
                if q[i].visible_at > now {
                    i += 1;
                    continue;
                }
                if let (Some(max_r), Some(_)) = (self.max_receives, &self.dlq) {
                    if q[i].receives >= max_r {
                        dead.extend(q.remove(i));
                        continue;
                    }
                }
                let m = &mut q[i];
                m.receives += 1;
                m.receipt = uuid::Uuid::new_v4().to_string();
                m.visible_at = now + vis;
                out.push(m.clone());
                i += 1;
            }
        }
        if let Some(dlq) = &self.dlq {
            for m in dead {
                dlq.send(m.body, m.attributes, Duration::ZERO);
            }
        }
        out
    }

    /// Deletes a received message by receipt handle.
    pub fn delete(&self, receipt: &str) -> bool {
        let mut q = self.messages.lock().expect("queue lock");
        let before = q.len();
        q.retain(|m| m.receipt != receipt || receipt.is_empty());
        q.len() != before
    }

    /// Makes a received message visible again at once (a failed batch item).
    pub fn release(&self, receipt: &str, after: Duration) {
        let mut q = self.messages.lock().expect("queue lock");
        if let Some(m) = q.iter_mut().find(|m| m.receipt == receipt) {
            m.visible_at = Instant::now() + after;
        }
        drop(q);
        self.arrived.notify_one();
    }

    /// Messages stored (visible or not).
    pub fn len(&self) -> usize {
        self.messages.lock().expect("queue lock").len()
    }

    /// Whether the queue holds no message.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Removes every message.
    pub fn purge(&self) {
        self.messages.lock().expect("queue lock").clear();
    }

    /// Waits until a message may be visible (or a short while passes).
    pub async fn wait(&self, max: Duration) {
        let _ = tokio::time::timeout(max, self.arrived.notified()).await;
    }

    /// The SQS event for a batch.
    pub fn event(&self, batch: &[Message], region: &str) -> Value {
        let records: Vec<Value> = batch
            .iter()
            .map(|m| {
                crate::records::sqs_record(&crate::records::QueueMessage {
                    id: &m.id,
                    receipt: &m.receipt,
                    body: &m.body,
                    receive_count: u64::from(m.receives),
                    sent_ms: m.sent_ms,
                    sender: "AIDAFERRYLOCAL",
                    attributes: m.attributes.clone(),
                    source: &self.arn,
                    region,
                })
            })
            .collect();
        json!({ "Records": records })
    }
}

/// Feeds a queue to a function, the way a Lambda event source mapping does.
pub async fn consume(
    queue: Arc<Queue>,
    pool: Arc<Pool>,
    batch_size: usize,
    window: Duration,
    region: String,
) {
    loop {
        let mut batch = queue.receive(batch_size, None);
        if batch.is_empty() {
            queue.wait(Duration::from_millis(200)).await;
            continue;
        }
        if batch.len() < batch_size && !window.is_zero() {
            tokio::time::sleep(window).await;
            batch.extend(queue.receive(batch_size - batch.len(), None));
        }
        let event = queue.event(&batch, &region);
        let result = pool
            .invoke(
                Bytes::from(event.to_string()),
                uuid::Uuid::new_v4().to_string(),
            )
            .await;
        // When the whole batch fails, every message comes back after the visibility timeout.
        if let pool::Result::Ok(body) = result {
            // Partial batch failures: the listed messages stay, the rest are deleted.
            let failed: Vec<String> = serde_json::from_slice::<Value>(&body)
                .ok()
                .and_then(|v| v.get("batchItemFailures").cloned())
                .and_then(|f| f.as_array().cloned())
                .unwrap_or_default()
                .iter()
                .filter_map(|f| f["itemIdentifier"].as_str().map(str::to_owned))
                .collect();
            for m in &batch {
                if failed.contains(&m.id) {
                    queue.release(&m.receipt, queue.visibility);
                } else {
                    queue.delete(&m.receipt);
                }
            }
        }
    }
}
