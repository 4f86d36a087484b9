//! Long polls: an operation that finds nothing tries again when the queue has news (a post or
//! release through any process wakes it, see `wake.rs`) or when something falls due.

use super::keys::QueueKeys;
use super::{Result, Store};
use std::time::Duration;
use tokio::time::Instant;

/// Longest a long poll sleeps without looking at the queue again. Posts and releases wake it at
/// once, and it knows when the next delayed message or reservation falls due; this only bounds
/// how long a wake-up lost on the way could delay it.
const RECHECK_INTERVAL: Duration = Duration::from_secs(10);

impl Store {
    /// Runs `attempt` until it finds something or `wait` is over. An attempt that finds nothing
    /// registers this process as a waiter (when given a wait) and tells how long until something
    /// falls due; a post through any process wakes the loop at once.
    pub(super) async fn long_poll<T, F, Fut>(
        &self,
        keys: &QueueKeys,
        wait: Duration,
        attempt: F,
    ) -> Result<Vec<T>>
    where
        F: Fn(Option<Duration>) -> Fut,
        Fut: Future<Output = Result<(Vec<T>, Option<Duration>)>>,
    {
        if wait.is_zero() {
            return Ok(attempt(None).await?.0);
        }
        let deadline = Instant::now() + wait;
        let notify = self.0.wakeups.watch(keys.tag());
        loop {
            // Armed before looking, so a post between the look and the sleep still wakes us.
            let notified = notify.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            let left = deadline.saturating_duration_since(Instant::now());
            let poll = (!left.is_zero()).then_some(left);
            let (found, next_due) = attempt(poll).await?;
            if !found.is_empty() || left.is_zero() {
                return Ok(found);
            }
            let mut nap = left.min(RECHECK_INTERVAL);
            if let Some(due) = next_due {
                nap = nap.min(due.max(Duration::from_millis(1)));
            }
            tokio::select! {
                _ = &mut notified => {}
                _ = tokio::time::sleep(nap) => {}
            }
        }
    }

    /// What a long-poll attempt passes its script: this process's waiter id and the wait in ms,
    /// or two empty values when the attempt does not wait.
    pub(super) fn waiter(&self, wait: Option<Duration>) -> (&str, String) {
        match wait {
            Some(wait) => (self.0.process_id.as_str(), wait.as_millis().to_string()),
            None => ("", String::new()),
        }
    }
}
