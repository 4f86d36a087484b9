//! Plain types shared by every layer: queue settings, messages, and the limits the wire contract sets.

use std::collections::BTreeMap;
use std::time::Duration;

/// Default reservation timeout of a queue, in seconds.
pub const DEFAULT_MESSAGE_TIMEOUT: u64 = 60;
/// Longest reservation timeout, in seconds (one day).
pub const MAX_MESSAGE_TIMEOUT: u64 = 86_400;
/// Shortest queue `message_timeout`, in seconds (a reserve may still ask for less).
pub const MIN_MESSAGE_TIMEOUT: u64 = 30;
/// Default lifetime of a message, in seconds (seven days).
pub const DEFAULT_MESSAGE_EXPIRATION: u64 = 604_800;
/// Longest lifetime of a message, in seconds (thirty days).
pub const MAX_MESSAGE_EXPIRATION: u64 = 2_592_000;
/// Largest per-queue `max_message_size` (bytes); the server's own limit applies as well.
pub const MAX_QUEUE_MESSAGE_SIZE: u64 = 16 * 1024 * 1024;
/// Longest per-queue push `timeout` (seconds).
pub const MAX_PUSH_TIMEOUT: u64 = 3600;
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

impl QueueType {
    pub fn is_push(self) -> bool {
        self != QueueType::Pull
    }
}

/// Default number of retries of a push delivery after the first try.
pub const DEFAULT_RETRIES: u32 = 3;
/// Most retries a push queue may ask for.
pub const MAX_RETRIES: u32 = 100;
/// Default pause before a failed push delivery is retried, in seconds.
pub const DEFAULT_RETRIES_DELAY: u64 = 60;
/// Shortest and longest pause before a retry, in seconds.
pub const MIN_RETRIES_DELAY: u64 = 3;
pub const MAX_RETRIES_DELAY: u64 = 86_400;

/// Longest queue name, in bytes.
pub const MAX_QUEUE_NAME: usize = 128;
/// Longest project id, in bytes.
pub const MAX_PROJECT_ID: usize = 64;

/// Project ids are what the IronMQ clients put in URLs: 1 to 64 of A-Z a-z 0-9 _ . -
pub fn check_project(project: &str) -> Result<(), String> {
    let ok = !project.is_empty()
        && project.len() <= MAX_PROJECT_ID
        && !is_dot_segment(project)
        && project
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'));
    if ok {
        Ok(())
    } else {
        Err(format!(
            "Invalid project id {project:?}: use 1 to 64 of A-Z a-z 0-9 _ . - (not . or ..)"
        ))
    }
}

/// Queue names are liberal, as IronMQ's are (spaces, colons, plus signs...), but never hold a
/// `/` or a control character, so they stay one path segment and one key.
pub fn check_queue_name(name: &str) -> Result<(), String> {
    let ok = !name.is_empty()
        && name.len() <= MAX_QUEUE_NAME
        && !is_dot_segment(name)
        && !name.chars().any(|c| c == '/' || c.is_control());
    if ok {
        Ok(())
    } else {
        Err(format!(
            "Invalid queue name {name:?}: 1 to 128 bytes, no '/', no control characters, not . or .."
        ))
    }
}

/// `.` and `..` are folded away by URL libraries (`%2E%2E` too), so a name like that cannot
/// stay one segment of the URLs clients build.
pub fn is_dot_segment(name: &str) -> bool {
    name == "." || name == ".."
}

/// Where a push queue delivers its messages.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Subscriber {
    pub name: String,
    /// `http(s)://...`, or `ironmq:///queue` (another queue of the project), or
    /// `ironmq://project:token@/queue` (a queue of another project on this service), or
    /// `ironmq://project:token@host[:port]/queue` (a queue on another server, over HTTPS).
    pub url: String,
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    /// This subscriber's own `retries` and `retries_delay` (beyond IronMQ): multicast retries
    /// each subscriber on its own, so each may have its own; unicast retries whole rounds
    /// with the queue's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retries: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retries_delay: Option<u64>,
    /// Flow control (beyond IronMQ), held across every push worker of every process: at most
    /// this many deliveries a second,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_per_second: Option<f64>,
    /// and at most this many in flight at once.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_concurrency: Option<u32>,
    /// Circuit breaker (beyond IronMQ): after this many failed tries in a row the subscriber
    /// is paused (its messages wait, spending no retry) and probed with one delivery after
    /// `probe_interval` seconds (`DEFAULT_PROBE_INTERVAL`), doubled after each failed probe.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pause_after_failures: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub probe_interval: Option<u64>,
    /// Send `Authorization: Bearer <JWT>` with each push (beyond IronMQ).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jwt: Option<JwtAuth>,
    /// Send CloudEvents binary-mode `ce-*` headers with each push (beyond IronMQ).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub cloudevents: bool,
}

