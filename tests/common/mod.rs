//! Test fixtures: a private redis-server per test, the data plane served in-process or as a
//! separate `ferromq` process, and an HTTP client that checks every answer is JSON.
#![allow(dead_code)]

pub mod subscriber;

use clap::Parser;
use ferromq::config::ServeArgs;
use ferromq::serve::DataPlane;
use ferromq::store::{RedisTarget, Store};
use ferromq::tokens::Tokens;
use reqwest::{Method, StatusCode};
use serde_json::Value;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Token with access to every project.
pub const TOKEN: &str = "test-token";
/// Token limited to the project `allowed`.
pub const LIMITED_TOKEN: &str = "limited-token";
pub const TOKENS: &str = "test-token=* limited-token=allowed";
/// How long a subscriber of a test server has to answer a push.
pub const PUSH_TIMEOUT: Duration = Duration::from_secs(2);
/// Message body limit the test servers use, small enough to exceed cheaply.
pub const MAX_MESSAGE_SIZE: usize = 1024;

/// A redis-server of the test's own, on a unix socket in a temporary directory, without
/// persistence. Killed when dropped.
pub struct RedisServer {
    child: Child,
    dir: tempfile::TempDir,
}

impl RedisServer {
    pub fn start() -> Self {
        let dir = tempfile::tempdir().expect("temporary directory");
        let socket = dir.path().join("redis.sock");
        let child = Command::new("redis-server")
            .args([
                "--port",
                "0",
                "--save",
                "",
                "--appendonly",
                "no",
                "--unixsocket",
            ])
            .arg(&socket)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-server must be installed (make test installs it)");
        let server = RedisServer { child, dir };
        server.wait_until_up();
        server
    }

    pub fn socket(&self) -> PathBuf {
        self.dir.path().join("redis.sock")
    }

    pub fn url(&self) -> String {
        format!("unix://{}", self.socket().display())
    }

    fn wait_until_up(&self) {
        wait_for_ping(&self.url());
    }

