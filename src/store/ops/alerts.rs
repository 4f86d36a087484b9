//! Sending the messages of fired alerts. A script that changes a queue's size checks its
//! alerts (`check_alerts` in prelude.lua) atomically with the change: an alert that fires puts
//! its message, with an id of its own, in the queue's ALERTS list, and the script answers how
//! many wait there. The process that ran it then posts them to their target queues in the
//! background (`put.lua`, which stores an id it holds already only once) and takes them off the
//! list. A process that dies in between leaves them listed, and the next change of the queue's
//! size, in any process, sends them: each alert message arrives once, or, should its target
//! have deleted it while a repeated send ran, once more.

use crate::store::keys::{ALERTS_PENDING, QueueKeys};
use crate::store::ops::put::Carried;
use crate::store::script::OpScript;
use crate::store::{Result, Store, StoreError};
use redis::AsyncCommands;
use serde::Deserialize;
use serde_json::json;
use std::time::{Duration, UNIX_EPOCH};

static TAKE: OpScript = OpScript::new("alerts_take.lua", include_str!("alerts_take.lua"));
static DONE: OpScript = OpScript::new("alerts_done.lua", include_str!("alerts_done.lua"));

/// Alert messages sent per round.
const SEND_BATCH: usize = 100;
/// How long a process sending a queue's alert messages holds them without a round before
/// another may send them.
const LEASE: Duration = Duration::from_secs(10);

/// A fired alert's message as `check_alerts` lists it.
#[derive(Deserialize)]
struct Fired {
    id: String,
    queue: String,
    alert: String,
    #[serde(rename = "type")]
    alert_type: String,
    direction: String,
    trigger: u64,
    size: u64,
    /// Ms since the epoch.
    at: u64,
}

impl Fired {
    /// The message IronMQ posted for an alert.
    fn body(&self, source: &str) -> String {
        let at = UNIX_EPOCH + Duration::from_millis(self.at);
        json!({
            "source_queue": source,
            "queue_size": self.size,
            "alert_id": self.alert,
            "alert_type": self.alert_type,
            "alert_direction": self.direction,
            "alert_trigger": self.trigger,
            "created_at": humantime::format_rfc3339_seconds(at).to_string(),
        })
        .to_string()
    }
}

impl Store {
    /// A script on `name` answered that `waiting` alert messages wait to be sent: lists the
    /// queue as having some (so that, should this process die, another sends them) and sends
    /// them in the background.
    pub(in crate::store) fn alerts_fired(&self, project: &str, name: &str, waiting: u64) {
        if waiting == 0 {
            return;
        }
        let (store, p, n) = (self.clone(), project.to_string(), name.to_string());
        self.in_background(format!("alerts of {project}/{name}"), move || {
            let (store, p, n) = (store.clone(), p.clone(), n.clone());
            async move {
                let _: i64 = store
                    .connection()
                    .sadd(ALERTS_PENDING, serde_json::json!([p, n]).to_string())
                    .await?;
                store.send_alerts(&p, &n).await
            }
        });
    }

    /// Posts every alert message waiting in `name`'s ALERTS list to its target queue (in the
    /// same project), unless another process is sending them; how many were sent.
    pub async fn send_alerts(&self, project: &str, name: &str) -> Result<u64> {
        let keys = QueueKeys::new(project, name);
        let sender = self.0.process_id.clone();
        let (lease, batch) = (LEASE.as_millis().to_string(), SEND_BATCH.to_string());
        let mut sent = 0;
        loop {
            let args: [&[u8]; 3] = [sender.as_bytes(), lease.as_bytes(), batch.as_bytes()];
            let mut reply = self.run(&TAKE, &keys, &args).await?;
            reply.status()?.check("")?;
            match reply.text()?.as_str() {
                "sending" => {}
                // That process goes on with them.
                "taken" => return Ok(sent),
                _ => {
                    let _: i64 = self
                        .connection()
                        .srem(
                            ALERTS_PENDING,
                            serde_json::json!([project, name]).to_string(),
                        )
                        .await?;
                    return Ok(sent);
                }
            }
            let mut listed = Vec::new();
            while !reply.is_empty() {
                listed.push(reply.text()?);
            }
            let fired = listed
                .iter()
                .map(|entry| serde_json::from_str::<Fired>(entry))
                .collect::<std::result::Result<Vec<_>, _>>()
                .map_err(|e| StoreError::BadReply(format!("alert message: {e}")))?;
            // In the order fired, one put per run of messages for the same target, each taken
            // off the list as soon as its target holds it.
            let mut at = 0;
            for run in fired.chunk_by(|a, b| a.queue == b.queue) {
                let messages: Vec<Carried> = run
                    .iter()
                    .map(|f| Carried {
                        id: f.id.clone(),
                        body: f.body(name),
                        reserved_count: "0".into(),
                        headers: String::new(),
                        // Each fired alert's message has an id of its own.
                        token: format!("alert:{}", f.id),
                    })
                    .collect();
                if let Err(err) = self.put(project, &run[0].queue, &messages).await {
                    self.run(&DONE, &keys, &[]).await?;
                    return Err(err);
                }
                let done: Vec<&[u8]> = listed[at..at + run.len()]
                    .iter()
                    .map(|e| e.as_bytes())
                    .collect();
                self.run(&DONE, &keys, &done).await?.status()?.check("")?;
                at += run.len();
                sent += run.len() as u64;
            }
        }
    }
}
