//! Long polling: a waiting reserve returns as soon as a message is posted, whichever
//! data-plane process the post goes through, and returns empty when the wait is over.

use common::{ServerProcess, post_bodies, q, reserve, start_process, start_server};
use serde_json::json;
use std::time::{Duration, Instant};

#[tokio::test]
async fn post_on_one_process_wakes_a_waiter_on_another() {
    let waiter_side = start_process(&[]).await;
    let poster_side = ServerProcess::start(&waiter_side.redis).await;
    let waiter = waiter_side.client.clone();
    let poster = poster_side.client();
    waiter.put(&q("wake"), json!({})).await;

    let waiting = tokio::spawn(async move {
        let started = Instant::now();
        let got = reserve(&waiter, "wake", json!({"wait": 20})).await;
        (got, started.elapsed())
    });
    // Give the waiter time to find the queue empty and start waiting.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let posted_at = Instant::now();
    let ids = post_bodies(&poster, "wake", &["hello"]).await;
    let (got, waited) = waiting.await.unwrap();
    let woke_after = posted_at.elapsed();

    assert_eq!(got.len(), 1);
    assert_eq!(got[0]["id"], ids[0].as_str());
    assert!(
        waited >= Duration::from_millis(400),
        "returned before the post: {waited:?}"
    );
    // Far below the 2 s re-check: the wake-up came through Redis pub/sub.
    assert!(
        woke_after < Duration::from_millis(1000),
        "woke {woke_after:?} after the post"
    );
}

#[tokio::test]
async fn wait_ends_with_an_empty_list_when_nothing_arrives() {
    let running = start_server().await;
    let client = &running.client;
    client.put(&q("quiet"), json!({})).await;
    let started = Instant::now();
    let got = reserve(client, "quiet", json!({"wait": 1})).await;
    assert!(got.is_empty());
    let waited = started.elapsed();
    assert!(
        waited >= Duration::from_millis(950) && waited < Duration::from_secs(3),
        "{waited:?}"
    );
}

#[tokio::test]
async fn many_waiters_share_a_burst_without_duplicates() {
    let running = start_server().await;
    let client = &running.client;
    client.put(&q("burst"), json!({})).await;
    let mut waiters = Vec::new();
    for _ in 0..10 {
        let client = client.clone();
        waiters.push(tokio::spawn(async move {
            reserve(&client, "burst", json!({"wait": 5})).await
        }));
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    let ids = post_bodies(
        client,
        "burst",
        &["1", "2", "3", "4", "5", "6", "7", "8", "9", "10"],
    )
    .await;
    let mut got = Vec::new();
    for waiter in waiters {
        got.extend(
            waiter
                .await
                .unwrap()
                .into_iter()
                .map(|m| m["id"].as_str().unwrap().to_string()),
        );
    }
    got.sort();
    let mut expected = ids.clone();
    expected.sort();
    assert_eq!(
        got, expected,
        "each posted message went to exactly one waiter"
    );
}

#[tokio::test]
async fn long_poll_on_a_missing_queue_is_404_at_once() {
    let running = start_server().await;
    let started = Instant::now();
    let (status, _) = running
        .client
        .post(&format!("{}/reservations", q("none")), json!({"wait": 10}))
        .await;
    assert_eq!(status, reqwest::StatusCode::NOT_FOUND);
    assert!(started.elapsed() < Duration::from_secs(2));
}
