//! A replicated Redis of the test's own on loopback ports: a primary, two replicas and three
//! Sentinels watching them (`redis-server --sentinel`, the program Debian's redis-sentinel
//! runs), with a short `down-after-milliseconds` (2 s, long enough that a loaded machine does not
//! trigger a failover by itself) so a failover takes a few seconds. Each node
//! keeps an append-only file in its own directory, so a killed node can come back.

use crate::free_port;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The name the Sentinels monitor the primary by.
pub const MASTER_NAME: &str = "mymaster";

/// One redis-server process (a data node or a Sentinel) that can be killed, paused and
/// started again on the same port and files.
pub struct Node {
    pub port: u16,
    args: Vec<String>,
    child: Option<Child>,
    dir: tempfile::TempDir,
}

impl Node {
    fn start(args: Vec<String>, dir: tempfile::TempDir, port: u16) -> Self {
        let mut node = Node {
            port,
            args,
            child: None,
            dir,
        };
        node.spawn();
        node
    }

    fn spawn(&mut self) {
        let child = Command::new("redis-server")
            .args(&self.args)
            .current_dir(self.dir.path())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-server must be installed (make test installs it)");
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(10);
        while self.query::<String>(&redis::cmd("PING")).is_err() {
            assert!(
                Instant::now() < deadline,
                "port {} did not come up",
                self.port
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// One command on a fresh connection.
    pub fn query<T: redis::FromRedisValue>(&self, cmd: &redis::Cmd) -> redis::RedisResult<T> {
        let client = redis::Client::open(self.url())?;
        let mut conn = client.get_connection_with_timeout(Duration::from_secs(1))?;
        cmd.query(&mut conn)
    }

    /// SIGKILL: no chance to write anything more.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Started again on its port, with the files it had.
    pub fn restart(&mut self) {
        self.kill();
        self.spawn();
    }

    /// SIGSTOP or SIGCONT: a node that stops answering without closing its connections, as
    /// one cut off by the network looks.
    pub fn pause(&self, paused: bool) {
        let pid = self.child.as_ref().expect("running").id().to_string();
        let signal = if paused { "-STOP" } else { "-CONT" };
        // The shell's own kill: no procps needed.
        let status = Command::new("sh")
            .args(["-c", &format!("kill {signal} {pid}")])
            .status()
            .unwrap();
        assert!(status.success());
    }

    /// `role` of `INFO replication`: "master" or "slave".
    pub fn role(&self) -> Option<String> {
        let info: String = self.query(redis::cmd("INFO").arg("replication")).ok()?;
        info_field(&info, "role")
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        if let Some(child) = &self.child {
            // A paused node must run again to die.
            let _ = Command::new("sh")
                .args(["-c", &format!("kill -CONT {}", child.id())])
                .status();
        }
        self.kill();
    }
}

pub struct Replicated {
    /// The data nodes: the first started as the primary.
    pub nodes: Vec<Node>,
    pub sentinels: Vec<Node>,
}

impl Replicated {
    pub fn start() -> Self {
        let mut nodes = Vec::new();
        let primary = free_port();
        for i in 0..3 {
            let port = if i == 0 { primary } else { free_port() };
            let mut args: Vec<String> = [
                "--port",
                &port.to_string(),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "yes",
                "--dir",
                ".",
            ]
            .map(String::from)
            .to_vec();
            if i > 0 {
                args.extend([
                    "--replicaof".into(),
                    "127.0.0.1".into(),
                    primary.to_string(),
                ]);
            }
            nodes.push(Node::start(args, tempfile::tempdir().unwrap(), port));
        }
        for replica in &nodes[1..] {
            wait_until(Duration::from_secs(10), "replicas in sync", || {
                let info: String = replica
                    .query(redis::cmd("INFO").arg("replication"))
                    .unwrap_or_default();
                info.contains("master_link_status:up")
            });
        }
        let mut sentinels = Vec::new();
        for _ in 0..3 {
            let port = free_port();
            let dir = tempfile::tempdir().unwrap();
            let config = format!(
                "port {port}\nbind 127.0.0.1\n\
                 sentinel monitor {MASTER_NAME} 127.0.0.1 {primary} 2\n\
                 sentinel down-after-milliseconds {MASTER_NAME} 2000\n\
                 sentinel failover-timeout {MASTER_NAME} 4000\n\
                 sentinel parallel-syncs {MASTER_NAME} 2\n"
            );
            std::fs::write(dir.path().join("sentinel.conf"), config).unwrap();
            let args = vec!["sentinel.conf".to_string(), "--sentinel".to_string()];
            sentinels.push(Node::start(args, dir, port));
        }
        for sentinel in &sentinels {
            wait_until(
                Duration::from_secs(20),
                "Sentinels that know each other",
                || {
                    let fields: Vec<String> = sentinel
                        .query(redis::cmd("SENTINEL").arg("master").arg(MASTER_NAME))
                        .unwrap_or_default();
                    reply_field(&fields, "num-slaves") == "2"
                        && reply_field(&fields, "num-other-sentinels") == "2"
                },
            );
        }
        Replicated { nodes, sentinels }
    }

    /// `host:port,...` of the Sentinels, as FERROMQ_REDIS_SENTINELS takes them.
    pub fn sentinel_addrs(&self) -> String {
        self.sentinels
            .iter()
            .map(|s| format!("127.0.0.1:{}", s.port))
            .collect::<Vec<_>>()
            .join(",")
    }

    /// The port of the node a live Sentinel names primary.
    pub fn named_primary(&self) -> Option<u16> {
        self.sentinels.iter().find_map(|s| {
            let addr: Vec<String> = s
                .query(
                    redis::cmd("SENTINEL")
                        .arg("get-master-addr-by-name")
                        .arg(MASTER_NAME),
                )
                .ok()?;
            addr.get(1)?.parse().ok()
        })
    }

    /// The data node on `port`.
    pub fn node(&mut self, port: u16) -> &mut Node {
        self.nodes
            .iter_mut()
            .find(|n| n.port == port)
            .expect("a data node")
    }
}

/// A field of an `INFO` reply (`name:value` lines).
pub fn info_field(info: &str, name: &str) -> Option<String> {
    info.lines().find_map(|line| {
        let (key, value) = line.split_once(':')?;
        (key == name).then(|| value.trim().to_string())
    })
}

/// A field of a reply that lists names and values in turn (`SENTINEL MASTER`); empty when
/// missing.
pub fn reply_field(fields: &[String], name: &str) -> String {
    fields
        .iter()
        .position(|f| f == name)
        .and_then(|i| fields.get(i + 1))
        .cloned()
        .unwrap_or_default()
}

/// Waits until `check` holds, or fails the test naming `what`.
pub fn wait_until(limit: Duration, what: &str, mut check: impl FnMut() -> bool) {
    let deadline = Instant::now() + limit;
    while !check() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}
