//! `ferromq standalone -f ...` as a user runs it: a separate process that starts its own
//! redis-server, declares the queues of the manifests and serves them.

mod common;

use common::subscriber::{Answer, Subscriber};
use common::{Client, TOKEN, free_port};
use reqwest::StatusCode;
use serde_json::json;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

struct Standalone {
    client: Client,
    child: Child,
}

impl Drop for Standalone {
    /// SIGTERM, as a user's Ctrl-C or Kubernetes would: standalone stops its redis-server too.
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(self.child.id().to_string())
            .status();
        let _ = self.child.wait();
    }
}

/// Starts `ferromq standalone` on `files`, without REDIS_URL, and waits until it serves.
async fn standalone(files: &[&Path], data_dir: &Path) -> Standalone {
    let port = free_port();
    let mut command = Command::new(env!("CARGO_BIN_EXE_ferromq"));
    command.arg("standalone");
    for file in files {
        command.arg("-f").arg(file);
    }
    let child = command
        .arg("--data-dir")
        .arg(data_dir)
        .env_remove("REDIS_URL")
        .env("FERROMQ_TOKENS", format!("{TOKEN}=*"))
        .env("FERROMQ_LISTEN", format!("127.0.0.1:{port}"))
        .env("FERROMQ_PUSH_TIMEOUT", "2")
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .spawn()
        .expect("ferromq binary");
    let base = format!("http://127.0.0.1:{port}");
    let server = Standalone {
        client: Client::new(&base, Some(TOKEN)),
        child,
    };
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let ready = server
            .client
            .http
            .get(format!("{base}/readyz"))
            .send()
            .await;
        if ready.is_ok_and(|r| r.status() == StatusCode::OK) {
            return server;
        }
        assert!(Instant::now() < deadline, "standalone did not become ready");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn path(queue: &str) -> String {
    format!("/3/projects/default/queues/{queue}")
}

#[tokio::test]
async fn standalone_serves_the_example_queues_and_the_push_example_delivers() {
    let examples = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples");
    let data = tempfile::tempdir().unwrap();
    let server = standalone(&[&examples], data.path()).await;
    let client = &server.client;

    let (status, orders) = client.get(&path("orders")).await;
    assert_eq!(status, StatusCode::OK, "{orders}");
    assert_eq!(orders["queue"]["message_timeout"], 60);
    assert_eq!(orders["queue"]["message_expiration"], 86400);
    assert_eq!(orders["queue"]["managed_by"], "Queue default/orders");
    let (status, events) = client.get(&path("events")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(events["queue"]["type"], "multicast");
    assert_eq!(events["queue"]["push"]["error_queue"], "events-failed");
    let (status, _) = client
        .patch(&path("orders"), json!({"queue": {"message_timeout": 300}}))
        .await;
    assert_eq!(status, StatusCode::CONFLICT);

    let (status, posted) = client
        .post(
            &format!("{}/messages", path("events")),
            json!({"messages": [{"body": "order 42 shipped"}]}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{posted}");
    for subscriber_queue in ["events-audit", "events-billing"] {
        let deadline = Instant::now() + Duration::from_secs(10);
        let got = loop {
            let (_, answer) = client
                .post(
                    &format!("{}/reservations", path(subscriber_queue)),
                    json!({}),
                )
                .await;
            let messages = answer["messages"].as_array().cloned().unwrap_or_default();
            if !messages.is_empty() || Instant::now() > deadline {
                break messages;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        };
        assert_eq!(got.len(), 1, "{subscriber_queue}");
        assert_eq!(got[0]["body"], "order 42 shipped");
    }
}

#[tokio::test]
async fn a_manifest_subscription_delivers_to_an_http_subscriber() {
    let hook = Subscriber::start(Answer::Always(200)).await;
    let dir = tempfile::tempdir().unwrap();
    let manifest = dir.path().join("webhook.yaml");
    std::fs::write(
        &manifest,
        format!(
            "apiVersion: ferromq.dev/v1alpha1\nkind: Queue\nmetadata:\n  name: jobs\nspec:\n  type: unicast\n  push:\n    retries: 1\n    retriesDelay: 3\n---\napiVersion: ferromq.dev/v1alpha1\nkind: Subscription\nmetadata:\n  name: worker\nspec:\n  queue: jobs\n  url: {}\n  headers:\n    X-Team: search\n",
            hook.url
        ),
    )
    .unwrap();
    let server = standalone(&[&manifest], &dir.path().join("data")).await;
    let (status, _) = server
        .client
        .post(
            &format!("{}/messages", path("jobs")),
            json!({"messages": [{"body": "reindex"}]}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);
    assert!(hook.wait_for(1, Duration::from_secs(10)).await);
    let got = &hook.received()[0];
    assert_eq!(got.body, "reindex");
    assert_eq!(got.headers["x-team"], "search");
    assert_eq!(got.headers["iron-subscriber-name"], "worker");
}

#[tokio::test]
async fn a_bad_manifest_stops_standalone_with_the_reason() {
    let dir = tempfile::tempdir().unwrap();
    let manifest = dir.path().join("bad.yaml");
    std::fs::write(
        &manifest,
        "apiVersion: ferromq.dev/v1alpha1\nkind: Queue\nmetadata:\n  name: loop\nspec:\n  type: unicast\n  push:\n    errorQueue: loop\n",
    )
    .unwrap();
    let output = Command::new(env!("CARGO_BIN_EXE_ferromq"))
        .args(["standalone", "-f"])
        .arg(&manifest)
        .env_remove("REDIS_URL")
        .env("FERROMQ_TOKENS", format!("{TOKEN}=*"))
        .env("FERROMQ_LISTEN", format!("127.0.0.1:{}", free_port()))
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("may not name the queue itself") && stderr.contains("bad.yaml"),
        "{stderr}"
    );
}
