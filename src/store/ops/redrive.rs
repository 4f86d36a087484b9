//! Redrive: moving the messages waiting in a dead-letter or error queue back to where they came
//! from (`redrive_start.lua`, `redrive_take.lua`, `put.lua`, `redrive_done.lua`,
//! `redrive_cancel.lua`).
//!
//! A redrive is a task kept in the queue's REDRIVE hash, and listed store-wide (REDRIVES) while
//! it runs. The process that started it runs it; every process looks at the list now and then,
//! so one whose process died is taken over once its lease runs out (`sweep.rs`). Each round
//! sets a batch of ready messages aside in REDRIVING (handed out to nobody, still stored),
//! stores them in the target with their ids, then removes them here and counts them: a process
//! that dies between the steps leaves them set aside, and the next runner moves them again,
//! storing nothing twice (put.lua skips a move token the target has seen in the last ten
//! minutes, and takes back a message that is still there on its way out).
//! Error-queue messages are envelopes (see `push::worker`): the original body, id and push
//! headers go back.

use crate::model::Redrive;
use crate::store::keys::{QueueKeys, REDRIVES};
use crate::store::ops::put::Carried;
use crate::store::script::OpScript;
use crate::store::status::Status;
use crate::store::{Result, Store, StoreError, random_id};
use redis::AsyncCommands;
use serde::Deserialize;
use std::collections::HashMap;
use std::time::{Duration, Instant};

static START: OpScript = OpScript::new("redrive_start.lua", include_str!("redrive_start.lua"));
static TAKE: OpScript = OpScript::new("redrive_take.lua", include_str!("redrive_take.lua"));
static DONE: OpScript = OpScript::new("redrive_done.lua", include_str!("redrive_done.lua"));
static CANCEL: OpScript = OpScript::new("redrive_cancel.lua", include_str!("redrive_cancel.lua"));

/// Messages moved per round, at most.
const BATCH: u64 = 100;
/// How long a runner holds a redrive without a round before another process may take it over.
const LEASE: Duration = Duration::from_secs(10);

/// What an error queue's message holds (see `push::worker`).
#[derive(Deserialize)]
struct Envelope {
    source_msg_id: String,
    body: String,
    #[serde(default)]
    headers: HashMap<String, String>,
}

impl Store {
    /// Starts a redrive of `name`'s waiting messages to `to` and runs it in the background.
    /// `Invalid` when one runs already.
    pub async fn start_redrive(
        &self,
        project: &str,
        name: &str,
        to: &str,
        max: u64,
        rate: u64,
        unwrap: bool,
    ) -> Result<Redrive> {
        let keys = QueueKeys::new(project, name);
        let id = random_id()[..24].to_string();
        let (max, rate) = (max.to_string(), rate.to_string());
        let args: [&[u8]; 5] = [
            id.as_bytes(),
            to.as_bytes(),
            max.as_bytes(),
            rate.as_bytes(),
            if unwrap { b"1" } else { b"0" },
        ];
        // Listed first, so that a process dying right after the start leaves it to the others
        // (a listing with nothing running is dropped by the first process that looks).
        self.list_redrive(project, name).await?;
        let mut reply = self.run(&START, &keys, &args).await?;
        match reply.status()? {
            Status::Conflict => {
                return Err(StoreError::Invalid(format!(
                    "A redrive of {name} is running, or moving what it set aside: cancel it \
                     first (DELETE .../redrive), or wait"
                )));
            }
            other => other.check("")?,
        }
        // Again: a runner ending meanwhile may have taken the first listing away.
        self.list_redrive(project, name).await?;
        self.run_redrive_in_background(project, name);
        self.redrive(project, name)
            .await?
            .ok_or_else(|| StoreError::BadReply("redrive gone at once".into()))
    }

    async fn list_redrive(&self, project: &str, name: &str) -> Result<()> {
        let entry = serde_json::json!([project, name]).to_string();
        let _: i64 = self.connection().sadd(REDRIVES, entry).await?;
        Ok(())
    }

    /// Takes a finished redrive off the store-wide list, unless another started meanwhile.
    async fn unlist_redrive(&self, project: &str, name: &str) -> Result<()> {
        let entry = serde_json::json!([project, name]).to_string();
        let _: i64 = self.connection().srem(REDRIVES, entry).await?;
        if self
            .redrive(project, name)
            .await
            .ok()
            .flatten()
            .is_some_and(|r| r.state == "running")
        {
            self.list_redrive(project, name).await?;
        }
        Ok(())
    }

