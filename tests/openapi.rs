//! The OpenAPI document at `GET /openapi.json`: every operation it lists is served (the router
//! registers each handler with its description, so nothing is served undocumented), and
//! schemathesis (run by `make test`, FERROMQ_SCHEMATHESIS) finds no server error and no answer
//! that differs from the document, for every operation, against a real server and Redis.

use common::{TOKEN, post_bodies, start_process, start_server};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

/// A value for each path parameter, for requests that must reach their handler.
fn filled(path: &str) -> String {
    path.replace("{project}", "p")
        .replace("{queue}", "documented")
        .replace("{id}", "00000000000000000000")
        .replace("{subscriber}", "s")
        .replace("{alert}", "a")
}

#[tokio::test]
async fn every_documented_operation_is_served() {
    let running = start_server().await;
    let client = &running.client;
    post_bodies(client, "documented", &["x"]).await;
    let (status, doc) = client.get("/openapi.json").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(doc["openapi"], "3.1.0");
    let paths = doc["paths"].as_object().unwrap();
    let (http, base) = (common::http(), &running.server.base);
    let mut operations = 0;
    for (path, item) in paths {
        for (method, operation) in item.as_object().unwrap() {
            operations += 1;
            let method = Method::from_bytes(method.to_uppercase().as_bytes()).unwrap();
            let response = http
                .request(method.clone(), format!("{base}{}", filled(path)))
                .header("Authorization", format!("OAuth {TOKEN}"))
                .json(&json!({}))
                .send()
                .await
                .unwrap();
            let status = response.status();
            let body: Value = response.json().await.unwrap_or(Value::Null);
            // Not the router's own answers to what it does not serve.
            let unrouted = status == StatusCode::METHOD_NOT_ALLOWED
                || (status == StatusCode::NOT_FOUND && body["msg"] == "Not found");
            assert!(!unrouted, "{method} {path}: {status} {body}");
            let documented: Vec<&String> =
                operation["responses"].as_object().unwrap().keys().collect();
            assert!(
                documented.iter().any(|code| **code == status.as_str()),
                "{method} {path} answered {status}, documented {documented:?}: {body}"
            );
        }
    }
    assert!(operations >= 30, "{operations} operations");
    // Errors have one shape, and the extensions are there.
    assert_eq!(
        doc["components"]["schemas"]["Msg"]["required"],
        json!(["msg"])
    );
    for extension in [
        "/3/projects",
        "/3/projects/{project}/queues/{queue}/stats",
        "/3/projects/{project}/queues/{queue}/redrive",
    ] {
        assert!(paths.contains_key(extension), "{extension}");
    }
    let post = &paths["/3/projects/{project}/queues/{queue}/messages"]["post"];
    assert!(
        post["parameters"]
            .as_array()
            .unwrap()
            .iter()
            .any(|p| p["name"] == "Idempotency-Key" && p["in"] == "header"),
        "{post}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs schemathesis: run through `make test` (sets FERROMQ_SCHEMATHESIS)"]
async fn schemathesis_finds_no_fault_in_any_operation() {
    let schemathesis = std::env::var("FERROMQ_SCHEMATHESIS")
        .expect("FERROMQ_SCHEMATHESIS must name schemathesis (make test sets it)");
    let running = start_process(&[]).await;
    // The operations' examples name project demo and queue orders: give it messages, so
    // requests reach past "Queue not found".
    let demo = running.client.clone();
    let (status, body) = demo
        .post(
            "/3/projects/demo/queues/orders/messages",
            json!({"messages": [{"body": "a"}, {"body": "b"}, {"body": "c"}]}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let base = format!("http://{}", running.server.addr());
    let output = tokio::process::Command::new(schemathesis)
        .args(["run", &format!("{base}/openapi.json")])
        .args(["--header", &format!("Authorization: OAuth {TOKEN}")])
        .args([
            "--checks",
            "not_a_server_error,status_code_conformance,content_type_conformance,\
             response_schema_conformance,response_headers_conformance,unsupported_method,\
             ignored_auth",
        ])
        // Every operation, the document's own among them (left out by default).
        .args(["--include-path-regex", ".*"])
        .args(["--phases", "examples,coverage,fuzzing"])
        .args([
            "--max-examples",
            "10",
            "--workers",
            "1",
            "--request-timeout",
            "40",
        ])
        .env("NO_COLOR", "1")
        .current_dir(tempfile::tempdir().unwrap().path())
        .output()
        .await
        .expect("schemathesis runs");
    let report = String::from_utf8_lossy(&output.stdout);
    println!("{report}{}", String::from_utf8_lossy(&output.stderr));
    assert!(
        output.status.success(),
        "schemathesis found faults:\n{report}"
    );
    // Every operation of the document was tested.
    let (_, doc) = running.client.get("/openapi.json").await;
    let operations: usize = doc["paths"]
        .as_object()
        .unwrap()
        .values()
        .map(|item| item.as_object().unwrap().len())
        .sum();
    let tested = report
        .lines()
        .find_map(|l| l.trim_start().strip_prefix("Tested:"))
        .and_then(|n| n.trim().parse::<usize>().ok());
    assert_eq!(
        tested,
        Some(operations),
        "operations tested, of {operations}"
    );
}
