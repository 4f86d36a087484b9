//! The IronMQ v3 REST API: routes under `/3/projects/{project}`, token checks, tolerant input,
//! and `{"msg": ...}` errors. Handlers parse, call the store, and shape the answer.

mod alerts;
mod auth;
mod console;
mod error;
mod extract;
mod input;
mod messages;
mod openapi;
mod projects;
mod queues;
mod redrive;
mod stats;
mod subscribers;

pub use error::ApiError;

use crate::listener::Listening;
use crate::store::Store;
use crate::tokens::Tokens;
use axum::extract::{DefaultBodyLimit, Request, State};
use axum::http::{HeaderName, Method};
use axum::response::IntoResponse;
use axum::routing::get;
use axum::{Json, Router, middleware};
use serde_json::{Value, json};
use std::sync::Arc;
use tower::Layer;
use tower_http::request_id::{
    MakeRequestId, PropagateRequestIdLayer, RequestId, SetRequestIdLayer,
};
use tower_http::trace::TraceLayer;
use utoipa::OpenApi;
use utoipa_axum::{router::OpenApiRouter, routes};

/// Size limits on what clients send.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Largest message body, in bytes (413 beyond).
    pub max_message_size: usize,
    /// Largest request body, in bytes (413 beyond); read no further than this.
    pub max_request_size: usize,
    /// Longest a request may take, reading its body and long polls included (503 beyond).
    pub request_timeout: std::time::Duration,
    /// How long a post's Idempotency-Key is remembered.
    pub idempotency_window: std::time::Duration,
}

#[derive(Clone)]
pub struct AppState {
    pub store: Store,
    pub tokens: Arc<Tokens>,
    pub limits: Limits,
    /// Bearer tokens for pushes: the signing key's public half is served as a JWKS.
    pub bearers: Arc<crate::push::auth::Bearers>,
}

pub fn router(state: AppState) -> Router {
    // Each route comes with its handler's OpenAPI description (`routes!`): the document lists
    // exactly what is routed.
    let (project_routes, project_doc) = OpenApiRouter::new()
        .routes(routes!(queues::list))
        .routes(routes!(
            queues::get,
            queues::put,
            queues::post,
            queues::patch,
            queues::delete
        ))
        .routes(routes!(
            messages::peek,
            messages::post,
            messages::delete_many
        ))
        .routes(routes!(messages::get, messages::delete))
        .routes(routes!(messages::touch))
        .routes(routes!(messages::release))
        .routes(routes!(messages::reserve))
        .routes(routes!(messages::webhook))
        .routes(routes!(stats::get))
        .routes(routes!(
            subscribers::add,
            subscribers::replace,
            subscribers::remove
        ))
        .routes(routes!(subscribers::status))
        .routes(routes!(subscribers::acknowledge))
        .routes(routes!(alerts::add, alerts::replace, alerts::remove))
        .routes(routes!(alerts::delete))
        .routes(routes!(redrive::start, redrive::status, redrive::cancel))
        .split_for_parts();
    let project_routes = project_routes.route_layer(middleware::from_fn_with_state(
        state.clone(),
        auth::require_token,
    ));
    let (open_routes, mut doc) = OpenApiRouter::with_openapi(openapi::ApiDoc::openapi())
        .routes(routes!(projects::list))
        .routes(routes!(healthz))
        .routes(routes!(readyz))
        .routes(routes!(metrics))
        .routes(routes!(jwks))
        .routes(routes!(openapi::openapi_json))
        .split_for_parts();
    doc.merge(project_doc);
    openapi::publish(doc);
    Router::new()
        .merge(project_routes)
        .merge(open_routes)
        .route("/console", get(console::redirect))
        .route("/console/", get(console::index))
        .route("/console/{name}", get(console::asset))
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(DefaultBodyLimit::max(state.limits.max_request_size))
        .layer(middleware::from_fn_with_state(state.clone(), front))
        // Every request gets an id (or keeps the one it came with), logged with it and
        // returned in `x-request-id`. Only the path is logged: a query may hold a token.
        .layer(
            tower::ServiceBuilder::new()
                .layer(SetRequestIdLayer::x_request_id(SequentialIds::default()))
                .layer(TraceLayer::new_for_http().make_span_with(request_span))
                .layer(PropagateRequestIdLayer::x_request_id()),
        )
        .with_state(state)
}

/// Request ids: a random prefix per process and a counter. A random UUID per request would
/// ask the kernel for randomness on every request.
#[derive(Clone)]
struct SequentialIds {
    prefix: Arc<str>,
    next: Arc<std::sync::atomic::AtomicU64>,
}

impl Default for SequentialIds {
    fn default() -> Self {
        SequentialIds {
            prefix: format!("{:016x}", fastrand::u64(..)).into(),
            next: Arc::default(),
        }
    }
}

impl MakeRequestId for SequentialIds {
    fn make_request_id<B>(&mut self, _: &axum::http::Request<B>) -> Option<RequestId> {
        let n = self.next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let id = format!("{}-{n:012x}", self.prefix);
        axum::http::HeaderValue::from_str(&id)
            .ok()
            .map(RequestId::new)
    }
}

