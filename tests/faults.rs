//! Fault injection against real processes: a data-plane process killed with SIGKILL while
//! producers and consumers run, a push worker killed mid-delivery, Redis (append-only, fsync
//! always) killed and restarted under posts, and subscribers that reset, answer garbage, answer
//! too late or redirect. Each test prints one line `sent, received, duplicated, lost` (lost is
//! always asserted to be 0) so runs can be compared.

use common::subscriber::{Answer, Received, Subscriber};
use common::{
    Client, RedisServer, ServerProcess, eventually, post_bodies, q, quiet, reserve, start_process,
    start_process_on,
};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Longest any request of these tests may take: nothing may hang on a fault.
const REQUEST_LIMIT: Duration = Duration::from_secs(5);

/// The tests that kill processes under load run one at a time: on a small CI machine, two at
/// once would measure the machine, not ferromq.
static HEAVY: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// The ids of a 201 answer to a post.
fn ids_of(answer: &Value) -> Vec<String> {
    answer["ids"]
        .as_array()
        .expect("ids")
        .iter()
        .map(|id| id.as_str().unwrap().to_string())
        .collect()
}

fn messages_path(queue: &str) -> String {
    format!("{}/messages", q(queue))
}

/// How many times each body occurs, and how many occurrences are beyond the first.
fn duplicates<'a>(bodies: impl IntoIterator<Item = &'a str>) -> (HashMap<&'a str, usize>, usize) {
    let mut seen: HashMap<&str, usize> = HashMap::new();
    for body in bodies {
        *seen.entry(body).or_default() += 1;
    }
    let extra = seen.values().map(|n| n - 1).sum();
    (seen, extra)
}

// ---------------------------------------------------------------------------------------------
// 1. A data-plane process dies under load.

/// One message as a consumer got it, and whether deleting it was acknowledged (200).
#[derive(Debug, Clone)]
struct Reception {
    body: String,
    id: String,
    reserved_count: u64,
    at: Instant,
    deleted: bool,
}

/// A client that starts on one server and moves to the other for good once a request to it
/// fails (the process is gone).
struct FailingOver {
    home: Client,
    survivor: Client,
    moved: bool,
}

impl FailingOver {
    fn current(&self) -> &Client {
        if self.moved {
            &self.survivor
        } else {
            &self.home
        }
    }

