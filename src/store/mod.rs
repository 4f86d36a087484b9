//! The Redis store: one function per queue operation, each one Lua script (see `lua/`), so every
//! state change of a message is atomic and O(log n) in the size of the queue.

mod connection;
pub mod keys;
mod push;
mod reply;
mod wake;

pub use push::{AnswerCounts, Answered, Claimed, Report, RoundReport};

pub use connection::RedisTarget;

use crate::metrics::METRICS;
use crate::model::{
    ChangedBy, DEFAULT_MESSAGE_EXPIRATION, DEFAULT_MESSAGE_TIMEOUT, DeleteRef, Message, NewMessage,
    QueueConfig, QueueInfo, QueueSettings, QueueType, ReserveRequest,
};
use crate::settings::Invalid;
use connection::Connection;
use keys::{DECLARED_QUEUES, PUSH_QUEUES, QUEUE_NUMBERS, QueueKeys, project_index};
use redis::{AsyncCommands, Script, Value};
use reply::Reply;
use std::sync::{Arc, LazyLock};
use std::time::Duration;
use tokio::sync::watch;
use tokio::time::Instant;
use wake::Wakeups;

/// Longest a long poll sleeps without looking at the queue again. Posts and releases wake it at
/// once, and it knows when the next delayed message or reservation falls due; this only bounds
/// how long a wake-up lost on the way could delay it.
const RECHECK_INTERVAL: Duration = Duration::from_secs(10);

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("Queue not found")]
    QueueNotFound,
    #[error("Message not found")]
    MessageNotFound { id: String },
    #[error("Message {id} is reserved: its reservation_id is required")]
    ReservationRequired { id: String },
    #[error("Reservation timed out or belongs to another holder")]
    WrongReservation { id: String },
    #[error(
        "messages[{index}] would expire before its delay is over: delay must be shorter than the queue's message_expiration"
    )]
    DelayTooLong { index: usize },
    #[error("messages[{index}] is larger than the queue's max_message_size of {max} bytes")]
    MessageTooLarge { index: usize, max: u64 },
    #[error("{0}")]
    Invalid(String),
    #[error("Subscriber not found")]
    SubscriberNotFound,
    #[error(
        "Queue is managed by the Kubernetes resource {by}: change its settings there (messages flow as usual)"
    )]
    Managed { by: String },
    #[error(
        "a queue of this name already exists, made over the REST API; a resource takes it over only when told to adopt it"
    )]
    NotAdopted,
    #[error("store unavailable: {0}")]
    Unavailable(redis::RedisError),
    #[error("store error: {0}")]
    Redis(redis::RedisError),
    #[error("unexpected reply from the store: {0}")]
    BadReply(String),
}

impl From<Invalid> for StoreError {
    fn from(err: Invalid) -> Self {
        StoreError::Invalid(err.0)
    }
}

impl From<redis::RedisError> for StoreError {
    /// Failures to reach Redis are worth retrying (503); any other error is a fault (500).
    fn from(err: redis::RedisError) -> Self {
        let error = Self::from_redis(err);
        let kind = if matches!(error, StoreError::Unavailable(_)) {
            "unavailable"
        } else {
            "error"
        };
        METRICS
            .store_errors
            .get_or_create(&crate::metrics::StoreErrorLabels { kind })
            .inc();
        error
    }
}

impl StoreError {
    fn from_redis(err: redis::RedisError) -> Self {
        let unreachable = err.is_io_error()
            || err.is_connection_dropped()
            || err.is_connection_refusal()
            || err.is_timeout()
            || err.is_cluster_error()
            || matches!(
                err.kind(),
                redis::ErrorKind::Server(
                    redis::ServerErrorKind::BusyLoading
                        | redis::ServerErrorKind::TryAgain
                        | redis::ServerErrorKind::ClusterDown
                        | redis::ServerErrorKind::MasterDown
                )
            );
        if unreachable {
            StoreError::Unavailable(err)
        } else {
            StoreError::Redis(err)
        }
    }
}

