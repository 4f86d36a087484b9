//! `ferromq serve`: the REST data plane against the configured Redis.

use crate::api::{self, AppState};
use crate::config::ServeArgs;
use crate::listener::Listening;
use crate::push::auth::{Bearers, Signer};
use crate::push::deliver::Courier;
use crate::push::guard::AddressPolicy;
use crate::push::worker::Workers;
use crate::store::Store;
use crate::tokens::Tokens;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

/// How long start-up waits for the long-poll subscription before serving anyway (long polls
/// then fall back to re-checking until it is up).
const SUBSCRIBE_GRACE: Duration = Duration::from_secs(3);

/// What a failed start or serve says.
pub type Failure = Box<dyn std::error::Error + Send + Sync>;

pub async fn run(args: ServeArgs) -> Result<(), Failure> {
    let tokens = args.load_tokens()?;
    let store = Store::connect(&args.redis.target()?).await?;
    serve_store(args, tokens, store).await
}

/// Serves the API (and push workers) on a connected store until SIGINT or SIGTERM.
pub async fn serve_store(args: ServeArgs, tokens: Tokens, store: Store) -> Result<(), Failure> {
    if !store.wait_subscribed(SUBSCRIBE_GRACE).await {
        tracing::warn!("Redis is not reachable yet; answering 503 until it is");
    }
    let plane = DataPlane::bind(&args, tokens, store).await?;
    tracing::info!(address = %plane.local_addr(), "ferromq data plane listening");
    plane.serve(shutdown_signal()).await
}

/// The data plane wired up and bound to its address: the API, and the push workers unless
/// they are turned off. Every way of serving (`serve`, `standalone`, the test server) goes
/// through here.
pub struct DataPlane {
    listener: tokio::net::TcpListener,
    state: AppState,
    listening: Listening,
    workers: Option<Arc<Workers>>,
}

impl DataPlane {
    /// Binds the listen address (port 0 takes a free one) and wires the API and the push
    /// workers to `store`.
    pub async fn bind(args: &ServeArgs, tokens: Tokens, store: Store) -> Result<Self, Failure> {
        let tokens = Arc::new(tokens);
        crate::tls::install_crypto_provider();
        if crate::telemetry::spans::init()? {
            tracing::info!("exporting spans over OTLP (OTEL_EXPORTER_OTLP_ENDPOINT)");
        }
        let listening = args.listening()?;
        let listener = tokio::net::TcpListener::bind(args.listen)
            .await
            .map_err(|e| format!("cannot listen on {}: {e}", args.listen))?;
        let public_url = args.public_url(listener.local_addr()?);
        let signer = match &args.push_jwt_key {
            Some(path) => {
                let issuer = args.push_jwt_issuer.clone().unwrap_or(public_url.clone());
                Some(Signer::load(path, issuer).map_err(|e| format!("FERROMQ_PUSH_JWT_KEY: {e}"))?)
            }
            None => None,
        };
        let bearers = Arc::new(Bearers::new(signer, args.push_token_dir.clone()));
        let state = AppState {
            store: store.clone(),
            tokens: tokens.clone(),
            limits: args.limits(),
            bearers: bearers.clone(),
        };
        let workers = if args.no_push {
            None
        } else {
            let push = args.push_settings();
            let extra_roots = match &args.push_ca_file {
                Some(path) => crate::tls::root_certificates(path)?,
                None => Vec::new(),
            };
            let deny = Arc::new(
                AddressPolicy::parse(&args.push_deny)
                    .map_err(|e| format!("FERROMQ_PUSH_DENY: {e}"))?,
            );
            let courier = Courier {
                http: Courier::http_client(push.timeout, &extra_roots, &deny)?,
                store,
                tokens,
                public_url,
                deny,
                bearers,
                max_retry_after: Duration::from_secs(args.push_max_retry_after),
            };
            Some(Workers::new(courier, push))
        };
        Ok(DataPlane {
            listener,
            state,
            listening,
            workers,
        })
    }

    /// The address it listens on.
    pub fn local_addr(&self) -> SocketAddr {
        self.listener
            .local_addr()
            .expect("a bound listener has an address")
    }

    /// Serves until `shutdown` completes: push workers stop claiming at once, requests in
    /// flight finish, then the rounds in flight get their grace period.
    pub async fn serve(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> Result<(), Failure> {
        let (stop, stopped) = tokio::sync::watch::channel(false);
        let workers = self.workers.map(|w| tokio::spawn(w.run(stopped)));
        // Redrives and alert messages a dead process left are taken over by any data plane.
        let sweep = tokio::spawn(self.state.store.clone().sweep());
        let history = tokio::spawn(self.state.store.clone().record_history());
        let signalled = async move {
            shutdown.await;
            let _ = stop.send(true);
        };
        let served = api::serve(self.listener, self.state, &self.listening, signalled).await;
        sweep.abort();
        // Counts since the last recording (at most 5 s) are dropped: at shutdown Redis may be
        // going too, and waiting on it would hold the process.
        history.abort();
        served?;
        if let Some(workers) = workers {
            let _ = workers.await;
        }
        // The exporter's last batch waits on its own thread, not on this runtime's.
        let _ = tokio::task::spawn_blocking(crate::telemetry::spans::flush).await;
        Ok(())
    }
}

/// Completes on SIGINT or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {}
        _ = terminate => {}
    }
    tracing::info!("shutting down: finishing requests in flight");
}
