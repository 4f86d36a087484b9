//! Redrive (beyond IronMQ): moving the messages waiting in a dead-letter or error queue back to
//! the queue they came from, or to another, as a task that survives the process running it.
//! `POST /queues/{q}/redrive` starts one, `GET` shows its progress, `DELETE` cancels it.

use super::extract::{JsonBody, QueuePath, check_queue_name};
use super::input::opt_u64;
use super::{ApiError, AppState};
use crate::model::{MAX_REDRIVE_RATE, QueueType, Redrive};
use crate::store::StoreError;
use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde::Deserialize;
use serde_json::{Value, json};
use utoipa::ToSchema;

#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RedriveBody {
    /// Where to: by default the queue whose dead-letter or error queue this is.
    #[serde(default)]
    to: Option<String>,
    /// Most messages to move (default: every one waiting).
    #[serde(default, deserialize_with = "opt_u64")]
    max: Option<u64>,
    /// Messages per second (default: as fast as it goes).
    #[serde(default, deserialize_with = "opt_u64")]
    rate: Option<u64>,
}

fn answer(redrive: Redrive) -> Value {
    json!({ "redrive": redrive })
}

#[utoipa::path(
    post,
    path = "/3/projects/{project}/queues/{queue}/redrive",
    operation_id = "redrive_start",
    tag = "redrive",
    summary = "ferromq's own: move a dead-letter or error queue's messages back",
    params(("project" = String, Path, description = "Project id", example = "demo"), ("queue" = String, Path, description = "Queue name", example = "orders")),
    request_body = RedriveBody,
    responses((status = 201, body = super::openapi::RedriveAnswer), super::openapi::Errors),
    security(("oauth_header" = []), ("oauth_query" = [])),
)]
pub async fn start(
    State(state): State<AppState>,
    path: QueuePath,
    JsonBody(body): JsonBody<RedriveBody>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let store = &state.store;
    let info = store.queue_info(&path.project, &path.queue).await?;
    if info.config.queue_type != QueueType::Pull {
        return Err(ApiError::bad_request(
            "Only a pull queue's messages can be redriven: a push queue hands its own to its subscribers",
        ));
    }
    if body.rate.is_some_and(|r| r > MAX_REDRIVE_RATE) {
        return Err(ApiError::bad_request(format!(
            "rate must be between 1 and {MAX_REDRIVE_RATE} messages per second"
        )));
    }
    let sources = store.queues_sending_to(&path.project, &path.queue).await?;
    if sources.is_empty() {
        return Err(ApiError::bad_request(format!(
            "{} is not the dead-letter queue or error queue of any queue: nothing to redrive",
            path.queue
        )));
    }
    let to = match body.to.filter(|t| !t.is_empty()) {
        Some(to) => {
            check_queue_name(&to)?;
            if to == path.queue {
                return Err(ApiError::bad_request(
                    "A queue cannot be redriven to itself",
                ));
            }
            to
        }
        None => {
            let mut names: Vec<&str> = sources.iter().map(|(q, _)| q.as_str()).collect();
            names.dedup();
            match names.as_slice() {
                [only] => only.to_string(),
                several => {
                    return Err(ApiError::bad_request(format!(
                        "Messages come here from several queues ({}): name one with \"to\"",
                        several.join(", ")
                    )));
                }
            }
        }
    };
    let unwrap = sources.iter().any(|(_, error_queue)| *error_queue);
    let redrive = store
        .start_redrive(
            &path.project,
            &path.queue,
            &to,
            body.max.unwrap_or(0),
            body.rate.unwrap_or(0),
            unwrap,
        )
        .await
        .map_err(|err| match err {
            StoreError::Invalid(msg) => ApiError::Conflict(msg),
            other => other.into(),
        })?;
    Ok((StatusCode::CREATED, Json(answer(redrive))))
}

#[utoipa::path(
    get,
    path = "/3/projects/{project}/queues/{queue}/redrive",
    operation_id = "redrive_status",
    tag = "redrive",
    summary = "ferromq's own: the last redrive of this queue",
    params(("project" = String, Path, description = "Project id", example = "demo"), ("queue" = String, Path, description = "Queue name", example = "orders")),
    responses((status = 200, body = super::openapi::RedriveAnswer), super::openapi::Errors),
    security(("oauth_header" = []), ("oauth_query" = [])),
)]
pub async fn status(
    State(state): State<AppState>,
    path: QueuePath,
) -> Result<Json<Value>, ApiError> {
    match state.store.redrive(&path.project, &path.queue).await? {
        Some(redrive) => Ok(Json(answer(redrive))),
        None => Err(ApiError::NotFound("No redrive of this queue".into())),
    }
}

#[utoipa::path(
    delete,
    path = "/3/projects/{project}/queues/{queue}/redrive",
    operation_id = "redrive_cancel",
    tag = "redrive",
    summary = "ferromq's own: cancel the running redrive",
    params(("project" = String, Path, description = "Project id", example = "demo"), ("queue" = String, Path, description = "Queue name", example = "orders")),
    responses((status = 200, body = super::openapi::RedriveAnswer), super::openapi::Errors),
    security(("oauth_header" = []), ("oauth_query" = [])),
)]
pub async fn cancel(
    State(state): State<AppState>,
    path: QueuePath,
) -> Result<Json<Value>, ApiError> {
    match state
        .store
        .cancel_redrive(&path.project, &path.queue)
        .await?
    {
        Some(redrive) => {
            let msg = match redrive.state.as_str() {
                "cancelled" => "Cancelled".to_string(),
                state => format!("Nothing to cancel: the redrive is {state}"),
            };
            Ok(Json(json!({ "msg": msg, "redrive": redrive })))
        }
        None => Err(ApiError::NotFound("No redrive of this queue".into())),
    }
}
