//! Holding deliveries back: a subscriber's flow control (`max_per_second`,
//! `max_concurrency`), its circuit breaker (`pause_after_failures`) and its `Retry-After`
//! answers. The limits and the breaker are shared by every process (`store::ops::push_gate`);
//! a Retry-After from a subscriber without any of them is kept by this process alone, so the
//! gate costs such subscribers no store call.

use super::state::{Outcome, PushState, Waiting};
use crate::metrics::{HeldLabels, METRICS, SubscriberLabels};
use crate::model::{DEFAULT_PROBE_INTERVAL, Subscriber};
use crate::store::{Admission, Change, Entry, Settled, Store, Verdict};
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// How long a delivery waits for a free `max_concurrency` slot before asking again, at least;
/// up to twice that, so waiting messages do not all ask at once.
const CONCURRENCY_WAIT: Duration = Duration::from_millis(100);
/// How long deliveries wait when the gate cannot be asked (the store failed).
const UNKNOWN_WAIT: Duration = Duration::from_secs(1);

/// A subscriber's delivery in a round, once the gate let it through.
pub struct Pass {
    pub key: String,
    pub to: Subscriber,
    /// Whether the gate was asked (the subscriber has limits or a breaker).
    gated: bool,
    probed: bool,
}

impl Pass {
    pub fn probed(&self) -> bool {
        self.probed
    }
}

/// The gate of one process.
#[derive(Default)]
pub struct Gate {
    /// (project, queue, subscriber key) -> no delivery before then, after a Retry-After from
    /// a subscriber the store's gate does not keep.
    paused: Mutex<HashMap<(String, String, String), Instant>>,
}

/// Whether the store's gate keeps this subscriber.
fn gated(s: &Subscriber) -> bool {
    s.max_per_second.is_some() || s.max_concurrency.is_some() || s.pause_after_failures.is_some()
}

fn probe_interval(s: &Subscriber) -> Duration {
    Duration::from_secs(s.probe_interval.unwrap_or(DEFAULT_PROBE_INTERVAL))
}

fn held(state: &mut PushState, key: &str, wait: Duration, why: Waiting, slot: u64, now: u64) {
    let reason = match why {
        Waiting::RetryAfter => "retry_after",
        Waiting::RateLimit => "rate_limit",
        Waiting::ConcurrencyLimit => "concurrency_limit",
        Waiting::CircuitOpen => "circuit_open",
    };
    METRICS
        .push_held
        .get_or_create(&HeldLabels { reason })
        .inc();
    state.hold(key, wait, why, slot, now);
}

fn show_circuit(project: &str, queue: &str, key: &str, open: bool) {
    let labels = SubscriberLabels {
        project: project.to_string(),
        queue: queue.to_string(),
        subscriber: key.to_string(),
    };
    METRICS
        .push_circuit_open
        .get_or_create(&labels)
        .set(i64::from(open));
}

/// One round's use of the gate.
pub struct RoundGate<'a> {
    pub gate: &'a Gate,
    pub store: &'a Store,
    pub project: &'a str,
    pub queue: &'a str,
    /// Names the round's deliveries in the store's gate (the claim's reservation id).
    pub lease: &'a str,
    /// How long a lease lasts should the round's process die: the claim's length.
    pub lease_for: Duration,
}

