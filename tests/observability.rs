//! What an operator sees of the data plane: Prometheus metrics (requests, message operations,
//! queue depth, push attempts and latency, Redis errors), request ids, and JSON logs that
//! carry them but never a token.

use common::subscriber::{Answer, Subscriber};
use common::{
    RedisServer, ServerProcess, TOKEN, post_bodies, q, reserve, start_process, start_server,
};
use reqwest::StatusCode;
use serde_json::{Value, json};
use std::time::Duration;

fn at_least(text: &str, name: &str, n: f64) {
    let value = sample(text, name).unwrap_or_else(|| panic!("no {name} in:\n{text}"));
    assert!(value >= n, "{name} is {value}, expected at least {n}");
}

/// The value of the sample `name{labels}` in Prometheus text, if present.
/// The server's `/metrics` page.
async fn metrics_text(base: &str) -> String {
    common::http()
        .get(format!("{base}/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap()
}

fn sample(text: &str, name_and_labels: &str) -> Option<f64> {
    text.lines()
        .find_map(|line| line.strip_prefix(name_and_labels)?.trim().parse().ok())
}

#[tokio::test]
async fn metrics_count_requests_messages_queues_and_pushes() {
    let running = start_server().await;
    let client = &running.client;
    let bodies: Vec<String> = (0..5).map(|i| format!("m{i}")).collect();
    let refs: Vec<&str> = bodies.iter().map(String::as_str).collect();
    post_bodies(client, "watched", &refs).await;
    let got = reserve(client, "watched", json!({"n": 2})).await;
    for message in &got {
        let (status, _) = client
            .delete(
                &format!(
                    "{}/messages/{}",
                    q("watched"),
                    message["id"].as_str().unwrap()
                ),
                Some(json!({"reservation_id": message["reservation_id"]})),
            )
            .await;
        assert_eq!(status, StatusCode::OK);
    }
    // A push queue whose subscriber answers 200, then 500 for good.
    let fine = Subscriber::start(Answer::Always(200)).await;
    let broken = Subscriber::start(Answer::Always(500)).await;
    let (status, _) = client
        .put(
            &q("pushed"),
            json!({"queue": {"type": "multicast", "push": {"retries": 0, "subscribers": [
                {"name": "fine", "url": fine.url}, {"name": "broken", "url": broken.url}]}}}),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    post_bodies(client, "pushed", &["hello"]).await;
    assert!(fine.wait_for(1, Duration::from_secs(5)).await);
    assert!(broken.wait_for(1, Duration::from_secs(5)).await);

    let response = common::http()
        .get(format!("{}/metrics", running.server.base))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let text = response.text().await.unwrap();
    at_least(&text, r#"ferromq_messages_total{operation="posted"}"#, 6.0);
    at_least(
        &text,
        r#"ferromq_messages_total{operation="reserved"}"#,
        2.0,
    );
    at_least(&text, r#"ferromq_messages_total{operation="deleted"}"#, 2.0);
    at_least(
        &text,
        r#"ferromq_http_requests_total{method="POST",status="2xx"}"#,
        2.0,
    );
    at_least(
        &text,
        r#"ferromq_push_attempts_total{outcome="delivered",status="2xx"}"#,
        1.0,
    );
    at_least(
        &text,
        r#"ferromq_push_attempts_total{outcome="failed",status="5xx"}"#,
        1.0,
    );
    at_least(&text, "ferromq_push_latency_seconds_count", 2.0);
    // The queue posted to shows its depth (5 posted, 2 deleted) and reservations (none left).
    assert_eq!(
        sample(&text, r#"ferromq_queue_depth{project="p",queue="watched"}"#),
        Some(3.0),
        "{text}"
    );
    assert_eq!(
        sample(
            &text,
            r#"ferromq_queue_reserved{project="p",queue="watched"}"#
        ),
        Some(0.0)
    );
    let age = sample(
        &text,
        r#"ferromq_queue_oldest_message_age_seconds{project="p",queue="watched"}"#,
    );
    assert!(age.is_some_and(|a| a < 60.0), "{age:?}");

    // Redis gone: its errors are counted.
    drop(running.redis);
    let (status, _) = client.get(&q("watched")).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    let text = metrics_text(&running.server.base).await;
    at_least(
        &text,
        r#"ferromq_store_errors_total{kind="unavailable"}"#,
        1.0,
    );
}

#[tokio::test]
async fn requests_carry_an_id_into_the_json_logs_which_never_show_a_token() {
    let redis = RedisServer::start();
    let mut server = ServerProcess::start_logged(
        &redis,
        &[
            ("FERROMQ_LOG_FORMAT", "json"),
            ("RUST_LOG", "info,ferromq::api=debug,tower_http=debug"),
        ],
    )
    .await;
    let base = &server.base;
    let http = server.http();

    // An id of the caller's is kept; one is made up otherwise. The token rides in the query.
    let given = http
        .get(format!("{base}/3/projects/p/queues?oauth={TOKEN}"))
        .header("x-request-id", "trace-me-42")
        .send()
        .await
        .unwrap();
    assert_eq!(given.status(), StatusCode::OK);
    assert_eq!(given.headers()["x-request-id"], "trace-me-42");
    let made = http
        .get(format!("{base}/3/projects/p/queues/none"))
        .header("authorization", format!("OAuth {TOKEN}"))
        .send()
        .await
        .unwrap();
    let id = made.headers()["x-request-id"].to_str().unwrap().to_string();
    assert_eq!(id.len(), 29, "process prefix and sequence: {id}");

    let lines = server.stop_and_read_logs();
    let logged: Vec<Value> = lines
        .iter()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect();
    assert_eq!(logged.len(), lines.len(), "every line is JSON");
    let with_id = |wanted: &str| {
        logged
            .iter()
            .any(|l| l["span"]["id"] == wanted || l["spans"].to_string().contains(wanted))
    };
    assert!(with_id("trace-me-42"), "{lines:#?}");
    assert!(with_id(&id), "{lines:#?}");
    assert!(
        lines.iter().all(|l| !l.contains(TOKEN)),
        "a token was logged: {lines:#?}"
    );
}

#[tokio::test]
async fn a_push_queue_shows_its_depth_and_oldest_age_with_delayed_messages_waiting() {
    // No push workers: the messages stay where posts put them (the push list and its delayed set).
    let running = start_process(&[("FERROMQ_NO_PUSH", "1")]).await;
    let client = &running.client;
    let subscriber = Subscriber::start(Answer::Always(200)).await;
    let (status, body) = client
        .put(
            &q("pushed"),
            json!({"queue": {"type": "multicast", "push": {"subscribers": [{"name": "s", "url": subscriber.url}]}}}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, body) = client
        .post(
            &format!("{}/messages", q("pushed")),
            json!({"messages": [{"body": "now"}, {"body": "later", "delay": 60}]}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let text = metrics_text(&running.server.base).await;
    assert_eq!(
        sample(&text, r#"ferromq_queue_depth{project="p",queue="pushed"}"#),
        Some(2.0),
        "{text}"
    );
    let age = sample(
        &text,
        r#"ferromq_queue_oldest_message_age_seconds{project="p",queue="pushed"}"#,
    );
    assert!(age.is_some_and(|a| a < 60.0), "{age:?}\n{text}");
}
