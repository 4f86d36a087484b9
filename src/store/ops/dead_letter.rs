//! Moving messages to a queue's dead-letter queue (`dead_letter_take.lua`,
//! `dead_letter_put.lua`, `dead_letter_done.lua`).
//!
//! A reserve that meets a message reserved `max_reservations` times already puts its id in the
//! queue's DEAD list, atomically with the reserve, and hands it out to nobody. The move to the
//! dead-letter queue then takes three script calls, each on one queue (the two queues may sit on
//! different Redis Cluster nodes): read what waits in DEAD, store it in the dead-letter queue
//! (skipping ids already there), then remove it from DEAD and from the queue. A process that
//! dies between them leaves the messages in DEAD, still stored, and the next reserve on the
//! queue (in any process) finishes the move: at least once, never lost, and never stored twice
//! in the dead-letter queue while it still holds them.

use crate::model::{DEFAULT_MESSAGE_EXPIRATION, DEFAULT_MESSAGE_TIMEOUT};
use crate::store::keys::QueueKeys;
use crate::store::script::OpScript;
use crate::store::{Result, Store, random_id};

static TAKE: OpScript = OpScript::new("dead_letter_take.lua", include_str!("dead_letter_take.lua"));
static PUT: OpScript = OpScript::new("dead_letter_put.lua", include_str!("dead_letter_put.lua"));
static DONE: OpScript = OpScript::new("dead_letter_done.lua", include_str!("dead_letter_done.lua"));

/// Messages moved per round of three script calls.
const MOVE_BATCH: usize = 100;

/// A message on its way to the dead-letter queue, as it was stored.
struct Moving {
    id: String,
    body: String,
    reserved_count: String,
    headers: String,
}

impl Store {
    /// Starts moving what waits in `name`'s DEAD list to `target`, in the background (a reserve
    /// answers without waiting for it), unless this process is moving that queue's already.
    /// A move that fails leaves the messages in DEAD for the next reserve to trigger again.
    pub fn start_dead_letter_move(&self, project: &str, name: &str, target: &str) {
        let queue = format!("{project}/{name}");
        if !self.lock_moving().insert(queue.clone()) {
            return;
        }
        let (store, project, name, target) = (
            self.clone(),
            project.to_string(),
            name.to_string(),
            target.to_string(),
        );
        tokio::spawn(async move {
            let moved = store.move_dead_letters(&project, &name, &target).await;
            store.lock_moving().remove(&queue);
            if let Err(err) = moved {
                tracing::warn!(%err, project, name, target, "cannot move messages to the dead-letter queue; the next reserve tries again");
            }
        });
    }

    fn lock_moving(&self) -> std::sync::MutexGuard<'_, std::collections::HashSet<String>> {
        self.0.moving.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Moves every message waiting in `name`'s DEAD list to `target` in the same project;
    /// how many were moved.
    pub async fn move_dead_letters(&self, project: &str, name: &str, target: &str) -> Result<u64> {
        let source = QueueKeys::new(project, name);
        let keys = QueueKeys::new(project, target);
        let mut moved = 0;
        loop {
            let batch = MOVE_BATCH.to_string();
            let mut reply = self.run(&TAKE, &source, &[batch.as_bytes()]).await?;
            reply.status()?.check("")?;
            let mut messages = Vec::new();
            while !reply.is_empty() {
                messages.push(Moving {
                    id: reply.text()?,
                    body: reply.text()?,
                    reserved_count: reply.text()?,
                    headers: reply.text()?,
                });
            }
            if messages.is_empty() {
                return Ok(moved);
            }
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
            for m in &messages {
                args.extend([
                    m.id.as_bytes(),
                    m.body.as_bytes(),
                    m.reserved_count.as_bytes(),
                    m.headers.as_bytes(),
                ]);
            }
            let mut reply = self.run(&PUT, &keys, &args).await?;
            reply.status()?.check("")?;
            if reply.int()? == 1
                && let Err(err) = self.index_add(project, target).await
            {
                tracing::warn!(%err, project, target, "a new dead-letter queue could not be listed");
            }
            let ids: Vec<&[u8]> = messages.iter().map(|m| m.id.as_bytes()).collect();
            self.run(&DONE, &source, &ids).await?.status()?.check("")?;
            moved += messages.len() as u64;
        }
    }
}
