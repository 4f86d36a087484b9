//! The delivery state of one message: per subscriber, what happened so far and when to try
//! next. A round starts with `plan` (whom to try now) and ends with `record` (what the answers
//! mean). Stored as JSON beside the message.
//!
//! The contracts with Lua, both in `store/ops/push_ack.lua`:
//! - it reads, of the subscriber that acknowledges, `subscribers.<name>.status` ("reserved"
//!   awaits an acknowledgement, "deleted" is done), `.rid` (the reservation id it acknowledges
//!   with) and `.due` (ms since the epoch when the wait ends). No other script reads the state;
//!   the test `the_fields_lua_reads_keep_their_names` fails when one of these would change.
//! - it writes the acknowledgements recorded between rounds as JSON `{name: reservation id}`,
//!   which `apply_acks` reads.

use crate::model::{Backoff, PushConfig, QueueType, Subscriber};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::time::Duration;

/// Status of one subscriber's delivery, named as IronMQ clients expect them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// Not tried yet.
    Queued,
    /// Answered 202: waiting for its acknowledgement.
    Reserved,
    /// Failed; to be tried again.
    Retrying,
    /// Delivered (or acknowledged).
    Deleted,
    /// Failed for good.
    Error,
}

impl Status {
    fn is_final(self) -> bool {
        matches!(self, Status::Deleted | Status::Error)
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SubscriberState {
    pub status: Status,
    pub url: String,
    pub tries: u32,
    /// HTTP status of the last answer; 0 before the first, or when there was no answer.
    pub code: u16,
    pub msg: String,
    /// ms since the epoch.
    pub last_try_at: u64,
    /// ms since the epoch when to try again, or when waiting for an acknowledgement ends.
    pub due: u64,
    /// Reservation id of the push that answered 202: the one it acknowledges with.
    #[serde(default)]
    pub rid: String,
    /// The subscriber's own retries and retries_delay (multicast), as of the last round.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retries: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retries_delay: Option<u64>,
    /// The subscriber's name, kept only where its key differs (a name used twice).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub name: String,
    /// Why it was not tried when due (it waits until `due`), if so.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub waiting: Option<Waiting>,
    /// ms since the epoch of the delivery slot its rate limit booked for this message; 0 for
    /// none (see `store::ops::push_gate`).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub slot: u64,
    /// Times it was held in a row (see `hold`), so waits for a free place grow.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub holds: u64,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

/// Why a subscriber due for a try waits instead, as push status shows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Waiting {
    /// It answered 429 or 503 with a `Retry-After`.
    RetryAfter,
    /// Its `max_per_second` is used up.
    RateLimit,
    /// Its `max_concurrency` deliveries are in flight.
    ConcurrencyLimit,
    /// Its circuit breaker paused it.
    CircuitOpen,
}

/// Whether delivery is over when every subscriber is done with (`all`, multicast) or when
/// one took the message (`any`, unicast).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    All,
    Any,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PushState {
    pub mode: Mode,
    pub subscribers: BTreeMap<String, SubscriberState>,
    /// Unicast: rounds in which every subscriber failed, and who failed in the current one.
    #[serde(default)]
    pub rounds: u32,
    #[serde(default)]
    pub tried: Vec<String>,
    #[serde(default)]
    pub retries: u32,
    #[serde(default)]
    pub retries_delay: u64,
    #[serde(default)]
    pub backoff: Backoff,
}

/// The answer of one delivery attempt.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// Any 2xx but 202.
    Delivered {
        code: u16,
    },
    /// 202: the subscriber will acknowledge.
    Accepted,
    Failed {
        code: u16,
        msg: String,
    },
    /// 429 or 503 with a `Retry-After`: not before this long (capped). A 429 spends no retry.
    Busy {
        code: u16,
        msg: String,
        retry_after: Duration,
    },
    /// A failed probe of a paused subscriber: it stays paused, spending no retry.
    ProbeFailed {
        code: u16,
        msg: String,
    },
}

impl Outcome {
    /// Whether the subscriber took the message (2xx).
    pub fn took(&self) -> bool {
        matches!(self, Outcome::Delivered { .. } | Outcome::Accepted)
    }

