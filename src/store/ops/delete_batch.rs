//! Deleting several messages, all or none (`delete_batch.lua`).

use crate::metrics::METRICS;
use crate::model::DeleteRef;
use crate::store::keys::QueueKeys;
use crate::store::ops::history::Used;
use crate::store::script::OpScript;
use crate::store::{Result, Store};

static SCRIPT: OpScript = OpScript::new("delete_batch.lua", include_str!("delete_batch.lua"));

impl Store {
    /// Deletes several messages, all or none.
    pub async fn delete_messages(
        &self,
        project: &str,
        name: &str,
        refs: &[DeleteRef],
    ) -> Result<()> {
        let keys = QueueKeys::new(project, name);
        let mut args: Vec<&[u8]> = Vec::with_capacity(refs.len() * 2);
        for r in refs {
            args.push(r.id.as_bytes());
            args.push(r.reservation_id.as_deref().unwrap_or("").as_bytes());
        }
        let mut reply = self.run(&SCRIPT, &keys, &args).await?;
        let status = reply.status()?;
        // The entry that failed, counted from 1 (0 when none did).
        let failed = usize::try_from(reply.int()?).unwrap_or(0);
        let id = failed
            .checked_sub(1)
            .and_then(|i| refs.get(i))
            .map(|r| r.id.as_str());
        status.check(id.unwrap_or(""))?;
        self.alerts_fired(project, name, reply.count()?);
        METRICS.count("deleted", refs.len() as u64);
        self.0
            .activity
            .add(project, name, Used::Deleted, refs.len() as u64);
        Ok(())
    }
}
