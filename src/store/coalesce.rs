//! Group commit: concurrent calls of one operation on one queue share a script call. A call that
//! finds none in flight on its queue goes out at once, alone; calls that arrive meanwhile wait
//! for that round trip and then go out together, as one script call whose answer is split back
//! among them in arrival order. There is no timer: a batch is whatever arrived during the
//! previous round trip, so a lone request waits for nothing, and under load the script calls
//! (and their fixed cost in Redis) are shared by many requests.
//!
//! A call whose caller gave up (its request was dropped) before its batch went out is left out
//! of it, and when Redis is unreachable every call waiting on the queue fails at once, rather
//! than batch after batch.

use super::{Result, Store, StoreError};
use crate::model::MAX_BATCH;
use std::collections::HashMap;
use std::sync::Mutex;
use tokio::sync::oneshot;

/// Most bytes of message bodies in one batch (a request alone may be larger): Redis runs a
/// script to its end, so a smaller call holds up everyone else for less.
const MAX_BATCH_BYTES: usize = 1 << 20;

/// An operation whose calls on one queue can share a script call.
pub(super) trait Batched: Copy + Send + Sync + 'static {
    type Request: Send + 'static;
    type Answer: Send + 'static;

    /// How much of a batch a request takes: (messages, bytes of bodies). A batch holds at most
    /// `MAX_BATCH` messages and `MAX_BATCH_BYTES`, or one request however large.
    fn weight(request: &Self::Request) -> (usize, usize);

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
type QueueName = (String, String);

/// A queue's calls of one operation: how many batches are in flight, and the calls waiting.
struct Lane<R, A> {
    in_flight: usize,
    waiting: Waiting<R, A>,
}

/// The lanes of the queues that have a batch in flight.
pub(super) struct Lanes<R, A>(Mutex<HashMap<QueueName, Lane<R, A>>>);

impl<R, A> Default for Lanes<R, A> {
    fn default() -> Self {
        Lanes(Mutex::default())
    }
}

/// How much of a batch some requests take together.
fn total(requests: impl Iterator<Item = (usize, usize)>) -> (usize, usize) {
    requests.fold((0, 0), |(m, b), (rm, rb)| (m + rm, b + rb))
}

fn full((messages, bytes): (usize, usize)) -> bool {
    messages >= MAX_BATCH || bytes >= MAX_BATCH_BYTES
}

