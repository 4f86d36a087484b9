//! Queue routes over HTTP against a real redis-server: create, read, update, delete, list,
//! auth, and the errors of each.

use common::{Client, LIMITED_TOKEN, q, start_server};
use ferromq::store::keys::project_index;
use reqwest::{Method, StatusCode};
use serde_json::json;

#[tokio::test]
async fn created_queue_reports_defaults_and_counters() {
    let running = start_server().await;
    let client = &running.client;

    let (status, created) = client.put(&q("orders"), json!({})).await;
    assert_eq!(status, StatusCode::OK);
    let queue = &created["queue"];
    assert_eq!(queue["name"], "orders");
    assert_eq!(queue["project_id"], "p");
    assert_eq!(queue["type"], "pull");
    assert_eq!(queue["message_timeout"], 60);
    assert_eq!(queue["message_expiration"], 604800);
    assert_eq!(queue["size"], 0);
    assert_eq!(queue["total_messages"], 0);
    assert!(
        queue.get("push").is_none(),
        "pull queues carry no push object"
    );
    let id = queue["id"].as_str().unwrap().to_string();
    assert_eq!(id.len(), 24);

    common::post_bodies(client, "orders", &["a", "b", "c"]).await;
    let (status, info) = client.get(&q("orders")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(info["queue"]["size"], 3);
    assert_eq!(info["queue"]["total_messages"], 3);
    assert_eq!(info["queue"]["id"], id.as_str(), "the queue id is stable");
}

#[tokio::test]
async fn put_and_patch_change_only_the_fields_given() {
    let running = start_server().await;
    let client = &running.client;

    client
        .put(&q("jobs"), json!({"queue": {"message_timeout": 45}}))
        .await;
    let (status, updated) = client
        .put(&q("jobs"), json!({"queue": {"message_expiration": 3000}}))
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(updated["queue"]["message_timeout"], 45);
    assert_eq!(updated["queue"]["message_expiration"], 3000);

    // Zeros, empty strings and unknown fields mean "leave as is" (the Go client sends them).
    let (status, patched) = client
        .patch(
            &q("jobs"),
            json!({"queue": {"message_timeout": 120, "message_expiration": 0, "name": "", "size": 0, "type": "pull"}}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{patched}");
    assert_eq!(patched["queue"]["message_timeout"], 120);
    assert_eq!(patched["queue"]["message_expiration"], 3000);

    // A bare settings object (no "queue" wrapper) is accepted too.
    let (_, bare) = client
        .patch(&q("jobs"), json!({"message_timeout": 90}))
        .await;
    assert_eq!(bare["queue"]["message_timeout"], 90);
}

#[tokio::test]
async fn out_of_range_settings_are_refused_and_change_nothing() {
    let running = start_server().await;
    let client = &running.client;
    client
        .put(&q("strict"), json!({"queue": {"message_timeout": 45}}))
        .await;

    for bad in [
        json!({"queue": {"message_timeout": 5}}),
        json!({"queue": {"message_timeout": 86401}}),
        json!({"queue": {"message_expiration": 2592001}}),
        json!({"queue": {"message_timeout": "soon"}}),
        json!({"queue": {"type": "fifo"}}),
        json!({"queue": {"dead_letter": {"queue_name": "dlq", "max_reservations": 0}}}),
        json!({"queue": {"dead_letter": {"queue_name": "strict"}}}),
    ] {
        let (status, body) = client.patch(&q("strict"), bad.clone()).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{bad} -> {body}");
    }
    let (_, info) = client.get(&q("strict")).await;
    assert_eq!(info["queue"]["message_timeout"], 45);
    assert_eq!(info["queue"]["message_expiration"], 604800);
}

#[tokio::test]
async fn unknown_queue_answers_404_queue_not_found() {
    let running = start_server().await;
    let client = &running.client;
    let missing = q("missing");
    for (method, path) in [
        (Method::GET, missing.clone()),
        (Method::DELETE, missing.clone()),
        (Method::GET, format!("{missing}/messages")),
        (Method::DELETE, format!("{missing}/messages")),
        (Method::POST, format!("{missing}/reservations")),
        (Method::GET, format!("{missing}/messages/123")),
        (Method::DELETE, format!("{missing}/messages/123")),
    ] {
        let (status, body) = client.call(method.clone(), &path, None).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{method} {path}");
        assert_eq!(body["msg"], "Queue not found", "{method} {path}");
    }
}

#[tokio::test]
async fn deleted_queue_is_gone_with_its_messages() {
    let running = start_server().await;
    let client = &running.client;
    common::post_bodies(client, "temp", &["x", "y"]).await;

    let (status, body) = client.delete(&q("temp"), None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["msg"], "Deleted.");
    assert_eq!(client.get(&q("temp")).await.0, StatusCode::NOT_FOUND);
    let (_, list) = client.get("/3/projects/p/queues").await;
    assert_eq!(list["queues"], json!([]));
    // No key of the queue is left behind.
    let keys: Vec<String> = redis::cmd("KEYS")
        .arg("*temp*")
        .query(&mut running.redis.connection())
        .unwrap();
    assert!(keys.is_empty(), "{keys:?}");

    // Posting again creates it afresh.
    common::post_bodies(client, "temp", &["z"]).await;
    let (_, info) = client.get(&q("temp")).await;
    assert_eq!(info["queue"]["size"], 1);
    assert_eq!(info["queue"]["total_messages"], 1);
}

#[tokio::test]
async fn listing_pages_by_name_with_previous_and_prefix() {
    let running = start_server().await;
    let client = &running.client;
    for name in ["a", "aa", "aaa", "ab", "b", "ba"] {
        client.put(&q(name), json!({})).await;
    }
    client.put("/3/projects/other/queues/zzz", json!({})).await;
    let names = |v: &serde_json::Value| -> Vec<String> {
        v["queues"]
            .as_array()
            .unwrap()
            .iter()
            .map(|q| q["name"].as_str().unwrap().to_string())
            .collect()
    };

    let (_, all) = client.get("/3/projects/p/queues").await;
    assert_eq!(names(&all), ["a", "aa", "aaa", "ab", "b", "ba"]);
    assert_eq!(
        all["queues"][0],
        json!({"name": "a"}),
        "entries carry only the name"
    );

    let (_, page1) = client.get("/3/projects/p/queues?per_page=2").await;
    assert_eq!(names(&page1), ["a", "aa"]);
    let (_, page2) = client
        .get("/3/projects/p/queues?per_page=2&previous=aa")
        .await;
    assert_eq!(names(&page2), ["aaa", "ab"]);
    let (_, rust_client) = client.get("/3/projects/p/queues?per_page=2&prev=ab").await;
    assert_eq!(names(&rust_client), ["b", "ba"]);

    let (_, prefixed) = client.get("/3/projects/p/queues?prefix=a").await;
    assert_eq!(names(&prefixed), ["a", "aa", "aaa", "ab"]);
    let (_, after) = client
        .get("/3/projects/p/queues?prefix=a&previous=aa")
        .await;
    assert_eq!(names(&after), ["aaa", "ab"]);
    let (_, before_prefix) = client.get("/3/projects/p/queues?prefix=b&previous=a").await;
    assert_eq!(names(&before_prefix), ["b", "ba"]);

    let (status, clamped) = client.get("/3/projects/p/queues?per_page=101").await;
    assert_eq!(
        status,
        StatusCode::OK,
        "per_page above 100 is clamped, not refused"
    );
    assert_eq!(names(&clamped).len(), 6);
    let (status, _) = client.get("/3/projects/p/queues?per_page=lots").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let (_, empty) = client.get("/3/projects/nobody/queues").await;
    assert_eq!(empty["queues"], json!([]));
}

#[tokio::test]
async fn tokens_are_checked_before_anything_else() {
    let running = start_server().await;
    let client = &running.client;
    client.put("/3/projects/allowed/queues/q", json!({})).await;

    let anonymous = client.with_token(None);
    let (status, _) = anonymous.get("/3/projects/allowed/queues/q").await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let wrong = client.with_token(Some("nope"));
    assert_eq!(
        wrong.get("/3/projects/allowed/queues/q").await.0,
        StatusCode::UNAUTHORIZED
    );

    let limited = client.with_token(Some(LIMITED_TOKEN));
    assert_eq!(
        limited.get("/3/projects/allowed/queues/q").await.0,
        StatusCode::OK
    );
    let (status, body) = limited.get("/3/projects/p/queues").await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    let (status, _) = limited
        .post(
            "/3/projects/p/queues/x/messages",
            json!({"messages": [{"body": "b"}]}),
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (_, list) = client.get("/3/projects/p/queues").await;
    assert_eq!(list["queues"], json!([]), "a refused post creates nothing");

    // The token may come in the query string instead (webhook senders cannot set headers).
    let (status, _) = anonymous
        .get("/3/projects/allowed/queues/q?oauth=limited-token")
        .await;
    assert_eq!(status, StatusCode::OK);
}

#[tokio::test]
async fn method_override_header_turns_a_post_into_delete_or_patch() {
    let running = start_server().await;
    let client = &running.client;
    client.put(&q("java"), json!({})).await;

    let body = serde_json::to_vec(&json!({"queue": {"message_timeout": 99}})).unwrap();
    let (status, patched) = client
        .raw(
            Method::POST,
            &q("java"),
            Some(body),
            &[("X-HTTP-Method-Override", "PATCH")],
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(patched["queue"]["message_timeout"], 99);

    let (status, deleted) = client
        .raw(
            Method::POST,
            &q("java"),
            None,
            &[("X-HTTP-Method-Override", "DELETE")],
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(deleted["msg"], "Deleted.");
    assert_eq!(client.get(&q("java")).await.0, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn bad_names_paths_and_methods_get_json_errors() {
    let running = start_server().await;
    let client = &running.client;

    let long = "x".repeat(129);
    assert_eq!(
        client.put(&q(&long), json!({})).await.0,
        StatusCode::BAD_REQUEST
    );
    assert_eq!(
        client.put(&q("bad%0Aname"), json!({})).await.0,
        StatusCode::BAD_REQUEST
    );
    assert_eq!(
        client.put(&q("a%2Fb"), json!({})).await.0,
        StatusCode::BAD_REQUEST
    );
    assert_eq!(
        client.put("/3/projects/b%20d/queues/q", json!({})).await.0,
        StatusCode::BAD_REQUEST
    );
    // IronMQ clients use names with spaces, colons and plus signs.
    let (status, created) = client
        .put(&q("2019-09-16%2018:05:31.1%20+0600"), json!({}))
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(created["queue"]["name"], "2019-09-16 18:05:31.1 +0600");

    let (status, body) = client.get("/3/projects/p/nothing-here").await;
    assert_eq!(
        (status, body["msg"].as_str()),
        (StatusCode::NOT_FOUND, Some("Not found"))
    );
    assert_eq!(
        client
            .call(Method::PUT, "/3/projects/p/queues", None)
            .await
            .0,
        StatusCode::METHOD_NOT_ALLOWED
    );

    let (status, body) = client
        .raw(
            Method::PUT,
            &q("broken"),
            Some(b"{\"queue\": ".to_vec()),
            &[],
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(
        body["msg"].as_str().unwrap().contains("Invalid JSON"),
        "{body}"
    );
}

#[tokio::test]
async fn health_and_readiness_answer() {
    let running = start_server().await;
    let client = Client::new(&running.server.base, None);
    assert_eq!(client.get("/healthz").await.0, StatusCode::OK);
    assert_eq!(client.get("/readyz").await.0, StatusCode::OK);
    drop(running.redis);
    let (status, body) = client.get("/readyz").await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    let (status, _) = running.client.get(&q("any")).await;
    assert_eq!(
        status,
        StatusCode::SERVICE_UNAVAILABLE,
        "store calls answer 503 while Redis is down"
    );
}

#[tokio::test]
async fn listing_hides_names_of_gone_queues_and_put_relists_a_queue() {
    let running = start_server().await;
    let client = &running.client;
    client.put(&q("real"), json!({})).await;
    let index = project_index("p");
    let mut conn = running.redis.connection();
    // A name without its queue (left by a crash or a race between processes)...
    let _: i64 = redis::cmd("ZADD")
        .arg(&index)
        .arg(0)
        .arg("ghost")
        .query(&mut conn)
        .unwrap();
    let (_, list) = client.get("/3/projects/p/queues").await;
    assert_eq!(list["queues"], json!([{"name": "real"}]));
    let left: Vec<String> = redis::cmd("ZRANGE")
        .arg(&index)
        .arg(0)
        .arg(-1)
        .query(&mut conn)
        .unwrap();
    assert_eq!(left, ["real"], "and is dropped");
    // ...and a queue whose name got lost is listed again by the next PUT.
    let _: i64 = redis::cmd("ZREM")
        .arg(&index)
        .arg("real")
        .query(&mut conn)
        .unwrap();
    client.put(&q("real"), json!({})).await;
    let (_, list) = client.get("/3/projects/p/queues").await;
    assert_eq!(list["queues"], json!([{"name": "real"}]));
    let (_, zero) = client.get("/3/projects/p/queues?per_page=0").await;
    assert_eq!(
        zero["queues"].as_array().unwrap().len(),
        1,
        "per_page=0 means the default"
    );
}
