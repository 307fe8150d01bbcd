//! Local stand-ins for the services a function uses and the triggers they drive: queues
//! (SQS), buckets (S3), topics (SNS) and schedules (EventBridge), with the AWS APIs that real
//! clients call against them.

pub mod api;
pub mod expr;
pub mod queue;
pub mod schedule;
pub mod storage;
pub mod table;

use crate::pool::Pool;
use std::collections::BTreeMap;
use std::sync::Arc;

/// A function subscribed to a topic.
#[derive(Clone)]
pub struct TopicSubscriber {
    /// The function.
    pub pool: Arc<Pool>,
    /// SNS filter policy on message attributes (exact string matches only).
    pub filter: Option<serde_json::Value>,
}

/// A topic.
pub struct Topic {
    /// Physical name.
    pub name: String,
    /// `arn:aws:sns:...`.
    pub arn: String,
    /// Subscribed functions.
    pub subscribers: Vec<TopicSubscriber>,
}

/// Every local service.
#[derive(Default)]
pub struct Services {
    /// Queues by physical name (dead-letter queues included).
    pub queues: BTreeMap<String, Arc<queue::Queue>>,
    /// Buckets by physical name.
    pub buckets: BTreeMap<String, Arc<storage::Bucket>>,
    /// Topics by ARN.
    pub topics: BTreeMap<String, Arc<Topic>>,
    /// Tables by physical name.
    pub tables: BTreeMap<String, Arc<table::Table>>,
    /// Secrets: physical name → ARN.
    pub secrets: BTreeMap<String, String>,
    /// Region for events and ARNs.
    pub region: String,
    /// `http://host:port` of the AWS endpoints, for queue URLs.
    pub endpoint: String,
}

impl Services {
    /// The URL of a queue, as SQS gives it.
    pub fn queue_url(&self, physical: &str) -> String {
        format!("{}/123456789012/{physical}", self.endpoint)
    }

    /// The queue a URL (or a bare name) names.
    pub fn queue_by_url(&self, url: &str) -> Option<Arc<queue::Queue>> {
        let name = url.trim_end_matches('/').rsplit('/').next().unwrap_or(url);
        self.queues.get(name).cloned()
    }
}

/// Physical names, the same locally as when deployed: `service-stage-name`, lower-cased for
/// buckets (S3 names are lower-case).
pub fn physical(service: &str, stage: &str, name: &str) -> String {
    format!("{service}-{stage}-{name}")
}

/// The environment variable that holds a secret's value, shared with deploys.
pub fn secret_env(service_name: &str) -> String {
    ferry_core::model::secret_value_env(service_name)
}

/// A secret's local value: from its `FERRY_SECRET_*` variable, else a placeholder.
pub fn secret_value(physical: &str) -> String {
    // The physical name is `service-stage-name`; the variable uses the service's own name.
    let short = physical.splitn(3, '-').nth(2).unwrap_or(physical);
    std::env::var(secret_env(short)).unwrap_or_else(|_| format!("ferry-local-placeholder-{short}"))
}
