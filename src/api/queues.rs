//! Queue routes: list, create, read, update, delete.

use super::alerts::{AlertInput, alerts_of};
use super::extract::{JsonBody, ProjectPath, QueuePath, check_queue_name};
use super::input::{opt_string, opt_u64, query_u64};
use super::{ApiError, AppState};
use crate::model::{
    AlertsChange, ChangedBy, DeadLetterPatch, PushPatch, QueueInfo, QueueSettings, QueueType,
    Subscriber,
};
use crate::settings::push_of;
use axum::Json;
use axum::extract::{Query, State};
use axum::http::Method;
use serde::Deserialize;
use serde_json::{Value, json};
use std::collections::HashMap;

/// Default and largest page of a queue listing.
const DEFAULT_PER_PAGE: u64 = 30;
const MAX_PER_PAGE: u64 = 100;

/// Queue settings as clients send them, wrapped in `{"queue": {...}}` or bare.
#[derive(Debug, Default, Deserialize)]
pub struct QueueBody {
    #[serde(default)]
    queue: Option<Value>,
    #[serde(flatten)]
    bare: HashMap<String, Value>,
}

#[derive(Debug, Default, Deserialize)]
struct SettingsInput {
    #[serde(default, rename = "type", deserialize_with = "opt_string")]
    queue_type: Option<String>,
    #[serde(default, deserialize_with = "opt_u64")]
    message_timeout: Option<u64>,
    #[serde(default, deserialize_with = "opt_u64")]
    message_expiration: Option<u64>,
    /// Largest message body in bytes, below the server's limit (beyond IronMQ; 0: no own limit).
    #[serde(default, deserialize_with = "super::input::opt_count")]
    max_message_size: Option<u64>,
    #[serde(default)]
    push: Option<PushInput>,
    #[serde(default)]
    dead_letter: Option<DeadLetterInput>,
    #[serde(default)]
    alerts: Option<Value>,
}

/// `{"queue_name": "...", "max_reservations": N}`; an empty `queue_name` removes it.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct DeadLetterInput {
    #[serde(default)]
    queue_name: Option<String>,
    #[serde(default, deserialize_with = "super::input::opt_count")]
    max_reservations: Option<u64>,
}

#[derive(Debug, Default, Deserialize)]
struct PushInput {
    #[serde(default)]
    subscribers: Option<Vec<SubscriberInput>>,
    #[serde(default, deserialize_with = "super::input::opt_count")]
    retries: Option<u64>,
    #[serde(default, deserialize_with = "opt_u64")]
    retries_delay: Option<u64>,
    /// `""` turns the error queue off; absent leaves it as it is.
    #[serde(default)]
    error_queue: Option<String>,
    /// `fixed` (default) or `exponential` (with jitter): beyond IronMQ.
    #[serde(default, deserialize_with = "opt_string")]
    backoff: Option<String>,
    /// Sign pushed requests with HMAC-SHA256 under this secret (`""` stops signing).
    #[serde(default)]
    signing_secret: Option<String>,
    /// Seconds a subscriber has to answer (beyond IronMQ; 0: the server's push timeout).
    #[serde(default, deserialize_with = "super::input::opt_count")]
    timeout: Option<u64>,
}

/// A subscriber as clients send it. v1 clients identified subscribers by URL alone; such a
/// subscriber is named by its URL.
#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
pub struct SubscriberInput {
    #[serde(default, deserialize_with = "opt_string")]
    name: Option<String>,
    /// `http(s)://...`, or `ironmq:///queue` to post to another queue.
    #[serde(default, deserialize_with = "opt_string")]
    #[schema(required)]
    url: Option<String>,
    #[serde(default)]
    headers: Option<std::collections::BTreeMap<String, String>>,
    /// This subscriber's own retries and retries_delay (beyond IronMQ; multicast queues).
    #[serde(default, deserialize_with = "super::input::opt_count")]
    retries: Option<u64>,
    #[serde(default, deserialize_with = "opt_u64")]
    retries_delay: Option<u64>,
    /// Deliveries a second to this subscriber, over every process (beyond IronMQ).
    #[serde(default, deserialize_with = "super::input::opt_number")]
    max_per_second: Option<f64>,
    /// Deliveries in flight at once to this subscriber (beyond IronMQ).
    #[serde(default, deserialize_with = "super::input::opt_count")]
    max_concurrency: Option<u64>,
    /// Failed tries in a row that pause the subscriber (circuit breaker, beyond IronMQ).
    #[serde(default, deserialize_with = "super::input::opt_count")]
    pause_after_failures: Option<u64>,
    /// Seconds before a paused subscriber's first probe (default 5; doubled per failed probe).
    #[serde(default, deserialize_with = "super::input::opt_count")]
    probe_interval: Option<u64>,
    /// Send `Authorization: Bearer <JWT>` (beyond IronMQ).
    #[serde(default)]
    #[schema(value_type = Option<Object>)]
    jwt: Option<crate::model::JwtAuth>,
    /// Send CloudEvents binary-mode `ce-*` headers (beyond IronMQ).
    #[serde(default, deserialize_with = "super::input::lenient_bool")]
    cloudevents: bool,
}