    /// A direct Redis connection, for checking what the store wrote.
    pub fn connection(&self) -> redis::Connection {
        redis::Client::open(self.url())
            .and_then(|c| c.get_connection())
            .expect("redis connection")
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `ferromq serve`'s settings, read from flags.
#[derive(Parser)]
struct ServeCommand {
    #[command(flatten)]
    serve: ServeArgs,
}

/// The data plane served in-process on a free loopback port, against `redis`.
pub struct TestServer {
    pub base: String,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
}

impl TestServer {
    pub async fn start(redis: &RedisServer) -> Self {
        Self::start_on(&redis.url()).await
    }

    /// Serves against a Redis URL: one node, or comma-separated cluster nodes, wired as
    /// `ferromq serve` wires it, with a short push answer timeout so failure tests run quickly.
    pub async fn start_on(redis_url: &str) -> Self {
        let store = Store::connect(&RedisTarget::parse(redis_url, false))
            .await
            .expect("store");
        assert!(
            store.wait_subscribed(Duration::from_secs(5)).await,
            "wake-up subscription"
        );
        let args = ServeCommand::parse_from([
            "serve".to_string(),
            "--listen=127.0.0.1:0".to_string(),
            format!("--max-message-size={MAX_MESSAGE_SIZE}"),
            format!("--max-request-size={}", 256 * 1024),
            "--request-timeout=60".to_string(),
            format!("--push-timeout={}", PUSH_TIMEOUT.as_secs()),
            "--push-concurrency=32".to_string(),
            "--push-process-concurrency=256".to_string(),
            "--push-status-keep=600".to_string(),
            "--push-shutdown-grace=5".to_string(),
        ])
        .serve;
        let tokens = Tokens::parse(TOKENS).unwrap();
        let plane = DataPlane::bind(&args, tokens, store)
            .await
            .expect("data plane");
        let base = format!("http://{}", plane.local_addr());
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        tokio::spawn(plane.serve(async move {
            let _ = rx.await;
        }));
        TestServer {
            base,
            shutdown: Some(tx),
        }
    }

    pub fn client(&self) -> Client {
        Client::new(&self.base, Some(TOKEN))
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
    }
}

/// `ferromq serve` as a separate process, on a free loopback port. Killed when dropped.
pub struct ServerProcess {
    pub base: String,
    child: Child,
}

impl ServerProcess {
    pub async fn start(redis: &RedisServer) -> Self {
        Self::start_with(redis, &[]).await
    }

    /// Like `start`, with more environment variables for `ferromq serve`.
    pub async fn start_with(redis: &RedisServer, env: &[(&str, &str)]) -> Self {
        let port = free_port();
        let child = Command::new(env!("CARGO_BIN_EXE_ferromq"))
            .arg("serve")
            .env("REDIS_URL", redis.url())
            .env("FERROMQ_TOKENS", TOKENS)
            .env("FERROMQ_LISTEN", format!("127.0.0.1:{port}"))
            .env("FERROMQ_PUSH_TIMEOUT", PUSH_TIMEOUT.as_secs().to_string())
            .env("RUST_LOG", "warn")
            .envs(env.iter().copied())
            .stdout(Stdio::null())
            .spawn()
            .expect("ferromq binary");
        let base = format!("http://127.0.0.1:{port}");
        let server = ServerProcess { base, child };
        let client = server.client();
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            if let Ok(resp) = client
                .http
                .get(format!("{}/readyz", server.base))
                .send()
                .await
                && resp.status() == StatusCode::OK
            {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "ferromq serve did not become ready"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        server
    }

    pub fn client(&self) -> Client {
        Client::new(&self.base, Some(TOKEN))
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A certificate for 127.0.0.1 issued by a fresh private authority, all as PEM.
pub struct TestCertificate {
    pub authority_pem: String,
    pub cert_pem: String,
    pub key_pem: String,
}

impl TestCertificate {
    pub fn for_loopback() -> Self {
        let authority_key = rcgen::KeyPair::generate().unwrap();
        let mut authority = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        authority.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        let issuer = rcgen::Issuer::new(authority.clone(), authority_key);
        let authority_pem = authority.self_signed(issuer.key()).unwrap().pem();
        let key = rcgen::KeyPair::generate().unwrap();
        let leaf = rcgen::CertificateParams::new(vec!["127.0.0.1".to_string()])
            .unwrap()
            .signed_by(&key, &issuer)
            .unwrap();
        TestCertificate {
            authority_pem,
            cert_pem: leaf.pem(),
            key_pem: key.serialize_pem(),
        }
    }
}

/// A plain HTTP client (TLS set up as the binary does it).
pub fn http() -> reqwest::Client {
    ferromq::tls::install_crypto_provider();
    reqwest::Client::new()
}

/// An HTTP client for one server and token.
#[derive(Clone)]
pub struct Client {
    pub base: String,
    pub token: Option<String>,
    pub http: reqwest::Client,
}

/// Status and parsed JSON body of an answer.
pub type Answer = (StatusCode, Value);

/// Reads an answer, checking what every answer of the API must be: JSON, and an error with a
/// `msg`. `Err` only when the body cannot be read.
async fn checked_answer(path: &str, response: reqwest::Response) -> reqwest::Result<Answer> {
    let status = response.status();
    let content_type = response
        .headers()
        .get("content-type")
        .map(|v| v.to_str().unwrap().to_string());
    let bytes = response.bytes().await?;
    assert_eq!(
        content_type.as_deref(),
        Some("application/json"),
        "{path}: content type ({status})"
    );
    let json: Value = serde_json::from_slice(&bytes).unwrap_or_else(|e| {
        panic!(
            "{path}: body is not JSON ({e}): {:?}",
            String::from_utf8_lossy(&bytes)
        )
    });
    if !status.is_success() {
        assert!(json["msg"].is_string(), "{path}: error without msg: {json}");
    }
    Ok((status, json))
}

impl Client {
    pub fn new(base: &str, token: Option<&str>) -> Self {
        Client {
            base: base.to_string(),
            token: token.map(String::from),
            http: http(),
        }
    }

    pub fn with_token(&self, token: Option<&str>) -> Self {
        Client {
            token: token.map(String::from),
            ..self.clone()
        }
    }

    /// Sends a request with an optional raw body and checks the answer is JSON with exactly
    /// `Content-Type: application/json` (clients compare it), and that errors carry a `msg`.
    pub async fn raw(
        &self,
        method: Method,
        path: &str,
        body: Option<Vec<u8>>,
        headers: &[(&str, &str)],
    ) -> Answer {
        let mut request = self.http.request(method, format!("{}{}", self.base, path));
        if let Some(token) = &self.token {
            request = request.header("Authorization", format!("OAuth {token}"));
        }
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        if let Some(body) = body {
            request = request.body(body);
        }
        let response = request.send().await.expect("request sent");
        checked_answer(path, response).await.expect("body read")
    }

    pub async fn call(&self, method: Method, path: &str, body: Option<Value>) -> Answer {
        let body = body.map(|b| serde_json::to_vec(&b).unwrap());
        self.raw(method, path, body, &[("Content-Type", "application/json")])
            .await
    }

    pub async fn get(&self, path: &str) -> Answer {
        self.call(Method::GET, path, None).await
    }

    pub async fn post(&self, path: &str, body: Value) -> Answer {
        self.call(Method::POST, path, Some(body)).await
    }

    pub async fn put(&self, path: &str, body: Value) -> Answer {
        self.call(Method::PUT, path, Some(body)).await
    }

    pub async fn patch(&self, path: &str, body: Value) -> Answer {
        self.call(Method::PATCH, path, Some(body)).await
    }

    pub async fn delete(&self, path: &str, body: Option<Value>) -> Answer {
        self.call(Method::DELETE, path, body).await
    }
}

/// Path of a queue in project `p`.
pub fn q(queue: &str) -> String {
    format!("/3/projects/p/queues/{queue}")
}

/// Posts bodies to a queue and returns their ids.
pub async fn post_bodies(client: &Client, queue: &str, bodies: &[&str]) -> Vec<String> {
    let messages: Vec<Value> = bodies
        .iter()
        .map(|b| serde_json::json!({ "body": b }))
        .collect();
    let (status, json) = client
        .post(
            &format!("{}/messages", q(queue)),
            serde_json::json!({ "messages": messages }),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{json}");
    json["ids"]
        .as_array()
        .unwrap()
        .iter()
        .map(|id| id.as_str().unwrap().to_string())
        .collect()
}

/// Reserves with the given request body and returns the messages.
pub async fn reserve(client: &Client, queue: &str, body: Value) -> Vec<Value> {
    let (status, json) = client
        .post(&format!("{}/reservations", q(queue)), body)
        .await;
    assert_eq!(status, StatusCode::OK, "{json}");
    json["messages"].as_array().expect("messages array").clone()
}

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

/// Reserves (with the default request) every 20 ms until something comes back or `limit`
/// passes.
pub async fn reserve_within(client: &Client, queue: &str, limit: Duration) -> Vec<Value> {
    let deadline = Instant::now() + limit;
    loop {
        let got = reserve(client, queue, serde_json::json!({})).await;
        if !got.is_empty() || Instant::now() >= deadline {
            return got;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// A Redis Cluster of three primaries on loopback ports, each in its own temporary directory.
/// Killed when dropped.
pub struct RedisCluster {
    nodes: Vec<(Child, tempfile::TempDir)>,
    pub ports: Vec<u16>,
}

impl RedisCluster {
    pub fn start() -> Self {
        let mut nodes = Vec::new();
        let mut ports = Vec::new();
        while ports.len() < 3 {
            // The cluster bus listens on port + 10000, which must be free as well.
            let port = free_port();
            if port > 55_000 || std::net::TcpListener::bind(("127.0.0.1", port + 10_000)).is_err() {
                continue;
            }
            let dir = tempfile::tempdir().unwrap();
            let child = Command::new("redis-server")
                .args([
                    "--port",
                    &port.to_string(),
                    "--bind",
                    "127.0.0.1",
                    "--save",
                    "",
                    "--appendonly",
                    "no",
                ])
                .args([
                    "--cluster-enabled",
                    "yes",
                    "--cluster-config-file",
                    "nodes.conf",
                ])
                .current_dir(dir.path())
                .stdout(Stdio::null())
                .spawn()
                .expect("redis-server");
            nodes.push((child, dir));
            ports.push(port);
        }
        let cluster = RedisCluster { nodes, ports };
        for port in &cluster.ports {
            wait_for_ping(&format!("redis://127.0.0.1:{port}"));
        }
        let status = Command::new("redis-cli")
            .args(["--cluster", "create"])
            .args(cluster.ports.iter().map(|p| format!("127.0.0.1:{p}")))
            .args(["--cluster-replicas", "0", "--cluster-yes"])
            .stdout(Stdio::null())
            .status()
            .expect("redis-cli");
        assert!(status.success(), "redis-cli --cluster create failed");
        for port in &cluster.ports {
            let deadline = Instant::now() + Duration::from_secs(20);
            loop {
                let info: String = redis::Client::open(format!("redis://127.0.0.1:{port}"))
                    .and_then(|c| c.get_connection())
                    .and_then(|mut c| redis::cmd("CLUSTER").arg("INFO").query(&mut c))
                    .unwrap_or_default();
                if info.contains("cluster_state:ok") {
                    break;
                }
                assert!(Instant::now() < deadline, "cluster did not settle");
                std::thread::sleep(Duration::from_millis(50));
            }
        }
        cluster
    }

    /// Every node, comma-separated, as REDIS_URL takes them.
    pub fn url(&self) -> String {
        let urls: Vec<String> = self
            .ports
            .iter()
            .map(|p| format!("redis://127.0.0.1:{p}"))
            .collect();
        urls.join(",")
    }
}

impl Drop for RedisCluster {
    fn drop(&mut self) {
        for (child, _) in &mut self.nodes {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

fn wait_for_ping(url: &str) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        if let Ok(client) = redis::Client::open(url)
            && let Ok(mut conn) = client.get_connection()
            && redis::cmd("PING").query::<String>(&mut conn).is_ok()
        {
            return;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    panic!("redis-server at {url} did not come up");
}

// Fault injection (tests/faults.rs): a Redis that survives restarts, processes killed with
// SIGKILL, and requests that may fail without failing the test.

impl RedisServer {
    /// Like `start`, but with append-only persistence fsynced before every answer
    /// (`appendonly yes`, `appendfsync always`, as the README advises for no loss) in its
    /// temporary directory, so `kill` then `restart` keeps every acknowledged write.
    pub fn start_persistent() -> Self {
        let dir = tempfile::tempdir().expect("temporary directory");
        let child = Self::spawn_persistent(dir.path());
        let server = RedisServer { child, dir };
        server.wait_until_up();
        server
    }

    fn spawn_persistent(dir: &std::path::Path) -> Child {
        Command::new("redis-server")
            .args(["--port", "0", "--save", "", "--appendonly", "yes"])
            .args(["--appendfsync", "always", "--dir"])
            .arg(dir)
            .arg("--unixsocket")
            .arg(dir.join("redis.sock"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-server must be installed (make test installs it)")
    }

    /// SIGKILL: no shutdown, no last save. Clients get refused until `restart`.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Starts the server again, with persistence as `start_persistent`, on the same unix
    /// socket and data directory (so it loads what the last run wrote), and waits for it.
    pub fn restart(&mut self) {
        self.kill();
        self.child = Self::spawn_persistent(self.dir.path());
        self.wait_until_up();
    }
}

impl ServerProcess {
    /// SIGTERM, as Kubernetes stops a pod, and waits for the process to exit.
    pub fn terminate(&mut self) {
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(self.child.id().to_string())
            .status();
        let _ = self.child.wait();
    }

    /// SIGKILL: the process gets no chance to finish requests or deliveries in flight.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Client {
    /// Like `call`, for servers that may die or stall: a request not sent, or not answered
    /// within `limit`, is an `Err` with the reason instead of a panic. Answers are checked as
    /// in `raw` (JSON, and a `msg` on errors).
    pub async fn try_call(
        &self,
        method: Method,
        path: &str,
        body: Option<Value>,
        limit: Duration,
    ) -> Result<Answer, String> {
        let mut request = self
            .http
            .request(method, format!("{}{}", self.base, path))
            .timeout(limit);
        if let Some(token) = &self.token {
            request = request.header("Authorization", format!("OAuth {token}"));
        }
        if let Some(body) = body {
            request = request
                .header("Content-Type", "application/json")
                .body(serde_json::to_vec(&body).unwrap());
        }
        let response = request.send().await.map_err(|e| format!("{e:?}"))?;
        checked_answer(path, response)
            .await
            .map_err(|e| format!("{e:?}"))
    }
}
