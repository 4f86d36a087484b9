//! Message routes: post, reserve, peek, get, delete (one, many, all), touch, release, webhook.

use super::extract::{JsonBody, MessagePath, QueuePath, RawBody};
use super::input::{lenient_bool, opt_string, opt_u64, query_u64};
use super::{ApiError, AppState};
use crate::model::{
    DeleteRef, MAX_BATCH, MAX_DELAY, MAX_MESSAGE_TIMEOUT, MAX_PUSH_HEADERS, MAX_WAIT, Message,
    NewMessage, ReserveRequest, Trace,
};
use crate::store::{IdempotencyKey, StoreError};
use crate::telemetry::spans::{self, Attribute, Kind};
use axum::Json;
use axum::extract::FromRequestParts;
use axum::extract::{Query, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use serde::Deserialize;
use serde_json::{Value, json};
use std::collections::{BTreeMap, HashMap};
use std::time::Duration;
use utoipa::ToSchema;

/// Longest push header name, and value, in bytes.
const MAX_PUSH_HEADER_NAME: usize = 64;
const MAX_PUSH_HEADER_VALUE: usize = 1024;
/// Header names the pusher sets itself, which a message may not override.
const RESERVED_PUSH_HEADERS: [&str; 6] = [
    "content-type",
    "user-agent",
    "iron-message-id",
    "iron-reservation-id",
    "iron-subscriber-name",
    "iron-subscriber-message-url",
];

fn message_json(m: &Message) -> Value {
    let mut v = json!({ "id": m.id, "body": m.body, "reserved_count": m.reserved_count });
    if let Some(rid) = &m.reservation_id {
        v["reservation_id"] = json!(rid);
    }
    if let Some(trace) = &m.trace {
        v[Trace::PARENT] = json!(trace.traceparent);
        if let Some(state) = &trace.tracestate {
            v[Trace::STATE] = json!(state);
        }
    }
    v
}

fn messages_json(messages: &[Message]) -> Json<Value> {
    Json(json!({ "messages": messages.iter().map(message_json).collect::<Vec<_>>() }))
}

fn check_delay(delay: Option<u64>) -> Result<u64, ApiError> {
    match delay {
        Some(d) if d > MAX_DELAY => Err(ApiError::bad_request(format!(
            "delay must be between 0 and {MAX_DELAY} seconds"
        ))),
        d => Ok(d.unwrap_or(0)),
    }
}

fn check_push_headers(headers: &BTreeMap<String, String>) -> Result<(), ApiError> {
    if headers.len() > MAX_PUSH_HEADERS {
        return Err(ApiError::bad_request(format!(
            "A message may carry at most {MAX_PUSH_HEADERS} push_headers"
        )));
    }
    for (name, value) in headers {
        if name.is_empty() || name.len() > MAX_PUSH_HEADER_NAME {
            return Err(ApiError::bad_request(format!(
                "push_headers names must be 1 to {MAX_PUSH_HEADER_NAME} bytes"
            )));
        }
        let lower = name.to_ascii_lowercase();
        if RESERVED_PUSH_HEADERS.contains(&lower.as_str())
            || crate::settings::FRAMING_HEADERS.contains(&lower.as_str())
        {
            return Err(ApiError::bad_request(format!(
                "push_headers may not set {name}"
            )));
        }
        if axum::http::HeaderName::from_bytes(name.as_bytes()).is_err() {
            return Err(ApiError::bad_request(format!(
                "{name:?} is not a valid header name"
            )));
        }
        if value.is_empty() || value.len() > MAX_PUSH_HEADER_VALUE {
            return Err(ApiError::bad_request(format!(
                "push_headers values must be 1 to {MAX_PUSH_HEADER_VALUE} bytes"
            )));
        }
        if axum::http::HeaderValue::from_str(value).is_err() {
            return Err(ApiError::bad_request(format!(
                "The value of push header {name} is not valid"
            )));
        }
    }
    Ok(())
}

fn check_body_size(body: &str, state: &AppState) -> Result<(), ApiError> {
    let limit = state.limits.max_message_size;
    if body.len() > limit {
        return Err(ApiError::PayloadTooLarge(format!(
            "Message body too large ({} bytes, limit {limit})",
            body.len()
        )));
    }
    Ok(())
}

#[derive(Debug, Default, Deserialize, ToSchema)]
pub struct PostBody {
    /// 1 to 100 messages.
    #[serde(default)]
    #[schema(min_items = 1, max_items = 100)]
    messages: Option<Vec<PostMessage>>,
}

#[derive(Debug, Deserialize, ToSchema)]
struct PostMessage {
    #[schema(required)]
    body: Option<String>,
    /// Seconds before it can be reserved (0 to 604800).
    #[serde(default, deserialize_with = "opt_u64")]
    #[schema(maximum = 604800)]
    delay: Option<u64>,
    /// Headers sent with each push of this message.
    #[serde(default)]
    push_headers: Option<BTreeMap<String, String>>,
}

impl PostBody {
    fn validate(self, state: &AppState) -> Result<Vec<NewMessage>, ApiError> {
        let messages = self.messages.unwrap_or_default();
        if messages.is_empty() {
            return Err(ApiError::bad_request(
                "No messages: send {\"messages\": [{\"body\": \"...\"}]}",
            ));
        }
        if messages.len() > MAX_BATCH {
            return Err(ApiError::bad_request(format!(
                "At most {MAX_BATCH} messages may be posted at once"
            )));
        }
        messages
            .into_iter()
            .enumerate()
            .map(|(i, m)| {
                let body = m
                    .body
                    .ok_or_else(|| ApiError::bad_request(format!("messages[{i}] has no body")))?;
                check_body_size(&body, state)?;
                let push_headers = m.push_headers.unwrap_or_default();
                check_push_headers(&push_headers)?;
                Ok(NewMessage {
                    body,
                    delay: check_delay(m.delay)?,
                    push_headers,
                })
            })
            .collect()
    }
}

fn posted(ids: Vec<String>) -> (StatusCode, Json<Value>) {
    (
        StatusCode::CREATED,
        Json(json!({ "ids": ids, "msg": "Messages put on queue." })),
    )
}

#[utoipa::path(
    post,
    path = "/3/projects/{project}/queues/{queue}/messages",
    operation_id = "messages_post",
    tag = "messages",
    summary = "Post messages (creates the queue when missing)",
    params(("project" = String, Path, description = "Project id", example = "demo"), ("queue" = String, Path, description = "Queue name", example = "orders"), ("Idempotency-Key" = Option<String>, Header, description = "ferromq's own: the same post with the same key within the window stores nothing again")),
    request_body = PostBody,
    responses((status = 201, body = super::openapi::Posted), super::openapi::Errors),
    security(("oauth_header" = []), ("oauth_query" = [])),
)]
pub async fn post(
    State(state): State<AppState>,
    path: QueuePath,
    IdempotencyKeyHeader(key): IdempotencyKeyHeader,
    TraceHeaders(trace): TraceHeaders,
    JsonBody(body): JsonBody<PostBody>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let key = key.map(|key| IdempotencyKey {
        key,
        window: state.limits.idempotency_window,
    });
    let mut messages = body.validate(&state)?;
    let (project, queue) = (path.project.as_str(), path.queue.as_str());
    let _span = queue_span(
        "ferromq.post",
        Kind::Producer,
        &trace,
        project,
        queue,
        &[],
        messages.len(),
    );
    if let Some(trace) = trace {
        for message in &mut messages {
            keep_trace(message, &trace);
        }
    }
    let ids = state
        .store
        .post_with_key(&path.project, &path.queue, messages, key)
        .await?;
    Ok(posted(ids))
}

