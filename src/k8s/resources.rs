//! The custom resources: `Queue` and `Subscription` (group `ferromq.dev`, version `v1alpha1`).
//! Ranges and enums sit in the schema and rules spanning fields are CEL, so the API server
//! refuses a bad manifest before the controller sees it; standalone mode checks the same rules.

// Printer columns repeat `type_ = "string"`, which this lint takes for a repeated attribute.
#![allow(clippy::duplicated_attributes)]

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use kube::{CustomResource, KubeSchema, ResourceExt};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// A queue, declared. Its IronMQ project is its namespace unless `project` names another.
#[derive(CustomResource, KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[kube(
    group = "ferromq.dev",
    version = "v1alpha1",
    kind = "Queue",
    namespaced,
    status = "QueueStatus",
    shortname = "mq",
    category = "ferromq",
    doc = "A message queue served over the IronMQ v3 API",
    printcolumn(name = "Type", type_ = "string", json_path = ".spec.type"),
    printcolumn(name = "Size", type_ = "integer", json_path = ".status.size"),
    printcolumn(
        name = "Ready",
        type_ = "string",
        json_path = ".status.conditions[?(@.type==\"Ready\")].status"
    ),
    printcolumn(name = "Age", type_ = "date", json_path = ".metadata.creationTimestamp"),
    validation = Rule::new(
        "!has(self.spec.push) || !has(self.spec.push.errorQueue) || self.spec.push.errorQueue != self.metadata.name"
    ).message("spec.push.errorQueue may not name the queue itself").field_path(".spec.push.errorQueue"),
    validation = Rule::new(
        "!has(self.spec.deadLetter) || self.spec.deadLetter.queueName != self.metadata.name"
    ).message("spec.deadLetter.queueName may not name the queue itself").field_path(".spec.deadLetter.queueName"),
    validation = Rule::new(
        "!has(self.spec.alerts) || self.spec.alerts.all(a, a.queue != self.metadata.name || (a.type == 'fixed' && a.direction == 'asc'))"
    ).message("a progressive or desc alert may not post to its own queue").field_path(".spec.alerts"),
)]
#[x_kube(
    validation = Rule::new("!has(self.push) || (has(self.type) && self.type != 'pull')")
        .message("push settings need type unicast or multicast")
        .field_path(".push"),
    validation = Rule::new("!has(self.deadLetter) || !has(self.type) || self.type == 'pull'")
        .message("deadLetter is for pull queues: push queues have push.errorQueue")
        .field_path(".deadLetter"),
    validation = Rule::new("!has(self.alerts) || size(self.alerts) == 0 || !has(self.type) || self.type == 'pull'")
        .message("alerts are for pull queues")
        .field_path(".alerts"),
    validation = Rule::new(
        "!has(self.alerts) || self.alerts.all(a, self.alerts.exists_one(b, b.type == a.type && b.direction == a.direction && b.trigger == a.trigger))"
    ).message("two alerts may not share type, direction and trigger").field_path(".alerts"),
    validation = Rule::new(
        "has(self.project) == has(oldSelf.project) && (!has(self.project) || self.project == oldSelf.project)"
    ).message("spec.project cannot change: delete the Queue and create it again").field_path(".project"),
)]
#[serde(rename_all = "camelCase")]
pub struct QueueSpec {
    /// `pull` (consumers reserve messages), `unicast` (each message is pushed to one
    /// subscriber) or `multicast` (to every subscriber).
    #[serde(default, rename = "type")]
    pub queue_type: QueueKind,
    /// IronMQ project id of the queue; the namespace by default. Cannot change.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = r"^[A-Za-z0-9_.-]{1,64}$"))]
    pub project: Option<String>,
    /// Seconds a reserved message stays invisible before it returns (default 60).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 30, max = 86400))]
    pub message_timeout: Option<u64>,
    /// Seconds a message lives before it is dropped (default 604800, seven days).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 2592000))]
    pub message_expiration: Option<u64>,
    /// Largest message body in bytes (posts above it answer 413); the server's own limit,
    /// `FERROMQ_MAX_MESSAGE_SIZE`, applies as well. Default: that limit only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 16777216))]
    pub max_message_size: Option<u64>,
    /// How push queues deliver; subscribers come from the Subscriptions naming this queue.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub push: Option<PushSpec>,
    /// Pull queues: where a message goes once it has been reserved `maxReservations` times,
    /// instead of being handed out again.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dead_letter: Option<DeadLetterSpec>,
    /// Pull queues: messages posted to another queue when this one's size crosses a trigger
    /// (at most 5).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 5))]
    pub alerts: Vec<AlertSpec>,
    /// What deleting this resource does to the stored queue: `Retain` (default) keeps it and
    /// its messages as an ordinary queue; `Delete` removes both.
    #[serde(default)]
    pub deletion_policy: DeletionPolicy,
}

