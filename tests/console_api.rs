//! What the web console reads beyond IronMQ's API: a queue's stats with its per-minute history
//! (kept in Redis, added to by every process), the projects a token may use, and the console's
//! own files.

use common::subscriber::{Answer as Reply, Subscriber};
use common::{Client, LIMITED_TOKEN, ServerProcess, TOKEN, post_bodies, q, reserve, start_server};
use reqwest::StatusCode;
use serde_json::{Value, json};
use std::time::Duration;

/// How long until every process has added its counts (they do every 5 s).
const RECORDED_WITHIN: Duration = Duration::from_secs(15);

async fn stats(client: &Client, queue: &str) -> Value {
    let (status, body) = client.get(&format!("{}/stats", q(queue))).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body["stats"].clone()
}

/// Polls a queue's stats until `holds`; panics with the last stats after `RECORDED_WITHIN`.
async fn stats_until(client: &Client, queue: &str, holds: impl Fn(&Value) -> bool) -> Value {
    let deadline = std::time::Instant::now() + RECORDED_WITHIN;
    loop {
        let stats = stats(client, queue).await;
        if holds(&stats) {
            return stats;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "not recorded: {stats}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The sum of one field over the recorded minutes.
fn total(stats: &Value, field: &str) -> u64 {
    stats["minutes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m[field].as_u64().unwrap())
        .sum()
}

#[tokio::test]
async fn stats_show_the_queue_now_and_every_process_activity_per_minute() {
    let running = start_server().await;
    let client = &running.client;
    post_bodies(client, "watched", &["a", "b", "c", "d", "e"]).await;
    let reserved = reserve(client, "watched", json!({"n": 2})).await;
    let first = &reserved[0];
    let (status, _) = client
        .delete(
            &format!(
                "{}/messages/{}",
                q("watched"),
                first["id"].as_str().unwrap()
            ),
            Some(json!({"reservation_id": first["reservation_id"]})),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    // A second process on the same Redis adds its own posts to the same history.
    let other = ServerProcess::start(&running.redis).await;
    post_bodies(&other.client(), "watched", &["f", "g", "h"]).await;

    // Posts of both processes.
    let last = stats_until(client, "watched", |s| total(s, "posted") == 8).await;
    assert_eq!(total(&last, "reserved"), 2, "{last}");
    assert_eq!(total(&last, "deleted"), 1, "{last}");
    let minutes = last["minutes"].as_array().unwrap();
    let newest = minutes.last().unwrap();
    assert_eq!(newest["depth"], 7, "depth when last recorded: {last}");
    let now_minute = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
        / 60
        * 60;
    let at = newest["at"].as_u64().unwrap();
    assert!(
        at % 60 == 0 && at + 60 >= now_minute && at <= now_minute,
        "{last}"
    );
    assert_eq!(last["size"], 7, "{last}");
    assert_eq!(last["reserved"], 1, "{last}");
    assert!(last["oldest_message_age"].as_u64().is_some(), "{last}");
    assert_eq!(last["subscribers"], json!([]), "a pull queue has none");
    // Asking for the last minute only leaves out nothing of this minute.
    let (_, recent) = client
        .get(&format!("{}/stats?minutes=1", q("watched")))
        .await;
    assert!(recent["stats"]["minutes"].as_array().unwrap().len() <= 1);
}

#[tokio::test]
async fn stats_show_each_subscriber_answers() {
    let running = start_server().await;
    let client = &running.client;
    let fine = Subscriber::start(Reply::Always(200)).await;
    let (status, body) = client
        .put(
            &q("pushed"),
            json!({"queue": {"type": "multicast", "push": {"subscribers": [
                {"name": "fine", "url": fine.url}]}}}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    post_bodies(client, "pushed", &["x", "y"]).await;
    stats_until(client, "pushed", |s| {
        s["subscribers"] == json!([{"name": "fine", "delivered": 2, "accepted": 0, "failed": 0}])
    })
    .await;
}

#[tokio::test]
async fn stats_refuse_bad_input_and_forget_a_deleted_queue() {
    let running = start_server().await;
    let client = &running.client;
    for bad in ["0", "1441", "abc", "-1"] {
        let (status, body) = client
            .get(&format!("{}/stats?minutes={bad}", q("none")))
            .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "minutes={bad}: {body}");
        assert!(body["msg"].as_str().unwrap().contains("minutes"), "{body}");
    }
    let (status, body) = client.get(&format!("{}/stats", q("none"))).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");

    post_bodies(client, "again", &["a"]).await;
    stats_until(client, "again", |s| total(s, "posted") == 1).await;
    let (status, _) = client.delete(&q("again"), None).await;
    assert_eq!(status, StatusCode::OK);
    let (status, _) = client.put(&q("again"), json!({"queue": {}})).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(stats(client, "again").await["minutes"], json!([]));
}

#[tokio::test]
async fn projects_are_those_the_token_may_use() {
    let running = start_server().await;
    let (status, body) = running.client.get("/3/projects").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body, json!({"projects": [], "all_projects": true}));
    let limited = running.client.with_token(Some(LIMITED_TOKEN));
    let (status, body) = limited.get("/3/projects").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        body,
        json!({"projects": ["allowed"], "all_projects": false})
    );
    for token in [Some("wrong"), None] {
        let (status, body) = running.client.with_token(token).get("/3/projects").await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{token:?}: {body}");
    }
    assert_ne!(TOKEN, LIMITED_TOKEN);
}

#[tokio::test]
async fn console_files_are_served_with_a_strict_policy() {
    let running = start_server().await;
    let base = &running.server.base;
    let http = common::http();
    for (path, kind) in [
        ("/console/", "text/html"),
        ("/console/app.js", "text/javascript"),
        ("/console/app.css", "text/css"),
        ("/console/icon.svg", "image/svg+xml"),
    ] {
        let response = http.get(format!("{base}{path}")).send().await.unwrap();
        assert_eq!(response.status(), StatusCode::OK, "{path}");
        let header = |name: &str| response.headers()[name].to_str().unwrap().to_string();
        assert!(header("content-type").starts_with(kind), "{path}");
        assert!(
            header("content-security-policy").contains("script-src 'self'"),
            "{path}"
        );
        assert_eq!(header("x-content-type-options"), "nosniff");
    }
    let no_redirects = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let response = no_redirects
        .get(format!("{base}/console"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::PERMANENT_REDIRECT);
    assert_eq!(response.headers()["location"], "/console/");
    let response = http
        .get(format!("{base}/console/missing.js"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
    let body: Value = response.json().await.unwrap();
    assert!(body["msg"].is_string());
}
