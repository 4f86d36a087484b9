//! Security of the data plane as clients meet it: HTTPS with its own certificate, tokens scoped
//! to projects on every route, unguessable single-holder reservations, limits that keep slow
//! or greedy clients from using the server up, and the guard on push subscriber addresses.

use common::subscriber::{Answer, Subscriber};
use common::{
    LIMITED_TOKEN, TOKEN, TestCertificate, post_bodies, q, reserve, start_process, start_server,
    start_tls_process,
};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use std::collections::HashSet;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

#[tokio::test]
async fn the_data_plane_serves_https_with_its_own_certificate() {
    let certificate = TestCertificate::for_loopback();
    let running = start_tls_process(&certificate, &[]).await;
    let client = &running.client;
    let ids = post_bodies(client, "sealed", &["over tls"]).await;
    assert_eq!(ids.len(), 1);
    let got = reserve(client, "sealed", json!({})).await;
    assert_eq!(got[0]["body"], "over tls");

    // Plain HTTP on the TLS port gets no answer.
    let plain = common::http()
        .get(format!("http://{}/healthz", running.server.addr()))
        .timeout(Duration::from_secs(5))
        .send()
        .await;
    assert!(plain.is_err(), "{plain:?}");
}

#[tokio::test]
async fn tokens_reach_exactly_their_projects_on_every_route() {
    let running = start_server().await;
    let admin = &running.client;
    for project in ["allowed", "other"] {
        let base = format!("/3/projects/{project}/queues");
        let (status, _) = admin
            .post(
                &format!("{base}/q/messages"),
                json!({"messages": [{"body": "x"}]}),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED);
    }
    // Every route under /3/projects/{project}: method, path after the project, body.
    let routes: Vec<(Method, &str, Option<Value>)> = vec![
        (Method::GET, "/queues", None),
        (Method::GET, "/queues/q", None),
        (Method::PATCH, "/queues/q", Some(json!({"queue": {}}))),
        (Method::PUT, "/queues/new", Some(json!({}))),
        (
            Method::POST,
            "/queues/q/messages",
            Some(json!({"messages": [{"body": "y"}]})),
        ),
        (Method::GET, "/queues/q/messages", None),
        (
            Method::POST,
            "/queues/q/reservations",
            Some(json!({"n": 1})),
        ),
        (Method::GET, "/queues/q/messages/1", None),
        (Method::DELETE, "/queues/q/messages/1", Some(json!({}))),
        (
            Method::DELETE,
            "/queues/q/messages",
            Some(json!({"ids": []})),
        ),
        (
            Method::POST,
            "/queues/q/messages/1/touch",
            Some(json!({"reservation_id": "r"})),
        ),
        (
            Method::POST,
            "/queues/q/messages/1/release",
            Some(json!({"reservation_id": "r"})),
        ),
        (Method::POST, "/queues/q/webhook", Some(json!({}))),
        (
            Method::POST,
            "/queues/q/subscribers",
            Some(json!({"subscribers": []})),
        ),
        (
            Method::PUT,
            "/queues/q/subscribers",
            Some(json!({"subscribers": []})),
        ),
        (
            Method::DELETE,
            "/queues/q/subscribers",
            Some(json!({"subscribers": [{"name": "x"}]})),
        ),
        (Method::POST, "/queues/made", Some(json!({}))),
        (Method::GET, "/queues/q/messages/1/subscribers", None),
        // The acknowledgement route without its reservation id needs a token like any other.
        (Method::DELETE, "/queues/q/messages/1/subscribers/s", None),
        (Method::DELETE, "/queues/gone", None),
    ];
    // Token × project: no token and an unknown one are 401 everywhere; the limited token is
    // 403 on the project it lacks; a token that may use the project is never 401/403.
    let tokens = [
        (None, "none"),
        (Some("no-such-token"), "unknown"),
        (Some(LIMITED_TOKEN), "limited"),
        (Some(TOKEN), "all"),
    ];
    let mut checked = 0;
    for (token, who) in tokens {
        let client = admin.with_token(token);
        for project in ["allowed", "other"] {
            for (method, path, body) in &routes {
                let url = format!("/3/projects/{project}{path}");
                let bytes = body.as_ref().map(|b| b.to_string().into_bytes());
                let (status, answer) = client
                    .raw(
                        method.clone(),
                        &url,
                        bytes,
                        &[("content-type", "application/json")],
                    )
                    .await;
                let expected = match (who, project) {
                    ("none" | "unknown", _) => Some(StatusCode::UNAUTHORIZED),
                    ("limited", "other") => Some(StatusCode::FORBIDDEN),
                    _ => None,
                };
                match expected {
                    Some(expected) => {
                        assert_eq!(status, expected, "{who} {method} {url}: {answer}")
                    }
                    None => assert!(
                        status != StatusCode::UNAUTHORIZED && status != StatusCode::FORBIDDEN,
                        "{who} {method} {url}: {status} {answer}"
                    ),
                }
                checked += 1;
            }
        }
    }
    assert_eq!(checked, tokens.len() * 2 * routes.len());
    // The refused calls changed nothing: "other" still holds its one message.
    let (_, info) = admin.get("/3/projects/other/queues/q").await;
    assert!(info["queue"]["size"].as_u64().unwrap() >= 1, "{info}");
}

