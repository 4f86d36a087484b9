//! Push workers: for every push queue, a loop that claims ready messages (so no two workers of
//! any process hold one at once) and runs a delivery round for each, bounded in concurrency per
//! queue, so a slow subscriber only ever holds up its own queue.

use super::deliver::Courier;
use super::gate::Gate;
use super::reports::Reports;
use super::round::Round;
use super::state::{Next, Outcome, SubscriberState};
use crate::model::{NewMessage, PushConfig, QueueConfig};
use crate::settings::push_of;
use crate::store::{Answered, Claimed, Report, RoundReport, Store, StoreError};
use serde_json::json;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};
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
    /// Deliveries held back (flow control, circuit breakers, Retry-After).
    gate: Gate,
}

/// A message whose round is running: the report that hands it back as it stood when the
/// round began.
struct Unfinished {
    project: String,
    queue: String,
    hand_back: RoundReport,
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

/// A queue's settings as a queue loop last read them; read again once `CONFIG_TTL` old.
#[derive(Default)]
struct FreshConfig(Option<(Arc<QueueConfig>, Instant)>);

impl FreshConfig {
    /// The settings, read again when stale; `None` when the queue is gone or no longer a push
    /// queue.
    async fn get(
        &mut self,
        store: &Store,
        project: &str,
        queue: &str,
    ) -> Result<Option<Arc<QueueConfig>>, StoreError> {
        if let Some((config, read)) = &self.0
            && read.elapsed() < CONFIG_TTL
        {
            return Ok(Some(config.clone()));
        }
        match store.queue_info(project, queue).await {
            Ok(info) if push_of(&info.config).is_some() => {
                let config = Arc::new(info.config);
                self.0 = Some((config.clone(), Instant::now()));
                Ok(Some(config))
            }
            Ok(_) | Err(StoreError::QueueNotFound) => Ok(None),
            Err(err) => Err(err),
        }
    }
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
            gate: Gate::default(),
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
        let mut config = FreshConfig::default();
        loop {
            // Claim in batches: wait until half the slots are free (one script call claims them
            // all), then hand one slot to each claimed message.
            let batch = (slots / 2).clamp(1, CLAIM_BATCH) as u32;
            let Ok(mut permits) = free.clone().acquire_many_owned(batch).await else {
                return;
            };
            let store = &self.courier.store;
            let settings = match config.get(store, &project, &queue).await {
                Ok(Some(settings)) => settings,
                Ok(None) => return,
                Err(err) => {
                    tracing::warn!(%err, project, queue, "push worker cannot read the queue");
                    tokio::time::sleep(ERROR_PAUSE).await;
                    continue;
                }
            };
            let Some(push) = push_of(&settings) else {
                return;
            };
            if push.subscribers.is_empty() {
                // A declared queue whose Subscriptions are not there yet: its messages wait.
                drop(permits);
                tokio::time::sleep(CONFIG_TTL).await;
                continue;
            }
            let claim = self.answer_within(push) + CLAIM_MARGIN;
            let claimed = store
                .claim_push(&project, &queue, batch as usize, claim, IDLE_WAIT)
                .await;
            match claimed {
                Ok(None) => return,
                Ok(Some(messages)) if messages.is_empty() => {}
                Ok(Some(messages)) => {
                    // The claim may have waited for posts: use the settings as they are now.
                    let settings = match config.get(store, &project, &queue).await {
                        Ok(Some(fresh)) => fresh,
                        // No longer a push queue: its claims lapse and it is pulled.
                        Ok(None) => return,
                        Err(_) => settings,
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
            self.record_report(&round.project, &round.queue, round.hand_back)
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
                Outcome::Failed { .. } | Outcome::Busy { .. } | Outcome::ProbeFailed { .. } => {
                    Answered::Failed
                }
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
    fn begin_round(&self, round: &Round<'_>) -> RoundGuard<'_> {
        let unfinished = Unfinished {
            project: round.project.to_string(),
            queue: round.queue.to_string(),
            hand_back: round.claim_report(Report::Wait {
                state: round.encoded_state(),
                after: Duration::ZERO,
            }),
        };
        let id = round.message.id.clone();
        self.rounds
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(id.clone(), unfinished);
        RoundGuard { workers: self, id }
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
        let Some(mut round) = Round::begin(project, queue, config, message) else {
            return;
        };
        let _running = self.begin_round(&round);
        let next = if round.push.subscribers.is_empty() {
            // The subscribers went away after the claim: keep the message for later ones.
            Next::Wait(NO_SUBSCRIBER_PAUSE)
        } else {
            let claim = self.answer_within(round.push) + CLAIM_MARGIN;
            let answers = round.deliver(&self.courier, &self.gate, claim).await;
            self.count(project, queue, &answers);
            round.take_answers(&answers)
        };
        let state = round.encoded_state();
        let keep = self.settings.keep_status;
        let report = match next {
            Next::Wait(after) => Report::Wait { state, after },
            Next::Done => Report::Done { state, keep },
            Next::Failed(failed, names) => {
                // Record first: should this worker die before the error queue has the message,
                // the next worker sees delivery is over and only redoes this part.
                let hold = self.answer_within(round.push) + CLAIM_MARGIN;
                let held = Report::Hold {
                    state: state.clone(),
                    hold,
                };
                if !self.report(&round, held).await {
                    return;
                }
                if !round.push.error_queue.is_empty()
                    && let Err(err) = self
                        .to_error_queue(project, round.push, &round.message, &failed, &names)
                        .await
                {
                    // The claim runs out and a worker tries again.
                    tracing::warn!(%err, project, queue, "cannot post to the error queue");
                    return;
                }
                Report::Done { state, keep }
            }
        };
        self.report(&round, report).await;
    }

    /// Records a round's outcome; false when that did not happen (see `record_report`).
    async fn report(&self, round: &Round<'_>, report: Report) -> bool {
        self.record_report(round.project, round.queue, round.claim_report(report))
            .await
    }

    /// Records a round's outcome; false when that did not happen (the claim had ended, or the
    /// store failed), in which case the claim runs out and the round is done again.
    async fn record_report(&self, project: &str, queue: &str, round: RoundReport) -> bool {
        let id = round.id.clone();
        match self.reports.record(project, queue, round).await {
            Ok(true) => true,
            Ok(false) => {
                tracing::info!(
                    project,
                    queue,
                    id,
                    "push round not recorded (its claim ended, or the settings changed meanwhile): it runs again"
                );
                false
            }
            Err(err) => {
                tracing::warn!(%err, project, queue, id, "cannot record a push round");
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
            .post(project, &push.error_queue, [error])
            .await
            .map(drop)
    }
}
