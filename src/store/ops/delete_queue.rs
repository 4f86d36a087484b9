//! Deleting a queue with its messages (`delete_queue.lua`).

use crate::model::ChangedBy;
use crate::store::keys::QueueKeys;
use crate::store::script::OpScript;
use crate::store::status::Status;
use crate::store::{Result, Store, StoreError};

static SCRIPT: OpScript = OpScript::new("delete_queue.lua", include_str!("delete_queue.lua"));

impl Store {
    /// Deletes a queue with its messages. A managed queue is deleted only by its resource.
    pub async fn delete_queue(&self, project: &str, name: &str, by: ChangedBy<'_>) -> Result<()> {
        let keys = QueueKeys::new(project, name);
        let manager = by.resource().unwrap_or("");
        let (counts, history) = (keys.counts(), keys.history());
        let mut reply = self
            .run_with(&SCRIPT, &keys, &[&counts, &history], &[manager.as_bytes()])
            .await?;
        match reply.status()? {
            Status::Managed => return Err(StoreError::Managed { by: reply.text()? }),
            other => other.check("")?,
        }
        self.0.activity.forget(project, name);
        self.mark_push_queue(project, name, false).await?;
        self.index_remove(project, name).await
    }
}