/// The W3C trace context (`traceparent`, `tracestate`) a post came with, if it is a valid
/// one (an invalid one is ignored, as the W3C recommendation says).
pub struct TraceHeaders(Option<Trace>);

impl<S: Send + Sync> FromRequestParts<S> for TraceHeaders {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, ApiError> {
        let text = |name: &str| {
            parts
                .headers
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::trim)
        };
        let trace = text(Trace::PARENT)
            .filter(|parent| Trace::parse_parent(parent).is_some())
            .map(|parent| Trace {
                traceparent: parent.to_string(),
                tracestate: text(Trace::STATE)
                    .filter(|s| !s.is_empty() && s.len() <= MAX_PUSH_HEADER_VALUE)
                    .map(str::to_string),
            });
        Ok(TraceHeaders(trace))
    }
}

/// The span of an operation on a queue (when spans are exported): a child of the request's
/// trace context, linked to `links`.
fn queue_span(
    name: &'static str,
    kind: Kind,
    trace: &Option<Trace>,
    project: &str,
    queue: &str,
    links: &[(&str, Option<&str>)],
    messages: usize,
) -> Option<spans::Span> {
    if !spans::on() {
        return None;
    }
    let parent = trace
        .as_ref()
        .map(|t| (t.traceparent.as_str(), t.tracestate.as_deref()));
    spans::start(
        name,
        kind,
        parent,
        links,
        vec![
            Attribute::new("messaging.system", "ferromq"),
            Attribute::new("messaging.destination.name", format!("{project}/{queue}")),
            Attribute::new("messaging.batch.message_count", messages as i64),
        ],
    )
}