/// Seconds before the first probe of a paused subscriber, unless it sets `probe_interval`.
pub const DEFAULT_PROBE_INTERVAL: u64 = 5;

/// Where the bearer token of a subscriber's pushes comes from.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct JwtAuth {
    /// The token's `aud` when ferromq signs it; the subscriber's URL when not given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub audience: Option<String>,
    /// A file holding the token to send as it is (a projected Kubernetes ServiceAccount token,
    /// whose audience the pod declares), read again before it expires; when not given,
    /// ferromq signs the token with its own key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token_file: Option<String>,
}

/// How a push queue delivers.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct PushConfig {
    pub subscribers: Vec<Subscriber>,
    pub retries: u32,
    pub retries_delay: u64,
    /// Queue that receives messages whose delivery failed for good; empty for none.
    #[serde(default)]
    pub error_queue: String,
    /// How the pause before a retry grows (beyond IronMQ; fixed by default).
    #[serde(default)]
    pub backoff: Backoff,
    /// Secret to sign pushed requests with (beyond IronMQ; none by default): see
    /// `push::deliver::SIGNATURE_HEADER`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signing_secret: Option<String>,
    /// Seconds a subscriber has to answer (beyond IronMQ); 0 for the server's push timeout.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub timeout: u64,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

/// The pause before retry k (from 1): `fixed` is always `retries_delay`; `exponential` is
/// `retries_delay` · 2^(k-1), at most a day, less a random part of up to half (jitter), so
/// retries of many messages do not arrive together.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Backoff {
    #[default]
    Fixed,
    Exponential,
}

impl Backoff {
    pub fn delay(self, retries_delay: u64, retry: u32) -> Duration {
        let base = Duration::from_secs(retries_delay);
        match self {
            Backoff::Fixed => base,
            Backoff::Exponential => {
                let factor = 1u64 << retry.saturating_sub(1).min(20);
                let full = base
                    .saturating_mul(factor as u32)
                    .min(Duration::from_secs(MAX_RETRIES_DELAY));
                full.mul_f64(1.0 - fastrand::f64() / 2.0)
            }
        }
    }
}

impl PushConfig {
    /// Each subscriber with its key in a message's push state (and in its acknowledgement
    /// URL): its name when no other subscriber has it; for a shared name, the name with `#` and
    /// the first 8 hex digits of the SHA-256 of its URL, so the key stays the same when the list
    /// is reordered or another subscriber leaves (with `#2`, `#3`... after it for a shared URL
    /// too).
    pub fn keyed(&self) -> Vec<(String, &Subscriber)> {
        use sha2::Digest;
        let mut keys: Vec<String> = Vec::with_capacity(self.subscribers.len());
        for s in &self.subscribers {
            let shared = self.subscribers.iter().filter(|o| o.name == s.name).count() > 1;
            let key = if shared {
                let digest = sha2::Sha256::digest(s.url.as_bytes());
                let base = format!("{}#{}", s.name, &hex::encode(digest)[..8]);
                let taken = |k: &str| {
                    keys.iter().any(|used| used == k)
                        || self.subscribers.iter().any(|o| o.name == k)
                };
                std::iter::once(base.clone())
                    .chain((2..).map(|n| format!("{base}#{n}")))
                    .find(|k| !taken(k))
                    .unwrap_or(base)
            } else {
                s.name.clone()
            };
            keys.push(key);
        }
        keys.into_iter().zip(&self.subscribers).collect()
    }
}

impl Default for PushConfig {
    fn default() -> Self {
        PushConfig {
            subscribers: Vec::new(),
            retries: DEFAULT_RETRIES,
            retries_delay: DEFAULT_RETRIES_DELAY,
            error_queue: String::new(),
            backoff: Backoff::Fixed,
            signing_secret: None,
            timeout: 0,
        }
    }
}

