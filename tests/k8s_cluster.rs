//! The controllers against a real Kubernetes API server (`common::kube`: kube-apiserver and
//! etcd on loopback, built by `make kube-tools`; `make test` runs it), with the CRDs installed.
//! The controllers run in this process against a private redis-server; the test applies a
//! Queue and a Subscription, waits for both to be Ready, then deletes the Queue and waits for
//! its finalizer to remove the stored queue.

use common::RedisServer;
use common::kube::KubeApi;
use ferromq::k8s::controller::{Metrics, run_controllers};
use ferromq::k8s::resources::{
    DeletionPolicy, PushSpec, Queue, QueueKind, QueueSpec, Subscription, SubscriptionSpec,
};
use ferromq::store::StoreError;
use kube::api::{Api, DeleteParams, Patch, PatchParams};
use kube::runtime::events::Reporter;
use std::sync::Arc;
use std::time::{Duration, Instant};

async fn until<F, Fut>(what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let deadline = Instant::now() + Duration::from_secs(60);
    while !check().await {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

#[tokio::test]
#[ignore = "needs kube-apiserver and etcd (make kube-tools); make test runs it"]
async fn queues_and_subscriptions_reconcile_on_a_real_cluster() {
    let namespace = "shop".to_string();
    let api = KubeApi::start_with_crds(&[&namespace]);
    let kubeconfig = kube::config::Kubeconfig::read_from(&api.kubeconfig).unwrap();
    let config = kube::Config::from_custom_kubeconfig(kubeconfig, &Default::default())
        .await
        .unwrap();
    let client = kube::Client::try_from(config).unwrap();
    let redis = RedisServer::start();
    let store = redis.store().await;
    let reporter = Reporter {
        controller: "ferromq-controller-test".into(),
        instance: None,
    };
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let controllers = tokio::spawn(run_controllers(
        client.clone(),
        store.clone(),
        Some(namespace.clone()),
        reporter,
        Arc::new(Metrics::default()),
        false,
        async move {
            let _ = stopped.await;
        },
    ));

    let queues: Api<Queue> = Api::namespaced(client.clone(), &namespace);
    let subscriptions: Api<Subscription> = Api::namespaced(client.clone(), &namespace);
    let apply = PatchParams::apply("ferromq-cluster-test").force();
    let mut queue = Queue::new(
        "ferromq-cluster-test",
        QueueSpec {
            queue_type: QueueKind::Multicast,
            push: Some(PushSpec::default()),
            deletion_policy: DeletionPolicy::Delete,
            ..Default::default()
        },
    );
    queue.metadata.namespace = Some(namespace.clone());
    queues
        .patch("ferromq-cluster-test", &apply, &Patch::Apply(&queue))
        .await
        .unwrap();
    let mut subscription = Subscription::new(
        "ferromq-cluster-test",
        SubscriptionSpec {
            queue: "ferromq-cluster-test".into(),
            url: "http://example.invalid/hook".into(),
            ..Default::default()
        },
    );
    subscription.metadata.namespace = Some(namespace.clone());
    subscriptions
        .patch("ferromq-cluster-test", &apply, &Patch::Apply(&subscription))
        .await
        .unwrap();

    until("the Queue to be Ready with its subscription", || async {
        queues
            .get_status("ferromq-cluster-test")
            .await
            .ok()
            .and_then(|q| q.status)
            .is_some_and(|s| {
                s.subscribers == Some(1) && s.conditions.iter().any(|c| c.status == "True")
            })
    })
    .await;
    until("the Subscription to be Ready", || async {
        subscriptions
            .get_status("ferromq-cluster-test")
            .await
            .ok()
            .and_then(|s| s.ready().map(|c| c.status == "True"))
            .unwrap_or(false)
    })
    .await;
    let info = store
        .queue_info(&namespace, "ferromq-cluster-test")
        .await
        .unwrap();
    assert_eq!(info.config.push.unwrap().subscribers.len(), 1);

    subscriptions
        .delete("ferromq-cluster-test", &DeleteParams::default())
        .await
        .unwrap();
    queues
        .delete("ferromq-cluster-test", &DeleteParams::default())
        .await
        .unwrap();
    until("the finalizer to delete the stored queue", || async {
        matches!(
            store.queue_info(&namespace, "ferromq-cluster-test").await,
            Err(StoreError::QueueNotFound)
        ) && queues
            .get_opt("ferromq-cluster-test")
            .await
            .ok()
            .flatten()
            .is_none()
    })
    .await;
    let _ = stop.send(());
    let _ = controllers.await;
}
