//! Wake-ups for long polls. The post and release scripts publish on a queue's wake channel when
//! a long poll waits on it (in any process); each process keeps one pattern subscription and
//! fans the news out to its own waiters.

use super::connection::RedisTarget;
use super::keys::{WAKE_PATTERN, tag_of_wake_channel};
use futures_util::StreamExt;
use std::collections::HashMap;
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;
use tokio::sync::{Notify, watch};

/// Pause between attempts to (re)subscribe after the subscription connection failed.
const RESUBSCRIBE_DELAY: Duration = Duration::from_millis(500);
/// With Sentinel, how often to check that the node subscribed to is still the primary (one
/// cut off from its replicas keeps the subscription up but hears no more posts).
const PRIMARY_CHECK_EVERY: Duration = Duration::from_secs(2);

/// A wake-up for this many messages or more wakes every waiter of the queue; fewer wake one
/// waiter each, so a single post does not stampede a crowd of waiters.
const WAKE_ALL_FROM: usize = 16;

#[derive(Default)]
pub struct Wakeups {
    queues: Mutex<Watched>,
}

#[derive(Default)]
struct Watched {
    by_queue: HashMap<String, Weak<Notify>>,
    /// Size at which the map is next swept of queues nobody waits on.
    sweep_at: usize,
}

impl Wakeups {
    /// The notifier of one queue; it lives as long as someone holds it.
    pub fn watch(&self, tag: &str) -> Arc<Notify> {
        let mut watched = self.queues.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(notify) = watched.by_queue.get(tag).and_then(Weak::upgrade) {
            return notify;
        }
        // Forget queues nobody waits on any more, whenever the map has doubled since the last
        // sweep: amortized O(1) per new queue, and the map stays within twice what is watched.
        if watched.by_queue.len() >= watched.sweep_at {
            watched.by_queue.retain(|_, weak| weak.strong_count() > 0);
            watched.sweep_at = (watched.by_queue.len() * 2).max(64);
        }
        let notify = Arc::new(Notify::new());
        watched
            .by_queue
            .insert(tag.to_string(), Arc::downgrade(&notify));
        notify
    }

    /// `count` messages became ready on the queue.
    fn wake(&self, tag: &str, count: usize) {
        let watched = self.queues.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(notify) = watched.by_queue.get(tag).and_then(Weak::upgrade) {
            if count >= WAKE_ALL_FROM {
                notify.notify_waiters();
            } else {
                // A woken waiter that gives up without looking passes its turn on (tokio's
                // Notified does so when dropped), so no wake-up is lost.
                for _ in 0..count {
                    notify.notify_one();
                }
            }
        }
    }

    /// After a gap in the subscription, every waiter looks again: it may have missed news.
    fn wake_all(&self) {
        let watched = self.queues.lock().unwrap_or_else(|e| e.into_inner());
        for notify in watched.by_queue.values().filter_map(Weak::upgrade) {
            notify.notify_waiters();
        }
    }
}

/// Keeps the pattern subscription up for the life of the process. `subscribed` turns true
/// each time the subscription is in place (and false while it is down).
pub async fn listen(target: RedisTarget, wakeups: Arc<Wakeups>, subscribed: watch::Sender<bool>) {
    loop {
        match subscribe(&target).await {
            Ok((mut pubsub, addr)) => {
                subscribed.send_replace(true);
                wakeups.wake_all();
                let mut messages = pubsub.on_message();
                let mut check = tokio::time::interval(PRIMARY_CHECK_EVERY);
                loop {
                    tokio::select! {
                        msg = messages.next() => {
                            let Some(msg) = msg else { break };
                            if let Some(tag) = tag_of_wake_channel(msg.get_channel_name()) {
                                let count = msg.get_payload::<usize>().unwrap_or(WAKE_ALL_FROM);
                                wakeups.wake(tag, count.max(1));
                            }
                        }
                        _ = check.tick(), if target.sentinel.is_some() => {
                            if target.subscription_client().await.is_ok_and(|(_, now)| now != addr) {
                                break;
                            }
                        }
                    }
                }
                tracing::warn!("long-poll subscription to Redis lost; reconnecting");
            }
            Err(err) => tracing::debug!(%err, "cannot subscribe to Redis yet"),
        }
        subscribed.send_replace(false);
        if subscribed.is_closed() {
            return;
        }
        tokio::time::sleep(RESUBSCRIBE_DELAY).await;
    }
}

/// A pattern subscription to the node `target` names, and that node's address.
async fn subscribe(target: &RedisTarget) -> redis::RedisResult<(redis::aio::PubSub, String)> {
    let (client, addr) = target.subscription_client().await?;
    let mut pubsub = client.get_async_pubsub().await?;
    pubsub.psubscribe(WAKE_PATTERN).await?;
    Ok((pubsub, addr))
}
