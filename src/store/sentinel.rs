//! Following a Redis primary through Sentinel failovers. The store talks to the primary the
//! Sentinels name (asked through the `redis` crate's `SentinelClient`, which also checks with
//! `ROLE` that the node it names is a primary), on one multiplexed connection. That connection
//! is dropped, and the primary asked for again, when a command finds it broken or the node no
//! longer a primary (`READONLY`, `MASTERDOWN`, `LOADING`), and when the Sentinels name another
//! primary (looked at every `WATCH_EVERY`: a primary cut off from its replicas may still
//! answer us). The command that met the failure fails (503: a script may or may not have run,
//! so it is not retried); the next one goes to the new primary.
//!
//! A change that must reach replicas is also confirmed with the Sentinels (`confirm`): a
//! majority of them must still name the node that made it, and none another. An old primary that comes back
//! (or sits on the small side of a partition) with a replica still attached would otherwise
//! have its changes confirmed by `WAIT`, then thrown away when it follows the new primary.

use super::connection::client;
use redis::aio::{ConnectionLike, MultiplexedConnection};
use redis::sentinel::{SentinelClient, SentinelClientBuilder, SentinelServerType};
use redis::{
    AsyncConnectionConfig, Cmd, ConnectionAddr, ErrorKind, Pipeline, RedisError, RedisFuture,
    RedisResult, ServerErrorKind, TlsCertificates, TlsMode, Value,
};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

/// How often the Sentinels are asked which node is the primary.
const WATCH_EVERY: Duration = Duration::from_secs(1);
/// Longest a lookup of the primary (Sentinels, then the node's `ROLE`, then a connection) may
/// take; one that fails is remembered this long, so the callers behind it fail at once (503)
/// instead of each waiting its turn.
const LOOKUP_TIMEOUT: Duration = Duration::from_secs(2);
const LOOKUP_FAILED_FOR: Duration = Duration::from_millis(250);
/// How long a Sentinel may take to say which node is primary, and how long one that did not
/// answer in time is left out of the count.
const SENTINEL_TIMEOUT: Duration = Duration::from_millis(300);
const SENTINEL_BACKOFF: Duration = Duration::from_secs(5);

/// Where the Sentinels are and what to ask them for.
#[derive(Debug, Clone)]
pub struct SentinelSpec {
    /// `host:port` of each Sentinel.
    pub sentinels: Vec<String>,
    /// The name the Sentinels monitor the primary by.
    pub master_name: String,
    /// Password of the Sentinels, if they need one.
    pub sentinel_password: Option<String>,
    /// Password of the Redis nodes, if they need one.
    pub redis_password: Option<String>,
    /// TLS to the Sentinels and the nodes.
    pub tls: bool,
}

impl SentinelSpec {
    /// A client of the Sentinels; with TLS, checking servers against `certificates` when given.
    pub(super) fn client(
        &self,
        certificates: Option<TlsCertificates>,
    ) -> RedisResult<SentinelClient> {
        let mut addresses = Vec::new();
        for sentinel in &self.sentinels {
            let (host, port) = sentinel
                .rsplit_once(':')
                .and_then(|(h, p)| Some((h.to_string(), p.parse::<u16>().ok()?)))
                .ok_or_else(|| {
                    RedisError::from((
                        ErrorKind::InvalidClientConfig,
                        "a Sentinel address must be host:port",
                        sentinel.clone(),
                    ))
                })?;
            addresses.push(match self.tls {
                true => ConnectionAddr::TcpTls {
                    host,
                    port,
                    insecure: false,
                    tls_params: None,
                },
                false => ConnectionAddr::Tcp(host, port),
            });
        }
        let mut builder =
            SentinelClientBuilder::new(addresses, &self.master_name, SentinelServerType::Master)?;
        if self.tls {
            builder = builder
                .set_client_to_sentinel_tls_mode(TlsMode::Secure)
                .set_client_to_redis_tls_mode(TlsMode::Secure);
            if let Some(certificates) = certificates {
                builder = builder
                    .set_client_to_sentinel_certificates(certificates.clone())
                    .set_client_to_redis_certificates(certificates);
            }
        }
        if let Some(password) = &self.sentinel_password {
            builder = builder.set_client_to_sentinel_password(password);
        }
        if let Some(password) = &self.redis_password {
            builder = builder.set_client_to_redis_password(password);
        }
        builder.build()
    }
}

