//! Concurrent single-message calls on one queue share script calls (group commit), and each
//! request still gets exactly its own answer: its own ids, its own messages (none handed out
//! twice, in queue order), its own error.

use common::{Client, eventually, post_bodies, q, reserve, start_server};
use futures_util::future::join_all;
use reqwest::StatusCode;
use serde_json::{Value, json};
use std::collections::HashSet;
use std::time::Duration;

/// How many script calls Redis has run since the last reset.
fn script_calls(redis: &common::RedisServer) -> u64 {
    let info: String = redis::cmd("INFO")
        .arg("commandstats")
        .query(&mut redis.connection())
        .unwrap();
    info.lines()
        .filter(|l| l.starts_with("cmdstat_evalsha:") || l.starts_with("cmdstat_eval:"))
        .filter_map(|l| {
            l.split("calls=")
                .nth(1)?
                .split(',')
                .next()?
                .parse::<u64>()
                .ok()
        })
        .sum()
}

fn reset_stats(redis: &common::RedisServer) {
    let () = redis::cmd("CONFIG")
        .arg("RESETSTAT")
        .query(&mut redis.connection())
        .unwrap();
}

/// Posts `count` messages with bodies `m0`, `m1`... (a batch per 100); their bodies.
async fn post_numbered(client: &Client, queue: &str, count: usize) -> Vec<String> {
    let bodies: Vec<String> = (0..count).map(|i| format!("m{i:03}")).collect();
    for chunk in bodies.chunks(100) {
        let chunk: Vec<&str> = chunk.iter().map(String::as_str).collect();
        post_bodies(client, queue, &chunk).await;
    }
    bodies
}

/// One field of each message of a reserve's answer.
fn field_of(messages: &[Value], field: &str) -> Vec<String> {
    messages
        .iter()
        .map(|m| m[field].as_str().unwrap().to_string())
        .collect()
}

async fn post_one(client: &Client, queue: &str, message: Value) -> (StatusCode, Value) {
    client
        .post(
            &format!("{}/messages", q(queue)),
            json!({ "messages": [message] }),
        )
        .await
}

#[tokio::test]
async fn concurrent_single_posts_share_script_calls_and_each_gets_its_own_id() {
    let running = start_server().await;
    let client = &running.client;
    post_bodies(client, "c", &["first"]).await;
    reset_stats(&running.redis);
    let answers =
        join_all((0..200).map(|i| post_one(client, "c", json!({ "body": format!("m{i}") })))).await;
    let calls = script_calls(&running.redis);
    let mut ids = HashSet::new();
    for (i, (status, body)) in answers.iter().enumerate() {
        assert_eq!(*status, StatusCode::CREATED, "{body}");
        let id = body["ids"][0].as_str().unwrap().to_string();
        // Each request's id is its own message's.
        let (_, got) = client.get(&format!("{}/messages/{id}", q("c"))).await;
        assert_eq!(got["message"]["body"], format!("m{i}"));
        assert!(ids.insert(id), "an id answered twice");
    }
    eprintln!("200 posts took {calls} script calls");
    assert!(calls < 200, "200 posts took {calls} script calls");
    let (_, info) = client.get(&q("c")).await;
    assert_eq!(info["queue"]["size"], 201);
}

#[tokio::test]
async fn a_refused_post_in_a_group_fails_alone() {
    let running = start_server().await;
    let client = &running.client;
    let (status, _) = client
        .put(
            &q("strict"),
            json!({ "queue": { "max_message_size": 16, "message_expiration": 60 } }),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    // Every 10th is too large for the queue, every 10th from the 5th waits longer than the
    // queue keeps messages.
    let message = |i: usize| match i % 10 {
        0 => json!({ "body": "x".repeat(32) }),
        5 => json!({ "body": format!("m{i}"), "delay": 120 }),
        _ => json!({ "body": format!("m{i}") }),
    };
    reset_stats(&running.redis);
    let answers = join_all((0..100).map(|i| post_one(client, "strict", message(i)))).await;
    let calls = script_calls(&running.redis);
    assert!(calls < 100, "100 posts took {calls} script calls");
    let mut accepted = Vec::new();
    for (i, (status, body)) in answers.into_iter().enumerate() {
        match i % 10 {
            0 => assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE, "{body}"),
            5 => assert_eq!(status, StatusCode::BAD_REQUEST, "{body}"),
            _ => {
                assert_eq!(status, StatusCode::CREATED, "{body}");
                accepted.push(format!("m{i}"));
            }
        }
    }
    // Exactly the accepted messages are stored.
    let listed = reserve(client, "strict", json!({ "n": 100 })).await;
    let mut stored = field_of(&listed, "body");
    stored.sort();
    accepted.sort();
    assert_eq!(stored, accepted);
}

