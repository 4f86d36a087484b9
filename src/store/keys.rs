//! Redis key layout. Every key of one queue carries the hash tag `{project/queue}`, so each
//! script touches one Redis Cluster slot. Project ids and queue names never contain `/`.

/// Prefix of every key ferromq writes.
const PREFIX: &str = "fq";

/// Channels on which the store announces that a queue has news for waiting long polls.
pub const WAKE_PATTERN: &str = "fq:wake:*";

/// The keys of one queue, in the order the Lua scripts expect them (see `lua/prelude.lua`).
pub struct QueueKeys {
    tag: String,
    keys: [String; 12],
}

impl QueueKeys {
    pub fn new(project: &str, queue: &str) -> Self {
        let tag = format!("{{{project}/{queue}}}");
        let key = |suffix: &str| format!("{PREFIX}:{tag}:{suffix}");
        let keys = [
            key("cfg"),
            key("body"),
            key("rc"),
            key("rid"),
            key("ready"),
            key("delayed"),
            key("reserved"),
            key("headers"),
            key("pushq"),
            key("push-delayed"),
            key("claimed"),
            key("pstate"),
        ];
        QueueKeys { tag, keys }
    }

    pub fn all(&self) -> &[String; 12] {
        &self.keys
    }

    /// The channel the post and release scripts publish on when a long poll waits.
    pub fn wake_channel(&self) -> String {
        format!("{PREFIX}:wake:{}", self.tag)
    }

    /// What identifies the queue in a wake channel name.
    pub fn tag(&self) -> &str {
        &self.tag
    }
}

/// The queue tag a wake channel names, if it is one of ours.
pub fn tag_of_wake_channel(channel: &str) -> Option<&str> {
    channel.strip_prefix("fq:wake:")
}

/// Where the push state of a delivered message is kept for a while (same slot as its queue).
pub fn delivered_status(project: &str, queue: &str, id: &str) -> String {
    format!("{PREFIX}:{{{project}/{queue}}}:done:{id}")
}

/// Per-subscriber counts of delivery answers of a queue (same slot as the queue): a hash of
/// `outcome:subscriber` -> count.
pub fn delivery_counts(project: &str, queue: &str) -> String {
    format!("{PREFIX}:{{{project}/{queue}}}:counts")
}

/// The set of push queues (`project/queue`), which push workers watch.
pub const PUSH_QUEUES: &str = "fq:push-queues";

/// The hash of queues standalone mode declared from manifest files: field `["project","queue"]`
/// (JSON), value the managing resource.
pub const DECLARED_QUEUES: &str = "fq:declared-queues";

/// The sorted set of a project's queue names, for listing.
pub fn project_index(project: &str) -> String {
    format!("{PREFIX}:queues:{{{project}}}")
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
}