impl<R, A> Lanes<R, A> {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<QueueName, Lane<R, A>>> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl<R, A> Lane<R, A> {
    /// The next batch: the calls waiting, from the first, as many as one batch holds, leaving
    /// out those whose caller is gone. Counted in flight when not empty.
    fn next_batch(&mut self, weight: fn(&R) -> (usize, usize)) -> Waiting<R, A> {
        self.waiting.retain(|(_, answer)| !answer.is_closed());
        let (mut messages, mut bytes) = (0, 0);
        let fits = self
            .waiting
            .iter()
            .take_while(|(request, _)| {
                let (m, b) = weight(request);
                messages += m;
                bytes += b;
                messages <= MAX_BATCH && bytes <= MAX_BATCH_BYTES
            })
            .count()
            .max(1)
            .min(self.waiting.len());
        let batch: Waiting<R, A> = self.waiting.drain(..fits).collect();
        if !batch.is_empty() {
            self.in_flight += 1;
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
    let first = |answers: Vec<Result<B::Answer>>| {
        answers.into_iter().next().unwrap_or_else(|| {
            Err(StoreError::BadReply(
                "a batched call answered nothing".into(),
            ))
        })
    };
    let (messages, bytes) = B::weight(&request);
    if messages * 2 > MAX_BATCH || bytes * 2 > MAX_BATCH_BYTES {
        // A batch by itself: waiting would only hold it up behind the call in flight.
        return first(op.run(store, project, queue, vec![request]).await?);
    }
    let key = (project.to_string(), queue.to_string());
    // Join the calls waiting for the batch in flight, or go out alone when none is. Waiting
    // calls that fill a batch go out at once, beside the batch in flight.
    let joined = {
        let mut lanes = B::lanes(store).lock();
        match lanes.get_mut(&key) {
            Some(lane) => {
                let (tx, rx) = oneshot::channel();
                lane.waiting.push((request, tx));
                let ready = full(total(lane.waiting.iter().map(|(r, _)| B::weight(r))))
                    .then(|| lane.next_batch(B::weight));
                Err((rx, ready))
            }
            None => {
                let lane = Lane {
                    in_flight: 1,
                    waiting: Vec::new(),
                };
                lanes.insert(key.clone(), lane);
                Ok(request)
            }
        }
    };
    let request = match joined {
        Ok(request) => request,
        Err((answer, ready)) => {
            if let Some(batch) = ready {
                let relay = Relay {
                    op,
                    store: store.clone(),
                    key,
                };
                tokio::spawn(run_batch(relay, batch));
            }
            return answer.await.unwrap_or_else(|_| {
                Err(StoreError::BadReply(
                    "a batched call ended without an answer".into(),
                ))
            });
        }
    };
    // Alone: go out now. Whoever arrives meanwhile goes in the next batch, which a task of its
    // own runs, so this call answers as soon as its own round trip is over. The relay starts
    // that task however this call ends (an error, or dropped halfway).
    let relay = Relay {
        op,
        store: store.clone(),
        key,
    };
    let answers = op.run(store, project, queue, vec![request]).await;
    relay.after(&answers);
    first(answers?)
}

/// Ends a batch in flight, however it ends (it answered, failed, panicked, or its task was
/// dropped), and hands the queue on to the calls waiting.
struct Relay<B: Batched> {
    op: B,
    store: Store,
    key: QueueName,
}

impl<B: Batched> Relay<B> {
    /// When the call failed because Redis is unreachable, fails every call waiting on the
    /// queue now, rather than each after its own wait for Redis.
    fn after<T>(&self, answers: &Result<T>) {
        if let Err(err @ StoreError::Unavailable(_)) = answers {
            let waiting = B::lanes(&self.store)
                .lock()
                .get_mut(&self.key)
                .map(|lane| std::mem::take(&mut lane.waiting))
                .unwrap_or_default();
            fail_all(waiting.into_iter().map(|(_, answer)| answer), err);
        }
    }
}

impl<B: Batched> Drop for Relay<B> {
    fn drop(&mut self) {
        let batch = {
            let mut lanes = B::lanes(&self.store).lock();
            let Some(lane) = lanes.get_mut(&self.key) else {
                return;
            };
            lane.in_flight -= 1;
            let batch = lane.next_batch(B::weight);
            if lane.in_flight == 0 {
                lanes.remove(&self.key);
            }
            batch
        };
        if batch.is_empty() {
            return;
        }
        let next = Relay {
            op: self.op,
            store: self.store.clone(),
            key: self.key.clone(),
        };
        // Outside a runtime (the process is ending) the waiting calls just get no answer.
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            runtime.spawn(run_batch(next, batch));
        }
    }
}

/// Runs one batch of a queue and answers each of its calls; the relay then hands the queue on.
async fn run_batch<B: Batched>(relay: Relay<B>, batch: Waiting<B::Request, B::Answer>) {
    let (requests, answers): (Vec<_>, Vec<_>) = batch.into_iter().unzip();
    let (project, queue) = &relay.key;
    let results = relay.op.run(&relay.store, project, queue, requests).await;
    relay.after(&results);
    match results {
        Ok(results) => {
            for (answer, result) in answers.into_iter().zip(results) {
                let _ = answer.send(result);
            }
        }
        Err(err) => fail_all(answers, &err),
    }
}

/// Answers each of `answers` with a copy of `err` (the error of the call they all shared).
fn fail_all<A>(answers: impl IntoIterator<Item = oneshot::Sender<Result<A>>>, err: &StoreError) {
    for answer in answers {
        let _ = answer.send(Err(err.clone()));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::RedisTarget;
    use std::sync::LazyLock;
    use std::sync::atomic::{AtomicBool, Ordering};
    use tokio::sync::Notify;

    /// A fake operation: answers each request (a number) with itself times ten and records
    /// each batch. A batch holding 1 waits until released; one holding 666 panics.
    #[derive(Clone, Copy)]
    struct Echo;

    static LANES: LazyLock<Lanes<u32, u32>> = LazyLock::new(Lanes::default);
    static BATCHES: Mutex<Vec<Vec<u32>>> = Mutex::new(Vec::new());
    static RELEASE: LazyLock<Notify> = LazyLock::new(Notify::new);
    static HELD: AtomicBool = AtomicBool::new(false);

    impl Batched for Echo {
        type Request = u32;
        type Answer = u32;

        /// 40 units, and a whole batch for the one that panics.
        fn weight(n: &u32) -> (usize, usize) {
            (if *n == 666 { MAX_BATCH } else { 40 }, 0)
        }

        fn lanes(_: &Store) -> &Lanes<u32, u32> {
            &LANES
        }

        async fn run(
            self,
            _: &Store,
            _: &str,
            _: &str,
            batch: Vec<u32>,
        ) -> Result<Vec<Result<u32>>> {
            if batch.contains(&1) {
                HELD.store(true, Ordering::SeqCst);
                RELEASE.notified().await;
            }
            BATCHES.lock().unwrap().push(batch.clone());
            assert!(!batch.contains(&666), "a batch that fails hard");
            Ok(batch.into_iter().map(|n| Ok(n * 10)).collect())
        }
    }

    fn key() -> QueueName {
        ("p".into(), "q".into())
    }

    fn waiting() -> usize {
        LANES
            .lock()
            .get(&key())
            .map_or(0, |lane| lane.waiting.len())
    }

    /// Puts `waiting` behind a batch in flight on the queue, then ends that batch.
    fn hand_on(store: &Store, waiting: Waiting<u32, u32>) {
        LANES.lock().insert(
            key(),
            Lane {
                in_flight: 1,
                waiting,
            },
        );
        drop(Relay {
            op: Echo,
            store: store.clone(),
            key: key(),
        });
    }

    async fn until(done: impl Fn() -> bool) {
        while !done() {
            tokio::task::yield_now().await;
        }
    }

    /// Every case here shares the fake's statics, so they run as one test.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn calls_that_wait_go_out_together_in_order_each_with_its_own_answer() {
        // Never reached: the fake operation does not call Redis.
        let store = Store::connect(&RedisTarget::parse("redis://127.0.0.1:1", false))
            .await
            .unwrap();
        let spawn = |n: u32| {
            let store = store.clone();
            tokio::spawn(async move { call(Echo, &store, "p", "q", n).await })
        };

        // The first call goes out alone and is held; two more wait behind it, in order.
        let first = spawn(1);
        until(|| HELD.load(Ordering::SeqCst)).await;
        let second = spawn(2);
        until(|| waiting() == 1).await;
        let third = spawn(3);
        until(|| waiting() == 2).await;
        // A third waiting call fills a batch (40 units each, 100 a batch): the two before it
        // go out at once, beside the held call, and it follows them.
        let fourth = spawn(4);
        assert_eq!(second.await.unwrap().unwrap(), 20);
        assert_eq!(third.await.unwrap().unwrap(), 30);
        assert_eq!(fourth.await.unwrap().unwrap(), 40);
        assert!(!first.is_finished(), "still held");
        RELEASE.notify_one();
        assert_eq!(first.await.unwrap().unwrap(), 10);
        assert_eq!(
            std::mem::take(&mut *BATCHES.lock().unwrap()),
            [vec![2, 3], vec![4], vec![1]]
        );
        assert!(
            LANES.lock().is_empty(),
            "the lane closes when nothing is in flight"
        );

        // A batch that panics leaves its own calls unanswered and hands the queue on.
        let (tx, doomed) = oneshot::channel();
        let (tx_next, next) = oneshot::channel();
        hand_on(&store, vec![(666, tx), (7, tx_next)]);
        assert!(
            doomed.await.is_err(),
            "the panicked batch's call gets no answer"
        );
        assert_eq!(
            next.await.unwrap().unwrap(),
            70,
            "the next batch still runs"
        );
        until(|| LANES.lock().is_empty()).await;
        BATCHES.lock().unwrap().clear();

        // A call whose caller is gone is left out of its batch.
        let (gone, dropped) = oneshot::channel();
        drop(dropped);
        let (tx, kept) = oneshot::channel();
        hand_on(&store, vec![(8, gone), (9, tx)]);
        assert_eq!(kept.await.unwrap().unwrap(), 90);
        assert_eq!(*BATCHES.lock().unwrap(), [vec![9]]);
    }
}
