//! Reading the push state of a message: of its rounds so far, or kept after delivery. Plain
//! reads, no script: nothing changes.

use crate::store::keys::QueueKeys;
use crate::store::{Result, Store, StoreError};
use redis::AsyncCommands;

impl Store {
    /// The push state of a message (JSON): of its rounds so far, or kept after delivery.
    /// `Ok(None)` for a message not yet tried.
    pub async fn push_state(&self, project: &str, name: &str, id: &str) -> Result<Option<String>> {
        let keys = QueueKeys::new(project, name);
        let mut conn = self.connection();
        if !conn.exists::<_, bool>(keys.cfg()).await? {
            return Err(StoreError::QueueNotFound);
        }
        if let Some(state) = conn
            .hget::<_, _, Option<String>>(keys.push_states(), id)
            .await?
        {
            return Ok(Some(state));
        }
        if conn.hexists::<_, _, bool>(keys.body(), id).await? {
            return Ok(None);
        }
        // Kept after delivery, by the queue as it is now: not before it was cleared, or by one
        // of its name deleted since (`queue_generation` in prelude.lua).
        let (state, kept_by): (Option<String>, Option<String>) = redis::cmd("HMGET")
            .arg(keys.delivered(id))
            .arg(&["state", "queue"])
            .query_async(&mut conn)
            .await?;
        let (queue_id, cleared): (Option<String>, Option<String>) = redis::cmd("HMGET")
            .arg(keys.cfg())
            .arg(&["id", "cleared"])
            .query_async(&mut conn)
            .await?;
        let generation = format!(
            "{}/{}",
            queue_id.unwrap_or_default(),
            cleared.as_deref().unwrap_or("0")
        );
        match state {
            Some(state) if kept_by.as_deref() == Some(generation.as_str()) => Ok(Some(state)),
            _ => Err(StoreError::MessageNotFound { id: id.to_string() }),
        }
    }
}
