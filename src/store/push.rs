//! Store operations of push delivery: claiming messages for a delivery round, recording its
//! outcome, acknowledgements of subscribers that answered 202, and reading push state.

use super::keys::{QueueKeys, delivered_status, delivery_counts};
use super::{Result, SCRIPTS, Store, StoreError, check_status, random_id};
use redis::AsyncCommands;
use std::collections::BTreeMap;
use std::time::Duration;

/// A message a push worker holds for one delivery round.
#[derive(Debug, Clone)]
pub struct Claimed {
    pub id: String,
    pub body: String,
    pub push_headers: BTreeMap<String, String>,
    /// Push state from earlier rounds, as JSON (see `push::state`); `None` on the first round.
    pub state: Option<String>,
    /// The claim's reservation id: a subscriber that answers 202 acknowledges with it.
    pub reservation_id: String,
    /// Acknowledgements recorded since the last round, as JSON `{name: reservation id}`
    /// (`None` when there are none); handed back in the report, which then clears them.
    pub acks: Option<String>,
}

/// What a delivery round came to.
#[derive(Debug, Clone)]
pub enum Report {
    /// Some subscribers are to be tried again, or their acknowledgement is awaited: the
    /// message comes back to a worker after `after`.
    Wait { state: String, after: Duration },
    /// Delivery is over: the message leaves the queue; its state stays readable for `keep`.
    Done { state: String, keep: Duration },
    /// Record the state but keep holding the claim (for `hold` more), to finish work that
    /// follows the round; a worker that dies meanwhile leaves it to the next.
    Hold { state: String, hold: Duration },
}

/// A round's outcome, to be recorded: which claim it ends, and how.
#[derive(Debug, Clone)]
pub struct RoundReport {
    pub id: String,
    /// The claim's reservation id.
    pub reservation_id: String,
    /// The acknowledgements the round started with (`Claimed::acks`).
    pub acks: Option<String>,
    /// Revision of the queue settings the round ran with.
    pub revision: String,
    pub report: Report,
}

impl RoundReport {
    pub fn new(message: &Claimed, revision: &str, report: Report) -> Self {
        RoundReport {
            id: message.id.clone(),
            reservation_id: message.reservation_id.clone(),
            acks: message.acks.clone(),
            revision: revision.to_string(),
            report,
        }
    }
}

/// How often a subscriber answered, by kind of answer.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct AnswerCounts {
    /// 2xx other than 202.
    pub delivered: u64,
    /// 202: taken, to be acknowledged.
    pub accepted: u64,
    /// Anything else, or no answer.
    pub failed: u64,
}

/// The kinds of answer `AnswerCounts` counts, as stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Answered {
    Delivered,
    Accepted,
    Failed,
}

impl Answered {
    fn as_str(self) -> &'static str {
        match self {
            Answered::Delivered => "delivered",
            Answered::Accepted => "accepted",
            Answered::Failed => "failed",
        }
    }
}

impl Store {
    /// Adds answers (subscriber, kind, how many) to the queue's per-subscriber counts, in
    /// one round trip.
    pub async fn count_answers(
        &self,
        project: &str,
        name: &str,
        answers: &[(&str, Answered, u64)],
    ) -> Result<()> {
        let key = delivery_counts(project, name);
        let mut pipe = redis::pipe();
        for (subscriber, answer, n) in answers {
            pipe.hincr(&key, format!("{}:{subscriber}", answer.as_str()), *n)
                .ignore();
        }
        let mut conn = self.0.conn.clone();
        let () = pipe.query_async(&mut conn).await?;
        Ok(())
    }

    /// Every subscriber's answer counts on a queue, by subscriber name.
    pub async fn answer_counts(
        &self,
        project: &str,
        name: &str,
    ) -> Result<BTreeMap<String, AnswerCounts>> {
        let mut conn = self.0.conn.clone();
        let fields: Vec<(String, u64)> = conn.hgetall(delivery_counts(project, name)).await?;
        let mut counts: BTreeMap<String, AnswerCounts> = BTreeMap::new();
        for (field, n) in fields {
            let Some((answer, subscriber)) = field.split_once(':') else {
                continue;
            };
            let entry = counts.entry(subscriber.to_string()).or_default();
            match answer {
                "delivered" => entry.delivered = n,
                "accepted" => entry.accepted = n,
                "failed" => entry.failed = n,
                _ => {}
            }
        }
        Ok(counts)
    }

    /// Claims up to `n` messages of a push queue for `claim`, waiting up to `wait` for some to
    /// be ready. `None` when the queue is gone or no longer a push queue.
    pub async fn claim_push(
        &self,
        project: &str,
        name: &str,
        n: usize,
        claim: Duration,
        wait: Duration,
    ) -> Result<Option<Vec<Claimed>>> {
        let keys = QueueKeys::new(project, name);
        let found = self
            .long_poll(&keys, wait, |poll| self.claim_once(&keys, n, claim, poll))
            .await;
        match found {
            Ok(claimed) => Ok(Some(claimed)),
            Err(StoreError::QueueNotFound) => Ok(None),
            Err(err) => Err(err),
        }
    }

