//! `ferromq standalone -f ...` as a user runs it: a separate process that starts its own
//! redis-server, declares the queues of the manifests and serves them.

use common::subscriber::{Answer, Subscriber};
use common::{Standalone, free_port};
use reqwest::StatusCode;
use serde_json::json;
use std::path::Path;
use std::time::{Duration, Instant};

/// Runs `ferromq standalone` on `files`, which must refuse to start (`what` says what was
/// tried); returns what it wrote to stderr.
fn refused(files: &[&Path], data_dir: &Path, what: &str) -> String {
    let output = Standalone::command(files, data_dir, free_port())
        .output()
        .unwrap();
    assert!(!output.status.success(), "accepted:\n{what}");
    String::from_utf8_lossy(&output.stderr).into_owned()
}

fn path(queue: &str) -> String {
    format!("/3/projects/default/queues/{queue}")
}

#[tokio::test]
async fn standalone_serves_the_example_queues_and_the_push_example_delivers() {
    let examples = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples");
    let data = tempfile::tempdir().unwrap();
    let server = Standalone::start(&[&examples], data.path()).await;
    let client = &server.client;

    let (status, orders) = client.get(&path("orders")).await;
    assert_eq!(status, StatusCode::OK, "{orders}");
    assert_eq!(orders["queue"]["message_timeout"], 60);
    assert_eq!(orders["queue"]["message_expiration"], 86400);
    assert_eq!(orders["queue"]["managed_by"], "Queue default/orders");
    assert_eq!(
        orders["queue"]["dead_letter"],
        json!({"queue_name": "orders-dead", "max_reservations": 5})
    );
    let alert = &orders["queue"]["alerts"][0];
    assert_eq!(
        (
            &alert["type"],
            &alert["trigger"],
            &alert["queue"],
            &alert["snooze"]
        ),
        (
            &json!("fixed"),
            &json!(1000),
            &json!("orders-alerts"),
            &json!(300)
        ),
        "{orders}"
    );
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
    let server = Standalone::start(&[&manifest], &dir.path().join("data")).await;
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

fn queue_manifest(name: &str, spec: &str) -> String {
    format!(
        "apiVersion: ferromq.dev/v1alpha1\nkind: Queue\nmetadata:\n  name: {name}\nspec:\n{spec}"
    )
}

fn subscription_manifest(name: &str, spec: &str) -> String {
    format!(
        "apiVersion: ferromq.dev/v1alpha1\nkind: Subscription\nmetadata:\n  name: {name}\nspec:\n  queue: orders\n{spec}"
    )
}

#[tokio::test]
async fn a_bad_manifest_stops_standalone_with_its_file_and_reason_before_anything_is_stored() {
    let headers: String = (0..6).map(|i| format!("    X-H{i}: v\n")).collect();
    let cases = [
        (
            queue_manifest("loop", "  type: unicast\n  push:\n    errorQueue: loop\n"),
            "may not name the queue itself",
        ),
        (
            queue_manifest("q", "  type: unicast\n  push:\n    retries: 101\n"),
            "spec.push.retries",
        ),
        (
            queue_manifest("q", "  messageTimeout: 10\n"),
            "spec.messageTimeout",
        ),
        (queue_manifest("q", "  type: fifo\n"), "spec.type"),
        (
            queue_manifest("q", "  retries: 3\n"),
            "spec.retries: unknown field",
        ),
        (
            subscription_manifest("s", "  url: ftp://example.com/in\n"),
            "spec.url",
        ),
        (
            subscription_manifest(
                "s",
                &format!("  url: http://example.com\n  headers:\n{headers}"),
            ),
            "spec.headers",
        ),
        (
            subscription_manifest(
                "s",
                "  url: http://example.com\n  headers:\n    Content-Length: \"3\"\n",
            ),
            "Content-Length",
        ),
        (queue_manifest("orders", "  type: pull\n"), "declared twice"),
        (
            queue_manifest("orders", "  type: pull\n  project: default\n").replace(
                "metadata:\n  name: orders",
                "metadata:\n  name: orders\n  namespace: elsewhere",
            ),
            "declared twice",
        ),
        (
            queue_manifest("q", "  type: pull\n").replace("v1alpha1", "v1"),
            "is not served",
        ),
        ("- just\n- a list\n".to_string(), "not a resource"),
        (
            queue_manifest("bad/name", "  type: pull\n"),
            "Invalid queue name",
        ),
        (
            queue_manifest("q", &format!("  project: {}\n", "p".repeat(65))),
            "spec.project",
        ),
    ];
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let good = dir.path().join("a-good.yaml");
    std::fs::write(&good, queue_manifest("orders", "  type: pull\n")).unwrap();
    let bad = dir.path().join("b-bad.yaml");
    for (manifest, expected) in cases {
        std::fs::write(&bad, &manifest).unwrap();
        let stderr = refused(&[&good, &bad], &data, &manifest);
        assert!(
            stderr.contains(expected) && stderr.contains("b-bad.yaml"),
            "{expected:?} not in: {stderr}"
        );
    }
    // The good file's queue was never stored: every run stopped before touching Redis.
    let empty = dir.path().join("empty");
    std::fs::create_dir(&empty).unwrap();
    let server = Standalone::start(&[&empty], &data).await;
    let (status, _) = server.client.get(&path("orders")).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn a_queue_whose_manifest_is_gone_is_released_with_its_messages() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let orders = dir.path().join("orders.yaml");
    std::fs::write(&orders, queue_manifest("orders", "  type: pull\n")).unwrap();
    let jobs = dir.path().join("jobs.yaml");
    std::fs::write(&jobs, queue_manifest("jobs", "  messageTimeout: 120\n")).unwrap();
    {
        let server = Standalone::start(&[&orders, &jobs], &data).await;
        let (status, _) = server
            .client
            .post(
                &format!("{}/messages", path("jobs")),
                json!({"messages": [{"body": "pending"}]}),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED);
    }
    let server = Standalone::start(&[&orders], &data).await;
    let client = &server.client;
    let (_, kept) = client.get(&path("orders")).await;
    assert_eq!(kept["queue"]["managed_by"], "Queue default/orders");
    let (_, released) = client.get(&path("jobs")).await;
    assert_eq!(released["queue"]["size"], 1, "{released}");
    assert_eq!(released["queue"]["message_timeout"], 120);
    assert!(released["queue"].get("managed_by").is_none(), "{released}");
    let (status, body) = client
        .patch(&path("jobs"), json!({"queue": {"message_timeout": 300}}))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    drop(server);

    // Its manifest back: the queue is declared again, messages and all, without adopting.
    let server = Standalone::start(&[&orders, &jobs], &data).await;
    let (_, again) = server.client.get(&path("jobs")).await;
    assert_eq!(
        again["queue"]["managed_by"], "Queue default/jobs",
        "{again}"
    );
    assert_eq!(again["queue"]["message_timeout"], 120);
    assert_eq!(again["queue"]["size"], 1);
}

#[tokio::test]
async fn a_second_standalone_on_the_same_data_directory_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let orders = dir.path().join("orders.yaml");
    std::fs::write(&orders, queue_manifest("orders", "  type: pull\n")).unwrap();
    let _first = Standalone::start(&[&orders], &data).await;
    let stderr = refused(&[&orders], &data, "a second standalone");
    assert!(stderr.contains("already serves"), "{stderr}");
}

#[tokio::test]
async fn a_killed_standalone_takes_its_redis_server_down_with_it() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let orders = dir.path().join("orders.yaml");
    std::fs::write(&orders, queue_manifest("orders", "  type: pull\n")).unwrap();
    let mut server = Standalone::start(&[&orders], &data).await;
    let socket = data.join("redis.sock");
    assert!(std::os::unix::net::UnixStream::connect(&socket).is_ok());
    server.child.kill().unwrap(); // SIGKILL: no chance to clean up
    server.child.wait().unwrap();
    let deadline = Instant::now() + Duration::from_secs(5);
    while std::os::unix::net::UnixStream::connect(&socket).is_ok() {
        assert!(
            Instant::now() < deadline,
            "redis-server outlived standalone"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // And the next run on the same data directory starts cleanly, with the queue.
    let again = Standalone::start(&[&orders], &data).await;
    let (status, _) = again.client.get(&path("orders")).await;
    assert_eq!(status, StatusCode::OK);
}