impl SubscriberInput {
    pub fn into_subscriber(self, index: usize) -> Result<Subscriber, ApiError> {
        let url = self
            .url
            .ok_or_else(|| ApiError::bad_request(format!("subscribers[{index}] needs a url")))?;
        Ok(Subscriber {
            name: self.name.unwrap_or_else(|| url.clone()),
            url,
            headers: self.headers.unwrap_or_default(),
            retries: self.retries.map(saturate),
            retries_delay: self.retries_delay,
            max_per_second: self.max_per_second,
            max_concurrency: self.max_concurrency.map(saturate),
            pause_after_failures: self.pause_after_failures.map(saturate),
            probe_interval: self.probe_interval,
            jwt: self.jwt,
            cloudevents: self.cloudevents,
        })
    }

    /// The name a removal refers to (by name, or by URL for v1 clients).
    pub fn name_or_url(&self) -> Option<&str> {
        self.name.as_deref().or(self.url.as_deref())
    }
}

/// A count as the settings hold it; one too large for them is refused by their checks.
fn saturate(n: u64) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

pub fn subscribers_of(input: Vec<SubscriberInput>) -> Result<Vec<Subscriber>, ApiError> {
    let subscribers = input
        .into_iter()
        .enumerate()
        .map(|(i, s)| s.into_subscriber(i))
        .collect::<Result<Vec<_>, _>>()?;
    crate::settings::check_jwt_sources(&subscribers)
        .map_err(|invalid| ApiError::bad_request(invalid.0))?;
    Ok(subscribers)
}

/// True for `null`, `{}`, `[]` and `""`: what clients send for "nothing here".
fn is_blank(value: &Option<Value>) -> bool {
    match value {
        None | Some(Value::Null) => true,
        Some(Value::Object(o)) => o.is_empty(),
        Some(Value::Array(a)) => a.is_empty(),
        Some(Value::String(s)) => s.is_empty(),
        Some(_) => false,
    }
}

impl QueueBody {
    /// The settings asked for. Alerts given are added, as the clients' `PATCH` expects; a `PUT`
    /// that gives some replaces them, as Python's `update_alerts` expects.
    fn settings(self, replace_alerts: bool) -> Result<QueueSettings, ApiError> {
        let raw = match self.queue {
            // PHP encodes an empty settings array as `"queue": []`.
            Some(Value::Array(a)) if a.is_empty() => Value::Object(Default::default()),
            Some(v) => v,
            None => Value::Object(self.bare.into_iter().collect()),
        };
        let input: SettingsInput = super::extract::parse_json(raw.to_string().as_bytes())?;
        input.validate(replace_alerts)
    }
}

