//! Idempotent posts against real Redis: the `Idempotency-Key` header on `POST .../messages`.
//! A repeat of the same key and messages within the window stores nothing and answers the
//! first post's ids (from any process, concurrent repeats too); the same key with other
//! messages is refused with 422; keys are per queue, end with their window, and bad ones are
//! refused with 400.

use common::{Client, RedisServer, ServerProcess, q, start_process, start_server};
use ferromq::store::keys::QueueKeys;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use std::time::Duration;

async fn post_keyed(client: &Client, queue: &str, key: &str, body: Value) -> (StatusCode, Value) {
    client
        .raw(
            Method::POST,
            &format!("{}/messages", q(queue)),
            Some(serde_json::to_vec(&body).unwrap()),
            &[
                ("Content-Type", "application/json"),
                ("Idempotency-Key", key),
            ],
        )
        .await
}

async fn size(client: &Client, queue: &str) -> u64 {
    client.get(&q(queue)).await.1["queue"]["size"]
        .as_u64()
        .unwrap_or(0)
}

fn two() -> Value {
    json!({"messages": [{"body": "a"}, {"body": "b", "delay": 5}]})
}

#[tokio::test]
async fn a_repeated_post_stores_nothing_and_answers_the_first_ids() {
    let redis = RedisServer::start();
    let first = ServerProcess::start(&redis).await;
    let client = first.client();
    let (status, answer) = post_keyed(&client, "orders", "order-17", two()).await;
    assert_eq!(status, StatusCode::CREATED, "{answer}");
    let ids = answer["ids"].clone();
    assert_eq!(ids.as_array().unwrap().len(), 2);

    // Retried (after a timeout, say), here and through another process: the same ids.
    let (status, again) = post_keyed(&client, "orders", "order-17", two()).await;
    assert_eq!(
        (status, &again["ids"]),
        (StatusCode::CREATED, &ids),
        "{again}"
    );
    let second = ServerProcess::start(&redis).await;
    let (status, again) = post_keyed(&second.client(), "orders", "\"order-17\"", two()).await;
    assert_eq!(
        (status, &again["ids"]),
        (StatusCode::CREATED, &ids),
        "quoted: {again}"
    );
    assert_eq!(size(&client, "orders").await, 2, "one copy");

    // The same key with other messages: refused, nothing stored.
    let other = json!({"messages": [{"body": "a"}, {"body": "c"}]});
    let (status, refused) = post_keyed(&client, "orders", "order-17", other).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{refused}");
    assert!(
        refused["msg"].as_str().unwrap().contains("Idempotency-Key"),
        "{refused}"
    );
    // A different delay is a different post too.
    let delayed = json!({"messages": [{"body": "a"}, {"body": "b", "delay": 6}]});
    let (status, _) = post_keyed(&client, "orders", "order-17", delayed).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(size(&client, "orders").await, 2);

    // Keys are per queue; posts without a key are not affected.
    let (status, elsewhere) = post_keyed(&client, "invoices", "order-17", two()).await;
    assert_eq!(status, StatusCode::CREATED);
    assert_ne!(elsewhere["ids"], ids);
    let (status, _) = client
        .post(&format!("{}/messages", q("orders")), two())
        .await;
    assert_eq!(status, StatusCode::CREATED);
    assert_eq!(size(&client, "orders").await, 4);
}

#[tokio::test]
async fn concurrent_repeats_share_one_post() {
    let running = start_server().await;
    let client = &running.client;
    // Sent at once, they share script calls (group commit): still one copy, one set of ids.
    let answers = futures_util::future::join_all((0..20).map(|_| {
        post_keyed(
            client,
            "burst",
            "once",
            json!({"messages": [{"body": "x"}]}),
        )
    }))
    .await;
    let first = answers[0].1["ids"].clone();
    for (status, answer) in &answers {
        assert_eq!(
            (*status, &answer["ids"]),
            (StatusCode::CREATED, &first),
            "{answer}"
        );
    }
    assert_eq!(size(client, "burst").await, 1);
    // And with other messages under the same key among them: those alone are refused.
    let mixed = futures_util::future::join_all((0..10).map(|i| {
        let body = if i % 2 == 0 { "y" } else { "z" };
        post_keyed(
            client,
            "burst",
            "mixed",
            json!({"messages": [{"body": body}]}),
        )
    }))
    .await;
    let created: Vec<&Value> = mixed
        .iter()
        .filter(|(s, _)| *s == StatusCode::CREATED)
        .map(|(_, a)| &a["ids"])
        .collect();
    let refused = mixed
        .iter()
        .filter(|(s, _)| *s == StatusCode::UNPROCESSABLE_ENTITY)
        .count();
    assert_eq!(created.len() + refused, 10, "{mixed:?}");
    assert_eq!(created.len(), 5, "one body's posts win the key: {mixed:?}");
    assert!(created.iter().all(|ids| *ids == created[0]));
    assert_eq!(size(client, "burst").await, 2);
}

#[tokio::test]
async fn a_key_ends_with_its_window() {
    let running = start_process(&[("FERROMQ_IDEMPOTENCY_WINDOW", "1")]).await;
    let client = &running.client;
    let (_, first) = post_keyed(client, "short", "k", two()).await;
    tokio::time::sleep(Duration::from_millis(1200)).await;
    let (status, later) = post_keyed(client, "short", "k", two()).await;
    assert_eq!(status, StatusCode::CREATED);
    assert_ne!(
        later["ids"], first["ids"],
        "a new post once the window is over"
    );
    assert_eq!(size(client, "short").await, 4);
    // Expired records are dropped by later keyed posts.
    tokio::time::sleep(Duration::from_millis(1200)).await;
    post_keyed(client, "short", "other", two()).await;
    let keys = QueueKeys::new("p", "short");
    let left: u64 = redis::cmd("HLEN")
        .arg(keys.idempotent_posts())
        .query(&mut running.redis.connection())
        .unwrap();
    assert_eq!(left, 1, "only the live key is kept");
}

#[tokio::test]
async fn bad_keys_are_refused_and_store_nothing() {
    let running = start_server().await;
    let client = &running.client;
    let long = "k".repeat(256);
    for key in ["\"\"", long.as_str(), "with space", "\"half"] {
        let (status, answer) = post_keyed(client, "strict", key, two()).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{key}: {answer}");
        assert!(answer["msg"].as_str().unwrap().contains("Idempotency-Key"));
    }
    let (status, _) = client.get(&q("strict")).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "not even the queue was made");
}
