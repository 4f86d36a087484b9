//! Recording the outcomes of push delivery rounds (`push_report.lua`).

use super::push_claim::Claimed;
use crate::store::keys::QueueKeys;
use crate::store::ops::history::Used;
use crate::store::script::OpScript;
use crate::store::status::Status;
use crate::store::{Result, Store};
use std::time::Duration;

static SCRIPT: OpScript = OpScript::new("push_report.lua", include_str!("push_report.lua"));

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

impl Report {
    /// The script's action, the state, and the action's duration in the unit it takes.
    fn encode(&self) -> (&'static str, &str, String) {
        match self {
            Report::Wait { state, after } => ("wait", state, after.as_millis().to_string()),
            Report::Done { state, keep } => ("delete", state, keep.as_secs().to_string()),
            Report::Hold { state, hold } => ("hold", state, hold.as_millis().to_string()),
        }
    }
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

impl Store {
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
            .map(|round| keys.delivered(&round.id))
            .collect();
        let outcomes: Vec<_> = rounds.iter().map(|round| round.report.encode()).collect();
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
        let mut reply = self.run_with(&SCRIPT, &keys, &extra, &args).await?;
        reply.status()?.check("")?;
        let recorded: Vec<bool> = rounds
            .iter()
            .map(|round| match reply.status()? {
                // The claim ended, or the settings changed during the round.
                Status::WrongReservation | Status::Conflict => Ok(false),
                status => status.check(&round.id).map(|_| true),
            })
            .collect::<Result<_>>()?;
        // A message whose delivery is over leaves the queue: the history counts it deleted.
        let finished = rounds
            .iter()
            .zip(&recorded)
            .filter(|(round, recorded)| **recorded && matches!(round.report, Report::Done { .. }))
            .count();
        if finished > 0 {
            self.0
                .activity
                .add(project, name, Used::Deleted, finished as u64);
        }
        Ok(recorded)
    }
}
