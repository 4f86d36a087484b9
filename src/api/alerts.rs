//! Queue alerts: added with the queue's settings (`{"queue": {"alerts": [...]}}`, see
//! `queues.rs`) or here, replaced, and removed by id.

use super::extract::{JsonBody, MessagePath, QueuePath};
use super::input::{opt_count, opt_string};
use super::queues::queue_json;
use super::{ApiError, AppState};
use crate::model::{Alert, AlertDirection, AlertType, AlertsChange, ChangedBy, QueueSettings};
use axum::Json;
use axum::extract::State;
use serde::Deserialize;
use serde_json::{Value, json};

/// An alert as clients send it (`id` only to remove one).
#[derive(Debug, Clone, Deserialize)]
pub struct AlertInput {
    #[serde(default, rename = "type", deserialize_with = "opt_string")]
    alert_type: Option<String>,
    #[serde(default, deserialize_with = "opt_string")]
    direction: Option<String>,
    #[serde(default, deserialize_with = "opt_count")]
    trigger: Option<u64>,
    #[serde(default, deserialize_with = "opt_string")]
    queue: Option<String>,
    #[serde(default, deserialize_with = "opt_count")]
    snooze: Option<u64>,
    #[serde(default, deserialize_with = "opt_string")]
    id: Option<String>,
}

impl AlertInput {
    fn into_alert(self, i: usize) -> Result<Alert, ApiError> {
        let bad = |msg: String| ApiError::bad_request(format!("alerts[{i}]: {msg}"));
        let alert_type = match self.alert_type.as_deref() {
            Some("fixed") => AlertType::Fixed,
            Some("progressive") => AlertType::Progressive,
            Some(other) => {
                return Err(bad(format!(
                    "invalid type {other:?}: use fixed or progressive"
                )));
            }
            None => return Err(bad("needs a type (fixed or progressive)".into())),
        };
        let direction = match self.direction.as_deref() {
            None | Some("asc") => AlertDirection::Asc,
            Some("desc") => AlertDirection::Desc,
            Some(other) => {
                return Err(bad(format!("invalid direction {other:?}: use asc or desc")));
            }
        };
        let trigger = self
            .trigger
            .filter(|t| *t > 0)
            .ok_or_else(|| bad("needs a trigger of 1 or more".into()))?;
        let queue = self
            .queue
            .ok_or_else(|| bad("needs a queue to post to".into()))?;
        Ok(Alert {
            id: String::new(),
            alert_type,
            direction,
            trigger,
            queue,
            snooze: self.snooze.unwrap_or(0),
        })
    }
}

/// Alerts to add or replace with; their ids are the server's to set.
pub fn alerts_of(input: Vec<AlertInput>) -> Result<Vec<Alert>, ApiError> {
    input
        .into_iter()
        .enumerate()
        .map(|(i, a)| a.into_alert(i))
        .collect()
}

/// `{"alerts": [...]}`, or wrapped as `{"queue": {"alerts": [...]}}` as some clients send it.
#[derive(Debug, Default, Deserialize)]
pub struct AlertsBody {
    #[serde(default)]
    alerts: Option<Vec<AlertInput>>,
    #[serde(default)]
    queue: Option<Box<AlertsBody>>,
}

impl AlertsBody {
    fn list(self) -> Option<Vec<AlertInput>> {
        self.alerts.or_else(|| self.queue.and_then(|q| q.list()))
    }
}

/// Applies `change` to the queue's alerts; the queue must exist.
async fn change_alerts(
    state: &AppState,
    path: &QueuePath,
    change: AlertsChange,
) -> Result<Value, ApiError> {
    let settings = QueueSettings {
        alerts: Some(change),
        ..Default::default()
    };
    let (info, _) = state
        .store
        .apply_queue(&path.project, &path.queue, &settings, false, ChangedBy::Api)
        .await?;
    Ok(queue_json(&info))
}

/// POST: adds alerts.
#[utoipa::path(
    post,
    path = "/3/projects/{project}/queues/{queue}/alerts",
    operation_id = "alerts_add",
    tag = "alerts",
    summary = "Add alerts",
    params(("project" = String, Path, description = "Project id", example = "demo"), ("queue" = String, Path, description = "Queue name", example = "orders")),
    request_body = super::openapi::AlertsBody,
    responses((status = 200, body = super::openapi::UpdatedQueue), super::openapi::Errors),
    security(("oauth_header" = []), ("oauth_query" = [])),
)]
pub async fn add(
    State(state): State<AppState>,
    path: QueuePath,
    JsonBody(body): JsonBody<AlertsBody>,
) -> Result<Json<Value>, ApiError> {
    let alerts = alerts_of(body.list().unwrap_or_default())?;
    if alerts.is_empty() {
        return Err(ApiError::bad_request(
            "No alerts: send {\"alerts\": [{\"type\": ..., \"trigger\": ..., \"queue\": ...}]}",
        ));
    }
    let queue = change_alerts(&state, &path, AlertsChange::Add(alerts)).await?;
    Ok(Json(json!({ "msg": "Updated", "queue": queue })))
}