    /// Sends once through the current server; moves to the survivor when that fails, so the
    /// caller sees the failure and decides whether to try again.
    async fn call(
        &mut self,
        method: Method,
        path: &str,
        body: Value,
    ) -> Result<common::Answer, String> {
        let answer = self
            .current()
            .try_call(method, path, Some(body), REQUEST_LIMIT)
            .await;
        if let Err(err) = &answer {
            assert!(
                !self.moved && self.home.base != self.survivor.base,
                "a request to the surviving process failed: {err}"
            );
            self.moved = true;
        }
        answer
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killing_one_of_two_data_plane_processes_loses_no_acknowledged_message() {
    let _one_at_a_time = HEAVY.lock().await;
    const PRODUCERS: usize = 4;
    const CONSUMERS: usize = 4;
    const BATCH: usize = 4;
    let started = Instant::now();
    let no_push = [("FERROMQ_NO_PUSH", "true")];
    let mut victim = start_process(&no_push).await;
    let survivor = ServerProcess::start_with(&victim.redis, &no_push).await;
    let (status, body) = survivor
        .client()
        .put(&q("work"), json!({"queue": {"message_timeout": 30}}))
        .await;
    assert!(status.is_success(), "{body}");

    // Every body whose post answered 201, by id; posts that failed are not counted as sent.
    let sent: Arc<Mutex<HashMap<String, String>>> = Arc::default();
    let receptions: Arc<Mutex<Vec<Reception>>> = Arc::default();
    // What went through the victim before it died, to show the kill came mid-run.
    let via_victim = Arc::new(AtomicUsize::new(0));
    let failed_calls = Arc::new(AtomicUsize::new(0));
    let producing = Arc::new(AtomicBool::new(true));
    let consuming = Arc::new(AtomicBool::new(true));
    let client_for = |i: usize| FailingOver {
        home: if i.is_multiple_of(2) {
            victim.server.client()
        } else {
            survivor.client()
        },
        survivor: survivor.client(),
        moved: false,
    };

    let mut producers = Vec::new();
    for p in 0..PRODUCERS {
        let mut client = client_for(p);
        let (sent, producing, via_victim, failed_calls) = (
            sent.clone(),
            producing.clone(),
            via_victim.clone(),
            failed_calls.clone(),
        );
        producers.push(tokio::spawn(async move {
            let mut seq = 0;
            while producing.load(Ordering::Relaxed) {
                let bodies: Vec<String> = (0..BATCH).map(|i| format!("p{p}-{}", seq + i)).collect();
                seq += BATCH;
                let messages: Vec<Value> = bodies.iter().map(|b| json!({ "body": b })).collect();
                let through_victim = !client.moved && p.is_multiple_of(2);
                match client
                    .call(
                        Method::POST,
                        &messages_path("work"),
                        json!({ "messages": messages }),
                    )
                    .await
                {
                    Ok((StatusCode::CREATED, answer)) => {
                        let ids = ids_of(&answer);
                        assert_eq!(ids.len(), BATCH, "{answer}");
                        sent.lock().unwrap().extend(ids.into_iter().zip(bodies));
                        if through_victim {
                            via_victim.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                    Ok((status, answer)) => panic!("post answered {status}: {answer}"),
                    // The victim died with the post in flight: it may or may not be stored.
                    Err(_) => {
                        failed_calls.fetch_add(1, Ordering::Relaxed);
                    }
                }
            }
        }));
    }

    let mut consumers = Vec::new();
    for c in 0..CONSUMERS {
        let mut client = client_for(c);
        let (receptions, consuming, via_victim, failed_calls) = (
            receptions.clone(),
            consuming.clone(),
            via_victim.clone(),
            failed_calls.clone(),
        );
        consumers.push(tokio::spawn(async move {
            while consuming.load(Ordering::Relaxed) {
                let through_victim = !client.moved && c.is_multiple_of(2);
                // A short reservation: what the victim handed out and never saw deleted comes
                // back 5 s later.
                let reserved = client
                    .call(
                        Method::POST,
                        &format!("{}/reservations", q("work")),
                        json!({"n": 10, "timeout": 5, "wait": 2}),
                    )
                    .await;
                let messages = match reserved {
                    Ok((StatusCode::OK, answer)) => answer["messages"].as_array().unwrap().clone(),
                    Ok((status, answer)) => panic!("reserve answered {status}: {answer}"),
                    Err(_) => {
                        failed_calls.fetch_add(1, Ordering::Relaxed);
                        continue;
                    }
                };
                for message in messages {
                    let id = message["id"].as_str().unwrap().to_string();
                    let deleted = client
                        .call(
                            Method::DELETE,
                            &format!("{}/{id}", messages_path("work")),
                            json!({"reservation_id": message["reservation_id"]}),
                        )
                        .await;
                    let deleted = match deleted {
                        Ok((status, _)) => status == StatusCode::OK,
                        Err(_) => {
                            failed_calls.fetch_add(1, Ordering::Relaxed);
                            false
                        }
                    };
                    if through_victim && deleted {
                        via_victim.fetch_add(1, Ordering::Relaxed);
                    }
                    receptions.lock().unwrap().push(Reception {
                        body: message["body"].as_str().unwrap().to_string(),
                        id,
                        reserved_count: message["reserved_count"].as_u64().unwrap(),
                        at: Instant::now(),
                        deleted,
                    });
                }
            }
        }));
    }

    tokio::time::sleep(Duration::from_millis(1500)).await;
    let before_kill = via_victim.load(Ordering::Relaxed);
    victim.server.kill();
    let killed_at = Instant::now();
    tokio::time::sleep(Duration::from_millis(1500)).await;
    producing.store(false, Ordering::Relaxed);
    for producer in producers {
        producer.await.expect("producer");
    }
    let sent = sent.lock().unwrap().clone();

    // Drain through the survivor: everything acknowledged is received and deleted, and what
    // the victim had reserved comes back once its 5 s reservation runs out.
    let observer = survivor.client();
    // (A delete whose answer died with the victim may still have happened: the queue's size,
    // not the acknowledgements, says when all is gone.)
    let drained = eventually(Duration::from_secs(25), || async {
        let got: HashSet<String> = receptions
            .lock()
            .unwrap()
            .iter()
            .map(|r| r.id.clone())
            .collect();
        if !sent.keys().all(|id| got.contains(id)) {
            return false;
        }
        let (_, info) = observer.get(&q("work")).await;
        info["queue"]["size"] == 0
    })
    .await;
    consuming.store(false, Ordering::Relaxed);
    for consumer in consumers {
        consumer.await.expect("consumer");
    }
    let receptions = receptions.lock().unwrap().clone();

    let received: HashSet<&str> = receptions.iter().map(|r| r.body.as_str()).collect();
    let lost: Vec<&String> = sent
        .values()
        .filter(|b| !received.contains(b.as_str()))
        .collect();
    let (counts, duplicated) = duplicates(receptions.iter().map(|r| r.body.as_str()));
    let sent_bodies: HashSet<&str> = sent.values().map(String::as_str).collect();
    let unacknowledged = received.difference(&sent_bodies).count();
    // Reserved more often than received: a reservation whose answer died with the victim, given
    // out again once it ran out.
    let mut most_reserved: HashMap<&str, u64> = HashMap::new();
    for r in &receptions {
        let most = most_reserved.entry(r.body.as_str()).or_default();
        *most = (*most).max(r.reserved_count);
    }
    let came_back = most_reserved
        .iter()
        .filter(|(body, most)| **most > counts[*body] as u64)
        .count();
    eprintln!(
        "faults/data-plane kill: sent={} received={} duplicated={duplicated} lost={} \
         (received though the post failed: {unacknowledged}, came back after a reservation lost \
         with the victim: {came_back}, failed calls: {}, kill at {:?}, wall {:?})",
        sent.len(),
        received.len(),
        lost.len(),
        failed_calls.load(Ordering::Relaxed),
        killed_at - started,
        started.elapsed()
    );
    assert!(
        before_kill > 0,
        "the victim served posts and deletes before it was killed"
    );
    assert!(
        failed_calls.load(Ordering::Relaxed) > 0,
        "clients of the victim saw it die"
    );
    assert!(
        lost.is_empty(),
        "acknowledged posts never received: {lost:?}"
    );
    assert!(drained, "the queue drains through the survivor");

    // A message is received again only when no delete of it was acknowledged before: its
    // earlier reservation ran out (the delete raced the dead process, or the answer of its
    // reserve died with it).
    for (body, _) in counts.iter().filter(|(_, n)| **n > 1) {
        let mut seen: Vec<&Reception> = receptions.iter().filter(|r| r.body == *body).collect();
        seen.sort_by_key(|r| r.reserved_count);
        for pair in seen.windows(2) {
            assert!(
                !pair[0].deleted,
                "{body} came back after an acknowledged delete: {seen:?}"
            );
            assert!(
                pair[1].at - pair[0].at >= Duration::from_secs(4),
                "{body} came back before its 5 s reservation ran out: {seen:?}"
            );
        }
    }
    // Each body was deleted with acknowledgement at most once: no message was held by two
    // consumers at once, killed process or not.
    let mut acked: HashMap<&str, usize> = HashMap::new();
    for r in receptions.iter().filter(|r| r.deleted) {
        *acked.entry(r.body.as_str()).or_default() += 1;
    }
    let twice: Vec<_> = acked.iter().filter(|(_, n)| **n > 1).collect();
    assert!(twice.is_empty(), "deleted more than once: {twice:?}");
}

// ---------------------------------------------------------------------------------------------
// 2. A push worker dies mid-delivery.

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killing_a_push_worker_mid_delivery_loses_no_message() {
    let _one_at_a_time = HEAVY.lock().await;
    const MESSAGES: usize = 200;
    let started = Instant::now();
    let mut victim = start_process(&[]).await;
    let survivor = ServerProcess::start(&victim.redis).await;
    let client = survivor.client();
    // Slow answers keep many deliveries in flight in both processes.
    let sub = Subscriber::start(Answer::Slow(Duration::from_millis(300))).await;
    let (status, body) = client
        .put(
            &q("deliveries"),
            json!({"queue": {"type": "multicast", "push": {
                "subscribers": [{"name": "s", "url": sub.url}], "retries_delay": 3,
                "error_queue": "deliveries-failed"}}}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    // Posted at once: both processes discover the queue within a second, and the kill below
    // waits until the victim has pushed its share.
    let mut sent = Vec::new();
    for batch in 0..MESSAGES / 100 {
        let bodies: Vec<String> = (0..100).map(|i| format!("m{}", batch * 100 + i)).collect();
        let messages: Vec<Value> = bodies.iter().map(|b| json!({ "body": b })).collect();
        let (status, answer) = client
            .post(
                &messages_path("deliveries"),
                json!({ "messages": messages }),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{answer}");
        assert_eq!(ids_of(&answer).len(), 100);
        sent.extend(bodies);
    }

    // Which process pushed a request: its acknowledgement URL starts with that process's base.
    let by_victim = |r: &Received| {
        r.headers["iron-subscriber-message-url"]
            .to_str()
            .unwrap()
            .starts_with(&victim.server.base)
    };
    let victim_busy = eventually(Duration::from_secs(10), || async {
        sub.received().iter().filter(|r| by_victim(r)).count() >= 10
    })
    .await;
    assert!(victim_busy, "the victim pushes too");
    let victim_base = victim.server.base.clone();
    victim.server.kill();
    let killed_at = Instant::now();
    let delivered_before_kill = sub.count();

    // Its claims end after the push timeout (2 s) plus the claim margin (30 s); then the
    // survivor delivers what the victim held, even what reached the subscriber before the
    // kill but was never recorded as delivered. Done when the queue is empty.
    let drained = eventually(Duration::from_secs(45), || async {
        let (_, info) = client.get(&q("deliveries")).await;
        info["queue"]["size"] == 0
    })
    .await;
    let received = sub.received();
    let (counts, duplicated) = duplicates(received.iter().map(|r| r.body.as_str()));
    let lost: Vec<&String> = sent
        .iter()
        .filter(|b| !counts.contains_key(b.as_str()))
        .collect();
    eprintln!(
        "faults/push worker kill: sent={} received={} duplicated={duplicated} lost={} \
         (delivered before the kill: {delivered_before_kill}, last arrival {:?} after the kill, \
         wall {:?})",
        sent.len(),
        counts.len(),
        lost.len(),
        received.last().map(|r| r.at - killed_at),
        started.elapsed()
    );
    assert!(lost.is_empty(), "never delivered: {lost:?}");
    assert!(drained, "delivery finished after the kill");
    assert!(
        delivered_before_kill < MESSAGES,
        "the kill came mid-delivery ({delivered_before_kill} of {MESSAGES} delivered)"
    );
    // A message is pushed twice only because the victim died with it in flight, and only once
    // its claim ran out: no live worker's claim is taken over early.
    for (body, _) in counts.iter().filter(|(_, n)| **n > 1) {
        let copies: Vec<_> = received.iter().filter(|r| r.body == *body).collect();
        assert!(
            copies[0].headers["iron-subscriber-message-url"]
                .to_str()
                .unwrap()
                .starts_with(&victim_base),
            "{body} first pushed by the survivor, yet pushed again"
        );
        assert!(
            copies[1].at - copies[0].at >= Duration::from_secs(25),
            "{body} pushed again {:?} after the first time, before the claim ran out",
            copies[1].at - copies[0].at
        );
    }
    // The error queue is made by the first failure only.
    let (status, _) = client.get(&q("deliveries-failed")).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "no delivery failed");
}

// ---------------------------------------------------------------------------------------------
// 3. Redis restarts under posts.

/// One post of the Redis restart test: when it started and ended, and how it ended.
struct Attempt {
    started: Instant,
    ended: Instant,
    outcome: Result<(StatusCode, Vec<(String, String)>), String>,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redis_restart_loses_no_acknowledged_post_and_nothing_hangs() {
    let _one_at_a_time = HEAVY.lock().await;
    const POSTERS: usize = 3;
    let started = Instant::now();
    let mut running = start_process_on(
        RedisServer::start_persistent(),
        &[("FERROMQ_NO_PUSH", "true")],
    )
    .await;
    let client = &running.client;
    let (status, body) = client.put(&q("durable"), json!({})).await;
    assert!(status.is_success(), "{body}");

    let attempts: Arc<Mutex<Vec<Attempt>>> = Arc::default();
    let posting = Arc::new(AtomicBool::new(true));
    let mut posters = Vec::new();
    for p in 0..POSTERS {
        let (client, attempts, posting) = (client.clone(), attempts.clone(), posting.clone());
        posters.push(tokio::spawn(async move {
            let mut seq = 0;
            while posting.load(Ordering::Relaxed) {
                let bodies = [format!("t{p}-{seq}"), format!("t{p}-{}", seq + 1)];
                seq += 2;
                let messages: Vec<Value> = bodies.iter().map(|b| json!({ "body": b })).collect();
                let begun = Instant::now();
                // A generous client limit, so a slow answer is measured rather than cut off.
                let answer = client
                    .try_call(
                        Method::POST,
                        &messages_path("durable"),
                        Some(json!({ "messages": messages })),
                        Duration::from_secs(15),
                    )
                    .await;
                let outcome = answer.map(|(status, json)| {
                    let stored = if status == StatusCode::CREATED {
                        ids_of(&json).into_iter().zip(bodies).collect()
                    } else {
                        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{json}");
                        Vec::new()
                    };
                    (status, stored)
                });
                let failed = !matches!(outcome, Ok((StatusCode::CREATED, _)));
                attempts.lock().unwrap().push(Attempt {
                    started: begun,
                    ended: Instant::now(),
                    outcome,
                });
                if failed {
                    // No busy loop against a store that is down.
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
            }
        }));
    }

    tokio::time::sleep(Duration::from_secs(1)).await;
    tokio::task::block_in_place(|| running.redis.kill());
    let killed_at = Instant::now();
    tokio::time::sleep(Duration::from_millis(300)).await;
    let (ready, _) = client
        .try_call(Method::GET, "/readyz", None, REQUEST_LIMIT)
        .await
        .expect("readyz answers while Redis is down");
    assert_ne!(ready, StatusCode::OK, "not ready without Redis");
    tokio::time::sleep(Duration::from_millis(1700)).await;
    let restarting_at = Instant::now();
    tokio::task::block_in_place(|| running.redis.restart());
    let restarted_at = Instant::now();

    // Posts succeed again, on the same ferromq process.
    let recovered =
        eventually(Duration::from_secs(10), || async {
            attempts.lock().unwrap().iter().any(|a| {
                a.started > restarted_at && matches!(a.outcome, Ok((StatusCode::CREATED, _)))
            })
        })
        .await;
    let recovered_after = restarted_at.elapsed();
    tokio::time::sleep(Duration::from_millis(500)).await;
    posting.store(false, Ordering::Relaxed);
    for poster in posters {
        poster.await.expect("poster");
    }
    assert!(recovered, "posts succeed again after Redis is back");
    let attempts = std::mem::take(&mut *attempts.lock().unwrap());

    let slowest = attempts.iter().map(|a| a.ended - a.started).max().unwrap();
    let broken: Vec<&String> = attempts
        .iter()
        .filter_map(|a| a.outcome.as_ref().err())
        .collect();
    assert!(broken.is_empty(), "requests without an answer: {broken:?}");
    assert!(slowest < REQUEST_LIMIT, "a post took {slowest:?}");
    // While Redis was down (the whole request inside the outage), every answer was a 503 with
    // a msg (try_call checks the msg).
    let during: Vec<StatusCode> = attempts
        .iter()
        .filter(|a| a.started > killed_at && a.ended < restarting_at)
        .map(|a| a.outcome.as_ref().unwrap().0)
        .collect();
    assert!(
        during.len() >= POSTERS,
        "posts during the outage: {}",
        during.len()
    );
    assert!(
        during.iter().all(|s| *s == StatusCode::SERVICE_UNAVAILABLE),
        "answers while Redis was down: {during:?}"
    );
    let (ready, _) = client.get("/readyz").await;
    assert_eq!(ready, StatusCode::OK, "ready again");

    // Every acknowledged id is stored with its body...
    let sent: HashMap<String, String> = attempts
        .iter()
        .filter_map(|a| a.outcome.as_ref().ok())
        .flat_map(|(_, stored)| stored.iter().cloned())
        .collect();
    let mut missing = Vec::new();
    for (id, body) in &sent {
        let (status, message) = client
            .get(&format!("{}/{id}", messages_path("durable")))
            .await;
        if status != StatusCode::OK || message["message"]["body"] != body.as_str() {
            missing.push((id.clone(), status, message));
        }
    }
    // ... and the queue holds nothing twice: take everything out.
    let mut taken = Vec::new();
    loop {
        let got = reserve(client, "durable", json!({"n": 100, "delete": true})).await;
        if got.is_empty() {
            break;
        }
        taken.extend(
            got.into_iter()
                .map(|m| m["body"].as_str().unwrap().to_string()),
        );
    }
    let (counts, duplicated) = duplicates(taken.iter().map(String::as_str));
    let lost = sent
        .values()
        .filter(|b| !counts.contains_key(b.as_str()))
        .count();
    eprintln!(
        "faults/redis restart: sent={} received={} duplicated={duplicated} lost={lost} \
         (posts {}, 503 while down {}, stored without acknowledgement {}, slowest {slowest:?}, \
         posts ok {recovered_after:?} after restart, wall {:?})",
        sent.len(),
        counts.len(),
        attempts.len(),
        during.len(),
        counts.len().saturating_sub(sent.len() - lost),
        started.elapsed()
    );
    assert!(
        missing.is_empty(),
        "{} acknowledged but not stored, such as {:?}",
        missing.len(),
        missing.first()
    );
    assert_eq!(lost, 0);
    assert_eq!(duplicated, 0, "a post stored twice");

    // Long polls are woken by posts again: the wake-up subscription came back with Redis.
    let (status, body) = client.put(&q("after"), json!({})).await;
    assert!(status.is_success(), "{body}");
    let waiter = {
        let client = client.clone();
        tokio::spawn(async move {
            let begun = Instant::now();
            let got = reserve(&client, "after", json!({"wait": 10})).await;
            (got, begun.elapsed())
        })
    };
    tokio::time::sleep(Duration::from_millis(300)).await;
    post_bodies(client, "after", &["wake"]).await;
    let (got, waited) = waiter.await.unwrap();
    assert_eq!(got.len(), 1, "the long poll got the post");
    assert!(
        waited < Duration::from_secs(3),
        "woken by the post, not the timeout: {waited:?}"
    );
}

// ---------------------------------------------------------------------------------------------
// 4. Subscribers that misbehave.

#[derive(Clone, Copy, Debug)]
enum Misbehaviour {
    /// Accepts the connection and resets it at once (RST), reading nothing.
    Reset,
    /// Reads the request and answers bytes that are not HTTP.
    Garbage,
    /// Answers 302 to a URL that works (redirects are failures, not followed).
    Redirect,
}

/// A subscriber on a raw TCP listener; counts the connections it accepted.
struct RawSubscriber {
    url: String,
    connections: Arc<AtomicUsize>,
}

impl RawSubscriber {
    async fn start(how: Misbehaviour, redirect_to: String) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/hook", listener.local_addr().unwrap());
        let connections = Arc::new(AtomicUsize::new(0));
        let counted = connections.clone();
        tokio::spawn(async move {
            loop {
                let Ok((mut stream, _)) = listener.accept().await else {
                    return;
                };
                counted.fetch_add(1, Ordering::SeqCst);
                let redirect_to = redirect_to.clone();
                tokio::spawn(async move {
                    if let Misbehaviour::Reset = how {
                        // Zero linger: closing sends RST instead of FIN.
                        let _ = stream.set_zero_linger();
                        drop(stream);
                        return;
                    }
                    // The request head, at least (the body may follow; it is not needed).
                    let mut head = Vec::new();
                    let mut buf = [0u8; 4096];
                    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                        match stream.read(&mut buf).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => head.extend_from_slice(&buf[..n]),
                        }
                    }
                    let answer = match how {
                        Misbehaviour::Garbage => {
                            "SPAM SPAM SPAM\0\x01\x02 not http at all\r\n\r\n".to_string()
                        }
                        _ => format!(
                            "HTTP/1.1 302 Found\r\nLocation: {redirect_to}\r\n\
                             Content-Length: 0\r\nConnection: close\r\n\r\n"
                        ),
                    };
                    let _ = stream.write_all(answer.as_bytes()).await;
                    let _ = stream.shutdown().await;
                });
            }
        });
        RawSubscriber { url, connections }
    }

    fn count(&self) -> usize {
        self.connections.load(Ordering::SeqCst)
    }
}

/// What a misbehaving subscriber is, for one test case.
enum Bad {
    Raw(RawSubscriber),
    Http(Subscriber),
}

impl Bad {
    fn url(&self) -> &str {
        match self {
            Bad::Raw(raw) => &raw.url,
            Bad::Http(sub) => &sub.url,
        }
    }

    fn attempts(&self) -> usize {
        match self {
            Bad::Raw(raw) => raw.count(),
            Bad::Http(sub) => sub.count(),
        }
    }
}

async fn multicast_to(client: &Client, queue: &str, url: &str, extra: Value) {
    let mut push = json!({"subscribers": [{"name": "s", "url": url}], "retries_delay": 3});
    if let Value::Object(more) = extra {
        push.as_object_mut().unwrap().extend(more);
    }
    let (status, body) = client
        .put(
            &q(queue),
            json!({"queue": {"type": "multicast", "push": push}}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
}

/// Pushes one message to a misbehaving subscriber (1 retry, then the error queue) while a
/// well-behaved queue of the same process keeps being probed: each probe must arrive within
/// 2 s. Checks the failure is recorded with `code` and, when given, `msg`.
async fn misbehaving_subscriber_case(
    name: &str,
    make: impl AsyncFnOnce(String) -> Bad,
    code: u64,
    msg: Option<&str>,
) {
    let started = Instant::now();
    let running = start_process(&[]).await;
    let client = &running.client;
    let good = Subscriber::start(Answer::Always(200)).await;
    // Where a redirect points: a subscriber that works, and must never be reached that way.
    let target = Subscriber::start(Answer::Always(200)).await;
    let bad = make(target.url.clone()).await;
    multicast_to(client, "steady", &good.url, json!({})).await;
    multicast_to(
        client,
        "bad",
        bad.url(),
        json!({"retries": 1, "error_queue": "bad-errors"}),
    )
    .await;

    let ids = post_bodies(client, "bad", &["doomed"]).await;
    let first_try = eventually(Duration::from_secs(5), || async { bad.attempts() >= 1 }).await;
    assert!(first_try, "{name}: the bad subscriber was tried");

    // Until the bad message is settled, the steady queue delivers each probe promptly.
    let mut probes = 0;
    let mut slowest = Duration::ZERO;
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let (_, info) = client.get(&q("bad")).await;
        if info["queue"]["size"] == 0 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "{name}: the bad message never settled"
        );
        let posted = Instant::now();
        post_bodies(client, "steady", &[format!("probe {probes}").as_str()]).await;
        probes += 1;
        assert!(
            good.wait_for(probes, Duration::from_secs(2)).await,
            "{name}: probe {probes} not delivered within 2 s while the bad subscriber fails"
        );
        slowest = slowest.max(posted.elapsed());
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    assert!(probes >= 3, "{name}: probed during the failures ({probes})");
    // Settled, with its tries made and every probe in (above): through a quiet period as long
    // as the pause between probes, no further try and no second copy of a probe arrive.
    quiet(Duration::from_millis(250), || async {
        bad.attempts() == 2 && good.count() == probes
    })
    .await;

    let errors = reserve(client, "bad-errors", json!({"n": 10})).await;
    let attempts = bad.attempts();
    // Sent: the probes and the doomed message; received: probes at the good subscriber, and
    // the doomed message in the error queue (where it belongs).
    let received = good.count() + usize::from(errors.len() == 1);
    eprintln!(
        "faults/subscriber {name}: sent={} received={received} duplicated={} lost={} \
         (attempts on the bad subscriber {attempts}, probes {probes}, slowest probe {slowest:?}, \
         wall {:?})",
        probes + 1,
        received.saturating_sub(probes + 1),
        (probes + 1).saturating_sub(received),
        started.elapsed()
    );
    assert_eq!(errors.len(), 1, "{name}: the message is in the error queue");
    let report: Value = serde_json::from_str(errors[0]["body"].as_str().unwrap()).unwrap();
    assert_eq!(report["source_msg_id"], ids[0].as_str(), "{name}");
    assert_eq!(report["body"], "doomed", "{name}");
    let failure = &report["subscribers"][0];
    assert_eq!(failure["url"], bad.url(), "{name}");
    assert_eq!(failure["code"], code, "{name}: {report}");
    let text = failure["msg"].as_str().unwrap_or_default();
    assert!(!text.is_empty(), "{name}: the error is recorded: {report}");
    if let Some(msg) = msg {
        assert_eq!(text, msg, "{name}");
    }
    let (status, state) = client
        .get(&format!("{}/messages/{}/subscribers", q("bad"), ids[0]))
        .await;
    assert_eq!(status, StatusCode::OK, "{name}: {state}");
    assert_eq!(
        state["subscribers"][0]["status"], "error",
        "{name}: {state}"
    );
    assert_eq!(attempts, 2, "{name}: retries + 1 attempts, no more");
    assert_eq!(good.count(), probes, "{name}: each probe delivered once");
    assert_eq!(target.count(), 0, "{name}: redirects are not followed");
    let (health, _) = client
        .try_call(Method::GET, "/healthz", None, REQUEST_LIMIT)
        .await
        .unwrap_or_else(|e| panic!("{name}: the process died: {e}"));
    assert_eq!(health, StatusCode::OK, "{name}");
}

#[tokio::test]
async fn a_subscriber_that_resets_the_connection_fails_without_stalling_others() {
    let make =
        async |_: String| Bad::Raw(RawSubscriber::start(Misbehaviour::Reset, String::new()).await);
    misbehaving_subscriber_case("reset", make, 0, None).await;
}

#[tokio::test]
async fn a_subscriber_that_answers_garbage_fails_without_stalling_others() {
    let make = async |_: String| {
        Bad::Raw(RawSubscriber::start(Misbehaviour::Garbage, String::new()).await)
    };
    misbehaving_subscriber_case("garbage", make, 0, None).await;
}

#[tokio::test]
async fn a_subscriber_slower_than_the_push_timeout_fails_without_stalling_others() {
    // The process gives subscribers 2 s (common::PUSH_TIMEOUT).
    let make =
        async |_: String| Bad::Http(Subscriber::start(Answer::Slow(Duration::from_secs(5))).await);
    misbehaving_subscriber_case("slow", make, 0, Some("No answer within the timeout")).await;
}

#[tokio::test]
async fn a_subscriber_that_redirects_fails_and_the_redirect_is_not_followed() {
    let make =
        async |target: String| Bad::Raw(RawSubscriber::start(Misbehaviour::Redirect, target).await);
    misbehaving_subscriber_case("redirect", make, 302, Some("Found")).await;
}