/// A change to push settings: `None` leaves a setting as it is. An empty `error_queue` turns
/// the error queue off.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PushPatch {
    pub subscribers: Option<Vec<Subscriber>>,
    pub retries: Option<u32>,
    pub retries_delay: Option<u64>,
    pub error_queue: Option<String>,
    pub backoff: Option<Backoff>,
    /// `""` removes the secret.
    pub signing_secret: Option<String>,
    /// Seconds a subscriber has to answer; 0 returns to the server's `FERROMQ_PUSH_TIMEOUT`.
    pub timeout: Option<u64>,
}

/// Default and largest `max_reservations` of a dead-letter queue.
pub const DEFAULT_MAX_RESERVATIONS: u32 = 10;
pub const MAX_MAX_RESERVATIONS: u32 = 1000;

/// A pull queue's dead-letter queue: a message reserved `max_reservations` times goes there on
/// its next reserve instead of being handed out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeadLetter {
    pub queue: String,
    pub max_reservations: u32,
}

/// A change to the dead-letter queue: an empty `queue_name` removes it; `None` leaves a
/// setting as it is.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct DeadLetterPatch {
    pub queue_name: Option<String>,
    pub max_reservations: Option<u64>,
}

/// Most alerts a queue may have.
pub const MAX_ALERTS: usize = 5;

/// When an alert fires: once as the size crosses its trigger (`Fixed`), or at every multiple
/// of it (`Progressive`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AlertType {
    Fixed,
    Progressive,
}

/// Whether an alert watches the size grow (`Asc`) or shrink (`Desc`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AlertDirection {
    #[default]
    Asc,
    Desc,
}

/// A pull queue's alert: when the queue's size crosses `trigger` (see `AlertType`) in its
/// direction, a message describing it is posted to `queue`; then it stays quiet for `snooze`
/// seconds. Stored as this JSON, which the scripts read (`prelude.lua`, `check_alerts`).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Alert {
    /// Set by the server when the alert is added.
    pub id: String,
    #[serde(rename = "type")]
    pub alert_type: AlertType,
    pub direction: AlertDirection,
    pub trigger: u64,
    pub queue: String,
    pub snooze: u64,
}

impl Alert {
    /// Two alerts of one queue may not fire on the same crossing.
    pub fn same_crossing(&self, other: &Alert) -> bool {
        (self.alert_type, self.direction, self.trigger)
            == (other.alert_type, other.direction, other.trigger)
    }

    /// The same alert but for its id.
    pub fn same_as(&self, other: &Alert) -> bool {
        self.same_crossing(other) && (&self.queue, self.snooze) == (&other.queue, other.snooze)
    }
}

/// A change to a queue's alerts. Added and replacing alerts come without ids; a replacing
/// alert identical to a current one keeps that one's id.
#[derive(Debug, Clone, PartialEq)]
pub enum AlertsChange {
    Add(Vec<Alert>),
    Replace(Vec<Alert>),
    /// By id.
    Remove(Vec<String>),
}

/// Settings of a queue as a patch: `None` leaves a setting as it is (or at its default on creation).
/// The REST API, the controller and standalone mode all express changes this way.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct QueueSettings {
    pub queue_type: Option<QueueType>,
    pub message_timeout: Option<u64>,
    pub message_expiration: Option<u64>,
    /// Largest message body in bytes; 0 leaves only the server's limit.
    pub max_message_size: Option<u64>,
    pub push: Option<PushPatch>,
    pub dead_letter: Option<DeadLetterPatch>,
    pub alerts: Option<AlertsChange>,
}

/// The settings a queue stands with, as stored.
#[derive(Debug, Clone, PartialEq)]
pub struct QueueConfig {
    pub queue_type: QueueType,
    pub message_timeout: u64,
    pub message_expiration: u64,
    /// Largest message body in bytes, below the server's limit; 0 for the server's limit only.
    pub max_message_size: u64,
    /// Kept while the queue is a pull queue too, so switching back to push restores it.
    pub push: Option<PushConfig>,
    /// Pull queues only.
    pub dead_letter: Option<DeadLetter>,
    /// Pull queues only.
    pub alerts: Vec<Alert>,
    /// The resource that declares this queue (`Queue namespace/name`), if any. Only that
    /// resource changes the settings of a managed queue; messages flow as usual.
    pub managed_by: Option<String>,
    /// Set up or changed over REST (or handed back to REST by a resource): a resource takes
    /// such a queue over only when asked to adopt it. A queue that a post created on the fly
    /// is not, so a resource declaring it (again, after Redis lost it) simply takes it.
    pub rest_configured: bool,
    /// The resource that last handed this queue back to REST: it may take it back.
    pub released_by: Option<String>,
    /// Revision of the stored settings these were read at ('' when not read from the store):
    /// a push round reports it, so a round run on settings changed since is not final.
    pub revision: String,
}

