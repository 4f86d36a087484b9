//! Ending a reservation: the message goes back to the front (`release.lua`).

use crate::metrics::METRICS;
use crate::store::keys::QueueKeys;
use crate::store::script::OpScript;
use crate::store::{Result, Store};

static SCRIPT: OpScript = OpScript::new("release.lua", include_str!("release.lua"));

impl Store {
    /// Ends a reservation: the message goes back to the front, at once or after `delay` s.
    pub async fn release(
        &self,
        project: &str,
        name: &str,
        id: &str,
        reservation_id: &str,
        delay: u64,
    ) -> Result<()> {
        let keys = QueueKeys::new(project, name);
        let channel = keys.wake_channel();
        let delay = delay.to_string();
        let args: [&[u8]; 4] = [
            channel.as_bytes(),
            id.as_bytes(),
            reservation_id.as_bytes(),
            delay.as_bytes(),
        ];
        let mut reply = self.run(&SCRIPT, &keys, &args).await?;
        reply.status()?.check(id)?;
        METRICS.count("released", 1);
        Ok(())
    }
}
