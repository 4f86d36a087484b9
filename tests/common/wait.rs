//! Waiting on conditions instead of sleeping: until something holds, and through a quiet period
//! in which nothing more may happen.

use std::time::{Duration, Instant};

/// Polls `check` every 20 ms until it holds or `limit` passes; returns whether it held.
pub async fn eventually<F, Fut>(limit: Duration, mut check: F) -> bool
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let deadline = Instant::now() + limit;
    loop {
        if check().await {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// A quiet period: polls `still` every 20 ms for `period`, and ends early the first time it no
/// longer holds. For "exactly once" and "not again" checks: wait until the thing happened,
/// then through `quiet` that nothing more happens, then assert what is expected (which fails,
/// with the actual values, when the quiet period was broken).
pub async fn quiet<F, Fut>(period: Duration, mut still: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let _broken = eventually(period, || {
        let holds = still();
        async move { !holds.await }
    })
    .await;
}
