//! Fixtures of ferromq's integration tests (the `common` dev-dependency of the tests), by
//! concern:
//!
//! - [`redis`]: a private redis-server per test (persistent and restartable when asked), or a
//!   Redis Cluster of three primaries;
//! - [`server`]: the data plane served in-process, as a `ferromq serve` process (HTTP or
//!   HTTPS), or as a `ferromq standalone` process;
//! - [`client`]: the JSON client of the REST API, which checks every answer is JSON, and its
//!   helpers; [`raw`]: a raw HTTP/1.1 client over TCP;
//! - [`subscriber`]: HTTP(S) push subscribers that record what they get;
//! - [`certificate`]: a private authority and a certificate for 127.0.0.1;
//! - [`wait`]: waiting on conditions and quiet periods instead of sleeping;
//! - [`kube`]: a real kube-apiserver and etcd on loopback; [`manifests`]: manifests the CRDs
//!   must refuse.
//!
//! Most tests start with [`start_server`]: a redis-server, the data plane on it and a client,
//! all kept for the test and stopped when it ends.

pub mod certificate;
pub mod client;
pub mod kube;
pub mod manifests;
pub mod raw;
pub mod redis;
pub mod replicated;
pub mod server;
pub mod subscriber;
pub mod wait;

pub use certificate::TestCertificate;
pub use client::{Answer, Client, http, post_bodies, posted_ids, q, reserve, reserve_within};
pub use redis::{RedisCluster, RedisServer};
pub use server::{ServerProcess, Standalone, TestServer};
pub use wait::{eventually, quiet};

use std::time::Duration;

/// Token with access to every project.
pub const TOKEN: &str = "test-token";
/// Token limited to the project `allowed`.
pub const LIMITED_TOKEN: &str = "limited-token";
pub const TOKENS: &str = "test-token=* limited-token=allowed";
/// How long a subscriber of a test server has to answer a push.
pub const PUSH_TIMEOUT: Duration = Duration::from_secs(2);
/// Message body limit the test servers use, small enough to exceed cheaply.
pub const MAX_MESSAGE_SIZE: usize = 1024;
/// Request body limit of the in-process test servers.
pub const MAX_REQUEST_SIZE: usize = 256 * 1024;

/// A free loopback port (free when asked: a process started on it may still find it taken).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A running test setup: a Redis, the data plane on it, and a client of the data plane with
/// the token of every project. Everything stays up while it lives; dropped, it stops the data
/// plane, then the Redis (fields drop in order).
pub struct Running<S = TestServer, R = RedisServer> {
    pub client: Client,
    pub server: S,
    pub redis: R,
}

impl<S, R> Running<S, R> {
    fn new(client: Client, server: S, redis: R) -> Self {
        Running {
            client,
            server,
            redis,
        }
    }
}

/// A private redis-server and the data plane served in-process on it.
pub async fn start_server() -> Running {
    let redis = RedisServer::start();
    let server = TestServer::start(&redis).await;
    Running::new(server.client(), server, redis)
}

/// The data plane served in-process on a private Redis Cluster of three primaries.
pub async fn start_cluster_server() -> Running<TestServer, RedisCluster> {
    let redis = RedisCluster::start();
    let server = TestServer::start_on(&redis.url()).await;
    Running::new(server.client(), server, redis)
}

/// A private redis-server and a `ferromq serve` process on it, with more environment
/// variables for the process.
pub async fn start_process(env: &[(&str, &str)]) -> Running<ServerProcess> {
    start_process_on(RedisServer::start(), env).await
}

/// A `ferromq serve` process on `redis` (say, one from `RedisServer::start_persistent`).
pub async fn start_process_on(redis: RedisServer, env: &[(&str, &str)]) -> Running<ServerProcess> {
    let server = ServerProcess::start_with(&redis, env).await;
    Running::new(server.client(), server, redis)
}

/// A private redis-server and a `ferromq serve` process on it serving HTTPS with
/// `certificate`; the client trusts the certificate's authority.
pub async fn start_tls_process(
    certificate: &TestCertificate,
    env: &[(&str, &str)],
) -> Running<ServerProcess> {
    let redis = RedisServer::start();
    let server = ServerProcess::start_tls(&redis, certificate, env).await;
    Running::new(server.client(), server, redis)
}
