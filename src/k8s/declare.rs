//! From resources to the store, and the status that follows: plain functions shared by the
//! controller and standalone mode. Nothing here talks to the Kubernetes API.
//!
//! A Queue declares its settings in full: a field missing from the spec takes its default, so
//! removing it from the manifest resets it. Its subscribers are the valid Subscriptions naming
//! it, in name order (the order unicast delivery tries them in).

use super::resources::{
    AlertDirectionSpec, AlertKind, AlertSpec, Backoff, DeletionPolicy, Queue, QueueKind,
    QueueStatus, Subscription, SubscriptionStatus,
};
use crate::model::{
    self, Alert, AlertDirection, AlertType, AlertsChange, ChangedBy, DEFAULT_MAX_RESERVATIONS,
    DEFAULT_MESSAGE_EXPIRATION, DEFAULT_MESSAGE_TIMEOUT, DEFAULT_RETRIES, DEFAULT_RETRIES_DELAY,
    DeadLetterPatch, PushPatch, QueueInfo, QueueSettings, QueueType,
};
use crate::settings::check_subscribers;
use crate::store::{AnswerCounts, Store, StoreError};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use kube::ResourceExt;

/// The subscriber a Subscription stands for, or why it cannot be one.
pub fn subscriber_of(subscription: &Subscription) -> Result<model::Subscriber, String> {
    let subscriber = model::Subscriber {
        name: subscription.name_any(),
        url: subscription.spec.url.clone(),
        headers: subscription.spec.headers.clone(),
        retries: subscription.spec.retries,
        retries_delay: subscription.spec.retries_delay,
        max_per_second: subscription.spec.max_per_second,
        max_concurrency: subscription.spec.max_concurrency,
        pause_after_failures: subscription.spec.pause_after_failures,
        probe_interval: subscription.spec.probe_interval,
        jwt: subscription.spec.jwt.as_ref().map(|jwt| model::JwtAuth {
            audience: jwt.audience.clone(),
            token_file: jwt.token_file.clone(),
        }),
        cloudevents: subscription.spec.cloud_events,
    };
    check_subscribers(std::slice::from_ref(&subscriber)).map_err(|e| e.0)?;
    Ok(subscriber)
}

/// The Subscriptions of `queue` among `all`, by name.
pub fn subscriptions_of<'a>(
    queue: &Queue,
    all: impl IntoIterator<Item = &'a Subscription>,
) -> Vec<&'a Subscription> {
    let mut found: Vec<&Subscription> = all
        .into_iter()
        .filter(|s| s.namespace() == queue.namespace() && s.spec.queue == queue.name_any())
        .collect();
    found.sort_by_key(|s| s.name_any());
    found
}

/// The settings a Queue and its Subscriptions declare; invalid Subscriptions are left out
/// (their own status says why).
pub fn settings_of(queue: &Queue, subscriptions: &[&Subscription]) -> QueueSettings {
    let spec = &queue.spec;
    let queue_type = match spec.queue_type {
        QueueKind::Pull => QueueType::Pull,
        QueueKind::Unicast => QueueType::Unicast,
        QueueKind::Multicast => QueueType::Multicast,
    };
    let push = queue_type.is_push().then(|| {
        let push = spec.push.clone().unwrap_or_default();
        PushPatch {
            subscribers: Some(
                subscriptions
                    .iter()
                    .filter_map(|s| subscriber_of(s).ok())
                    .collect(),
            ),
            retries: Some(push.retries.unwrap_or(DEFAULT_RETRIES)),
            retries_delay: Some(push.retries_delay.unwrap_or(DEFAULT_RETRIES_DELAY)),
            error_queue: Some(push.error_queue.unwrap_or_default()),
            backoff: Some(match push.backoff {
                Backoff::Fixed => model::Backoff::Fixed,
                Backoff::Exponential => model::Backoff::Exponential,
            }),
            signing_secret: None,
            timeout: Some(push.timeout.unwrap_or(0)),
        }
    });
    QueueSettings {
        queue_type: Some(queue_type),
        message_timeout: Some(spec.message_timeout.unwrap_or(DEFAULT_MESSAGE_TIMEOUT)),
        message_expiration: Some(
            spec.message_expiration
                .unwrap_or(DEFAULT_MESSAGE_EXPIRATION),
        ),
        max_message_size: Some(spec.max_message_size.unwrap_or(0)),
        push,
        // A declared queue has what its resource says: no dead-letter queue unless it names one.
        dead_letter: Some(match &spec.dead_letter {
            Some(d) => DeadLetterPatch {
                queue_name: Some(d.queue_name.clone()),
                max_reservations: Some(u64::from(
                    d.max_reservations.unwrap_or(DEFAULT_MAX_RESERVATIONS),
                )),
            },
            None => DeadLetterPatch {
                queue_name: Some(String::new()),
                max_reservations: None,
            },
        }),
        alerts: Some(AlertsChange::Replace(
            spec.alerts.iter().map(alert_of).collect(),
        )),
    }
}

