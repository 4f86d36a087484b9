//! Writing a queue's settings if nobody changed them since they were read (`apply.lua`).

use crate::model::{QueueConfig, QueueInfo};
use crate::store::keys::{QUEUE_NUMBERS, QueueKeys};
use crate::store::script::OpScript;
use crate::store::status::Status;
use crate::store::{Result, Store, StoreError, random_id};
use redis::AsyncCommands;

static SCRIPT: OpScript = OpScript::new("apply.lua", include_str!("apply.lua"));

/// Where the alerts' number goes among the script's arguments.
const NUMBER_ARG: usize = 4;

impl Store {
    /// Writes `next` as the settings of the queue, creating it when `revision` is empty, if
    /// the settings are still at `revision`. Returns the queue as it now stands and whether it
    /// was created, or `None` when somebody changed the settings meanwhile.
    pub(in crate::store) async fn write_settings(
        &self,
        project: &str,
        name: &str,
        revision: &str,
        next: &QueueConfig,
    ) -> Result<Option<(QueueInfo, bool)>> {
        let keys = QueueKeys::new(project, name);
        let queue_id = random_id()[..24].to_string();
        let push = match &next.push {
            Some(push) => {
                serde_json::to_string(push).map_err(|e| StoreError::BadReply(e.to_string()))?
            }
            None => String::new(),
        };
        let alerts = if next.alerts.is_empty() {
            String::new()
        } else {
            serde_json::to_string(&next.alerts).map_err(|e| StoreError::BadReply(e.to_string()))?
        };
        let fields = [
            ("type", next.queue_type.as_str().to_string()),
            ("message_timeout", next.message_timeout.to_string()),
            ("message_expiration", next.message_expiration.to_string()),
            ("max_message_size", next.max_message_size.to_string()),
            ("managed_by", next.managed_by.clone().unwrap_or_default()),
            (
                "rest",
                if next.rest_configured { "1" } else { "" }.to_string(),
            ),
            ("released_by", next.released_by.clone().unwrap_or_default()),
            // '' and 0: no dead-letter queue (reserve.lua reads both).
            (
                "dead_letter_queue",
                next.dead_letter
                    .as_ref()
                    .map_or(String::new(), |d| d.queue.clone()),
            ),
            (
                "dead_letter_max",
                next.dead_letter
                    .as_ref()
                    .map_or(0, |d| d.max_reservations)
                    .to_string(),
            ),
        ];
        let number: String;
        let mut args: Vec<&[u8]> = vec![
            queue_id.as_bytes(),
            revision.as_bytes(),
            push.as_bytes(),
            alerts.as_bytes(),
            b"",
        ];
        for (field, value) in &fields {
            args.push(field.as_bytes());
            args.push(value.as_bytes());
        }
        let mut reply = self.run(&SCRIPT, &keys, &args).await?;
        let mut status = reply.status()?;
        // The queue's first alerts: number their messages, once, and write again.
        if status == Status::NeedsNumber {
            let next: u64 = self.connection().incr(QUEUE_NUMBERS, 1).await?;
            number = next.to_string();
            args[NUMBER_ARG] = number.as_bytes();
            reply = self.run(&SCRIPT, &keys, &args).await?;
            status = reply.status()?;
        }
        match status {
            Status::Conflict => Ok(None),
            other => {
                other.check("")?;
                let created = reply.int()? == 1;
                Ok(Some((reply.queue_info(project, name)?, created)))
            }
        }
    }
}
