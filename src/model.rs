//! Plain types shared by every layer: queue settings, messages, and the limits the wire contract sets.

use std::collections::BTreeMap;

/// Default reservation timeout of a queue, in seconds.
pub const DEFAULT_MESSAGE_TIMEOUT: u64 = 60;
/// Longest reservation timeout, in seconds (one day).
pub const MAX_MESSAGE_TIMEOUT: u64 = 86_400;
/// Default lifetime of a message, in seconds (seven days).
pub const DEFAULT_MESSAGE_EXPIRATION: u64 = 604_800;
/// Longest lifetime of a message, in seconds (thirty days).
pub const MAX_MESSAGE_EXPIRATION: u64 = 2_592_000;
/// Longest delay of a posted or released message, in seconds (seven days).
pub const MAX_DELAY: u64 = 604_800;
/// Most messages one post, reserve, peek or batch delete may carry.
pub const MAX_BATCH: usize = 100;
/// Longest long-poll wait of a reserve, in seconds.
pub const MAX_WAIT: u64 = 30;
/// Most push headers one message may carry.
pub const MAX_PUSH_HEADERS: usize = 5;

/// The kind of a queue: pulled by consumers, or pushed to subscribers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QueueType {
    Pull,
    Unicast,
    Multicast,
}

impl QueueType {
    pub fn as_str(self) -> &'static str {
        match self {
            QueueType::Pull => "pull",
            QueueType::Unicast => "unicast",
            QueueType::Multicast => "multicast",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "pull" => Some(QueueType::Pull),
            "unicast" => Some(QueueType::Unicast),
            "multicast" => Some(QueueType::Multicast),
            _ => None,
        }
    }
}

/// Settings of a queue as a patch: `None` leaves a setting as it is (or at its default on creation).
/// The REST API, the controller and standalone mode all express changes this way.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct QueueSettings {
    pub queue_type: Option<QueueType>,
    pub message_timeout: Option<u64>,
    pub message_expiration: Option<u64>,
}

/// A queue as it stands in the store.
#[derive(Debug, Clone, PartialEq)]
pub struct QueueInfo {
    pub id: String,
    pub project: String,
    pub name: String,
    pub queue_type: QueueType,
    pub message_timeout: u64,
    pub message_expiration: u64,
    /// Messages not yet deleted, reserved and delayed ones included.
    pub size: u64,
    /// Messages ever posted.
    pub total_messages: u64,
}

/// A message to post.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct NewMessage {
    pub body: String,
    /// Seconds before the message becomes visible.
    pub delay: u64,
    /// Headers added when the message is pushed to a subscriber.
    pub push_headers: BTreeMap<String, String>,
}

/// A message as read from a queue. `reservation_id` is set only on messages handed out by a reserve.
#[derive(Debug, Clone, PartialEq)]
pub struct Message {
    pub id: String,
    pub body: String,
    pub reserved_count: u64,
    pub reservation_id: Option<String>,
}

/// What a reserve asks for. `timeout` of `None` means the queue's `message_timeout`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ReserveRequest {
    pub n: usize,
    pub timeout: Option<u64>,
    /// Remove the messages instead of reserving them.
    pub delete: bool,
}

/// One entry of a batch delete.
#[derive(Debug, Clone, PartialEq)]
pub struct DeleteRef {
    pub id: String,
    pub reservation_id: Option<String>,
}