/// A declared alert, to be given its id by the store (a current one like it keeps its own).
fn alert_of(spec: &AlertSpec) -> Alert {
    Alert {
        id: String::new(),
        alert_type: match spec.alert_type {
            AlertKind::Fixed => AlertType::Fixed,
            AlertKind::Progressive => AlertType::Progressive,
        },
        direction: match spec.direction {
            AlertDirectionSpec::Asc => AlertDirection::Asc,
            AlertDirectionSpec::Desc => AlertDirection::Desc,
        },
        trigger: spec.trigger,
        queue: spec.queue.clone(),
        snooze: spec.snooze.unwrap_or(0),
    }
}

/// Annotation (value `"true"`) that lets a Queue take over a queue of its name made over REST.
pub const ADOPT_ANNOTATION: &str = "ferromq.dev/adopt";

/// Creates or updates the queue a resource declares, as managed by it. An existing queue made
/// over REST is taken over only with the adopt annotation.
pub async fn declare_queue(
    store: &Store,
    queue: &Queue,
    subscriptions: &[&Subscription],
) -> Result<QueueInfo, StoreError> {
    let manager = queue.manager();
    let settings = settings_of(queue, subscriptions);
    let adopt = queue
        .annotations()
        .get(ADOPT_ANNOTATION)
        .is_some_and(|v| v == "true");
    let by = if adopt {
        ChangedBy::Adopt(&manager)
    } else {
        ChangedBy::Resource(&manager)
    };
    let (info, _created) = store
        .apply_queue(&queue.project(), &queue.name_any(), &settings, true, by)
        .await?;
    Ok(info)
}

/// What deleting the resource did to the stored queue.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Forgotten {
    /// Removed with its messages (`Delete`).
    Deleted,
    /// Kept, with its messages, as an ordinary REST queue (`Retain`).
    Retained,
    /// Left alone: another resource manages it, or it was gone already.
    NotOurs,
}

/// Honours `deletionPolicy` when the resource is deleted. Never touches a queue managed by
/// another resource.
pub async fn forget_queue(store: &Store, queue: &Queue) -> Result<Forgotten, StoreError> {
    let (project, name, manager) = (queue.project(), queue.name_any(), queue.manager());
    let ours = match store.queue_info(&project, &name).await {
        Ok(info) => info.config.managed_by.as_deref() == Some(manager.as_str()),
        Err(StoreError::QueueNotFound) => false,
        Err(err) => return Err(err),
    };
    if !ours {
        return Ok(Forgotten::NotOurs);
    }
    match queue.spec.deletion_policy {
        DeletionPolicy::Delete => {
            match store
                .delete_queue(&project, &name, ChangedBy::Resource(&manager))
                .await
            {
                Ok(()) => Ok(Forgotten::Deleted),
                Err(StoreError::QueueNotFound | StoreError::Managed { .. }) => {
                    Ok(Forgotten::NotOurs)
                }
                Err(err) => Err(err),
            }
        }
        DeletionPolicy::Retain => {
            store.release_queue(&project, &name, &manager).await?;
            Ok(Forgotten::Retained)
        }
    }
}