    async fn claim_once(
        &self,
        keys: &QueueKeys,
        n: usize,
        claim: Duration,
        wait: Option<Duration>,
    ) -> Result<(Vec<Claimed>, Option<Duration>)> {
        let n_arg = n.to_string();
        let claim_ms = claim.as_millis().to_string();
        let wait_ms = wait.map(|w| w.as_millis().to_string()).unwrap_or_default();
        let waiter = if wait.is_some() {
            self.process_id()
        } else {
            ""
        };
        let rids: Vec<String> = (0..n).map(|_| random_id()).collect();
        let mut args: Vec<&[u8]> = vec![
            n_arg.as_bytes(),
            claim_ms.as_bytes(),
            waiter.as_bytes(),
            wait_ms.as_bytes(),
        ];
        args.extend(rids.iter().map(|r| r.as_bytes()));
        let mut reply = self.run(&SCRIPTS.push_claim, keys, &args).await?;
        check_status(reply.int()?, "")?;
        let next_due = u64::try_from(reply.int()?).ok().map(Duration::from_millis);
        let mut claimed = Vec::new();
        while !reply.is_empty() {
            let id = reply.text()?;
            let body = reply.text()?;
            let headers = reply.text()?;
            let state = Some(reply.text()?).filter(|s| !s.is_empty());
            let reservation_id = reply.text()?;
            let acks = Some(reply.text()?).filter(|a| !a.is_empty());
            let push_headers = if headers.is_empty() {
                BTreeMap::new()
            } else {
                serde_json::from_str(&headers).map_err(|e| StoreError::BadReply(e.to_string()))?
            };
            claimed.push(Claimed {
                id,
                body,
                push_headers,
                state,
                reservation_id,
                acks,
            });
        }
        Ok((claimed, next_due))
    }

    /// Records the outcomes of rounds of one queue, in one script call. For each, false when
    /// it was not recorded as asked: the claim had ended (another worker may hold the message
    /// now), or the settings changed during the round (the message comes back at once).
    pub async fn report_push(
        &self,
        project: &str,
        name: &str,
        rounds: &[RoundReport],
    ) -> Result<Vec<bool>> {
        let keys = QueueKeys::new(project, name);
        let channel = keys.wake_channel();
        let done_keys: Vec<String> = rounds
            .iter()
            .map(|round| delivered_status(project, name, &round.id))
            .collect();
        // Per round: the script's action, the state, and the action's duration.
        let outcomes: Vec<(&str, &String, String)> = rounds
            .iter()
            .map(|round| match &round.report {
                Report::Wait { state, after } => ("wait", state, after.as_millis().to_string()),
                Report::Done { state, keep } => ("delete", state, keep.as_secs().to_string()),
                Report::Hold { state, hold } => ("hold", state, hold.as_millis().to_string()),
            })
            .collect();
        let mut args: Vec<&[u8]> = vec![channel.as_bytes()];
        for (round, (action, state, number)) in rounds.iter().zip(&outcomes) {
            args.extend([
                round.id.as_bytes(),
                round.reservation_id.as_bytes(),
                action.as_bytes(),
                state.as_bytes(),
                number.as_bytes(),
                round.acks.as_deref().unwrap_or("").as_bytes(),
                round.revision.as_bytes(),
            ]);
        }
        let extra: Vec<&str> = done_keys.iter().map(String::as_str).collect();
        let mut reply = self
            .run_with(&SCRIPTS.push_report, &keys, &extra, &args)
            .await?;
        check_status(reply.int()?, "")?;
        rounds
            .iter()
            .map(|round| match reply.int()? {
                // The claim ended, or the settings changed during the round.
                4 | 6 => Ok(false),
                status => check_status(status, &round.id).map(|_| true),
            })
            .collect()
    }

    /// A subscriber's acknowledgement of a message it answered 202 for. `reservation_id` is the
    /// one of the push request; `None` when the caller proved itself with a token instead.
    pub async fn ack_push(
        &self,
        project: &str,
        name: &str,
        id: &str,
        reservation_id: Option<&str>,
        subscriber: &str,
    ) -> Result<()> {
        let keys = QueueKeys::new(project, name);
        let channel = keys.wake_channel();
        let args: [&[u8]; 4] = [
            id.as_bytes(),
            reservation_id.unwrap_or("").as_bytes(),
            subscriber.as_bytes(),
            channel.as_bytes(),
        ];
        let mut reply = self.run(&SCRIPTS.push_ack, &keys, &args).await?;
        check_status(reply.int()?, id)
    }

    /// The push state of a message (JSON): of its rounds so far, or kept after delivery.
    /// `Ok(None)` for a message not yet tried.
    pub async fn push_state(&self, project: &str, name: &str, id: &str) -> Result<Option<String>> {
        let keys = QueueKeys::new(project, name);
        let mut conn = self.0.conn.clone();
        if !conn.exists::<_, bool>(keys.cfg()).await? {
            return Err(StoreError::QueueNotFound);
        }
        if let Some(state) = conn
            .hget::<_, _, Option<String>>(keys.push_states(), id)
            .await?
        {
            return Ok(Some(state));
        }
        if conn.hexists::<_, _, bool>(keys.body(), id).await? {
            return Ok(None);
        }
        match conn
            .get::<_, Option<String>>(delivered_status(project, name, id))
            .await?
        {
            Some(state) => Ok(Some(state)),
            None => Err(StoreError::MessageNotFound { id: id.to_string() }),
        }
    }
}