    /// A 429 with Retry-After: neither taken nor failed.
    pub fn asked_to_wait(&self) -> bool {
        matches!(self, Outcome::Busy { code: 429, .. })
    }
}

/// What to do with the message after a round.
#[derive(Debug, Clone, PartialEq)]
pub enum Next {
    /// Bring it back to a worker after this long.
    Wait(Duration),
    /// Delivery is over.
    Done,
    /// Delivery is over, and these subscribers never got it (for the error queue).
    Failed(Vec<SubscriberState>, Vec<String>),
}

/// How long a subscriber that answered 202 has to acknowledge.
pub struct Timing {
    pub ack_timeout: Duration,
}

impl PushState {
    pub fn new(kind: QueueType, push: &PushConfig) -> Self {
        let subscribers = push
            .keyed()
            .into_iter()
            .map(|(key, s)| {
                let state = fresh(&key, s);
                (key, state)
            })
            .collect();
        PushState {
            mode: if kind == QueueType::Unicast {
                Mode::Any
            } else {
                Mode::All
            },
            subscribers,
            rounds: 0,
            tried: Vec::new(),
            retries: push.retries,
            retries_delay: push.retries_delay,
            backoff: push.backoff,
        }
    }

    /// Takes in acknowledgements (`{name: reservation id}`) of subscribers that answered 202:
    /// each counts as delivered if it carries the reservation id that subscriber was given (or
    /// none, from a caller with a token).
    pub fn apply_acks(&mut self, acks: &BTreeMap<String, String>) {
        for (name, rid) in acks {
            if let Some(s) = self.subscribers.get_mut(name)
                && s.status == Status::Reserved
                && (rid.is_empty() || *rid == s.rid)
            {
                s.status = Status::Deleted;
            }
        }
    }

    /// Whom to try now, each with its key. Waits for acknowledgements that ran out count as
    /// failed tries. `offset` spreads unicast messages over the subscribers.
    pub fn plan(
        &mut self,
        push: &PushConfig,
        now: u64,
        offset: usize,
    ) -> Vec<(String, Subscriber)> {
        self.retries = push.retries;
        self.retries_delay = push.retries_delay;
        self.backoff = push.backoff;
        let keyed = push.keyed();
        for (key, s) in &keyed {
            let state = self
                .subscribers
                .entry(key.clone())
                .or_insert_with(|| fresh(key, s));
            (state.retries, state.retries_delay) = (s.retries, s.retries_delay);
        }
        // A subscriber removed from the queue is no longer waited for.
        self.subscribers
            .retain(|key, _| keyed.iter().any(|(k, _)| k == key));
        self.tried
            .retain(|name| self.subscribers.contains_key(name));
        let lapsed: Vec<String> = self
            .subscribers
            .iter()
            .filter(|(_, s)| s.status == Status::Reserved && s.due <= now)
            .map(|(name, _)| name.clone())
            .collect();
        for name in lapsed {
            // The 202 was the try; it turns out a failure.
            let failure = Outcome::Failed {
                code: 202,
                msg: "No acknowledgement within the timeout".into(),
            };
            self.fail(&name, &failure, push.subscribers.len(), now);
        }
        let current = |key: &str| self.subscribers.get(key);
        match self.mode {
            Mode::All => keyed
                .iter()
                .filter(|(key, _)| {
                    current(key).is_some_and(|st| {
                        matches!(st.status, Status::Queued | Status::Retrying) && st.due <= now
                    })
                })
                .map(|(key, s)| (key.clone(), (*s).clone()))
                .collect(),
            Mode::Any => {
                let waiting = self
                    .subscribers
                    .values()
                    .any(|s| s.status == Status::Reserved);
                let over = self.subscribers.values().any(|s| s.status.is_final());
                let round_due = self.subscribers.values().all(|s| s.due <= now);
                if waiting || over || !round_due || push.subscribers.is_empty() {
                    return Vec::new();
                }
                let n = keyed.len();
                (0..n)
                    .map(|i| &keyed[(offset + i) % n])
                    .find(|(key, _)| !self.tried.contains(key))
                    .map(|(key, s)| (key.clone(), (*s).clone()))
                    .into_iter()
                    .collect()
            }
        }
    }