/// Keeps a post's trace context with a message, among its push headers, unless it has its own.
fn keep_trace(message: &mut NewMessage, trace: &Trace) {
    let headers = &mut message.push_headers;
    if headers
        .keys()
        .any(|k| k.eq_ignore_ascii_case(Trace::PARENT))
    {
        return;
    }
    headers.insert(Trace::PARENT.to_string(), trace.traceparent.clone());
    if let Some(state) = &trace.tracestate {
        headers.insert(Trace::STATE.to_string(), state.clone());
    }
}

/// Longest Idempotency-Key taken.
const MAX_IDEMPOTENCY_KEY: usize = 255;

/// The post's `Idempotency-Key` header (IETF httpapi draft: a structured-field string, so
/// quoted; a bare token is taken too, as most clients send one). Read alone, without copying
/// the request's headers.
pub struct IdempotencyKeyHeader(Option<String>);

impl<S: Send + Sync> FromRequestParts<S> for IdempotencyKeyHeader {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, ApiError> {
        idempotency_key(parts.headers.get("idempotency-key")).map(IdempotencyKeyHeader)
    }
}

fn idempotency_key(value: Option<&HeaderValue>) -> Result<Option<String>, ApiError> {
    let Some(value) = value else {
        return Ok(None);
    };
    let text = value.to_str().unwrap_or_default().trim();
    let key = text
        .strip_prefix('"')
        .and_then(|t| t.strip_suffix('"'))
        .unwrap_or(text);
    if key.is_empty()
        || key.len() > MAX_IDEMPOTENCY_KEY
        || !key
            .bytes()
            .all(|b| b.is_ascii_graphic() && b != b'"' && b != b'\\')
    {
        return Err(ApiError::bad_request(format!(
            "Idempotency-Key must be 1 to {MAX_IDEMPOTENCY_KEY} printable ASCII characters (no quotes or backslashes)"
        )));
    }
    Ok(Some(key.to_string()))
}

