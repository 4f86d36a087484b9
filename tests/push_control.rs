//! What a push queue does for each subscriber beyond IronMQ, against real redis-servers and
//! real HTTP subscribers started by the tests: answers about load (429 and 503 with
//! `Retry-After`), flow control held across processes (`max_per_second`, `max_concurrency`),
//! the circuit breaker (`pause_after_failures`, `probe_interval`), bearer tokens (`jwt`, and
//! the JWKS they verify against), W3C trace context, and CloudEvents headers.

use common::subscriber::{Answer, JwtSigningKey, Received, Reply, Subscriber};
use common::{
    Client, ServerProcess, eventually, post_bodies, posted_ids, q, reserve, start_process,
    start_server,
};
use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// The project of `q()`.
const PROJECT: &str = "p";

/// A subscriber object for a push queue: its name and URL, and `settings` on top.
fn subscriber(name: &str, sub: &Subscriber, settings: Value) -> Value {
    let mut object = json!({"name": name, "url": sub.url});
    if let Value::Object(more) = settings {
        object.as_object_mut().unwrap().extend(more);
    }
    object
}

/// Makes `name` a multicast push queue to `subscribers`, retried every 3 s unless `extra`
/// (more push settings) says otherwise.
async fn push_queue(client: &Client, name: &str, subscribers: &[Value], extra: Value) {
    let mut push = json!({"subscribers": subscribers, "retries_delay": 3});
    if let Value::Object(more) = extra {
        push.as_object_mut().unwrap().extend(more);
    }
    let (status, body) = client
        .put(
            &q(name),
            json!({"queue": {"type": "multicast", "push": push}}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
}

/// Posts `count` messages `m-{i}`, in requests of `batch` messages.
async fn post_numbered(client: &Client, queue: &str, count: usize, batch: usize) {
    let bodies: Vec<String> = (0..count).map(|i| format!("m-{i}")).collect();
    for chunk in bodies.chunks(batch) {
        let refs: Vec<&str> = chunk.iter().map(String::as_str).collect();
        post_bodies(client, queue, &refs).await;
    }
}

/// Posts `messages` (a JSON array) in one request with more HTTP `headers`; returns their ids.
async fn post_with_headers(
    client: &Client,
    queue: &str,
    messages: Value,
    headers: &[(&str, &str)],
) -> Vec<String> {
    let mut all = vec![("Content-Type", "application/json")];
    all.extend_from_slice(headers);
    let body = serde_json::to_vec(&json!({ "messages": messages })).unwrap();
    let (status, json) = client
        .raw(
            Method::POST,
            &format!("{}/messages", q(queue)),
            Some(body),
            &all,
        )
        .await;
    posted_ids(status, &json)
}

/// Messages a queue holds; 0 for a queue that does not exist (an error queue nothing reached).
async fn queue_size(client: &Client, name: &str) -> u64 {
    let (status, info) = client.get(&q(name)).await;
    if status == StatusCode::NOT_FOUND {
        return 0;
    }
    assert_eq!(status, StatusCode::OK, "{info}");
    info["queue"]["size"].as_u64().expect("queue size")
}

/// Polls until the queue holds no message (delivery over), up to `limit`.
async fn drained(client: &Client, name: &str, limit: Duration) -> bool {
    eventually(limit, || async { queue_size(client, name).await == 0 }).await
}

/// The subscriber `name`'s entry in the push status of message `id` (null when not listed).
async fn push_status(client: &Client, queue: &str, id: &str, name: &str) -> Value {
    let (status, body) = client
        .get(&format!("{}/messages/{id}/subscribers", q(queue)))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body["subscribers"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|s| s["name"] == name)
        .cloned()
        .unwrap_or(Value::Null)
}

/// Polls the push status of `id` for `name` until `check` holds, up to `limit`; returns it.
async fn push_status_until(
    client: &Client,
    queue: &str,
    id: &str,
    name: &str,
    limit: Duration,
    check: impl Fn(&Value) -> bool,
) -> Value {
    let deadline = Instant::now() + limit;
    loop {
        let status = push_status(client, queue, id, name).await;
        if check(&status) {
            return status;
        }
        assert!(
            Instant::now() < deadline,
            "push status of {name} never matched: {status}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The value of a request header (empty when missing).
fn header(received: &Received, name: &str) -> String {
    received
        .headers
        .get(name)
        .map(|v| v.to_str().unwrap().to_string())
        .unwrap_or_default()
}

/// When each request arrived.
fn arrivals(sub: &Subscriber) -> Vec<Instant> {
    sub.received().iter().map(|r| r.at).collect()
}

/// How many different bodies the subscriber got.
fn distinct_bodies(sub: &Subscriber) -> usize {
    let mut bodies: Vec<String> = sub.received().into_iter().map(|r| r.body).collect();
    bodies.sort();
    bodies.dedup();
    bodies.len()
}

/// The request that carried `body`.
fn request_with(sub: &Subscriber, body: &str) -> Received {
    sub.received()
        .into_iter()
        .find(|r| r.body == body)
        .unwrap_or_else(|| panic!("no request carried {body:?}"))
}

/// A 429 with `Retry-After: 2` holds the next try back at least 2 s and spends no retry: with
/// the queue's `retries` 0, two such answers and then a 200 still deliver the message and
/// nothing reaches the error queue. While it waits, the push status says why and until when,
/// with the retries left untouched (a subscriber with its own `retries` 2 still has 2).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_429_with_retry_after_waits_that_long_and_spends_no_retry() {
    let running = start_server().await;
    let client = &running.client;
    let busy_answers = || {
        Answer::replies(vec![
            Reply::status(429).header("Retry-After", "2"),
            Reply::status(429).header("Retry-After", "2"),
            Reply::status(200),
        ])
    };
    let busy = Subscriber::start(busy_answers()).await;
    let counted = Subscriber::start(busy_answers()).await;
    push_queue(
        client,
        "throttled",
        &[
            subscriber("busy", &busy, json!({})),
            subscriber("counted", &counted, json!({"retries": 2})),
        ],
        json!({"retries": 0, "error_queue": "throttled-errors"}),
    )
    .await;
    let ids = post_bodies(client, "throttled", &["m"]).await;

    // After the second 429 (its answer recorded; the wait it asked for lasts 2 s).
    assert!(busy.wait_for(2, Duration::from_secs(8)).await);
    assert!(counted.wait_for(2, Duration::from_secs(8)).await);
    tokio::time::sleep(Duration::from_millis(400)).await;
    for name in ["busy", "counted"] {
        let waiting = push_status_until(
            client,
            "throttled",
            &ids[0],
            name,
            Duration::from_secs(1),
            |s| s["waiting"] == "retry_after",
        )
        .await;
        assert_eq!(waiting["status_code"], 429, "{waiting}");
        assert!(
            !matches!(waiting["status"].as_str(), Some("error" | "deleted")),
            "still to be delivered: {waiting}"
        );
        let next = waiting["next_try_at"].as_str().expect("next_try_at");
        let next = humantime::parse_rfc3339_weak(next).expect("next_try_at is RFC 3339");
        let now = SystemTime::now();
        assert!(
            next + Duration::from_secs(1) >= now && next <= now + Duration::from_secs(3),
            "next_try_at {waiting} is about 2 s after the 429"
        );
    }
    let counted_status = push_status(client, "throttled", &ids[0], "counted").await;
    assert_eq!(
        counted_status["retries_remaining"], 2,
        "a 429 spends no retry: {counted_status}"
    );

    assert!(busy.wait_for(3, Duration::from_secs(8)).await);
    assert!(counted.wait_for(3, Duration::from_secs(8)).await);
    for sub in [&busy, &counted] {
        let at = arrivals(sub);
        for gap in [at[1] - at[0], at[2] - at[1]] {
            // Less a little for the milliseconds the server rounds its times to.
            assert!(
                gap >= Duration::from_millis(1950),
                "Retry-After: 2, got {gap:?}"
            );
        }
    }
    assert!(drained(client, "throttled", Duration::from_secs(5)).await);
    for name in ["busy", "counted"] {
        let done = push_status(client, "throttled", &ids[0], name).await;
        assert_eq!(
            (done["status"].as_str(), done["status_code"].as_u64()),
            (Some("deleted"), Some(200)),
            "{done}"
        );
        assert!(done["waiting"].is_null(), "no longer waiting: {done}");
    }
    assert_eq!(
        queue_size(client, "throttled-errors").await,
        0,
        "nothing reached the error queue"
    );
}

/// A 503 whose `Retry-After` is an HTTP date is a failed try whose retry comes no sooner than
/// that date, even when `retries_delay` is shorter.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_503_with_a_retry_after_date_is_retried_no_sooner_than_that_date() {
    let running = start_server().await;
    let client = &running.client;
    // The date the first answer names, 5 to 6 s ahead on a whole second, as an instant.
    let not_before: Arc<Mutex<Option<Instant>>> = Arc::default();
    let named = not_before.clone();
    let sub = Subscriber::start(Answer::custom(move |n| {
        if n > 0 {
            return Reply::status(200);
        }
        let now = SystemTime::now();
        let whole = now.duration_since(UNIX_EPOCH).unwrap().as_secs() + 6;
        let date = UNIX_EPOCH + Duration::from_secs(whole);
        *named.lock().unwrap() = Some(Instant::now() + date.duration_since(now).unwrap());
        Reply::status(503).header("Retry-After", httpdate::fmt_http_date(date))
    }))
    .await;
    push_queue(
        client,
        "unavailable",
        &[subscriber("s", &sub, json!({}))],
        json!({"retries": 1, "retries_delay": 3, "error_queue": "unavailable-errors"}),
    )
    .await;
    let ids = post_bodies(client, "unavailable", &["m"]).await;

    assert!(sub.wait_for(2, Duration::from_secs(10)).await, "retried");
    let at = arrivals(&sub);
    let named: Option<Instant> = *not_before.lock().unwrap();
    let date = named.expect("the first answer named a date");
    // Less a little for the milliseconds the server rounds its times to.
    assert!(
        at[1] + Duration::from_millis(50) >= date,
        "retried {:?} before the Retry-After date",
        date - at[1]
    );
    assert!(
        at[1] - at[0] >= Duration::from_millis(4900),
        "longer than retries_delay: {:?}",
        at[1] - at[0]
    );
    assert!(drained(client, "unavailable", Duration::from_secs(5)).await);
    let done = push_status(client, "unavailable", &ids[0], "s").await;
    assert_eq!(
        (
            done["status"].as_str(),
            done["status_code"].as_u64(),
            done["tries"].as_u64()
        ),
        (Some("deleted"), Some(200), Some(2)),
        "the 503 counted as a try: {done}"
    );
    assert_eq!(queue_size(client, "unavailable-errors").await, 0);
}

/// How many processes delivered to `sub`: each names itself in its acknowledgement URLs.
fn pushing_processes(sub: &Subscriber) -> usize {
    let origins: std::collections::BTreeSet<String> = sub
        .received()
        .iter()
        .filter_map(|r| r.headers.get("iron-subscriber-message-url")?.to_str().ok())
        .map(|url| url.split("/3/").next().unwrap_or_default().to_string())
        .collect();
    origins.len()
}

/// The most arrivals within any 1-second window.
fn busiest_second(at: &[Instant]) -> usize {
    let mut at = at.to_vec();
    at.sort();
    (0..at.len())
        .map(|i| {
            at[i..]
                .iter()
                .take_while(|t| **t - at[i] < Duration::from_secs(1))
                .count()
        })
        .max()
        .unwrap_or(0)
}

/// `max_per_second` holds across every process pushing the queue: two processes on one Redis
/// deliver 200 messages to a subscriber limited to 20 a second no faster than that (in every
/// 1-second window, with a little tolerance for timing), while the other subscriber of the
/// same queue, without a limit, gets all of them at once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn max_per_second_holds_across_processes_and_slows_no_other_subscriber() {
    let one = start_process(&[]).await;
    let _two = ServerProcess::start(&one.redis).await;
    let client = &one.client;
    let slow = Subscriber::start(Answer::Always(200)).await;
    let free = Subscriber::start(Answer::Always(200)).await;
    push_queue(
        client,
        "metered",
        &[
            subscriber("slow", &slow, json!({"max_per_second": 20})),
            subscriber("free", &free, json!({})),
        ],
        json!({}),
    )
    .await;
    post_numbered(client, "metered", 200, 100).await;

    assert!(
        free.wait_for(200, Duration::from_secs(5)).await,
        "the subscriber without a limit is not slowed: {} of 200",
        free.count()
    );
    assert!(
        slow.wait_for(200, Duration::from_secs(20)).await,
        "the limited subscriber gets everything in time: {} of 200",
        slow.count()
    );
    assert_eq!(distinct_bodies(&free), 200);
    assert_eq!(distinct_bodies(&slow), 200);
    let at = arrivals(&slow);
    let busiest = busiest_second(&at);
    // A booked slot may be used up to 250 ms late (push_gate_admit.lua's LATE_MS).
    assert!(busiest <= 26, "{busiest} deliveries within one second");
    assert_eq!(pushing_processes(&slow), 2, "both processes delivered");
    let span = *at.iter().max().unwrap() - *at.iter().min().unwrap();
    assert!(span >= Duration::from_secs(8), "200 at 20/s took {span:?}");
    assert!(drained(client, "metered", Duration::from_secs(5)).await);
}

/// `max_concurrency` holds across every process pushing the queue: a subscriber limited to 2
/// that answers after 200 ms never has more than 2 requests at once, and still gets every
/// message; its neighbour without a limit, answering as slowly, has many at once (so the
/// measure would see a breach).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn max_concurrency_holds_across_processes() {
    let one = start_process(&[]).await;
    let _two = ServerProcess::start(&one.redis).await;
    let client = &one.client;
    let narrow = Subscriber::start(Answer::Slow(Duration::from_millis(200))).await;
    let wide = Subscriber::start(Answer::Slow(Duration::from_millis(200))).await;
    push_queue(
        client,
        "narrow",
        &[
            subscriber("narrow", &narrow, json!({"max_concurrency": 2})),
            subscriber("wide", &wide, json!({})),
        ],
        json!({}),
    )
    .await;
    post_numbered(client, "narrow", 20, 20).await;

    assert!(wide.wait_for(20, Duration::from_secs(10)).await);
    assert!(
        narrow.wait_for(20, Duration::from_secs(15)).await,
        "{} of 20",
        narrow.count()
    );
    assert!(drained(client, "narrow", Duration::from_secs(5)).await);
    assert_eq!(distinct_bodies(&narrow), 20);
    assert_eq!(pushing_processes(&narrow), 2, "both processes delivered");
    assert!(
        narrow.peak_in_flight() <= 2,
        "{} requests at once",
        narrow.peak_in_flight()
    );
    assert!(
        wide.peak_in_flight() > 2,
        "without a limit pushes overlap: {}",
        wide.peak_in_flight()
    );
}

/// The value of `name{labels...}` in Prometheus text, whatever the labels' order.
fn sample(text: &str, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    text.lines().find_map(|line| {
        let (set, value) = line
            .strip_prefix(name)?
            .strip_prefix('{')?
            .split_once('}')?;
        let pairs: Vec<&str> = set.split(',').collect();
        let matches = labels
            .iter()
            .all(|(k, v)| pairs.contains(&format!("{k}=\"{v}\"").as_str()));
        if matches {
            value.trim().parse::<f64>().ok()
        } else {
            None
        }
    })
}

/// `ferromq_push_circuit_open` of one subscriber, as the server's `/metrics` shows it.
async fn circuit_open(base: &str, queue: &str, subscriber: &str) -> Option<f64> {
    let text = common::http()
        .get(format!("{base}/metrics"))
        .send()
        .await
        .ok()?
        .text()
        .await
        .ok()?;
    let labels = [
        ("project", PROJECT),
        ("queue", queue),
        ("subscriber", subscriber),
    ];
    sample(&text, "ferromq_push_circuit_open", &labels)
}

/// A subscriber that fails 3 times in a row is paused: its messages wait without spending
/// retries (nothing reaches the error queue, though each has only 2), and it is probed with
/// one delivery at a time, 1 s after the pause and then less often. The metric and the push
/// status show the pause. Once it answers 200 again, the next probe resumes it and every
/// message is delivered.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_subscriber_is_paused_probed_and_resumed_without_spending_retries() {
    let running = start_server().await;
    let client = &running.client;
    let base = &running.server.base;
    let sub = Subscriber::start(Answer::switch(500)).await;
    push_queue(
        client,
        "breaker",
        &[subscriber(
            "down",
            &sub,
            json!({"pause_after_failures": 3, "probe_interval": 1}),
        )],
        json!({"retries": 2, "retries_delay": 3, "error_queue": "breaker-errors"}),
    )
    .await;
    let bodies = ["m0", "m1", "m2", "m3", "m4"];
    let ids = post_bodies(client, "breaker", &bodies).await;

    let opened = eventually(Duration::from_secs(5), || async {
        circuit_open(base, "breaker", "down").await == Some(1.0)
    })
    .await;
    assert!(opened, "ferromq_push_circuit_open is 1 after 3 failures");
    // What the controller reads for the Subscription's status: the pause and when it ends.
    let store = running.redis.store().await;
    let open = store.open_circuits(PROJECT, "breaker").await.unwrap();
    assert!(open.get("down").is_some_and(|&until| until > 0), "{open:?}");

    // Paused for 4 s from now: without the breaker each message would be retried after 3 s
    // (5 more requests); with it only probes come, one at a time, 1 s apart at least.
    let (before, paused_at) = (sub.count(), Instant::now());
    let shown = eventually(Duration::from_secs(4), || async {
        for id in &ids {
            let status = push_status(client, "breaker", id, "down").await;
            if status["waiting"] == "circuit_open" {
                return true;
            }
        }
        false
    })
    .await;
    assert!(shown, "the push status shows the pause");
    let window_end = paused_at + Duration::from_secs(4);
    tokio::time::sleep(window_end.saturating_duration_since(Instant::now())).await;
    let probes: Vec<Instant> = arrivals(&sub)[before..].to_vec();
    assert!(
        (1..=4).contains(&probes.len()),
        "{} requests while paused (only probes)",
        probes.len()
    );
    for pair in probes.windows(2) {
        assert!(
            pair[1] - pair[0] >= Duration::from_millis(900),
            "probes {:?} apart",
            pair[1] - pair[0]
        );
    }
    assert_eq!(
        queue_size(client, "breaker").await,
        5,
        "every message waits"
    );
    assert_eq!(
        queue_size(client, "breaker-errors").await,
        0,
        "a paused subscriber's messages spend no retry"
    );

    let flipped = sub.count();
    sub.set_status(200);
    assert!(
        drained(client, "breaker", Duration::from_secs(15)).await,
        "a successful probe resumes delivery"
    );
    for id in &ids {
        let done = push_status(client, "breaker", id, "down").await;
        assert_eq!(
            (done["status"].as_str(), done["status_code"].as_u64()),
            (Some("deleted"), Some(200)),
            "{done}"
        );
    }
    let since: Vec<String> = sub.received()[flipped..]
        .iter()
        .map(|r| r.body.clone())
        .collect();
    for body in bodies {
        assert!(
            since.iter().any(|b| b == body),
            "{body} arrived after the flip: {since:?}"
        );
    }
    assert_eq!(queue_size(client, "breaker-errors").await, 0);
    let closed = eventually(Duration::from_secs(5), || async {
        circuit_open(base, "breaker", "down").await == Some(0.0)
    })
    .await;
    assert!(closed, "ferromq_push_circuit_open is 0 once resumed");
}