impl SettingsInput {
    fn validate(self, replace_alerts: bool) -> Result<QueueSettings, ApiError> {
        let queue_type = match self.queue_type.as_deref() {
            None => None,
            Some(t) => Some(QueueType::parse(t).ok_or_else(|| {
                ApiError::bad_request(format!(
                    "Invalid type {t:?}: use pull, unicast or multicast"
                ))
            })?),
        };
        let push = match self.push {
            None => None,
            Some(p) => Some(PushPatch {
                subscribers: p.subscribers.map(subscribers_of).transpose()?,
                retries: p.retries.map(|r| u32::try_from(r).unwrap_or(u32::MAX)),
                retries_delay: p.retries_delay,
                error_queue: p.error_queue,
                backoff: match p.backoff.as_deref() {
                    None => None,
                    Some("fixed") => Some(crate::model::Backoff::Fixed),
                    Some("exponential") => Some(crate::model::Backoff::Exponential),
                    Some(other) => {
                        return Err(ApiError::bad_request(format!(
                            "Invalid backoff {other:?}: use fixed or exponential"
                        )));
                    }
                },
                signing_secret: p.signing_secret,
                timeout: p.timeout,
            }),
        };
        // `{}` (what some clients send for "none") leaves it as it is.
        let dead_letter = self
            .dead_letter
            .filter(|d| d.queue_name.is_some() || d.max_reservations.is_some())
            .map(|d| DeadLetterPatch {
                queue_name: d.queue_name,
                max_reservations: d.max_reservations,
            });
        let alerts = match self.alerts {
            blank if is_blank(&blank) => None,
            Some(list @ Value::Array(_)) => {
                let input: Vec<AlertInput> = serde_json::from_value(list)
                    .map_err(|e| ApiError::bad_request(format!("Invalid alerts: {e}")))?;
                let alerts = alerts_of(input)?;
                Some(if replace_alerts {
                    AlertsChange::Replace(alerts)
                } else {
                    AlertsChange::Add(alerts)
                })
            }
            _ => return Err(ApiError::bad_request("alerts must be a list")),
        };
        Ok(QueueSettings {
            queue_type,
            message_timeout: self.message_timeout,
            message_expiration: self.message_expiration,
            max_message_size: self.max_message_size,
            push,
            dead_letter,
            alerts,
        })
    }
}

/// The `queue` object of queue answers.
pub fn queue_json(info: &QueueInfo) -> Value {
    let mut queue = json!({
        "id": info.id,
        "project_id": info.project,
        "name": info.name,
        "type": info.config.queue_type.as_str(),
        "size": info.size,
        "total_messages": info.total_messages,
        "message_timeout": info.config.message_timeout,
        "message_expiration": info.config.message_expiration,
    });
    if let Some(push) = push_of(&info.config) {
        queue["push"] = json!({
            "subscribers": push.subscribers,
            "retries": push.retries,
            "retries_delay": push.retries_delay,
            "error_queue": push.error_queue,
            "backoff": push.backoff,
            // The secret itself is never shown.
            "signed": push.signing_secret.is_some(),
        });
        if push.timeout > 0 {
            queue["push"]["timeout"] = json!(push.timeout);
        }
    }
    if info.config.max_message_size > 0 {
        queue["max_message_size"] = json!(info.config.max_message_size);
    }
    if let Some(dead_letter) = &info.config.dead_letter {
        queue["dead_letter"] = json!({
            "queue_name": dead_letter.queue,
            "max_reservations": dead_letter.max_reservations,
        });
    }
    if !info.config.alerts.is_empty() {
        queue["alerts"] = json!(info.config.alerts);
    }
    if let Some(resource) = &info.config.managed_by {
        queue["managed_by"] = json!(resource);
    }
    queue
}

#[utoipa::path(
    get,
    path = "/3/projects/{project}/queues",
    operation_id = "queues_list",
    tag = "queues",
    summary = "List a project's queues, by name",
    params(("project" = String, Path, description = "Project id", example = "demo"), ("per_page" = Option<u64>, Query, description = "1 to 100 (default 30)"), ("previous" = Option<String>, Query, description = "List after this name"), ("prefix" = Option<String>, Query, description = "Only names starting with it")),
    responses((status = 200, body = super::openapi::QueueList), super::openapi::Errors),
    security(("oauth_header" = []), ("oauth_query" = [])),
)]
pub async fn list(
    State(state): State<AppState>,
    path: ProjectPath,
    Query(query): Query<HashMap<String, String>>,
) -> Result<Json<Value>, ApiError> {
    // Clients ask for more than the maximum (the Go client's tests ask 101): clamp, don't fail.
    let per_page = query_u64("per_page", query.get("per_page"))?
        .filter(|n| *n > 0)
        .unwrap_or(DEFAULT_PER_PAGE)
        .min(MAX_PER_PAGE);
    // `prev` is the Rust client's spelling of `previous`.
    let previous = query
        .get("previous")
        .or_else(|| query.get("prev"))
        .filter(|p| !p.is_empty());
    let prefix = query.get("prefix").map(String::as_str).unwrap_or("");
    let names = state
        .store
        .list_queues(
            &path.project,
            previous.map(String::as_str),
            prefix,
            per_page as usize,
        )
        .await?;
    let queues: Vec<Value> = names
        .into_iter()
        .map(|name| json!({ "name": name }))
        .collect();
    Ok(Json(json!({ "queues": queues })))
}