pub type Result<T, E = StoreError> = std::result::Result<T, E>;

/// Status of a script refused because another resource manages the queue; see `lua/prelude.lua`.
const MANAGED: i64 = 8;
/// Status of a post refused because a body is larger than the queue's max_message_size.
const TOO_LARGE: i64 = 9;
/// Status of a post to a queue that has no number yet, given none.
const NEEDS_NUMBER: i64 = 10;

/// Status codes the scripts answer with; see `lua/prelude.lua`.
fn check_status(status: i64, id: &str) -> Result<()> {
    let id = id.to_string();
    match status {
        0 => Ok(()),
        1 => Err(StoreError::QueueNotFound),
        2 => Err(StoreError::MessageNotFound { id }),
        3 => Err(StoreError::ReservationRequired { id }),
        4 => Err(StoreError::WrongReservation { id }),
        7 => Err(StoreError::SubscriberNotFound),
        other => Err(StoreError::BadReply(format!("unknown status {other}"))),
    }
}

struct Scripts {
    post: Script,
    reserve: Script,
    peek: Script,
    get: Script,
    delete: Script,
    delete_batch: Script,
    touch: Script,
    release: Script,
    clear: Script,
    delete_queue: Script,
    info: Script,
    apply: Script,
    push_claim: Script,
    push_report: Script,
    push_ack: Script,
}

static SCRIPTS: LazyLock<Scripts> = LazyLock::new(|| {
    let prelude = include_str!("lua/prelude.lua");
    let script = |body: &str| Script::new(&format!("{prelude}\n{body}"));
    Scripts {
        post: script(include_str!("lua/post.lua")),
        reserve: script(include_str!("lua/reserve.lua")),
        peek: script(include_str!("lua/peek.lua")),
        get: script(include_str!("lua/get.lua")),
        delete: script(include_str!("lua/delete.lua")),
        delete_batch: script(include_str!("lua/delete_batch.lua")),
        touch: script(include_str!("lua/touch.lua")),
        release: script(include_str!("lua/release.lua")),
        clear: script(include_str!("lua/clear.lua")),
        delete_queue: script(include_str!("lua/delete_queue.lua")),
        info: script(include_str!("lua/info.lua")),
        apply: script(include_str!("lua/apply.lua")),
        push_claim: script(include_str!("lua/push_claim.lua")),
        push_report: script(include_str!("lua/push_report.lua")),
        push_ack: script(include_str!("lua/push_ack.lua")),
    }
});

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
    wakeups: Arc<Wakeups>,
    subscribed: watch::Receiver<bool>,
    /// What a long poll passes to the reserve and claim scripts (any value but '' means a
    /// long poll).
    process_id: String,
}

