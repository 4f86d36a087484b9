//! Push workers: for every push queue, a loop that claims ready messages (so no two workers of
//! any process hold one at once) and runs a delivery round for each, bounded in concurrency per
//! queue, so a slow subscriber only ever holds up its own queue.

use super::deliver::Courier;
use super::reports::Reports;
use super::state::{Next, Outcome, PushState, SubscriberState, Timing};
use crate::model::{NewMessage, PushConfig, QueueConfig};
use crate::settings::push_of;
use crate::store::{Answered, Claimed, Report, RoundReport, StoreError};
use serde_json::json;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use tokio::sync::{Semaphore, watch};
use tokio::task::JoinHandle;

/// How often the set of push queues is read again.
const DISCOVER_INTERVAL: Duration = Duration::from_secs(1);
/// How long an idle queue loop waits for a post before looking at its settings again.
const IDLE_WAIT: Duration = Duration::from_secs(5);
/// Most messages claimed at once by one queue loop.
const CLAIM_BATCH: usize = 16;
/// A claim outlasts the longest delivery by this much, so it never ends under a live worker.
const CLAIM_MARGIN: Duration = Duration::from_secs(30);
/// How long a queue loop goes on with settings it read, before reading them again.
const CONFIG_TTL: Duration = Duration::from_secs(1);
/// How long a message claimed from a queue that has no subscribers waits before a new look.
const NO_SUBSCRIBER_PAUSE: Duration = Duration::from_secs(5);
/// Pause after a store error before a queue loop tries again.
const ERROR_PAUSE: Duration = Duration::from_secs(1);

/// Settings of push delivery in one process.
#[derive(Debug, Clone)]
pub struct PushSettings {
    /// How long a subscriber has to answer.
    pub timeout: Duration,
    /// Deliveries in flight at once per queue.
    pub concurrency: usize,
    /// Deliveries in flight at once in the whole process, over all queues.
    pub process_concurrency: usize,
    /// How long the push state of a delivered message stays readable.
    pub keep_status: Duration,
    /// How long rounds in flight may take to finish when the process stops.
    pub shutdown_grace: Duration,
}

pub struct Workers {
    courier: Courier,
    settings: PushSettings,
    /// Slots of the process-wide bound on deliveries in flight.
    in_flight: Arc<Semaphore>,
    /// Answers not yet added to the counts in Redis: (project, queue, subscriber, kind).
    tally: std::sync::Mutex<HashMap<(String, String, String, Answered), u64>>,
    /// Rounds in flight, by message id: what it takes to hand a message back unfinished.
    rounds: std::sync::Mutex<HashMap<String, Unfinished>>,
    /// Where rounds record their outcome.
    reports: Reports,
}

/// A message whose round is running, as it stood when the round began.
struct Unfinished {
    project: String,
    queue: String,
    revision: String,
    claim: Claimed,
    state: String,
}

/// Takes a round out of `Workers::rounds` when the round ends, however it ends.
struct RoundGuard<'a> {
    workers: &'a Workers,
    id: String,
}

impl Drop for RoundGuard<'_> {
    fn drop(&mut self) {
        self.workers
            .rounds
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&self.id);
    }
}

/// A subscriber's answers of one kind, to be counted.
type Tallied = (String, Answered, u64);

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

impl Workers {
    pub fn new(courier: Courier, settings: PushSettings) -> Arc<Self> {
        let in_flight = Arc::new(Semaphore::new(settings.process_concurrency.max(1)));
        let reports = Reports::start(courier.store.clone());
        Arc::new(Workers {
            reports,
            courier,
            settings,
            in_flight,
            tally: Default::default(),
            rounds: Default::default(),
        })
    }

