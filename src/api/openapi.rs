//! The OpenAPI 3.1 document of the REST API, served at `GET /openapi.json`. Each operation is
//! described by a `#[utoipa::path]` on its handler, and routed with it (`routes!` in
//! `router`), so the document lists exactly what is served. The shapes below are what the
//! handlers read and answer; `make test` runs schemathesis against a server to check every
//! answer against them.

use serde::Serialize;
use std::collections::BTreeMap;
use utoipa::openapi::security::{ApiKey, ApiKeyValue, SecurityScheme};
use utoipa::{IntoResponses, Modify, OpenApi, ToSchema};

#[derive(OpenApi)]
#[openapi(
    info(
        title = "ferromq",
        description = "The IronMQ v3 REST API as ferromq serves it, with its extensions \
            (marked \"ferromq's own\"). Every error answers `{\"msg\": \"...\"}`.",
        license(name = "Apache-2.0"),
    ),
    modifiers(&Security),
    tags(
        (name = "queues"), (name = "messages"), (name = "push"), (name = "alerts"),
        (name = "redrive"), (name = "console", description = "ferromq's own: what the web console reads"),
        (name = "operations"),
    ),
)]
pub struct ApiDoc;

/// The token, as `Authorization: OAuth <token>` (or `Bearer`), or the `oauth` query parameter.
struct Security;

impl Modify for Security {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "oauth_header",
            SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::with_description(
                "Authorization",
                "`OAuth <token>` or `Bearer <token>`",
            ))),
        );
        components.add_security_scheme(
            "oauth_query",
            SecurityScheme::ApiKey(ApiKey::Query(ApiKeyValue::new("oauth"))),
        );
    }
}

/// The document, as the router built it (set once, by `publish`).
static DOCUMENT: std::sync::OnceLock<String> = std::sync::OnceLock::new();

/// Keeps the router's document for `GET /openapi.json` (the first router's: every router of a
/// process is built from the same handlers).
pub fn publish(doc: utoipa::openapi::OpenApi) {
    let _ = DOCUMENT.set(doc.to_json().unwrap_or_default());
}

/// The document, as served.
#[utoipa::path(get, path = "/openapi.json", tag = "operations",
    summary = "This document (OpenAPI 3.1)",
    responses((status = 200, description = "This document", content_type = "application/json")))]
pub async fn openapi_json() -> axum::response::Response {
    use axum::response::IntoResponse;
    let text = DOCUMENT.get().cloned().unwrap_or_default();
    (
        [(axum::http::header::CONTENT_TYPE, "application/json")],
        text,
    )
        .into_response()
}

/// An answer that is only a message, and every error.
#[derive(Serialize, ToSchema)]
pub struct Msg {
    pub msg: String,
}

