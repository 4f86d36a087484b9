//! Availability across the loss of the Redis primary, against real processes: a primary, two
//! replicas and three Sentinels (`common::replicated`), two `ferromq serve` processes that
//! follow the primary through the Sentinels, and clients posting (each post retried with its
//! Idempotency-Key until acknowledged), reserving and deleting all the while. The primary is
//! killed (or paused, as one cut off by the network); the Sentinels promote a replica. Each
//! scenario prints what was acknowledged, received, lost and doubled, and how long posts
//! failed. With `FERROMQ_MIN_REPLICAS_ACK=1` nothing acknowledged may be lost or doubled.

use common::replicated::{Node, Replicated, wait_until};
use common::{Client, ServerProcess, TOKEN, q};
use serde_json::{Value, json};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// What the clients saw.
#[derive(Default)]
struct Tally {
    /// Bodies whose post was answered 201.
    acknowledged: BTreeSet<String>,
    /// Bodies as reserved, each time, and when.
    received: Vec<(String, Instant)>,
    /// When each acknowledged post was sent (its last attempt) and answered.
    sent_at: Vec<(Instant, Instant)>,
    /// Requests not answered within `CLIENT_TIMEOUT`.
    hung: usize,
}

/// One request with a short deadline: its status and JSON body, or why there was none.
async fn send(
    client: &Client,
    method: reqwest::Method,
    path: &str,
    body: Value,
    key: Option<&str>,
    tally: &Mutex<Tally>,
) -> Result<(u16, Value), String> {
    let mut request = client
        .http
        .request(method, format!("{}{}", client.base, path))
        .header("Authorization", format!("OAuth {TOKEN}"))
        .header("Content-Type", "application/json")
        .timeout(CLIENT_TIMEOUT)
        .body(body.to_string());
    if let Some(key) = key {
        request = request.header("Idempotency-Key", key);
    }
    let response = request.send().await.map_err(|e| {
        if e.is_timeout() {
            tally.lock().unwrap().hung += 1;
        }
        e.to_string()
    })?;
    let status = response.status().as_u16();
    let json = response.json().await.map_err(|e| e.to_string())?;
    Ok((status, json))
}

