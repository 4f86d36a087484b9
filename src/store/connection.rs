//! One handle over a single Redis or a Redis Cluster, so the store runs its scripts the same way
//! on both.

use redis::aio::{ConnectionLike, ConnectionManager, ConnectionManagerConfig};
use redis::cluster::ClusterClient;
use redis::cluster_async::ClusterConnection;
use redis::{Cmd, Pipeline, RedisFuture, RedisResult, Value};
use std::time::Duration;

/// How long one Redis command may take before the request fails with 503 instead of hanging.
const RESPONSE_TIMEOUT: Duration = Duration::from_secs(5);
/// How long connecting to Redis may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);

/// Where the store lives: one URL for a single Redis, several (comma-separated) for a cluster.
#[derive(Debug, Clone)]
pub struct RedisTarget {
    pub urls: Vec<String>,
    pub cluster: bool,
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
        RedisTarget { urls, cluster }
    }
}

#[derive(Clone)]
pub enum Connection {
    Single(ConnectionManager),
    Cluster(ClusterConnection),
}

impl Connection {
    /// Connects; a single Redis connects lazily and reconnects by itself, so the data plane can
    /// start before Redis and answers 503 until it is there.
    pub async fn open(target: &RedisTarget) -> RedisResult<Self> {
        if target.cluster {
            let client = ClusterClient::builder(target.urls.clone())
                .connection_timeout(CONNECT_TIMEOUT)
                .response_timeout(RESPONSE_TIMEOUT)
                .build()?;
            Ok(Connection::Cluster(client.get_async_connection().await?))
        } else {
            let url = target.urls.first().map(String::as_str).unwrap_or("");
            let client = redis::Client::open(url)?;
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

impl ConnectionLike for Connection {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        match self {
            Connection::Single(c) => c.req_packed_command(cmd),
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
            Connection::Cluster(c) => c.req_packed_commands(pipeline, offset, count),
        }
    }

    fn get_db(&self) -> i64 {
        match self {
            Connection::Single(c) => c.get_db(),
            Connection::Cluster(c) => c.get_db(),
        }
    }
}