    /// Takes in the answers of a round and says what comes next.
    /// `reservation_id` is the round's: a subscriber that answered 202 acknowledges with it.
    pub fn record(
        &mut self,
        answers: &[(String, Outcome)],
        push: &PushConfig,
        now: u64,
        timing: &Timing,
        reservation_id: &str,
    ) -> Next {
        for (name, outcome) in answers {
            let Some(s) = self.subscribers.get_mut(name) else {
                continue;
            };
            s.last_try_at = now;
            s.waiting = None;
            s.slot = 0;
            s.holds = 0;
            match outcome {
                Outcome::Busy {
                    code,
                    msg,
                    retry_after,
                } if *code == 429 => {
                    // Not a failure: the subscriber asked for a pause.
                    s.status = Status::Retrying;
                    s.code = *code;
                    s.msg = msg.clone();
                    self.hold(name, *retry_after, Waiting::RetryAfter, 0, now);
                    continue;
                }
                Outcome::ProbeFailed { code, msg } => {
                    s.code = *code;
                    s.msg = msg.clone();
                    if s.status == Status::Queued {
                        s.status = Status::Retrying;
                    }
                    continue;
                }
                _ => {}
            }
            s.tries += 1;
            match outcome {
                Outcome::Delivered { code } => {
                    s.status = Status::Deleted;
                    s.code = *code;
                    s.msg.clear();
                }
                Outcome::Accepted => {
                    s.status = Status::Reserved;
                    s.code = 202;
                    s.msg.clear();
                    s.due = now + timing.ack_timeout.as_millis() as u64;
                    s.rid = reservation_id.to_string();
                }
                Outcome::Failed { .. } => {
                    self.fail(name, outcome, push.subscribers.len(), now);
                }
                // Taken in above, without a try.
                Outcome::ProbeFailed { .. } => {}
                Outcome::Busy { retry_after, .. } => {
                    // A 503 with Retry-After: a failed try that waits at least that long.
                    self.fail(name, outcome, push.subscribers.len(), now);
                    if let Some(s) = self.subscribers.get_mut(name)
                        && s.status == Status::Retrying
                        && s.due < now + retry_after.as_millis() as u64
                    {
                        s.due = now + retry_after.as_millis() as u64;
                        s.waiting = Some(Waiting::RetryAfter);
                    }
                }
            }
        }
        self.next(now)
    }

    /// Keeps a subscriber due now from being tried for `wait` (no try spent), for `why`;
    /// `slot` is the delivery slot its rate limit booked (0 for none).
    pub fn hold(&mut self, key: &str, wait: Duration, why: Waiting, slot: u64, now: u64) {
        if let Some(s) = self.subscribers.get_mut(key) {
            s.due = now + wait.as_millis() as u64;
            s.waiting = Some(why);
            s.slot = slot;
            s.holds += 1;
        }
    }

