//! Posting messages (`post.lua`).

use crate::metrics::METRICS;
use crate::model::{DEFAULT_MESSAGE_EXPIRATION, DEFAULT_MESSAGE_TIMEOUT, NewMessage};
use crate::store::keys::{QUEUE_NUMBERS, QueueKeys};
use crate::store::script::OpScript;
use crate::store::status::Status;
use crate::store::{Result, Store, StoreError, random_id};
use redis::AsyncCommands;

static SCRIPT: OpScript = OpScript::new("post.lua", include_str!("post.lua"));

/// Where the queue's number goes among the script's arguments.
const NUMBER_ARG: usize = 4;

impl Store {
    /// Posts messages, creating the queue with default settings when it does not exist.
    /// Returns the new message ids in the order given.
    pub async fn post(
        &self,
        project: &str,
        name: &str,
        messages: &[NewMessage],
    ) -> Result<Vec<String>> {
        let keys = QueueKeys::new(project, name);
        let channel = keys.wake_channel();
        let queue_id = random_id()[..24].to_string();
        let timeout = DEFAULT_MESSAGE_TIMEOUT.to_string();
        let expiration = DEFAULT_MESSAGE_EXPIRATION.to_string();
        let encoded: Vec<(String, String)> = messages
            .iter()
            .map(|m| {
                let headers = if m.push_headers.is_empty() {
                    String::new()
                } else {
                    serde_json::to_string(&m.push_headers).unwrap_or_default()
                };
                (m.delay.to_string(), headers)
            })
            .collect();
        let number: String;
        let mut args: Vec<&[u8]> = vec![
            channel.as_bytes(),
            queue_id.as_bytes(),
            timeout.as_bytes(),
            expiration.as_bytes(),
            b"",
        ];
        for (message, (delay, headers)) in messages.iter().zip(&encoded) {
            args.extend([
                message.body.as_bytes(),
                delay.as_bytes(),
                headers.as_bytes(),
            ]);
        }
        let mut reply = self.run(&SCRIPT, &keys, &args).await?;
        let mut status = reply.status()?;
        // The queue's first post: number it, once, and post again with the number.
        if status == Status::NeedsNumber {
            let next: u64 = self.connection().incr(QUEUE_NUMBERS, 1).await?;
            number = next.to_string();
            args[NUMBER_ARG] = number.as_bytes();
            reply = self.run(&SCRIPT, &keys, &args).await?;
            status = reply.status()?;
        }
        match status {
            Status::DelayTooLong => {
                let index = usize::try_from(reply.int()?).unwrap_or(1).saturating_sub(1);
                return Err(StoreError::DelayTooLong { index });
            }
            Status::TooLarge => {
                let index = usize::try_from(reply.int()?).unwrap_or(1).saturating_sub(1);
                let max = u64::try_from(reply.int()?).unwrap_or_default();
                return Err(StoreError::MessageTooLarge { index, max });
            }
            other => other.check("")?,
        }
        if reply.int()? == 1 {
            self.index_add(project, name).await?;
        }
        METRICS.count("posted", messages.len() as u64);
        METRICS.watch(project, name);
        (0..messages.len()).map(|_| reply.text()).collect()
    }
}