/// A `Ready` condition; keeps the transition time of `previous` when the status is unchanged.
pub fn ready_condition(
    ready: bool,
    reason: &str,
    message: String,
    generation: Option<i64>,
    previous: Option<&Condition>,
) -> Condition {
    condition("Ready", ready, reason, message, generation, previous)
}

/// A condition of `kind`; its transition time is kept while its status is.
fn condition(
    kind: &str,
    ready: bool,
    reason: &str,
    message: String,
    generation: Option<i64>,
    previous: Option<&Condition>,
) -> Condition {
    let status = if ready { "True" } else { "False" };
    let last_transition_time = previous
        .filter(|c| c.status == status)
        .map(|c| c.last_transition_time.clone())
        .unwrap_or_else(|| Time(k8s_openapi::jiff::Timestamp::now()));
    Condition {
        type_: kind.into(),
        status: status.into(),
        reason: reason.into(),
        message,
        observed_generation: generation,
        last_transition_time,
    }
}

/// The `Delivering` condition of a Subscription with a circuit breaker; `None` without one.
fn delivering_condition(subscription: &Subscription, circuit: Circuit) -> Option<Condition> {
    let failures = subscription.spec.pause_after_failures?;
    let previous = subscription
        .status
        .as_ref()
        .and_then(|s| s.conditions.iter().find(|c| c.type_ == DELIVERING));
    let generation = subscription.metadata.generation;
    match circuit {
        Circuit::Unknown => previous.cloned(),
        Circuit::Closed => Some(condition(
            DELIVERING,
            true,
            "CircuitClosed",
            "Deliveries go through".into(),
            generation,
            previous,
        )),
        Circuit::Open { probe_at } => {
            let at = k8s_openapi::jiff::Timestamp::from_millisecond(probe_at as i64)
                .map_or_else(|_| "soon".to_string(), |t| t.to_string());
            Some(condition(
                DELIVERING,
                false,
                "CircuitOpen",
                format!(
                    "Paused after {failures} failed deliveries in a row; its messages wait. Next probe at {at}"
                ),
                generation,
                previous,
            ))
        }
    }
}

/// Why a Queue was not declared: the store refused it, or a rule of the controller did.
#[derive(Debug, thiserror::Error)]
pub enum NotDeclared {
    #[error(transparent)]
    Store(#[from] StoreError),
    /// `spec.project` names another project than the namespace, where namespaces are tenants.
    #[error(
        "spec.project may not name another project than the namespace here (the controller runs with FERROMQ_NO_PROJECT_OVERRIDE)"
    )]
    OtherProject,
}

impl NotDeclared {
    /// Why the queue is not ready, as a condition reason.
    pub fn reason(&self) -> &'static str {
        match self {
            NotDeclared::Store(err) => reason_of(err),
            NotDeclared::OtherProject => "InvalidSpec",
        }
    }
}

/// Why a queue is not ready, as a condition reason.
pub fn reason_of(err: &StoreError) -> &'static str {
    match err {
        StoreError::Invalid(_) => "InvalidSpec",
        StoreError::Managed { .. } => "ManagedElsewhere",
        StoreError::NotAdopted => "QueueExists",
        StoreError::Unavailable(_) => "StoreUnavailable",
        _ => "StoreError",
    }
}

