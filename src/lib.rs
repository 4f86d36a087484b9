//! ferromq: a message queue that speaks the IronMQ v3 REST API, stores its queues in Redis, and
//! is declared as Kubernetes resources.
//!
//! The major components are:
//!
//! * `store`: the Redis store. Key layout, one Lua script per operation, long-poll wake-ups.
//!   Every change to a message is one atomic script, O(log n) in the size of the queue.
//! * `api`: the IronMQ v3 REST routes (axum), token checks, tolerant input, JSON errors.
//! * `push`: push queues. Settings, the per-message delivery state machine, HTTP delivery, and
//!   the workers that claim messages and run delivery rounds.
//! * `k8s`: the `Queue` and `Subscription` resources, their path into the store, and the
//!   controller that reconciles them.
//! * `model`: plain types and limits shared by the layers (queue settings, messages).
//! * `config`: settings of the `serve` job from flags and the environment.
//! * `listener`: how the data plane takes connections (TLS, connection and header limits).
//! * `metrics`: what the data plane counts, for Prometheus.
//! * `serve`: the `ferromq serve` job, wiring the store to the API and the push workers.
//! * `standalone`: the `ferromq standalone` job: `serve` with queues declared in manifest files.
//! * `telemetry`: logging.
//! * `tls`: certificates and the TLS crypto provider.

pub mod api;
pub mod config;
pub mod k8s;
pub mod listener;
pub mod metrics;
pub mod model;
pub mod push;
pub mod serve;
pub mod settings;
pub mod standalone;
pub mod store;
pub mod telemetry;
pub mod tls;
pub mod tokens;