/// A `jwt` subscriber's pushes carry `Authorization: Bearer <JWT>`, an ES256 token signed with
/// the server's key (FERROMQ_PUSH_JWT_KEY) that verifies against the JWKS it serves without
/// a token: `aud` the subscriber's URL or the audience given, `iss` the server's public URL,
/// `sub` the queue, valid for at most an hour. With `token_file` the file's token is sent as
/// it is; without `jwt`, no Authorization at all.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jwt_subscribers_get_bearer_tokens_that_verify_against_the_jwks() {
    const AUDIENCE: &str = "https://example.test/aud";
    let key = JwtSigningKey::generate();
    // Token files are read from this directory only.
    let dir = tempfile::tempdir().unwrap();
    let running = start_process(&[
        ("FERROMQ_PUSH_JWT_KEY", key.path.to_str().unwrap()),
        ("FERROMQ_PUSH_TOKEN_DIR", dir.path().to_str().unwrap()),
    ])
    .await;
    let client = &running.client;
    let base = &running.server.base;

    let response = common::http()
        .get(format!("{base}/.well-known/jwks.json"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK, "served without a token");
    let jwks_json: Value = response.json().await.unwrap();
    let published = jwks_json["keys"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|k| k["x"] == key.x.as_str() && k["y"] == key.y.as_str())
        .unwrap_or_else(|| panic!("the configured key is published: {jwks_json}"));
    assert_eq!(
        (
            &published["kty"],
            &published["crv"],
            &published["alg"],
            &published["use"]
        ),
        (
            &json!("EC"),
            &json!("P-256"),
            &json!("ES256"),
            &json!("sig")
        ),
        "{published}"
    );
    assert!(published["kid"].as_str().is_some_and(|k| !k.is_empty()));
    assert!(published["d"].is_null(), "never the private part");
    let jwks: JwkSet = serde_json::from_value(jwks_json.clone()).unwrap();

    let token_file = dir.path().join("token");
    std::fs::write(&token_file, "abc.def.ghi\n").unwrap();
    let signed = Subscriber::start(Answer::Always(200)).await;
    let aimed = Subscriber::start(Answer::Always(200)).await;
    let projected = Subscriber::start(Answer::Always(200)).await;
    let plain = Subscriber::start(Answer::Always(200)).await;
    push_queue(
        client,
        "authed",
        &[
            subscriber("signed", &signed, json!({"jwt": {}})),
            subscriber("aimed", &aimed, json!({"jwt": {"audience": AUDIENCE}})),
            subscriber(
                "projected",
                &projected,
                json!({"jwt": {"token_file": token_file.to_str().unwrap()}}),
            ),
            subscriber("plain", &plain, json!({})),
        ],
        json!({}),
    )
    .await;
    post_bodies(client, "authed", &["m"]).await;
    for sub in [&signed, &aimed, &projected, &plain] {
        assert!(sub.wait_for(1, Duration::from_secs(10)).await);
    }

    for (sub, audience) in [(&signed, signed.url.as_str()), (&aimed, AUDIENCE)] {
        let claims = verified_claims(&sub.received()[0], &jwks, audience);
        assert_eq!(claims["iss"], base.as_str(), "{claims}");
        assert_eq!(claims["sub"], format!("{PROJECT}/authed"), "{claims}");
        let (iat, exp) = (claims["iat"].as_u64(), claims["exp"].as_u64());
        let (Some(iat), Some(exp)) = (iat, exp) else {
            panic!("iat and exp: {claims}");
        };
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_secs();
        assert!(exp > now && iat <= now + 5, "{claims}");
        assert!(exp - iat <= 3600, "valid for at most an hour: {claims}");
    }
    assert_eq!(
        header(&projected.received()[0], "authorization"),
        "Bearer abc.def.ghi",
        "the token file's content, trimmed"
    );
    assert!(plain.received()[0].headers.get("authorization").is_none());
}