/// PUT: replaces every alert (an empty list removes them all).
#[utoipa::path(
    put,
    path = "/3/projects/{project}/queues/{queue}/alerts",
    operation_id = "alerts_replace",
    tag = "alerts",
    summary = "Replace the alerts",
    params(("project" = String, Path, description = "Project id", example = "demo"), ("queue" = String, Path, description = "Queue name", example = "orders")),
    request_body = super::openapi::AlertsBody,
    responses((status = 200, body = super::openapi::UpdatedQueue), super::openapi::Errors),
    security(("oauth_header" = []), ("oauth_query" = [])),
)]
pub async fn replace(
    State(state): State<AppState>,
    path: QueuePath,
    JsonBody(body): JsonBody<AlertsBody>,
) -> Result<Json<Value>, ApiError> {
    let list = body.list().ok_or_else(|| {
        ApiError::bad_request("Send {\"alerts\": [...]} (an empty list removes every alert)")
    })?;
    let alerts = alerts_of(list)?;
    let queue = change_alerts(&state, &path, AlertsChange::Replace(alerts)).await?;
    Ok(Json(json!({ "msg": "Updated", "queue": queue })))
}

/// DELETE with a body: removes the alerts with the ids given.
#[utoipa::path(
    delete,
    path = "/3/projects/{project}/queues/{queue}/alerts",
    operation_id = "alerts_remove",
    tag = "alerts",
    summary = "Remove alerts by id",
    params(("project" = String, Path, description = "Project id", example = "demo"), ("queue" = String, Path, description = "Queue name", example = "orders")),
    request_body = super::openapi::AlertIds,
    responses((status = 200, body = super::openapi::Msg), super::openapi::Errors),
    security(("oauth_header" = []), ("oauth_query" = [])),
)]
pub async fn remove(
    State(state): State<AppState>,
    path: QueuePath,
    JsonBody(body): JsonBody<AlertsBody>,
) -> Result<Json<Value>, ApiError> {
    let ids = body
        .list()
        .unwrap_or_default()
        .into_iter()
        .enumerate()
        .map(|(i, a)| {
            a.id.ok_or_else(|| ApiError::bad_request(format!("alerts[{i}] needs an id")))
        })
        .collect::<Result<Vec<_>, _>>()?;
    if ids.is_empty() {
        return Err(ApiError::bad_request(
            "No alerts: send {\"alerts\": [{\"id\": ...}]}",
        ));
    }
    remove_ids(&state, &path, ids).await
}

/// DELETE `/alerts/{id}`.
#[utoipa::path(
    delete,
    path = "/3/projects/{project}/queues/{queue}/alerts/{alert}",
    operation_id = "alerts_delete",
    tag = "alerts",
    summary = "Remove one alert",
    params(("project" = String, Path, description = "Project id", example = "demo"), ("queue" = String, Path, description = "Queue name", example = "orders"), ("alert" = String, Path, description = "Alert id")),
    responses((status = 200, body = super::openapi::Msg), super::openapi::Errors),
    security(("oauth_header" = []), ("oauth_query" = [])),
)]
pub async fn delete(
    State(state): State<AppState>,
    path: MessagePath,
) -> Result<Json<Value>, ApiError> {
    let queue = QueuePath {
        project: path.project,
        queue: path.queue,
    };
    remove_ids(&state, &queue, vec![path.id]).await
}

/// Removes alerts by id; an id the queue does not have is 404.
async fn remove_ids(
    state: &AppState,
    path: &QueuePath,
    ids: Vec<String>,
) -> Result<Json<Value>, ApiError> {
    let info = state.store.queue_info(&path.project, &path.queue).await?;
    if let Some(missing) = ids
        .iter()
        .find(|id| !info.config.alerts.iter().any(|a| &a.id == *id))
    {
        return Err(ApiError::NotFound(format!("Alert {missing} not found")));
    }
    change_alerts(state, path, AlertsChange::Remove(ids)).await?;
    Ok(Json(json!({ "msg": "Deleted" })))
}
