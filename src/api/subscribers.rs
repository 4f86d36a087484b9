//! Push-queue routes: adding, replacing and removing subscribers, a message's push status, and
//! acknowledgements from subscribers that answered 202.

use super::auth::AckReservation;
use super::extract::{JsonBody, MessagePath, QueuePath, SubscriberMessagePath};
use super::input::opt_string;
use super::queues::{SubscriberInput, subscribers_of};
use super::{ApiError, AppState};
use crate::model::{ChangedBy, PushPatch, QueueSettings, Subscriber};
use crate::push::state::{PushState, Status};
use crate::settings::{self, merge_subscribers, push_of};
use crate::store::StoreError;
use axum::Extension;
use axum::Json;
use axum::extract::State;
use serde::Deserialize;
use serde_json::{Value, json};
use std::time::{Duration, UNIX_EPOCH};
use utoipa::ToSchema;

#[derive(Debug, Default, Deserialize, ToSchema)]
pub struct SubscribersBody {
    #[serde(default)]
    subscribers: Option<Vec<SubscriberInput>>,
}

impl SubscribersBody {
    fn list(self) -> Result<Vec<SubscriberInput>, ApiError> {
        match self.subscribers {
            Some(list) if !list.is_empty() => Ok(list),
            _ => Err(ApiError::bad_request(
                "No subscribers: send {\"subscribers\": [{\"name\": ..., \"url\": ...}]}",
            )),
        }
    }
}

/// Sets a push queue's subscribers to `f(current subscribers)`.
async fn change_subscribers<F>(
    state: &AppState,
    path: &QueuePath,
    f: F,
) -> Result<Json<Value>, ApiError>
where
    F: Fn(&[Subscriber]) -> Result<Vec<Subscriber>, StoreError>,
{
    state
        .store
        .update_queue(
            &path.project,
            &path.queue,
            false,
            ChangedBy::Api,
            |current| {
                let push = current.and_then(push_of).ok_or_else(|| {
                    StoreError::Invalid(
                        "Subscribers can only be set on a push queue (type unicast or multicast)"
                            .into(),
                    )
                })?;
                let change = QueueSettings {
                    push: Some(PushPatch {
                        subscribers: Some(f(&push.subscribers)?),
                        ..Default::default()
                    }),
                    ..Default::default()
                };
                Ok(settings::apply(
                    current,
                    &change,
                    &path.queue,
                    ChangedBy::Api,
                )?)
            },
        )
        .await?;
    Ok(Json(json!({ "msg": "Updated" })))
}

/// Adds subscribers; one with the name of an existing one replaces it.
#[utoipa::path(
    post,
    path = "/3/projects/{project}/queues/{queue}/subscribers",
    operation_id = "subscribers_add",
    tag = "push",
    summary = "Add subscribers (one named as an existing one replaces it)",
    params(("project" = String, Path, description = "Project id", example = "demo"), ("queue" = String, Path, description = "Queue name", example = "orders")),
    request_body = SubscribersBody,
    responses((status = 200, body = super::openapi::Msg), super::openapi::Errors),
    security(("oauth_header" = []), ("oauth_query" = [])),
)]
pub async fn add(
    State(state): State<AppState>,
    path: QueuePath,
    JsonBody(body): JsonBody<SubscribersBody>,
) -> Result<Json<Value>, ApiError> {
    let added = subscribers_of(body.list()?)?;
    change_subscribers(&state, &path, |current| {
        Ok(merge_subscribers(current, &added))
    })
    .await
}

#[utoipa::path(
    put,
    path = "/3/projects/{project}/queues/{queue}/subscribers",
    operation_id = "subscribers_replace",
    tag = "push",
    summary = "Replace the subscribers",
    params(("project" = String, Path, description = "Project id", example = "demo"), ("queue" = String, Path, description = "Queue name", example = "orders")),
    request_body = SubscribersBody,
    responses((status = 200, body = super::openapi::Msg), super::openapi::Errors),
    security(("oauth_header" = []), ("oauth_query" = [])),
)]
pub async fn replace(
    State(state): State<AppState>,
    path: QueuePath,
    JsonBody(body): JsonBody<SubscribersBody>,
) -> Result<Json<Value>, ApiError> {
    let given = subscribers_of(body.list()?)?;
    change_subscribers(&state, &path, |_| Ok(given.clone())).await
}

/// Removes subscribers by name (or by URL, as v1 clients name them).
#[utoipa::path(
    delete,
    path = "/3/projects/{project}/queues/{queue}/subscribers",
    operation_id = "subscribers_remove",
    tag = "push",
    summary = "Remove subscribers by name",
    params(("project" = String, Path, description = "Project id", example = "demo"), ("queue" = String, Path, description = "Queue name", example = "orders")),
    request_body = SubscribersBody,
    responses((status = 200, body = super::openapi::Msg), super::openapi::Errors),
    security(("oauth_header" = []), ("oauth_query" = [])),
)]
pub async fn remove(
    State(state): State<AppState>,
    path: QueuePath,
    JsonBody(body): JsonBody<SubscribersBody>,
) -> Result<Json<Value>, ApiError> {
    let names: Vec<String> = body
        .list()?
        .iter()
        .filter_map(|s| s.name_or_url().map(String::from))
        .collect();
    change_subscribers(&state, &path, |current| {
        Ok(current
            .iter()
            .filter(|s| !names.contains(&s.name) && !names.contains(&s.url))
            .cloned()
            .collect())
    })
    .await
}

fn rfc3339(ms: u64) -> Value {
    if ms == 0 {
        return Value::Null;
    }
    let at = UNIX_EPOCH + Duration::from_millis(ms);
    json!(humantime::format_rfc3339_seconds(at).to_string())
}

