//! A queue's depth, reservations and the age of its oldest message, for metrics: plain reads
//! in one round trip, no script.

use super::keys::QueueKeys;
use super::{Result, Store};

impl Store {
    /// Depth, reserved count and the age of the next message in line (ms; 0 when none) of a
    /// queue, for metrics: four O(1) reads in one round trip.
    pub async fn queue_gauges(&self, project: &str, name: &str) -> Result<(u64, u64, u64)> {
        let keys = QueueKeys::new(project, name);
        let mut conn = self.connection();
        let (depth, held, first_ready, first_push): (u64, u64, Option<String>, Option<String>) =
            redis::pipe()
                .hlen(keys.body())
                .zcard(keys.reserved())
                .lindex(keys.ready(), 0)
                .lindex(keys.push_ready(), 0)
                .query_async(&mut conn)
                .await?;
        // An id starts with its post time in ms, 13 digits (see ops/post.lua).
        let posted_at = |id: &Option<String>| {
            id.as_deref()
                .and_then(|id| id.get(..13))
                .and_then(|ms| ms.parse::<u64>().ok())
        };
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as u64);
        let oldest = [posted_at(&first_ready), posted_at(&first_push)]
            .into_iter()
            .flatten()
            .min()
            .map_or(0, |at| now.saturating_sub(at));
        Ok((depth, held, oldest))
    }
}