#[tokio::test]
async fn concurrent_single_reserves_hand_out_each_message_once_in_queue_order() {
    let running = start_server().await;
    let client = &running.client;
    let bodies = post_numbered(client, "fifo", 300).await;
    reset_stats(&running.redis);
    let answers = join_all((0..150).map(|_| reserve(client, "fifo", json!({ "n": 1 })))).await;
    let calls = script_calls(&running.redis);
    let mut got = HashSet::new();
    let mut rids = HashSet::new();
    for messages in &answers {
        assert_eq!(messages.len(), 1, "{messages:?}");
        assert!(got.insert(messages[0]["body"].as_str().unwrap().to_string()));
        assert!(rids.insert(messages[0]["reservation_id"].as_str().unwrap().to_string()));
    }
    // Handed out from the front: the first 150, once each...
    let first: HashSet<String> = bodies[..150].iter().cloned().collect();
    assert_eq!(got, first);
    // ...each with its own message's reservation id.
    for messages in &answers {
        let (id, rid) = (&messages[0]["id"], &messages[0]["reservation_id"]);
        let (status, body) = client
            .delete(
                &format!("{}/messages/{}", q("fifo"), id.as_str().unwrap()),
                Some(json!({ "reservation_id": rid })),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
    }
    eprintln!("150 reserves took {calls} script calls");
    assert!(calls < 150, "150 reserves took {calls} script calls");
    // ...and the rest still in order behind them.
    let rest = reserve(client, "fifo", json!({ "n": 100 })).await;
    assert_eq!(field_of(&rest, "body"), bodies[150..250]);
}

#[tokio::test]
async fn reserves_in_one_group_keep_their_own_timeouts() {
    let running = start_server().await;
    let client = &running.client;
    post_numbered(client, "timeouts", 40).await;
    // Half reserve for 1 s, half for a minute, all at once.
    let timeout = |i: usize| if i.is_multiple_of(2) { 1 } else { 60 };
    let answers = join_all(
        (0..40).map(|i| reserve(client, "timeouts", json!({ "n": 1, "timeout": timeout(i) }))),
    )
    .await;
    let short: HashSet<String> = answers
        .iter()
        .step_by(2)
        .map(|messages| messages[0]["id"].as_str().unwrap().to_string())
        .collect();
    // Wait until the short reservations have run out (peek shows what is ready again)...
    let ready = || async {
        let (_, peeked) = client
            .get(&format!("{}/messages?n=100", q("timeouts")))
            .await;
        peeked["messages"].as_array().map_or(0, Vec::len)
    };
    assert!(
        eventually(Duration::from_secs(5), || async {
            ready().await >= short.len()
        })
        .await
    );
    // ...then only they are back.
    let back = reserve(client, "timeouts", json!({ "n": 100 })).await;
    let back: HashSet<String> = field_of(&back, "id").into_iter().collect();
    assert_eq!(back, short);
}

#[tokio::test]
async fn a_stale_delete_in_a_group_fails_alone() {
    let running = start_server().await;
    let client = &running.client;
    post_numbered(client, "deletes", 100).await;
    let reserved = reserve(client, "deletes", json!({ "n": 100 })).await;
    assert_eq!(reserved.len(), 100);
    reset_stats(&running.redis);
    let delete = |i: usize, message: &Value| {
        let id = message["id"].as_str().unwrap().to_string();
        // Every 7th gives a reservation id that is not the message's.
        let rid = if i.is_multiple_of(7) {
            "0".repeat(32)
        } else {
            message["reservation_id"].as_str().unwrap().to_string()
        };
        async move {
            let answer = client
                .delete(
                    &format!("{}/messages/{id}", q("deletes")),
                    Some(json!({ "reservation_id": rid })),
                )
                .await;
            (i, id, answer)
        }
    };
    let answers = join_all(reserved.iter().enumerate().map(|(i, m)| delete(i, m))).await;
    let calls = script_calls(&running.redis);
    for (i, id, (status, body)) in answers {
        let (_, still) = client.get(&format!("{}/messages/{id}", q("deletes"))).await;
        if i.is_multiple_of(7) {
            assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
            assert_eq!(still["message"]["id"], id.as_str(), "kept");
        } else {
            assert_eq!(status, StatusCode::OK, "{body}");
            assert!(still.get("message").is_none(), "deleted: {still}");
        }
    }
    eprintln!("100 deletes took {calls} script calls");
    assert!(calls < 100, "100 deletes took {calls} script calls");
}

#[tokio::test]
async fn concurrent_first_posts_create_and_list_the_queue_once() {
    let running = start_server().await;
    let client = &running.client;
    let answers =
        join_all((0..50).map(|i| post_one(client, "fresh", json!({ "body": format!("m{i}") }))))
            .await;
    for (status, body) in &answers {
        assert_eq!(*status, StatusCode::CREATED, "{body}");
    }
    let (_, info) = client.get(&q("fresh")).await;
    assert_eq!(info["queue"]["size"], 50);
    let (_, listed) = client.get("/3/projects/p/queues?per_page=100").await;
    let names: Vec<&Value> = listed["queues"]
        .as_array()
        .unwrap()
        .iter()
        .map(|queue| &queue["name"])
        .collect();
    assert_eq!(names, [&json!("fresh")]);
}

#[tokio::test]
async fn reserves_that_delete_and_reserves_that_hold_share_a_group() {
    let running = start_server().await;
    let client = &running.client;
    post_numbered(client, "mixed", 60).await;
    reset_stats(&running.redis);
    // Every other request takes its message away at once.
    let answers = join_all((0..60usize).map(|i| {
        reserve(
            client,
            "mixed",
            json!({ "n": 1, "delete": i.is_multiple_of(2) }),
        )
    }))
    .await;
    let calls = script_calls(&running.redis);
    assert!(calls < 60, "60 reserves took {calls} script calls");
    let mut seen = HashSet::new();
    for (i, messages) in answers.iter().enumerate() {
        assert_eq!(messages.len(), 1, "{messages:?}");
        let message = &messages[0];
        assert!(seen.insert(message["id"].as_str().unwrap().to_string()));
        let (status, body) = client
            .delete(
                &format!(
                    "{}/messages/{}",
                    q("mixed"),
                    message["id"].as_str().unwrap()
                ),
                Some(json!({ "reservation_id": message["reservation_id"] })),
            )
            .await;
        if i.is_multiple_of(2) {
            // Taken away already: no reservation to delete with.
            assert!(message.get("reservation_id").is_none(), "{message}");
            assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
        } else {
            assert_eq!(status, StatusCode::OK, "{body}");
        }
    }
    let (_, info) = client.get(&q("mixed")).await;
    assert_eq!(info["queue"]["size"], 0);
}

#[tokio::test]
async fn concurrent_touches_and_releases_each_answer_on_their_own() {
    let running = start_server().await;
    let client = &running.client;
    post_numbered(client, "held", 80).await;
    let reserved = reserve(client, "held", json!({ "n": 80 })).await;
    // Every 5th touch gives a reservation id that is not the message's.
    let rid_of = |i: usize, message: &Value| {
        if i.is_multiple_of(5) {
            json!("0".repeat(32))
        } else {
            message["reservation_id"].clone()
        }
    };
    let touch = |i: usize, message: &Value| {
        let path = format!(
            "{}/messages/{}/touch",
            q("held"),
            message["id"].as_str().unwrap()
        );
        let body = json!({ "reservation_id": rid_of(i, message) });
        async move { client.post(&path, body).await }
    };
    reset_stats(&running.redis);
    let touched = join_all(reserved[..40].iter().enumerate().map(|(i, m)| touch(i, m))).await;
    let calls = script_calls(&running.redis);
    assert!(calls < 40, "40 touches took {calls} script calls");
    for (i, (status, body)) in touched.iter().enumerate() {
        if i.is_multiple_of(5) {
            assert_eq!(*status, StatusCode::FORBIDDEN, "{body}");
        } else {
            assert_eq!(*status, StatusCode::OK, "{body}");
            // Its own new reservation id: the message is deleted with it.
            let message = &reserved[i];
            let (status, body) = client
                .delete(
                    &format!("{}/messages/{}", q("held"), message["id"].as_str().unwrap()),
                    Some(json!({ "reservation_id": body["reservation_id"] })),
                )
                .await;
            assert_eq!(status, StatusCode::OK, "{body}");
        }
    }
    let release = |i: usize, message: &Value| {
        let path = format!(
            "{}/messages/{}/release",
            q("held"),
            message["id"].as_str().unwrap()
        );
        let body = json!({ "reservation_id": rid_of(i, message) });
        async move { client.post(&path, body).await }
    };
    reset_stats(&running.redis);
    let released = join_all(
        reserved[40..]
            .iter()
            .enumerate()
            .map(|(i, m)| release(i, m)),
    )
    .await;
    let calls = script_calls(&running.redis);
    assert!(calls < 40, "40 releases took {calls} script calls");
    let mut back = HashSet::new();
    for (i, (status, body)) in released.iter().enumerate() {
        if i.is_multiple_of(5) {
            assert_eq!(*status, StatusCode::FORBIDDEN, "{body}");
        } else {
            assert_eq!(*status, StatusCode::OK, "{body}");
            back.insert(reserved[40 + i]["id"].as_str().unwrap().to_string());
        }
    }
    // Exactly the released messages are ready again; the others stay reserved.
    let again = reserve(client, "held", json!({ "n": 100 })).await;
    let again: HashSet<String> = field_of(&again, "id").into_iter().collect();
    assert_eq!(again, back);
}