#[derive(JsonSchema, Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum QueueKind {
    #[default]
    Pull,
    Unicast,
    Multicast,
}

#[derive(JsonSchema, Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum DeletionPolicy {
    #[default]
    Retain,
    Delete,
}

/// A pull queue's dead-letter queue.
#[derive(JsonSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct DeadLetterSpec {
    /// The queue (same project) that receives the messages; created when missing.
    #[schemars(length(min = 1, max = 128), regex(pattern = r"^[^/\x00-\x1f\x7f]+$"))]
    pub queue_name: String,
    /// Reservations a message may have before it moves (default 10).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 1000))]
    pub max_reservations: Option<u32>,
}

/// A queue alert: when the queue's size crosses `trigger` in `direction`, a message describing
/// it is posted to `queue`.
#[derive(JsonSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct AlertSpec {
    /// `fixed` fires when the size crosses the trigger; `progressive` at every multiple of it.
    #[serde(rename = "type")]
    pub alert_type: AlertKind,
    /// `asc` (default) watches the size grow, `desc` shrink.
    #[serde(default)]
    pub direction: AlertDirectionSpec,
    #[schemars(range(min = 1))]
    pub trigger: u64,
    /// The queue (same project) the alert's message is posted to; created when missing.
    #[schemars(length(min = 1, max = 128), regex(pattern = r"^[^/\x00-\x1f\x7f]+$"))]
    pub queue: String,
    /// Seconds the alert stays quiet after it fired (default 0).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub snooze: Option<u64>,
}

#[derive(JsonSchema, Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum AlertKind {
    Fixed,
    Progressive,
}

#[derive(JsonSchema, Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum AlertDirectionSpec {
    #[default]
    Asc,
    Desc,
}

/// Delivery settings of a push queue.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct PushSpec {
    /// Retries after a failed delivery (default 3).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(max = 100))]
    pub retries: Option<u32>,
    /// Seconds before a retry (default 60).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 3, max = 86400))]
    pub retries_delay: Option<u64>,
    /// Queue that receives messages whose delivery failed for good.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 128), regex(pattern = r"^[^/]+$"))]
    pub error_queue: Option<String>,
    /// `fixed` (default) waits retriesDelay each time; `exponential` doubles it per retry,
    /// with jitter.
    #[serde(default)]
    pub backoff: Backoff,
    /// Seconds a subscriber has to answer before the try counts as failed (default: the
    /// server's `FERROMQ_PUSH_TIMEOUT`, 60).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 3600))]
    pub timeout: Option<u64>,
}

#[derive(JsonSchema, Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum Backoff {
    #[default]
    Fixed,
    Exponential,
}

/// What the controller last saw of a Queue.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct QueueStatus {
    /// `Ready`: the queue exists in the store with this spec.
    #[serde(default)]
    pub conditions: Vec<Condition>,
    /// The generation of the spec the status describes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// Messages in the queue, reserved and delayed ones included.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub size: Option<u64>,
    /// Messages ever posted to the queue.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub total_messages: Option<u64>,
    /// REST path of the queue: `/3/projects/{project}/queues/{name}`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub endpoint: Option<String>,
    /// Subscriptions merged into the queue's subscriber list.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subscribers: Option<u32>,
    /// REST path of the dead-letter queue the stored queue has, and after how many
    /// reservations a message moves there: `/3/projects/{project}/queues/{name} after N`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dead_letter: Option<String>,
}