#[tokio::test]
async fn reservation_ids_are_unguessable_and_only_the_holder_acts() {
    let running = start_server().await;
    let client = &running.client;
    let bodies: Vec<String> = (0..200).map(|i| format!("m{i}")).collect();
    let refs: Vec<&str> = bodies.iter().map(String::as_str).collect();
    for batch in refs.chunks(100) {
        post_bodies(client, "held", batch).await;
    }
    let mut seen = HashSet::new();
    let mut held = Vec::new();
    for _ in 0..2 {
        for m in reserve(client, "held", json!({"n": 100})).await {
            let rid = m["reservation_id"].as_str().unwrap().to_string();
            // At least 128 random bits, written in hex.
            assert!(
                rid.len() >= 32 && rid.chars().all(|c| c.is_ascii_hexdigit()),
                "{rid}"
            );
            assert!(seen.insert(rid.clone()), "reservation id repeated: {rid}");
            held.push((m["id"].as_str().unwrap().to_string(), rid));
        }
    }
    assert_eq!(held.len(), 200);
    // Another message's reservation id does not unlock this one.
    let (id, _) = &held[0];
    let (_, other_rid) = &held[1];
    let (status, _) = client
        .delete(
            &format!("{}/messages/{id}", q("held")),
            Some(json!({"reservation_id": other_rid})),
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn a_client_that_dribbles_its_headers_is_cut_off() {
    let running = start_process(&[("FERROMQ_HEADER_TIMEOUT", "1")]).await;
    let mut slow = TcpStream::connect(running.server.addr()).unwrap();
    slow.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
        .unwrap();
    slow.set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let started = Instant::now();
    let mut answer = Vec::new();
    // The headers never end: the server answers 408 or just closes, within the timeout.
    let _ = slow.read_to_end(&mut answer);
    let waited = started.elapsed();
    assert!(
        waited < Duration::from_secs(5),
        "connection held for {waited:?}"
    );
    let text = String::from_utf8_lossy(&answer);
    assert!(
        text.is_empty() || text.starts_with("HTTP/1.1 408"),
        "{text}"
    );
}

#[tokio::test]
async fn a_connection_that_sends_nothing_is_closed() {
    let running = start_process(&[("FERROMQ_HEADER_TIMEOUT", "1")]).await;
    let mut silent = TcpStream::connect(running.server.addr()).unwrap();
    silent
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let started = Instant::now();
    let mut answer = Vec::new();
    let _ = silent.read_to_end(&mut answer);
    let waited = started.elapsed();
    assert!(
        waited < Duration::from_secs(5),
        "a silent connection held for {waited:?}"
    );
}

#[tokio::test]
async fn a_request_whose_body_never_arrives_gets_503_after_the_request_timeout() {
    let running = start_process(&[("FERROMQ_REQUEST_TIMEOUT", "1")]).await;
    let mut slow = TcpStream::connect(running.server.addr()).unwrap();
    let head = format!(
        "POST /3/projects/p/queues/q/messages HTTP/1.1\r\nHost: x\r\nAuthorization: OAuth {TOKEN}\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n{{\"messages\""
    );
    slow.write_all(head.as_bytes()).unwrap();
    slow.set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let started = Instant::now();
    let mut buffer = [0u8; 4096];
    let n = slow.read(&mut buffer).unwrap();
    let text = String::from_utf8_lossy(&buffer[..n]);
    assert!(started.elapsed() < Duration::from_secs(5));
    assert!(text.starts_with("HTTP/1.1 503"), "{text}");
    assert!(text.contains("\"msg\""), "{text}");
}

#[tokio::test]
async fn connections_beyond_the_limit_are_closed_and_room_comes_back() {
    let running = start_process(&[("FERROMQ_MAX_CONNECTIONS", "2")]).await;
    let request = b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n";
    let answered = |stream: &mut TcpStream| -> bool {
        stream
            .set_read_timeout(Some(Duration::from_secs(5)))
            .unwrap();
        if stream.write_all(request).is_err() {
            return false;
        }
        let mut buffer = [0u8; 1024];
        matches!(stream.read(&mut buffer), Ok(n) if n > 0 && buffer.starts_with(b"HTTP/1.1 200"))
    };
    // The start-up probe's connection may still hold a place for a moment.
    let deadline = Instant::now() + Duration::from_secs(5);
    let (first, mut second) = loop {
        let mut first = TcpStream::connect(running.server.addr()).unwrap();
        let mut second = TcpStream::connect(running.server.addr()).unwrap();
        if answered(&mut first) && answered(&mut second) {
            break (first, second);
        }
        assert!(Instant::now() < deadline, "two connections are not served");
        std::thread::sleep(Duration::from_millis(50));
    };
    let mut third = TcpStream::connect(running.server.addr()).unwrap();
    assert!(!answered(&mut third), "a third connection is served");
    drop(first);
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let mut again = TcpStream::connect(running.server.addr()).unwrap();
        if answered(&mut again) {
            break;
        }
        assert!(Instant::now() < deadline, "room did not come back");
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(answered(&mut second), "kept connections stay served");
}

#[tokio::test]
async fn push_subscribers_at_denied_addresses_are_refused() {
    let running = start_process(&[("FERROMQ_PUSH_DENY", "loopback")]).await;
    let client = &running.client;
    let inside = Subscriber::start(Answer::Always(200)).await;
    let by_name = inside.url.replace("127.0.0.1", "localhost");
    for (queue, url) in [("by-address", inside.url.clone()), ("by-name", by_name)] {
        let (status, body) = client
            .put(
                &q(queue),
                json!({"queue": {"type": "multicast", "push": {
                    "subscribers": [{"name": "inside", "url": url}],
                    "retries": 0,
                    "error_queue": format!("{queue}-failed"),
                }}}),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        post_bodies(client, queue, &["to the metadata service"]).await;
        // The error queue appears with the failure report once the try failed.
        let failed = format!("{queue}-failed");
        let appeared = common::eventually(Duration::from_secs(10), || async {
            client.get(&q(&failed)).await.0 == StatusCode::OK
        })
        .await;
        assert!(appeared, "{queue}: the refusal is a failed delivery");
        let report = common::reserve_within(client, &failed, Duration::from_secs(5)).await;
        assert_eq!(report.len(), 1, "{queue}");
        let report: Value = serde_json::from_str(report[0]["body"].as_str().unwrap()).unwrap();
        let msg = report["subscribers"][0]["msg"].as_str().unwrap_or_default();
        assert!(msg.contains("FERROMQ_PUSH_DENY"), "{queue}: {msg}");
    }
    assert_eq!(inside.count(), 0, "no request reached the denied address");
}