    /// A failed try of `name`: retried after `retries_delay` until it had `retries` + 1 tries
    /// (multicast); for unicast the next subscriber is tried at once, and when all failed the
    /// round is retried after `retries_delay`, `retries` times.
    /// (The try itself is counted where it was made.)
    fn fail(&mut self, name: &str, outcome: &Outcome, subscriber_count: usize, now: u64) {
        let (Outcome::Failed { code, msg } | Outcome::Busy { code, msg, .. }) = outcome else {
            return;
        };
        let (backoff, rounds) = (self.backoff, self.rounds);
        let (queue_retries, queue_delay) = (self.retries, self.retries_delay);
        let Some(s) = self.subscribers.get_mut(name) else {
            return;
        };
        // The retry about to be scheduled: per subscriber with its own settings (multicast),
        // or per round with the queue's (unicast).
        let (retry, retries, retries_delay) = if self.mode == Mode::All {
            (
                s.tries,
                s.retries.unwrap_or(queue_retries),
                s.retries_delay.unwrap_or(queue_delay),
            )
        } else {
            (rounds + 1, queue_retries, queue_delay)
        };
        let delay = backoff.delay(retries_delay, retry).as_millis() as u64;
        s.code = *code;
        s.msg = msg.clone();
        match self.mode {
            Mode::All => {
                if s.tries > retries {
                    s.status = Status::Error;
                } else {
                    s.status = Status::Retrying;
                    s.due = now + delay;
                }
            }
            Mode::Any => {
                s.status = Status::Retrying;
                if !self.tried.iter().any(|t| t == name) {
                    self.tried.push(name.to_string());
                }
                if self.tried.len() >= subscriber_count {
                    self.rounds += 1;
                    self.tried.clear();
                    let exhausted = self.rounds > self.retries;
                    for s in self.subscribers.values_mut() {
                        if exhausted {
                            s.status = Status::Error;
                        } else {
                            s.due = now + delay;
                        }
                    }
                }
            }
        }
    }

    /// What comes next for the message, as its state stands.
    pub fn next(&self, now: u64) -> Next {
        let states = self.subscribers.values();
        let over = match self.mode {
            Mode::All => states.clone().all(|s| s.status.is_final()),
            Mode::Any => states.clone().any(|s| s.status.is_final()),
        };
        if !over {
            // Multicast tries each subscriber when it is due; a unicast round waits until
            // every subscriber is (see `plan`), and an acknowledgement brings it back sooner.
            let waits = self
                .subscribers
                .values()
                .filter(|s| !s.status.is_final())
                .map(|s| s.due.saturating_sub(now));
            let wait = match self.mode {
                Mode::All => waits.min(),
                Mode::Any => waits.max(),
            };
            return Next::Wait(Duration::from_millis(wait.unwrap_or(0)));
        }
        let delivered = self
            .subscribers
            .values()
            .any(|s| s.status == Status::Deleted);
        let failed: Vec<(String, SubscriberState)> = self
            .subscribers
            .iter()
            .filter(|(_, s)| s.status == Status::Error)
            .map(|(key, s)| (s.name_or(key).to_string(), s.clone()))
            .collect();
        if failed.is_empty() || (self.mode == Mode::Any && delivered) {
            Next::Done
        } else {
            let (names, states) = failed.into_iter().unzip();
            Next::Failed(states, names)
        }
    }

