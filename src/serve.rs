//! `ferromq serve`: the REST data plane against the configured Redis.

use crate::api::{self, AppState, Tokens};
use crate::config::ServeArgs;
use crate::push::deliver::Courier;
use crate::push::guard::AddressPolicy;
use crate::push::worker::Workers;
use crate::store::Store;
use std::sync::Arc;
use std::time::Duration;

/// How long start-up waits for the long-poll subscription before serving anyway (long polls
/// then fall back to re-checking until it is up).
const SUBSCRIBE_GRACE: Duration = Duration::from_secs(3);

pub async fn run(args: ServeArgs) -> Result<(), Box<dyn std::error::Error>> {
    let tokens = args.load_tokens()?;
    let store = Store::connect(&args.redis.target()).await?;
    serve_store(args, tokens, store).await
}

/// Serves the API (and push workers) on a connected store until SIGINT or SIGTERM.
pub async fn serve_store(
    args: ServeArgs,
    tokens: Tokens,
    store: Store,
) -> Result<(), Box<dyn std::error::Error>> {
    if !store.wait_subscribed(SUBSCRIBE_GRACE).await {
        tracing::warn!("Redis is not reachable yet; answering 503 until it is");
    }
    let tokens = Arc::new(tokens);
    let push = args.push_settings();
    let state = AppState {
        store: store.clone(),
        tokens: tokens.clone(),
        limits: args.limits(),
    };
    let listening = args.listening()?;
    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .map_err(|e| format!("cannot listen on {}: {e}", args.listen))?;
    tracing::info!(address = %listener.local_addr()?, "ferromq data plane listening");
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let workers = if args.no_push {
        None
    } else {
        let extra_roots = match &args.push_ca_file {
            Some(path) => crate::tls::root_certificates(path)?,
            None => Vec::new(),
        };
        let deny = Arc::new(
            AddressPolicy::parse(&args.push_deny).map_err(|e| format!("FERROMQ_PUSH_DENY: {e}"))?,
        );
        let courier = Courier {
            http: Courier::http_client(push.timeout, &extra_roots, &deny)?,
            store,
            tokens,
            public_url: args.public_url(),
            deny,
        };
        Some(tokio::spawn(Workers::new(courier, push).run(stopped)))
    };
    // Push workers stop claiming as soon as the signal comes, while requests in flight finish.
    let signalled = async move {
        shutdown_signal().await;
        let _ = stop.send(true);
    };
    api::serve(listener, state, &listening, signalled).await?;
    if let Some(workers) = workers {
        let _ = workers.await;
    }
    Ok(())
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
