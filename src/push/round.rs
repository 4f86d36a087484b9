//! One delivery round of a claimed message, as a value: decode its state (and the
//! acknowledgements recorded since the last round), plan whom to try now, deliver, take the
//! answers into the state, and turn what they mean into the report the store records.

use super::deliver::Courier;
use super::gate::{Gate, RoundGate};
use super::state::{Next, Outcome, PushState, Timing};
use crate::model::{PushConfig, QueueConfig};
use crate::settings::push_of;
use crate::store::{Claimed, Report, RoundReport};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// A round under way: the claimed message, the settings it runs with, and its state.
pub struct Round<'a> {
    pub project: &'a str,
    pub queue: &'a str,
    pub config: &'a QueueConfig,
    pub push: &'a PushConfig,
    pub message: Claimed,
    pub state: PushState,
    /// Subscribers whose failed probe keeps them paused, and for how long (see `gate`).
    paused: Vec<(String, Duration)>,
}

impl<'a> Round<'a> {
    /// Starts a round of `message` on a push queue's settings (`None` when they are not a
    /// push queue's). Unreadable state starts over; unreadable acknowledgements are ignored.
    pub fn begin(
        project: &'a str,
        queue: &'a str,
        config: &'a QueueConfig,
        message: Claimed,
    ) -> Option<Self> {
        let push = push_of(config)?;
        let id = message.id.as_str();
        let mut state = match message
            .state
            .as_deref()
            .map(serde_json::from_str::<PushState>)
        {
            Some(Ok(state)) => state,
            Some(Err(err)) => {
                tracing::warn!(%err, project, queue, id, "unreadable push state; starting over");
                PushState::new(config.queue_type, push)
            }
            None => PushState::new(config.queue_type, push),
        };
        if let Some(acks) = message.acks.as_deref() {
            match serde_json::from_str(acks) {
                Ok(acks) => state.apply_acks(&acks),
                Err(err) => tracing::warn!(%err, project, queue, id, "unreadable acknowledgements"),
            }
        }
        Some(Round {
            project,
            queue,
            config,
            push,
            message,
            state,
            paused: Vec::new(),
        })
    }

    /// Delivers to the subscribers due now that the gate lets through, all at once; their
    /// answers by subscriber key. `lease_for` is how long the round's claim lasts.
    pub async fn deliver(
        &mut self,
        courier: &Courier,
        gate: &Gate,
        lease_for: Duration,
    ) -> Vec<(String, Outcome)> {
        // Unicast starts each message at another subscriber, the same one on every round.
        let offset = self
            .message
            .id
            .bytes()
            .fold(0usize, |h, b| h.wrapping_mul(31).wrapping_add(b as usize));
        let now = now_ms();
        let targets = self.state.plan(self.push, now, offset);
        let round_gate = RoundGate {
            gate,
            store: &courier.store,
            project: self.project,
            queue: self.queue,
            lease: &self.message.reservation_id,
            lease_for,
        };
        let passes = round_gate.admit(targets, &mut self.state, now).await;
        let (project, queue, message, push) = (self.project, self.queue, &self.message, self.push);
        let mut answers = futures_util::future::join_all(passes.iter().map(|pass| async move {
            let outcome = courier
                .deliver(project, queue, message, &pass.key, &pass.to, push)
                .await;
            (pass.key.clone(), outcome)
        }))
        .await;
        self.paused = round_gate.settle(&passes, &mut answers).await;
        answers
    }

    /// Takes the answers into the state; what they mean for the message.
    pub fn take_answers(&mut self, answers: &[(String, Outcome)]) -> Next {
        let timing = Timing {
            ack_timeout: Duration::from_secs(self.config.message_timeout),
        };
        let now = now_ms();
        let next = self.state.record(
            answers,
            self.push,
            now,
            &timing,
            &self.message.reservation_id,
        );
        if self.paused.is_empty() {
            return next;
        }
        RoundGate::hold_paused(&mut self.state, &self.paused, now);
        self.state.next(now)
    }

    /// The state as stored.
    pub fn encoded_state(&self) -> String {
        serde_json::to_string(&self.state).unwrap_or_default()
    }

    /// The report that ends (or holds) this round's claim as `report` says.
    pub fn claim_report(&self, report: Report) -> RoundReport {
        RoundReport::new(&self.message, &self.config.revision, report)
    }
}
