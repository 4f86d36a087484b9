//! Deleting one message (`delete.lua`).

use crate::metrics::METRICS;
use crate::store::keys::QueueKeys;
use crate::store::script::OpScript;
use crate::store::{Result, Store};

static SCRIPT: OpScript = OpScript::new("delete.lua", include_str!("delete.lua"));

impl Store {
    /// Deletes one message; a reserved one needs its current reservation id.
    pub async fn delete_message(
        &self,
        project: &str,
        name: &str,
        id: &str,
        reservation_id: Option<&str>,
    ) -> Result<()> {
        let keys = QueueKeys::new(project, name);
        let rid = reservation_id.unwrap_or("");
        let mut reply = self
            .run(&SCRIPT, &keys, &[id.as_bytes(), rid.as_bytes()])
            .await?;
        reply.status()?.check(id)?;
        METRICS.count("deleted", 1);
        Ok(())
    }
}
