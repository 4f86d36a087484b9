//! Reading the push state of a message: of its rounds so far, or kept after delivery. Reads
//! only: nothing changes.

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
        // Kept after delivery. The get script shows a kept message only for the queue as it is
        // now (not once cleared, or deleted and made again): its state goes with it.
        self.get_message(project, name, id).await?;
        match conn
            .hget::<_, _, Option<String>>(keys.delivered(id), "state")
            .await?
        {
            Some(state) => Ok(Some(state)),
            None => Err(StoreError::MessageNotFound { id: id.to_string() }),
        }
    }
}
