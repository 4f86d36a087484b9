//! Posting messages (`post.lua`). Concurrent posts to one queue share a script call
//! (`coalesce.rs`); each is stored whole or refused on its own. A post may carry an
//! Idempotency-Key: repeated within its window, it stores nothing and answers the first
//! post's ids.

use crate::metrics::METRICS;
use crate::model::{DEFAULT_MESSAGE_EXPIRATION, DEFAULT_MESSAGE_TIMEOUT, NewMessage};
use crate::store::coalesce::{self, Batched, LanesOf};
use crate::store::keys::{QUEUE_NUMBERS, QueueKeys};
use crate::store::ops::history::Used;
use crate::store::reply::Reply;
use crate::store::script::OpScript;
use crate::store::status::Status;
use crate::store::{Result, Store, StoreError, random_id};
use redis::AsyncCommands;
use std::time::Duration;

static SCRIPT: OpScript = OpScript::new("post.lua", include_str!("post.lua"));

/// Where the queue's number goes among the script's arguments.
const NUMBER_ARG: usize = 4;

/// An Idempotency-Key and how long a post made with it is remembered.
#[derive(Debug, Clone)]
pub struct IdempotencyKey {
    pub key: String,
    pub window: Duration,
}

/// One post: its messages, and its Idempotency-Key if any.
pub struct Posting {
    messages: Vec<NewMessage>,
    key: Option<IdempotencyKey>,
}

impl Store {
    /// Posts messages, creating the queue with default settings when it does not exist.
    /// Returns the new message ids in the order given. (Messages given as a `Vec` are moved
    /// into the batch, not copied.)
    pub async fn post(
        &self,
        project: &str,
        name: &str,
        messages: impl Into<Vec<NewMessage>>,
    ) -> Result<Vec<String>> {
        self.post_with_key(project, name, messages, None).await
    }

    /// Posts messages like `post`; with a key, once: the same messages posted again with the
    /// same key within its window store nothing and get the first post's ids, other messages
    /// with that key `KeyReused`.
    pub async fn post_with_key(
        &self,
        project: &str,
        name: &str,
        messages: impl Into<Vec<NewMessage>>,
        key: Option<IdempotencyKey>,
    ) -> Result<Vec<String>> {
        let messages = messages.into();
        let count = messages.len() as u64;
        let posting = Posting { messages, key };
        let ids = coalesce::call(Post, self, project, name, posting).await?;
        METRICS.count("posted", count);
        METRICS.watch(project, name);
        self.0.activity.add(project, name, Used::Posted, count);
        Ok(ids)
    }
}

/// The post operation, for batching.
#[derive(Clone, Copy)]
pub struct Post;

impl Batched for Post {
    type Request = Posting;
    type Answer = Vec<String>;

    fn weight(request: &Self::Request) -> (usize, usize) {
        let bytes = request.messages.iter().map(|m| m.body.len()).sum();
        (request.messages.len(), bytes)
    }

    fn lanes(store: &Store) -> &LanesOf<Self> {
        &store.0.batches.post
    }

    async fn run(
        self,
        store: &Store,
        project: &str,
        name: &str,
        posts: Vec<Posting>,
    ) -> Result<Vec<Result<Vec<String>>>> {
        let keys = QueueKeys::new(project, name);
        let channel = keys.wake_channel();
        let queue_id = random_id()[..24].to_string();
        let timeout = DEFAULT_MESSAGE_TIMEOUT.to_string();
        let expiration = DEFAULT_MESSAGE_EXPIRATION.to_string();
        let count = posts.len().to_string();
        let sizes: Vec<String> = posts.iter().map(|p| p.messages.len().to_string()).collect();
        let windows: Vec<String> = posts
            .iter()
            .map(|p| {
                p.key
                    .as_ref()
                    .map_or(0, |k| k.window.as_millis())
                    .to_string()
            })
            .collect();
        let encoded: Vec<(String, String)> = posts
            .iter()
            .flat_map(|p| &p.messages)
            .map(|m| {
                let headers = if m.push_headers.is_empty() {
                    String::new()
                } else {
                    serde_json::to_string(&m.push_headers).unwrap_or_default()
                };
                (m.delay.to_string(), headers)
            })
            .collect();
        let number: String;
        let mut args: Vec<&[u8]> = vec![
            channel.as_bytes(),
            queue_id.as_bytes(),
            timeout.as_bytes(),
            expiration.as_bytes(),
            b"",
            count.as_bytes(),
        ];
        args.extend(sizes.iter().map(|s| s.as_bytes()));
        for (post, window) in posts.iter().zip(&windows) {
            let key = post.key.as_ref().map_or("", |k| k.key.as_str());
            args.extend([key.as_bytes(), window.as_bytes()]);
        }
        let messages = posts.iter().flat_map(|p| &p.messages);
        for (message, (delay, headers)) in messages.zip(&encoded) {
            args.extend([
                message.body.as_bytes(),
                delay.as_bytes(),
                headers.as_bytes(),
            ]);
        }
        let mut reply = store.run(&SCRIPT, &keys, &args).await?;
        let mut status = reply.status()?;
        // The queue's first post: number it, once, and post again with the number.
        if status == Status::NeedsNumber {
            let next: u64 = store.connection().incr(QUEUE_NUMBERS, 1).await?;
            number = next.to_string();
            args[NUMBER_ARG] = number.as_bytes();
            reply = store.run(&SCRIPT, &keys, &args).await?;
            status = reply.status()?;
        }
        status.check("")?;
        if reply.int()? == 1
            && let Err(err) = store.index_add(project, name).await
        {
            // The messages are stored: answer their ids. The queue is listed again the next
            // time its settings are written.
            tracing::warn!(%err, project, name, "a new queue could not be listed");
        }
        store.alerts_fired(project, name, reply.count()?);
        posts
            .iter()
            .map(|post| answer_of(&mut reply, post.messages.len()))
            .collect()
    }
}

/// One post's answer: its ids, or why it was refused.
fn answer_of(reply: &mut Reply, messages: usize) -> Result<Result<Vec<String>>> {
    let index = |reply: &mut Reply| -> Result<usize> {
        // Counted from 1 in the script.
        Ok(usize::try_from(reply.int()?).unwrap_or(1).saturating_sub(1))
    };
    Ok(match reply.status()? {
        Status::Ok => Ok((0..messages).map(|_| reply.text()).collect::<Result<_>>()?),
        Status::DelayTooLong => Err(StoreError::DelayTooLong {
            index: index(reply)?,
        }),
        Status::TooLarge => {
            let index = index(reply)?;
            let max = u64::try_from(reply.int()?).unwrap_or_default();
            Err(StoreError::MessageTooLarge { index, max })
        }
        Status::KeyReused => Err(StoreError::KeyReused),
        other => return Err(StoreError::BadReply(format!("post answered {other:?}"))),
    })
}
