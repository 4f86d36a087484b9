//! A queue's per-minute history over the last day: messages posted, reserved and deleted, and
//! its depth (`history.lua`). Each process counts what it does to each queue in memory (a
//! `Tally`: one uncontended lock per operation) and adds its counts to the history every few
//! seconds, off the request path. The history is for watching, so its writes do not wait for
//! replicas.

use crate::store::keys::QueueKeys;
use crate::store::script::OpScript;
use crate::store::status::Status;
use crate::store::{Result, Store};
use redis::AsyncCommands;
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

static SCRIPT: OpScript = OpScript::watching("history.lua", include_str!("history.lua"));

/// How often each process adds its counts.
pub const RECORD_EVERY: Duration = Duration::from_secs(5);
/// Minutes kept (the script's ring of fields has this many).
pub const MINUTES_KEPT: u64 = 1440;

/// A queue used through this process no longer than this ago still has its depth recorded.
const RECORD_FOR: Duration = Duration::from_secs(600);
/// At most this many queues are counted by one process (each costs a script call every
/// `RECORD_EVERY`); beyond it a queue gets no history from this process until others are
/// forgotten.
const MAX_COUNTED: usize = 10_000;

/// Messages posted, reserved and deleted on one queue through this process since the counts
/// were last recorded.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Activity {
    pub posted: u64,
    pub reserved: u64,
    pub deleted: u64,
}

/// What an operation counts as in a queue's `Activity`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Used {
    Posted,
    Reserved,
    Deleted,
}

/// Project -> queue -> (last used, activity since last recorded); nested, so counting on a
/// queue already there allocates nothing.
#[derive(Default)]
pub struct Tally(Mutex<HashMap<String, Counted>>);

/// Queue -> (last used, activity since last recorded), of one project.
type Counted = HashMap<String, (Instant, Activity)>;

impl Tally {
    pub fn add(&self, project: &str, queue: &str, used: Used, n: u64) {
        let count = |activity: &mut Activity| match used {
            Used::Posted => activity.posted += n,
            Used::Reserved => activity.reserved += n,
            Used::Deleted => activity.deleted += n,
        };
        let mut queues = self.0.lock().unwrap_or_else(|e| e.into_inner());
        if let Some((seen, activity)) = queues.get_mut(project).and_then(|q| q.get_mut(queue)) {
            *seen = Instant::now();
            count(activity);
            return;
        }
        if queues.values().map(HashMap::len).sum::<usize>() >= MAX_COUNTED {
            return;
        }
        let mut activity = Activity::default();
        count(&mut activity);
        queues
            .entry(project.to_string())
            .or_default()
            .insert(queue.to_string(), (Instant::now(), activity));
    }

    /// Drops a deleted queue's counts: a queue made again under its name starts with none.
    pub fn forget(&self, project: &str, queue: &str) {
        let mut queues = self.0.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(names) = queues.get_mut(project) {
            names.remove(queue);
        }
    }

    /// Every queue used lately with its counts (zero when used lately but not since the last
    /// call), the counts set back to zero; forgets the queues not used lately.
    fn take(&self) -> Vec<(String, String, Activity)> {
        let mut queues = self.0.lock().unwrap_or_else(|e| e.into_inner());
        let mut taken = Vec::new();
        for (project, names) in queues.iter_mut() {
            names.retain(|name, (seen, activity)| {
                taken.push((project.clone(), name.clone(), std::mem::take(activity)));
                seen.elapsed() < RECORD_FOR
            });
        }
        queues.retain(|_, names| !names.is_empty());
        taken
    }
}

/// One minute of a queue's history.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Minute {
    /// Its start, in seconds since the epoch.
    pub at: u64,
    pub posted: u64,
    pub reserved: u64,
    pub deleted: u64,
    /// Messages in the queue when it was last recorded in that minute.
    pub depth: u64,
}

/// The minute (since the epoch) now falls in.
pub fn minute_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() / 60)
}

impl Store {
    /// Adds one queue's activity to the minute now.
    pub async fn record_activity(
        &self,
        project: &str,
        name: &str,
        activity: Activity,
    ) -> Result<()> {
        let keys = QueueKeys::new(project, name);
        let history = keys.history();
        let args = [
            minute_now(),
            activity.posted,
            activity.reserved,
            activity.deleted,
        ]
        .map(|n| n.to_string());
        let args: Vec<&[u8]> = args.iter().map(|a| a.as_bytes()).collect();
        let mut reply = self.run_with(&SCRIPT, &keys, &[&history], &args).await?;
        match reply.status()? {
            // Deleted meanwhile: nothing to record.
            Status::NoQueue => Ok(()),
            other => other.check(""),
        }
    }

    /// Records the activity of this process's queues every `RECORD_EVERY`, for the life of the
    /// process.
    pub async fn record_history(self) {
        loop {
            tokio::time::sleep(RECORD_EVERY).await;
            self.record_now().await;
        }
    }

    /// Records what this process counted since it last did.
    pub async fn record_now(&self) {
        for (project, name, activity) in self.0.activity.take() {
            if let Err(err) = self.record_activity(&project, &name, activity).await {
                // Lost counts only leave a dent in a chart.
                tracing::debug!(%err, project, name, "cannot record a queue's history");
            }
        }
    }

    /// The recorded minutes of a queue within the last `minutes`, oldest first.
    pub async fn history(&self, project: &str, name: &str, minutes: u64) -> Result<Vec<Minute>> {
        let history = QueueKeys::new(project, name).history();
        let kept: Vec<(String, String)> = self.connection().hgetall(history).await?;
        let now = minute_now();
        let since = now.saturating_sub(minutes.min(MINUTES_KEPT)) + 1;
        let mut shown: Vec<Minute> = kept
            .iter()
            .filter_map(|(_, value)| parse_minute(value))
            .filter(|m| m.at / 60 >= since && m.at / 60 <= now)
            .collect();
        shown.sort_by_key(|m| m.at);
        Ok(shown)
    }
}

/// Reads a history field's value, "minute posted reserved deleted depth".
fn parse_minute(value: &str) -> Option<Minute> {
    let mut numbers = value.split(' ').map(|n| n.parse::<u64>().ok());
    let mut next = || numbers.next().flatten();
    Some(Minute {
        at: next()? * 60,
        posted: next()?,
        reserved: next()?,
        deleted: next()?,
        depth: next()?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_what_the_script_writes() {
        assert_eq!(
            parse_minute("29000000 5 4 3 2"),
            Some(Minute {
                at: 29000000 * 60,
                posted: 5,
                reserved: 4,
                deleted: 3,
                depth: 2
            })
        );
        assert_eq!(parse_minute("29000000 5 4"), None);
        assert_eq!(parse_minute("x 5 4 3 2"), None);
    }
}
