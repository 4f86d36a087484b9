//! The push scenarios' subscriber: an HTTP server in the benchmark process that counts what it
//! receives and answers 200, at once or after a pause; and the raw-HTTP-loop limit against it.

use axum::Router;
use axum::extract::State;
use axum::routing::post;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

pub struct Subscriber {
    pub url: String,
    received: Arc<AtomicU64>,
}

#[derive(Clone)]
struct Shared {
    pause: Duration,
    received: Arc<AtomicU64>,
}

async fn answer(State(shared): State<Shared>, _body: axum::body::Bytes) -> &'static str {
    if !shared.pause.is_zero() {
        tokio::time::sleep(shared.pause).await;
    }
    shared.received.fetch_add(1, Ordering::Relaxed);
    ""
}

impl Subscriber {
    pub async fn start(pause: Duration) -> Result<Self, String> {
        let received = Arc::new(AtomicU64::new(0));
        let shared = Shared {
            pause,
            received: received.clone(),
        };
        let app = Router::new()
            .route("/hook", post(answer))
            .with_state(shared);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .map_err(|e| e.to_string())?;
        let url = format!(
            "http://{}/hook",
            listener.local_addr().map_err(|e| e.to_string())?
        );
        tokio::spawn(async move { axum::serve(listener, app).await });
        Ok(Subscriber { url, received })
    }

    pub fn received(&self) -> u64 {
        self.received.load(Ordering::Relaxed)
    }

    /// Waits until `n` requests arrived; false after `limit`.
    pub async fn wait_for(&self, n: u64, limit: Duration) -> bool {
        let deadline = Instant::now() + limit;
        while self.received() < n {
            if Instant::now() > deadline {
                return false;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        true
    }
}

/// The delivery limit: plain POSTs of the same body to the subscriber at the same concurrency.
pub async fn raw_loop(
    url: &str,
    body: &str,
    concurrency: usize,
    duration: Duration,
) -> crate::load::Outcome {
    // reqwest, as the push workers use: the limit is what the same client stack can deliver.
    let http = crate::http_client(concurrency);
    let (url, body) = (url.to_string(), body.to_string());
    crate::load::run(vec![(); concurrency], duration, move |()| {
        let (http, url, body) = (http.clone(), url.clone(), body.clone());
        async move {
            let result = match http.post(&url).body(body).send().await {
                Ok(response) if response.status().is_success() => Ok(1),
                Ok(response) => Err(response.status().to_string()),
                Err(err) => Err(err.to_string()),
            };
            ((), result)
        }
    })
    .await
}