    /// Retries left for a subscriber after the tries made so far, as push status reports it.
    pub fn retries_remaining(&self, s: &SubscriberState) -> u32 {
        match self.mode {
            Mode::All if s.status == Status::Error => 0,
            Mode::All => (s.retries.unwrap_or(self.retries) + 1).saturating_sub(s.tries.max(1)),
            Mode::Any if s.status == Status::Error => 0,
            Mode::Any => self.retries.saturating_sub(self.rounds),
        }
    }
}

impl SubscriberState {
    /// The subscriber's name, given its key.
    pub fn name_or<'a>(&'a self, key: &'a str) -> &'a str {
        if self.name.is_empty() {
            key
        } else {
            &self.name
        }
    }
}

fn fresh(key: &str, s: &Subscriber) -> SubscriberState {
    SubscriberState {
        name: if key == s.name {
            String::new()
        } else {
            s.name.clone()
        },
        status: Status::Queued,
        // Shown in push status and error-queue reports: without a token it may carry.
        url: crate::settings::shown_url(&s.url),
        tries: 0,
        code: 0,
        msg: String::new(),
        last_try_at: 0,
        due: 0,
        rid: String::new(),
        retries: s.retries,
        retries_delay: s.retries_delay,
        waiting: None,
        slot: 0,
        holds: 0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_fields_lua_reads_keep_their_names() {
        let mut state = PushState::new(QueueType::Multicast, &config(&["a"], 0));
        let sub = state.subscribers.get_mut("a").unwrap();
        sub.status = Status::Reserved;
        sub.rid = "r1".into();
        sub.due = 42;
        let json: serde_json::Value = serde_json::to_value(&state).unwrap();
        let a = &json["subscribers"]["a"];
        assert_eq!(
            (&a["status"], &a["rid"], &a["due"]),
            (&"reserved".into(), &"r1".into(), &42.into())
        );
        state.subscribers.get_mut("a").unwrap().status = Status::Deleted;
        let json: serde_json::Value = serde_json::to_value(&state).unwrap();
        assert_eq!(json["subscribers"]["a"]["status"], "deleted");
    }

    fn config(names: &[&str], retries: u32) -> PushConfig {
        PushConfig {
            subscribers: names
                .iter()
                .map(|n| Subscriber {
                    name: n.to_string(),
                    url: format!("http://h/{n}"),
                    ..Default::default()
                })
                .collect(),
            retries,
            retries_delay: 10,
            error_queue: String::new(),
            backoff: Backoff::Fixed,
            signing_secret: None,
            timeout: 0,
        }
    }

    const TIMING: Timing = Timing {
        ack_timeout: Duration::from_secs(60),
    };

    fn failed() -> Outcome {
        Outcome::Failed {
            code: 500,
            msg: "boom".into(),
        }
    }

    #[test]
    fn multicast_retries_only_the_failed_subscribers() {
        let push = config(&["a", "b"], 2);
        let mut state = PushState::new(QueueType::Multicast, &push);
        let targets = state.plan(&push, 0, 0);
        assert_eq!(targets.len(), 2);
        let next = state.record(
            &[
                ("a".into(), Outcome::Delivered { code: 200 }),
                ("b".into(), failed()),
            ],
            &push,
            0,
            &TIMING,
            "r",
        );
        assert_eq!(next, Next::Wait(Duration::from_secs(10)));
        assert!(
            state.plan(&push, 5_000, 0).is_empty(),
            "not before retries_delay"
        );
        let again: Vec<String> = state
            .plan(&push, 10_000, 0)
            .into_iter()
            .map(|(key, _)| key)
            .collect();
        assert_eq!(again, ["b"]);
    }

    #[test]
    fn multicast_gives_up_after_retries_plus_one_tries() {
        let push = config(&["a"], 1);
        let mut state = PushState::new(QueueType::Multicast, &push);
        state.plan(&push, 0, 0);
        assert!(matches!(
            state.record(&[("a".into(), failed())], &push, 0, &TIMING, "r"),
            Next::Wait(_)
        ));
        state.plan(&push, 10_000, 0);
        let next = state.record(&[("a".into(), failed())], &push, 10_000, &TIMING, "r");
        let Next::Failed(states, names) = next else {
            panic!("{next:?}")
        };
        assert_eq!(names, ["a"]);
        assert_eq!((states[0].tries, states[0].code), (2, 500));
        assert_eq!(state.retries_remaining(&states[0]), 0);
    }

    #[test]
    fn multicast_subscribers_may_have_their_own_retries_and_delay() {
        let mut push = config(&["a", "b"], 3);
        push.subscribers[0].retries = Some(0);
        push.subscribers[1].retries_delay = Some(3);
        let mut state = PushState::new(QueueType::Multicast, &push);
        state.plan(&push, 0, 0);
        let next = state.record(
            &[("a".into(), failed()), ("b".into(), failed())],
            &push,
            0,
            &TIMING,
            "r",
        );
        assert_eq!(next, Next::Wait(Duration::from_secs(3)), "b's own delay");
        assert_eq!(
            state.subscribers["a"].status,
            Status::Error,
            "a had no retry"
        );
        assert_eq!(state.retries_remaining(&state.subscribers["b"]), 3);
        let again: Vec<String> = state
            .plan(&push, 3_000, 0)
            .into_iter()
            .map(|(key, _)| key)
            .collect();
        assert_eq!(again, ["b"]);
    }

    #[test]
    fn subscribers_sharing_a_name_keep_states_of_their_own() {
        let mut push = config(&["dup", "dup", "solo"], 0);
        push.subscribers[1].url = "http://second.test/".into();
        let keys: Vec<String> = push.keyed().into_iter().map(|(k, _)| k).collect();
        assert!(
            keys[0].starts_with("dup#") && keys[1].starts_with("dup#"),
            "{keys:?}"
        );
        assert_ne!(keys[0], keys[1]);
        assert_eq!(keys[2], "solo", "an unshared name is its own key");
        // Keys follow the subscriber, not its place in the list.
        let mut reordered = push.clone();
        reordered.subscribers.swap(0, 1);
        reordered.subscribers.remove(2);
        let again: Vec<String> = reordered.keyed().into_iter().map(|(k, _)| k).collect();
        assert_eq!(again, [keys[1].clone(), keys[0].clone()]);
        // Two with the same name and URL still get keys of their own.
        let twins = config(&["t", "t"], 0);
        let twin_keys: Vec<String> = twins.keyed().into_iter().map(|(k, _)| k).collect();
        assert_ne!(twin_keys[0], twin_keys[1]);

        let mut state = PushState::new(QueueType::Multicast, &push);
        let targets = state.plan(&push, 0, 0);
        assert_eq!(targets.len(), 3);
        assert_eq!(targets[1].1.url, "http://second.test/");
        let next = state.record(
            &[
                (keys[0].clone(), Outcome::Delivered { code: 200 }),
                (keys[1].clone(), failed()),
                ("solo".into(), Outcome::Delivered { code: 200 }),
            ],
            &push,
            0,
            &TIMING,
            "r",
        );
        // The second "dup" failed for good; it is reported by its name.
        let Next::Failed(_, names) = next else {
            panic!("{next:?}")
        };
        assert_eq!(names, ["dup"]);
        assert_eq!(state.subscribers[&keys[1]].name_or(&keys[1]), "dup");
        assert_eq!(state.subscribers[&keys[0]].status, Status::Deleted);
    }

    #[test]
    fn unicast_moves_on_to_the_next_subscriber_at_once() {
        let push = config(&["a", "b"], 0);
        let mut state = PushState::new(QueueType::Unicast, &push);
        let first = state.plan(&push, 0, 0);
        assert_eq!(first[0].0, "a");
        assert_eq!(
            state.record(&[("a".into(), failed())], &push, 0, &TIMING, "r"),
            Next::Wait(Duration::ZERO)
        );
        let second = state.plan(&push, 0, 0);
        assert_eq!(second[0].0, "b");
        assert_eq!(
            state.record(
                &[("b".into(), Outcome::Delivered { code: 200 })],
                &push,
                0,
                &TIMING,
                "r"
            ),
            Next::Done
        );
    }

    #[test]
    fn unicast_retries_whole_rounds_then_fails() {
        let push = config(&["a", "b"], 1);
        let mut state = PushState::new(QueueType::Unicast, &push);
        for (now, expect_wait) in [(0, false), (0, true), (10_000, false)] {
            let target = state.plan(&push, now, 0);
            let next = state.record(&[(target[0].0.clone(), failed())], &push, now, &TIMING, "r");
            if expect_wait {
                assert_eq!(
                    next,
                    Next::Wait(Duration::from_secs(10)),
                    "a failed round waits retries_delay"
                );
            }
        }
        let last = state.plan(&push, 10_000, 0);
        let next = state.record(
            &[(last[0].0.clone(), failed())],
            &push,
            10_000,
            &TIMING,
            "r",
        );
        assert!(matches!(next, Next::Failed(..)), "{next:?}");
    }

    #[test]
    fn a_202_waits_for_its_acknowledgement_and_counts_as_failed_when_none_comes() {
        let push = config(&["a"], 1);
        let mut state = PushState::new(QueueType::Multicast, &push);
        state.plan(&push, 0, 0);
        assert_eq!(
            state.record(&[("a".into(), Outcome::Accepted)], &push, 0, &TIMING, "r"),
            Next::Wait(Duration::from_secs(60))
        );
        assert!(state.plan(&push, 30_000, 0).is_empty());
        state.plan(&push, 60_000, 0);
        let a = &state.subscribers["a"];
        assert_eq!((a.status, a.tries, a.code), (Status::Retrying, 1, 202));
    }

    #[test]
    fn exponential_backoff_doubles_with_jitter_and_is_capped() {
        for retry in 1..=4u32 {
            let full = 10u64 << (retry - 1);
            let d = Backoff::Exponential.delay(10, retry).as_secs_f64();
            assert!(
                d >= full as f64 / 2.0 && d <= full as f64,
                "retry {retry}: {d}"
            );
        }
        assert!(Backoff::Exponential.delay(3600, 30) <= Duration::from_secs(86_400));
        assert_eq!(Backoff::Fixed.delay(10, 5), Duration::from_secs(10));
    }

    #[test]
    fn an_acknowledgement_with_the_given_reservation_id_completes_a_202() {
        let push = config(&["a"], 1);
        let mut state = PushState::new(QueueType::Multicast, &push);
        state.plan(&push, 0, 0);
        state.record(&[("a".into(), Outcome::Accepted)], &push, 0, &TIMING, "r");
        state.apply_acks(&BTreeMap::from([("a".to_string(), "wrong".to_string())]));
        assert_eq!(
            state.subscribers["a"].status,
            Status::Reserved,
            "a wrong id changes nothing"
        );
        state.apply_acks(&BTreeMap::from([("a".to_string(), "r".to_string())]));
        assert!(state.plan(&push, 1_000, 0).is_empty());
        assert_eq!(state.record(&[], &push, 1_000, &TIMING, "r2"), Next::Done);
    }

    #[test]
    fn a_removed_subscriber_is_no_longer_waited_for() {
        let push = config(&["a", "b"], 3);
        let mut state = PushState::new(QueueType::Multicast, &push);
        state.plan(&push, 0, 0);
        let answers = [
            ("a".into(), Outcome::Delivered { code: 200 }),
            ("b".into(), failed()),
        ];
        state.record(&answers, &push, 0, &TIMING, "r");
        let only_a = config(&["a"], 3);
        assert!(state.plan(&only_a, 1, 0).is_empty());
        assert_eq!(state.record(&[], &only_a, 1, &TIMING, "r"), Next::Done);
    }

    #[test]
    fn a_429_with_retry_after_waits_without_spending_a_retry() {
        let push = config(&["a"], 2);
        let mut state = PushState::new(QueueType::Multicast, &push);
        state.plan(&push, 0, 0);
        let busy = Outcome::Busy {
            code: 429,
            msg: "Too Many Requests".into(),
            retry_after: Duration::from_secs(2),
        };
        let next = state.record(&[("a".into(), busy)], &push, 0, &TIMING, "r");
        assert_eq!(next, Next::Wait(Duration::from_secs(2)));
        let a = &state.subscribers["a"];
        assert_eq!(
            (a.status, a.tries, a.waiting),
            (Status::Retrying, 0, Some(Waiting::RetryAfter))
        );
        assert_eq!(state.retries_remaining(a), 2, "no retry spent");
        assert!(state.plan(&push, 1_999, 0).is_empty());
        assert_eq!(state.plan(&push, 2_000, 0).len(), 1);
        let done = state.record(
            &[("a".into(), Outcome::Delivered { code: 200 })],
            &push,
            2_000,
            &TIMING,
            "r",
        );
        assert_eq!(done, Next::Done);
        assert_eq!(state.subscribers["a"].waiting, None);
    }

    #[test]
    fn a_503_with_retry_after_is_a_failed_try_that_waits_at_least_that_long() {
        let push = config(&["a"], 1);
        let mut state = PushState::new(QueueType::Multicast, &push);
        state.plan(&push, 0, 0);
        let busy = Outcome::Busy {
            code: 503,
            msg: "Service Unavailable".into(),
            retry_after: Duration::from_secs(30),
        };
        let next = state.record(&[("a".into(), busy)], &push, 0, &TIMING, "r");
        assert_eq!(
            next,
            Next::Wait(Duration::from_secs(30)),
            "longer than retries_delay"
        );
        assert_eq!(state.subscribers["a"].tries, 1);
    }

    #[test]
    fn a_held_subscriber_waits_for_its_turn_and_others_go_on() {
        let push = config(&["limited", "free"], 0);
        let mut state = PushState::new(QueueType::Multicast, &push);
        assert_eq!(state.plan(&push, 0, 0).len(), 2);
        state.hold(
            "limited",
            Duration::from_millis(50),
            Waiting::RateLimit,
            50,
            0,
        );
        let next = state.record(
            &[("free".into(), Outcome::Delivered { code: 200 })],
            &push,
            0,
            &TIMING,
            "r",
        );
        assert_eq!(next, Next::Wait(Duration::from_millis(50)));
        let limited = &state.subscribers["limited"];
        assert_eq!(
            (limited.status, limited.tries, limited.slot),
            (Status::Queued, 0, 50)
        );
        let again: Vec<String> = state
            .plan(&push, 50, 0)
            .into_iter()
            .map(|(k, _)| k)
            .collect();
        assert_eq!(again, ["limited"], "only the held one, once its slot comes");
    }

    #[test]
    fn a_unicast_message_held_for_its_subscriber_waits_for_it_without_spinning() {
        let push = config(&["a", "b"], 1);
        let mut state = PushState::new(QueueType::Unicast, &push);
        let first = state.plan(&push, 0, 0);
        assert_eq!(first[0].0, "a");
        state.hold("a", Duration::from_secs(3), Waiting::RateLimit, 3_000, 0);
        assert_eq!(
            state.next(0),
            Next::Wait(Duration::from_secs(3)),
            "not at once"
        );
        assert!(state.plan(&push, 1_000, 0).is_empty());
        assert_eq!(state.plan(&push, 3_000, 0)[0].0, "a");
    }

    #[test]
    fn a_failed_probe_spends_no_retry() {
        let push = config(&["a"], 0);
        let mut state = PushState::new(QueueType::Multicast, &push);
        state.plan(&push, 0, 0);
        let probe = Outcome::ProbeFailed {
            code: 500,
            msg: "boom".into(),
        };
        state.record(&[("a".into(), probe)], &push, 0, &TIMING, "r");
        state.hold("a", Duration::from_secs(2), Waiting::CircuitOpen, 0, 0);
        let a = &state.subscribers["a"];
        assert_eq!((a.status, a.tries, a.code), (Status::Retrying, 0, 500));
        assert_eq!(state.next(0), Next::Wait(Duration::from_secs(2)));
    }

    #[test]
    fn state_reads_back_from_json() {
        let push = config(&["a"], 3);
        let state = PushState::new(QueueType::Unicast, &push);
        let json = serde_json::to_string(&state).unwrap();
        assert!(json.contains("\"mode\":\"any\"") && json.contains("\"status\":\"queued\""));
        assert_eq!(serde_json::from_str::<PushState>(&json).unwrap(), state);
    }
}
