//! Push queues against a real redis-server and real HTTP subscribers started by the tests:
//! multicast and unicast delivery, retries, the error queue, 202 acknowledgements, timeouts,
//! push headers and status, and subscriber management.

use common::subscriber::{Answer, Subscriber};
use common::{
    Client, RedisServer, ServerProcess, TestCertificate, eventually, post_bodies, q, quiet,
    reserve, start_process, start_server,
};
use ferromq::store::keys::QueueKeys;
use reqwest::StatusCode;
use serde_json::{Value, json};
use std::time::{Duration, Instant};

async fn push_queue(
    client: &Client,
    name: &str,
    kind: &str,
    subscribers: &[(&str, &Subscriber)],
    extra: Value,
) {
    let subscribers: Vec<Value> = subscribers
        .iter()
        .map(|(n, s)| json!({"name": n, "url": s.url, "headers": {"X-Sub": n}}))
        .collect();
    let mut push = json!({"subscribers": subscribers, "retries_delay": 3});
    if let Value::Object(more) = extra {
        push.as_object_mut().unwrap().extend(more);
    }
    let (status, body) = client
        .put(&q(name), json!({"queue": {"type": kind, "push": push}}))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
}

/// Polls until the queue holds no message (delivery over), up to `limit`.
async fn drained(client: &Client, name: &str, limit: Duration) -> bool {
    eventually(limit, || async {
        let (_, info) = client.get(&q(name)).await;
        info["queue"]["size"] == 0
    })
    .await
}

#[tokio::test]
async fn multicast_delivers_one_copy_to_each_subscriber() {
    let running = start_server().await;
    let client = &running.client;
    let subs = [
        Subscriber::start(Answer::Always(200)).await,
        Subscriber::start(Answer::Always(200)).await,
        Subscriber::start(Answer::Always(200)).await,
    ];
    push_queue(
        client,
        "fan",
        "multicast",
        &[("a", &subs[0]), ("b", &subs[1]), ("c", &subs[2])],
        json!({}),
    )
    .await;
    let (_, info) = client.get(&q("fan")).await;
    assert_eq!(
        info["queue"]["push"]["subscribers"]
            .as_array()
            .unwrap()
            .len(),
        3
    );
    assert_eq!(info["queue"]["push"]["retries"], 3);

    post_bodies(client, "fan", &["hello"]).await;
    for sub in &subs {
        assert!(
            sub.wait_for(1, Duration::from_secs(5)).await,
            "a subscriber got nothing"
        );
    }
    assert!(
        drained(client, "fan", Duration::from_secs(5)).await,
        "delivered messages leave the queue"
    );
    // Each got its copy (above); no second one comes.
    quiet(Duration::from_millis(500), || async {
        subs.iter().all(|sub| sub.count() == 1)
    })
    .await;
    for sub in &subs {
        assert_eq!(sub.count(), 1, "exactly one copy each");
        assert_eq!(sub.received()[0].body, "hello");
    }
}

#[tokio::test]
async fn unicast_delivers_to_exactly_one_subscriber() {
    let running = start_server().await;
    let client = &running.client;
    let a = Subscriber::start(Answer::Always(200)).await;
    let b = Subscriber::start(Answer::Always(200)).await;
    push_queue(client, "uni", "unicast", &[("a", &a), ("b", &b)], json!({})).await;
    let bodies: Vec<String> = (0..20).map(|i| i.to_string()).collect();
    let bodies: Vec<&str> = bodies.iter().map(String::as_str).collect();
    post_bodies(client, "uni", &bodies).await;
    assert!(drained(client, "uni", Duration::from_secs(10)).await);
    let delivered = || a.count() + b.count();
    eventually(Duration::from_millis(300), || async { delivered() >= 20 }).await;
    quiet(Duration::from_millis(300), || async { delivered() == 20 }).await;
    assert_eq!(
        a.count() + b.count(),
        20,
        "each message went to one subscriber"
    );
    assert!(
        a.count() > 0 && b.count() > 0,
        "messages are spread over the subscribers"
    );
}

#[tokio::test]
async fn failures_are_retried_after_retries_delay_until_delivered() {
    let running = start_server().await;
    let client = &running.client;
    let sub = Subscriber::start(Answer::Sequence(vec![500, 500, 200])).await;
    push_queue(client, "flaky", "multicast", &[("s", &sub)], json!({})).await;
    let ids = post_bodies(client, "flaky", &["m"]).await;

    assert!(
        sub.wait_for(3, Duration::from_secs(15)).await,
        "three attempts"
    );
    assert!(
        drained(client, "flaky", Duration::from_secs(5)).await,
        "gone after the 200"
    );
    let at: Vec<Instant> = sub.received().iter().map(|r| r.at).collect();
    for gap in [at[1] - at[0], at[2] - at[1]] {
        assert!(
            gap >= Duration::from_millis(2900) && gap < Duration::from_secs(6),
            "retries_delay 3 s, got {gap:?}"
        );
    }
    // Three attempts arrived (above); no fourth comes.
    quiet(Duration::from_secs(1), || async { sub.count() == 3 }).await;
    assert_eq!(sub.count(), 3, "no attempt after the success");
    let (status, body) = client
        .get(&format!("{}/messages/{}/subscribers", q("flaky"), ids[0]))
        .await;
    assert_eq!(status, StatusCode::OK, "status outlives delivery: {body}");
    let s = &body["subscribers"][0];
    assert_eq!(
        (
            s["status"].as_str(),
            s["status_code"].as_u64(),
            s["tries"].as_u64()
        ),
        (Some("deleted"), Some(200), Some(3))
    );
    // The delivered message itself stays readable by id while its status is kept...
    assert_eq!(
        finished_message(client, "flaky", &ids[0]).await,
        (StatusCode::OK, Some("m".to_string()))
    );
    // ...and the queue's: once it is cleared, neither is shown.
    let (status, _) = client
        .delete(&format!("{}/messages", q("flaky")), Some(json!({})))
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        finished_message(client, "flaky", &ids[0]).await.0,
        StatusCode::NOT_FOUND
    );
    let (status, _) = client
        .get(&format!("{}/messages/{}/subscribers", q("flaky"), ids[0]))
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

