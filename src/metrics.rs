//! What the data plane counts, for Prometheus (`GET /metrics`). One set per process, kept in
//! a static so every layer counts without carrying a handle around; scrape every replica
//! and sum (counters) or take the max (queue gauges, which every replica reads from Redis).

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;
use std::collections::HashMap;
use std::sync::{LazyLock, Mutex};
use std::time::{Duration, Instant};

/// Queues whose depth is shown: those posted to through this process lately, at most this many.
const MAX_WATCHED_QUEUES: usize = 1000;
/// A queue nobody posted to through this process for this long is no longer shown.
const WATCH_FOR: Duration = Duration::from_secs(600);

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RequestLabels {
    pub method: &'static str,
    /// `2xx`, `4xx`, `5xx`...
    pub status: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct OperationLabels {
    /// posted, reserved, deleted, released, touched.
    pub operation: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct PushLabels {
    /// delivered, accepted (202), failed.
    pub outcome: &'static str,
    /// `2xx`, `3xx`, `4xx`, `5xx`, or `none` (no answer).
    pub status: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct SubscriberLabels {
    pub project: String,
    pub queue: String,
    pub subscriber: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct HeldLabels {
    /// retry_after, rate_limit, concurrency_limit, circuit_open.
    pub reason: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct StoreErrorLabels {
    /// unavailable (Redis unreachable), error (anything else Redis answered).
    pub kind: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct QueueLabels {
    pub project: String,
    pub queue: String,
}

/// Depth, reservations and oldest-message age of queues, as read from Redis: shown by the data
/// plane for queues posted to lately and by the controller for every declared queue.
#[derive(Default)]
pub struct QueueGauges {
    depth: Family<QueueLabels, Gauge>,
    reserved: Family<QueueLabels, Gauge>,
    oldest_seconds: Family<QueueLabels, Gauge>,
}

impl QueueGauges {
    /// Registers the three as `{name}_depth`, `{name}_reserved` and
    /// `{name}_oldest_message_age_seconds`, helped as being about `whose` ("a queue"...).
    pub fn register(&self, registry: &mut Registry, name: &str, whose: &str) {
        registry.register(
            format!("{name}_depth"),
            format!("Messages in {whose}, reserved and delayed ones included"),
            self.depth.clone(),
        );
        registry.register(
            format!("{name}_reserved"),
            format!("Messages of {whose} under a reservation"),
            self.reserved.clone(),
        );
        registry.register(
            format!("{name}_oldest_message_age_seconds"),
            format!("Age of the message next in line in {whose}"),
            self.oldest_seconds.clone(),
        );
    }

    /// Sets a queue's gauges from `Store::queue_gauges` (depth, reserved, oldest age in ms).
    pub fn show(&self, labels: QueueLabels, (depth, reserved, oldest_ms): (u64, u64, u64)) {
        let gauge = |n: u64| i64::try_from(n).unwrap_or(i64::MAX);
        self.depth.get_or_create(&labels).set(gauge(depth));
        self.reserved.get_or_create(&labels).set(gauge(reserved));
        self.oldest_seconds
            .get_or_create(&labels)
            .set(gauge(oldest_ms / 1000));
    }

    pub fn forget(&self, labels: &QueueLabels) {
        self.depth.remove(labels);
        self.reserved.remove(labels);
        self.oldest_seconds.remove(labels);
    }
}

pub struct Metrics {
    pub requests: Family<RequestLabels, Counter>,
    pub messages: Family<OperationLabels, Counter>,
    pub push_attempts: Family<PushLabels, Counter>,
    /// Seconds from sending a push to its answer.
    pub push_latency: Histogram,
    /// 1 while a subscriber's circuit breaker is open, as this process last saw it.
    pub push_circuit_open: Family<SubscriberLabels, Gauge>,
    /// Deliveries due but held back, by reason.
    pub push_held: Family<HeldLabels, Counter>,
    pub store_errors: Family<StoreErrorLabels, Counter>,
    pub queues: QueueGauges,
    registry: Registry,
    /// Project -> queue -> last post seen (nested, so a hit needs no allocation).
    watched: Mutex<HashMap<String, HashMap<String, Instant>>>,
}

pub static METRICS: LazyLock<Metrics> = LazyLock::new(Metrics::new);

impl Metrics {
    fn new() -> Self {
        let requests = Family::<RequestLabels, Counter>::default();
        let messages = Family::<OperationLabels, Counter>::default();
        let push_attempts = Family::<PushLabels, Counter>::default();
        let push_latency = Histogram::new(exponential_buckets(0.001, 2.0, 17)); // 1 ms .. 65 s
        let store_errors = Family::<StoreErrorLabels, Counter>::default();
        let push_circuit_open = Family::<SubscriberLabels, Gauge>::default();
        let push_held = Family::<HeldLabels, Counter>::default();
        let queues = QueueGauges::default();
        let mut registry = Registry::with_prefix("ferromq");
        registry.register(
            "http_requests",
            "Requests answered, by method and status class",
            requests.clone(),
        );
        registry.register(
            "messages",
            "Messages posted, reserved, deleted, released and touched",
            messages.clone(),
        );
        registry.register(
            "push_attempts",
            "Push deliveries tried, by outcome and status class",
            push_attempts.clone(),
        );
        registry.register(
            "push_latency_seconds",
            "Time from sending a push to the subscriber's answer",
            push_latency.clone(),
        );
        registry.register(
            "push_circuit_open",
            "1 while a push subscriber's circuit breaker is open (as this process last saw it)",
            push_circuit_open.clone(),
        );
        registry.register(
            "push_held",
            "Push deliveries due but held back, by reason",
            push_held.clone(),
        );
        registry.register(
            "store_errors",
            "Redis errors, by kind",
            store_errors.clone(),
        );
        queues.register(&mut registry, "queue", "a queue");
        Metrics {
            requests,
            messages,
            push_attempts,
            push_latency,
            push_circuit_open,
            push_held,
            store_errors,
            queues,
            registry,
            watched: Mutex::default(),
        }
    }

    pub fn count(&self, operation: &'static str, n: u64) {
        self.messages
            .get_or_create(&OperationLabels { operation })
            .inc_by(n);
    }

    /// A queue was posted to: show its depth for a while.
    pub fn watch(&self, project: &str, queue: &str) {
        let mut watched = self.watched.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(seen) = watched.get_mut(project).and_then(|q| q.get_mut(queue)) {
            *seen = Instant::now();
            return;
        }
        if watched.values().map(HashMap::len).sum::<usize>() < MAX_WATCHED_QUEUES {
            watched
                .entry(project.to_string())
                .or_default()
                .insert(queue.to_string(), Instant::now());
        }
    }

    /// The queues to show now; forgets those not posted to lately (and their gauges).
    pub fn watched_queues(&self) -> Vec<(String, String)> {
        let mut watched = self.watched.lock().unwrap_or_else(|e| e.into_inner());
        let mut shown = Vec::new();
        for (project, queues) in watched.iter_mut() {
            queues.retain(|queue, seen| {
                let keep = seen.elapsed() < WATCH_FOR;
                if keep {
                    shown.push((project.clone(), queue.clone()));
                } else {
                    self.queues.forget(&QueueLabels {
                        project: project.clone(),
                        queue: queue.clone(),
                    });
                }
                keep
            });
        }
        watched.retain(|_, queues| !queues.is_empty());
        shown
    }

    /// The Prometheus text of everything.
    pub fn encode(&self) -> String {
        let mut text = String::new();
        // Writing into a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut text, &self.registry);
        text
    }
}

/// `2xx`... for a status code; `none` for 0 (no answer).
pub fn status_class(code: u16) -> &'static str {
    match code {
        100..=199 => "1xx",
        200..=299 => "2xx",
        300..=399 => "3xx",
        400..=499 => "4xx",
        500..=599 => "5xx",
        _ => "none",
    }
}
