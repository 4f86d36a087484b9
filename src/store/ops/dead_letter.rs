//! Moving messages to a queue's dead-letter queue (`dead_letter_take.lua`, `put.lua`,
//! `dead_letter_done.lua`).
//!
//! A reserve that meets a message reserved `max_reservations` times already puts its id in the
//! queue's DEAD list, atomically with the reserve, and hands it out to nobody. The move to the
//! dead-letter queue then takes three script calls, each on one queue (the two queues may sit on
//! different Redis Cluster nodes): read what waits in DEAD, store it in the dead-letter queue
//! (skipping ids already there), then remove it from DEAD and from the queue. A process that
//! dies between them leaves the messages in DEAD, still stored, and the next reserve on the
//! queue (in any process) finishes the move: never lost, and not stored twice in the
//! dead-letter queue (put.lua skips a move token it has seen in the last ten minutes, see
//! `move_token`, and takes back a message still there on its way out).

use crate::store::keys::QueueKeys;
use crate::store::ops::put::Carried;
use crate::store::script::OpScript;
use crate::store::{Result, Store};

static TAKE: OpScript = OpScript::new("dead_letter_take.lua", include_str!("dead_letter_take.lua"));
static DONE: OpScript = OpScript::new("dead_letter_done.lua", include_str!("dead_letter_done.lua"));

/// Messages moved per round of three script calls.
const MOVE_BATCH: usize = 100;

impl Store {
    /// Starts moving what waits in `name`'s DEAD list to `target`, in the background (a reserve
    /// answers without waiting for it), unless this process is moving that queue's already.
    /// A move that fails leaves the messages in DEAD for the next reserve to trigger again.
    pub fn start_dead_letter_move(&self, project: &str, name: &str, target: &str) {
        let (store, p, n, t) = (
            self.clone(),
            project.to_string(),
            name.to_string(),
            target.to_string(),
        );
        self.in_background(format!("dead letters of {project}/{name}"), move || {
            let (store, p, n, t) = (store.clone(), p.clone(), n.clone(), t.clone());
            async move { store.move_dead_letters(&p, &n, &t).await }
        });
    }

    /// Moves every message waiting in `name`'s DEAD list to `target` in the same project;
    /// how many were moved.
    pub async fn move_dead_letters(&self, project: &str, name: &str, target: &str) -> Result<u64> {
        let source = QueueKeys::new(project, name);
        let mut moved = 0;
        loop {
            let batch = MOVE_BATCH.to_string();
            let mut reply = self.run(&TAKE, &source, &[batch.as_bytes()]).await?;
            reply.status()?.check("")?;
            let mut messages = Vec::new();
            while !reply.is_empty() {
                messages.push(Carried {
                    id: reply.text()?,
                    body: reply.text()?,
                    reserved_count: reply.text()?,
                    headers: reply.text()?,
                    token: reply.text()?,
                });
            }
            if messages.is_empty() {
                return Ok(moved);
            }
            self.put(project, target, &messages).await?;
            let ids: Vec<&[u8]> = messages.iter().map(|m| m.id.as_bytes()).collect();
            let mut reply = self.run(&DONE, &source, &ids).await?;
            reply.status()?.check("")?;
            self.alerts_fired(project, name, reply.count()?);
            moved += messages.len() as u64;
        }
    }
}