    /// Runs until `shutdown` turns true, then stops claiming and gives the rounds in flight up
    /// to `PushSettings::shutdown_grace` to finish and record their outcome (every claimed
    /// message is in a round: claims are taken only for free slots). A round still running then
    /// is dropped; its claim lapses and the message is delivered again (at least once).
    pub async fn run(self: Arc<Self>, mut shutdown: watch::Receiver<bool>) {
        let mut loops: HashMap<(String, String), JoinHandle<()>> = HashMap::new();
        loop {
            match self.courier.store.push_queues().await {
                Ok(queues) => {
                    loops.retain(|_, handle| !handle.is_finished());
                    for (project, queue) in queues {
                        if let std::collections::hash_map::Entry::Vacant(slot) =
                            loops.entry((project.clone(), queue.clone()))
                        {
                            slot.insert(tokio::spawn(self.clone().serve_queue(project, queue)));
                        }
                    }
                }
                Err(err) => tracing::warn!(%err, "cannot list push queues"),
            }
            self.flush_tally().await;
            tokio::select! {
                _ = tokio::time::sleep(DISCOVER_INTERVAL) => {}
                _ = shutdown.wait_for(|stop| *stop) => break,
            }
        }
        for handle in loops.values() {
            handle.abort();
        }
        let all = self.settings.process_concurrency.max(1) as u32;
        let finished = tokio::time::timeout(
            self.settings.shutdown_grace,
            self.in_flight.acquire_many(all),
        )
        .await;
        if finished.is_err() {
            self.hand_back_unfinished().await;
        }
        self.flush_tally().await;
    }

    /// Claims and delivers the messages of one queue while it is a push queue.
    async fn serve_queue(self: Arc<Self>, project: String, queue: String) {
        let slots = self.settings.concurrency.max(1);
        let free = Arc::new(Semaphore::new(slots));
        let mut config: Option<(Arc<QueueConfig>, Instant)> = None;
        loop {
            // Claim in batches: wait until half the slots are free (one script call claims them
            // all), then hand one slot to each claimed message.
            let batch = (slots / 2).clamp(1, CLAIM_BATCH) as u32;
            let Ok(mut permits) = free.clone().acquire_many_owned(batch).await else {
                return;
            };
            let fresh = config
                .as_ref()
                .is_some_and(|(_, read)| read.elapsed() < CONFIG_TTL);
            if !fresh {
                config = match self.courier.store.queue_info(&project, &queue).await {
                    Ok(info) if push_of(&info.config).is_some() => {
                        Some((Arc::new(info.config), Instant::now()))
                    }
                    Ok(_) | Err(StoreError::QueueNotFound) => return,
                    Err(err) => {
                        tracing::warn!(%err, project, queue, "push worker cannot read the queue");
                        tokio::time::sleep(ERROR_PAUSE).await;
                        continue;
                    }
                };
            }
            let Some((settings, _)) = config.clone() else {
                return;
            };
            if push_of(&settings).is_some_and(|push| push.subscribers.is_empty()) {
                // A declared queue whose Subscriptions are not there yet: its messages wait.
                drop(permits);
                tokio::time::sleep(CONFIG_TTL).await;
                continue;
            }
            let claim = push_of(&settings)
                .map_or(self.settings.timeout, |push| self.answer_within(push))
                + CLAIM_MARGIN;
            let claimed = self
                .courier
                .store
                .claim_push(&project, &queue, batch as usize, claim, IDLE_WAIT)
                .await;
            match claimed {
                Ok(None) => return,
                Ok(Some(messages)) if messages.is_empty() => {}
                Ok(Some(messages)) => {
                    // The claim may have waited for posts: use the settings as they are now.
                    let settings = if config
                        .as_ref()
                        .is_some_and(|(_, read)| read.elapsed() < CONFIG_TTL)
                    {
                        settings
                    } else {
                        match self.courier.store.queue_info(&project, &queue).await {
                            Ok(info) if push_of(&info.config).is_some() => {
                                let fresh = Arc::new(info.config);
                                config = Some((fresh.clone(), Instant::now()));
                                fresh
                            }
                            // No longer a push queue: its claims lapse and it is pulled.
                            Ok(_) | Err(StoreError::QueueNotFound) => return,
                            Err(_) => settings,
                        }
                    };
                    for message in messages {
                        let Some(permit) = permits.split(1) else {
                            break;
                        };
                        // The process-wide bound is taken per message once it is claimed, so
                        // idle queues waiting for posts hold none of it.
                        let Ok(process_permit) = self.in_flight.clone().acquire_owned().await
                        else {
                            return;
                        };
                        let worker = self.clone();
                        let (project, queue, settings) =
                            (project.clone(), queue.clone(), settings.clone());
                        tokio::spawn(async move {
                            // Both slots are held until the round is over.
                            let _slots = (permit, process_permit);
                            worker.round(&project, &queue, &settings, message).await
                        });
                    }
                }
                Err(err) => {
                    tracing::warn!(%err, project, queue, "push worker cannot claim messages");
                    tokio::time::sleep(ERROR_PAUSE).await;
                }
            }
        }
    }