/// The raw body becomes one message; `X-Subscribers-NAME` headers become push header `NAME`
/// (invalid ones are dropped, as IronMQ does).
#[utoipa::path(
    post,
    path = "/3/projects/{project}/queues/{queue}/webhook",
    operation_id = "messages_webhook",
    tag = "messages",
    summary = "Post the request body as one message; X-Subscribers-NAME headers become its push headers",
    params(("project" = String, Path, description = "Project id", example = "demo"), ("queue" = String, Path, description = "Queue name", example = "orders")),
    request_body(content = String, content_type = "text/plain"),
    responses((status = 201, body = super::openapi::Posted), super::openapi::Errors),
    security(("oauth_header" = []), ("oauth_query" = [])),
)]
pub async fn webhook(
    State(state): State<AppState>,
    path: QueuePath,
    headers: HeaderMap,
    RawBody(bytes): RawBody,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let body = String::from_utf8(bytes.to_vec())
        .map_err(|_| ApiError::bad_request("Webhook body must be UTF-8 text"))?;
    check_body_size(&body, &state)?;
    let mut push_headers = BTreeMap::new();
    for (name, value) in &headers {
        let Some(target) = name.as_str().strip_prefix("x-subscribers-") else {
            continue;
        };
        let Ok(value) = value.to_str() else { continue };
        let single = BTreeMap::from([(target.to_string(), value.to_string())]);
        if push_headers.len() < MAX_PUSH_HEADERS && check_push_headers(&single).is_ok() {
            push_headers.extend(single);
        }
    }
    let message = NewMessage {
        body,
        delay: 0,
        push_headers,
    };
    let ids = state
        .store
        .post(&path.project, &path.queue, [message])
        .await?;
    Ok(posted(ids))
}

#[derive(Debug, Default, Deserialize, ToSchema)]
pub struct ReserveBody {
    /// How many (1 to 100; default 1).
    #[serde(default, deserialize_with = "opt_u64")]
    #[schema(minimum = 1, maximum = 100)]
    n: Option<u64>,
    /// Seconds the reservation lasts (default: the queue's message_timeout).
    #[serde(default, deserialize_with = "opt_u64")]
    timeout: Option<u64>,
    /// Seconds to wait for a message when none is ready (a long poll; longer waits are cut to
    /// 30).
    #[serde(default, deserialize_with = "opt_u64")]
    #[schema(maximum = 30)]
    wait: Option<u64>,
    /// Delete the messages as they are handed out.
    #[serde(default, deserialize_with = "lenient_bool")]
    delete: bool,
}

impl ReserveBody {
    fn validate(self) -> Result<(ReserveRequest, Duration), ApiError> {
        let n = self.n.unwrap_or(1);
        if n > MAX_BATCH as u64 {
            return Err(ApiError::bad_request(format!(
                "n must be between 1 and {MAX_BATCH}"
            )));
        }
        if let Some(t) = self.timeout
            && t > MAX_MESSAGE_TIMEOUT
        {
            return Err(ApiError::bad_request(format!(
                "timeout must be between 1 and {MAX_MESSAGE_TIMEOUT} seconds"
            )));
        }
        // Longer waits are cut to the maximum, as IronMQ does, rather than refused.
        let wait = self.wait.unwrap_or(0).min(MAX_WAIT);
        let request = ReserveRequest {
            n: n as usize,
            timeout: self.timeout,
            delete: self.delete,
        };
        Ok((request, Duration::from_secs(wait)))
    }
}