/// `GET /messages/{id}` of a message whose push delivery is over: status and body.
async fn finished_message(client: &Client, queue: &str, id: &str) -> (StatusCode, Option<String>) {
    let (status, body) = client.get(&format!("{}/messages/{id}", q(queue))).await;
    let text = body["message"]["body"].as_str().map(str::to_string);
    if status == StatusCode::OK {
        assert_eq!(body["message"]["id"], id, "{body}");
        assert!(body["message"]["reserved_count"].is_u64(), "{body}");
    }
    (status, text)
}

#[tokio::test]
async fn a_subscriber_that_always_fails_lands_the_message_in_the_error_queue() {
    let running = start_server().await;
    let client = &running.client;
    let sub = Subscriber::start(Answer::Always(503)).await;
    push_queue(
        client,
        "doomed",
        "multicast",
        &[("s", &sub)],
        json!({"retries": 1, "error_queue": "doomed-errors"}),
    )
    .await;
    let ids = post_bodies(client, "doomed", &["precious"]).await;

    assert!(
        drained(client, "doomed", Duration::from_secs(15)).await,
        "the source queue empties"
    );
    assert_eq!(sub.count(), 2, "retries + 1 attempts");
    let errors = reserve(client, "doomed-errors", json!({"n": 10})).await;
    assert_eq!(errors.len(), 1, "one message in the error queue");
    let report: Value = serde_json::from_str(errors[0]["body"].as_str().unwrap()).unwrap();
    assert_eq!(report["source_msg_id"], ids[0].as_str());
    assert_eq!(report["body"], "precious");
    assert_eq!(report["subscribers"][0]["name"], "s");
    assert_eq!(report["subscribers"][0]["url"], sub.url.as_str());
    assert_eq!(report["subscribers"][0]["code"], 503);
    assert!(report["subscribers"][0]["msg"].is_string());
    let (_, info) = client.get(&q("doomed-errors")).await;
    assert_eq!(
        info["queue"]["type"], "pull",
        "the error queue is made a pull queue"
    );
    let (_, status) = client
        .get(&format!("{}/messages/{}/subscribers", q("doomed"), ids[0]))
        .await;
    let s = &status["subscribers"][0];
    assert_eq!(
        (s["status"].as_str(), s["retries_remaining"].as_u64()),
        (Some("error"), Some(0))
    );
    // The original stays readable by id after its last retry, as IronMQ's clients expect.
    assert_eq!(
        finished_message(client, "doomed", &ids[0]).await,
        (StatusCode::OK, Some("precious".to_string()))
    );
}

#[tokio::test]
async fn a_202_is_done_once_the_subscriber_deletes_its_message_url() {
    let running = start_server().await;
    let client = &running.client;
    let sub = Subscriber::start(Answer::Always(202)).await;
    push_queue(client, "later", "multicast", &[("s", &sub)], json!({})).await;
    let ids = post_bodies(client, "later", &["m"]).await;
    assert!(sub.wait_for(1, Duration::from_secs(5)).await);
    let headers = &sub.received()[0].headers;
    let ack_url = headers["iron-subscriber-message-url"]
        .to_str()
        .unwrap()
        .to_string();
    // The round records the 202 just after the subscriber got the push.
    let path = format!("{}/messages/{}/subscribers", q("later"), ids[0]);
    let reserved = eventually(Duration::from_secs(5), || async {
        let (_, status) = client.get(&path).await;
        status["subscribers"][0]["status"] == "reserved"
    })
    .await;
    assert!(reserved, "the 202 is recorded as reserved");

    // The subscriber acknowledges with a bare DELETE: the URL carries what proves it.
    let anonymous = common::http();
    let wrong = anonymous
        .delete(ack_url.replace("reservation_id=", "reservation_id=x"))
        .send()
        .await
        .unwrap();
    assert_eq!(wrong.status(), StatusCode::FORBIDDEN);
    let ack = anonymous.delete(&ack_url).send().await.unwrap();
    assert_eq!(ack.status(), StatusCode::OK);
    assert!(drained(client, "later", Duration::from_secs(2)).await);
    // The one push arrived (above); no other comes.
    quiet(Duration::from_secs(1), || async { sub.count() == 1 }).await;
    assert_eq!(sub.count(), 1, "no further attempts");
    assert_eq!(
        finished_message(client, "later", &ids[0]).await,
        (StatusCode::OK, Some("m".to_string()))
    );
}

