//! The chart's replicated Redis (`redis.architecture: replication`), run from its own start-up
//! script (`charts/ferromq/files/redis-node.sh`) with real `redis-server` processes: three nodes
//! on the loopback addresses 127.0.0.2-4 stand for the three pods, each with its Redis and its
//! Sentinel, and `ferromq serve` is configured as the chart configures it (the Sentinels, the
//! password, one replica's acknowledgement). Checked: the set finds its primary on a cold start
//! with every process started at once, a primary about to stop hands over while posts go on,
//! and a killed primary comes back as a replica of the node promoted in its place; no
//! acknowledged message is lost or stored twice.

use common::replicated::{info_field, reply_field, wait_until};
use common::{Client, ServerProcess, TOKEN, q};
use reqwest::StatusCode;
use serde_json::json;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

const PASSWORD: &str = "chart-s3cret";
const MASTER_NAME: &str = "queues";

/// Ports free on each of the three loopback addresses.
fn ports() -> (u16, u16) {
    let free_everywhere = |port: u16| {
        HOSTS
            .iter()
            .all(|h| std::net::TcpListener::bind((*h, port)).is_ok())
    };
    loop {
        let (a, b) = (common::free_port(), common::free_port());
        if a != b && free_everywhere(a) && free_everywhere(b) {
            return (a, b);
        }
    }
}

const HOSTS: [&str; 3] = ["127.0.0.2", "127.0.0.3", "127.0.0.4"];

/// One pod: its data directory, and its Redis and Sentinel processes.
struct Pod {
    host: &'static str,
    dir: tempfile::TempDir,
    redis: Option<Child>,
    sentinel: Option<Child>,
}

struct Set {
    pods: Vec<Pod>,
    redis_port: u16,
    sentinel_port: u16,
}

fn script() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("charts/ferromq/files/redis-node.sh")
}

impl Set {
    /// The environment the chart gives both containers of a pod.
    fn command(&self, pod: &Pod, mode: &str) -> Command {
        let mut command = Command::new("sh");
        command
            .arg(script())
            .arg(mode)
            .current_dir(pod.dir.path())
            .env("NODES", HOSTS.join(" "))
            .env("SELF", pod.host)
            .env("BIND", pod.host)
            .env("REDIS_PORT", self.redis_port.to_string())
            .env("SENTINEL_PORT", self.sentinel_port.to_string())
            .env("MASTER_NAME", MASTER_NAME)
            .env("QUORUM", "2")
            .env("DOWN_AFTER_MS", "2000")
            .env("FAILOVER_TIMEOUT_MS", "10000")
            .env("REDIS_PASSWORD", PASSWORD)
            .env("CONF_DIR", pod.dir.path())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        command
    }

    /// The Redis container: the arguments the chart passes to the script.
    fn start_redis(&mut self, i: usize) {
        let mut command = self.command(&self.pods[i], "redis");
        command.args([
            "--min-replicas-to-write",
            "1",
            "--min-replicas-max-lag",
            "10",
            "--dir",
            ".",
            "--appendonly",
            "yes",
            "--save",
            "",
        ]);
        self.pods[i].redis = Some(command.spawn().expect("sh and redis-server"));
    }

    fn start_sentinel(&mut self, i: usize) {
        let child = self.command(&self.pods[i], "sentinel").spawn().unwrap();
        self.pods[i].sentinel = Some(child);
    }

    fn query<T: redis::FromRedisValue>(
        &self,
        host: &str,
        port: u16,
        cmd: &redis::Cmd,
    ) -> Option<T> {
        let client = redis::Client::open(format!("redis://:{PASSWORD}@{host}:{port}")).ok()?;
        let mut conn = client
            .get_connection_with_timeout(Duration::from_secs(1))
            .ok()?;
        cmd.query(&mut conn).ok()
    }

    /// `INFO replication` of a node.
    fn replication(&self, i: usize) -> String {
        self.query(
            HOSTS[i],
            self.redis_port,
            redis::cmd("INFO").arg("replication"),
        )
        .unwrap_or_default()
    }