/// Posts one message per round, alternating between the processes, each retried with its key
/// until it is acknowledged (or the run ends).
async fn post_loop(
    clients: Vec<Client>,
    worker: usize,
    stop: Arc<AtomicBool>,
    tally: Arc<Mutex<Tally>>,
) {
    let path = format!("{}/messages", q("ha"));
    let mut i = 0;
    while !stop.load(Ordering::Relaxed) {
        let body = format!("w{worker}-{i}");
        i += 1;
        let mut attempt = 0;
        while !stop.load(Ordering::Relaxed) {
            let client = &clients[(i + attempt) % clients.len()];
            attempt += 1;
            let sent = Instant::now();
            let answer = send(
                client,
                reqwest::Method::POST,
                &path,
                json!({"messages": [{"body": body}]}),
                Some(&body),
                &tally,
            )
            .await;
            match answer {
                Ok((201, _)) => {
                    let mut tally = tally.lock().unwrap();
                    tally.acknowledged.insert(body.clone());
                    tally.sent_at.push((sent, Instant::now()));
                    break;
                }
                Ok((status, answer)) => {
                    assert!(status == 503, "a post answered {status}: {answer}");
                }
                Err(_) => {}
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

/// Reserves and deletes, alternating between the processes, until the run ends.
async fn consume_loop(clients: Vec<Client>, stop: Arc<AtomicBool>, tally: Arc<Mutex<Tally>>) {
    let mut round = 0;
    while !stop.load(Ordering::Relaxed) {
        round += 1;
        let client = &clients[round % clients.len()];
        if consume_once(client, &tally).await == 0 {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

/// How long a request may take before the client gives up on it.
const CLIENT_TIMEOUT: Duration = Duration::from_secs(8);

/// How long a reserve holds its messages. A message received again sooner than
/// `HOLD - CLIENT_TIMEOUT` after it was received (its reservation began at most a client
/// timeout before that) was held by two consumers at once; later, it may be delivered again
/// because its delete (or the answer to its reserve) was lost, as at-least-once allows.
const HOLD: Duration = Duration::from_secs(20);

/// One reserve of up to 10 messages, each deleted; how many.
async fn consume_once(client: &Client, tally: &Mutex<Tally>) -> usize {
    let reserved = send(
        client,
        reqwest::Method::POST,
        &format!("{}/reservations", q("ha")),
        json!({"n": 10, "timeout": HOLD.as_secs()}),
        None,
        tally,
    )
    .await;
    let messages = match reserved {
        Ok((200, answer)) => answer["messages"].as_array().cloned().unwrap_or_default(),
        Ok((503, _)) | Err(_) => return 0,
        Ok((status, answer)) => panic!("a reserve answered {status}: {answer}"),
    };
    for m in &messages {
        let body = m["body"].as_str().unwrap().to_string();
        tally.lock().unwrap().received.push((body, Instant::now()));
        let path = format!("{}/messages/{}", q("ha"), m["id"].as_str().unwrap());
        // A delete that fails leaves the message to come back once its reservation lapses.
        let _ = send(
            client,
            reqwest::Method::DELETE,
            &path,
            json!({"reservation_id": m["reservation_id"]}),
            None,
            tally,
        )
        .await;
    }
    messages.len()
}

/// How the primary is lost.
#[derive(Clone, Copy, Debug)]
enum Fault {
    /// SIGKILL.
    Killed,
    /// SIGSTOP until a replica is promoted, then SIGCONT: a stale primary that comes back.
    Paused,
}

struct Outcome {
    acknowledged: usize,
    received: usize,
    lost: usize,
    doubled: usize,
    /// From the fault to the first post sent after it that was acknowledged.
    failover: Duration,
    /// Bodies acknowledged and never received.
    missing: Vec<String>,
    /// What the queue still held at the end (reserved ones included).
    left: u64,
    hung: usize,
}

async fn run(min_replicas_ack: &str, fault: Fault, kill_a_sentinel: bool) -> Outcome {
    let mut redis = Replicated::start();
    if kill_a_sentinel {
        // Two of three Sentinels still make a majority.
        redis.sentinels[0].kill();
    }
    let env = [
        ("FERROMQ_MIN_REPLICAS_ACK", min_replicas_ack),
        ("FERROMQ_REPLICA_ACK_TIMEOUT", "500"),
    ];
    let sentinels = redis.sentinel_addrs();
    let processes = [
        ServerProcess::start_on_sentinels(&sentinels, &env).await,
        ServerProcess::start_on_sentinels(&sentinels, &env).await,
    ];
    let clients: Vec<Client> = processes.iter().map(|p| p.client()).collect();
    let (status, body) = clients[0].put(&q("ha"), json!({"queue": {}})).await;
    assert_eq!(status.as_u16(), 200, "{body}");

    let stop = Arc::new(AtomicBool::new(false));
    let tally = Arc::new(Mutex::new(Tally::default()));
    let mut load = Vec::new();
    for worker in 0..4 {
        load.push(tokio::spawn(post_loop(
            clients.clone(),
            worker,
            stop.clone(),
            tally.clone(),
        )));
    }
    for _ in 0..2 {
        load.push(tokio::spawn(consume_loop(
            clients.clone(),
            stop.clone(),
            tally.clone(),
        )));
    }
    tokio::time::sleep(Duration::from_millis(1500)).await;

    let old = redis.named_primary().expect("a primary");
    match fault {
        Fault::Killed => redis.node(old).kill(),
        Fault::Paused => redis.node(old).pause(true),
    }
    let faulted = Instant::now();
    let new = tokio::task::spawn_blocking({
        let sentinels: Vec<u16> = redis.sentinels.iter().map(|s| s.port).collect();
        move || {
            // As soon as one Sentinel names another primary: a paused one comes back while
            // the failover may still be under way.
            let mut new = None;
            wait_until(Duration::from_secs(30), "a promoted replica", || {
                new = sentinels
                    .iter()
                    .find_map(|port| named_by(*port).filter(|p| *p != old));
                new.is_some()
            });
            new.unwrap()
        }
    })
    .await
    .unwrap();
    if let Fault::Paused = fault {
        // Back, with whatever the clients sent it while it was stopped still to answer.
        redis.node(old).pause(false);
    }
    // Load goes on until posts are acknowledged again, and a while after.
    let deadline = Instant::now() + Duration::from_secs(30);
    let failover = loop {
        let after = tally
            .lock()
            .unwrap()
            .sent_at
            .iter()
            .filter(|(sent, _)| *sent > faulted)
            .map(|(_, answered)| *answered)
            .min();
        if let Some(at) = after {
            break at - faulted;
        }
        assert!(
            Instant::now() < deadline,
            "no post acknowledged after the fault"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    tokio::time::sleep(Duration::from_secs(2)).await;
    stop.store(true, Ordering::Relaxed);
    for task in load {
        task.await.unwrap();
    }
    let stopped = Instant::now();

    // The old primary comes back (killed: restarted with its files) and follows the new one;
    // nothing it held may be served again.
    if let Fault::Killed = fault {
        redis.node(old).restart();
    }
    let rejoined: &Node = redis.node(old);
    wait_until(Duration::from_secs(30), "the old primary a replica", || {
        rejoined.role().as_deref() == Some("slave")
    });
    assert_eq!(redis.named_primary(), Some(new));
    // Whatever is left, through either process, once every reservation has lapsed.
    tokio::time::sleep(
        (stopped + HOLD + Duration::from_secs(1)).saturating_duration_since(Instant::now()),
    )
    .await;
    for client in clients.iter().cycle().take(6) {
        while consume_once(client, &tally).await > 0 {}
    }
    let left = clients[0].get(&q("ha")).await.1["queue"]["size"]
        .as_u64()
        .unwrap_or(u64::MAX);

    let tally = tally.lock().unwrap();
    let mut times: BTreeMap<&str, Vec<Instant>> = BTreeMap::new();
    for (body, at) in &tally.received {
        times.entry(body.as_str()).or_default().push(*at);
    }
    times.values_mut().for_each(|at| at.sort());
    Outcome {
        acknowledged: tally.acknowledged.len(),
        received: times.len(),
        lost: tally
            .acknowledged
            .iter()
            .filter(|b| !times.contains_key(b.as_str()))
            .count(),
        missing: tally
            .acknowledged
            .iter()
            .filter(|b| !times.contains_key(b.as_str()))
            .cloned()
            .collect(),
        left,
        hung: tally.hung,
        doubled: times
            .values()
            .filter(|at| at.windows(2).any(|w| w[1] - w[0] < HOLD - CLIENT_TIMEOUT))
            .count(),
        failover,
    }
}

/// The primary's port as the Sentinel on `port` names it.
fn named_by(port: u16) -> Option<u16> {
    let client = redis::Client::open(format!("redis://127.0.0.1:{port}")).ok()?;
    let mut conn = client
        .get_connection_with_timeout(Duration::from_millis(500))
        .ok()?;
    let addr: Vec<String> = redis::cmd("SENTINEL")
        .arg("get-master-addr-by-name")
        .arg(common::replicated::MASTER_NAME)
        .query(&mut conn)
        .ok()?;
    addr.get(1)?.parse().ok()
}

fn report(scenario: &str, o: &Outcome) {
    println!(
        "{scenario}: acknowledged {}, received {}, lost {}, doubled {}, first post acknowledged {} ms after the fault, requests unanswered after {} s {}; left in the queue {}; missing {:?}",
        o.acknowledged,
        o.received,
        o.lost,
        o.doubled,
        o.failover.as_millis(),
        CLIENT_TIMEOUT.as_secs(),
        o.hung,
        o.left,
        o.missing,
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "run by `make test` with --nocapture, which prints each scenario's counts"]
async fn a_killed_primary_loses_nothing_acknowledged_with_replica_acks() {
    let outcome = run("1", Fault::Killed, true).await;
    report(
        "primary killed, one Sentinel dead, FERROMQ_MIN_REPLICAS_ACK=1",
        &outcome,
    );
    assert!(outcome.acknowledged > 50, "too little load to tell");
    assert_eq!((outcome.lost, outcome.doubled), (0, 0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "run by `make test` with --nocapture, which prints each scenario's counts"]
async fn a_paused_primary_cannot_acknowledge_what_is_then_lost() {
    let outcome = run("1", Fault::Paused, false).await;
    report(
        "primary paused then back, FERROMQ_MIN_REPLICAS_ACK=1",
        &outcome,
    );
    assert!(outcome.acknowledged > 50, "too little load to tell");
    assert_eq!((outcome.lost, outcome.doubled), (0, 0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "run by `make test` with --nocapture, which prints each scenario's counts"]
async fn without_replica_acks_a_killed_primary_may_lose_what_it_acknowledged() {
    let outcome = run("0", Fault::Killed, false).await;
    report("primary killed, FERROMQ_MIN_REPLICAS_ACK=0", &outcome);
    assert!(outcome.acknowledged > 50, "too little load to tell");
    // What asynchronous replication gives: counted, not asserted.
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "run by `make test` with --nocapture, which prints each scenario's counts"]
async fn without_replica_acks_a_paused_primary_may_lose_what_it_acknowledged() {
    let outcome = run("0", Fault::Paused, false).await;
    report(
        "primary paused then back, FERROMQ_MIN_REPLICAS_ACK=0",
        &outcome,
    );
    assert!(outcome.acknowledged > 50, "too little load to tell");
    // The old primary acknowledges what it was sent while it was away, then follows the new
    // one and drops it: counted, not asserted.
}
