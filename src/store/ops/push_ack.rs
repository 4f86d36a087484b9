//! A subscriber's acknowledgement of a push it answered 202 for (`push_ack.lua`).

use crate::store::keys::QueueKeys;
use crate::store::script::OpScript;
use crate::store::{Result, Store};

static SCRIPT: OpScript = OpScript::new("push_ack.lua", include_str!("push_ack.lua"));

impl Store {
    /// A subscriber's acknowledgement of a message it answered 202 for. `reservation_id` is the
    /// one of the push request; `None` when the caller proved itself with a token instead.
    pub async fn ack_push(
        &self,
        project: &str,
        name: &str,
        id: &str,
        reservation_id: Option<&str>,
        subscriber: &str,
    ) -> Result<()> {
        let keys = QueueKeys::new(project, name);
        let channel = keys.wake_channel();
        let args: [&[u8]; 4] = [
            id.as_bytes(),
            reservation_id.unwrap_or("").as_bytes(),
            subscriber.as_bytes(),
            channel.as_bytes(),
        ];
        let mut reply = self.run(&SCRIPT, &keys, &args).await?;
        reply.status()?.check(id)
    }
}