impl Store {
    /// Connects to Redis and starts the long-poll subscription in the background.
    pub async fn connect(target: &RedisTarget) -> Result<Self> {
        let conn = Connection::open(target).await?;
        let wakeups = Arc::new(Wakeups::default());
        let (tx, subscribed) = watch::channel(false);
        tokio::spawn(wake::listen(target.clone(), wakeups.clone(), tx));
        Ok(Store(Arc::new(Shared {
            conn,
            wakeups,
            subscribed,
            process_id: random_id(),
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
            let mut conn = self.0.conn.clone();
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

    pub(crate) fn process_id(&self) -> &str {
        &self.0.process_id
    }

    async fn run(&self, script: &Script, keys: &QueueKeys, args: &[&[u8]]) -> Result<Reply> {
        self.run_with(script, keys, &[], args).await
    }

    /// Runs a script with the queue's keys, then `extra_keys` (of the queue's slot).
    async fn run_with(
        &self,
        script: &Script,
        keys: &QueueKeys,
        extra_keys: &[&str],
        args: &[&[u8]],
    ) -> Result<Reply> {
        let mut invocation = script.prepare_invoke();
        for key in keys.all() {
            invocation.key(key);
        }
        for key in extra_keys {
            invocation.key(*key);
        }
        for arg in args {
            invocation.arg(*arg);
        }
        let mut conn = self.0.conn.clone();
        let value: Value = invocation.invoke_async(&mut conn).await?;
        Reply::new(value)
    }

    /// Creates a queue or changes its settings: the one path from settings to the store, taken by
    /// the REST API, the controller and standalone mode. `create` false answers `QueueNotFound`
    /// for a queue that does not exist. Returns the queue as it now stands and whether it was
    /// created.
    pub async fn apply_queue(
        &self,
        project: &str,
        name: &str,
        settings: &QueueSettings,
        create: bool,
        by: ChangedBy<'_>,
    ) -> Result<(QueueInfo, bool)> {
        // REST paths check these; resources come from elsewhere and must be reachable too.
        crate::model::check_project(project).map_err(StoreError::Invalid)?;
        crate::model::check_queue_name(name).map_err(StoreError::Invalid)?;
        self.update_queue(project, name, create, by, |current| {
            Ok(crate::settings::apply(current, settings, name, by)?)
        })
        .await
    }

    /// Changes a queue's settings by a function of the current ones (`None`: no such queue). The
    /// change is applied only if nobody else changed the settings in between; otherwise the
    /// function runs again on the newer settings. A managed queue is changed only by its
    /// resource; a resource takes over a queue nobody manages.
    pub async fn update_queue<F>(
        &self,
        project: &str,
        name: &str,
        create: bool,
        by: ChangedBy<'_>,
        change: F,
    ) -> Result<(QueueInfo, bool)>
    where
        F: Fn(Option<&QueueConfig>) -> Result<QueueConfig>,
    {
        let keys = QueueKeys::new(project, name);
        for _ in 0..32 {
            let current = match self.queue_info(project, name).await {
                Ok(found) => Some(found),
                Err(StoreError::QueueNotFound) if create => None,
                Err(err) => return Err(err),
            };
            let manager = current
                .as_ref()
                .and_then(|info| info.config.managed_by.clone());
            match manager {
                Some(manager) if by.resource() != Some(manager.as_str()) => {
                    return Err(StoreError::Managed { by: manager });
                }
                // Taking over a queue set up over REST (and later perhaps deleting its
                // messages with the resource) must be asked for, unless the resource handed
                // it back itself.
                None if matches!(by, ChangedBy::Resource(r)
                if current.as_ref().is_some_and(|info| {
                    info.config.rest_configured
                        && info.config.released_by.as_deref() != Some(r)
                })) =>
                {
                    return Err(StoreError::NotAdopted);
                }
                _ => {}
            }
            let mut next = change(current.as_ref().map(|info| &info.config))?;
            match by {
                ChangedBy::Api => {
                    next.managed_by = None;
                    next.rest_configured = true;
                }
                ChangedBy::Release(resource) => {
                    next.managed_by = None;
                    next.rest_configured = true;
                    next.released_by = Some(resource.to_string());
                }
                ChangedBy::Resource(resource) | ChangedBy::Adopt(resource) => {
                    next.managed_by = Some(resource.to_string());
                    next.rest_configured = false;
                    next.released_by = None;
                }
            }
            if let Some(info) = current.as_ref().filter(|info| info.config == next) {
                // Nothing changes: keep the revision, so push rounds in flight stay final.
                self.index_add(project, name).await?;
                self.mark_push_queue(project, name, next.queue_type.is_push())
                    .await?;
                return Ok((info.clone(), false));
            }
            let queue_id = random_id()[..24].to_string();
            let revision = current
                .as_ref()
                .map(|info| info.config.revision.clone())
                .unwrap_or_default();
            let push = match &next.push {
                Some(push) => {
                    serde_json::to_string(push).map_err(|e| StoreError::BadReply(e.to_string()))?
                }
                None => String::new(),
            };
            let fields = [
                ("type", next.queue_type.as_str().to_string()),
                ("message_timeout", next.message_timeout.to_string()),
                ("message_expiration", next.message_expiration.to_string()),
                ("max_message_size", next.max_message_size.to_string()),
                ("managed_by", next.managed_by.clone().unwrap_or_default()),
                (
                    "rest",
                    if next.rest_configured { "1" } else { "" }.to_string(),
                ),
                ("released_by", next.released_by.clone().unwrap_or_default()),
            ];
            let mut args: Vec<&[u8]> =
                vec![queue_id.as_bytes(), revision.as_bytes(), push.as_bytes()];
            for (field, value) in &fields {
                args.push(field.as_bytes());
                args.push(value.as_bytes());
            }
            let mut reply = self.run(&SCRIPTS.apply, &keys, &args).await?;
            if reply.int()? == 6 {
                continue; // changed meanwhile: read again
            }
            let created = reply.int()? == 1;
            let info = reply.queue_info(project, name)?;
            // Also when it existed: this repairs a listing entry lost to a crash after creation.
            self.index_add(project, name).await?;
            self.mark_push_queue(project, name, info.config.queue_type.is_push())
                .await?;
            return Ok((info, created));
        }
        Err(StoreError::Unavailable(redis::RedisError::from((
            redis::ErrorKind::Io,
            "queue settings keep changing; try again",
        ))))
    }

    /// Keeps the set of push queues, which push workers watch, in line with a queue's type.
    async fn mark_push_queue(&self, project: &str, name: &str, push: bool) -> Result<()> {
        let mut conn = self.0.conn.clone();
        let member = format!("{project}/{name}");
        if push {
            let _: i64 = conn.sadd(PUSH_QUEUES, member).await?;
        } else {
            let _: i64 = conn.srem(PUSH_QUEUES, member).await?;
        }
        Ok(())
    }

    /// The queues standalone mode declared from files, as (project, queue, managing resource):
    /// a later run releases those whose manifest is gone.
    pub async fn declared_queues(&self) -> Result<Vec<(String, String, String)>> {
        let mut conn = self.0.conn.clone();
        let entries: Vec<(String, String)> = conn.hgetall(DECLARED_QUEUES).await?;
        Ok(entries
            .into_iter()
            .filter_map(|(field, manager)| {
                let (project, queue) = serde_json::from_str::<(String, String)>(&field).ok()?;
                Some((project, queue, manager))
            })
            .collect())
    }

    /// Records (`Some(manager)`) or forgets (`None`) a queue standalone mode declared.
    pub async fn note_declared(
        &self,
        project: &str,
        name: &str,
        manager: Option<&str>,
    ) -> Result<()> {
        let mut conn = self.0.conn.clone();
        let field = serde_json::json!([project, name]).to_string();
        let _: i64 = match manager {
            Some(manager) => conn.hset(DECLARED_QUEUES, field, manager).await?,
            None => conn.hdel(DECLARED_QUEUES, field).await?,
        };
        Ok(())
    }

    /// Every push queue as (project, queue).
    pub async fn push_queues(&self) -> Result<Vec<(String, String)>> {
        let mut conn = self.0.conn.clone();
        let members: Vec<String> = conn.smembers(PUSH_QUEUES).await?;
        Ok(members
            .into_iter()
            .filter_map(|m| {
                m.split_once('/')
                    .map(|(p, q)| (p.to_string(), q.to_string()))
            })
            .collect())
    }

    pub async fn queue_info(&self, project: &str, name: &str) -> Result<QueueInfo> {
        let keys = QueueKeys::new(project, name);
        let mut reply = self.run(&SCRIPTS.info, &keys, &[]).await?;
        check_status(reply.int()?, "")?;
        reply.queue_info(project, name)
    }

    /// Deletes a queue with its messages. A managed queue is deleted only by its resource.
    pub async fn delete_queue(&self, project: &str, name: &str, by: ChangedBy<'_>) -> Result<()> {
        let keys = QueueKeys::new(project, name);
        let manager = by.resource().unwrap_or("");
        let counts = keys::delivery_counts(project, name);
        let mut reply = self
            .run_with(
                &SCRIPTS.delete_queue,
                &keys,
                &[&counts],
                &[manager.as_bytes()],
            )
            .await?;
        let status = reply.int()?;
        if status == MANAGED {
            return Err(StoreError::Managed { by: reply.text()? });
        }
        check_status(status, "")?;
        self.mark_push_queue(project, name, false).await?;
        self.index_remove(project, name).await
    }

    /// Hands a managed queue back to REST clients, with its messages (a resource deleted with
    /// the `Retain` policy). Nothing happens when `resource` does not manage the queue, or it
    /// is gone.
    pub async fn release_queue(&self, project: &str, name: &str, resource: &str) -> Result<()> {
        let released = self
            .update_queue(
                project,
                name,
                false,
                ChangedBy::Release(resource),
                |current| Ok(current.cloned().unwrap_or_default()),
            )
            .await;
        match released {
            Ok(_) | Err(StoreError::QueueNotFound | StoreError::Managed { .. }) => Ok(()),
            Err(err) => Err(err),
        }
    }

    /// Drops a queue from its project's listing. The listing lives in another Redis slot than
    /// the queue, so this cannot be atomic with the queue's own change: every removal looks
    /// again afterwards and puts the name back if a post re-created the queue meanwhile. Each
    /// creation adds the name after creating, so an existing queue always ends up listed.
    async fn index_remove(&self, project: &str, name: &str) -> Result<()> {
        let mut conn = self.0.conn.clone();
        let _: i64 = conn.zrem(project_index(project), name).await?;
        if self.queue_exists(project, name).await? {
            self.index_add(project, name).await?;
        }
        Ok(())
    }

    async fn queue_exists(&self, project: &str, name: &str) -> Result<bool> {
        let mut conn = self.0.conn.clone();
        let keys = QueueKeys::new(project, name);
        Ok(conn.exists(keys.cfg()).await?)
    }

    /// Queue names of a project in byte order: at most `per_page`, all after `previous` and
    /// starting with `prefix`. O(log n + per_page).
    pub async fn list_queues(
        &self,
        project: &str,
        previous: Option<&str>,
        prefix: &str,
        per_page: usize,
    ) -> Result<Vec<String>> {
        let min: Vec<u8> = match previous {
            Some(prev) if prev.as_bytes() >= prefix.as_bytes() => [b"(", prev.as_bytes()].concat(),
            _ if prefix.is_empty() => b"-".to_vec(),
            _ => [b"[", prefix.as_bytes()].concat(),
        };
        // No UTF-8 text holds the byte 0xFF, so it closes the range of names with the prefix.
        let max: Vec<u8> = if prefix.is_empty() {
            b"+".to_vec()
        } else {
            [b"[", prefix.as_bytes(), &[0xff]].concat()
        };
        let mut listed = Vec::with_capacity(per_page);
        let mut min = min;
        loop {
            let mut conn = self.0.conn.clone();
            let names: Vec<String> = redis::cmd("ZRANGEBYLEX")
                .arg(project_index(project))
                .arg(&min)
                .arg(&max)
                .arg("LIMIT")
                .arg(0)
                .arg(per_page - listed.len())
                .query_async(&mut conn)
                .await?;
            let Some(last) = names.last() else {
                return Ok(listed);
            };
            min = [b"(", last.as_bytes()].concat();
            // A name can outlive its queue for a moment (see index_remove): skip and drop it.
            let exists = futures_util::future::try_join_all(
                names.iter().map(|name| self.queue_exists(project, name)),
            )
            .await?;
            for (name, exists) in names.into_iter().zip(exists) {
                if exists {
                    listed.push(name);
                } else {
                    self.index_remove(project, &name).await?;
                }
            }
            if listed.len() == per_page {
                return Ok(listed);
            }
        }
    }

    async fn index_add(&self, project: &str, name: &str) -> Result<()> {
        let mut conn = self.0.conn.clone();
        let _: i64 = conn.zadd(project_index(project), name, 0).await?;
        Ok(())
    }

    /// Posts messages, creating the queue with default settings when it does not exist.
    /// Returns the new message ids in the order given.
    pub async fn post(
        &self,
        project: &str,
        name: &str,
        messages: &[NewMessage],
    ) -> Result<Vec<String>> {
        let keys = QueueKeys::new(project, name);
        let channel = keys.wake_channel();
        let queue_id = random_id()[..24].to_string();
        let timeout = DEFAULT_MESSAGE_TIMEOUT.to_string();
        let expiration = DEFAULT_MESSAGE_EXPIRATION.to_string();
        let encoded: Vec<(String, String)> = messages
            .iter()
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
        ];
        for (message, (delay, headers)) in messages.iter().zip(&encoded) {
            args.extend([
                message.body.as_bytes(),
                delay.as_bytes(),
                headers.as_bytes(),
            ]);
        }
        let mut reply = self.run(&SCRIPTS.post, &keys, &args).await?;
        let mut status = reply.int()?;
        // The queue's first post: number it, once, and post again with the number.
        if status == NEEDS_NUMBER {
            let mut conn = self.0.conn.clone();
            let next: u64 = conn.incr(QUEUE_NUMBERS, 1).await?;
            number = next.to_string();
            args[4] = number.as_bytes();
            reply = self.run(&SCRIPTS.post, &keys, &args).await?;
            status = reply.int()?;
        }
        if status == 5 {
            let index = usize::try_from(reply.int()?).unwrap_or(1).saturating_sub(1);
            return Err(StoreError::DelayTooLong { index });
        }
        if status == TOO_LARGE {
            let index = usize::try_from(reply.int()?).unwrap_or(1).saturating_sub(1);
            let max = u64::try_from(reply.int()?).unwrap_or_default();
            return Err(StoreError::MessageTooLarge { index, max });
        }
        check_status(status, "")?;
        if reply.int()? == 1 {
            self.index_add(project, name).await?;
        }
        METRICS.count("posted", messages.len() as u64);
        METRICS.watch(project, name);
        (0..messages.len()).map(|_| reply.text()).collect()
    }

    /// Reserves up to `request.n` messages. With a `wait`, holds on (long poll) until at least
    /// one message is ready or the wait is over; a post through any process wakes it.
    pub async fn reserve(
        &self,
        project: &str,
        name: &str,
        request: &ReserveRequest,
        wait: Duration,
    ) -> Result<Vec<Message>> {
        let keys = QueueKeys::new(project, name);
        let messages = self
            .long_poll(&keys, wait, |poll| self.reserve_once(&keys, request, poll))
            .await?;
        let operation = if request.delete {
            "deleted"
        } else {
            "reserved"
        };
        METRICS.count(operation, messages.len() as u64);
        Ok(messages)
    }

    /// Runs `attempt` until it finds something or `wait` is over. An attempt that finds nothing
    /// registers this process as a waiter (when given a wait) and tells how long until something
    /// falls due; a post through any process wakes the loop at once.
    async fn long_poll<T, F, Fut>(
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

    /// One reserve attempt. With `wait`, registers this process as a waiter when nothing is
    /// ready, and tells how long until something falls due.
    async fn reserve_once(
        &self,
        keys: &QueueKeys,
        request: &ReserveRequest,
        wait: Option<Duration>,
    ) -> Result<(Vec<Message>, Option<Duration>)> {
        let n = request.n.to_string();
        let timeout = request.timeout.unwrap_or(0).to_string();
        let wait_ms = wait.map(|w| w.as_millis().to_string()).unwrap_or_default();
        let waiter = if wait.is_some() {
            self.0.process_id.as_str()
        } else {
            ""
        };
        let reservation_ids: Vec<String> = if request.delete {
            Vec::new()
        } else {
            (0..request.n).map(|_| random_id()).collect()
        };
        let mut args: Vec<&[u8]> = vec![
            n.as_bytes(),
            timeout.as_bytes(),
            if request.delete { b"1" } else { b"0" },
            waiter.as_bytes(),
            wait_ms.as_bytes(),
        ];
        args.extend(reservation_ids.iter().map(|r| r.as_bytes()));
        let mut reply = self.run(&SCRIPTS.reserve, keys, &args).await?;
        check_status(reply.int()?, "")?;
        let next_due = u64::try_from(reply.int()?).ok().map(Duration::from_millis);
        let mut messages = Vec::new();
        while !reply.is_empty() {
            let id = reply.text()?;
            let body = reply.text()?;
            let reserved_count = reply.count()?;
            let reservation_id = Some(reply.text()?).filter(|r| !r.is_empty());
            messages.push(Message {
                id,
                body,
                reserved_count,
                reservation_id,
            });
        }
        Ok((messages, next_due))
    }

    /// Up to `n` ready messages from the front, without reserving them.
    pub async fn peek(&self, project: &str, name: &str, n: usize) -> Result<Vec<Message>> {
        let keys = QueueKeys::new(project, name);
        let n = n.to_string();
        let mut reply = self.run(&SCRIPTS.peek, &keys, &[n.as_bytes()]).await?;
        check_status(reply.int()?, "")?;
        let mut messages = Vec::new();
        while !reply.is_empty() {
            let id = reply.text()?;
            let body = reply.text()?;
            let reserved_count = reply.count()?;
            messages.push(Message {
                id,
                body,
                reserved_count,
                reservation_id: None,
            });
        }
        Ok(messages)
    }

    pub async fn get_message(&self, project: &str, name: &str, id: &str) -> Result<Message> {
        let keys = QueueKeys::new(project, name);
        let mut reply = self.run(&SCRIPTS.get, &keys, &[id.as_bytes()]).await?;
        check_status(reply.int()?, id)?;
        Ok(Message {
            id: id.to_string(),
            body: reply.text()?,
            reserved_count: reply.count()?,
            reservation_id: None,
        })
    }

    /// Deletes one message; a reserved one needs its current reservation id.
    pub async fn delete_message(
        &self,
        project: &str,
        name: &str,
        id: &str,
        reservation_id: Option<&str>,
    ) -> Result<()> {
        let keys = QueueKeys::new(project, name);
        let rid = reservation_id.unwrap_or("");
        let mut reply = self
            .run(&SCRIPTS.delete, &keys, &[id.as_bytes(), rid.as_bytes()])
            .await?;
        check_status(reply.int()?, id)?;
        METRICS.count("deleted", 1);
        Ok(())
    }

    /// Deletes several messages, all or none.
    pub async fn delete_messages(
        &self,
        project: &str,
        name: &str,
        refs: &[DeleteRef],
    ) -> Result<()> {
        let keys = QueueKeys::new(project, name);
        let mut args: Vec<&[u8]> = Vec::with_capacity(refs.len() * 2);
        for r in refs {
            args.push(r.id.as_bytes());
            args.push(r.reservation_id.as_deref().unwrap_or("").as_bytes());
        }
        let mut reply = self.run(&SCRIPTS.delete_batch, &keys, &args).await?;
        let status = reply.int()?;
        let failed = usize::try_from(reply.int()?).unwrap_or(0);
        let id = failed
            .checked_sub(1)
            .and_then(|i| refs.get(i))
            .map(|r| r.id.as_str());
        check_status(status, id.unwrap_or(""))?;
        METRICS.count("deleted", refs.len() as u64);
        Ok(())
    }

    /// Extends a reservation; returns the new reservation id (the old one stops being valid).
    pub async fn touch(
        &self,
        project: &str,
        name: &str,
        id: &str,
        reservation_id: &str,
        timeout: Option<u64>,
    ) -> Result<String> {
        let keys = QueueKeys::new(project, name);
        let timeout = timeout.unwrap_or(0).to_string();
        let new_id = random_id();
        let args: [&[u8]; 4] = [
            id.as_bytes(),
            reservation_id.as_bytes(),
            timeout.as_bytes(),
            new_id.as_bytes(),
        ];
        let mut reply = self.run(&SCRIPTS.touch, &keys, &args).await?;
        check_status(reply.int()?, id)?;
        METRICS.count("touched", 1);
        Ok(new_id)
    }

    /// Ends a reservation: the message goes back to the front, at once or after `delay` s.
    pub async fn release(
        &self,
        project: &str,
        name: &str,
        id: &str,
        reservation_id: &str,
        delay: u64,
    ) -> Result<()> {
        let keys = QueueKeys::new(project, name);
        let channel = keys.wake_channel();
        let delay = delay.to_string();
        let args: [&[u8]; 4] = [
            channel.as_bytes(),
            id.as_bytes(),
            reservation_id.as_bytes(),
            delay.as_bytes(),
        ];
        let mut reply = self.run(&SCRIPTS.release, &keys, &args).await?;
        check_status(reply.int()?, id)?;
        METRICS.count("released", 1);
        Ok(())
    }

    /// Depth, reserved count and the age of the next message in line (ms; 0 when none) of a
    /// queue, for metrics: four O(1) reads in one round trip.
    pub async fn queue_gauges(&self, project: &str, name: &str) -> Result<(u64, u64, u64)> {
        let keys = QueueKeys::new(project, name);
        let mut conn = self.0.conn.clone();
        let (depth, held, first_ready, first_push): (u64, u64, Option<String>, Option<String>) =
            redis::pipe()
                .hlen(keys.body())
                .zcard(keys.reserved())
                .lindex(keys.ready(), 0)
                .lindex(keys.push_ready(), 0)
                .query_async(&mut conn)
                .await?;
        // An id starts with its post time in ms, 13 digits (see lua/post.lua).
        let posted_at = |id: &Option<String>| {
            id.as_deref()
                .and_then(|id| id.get(..13))
                .and_then(|ms| ms.parse::<u64>().ok())
        };
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as u64);
        let oldest = [posted_at(&first_ready), posted_at(&first_push)]
            .into_iter()
            .flatten()
            .min()
            .map_or(0, |at| now.saturating_sub(at));
        Ok((depth, held, oldest))
    }

    /// Removes every message of a queue.
    pub async fn clear(&self, project: &str, name: &str) -> Result<()> {
        let keys = QueueKeys::new(project, name);
        let mut reply = self.run(&SCRIPTS.clear, &keys, &[]).await?;
        check_status(reply.int()?, "")
    }
}

/// Reads a queue's fields out of a script reply; also returns the settings' revision.
fn parse_queue_info(project: &str, name: &str, fields: Vec<(String, String)>) -> Result<QueueInfo> {
    let mut info = QueueInfo {
        id: String::new(),
        project: project.to_string(),
        name: name.to_string(),
        config: QueueConfig::default(),
        size: 0,
        total_messages: 0,
    };
    let number = |v: &str| {
        v.parse::<u64>()
            .map_err(|_| StoreError::BadReply(format!("not a number: {v}")))
    };
    for (field, value) in fields {
        match field.as_str() {
            "id" => info.id = value,
            "rev" => info.config.revision = value,
            "type" => {
                info.config.queue_type = QueueType::parse(&value)
                    .ok_or_else(|| StoreError::BadReply(format!("unknown queue type {value}")))?
            }
            "message_timeout" => info.config.message_timeout = number(&value)?,
            "message_expiration" => info.config.message_expiration = number(&value)?,
            "max_message_size" => info.config.max_message_size = number(&value)?,
            "managed_by" => info.config.managed_by = Some(value).filter(|v| !v.is_empty()),
            "rest" => info.config.rest_configured = value == "1",
            "released_by" => info.config.released_by = Some(value).filter(|v| !v.is_empty()),
            "push" => {
                info.config.push = Some(
                    serde_json::from_str(&value)
                        .map_err(|e| StoreError::BadReply(format!("push settings: {e}")))?,
                )
            }
            "size" => info.size = number(&value)?,
            "total_messages" => info.total_messages = number(&value)?,
            _ => {}
        }
    }
    Ok(info)
}