/// A push endpoint of a queue in the same namespace.
#[derive(CustomResource, KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[kube(
    group = "ferromq.dev",
    version = "v1alpha1",
    kind = "Subscription",
    namespaced,
    status = "SubscriptionStatus",
    shortname = "mqsub",
    category = "ferromq",
    doc = "A subscriber that a push Queue delivers to",
    printcolumn(name = "Queue", type_ = "string", json_path = ".spec.queue"),
    printcolumn(name = "URL", type_ = "string", json_path = ".spec.url"),
    printcolumn(
        name = "Ready",
        type_ = "string",
        json_path = ".status.conditions[?(@.type==\"Ready\")].status"
    ),
    printcolumn(name = "Delivered", type_ = "integer", json_path = ".status.delivered"),
    printcolumn(name = "Failed", type_ = "integer", json_path = ".status.failed"),
    printcolumn(
        name = "Age",
        type_ = "date",
        json_path = ".metadata.creationTimestamp"
    )
)]
#[serde(rename_all = "camelCase")]
pub struct SubscriptionSpec {
    /// Name of the Queue (same namespace) this subscribes to. Cannot change.
    #[schemars(length(min = 1, max = 128))]
    #[x_kube(validation = Rule::new("self == oldSelf").message("spec.queue cannot change: create another Subscription"))]
    pub queue: String,
    /// Where messages are POSTed: `http(s)://...`, or `ironmq:///other-queue` to copy them into
    /// another queue of the project.
    #[schemars(length(min = 1, max = 2048), regex(pattern = r"^(https?|ironmq)://"))]
    pub url: String,
    /// Headers sent with every delivery (at most 5).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    #[schemars(extend("maxProperties" = 5))]
    pub headers: BTreeMap<String, String>,
    /// This subscriber's own retries after a failed delivery (multicast queues; default: the
    /// queue's `push.retries`). Unicast queues retry whole rounds with the queue's settings.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(max = 100))]
    pub retries: Option<u32>,
    /// This subscriber's own seconds before a retry (multicast; default: the queue's).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 3, max = 86400))]
    pub retries_delay: Option<u64>,
    /// At most this many deliveries a second to this subscriber, over every ferromq process.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0.001, max = 100000))]
    pub max_per_second: Option<f64>,
    /// At most this many deliveries in flight at once to this subscriber.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 10000))]
    pub max_concurrency: Option<u32>,
    /// Circuit breaker: pause the subscriber after this many failed tries in a row (its
    /// messages wait, spending no retry), probe it with one delivery after `probeInterval`
    /// seconds (doubled after each failed probe) and resume on success.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 1000))]
    pub pause_after_failures: Option<u32>,
    /// Seconds before the first probe of a paused subscriber (default 5).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 3600))]
    pub probe_interval: Option<u64>,
    /// Send `Authorization: Bearer <JWT>`: signed by ferromq's key (FERROMQ_PUSH_JWT_KEY) for
    /// `audience` (default: the URL), or read from `tokenFile` (a projected ServiceAccount
    /// token).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jwt: Option<JwtSpec>,
    /// Send CloudEvents binary-mode `ce-*` headers with each push.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub cloud_events: bool,
}

/// Where a Subscription's bearer token comes from.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct JwtSpec {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 2048))]
    pub audience: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 4096))]
    pub token_file: Option<String>,
}

/// What the controller last saw of a Subscription.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct SubscriptionStatus {
    /// `Ready`: its queue exists, is a push queue and is Ready.
    #[serde(default)]
    pub conditions: Vec<Condition>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// Answers of this subscriber since its queue was stored (refreshed every minute):
    /// 2xx other than 202,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delivered: Option<u64>,
    /// 202 (taken, to be acknowledged),
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub accepted: Option<u64>,
    /// and failed tries (any other answer, or none in time).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failed: Option<u64>,
}

impl Queue {
    /// IronMQ project of the queue: `spec.project`, else the namespace.
    pub fn project(&self) -> String {
        self.spec
            .project
            .clone()
            .unwrap_or_else(|| self.namespace().unwrap_or_default())
    }

    /// How the store names the resource managing the queue: `Queue namespace/name`.
    pub fn manager(&self) -> String {
        format!(
            "Queue {}/{}",
            self.namespace().unwrap_or_default(),
            self.name_any()
        )
    }

    /// REST path of the queue.
    pub fn endpoint(&self) -> String {
        format!("/3/projects/{}/queues/{}", self.project(), self.name_any())
    }

    pub fn ready(&self) -> Option<&Condition> {
        ready_condition(self.status.as_ref().map(|s| &s.conditions[..]))
    }
}

impl Subscription {
    pub fn ready(&self) -> Option<&Condition> {
        ready_condition(self.status.as_ref().map(|s| &s.conditions[..]))
    }
}

fn ready_condition(conditions: Option<&[Condition]>) -> Option<&Condition> {
    conditions?.iter().find(|c| c.type_ == "Ready")
}
