//! The store on a real Redis Cluster of three primaries: every key of a queue shares one hash
//! tag, so each script runs on one node; queues spread over the nodes; long polls are woken
//! whichever node holds the queue.

use common::{TestServer, post_bodies, q, reserve, start_cluster_server};
use ferromq::store::keys::QueueKeys;
use reqwest::StatusCode;
use serde_json::json;
use std::time::{Duration, Instant};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn queues_work_across_the_nodes_of_a_cluster() {
    let running = start_cluster_server().await;
    let client = &running.client;

    // Enough queues that every node holds some.
    let names: Vec<String> = (0..12).map(|i| format!("shard-{i}")).collect();
    for name in &names {
        let ids = post_bodies(client, name, &["a", "b"]).await;
        let got = reserve(client, name, json!({"n": 1})).await;
        assert_eq!(got[0]["id"], ids[0].as_str());
        let (status, _) = client
            .delete(
                &format!("{}/messages/{}", q(name), ids[0]),
                Some(json!({"reservation_id": got[0]["reservation_id"]})),
            )
            .await;
        assert_eq!(status, StatusCode::OK);
        let (_, info) = client.get(&q(name)).await;
        assert_eq!(info["queue"]["size"], 1);
    }
    let (_, list) = client.get("/3/projects/p/queues?per_page=100").await;
    assert_eq!(list["queues"].as_array().unwrap().len(), names.len());

    // The queues really are spread: count the nodes holding queue keys (the keys of the
    // queues of project p match those of queue `*`).
    let any_queue = QueueKeys::new("p", "*");
    let mut nodes_with_queues = 0;
    for mut conn in running.redis.node_connections() {
        let holds_queues = any_queue.all().iter().any(|pattern| {
            let keys: Vec<String> = redis::cmd("KEYS").arg(pattern).query(&mut conn).unwrap();
            !keys.is_empty()
        });
        if holds_queues {
            nodes_with_queues += 1;
        }
    }
    assert!(
        nodes_with_queues >= 2,
        "queues landed on {nodes_with_queues} node(s)"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn long_poll_on_a_cluster_wakes_on_a_post_through_another_server() {
    let waiter_side = start_cluster_server().await;
    let poster_side = TestServer::start_on(&waiter_side.redis.url()).await;
    let waiter = &waiter_side.client;
    let poster = poster_side.client();
    for i in 0..6 {
        let name = format!("wake-{i}");
        waiter.put(&q(&name), json!({})).await;
        let w = waiter.clone();
        let queue = name.clone();
        let waiting = tokio::spawn(async move { reserve(&w, &queue, json!({"wait": 10})).await });
        tokio::time::sleep(Duration::from_millis(200)).await;
        let posted_at = Instant::now();
        post_bodies(&poster, &name, &["ping"]).await;
        let got = waiting.await.unwrap();
        assert_eq!(got.len(), 1, "{name}");
        assert!(
            posted_at.elapsed() < Duration::from_millis(1000),
            "{name}: slow wake-up"
        );
    }
}
