//! Driving a queue's REST API at a chosen concurrency, one keep-alive connection per worker,
//! and measuring throughput and request latency (HDR histogram, microseconds).

use crate::procs::{Cpu, CpuMeter};
use bytes::Bytes;
use hdrhistogram::Histogram;
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::SendRequest;
use hyper::header::{self, HeaderValue};
use hyper::{Method, Request, StatusCode};
use hyper_util::rt::TokioIo;
use serde::Deserialize;
use serde_json::{Value, json};
use std::future::Future;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

/// The outcome of one scenario against one target.
#[derive(Debug, Clone)]
pub struct Outcome {
    pub messages: u64,
    pub elapsed: Duration,
    pub errors: u64,
    /// Latency of each step (one request, or a reserve + delete cycle), in microseconds.
    pub latency: Histogram<u64>,
    /// CPU µs per message of the server and of redis-server, where measured.
    pub cpu: Cpu,
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

/// Runs one worker per state in `workers` (a connection, say), each repeating `step` until
/// `duration` passes or the step reports that there is nothing left (`Ok(0)`). A step takes its
/// worker's state and hands it back with how many messages it moved.
pub async fn run<S, F, Fut>(workers: Vec<S>, duration: Duration, step: F) -> Outcome
where
    S: Send + 'static,
    F: Fn(S) -> Fut + Clone + Send + 'static,
    Fut: Future<Output = (S, Result<u64, String>)> + Send,
{
    let started = Instant::now();
    let deadline = started + duration;
    let mut tasks = Vec::new();
    for state in workers {
        let step = step.clone();
        tasks.push(tokio::spawn(async move {
            let mut state = state;
            let mut latency = histogram();
            let (mut messages, mut errors) = (0u64, 0u64);
            // The end of the last step that moved messages: a worker that then finds the
            // queue empty (and may wait to be sure) adds nothing to the measured time.
            let mut last_moved = None;
            while Instant::now() < deadline {
                let t0 = Instant::now();
                let (back, result) = step(state).await;
                state = back;
                match result {
                    Ok(0) => break,
                    Ok(n) => {
                        messages += n;
                        last_moved = Some(Instant::now());
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
            (messages, errors, latency, last_moved)
        }));
    }
    let mut outcome = Outcome {
        messages: 0,
        elapsed: Duration::ZERO,
        errors: 0,
        latency: histogram(),
        cpu: Cpu::default(),
    };
    let mut end = None;
    for task in tasks {
        let (messages, errors, latency, last_moved) = task.await.expect("worker");
        outcome.messages += messages;
        outcome.errors += errors;
        let _ = outcome.latency.add(latency);
        end = end.max(last_moved);
    }
    // Until the last message moved: a run that drains its queue before the deadline is not
    // charged for the time its workers spent finding it empty.
    outcome.elapsed = end.unwrap_or_else(Instant::now).duration_since(started);
    outcome
}

/// `run`, with the CPU each message cost the server and Redis (`pids`, where known) over it;
/// the rate and that cost go to stderr under `label` as the benchmark goes.
pub async fn measure<S, F, Fut>(
    label: &str,
    (server, redis): (Option<u32>, Option<u32>),
    workers: Vec<S>,
    duration: Duration,
    step: F,
) -> Outcome
where
    S: Send + 'static,
    F: Fn(S) -> Fut + Clone + Send + 'static,
    Fut: Future<Output = (S, Result<u64, String>)> + Send,
{
    let meter = CpuMeter::start(server, redis);
    let mut outcome = run(workers, duration, step).await;
    outcome.cpu = meter.per_message(outcome.messages);
    eprintln!(
        "  {label}: {:.0} msgs/s, CPU µs/msg {}",
        outcome.rate(),
        outcome.cpu.cell()
    );
    outcome
}

/// One keep-alive HTTP/1.1 connection to the server, used by one worker. A bare hyper
/// connection rather than a pooled client: the load generator shares the cores with the server
/// and Redis, so every microsecond it spends per request is taken from what it measures.
pub struct Connection {
    addr: SocketAddr,
    sender: SendRequest<Full<Bytes>>,
}

impl Connection {
    pub async fn open(addr: SocketAddr) -> Result<Self, String> {
        let stream = tokio::net::TcpStream::connect(addr)
            .await
            .map_err(|e| format!("cannot connect to {addr}: {e}"))?;
        stream.set_nodelay(true).map_err(|e| e.to_string())?;
        let (sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .map_err(|e| e.to_string())?;
        // Drives the connection until the sender is dropped.
        tokio::spawn(async move {
            let _ = connection.await;
        });
        Ok(Connection { addr, sender })
    }

    async fn send(&mut self, request: Request<Full<Bytes>>) -> Result<(StatusCode, Bytes), String> {
        // A server may close a connection that sat idle (Node does after 5 s): open a new one.
        if self.sender.ready().await.is_err() {
            *self = Connection::open(self.addr).await?;
            self.sender.ready().await.map_err(|e| e.to_string())?;
        }
        let response = self
            .sender
            .send_request(request)
            .await
            .map_err(|e| e.to_string())?;
        let status = response.status();
        let body = response
            .into_body()
            .collect()
            .await
            .map_err(|e| e.to_string())?
            .to_bytes();
        Ok((status, body))
    }
}

/// A queue API (ferromq, or the peer's front that speaks the same routes) for one queue.
#[derive(Clone)]
pub struct QueueApi {
    addr: SocketAddr,
    host: HeaderValue,
    queue_path: String,
    token: HeaderValue,
}

#[derive(Deserialize)]
struct Reserved {
    messages: Vec<ReservedMessage>,
}

#[derive(Deserialize)]
struct ReservedMessage {
    id: String,
    reservation_id: String,
}

impl QueueApi {
    /// `base` is `http://host:port` with a numeric host.
    pub fn new(base: &str, project: &str, queue: &str, token: &str) -> Result<Self, String> {
        let authority = base.strip_prefix("http://").unwrap_or(base);
        let addr: SocketAddr = authority
            .parse()
            .map_err(|e| format!("bad address {base}: {e}"))?;
        Ok(QueueApi {
            addr,
            host: HeaderValue::from_str(authority).map_err(|e| e.to_string())?,
            queue_path: format!("/3/projects/{project}/queues/{queue}"),
            token: HeaderValue::from_str(&format!("OAuth {token}")).map_err(|e| e.to_string())?,
        })
    }

    pub async fn connect(&self) -> Result<Connection, String> {
        Connection::open(self.addr).await
    }

    /// `count` connections, opened before any timing starts.
    pub async fn connect_many(&self, count: usize) -> Result<Vec<Connection>, String> {
        let mut connections = Vec::with_capacity(count);
        for _ in 0..count {
            connections.push(self.connect().await?);
        }
        Ok(connections)
    }

    /// Sends one request; the answer's body when its status is a success.
    async fn send(
        &self,
        conn: &mut Connection,
        method: Method,
        path: &str,
        body: Bytes,
    ) -> Result<Bytes, String> {
        let request = Request::builder()
            .method(method)
            .uri(format!("{}{path}", self.queue_path))
            .header(header::HOST, self.host.clone())
            .header(header::AUTHORIZATION, self.token.clone())
            .header(header::CONTENT_TYPE, "application/json")
            .body(Full::new(body))
            .map_err(|e| e.to_string())?;
        let (status, bytes) = conn.send(request).await?;
        if !status.is_success() {
            return Err(format!("{status}: {}", String::from_utf8_lossy(&bytes)));
        }
        Ok(bytes)
    }

    pub async fn create(&self, conn: &mut Connection) -> Result<(), String> {
        self.send(conn, Method::PUT, "", Bytes::from_static(b"{}"))
            .await
            .map(drop)
    }

    /// Posts a prepared `{"messages": [...]}` body.
    pub async fn post(&self, conn: &mut Connection, body: Bytes) -> Result<(), String> {
        self.send(conn, Method::POST, "/messages", body)
            .await
            .map(drop)
    }

    /// Reserves up to `n`; returns (id, reservation id) pairs.
    pub async fn reserve(
        &self,
        conn: &mut Connection,
        n: usize,
        wait: u64,
    ) -> Result<Vec<(String, String)>, String> {
        let body = json!({ "n": n, "timeout": 60, "wait": wait }).to_string();
        let answer = self
            .send(conn, Method::POST, "/reservations", body.into())
            .await?;
        let reserved: Reserved = serde_json::from_slice(&answer).map_err(|e| e.to_string())?;
        Ok(reserved
            .messages
            .into_iter()
            .map(|m| (m.id, m.reservation_id))
            .collect())
    }

    pub async fn delete(
        &self,
        conn: &mut Connection,
        id: &str,
        reservation_id: &str,
    ) -> Result<(), String> {
        let body = json!({ "reservation_id": reservation_id }).to_string();
        self.send(
            conn,
            Method::DELETE,
            &format!("/messages/{id}"),
            body.into(),
        )
        .await
        .map(drop)
    }

    pub async fn delete_many(
        &self,
        conn: &mut Connection,
        reserved: &[(String, String)],
    ) -> Result<(), String> {
        let ids: Vec<Value> = reserved
            .iter()
            .map(|(id, rid)| json!({ "id": id, "reservation_id": rid }))
            .collect();
        let body = json!({ "ids": ids }).to_string();
        self.send(conn, Method::DELETE, "/messages", body.into())
            .await
            .map(drop)
    }

    pub async fn clear(&self, conn: &mut Connection) -> Result<(), String> {
        self.send(conn, Method::DELETE, "/messages", Bytes::from_static(b"{}"))
            .await
            .map(drop)
    }
}

/// A `{"messages": [...]}` body of `count` messages of `size` bytes each.
pub fn post_body(count: usize, size: usize) -> Bytes {
    let body = "x".repeat(size);
    let messages: Vec<Value> = (0..count).map(|_| json!({ "body": body })).collect();
    json!({ "messages": messages }).to_string().into()
}

/// Posts `total` messages in batches of 100 over 8 connections, to fill a queue.
pub async fn fill(api: &QueueApi, total: usize, size: usize) -> Result<(), String> {
    let body = post_body(100, size);
    let batches = total.div_ceil(100);
    let mut tasks = Vec::new();
    for worker in 0..8 {
        let api = api.clone();
        let body = body.clone();
        tasks.push(tokio::spawn(async move {
            let mut conn = api.connect().await?;
            for _ in (worker..batches).step_by(8) {
                api.post(&mut conn, body.clone()).await?;
            }
            Ok::<(), String>(())
        }));
    }
    for task in tasks {
        task.await.map_err(|e| e.to_string())??;
    }
    Ok(())
}
