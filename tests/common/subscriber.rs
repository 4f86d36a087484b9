//! A real HTTP subscriber for push tests: records every request it gets and answers as told.

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// How the subscriber answers its n-th request (counted from 0).
#[derive(Clone)]
pub enum Answer {
    /// Always this status.
    Always(u16),
    /// These statuses in turn, then the last one for ever.
    Sequence(Vec<u16>),
    /// Never answers (holds the request until the pusher gives up).
    Never,
    /// Answers 200 after a pause.
    Slow(Duration),
}

#[derive(Debug, Clone)]
pub struct Received {
    pub at: Instant,
    pub headers: HeaderMap,
    pub body: String,
}

#[derive(Clone)]
struct Shared {
    answer: Answer,
    received: Arc<Mutex<Vec<Received>>>,
    in_flight: Arc<Mutex<HashMap<String, usize>>>,
    overlaps: Arc<Mutex<usize>>,
}

pub struct Subscriber {
    pub url: String,
    shared: Shared,
}

impl Subscriber {
    pub async fn start(answer: Answer) -> Self {
        let (shared, app) = Self::app(answer);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/hook", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await });
        Subscriber { url, shared }
    }

    fn app(answer: Answer) -> (Shared, Router) {
        let shared = Shared {
            answer,
            received: Arc::default(),
            in_flight: Arc::default(),
            overlaps: Arc::default(),
        };
        let app = Router::new()
            .route("/{*path}", post(handle))
            .with_state(shared.clone());
        (shared, app)
    }

    /// The same subscriber over `https://`, with a certificate for 127.0.0.1 issued by a
    /// fresh private authority; also returns that authority's certificate (PEM).
    pub async fn start_tls(answer: Answer) -> (Self, String) {
        ferromq::tls::install_crypto_provider();
        let certificate = crate::TestCertificate::for_loopback();
        let tls = axum_server::tls_rustls::RustlsConfig::from_pem(
            certificate.cert_pem.into_bytes(),
            certificate.key_pem.into_bytes(),
        )
        .await
        .unwrap();
        let authority_pem = certificate.authority_pem;
        let (shared, app) = Self::app(answer);
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let url = format!("https://{}/hook", listener.local_addr().unwrap());
        tokio::spawn(async move {
            axum_server::from_tcp_rustls(listener, tls)
                .unwrap()
                .serve(app.into_make_service())
                .await
        });
        (Subscriber { url, shared }, authority_pem)
    }

    /// Another handle on the same subscriber (for a task that watches it).
    pub fn clone_handle(&self) -> Self {
        Subscriber {
            url: self.url.clone(),
            shared: self.shared.clone(),
        }
    }

    pub fn received(&self) -> Vec<Received> {
        self.shared.received.lock().unwrap().clone()
    }

    pub fn count(&self) -> usize {
        self.shared.received.lock().unwrap().len()
    }

    /// How often a message arrived while a delivery of the same message was still in flight.
    pub fn overlaps(&self) -> usize {
        *self.shared.overlaps.lock().unwrap()
    }

    /// Waits until at least `n` requests arrived, up to `limit`.
    pub async fn wait_for(&self, n: usize, limit: Duration) -> bool {
        let deadline = Instant::now() + limit;
        while Instant::now() < deadline {
            if self.count() >= n {
                return true;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        self.count() >= n
    }
}

async fn handle(State(shared): State<Shared>, headers: HeaderMap, body: Bytes) -> StatusCode {
    let id = headers
        .get("iron-message-id")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string();
    let n = {
        let mut received = shared.received.lock().unwrap();
        received.push(Received {
            at: Instant::now(),
            headers,
            body: String::from_utf8_lossy(&body).into(),
        });
        received.len() - 1
    };
    {
        let mut in_flight = shared.in_flight.lock().unwrap();
        let holders = in_flight.entry(id.clone()).or_default();
        if *holders > 0 {
            *shared.overlaps.lock().unwrap() += 1;
        }
        *holders += 1;
    }
    let status = match &shared.answer {
        Answer::Always(s) => *s,
        Answer::Sequence(list) => *list.get(n).or(list.last()).unwrap_or(&200),
        Answer::Never => {
            tokio::time::sleep(Duration::from_secs(3600)).await;
            200
        }
        Answer::Slow(pause) => {
            tokio::time::sleep(*pause).await;
            200
        }
    };
    *shared.in_flight.lock().unwrap().get_mut(&id).unwrap() -= 1;
    StatusCode::from_u16(status).unwrap()
}
