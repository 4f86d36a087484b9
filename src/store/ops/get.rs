//! Reading one message by id (`get.lua`), or a finished push message while it is kept.

use crate::model::Message;
use crate::store::keys::QueueKeys;
use crate::store::script::OpScript;
use crate::store::{Result, Store};

static SCRIPT: OpScript = OpScript::reading("get.lua", include_str!("get.lua"));

impl Store {
    pub async fn get_message(&self, project: &str, name: &str, id: &str) -> Result<Message> {
        let keys = QueueKeys::new(project, name);
        let kept = keys.delivered(id);
        let mut reply = self
            .run_with(&SCRIPT, &keys, &[&kept], &[id.as_bytes()])
            .await?;
        reply.status()?.check(id)?;
        Ok(Message {
            id: id.to_string(),
            body: reply.text()?,
            reserved_count: reply.count()?,
            reservation_id: None,
            trace: None,
        })
    }
}