    /// The host every live Sentinel names primary, when they agree.
    fn named_primary(&self) -> Option<String> {
        let mut named = self.pods.iter().filter(|p| p.sentinel.is_some()).map(|p| {
            self.query::<Vec<String>>(
                p.host,
                self.sentinel_port,
                redis::cmd("SENTINEL")
                    .arg("get-master-addr-by-name")
                    .arg(MASTER_NAME),
            )
            .and_then(|a| a.first().cloned())
        });
        let first = named.next()??;
        named.all(|n| n.as_deref() == Some(&first)).then_some(first)
    }

    /// Waits until node `primary` is the primary with the other two replicas linked to it, and
    /// every Sentinel names it and knows the others.
    fn settled(&self, primary: usize, limit: Duration) {
        wait_until(
            limit,
            &format!("node {primary} primary of a settled set"),
            || {
                let replicas_up = (0..3).filter(|&i| i != primary).all(|i| {
                    let info = self.replication(i);
                    let field = |name| info_field(&info, name);
                    field("role").as_deref() == Some("slave")
                        && field("master_host").as_deref() == Some(HOSTS[primary])
                        && field("master_link_status").as_deref() == Some("up")
                });
                let sentinels_know = self.pods.iter().all(|p| {
                    let fields: Vec<String> = self
                        .query(
                            p.host,
                            self.sentinel_port,
                            redis::cmd("SENTINEL").arg("master").arg(MASTER_NAME),
                        )
                        .unwrap_or_default();
                    let get = |name| reply_field(&fields, name);
                    get("ip") == HOSTS[primary]
                        && get("num-slaves") == "2"
                        && get("num-other-sentinels") == "2"
                });
                info_field(&self.replication(primary), "role").as_deref() == Some("master")
                    && replicas_up
                    && sentinels_know
            },
        );
    }

    /// The node every Sentinel names primary, once they agree.
    fn primary_index(&self) -> usize {
        let mut named = None;
        wait_until(Duration::from_secs(15), "Sentinels that agree", || {
            named = self.named_primary();
            named.is_some()
        });
        HOSTS
            .iter()
            .position(|h| Some(*h) == named.as_deref())
            .unwrap()
    }

    fn sentinels(&self) -> String {
        HOSTS
            .iter()
            .map(|h| format!("{h}:{}", self.sentinel_port))
            .collect::<Vec<_>>()
            .join(",")
    }
}

impl Drop for Set {
    fn drop(&mut self) {
        for pod in &mut self.pods {
            for child in [pod.redis.as_mut(), pod.sentinel.as_mut()]
                .into_iter()
                .flatten()
            {
                let _ = child.kill();
                let _ = child.wait();
            }
        }
    }
}