#[tokio::test]
async fn a_202_without_acknowledgement_is_retried_after_the_message_timeout() {
    let running = start_server().await;
    let client = &running.client;
    let sub = Subscriber::start(Answer::Sequence(vec![202, 200])).await;
    client
        .put(&q("forgot"), json!({"queue": {"message_timeout": 30}}))
        .await;
    push_queue(client, "forgot", "multicast", &[("s", &sub)], json!({})).await;
    post_bodies(client, "forgot", &["m"]).await;
    assert!(sub.wait_for(1, Duration::from_secs(5)).await);
    assert!(
        sub.wait_for(2, Duration::from_secs(40)).await,
        "retried once the wait ran out"
    );
    let at: Vec<Instant> = sub.received().iter().map(|r| r.at).collect();
    assert!(
        at[1] - at[0] >= Duration::from_secs(29),
        "not before the timeout: {:?}",
        at[1] - at[0]
    );
    assert!(drained(client, "forgot", Duration::from_secs(5)).await);
}

#[tokio::test]
async fn a_subscriber_that_never_answers_counts_as_failed() {
    let running = start_server().await;
    let client = &running.client;
    let sub = Subscriber::start(Answer::Never).await;
    push_queue(
        client,
        "silent",
        "multicast",
        &[("s", &sub)],
        json!({"retries": 0, "error_queue": "silent-errors"}),
    )
    .await;
    let started = Instant::now();
    post_bodies(client, "silent", &["m"]).await;
    assert!(drained(client, "silent", Duration::from_secs(10)).await);
    assert!(
        started.elapsed() >= common::PUSH_TIMEOUT,
        "gave up before the timeout"
    );
    let errors = reserve(client, "silent-errors", json!({})).await;
    let report: Value = serde_json::from_str(errors[0]["body"].as_str().unwrap()).unwrap();
    assert_eq!(report["subscribers"][0]["code"], 0, "no answer, no status");
}

#[tokio::test]
async fn pushed_requests_carry_the_iron_headers_and_custom_ones() {
    let running = start_server().await;
    let client = &running.client;
    let sub = Subscriber::start(Answer::Always(200)).await;
    push_queue(client, "hdrs", "multicast", &[("named", &sub)], json!({})).await;
    let (_, posted) = client
        .post(
            &format!("{}/messages", q("hdrs")),
            json!({"messages": [{"body": "b", "push_headers": {"X-Trace": "t1"}}]}),
        )
        .await;
    let id = posted["ids"][0].as_str().unwrap();
    assert!(sub.wait_for(1, Duration::from_secs(5)).await);
    let h = &sub.received()[0].headers;
    let get = |n: &str| {
        h.get(n)
            .map(|v| v.to_str().unwrap().to_string())
            .unwrap_or_default()
    };
    assert_eq!(get("user-agent"), "IronMQ Pusherd");
    assert_eq!(get("content-type"), "text/plain; encoding=utf-8");
    assert_eq!(get("iron-message-id"), id);
    assert_eq!(get("iron-subscriber-message-id"), id);
    assert_eq!(get("iron-subscriber-name"), "named");
    assert_eq!(get("iron-reservation-id").len(), 32);
    assert!(get("iron-subscriber-message-url").starts_with(&format!(
        "{}/3/projects/p/queues/hdrs/messages/{id}/subscribers/named?reservation_id=",
        running.server.base
    )));
    assert_eq!(get("x-sub"), "named", "subscriber headers");
    assert_eq!(get("x-trace"), "t1", "message push headers");
}

