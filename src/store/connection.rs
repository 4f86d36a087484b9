//! One handle over a single Redis, a primary followed through Sentinel, or a Redis Cluster, so
//! the store runs its scripts the same way on each.

use super::sentinel::{Followed, Pinned, SentinelSpec};
use redis::aio::{ConnectionLike, ConnectionManager, ConnectionManagerConfig};
use redis::cluster::ClusterClient;
use redis::cluster_async::ClusterConnection;
use redis::cluster_routing::{Route, RoutingInfo, SingleNodeRoutingInfo, SlotAddr};
use redis::{
    AsyncConnectionConfig, Cmd, Pipeline, RedisFuture, RedisResult, TlsCertificates, Value,
};
use std::time::Duration;

/// How long one Redis command may take before the request fails with 503 instead of hanging.
const RESPONSE_TIMEOUT: Duration = Duration::from_secs(5);
/// How long connecting to Redis may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);

/// Where the store lives: one URL for a single Redis, several (comma-separated) for a cluster,
/// or the Sentinels that name the primary; and how many replicas must have a change.
#[derive(Debug, Clone)]
pub struct RedisTarget {
    pub urls: Vec<String>,
    pub cluster: bool,
    pub sentinel: Option<SentinelSpec>,
    pub durability: Durability,
    /// PEM certificates of the authority TLS connections trust instead of the system's roots.
    pub ca_pem: Option<Vec<u8>>,
}

/// How many replicas must confirm a change (Redis `WAIT`) before it is answered, and how long
/// to wait for them. No replicas: answered as soon as the primary has it.
#[derive(Debug, Clone, Copy, Default)]
pub struct Durability {
    pub replicas: u32,
    pub timeout: Duration,
}

impl RedisTarget {
    /// `redis://host:port`, `unix:///path`, or a comma-separated list of cluster nodes.
    pub fn parse(spec: &str, cluster: bool) -> Self {
        let urls: Vec<String> = spec
            .split(',')
            .map(str::trim)
            .filter(|u| !u.is_empty())
            .map(String::from)
            .collect();
        let cluster = cluster || urls.len() > 1;
        RedisTarget {
            urls,
            cluster,
            sentinel: None,
            durability: Durability::default(),
            ca_pem: None,
        }
    }

    /// The primary the Sentinels name.
    pub fn sentinel(spec: SentinelSpec) -> Self {
        RedisTarget {
            urls: Vec::new(),
            cluster: false,
            sentinel: Some(spec),
            durability: Durability::default(),
            ca_pem: None,
        }
    }

    /// How TLS connections check the server: against `ca_pem`, else the system's roots.
    pub(super) fn certificates(&self) -> Option<TlsCertificates> {
        self.ca_pem.as_ref().map(|pem| TlsCertificates {
            client_tls: None,
            root_cert: Some(pem.clone()),
        })
    }

    /// A client of the single Redis (or first cluster node) the URLs name.
    fn first_client(&self) -> RedisResult<redis::Client> {
        client(
            self.urls.first().map(String::as_str).unwrap_or(""),
            self.certificates(),
        )
    }

    /// A client for the node to subscribe to (the primary, with Sentinel), and its address.
    pub async fn subscription_client(&self) -> RedisResult<(redis::Client, String)> {
        let client = match &self.sentinel {
            Some(spec) => spec.client(self.certificates())?.async_get_client().await?,
            // PUBLISH reaches every node of a cluster, so one node's subscription hears every
            // queue.
            None => self.first_client()?,
        };
        let addr = client.get_connection_info().addr().to_string();
        Ok((client, addr))
    }
}

/// A client of `url`; a `rediss://` one checks the server against `certificates` when given.
pub(super) fn client(
    url: &str,
    certificates: Option<TlsCertificates>,
) -> RedisResult<redis::Client> {
    match certificates {
        Some(certificates) if url.starts_with("rediss://") => {
            redis::Client::build_with_tls(url, certificates)
        }
        _ => redis::Client::open(url),
    }
}

#[derive(Clone)]
pub enum Connection {
    Single(ConnectionManager),
    Sentinel(Followed),
    /// One primary found through Sentinel, held for a change and its `WAIT`.
    Pinned(Pinned),
    Cluster(ClusterConnection),
}

