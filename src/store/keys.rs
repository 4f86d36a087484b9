//! Redis key layout. Every key of one queue carries the hash tag `{project/queue}`, so each
//! script touches one Redis Cluster slot. Project ids and queue names never contain `/`.
//!
//! The keys of a queue are declared once, in `queue_keys!` below: the Rust accessors, the order
//! in which scripts receive them (`KEYS[1..]`) and their Lua names (bound by the header every
//! script is loaded with, see `script.rs`) all come from that one list.

/// A key (or channel) name: the prefix of every key ferromq writes, then `$rest`.
macro_rules! key {
    ($rest:literal) => {
        concat!("fq:", $rest)
    };
}

/// The prefix of every key ferromq writes.
const PREFIX: &str = key!("");

/// Channels on which the store announces that a queue has news for waiting long polls: this
/// prefix and the queue's tag.
const WAKE_PREFIX: &str = key!("wake:");
pub const WAKE_PATTERN: &str = key!("wake:*");

/// What a key of a queue holds: its settings and counters (kept by `clear`), or messages
/// (removed by `clear`, with the messages).
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Holds {
    Settings,
    Messages,
}

/// Declares the keys of a queue, in the order scripts receive them: `LUA_NAME accessor
/// "suffix" Holds`, each with its documentation. Adding a key to a queue is one line here.
macro_rules! queue_keys {
    ($($(#[doc = $doc:literal])* $lua:ident $method:ident $suffix:literal $holds:ident,)*) => {
        /// Positions in `QueueKeys::all`.
        #[allow(clippy::upper_case_acronyms, non_camel_case_types)]
        #[derive(Clone, Copy)]
        enum Slot { $($lua),* }

        /// How many keys a queue has: scripts get them as `KEYS[1..QUEUE_KEY_COUNT]`, and any
        /// further keys after them.
        pub const QUEUE_KEY_COUNT: usize = [$(stringify!($lua)),*].len();

        /// (Lua name, key suffix, what it holds) of each key of a queue, in `KEYS` order.
        pub const QUEUE_KEYS: [(&str, &str, Holds); QUEUE_KEY_COUNT] =
            [$((stringify!($lua), $suffix, Holds::$holds)),*];

        impl QueueKeys {
            $($(#[doc = $doc])* pub fn $method(&self) -> &str {
                &self.keys[Slot::$lua as usize]
            })*
        }
    };
}

queue_keys! {
    /// Hash: settings and counters.
    CFG cfg "cfg" Settings,
    /// Hash: message id -> body; a message exists while it has a body.
    BODY body "body" Messages,
    /// Hash: message id -> reserved_count (only once reserved).
    RC reserved_counts "rc" Messages,
    /// Hash: message id -> current reservation id (only while reserved or claimed).
    RID reservation_ids "rid" Messages,
    /// List: ids in the order they are handed out. Deleting a message that sits here only
    /// removes its body; the id left behind is skipped (and dropped) when it comes up, which
    /// keeps every operation O(1) and costs each delete at most one later pop.
    READY ready "ready" Messages,
    /// Sorted set: id -> ms when it becomes ready.
    DELAYED delayed "delayed" Messages,
    /// Sorted set: id -> ms when its reservation runs out.
    RESERVED reserved "reserved" Messages,
    /// Hash: message id -> push headers as JSON (only when given).
    HEADERS headers "headers" Messages,
    /// List: ids waiting for push delivery (like READY, for push workers).
    PUSHQ push_ready "pushq" Messages,
    /// Sorted set: id -> ms when it joins PUSHQ.
    PUSH_DELAYED push_delayed "push-delayed" Messages,
    /// Sorted set: id -> ms when a push worker's claim (or the wait for a retry or an
    /// acknowledgement) ends. While a delivery round runs, RID holds the claim's reservation
    /// id; between rounds the message has none.
    CLAIMED claimed "claimed" Messages,
    /// Hash: message id -> push state as JSON (see `push::state`), and '<id>:acks' ->
    /// acknowledgements recorded since the last round, {name: rid}.
    PSTATE push_states "pstate" Messages,
    /// List: ids a reserve found past the dead-letter queue's max_reservations, waiting to be
    /// moved there (see `ops/dead_letter.rs`); still stored here until the move is done.
    DEAD dead_letters "dead" Messages,
    /// Hash: message id -> ms it arrived, for messages moved in from another queue (a
    /// dead-letter move): their expiration starts then, not at the time their id tells.
    ARRIVED arrived "arrived" Messages,
    /// List: messages of fired alerts waiting to be posted to their target queues, as JSON
    /// (see `check_alerts` in prelude.lua and `ops/alerts.rs`). Clearing the queue keeps them.
    ALERTS alerts_fired "alerts" Settings,
    /// Hash: the queue's redrive task, the last one started (see `ops/redrive.rs`).
    REDRIVE redrive "redrive" Settings,
    /// List: ids a redrive took out of READY, on their way to its target; still stored here
    /// until the move is done.
    REDRIVING redriving "redriving" Messages,
    /// Sorted set: token of a message moved in from another queue -> ms it was stored here
    /// (put.lua), kept ten minutes: a move its mover repeats after dying halfway stores
    /// nothing again, even once the message has been taken from here. Clearing the queue
    /// keeps it.
    MOVED moved_tokens "moved" Settings,
    /// Hash: Idempotency-Key of a post -> what it stored, "fingerprint expiry-ms id,id,..."
    /// (post.lua), for the key's window. Clearing the queue keeps it.
    IDEMPOTENT idempotent_posts "idem" Settings,
    /// Sorted set: Idempotency-Key -> ms when its record ends.
    IDEMPOTENT_DUE idempotent_due "idem-due" Settings,
}

/// The keys of one queue, in the order the Lua scripts expect them.
pub struct QueueKeys {
    tag: String,
    keys: [String; QUEUE_KEY_COUNT],
}

impl QueueKeys {
    pub fn new(project: &str, queue: &str) -> Self {
        let tag = format!("{{{project}/{queue}}}");
        let keys = QUEUE_KEYS.map(|(_, suffix, _)| format!("{PREFIX}{tag}:{suffix}"));
        QueueKeys { tag, keys }
    }

    /// Every key, in `KEYS` order.
    pub fn all(&self) -> &[String; QUEUE_KEY_COUNT] {
        &self.keys
    }

    /// The channel the post and release scripts publish on when a long poll waits.
    pub fn wake_channel(&self) -> String {
        format!("{WAKE_PREFIX}{}", self.tag)
    }

    /// Per-subscriber counts of delivery answers (a hash of `outcome:subscriber` -> count).
    /// Not among the scripts' `KEYS`: only deleting the queue touches it in a script.
    pub fn counts(&self) -> String {
        format!("{PREFIX}{}:counts", self.tag)
    }

    /// A queue's per-minute history (see `ops/history.rs`). Not among the scripts' `KEYS`:
    /// the history script is given it, and deleting the queue removes it.
    pub fn history(&self) -> String {
        format!("{PREFIX}{}:history", self.tag)
    }

    /// Where a finished push message is kept for a while, so its push status and the message
    /// stay readable: a hash of `state` (the push state, JSON), `body` and `reserved_count`.
    /// Not among the scripts' `KEYS`: the report and get scripts are given those they need.
    pub fn delivered(&self, id: &str) -> String {
        format!("{PREFIX}{}:finished:{id}", self.tag)
    }

    /// The push subscribers' flow control and circuit breakers (see `ops/push_gate.rs`). Not
    /// among the scripts' `KEYS`: the gate scripts are given it; it expires when left alone.
    pub fn gate(&self) -> String {
        format!("{PREFIX}{}:gate", self.tag)
    }

    /// The deliveries in flight to one push subscriber with `max_concurrency` (see
    /// `ops/push_gate.rs`); it expires with its last lease.
    pub fn in_flight(&self, subscriber: &str) -> String {
        format!("{PREFIX}{}:in-flight:{subscriber}", self.tag)
    }

    /// What identifies the queue in a wake channel name.
    pub fn tag(&self) -> &str {
        &self.tag
    }
}

/// The queue tag a wake channel names, if it is one of ours.
pub fn tag_of_wake_channel(channel: &str) -> Option<&str> {
    channel.strip_prefix(WAKE_PREFIX)
}

/// The set of push queues (`project/queue`), which push workers watch.
pub const PUSH_QUEUES: &str = key!("push-queues");

/// The hash of queues standalone mode declared from manifest files: field `["project","queue"]`
/// (JSON), value the managing resource.
pub const DECLARED_QUEUES: &str = key!("declared-queues");

/// The store-wide sequence that numbers queues on their first post; the number ends each of
/// the queue's message ids, which makes them unique across queues.
pub const QUEUE_NUMBERS: &str = key!("queue-numbers");

/// The set of queues with a redrive running (`["project","queue"]`, JSON), which every process
/// looks at now and then to take over one whose process died.
pub const REDRIVES: &str = key!("redrives");

/// The set of queues with alert messages waiting to be sent (`["project","queue"]`, JSON), which
/// every process looks at now and then to send those a dead process left.
pub const ALERTS_PENDING: &str = key!("alerts-pending");

/// The sorted set of a project's queue names, for listing.
pub fn project_index(project: &str) -> String {
    format!("{PREFIX}queues:{{{project}}}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_key_of_a_queue_shares_one_hash_tag() {
        let keys = QueueKeys::new("proj", "orders");
        for key in keys.all() {
            assert!(key.starts_with("fq:{proj/orders}:"), "{key}");
        }
        assert_eq!(
            tag_of_wake_channel(&keys.wake_channel()),
            Some("{proj/orders}")
        );
    }

    #[test]
    fn accessors_name_the_keys_in_script_order() {
        let keys = QueueKeys::new("p", "q");
        assert_eq!(keys.cfg(), keys.all()[0]);
        assert_eq!(keys.body(), "fq:{p/q}:body");
        assert_eq!(keys.push_states(), "fq:{p/q}:pstate");
        assert_eq!(keys.counts(), "fq:{p/q}:counts");
        for key in [WAKE_PATTERN, PUSH_QUEUES, DECLARED_QUEUES, QUEUE_NUMBERS] {
            assert!(key.starts_with(PREFIX), "{key}");
        }
        assert!(WAKE_PATTERN.starts_with(WAKE_PREFIX));
    }
}