impl RoundGate<'_> {
    /// The targets that may be delivered to now; the others are held in `state` (waiting,
    /// no try spent) until the gate says.
    pub async fn admit(
        &self,
        targets: Vec<(String, Subscriber)>,
        state: &mut PushState,
        now: u64,
    ) -> Vec<Pass> {
        let mut passes = Vec::with_capacity(targets.len());
        let mut asked = Vec::new();
        for (key, to) in targets {
            if let Some(wait) = self.paused_here(&key) {
                held(state, &key, wait, Waiting::RetryAfter, 0, now);
            } else if gated(&to) {
                asked.push((key, to));
            } else {
                passes.push(Pass {
                    key,
                    to,
                    gated: false,
                    probed: false,
                });
            }
        }
        if asked.is_empty() {
            return passes;
        }
        let entries: Vec<Entry<'_>> = asked
            .iter()
            .map(|(key, to)| Entry {
                key,
                max_per_second: to.max_per_second.unwrap_or(0.0),
                max_concurrency: to.max_concurrency.unwrap_or(0),
                pause_after_failures: to.pause_after_failures.unwrap_or(0),
                slot: state.subscribers.get(key).map_or(0, |s| s.slot),
                probe_interval: probe_interval(to),
            })
            .collect();
        let admitted = self
            .store
            .admit_push(
                self.project,
                self.queue,
                &entries,
                self.lease,
                self.lease_for,
            )
            .await;
        let admitted = match admitted {
            Ok(admitted) => admitted,
            Err(err) => {
                tracing::warn!(%err, project = self.project, queue = self.queue, "cannot ask the push gate; deliveries wait");
                for (key, _) in &asked {
                    held(state, key, UNKNOWN_WAIT, Waiting::ConcurrencyLimit, 0, now);
                }
                return passes;
            }
        };
        for ((key, to), Admission { verdict, open }) in asked.into_iter().zip(admitted) {
            show_circuit(self.project, self.queue, &key, open);
            let (wait, why, slot) = match verdict {
                Verdict::Go | Verdict::Probe => {
                    passes.push(Pass {
                        key,
                        to,
                        gated: true,
                        probed: verdict == Verdict::Probe,
                    });
                    continue;
                }
                Verdict::Paused { wait } => (wait, Waiting::RetryAfter, 0),
                Verdict::Open { wait } => (wait, Waiting::CircuitOpen, 0),
                Verdict::Busy => {
                    // Longer each time in a row (up to 16 times), so a backlog waiting for a
                    // place does not ask ever faster; with jitter, so it does not ask at once.
                    let holds = state.subscribers.get(&key).map_or(0, |s| s.holds);
                    let wait = CONCURRENCY_WAIT * (1 << holds.min(4)) as u32;
                    let jitter = fastrand::u64(0..=wait.as_millis() as u64);
                    (
                        wait + Duration::from_millis(jitter),
                        Waiting::ConcurrencyLimit,
                        0,
                    )
                }
                Verdict::Rate { wait, slot } => (wait, Waiting::RateLimit, slot),
            };
            held(state, &key, wait, why, slot, now);
        }
        passes
    }

    /// Records what the deliveries came to. A failed probe's answer becomes
    /// `Outcome::ProbeFailed`; returned are the subscribers whose message then waits for the
    /// next probe, with how long (to hold once the answers are taken in).
    pub async fn settle(
        &self,
        passes: &[Pass],
        answers: &mut [(String, Outcome)],
    ) -> Vec<(String, Duration)> {
        let mut settled = Vec::new();
        let mut which = Vec::new();
        for (i, (pass, (_, outcome))) in passes.iter().zip(answers.iter()).enumerate() {
            let retry_after = match outcome {
                Outcome::Busy { retry_after, .. } => *retry_after,
                _ => Duration::ZERO,
            };
            if !pass.gated {
                if !retry_after.is_zero() {
                    self.pause_here(&pass.key, retry_after);
                }
                continue;
            }
            // A rate limit alone has nothing to settle: its slot was taken when admitted. A
            // probe always settles, so it is never left in flight.
            let leased = pass.to.max_concurrency.is_some();
            let breaker = pass.to.pause_after_failures.is_some() || pass.probed;
            if !leased && !breaker && retry_after.is_zero() {
                continue;
            }
            let took = match outcome {
                o if o.took() => Some(true),
                o if o.asked_to_wait() => None,
                _ => Some(false),
            };
            settled.push(Settled {
                key: &pass.key,
                leased,
                took,
                pause_after_failures: pass.to.pause_after_failures.unwrap_or(0),
                probe_interval: probe_interval(&pass.to),
                probed: pass.probed,
                retry_after,
            });
            which.push(i);
        }
        let mut paused = Vec::new();
        if settled.is_empty() {
            return paused;
        }
        let standings = match self
            .store
            .settle_push(self.project, self.queue, &settled, self.lease)
            .await
        {
            Ok(standings) => standings,
            Err(err) => {
                // Leases run out by themselves; a missed failure only delays a pause.
                tracing::warn!(%err, project = self.project, queue = self.queue, "cannot settle push deliveries");
                return paused;
            }
        };
        for (i, standing) in which.into_iter().zip(standings) {
            let (key, outcome) = &mut answers[i];
            show_circuit(self.project, self.queue, key, standing.open);
            match standing.change {
                Change::Opened => tracing::warn!(
                    project = self.project,
                    queue = self.queue,
                    subscriber = key.as_str(),
                    pause = ?standing.paused_for,
                    "push subscriber paused: too many failed tries in a row"
                ),
                Change::Closed => tracing::info!(
                    project = self.project,
                    queue = self.queue,
                    subscriber = key.as_str(),
                    "push subscriber resumed"
                ),
                Change::Reopened | Change::None => {}
            }
            if passes[i].probed
                && standing.open
                && let Outcome::Failed { code, msg } | Outcome::Busy { code, msg, .. } = outcome
            {
                *outcome = Outcome::ProbeFailed {
                    code: *code,
                    msg: std::mem::take(msg),
                };
            }
            if passes[i].probed && standing.open {
                paused.push((key.clone(), standing.paused_for));
            }
        }
        paused
    }

    /// Holds the messages of subscribers whose probe failed (see `settle`).
    pub fn hold_paused(state: &mut PushState, paused: &[(String, Duration)], now: u64) {
        for (key, wait) in paused {
            held(state, key, *wait, Waiting::CircuitOpen, 0, now);
        }
    }

    /// How long this process keeps a subscriber paused after its Retry-After, if it does.
    fn paused_here(&self, key: &str) -> Option<Duration> {
        let mut paused = self.gate.paused.lock().unwrap_or_else(|e| e.into_inner());
        let id = (
            self.project.to_string(),
            self.queue.to_string(),
            key.to_string(),
        );
        let until = *paused.get(&id)?;
        let left = until.saturating_duration_since(Instant::now());
        if left.is_zero() {
            paused.remove(&id);
            return None;
        }
        Some(left)
    }

    fn pause_here(&self, key: &str, wait: Duration) {
        let mut paused = self.gate.paused.lock().unwrap_or_else(|e| e.into_inner());
        let id = (
            self.project.to_string(),
            self.queue.to_string(),
            key.to_string(),
        );
        let until = Instant::now() + wait;
        let entry = paused.entry(id).or_insert(until);
        *entry = (*entry).max(until);
    }
}