/// The claims of the bearer token `received` carries, once its ES256 signature is verified
/// with the JWKS key its `kid` names and its `aud` is `audience`.
fn verified_claims(received: &Received, jwks: &JwkSet, audience: &str) -> Value {
    let authorization = header(received, "authorization");
    let token = authorization
        .strip_prefix("Bearer ")
        .unwrap_or_else(|| panic!("a bearer token: {authorization:?}"));
    let head = jsonwebtoken::decode_header(token).expect("a JWT");
    assert_eq!(head.alg, Algorithm::ES256);
    let kid = head.kid.expect("the header names its key");
    let jwk = jwks
        .find(&kid)
        .unwrap_or_else(|| panic!("kid {kid} in the JWKS"));
    let key = DecodingKey::from_jwk(jwk).expect("an EC key");
    let mut validation = Validation::new(Algorithm::ES256);
    validation.set_audience(&[audience]);
    validation.set_required_spec_claims(&["exp", "aud", "iss", "sub"]);
    jsonwebtoken::decode::<Value>(token, &key, &validation)
        .unwrap_or_else(|e| panic!("{token} does not verify: {e}"))
        .claims
}

/// The subscribers of a queue as its settings read back.
async fn subscribers_of(client: &Client, queue: &str) -> Value {
    let (status, info) = client.get(&q(queue)).await;
    assert_eq!(status, StatusCode::OK, "{info}");
    info["queue"]["push"]["subscribers"].clone()
}

