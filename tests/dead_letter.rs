//! Dead-letter queues against real Redis: the settings over REST (and what is refused), the
//! move of a message reserved too often (same id, body and reserved_count, not handed out),
//! across Redis Cluster nodes, a process killed with its move cut short (finished later by
//! another process, nothing lost or stored twice), and a dead-letter queue removed while
//! messages were on their way.

use common::{
    Client, RedisServer, ServerProcess, eventually, post_bodies, q, reserve, reserve_within,
    start_cluster_server, start_server,
};
use ferromq::store::keys::QueueKeys;
use reqwest::StatusCode;
use serde_json::{Value, json};
use std::time::Duration;

/// Reserves the next message and releases it at once: one more reservation spent.
async fn reserve_and_release(client: &Client, queue: &str) -> Option<Value> {
    let got = reserve(client, queue, json!({})).await;
    let message = got.first()?.clone();
    let path = format!("{}/messages/{}/release", q(queue), message["id"].as_str()?);
    let (status, body) = client
        .post(&path, json!({"reservation_id": message["reservation_id"]}))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    Some(message)
}

async fn set_dead_letter(client: &Client, queue: &str, dead_letter: Value) -> (StatusCode, Value) {
    client
        .put(&q(queue), json!({"queue": {"dead_letter": dead_letter}}))
        .await
}

