//! No message is ever held by two consumers at once: concurrent consumers drain a queue and
//! every message is received exactly once.

use common::{q, start_server};
use reqwest::StatusCode;
use serde_json::json;
use std::collections::HashSet;
use std::sync::{Arc, Mutex};

const MESSAGES: usize = 5_000;
const CONSUMERS: usize = 8;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn eight_consumers_drain_5000_messages_each_received_once() {
    let running = start_server().await;
    let client = &running.client;
    let mut posted = HashSet::new();
    for batch in 0..MESSAGES / 100 {
        let messages: Vec<_> = (0..100)
            .map(|i| json!({"body": format!("m{}", batch * 100 + i)}))
            .collect();
        let (status, body) = client
            .post(
                &format!("{}/messages", q("work")),
                json!({"messages": messages}),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED);
        posted.extend(
            body["ids"]
                .as_array()
                .unwrap()
                .iter()
                .map(|i| i.as_str().unwrap().to_string()),
        );
    }
    assert_eq!(posted.len(), MESSAGES, "ids are unique");

    // Held: what some consumer holds right now. A second holder of one id is the failure.
    let held = Arc::new(Mutex::new(HashSet::new()));
    let received = Arc::new(Mutex::new(Vec::new()));
    let mut consumers = Vec::new();
    for c in 0..CONSUMERS {
        let client = client.clone();
        let held = held.clone();
        let received = received.clone();
        consumers.push(tokio::spawn(async move {
            // Consumers alternate batch sizes so single and batched reserves race each other.
            let n = if c % 2 == 0 { 1 } else { 7 };
            loop {
                let (status, body) = client
                    .post(
                        &format!("{}/reservations", q("work")),
                        json!({"n": n, "timeout": 60}),
                    )
                    .await;
                assert_eq!(status, StatusCode::OK, "{body}");
                let messages = body["messages"].as_array().unwrap().clone();
                if messages.is_empty() {
                    return;
                }
                for m in &messages {
                    let id = m["id"].as_str().unwrap().to_string();
                    assert!(
                        held.lock().unwrap().insert(id.clone()),
                        "{id} held by two consumers"
                    );
                    received.lock().unwrap().push(id);
                }
                let ids: Vec<_> = messages
                    .iter()
                    .map(|m| json!({"id": m["id"], "reservation_id": m["reservation_id"]}))
                    .collect();
                for m in &messages {
                    held.lock().unwrap().remove(m["id"].as_str().unwrap());
                }
                let (status, body) = client
                    .delete(
                        &format!("{}/messages", q("work")),
                        Some(json!({"ids": ids})),
                    )
                    .await;
                assert_eq!(status, StatusCode::OK, "{body}");
            }
        }));
    }
    for consumer in consumers {
        consumer.await.unwrap();
    }

    let received = std::mem::take(&mut *received.lock().unwrap());
    assert_eq!(
        received.len(),
        MESSAGES,
        "every message received exactly once"
    );
    let unique: HashSet<_> = received.iter().cloned().collect();
    assert_eq!(unique, posted);
    let (_, info) = client.get(&q("work")).await;
    assert_eq!(info["queue"]["size"], 0, "nothing remains");
}