/// A connection to whichever node the Sentinels name primary. Cheap to clone.
#[derive(Clone)]
pub struct Followed(Arc<Inner>);

struct Inner {
    sentinels: tokio::sync::Mutex<SentinelClient>,
    /// A connection to each Sentinel, made when first needed, for `confirm`.
    each_sentinel: Vec<SentinelLink>,
    master_name: String,
    /// The primary's address and our connection to it, numbered so that a failure met on an
    /// old connection does not drop a newer one.
    current: Mutex<Option<Primary>>,
    /// When the last lookup failed.
    failed_at: Mutex<Option<Instant>>,
    /// The number of the last connection made.
    generations: AtomicU64,
    config: AsyncConnectionConfig,
}

#[derive(Clone)]
struct Primary {
    generation: u64,
    addr: String,
    conn: MultiplexedConnection,
}

impl Followed {
    /// Connects lazily (the first command asks the Sentinels) and watches for failovers for
    /// as long as a clone lives.
    pub fn new(
        spec: &SentinelSpec,
        certificates: Option<TlsCertificates>,
        config: AsyncConnectionConfig,
    ) -> RedisResult<Self> {
        let scheme = if spec.tls { "rediss" } else { "redis" };
        let each_sentinel = spec
            .sentinels
            .iter()
            .map(|addr| {
                let auth = spec
                    .sentinel_password
                    .as_ref()
                    .map(|p| format!(":{p}@"))
                    .unwrap_or_default();
                Ok(SentinelLink {
                    client: client(&format!("{scheme}://{auth}{addr}"), certificates.clone())?,
                    conn: Mutex::new(None),
                    down_until: Mutex::new(None),
                })
            })
            .collect::<RedisResult<_>>()?;
        let followed = Followed(Arc::new(Inner {
            sentinels: tokio::sync::Mutex::new(spec.client(certificates)?),
            each_sentinel,
            master_name: spec.master_name.clone(),
            current: Mutex::new(None),
            failed_at: Mutex::new(None),
            generations: AtomicU64::new(0),
            config,
        }));
        tokio::spawn(watch(Arc::downgrade(&followed.0)));
        Ok(followed)
    }

    /// The primary now: asks the Sentinels when there is no connection.
    async fn primary(&self) -> RedisResult<Primary> {
        if let Some(primary) = self.current() {
            return Ok(primary);
        }
        self.check_recent_failure()?;
        let mut sentinels = self.0.sentinels.lock().await;
        // Another caller may have connected (or failed to) while this one waited.
        if let Some(primary) = self.current() {
            return Ok(primary);
        }
        self.check_recent_failure()?;
        let lookup = async {
            let client = sentinels.async_get_client().await?;
            let addr = client.get_connection_info().addr().to_string();
            let conn = client
                .get_multiplexed_async_connection_with_config(&self.0.config)
                .await?;
            RedisResult::Ok((addr, conn))
        };
        let found = match tokio::time::timeout(LOOKUP_TIMEOUT, lookup).await {
            Ok(found) => found,
            Err(_) => Err(timed_out("finding the primary")),
        };
        let (addr, conn) = match found {
            Ok(found) => found,
            Err(err) => {
                *self.0.failed_at.lock().unwrap_or_else(|e| e.into_inner()) = Some(Instant::now());
                return Err(err);
            }
        };
        let mut current = self.0.current.lock().unwrap_or_else(|e| e.into_inner());
        let primary = Primary {
            generation: self.0.generations.fetch_add(1, Ordering::Relaxed) + 1,
            addr,
            conn,
        };
        tracing::info!(primary = %primary.addr, "connected to the Redis primary the Sentinels name");
        *current = Some(primary.clone());
        Ok(primary)
    }

