//! Removing every message of a queue (`clear.lua`).

use crate::store::keys::QueueKeys;
use crate::store::script::OpScript;
use crate::store::{Result, Store};

static SCRIPT: OpScript = OpScript::new("clear.lua", include_str!("clear.lua"));

impl Store {
    /// Removes every message of a queue.
    pub async fn clear(&self, project: &str, name: &str) -> Result<()> {
        let keys = QueueKeys::new(project, name);
        let mut reply = self.run(&SCRIPT, &keys, &[]).await?;
        reply.status()?.check("")?;
        self.alerts_fired(project, name, reply.count()?);
        Ok(())
    }
}