    /// Hands the messages of rounds still running back to the queue, due at once, as they
    /// stood before their round: another process delivers them without waiting for the claims
    /// to lapse. A round that reports after this finds its claim gone and changes nothing.
    async fn hand_back_unfinished(&self) {
        let unfinished: Vec<Unfinished> = self
            .rounds
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .drain()
            .map(|(_, round)| round)
            .collect();
        tracing::warn!(
            messages = unfinished.len(),
            "push rounds still running at shutdown: their messages go back to the queue"
        );
        for round in unfinished {
            let report = Report::Wait {
                state: round.state,
                after: Duration::ZERO,
            };
            self.report(
                (&round.project, &round.queue, &round.revision),
                &round.claim,
                report,
            )
            .await;
        }
    }

    /// Tallies a round's answers for the per-subscriber counts (what Subscription status
    /// shows); `flush_tally` writes them, once a second, not once a round.
    fn count(&self, project: &str, queue: &str, answers: &[(String, Outcome)]) {
        let mut tally = self.tally.lock().unwrap_or_else(|e| e.into_inner());
        for (name, outcome) in answers {
            let kind = match outcome {
                Outcome::Delivered { .. } => Answered::Delivered,
                Outcome::Accepted => Answered::Accepted,
                Outcome::Failed { .. } => Answered::Failed,
            };
            let key = (project.to_string(), queue.to_string(), name.clone(), kind);
            *tally.entry(key).or_default() += 1;
        }
    }

    /// Adds the tallied answers to the counts in Redis. Counts are for watching, not for
    /// correctness: a failure is logged and those answers are not counted.
    async fn flush_tally(&self) {
        let tally = std::mem::take(&mut *self.tally.lock().unwrap_or_else(|e| e.into_inner()));
        let mut by_queue: HashMap<(String, String), Vec<Tallied>> = HashMap::new();
        for ((project, queue, name, kind), n) in tally {
            by_queue
                .entry((project, queue))
                .or_default()
                .push((name, kind, n));
        }
        for ((project, queue), answers) in by_queue {
            let answers: Vec<(&str, Answered, u64)> = answers
                .iter()
                .map(|(name, kind, n)| (name.as_str(), *kind, *n))
                .collect();
            if let Err(err) = self
                .courier
                .store
                .count_answers(&project, &queue, &answers)
                .await
            {
                tracing::warn!(%err, project, queue, "cannot count delivery answers");
            }
        }
    }

