//! A queue's settings and counters (`info.lua`).

use crate::model::QueueInfo;
use crate::store::keys::QueueKeys;
use crate::store::script::OpScript;
use crate::store::{Result, Store};

static SCRIPT: OpScript = OpScript::reading("info.lua", include_str!("info.lua"));

impl Store {
    pub async fn queue_info(&self, project: &str, name: &str) -> Result<QueueInfo> {
        let keys = QueueKeys::new(project, name);
        let mut reply = self.run(&SCRIPT, &keys, &[]).await?;
        reply.status()?.check("")?;
        reply.queue_info(project, name)
    }
}