/// Posts `body` until it is acknowledged (a failover answers 503 meanwhile), under one
/// Idempotency-Key so that a retry of a post that was kept stores nothing twice; how long that
/// took.
async fn post_until_acknowledged(client: &Client, body: &str, limit: Duration) -> Duration {
    let start = Instant::now();
    loop {
        let answer = client
            .http
            .post(format!("{}{}/messages", client.base, q("chart")))
            .header("Authorization", format!("OAuth {TOKEN}"))
            .header("Idempotency-Key", body.replace(' ', "-"))
            .timeout(Duration::from_secs(5))
            .json(&json!({"messages": [{"body": body}]}))
            .send()
            .await;
        let status = match answer {
            Ok(response) => response.status(),
            Err(e) => {
                println!("{body}: {e}");
                StatusCode::GATEWAY_TIMEOUT
            }
        };
        if status == StatusCode::CREATED {
            return start.elapsed();
        }
        assert!(
            status == StatusCode::SERVICE_UNAVAILABLE || status == StatusCode::GATEWAY_TIMEOUT,
            "{body}: {status} during a failover"
        );
        assert!(
            start.elapsed() < limit,
            "{body}: not acknowledged in {limit:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chart_replicated_redis_starts_hands_over_and_takes_back_a_killed_primary() {
    let (redis_port, sentinel_port) = ports();
    let mut set = Set {
        pods: HOSTS
            .iter()
            .map(|host| Pod {
                host,
                dir: tempfile::tempdir().unwrap(),
                redis: None,
                sentinel: None,
            })
            .collect(),
        redis_port,
        sentinel_port,
    };
    // A cold start: every container at once, as the StatefulSet starts the pods in parallel.
    for i in 0..3 {
        set.start_redis(i);
        set.start_sentinel(i);
    }
    set.settled(0, Duration::from_secs(30));

    let sentinels = set.sentinels();
    let server = ServerProcess::start_on_sentinels(
        &sentinels,
        &[
            ("FERROMQ_REDIS_MASTER_NAME", MASTER_NAME),
            ("FERROMQ_REDIS_PASSWORD", PASSWORD),
            ("FERROMQ_REDIS_SENTINEL_PASSWORD", PASSWORD),
            ("FERROMQ_MIN_REPLICAS_ACK", "1"),
        ],
    )
    .await;
    let client = server.client();
    post_until_acknowledged(&client, "first", Duration::from_secs(10)).await;

    // The preStop hook of the primary's Redis container: another node takes over before it
    // stops, and the old primary follows it; posts go on meanwhile.
    let posting = Arc::new(AtomicBool::new(true));
    let load = tokio::spawn({
        let (client, posting) = (client.clone(), posting.clone());
        async move {
            let (mut acknowledged, mut longest) = (Vec::new(), Duration::ZERO);
            while posting.load(Ordering::Relaxed) {
                let body = format!("load {}", acknowledged.len());
                let waited = post_until_acknowledged(&client, &body, Duration::from_secs(30)).await;
                longest = longest.max(waited);
                acknowledged.push(body);
            }
            (acknowledged, longest)
        }
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    // The pod's own Sentinel may stop first (its containers stop together): the handover
    // asks the others.
    let mut sentinel = set.pods[0].sentinel.take().unwrap();
    sentinel.kill().unwrap();
    sentinel.wait().unwrap();
    let mut handover = set.command(&set.pods[0], "handover");
    let status = tokio::task::spawn_blocking(move || handover.status().unwrap())
        .await
        .unwrap();
    assert!(status.success(), "handover: {status}");
    tokio::time::sleep(Duration::from_millis(300)).await;
    posting.store(false, Ordering::Relaxed);
    let (mut acknowledged, longest) = load.await.unwrap();
    let promoted = set.primary_index();
    assert_ne!(
        promoted, 0,
        "the Sentinels still name node 0 after its handover"
    );
    set.start_sentinel(0);
    set.settled(promoted, Duration::from_secs(30));
    let waited = post_until_acknowledged(&client, "after handover", Duration::from_secs(15)).await;
    println!(
        "handover: node 0 → node {promoted}; {} posts meanwhile, the longest waited {longest:?}; \
         one after it waited {waited:?}",
        acknowledged.len()
    );

    // The new primary is killed; the Sentinels promote one of the others, and the killed node,
    // started again by its container, joins as a replica of that one.
    let killed = promoted;
    let child = set.pods[killed].redis.as_mut().unwrap();
    child.kill().unwrap();
    child.wait().unwrap();
    let waited = post_until_acknowledged(&client, "after kill", Duration::from_secs(30)).await;
    let next = set.primary_index();
    assert_ne!(next, killed);
    println!("kill: node {killed} killed, node {next} promoted; a post waited {waited:?}");
    set.start_redis(killed);
    set.settled(next, Duration::from_secs(30));

    let mut bodies = Vec::new();
    loop {
        let (status, json) = client
            .post(
                &format!("{}/reservations", q("chart")),
                json!({"n": 100, "timeout": 60}),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{json}");
        let messages = json["messages"].as_array().unwrap();
        if messages.is_empty() {
            break;
        }
        bodies.extend(
            messages
                .iter()
                .map(|m| m["body"].as_str().unwrap().to_string()),
        );
    }
    bodies.sort();
    acknowledged.extend(["first", "after handover", "after kill"].map(String::from));
    acknowledged.sort();
    println!(
        "{} acknowledged, {} received",
        acknowledged.len(),
        bodies.len()
    );
    assert_eq!(bodies, acknowledged, "every acknowledged message, once");
}
