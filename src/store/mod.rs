//! The Redis store: one function per queue operation, each one Lua script, so every state
//! change of a message is atomic and O(log n) in the size of the queue.
//!
//! * `ops/`: the operations, each a Rust file beside its script (`ops/post.rs`, `ops/post.lua`):
//!   arguments, reply and statuses in one place.
//! * `keys`: the key layout; a queue's keys are declared once, for Rust and Lua.
//! * `status`: the statuses scripts answer with, declared once, for Rust and Lua.
//! * `script`: loading a script (the generated header, `prelude.lua`, the operation's file)
//!   and the one call path every script takes.
//! * `settings`: creating and changing queues, and who manages them.
//! * `listing`: the per-project index of queue names, and the set of push queues.
//! * `gauges`: depth, reservations and oldest age of a queue, for metrics.
//! * `answers`, `push_state`: per-subscriber counts of push answers, and reading a message's
//!   push state (plain reads, no script).
//! * `coalesce`: concurrent calls of one operation on one queue sharing a script call.
//! * `long_poll`, `wake`: waiting for news on a queue, across processes.
//! * `sweep`: background work (redrives, alert messages) a dead process left, taken over.
//! * `connection`, `reply`, `error`: one Redis or a cluster, script replies, errors.

mod answers;
mod coalesce;
mod connection;
mod error;
mod gauges;
pub mod keys;
mod listing;
mod long_poll;
mod ops;
mod push_state;
mod reply;
mod script;
mod sentinel;
mod settings;
mod status;
mod sweep;
mod wake;

pub use answers::{AnswerCounts, Answered};
pub use connection::{Durability, RedisTarget};
pub use error::{Result, StoreError};
pub use ops::history::{MINUTES_KEPT, Minute, minute_now};
pub use ops::post::IdempotencyKey;
pub use ops::push_claim::Claimed;
pub use ops::push_gate::{Admission, Change, Entry, Settled, Standing, Verdict};
pub use ops::push_report::{Report, RoundReport};
pub use sentinel::SentinelSpec;

use coalesce::LanesOf;
use connection::Connection;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;
use wake::Wakeups;

/// A fresh random id: 128 bits, as 32 hex digits.
fn random_id() -> String {
    uuid::Uuid::new_v4().simple().to_string()
}

/// A handle on the store; cheap to clone (one reference count), shared by every request of a
/// process.
#[derive(Clone)]
pub struct Store(Arc<Shared>);

struct Shared {
    conn: Connection,
    /// How many replicas must have a change before it is answered.
    durability: Durability,
    wakeups: Arc<Wakeups>,
    subscribed: watch::Receiver<bool>,
    /// What a long poll passes to the reserve and claim scripts (any value but '' means a
    /// long poll).
    process_id: String,
    /// Calls waiting to share a script call, per operation.
    batches: Batches,
    /// Work this process runs in the background (moving a queue's dead letters, sending its
    /// alert messages), by name: one of each at a time.
    /// (Whether to run it again when it ends.)
    background: std::sync::Mutex<std::collections::HashMap<String, bool>>,
    /// What this process did to each queue lately, for the queues' history.
    activity: ops::history::Tally,
}

#[derive(Default)]
struct Batches {
    post: LanesOf<ops::post::Post>,
    reserve: LanesOf<ops::reserve::Reserve>,
    delete: LanesOf<ops::delete::Delete>,
    touch: LanesOf<ops::touch::Touching>,
    release: LanesOf<ops::release::Releasing>,
}

impl Store {
    /// Connects to Redis and starts the long-poll subscription in the background.
    pub async fn connect(target: &RedisTarget) -> Result<Self> {
        // `rediss://` connections (here and in the long-poll subscription) need rustls' provider.
        crate::tls::install_crypto_provider();
        let conn = Connection::open(target).await?;
        let wakeups = Arc::new(Wakeups::default());
        let (tx, subscribed) = watch::channel(false);
        tokio::spawn(wake::listen(target.clone(), wakeups.clone(), tx));
        Ok(Store(Arc::new(Shared {
            conn,
            durability: target.durability,
            wakeups,
            subscribed,
            process_id: random_id(),
            batches: Batches::default(),
            background: Default::default(),
            activity: Default::default(),
        })))
    }

    /// Waits (up to `timeout`) until long-poll wake-ups are subscribed; true when they are.
    pub async fn wait_subscribed(&self, timeout: Duration) -> bool {
        let mut rx = self.0.subscribed.clone();
        tokio::time::timeout(timeout, rx.wait_for(|up| *up))
            .await
            .is_ok_and(|r| r.is_ok())
    }

    /// True when Redis answers. Asks twice: the first call after Redis came back may only find
    /// the old connection broken (the connection manager then reconnects).
    pub async fn ping(&self) -> bool {
        for _ in 0..2 {
            let mut conn = self.connection();
            if redis::cmd("PING")
                .query_async::<String>(&mut conn)
                .await
                .is_ok()
            {
                return true;
            }
        }
        false
    }

    /// Runs `work()` in the background unless this process runs the work named `what` already;
    /// then that run does it once more when it ends (it may have looked too early). Work that
    /// fails is left for the next call that needs it, or the sweep (`sweep.rs`), to start again.
    fn in_background<W, F>(&self, what: String, work: W)
    where
        W: Fn() -> F + Send + 'static,
        F: std::future::Future<Output = Result<u64>> + Send + 'static,
    {
        type Running = std::collections::HashMap<String, bool>;
        fn lock(store: &Store) -> std::sync::MutexGuard<'_, Running> {
            store.0.background.lock().unwrap_or_else(|e| e.into_inner())
        }
        {
            let mut running = lock(self);
            if let Some(again) = running.get_mut(&what) {
                *again = true;
                return;
            }
            running.insert(what.clone(), false);
        }
        let store = self.clone();
        tokio::spawn(async move {
            loop {
                if let Err(err) = work().await {
                    tracing::warn!(%err, "{what} failed; it is tried again later");
                }
                let mut running = lock(&store);
                if running.get(&what) == Some(&true) {
                    running.insert(what.clone(), false);
                } else {
                    running.remove(&what);
                    return;
                }
            }
        });
    }

    /// A connection for one call (a cheap clone of the shared, multiplexed one).
    fn connection(&self) -> Connection {
        self.0.conn.clone()
    }
}