impl Connection {
    /// Connects; a single Redis connects lazily and reconnects by itself, so the data plane can
    /// start before Redis and answers 503 until it is there.
    pub async fn open(target: &RedisTarget) -> RedisResult<Self> {
        if let Some(spec) = &target.sentinel {
            let config = AsyncConnectionConfig::new()
                .set_connection_timeout(Some(CONNECT_TIMEOUT))
                .set_response_timeout(Some(RESPONSE_TIMEOUT));
            Ok(Connection::Sentinel(Followed::new(
                spec,
                target.certificates(),
                config,
            )?))
        } else if target.cluster {
            let mut builder = ClusterClient::builder(target.urls.clone())
                .connection_timeout(CONNECT_TIMEOUT)
                .response_timeout(RESPONSE_TIMEOUT);
            if let Some(certificates) = target.certificates() {
                builder = builder.certs(certificates);
            }
            Ok(Connection::Cluster(
                builder.build()?.get_async_connection().await?,
            ))
        } else {
            let client = target.first_client()?;
            let config = ConnectionManagerConfig::new()
                .set_connection_timeout(Some(CONNECT_TIMEOUT))
                .set_response_timeout(Some(RESPONSE_TIMEOUT))
                .set_number_of_retries(2)
                .set_max_delay(Duration::from_millis(500));
            Ok(Connection::Single(ConnectionManager::new_lazy_with_config(
                client, config,
            )?))
        }
    }
}

impl Connection {
    /// Waits until `durability.replicas` replicas have what this connection wrote (on a
    /// cluster, to the primary of `key`'s slot); how many do.
    pub async fn wait_for_replicas(
        &mut self,
        key: &str,
        durability: Durability,
    ) -> RedisResult<u32> {
        let mut wait = redis::cmd("WAIT");
        wait.arg(durability.replicas)
            .arg(durability.timeout.as_millis() as u64);
        match self {
            Connection::Cluster(c) => {
                let route = Route::with_key(key, SlotAddr::Master);
                let routing = RoutingInfo::SingleNode(SingleNodeRoutingInfo::SpecificNode(route));
                Ok(redis::from_redis_value(
                    c.route_command(wait, routing).await?,
                )?)
            }
            _ => wait.query_async(self).await,
        }
    }

    /// The connection to run a change and its `WAIT` on: with Sentinel, the primary of now,
    /// held for both (a `WAIT` on another node would confirm nothing of this change).
    pub async fn pinned(&self) -> RedisResult<Connection> {
        match self {
            // Boxed: the lookup's future is large and seldom needed.
            Connection::Sentinel(followed) => {
                Ok(Connection::Pinned(Box::pin(followed.pin()).await?))
            }
            other => Ok(other.clone()),
        }
    }

    /// On a pinned primary, whether a majority of the Sentinels still name it and none
    /// another (see `Pinned::confirm`); elsewhere, true.
    pub async fn still_primary(&self) -> bool {
        match self {
            Connection::Pinned(pinned) => Box::pin(pinned.confirm()).await,
            _ => true,
        }
    }
}

impl ConnectionLike for Connection {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        match self {
            Connection::Single(c) => c.req_packed_command(cmd),
            Connection::Sentinel(c) => c.req_packed_command(cmd),
            Connection::Pinned(c) => c.req_packed_command(cmd),
            Connection::Cluster(c) => c.req_packed_command(cmd),
        }
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        pipeline: &'a Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        match self {
            Connection::Single(c) => c.req_packed_commands(pipeline, offset, count),
            Connection::Sentinel(c) => c.req_packed_commands(pipeline, offset, count),
            Connection::Pinned(c) => c.req_packed_commands(pipeline, offset, count),
            Connection::Cluster(c) => c.req_packed_commands(pipeline, offset, count),
        }
    }

    fn get_db(&self) -> i64 {
        match self {
            Connection::Single(c) => c.get_db(),
            Connection::Sentinel(c) => c.get_db(),
            Connection::Pinned(c) => c.get_db(),
            Connection::Cluster(c) => c.get_db(),
        }
    }
}