#[utoipa::path(
    post,
    path = "/3/projects/{project}/queues/{queue}/reservations",
    operation_id = "messages_reserve",
    tag = "messages",
    summary = "Reserve messages, waiting for one when asked (long poll)",
    params(("project" = String, Path, description = "Project id", example = "demo"), ("queue" = String, Path, description = "Queue name", example = "orders")),
    request_body = ReserveBody,
    responses((status = 200, body = super::openapi::Messages), super::openapi::Errors),
    security(("oauth_header" = []), ("oauth_query" = [])),
)]
pub async fn reserve(
    State(state): State<AppState>,
    path: QueuePath,
    TraceHeaders(trace): TraceHeaders,
    JsonBody(body): JsonBody<ReserveBody>,
) -> Result<Json<Value>, ApiError> {
    let (request, wait) = body.validate()?;
    // A long poll ends (empty) a second before the request deadline would cut it off.
    let wait = wait.min(
        state
            .limits
            .request_timeout
            .saturating_sub(Duration::from_secs(1)),
    );
    let messages = state
        .store
        .reserve(&path.project, &path.queue, &request, wait)
        .await?;
    if spans::on() {
        // Linked to the trace each message was posted in.
        let links: Vec<(&str, Option<&str>)> = messages
            .iter()
            .filter_map(|m| m.trace.as_ref())
            .map(|t| (t.traceparent.as_str(), t.tracestate.as_deref()))
            .collect();
        let (project, queue) = (path.project.as_str(), path.queue.as_str());
        queue_span(
            "ferromq.reserve",
            Kind::Consumer,
            &trace,
            project,
            queue,
            &links,
            messages.len(),
        );
    }
    Ok(messages_json(&messages))
}

#[utoipa::path(
    get,
    path = "/3/projects/{project}/queues/{queue}/messages",
    operation_id = "messages_peek",
    tag = "messages",
    summary = "The next messages, without reserving them",
    params(("project" = String, Path, description = "Project id", example = "demo"), ("queue" = String, Path, description = "Queue name", example = "orders"), ("n" = Option<u64>, Query, description = "1 to 100 (default 1)")),
    responses((status = 200, body = super::openapi::Messages), super::openapi::Errors),
    security(("oauth_header" = []), ("oauth_query" = [])),
)]
pub async fn peek(
    State(state): State<AppState>,
    path: QueuePath,
    Query(query): Query<HashMap<String, String>>,
) -> Result<Json<Value>, ApiError> {
    let n = query_u64("n", query.get("n"))?
        .filter(|n| *n > 0)
        .unwrap_or(1);
    if n > MAX_BATCH as u64 {
        return Err(ApiError::bad_request(format!(
            "n must be between 1 and {MAX_BATCH}"
        )));
    }
    let messages = state
        .store
        .peek(&path.project, &path.queue, n as usize)
        .await?;
    Ok(messages_json(&messages))
}

#[utoipa::path(
    get,
    path = "/3/projects/{project}/queues/{queue}/messages/{id}",
    operation_id = "messages_get",
    tag = "messages",
    summary = "One message",
    params(("project" = String, Path, description = "Project id", example = "demo"), ("queue" = String, Path, description = "Queue name", example = "orders"), ("id" = String, Path, description = "Message id")),
    responses((status = 200, body = super::openapi::OneMessage), super::openapi::Errors),
    security(("oauth_header" = []), ("oauth_query" = [])),
)]
pub async fn get(
    State(state): State<AppState>,
    path: MessagePath,
) -> Result<Json<Value>, ApiError> {
    let message = state
        .store
        .get_message(&path.project, &path.queue, &path.id)
        .await?;
    Ok(Json(json!({ "message": message_json(&message) })))
}

#[derive(Debug, Default, Deserialize, ToSchema)]
pub struct DeleteBody {
    #[serde(default, deserialize_with = "opt_string")]
    reservation_id: Option<String>,
    /// With a subscriber name, this acknowledges a push that subscriber answered 202 for.
    #[serde(default, deserialize_with = "opt_string")]
    subscriber_name: Option<String>,
}

