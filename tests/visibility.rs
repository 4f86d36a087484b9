//! Time and visibility: reservations that run out, touch, delayed posts and releases, and
//! message expiration. Each test waits for real time to pass, and checks both sides of the
//! boundary: hidden before it, visible after it.

use common::{eventually, post_bodies, q, reserve, reserve_within, start_server};
use reqwest::StatusCode;
use serde_json::json;
use std::time::{Duration, Instant};

#[tokio::test]
async fn reserved_message_is_invisible_until_its_timeout_then_returns_counted() {
    let running = start_server().await;
    let client = &running.client;
    let ids = post_bodies(client, "vis", &["m", "behind"]).await;

    let first = reserve(client, "vis", json!({"timeout": 1})).await;
    let reserved_at = Instant::now();
    let rid = first[0]["reservation_id"].as_str().unwrap().to_string();
    let next = reserve(client, "vis", json!({"timeout": 30})).await;
    assert_eq!(next[0]["body"], "behind", "the reserved message is skipped");
    assert!(reserve(client, "vis", json!({})).await.is_empty());

    let back = reserve_within(client, "vis", Duration::from_secs(5)).await;
    assert!(!back.is_empty(), "never came back");
    assert!(
        reserved_at.elapsed() >= Duration::from_millis(900),
        "came back too early"
    );
    assert_eq!(back[0]["id"], ids[0].as_str());
    assert_eq!(back[0]["reserved_count"], 2);
    // The timed-out reservation may no longer act on the message.
    let path = format!("{}/messages/{}", q("vis"), ids[0]);
    assert_eq!(
        client
            .delete(&path, Some(json!({"reservation_id": rid})))
            .await
            .0,
        StatusCode::FORBIDDEN
    );
}

#[tokio::test]
async fn a_timed_out_reservation_goes_behind_the_messages_waiting() {
    let running = start_server().await;
    let client = &running.client;
    let ids = post_bodies(client, "lapse", &["first", "second", "third"]).await;
    let first = reserve(client, "lapse", json!({"timeout": 1})).await;
    assert_eq!(first[0]["id"], ids[0].as_str());
    // Once the reservation has run out (peek sees all three again)...
    assert!(
        eventually(Duration::from_secs(5), || async {
            let (_, peeked) = client.get(&format!("{}/messages?n=3", q("lapse"))).await;
            peeked["messages"].as_array().map_or(0, Vec::len) == 3
        })
        .await
    );
    // ...the next reserves take the second, the third, then the first again.
    let mut order = Vec::new();
    for _ in 0..3 {
        let got = reserve(client, "lapse", json!({})).await;
        order.push(got[0]["id"].as_str().unwrap().to_string());
    }
    assert_eq!(order, [ids[1].as_str(), ids[2].as_str(), ids[0].as_str()]);
}

