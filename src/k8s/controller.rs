//! `ferromq controller`: reconciles Queue and Subscription resources into the store through
//! `declare`, writes their status with server-side apply, publishes errors as Events, and
//! runs only while it holds the leader `Lease`.
//!
//! Deleting a Queue runs a finalizer that honours its `deletionPolicy`. A Queue is reconciled
//! again when one of its Subscriptions changes, and every minute, which refreshes its size and
//! recreates a queue the store lost.

use super::declare::{self, Circuit, Forgotten, NotDeclared};
use super::resources::{Queue, Subscription, SubscriptionStatus};
use crate::metrics::{QueueGauges, QueueLabels};
use crate::store::{Store, StoreError};
use futures_util::StreamExt;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use kube::api::{Api, ListParams, Patch, PatchParams};
use kube::runtime::controller::{Action, Controller};
use kube::runtime::events::{Event, EventType, Recorder, Reporter};
use kube::runtime::finalizer::{Event as Finalized, finalizer};
use kube::runtime::reflector::{self, ObjectRef, reflector};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Client, Resource, ResourceExt};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::registry::Registry;
use serde_json::json;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Finalizer that keeps a Queue resource until its deletion policy has been carried out.
pub const QUEUE_FINALIZER: &str = "ferromq.dev/queue";
/// Field manager of the status this controller writes.
pub const FIELD_MANAGER: &str = "ferromq-controller";
/// How often a resource is reconciled without any change: refreshes sizes, repairs drift.
pub const REFRESH: Duration = Duration::from_secs(60);
/// How often a Subscription whose circuit breaker is open is reconciled.
const PAUSED_REFRESH: Duration = Duration::from_secs(10);
/// First and longest pause before a failed reconcile is tried again (doubling in between).
const RETRY_FIRST: Duration = Duration::from_secs(5);
const RETRY_LONGEST: Duration = Duration::from_secs(300);

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("store: {0}")]
    Store(#[from] StoreError),
    #[error("Kubernetes API: {0}")]
    Kube(#[from] kube::Error),
    #[error("{0}")]
    Finalizer(#[source] Box<kube::runtime::finalizer::Error<Error>>),
    #[error("{0} has no namespace")]
    NoNamespace(String),
    /// The controller's own rules refused a Queue (the tenant rule); its Event text keeps the
    /// wording it had when the rule answered through the store.
    #[error("store: {0}")]
    NotDeclared(NotDeclared),
    #[error("{0}")]
    NotInstalled(String),
}

impl From<NotDeclared> for Error {
    fn from(err: NotDeclared) -> Self {
        match err {
            NotDeclared::Store(err) => Error::Store(err),
            other => Error::NotDeclared(other),
        }
    }
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct Outcome {
    pub kind: &'static str,
    pub result: &'static str,
}

/// What the controller's `/metrics` shows: its reconciliations, and every declared queue's
/// depth, reservations and oldest message, refreshed at each reconcile (every minute), so a
/// backlog nobody posts to or reads from still shows.
#[derive(Default)]
pub struct Metrics {
    pub reconciliations: Family<Outcome, Counter>,
    pub queues: QueueGauges,
}

impl Metrics {
    pub fn register(registry: &mut Registry) -> Arc<Self> {
        let metrics = Arc::new(Metrics::default());
        registry.register(
            "ferromq_controller_reconciliations",
            "Reconciliations by resource kind and result",
            metrics.reconciliations.clone(),
        );
        metrics.queues.register(
            registry,
            "ferromq_declared_queue",
            "a queue declared by a Queue resource",
        );
        metrics
    }

    fn count(&self, kind: &'static str, ok: bool) {
        let result = if ok { "ok" } else { "error" };
        self.reconciliations
            .get_or_create(&Outcome { kind, result })
            .inc();
    }
}

/// What every reconcile needs.
pub struct Context {
    pub client: Client,
    pub store: Store,
    /// Every Queue and Subscription the controller watches, as last seen.
    pub queues: reflector::Store<Queue>,
    pub subscriptions: reflector::Store<Subscription>,
    pub recorder: Recorder,
    pub metrics: Arc<Metrics>,
    /// Refuse `spec.project` naming another project than the namespace (clusters where
    /// namespaces are tenants: no namespace may reach into another's queues).
    pub no_project_override: bool,
    /// Failures in a row per resource, for the retry backoff.
    failures: Mutex<HashMap<String, u32>>,
    /// When each Queue's status last went out, so size updates are not written more than
    /// once per `REFRESH` (each write is itself a change that triggers a reconcile).
    status_written: Mutex<HashMap<String, Instant>>,
}

impl Context {
    pub fn new(
        client: Client,
        store: Store,
        queues: reflector::Store<Queue>,
        subscriptions: reflector::Store<Subscription>,
        reporter: Reporter,
        metrics: Arc<Metrics>,
    ) -> Self {
        Context {
            recorder: Recorder::new(client.clone(), reporter),
            client,
            store,
            queues,
            subscriptions,
            metrics,
            no_project_override: false,
            failures: Mutex::default(),
            status_written: Mutex::default(),
        }
    }

    /// Whether a status goes out: it changed, and not only in its counts (size, delivery
    /// counts), or it did and the last write is a `REFRESH` ago. Each write is itself a change
    /// that triggers a reconcile, so counts that keep moving must not be written each time.
    fn worth_writing(&self, key: &str, changed: bool, only_counts: bool) -> bool {
        let written_lately = self
            .status_written
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(key)
            .is_some_and(|at| at.elapsed() < REFRESH);
        changed && !(only_counts && written_lately)
    }

    fn written(&self, key: String) {
        self.status_written
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(key, Instant::now());
    }

    fn succeeded(&self, key: &str) {
        self.failures
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(key);
    }

    /// The pause before retrying `key` after one more failure: 5 s, doubling up to 5 min.
    fn backoff(&self, key: &str) -> Duration {
        let mut failures = self.failures.lock().unwrap_or_else(|e| e.into_inner());
        let n = failures.entry(key.to_string()).or_insert(0);
        *n = n.saturating_add(1);
        RETRY_FIRST
            .saturating_mul(1 << (*n - 1).min(8))
            .min(RETRY_LONGEST)
    }

    async fn publish(&self, reference: &k8s_openapi::api::core::v1::ObjectReference, event: Event) {
        if let Err(err) = self.recorder.publish(&event, reference).await {
            tracing::warn!(%err, reason = event.reason, "cannot publish an event");
        }
    }
}

/// `Kind namespace/name`: a Queue and a Subscription of one name are different resources.
fn key_of<K: Resource<DynamicType = ()>>(object: &K) -> String {
    format!(
        "{} {}/{}",
        K::kind(&()),
        object.meta().namespace.as_deref().unwrap_or_default(),
        object.meta().name.as_deref().unwrap_or_default()
    )
}

/// The Event reason for a failed reconcile: the store's own reason where it has one.
fn reason_of(error: &Error) -> &'static str {
    use kube::runtime::finalizer::Error as Finalizer;
    match error {
        Error::Store(err) => declare::reason_of(err),
        Error::Finalizer(inner) => match inner.as_ref() {
            Finalizer::ApplyFailed(err) | Finalizer::CleanupFailed(err) => reason_of(err),
            _ => "FinalizerFailed",
        },
        Error::Kube(_) => "KubernetesApiError",
        Error::NoNamespace(_) => "NoNamespace",
        Error::NotDeclared(err) => err.reason(),
        Error::NotInstalled(_) => "NotInstalled",
    }
}

/// Reconciles one Queue: applies it (or, once deleted, its deletion policy) and writes status.
pub async fn reconcile_queue(queue: Arc<Queue>, ctx: Arc<Context>) -> Result<Action, Error> {
    let namespace = queue
        .namespace()
        .ok_or_else(|| Error::NoNamespace(queue.name_any()))?;
    let api: Api<Queue> = Api::namespaced(ctx.client.clone(), &namespace);
    // A queue applied from a half-filled cache would drop subscribers: wait for the first list.
    let _ = ctx.subscriptions.wait_until_ready().await;
    let key = key_of(queue.as_ref());
    let result = finalizer(&api, QUEUE_FINALIZER, queue, |event| async {
        match event {
            Finalized::Apply(queue) => apply_queue(&queue, &ctx, &api).await,
            Finalized::Cleanup(queue) => cleanup_queue(&queue, &ctx).await,
        }
    })
    .await
    .map_err(|e| Error::Finalizer(Box::new(e)));
    ctx.metrics.count("Queue", result.is_ok());
    if result.is_ok() {
        ctx.succeeded(&key);
    }
    result
}

async fn apply_queue(queue: &Queue, ctx: &Context, api: &Api<Queue>) -> Result<Action, Error> {
    let all = ctx.subscriptions.state();
    let subscriptions = declare::subscriptions_of(queue, all.iter().map(|s| s.as_ref()));
    let elsewhere = queue
        .spec
        .project
        .as_deref()
        .is_some_and(|p| Some(p) != queue.namespace().as_deref());
    let outcome = if ctx.no_project_override && elsewhere {
        Err(NotDeclared::OtherProject)
    } else {
        declare::declare_queue(&ctx.store, queue, &subscriptions)
            .await
            .map_err(NotDeclared::from)
    };
    let status = declare::queue_status(queue, &outcome, &subscriptions);
    if outcome.is_ok() {
        let (project, name) = (queue.project(), queue.name_any());
        if let Ok(gauges) = ctx.store.queue_gauges(&project, &name).await {
            ctx.metrics.queues.show(
                QueueLabels {
                    project,
                    queue: name,
                },
                gauges,
            );
        }
    }
    let only_counts = queue.status.as_ref().is_some_and(|old| {
        let mut old = old.clone();
        old.size = status.size;
        old.total_messages = status.total_messages;
        old == status
    });
    let key = key_of(queue);
    if ctx.worth_writing(&key, queue.status.as_ref() != Some(&status), only_counts) {
        apply_status(api, "Queue", &queue.name_any(), &status).await?;
        ctx.written(key);
    }
    outcome?;
    Ok(Action::requeue(REFRESH))
}

async fn cleanup_queue(queue: &Queue, ctx: &Context) -> Result<Action, Error> {
    let forgotten = declare::forget_queue(&ctx.store, queue).await?;
    ctx.metrics.queues.forget(&QueueLabels {
        project: queue.project(),
        queue: queue.name_any(),
    });
    let note = match forgotten {
        Forgotten::Deleted => "Deleted the queue and its messages (deletionPolicy Delete)",
        Forgotten::Retained => {
            "Kept the queue and its messages as an unmanaged queue (deletionPolicy Retain)"
        }
        Forgotten::NotOurs => {
            "Left the stored queue alone: gone already, or managed by another resource"
        }
    };
    let event = Event {
        type_: EventType::Normal,
        reason: format!("{forgotten:?}"),
        note: Some(note.into()),
        action: "Delete".into(),
        secondary: None,
    };
    ctx.publish(&queue.object_ref(&()), event).await;
    ctx.status_written
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .remove(&key_of(queue));
    Ok(Action::await_change())
}

/// Reconciles one Subscription: its status says whether its queue takes it in.
pub async fn reconcile_subscription(
    subscription: Arc<Subscription>,
    ctx: Arc<Context>,
) -> Result<Action, Error> {
    let result = subscription_status(&subscription, &ctx).await;
    ctx.metrics.count("Subscription", result.is_ok());
    if result.is_ok() {
        ctx.succeeded(&key_of(subscription.as_ref()));
    }
    result
}

async fn subscription_status(subscription: &Subscription, ctx: &Context) -> Result<Action, Error> {
    let namespace = subscription
        .namespace()
        .ok_or_else(|| Error::NoNamespace(subscription.name_any()))?;
    let _ = ctx.queues.wait_until_ready().await;
    let queue = ctx
        .queues
        .get(&ObjectRef::new(&subscription.spec.queue).within(&namespace));
    let counts = match &queue {
        Some(queue) => match ctx
            .store
            .answer_counts(&queue.project(), &queue.name_any())
            .await
        {
            Ok(mut all) => Some(all.remove(&subscription.name_any()).unwrap_or_default()),
            Err(err) => {
                tracing::warn!(%err, "cannot read delivery counts; status keeps the last ones");
                None
            }
        },
        None => None,
    };
    let circuit = match &queue {
        Some(queue) if subscription.spec.pause_after_failures.is_some() => match ctx
            .store
            .open_circuits(&queue.project(), &queue.name_any())
            .await
        {
            Ok(open) => match open.get(&subscription.name_any()) {
                Some(&probe_at) => Circuit::Open { probe_at },
                None => Circuit::Closed,
            },
            Err(err) => {
                tracing::warn!(%err, "cannot read circuit breakers; status keeps the last one");
                Circuit::Unknown
            }
        },
        _ => Circuit::Unknown,
    };
    let status = declare::subscription_status(subscription, queue.as_deref(), counts, circuit);
    announce_circuit(subscription, &status, ctx).await;
    let only_counts = subscription.status.as_ref().is_some_and(|old| {
        let mut old = old.clone();
        (old.delivered, old.accepted, old.failed) =
            (status.delivered, status.accepted, status.failed);
        old == status
    });
    let key = key_of(subscription);
    if ctx.worth_writing(
        &key,
        subscription.status.as_ref() != Some(&status),
        only_counts,
    ) {
        let api: Api<Subscription> = Api::namespaced(ctx.client.clone(), &namespace);
        apply_status(&api, "Subscription", &subscription.name_any(), &status).await?;
        ctx.written(key);
    }
    // A paused subscriber's status follows its probes more closely.
    Ok(Action::requeue(match circuit {
        Circuit::Open { .. } => PAUSED_REFRESH,
        _ => REFRESH,
    }))
}

/// An Event when a Subscription's circuit breaker opens (Warning) or closes again (Normal).
async fn announce_circuit(subscription: &Subscription, status: &SubscriptionStatus, ctx: &Context) {
    let delivering = |conditions: &[Condition]| {
        conditions
            .iter()
            .find(|c| c.type_ == declare::DELIVERING)
            .map(|c| (c.status == "True", c.message.clone()))
    };
    let before = subscription
        .status
        .as_ref()
        .and_then(|s| delivering(&s.conditions));
    let (event_type, reason, note) = match (before, delivering(&status.conditions)) {
        (Some((true, _)) | None, Some((false, message))) => {
            (EventType::Warning, "CircuitOpened", message)
        }
        (Some((false, _)), Some((true, _))) => (
            EventType::Normal,
            "CircuitClosed",
            "A delivery succeeded: the subscriber is resumed".to_string(),
        ),
        _ => return,
    };
    let event = Event {
        type_: event_type,
        reason: reason.into(),
        note: Some(note),
        action: "Deliver".into(),
        secondary: None,
    };
    // Not awaited here: the status does not wait on the Events API.
    let (recorder, reference) = (ctx.recorder.clone(), subscription.object_ref(&()));
    tokio::spawn(async move {
        if let Err(err) = recorder.publish(&event, &reference).await {
            tracing::warn!(%err, reason = event.reason, "cannot publish an event");
        }
    });
}

/// Writes a resource's status by server-side apply, owned by this controller's field manager.
async fn apply_status<K>(
    api: &Api<K>,
    kind: &str,
    name: &str,
    status: &impl serde::Serialize,
) -> Result<(), Error>
where
    K: Clone + serde::de::DeserializeOwned + std::fmt::Debug,
{
    let patch = Patch::Apply(json!({
        "apiVersion": "ferromq.dev/v1alpha1",
        "kind": kind,
        "status": status,
    }));
    api.patch_status(name, &PatchParams::apply(FIELD_MANAGER).force(), &patch)
        .await?;
    Ok(())
}

/// After a failed reconcile: one Warning Event (repeats of it become a series), and a retry
/// after a pause that doubles per failure.
pub fn error_policy<K>(object: Arc<K>, error: &Error, ctx: Arc<Context>) -> Action
where
    K: Resource<DynamicType = ()>,
{
    tracing::warn!(%error, object = key_of(object.as_ref()), "reconcile failed");
    let event = Event {
        type_: EventType::Warning,
        reason: reason_of(error).into(),
        note: Some(error.to_string()),
        action: "Reconcile".into(),
        secondary: None,
    };
    let reference = object.object_ref(&());
    let publisher = ctx.clone();
    tokio::spawn(async move { publisher.publish(&reference, event).await });
    Action::requeue(ctx.backoff(&key_of(object.as_ref())))
}

/// Fails with advice when the resource's CRD is not installed (or not readable).
async fn installed<K>(api: &Api<K>, kind: &str) -> Result<(), Error>
where
    K: Clone + serde::de::DeserializeOwned + std::fmt::Debug,
{
    match api.list(&ListParams::default().limit(1)).await {
        Ok(_) => Ok(()),
        Err(kube::Error::Api(status)) if status.code == 404 => Err(Error::NotInstalled(format!(
            "the {kind} CRD (ferromq.dev/v1alpha1) is not installed: kubectl apply -f crds/"
        ))),
        Err(kube::Error::Api(status)) if status.code == 403 => Err(Error::NotInstalled(format!(
            "not allowed to list {kind} resources ({}): check the controller's RBAC rules",
            status.message
        ))),
        Err(err) => Err(err.into()),
    }
}

/// Runs both controllers until `stop` completes. Watches one namespace, or all.
pub async fn run_controllers(
    client: Client,
    store: Store,
    namespace: Option<String>,
    reporter: Reporter,
    metrics: Arc<Metrics>,
    no_project_override: bool,
    stop: impl std::future::Future<Output = ()> + Send + 'static,
) -> Result<(), Error> {
    let (queues, subscriptions): (Api<Queue>, Api<Subscription>) = match namespace.as_deref() {
        Some(ns) => (
            Api::namespaced(client.clone(), ns),
            Api::namespaced(client.clone(), ns),
        ),
        None => (Api::all(client.clone()), Api::all(client.clone())),
    };
    installed(&queues, "Queue").await?;
    installed(&subscriptions, "Subscription").await?;

    // A Subscription change reconciles its Queue, which reads the Subscriptions from a cache;
    // a Queue change, its Subscriptions, which read the Queue. Each trigger comes from the
    // same reflector that fills the cache, after the change is in it, so no reconcile runs
    // on a cache that has not seen its trigger yet.
    let (queue_cache, queue_writer) = reflector::store();
    let queue_changes = reflector(queue_writer, watcher(queues.clone(), Default::default()))
        .default_backoff()
        .touched_objects();
    let (subscription_cache, subscription_writer) = reflector::store();
    let subscription_changes = reflector(
        subscription_writer,
        watcher(subscriptions.clone(), Default::default()),
    )
    .default_backoff()
    .touched_objects();
    let mut ctx = Context::new(
        client,
        store,
        queue_cache,
        subscription_cache.clone(),
        reporter,
        metrics,
    );
    ctx.no_project_override = no_project_override;
    let ctx = Arc::new(ctx);
    let queue_controller = Controller::new(queues, watcher::Config::default()).watches_stream(
        subscription_changes,
        |subscription: Subscription| {
            let namespace = subscription.namespace()?;
            Some(ObjectRef::new(&subscription.spec.queue).within(&namespace))
        },
    );
    let subscription_controller = Controller::new(subscriptions, watcher::Config::default())
        .watches_stream(queue_changes, move |queue: Queue| {
            subscription_cache
                .state()
                .iter()
                .filter(|s| s.namespace() == queue.namespace() && s.spec.queue == queue.name_any())
                .map(|s| ObjectRef::from_obj(s.as_ref()))
                .collect::<Vec<_>>()
        });

    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    tokio::spawn(async move {
        stop.await;
        let _ = stop_tx.send(true);
    });
    let until = |mut rx: tokio::sync::watch::Receiver<bool>| async move {
        let _ = rx.wait_for(|stopped| *stopped).await;
    };
    let queues_done = queue_controller
        .graceful_shutdown_on(until(stop_rx.clone()))
        .run(reconcile_queue, error_policy, ctx.clone())
        .for_each(|_| futures_util::future::ready(()));
    let subscriptions_done = subscription_controller
        .graceful_shutdown_on(until(stop_rx))
        .run(reconcile_subscription, error_policy, ctx)
        .for_each(|_| futures_util::future::ready(()));
    tokio::join!(queues_done, subscriptions_done);
    Ok(())
}
