//! Extractors that turn a request into checked values or an IronMQ-style error: queue and
//! message paths, and JSON bodies that may be empty.

use super::{ApiError, AppState};
use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, Path, Request};
use axum::http::StatusCode;
use axum::http::request::Parts;
use serde::de::DeserializeOwned;

fn check_project(project: &str) -> Result<(), ApiError> {
    crate::model::check_project(project).map_err(ApiError::BadRequest)
}

pub fn check_queue_name(name: &str) -> Result<(), ApiError> {
    crate::model::check_queue_name(name).map_err(ApiError::BadRequest)
}

fn path_error(rejection: axum::extract::rejection::PathRejection) -> ApiError {
    ApiError::bad_request(format!("Invalid path: {}", rejection.body_text()))
}

/// `/3/projects/{project}/queues/{queue}`.
pub struct QueuePath {
    pub project: String,
    pub queue: String,
}

impl<S: Send + Sync> FromRequestParts<S> for QueuePath {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        let Path((project, queue)) = Path::<(String, String)>::from_request_parts(parts, state)
            .await
            .map_err(path_error)?;
        check_project(&project)?;
        check_queue_name(&queue)?;
        Ok(QueuePath { project, queue })
    }
}

/// `/3/projects/{project}/queues/{queue}/messages/{id}`.
pub struct MessagePath {
    pub project: String,
    pub queue: String,
    pub id: String,
}

impl<S: Send + Sync> FromRequestParts<S> for MessagePath {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        let Path((project, queue, id)) =
            Path::<(String, String, String)>::from_request_parts(parts, state)
                .await
                .map_err(path_error)?;
        check_project(&project)?;
        check_queue_name(&queue)?;
        Ok(MessagePath { project, queue, id })
    }
}

/// `/3/projects/{project}/queues/{queue}/messages/{id}/subscribers/{subscriber}`.
pub struct SubscriberMessagePath {
    pub message: MessagePath,
    pub subscriber: String,
}

impl<S: Send + Sync> FromRequestParts<S> for SubscriberMessagePath {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        let Path((project, queue, id, subscriber)) =
            Path::<(String, String, String, String)>::from_request_parts(parts, state)
                .await
                .map_err(path_error)?;
        check_project(&project)?;
        check_queue_name(&queue)?;
        let message = MessagePath { project, queue, id };
        Ok(SubscriberMessagePath {
            message,
            subscriber,
        })
    }
}

/// `/3/projects/{project}`.
pub struct ProjectPath {
    pub project: String,
}

impl<S: Send + Sync> FromRequestParts<S> for ProjectPath {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        let Path(project) = Path::<String>::from_request_parts(parts, state)
            .await
            .map_err(path_error)?;
        check_project(&project)?;
        Ok(ProjectPath { project })
    }
}

/// The raw request body, bounded by the request size limit (413 beyond it).
pub struct RawBody(pub Bytes);

impl FromRequest<AppState> for RawBody {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &AppState) -> Result<Self, ApiError> {
        Bytes::from_request(req, state)
            .await
            .map(RawBody)
            .map_err(|rejection| {
                if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
                    ApiError::PayloadTooLarge(format!(
                        "Request body too large (limit {} bytes)",
                        state.limits.max_request_size
                    ))
                } else {
                    ApiError::bad_request(format!(
                        "Cannot read request body: {}",
                        rejection.body_text()
                    ))
                }
            })
    }
}

/// A JSON body read tolerantly: whatever the Content-Type, and an empty body (or `null`) is the
/// type's default, since clients send DELETEs and POSTs without one.
pub struct JsonBody<T>(pub T);

impl<T: DeserializeOwned + Default> FromRequest<AppState> for JsonBody<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &AppState) -> Result<Self, ApiError> {
        let RawBody(bytes) = RawBody::from_request(req, state).await?;
        parse_json(&bytes).map(JsonBody)
    }
}

pub fn parse_json<T: DeserializeOwned + Default>(bytes: &[u8]) -> Result<T, ApiError> {
    if bytes.iter().all(u8::is_ascii_whitespace) || bytes.trim_ascii() == b"null" {
        return Ok(T::default());
    }
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let value = serde_path_to_error::deserialize(&mut de).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        if inner.is_syntax() || inner.is_eof() {
            ApiError::bad_request(format!("Invalid JSON: {inner}"))
        } else if path == "." {
            ApiError::bad_request(format!("Invalid request body: {inner}"))
        } else {
            ApiError::bad_request(format!("Invalid value for {path}: {inner}"))
        }
    })?;
    de.end()
        .map_err(|e| ApiError::bad_request(format!("Invalid JSON: {e}")))?;
    Ok(value)
}
