//! Redrive against real Redis: dead letters back to the queue they came from (same ids, reserved
//! count starting again), error-queue envelopes back to their push queue with the original body
//! (delivered again to a real subscriber), all or up to a number, at a rate, cancelled with the
//! rest handed back, what is refused, and a process killed with its redrive cut short (taken over
//! by another process, nothing lost or doubled).

use common::subscriber::{Answer, Subscriber};
use common::{
    Client, RedisServer, ServerProcess, eventually, post_bodies, q, reserve, start_server,
};
use ferromq::store::keys::QueueKeys;
use reqwest::StatusCode;
use serde_json::{Value, json};
use std::collections::BTreeSet;
use std::time::Duration;

fn redrive_path(queue: &str) -> String {
    format!("{}/redrive", q(queue))
}

async fn size(client: &Client, queue: &str) -> u64 {
    client.get(&q(queue)).await.1["queue"]["size"]
        .as_u64()
        .unwrap_or(0)
}

/// A pull queue `source` whose messages go to `dead` on their second reserve, and `bodies`
/// posted to it and moved there. Returns their ids.
async fn dead_letters(client: &Client, source: &str, dead: &str, bodies: &[&str]) -> Vec<String> {
    let (status, body) = client
        .put(
            &q(source),
            json!({"queue": {"dead_letter": {"queue_name": dead, "max_reservations": 1}}}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let ids = post_bodies(client, source, bodies).await;
    let got = reserve(client, source, json!({"n": 100, "timeout": 1})).await;
    assert_eq!(got.len(), bodies.len());
    // Their reservations lapse; the next reserve moves them all.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    assert!(reserve(client, source, json!({"n": 100})).await.is_empty());
    assert!(
        eventually(Duration::from_secs(5), || async {
            size(client, dead).await == bodies.len() as u64
        })
        .await
    );
    ids
}

/// Waits until the redrive of `queue` is in `state`; its last answer.
async fn redrive_in(client: &Client, queue: &str, state: &str) -> Value {
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    loop {
        let (_, last) = client.get(&redrive_path(queue)).await;
        if last["redrive"]["state"] == state {
            return last["redrive"].clone();
        }
        assert!(std::time::Instant::now() < deadline, "not {state}: {last}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn dead_letters_go_back_to_their_queue_with_their_ids() {
    let running = start_server().await;
    let client = &running.client;
    let ids = dead_letters(client, "jobs", "jobs-dead", &["a", "b", "c"]).await;

    let (status, body) = client.post(&redrive_path("jobs-dead"), json!({})).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(body["redrive"]["to"], "jobs");
    assert_eq!(body["redrive"]["id"].as_str().unwrap().len(), 24);
    let done = redrive_in(client, "jobs-dead", "done").await;
    assert_eq!(done["moved"], 3);
    assert_eq!(size(client, "jobs-dead").await, 0);
    // In order, same ids and bodies, their reserved count started again (else the next
    // reserve would send them straight back).
    let back = reserve(client, "jobs", json!({"n": 10})).await;
    let got: Vec<(&str, &str, u64)> = back
        .iter()
        .map(|m| {
            (
                m["id"].as_str().unwrap(),
                m["body"].as_str().unwrap(),
                m["reserved_count"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        got,
        vec![
            (ids[0].as_str(), "a", 1),
            (ids[1].as_str(), "b", 1),
            (ids[2].as_str(), "c", 1)
        ]
    );
}

#[tokio::test]
async fn error_queue_messages_go_back_with_their_original_body_and_are_delivered() {
    let running = start_server().await;
    let client = &running.client;
    // Fails the first delivery, then takes everything.
    let sub = Subscriber::start(Answer::Sequence(vec![503, 200])).await;
    let (status, body) = client
        .put(
            &q("hooks"),
            json!({"queue": {"type": "unicast", "push": {
                "subscribers": [{"name": "s", "url": sub.url}],
                "retries": 0, "error_queue": "hooks-errors"}}}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, posted) = client
        .post(
            &format!("{}/messages", q("hooks")),
            json!({"messages": [{"body": "precious", "push_headers": {"X-Order": "42"}}]}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{posted}");
    let id = posted["ids"][0].as_str().unwrap().to_string();
    assert!(
        eventually(Duration::from_secs(10), || async {
            size(client, "hooks-errors").await == 1
        })
        .await
    );

    let (status, body) = client.post(&redrive_path("hooks-errors"), json!({})).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(body["redrive"]["to"], "hooks");
    redrive_in(client, "hooks-errors", "done").await;
    assert!(sub.wait_for(2, Duration::from_secs(10)).await);
    let again = &sub.received()[1];
    assert_eq!(
        again.body, "precious",
        "the original body, not the envelope"
    );
    assert_eq!(again.headers["x-order"], "42", "with its push headers");
    let (_, status) = client
        .get(&format!("{}/messages/{id}/subscribers", q("hooks")))
        .await;
    assert_eq!(status["subscribers"][0]["status_code"], 200, "{status}");
    assert_eq!(size(client, "hooks-errors").await, 0);
}

#[tokio::test]
async fn a_message_with_two_envelopes_goes_back_once() {
    let running = start_server().await;
    let client = &running.client;
    let sub = Subscriber::start(Answer::Always(200)).await;
    let (status, body) = client
        .put(
            &q("fan"),
            json!({"queue": {"type": "unicast", "push": {
                "subscribers": [{"name": "a", "url": sub.url}], "error_queue": "fan-errors"}}}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    // Two envelopes naming the same message, as a push worker that died between posting one
    // and recording it writes them (at least once).
    let id = post_bodies(client, "elsewhere", &["x"]).await.remove(0);
    let envelope = json!({"source_msg_id": id, "body": "twice", "headers": {},
                          "subscribers": [{"name": "a", "url": sub.url, "code": 503}]})
    .to_string();
    post_bodies(client, "fan-errors", &[&envelope, &envelope]).await;
    let (status, body) = client.post(&redrive_path("fan-errors"), json!({})).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(redrive_in(client, "fan-errors", "done").await["moved"], 2);
    assert!(sub.wait_for(1, Duration::from_secs(10)).await);
    tokio::time::sleep(Duration::from_millis(500)).await;
    // Stored once, so pushed once.
    assert_eq!(sub.count(), 1);
    assert_eq!(sub.received()[0].body, "twice");
    assert_eq!(size(client, "fan-errors").await, 0);
}

#[tokio::test]
async fn all_means_the_messages_waiting_when_the_redrive_starts() {
    let running = start_server().await;
    let client = &running.client;
    let ids = dead_letters(client, "steady", "steady-dead", &["1", "2"]).await;
    // One a second: messages arriving while it runs stay where they are.
    let (status, body) = client
        .post(&redrive_path("steady-dead"), json!({"rate": 1}))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let later = post_bodies(client, "steady-dead", &["3", "4"]).await;
    assert_eq!(redrive_in(client, "steady-dead", "done").await["moved"], 2);
    let ids_in = |got: Vec<Value>| -> BTreeSet<String> {
        got.iter()
            .map(|m| m["id"].as_str().unwrap().to_string())
            .collect()
    };
    assert_eq!(
        ids_in(reserve(client, "steady", json!({"n": 10})).await),
        ids.into_iter().collect()
    );
    assert_eq!(
        ids_in(reserve(client, "steady-dead", json!({"n": 10})).await),
        later.into_iter().collect()
    );
    // Cancelling a finished redrive changes nothing, and says so.
    let (status, body) = client.delete(&redrive_path("steady-dead"), None).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["redrive"]["state"], "done");
    assert!(
        body["msg"].as_str().unwrap().contains("Nothing to cancel"),
        "{body}"
    );
}

#[tokio::test]
async fn a_redrive_moves_up_to_max_at_its_rate_and_can_be_cancelled() {
    let running = start_server().await;
    let client = &running.client;
    let bodies = ["1", "2", "3", "4", "5", "6"];
    let ids = dead_letters(client, "paced", "paced-dead", &bodies).await;

    // Up to a number, to another queue.
    let (status, body) = client
        .post(
            &redrive_path("paced-dead"),
            json!({"max": 2, "to": "elsewhere"}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(redrive_in(client, "paced-dead", "done").await["moved"], 2);
    let moved = reserve(client, "elsewhere", json!({"n": 10})).await;
    assert_eq!(
        moved
            .iter()
            .map(|m| m["id"].as_str().unwrap())
            .collect::<Vec<_>>(),
        [ids[0].as_str(), ids[1].as_str()]
    );

    // One message a second: still running after the first, and one at a time a second is
    // at most two moved in the first few hundred ms. Cancelled, the rest stay.
    let (status, body) = client
        .post(&redrive_path("paced-dead"), json!({"rate": 1}))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    // Only one runs at a time.
    let (status, body) = client.post(&redrive_path("paced-dead"), json!({})).await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    tokio::time::sleep(Duration::from_millis(300)).await;
    let (_, running_now) = client.get(&redrive_path("paced-dead")).await;
    assert_eq!(running_now["redrive"]["state"], "running", "{running_now}");
    assert!(running_now["redrive"]["moved"].as_u64().unwrap() <= 1);
    let (status, body) = client.delete(&redrive_path("paced-dead"), None).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["redrive"]["state"], "cancelled");
    let moved = redrive_in(client, "paced-dead", "cancelled").await["moved"]
        .as_u64()
        .unwrap();
    // Whatever the runner had set aside is handed back: every message is in exactly one place.
    assert!(
        eventually(Duration::from_secs(5), || async {
            size(client, "paced-dead").await + size(client, "paced").await == 4
        })
        .await
    );
    assert_eq!(size(client, "paced").await, moved);
    let rest = reserve(client, "paced-dead", json!({"n": 10})).await;
    let back = reserve(client, "paced", json!({"n": 10})).await;
    let all: BTreeSet<&str> = rest
        .iter()
        .chain(&back)
        .map(|m| m["id"].as_str().unwrap())
        .collect();
    assert_eq!(all, ids[2..].iter().map(String::as_str).collect());
}

#[tokio::test]
async fn bad_redrives_are_refused() {
    let running = start_server().await;
    let client = &running.client;
    dead_letters(client, "src", "src-dead", &["x"]).await;
    post_bodies(client, "plain", &["y"]).await;
    client
        .put(
            &q("pushy"),
            json!({"queue": {"type": "unicast", "push": {
                "subscribers": [{"name": "s", "url": "http://127.0.0.1:9/"}]}}}),
        )
        .await;
    for (queue, body, status, why) in [
        (
            "pushy",
            json!({}),
            StatusCode::BAD_REQUEST,
            "Only a pull queue",
        ),
        (
            "plain",
            json!({}),
            StatusCode::BAD_REQUEST,
            "not the dead-letter queue or error queue",
        ),
        (
            "missing",
            json!({}),
            StatusCode::NOT_FOUND,
            "Queue not found",
        ),
        (
            "src-dead",
            json!({"to": "src-dead"}),
            StatusCode::BAD_REQUEST,
            "to itself",
        ),
        (
            "src-dead",
            json!({"to": "a/b"}),
            StatusCode::BAD_REQUEST,
            "",
        ),
        (
            "src-dead",
            json!({"rate": 1_000_000}),
            StatusCode::BAD_REQUEST,
            "rate",
        ),
        (
            "src-dead",
            json!({"max": "lots"}),
            StatusCode::BAD_REQUEST,
            "",
        ),
        (
            "src-dead",
            json!({"speed": 3}),
            StatusCode::BAD_REQUEST,
            "speed",
        ),
    ] {
        let (got, answer) = client.post(&redrive_path(queue), body.clone()).await;
        assert_eq!(got, status, "{queue} {body}: {answer}");
        assert!(answer["msg"].as_str().unwrap().contains(why), "{answer}");
    }
    let (status, _) = client.get(&redrive_path("src-dead")).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "none was started");
    assert_eq!(size(client, "src-dead").await, 1, "nothing moved");

    // Several queues sending to one: name the target.
    client
        .put(
            &q("other"),
            json!({"queue": {"dead_letter": {"queue_name": "src-dead"}}}),
        )
        .await;
    let (status, answer) = client.post(&redrive_path("src-dead"), json!({})).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{answer}");
    assert!(
        answer["msg"].as_str().unwrap().contains("other, src"),
        "{answer}"
    );
}

#[tokio::test]
async fn a_redrive_cut_short_is_finished_by_another_process() {
    let redis = RedisServer::start();
    let first = ServerProcess::start(&redis).await;
    let client = first.client();
    let ids = dead_letters(&client, "cut", "cut-dead", &["p", "q", "r"]).await;

    // The target cannot take messages now (its settings key is of the wrong type): the redrive
    // sets its messages aside, cannot store them, and its process is killed.
    let target = QueueKeys::new("p", "cut-back");
    let mut conn = redis.connection();
    redis::cmd("SET")
        .arg(target.cfg())
        .arg("in the way")
        .exec(&mut conn)
        .unwrap();
    let (status, body) = client
        .post(&redrive_path("cut-dead"), json!({"to": "cut-back"}))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert!(
        eventually(Duration::from_secs(5), || async {
            client.get(&redrive_path("cut-dead")).await.1["redrive"]["error"].is_string()
        })
        .await
    );
    let aside: Vec<String> = redis::cmd("LRANGE")
        .arg(QueueKeys::new("p", "cut-dead").redriving())
        .arg(0)
        .arg(-1)
        .query(&mut conn)
        .unwrap();
    assert_eq!(aside, ids, "set aside, still stored");
    let source = QueueKeys::new("p", "cut-dead");
    let arrived: Vec<String> = redis::cmd("HMGET")
        .arg(source.arrived())
        .arg(&ids)
        .query(&mut conn)
        .unwrap();
    drop(first); // killed

    // Another process, once the target is usable, takes the redrive over by itself (and
    // creates the target).
    redis::cmd("DEL").arg(target.cfg()).exec(&mut conn).unwrap();
    let second = ServerProcess::start(&redis).await;
    let client = second.client();
    let done = redrive_in(&client, "cut-dead", "done").await;
    assert_eq!(done["moved"], 3);
    assert!(done.get("error").is_none(), "{done}");
    let back = reserve(&client, "cut-back", json!({"n": 10})).await;
    let got: Vec<&str> = back.iter().map(|m| m["id"].as_str().unwrap()).collect();
    assert_eq!(
        got,
        ids.iter().map(String::as_str).collect::<Vec<_>>(),
        "each once"
    );
    assert_eq!(size(&client, "cut-dead").await, 0);

    // A runner that died after storing a message in the target but before ending its move
    // leaves it set aside, still stored here, the redrive running. A consumer takes it from
    // the target meanwhile: the runner that takes over stores nothing again.
    let (status, body) = client
        .delete(
            &format!("{}/messages/{}", q("cut-back"), ids[0]),
            Some(json!({"reservation_id": back[0]["reservation_id"]})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    redis::pipe()
        .hset(source.body(), &ids[0], "p")
        .hset(source.arrived(), &ids[0], &arrived[0])
        .rpush(source.redriving(), &ids[0])
        .hset_multiple(source.redrive(), &[("state", "running"), ("lease", "0")])
        .exec(&mut conn)
        .unwrap();
    let store = redis.store().await;
    assert_eq!(store.run_redrive("p", "cut-dead").await.unwrap(), 1);
    assert_eq!(redrive_in(&client, "cut-dead", "done").await["moved"], 4);
    assert_eq!(
        size(&client, "cut-back").await,
        2,
        "the other two, not it again"
    );
    assert_eq!(size(&client, "cut-dead").await, 0);
}

#[tokio::test]
async fn a_dead_letter_move_left_unfinished_is_taken_back_by_a_redrive() {
    let redis = RedisServer::start();
    let server = ServerProcess::start(&redis).await;
    let client = server.client();
    let ids = dead_letters(&client, "loop", "loop-dead", &["x"]).await;
    // A mover that died after storing the message in the dead-letter queue, but before ending
    // its move, leaves it in the source's DEAD list, still stored there.
    let source = QueueKeys::new("p", "loop");
    let mut conn = redis.connection();
    redis::pipe()
        .hset(source.body(), &ids[0], "x")
        .rpush(source.dead_letters(), &ids[0])
        .exec(&mut conn)
        .unwrap();
    // Redriven back before any reserve on the source finished that move: the source takes it
    // back, and the move, when finished, removes nothing.
    let (status, body) = client.post(&redrive_path("loop-dead"), json!({})).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(redrive_in(&client, "loop-dead", "done").await["moved"], 1);
    let store = redis.store().await;
    store
        .move_dead_letters("p", "loop", "loop-dead")
        .await
        .unwrap();
    assert_eq!(size(&client, "loop-dead").await, 0);
    let back = reserve(&client, "loop", json!({"n": 10})).await;
    assert_eq!(back.len(), 1, "once: {back:?}");
    assert_eq!(back[0]["id"], ids[0].as_str());
}

#[tokio::test]
async fn a_redrive_left_unfinished_is_taken_back_by_a_dead_letter_move() {
    let redis = RedisServer::start();
    let server = ServerProcess::start(&redis).await;
    let client = server.client();
    let ids = dead_letters(&client, "spin", "spin-dead", &["y"]).await;
    let dead = QueueKeys::new("p", "spin-dead");
    let mut conn = redis.connection();
    let arrived: String = redis::cmd("HGET")
        .arg(dead.arrived())
        .arg(&ids[0])
        .query(&mut conn)
        .unwrap();
    let (status, body) = client.post(&redrive_path("spin-dead"), json!({})).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    redrive_in(&client, "spin-dead", "done").await;
    // A runner that died after storing it back, but before ending its round, leaves it set
    // aside in the dead-letter queue, still stored there, the redrive running.
    redis::pipe()
        .hset(dead.body(), &ids[0], "y")
        .hset(dead.arrived(), &ids[0], &arrived)
        .rpush(dead.redriving(), &ids[0])
        .hset_multiple(dead.redrive(), &[("state", "running"), ("lease", "0")])
        .exec(&mut conn)
        .unwrap();
    // Before another process takes the redrive over, the message fails again and moves back to
    // the dead-letter queue, which takes it back from the unfinished round.
    assert_eq!(
        reserve(&client, "spin", json!({"timeout": 1})).await.len(),
        1
    );
    tokio::time::sleep(Duration::from_millis(1100)).await;
    assert!(reserve(&client, "spin", json!({})).await.is_empty());
    assert!(
        eventually(Duration::from_secs(5), || async {
            size(&client, "spin").await == 0
        })
        .await
    );
    // The runner that takes over finds nothing to move: the message is in one place.
    let store = redis.store().await;
    store.run_redrive("p", "spin-dead").await.unwrap();
    assert_eq!(size(&client, "spin").await, 0);
    let held = reserve(&client, "spin-dead", json!({"n": 10})).await;
    assert_eq!(held.len(), 1, "once: {held:?}");
    assert_eq!(held[0]["id"], ids[0].as_str());
}
