//! Storing messages that come with their ids from another queue (`put.lua`): a dead-letter
//! move, a redrive, or the messages of another queue's alerts. Storing one again changes nothing
//! while the queue holds it, or took it in the last ten minutes (by its move token), so a move
//! repeated after a failure stores nothing twice.

use crate::model::{DEFAULT_MESSAGE_EXPIRATION, DEFAULT_MESSAGE_TIMEOUT};
use crate::store::keys::QueueKeys;
use crate::store::script::OpScript;
use crate::store::{Result, Store, random_id};

static SCRIPT: OpScript = OpScript::new("put.lua", include_str!("put.lua"));

/// A message on its way from one queue to another, as it is to be stored.
pub struct Carried {
    pub id: String,
    pub body: String,
    pub reserved_count: String,
    /// Push headers as JSON ('' when none).
    pub headers: String,
    /// Names this message's move from its queue, once ('' when it needs no name): see
    /// `move_token` in prelude.lua.
    pub token: String,
}

impl Store {
    /// Stores `messages` at the back of `target` (created with default settings when missing)
    /// with the ids they carry, skipping ids it holds already.
    pub(in crate::store) async fn put(
        &self,
        project: &str,
        target: &str,
        messages: &[Carried],
    ) -> Result<()> {
        let keys = QueueKeys::new(project, target);
        let channel = keys.wake_channel();
        let queue_id = random_id()[..24].to_string();
        let (timeout, expiration) = (
            DEFAULT_MESSAGE_TIMEOUT.to_string(),
            DEFAULT_MESSAGE_EXPIRATION.to_string(),
        );
        let mut args: Vec<&[u8]> = vec![
            channel.as_bytes(),
            queue_id.as_bytes(),
            timeout.as_bytes(),
            expiration.as_bytes(),
        ];
        for m in messages {
            args.extend([
                m.id.as_bytes(),
                m.body.as_bytes(),
                m.reserved_count.as_bytes(),
                m.headers.as_bytes(),
                m.token.as_bytes(),
            ]);
        }
        let mut reply = self.run(&SCRIPT, &keys, &args).await?;
        reply.status()?.check("")?;
        if reply.int()? == 1
            && let Err(err) = self.index_add(project, target).await
        {
            tracing::warn!(%err, project, target, "a new queue could not be listed");
        }
        self.alerts_fired(project, target, reply.count()?);
        Ok(())
    }
}
