//! Redis servers of a test's own: one node on a unix socket (optionally persistent, so it can
//! be killed and restarted), or a cluster of three primaries on loopback ports.

use crate::free_port;
use ferromq::store::{RedisTarget, Store};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

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

    fn spawn_persistent(dir: &Path) -> Child {
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

    /// The store on this server, as `ferromq serve` connects to it.
    pub async fn store(&self) -> Store {
        Store::connect(&RedisTarget::parse(&self.url(), false))
            .await
            .expect("store")
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

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.kill();
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
        for url in cluster.node_urls() {
            wait_for_ping(&url);
        }
        let status = Command::new("redis-cli")
            .args(["--cluster", "create"])
            .args(cluster.ports.iter().map(|p| format!("127.0.0.1:{p}")))
            .args(["--cluster-replicas", "0", "--cluster-yes"])
            .stdout(Stdio::null())
            .status()
            .expect("redis-cli");
        assert!(status.success(), "redis-cli --cluster create failed");
        for url in cluster.node_urls() {
            let deadline = Instant::now() + Duration::from_secs(20);
            loop {
                let info: String = redis::Client::open(url.as_str())
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

    /// Each node's URL.
    pub fn node_urls(&self) -> Vec<String> {
        self.ports
            .iter()
            .map(|p| format!("redis://127.0.0.1:{p}"))
            .collect()
    }

    /// Every node, comma-separated, as REDIS_URL takes them.
    pub fn url(&self) -> String {
        self.node_urls().join(",")
    }

    /// A direct connection to each node, for checking where the store wrote.
    pub fn node_connections(&self) -> Vec<redis::Connection> {
        self.node_urls()
            .iter()
            .map(|url| {
                redis::Client::open(url.as_str())
                    .and_then(|c| c.get_connection())
                    .expect("redis connection")
            })
            .collect()
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
