//! Group commit: concurrent calls of one operation on one queue share a script call. A call that
//! finds none in flight on its queue goes out at once, alone; calls that arrive meanwhile wait
//! for that round trip and then go out together, as one script call whose answer is split back
//! among them in arrival order. There is no timer: a batch is whatever arrived during the
//! previous round trip, so a lone request waits for nothing, and under load the script calls
//! (and their fixed cost in Redis) are shared by many requests.

use super::{Result, Store, StoreError};
use crate::model::MAX_BATCH;
use std::collections::HashMap;
use std::sync::Mutex;
use tokio::sync::oneshot;

/// An operation whose calls on one queue can share a script call.
pub(super) trait Batched: Copy + Send + Sync + 'static {
    type Request: Send + 'static;
    type Answer: Send + 'static;

    /// How much of a batch a request takes: its messages. A batch holds at most `MAX_BATCH`
    /// (a request alone may be that large), which keeps every script call as small as one
    /// request's can be.
    fn weight(request: &Self::Request) -> usize;

    /// Where this operation's waiting calls are kept.
    fn lanes(store: &Store) -> &Lanes<Self::Request, Self::Answer>;

    /// Runs a batch as one script call: an answer per request, in order, each on its own (a
    /// request that fails does not fail the others); `Err` when the call as a whole failed.
    fn run(
        self,
        store: &Store,
        project: &str,
        queue: &str,
        batch: Vec<Self::Request>,
    ) -> impl Future<Output = Result<Vec<Result<Self::Answer>>>> + Send;
}

/// The lanes of operation `B`.
pub(super) type LanesOf<B> = Lanes<<B as Batched>::Request, <B as Batched>::Answer>;

type Waiting<R, A> = Vec<(R, oneshot::Sender<Result<A>>)>;

/// Calls waiting, per queue. A queue is present while a batch of it is in flight.
pub(super) struct Lanes<R, A>(Mutex<HashMap<(String, String), Waiting<R, A>>>);

impl<R, A> Default for Lanes<R, A> {
    fn default() -> Self {
        Lanes(Mutex::default())
    }
}

impl<R, A> Lanes<R, A> {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<(String, String), Waiting<R, A>>> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The calls waiting on a queue, from the first, as many as one batch holds; when none
    /// waits, the queue's lane closes (the next call goes out at once).
    fn take(&self, queue: &(String, String), weight: fn(&R) -> usize) -> Waiting<R, A> {
        let mut lanes = self.lock();
        let Some(waiting) = lanes.get_mut(queue) else {
            return Vec::new();
        };
        let mut total = 0;
        let fits = waiting
            .iter()
            .take_while(|(request, _)| {
                total += weight(request);
                total <= MAX_BATCH
            })
            .count()
            .max(1);
        let batch: Waiting<R, A> = waiting.drain(..fits.min(waiting.len())).collect();
        if batch.is_empty() {
            lanes.remove(queue);
        }
        batch
    }
}

/// Runs `request` of operation `op` on a queue, alone or in a batch with the calls that
/// arrived while another was in flight.
pub(super) async fn call<B: Batched>(
    op: B,
    store: &Store,
    project: &str,
    queue: &str,
    request: B::Request,
) -> Result<B::Answer> {
    let key = (project.to_string(), queue.to_string());
    // Join the batch that waits for the call in flight, or go out alone when none is.
    let joined = {
        let mut lanes = B::lanes(store).lock();
        match lanes.get_mut(&key) {
            Some(waiting) => {
                let (tx, rx) = oneshot::channel();
                waiting.push((request, tx));
                Err(rx)
            }
            None => {
                lanes.insert(key.clone(), Vec::new());
                Ok(request)
            }
        }
    };
    let request = match joined {
        Ok(request) => request,
        Err(answer) => {
            return answer.await.unwrap_or_else(|_| {
                Err(StoreError::BadReply(
                    "a batched call ended without an answer".into(),
                ))
            });
        }
    };
    // Alone: go out now. Whoever arrives meanwhile goes in the next batch, which a task of
    // its own drives, so this call answers as soon as its own round trip is over; should
    // this call be dropped halfway, the guard still starts that task.
    let next = NextBatch {
        op,
        store,
        key: Some(key),
    };
    let mut answers = op.run(store, project, queue, vec![request]).await?;
    drop(next);
    answers.pop().unwrap_or_else(|| {
        Err(StoreError::BadReply(
            "a batched call answered nothing".into(),
        ))
    })
}

/// Starts the driver of the queue's next batch when dropped.
struct NextBatch<'a, B: Batched> {
    op: B,
    store: &'a Store,
    key: Option<(String, String)>,
}

impl<B: Batched> Drop for NextBatch<'_, B> {
    fn drop(&mut self) {
        let Some(key) = self.key.take() else { return };
        let waiting = B::lanes(self.store).take(&key, B::weight);
        if !waiting.is_empty() {
            tokio::spawn(drive(self.op, self.store.clone(), key, waiting));
        }
    }
}

/// Runs batch after batch of a queue until no call waits.
async fn drive<B: Batched>(
    op: B,
    store: Store,
    key: (String, String),
    mut waiting: Waiting<B::Request, B::Answer>,
) {
    while !waiting.is_empty() {
        let (requests, answers): (Vec<_>, Vec<_>) = waiting.into_iter().unzip();
        match op.run(&store, &key.0, &key.1, requests).await {
            Ok(results) => {
                for (answer, result) in answers.into_iter().zip(results) {
                    let _ = answer.send(result);
                }
            }
            Err(err) => {
                for answer in answers {
                    let _ = answer.send(Err(err.clone()));
                }
            }
        }
        waiting = B::lanes(&store).take(&key, B::weight);
    }
}
