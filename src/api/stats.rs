//! `GET /queues/{q}/stats`, ferromq's own: what the console shows of a queue. Its size,
//! reservations and oldest message now, its per-minute history (`store::ops::history`), and
//! each subscriber's push answers.

use super::extract::QueuePath;
use super::input::query_u64;
use super::{ApiError, AppState};
use crate::store::MINUTES_KEPT;
use axum::Json;
use axum::extract::{Query, State};
use serde_json::{Value, json};
use std::collections::HashMap;

#[utoipa::path(
    get,
    path = "/3/projects/{project}/queues/{queue}/stats",
    operation_id = "stats_get",
    tag = "console",
    summary = "ferromq's own: a queue's size now and its history per minute",
    params(("project" = String, Path, description = "Project id", example = "demo"), ("queue" = String, Path, description = "Queue name", example = "orders"), ("minutes" = Option<u64>, Query, description = "1 to 1440 (default 1440)")),
    responses((status = 200, body = super::openapi::StatsAnswer), super::openapi::Errors),
    security(("oauth_header" = []), ("oauth_query" = [])),
)]
pub async fn get(
    State(state): State<AppState>,
    path: QueuePath,
    Query(query): Query<HashMap<String, String>>,
) -> Result<Json<Value>, ApiError> {
    let minutes = query_u64("minutes", query.get("minutes"))?.unwrap_or(MINUTES_KEPT);
    if !(1..=MINUTES_KEPT).contains(&minutes) {
        return Err(ApiError::bad_request(format!(
            "minutes must be from 1 to {MINUTES_KEPT}, got {minutes}"
        )));
    }
    let (project, name) = (path.project.as_str(), path.queue.as_str());
    // Answers 404 for a queue that does not exist.
    let info = state.store.queue_info(project, name).await?;
    let (_, reserved, oldest_ms) = state.store.queue_gauges(project, name).await?;
    let history = state.store.history(project, name, MINUTES_KEPT).await?;
    let subscribers = match info.config.queue_type.is_push() {
        true => state.store.answer_counts(project, name).await?,
        false => Default::default(),
    };
    // The last whole minute, which no process adds to any more (but for a few seconds).
    let now = crate::store::minute_now();
    let last = history.iter().find(|m| m.at == now.saturating_sub(1) * 60);
    let shown = history.iter().filter(|m| m.at / 60 + minutes > now);
    Ok(Json(json!({ "stats": {
        "size": info.size,
        "reserved": reserved,
        "oldest_message_age": oldest_ms / 1000,
        "posted_per_minute": last.map_or(0, |m| m.posted),
        "deleted_per_minute": last.map_or(0, |m| m.deleted),
        "minutes": shown.map(|m| json!({
            "at": m.at,
            "posted": m.posted,
            "reserved": m.reserved,
            "deleted": m.deleted,
            "depth": m.depth,
        })).collect::<Vec<_>>(),
        "subscribers": subscribers.iter().map(|(name, counts)| json!({
            "name": name,
            "delivered": counts.delivered,
            "accepted": counts.accepted,
            "failed": counts.failed,
        })).collect::<Vec<_>>(),
    }})))
}