/// The errors any operation under `/3/projects` may answer.
#[derive(IntoResponses)]
#[allow(dead_code)] // only described: handlers answer `ApiError`
pub enum Errors {
    /// Bad input: the message says what.
    #[response(status = 400)]
    BadRequest(#[to_schema] Msg),
    /// No token, or an unknown one.
    #[response(status = 401)]
    Unauthorized(Msg),
    /// The token may not use this project, or a reservation is not the message's.
    #[response(status = 403)]
    Forbidden(Msg),
    /// No such queue or message.
    #[response(status = 404)]
    NotFound(Msg),
    /// The queue is managed by a Kubernetes resource (change it there), or a redrive of the
    /// queue runs.
    #[response(status = 409)]
    Conflict(Msg),
    /// The body is larger than the server takes.
    #[response(status = 413)]
    TooLarge(Msg),
    /// The Idempotency-Key was used for another post within its window.
    #[response(status = 422)]
    Unprocessable(Msg),
    /// Redis cannot be reached, did not confirm a change, or the request ran out of time:
    /// try again.
    #[response(status = 503)]
    Unavailable(Msg),
}

// ---- queues

/// `{"queue": {...}}`, or the settings bare. Only the fields given change; a new queue gets the
/// defaults for the rest.
#[derive(ToSchema)]
#[allow(dead_code)]
pub struct QueueSettingsBody {
    queue: Option<QueueSettingsInput>,
}

#[derive(ToSchema)]
#[allow(dead_code)]
pub struct QueueSettingsInput {
    /// `pull` (default), `unicast` or `multicast` (push).
    #[schema(rename = "type")]
    queue_type: Option<String>,
    /// Seconds a reservation lasts (30 to 86400; default 60).
    message_timeout: Option<u64>,
    /// Seconds a message lives (60 to 2592000; default 604800).
    message_expiration: Option<u64>,
    /// ferromq's own: the largest body this queue takes, in bytes (0: the server's limit).
    max_message_size: Option<u64>,
    push: Option<PushInput>,
    dead_letter: Option<DeadLetterOut>,
    alerts: Option<Vec<AlertInput>>,
}

#[derive(ToSchema)]
#[allow(dead_code)]
pub struct PushInput {
    subscribers: Option<Vec<super::queues::SubscriberInput>>,
    /// Retries after the first try (0 to 100; default 3).
    retries: Option<u64>,
    /// Seconds between retries (3 to 86400; default 60).
    retries_delay: Option<u64>,
    /// Where messages go once every retry failed; `""` turns it off.
    error_queue: Option<String>,
    /// ferromq's own: `fixed` (default) or `exponential`.
    backoff: Option<String>,
    /// ferromq's own: sign pushes with HMAC-SHA256 under this secret (`""` stops).
    signing_secret: Option<String>,
    /// ferromq's own: seconds a subscriber has to answer.
    timeout: Option<u64>,
}

#[derive(Serialize, ToSchema)]
pub struct DeadLetterOut {
    /// The queue messages move to; `""` turns it off.
    queue_name: String,
    /// Reservations after which a message moves there.
    max_reservations: u64,
}

#[derive(ToSchema)]
#[allow(dead_code)]
pub struct AlertInput {
    /// `fixed` or `progressive`.
    #[schema(rename = "type")]
    alert_type: String,
    /// `asc` (default) or `desc`.
    direction: Option<String>,
    trigger: u64,
    /// The queue the alert message is posted to.
    queue: String,
    /// Seconds to stay quiet after firing.
    snooze: Option<u64>,
}

#[derive(ToSchema)]
#[allow(dead_code)]
pub struct QueueAnswer {
    queue: QueueOut,
}

#[derive(ToSchema)]
#[allow(dead_code)]
pub struct QueueOut {
    id: String,
    project_id: String,
    name: String,
    /// `pull`, `unicast` or `multicast`.
    #[schema(rename = "type")]
    queue_type: String,
    /// Messages not yet deleted, reserved and delayed ones included.
    size: u64,
    /// Messages ever posted.
    total_messages: u64,
    message_timeout: u64,
    message_expiration: u64,
    push: Option<PushOut>,
    max_message_size: Option<u64>,
    dead_letter: Option<DeadLetterOut>,
    alerts: Option<Vec<AlertOut>>,
    /// ferromq's own: the Kubernetes resource that manages the queue (changes go through it).
    managed_by: Option<String>,
}

#[derive(ToSchema)]
#[allow(dead_code)]
pub struct PushOut {
    subscribers: Vec<SubscriberOut>,
    retries: u64,
    retries_delay: u64,
    error_queue: Option<String>,
    backoff: String,
    /// Whether pushes are signed (the secret is never shown).
    signed: bool,
    timeout: Option<u64>,
}

#[derive(ToSchema)]
#[allow(dead_code)]
pub struct SubscriberOut {
    name: String,
    url: String,
    headers: Option<BTreeMap<String, String>>,
    retries: Option<u64>,
    retries_delay: Option<u64>,
}

#[derive(ToSchema)]
#[allow(dead_code)]
pub struct AlertOut {
    id: String,
    #[schema(rename = "type")]
    alert_type: String,
    direction: String,
    trigger: u64,
    queue: String,
    snooze: u64,
}

#[derive(ToSchema)]
#[allow(dead_code)]
pub struct QueueList {
    queues: Vec<QueueName>,
}

#[derive(ToSchema)]
#[allow(dead_code)]
pub struct QueueName {
    name: String,
}

#[derive(ToSchema)]
#[allow(dead_code)]
pub struct UpdatedQueue {
    msg: String,
    queue: QueueOut,
}

// ---- messages

#[derive(ToSchema)]
#[allow(dead_code)]
pub struct Posted {
    ids: Vec<String>,
    msg: String,
}

#[derive(ToSchema)]
#[allow(dead_code)]
pub struct MessageOut {
    id: String,
    body: String,
    reserved_count: u64,
    /// Only while reserved (and on reserve answers).
    reservation_id: Option<String>,
}

#[derive(ToSchema)]
#[allow(dead_code)]
pub struct Messages {
    messages: Vec<MessageOut>,
}

#[derive(ToSchema)]
#[allow(dead_code)]
pub struct OneMessage {
    message: MessageOut,
}

#[derive(ToSchema)]
#[allow(dead_code)]
pub struct Touched {
    reservation_id: String,
    msg: String,
}

// ---- push

#[derive(ToSchema)]
#[allow(dead_code)]
pub struct PushStatuses {
    subscribers: Vec<PushStatus>,
}

#[derive(ToSchema)]
#[allow(dead_code)]
pub struct PushStatus {
    name: String,
    subscriber_name: String,
    url: String,
    /// `queued`, `reserved` (answered 202), `retrying`, `deleted` (delivered) or `error`.
    status: String,
    /// The last answer's status code (0: none yet, or no answer).
    status_code: u64,
    tries: u64,
    retries_remaining: u64,
    retries_delay: u64,
    /// RFC 3339; null before the first try.
    last_try_at: Option<String>,
    msg: Option<String>,
}

// ---- alerts

#[derive(ToSchema)]
#[allow(dead_code)]
pub struct AlertsBody {
    alerts: Vec<AlertInput>,
}

#[derive(ToSchema)]
#[allow(dead_code)]
pub struct AlertIds {
    /// `[{"id": "..."}]`.
    alerts: Vec<AlertId>,
}

#[derive(ToSchema)]
#[allow(dead_code)]
pub struct AlertId {
    id: String,
}

// ---- redrive

#[derive(ToSchema)]
#[allow(dead_code)]
pub struct RedriveAnswer {
    msg: Option<String>,
    redrive: RedriveOut,
}

#[derive(ToSchema)]
#[allow(dead_code)]
pub struct RedriveOut {
    id: String,
    to: String,
    max: u64,
    rate: u64,
    unwrap: bool,
    moved: u64,
    /// `running`, `done` or `cancelled`.
    state: String,
    error: Option<String>,
    /// Milliseconds since the epoch.
    created_at: u64,
    updated_at: u64,
}

// ---- console

#[derive(ToSchema)]
#[allow(dead_code)]
pub struct StatsAnswer {
    stats: Stats,
}

#[derive(ToSchema)]
#[allow(dead_code)]
pub struct Stats {
    size: u64,
    reserved: u64,
    /// Seconds.
    oldest_message_age: u64,
    /// In the last whole minute.
    posted_per_minute: u64,
    deleted_per_minute: u64,
    /// Oldest first; only minutes something was recorded in.
    minutes: Vec<StatsMinute>,
    /// Push queues: each subscriber's answers so far.
    subscribers: Vec<SubscriberCounts>,
}

#[derive(ToSchema)]
#[allow(dead_code)]
pub struct StatsMinute {
    /// The minute's start, seconds since the epoch.
    at: u64,
    posted: u64,
    reserved: u64,
    deleted: u64,
    /// Messages in the queue when last recorded that minute.
    depth: u64,
}

#[derive(ToSchema)]
#[allow(dead_code)]
pub struct SubscriberCounts {
    name: String,
    /// 2xx but 202.
    delivered: u64,
    /// 202.
    accepted: u64,
    failed: u64,
}

#[derive(ToSchema)]
#[allow(dead_code)]
pub struct Projects {
    /// The projects the token names (empty when it may use every project).
    projects: Vec<String>,
    all_projects: bool,
}
