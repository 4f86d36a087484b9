//! Spans over OpenTelemetry: a `ferromq serve` process with `OTEL_EXPORTER_OTLP_ENDPOINT`
//! pointing at a real OTLP/HTTP receiver started here exports a span for each post, reserve,
//! delete and push attempt, in the trace the message was posted in.

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::routing::post;
use common::subscriber::{Answer, Subscriber};
use common::{Client, eventually, q, start_process};
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::trace::v1::Span;
use prost::Message;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use std::sync::{Arc, Mutex};
use std::time::Duration;

const TRACE: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
const PARENT: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

/// An OTLP/HTTP receiver: every span it is sent.
#[derive(Clone, Default)]
struct Receiver(Arc<Mutex<Vec<Span>>>);

async fn traces(State(receiver): State<Receiver>, body: Bytes) -> StatusCode {
    let Ok(request) = ExportTraceServiceRequest::decode(body) else {
        return StatusCode::BAD_REQUEST;
    };
    let mut spans = receiver.0.lock().unwrap();
    for resource in request.resource_spans {
        for scope in resource.scope_spans {
            spans.extend(scope.spans);
        }
    }
    StatusCode::OK
}

impl Receiver {
    async fn start() -> (Self, String) {
        let receiver = Receiver::default();
        let app = Router::new()
            .route("/v1/traces", post(traces))
            .with_state(receiver.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await });
        (receiver, url)
    }

    fn named(&self, name: &str) -> Vec<Span> {
        let spans = self.0.lock().unwrap();
        spans.iter().filter(|s| s.name == name).cloned().collect()
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// A request in the trace `PARENT`.
async fn traced(client: &Client, method: Method, path: &str, body: Value) -> (StatusCode, Value) {
    let body = Some(body.to_string().into_bytes());
    client
        .raw(method, path, body, &[("traceparent", PARENT)])
        .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn posts_reserves_deletes_and_pushes_are_exported_as_spans_of_the_posted_trace() {
    let (receiver, endpoint) = Receiver::start().await;
    let running = start_process(&[
        ("OTEL_EXPORTER_OTLP_ENDPOINT", endpoint.as_str()),
        ("OTEL_BSP_SCHEDULE_DELAY", "100"),
    ])
    .await;
    let client = &running.client;
    let sub = Subscriber::start(Answer::Always(200)).await;
    let (status, body) = client
        .put(
            &q("pushed"),
            json!({"queue": {"type": "multicast", "push": {"subscribers": [{"name": "s", "url": sub.url}]}}}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let messages = json!({"messages": [{"body": "traced"}]});
    let (status, _) = traced(
        client,
        Method::POST,
        &format!("{}/messages", q("pushed")),
        messages.clone(),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED);
    assert!(sub.wait_for(1, Duration::from_secs(10)).await, "pushed");
    let pushed_parent = sub.received()[0].headers["traceparent"]
        .to_str()
        .unwrap()
        .to_string();

    let (status, _) = traced(
        client,
        Method::POST,
        &format!("{}/messages", q("pulled")),
        messages,
    )
    .await;
    assert_eq!(status, StatusCode::CREATED);
    let (status, reserved) = traced(
        client,
        Method::POST,
        &format!("{}/reservations", q("pulled")),
        json!({"n": 1}),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let message = &reserved["messages"][0];
    let (id, rid) = (
        message["id"].as_str().unwrap(),
        message["reservation_id"].clone(),
    );
    let path = format!("{}/messages/{id}", q("pulled"));
    let (status, _) = traced(
        client,
        Method::DELETE,
        &path,
        json!({"reservation_id": rid}),
    )
    .await;
    assert_eq!(status, StatusCode::OK);

    let all_there = eventually(Duration::from_secs(10), || async {
        [
            "ferromq.post",
            "ferromq.reserve",
            "ferromq.delete",
            "ferromq.push",
        ]
        .iter()
        .all(|name| !receiver.named(name).is_empty())
    })
    .await;
    let names: Vec<String> = receiver
        .0
        .lock()
        .unwrap()
        .iter()
        .map(|s| s.name.clone())
        .collect();
    assert!(all_there, "spans received: {names:?}");
    for name in ["ferromq.post", "ferromq.reserve", "ferromq.delete"] {
        for span in receiver.named(name) {
            assert_eq!(
                hex(&span.trace_id),
                TRACE,
                "{name} is in the request's trace"
            );
            assert_eq!(
                hex(&span.parent_span_id),
                "00f067aa0ba902b7",
                "{name}'s parent"
            );
        }
    }
    // The push is a span of the trace the message was posted in; the subscriber's request
    // names that span as its parent.
    let push = &receiver.named("ferromq.push")[0];
    assert_eq!(hex(&push.trace_id), TRACE);
    assert_eq!(hex(&push.parent_span_id), "00f067aa0ba902b7");
    assert_eq!(
        pushed_parent,
        format!("00-{TRACE}-{}-01", hex(&push.span_id)),
        "the push carries its own span"
    );
    // The reserve is linked to the trace the message was posted in.
    let reserve = &receiver.named("ferromq.reserve")[0];
    assert!(
        reserve.links.iter().any(|l| hex(&l.trace_id) == TRACE),
        "{:?}",
        reserve.links
    );
}
