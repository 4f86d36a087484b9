//! Extending a reservation under a new reservation id (`touch.lua`).

use crate::metrics::METRICS;
use crate::store::keys::QueueKeys;
use crate::store::script::OpScript;
use crate::store::{Result, Store, random_id};

static SCRIPT: OpScript = OpScript::new("touch.lua", include_str!("touch.lua"));

impl Store {
    /// Extends a reservation; returns the new reservation id (the old one stops being valid).
    pub async fn touch(
        &self,
        project: &str,
        name: &str,
        id: &str,
        reservation_id: &str,
        timeout: Option<u64>,
    ) -> Result<String> {
        let keys = QueueKeys::new(project, name);
        let timeout = timeout.unwrap_or(0).to_string();
        let new_id = random_id();
        let args: [&[u8]; 4] = [
            id.as_bytes(),
            reservation_id.as_bytes(),
            timeout.as_bytes(),
            new_id.as_bytes(),
        ];
        let mut reply = self.run(&SCRIPT, &keys, &args).await?;
        reply.status()?.check(id)?;
        METRICS.count("touched", 1);
        Ok(new_id)
    }
}