/// Each subscriber's delivery of a message: `queued`, `reserved` (answered 202, awaiting its
/// acknowledgement), `retrying`, `deleted` (delivered) or `error`.
#[utoipa::path(
    get,
    path = "/3/projects/{project}/queues/{queue}/messages/{id}/subscribers",
    operation_id = "subscribers_status",
    tag = "push",
    summary = "A push message's delivery to each subscriber",
    params(("project" = String, Path, description = "Project id", example = "demo"), ("queue" = String, Path, description = "Queue name", example = "orders"), ("id" = String, Path, description = "Message id")),
    responses((status = 200, body = super::openapi::PushStatuses), super::openapi::Errors),
    security(("oauth_header" = []), ("oauth_query" = [])),
)]
pub async fn status(
    State(state): State<AppState>,
    path: MessagePath,
) -> Result<Json<Value>, ApiError> {
    let store = &state.store;
    let raw = store
        .push_state(&path.project, &path.queue, &path.id)
        .await?;
    let push_state: PushState = match raw {
        Some(raw) => serde_json::from_str(&raw).map_err(|_| ApiError::Internal)?,
        None => {
            let info = store.queue_info(&path.project, &path.queue).await?;
            match push_of(&info.config) {
                Some(push) => PushState::new(info.config.queue_type, push),
                None => return Ok(Json(json!({ "subscribers": [] }))),
            }
        }
    };
    let subscribers: Vec<Value> = push_state
        .subscribers
        .iter()
        .map(|(key, s)| {
            let name = s.name_or(key);
            let mut status = json!({
                "name": name,
                "subscriber_name": name,
                "url": s.url,
                "status": s.status,
                "status_code": s.code,
                "tries": s.tries,
                "retries_remaining": push_state.retries_remaining(s),
                "retries_delay": push_state.retries_delay,
                "last_try_at": rfc3339(s.last_try_at),
                "msg": s.msg,
            });
            // While it waits: until when, and why when something held it back.
            if matches!(s.status, Status::Queued | Status::Retrying) && s.due > 0 {
                status["next_try_at"] = json!(rfc3339(s.due));
            }
            if let Some(waiting) = s.waiting {
                status["waiting"] = json!(waiting);
            }
            status
        })
        .collect();
    Ok(Json(json!({ "subscribers": subscribers })))
}

#[derive(Debug, Default, Deserialize, ToSchema)]
pub struct AckBody {
    #[serde(default, deserialize_with = "opt_string")]
    reservation_id: Option<String>,
}

/// The target of `Iron-Subscriber-Message-Url`: the subscriber acknowledges a message it
/// answered 202 for. Its `reservation_id` (in the URL) stands in for a token; a caller with a
/// token may give it in the body instead, or not at all.
#[utoipa::path(
    delete,
    path = "/3/projects/{project}/queues/{queue}/messages/{id}/subscribers/{subscriber}",
    operation_id = "subscribers_acknowledge",
    tag = "push",
    summary = "Acknowledge a push the subscriber answered 202 for (the Iron-Subscriber-Message-Url)",
    params(("project" = String, Path, description = "Project id", example = "demo"), ("queue" = String, Path, description = "Queue name", example = "orders"), ("id" = String, Path, description = "Message id"), ("subscriber" = String, Path, description = "Subscriber name"), ("reservation_id" = Option<String>, Query, description = "The push's reservation id: stands in for a token")),
    request_body = AckBody,
    responses((status = 200, body = super::openapi::Msg), super::openapi::Errors),
    security(("oauth_header" = []), ("oauth_query" = [])),
)]
pub async fn acknowledge(
    State(state): State<AppState>,
    path: SubscriberMessagePath,
    by_reservation: Option<Extension<AckReservation>>,
    JsonBody(body): JsonBody<AckBody>,
) -> Result<Json<Value>, ApiError> {
    let rid = match by_reservation {
        Some(Extension(AckReservation(rid))) => Some(rid),
        None => body.reservation_id,
    };
    let MessagePath { project, queue, id } = &path.message;
    ack(&state, project, queue, id, rid.as_deref(), &path.subscriber).await
}

pub async fn ack(
    state: &AppState,
    project: &str,
    queue: &str,
    id: &str,
    reservation_id: Option<&str>,
    subscriber: &str,
) -> Result<Json<Value>, ApiError> {
    let key = subscriber_key(state, project, queue, id, reservation_id, subscriber).await;
    state
        .store
        .ack_push(project, queue, id, reservation_id, &key)
        .await?;
    Ok(Json(json!({ "msg": "Deleted" })))
}

/// The push-state key an acknowledgement names: itself when a subscriber has that key (an
/// acknowledgement URL, or a name nobody shares); for a shared name, the first subscriber of
/// that name still awaiting an acknowledgement (with that reservation id, when one is given).
async fn subscriber_key(
    state: &AppState,
    project: &str,
    queue: &str,
    id: &str,
    reservation_id: Option<&str>,
    subscriber: &str,
) -> String {
    let Ok(Some(raw)) = state.store.push_state(project, queue, id).await else {
        return subscriber.to_string();
    };
    let Ok(push_state) = serde_json::from_str::<PushState>(&raw) else {
        return subscriber.to_string();
    };
    if push_state.subscribers.contains_key(subscriber) {
        return subscriber.to_string();
    }
    push_state
        .subscribers
        .iter()
        .find(|(key, s)| {
            s.name_or(key) == subscriber
                && s.status == Status::Reserved
                && reservation_id.is_none_or(|rid| rid == s.rid)
        })
        .map_or_else(|| subscriber.to_string(), |(key, _)| key.clone())
}
