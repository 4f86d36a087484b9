//! Reading messages from the front without reserving them (`peek.lua`).

use crate::model::Message;
use crate::store::keys::QueueKeys;
use crate::store::script::OpScript;
use crate::store::{Result, Store};

static SCRIPT: OpScript = OpScript::reading("peek.lua", include_str!("peek.lua"));

impl Store {
    /// Up to `n` ready messages from the front, without reserving them.
    pub async fn peek(&self, project: &str, name: &str, n: usize) -> Result<Vec<Message>> {
        let keys = QueueKeys::new(project, name);
        let n = n.to_string();
        let mut reply = self.run(&SCRIPT, &keys, &[n.as_bytes()]).await?;
        reply.status()?.check("")?;
        let mut messages = Vec::new();
        while !reply.is_empty() {
            let id = reply.text()?;
            let body = reply.text()?;
            let reserved_count = reply.count()?;
            messages.push(Message {
                id,
                body,
                reserved_count,
                reservation_id: None,
                trace: None,
            });
        }
        Ok(messages)
    }
}