#[tokio::test]
async fn touch_extends_a_reservation() {
    let running = start_server().await;
    let client = &running.client;
    let ids = post_bodies(client, "touchy", &["m"]).await;
    let path = format!("{}/messages/{}", q("touchy"), ids[0]);

    let got = reserve(client, "touchy", json!({"timeout": 1})).await;
    let (_, touched) = client
        .post(
            &format!("{path}/touch"),
            json!({"reservation_id": got[0]["reservation_id"], "timeout": 3}),
        )
        .await;
    let touched_at = Instant::now();
    // Past the first timeout the message stays reserved...
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert!(
        reserve(client, "touchy", json!({})).await.is_empty(),
        "touch did not extend"
    );
    // ...and the new reservation still deletes it.
    let (status, _) = client
        .delete(
            &path,
            Some(json!({"reservation_id": touched["reservation_id"]})),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert!(touched_at.elapsed() < Duration::from_secs(3));
}

#[tokio::test]
async fn release_with_delay_hides_the_message_that_long() {
    let running = start_server().await;
    let client = &running.client;
    let ids = post_bodies(client, "later", &["m"]).await;
    let got = reserve(client, "later", json!({})).await;
    let path = format!("{}/messages/{}/release", q("later"), ids[0]);

    let (status, _) = client
        .post(
            &path,
            json!({"reservation_id": got[0]["reservation_id"], "delay": 1}),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let released_at = Instant::now();
    assert!(
        reserve(client, "later", json!({})).await.is_empty(),
        "visible before its delay"
    );
    let (_, peeked) = client.get(&format!("{}/messages", q("later"))).await;
    assert_eq!(
        peeked["messages"],
        json!([]),
        "delayed messages are not peeked"
    );

    let back = reserve_within(client, "later", Duration::from_secs(5)).await;
    assert!(!back.is_empty(), "never came back");
    assert!(released_at.elapsed() >= Duration::from_millis(900));
    assert_eq!(back[0]["reserved_count"], 2);
}

#[tokio::test]
async fn delayed_post_is_invisible_until_due() {
    let running = start_server().await;
    let client = &running.client;
    let (status, posted) = client
        .post(
            &format!("{}/messages", q("delayed")),
            json!({"messages": [{"body": "later", "delay": 1}, {"body": "now"}]}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);
    let posted_at = Instant::now();
    let now = reserve(client, "delayed", json!({"n": 2})).await;
    assert_eq!(now.len(), 1);
    assert_eq!(now[0]["body"], "now");
    let (_, info) = client.get(&q("delayed")).await;
    assert_eq!(info["queue"]["size"], 2, "delayed messages count in size");

    let due = reserve_within(client, "delayed", Duration::from_secs(5)).await;
    assert!(!due.is_empty(), "never came back");
    assert!(posted_at.elapsed() >= Duration::from_millis(900));
    assert_eq!(due[0]["id"], posted["ids"][0]);
    assert_eq!(due[0]["reserved_count"], 1);
}

#[tokio::test]
async fn expiration_removes_a_message_that_was_never_deleted() {
    let running = start_server().await;
    let client = &running.client;
    client
        .put(&q("short"), json!({"queue": {"message_expiration": 1}}))
        .await;
    let ids = post_bodies(client, "short", &["reserved", "ready", "delayed"]).await;
    // One message is held past its expiration, one waits, one is released with a delay.
    let held = reserve(client, "short", json!({"n": 1, "timeout": 2})).await;
    assert_eq!(held[0]["id"], ids[0].as_str());
    let second = reserve(client, "short", json!({"n": 1, "timeout": 30})).await;
    let third = reserve(client, "short", json!({"n": 1, "timeout": 30})).await;
    let release = format!("{}/messages/{}/release", q("short"), ids[2]);
    client
        .post(
            &release,
            json!({"reservation_id": third[0]["reservation_id"], "delay": 2}),
        )
        .await;
    let release = format!("{}/messages/{}/release", q("short"), ids[1]);
    client
        .post(
            &release,
            json!({"reservation_id": second[0]["reservation_id"]}),
        )
        .await;

    assert!(
        eventually(Duration::from_secs(6), || async {
            let (_, info) = client.get(&q("short")).await;
            info["queue"]["size"] == 0
        })
        .await,
        "expired messages leave the queue, held, ready or delayed"
    );
    assert!(
        reserve(client, "short", json!({})).await.is_empty(),
        "never handed out again"
    );
    for id in &ids {
        let (status, _) = client.get(&format!("{}/messages/{id}", q("short"))).await;
        assert_eq!(status, StatusCode::NOT_FOUND);
    }
    let (_, info) = client.get(&q("short")).await;
    assert_eq!(info["queue"]["total_messages"], 3);
}

#[tokio::test]
async fn a_lapsed_reservation_is_refused_even_when_many_lapse_at_once() {
    let running = start_server().await;
    let client = &running.client;
    let bodies: Vec<String> = (0..300).map(|i| i.to_string()).collect();
    let bodies: Vec<&str> = bodies.iter().map(String::as_str).collect();
    let mut held = Vec::new();
    for chunk in bodies.chunks(100) {
        post_bodies(client, "many", chunk).await;
        held.extend(reserve(client, "many", json!({"n": 100, "timeout": 1})).await);
    }
    assert_eq!(held.len(), 300);
    tokio::time::sleep(Duration::from_millis(1200)).await;
    // More reservations lapsed than one call puts back; each one is still refused.
    for m in held.iter().rev().take(3) {
        let path = format!("{}/messages/{}", q("many"), m["id"].as_str().unwrap());
        let (status, _) = client
            .delete(&path, Some(json!({"reservation_id": m["reservation_id"]})))
            .await;
        assert_eq!(
            status,
            StatusCode::FORBIDDEN,
            "a lapsed reservation deleted a message"
        );
        let (status, _) = client
            .post(
                &format!("{path}/touch"),
                json!({"reservation_id": m["reservation_id"]}),
            )
            .await;
        assert_eq!(
            status,
            StatusCode::FORBIDDEN,
            "a lapsed reservation was extended"
        );
    }
    let first = reserve(client, "many", json!({})).await;
    assert_eq!(first[0]["id"], held[0]["id"], "the oldest comes back first");
}
