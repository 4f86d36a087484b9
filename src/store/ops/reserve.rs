//! Reserving messages, with or without a long poll (`reserve.lua`).

use crate::metrics::METRICS;
use crate::model::{Message, ReserveRequest};
use crate::store::keys::QueueKeys;
use crate::store::script::OpScript;
use crate::store::{Result, Store, random_id};
use std::time::Duration;

static SCRIPT: OpScript = OpScript::new("reserve.lua", include_str!("reserve.lua"));

impl Store {
    /// Reserves up to `request.n` messages. With a `wait`, holds on (long poll) until at least
    /// one message is ready or the wait is over; a post through any process wakes it.
    pub async fn reserve(
        &self,
        project: &str,
        name: &str,
        request: &ReserveRequest,
        wait: Duration,
    ) -> Result<Vec<Message>> {
        let keys = QueueKeys::new(project, name);
        let messages = self
            .long_poll(&keys, wait, |poll| self.reserve_once(&keys, request, poll))
            .await?;
        let operation = if request.delete {
            "deleted"
        } else {
            "reserved"
        };
        METRICS.count(operation, messages.len() as u64);
        Ok(messages)
    }

    /// One reserve attempt. With `wait`, registers this process as a waiter when nothing is
    /// ready, and tells how long until something falls due.
    async fn reserve_once(
        &self,
        keys: &QueueKeys,
        request: &ReserveRequest,
        wait: Option<Duration>,
    ) -> Result<(Vec<Message>, Option<Duration>)> {
        let n = request.n.to_string();
        let timeout = request.timeout.unwrap_or(0).to_string();
        let (waiter, wait_ms) = self.waiter(wait);
        let reservation_ids: Vec<String> = if request.delete {
            Vec::new()
        } else {
            (0..request.n).map(|_| random_id()).collect()
        };
        let mut args: Vec<&[u8]> = vec![
            n.as_bytes(),
            timeout.as_bytes(),
            if request.delete { b"1" } else { b"0" },
            waiter.as_bytes(),
            wait_ms.as_bytes(),
        ];
        args.extend(reservation_ids.iter().map(|r| r.as_bytes()));
        let mut reply = self.run(&SCRIPT, keys, &args).await?;
        reply.status()?.check("")?;
        let next_due = reply.next_due()?;
        let mut messages = Vec::new();
        while !reply.is_empty() {
            let id = reply.text()?;
            let body = reply.text()?;
            let reserved_count = reply.count()?;
            let reservation_id = Some(reply.text()?).filter(|r| !r.is_empty());
            messages.push(Message {
                id,
                body,
                reserved_count,
                reservation_id,
            });
        }
        Ok((messages, next_due))
    }
}
