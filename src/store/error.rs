//! What a store operation can fail with.

use crate::metrics::{METRICS, StoreErrorLabels};
use crate::settings::Invalid;

/// Clone: one failed script call is the answer of every request it carried.
#[derive(Debug, Clone, thiserror::Error)]
pub enum StoreError {
    #[error("Queue not found")]
    QueueNotFound,
    #[error("Message not found")]
    MessageNotFound { id: String },
    #[error("Message {id} is reserved: its reservation_id is required")]
    ReservationRequired { id: String },
    #[error("Reservation timed out or belongs to another holder")]
    WrongReservation { id: String },
    #[error(
        "messages[{index}] would expire before its delay is over: delay must be shorter than the queue's message_expiration"
    )]
    DelayTooLong { index: usize },
    #[error("messages[{index}] is larger than the queue's max_message_size of {max} bytes")]
    MessageTooLarge { index: usize, max: u64 },
    #[error(
        "This Idempotency-Key was used with other messages on this queue: use a new key for a new post"
    )]
    KeyReused,
    #[error("{0}")]
    Invalid(String),
    #[error("Subscriber not found")]
    SubscriberNotFound,
    #[error(
        "Queue is managed by the Kubernetes resource {by}: change its settings there (messages flow as usual)"
    )]
    Managed { by: String },
    #[error(
        "a queue of this name already exists, made over the REST API; a resource takes it over only when told to adopt it"
    )]
    NotAdopted,
    #[error("store unavailable: {0}")]
    Unavailable(redis::RedisError),
    #[error(
        "The change was made on the Redis primary, but {confirmed} of the {wanted} replicas required confirmed it in time: it may or may not have been kept. Retry (with the same Idempotency-Key for a post)"
    )]
    NotReplicated { wanted: u32, confirmed: u32 },
    #[error(
        "The change was made on a Redis node that is no longer the primary (a failover is under way): it may or may not have been kept. Retry (with the same Idempotency-Key for a post)"
    )]
    Deposed,
    #[error(
        "The change was made on the Redis primary, but confirming it with the replicas failed ({0}): it may or may not have been kept. Retry (with the same Idempotency-Key for a post)"
    )]
    Unconfirmed(String),
    #[error("store error: {0}")]
    Redis(redis::RedisError),
    /// A script failed; `at` is the script file and line the error names.
    #[error("store error in {at}: {detail}")]
    Script { at: String, detail: String },
    #[error("unexpected reply from the store: {0}")]
    BadReply(String),
}

impl From<Invalid> for StoreError {
    fn from(err: Invalid) -> Self {
        StoreError::Invalid(err.0)
    }
}

impl From<redis::RedisError> for StoreError {
    /// Failures to reach Redis are worth retrying (503); any other error is a fault (500).
    fn from(err: redis::RedisError) -> Self {
        Self::from_redis(err).counted()
    }
}

impl StoreError {
    /// Counts a failure of Redis itself (unreachable, or an error it answered) in the
    /// store-errors metric: once per failed call, also when the call carried a batch of
    /// requests (each is answered with a copy of the error).
    pub(super) fn counted(self) -> Self {
        let kind = if matches!(self, StoreError::Unavailable(_)) {
            "unavailable"
        } else {
            "error"
        };
        METRICS
            .store_errors
            .get_or_create(&StoreErrorLabels { kind })
            .inc();
        self
    }

    fn from_redis(err: redis::RedisError) -> Self {
        if Self::unreachable(&err) {
            StoreError::Unavailable(err)
        } else {
            StoreError::Redis(err)
        }
    }

    /// Whether the error says Redis cannot take the request now (gone, loading, failing over,
    /// a replica or a primary without enough replicas), rather than that the request is wrong.
    pub(super) fn unreachable(err: &redis::RedisError) -> bool {
        err.is_io_error()
            || err.is_connection_dropped()
            || err.is_connection_refusal()
            || err.is_timeout()
            || err.is_cluster_error()
            || err.code() == Some("NOREPLICAS")
            || err.code() == Some("UNBLOCKED")
            || matches!(
                err.kind(),
                redis::ErrorKind::Server(
                    redis::ServerErrorKind::BusyLoading
                        | redis::ServerErrorKind::TryAgain
                        | redis::ServerErrorKind::ClusterDown
                        | redis::ServerErrorKind::MasterDown
                        | redis::ServerErrorKind::ReadOnly
                ) | redis::ErrorKind::MasterNameNotFoundBySentinel
            )
    }
}

pub type Result<T, E = StoreError> = std::result::Result<T, E>;
