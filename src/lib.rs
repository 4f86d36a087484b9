//! ferromq: a message queue that speaks the IronMQ v3 REST API, stores its queues in Redis, and
//! is declared as Kubernetes resources.
//!
//! The major components, lowest layer first (each imports only from those listed before it;
//! `tests/layers.rs` checks it):
//!
//! * `model`: plain types and limits shared by the layers (queue settings, messages).
//! * `tokens`: OAuth tokens and the projects each may use.
//! * `metrics`, `telemetry`, `tls`: what is counted for Prometheus, logging, certificates.
//! * `settings`: the rules a queue's settings keep, and applying a change to them.
//! * `listener`: how the data plane takes connections (TLS, connection limits).
//! * `store`: the Redis store. One Rust file per operation beside its Lua script
//!   (`store/ops/`), every change to a message one atomic script, O(log n) in the queue's size;
//!   the key layout and script statuses declared once for Rust and Lua.
//! * `push`: push queues. Per-message delivery state, one delivery round, HTTP delivery, and
//!   the workers that claim messages and run rounds.
//! * `api`: the IronMQ v3 REST routes (axum), the token check, tolerant input, JSON errors.
//! * `config`: settings of the jobs, from flags and the environment.
//! * `serve`: the `ferromq serve` job, wiring the store to the API and the push workers.
//! * `k8s`: the `Queue` and `Subscription` resources, their path into the store, and the
//!   controller that reconciles them.
//! * `standalone`: the `ferromq standalone` job: `serve` with queues declared in manifest files.
//!
//! Where a behaviour lives:
//!
//! * posting, reserving, deleting, touching, releasing a message: `api/messages.rs`, then
//!   `store/ops/<operation>.rs` and its `.lua`;
//! * long polls: `store/long_poll.rs` and `store/wake.rs`;
//! * creating and changing queues: `api/queues.rs`, `settings.rs`, `store/settings.rs`,
//!   `store/ops/apply.rs`;
//! * push delivery: `push/worker.rs` (claims), `push/round.rs` (one round), `push/state.rs`
//!   (retries, acknowledgements), `push/deliver.rs` (the HTTP request), `push/reports.rs` and
//!   `store/ops/push_report.rs` (recording rounds);
//! * Kubernetes: `k8s/declare.rs` (resource to store), `k8s/controller.rs` (reconcile).

pub mod api;
pub mod cli;
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
