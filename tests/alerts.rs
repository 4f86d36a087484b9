//! Queue alerts against real Redis: adding, listing, replacing and removing them over REST (and
//! what is refused), the message an alert posts when the size crosses its trigger (fixed and
//! progressive, growing and shrinking, snoozed), one message however many processes change the
//! queue at once, and an alert message whose sending failed, sent by another process once the
//! first is killed.

use common::{
    Client, RedisServer, ServerProcess, eventually, post_bodies, q, reserve, start_server,
};
use ferromq::store::keys::QueueKeys;
use reqwest::StatusCode;
use serde_json::{Value, json};
use std::time::Duration;

fn alerts_path(queue: &str) -> String {
    format!("{}/alerts", q(queue))
}

async fn alerts_of(client: &Client, queue: &str) -> Value {
    let (status, body) = client.get(&q(queue)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body["queue"]["alerts"].clone()
}

/// The alert messages `queue` holds, read (and deleted) in order, as JSON.
async fn alert_messages(client: &Client, queue: &str) -> Vec<Value> {
    reserve(client, queue, json!({"n": 100, "delete": true}))
        .await
        .iter()
        .map(|m| serde_json::from_str(m["body"].as_str().unwrap()).unwrap())
        .collect()
}

/// Waits until `queue` holds `n` messages; false when it does not within a few seconds.
async fn holds(client: &Client, queue: &str, n: u64) -> bool {
    eventually(Duration::from_secs(5), || async {
        client.get(&q(queue)).await.1["queue"]["size"] == n
    })
    .await
}

/// Removes `n` messages by reserving them with delete.
async fn take(client: &Client, queue: &str, n: usize) {
    let got = reserve(client, queue, json!({"n": n, "delete": true})).await;
    assert_eq!(got.len(), n);
}

#[tokio::test]
async fn alerts_are_added_listed_replaced_and_removed() {
    let running = start_server().await;
    let client = &running.client;
    // Added with the queue's settings, as the clients do, ids set by the server.
    let fixed = json!({"type": "fixed", "trigger": 10, "queue": "ops"});
    let (status, body) = client
        .patch(&q("work"), json!({"queue": {"alerts": [fixed]}}))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let listed = body["queue"]["alerts"].as_array().unwrap().clone();
    assert_eq!(listed.len(), 1);
    let first_id = listed[0]["id"].as_str().unwrap().to_string();
    assert_eq!(first_id.len(), 24);
    assert_eq!(
        listed[0],
        json!({"id": first_id, "type": "fixed", "direction": "asc", "trigger": 10,
               "queue": "ops", "snooze": 0})
    );
    // The same alert again is a duplicate, as in IronMQ.
    let (status, body) = client
        .patch(&q("work"), json!({"queue": {"alerts": [fixed]}}))
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(alerts_of(client, "work").await, json!(listed));
    // A PUT of the queue's settings with alerts replaces them (Python's update_alerts), an
    // alert like a current one keeping its id; without alerts it leaves them.
    let (status, body) = client
        .put(
            &q("work"),
            json!({"queue": {"alerts": [fixed], "message_timeout": 90}}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["queue"]["alerts"], json!(listed));
    client
        .put(&q("work"), json!({"queue": {"message_timeout": 60}}))
        .await;
    assert_eq!(alerts_of(client, "work").await, json!(listed));

    // POST adds; PUT replaces, an alert like a current one keeping its id.
    let progressive = json!({"type": "progressive", "direction": "desc", "trigger": 100,
                             "queue": "ops", "snooze": 60});
    let (status, body) = client
        .post(&alerts_path("work"), json!({"alerts": [progressive]}))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["queue"]["alerts"].as_array().unwrap().len(), 2);
    let (status, body) = client
        .put(
            &alerts_path("work"),
            json!({"alerts": [fixed, {"type": "fixed", "direction": "desc", "trigger": 1, "queue": "ops"}]}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let alerts = alerts_of(client, "work").await;
    let alerts = alerts.as_array().unwrap();
    assert_eq!(alerts.len(), 2);
    assert_eq!(alerts[0]["id"], first_id.as_str(), "kept its id");
    assert_eq!(alerts[1]["direction"], "desc");

    // Removed by id, one by path and the rest with a body (the Java client sends whole alerts).
    let (status, body) = client
        .delete(&format!("{}/{first_id}", alerts_path("work")), None)
        .await;
    assert_eq!((status, body), (StatusCode::OK, json!({"msg": "Deleted"})));
    let (status, body) = client
        .delete(&format!("{}/{first_id}", alerts_path("work")), None)
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
    let rest = alerts_of(client, "work").await;
    let (status, body) = client
        .delete(&alerts_path("work"), Some(json!({"alerts": rest})))
        .await;
    assert_eq!((status, body), (StatusCode::OK, json!({"msg": "Deleted"})));
    let (_, info) = client.get(&q("work")).await;
    assert!(info["queue"].get("alerts").is_none(), "{info}");
}

#[tokio::test]
async fn bad_alerts_are_refused_and_change_nothing() {
    let running = start_server().await;
    let client = &running.client;
    let one = json!({"type": "fixed", "trigger": 5, "queue": "ops"});
    client
        .put(&q("bad"), json!({"queue": {"alerts": [one]}}))
        .await;
    let before = alerts_of(client, "bad").await;
    let six: Vec<Value> = (1..=6)
        .map(|t| json!({"type": "fixed", "trigger": t * 10, "queue": "ops"}))
        .collect();
    for (alerts, why) in [
        (json!(six[..5]), "at most 5"),
        (
            json!([{"type": "sliding", "trigger": 1, "queue": "ops"}]),
            "fixed or progressive",
        ),
        (
            json!([{"type": "fixed", "direction": "up", "trigger": 1, "queue": "ops"}]),
            "asc or desc",
        ),
        (
            json!([{"type": "fixed", "trigger": 0, "queue": "ops"}]),
            "trigger of 1 or more",
        ),
        (
            json!([{"type": "fixed", "trigger": -3, "queue": "ops"}]),
            "whole number",
        ),
        (json!([{"type": "fixed", "trigger": 3}]), "needs a queue"),
        (json!([{"trigger": 3, "queue": "ops"}]), "needs a type"),
        (
            json!([{"type": "fixed", "trigger": 5, "queue": "elsewhere"}]),
            "type, direction and trigger",
        ),
        (
            json!([{"type": "fixed", "trigger": 7, "queue": "ops"},
                {"type": "fixed", "trigger": 7, "queue": "other"}]),
            "repeats",
        ),
        (
            json!([{"type": "progressive", "trigger": 7, "queue": "bad"}]),
            "its own queue",
        ),
        (
            json!([{"type": "fixed", "direction": "desc", "trigger": 7, "queue": "bad"}]),
            "its own queue",
        ),
        (
            json!([{"type": "fixed", "trigger": 7, "queue": "a/b"}]),
            "Invalid alerts[0] queue",
        ),
        (json!({"type": "fixed"}), "must be a list"),
    ] {
        let (status, body) = client
            .patch(&q("bad"), json!({"queue": {"alerts": alerts}}))
            .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{alerts}: {body}");
        assert!(body["msg"].as_str().unwrap().contains(why), "{why}: {body}");
        assert_eq!(alerts_of(client, "bad").await, before, "{alerts}");
    }
    // Progressive alerts that post to each other would never stop.
    client
        .put(
            &q("ping"),
            json!({"queue": {"alerts": [{"type": "progressive", "trigger": 1, "queue": "pong"}]}}),
        )
        .await;
    let (status, body) = client
        .put(
            &q("pong"),
            json!({"queue": {"alerts": [{"type": "progressive", "trigger": 2, "queue": "ping"}]}}),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert!(
        body["msg"]
            .as_str()
            .unwrap()
            .contains("pong -> ping -> pong"),
        "{body}"
    );
    // Pull queues only, either way round.
    let (status, body) = client
        .put(
            &q("bad"),
            json!({"queue": {"type": "multicast", "push": {"subscribers": [{"name": "s", "url": "http://127.0.0.1:9/"}]}}}),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert!(
        body["msg"]
            .as_str()
            .unwrap()
            .contains("do not support alerts")
    );
    // Alert routes need the queue, an id, and alerts to act on.
    let (status, _) = client
        .post(&alerts_path("missing"), json!({"alerts": [one]}))
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _) = client
        .post(&alerts_path("bad"), json!({"alerts": []}))
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    // A replacement must say what replaces: a misspelt key removes nothing.
    for body in [json!({}), json!({"alert": []}), json!({"alerts": null})] {
        let (status, answer) = client.put(&alerts_path("bad"), body.clone()).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}: {answer}");
    }
    let (status, _) = client
        .delete(
            &alerts_path("bad"),
            Some(json!({"alerts": [{"type": "fixed"}]})),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(alerts_of(client, "bad").await, before);
}

#[tokio::test]
async fn a_fixed_alert_posts_once_as_the_size_crosses_its_trigger() {
    let running = start_server().await;
    let client = &running.client;
    client
        .put(
            &q("orders"),
            json!({"queue": {"alerts": [{"type": "fixed", "trigger": 3, "queue": "orders-alerts"}]}}),
        )
        .await;
    let alert_id = alerts_of(client, "orders").await[0]["id"].clone();
    post_bodies(client, "orders", &["1", "2"]).await;
    // Below the trigger: nothing (and the target does not exist yet).
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(
        client.get(&q("orders-alerts")).await.0,
        StatusCode::NOT_FOUND
    );
    post_bodies(client, "orders", &["3", "4"]).await;
    assert!(holds(client, "orders-alerts", 1).await);
    let got = alert_messages(client, "orders-alerts").await;
    assert_eq!(got.len(), 1);
    assert_eq!(got[0]["source_queue"], "orders");
    assert_eq!(got[0]["queue_size"], 4);
    assert_eq!(got[0]["alert_id"], alert_id);
    assert_eq!(
        (
            &got[0]["alert_type"],
            &got[0]["alert_direction"],
            &got[0]["alert_trigger"]
        ),
        (&json!("fixed"), &json!("asc"), &json!(3))
    );
    let created = got[0]["created_at"].as_str().unwrap();
    assert!(humantime::parse_rfc3339(created).is_ok(), "{created}");

    // Above it, no more; back below and across again, once more.
    post_bodies(client, "orders", &["5"]).await;
    take(client, "orders", 4).await;
    post_bodies(client, "orders", &["6", "7"]).await;
    assert!(holds(client, "orders-alerts", 1).await);
    let got = alert_messages(client, "orders-alerts").await;
    assert_eq!(got.len(), 1);
    assert_eq!(got[0]["queue_size"], 3);
}

#[tokio::test]
async fn progressive_and_shrinking_alerts_fire_at_each_level_and_snooze() {
    let running = start_server().await;
    let client = &running.client;
    client
        .put(
            &q("levels"),
            json!({"queue": {"alerts": [
                {"type": "progressive", "trigger": 2, "queue": "up"},
                {"type": "fixed", "direction": "desc", "trigger": 1, "queue": "down"},
                {"type": "fixed", "direction": "desc", "trigger": 3, "queue": "quiet", "snooze": 600},
            ]}}),
        )
        .await;
    // One batch crossing two levels posts one message, sized as the queue now is.
    let ids = post_bodies(client, "levels", &["a", "b", "c", "d", "e"]).await;
    assert!(holds(client, "up", 1).await);
    assert_eq!(alert_messages(client, "up").await[0]["queue_size"], 5);
    // Each level again: 6 is one.
    post_bodies(client, "levels", &["f"]).await;
    assert!(holds(client, "up", 1).await);
    assert_eq!(alert_messages(client, "up").await[0]["queue_size"], 6);

    // Shrinking through 3 fires the snoozed alert once; deleting, reserving with delete and
    // clearing all shrink the queue.
    let (status, _) = client
        .delete(&format!("{}/messages/{}", q("levels"), ids[0]), None)
        .await;
    assert_eq!(status, StatusCode::OK);
    let (status, _) = client
        .delete(
            &format!("{}/messages", q("levels")),
            Some(json!({"ids": [{"id": ids[1]}, {"id": ids[2]}]})),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert!(holds(client, "quiet", 1).await);
    assert_eq!(alert_messages(client, "quiet").await[0]["queue_size"], 3);
    post_bodies(client, "levels", &["g", "h"]).await;
    take(client, "levels", 3).await;
    // Below 3 again within the snooze: nothing; the clear takes it through 1.
    let (status, _) = client
        .delete(&format!("{}/messages", q("levels")), Some(json!({})))
        .await;
    assert_eq!(status, StatusCode::OK);
    assert!(holds(client, "down", 1).await);
    let down = alert_messages(client, "down").await;
    assert_eq!(
        (
            down[0]["queue_size"].clone(),
            down[0]["alert_direction"].clone()
        ),
        (json!(0), json!("desc"))
    );
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(client.get(&q("quiet")).await.1["queue"]["size"], 0);
}

#[tokio::test]
async fn many_processes_changing_a_queue_at_once_post_one_alert_message() {
    let redis = RedisServer::start();
    let first = ServerProcess::start(&redis).await;
    let second = ServerProcess::start(&redis).await;
    let (a, b) = (first.client(), second.client());
    a.put(
        &q("busy"),
        json!({"queue": {"alerts": [{"type": "fixed", "trigger": 50, "queue": "busy-alerts"}]}}),
    )
    .await;
    let posts = (0..100).map(|i| {
        let client = if i % 2 == 0 { a.clone() } else { b.clone() };
        async move { post_bodies(&client, "busy", &["m"]).await }
    });
    futures_util::future::join_all(posts).await;
    assert_eq!(a.get(&q("busy")).await.1["queue"]["size"], 100);
    assert!(holds(&a, "busy-alerts", 1).await);
    tokio::time::sleep(Duration::from_millis(300)).await;
    let got = alert_messages(&b, "busy-alerts").await;
    assert_eq!(got.len(), 1, "{got:?}");
    // The size as the change that crossed it left it (posts share script calls).
    assert!(got[0]["queue_size"].as_u64().unwrap() >= 50, "{got:?}");
}

#[tokio::test]
async fn an_alert_message_not_sent_is_sent_by_the_next_change_in_any_process() {
    let redis = RedisServer::start();
    let first = ServerProcess::start(&redis).await;
    let client = first.client();
    client
        .put(
            &q("src"),
            json!({"queue": {"alerts": [{"type": "fixed", "trigger": 1, "queue": "src-alerts"}]}}),
        )
        .await;
    // The target cannot take messages now (its settings key is of the wrong type): the alert
    // fires, its message cannot be sent, and the process is killed.
    let target = QueueKeys::new("p", "src-alerts");
    let mut conn = redis.connection();
    redis::cmd("SET")
        .arg(target.cfg())
        .arg("in the way")
        .exec(&mut conn)
        .unwrap();
    post_bodies(&client, "src", &["one"]).await;
    let listed = || {
        let mut conn = redis.connection();
        redis::cmd("LLEN")
            .arg(QueueKeys::new("p", "src").alerts_fired())
            .query::<u64>(&mut conn)
            .unwrap()
    };
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(listed(), 1, "kept for the next attempt");
    drop(first); // killed

    // Another process, once the target is usable, sends it by itself: nothing else changes.
    redis::cmd("DEL").arg(target.cfg()).exec(&mut conn).unwrap();
    let second = ServerProcess::start(&redis).await;
    let client = second.client();
    assert!(holds(&client, "src-alerts", 1).await);
    // Taken off the list once the target holds it: just after, not at the same instant.
    assert!(eventually(Duration::from_secs(5), || async { listed() == 0 }).await);
    let got = alert_messages(&client, "src-alerts").await;
    assert_eq!((got.len(), got[0]["queue_size"].clone()), (1, json!(1)));
}