fn request_span(request: &Request) -> tracing::Span {
    let id = request
        .headers()
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    // Debug level: a span per request is work on the hot path, so it is off by default;
    // `RUST_LOG=info,ferromq::api=debug` turns it (and request ids in logs) on.
    tracing::debug_span!(
        "request",
        id,
        method = %request.method(),
        path = request.uri().path(),
    )
}

/// Prometheus text: the counters, and the depth of the queues posted to lately.
#[utoipa::path(get, path = "/metrics", tag = "operations",
    summary = "Prometheus metrics (OpenMetrics text)",
    responses((status = 200, content_type = "application/openmetrics-text", body = String)))]
async fn metrics(State(state): State<AppState>) -> axum::response::Response {
    use crate::metrics::{METRICS, QueueLabels};
    for (project, queue) in METRICS.watched_queues() {
        match state.store.queue_gauges(&project, &queue).await {
            Ok(gauges) => METRICS.queues.show(QueueLabels { project, queue }, gauges),
            Err(_) => break, // Redis is down: show the counters (store errors among them)
        }
    }
    (
        [(
            axum::http::header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        METRICS.encode(),
    )
        .into_response()
}

/// What every request goes through, as one middleware (each layer costs every request a
/// future of its own): a body whose declared length is over the limit is refused at once
/// (413) instead of being read up to the limit; a request that runs past its deadline answers
/// 503 (a client trickling its body, or a store that stopped answering, cannot hold it for
/// ever); every answer is counted by method and status class (labels without allocation).
async fn front(
    State(state): State<AppState>,
    request: Request,
    next: middleware::Next,
) -> axum::response::Response {
    let method = match *request.method() {
        Method::GET => "GET",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::PATCH => "PATCH",
        Method::DELETE => "DELETE",
        _ => "other",
    };
    let declared = request
        .headers()
        .get(axum::http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    let limit = state.limits.max_request_size;
    let response = match declared {
        Some(length) if length > limit as u64 => ApiError::PayloadTooLarge(format!(
            "Request body too large ({length} bytes, limit {limit})"
        ))
        .into_response(),
        _ => {
            let deadline = state.limits.request_timeout;
            match tokio::time::timeout(deadline, next.run(request)).await {
                Ok(response) => response,
                Err(_) => ApiError::TimedOut(deadline.as_secs()).into_response(),
            }
        }
    };
    let status = crate::metrics::status_class(response.status().as_u16());
    crate::metrics::METRICS
        .requests
        .get_or_create(&crate::metrics::RequestLabels { method, status })
        .inc();
    response
}

/// Serves the API on `listener` until `shutdown` completes, then finishes requests in flight.
pub async fn serve(
    listener: tokio::net::TcpListener,
    state: AppState,
    listening: &Listening,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    // Applied before routing, so an overridden POST is routed as the method it stands for.
    let app = Router::new()
        .fallback_service(tower::util::MapRequestLayer::new(method_override).layer(router(state)));
    crate::listener::serve(listener, app, listening, shutdown).await
}

static METHOD_OVERRIDE: HeaderName = HeaderName::from_static("x-http-method-override");

/// The Java client cannot send PATCH or DELETE: it POSTs with `X-HTTP-Method-Override`.
fn method_override(mut request: Request) -> Request {
    if request.method() == Method::POST {
        let wanted = request
            .headers()
            .get(&METHOD_OVERRIDE)
            .and_then(|v| v.to_str().ok())
            .map(|v| v.trim().to_ascii_uppercase());
        match wanted.as_deref() {
            Some("DELETE") => *request.method_mut() = Method::DELETE,
            Some("PATCH") => *request.method_mut() = Method::PATCH,
            Some("PUT") => *request.method_mut() = Method::PUT,
            _ => {}
        }
    }
    request
}

#[utoipa::path(get, path = "/healthz", tag = "operations", summary = "The process is up",
    responses((status = 200, body = openapi::Msg)))]
async fn healthz() -> Json<Value> {
    Json(json!({ "msg": "ok" }))
}

/// The public keys push JWTs are signed with (see `push::auth`), for subscribers to verify
/// them; 404 when this server signs none (no FERROMQ_PUSH_JWT_KEY).
#[utoipa::path(get, path = "/.well-known/jwks.json", tag = "push",
    summary = "The public keys of the JWTs sent with pushes (JWKS)",
    responses((status = 200, body = Object, content_type = "application/json"), (status = 404, body = openapi::Msg)))]
async fn jwks(State(state): State<AppState>) -> Result<Json<Value>, ApiError> {
    match state.bearers.signer() {
        Some(signer) => Ok(Json(signer.jwks().clone())),
        None => Err(ApiError::NotFound(
            "This server signs no push tokens: start it with FERROMQ_PUSH_JWT_KEY".into(),
        )),
    }
}

#[utoipa::path(get, path = "/readyz", tag = "operations", summary = "Redis answers",
    responses((status = 200, body = openapi::Msg), (status = 503, body = openapi::Msg)))]
async fn readyz(State(state): State<AppState>) -> Result<Json<Value>, ApiError> {
    if state.store.ping().await {
        Ok(Json(json!({ "msg": "ready" })))
    } else {
        Err(ApiError::Unavailable)
    }
}

async fn not_found() -> ApiError {
    ApiError::NotFound("Not found".into())
}

async fn method_not_allowed() -> ApiError {
    ApiError::MethodNotAllowed
}
