//! Recording the outcomes of push rounds. Rounds that end while a recording is under way wait
//! for it and are then recorded together, one script call per queue: under load, many rounds
//! share a call; a lone round is recorded at once.

use crate::store::{RoundReport, Store};
use std::collections::HashMap;
use tokio::sync::{mpsc, oneshot};

/// Most rounds recorded by one call.
const MAX_BATCH: usize = 64;

/// For each round: recorded as asked, or not (see `Store::report_push`), or why it failed.
type Answer = oneshot::Sender<Result<bool, String>>;

struct Pending {
    project: String,
    queue: String,
    round: RoundReport,
    answer: Answer,
}

/// A handle on the task that records rounds; the task ends with the last handle.
#[derive(Clone)]
pub struct Reports {
    pending: mpsc::UnboundedSender<Pending>,
}

impl Reports {
    /// Starts the recording task (on the current Tokio runtime).
    pub fn start(store: Store) -> Self {
        let (pending, queued) = mpsc::unbounded_channel();
        tokio::spawn(record_all(store, queued));
        Reports { pending }
    }

    /// Records a round's outcome; whether it was recorded as asked.
    pub async fn record(
        &self,
        project: &str,
        queue: &str,
        round: RoundReport,
    ) -> Result<bool, String> {
        let (answer, answered) = oneshot::channel();
        let pending = Pending {
            project: project.to_string(),
            queue: queue.to_string(),
            round,
            answer,
        };
        self.pending
            .send(pending)
            .map_err(|_| "the push reports task has stopped".to_string())?;
        answered
            .await
            .map_err(|_| "the push reports task has stopped".to_string())?
    }
}

async fn record_all(store: Store, mut queued: mpsc::UnboundedReceiver<Pending>) {
    while let Some(first) = queued.recv().await {
        let mut by_queue: HashMap<(String, String), Vec<Pending>> = HashMap::new();
        let mut taken = 0;
        let mut next = Some(first);
        while let Some(pending) = next {
            taken += 1;
            by_queue
                .entry((pending.project.clone(), pending.queue.clone()))
                .or_default()
                .push(pending);
            next = if taken < MAX_BATCH {
                queued.try_recv().ok()
            } else {
                None
            };
        }
        let calls = by_queue.into_iter().map(|((project, queue), batch)| {
            let store = &store;
            async move {
                let (rounds, answers): (Vec<RoundReport>, Vec<Answer>) =
                    batch.into_iter().map(|p| (p.round, p.answer)).unzip();
                match store.report_push(&project, &queue, &rounds).await {
                    Ok(recorded) => {
                        for (answer, recorded) in answers.into_iter().zip(recorded) {
                            let _ = answer.send(Ok(recorded));
                        }
                    }
                    Err(err) => {
                        for answer in answers {
                            let _ = answer.send(Err(err.to_string()));
                        }
                    }
                }
            }
        });
        futures_util::future::join_all(calls).await;
    }
}
