//! Errors of the REST API. Each variant is one HTTP status of the wire contract, so a handler
//! cannot answer an error without its status; every error body is `{"msg": "..."}`.

use crate::store::StoreError;
use crate::tokens::Refused;
use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("{0}")]
    BadRequest(String),
    #[error("{0}")]
    Unauthorized(String),
    #[error("{0}")]
    Forbidden(String),
    #[error("{0}")]
    NotFound(String),
    #[error("Method not allowed")]
    MethodNotAllowed,
    #[error("{0}")]
    Conflict(String),
    #[error("{0}")]
    PayloadTooLarge(String),
    #[error("{0}")]
    Unprocessable(String),
    #[error("Store unavailable, try again")]
    Unavailable,
    #[error("{0}")]
    NotConfirmed(String),
    #[error("Request not completed within {0} seconds, try again")]
    TimedOut(u64),
    #[error("Internal error")]
    Internal,
}

impl ApiError {
    pub fn bad_request(msg: impl Into<String>) -> Self {
        ApiError::BadRequest(msg.into())
    }

    pub fn status(&self) -> StatusCode {
        match self {
            ApiError::BadRequest(_) => StatusCode::BAD_REQUEST,
            ApiError::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            ApiError::Forbidden(_) => StatusCode::FORBIDDEN,
            ApiError::NotFound(_) => StatusCode::NOT_FOUND,
            ApiError::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            ApiError::Conflict(_) => StatusCode::CONFLICT,
            ApiError::PayloadTooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::Unprocessable(_) => StatusCode::UNPROCESSABLE_ENTITY,
            ApiError::Unavailable | ApiError::TimedOut(_) | ApiError::NotConfirmed(_) => {
                StatusCode::SERVICE_UNAVAILABLE
            }
            ApiError::Internal => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }
}

impl From<Refused> for ApiError {
    fn from(err: Refused) -> Self {
        match err.status() {
            401 => ApiError::Unauthorized(err.to_string()),
            _ => ApiError::Forbidden(err.to_string()),
        }
    }
}

impl From<StoreError> for ApiError {
    fn from(err: StoreError) -> Self {
        match err {
            StoreError::QueueNotFound => ApiError::NotFound("Queue not found".into()),
            StoreError::MessageNotFound { .. } => ApiError::NotFound("Message not found".into()),
            StoreError::ReservationRequired { .. } | StoreError::WrongReservation { .. } => {
                ApiError::Forbidden(err.to_string())
            }
            StoreError::MessageTooLarge { .. } => ApiError::PayloadTooLarge(err.to_string()),
            StoreError::KeyReused => ApiError::Unprocessable(err.to_string()),
            StoreError::DelayTooLong { .. } | StoreError::Invalid(_) => {
                ApiError::BadRequest(err.to_string())
            }
            StoreError::SubscriberNotFound => ApiError::NotFound(err.to_string()),
            StoreError::Managed { .. } | StoreError::NotAdopted => {
                ApiError::Conflict(err.to_string())
            }
            StoreError::Unavailable(err) => {
                tracing::warn!(%err, "store unreachable");
                ApiError::Unavailable
            }
            StoreError::NotReplicated { .. } | StoreError::Deposed | StoreError::Unconfirmed(_) => {
                tracing::warn!(%err, "change not confirmed by replicas");
                ApiError::NotConfirmed(err.to_string())
            }
            StoreError::Redis(err) => {
                tracing::error!(%err, "store error");
                ApiError::Internal
            }
            StoreError::Script { at, detail } => {
                tracing::error!(at, detail, "store script error");
                ApiError::Internal
            }
            StoreError::BadReply(detail) => {
                tracing::error!(%detail, "unexpected reply from the store");
                ApiError::Internal
            }
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = serde_json::json!({ "msg": self.to_string() });
        (self.status(), Json(body)).into_response()
    }
}