#[utoipa::path(
    get,
    path = "/3/projects/{project}/queues/{queue}",
    operation_id = "queues_get",
    tag = "queues",
    summary = "A queue's settings and size",
    params(("project" = String, Path, description = "Project id", example = "demo"), ("queue" = String, Path, description = "Queue name", example = "orders")),
    responses((status = 200, body = super::openapi::QueueAnswer), super::openapi::Errors),
    security(("oauth_header" = []), ("oauth_query" = [])),
)]
pub async fn get(State(state): State<AppState>, path: QueuePath) -> Result<Json<Value>, ApiError> {
    let info = state.store.queue_info(&path.project, &path.queue).await?;
    Ok(Json(json!({ "queue": queue_json(&info) })))
}

/// PUT, POST and PATCH alike: IronMQ clients use all three to create or change a queue, and
/// only the fields given change. (One operation per method in the OpenAPI document.)
#[utoipa::path(
    put,
    path = "/3/projects/{project}/queues/{queue}",
    operation_id = "queues_put",
    tag = "queues",
    summary = "Create a queue, or change the settings given (alerts given replace the queue's)",
    params(("project" = String, Path, description = "Project id", example = "demo"), ("queue" = String, Path, description = "Queue name", example = "orders")),
    request_body = super::openapi::QueueSettingsBody,
    responses((status = 200, body = super::openapi::QueueAnswer), super::openapi::Errors),
    security(("oauth_header" = []), ("oauth_query" = [])),
)]
pub async fn put(
    state: State<AppState>,
    path: QueuePath,
    body: JsonBody<QueueBody>,
) -> Result<Json<Value>, ApiError> {
    apply(state, Method::PUT, path, body).await
}

#[utoipa::path(
    post,
    path = "/3/projects/{project}/queues/{queue}",
    operation_id = "queues_post",
    tag = "queues",
    summary = "As PATCH (clients create queues with POST)",
    params(("project" = String, Path, description = "Project id", example = "demo"), ("queue" = String, Path, description = "Queue name", example = "orders")),
    request_body = super::openapi::QueueSettingsBody,
    responses((status = 200, body = super::openapi::QueueAnswer), super::openapi::Errors),
    security(("oauth_header" = []), ("oauth_query" = [])),
)]
pub async fn post(
    state: State<AppState>,
    path: QueuePath,
    body: JsonBody<QueueBody>,
) -> Result<Json<Value>, ApiError> {
    apply(state, Method::POST, path, body).await
}

#[utoipa::path(
    patch,
    path = "/3/projects/{project}/queues/{queue}",
    operation_id = "queues_patch",
    tag = "queues",
    summary = "Create a queue, or change the settings given (alerts given are added)",
    params(("project" = String, Path, description = "Project id", example = "demo"), ("queue" = String, Path, description = "Queue name", example = "orders")),
    request_body = super::openapi::QueueSettingsBody,
    responses((status = 200, body = super::openapi::QueueAnswer), super::openapi::Errors),
    security(("oauth_header" = []), ("oauth_query" = [])),
)]
pub async fn patch(
    state: State<AppState>,
    path: QueuePath,
    body: JsonBody<QueueBody>,
) -> Result<Json<Value>, ApiError> {
    apply(state, Method::PATCH, path, body).await
}

async fn apply(
    State(state): State<AppState>,
    method: Method,
    path: QueuePath,
    JsonBody(body): JsonBody<QueueBody>,
) -> Result<Json<Value>, ApiError> {
    check_queue_name(&path.queue)?;
    let settings = body.settings(method == Method::PUT)?;
    let (info, _created) = state
        .store
        .apply_queue(&path.project, &path.queue, &settings, true, ChangedBy::Api)
        .await?;
    Ok(Json(json!({ "queue": queue_json(&info) })))
}

#[utoipa::path(
    delete,
    path = "/3/projects/{project}/queues/{queue}",
    operation_id = "queues_delete",
    tag = "queues",
    summary = "Delete a queue and its messages",
    params(("project" = String, Path, description = "Project id", example = "demo"), ("queue" = String, Path, description = "Queue name", example = "orders")),
    responses((status = 200, body = super::openapi::Msg), super::openapi::Errors),
    security(("oauth_header" = []), ("oauth_query" = [])),
)]
pub async fn delete(
    State(state): State<AppState>,
    path: QueuePath,
) -> Result<Json<Value>, ApiError> {
    state
        .store
        .delete_queue(&path.project, &path.queue, ChangedBy::Api)
        .await?;
    // With the period: the Go and .NET clients compare the text exactly.
    Ok(Json(json!({ "msg": "Deleted." })))
}
