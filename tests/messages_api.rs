//! Message routes over HTTP against a real redis-server: post, reserve, peek, get, delete,
//! batch delete, clear, touch, release, webhook, and the errors of each.

use common::{MAX_MESSAGE_SIZE, post_bodies, q, reserve, start_server};
use ferromq::store::keys::QueueKeys;
use reqwest::{Method, StatusCode};
use serde_json::json;

#[tokio::test]
async fn post_answers_201_with_ids_in_order_and_creates_the_queue() {
    let running = start_server().await;
    let client = &running.client;

    let (status, body) = client
        .post(
            &format!("{}/messages", q("new")),
            json!({"messages": [{"body": "one"}, {"body": "two"}]}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);
    assert_eq!(body["msg"], "Messages put on queue.");
    let ids: Vec<&str> = body["ids"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i.as_str().unwrap())
        .collect();
    assert_eq!(ids.len(), 2);
    assert_ne!(ids[0], ids[1]);
    assert!(
        ids.iter()
            .all(|id| !id.is_empty() && id.bytes().all(|b| b.is_ascii_digit()))
    );

    let (_, info) = client.get(&q("new")).await;
    assert_eq!(info["queue"]["type"], "pull");
    assert_eq!(info["queue"]["size"], 2);
    let got = reserve(client, "new", json!({"n": 2})).await;
    assert_eq!(got[0]["id"], ids[0]);
    assert_eq!(got[1]["id"], ids[1]);
}

#[tokio::test]
async fn reserve_hands_out_fifo_with_counts_and_reservation_ids() {
    let running = start_server().await;
    let client = &running.client;
    let ids = post_bodies(client, "fifo", &["1", "2", "3"]).await;

    let first = reserve(client, "fifo", json!({})).await;
    assert_eq!(first.len(), 1, "n defaults to 1");
    assert_eq!(first[0]["id"], ids[0].as_str());
    assert_eq!(first[0]["body"], "1");
    assert_eq!(first[0]["reserved_count"], 1);
    let rid = first[0]["reservation_id"].as_str().unwrap();
    assert_eq!(rid.len(), 32, "128 random bits");

    let rest = reserve(client, "fifo", json!({"n": 10})).await;
    let bodies: Vec<&str> = rest.iter().map(|m| m["body"].as_str().unwrap()).collect();
    assert_eq!(bodies, ["2", "3"], "fewer than n when fewer are ready");
    assert_eq!(
        reserve(client, "fifo", json!({"n": 1})).await,
        Vec::<serde_json::Value>::new()
    );

    // Reserved messages still count in size until deleted.
    let (_, info) = client.get(&q("fifo")).await;
    assert_eq!(info["queue"]["size"], 3);
}

#[tokio::test]
async fn reserve_with_delete_removes_at_once() {
    let running = start_server().await;
    let client = &running.client;
    let ids = post_bodies(client, "pop", &["a", "b"]).await;

    let popped = reserve(
        client,
        "pop",
        json!({"n": 1, "delete": true, "timeout": 30}),
    )
    .await;
    assert_eq!(popped[0]["id"], ids[0].as_str());
    let (_, info) = client.get(&q("pop")).await;
    assert_eq!(info["queue"]["size"], 1);
    let (status, _) = client
        .get(&format!("{}/messages/{}", q("pop"), ids[0]))
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn peek_shows_ready_messages_without_reserving() {
    let running = start_server().await;
    let client = &running.client;
    post_bodies(client, "peek", &["a", "b", "c"]).await;
    let path = format!("{}/messages", q("peek"));

    let (status, peeked) = client.get(&format!("{path}?n=3")).await;
    assert_eq!(status, StatusCode::OK);
    let messages = peeked["messages"].as_array().unwrap();
    assert_eq!(messages.len(), 3);
    assert_eq!(messages[0]["reserved_count"], 0);
    assert!(messages[0].get("reservation_id").is_none());

    reserve(client, "peek", json!({"n": 1})).await;
    let (_, after) = client.get(&format!("{path}?n=3")).await;
    let bodies: Vec<&str> = after["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["body"].as_str().unwrap())
        .collect();
    assert_eq!(bodies, ["b", "c"], "reserved messages are not peeked");
    let (_, one) = client.get(&path).await;
    assert_eq!(
        one["messages"].as_array().unwrap().len(),
        1,
        "n defaults to 1"
    );

    assert_eq!(
        client.get(&format!("{path}?n=101")).await.0,
        StatusCode::BAD_REQUEST
    );
    assert_eq!(
        client.get(&format!("{path}?n=many")).await.0,
        StatusCode::BAD_REQUEST
    );
}

#[tokio::test]
async fn get_by_id_reads_without_reserving() {
    let running = start_server().await;
    let client = &running.client;
    let ids = post_bodies(client, "get", &["payload"]).await;
    let path = format!("{}/messages/{}", q("get"), ids[0]);

    let (status, got) = client.get(&path).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        got["message"],
        json!({"id": ids[0], "body": "payload", "reserved_count": 0})
    );
    reserve(client, "get", json!({})).await;
    let (_, reserved) = client.get(&path).await;
    assert_eq!(
        reserved["message"]["reserved_count"], 1,
        "reserved messages can be read too"
    );

    let (status, body) = client.get(&format!("{}/messages/999", q("get"))).await;
    assert_eq!(
        (status, body["msg"].as_str()),
        (StatusCode::NOT_FOUND, Some("Message not found"))
    );
}

#[tokio::test]
async fn delete_needs_the_current_reservation_of_a_reserved_message() {
    let running = start_server().await;
    let client = &running.client;
    let ids = post_bodies(client, "del", &["reserved", "free"]).await;
    let reserved = reserve(client, "del", json!({})).await;
    let rid = reserved[0]["reservation_id"].as_str().unwrap();
    let path = format!("{}/messages/{}", q("del"), ids[0]);

    let (status, body) = client.delete(&path, None).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    let (status, _) = client
        .delete(
            &path,
            Some(json!({"reservation_id": "0123456789abcdef0123456789abcdef"})),
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, body) = client
        .delete(&path, Some(json!({"reservation_id": rid})))
        .await;
    assert_eq!(
        (status, body["msg"].as_str()),
        (StatusCode::OK, Some("Deleted"))
    );
    assert_eq!(
        client
            .delete(&path, Some(json!({"reservation_id": rid})))
            .await
            .0,
        StatusCode::NOT_FOUND
    );

    // An unreserved message needs no reservation id; the Go client sends an empty one.
    let free = format!("{}/messages/{}", q("del"), ids[1]);
    assert_eq!(
        client
            .delete(&free, Some(json!({"reservation_id": ""})))
            .await
            .0,
        StatusCode::OK
    );
    let (_, info) = client.get(&q("del")).await;
    assert_eq!(info["queue"]["size"], 0);
}

#[tokio::test]
async fn batch_delete_is_all_or_nothing() {
    let running = start_server().await;
    let client = &running.client;
    let ids = post_bodies(client, "batch", &["a", "b", "c", "d"]).await;
    let reserved = reserve(client, "batch", json!({"n": 2})).await;
    let path = format!("{}/messages", q("batch"));

    // One entry lacks its reservation: nothing is deleted.
    let entries = json!({"ids": [
        {"id": ids[0], "reservation_id": reserved[0]["reservation_id"]},
        {"id": ids[1]},
    ]});
    let (status, body) = client.delete(&path, Some(entries)).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    let (_, info) = client.get(&q("batch")).await;
    assert_eq!(info["queue"]["size"], 4);

    let entries = json!({"ids": [
        {"id": ids[0], "reservation_id": reserved[0]["reservation_id"]},
        {"id": ids[1], "reservation_id": reserved[1]["reservation_id"]},
        ids[2],
    ]});
    let (status, body) = client.delete(&path, Some(entries)).await;
    assert_eq!(
        (status, body["msg"].as_str()),
        (StatusCode::OK, Some("Deleted"))
    );
    let (_, info) = client.get(&q("batch")).await;
    assert_eq!(info["queue"]["size"], 1);

    let unknown = json!({"ids": [{"id": ids[3]}, {"id": "42"}]});
    assert_eq!(
        client.delete(&path, Some(unknown)).await.0,
        StatusCode::NOT_FOUND
    );
    let too_many: Vec<String> = (0..101).map(|i| i.to_string()).collect();
    assert_eq!(
        client.delete(&path, Some(json!({"ids": too_many}))).await.0,
        StatusCode::BAD_REQUEST
    );
    let (_, info) = client.get(&q("batch")).await;
    assert_eq!(info["queue"]["size"], 1);
}

#[tokio::test]
async fn delete_without_ids_clears_the_queue() {
    let running = start_server().await;
    let client = &running.client;
    post_bodies(client, "clear", &["a", "b", "c"]).await;
    reserve(client, "clear", json!({})).await;
    let path = format!("{}/messages", q("clear"));

    // PHP puts its token in the body; it must not turn a clear into anything else.
    let (status, body) = client
        .delete(&path, Some(json!({"oauth": "test-token"})))
        .await;
    assert_eq!(
        (status, body["msg"].as_str()),
        (StatusCode::OK, Some("Cleared"))
    );
    let (_, info) = client.get(&q("clear")).await;
    assert_eq!(info["queue"]["size"], 0);
    assert_eq!(
        info["queue"]["total_messages"], 3,
        "counters survive a clear"
    );
    assert!(reserve(client, "clear", json!({})).await.is_empty());
    let (status, _) = client.delete(&path, None).await;
    assert_eq!(status, StatusCode::OK, "an empty body clears too");
}

#[tokio::test]
async fn touch_issues_a_new_reservation_and_retires_the_old_one() {
    let running = start_server().await;
    let client = &running.client;
    let ids = post_bodies(client, "touch", &["x"]).await;
    let reserved = reserve(client, "touch", json!({})).await;
    let old = reserved[0]["reservation_id"].as_str().unwrap();
    let path = format!("{}/messages/{}", q("touch"), ids[0]);

    let (status, touched) = client
        .post(&format!("{path}/touch"), json!({"reservation_id": old}))
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(touched["msg"], "Touched");
    let new = touched["reservation_id"].as_str().unwrap();
    assert_ne!(new, old);

    assert_eq!(
        client
            .post(&format!("{path}/touch"), json!({"reservation_id": old}))
            .await
            .0,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        client
            .delete(&path, Some(json!({"reservation_id": old})))
            .await
            .0,
        StatusCode::FORBIDDEN
    );
    let (status, body) = client.post(&format!("{path}/touch"), json!({})).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    let (status, _) = client
        .post(
            &format!("{path}/touch"),
            json!({"reservation_id": new, "timeout": 86401}),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(
        client
            .delete(&path, Some(json!({"reservation_id": new})))
            .await
            .0,
        StatusCode::OK
    );
    let (status, _) = client
        .post(&format!("{path}/touch"), json!({"reservation_id": new}))
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn released_message_returns_to_the_front() {
    let running = start_server().await;
    let client = &running.client;
    let ids = post_bodies(client, "release", &["first", "second"]).await;
    let reserved = reserve(client, "release", json!({})).await;
    let rid = reserved[0]["reservation_id"].as_str().unwrap();
    let path = format!("{}/messages/{}", q("release"), ids[0]);

    let (status, body) = client
        .post(&format!("{path}/release"), json!({"reservation_id": rid}))
        .await;
    assert_eq!(
        (status, body["msg"].as_str()),
        (StatusCode::OK, Some("Released"))
    );
    assert_eq!(
        client
            .delete(&path, Some(json!({"reservation_id": rid})))
            .await
            .0,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        client
            .post(&format!("{path}/release"), json!({"reservation_id": rid}))
            .await
            .0,
        StatusCode::FORBIDDEN
    );

    let again = reserve(client, "release", json!({"n": 2})).await;
    assert_eq!(
        again[0]["id"],
        ids[0].as_str(),
        "released message comes first"
    );
    assert_eq!(again[0]["reserved_count"], 2);
    assert_eq!(again[1]["id"], ids[1].as_str());

    let rid = again[0]["reservation_id"].as_str().unwrap();
    let (status, _) = client
        .post(
            &format!("{path}/release"),
            json!({"reservation_id": rid, "delay": 604801}),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(
        client.post(&format!("{path}/release"), json!({})).await.0,
        StatusCode::BAD_REQUEST
    );
}

#[tokio::test]
async fn bad_post_and_reserve_bodies_answer_400_and_store_nothing() {
    let running = start_server().await;
    let client = &running.client;
    let posts = format!("{}/messages", q("input"));
    let reserves = format!("{}/reservations", q("input"));

    for bad in [
        json!({}),
        json!({"messages": []}),
        json!({"messages": [{"delay": 1}]}),
        json!({"messages": [{"body": 42}]}),
        json!({"messages": [{"body": "ok"}, {"body": "late", "delay": 604801}]}),
        json!({"messages": [{"body": "ok", "push_headers": {"Content-Type": "x"}}]}),
        json!({"messages": [{"body": "ok", "push_headers": {"a": "1", "b": "1", "c": "1", "d": "1", "e": "1", "f": "1"}}]}),
        json!({"messages": [{"body": "ok", "push_headers": {"X-Empty": ""}}]}),
        json!({"messages": "hello"}),
        json!({"messages": (0..101).map(|i| json!({"body": i.to_string()})).collect::<Vec<_>>()}),
    ] {
        let (status, body) = client.post(&posts, bad.clone()).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{bad} -> {body}");
    }
    let (status, _) = client
        .raw(Method::POST, &posts, Some(b"not json".to_vec()), &[])
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(
        client.get(&q("input")).await.0,
        StatusCode::NOT_FOUND,
        "nothing half-written"
    );

    post_bodies(client, "input", &["kept"]).await;
    for bad in [
        json!({"n": 101}),
        json!({"n": -1}),
        json!({"n": "x"}),
        json!({"timeout": 86401}),
        json!({"delete": "maybe"}),
    ] {
        let (status, body) = client.post(&reserves, bad.clone()).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{bad} -> {body}");
    }
    let (_, peeked) = client.get(&posts).await;
    assert_eq!(
        peeked["messages"][0]["reserved_count"], 0,
        "refused reserves reserve nothing"
    );
    // Zeros and strings are tolerated as clients send them; a wait beyond 30 s is cut to 30.
    let got = reserve(client, "input", json!({"n": "1", "timeout": 0, "wait": 31})).await;
    assert_eq!(got.len(), 1);
}

#[tokio::test]
async fn oversized_messages_and_requests_answer_413() {
    let running = start_server().await;
    let client = &running.client;
    let posts = format!("{}/messages", q("big"));

    let fits = "x".repeat(MAX_MESSAGE_SIZE);
    let (status, _) = client
        .post(&posts, json!({"messages": [{"body": fits}]}))
        .await;
    assert_eq!(status, StatusCode::CREATED);
    let too_big = "x".repeat(MAX_MESSAGE_SIZE + 1);
    let (status, body) = client
        .post(
            &posts,
            json!({"messages": [{"body": "small"}, {"body": too_big}]}),
        )
        .await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE, "{body}");
    let huge = vec![b' '; 300 * 1024];
    let (status, _) = client.raw(Method::POST, &posts, Some(huge), &[]).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
    let (_, info) = client.get(&q("big")).await;
    assert_eq!(info["queue"]["size"], 1, "the refused batch stored nothing");
}

#[tokio::test]
async fn a_queue_can_set_a_lower_message_size_limit_of_its_own() {
    let running = start_server().await;
    let client = &running.client;
    let (status, body) = client
        .put(&q("small"), json!({"queue": {"max_message_size": 10}}))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["queue"]["max_message_size"], 10);
    let posts = format!("{}/messages", q("small"));
    let (status, _) = client
        .post(&posts, json!({"messages": [{"body": "ten bytes!"}]}))
        .await;
    assert_eq!(status, StatusCode::CREATED);
    let (status, body) = client
        .post(
            &posts,
            json!({"messages": [{"body": "ok"}, {"body": "eleven byte"}]}),
        )
        .await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE, "{body}");
    let msg = body["msg"].as_str().unwrap_or_default();
    assert!(
        msg.contains("messages[1]") && msg.contains("10 bytes"),
        "{msg}"
    );
    let (_, info) = client.get(&q("small")).await;
    assert_eq!(info["queue"]["size"], 1, "the refused batch stored nothing");

    // 0 returns to the server's limit only.
    let (_, body) = client
        .patch(&q("small"), json!({"queue": {"max_message_size": 0}}))
        .await;
    assert!(body["queue"].get("max_message_size").is_none(), "{body}");
    let (status, _) = client
        .post(&posts, json!({"messages": [{"body": "eleven byte"}]}))
        .await;
    assert_eq!(status, StatusCode::CREATED);
    let (status, _) = client
        .patch(
            &q("small"),
            json!({"queue": {"max_message_size": 17_000_000}}),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn webhook_stores_the_raw_body_with_subscriber_headers() {
    let running = start_server().await;
    let anonymous = running.client.with_token(None);
    let path = format!("{}/webhook?oauth={}", q("hooks"), common::TOKEN);

    let (status, body) = anonymous
        .raw(
            Method::POST,
            &path,
            Some(b"{\"event\": \"push\"}".to_vec()),
            &[
                ("Content-Type", "application/json"),
                ("X-Subscribers-Trace", "abc"),
                ("X-Subscribers-Content-Type", "dropped"),
            ],
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(body["ids"].as_array().unwrap().len(), 1);
    let got = reserve(&running.client, "hooks", json!({})).await;
    assert_eq!(got[0]["body"], "{\"event\": \"push\"}");
    let stored: String = redis::cmd("HGET")
        .arg(QueueKeys::new("p", "hooks").headers())
        .arg(got[0]["id"].as_str().unwrap())
        .query(&mut running.redis.connection())
        .unwrap();
    assert_eq!(stored, "{\"trace\":\"abc\"}");
}

#[tokio::test]
async fn a_clock_stepped_back_moves_new_ids_past_the_ones_in_use() {
    let running = start_server().await;
    let client = &running.client;
    let first = post_bodies(client, "steps", &["first"]).await;
    // An id: post time in ms (13 digits), six digits of the queue's count, the queue's number.
    let (ms, rest) = first[0].split_at(13);
    let (seq, number) = rest.split_at(6);
    assert_eq!(seq, "000001");
    let posted: u64 = ms.parse().unwrap();

    // As if the clock had stepped back: the last post lies ahead, and the id the next post
    // would get at any ms of the next 3 s is taken.
    let keys = QueueKeys::new("p", "steps");
    let mut conn = running.redis.connection();
    let set = |key: &str, field: &str, value: &str, conn: &mut redis::Connection| {
        redis::cmd("HSET")
            .arg(key)
            .arg(field)
            .arg(value)
            .query::<()>(conn)
            .unwrap()
    };
    set(
        keys.cfg(),
        "last_post",
        &(posted + 60_000).to_string(),
        &mut conn,
    );
    let taken: Vec<String> = (posted..posted + 3_000)
        .map(|t| format!("{t}000002{number}"))
        .collect();
    for id in &taken {
        set(keys.body(), id, "older", &mut conn);
    }

    let second = post_bodies(client, "steps", &["second"]).await;
    assert!(!taken.contains(&second[0]), "{} was in use", second[0]);
    assert!(
        second[0].ends_with(&format!("000002{number}")),
        "{}",
        second[0]
    );
    let (status, got) = client
        .get(&format!("{}/messages/{}", q("steps"), second[0]))
        .await;
    assert_eq!(status, StatusCode::OK, "{got}");
    assert_eq!(got["message"]["body"], "second");
    let older: Vec<String> = redis::cmd("HMGET")
        .arg(keys.body())
        .arg(&taken[0])
        .arg(&taken[2_999])
        .query(&mut conn)
        .unwrap();
    assert_eq!(older, ["older", "older"]);
}

#[tokio::test]
async fn message_ids_are_unique_across_queues() {
    let running = start_server().await;
    let client = &running.client;
    let mut posts = Vec::new();
    for queue in 0..8 {
        let client = client.clone();
        posts.push(tokio::spawn(async move {
            let bodies: Vec<String> = (0..50).map(|i| i.to_string()).collect();
            let bodies: Vec<&str> = bodies.iter().map(String::as_str).collect();
            post_bodies(&client, &format!("fresh-{queue}"), &bodies).await
        }));
    }
    let mut ids = std::collections::HashSet::new();
    for post in posts {
        ids.extend(post.await.unwrap());
    }
    assert_eq!(ids.len(), 400);
}

#[tokio::test]
async fn a_delay_reaching_past_expiration_is_refused() {
    let running = start_server().await;
    let client = &running.client;
    client
        .put(&q("brief"), json!({"queue": {"message_expiration": 60}}))
        .await;
    let posts = format!("{}/messages", q("brief"));
    let (status, body) = client
        .post(
            &posts,
            json!({"messages": [{"body": "fine", "delay": 59}, {"body": "lost", "delay": 60}]}),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(
        body["msg"].as_str().unwrap().contains("messages[1]"),
        "{body}"
    );
    let (_, info) = client.get(&q("brief")).await;
    assert_eq!(info["queue"]["size"], 0, "nothing of the batch was stored");
}