/// The status of a Queue after `declare_queue` answered `outcome`.
pub fn queue_status(
    queue: &Queue,
    outcome: &Result<QueueInfo, NotDeclared>,
    subscriptions: &[&Subscription],
) -> QueueStatus {
    let generation = queue.metadata.generation;
    let previous = queue.status.clone().unwrap_or_default();
    let valid = subscriptions
        .iter()
        .filter(|s| subscriber_of(s).is_ok())
        .count() as u32;
    let push = queue.spec.queue_type != QueueKind::Pull;
    let (ready, reason, message) = match outcome {
        Ok(_) if push && valid == 0 => (
            false,
            "NoSubscriptions",
            "Stored; messages are kept until a Subscription names this queue".to_string(),
        ),
        Ok(info) if push => (
            true,
            "Stored",
            format!(
                "Stored in project {}, pushing to {valid} subscriber(s)",
                info.project
            ),
        ),
        Ok(info) => (
            true,
            "Stored",
            format!("Stored in project {}", info.project),
        ),
        Err(NotDeclared::Store(StoreError::NotAdopted)) => (
            false,
            "QueueExists",
            format!(
                "Queue {:?} already exists in project {}, made over the REST API: annotate this \
                 Queue {ADOPT_ANNOTATION}=\"true\" to take it over with its messages \
                 (deletionPolicy then applies to them too)",
                queue.name_any(),
                queue.project()
            ),
        ),
        Err(err) => (false, err.reason(), err.to_string()),
    };
    let condition = ready_condition(ready, reason, message, generation, queue.ready());
    let (size, total_messages, dead_letter) = match outcome {
        Ok(info) => (
            Some(info.size),
            Some(info.total_messages),
            info.config.dead_letter.as_ref().map(|d| {
                format!(
                    "/3/projects/{}/queues/{} after {}",
                    info.project, d.queue, d.max_reservations
                )
            }),
        ),
        Err(_) => (
            previous.size,
            previous.total_messages,
            previous.dead_letter.clone(),
        ),
    };
    QueueStatus {
        conditions: vec![condition],
        observed_generation: generation,
        size,
        total_messages,
        endpoint: Some(queue.endpoint()),
        subscribers: push.then_some(valid),
        dead_letter,
    }
}

/// Where a subscriber's circuit breaker stands, as the store says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Circuit {
    /// Not read (no store at hand, or it failed): the last condition stays.
    Unknown,
    Closed,
    /// Paused; the next probe is due at this time (ms since the epoch).
    Open {
        probe_at: u64,
    },
}

/// The condition type that tells whether a Subscription with `pauseAfterFailures` is being
/// delivered to (True) or paused by its circuit breaker (False, reason `CircuitOpen`).
pub const DELIVERING: &str = "Delivering";

/// The status of a Subscription, given its queue (`None`: no such Queue in its namespace), its
/// answer counts there (`None`: unknown now, the last ones seen stay) and its circuit breaker.
pub fn subscription_status(
    subscription: &Subscription,
    queue: Option<&Queue>,
    counts: Option<AnswerCounts>,
    circuit: Circuit,
) -> SubscriptionStatus {
    let previous = subscription.status.clone().unwrap_or_default();
    let generation = subscription.metadata.generation;
    let (ready, reason, message) = match (subscriber_of(subscription), queue) {
        (Err(why), _) => (false, "InvalidSpec", why),
        (Ok(_), None) => (
            false,
            "QueueNotFound",
            format!("No Queue {:?} in this namespace", subscription.spec.queue),
        ),
        (Ok(_), Some(q)) if q.spec.queue_type == QueueKind::Pull => (
            false,
            "PullQueue",
            format!(
                "Queue {:?} is a pull queue: nothing is pushed",
                q.name_any()
            ),
        ),
        (Ok(_), Some(q)) => match q.ready() {
            Some(c) if c.status == "True" => (
                true,
                "Subscribed",
                format!(
                    "Queue {:?} pushes to {}",
                    q.name_any(),
                    subscription.spec.url
                ),
            ),
            // Only this Subscription's own arrival can lift that, once the queue is reconciled.
            Some(c) if c.reason == "NoSubscriptions" => (
                false,
                "QueuePending",
                format!(
                    "Queue {:?} has not taken this subscription in yet",
                    q.name_any()
                ),
            ),
            Some(c) => (
                false,
                "QueueNotReady",
                format!("Queue {:?} is not ready: {}", q.name_any(), c.message),
            ),
            None => (
                false,
                "QueuePending",
                format!("Queue {:?} has not been reconciled yet", q.name_any()),
            ),
        },
    };
    let mut conditions = vec![ready_condition(
        ready,
        reason,
        message,
        generation,
        subscription.ready(),
    )];
    if let Some(delivering) = delivering_condition(subscription, circuit) {
        conditions.push(delivering);
    }
    SubscriptionStatus {
        conditions,
        observed_generation: generation,
        delivered: counts.map(|c| c.delivered).or(previous.delivered),
        accepted: counts.map(|c| c.accepted).or(previous.accepted),
        failed: counts.map(|c| c.failed).or(previous.failed),
    }
}