    /// Fails at once while the last lookup failed a moment ago.
    fn check_recent_failure(&self) -> RedisResult<()> {
        let failed_at = *self.0.failed_at.lock().unwrap_or_else(|e| e.into_inner());
        if failed_at.is_some_and(|at| at.elapsed() < LOOKUP_FAILED_FOR) {
            return Err(timed_out("finding the primary (it failed a moment ago)"));
        }
        Ok(())
    }

    /// The primary now, for a sequence of commands that must all go to the same node (a change
    /// and the `WAIT` for it).
    pub async fn pin(&self) -> RedisResult<Pinned> {
        Ok(Pinned {
            followed: self.clone(),
            primary: self.primary().await?,
        })
    }

    fn current(&self) -> Option<Primary> {
        let current = self.0.current.lock().unwrap_or_else(|e| e.into_inner());
        current.clone()
    }

    /// Drops the connection of `generation` (if it is still the current one).
    fn forget(&self, generation: u64, why: &str) {
        let mut current = self.0.current.lock().unwrap_or_else(|e| e.into_inner());
        if current.as_ref().is_some_and(|p| p.generation == generation) {
            tracing::warn!(why, "leaving the Redis primary; asking the Sentinels again");
            *current = None;
        }
    }

    /// What the Sentinels that answer in time name primary (one that does not is left out
    /// for a while).
    async fn named(&self) -> Vec<Option<String>> {
        let asked = self.0.each_sentinel.iter().map(|link| async {
            if link.resting() {
                return None;
            }
            match tokio::time::timeout(SENTINEL_TIMEOUT, link.named(&self.0.master_name)).await {
                Ok(Ok(addr)) => Some(addr),
                Ok(Err(_)) | Err(_) => {
                    link.rest();
                    None
                }
            }
        });
        futures_util::future::join_all(asked).await
    }

    /// Whether a majority of the Sentinels name `primary`, and none names another. Not
    /// confirmed: the connection is left.
    async fn confirm(&self, primary: &Primary) -> bool {
        let named = self.named().await;
        let agreeing = named
            .iter()
            .flatten()
            .filter(|a| **a == primary.addr)
            .count();
        // One that names another node leads a failover under way: its new primary will not
        // keep what this one takes now.
        let disagreeing = named.iter().flatten().any(|a| *a != primary.addr);
        let confirmed = agreeing > self.0.each_sentinel.len() / 2 && !disagreeing;
        if !confirmed {
            self.forget(
                primary.generation,
                "the Sentinels do not all name it primary",
            );
        }
        confirmed
    }

    /// Runs `call` on the primary, leaving it when the error says it is gone or no longer
    /// the primary.
    async fn on_primary<T>(
        &self,
        call: impl AsyncFnOnce(&mut MultiplexedConnection) -> RedisResult<T>,
    ) -> RedisResult<T> {
        let mut primary = self.primary().await?;
        let result = call(&mut primary.conn).await;
        if let Err(err) = &result
            && lost_primary(err)
        {
            self.forget(primary.generation, &err.to_string());
        }
        result
    }
}

/// One Sentinel, asked which node is primary.
struct SentinelLink {
    client: redis::Client,
    conn: Mutex<Option<MultiplexedConnection>>,
    /// Left out until then: it did not answer in time.
    down_until: Mutex<Option<Instant>>,
}

impl SentinelLink {
    fn resting(&self) -> bool {
        let until = *self.down_until.lock().unwrap_or_else(|e| e.into_inner());
        until.is_some_and(|t| Instant::now() < t)
    }