    /// The queue's redrive (the last one started), if any.
    pub async fn redrive(&self, project: &str, name: &str) -> Result<Option<Redrive>> {
        let keys = QueueKeys::new(project, name);
        let mut conn = self.connection();
        let fields: HashMap<String, String> = conn.hgetall(keys.redrive()).await?;
        if fields.is_empty() {
            if !conn.exists::<_, bool>(keys.cfg()).await? {
                return Err(StoreError::QueueNotFound);
            }
            return Ok(None);
        }
        let text = |f: &str| fields.get(f).cloned().unwrap_or_default();
        let number = |f: &str| text(f).parse::<u64>().unwrap_or(0);
        Ok(Some(Redrive {
            id: text("id"),
            to: text("to"),
            max: number("max"),
            rate: number("rate"),
            unwrap: text("unwrap") == "1",
            moved: number("moved"),
            state: text("state"),
            error: fields.get("error").cloned(),
            created_at: number("created_at"),
            updated_at: number("updated_at"),
        }))
    }

    /// Cancels the queue's running redrive; what it set aside goes back to the front.
    pub async fn cancel_redrive(&self, project: &str, name: &str) -> Result<Option<Redrive>> {
        let keys = QueueKeys::new(project, name);
        self.run(&CANCEL, &keys, &[]).await?.status()?.check("")?;
        // The runner hands back what it set aside on its next round; run one here too, for a
        // runner that is gone (it does nothing while another holds the lease).
        self.run_redrive_in_background(project, name);
        self.redrive(project, name).await
    }

    pub(in crate::store) fn run_redrive_in_background(&self, project: &str, name: &str) {
        let (store, p, n) = (self.clone(), project.to_string(), name.to_string());
        self.in_background(format!("redrive of {project}/{name}"), move || {
            let (store, p, n) = (store.clone(), p.clone(), n.clone());
            async move { store.run_redrive(&p, &n).await }
        });
    }

    /// Runs `name`'s redrive until it is done or cancelled (or another process runs it); how
    /// many messages it moved here.
    pub async fn run_redrive(&self, project: &str, name: &str) -> Result<u64> {
        let keys = QueueKeys::new(project, name);
        let runner = self.0.process_id.clone();
        let lease = LEASE.as_millis().to_string();
        let mut moved = 0;
        loop {
            let started = Instant::now();
            let rate = self.redrive(project, name).await?.map_or(0, |r| r.rate);
            let batch = if rate > 0 { rate.min(BATCH) } else { BATCH }.to_string();
            let args: [&[u8]; 3] = [runner.as_bytes(), lease.as_bytes(), batch.as_bytes()];
            let mut reply = self.run(&TAKE, &keys, &args).await?;
            let status = reply.status()?;
            if status == Status::NoQueue {
                // Deleted with its queue.
                self.unlist_redrive(project, name).await?;
                return Ok(moved);
            }
            status.check("")?;
            let state = reply.text()?;
            let target = reply.text()?;
            let unwrap = reply.int()? == 1;
            match state.as_str() {
                "running" => {}
                // Running elsewhere: that process goes on with it.
                "taken" => return Ok(moved),
                _ => {
                    self.unlist_redrive(project, name).await?;
                    return Ok(moved);
                }
            }
            // The ids here, and what goes to the target.
            let (mut ids, mut messages) = (Vec::new(), Vec::new());
            while !reply.is_empty() {
                let (id, body, headers) = (reply.text()?, reply.text()?, reply.text()?);
                messages.push(carried(&id, body, headers, reply.text()?, unwrap));
                ids.push(id);
            }
            if let Err(err) = self.put(project, &target, &messages).await {
                // Kept for the next round (here, or in the process that takes over).
                let error = err.to_string();
                self.run(&DONE, &keys, &[error.as_bytes()]).await?;
                return Err(err);
            }
            let mut args: Vec<&[u8]> = vec![b""];
            args.extend(ids.iter().map(|id| id.as_bytes()));
            let mut reply = self.run(&DONE, &keys, &args).await?;
            let status = reply.status()?;
            if status == Status::NoQueue {
                self.unlist_redrive(project, name).await?;
                return Ok(moved);
            }
            status.check("")?;
            self.alerts_fired(project, name, reply.count()?);
            moved += messages.len() as u64;
            if rate > 0 {
                let due = Duration::from_secs_f64(messages.len() as f64 / rate as f64);
                tokio::time::sleep(due.saturating_sub(started.elapsed())).await;
            }
        }
    }
}

/// What goes to the target for a message: an error-queue envelope's original message, or the
/// message itself; its reserved count starts again.
fn carried(id: &str, body: String, headers: String, token: String, unwrap: bool) -> Carried {
    if unwrap && let Ok(envelope) = serde_json::from_str::<Envelope>(&body) {
        return Carried {
            id: envelope.source_msg_id,
            body: envelope.body,
            reserved_count: "0".into(),
            headers: if envelope.headers.is_empty() {
                String::new()
            } else {
                serde_json::to_string(&envelope.headers).unwrap_or_default()
            },
            token,
        };
    }
    Carried {
        id: id.to_string(),
        body,
        reserved_count: "0".into(),
        headers,
        token,
    }
}