/// The new settings read back as given; bad ones are refused with a 400 naming the setting,
/// through the queue's settings and the subscribers API alike, and change nothing. A `jwt`
/// without a token file needs a server with a signing key (this one has none), and a token
/// file must be readable.
#[tokio::test]
async fn bad_subscriber_settings_are_refused_and_change_nothing() {
    let running = start_server().await;
    let client = &running.client;
    let good = json!({
        "name": "s",
        "url": "http://example.test/hook",
        "max_per_second": 2.5,
        "max_concurrency": 3,
        "pause_after_failures": 4,
        "probe_interval": 7,
        "cloudevents": true,
    });
    let (status, body) = client
        .put(
            &q("guarded"),
            json!({"queue": {"type": "multicast", "push": {"subscribers": [good]}}}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let before = subscribers_of(client, "guarded").await;
    for setting in [
        "max_per_second",
        "max_concurrency",
        "pause_after_failures",
        "probe_interval",
        "cloudevents",
    ] {
        assert_eq!(before[0][setting], good[setting], "{setting}: {before}");
    }

    let subscribers = format!("{}/subscribers", q("guarded"));
    let bad_settings = [
        ("max_per_second", json!(0)),
        ("max_per_second", json!(-1)),
        ("max_concurrency", json!(0)),
        ("pause_after_failures", json!(0)),
        ("probe_interval", json!(0)),
        ("jwt", json!({})),
        ("jwt", json!({"audience": "https://example.test/aud"})),
        ("jwt", json!({"token_file": "/nonexistent/x"})),
        // A file that exists, outside the token directory: never read, let alone sent.
        ("jwt", json!({"token_file": "/etc/hostname"})),
    ];
    for (setting, value) in bad_settings {
        let mut bad = good.clone();
        bad[setting] = value.clone();
        let changes = [
            (
                Method::PUT,
                q("guarded"),
                json!({"queue": {"push": {"subscribers": [bad]}}}),
            ),
            (
                Method::POST,
                subscribers.clone(),
                json!({"subscribers": [bad]}),
            ),
            (
                Method::PUT,
                subscribers.clone(),
                json!({"subscribers": [bad]}),
            ),
        ];
        for (method, path, change) in changes {
            let (status, body) = client.call(method.clone(), &path, Some(change)).await;
            assert_eq!(
                status,
                StatusCode::BAD_REQUEST,
                "{method} {path} with {setting} {value}: {body}"
            );
            let msg = body["msg"].as_str().unwrap();
            assert!(msg.contains(setting), "{setting} {value}: {msg:?}");
            assert_eq!(
                subscribers_of(client, "guarded").await,
                before,
                "{method} {path} with {setting} {value} changed the settings"
            );
        }
    }
}

const TRACE_ID: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
const POSTED_SPAN: &str = "00f067aa0ba902b7";
const TRACEPARENT: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

/// The span id of a push's `traceparent`, once checked that it continues the posted trace:
/// version 00, the same trace id and flags, a valid span id of its own.
fn continued_span(received: &Received) -> String {
    let traceparent = header(received, "traceparent");
    let parts: Vec<&str> = traceparent.split('-').collect();
    assert_eq!(parts.len(), 4, "{traceparent:?}");
    assert_eq!((parts[0], parts[1], parts[3]), ("00", TRACE_ID, "01"));
    let span = parts[2];
    assert!(
        span.len() == 16
            && span
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
            && span != "0000000000000000",
        "span id {span:?}"
    );
    assert_ne!(span, POSTED_SPAN, "a new span, not the poster's");
    assert_eq!(header(received, "tracestate"), "vendor=x");
    span.to_string()
}

/// A message posted with a `traceparent` is pushed within that trace: every attempt carries
/// the same trace id and flags with a new span id of its own, and the `tracestate` as given.
#[tokio::test]
async fn pushes_continue_the_trace_a_message_was_posted_in() {
    let running = start_server().await;
    let client = &running.client;
    let sub = Subscriber::start(Answer::Sequence(vec![500, 200])).await;
    push_queue(
        client,
        "traced",
        &[subscriber("s", &sub, json!({}))],
        json!({}),
    )
    .await;
    let trace = [("traceparent", TRACEPARENT), ("tracestate", "vendor=x")];
    post_with_headers(client, "traced", json!([{"body": "m"}]), &trace).await;

    assert!(sub.wait_for(2, Duration::from_secs(10)).await, "retried");
    let spans: Vec<String> = sub.received().iter().map(continued_span).collect();
    assert_ne!(spans[0], spans[1], "a new span for each attempt");
    assert!(drained(client, "traced", Duration::from_secs(5)).await);
}

/// Reserved messages give back the trace context each was posted with (`tracestate` only when
/// one was given), and messages posted without one have neither field.
#[tokio::test]
async fn reserved_messages_give_back_their_trace_context() {
    let running = start_server().await;
    let client = &running.client;
    let two = json!([{"body": "a"}, {"body": "b"}]);
    let full = [("traceparent", TRACEPARENT), ("tracestate", "vendor=x")];
    let with_state = post_with_headers(client, "pulled", two, &full).await;
    let without_state =
        post_with_headers(client, "pulled", json!([{"body": "c"}]), &full[..1]).await;
    let untraced = post_bodies(client, "pulled", &["d"]).await;

    let messages = reserve(client, "pulled", json!({"n": 10})).await;
    assert_eq!(messages.len(), 4);
    for message in &messages {
        let id = message["id"].as_str().unwrap().to_string();
        let (traceparent, tracestate) = (&message["traceparent"], &message["tracestate"]);
        if with_state.contains(&id) {
            assert_eq!(
                (traceparent, tracestate),
                (&json!(TRACEPARENT), &json!("vendor=x"))
            );
        } else if without_state.contains(&id) {
            assert_eq!(traceparent, TRACEPARENT, "{message}");
            assert!(message.get("tracestate").is_none(), "{message}");
        } else {
            assert!(untraced.contains(&id));
            assert!(
                message.get("traceparent").is_none() && message.get("tracestate").is_none(),
                "{message}"
            );
        }
    }
}

/// The `ce-*` headers of a request, sorted by name.
fn cloudevents_headers(received: &Received) -> Vec<(String, String)> {
    let mut found: Vec<(String, String)> = received
        .headers
        .iter()
        .filter(|(name, _)| name.as_str().starts_with("ce-"))
        .map(|(name, value)| {
            let value = value.to_str().unwrap().to_string();
            (name.as_str().to_string(), value)
        })
        .collect();
    found.sort();
    found
}

/// A `cloudevents` subscriber gets each push as a CloudEvent in binary mode: `ce-specversion`
/// 1.0, `ce-id` the message id, `ce-source` the queue, `ce-type` dev.ferromq.message unless
/// the message's push headers set their own. A subscriber without the option gets no `ce-*`
/// header but those of the message itself.
#[tokio::test]
async fn cloudevents_subscribers_get_binary_mode_headers() {
    let running = start_server().await;
    let client = &running.client;
    let evented = Subscriber::start(Answer::Always(200)).await;
    let plain = Subscriber::start(Answer::Always(200)).await;
    push_queue(
        client,
        "evented",
        &[
            subscriber("evented", &evented, json!({"cloudevents": true})),
            subscriber("plain", &plain, json!({})),
        ],
        json!({}),
    )
    .await;
    let default_id = post_bodies(client, "evented", &["default"]).await.remove(0);
    let order = json!([{"body": "order", "push_headers": {"ce-type": "com.example.order"}}]);
    let order_id = post_with_headers(client, "evented", order, &[])
        .await
        .remove(0);
    assert!(evented.wait_for(2, Duration::from_secs(5)).await);
    assert!(plain.wait_for(2, Duration::from_secs(5)).await);

    let source = format!("/projects/{PROJECT}/queues/evented");
    for (body, id, kind) in [
        ("default", &default_id, "dev.ferromq.message"),
        ("order", &order_id, "com.example.order"),
    ] {
        // These at least (optional attributes such as ce-time may come too).
        let got = cloudevents_headers(&request_with(&evented, body));
        for (name, value) in [
            ("ce-id", id.as_str()),
            ("ce-source", source.as_str()),
            ("ce-specversion", "1.0"),
            ("ce-type", kind),
        ] {
            let values: Vec<&str> = got
                .iter()
                .filter(|(n, _)| n == name)
                .map(|(_, v)| v.as_str())
                .collect();
            assert_eq!(values, [value], "{name} once, in {got:?}");
        }
    }
    assert_eq!(
        cloudevents_headers(&request_with(&plain, "default")),
        Vec::<(String, String)>::new(),
        "none without the option"
    );
    assert_eq!(
        cloudevents_headers(&request_with(&plain, "order")),
        [("ce-type".to_string(), "com.example.order".to_string())],
        "only the message's own"
    );
}