#[tokio::test]
async fn dead_letter_settings_are_kept_shown_and_checked() {
    let running = start_server().await;
    let client = &running.client;
    let (status, body) = set_dead_letter(client, "jobs", json!({"queue_name": "jobs-dead"})).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(
        body["queue"]["dead_letter"],
        json!({"queue_name": "jobs-dead", "max_reservations": 10}),
        "max_reservations defaults to 10"
    );
    // The target is created with default settings, and may not lead back.
    let (status, target) = client.get(&q("jobs-dead")).await;
    assert_eq!(
        (status, target["queue"]["type"].as_str()),
        (StatusCode::OK, Some("pull"))
    );
    let (status, body) = set_dead_letter(client, "jobs-dead", json!({"queue_name": "jobs"})).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert!(
        body["msg"]
            .as_str()
            .unwrap()
            .contains("jobs-dead -> jobs -> jobs-dead"),
        "{body}"
    );
    // A change keeps what it does not name.
    let (status, body) = client
        .patch(
            &q("jobs"),
            json!({"queue": {"dead_letter": {"max_reservations": 3}}}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (_, info) = client.get(&q("jobs")).await;
    assert_eq!(
        info["queue"]["dead_letter"],
        json!({"queue_name": "jobs-dead", "max_reservations": 3})
    );

    // Refused with 400, and nothing changes.
    for (bad, why) in [
        (
            json!({"queue_name": "x", "max_reservations": 0}),
            "between 1 and 1000",
        ),
        (
            json!({"queue_name": "x", "max_reservations": 1001}),
            "between 1 and 1000",
        ),
        (json!({"queue_name": "jobs"}), "its own dead_letter"),
        (
            json!({"queue_name": "a/b"}),
            "Invalid dead_letter queue_name",
        ),
        (json!({"queue_name": "x", "other": 1}), "unknown field"),
    ] {
        let (status, body) = set_dead_letter(client, "jobs", bad.clone()).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{bad}: {body}");
        let msg = body["msg"].as_str().unwrap_or_default();
        assert!(msg.contains(why), "{bad}: {msg}");
    }
    let (_, after) = client.get(&q("jobs")).await;
    assert_eq!(after["queue"]["dead_letter"], info["queue"]["dead_letter"]);

    // Push queues have error queues instead.
    let (status, body) = client
        .put(
            &q("pushed"),
            json!({"queue": {"type": "multicast", "dead_letter": {"queue_name": "d"},
                   "push": {"subscribers": [{"name": "s", "url": "http://127.0.0.1:9/"}]}}}),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert!(body["msg"].as_str().unwrap().contains("pull queues"));
    let (status, body) = client
        .patch(
            &q("jobs"),
            json!({"queue": {"type": "multicast",
                   "push": {"subscribers": [{"name": "s", "url": "http://127.0.0.1:9/"}]}}}),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");

    // An empty queue_name removes it.
    let (status, body) = set_dead_letter(client, "jobs", json!({"queue_name": ""})).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(body["queue"].get("dead_letter").is_none(), "{body}");
}

#[tokio::test]
async fn a_message_reserved_too_often_moves_to_the_dead_letter_queue() {
    let running = start_server().await;
    let client = &running.client;
    set_dead_letter(
        client,
        "work",
        json!({"queue_name": "work-dead", "max_reservations": 2}),
    )
    .await;
    let ids = post_bodies(client, "work", &["poison", "fine"]).await;
    // Two reservations of the first message are allowed...
    for count in 1..=2 {
        let got = reserve_and_release(client, "work").await.unwrap();
        assert_eq!(
            (got["id"].as_str(), got["reserved_count"].as_u64()),
            (Some(ids[0].as_str()), Some(count))
        );
    }
    // ...the third reserve skips it (it moves) and hands out the next one instead.
    let got = reserve(client, "work", json!({"n": 2})).await;
    assert_eq!(got.len(), 1, "{got:?}");
    assert_eq!(got[0]["id"], ids[1].as_str());
    // The move runs beside the reserve's answer.
    let source = format!("{}/messages/{}", q("work"), ids[0]);
    assert!(
        eventually(Duration::from_secs(5), || async {
            client.get(&source).await.0 == StatusCode::NOT_FOUND
        })
        .await,
        "gone from the source"
    );

    // In the dead-letter queue (created with default settings): same id, body and count.
    let (status, info) = client.get(&q("work-dead")).await;
    assert_eq!(status, StatusCode::OK, "{info}");
    assert_eq!(
        (
            info["queue"]["type"].as_str(),
            info["queue"]["size"].as_u64()
        ),
        (Some("pull"), Some(1))
    );
    let dead = reserve_within(client, "work-dead", Duration::from_secs(5)).await;
    assert_eq!(dead.len(), 1);
    assert_eq!(
        (
            dead[0]["id"].as_str(),
            dead[0]["body"].as_str(),
            dead[0]["reserved_count"].as_u64()
        ),
        (Some(ids[0].as_str()), Some("poison"), Some(3)),
        "reserved twice at the source, once here"
    );
}

#[tokio::test]
async fn a_moved_message_expires_by_the_dead_letter_queues_settings_from_its_arrival() {
    let running = start_server().await;
    let client = &running.client;
    // The dead-letter queue keeps messages 2 s after they arrive.
    let (status, body) = client
        .put(
            &q("brief-dead"),
            json!({"queue": {"message_expiration": 2}}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    set_dead_letter(
        client,
        "brief",
        json!({"queue_name": "brief-dead", "max_reservations": 1}),
    )
    .await;
    let ids = post_bodies(client, "brief", &["late"]).await;
    let path = format!("{}/messages/{}", q("brief-dead"), ids[0]);
    // Posted longer ago than the dead-letter queue keeps messages...
    tokio::time::sleep(Duration::from_millis(2500)).await;
    reserve_and_release(client, "brief").await.unwrap();
    assert!(reserve(client, "brief", json!({})).await.is_empty());
    // ...it is kept there from its arrival on,
    assert!(
        eventually(Duration::from_secs(5), || async {
            client.get(&path).await.1["message"]["body"] == "late"
        })
        .await
    );
    // and expires 2 s after it.
    tokio::time::sleep(Duration::from_millis(2300)).await;
    assert_eq!(client.get(&path).await.0, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn dead_letter_moves_cross_redis_cluster_nodes() {
    let running = start_cluster_server().await;
    let client = &running.client;
    // Which primary serves a queue: the one whose slot ranges hold its keys' slot.
    let mut conn = running.redis.node_connections().remove(0);
    let ranges: Vec<(i64, i64, Vec<redis::Value>)> =
        redis::cmd("CLUSTER").arg("SLOTS").query(&mut conn).unwrap();
    let mut node_of = |queue: &str| -> usize {
        let slot: i64 = redis::cmd("CLUSTER")
            .arg("KEYSLOT")
            .arg(QueueKeys::new("p", queue).cfg())
            .query(&mut conn)
            .unwrap();
        ranges
            .iter()
            .position(|(start, end, _)| (*start..=*end).contains(&slot))
            .unwrap()
    };
    let mut across = 0;
    for k in 0..6 {
        let (source, target) = (format!("src-{k}"), format!("dlq-{k}"));
        if node_of(&source) != node_of(&target) {
            across += 1;
        }
        let (status, body) = set_dead_letter(
            client,
            &source,
            json!({"queue_name": target, "max_reservations": 1}),
        )
        .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        let ids = post_bodies(client, &source, &["m"]).await;
        reserve_and_release(client, &source).await.unwrap();
        assert!(reserve(client, &source, json!({})).await.is_empty());
        let dead = reserve_within(client, &target, Duration::from_secs(5)).await;
        assert_eq!(dead.len(), 1, "{source} -> {target}");
        assert_eq!(dead[0]["id"], ids[0].as_str());
    }
    assert!(
        across > 0,
        "no queue sat on another node than its dead-letter queue"
    );
}

#[tokio::test]
async fn a_move_cut_short_is_finished_by_the_next_reserve_of_any_process() {
    let redis = RedisServer::start();
    let first = ServerProcess::start(&redis).await;
    let client = first.client();
    set_dead_letter(
        &client,
        "cut",
        json!({"queue_name": "cut-dead", "max_reservations": 1}),
    )
    .await;
    let ids = post_bodies(&client, "cut", &["keep me", "next"]).await;
    reserve_and_release(&client, "cut").await.unwrap();

    // The dead-letter queue cannot take messages now (its settings key is of the wrong type),
    // so no move gets past its first step: the message waits in the source's DEAD list, and
    // the process is killed with its move failed or still under way.
    let target = QueueKeys::new("p", "cut-dead");
    let mut conn = redis.connection();
    redis::cmd("SET")
        .arg(target.cfg())
        .arg("in the way")
        .exec(&mut conn)
        .unwrap();
    let got = reserve(&client, "cut", json!({})).await;
    assert_eq!(got[0]["id"], ids[1].as_str(), "the reserve still answers");
    let waiting: Vec<String> = redis::cmd("LRANGE")
        .arg(QueueKeys::new("p", "cut").dead_letters())
        .arg(0)
        .arg(-1)
        .query(&mut conn)
        .unwrap();
    assert_eq!(waiting, [ids[0].clone()], "kept for the next attempt");
    drop(first); // killed

    // Another process, once the target is usable: its next reserve finishes the move.
    redis::cmd("DEL").arg(target.cfg()).exec(&mut conn).unwrap();
    let second = ServerProcess::start(&redis).await;
    let client = second.client();
    assert!(reserve(&client, "cut", json!({})).await.is_empty());
    // (Its settings were removed above: the move creates the queue again.)
    assert!(
        eventually(Duration::from_secs(5), || async {
            client.get(&q("cut-dead")).await.1["queue"]["size"] == 1
        })
        .await
    );
    let dead = reserve(&client, "cut-dead", json!({"n": 10})).await;
    assert_eq!(dead.len(), 1, "moved once: {dead:?}");
    assert_eq!(
        (dead[0]["id"].as_str(), dead[0]["body"].as_str()),
        (Some(ids[0].as_str()), Some("keep me"))
    );
    // A repeated move after it (a process that read DEAD before the move ended) stores
    // nothing twice.
    let store = redis.store().await;
    assert_eq!(
        store
            .move_dead_letters("p", "cut", "cut-dead")
            .await
            .unwrap(),
        0
    );
    let (_, info) = client.get(&q("cut-dead")).await;
    assert_eq!(info["queue"]["size"], 1);

    // A mover that died after storing the message there but before ending the move leaves it
    // in DEAD, still stored here. A consumer takes it from the dead-letter queue meanwhile:
    // the move repeated after that stores nothing again (the dead-letter queue knows it).
    let (status, body) = client
        .delete(
            &format!("{}/messages/{}", q("cut-dead"), ids[0]),
            Some(json!({"reservation_id": dead[0]["reservation_id"]})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let source = QueueKeys::new("p", "cut");
    redis::pipe()
        .hset(source.body(), &ids[0], "keep me")
        .rpush(source.dead_letters(), &ids[0])
        .exec(&mut conn)
        .unwrap();
    store
        .move_dead_letters("p", "cut", "cut-dead")
        .await
        .unwrap();
    let (_, info) = client.get(&q("cut-dead")).await;
    assert_eq!(info["queue"]["size"], 0, "not stored again: {info}");
    let left: (bool, u64) = redis::pipe()
        .hexists(source.body(), &ids[0])
        .llen(source.dead_letters())
        .query(&mut conn)
        .unwrap();
    assert_eq!(left, (false, 0), "the move ended");
}

#[tokio::test]
async fn removing_the_dead_letter_queue_hands_back_messages_on_their_way() {
    let running = start_server().await;
    let client = &running.client;
    set_dead_letter(
        client,
        "back",
        json!({"queue_name": "back-dead", "max_reservations": 1}),
    )
    .await;
    let ids = post_bodies(client, "back", &["m", "behind"]).await;
    reserve_and_release(client, "back").await.unwrap();
    // The dead-letter queue cannot take messages now: the first one waits on its way there.
    redis::cmd("SET")
        .arg(QueueKeys::new("p", "back-dead").cfg())
        .arg("in the way")
        .exec(&mut running.redis.connection())
        .unwrap();
    let got = reserve(client, "back", json!({})).await;
    assert_eq!(got[0]["id"], ids[1].as_str());
    // Without a dead-letter queue, it is handed out again, from the front.
    let (status, body) = set_dead_letter(client, "back", json!({"queue_name": ""})).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let again = reserve(client, "back", json!({})).await;
    assert_eq!(
        (again[0]["id"].as_str(), again[0]["reserved_count"].as_u64()),
        (Some(ids[0].as_str()), Some(2))
    );
}

#[tokio::test]
async fn a_message_that_expires_on_its_way_is_dropped_not_moved() {
    let running = start_server().await;
    let client = &running.client;
    client
        .put(
            &q("short"),
            json!({"queue": {"message_expiration": 2,
                   "dead_letter": {"queue_name": "short-dead", "max_reservations": 1}}}),
        )
        .await;
    post_bodies(client, "short", &["m"]).await;
    reserve_and_release(client, "short").await.unwrap();
    // The dead-letter queue cannot take it now: it waits on its way, and expires there.
    let target = QueueKeys::new("p", "short-dead");
    let mut conn = running.redis.connection();
    redis::cmd("SET")
        .arg(target.cfg())
        .arg("in the way")
        .exec(&mut conn)
        .unwrap();
    assert!(reserve(client, "short", json!({})).await.is_empty());
    tokio::time::sleep(Duration::from_millis(2200)).await;
    redis::cmd("DEL").arg(target.cfg()).exec(&mut conn).unwrap();
    // The next reserve's move drops it, as expiry drops any message: none arrives.
    assert!(reserve(client, "short", json!({})).await.is_empty());
    let waiting = || {
        let mut conn = running.redis.connection();
        redis::cmd("LLEN")
            .arg(QueueKeys::new("p", "short").dead_letters())
            .query::<u64>(&mut conn)
            .unwrap()
    };
    assert!(eventually(Duration::from_secs(5), || async { waiting() == 0 }).await);
    let (_, info) = client.get(&q("short")).await;
    assert_eq!(info["queue"]["size"], 0, "{info}");
    assert_ne!(client.get(&q("short-dead")).await.1["queue"]["size"], 1);
}