/// The reservation id may also come in the query string (a subscriber-message URL carries it).
#[utoipa::path(
    delete,
    path = "/3/projects/{project}/queues/{queue}/messages/{id}",
    operation_id = "messages_delete",
    tag = "messages",
    summary = "Delete a message (a reserved one with its reservation id)",
    params(("project" = String, Path, description = "Project id", example = "demo"), ("queue" = String, Path, description = "Queue name", example = "orders"), ("id" = String, Path, description = "Message id"), ("reservation_id" = Option<String>, Query, description = "Instead of the body's"), ("subscriber_name" = Option<String>, Query, description = "Instead of the body's")),
    request_body = DeleteBody,
    responses((status = 200, body = super::openapi::Msg), super::openapi::Errors),
    security(("oauth_header" = []), ("oauth_query" = [])),
)]
pub async fn delete(
    State(state): State<AppState>,
    path: MessagePath,
    TraceHeaders(trace): TraceHeaders,
    Query(query): Query<HashMap<String, String>>,
    JsonBody(body): JsonBody<DeleteBody>,
) -> Result<Json<Value>, ApiError> {
    let from_query = |name: &str| query.get(name).cloned().filter(|v| !v.is_empty());
    let rid = body.reservation_id.or_else(|| from_query("reservation_id"));
    if let Some(subscriber) = body
        .subscriber_name
        .or_else(|| from_query("subscriber_name"))
    {
        let (project, queue, id) = (&path.project, &path.queue, &path.id);
        return super::subscribers::ack(&state, project, queue, id, rid.as_deref(), &subscriber)
            .await;
    }
    let (project, queue) = (path.project.as_str(), path.queue.as_str());
    let mut span = queue_span(
        "ferromq.delete",
        Kind::Consumer,
        &trace,
        project,
        queue,
        &[],
        1,
    );
    let deleted = state
        .store
        .delete_message(project, queue, &path.id, rid.as_deref())
        .await;
    if let (Some(span), Err(err)) = (&mut span, &deleted) {
        span.fail(err.to_string());
    }
    deleted?;
    Ok(Json(json!({ "msg": "Deleted" })))
}

/// One entry of `ids`: `{"id", "reservation_id"}`, or a bare id string (the v1 shape).
#[derive(Debug, Deserialize, ToSchema)]
#[serde(untagged)]
enum IdEntry {
    Bare(String),
    Full {
        id: String,
        #[serde(default, deserialize_with = "opt_string")]
        reservation_id: Option<String>,
    },
}

#[derive(Debug, Default, Deserialize, ToSchema)]
pub struct DeleteManyBody {
    /// At most 100; left out (or `{}` sent), the queue is cleared.
    #[serde(default)]
    ids: Option<Vec<IdEntry>>,
}

/// With `ids`, deletes those messages (all or none); without `ids`, clears the queue. An empty
/// `ids` list deletes nothing: clients send one to acknowledge an empty reserve.
#[utoipa::path(
    delete,
    path = "/3/projects/{project}/queues/{queue}/messages",
    operation_id = "messages_delete_many",
    tag = "messages",
    summary = "Delete messages by id (all or none), or clear the queue",
    params(("project" = String, Path, description = "Project id", example = "demo"), ("queue" = String, Path, description = "Queue name", example = "orders")),
    request_body = DeleteManyBody,
    responses((status = 200, body = super::openapi::Msg), super::openapi::Errors),
    security(("oauth_header" = []), ("oauth_query" = [])),
)]
pub async fn delete_many(
    State(state): State<AppState>,
    path: QueuePath,
    JsonBody(body): JsonBody<DeleteManyBody>,
) -> Result<Json<Value>, ApiError> {
    let Some(ids) = body.ids else {
        state.store.clear(&path.project, &path.queue).await?;
        return Ok(Json(json!({ "msg": "Cleared" })));
    };
    if ids.is_empty() {
        // Still answers 404 for a queue that does not exist.
        state.store.queue_info(&path.project, &path.queue).await?;
        return Ok(Json(json!({ "msg": "Deleted" })));
    }
    if ids.len() > MAX_BATCH {
        return Err(ApiError::bad_request(format!(
            "At most {MAX_BATCH} ids may be deleted at once"
        )));
    }
    let refs: Vec<DeleteRef> = ids
        .into_iter()
        .map(|entry| match entry {
            IdEntry::Bare(id) => DeleteRef {
                id,
                reservation_id: None,
            },
            IdEntry::Full { id, reservation_id } => DeleteRef { id, reservation_id },
        })
        .collect();
    if refs.iter().any(|r| r.id.is_empty()) {
        return Err(ApiError::bad_request("Every entry of ids needs an id"));
    }
    state
        .store
        .delete_messages(&path.project, &path.queue, &refs)
        .await
        .map_err(|err| match err {
            // Name the entry that failed: nothing was deleted because of it.
            StoreError::MessageNotFound { id } => {
                ApiError::NotFound(format!("Message not found: {id}"))
            }
            StoreError::ReservationRequired { ref id }
            | StoreError::WrongReservation { ref id } => {
                ApiError::Forbidden(format!("{err} (message {id})"))
            }
            other => other.into(),
        })?;
    Ok(Json(json!({ "msg": "Deleted" })))
}