    /// Notes a round as running, until the returned guard is dropped.
    fn begin_round(
        &self,
        project: &str,
        queue: &str,
        config: &QueueConfig,
        message: &Claimed,
        state: &PushState,
    ) -> RoundGuard<'_> {
        let unfinished = Unfinished {
            project: project.to_string(),
            queue: queue.to_string(),
            revision: config.revision.clone(),
            // What the report needs of the claim; the body stays with the round.
            claim: Claimed {
                id: message.id.clone(),
                body: String::new(),
                push_headers: Default::default(),
                state: None,
                reservation_id: message.reservation_id.clone(),
                acks: message.acks.clone(),
            },
            state: serde_json::to_string(state).unwrap_or_default(),
        };
        self.rounds
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(message.id.clone(), unfinished);
        RoundGuard {
            workers: self,
            id: message.id.clone(),
        }
    }

    /// How long a subscriber of this queue has to answer: its own timeout, or the server's.
    fn answer_within(&self, push: &PushConfig) -> Duration {
        match push.timeout {
            0 => self.settings.timeout,
            seconds => Duration::from_secs(seconds),
        }
    }

    /// One delivery round of a claimed message.
    async fn round(&self, project: &str, queue: &str, config: &QueueConfig, message: Claimed) {
        let Some(push) = push_of(config) else { return };
        let mut state = match message
            .state
            .as_deref()
            .map(serde_json::from_str::<PushState>)
        {
            Some(Ok(state)) => state,
            Some(Err(err)) => {
                tracing::warn!(%err, project, queue, id = message.id, "unreadable push state; starting over");
                PushState::new(config.queue_type, push)
            }
            None => PushState::new(config.queue_type, push),
        };
        if let Some(acks) = message.acks.as_deref() {
            match serde_json::from_str(acks) {
                Ok(acks) => state.apply_acks(&acks),
                Err(err) => {
                    tracing::warn!(%err, project, queue, id = message.id, "unreadable acknowledgements")
                }
            }
        }
        let _round = self.begin_round(project, queue, config, &message, &state);
        if push.subscribers.is_empty() {
            // The subscribers went away after the claim: keep the message for later ones.
            let state = serde_json::to_string(&state).unwrap_or_default();
            let later = Report::Wait {
                state,
                after: NO_SUBSCRIBER_PAUSE,
            };
            self.report((project, queue, &config.revision), &message, later)
                .await;
            return;
        }
        let offset = message
            .id
            .bytes()
            .fold(0usize, |h, b| h.wrapping_mul(31).wrapping_add(b as usize));
        let targets = state.plan(push, now_ms(), offset);
        let answers = futures_util::future::join_all(targets.iter().map(|to| async {
            (
                to.name.clone(),
                self.courier
                    .deliver(project, queue, &message, to, push)
                    .await,
            )
        }))
        .await;
        self.count(project, queue, &answers);
        let timing = Timing {
            ack_timeout: Duration::from_secs(config.message_timeout),
        };
        let next = state.record(&answers, push, now_ms(), &timing, &message.reservation_id);
        let encoded = serde_json::to_string(&state).unwrap_or_default();
        let keep = self.settings.keep_status;
        match next {
            Next::Wait(after) => {
                self.report(
                    (project, queue, &config.revision),
                    &message,
                    Report::Wait {
                        state: encoded,
                        after,
                    },
                )
                .await;
            }
            Next::Done => {
                self.report(
                    (project, queue, &config.revision),
                    &message,
                    Report::Done {
                        state: encoded,
                        keep,
                    },
                )
                .await;
            }
            Next::Failed(failed, names) => {
                // Record first: should this worker die before the error queue has the message,
                // the next worker sees delivery is over and only redoes this part.
                let hold = self.answer_within(push) + CLAIM_MARGIN;
                let held = Report::Hold {
                    state: encoded.clone(),
                    hold,
                };
                if !self
                    .report((project, queue, &config.revision), &message, held)
                    .await
                {
                    return;
                }
                if !push.error_queue.is_empty()
                    && let Err(err) = self
                        .to_error_queue(project, push, &message, &failed, &names)
                        .await
                {
                    // The claim runs out and a worker tries again.
                    tracing::warn!(%err, project, queue, "cannot post to the error queue");
                    return;
                }
                self.report(
                    (project, queue, &config.revision),
                    &message,
                    Report::Done {
                        state: encoded,
                        keep,
                    },
                )
                .await;
            }
        }
    }

    /// Records a round's outcome; false when that did not happen (the claim had ended, or the
    /// store failed), in which case the claim runs out and the round is done again.
    async fn report(
        &self,
        (project, queue, revision): (&str, &str, &str),
        message: &Claimed,
        report: Report,
    ) -> bool {
        let round = RoundReport::new(message, revision, report);
        match self.reports.record(project, queue, round).await {
            Ok(true) => true,
            Ok(false) => {
                tracing::info!(
                    project,
                    queue,
                    id = message.id,
                    "push round not recorded (its claim ended, or the settings changed meanwhile): it runs again"
                );
                false
            }
            Err(err) => {
                tracing::warn!(%err, project, queue, id = message.id, "cannot record a push round");
                false
            }
        }
    }

    async fn to_error_queue(
        &self,
        project: &str,
        push: &PushConfig,
        message: &Claimed,
        failed: &[SubscriberState],
        names: &[String],
    ) -> Result<(), StoreError> {
        let subscribers: Vec<_> = names
            .iter()
            .zip(failed)
            .map(|(name, s)| json!({ "name": name, "url": s.url, "code": s.code, "msg": s.msg }))
            .collect();
        let body = json!({
            "source_msg_id": message.id,
            "body": message.body,
            "headers": message.push_headers,
            "subscribers": subscribers,
        });
        let error = NewMessage {
            body: body.to_string(),
            ..Default::default()
        };
        self.courier
            .store
            .post(project, &push.error_queue, &[error])
            .await
            .map(drop)
    }
}
