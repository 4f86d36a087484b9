//! Sending the messages of fired alerts. A script that changes a queue's size checks its
//! alerts (`check_alerts` in prelude.lua) atomically with the change: an alert that fires puts
//! its message, with an id of its own, in the queue's ALERTS list, and the script answers how
//! many wait there. The process that ran it then posts them to their target queues in the
//! background (`put.lua`, which stores an id it holds already only once) and takes them off the
//! list. A process that dies in between leaves them listed, and the next change of the queue's
//! size, in any process, sends them: each alert message arrives once, or, should its target
//! have deleted it while a repeated send ran, once more.

use crate::store::keys::QueueKeys;
use crate::store::ops::put::Carried;
use crate::store::{Result, Store, StoreError};
use redis::AsyncCommands;
use serde::Deserialize;
use serde_json::json;
use std::time::{Duration, UNIX_EPOCH};

/// Alert messages sent per round.
const SEND_BATCH: isize = 100;

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
    /// A script on `name` answered that `waiting` alert messages wait to be sent: sends them in
    /// the background, unless this process is sending that queue's already.
    pub(in crate::store) fn alerts_fired(&self, project: &str, name: &str, waiting: u64) {
        if waiting == 0 {
            return;
        }
        let (store, p, n) = (self.clone(), project.to_string(), name.to_string());
        self.in_background(format!("alerts of {project}/{name}"), async move {
            store.send_alerts(&p, &n).await
        });
    }

    /// Posts every alert message waiting in `name`'s ALERTS list to its target queue (in the
    /// same project); how many were sent.
    pub async fn send_alerts(&self, project: &str, name: &str) -> Result<u64> {
        let keys = QueueKeys::new(project, name);
        let mut sent = 0;
        loop {
            let mut conn = self.connection();
            let listed: Vec<String> = conn.lrange(keys.alerts_fired(), 0, SEND_BATCH - 1).await?;
            if listed.is_empty() {
                return Ok(sent);
            }
            let fired = listed
                .iter()
                .map(|entry| serde_json::from_str::<Fired>(entry))
                .collect::<std::result::Result<Vec<_>, _>>()
                .map_err(|e| StoreError::BadReply(format!("alert message: {e}")))?;
            // In the order fired, one put per run of messages for the same target.
            for run in fired.chunk_by(|a, b| a.queue == b.queue) {
                let messages: Vec<Carried> = run
                    .iter()
                    .map(|f| Carried {
                        id: f.id.clone(),
                        body: f.body(name),
                        reserved_count: "0".into(),
                        headers: String::new(),
                    })
                    .collect();
                self.put(project, &run[0].queue, &messages).await?;
            }
            let mut done = redis::pipe();
            for entry in &listed {
                done.lrem(keys.alerts_fired(), 1, entry).ignore();
            }
            done.query_async::<()>(&mut conn).await?;
            sent += listed.len() as u64;
        }
    }
}