impl Default for QueueConfig {
    fn default() -> Self {
        QueueConfig {
            queue_type: QueueType::Pull,
            message_timeout: DEFAULT_MESSAGE_TIMEOUT,
            message_expiration: DEFAULT_MESSAGE_EXPIRATION,
            max_message_size: 0,
            push: None,
            dead_letter: None,
            alerts: Vec::new(),
            managed_by: None,
            rest_configured: false,
            released_by: None,
            revision: String::new(),
        }
    }
}

/// Who changes a queue's settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChangedBy<'a> {
    /// A REST client: refused on managed queues.
    Api,
    /// The resource that declares the queue (`Queue namespace/name`): it creates the queue or
    /// changes the one it manages; a queue that exists unmanaged is refused.
    Resource(&'a str),
    /// Like `Resource`, and it also takes over a queue that exists unmanaged.
    Adopt(&'a str),
    /// That resource lets go of the queue: it becomes an ordinary REST queue.
    Release(&'a str),
}

impl<'a> ChangedBy<'a> {
    /// The resource acting, if any.
    pub fn resource(self) -> Option<&'a str> {
        match self {
            ChangedBy::Api => None,
            ChangedBy::Resource(r) | ChangedBy::Adopt(r) | ChangedBy::Release(r) => Some(r),
        }
    }
}

/// A queue as it stands in the store.
#[derive(Debug, Clone, PartialEq)]
pub struct QueueInfo {
    pub id: String,
    pub project: String,
    pub name: String,
    pub config: QueueConfig,
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
    /// The trace context it was posted with (returned by reserve).
    pub trace: Option<Trace>,
}

/// A W3C trace context a message was posted with, kept among its push headers (so each push
/// carries it on, see `push::deliver::next_span`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Trace {
    pub traceparent: String,
    pub tracestate: Option<String>,
}

impl Trace {
    pub const PARENT: &str = "traceparent";
    pub const STATE: &str = "tracestate";

    /// The trace id and flags of a valid `traceparent` (version 00 form; a later version is
    /// read the same way, as the W3C recommendation asks).
    pub fn parse_parent(parent: &str) -> Option<(&str, &str)> {
        // Lowercase hex only, as the W3C recommendation writes it.
        let hex = |s: &str, n: usize| {
            s.len() == n
                && s.bytes()
                    .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        };
        let mut parts = parent.trim().split('-');
        let (version, trace, span, flags) =
            (parts.next()?, parts.next()?, parts.next()?, parts.next()?);
        let valid = hex(version, 2)
            && version != "ff"
            && hex(trace, 32)
            && hex(span, 16)
            && hex(flags, 2)
            && trace.bytes().any(|b| b != b'0')
            && span.bytes().any(|b| b != b'0')
            && (parts.next().is_none() || version != "00");
        valid.then_some((trace, flags))
    }

    /// The trace context among a message's push headers as stored (JSON, or '' for none).
    pub fn from_push_headers(stored: &str) -> Option<Trace> {
        if !stored.contains(Self::PARENT) {
            return None;
        }
        let headers: BTreeMap<String, String> = serde_json::from_str(stored).ok()?;
        Some(Trace {
            traceparent: headers.get(Self::PARENT)?.clone(),
            tracestate: headers.get(Self::STATE).cloned(),
        })
    }
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

/// Largest rate of a redrive, in messages per second.
pub const MAX_REDRIVE_RATE: u64 = 100_000;

/// A redrive: moving the messages waiting in a dead-letter or error queue back to the queue they
/// came from (or another), run as a task that survives the process running it.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Redrive {
    pub id: String,
    /// The queue it moves to.
    pub to: String,
    /// Most messages it moves; 0: every one waiting.
    pub max: u64,
    /// Messages per second; 0: as fast as it goes.
    pub rate: u64,
    /// Error-queue messages are envelopes: their original body (and id) goes back.
    pub unwrap: bool,
    pub moved: u64,
    /// `running`, `done` or `cancelled`.
    pub state: String,
    /// Why the last attempt to move failed, if it did (it is tried again).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// Ms since the epoch.
    pub created_at: u64,
    pub updated_at: u64,
}