#[tokio::test]
async fn ironmq_urls_fan_out_into_other_queues() {
    let running = start_server().await;
    let client = &running.client;
    let (status, body) = client
        .put(
            &q("source"),
            json!({"queue": {"type": "multicast", "push": {"subscribers": [
                {"name": "copy1", "url": "ironmq:///copy-one"},
                {"name": "copy2", "url": "ironmq://other:test-token@/copy-two"},
            ]}}}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    post_bodies(client, "source", &["fan me out"]).await;
    assert!(drained(client, "source", Duration::from_secs(5)).await);
    assert_eq!(
        reserve(client, "copy-one", json!({})).await[0]["body"],
        "fan me out"
    );
    let (_, other) = client
        .post("/3/projects/other/queues/copy-two/reservations", json!({}))
        .await;
    assert_eq!(other["messages"][0]["body"], "fan me out");
}

#[tokio::test]
async fn subscribers_are_added_replaced_and_removed() {
    let running = start_server().await;
    let client = &running.client;
    let sub = Subscriber::start(Answer::Always(200)).await;
    push_queue(client, "subs", "multicast", &[("a", &sub)], json!({})).await;
    let path = format!("{}/subscribers", q("subs"));
    let names = |v: &Value| -> Vec<String> {
        v["queue"]["push"]["subscribers"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s["name"].as_str().unwrap().to_string())
            .collect()
    };

    let (status, body) = client.post(&path, json!({"subscribers": [{"name": "b", "url": sub.url}, {"name": "a", "url": "http://example.test/a2"}]})).await;
    assert_eq!(
        (status, body["msg"].as_str()),
        (StatusCode::OK, Some("Updated"))
    );
    let (_, info) = client.get(&q("subs")).await;
    assert_eq!(names(&info), ["b", "a"]);
    assert_eq!(
        info["queue"]["push"]["subscribers"][1]["url"],
        "http://example.test/a2"
    );

    client
        .put(
            &path,
            json!({"subscribers": [{"name": "c", "url": sub.url}]}),
        )
        .await;
    let (_, info) = client.get(&q("subs")).await;
    assert_eq!(names(&info), ["c"]);

    let (status, body) = client
        .delete(&path, Some(json!({"subscribers": [{"name": "c"}]})))
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["msg"], "Push queues must have at least one subscriber");
    client
        .post(
            &path,
            json!({"subscribers": [{"name": "d", "url": sub.url}]}),
        )
        .await;
    let (status, _) = client
        .delete(&path, Some(json!({"subscribers": [{"name": "c"}]})))
        .await;
    assert_eq!(status, StatusCode::OK);
    let (_, info) = client.get(&q("subs")).await;
    assert_eq!(names(&info), ["d"]);

    client.put(&q("plain"), json!({})).await;
    let (status, _) = client
        .post(
            &format!("{}/subscribers", q("plain")),
            json!({"subscribers": [{"name": "x", "url": sub.url}]}),
        )
        .await;
    assert_eq!(
        status,
        StatusCode::BAD_REQUEST,
        "no subscribers on a pull queue"
    );
    for bad in [
        json!({"subscribers": [{"name": "x", "url": "ftp://nope"}]}),
        json!({"subscribers": []}),
        json!({"subscribers": [{"name": "x"}]}),
    ] {
        assert_eq!(
            client.post(&path, bad.clone()).await.0,
            StatusCode::BAD_REQUEST,
            "{bad}"
        );
    }
    let (status, _) = client
        .put(&q("subs"), json!({"queue": {"push": {"retries": 101}}}))
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let (status, _) = client
        .put(
            &q("subs"),
            json!({"queue": {"push": {"error_queue": "subs"}}}),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn switching_between_pull_and_push_keeps_each_message_where_it_belongs() {
    let running = start_server().await;
    let client = &running.client;
    let sub = Subscriber::start(Answer::Always(200)).await;
    post_bodies(client, "switch", &["pulled"]).await;
    push_queue(client, "switch", "unicast", &[("s", &sub)], json!({})).await;
    post_bodies(client, "switch", &["pushed"]).await;
    assert!(sub.wait_for(1, Duration::from_secs(5)).await);
    assert_eq!(sub.received()[0].body, "pushed");
    let pulled = reserve(client, "switch", json!({"n": 5})).await;
    assert_eq!(pulled.len(), 1);
    assert_eq!(pulled[0]["body"], "pulled", "old messages stay for pulling");

    client
        .put(&q("switch"), json!({"queue": {"type": "pull"}}))
        .await;
    let ids = post_bodies(client, "switch", &["after"]).await;
    // The one push arrived (above); no other comes.
    quiet(Duration::from_millis(1500), || async { sub.count() == 1 }).await;
    assert_eq!(sub.count(), 1, "a pull queue pushes nothing");
    let got = reserve(client, "switch", json!({})).await;
    assert_eq!(got[0]["id"], ids[0].as_str());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_processes_push_a_thousand_messages_each_exactly_once_at_a_time() {
    let one = start_process(&[]).await;
    let _two = ServerProcess::start(&one.redis).await;
    let client = &one.client;
    let sub = Subscriber::start(Answer::Slow(Duration::from_millis(5))).await;
    push_queue(client, "shared", "multicast", &[("s", &sub)], json!({})).await;
    for batch in 0..10 {
        let messages: Vec<Value> = (0..100)
            .map(|i| json!({"body": format!("{batch}-{i}")}))
            .collect();
        let (status, _) = client
            .post(
                &format!("{}/messages", q("shared")),
                json!({"messages": messages}),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED);
    }
    assert!(
        sub.wait_for(1000, Duration::from_secs(60)).await,
        "got {}",
        sub.count()
    );
    assert!(drained(client, "shared", Duration::from_secs(10)).await);
    let mut bodies: Vec<String> = sub.received().into_iter().map(|r| r.body).collect();
    bodies.sort();
    let total = bodies.len();
    bodies.dedup();
    assert_eq!(bodies.len(), 1000, "every message arrived");
    // A duplicate is allowed only after a claim ran out; none should here.
    assert_eq!(total, 1000, "duplicates: {}", total - 1000);
    assert_eq!(sub.overlaps(), 0, "a message was delivered twice at once");
}

#[tokio::test]
async fn a_signing_secret_signs_each_push_with_hmac_sha256() {
    let running = start_server().await;
    let client = &running.client;
    let sub = Subscriber::start(Answer::Always(200)).await;
    push_queue(
        client,
        "signed",
        "multicast",
        &[("s", &sub)],
        json!({"signing_secret": "s3cret"}),
    )
    .await;
    let (_, info) = client.get(&q("signed")).await;
    assert_eq!(info["queue"]["push"]["signed"], true);
    assert!(
        !info.to_string().contains("s3cret"),
        "the secret is never shown"
    );
    post_bodies(client, "signed", &["payload"]).await;
    assert!(sub.wait_for(1, Duration::from_secs(5)).await);
    let header = sub.received()[0].headers["ferromq-signature"]
        .to_str()
        .unwrap()
        .to_string();
    let t: u64 = header
        .split(',')
        .next()
        .unwrap()
        .trim_start_matches("t=")
        .parse()
        .unwrap();
    assert_eq!(
        header,
        ferromq::push::deliver::signature("s3cret", t, "payload")
    );

    let plain = Subscriber::start(Answer::Always(200)).await;
    push_queue(client, "unsigned", "multicast", &[("s", &plain)], json!({})).await;
    post_bodies(client, "unsigned", &["x"]).await;
    assert!(plain.wait_for(1, Duration::from_secs(5)).await);
    assert!(
        plain.received()[0]
            .headers
            .get("ferromq-signature")
            .is_none(),
        "off by default"
    );
}

#[tokio::test]
async fn exponential_backoff_lengthens_the_pause_between_retries() {
    let running = start_server().await;
    let client = &running.client;
    let sub = Subscriber::start(Answer::Sequence(vec![500, 500, 200])).await;
    push_queue(
        client,
        "backoff",
        "multicast",
        &[("s", &sub)],
        json!({"backoff": "exponential"}),
    )
    .await;
    let (_, info) = client.get(&q("backoff")).await;
    assert_eq!(info["queue"]["push"]["backoff"], "exponential");
    post_bodies(client, "backoff", &["m"]).await;
    assert!(sub.wait_for(3, Duration::from_secs(20)).await);
    let at: Vec<Instant> = sub.received().iter().map(|r| r.at).collect();
    // retries_delay 3: the first pause is 1.5 to 3 s, the second 3 to 6 s.
    let (first, second) = (at[1] - at[0], at[2] - at[1]);
    assert!(
        first >= Duration::from_millis(1400) && first < Duration::from_millis(3800),
        "{first:?}"
    );
    assert!(
        second >= Duration::from_millis(2900) && second < Duration::from_millis(6800),
        "{second:?}"
    );
    let (status, _) = client
        .put(
            &q("backoff"),
            json!({"queue": {"push": {"backoff": "random"}}}),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
}

/// A subscriber that answers 202 and acknowledges through its message URL after `after`.
async fn acknowledging(after: Duration) -> (Subscriber, tokio::task::JoinHandle<()>) {
    let sub = Subscriber::start(Answer::Always(202)).await;
    let watcher = sub.clone_handle();
    let task = tokio::spawn(async move {
        let http = common::http();
        let mut acked = 0;
        loop {
            let received = watcher.received();
            for r in received.iter().skip(acked) {
                let url = r.headers["iron-subscriber-message-url"]
                    .to_str()
                    .unwrap()
                    .to_string();
                let http = http.clone();
                tokio::spawn(async move {
                    tokio::time::sleep(after).await;
                    let _ = http.delete(url).send().await;
                });
            }
            acked = received.len();
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    });
    (sub, task)
}

#[tokio::test]
async fn an_acknowledged_202_beside_a_failing_subscriber_is_delivered_once_and_retries_stay_bounded()
 {
    let running = start_server().await;
    let client = &running.client;
    let (acker, _task) = acknowledging(Duration::from_millis(300)).await;
    let failing = Subscriber::start(Answer::Always(500)).await;
    push_queue(
        client,
        "mixed",
        "multicast",
        &[("acker", &acker), ("bad", &failing)],
        json!({"retries": 1, "error_queue": "mixed-errors"}),
    )
    .await;
    let ids = post_bodies(client, "mixed", &["m"]).await;
    assert!(
        drained(client, "mixed", Duration::from_secs(15)).await,
        "delivery ends"
    );
    assert_eq!(failing.count(), 2, "retries + 1 tries, no more");
    assert_eq!(acker.count(), 1, "the acknowledged subscriber got it once");
    let errors = reserve(client, "mixed-errors", json!({})).await;
    let report: Value = serde_json::from_str(errors[0]["body"].as_str().unwrap()).unwrap();
    assert_eq!(
        report["subscribers"].as_array().unwrap().len(),
        1,
        "only the failed subscriber"
    );
    assert_eq!(report["subscribers"][0]["name"], "bad");
    let (status, body) = client
        .get(&format!("{}/messages/{}/subscribers", q("mixed"), ids[0]))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
}

#[tokio::test]
async fn an_acknowledgement_during_a_slow_round_counts() {
    let running = start_server().await;
    let client = &running.client;
    let (acker, _task) = acknowledging(Duration::from_millis(100)).await;
    let slow = Subscriber::start(Answer::Slow(Duration::from_millis(1500))).await;
    push_queue(
        client,
        "during",
        "multicast",
        &[("acker", &acker), ("slow", &slow)],
        json!({}),
    )
    .await;
    post_bodies(client, "during", &["m"]).await;
    assert!(
        drained(client, "during", Duration::from_secs(6)).await,
        "done soon after the slow answer"
    );
    assert_eq!(acker.count(), 1);
}

#[tokio::test]
async fn a_duplicated_reservation_id_parameter_does_not_bypass_auth() {
    let running = start_server().await;
    let client = &running.client;
    let (acker, _task) = acknowledging(Duration::from_secs(30)).await;
    push_queue(client, "guarded", "unicast", &[("s", &acker)], json!({})).await;
    let ids = post_bodies(client, "guarded", &["m"]).await;
    assert!(acker.wait_for(1, Duration::from_secs(5)).await);
    let url = format!(
        "{}{}/messages/{}/subscribers/s?reservation_id=x&reservation_id=",
        running.server.base,
        q("guarded"),
        ids[0]
    );
    let response = common::http().delete(url).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    let (_, info) = client.get(&q("guarded")).await;
    assert_eq!(info["queue"]["size"], 1, "nothing was deleted");
}

#[tokio::test]
async fn removing_a_subscriber_mid_delivery_lets_the_message_finish() {
    let running = start_server().await;
    let client = &running.client;
    let good = Subscriber::start(Answer::Always(200)).await;
    let bad = Subscriber::start(Answer::Always(500)).await;
    push_queue(
        client,
        "shrink",
        "multicast",
        &[("good", &good), ("bad", &bad)],
        json!({}),
    )
    .await;
    post_bodies(client, "shrink", &["m"]).await;
    assert!(bad.wait_for(1, Duration::from_secs(5)).await);
    let (status, _) = client
        .delete(
            &format!("{}/subscribers", q("shrink")),
            Some(json!({"subscribers": [{"name": "bad"}]})),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        drained(client, "shrink", Duration::from_secs(8)).await,
        "no longer waits for the removed one"
    );
    assert_eq!(good.count(), 1);
}

#[tokio::test]
async fn waiting_push_messages_can_be_deleted_and_delayed_ones_arrive_on_time() {
    let running = start_server().await;
    let client = &running.client;
    let bad = Subscriber::start(Answer::Always(500)).await;
    push_queue(
        client,
        "cancel",
        "multicast",
        &[("bad", &bad)],
        json!({"retries_delay": 60}),
    )
    .await;
    let ids = post_bodies(client, "cancel", &["a", "b"]).await;
    assert!(bad.wait_for(2, Duration::from_secs(5)).await);
    tokio::time::sleep(Duration::from_millis(300)).await;
    let (status, body) = client
        .delete(
            &format!("{}/messages", q("cancel")),
            Some(json!({"ids": [ids[0]]})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, body) = client
        .delete(&format!("{}/messages/{}", q("cancel"), ids[1]), None)
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");

    let good = Subscriber::start(Answer::Always(200)).await;
    push_queue(
        client,
        "later-push",
        "multicast",
        &[("good", &good)],
        json!({}),
    )
    .await;
    let posted_at = Instant::now();
    client
        .post(
            &format!("{}/messages", q("later-push")),
            json!({"messages": [{"body": "d", "delay": 1}]}),
        )
        .await;
    assert!(good.wait_for(1, Duration::from_secs(5)).await);
    let late = good.received()[0].at - posted_at;
    assert!(
        late >= Duration::from_millis(900) && late < Duration::from_millis(2500),
        "{late:?}"
    );
    let (status, _) = client.put(&q("later-push"), json!({"queue": {"push": {"subscribers": [{"name": "x", "url": good.url, "headers": {"Content-Length": "1"}}]}}})).await;
    assert_eq!(
        status,
        StatusCode::BAD_REQUEST,
        "framing headers are refused"
    );
}

#[tokio::test]
async fn a_subscriber_added_while_a_round_runs_still_gets_the_message() {
    let running = start_server().await;
    let client = &running.client;
    let old = Subscriber::start(Answer::Slow(Duration::from_millis(1500))).await;
    let new = Subscriber::start(Answer::Always(200)).await;
    push_queue(client, "grow", "multicast", &[("old", &old)], json!({})).await;
    post_bodies(client, "grow", &["m"]).await;
    // The round to `old` is under way when the subscribers change.
    assert!(old.wait_for(1, Duration::from_secs(5)).await);
    let (status, body) = client
        .put(
            &format!("{}/subscribers", q("grow")),
            json!({"subscribers": [{"name": "new", "url": new.url}]}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(
        new.wait_for(1, Duration::from_secs(8)).await,
        "the round that ended on old settings was not final"
    );
    assert!(drained(client, "grow", Duration::from_secs(5)).await);
    assert_eq!((old.count(), new.count()), (1, 1));
}

#[tokio::test]
async fn https_subscribers_are_reached_when_their_authority_is_trusted() {
    let redis = RedisServer::start();
    let (sub, authority) = Subscriber::start_tls(Answer::Always(200)).await;
    let dir = tempfile::tempdir().unwrap();
    let ca_file = dir.path().join("ca.pem");
    std::fs::write(&ca_file, authority).unwrap();

    // Without the private authority the certificate is refused: a failed attempt, not a delivery.
    let untrusting = ServerProcess::start(&redis).await;
    let client = untrusting.client();
    push_queue(
        &client,
        "tls-untrusted",
        "multicast",
        &[("s", &sub)],
        json!({"retries": 0}),
    )
    .await;
    post_bodies(&client, "tls-untrusted", &["secret"]).await;
    let failed = eventually(Duration::from_secs(10), || async {
        let (_, info) = client.get(&q("tls-untrusted")).await;
        info["queue"]["size"] == 0
    })
    .await;
    assert!(
        failed,
        "the undeliverable message leaves the queue after its last try"
    );
    assert_eq!(sub.count(), 0, "no request reached the subscriber");
    drop(untrusting);

    let ca = ca_file.to_str().unwrap();
    let trusting = ServerProcess::start_with(&redis, &[("FERROMQ_PUSH_CA_FILE", ca)]).await;
    let client = trusting.client();
    push_queue(&client, "tls", "multicast", &[("s", &sub)], json!({})).await;
    post_bodies(&client, "tls", &["over tls"]).await;
    assert!(
        sub.wait_for(1, Duration::from_secs(10)).await,
        "delivered over https"
    );
    assert_eq!(sub.received()[0].body, "over tls");
    assert!(drained(&client, "tls", Duration::from_secs(5)).await);
}

#[tokio::test]
async fn a_queue_push_timeout_overrides_the_servers() {
    let running = start_server().await; // the server's push timeout: 2 s
    let client = &running.client;
    let slow = Subscriber::start(Answer::Slow(Duration::from_millis(1200))).await;
    let sub = [("slow", &slow)];
    push_queue(client, "patient", "multicast", &sub, json!({"retries": 0})).await;
    push_queue(
        client,
        "hasty",
        "multicast",
        &sub,
        json!({"retries": 0, "timeout": 1, "error_queue": "hasty-failed"}),
    )
    .await;
    let (_, info) = client.get(&q("hasty")).await;
    assert_eq!(info["queue"]["push"]["timeout"], 1);

    post_bodies(client, "patient", &["in time"]).await;
    post_bodies(client, "hasty", &["too late"]).await;
    assert!(drained(client, "hasty", Duration::from_secs(10)).await);
    let failed = reserve(client, "hasty-failed", json!({"n": 10})).await;
    assert_eq!(failed.len(), 1, "the 1 s timeout made the try fail");
    let report: Value = serde_json::from_str(failed[0]["body"].as_str().unwrap()).unwrap();
    assert_eq!(
        report["subscribers"][0]["msg"],
        "No answer within the timeout"
    );
    assert!(
        drained(client, "patient", Duration::from_secs(10)).await,
        "answered within 2 s"
    );
}

#[tokio::test]
async fn each_answer_is_counted_per_subscriber() {
    let running = start_server().await;
    let client = &running.client;
    let flaky = Subscriber::start(Answer::Sequence(vec![500, 200])).await;
    let steady = Subscriber::start(Answer::Always(200)).await;
    push_queue(
        client,
        "counted",
        "multicast",
        &[("flaky", &flaky), ("steady", &steady)],
        json!({}),
    )
    .await;
    post_bodies(client, "counted", &["one"]).await;
    assert!(drained(client, "counted", Duration::from_secs(10)).await);
    let store = running.redis.store().await;
    // Counts are written once a second.
    let counted = eventually(Duration::from_secs(5), || async {
        let counts = store.answer_counts("p", "counted").await.unwrap();
        let of = |name: &str| {
            counts
                .get(name)
                .map(|c| (c.delivered, c.accepted, c.failed))
        };
        of("flaky") == Some((1, 0, 1)) && of("steady") == Some((1, 0, 0))
    })
    .await;
    assert!(counted, "{:?}", store.answer_counts("p", "counted").await);
}

#[tokio::test]
async fn a_stopping_process_hands_its_unfinished_rounds_back_at_once() {
    let slow = Subscriber::start(Answer::Slow(Duration::from_secs(8))).await;
    let env = [
        ("FERROMQ_PUSH_TIMEOUT", "20"),
        ("FERROMQ_PUSH_SHUTDOWN_GRACE", "1"),
    ];
    let mut first = start_process(&env).await;
    let client = &first.client;
    push_queue(client, "handed", "multicast", &[("slow", &slow)], json!({})).await;
    post_bodies(client, "handed", &["unfinished"]).await;
    assert!(slow.wait_for(1, Duration::from_secs(5)).await);

    // SIGTERM mid-round: the grace (1 s) is shorter than the subscriber's answer (8 s).
    let stopping = Instant::now();
    first.server.terminate();
    assert!(
        stopping.elapsed() < Duration::from_secs(5),
        "stopped in {:?}",
        stopping.elapsed()
    );

    // Without the hand-back the claim would hold the message for 50 s (timeout + margin).
    let second = ServerProcess::start_with(&first.redis, &env).await;
    assert!(
        slow.wait_for(2, Duration::from_secs(5)).await,
        "the message was not handed back"
    );
    assert_eq!(slow.received()[1].body, "unfinished");
    drop(second);
}

#[tokio::test]
async fn rounds_reported_together_are_each_recorded_or_refused_on_their_own() {
    use ferromq::store::{Report, RoundReport};
    // No push workers here: the test claims and reports itself.
    let running = start_process(&[("FERROMQ_NO_PUSH", "1")]).await;
    let client = &running.client;
    let nobody = Subscriber::start(Answer::Always(200)).await;
    push_queue(client, "batched", "multicast", &[("s", &nobody)], json!({})).await;
    post_bodies(client, "batched", &["done", "again", "stale"]).await;
    let store = running.redis.store().await;
    let claimed = store
        .claim_push("p", "batched", 3, Duration::from_secs(60), Duration::ZERO)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(claimed.len(), 3);
    // The settings' revision is not on the wire: read it where the store keeps it.
    let revision: String = redis::cmd("HGET")
        .arg(QueueKeys::new("p", "batched").cfg())
        .arg("rev")
        .query(&mut running.redis.connection())
        .unwrap();
    let state = "{}".to_string();
    let mut stale = RoundReport::new(
        &claimed[2],
        &revision,
        Report::Done {
            state: state.clone(),
            keep: Duration::ZERO,
        },
    );
    stale.reservation_id = "not-the-claim".into();
    let rounds = [
        RoundReport::new(
            &claimed[0],
            &revision,
            Report::Done {
                state: state.clone(),
                keep: Duration::from_secs(60),
            },
        ),
        RoundReport::new(
            &claimed[1],
            &revision,
            Report::Wait {
                state: state.clone(),
                after: Duration::from_secs(30),
            },
        ),
        stale,
    ];
    let recorded = store.report_push("p", "batched", &rounds).await.unwrap();
    assert_eq!(recorded, [true, true, false]);

    let get = |id: String| async move {
        client
            .get(&format!("{}/messages/{id}", q("batched")))
            .await
            .0
    };
    // Delivered: out of the queue, kept readable (the message by id, and its state).
    let keys = QueueKeys::new("p", "batched");
    let stored: bool = redis::cmd("HEXISTS")
        .arg(keys.body())
        .arg(&claimed[0].id)
        .query(&mut running.redis.connection())
        .unwrap();
    assert!(!stored, "a delivered message leaves the queue");
    assert_eq!(get(claimed[0].id.clone()).await, StatusCode::OK);
    let kept: Option<String> = redis::cmd("HGET")
        .arg(keys.delivered(&claimed[0].id))
        .arg("state")
        .query(&mut running.redis.connection())
        .unwrap();
    assert_eq!(kept.as_deref(), Some("{}"));
    // Waiting for its next round, and the stale report changed nothing: both still stored.
    assert_eq!(get(claimed[1].id.clone()).await, StatusCode::OK);
    assert_eq!(get(claimed[2].id.clone()).await, StatusCode::OK);
    // The stale one's claim still stands: its real holder can still report it.
    let real = RoundReport::new(
        &claimed[2],
        &revision,
        Report::Done {
            state,
            keep: Duration::ZERO,
        },
    );
    assert_eq!(
        store.report_push("p", "batched", &[real]).await.unwrap(),
        [true]
    );
    assert_eq!(get(claimed[2].id.clone()).await, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn an_ironmq_subscriber_with_a_host_posts_to_that_server() {
    // The other server: HTTPS, its own Redis, trusted through the push CA file.
    let certificate = TestCertificate::for_loopback();
    let remote = common::start_tls_process(&certificate, &[]).await;
    let dir = tempfile::tempdir().unwrap();
    let ca_file = dir.path().join("ca.pem");
    std::fs::write(&ca_file, &certificate.authority_pem).unwrap();
    let redis = RedisServer::start();
    let ca = ca_file.to_str().unwrap();
    let local = ServerProcess::start_with(&redis, &[("FERROMQ_PUSH_CA_FILE", ca)]).await;
    let client = local.client();

    let port = remote.server.base.rsplit(':').next().unwrap().to_string();
    let good = format!("ironmq://elsewhere:{}@127.0.0.1:{port}/sink", common::TOKEN);
    let bad = format!("ironmq://elsewhere:wrong-token@127.0.0.1:{port}/sink");
    let (status, body) = client
        .put(
            &q("fan-out"),
            json!({"queue": {"type": "multicast", "push": {"retries": 0, "subscribers": [
                {"name": "remote", "url": good},
                {"name": "refused", "url": bad},
            ]}}}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let ids = post_bodies(&client, "fan-out", &["travels"]).await;

    let sink = "/3/projects/elsewhere/queues/sink/messages?n=10";
    let arrived = eventually(Duration::from_secs(10), || async {
        let (_, peeked) = remote.client.get(sink).await;
        peeked["messages"][0]["body"] == "travels"
    })
    .await;
    assert!(arrived, "the copy reached the other server's queue");
    // The subscriber with a wrong token failed with the other server's answer.
    let path = format!("{}/messages/{}/subscribers", q("fan-out"), ids[0]);
    let refused = eventually(Duration::from_secs(10), || async {
        let (_, status) = client.get(&path).await;
        status["subscribers"]
            .as_array()
            .into_iter()
            .flatten()
            .any(|s| s["name"] == "refused" && s["status_code"] == 401)
    })
    .await;
    assert!(refused, "the wrong token is refused by the other server");
    let (_, peeked) = remote.client.get(sink).await;
    assert_eq!(peeked["messages"].as_array().map(Vec::len), Some(1));
}

#[tokio::test]
async fn subscribers_sharing_a_name_are_kept_listed_and_each_delivered() {
    let running = start_server().await;
    let client = &running.client;
    let (first, second) = (
        Subscriber::start(Answer::Always(200)).await,
        Subscriber::start(Answer::Always(202)).await,
    );
    push_queue(
        client,
        "twins",
        "multicast",
        &[("twin", &first), ("twin", &second)],
        json!({}),
    )
    .await;
    let (_, info) = client.get(&q("twins")).await;
    let listed: Vec<&str> = info["queue"]["push"]["subscribers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["name"].as_str().unwrap())
        .collect();
    assert_eq!(listed, ["twin", "twin"], "both kept: {info}");

    let ids = post_bodies(client, "twins", &["m"]).await;
    assert!(first.wait_for(1, Duration::from_secs(5)).await);
    assert!(second.wait_for(1, Duration::from_secs(5)).await);
    // Each is told its name, and each has an acknowledgement URL of its own.
    let (a, b) = (&first.received()[0].headers, &second.received()[0].headers);
    assert_eq!(
        (
            a["iron-subscriber-name"].to_str().unwrap(),
            b["iron-subscriber-name"].to_str().unwrap()
        ),
        ("twin", "twin")
    );
    let ack_url = b["iron-subscriber-message-url"]
        .to_str()
        .unwrap()
        .to_string();
    assert_ne!(
        a["iron-subscriber-message-url"],
        b["iron-subscriber-message-url"]
    );

    // The push status lists both under their name: one delivered, one awaiting its ack.
    let path = format!("{}/messages/{}/subscribers", q("twins"), ids[0]);
    let both = eventually(Duration::from_secs(5), || async {
        let (_, status) = client.get(&path).await;
        let mut seen: Vec<(String, String)> = status["subscribers"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|s| {
                (
                    s["name"].as_str().unwrap_or_default().to_string(),
                    s["status"].as_str().unwrap_or_default().to_string(),
                )
            })
            .collect();
        seen.sort();
        seen == [
            ("twin".to_string(), "deleted".to_string()),
            ("twin".to_string(), "reserved".to_string()),
        ]
    })
    .await;
    assert!(both, "both subscribers in the push status");
    // Acknowledged by name, the one of that name still awaiting it is meant (the other was
    // delivered); and delivery is over.
    assert!(ack_url.contains("/subscribers/twin%23"), "{ack_url}");
    let rid = b["iron-reservation-id"].to_str().unwrap();
    let (status, body) = client
        .delete(
            &format!("{}/messages/{}", q("twins"), ids[0]),
            Some(json!({"subscriber_name": "twin", "reservation_id": rid})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(drained(client, "twins", Duration::from_secs(5)).await);
    assert_eq!((first.count(), second.count()), (1, 1));
}