    fn rest(&self) {
        *self.conn.lock().unwrap_or_else(|e| e.into_inner()) = None;
        *self.down_until.lock().unwrap_or_else(|e| e.into_inner()) =
            Some(Instant::now() + SENTINEL_BACKOFF);
    }

    /// `host:port` of the primary this Sentinel names.
    async fn named(&self, master_name: &str) -> RedisResult<String> {
        let cached = self.conn.lock().unwrap_or_else(|e| e.into_inner()).clone();
        let mut conn = match cached {
            Some(conn) => conn,
            None => {
                let conn = self.client.get_multiplexed_async_connection().await?;
                *self.conn.lock().unwrap_or_else(|e| e.into_inner()) = Some(conn.clone());
                conn
            }
        };
        let (host, port): (String, u16) = redis::cmd("SENTINEL")
            .arg("get-master-addr-by-name")
            .arg(master_name)
            .query_async(&mut conn)
            .await?;
        Ok(format!("{host}:{port}"))
    }
}

/// Whether an error means the connection is no use any more: broken, or to a node that is no
/// longer (or not yet) the primary.
fn lost_primary(err: &RedisError) -> bool {
    err.is_io_error()
        // A primary demoted while a WAIT waited.
        || err.code() == Some("UNBLOCKED")
        || err.is_connection_dropped()
        || err.is_connection_refusal()
        || err.is_timeout()
        || matches!(
            err.kind(),
            ErrorKind::Server(
                ServerErrorKind::ReadOnly
                    | ServerErrorKind::MasterDown
                    | ServerErrorKind::BusyLoading
            )
        )
}

/// Asks the Sentinels every `WATCH_EVERY` which node is primary, and leaves the current one
/// when a majority of them name another.
async fn watch(inner: Weak<Inner>) {
    loop {
        tokio::time::sleep(WATCH_EVERY).await;
        let Some(inner) = inner.upgrade() else { return };
        let followed = Followed(inner);
        let Some(primary) = followed.current() else {
            continue;
        };
        let named = followed.named().await;
        let elsewhere = named
            .iter()
            .flatten()
            .filter(|a| **a != primary.addr)
            .count();
        if elsewhere > followed.0.each_sentinel.len() / 2 {
            followed.forget(
                primary.generation,
                "a majority of the Sentinels name another",
            );
        }
    }
}

/// An error that says Redis could not be reached in time (so a 503).
fn timed_out(what: &str) -> RedisError {
    RedisError::from(std::io::Error::new(
        std::io::ErrorKind::TimedOut,
        format!("timed out {what}"),
    ))
}

/// One primary held for a sequence of commands (see `Followed::pin`).
#[derive(Clone)]
pub struct Pinned {
    followed: Followed,
    primary: Primary,
}

impl Pinned {
    /// Whether a majority of the Sentinels still name this node, and none another.
    pub async fn confirm(&self) -> bool {
        self.followed.confirm(&self.primary).await
    }

    fn failed(&self, err: &RedisError) {
        if lost_primary(err) {
            self.followed
                .forget(self.primary.generation, &err.to_string());
        }
    }
}

impl ConnectionLike for Pinned {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        Box::pin(async move {
            let result = self.primary.conn.req_packed_command(cmd).await;
            if let Err(err) = &result {
                self.failed(err);
            }
            result
        })
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        pipeline: &'a Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        Box::pin(async move {
            let result = self
                .primary
                .conn
                .req_packed_commands(pipeline, offset, count)
                .await;
            if let Err(err) = &result {
                self.failed(err);
            }
            result
        })
    }

    fn get_db(&self) -> i64 {
        0
    }
}

impl ConnectionLike for Followed {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        Box::pin(async move {
            self.on_primary(async |conn| conn.req_packed_command(cmd).await)
                .await
        })
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        pipeline: &'a Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        Box::pin(async move {
            self.on_primary(async |conn| conn.req_packed_commands(pipeline, offset, count).await)
                .await
        })
    }

    fn get_db(&self) -> i64 {
        0
    }
}
