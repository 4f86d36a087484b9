//! Queue and Subscription manifests the CRD schemas must refuse, with what the refusal says
//! and the field it names: checked against the schemas in-process (`tests/crds.rs`) and by a
//! real API server (`tests/k8s_api.rs`).

use serde_json::{Value, json};

/// A Queue named `events` in namespace `shop` with `spec`.
pub fn queue(spec: Value) -> Value {
    json!({
        "apiVersion": "ferromq.dev/v1alpha1",
        "kind": "Queue",
        "metadata": {"name": "events", "namespace": "shop"},
        "spec": spec,
    })
}

/// A Subscription named `hook` in namespace `shop` with `spec`.
pub fn subscription(spec: Value) -> Value {
    json!({
        "apiVersion": "ferromq.dev/v1alpha1",
        "kind": "Subscription",
        "metadata": {"name": "hook", "namespace": "shop"},
        "spec": spec,
    })
}

pub struct BadManifest {
    pub what: &'static str,
    pub manifest: Value,
    /// A part of the refusal's message, in-process...
    pub says: &'static str,
    /// ... and from the API server, where its words differ.
    pub server_says: &'static str,
    /// The field the API server names.
    pub field: &'static str,
}

pub fn bad_manifests() -> Vec<BadManifest> {
    vec![
        BadManifest {
            what: "retries above 100",
            manifest: queue(json!({"type": "multicast", "push": {"retries": 101}})),
            says: "101",
            server_says: "101",
            field: "spec.push.retries",
        },
        BadManifest {
            what: "an unknown type",
            manifest: queue(json!({"type": "fifo"})),
            says: "fifo",
            server_says: "fifo",
            field: "spec.type",
        },
        BadManifest {
            what: "a timeout below 30 s",
            manifest: queue(json!({"messageTimeout": 5})),
            says: "5",
            server_says: "should be greater than or equal to 30",
            field: "spec.messageTimeout",
        },
        BadManifest {
            what: "an unknown deletion policy",
            manifest: queue(json!({"deletionPolicy": "Orphan"})),
            says: "Orphan",
            server_says: "Orphan",
            field: "spec.deletionPolicy",
        },
        BadManifest {
            what: "an error queue naming the queue itself",
            manifest: queue(json!({"type": "unicast", "push": {"errorQueue": "events"}})),
            says: "may not name the queue itself",
            server_says: "may not name the queue itself",
            field: "spec.push.errorQueue",
        },
        BadManifest {
            what: "push settings on a pull queue",
            manifest: queue(json!({"type": "pull", "push": {"retries": 1}})),
            says: "push settings need type unicast or multicast",
            server_says: "push settings need type unicast or multicast",
            field: "spec.push",
        },
        BadManifest {
            what: "a dead-letter queue on a push queue",
            manifest: queue(
                json!({"type": "multicast", "deadLetter": {"queueName": "events-dead"}}),
            ),
            says: "deadLetter is for pull queues",
            server_says: "deadLetter is for pull queues",
            field: "spec.deadLetter",
        },
        BadManifest {
            what: "a dead-letter queue naming the queue itself",
            manifest: queue(json!({"deadLetter": {"queueName": "events"}})),
            says: "may not name the queue itself",
            server_says: "may not name the queue itself",
            field: "spec.deadLetter.queueName",
        },
        BadManifest {
            what: "max reservations above 1000",
            manifest: queue(json!({"deadLetter": {"queueName": "dead", "maxReservations": 1001}})),
            says: "1001",
            server_says: "1001",
            field: "spec.deadLetter.maxReservations",
        },
        BadManifest {
            what: "a dead-letter queue name with a slash",
            manifest: queue(json!({"deadLetter": {"queueName": "a/b"}})),
            says: "a/b",
            server_says: "a/b",
            field: "spec.deadLetter.queueName",
        },
        BadManifest {
            what: "a subscription without a url",
            manifest: subscription(json!({"queue": "events"})),
            says: "url",
            server_says: "Required value",
            field: "spec.url",
        },
        BadManifest {
            what: "a subscription to an ftp url",
            manifest: subscription(json!({"queue": "events", "url": "ftp://example.test"})),
            says: "ftp",
            server_says: "ftp",
            field: "spec.url",
        },
        BadManifest {
            what: "a subscription with six headers",
            manifest: subscription(
                json!({"queue": "events", "url": "http://example.test", "headers": {"a": "1", "b": "2", "c": "3", "d": "4", "e": "5", "f": "6"}}),
            ),
            says: "more than 5 properties",
            server_says: "must have at most 5 items",
            field: "spec.headers",
        },
        BadManifest {
            what: "alerts on a push queue",
            manifest: queue(json!({"type": "multicast",
                "alerts": [{"type": "fixed", "trigger": 10, "queue": "watch"}]})),
            says: "alerts are for pull queues",
            server_says: "alerts are for pull queues",
            field: "spec.alerts",
        },
        BadManifest {
            what: "a progressive alert posting to its own queue",
            manifest: queue(
                json!({"alerts": [{"type": "progressive", "trigger": 10, "queue": "events"}]}),
            ),
            says: "may not post to its own queue",
            server_says: "may not post to its own queue",
            field: "spec.alerts",
        },
    ]
}
