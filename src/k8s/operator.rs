//! The `ferromq controller` job: connects to Kubernetes and Redis, serves `/healthz`, `/readyz`
//! and `/metrics`, takes the leader `Lease` (so two replicas never both reconcile) and runs the
//! controllers while it holds it.

use super::controller::{self, Metrics};
use crate::config::ControllerArgs;
use crate::store::Store;
use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::get;
use k8s_openapi::api::coordination::v1::Lease;
use kube::runtime::events::Reporter;
use kube::{Api, Client};
use kube_lease_manager::LeaseManagerBuilder;
use prometheus_client::registry::Registry;
use std::sync::Arc;
use std::time::Duration;

/// Seconds a leader's Lease lasts without renewal, and how early it is renewed.
const LEASE_SECONDS: u64 = 15;
const LEASE_GRACE_SECONDS: u64 = 5;
/// How often the leader reads its Lease back.
const LEASE_CHECK: Duration = Duration::from_secs(2);

#[derive(Clone)]
struct Health {
    store: Store,
    registry: Arc<Registry>,
}

pub async fn run(args: ControllerArgs) -> Result<(), crate::serve::Failure> {
    let client = Client::try_default()
        .await
        .map_err(|e| format!("cannot reach the Kubernetes API: {e}"))?;
    let store = Store::connect(&args.redis.target()?).await?;
    let mut registry = Registry::default();
    let metrics = Metrics::register(&mut registry);
    let listener = tokio::net::TcpListener::bind(args.health_listen).await?;
    tracing::info!(address = %listener.local_addr()?, "controller health and metrics listening");
    let app = health_routes(store.clone(), Arc::new(registry));
    tokio::spawn(async move { axum::serve(listener, app).await });

    let identity = args
        .identity
        .clone()
        .unwrap_or_else(|| format!("ferromq-controller-{}", fastrand::u64(..)));
    let reporter = Reporter {
        controller: controller::FIELD_MANAGER.into(),
        instance: Some(identity.clone()),
    };
    let namespace = args.namespace.clone();
    if args.no_leader_election {
        return Ok(controller::run_controllers(
            client,
            store,
            namespace,
            reporter,
            metrics,
            args.no_project_override,
            crate::serve::shutdown_signal(),
        )
        .await?);
    }

    let lease = LeaseManagerBuilder::new(client.clone(), &args.lease_name)
        .with_namespace(&args.lease_namespace)
        .with_identity(&identity)
        .with_duration(LEASE_SECONDS)
        .with_grace(LEASE_GRACE_SECONDS)
        .build()
        .await?;
    let (mut leader, lease_task) = lease.watch().await;
    tracing::info!(
        identity,
        lease = args.lease_name,
        "waiting to become the leader"
    );
    tokio::select! {
        won = leader.wait_for(|is_leader| *is_leader) => { won?; }
        _ = crate::serve::shutdown_signal() => return Ok(()),
    }
    tracing::info!(identity, "leader: reconciling");
    let mut watch_leader = leader.clone();
    let lost = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let leases: Api<Lease> = Api::namespaced(client.clone(), &args.lease_namespace);
    let stop = {
        let lost = lost.clone();
        let (name, me) = (args.lease_name.clone(), identity.clone());
        async move {
            tokio::select! {
                _ = watch_leader.wait_for(|is_leader| !*is_leader) => {
                    lost.store(true, std::sync::atomic::Ordering::SeqCst);
                }
                _ = lease_lapses(leases, name, me) => {
                    lost.store(true, std::sync::atomic::Ordering::SeqCst);
                }
                _ = crate::serve::shutdown_signal() => {}
            }
        }
    };
    let result = controller::run_controllers(
        client,
        store,
        namespace,
        reporter,
        metrics,
        args.no_project_override,
        stop,
    )
    .await;
    // Hand the Lease over at once rather than letting it run out.
    drop(leader);
    if let Ok(Ok(lease)) = lease_task.await {
        let _ = lease.release().await;
    }
    result?;
    if lost.load(std::sync::atomic::Ordering::SeqCst) {
        // A failure exit, so the pod restarts and queues up for the Lease again.
        return Err("lost the leader Lease: stopped so that another replica takes over".into());
    }
    Ok(())
}

/// Completes once this replica can no longer be sure it holds the Lease: the lease manager
/// renews it in the background but does not step down when renewals fail (a network
/// partition, an API server that hangs), so the Lease is read back every few seconds, and a
/// leader that has not seen itself as the holder of a current Lease for longer than the
/// renewal margin stops before another replica can take over.
pub async fn lease_lapses(leases: Api<Lease>, name: String, me: String) {
    let margin = Duration::from_secs(LEASE_SECONDS - LEASE_GRACE_SECONDS);
    let mut confirmed = tokio::time::Instant::now();
    loop {
        tokio::time::sleep(LEASE_CHECK).await;
        let read = tokio::time::timeout(LEASE_CHECK, leases.get(&name)).await;
        match read {
            Ok(Ok(lease)) => {
                let spec = lease.spec.unwrap_or_default();
                let ours = spec.holder_identity.as_deref() == Some(me.as_str());
                let current = spec.renew_time.is_some_and(|renewed| {
                    let age = k8s_openapi::jiff::Timestamp::now().duration_since(renewed.0);
                    age.as_secs() < i64::from(spec.lease_duration_seconds.unwrap_or(0))
                });
                if ours && current {
                    confirmed = tokio::time::Instant::now();
                } else if !ours {
                    tracing::error!(holder = ?spec.holder_identity, "another replica holds the Lease");
                    return;
                }
            }
            Ok(Err(err)) => tracing::warn!(%err, "cannot read the leader Lease"),
            Err(_) => tracing::warn!("reading the leader Lease timed out"),
        }
        if confirmed.elapsed() > margin {
            tracing::error!("the leader Lease could not be confirmed in time");
            return;
        }
    }
}

/// `/healthz` (the process runs), `/readyz` (Redis answers) and `/metrics` (Prometheus text).
pub fn health_routes(store: Store, registry: Arc<Registry>) -> Router {
    Router::new()
        .route("/healthz", get(|| async { "ok" }))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics_text))
        .with_state(Health { store, registry })
}

async fn readyz(State(health): State<Health>) -> (StatusCode, &'static str) {
    if health.store.ping().await {
        (StatusCode::OK, "ok")
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "Redis unreachable")
    }
}

async fn metrics_text(
    State(health): State<Health>,
) -> (StatusCode, [(&'static str, &'static str); 1], String) {
    let mut text = String::new();
    match prometheus_client::encoding::text::encode(&mut text, &health.registry) {
        Ok(()) => (
            StatusCode::OK,
            [(
                "content-type",
                "application/openmetrics-text; version=1.0.0; charset=utf-8",
            )],
            text,
        ),
        Err(_) => (
            StatusCode::INTERNAL_SERVER_ERROR,
            [("content-type", "text/plain")],
            String::new(),
        ),
    }
}
