//! A real HTTP subscriber for push tests: records every request it gets and answers as told;
//! and the key a server signs its pushes' JWTs with.

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU16, AtomicUsize, Ordering};
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
    /// The status currently held, which the test changes (see `Subscriber::set_status`).
    Switch(Arc<AtomicU16>),
    /// What the function makes of the request's number (from 0): a status with headers.
    Custom(Arc<dyn Fn(usize) -> Reply + Send + Sync>),
}

impl Answer {
    /// `Switch`, starting with `status`.
    pub fn switch(status: u16) -> Self {
        Answer::Switch(Arc::new(AtomicU16::new(status)))
    }

    /// These replies in turn, then the last one for ever.
    pub fn replies(replies: Vec<Reply>) -> Self {
        assert!(!replies.is_empty(), "at least one reply");
        Answer::custom(move |n| replies[n.min(replies.len() - 1)].clone())
    }

    /// `Custom` with `reply`, called with the request's number (from 0).
    pub fn custom(reply: impl Fn(usize) -> Reply + Send + Sync + 'static) -> Self {
        Answer::Custom(Arc::new(reply))
    }
}

/// An answer with headers: `Reply::status(429).header("Retry-After", "2")`.
#[derive(Debug, Clone)]
pub struct Reply {
    pub status: u16,
    pub headers: Vec<(String, String)>,
}

impl Reply {
    pub fn status(status: u16) -> Self {
        Reply {
            status,
            headers: Vec::new(),
        }
    }

    pub fn header(mut self, name: &str, value: impl Into<String>) -> Self {
        self.headers.push((name.to_string(), value.into()));
        self
    }

    fn response(self) -> Response {
        let mut response = StatusCode::from_u16(self.status).unwrap().into_response();
        for (name, value) in self.headers {
            response.headers_mut().append(
                HeaderName::from_bytes(name.as_bytes()).unwrap(),
                HeaderValue::from_str(&value).unwrap(),
            );
        }
        response
    }
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
    /// Requests being answered now, whatever their message, and the most there ever were.
    busy: Arc<AtomicUsize>,
    peak: Arc<AtomicUsize>,
}

/// Counts one request in `Shared::busy` while it lives (a request the pusher gave up on is
/// dropped with its handler, and so no longer counted).
struct Busy(Arc<AtomicUsize>);

impl Busy {
    fn enter(shared: &Shared) -> Self {
        let now = shared.busy.fetch_add(1, Ordering::SeqCst) + 1;
        shared.peak.fetch_max(now, Ordering::SeqCst);
        Busy(shared.busy.clone())
    }
}

impl Drop for Busy {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
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
            busy: Arc::default(),
            peak: Arc::default(),
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

    /// The most requests this subscriber was answering at once (of any messages).
    pub fn peak_in_flight(&self) -> usize {
        self.shared.peak.load(Ordering::SeqCst)
    }

    /// Changes the status a subscriber started with `Answer::switch` answers from now on.
    pub fn set_status(&self, status: u16) {
        match &self.shared.answer {
            Answer::Switch(current) => current.store(status, Ordering::SeqCst),
            _ => panic!("set_status needs a subscriber started with Answer::switch"),
        }
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

async fn handle(State(shared): State<Shared>, headers: HeaderMap, body: Bytes) -> Response {
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
    let _busy = Busy::enter(&shared);
    {
        let mut in_flight = shared.in_flight.lock().unwrap();
        let holders = in_flight.entry(id.clone()).or_default();
        if *holders > 0 {
            *shared.overlaps.lock().unwrap() += 1;
        }
        *holders += 1;
    }
    let reply = match &shared.answer {
        Answer::Always(s) => Reply::status(*s),
        Answer::Sequence(list) => Reply::status(*list.get(n).or(list.last()).unwrap_or(&200)),
        Answer::Never => {
            tokio::time::sleep(Duration::from_secs(3600)).await;
            Reply::status(200)
        }
        Answer::Slow(pause) => {
            tokio::time::sleep(*pause).await;
            Reply::status(200)
        }
        Answer::Switch(current) => Reply::status(current.load(Ordering::SeqCst)),
        Answer::Custom(reply) => reply(n),
    };
    *shared.in_flight.lock().unwrap().get_mut(&id).unwrap() -= 1;
    reply.response()
}

/// A P-256 private key in a PKCS#8 PEM file, for a server to sign its pushes' JWTs with
/// (`FERROMQ_PUSH_JWT_KEY`), with its public point as a JWK gives it. The file lives as long
/// as this value.
pub struct JwtSigningKey {
    pub path: PathBuf,
    /// The point's coordinates, base64url without padding (a JWK's `x` and `y`).
    pub x: String,
    pub y: String,
    _dir: tempfile::TempDir,
}

impl JwtSigningKey {
    pub fn generate() -> Self {
        let key = rcgen::KeyPair::generate().unwrap(); // P-256
        // Uncompressed: 0x04, then x and y, 32 bytes each.
        let point = key.public_key_raw();
        assert_eq!((point.len(), point[0]), (65, 4), "uncompressed P-256 point");
        let dir = tempfile::tempdir().expect("temporary directory");
        let path = dir.path().join("push-jwt-key.pem");
        std::fs::write(&path, key.serialize_pem()).unwrap();
        JwtSigningKey {
            path,
            x: base64url(&point[1..33]),
            y: base64url(&point[33..]),
            _dir: dir,
        }
    }
}

/// Base64url without padding (RFC 7515's encoding of a JWK's numbers).
fn base64url(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let mut group = [0u8; 3];
        group[..chunk.len()].copy_from_slice(chunk);
        let bits = u32::from_be_bytes([0, group[0], group[1], group[2]]);
        for i in 0..=chunk.len() {
            out.push(ALPHABET[((bits >> (18 - 6 * i)) & 63) as usize] as char);
        }
    }
    out
}