#[derive(Debug, Default, Deserialize, ToSchema)]
pub struct TouchBody {
    #[serde(default, deserialize_with = "opt_string")]
    reservation_id: Option<String>,
    #[serde(default, deserialize_with = "opt_u64")]
    timeout: Option<u64>,
}

fn required_reservation(rid: Option<String>) -> Result<String, ApiError> {
    rid.ok_or_else(|| ApiError::bad_request("reservation_id is required"))
}

#[utoipa::path(
    post,
    path = "/3/projects/{project}/queues/{queue}/messages/{id}/touch",
    operation_id = "messages_touch",
    tag = "messages",
    summary = "Extend a reservation (answers a new reservation id)",
    params(("project" = String, Path, description = "Project id", example = "demo"), ("queue" = String, Path, description = "Queue name", example = "orders"), ("id" = String, Path, description = "Message id")),
    request_body = TouchBody,
    responses((status = 200, body = super::openapi::Touched), super::openapi::Errors),
    security(("oauth_header" = []), ("oauth_query" = [])),
)]
pub async fn touch(
    State(state): State<AppState>,
    path: MessagePath,
    JsonBody(body): JsonBody<TouchBody>,
) -> Result<Json<Value>, ApiError> {
    let rid = required_reservation(body.reservation_id)?;
    if let Some(t) = body.timeout
        && t > MAX_MESSAGE_TIMEOUT
    {
        return Err(ApiError::bad_request(format!(
            "timeout must be between 1 and {MAX_MESSAGE_TIMEOUT} seconds"
        )));
    }
    let new_rid = state
        .store
        .touch(&path.project, &path.queue, &path.id, &rid, body.timeout)
        .await?;
    Ok(Json(json!({ "reservation_id": new_rid, "msg": "Touched" })))
}

#[derive(Debug, Default, Deserialize, ToSchema)]
pub struct ReleaseBody {
    #[serde(default, deserialize_with = "opt_string")]
    reservation_id: Option<String>,
    #[serde(default, deserialize_with = "opt_u64")]
    delay: Option<u64>,
}

#[utoipa::path(
    post,
    path = "/3/projects/{project}/queues/{queue}/messages/{id}/release",
    operation_id = "messages_release",
    tag = "messages",
    summary = "Give a reserved message back",
    params(("project" = String, Path, description = "Project id", example = "demo"), ("queue" = String, Path, description = "Queue name", example = "orders"), ("id" = String, Path, description = "Message id")),
    request_body = ReleaseBody,
    responses((status = 200, body = super::openapi::Msg), super::openapi::Errors),
    security(("oauth_header" = []), ("oauth_query" = [])),
)]
pub async fn release(
    State(state): State<AppState>,
    path: MessagePath,
    JsonBody(body): JsonBody<ReleaseBody>,
) -> Result<Json<Value>, ApiError> {
    let rid = required_reservation(body.reservation_id)?;
    let delay = check_delay(body.delay)?;
    state
        .store
        .release(&path.project, &path.queue, &path.id, &rid, delay)
        .await?;
    Ok(Json(json!({ "msg": "Released" })))
}
