//! Driving a queue's REST API at a chosen concurrency over keep-alive connections, and
//! measuring throughput and request latency (HDR histogram, microseconds).

use hdrhistogram::Histogram;
use serde_json::{Value, json};
use std::future::Future;
use std::time::{Duration, Instant};

/// The outcome of one scenario against one target.
#[derive(Debug, Clone)]
pub struct Outcome {
    pub messages: u64,
    pub elapsed: Duration,
    pub errors: u64,
    /// Latency of each step (one request, or a reserve + delete cycle), in microseconds.
    pub latency: Histogram<u64>,
}

impl Outcome {
    pub fn rate(&self) -> f64 {
        self.messages as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }

    pub fn percentile_ms(&self, q: f64) -> f64 {
        self.latency.value_at_quantile(q) as f64 / 1000.0
    }
}

fn histogram() -> Histogram<u64> {
    // 1 µs to 60 s at 3 significant digits.
    Histogram::new_with_bounds(1, 60_000_000, 3).expect("histogram bounds")
}

/// Runs `concurrency` workers, each repeating `step` until `duration` passes or the step
/// reports that there is nothing left (`Ok(0)`). A step returns how many messages it moved.
pub async fn run<F, Fut>(concurrency: usize, duration: Duration, step: F) -> Outcome
where
    F: Fn() -> Fut + Clone + Send + 'static,
    Fut: Future<Output = Result<u64, String>> + Send,
{
    let started = Instant::now();
    let deadline = started + duration;
    let mut workers = Vec::new();
    for _ in 0..concurrency {
        let step = step.clone();
        workers.push(tokio::spawn(async move {
            let mut latency = histogram();
            let (mut messages, mut errors) = (0u64, 0u64);
            while Instant::now() < deadline {
                let t0 = Instant::now();
                match step().await {
                    Ok(0) => break,
                    Ok(n) => {
                        messages += n;
                        let _ = latency.record(t0.elapsed().as_micros().max(1) as u64);
                    }
                    Err(err) => {
                        errors += 1;
                        if errors <= 3 {
                            eprintln!("  request failed: {err}");
                        }
                        if errors > 1000 {
                            break;
                        }
                    }
                }
            }
            (messages, errors, latency)
        }));
    }
    let mut outcome = Outcome {
        messages: 0,
        elapsed: Duration::ZERO,
        errors: 0,
        latency: histogram(),
    };
    for worker in workers {
        let (messages, errors, latency) = worker.await.expect("worker");
        outcome.messages += messages;
        outcome.errors += errors;
        let _ = outcome.latency.add(latency);
    }
    outcome.elapsed = started.elapsed();
    outcome
}

/// A queue API (ferromq, or the peer's front that speaks the same routes) for one queue.
#[derive(Clone)]
pub struct QueueApi {
    http: reqwest::Client,
    queue_url: String,
    token: String,
}

impl QueueApi {
    pub fn new(http: reqwest::Client, base: &str, project: &str, queue: &str, token: &str) -> Self {
        QueueApi {
            http,
            queue_url: format!("{base}/3/projects/{project}/queues/{queue}"),
            token: format!("OAuth {token}"),
        }
    }

    async fn send(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Vec<u8>,
    ) -> Result<Value, String> {
        let response = self
            .http
            .request(method, format!("{}{path}", self.queue_url))
            .header("Authorization", &self.token)
            .header("Content-Type", "application/json")
            .body(body)
            .send()
            .await
            .map_err(|e| e.to_string())?;
        let status = response.status();
        let bytes = response.bytes().await.map_err(|e| e.to_string())?;
        if !status.is_success() {
            return Err(format!("{status}: {}", String::from_utf8_lossy(&bytes)));
        }
        serde_json::from_slice(&bytes).map_err(|e| e.to_string())
    }

    pub async fn create(&self) -> Result<(), String> {
        self.send(reqwest::Method::PUT, "", b"{}".to_vec())
            .await
            .map(drop)
    }

    /// Posts a prepared `{"messages": [...]}` body.
    pub async fn post(&self, body: Vec<u8>) -> Result<Value, String> {
        self.send(reqwest::Method::POST, "/messages", body).await
    }

    /// Reserves up to `n`; returns (id, reservation id) pairs.
    pub async fn reserve(&self, n: usize, wait: u64) -> Result<Vec<(String, String)>, String> {
        let body = json!({ "n": n, "timeout": 60, "wait": wait })
            .to_string()
            .into_bytes();
        let answer = self
            .send(reqwest::Method::POST, "/reservations", body)
            .await?;
        let messages = answer["messages"].as_array().ok_or("no messages array")?;
        Ok(messages
            .iter()
            .map(|m| {
                let field = |k: &str| m[k].as_str().unwrap_or_default().to_string();
                (field("id"), field("reservation_id"))
            })
            .collect())
    }

    pub async fn delete(&self, id: &str, reservation_id: &str) -> Result<(), String> {
        let body = json!({ "reservation_id": reservation_id })
            .to_string()
            .into_bytes();
        self.send(reqwest::Method::DELETE, &format!("/messages/{id}"), body)
            .await
            .map(drop)
    }

    pub async fn delete_many(&self, reserved: &[(String, String)]) -> Result<(), String> {
        let ids: Vec<Value> = reserved
            .iter()
            .map(|(id, rid)| json!({ "id": id, "reservation_id": rid }))
            .collect();
        let body = json!({ "ids": ids }).to_string().into_bytes();
        self.send(reqwest::Method::DELETE, "/messages", body)
            .await
            .map(drop)
    }

    pub async fn clear(&self) -> Result<(), String> {
        self.send(reqwest::Method::DELETE, "/messages", b"{}".to_vec())
            .await
            .map(drop)
    }
}

/// A `{"messages": [...]}` body of `count` messages of `size` bytes each.
pub fn post_body(count: usize, size: usize) -> Vec<u8> {
    let body = "x".repeat(size);
    let messages: Vec<Value> = (0..count).map(|_| json!({ "body": body })).collect();
    json!({ "messages": messages }).to_string().into_bytes()
}

/// Posts `total` messages in batches of 100 with some concurrency, to fill a queue.
pub async fn fill(api: &QueueApi, total: usize, size: usize) -> Result<(), String> {
    let body = post_body(100, size);
    let batches = total.div_ceil(100);
    let mut tasks = Vec::new();
    for worker in 0..8 {
        let api = api.clone();
        let body = body.clone();
        tasks.push(tokio::spawn(async move {
            for _ in (worker..batches).step_by(8) {
                api.post(body.clone()).await?;
            }
            Ok::<(), String>(())
        }));
    }
    for task in tasks {
        task.await.map_err(|e| e.to_string())??;
    }
    Ok(())
}
