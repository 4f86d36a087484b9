//! The controller against kube-rs's mock API service (`tower_test`): each test plays one
//! scenario, asserting every request the controller makes (method, path, body) and answering as
//! the API server would. The store is a real redis-server.

use common::RedisServer;
use ferromq::k8s::controller::{
    Context, Metrics, QUEUE_FINALIZER, error_policy, reconcile_queue, reconcile_subscription,
};
use ferromq::k8s::resources::{
    DeletionPolicy, PushSpec, Queue, QueueKind, QueueSpec, QueueStatus, Subscription,
    SubscriptionSpec, SubscriptionStatus,
};
use ferromq::model::{ChangedBy, NewMessage, QueueSettings};
use ferromq::store::{Answered, Store, StoreError};
use http::{Method, Request, Response};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::client::Body;
use kube::runtime::controller::Action;
use kube::runtime::events::Reporter;
use kube::runtime::reflector::{self, store::Writer};
use kube::runtime::watcher;
use kube::{Client, Resource};
use serde_json::{Value, json};
use std::sync::Arc;
use std::time::Duration;
use tower_test::mock::{self, Handle};

const NAMESPACE: &str = "p";
const QUEUES: &str = "/apis/ferromq.dev/v1alpha1/namespaces/p/queues";
const SUBSCRIPTIONS: &str = "/apis/ferromq.dev/v1alpha1/namespaces/p/subscriptions";
const EVENTS: &str = "/apis/events.k8s.io/v1/namespaces/p/events";

fn queue(name: &str, kind: QueueKind, policy: DeletionPolicy) -> Queue {
    let mut queue = Queue::new(
        name,
        QueueSpec {
            queue_type: kind,
            push: (kind != QueueKind::Pull).then(PushSpec::default),
            deletion_policy: policy,
            ..Default::default()
        },
    );
    queue.metadata.namespace = Some(NAMESPACE.into());
    queue.metadata.generation = Some(3);
    queue.metadata.uid = Some("uid-1".into());
    queue
}

fn finalized(mut queue: Queue) -> Queue {
    queue.metadata.finalizers = Some(vec![QUEUE_FINALIZER.into()]);
    queue
}

fn deleted(mut queue: Queue) -> Queue {
    queue.metadata.deletion_timestamp = Some(Time(k8s_openapi::jiff::Timestamp::now()));
    queue
}

fn subscription(name: &str, queue: &str) -> Subscription {
    let mut subscription = Subscription::new(
        name,
        SubscriptionSpec {
            queue: queue.into(),
            url: "ironmq:///audit".into(),
            ..Default::default()
        },
    );
    subscription.metadata.namespace = Some(NAMESPACE.into());
    subscription.metadata.generation = Some(1);
    subscription
}

/// A controller context on the mock API service, with the given resources in its caches.
struct Fixture {
    ctx: Arc<Context>,
    api: ApiServer,
    store: Store,
    _caches: (Writer<Queue>, Writer<Subscription>),
    _redis: RedisServer,
}

impl Fixture {
    async fn new(queues: &[Queue], subscriptions: &[Subscription]) -> Self {
        let redis = RedisServer::start();
        let store = redis.store().await;
        let (service, handle) = mock::pair::<Request<Body>, Response<Body>>();
        let client = Client::new(service, "default");
        let (queue_cache, queue_writer) = filled(queues);
        let (subscription_cache, subscription_writer) = filled(subscriptions);
        let reporter = Reporter {
            controller: "ferromq-controller".into(),
            instance: Some("test".into()),
        };
        let metrics = Arc::new(Metrics::default());
        let ctx = Context::new(
            client,
            store.clone(),
            queue_cache,
            subscription_cache,
            reporter,
            metrics,
        );
        Fixture {
            ctx: Arc::new(ctx),
            api: ApiServer(handle),
            store,
            _caches: (queue_writer, subscription_writer),
            _redis: redis,
        }
    }
}

/// A cache holding `objects`, marked as listed.
fn filled<K>(objects: &[K]) -> (reflector::Store<K>, Writer<K>)
where
    K: Resource<DynamicType = ()> + Clone,
{
    let (reader, mut writer) = reflector::store::<K>();
    writer.apply_watcher_event(&watcher::Event::Init);
    for object in objects {
        writer.apply_watcher_event(&watcher::Event::InitApply(object.clone()));
    }
    writer.apply_watcher_event(&watcher::Event::InitDone);
    (reader, writer)
}

/// The mock API server: each method expects the next request to be one thing.
struct ApiServer(Handle<Request<Body>, Response<Body>>);

struct Seen {
    path: String,
    query: String,
    body: Value,
}

impl ApiServer {
    /// Takes the next request, checks its method and path, answers `answer(body)`.
    async fn expect(
        &mut self,
        method: Method,
        path: &str,
        answer: impl FnOnce(&Value) -> Value,
    ) -> Seen {
        let (request, send) = tokio::time::timeout(Duration::from_secs(5), self.0.next_request())
            .await
            .unwrap_or_else(|_| panic!("no request came; expected {method} {path}"))
            .expect("service dropped");
        let seen_method = request.method().clone();
        let uri = request.uri().clone();
        let bytes = request.into_body().collect_bytes().await.unwrap();
        let body: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        // A path ending in `/` stands for any name under it.
        let seen_path = match path.strip_suffix('/') {
            Some(prefix) if uri.path().starts_with(path) => prefix,
            _ => uri.path(),
        };
        assert_eq!(
            (seen_method, seen_path),
            (method, path.trim_end_matches('/')),
            "unexpected request {uri} {body}"
        );
        let reply = serde_json::to_vec(&answer(&body)).unwrap();
        send.send_response(Response::builder().body(Body::from(reply)).unwrap());
        Seen {
            path: uri.path().to_string(),
            query: uri.query().unwrap_or_default().to_string(),
            body,
        }
    }

    /// The finalizer is added with a JSON patch that first tests there is none.
    async fn finalizer_added(&mut self, queue: &Queue) {
        let answer = finalized(queue.clone());
        let seen = self
            .expect(Method::PATCH, &format!("{QUEUES}/{}", name(queue)), |_| {
                serde_json::to_value(&answer).unwrap()
            })
            .await;
        assert_eq!(
            seen.body,
            json!([
                {"op": "test", "path": "/metadata/finalizers", "value": null},
                {"op": "add", "path": "/metadata/finalizers", "value": [QUEUE_FINALIZER]}
            ])
        );
    }

    async fn finalizer_removed(&mut self, queue: &Queue) {
        let seen = self
            .expect(Method::PATCH, &format!("{QUEUES}/{}", name(queue)), |_| {
                serde_json::to_value(queue).unwrap()
            })
            .await;
        assert_eq!(
            seen.body[1],
            json!({"op": "remove", "path": "/metadata/finalizers/0"})
        );
    }

    /// A server-side apply of the Queue's status by the controller's field manager.
    async fn queue_status_applied(&mut self, queue: &Queue) -> QueueStatus {
        let path = format!("{QUEUES}/{}/status", name(queue));
        let seen = self
            .expect(Method::PATCH, &path, |body| {
                let mut answer = serde_json::to_value(queue).unwrap();
                answer["status"] = body["status"].clone();
                answer
            })
            .await;
        assert!(
            seen.query.contains("fieldManager=ferromq-controller"),
            "{}",
            seen.query
        );
        assert!(seen.query.contains("force=true"), "{}", seen.query);
        assert_eq!(seen.body["apiVersion"], "ferromq.dev/v1alpha1");
        assert_eq!(seen.body["kind"], "Queue");
        serde_json::from_value(seen.body["status"].clone()).expect("a Queue status")
    }

    async fn subscription_status_applied(
        &mut self,
        subscription: &Subscription,
    ) -> SubscriptionStatus {
        let path = format!("{SUBSCRIPTIONS}/{}/status", name(subscription));
        let seen = self
            .expect(Method::PATCH, &path, |body| {
                let mut answer = serde_json::to_value(subscription).unwrap();
                answer["status"] = body["status"].clone();
                answer
            })
            .await;
        assert_eq!(seen.body["kind"], "Subscription", "{}", seen.path);
        serde_json::from_value(seen.body["status"].clone()).expect("a Subscription status")
    }

    /// An Event about `object`; returns it.
    async fn event_published(&mut self, object: &str) -> Value {
        let seen = self.expect(Method::POST, EVENTS, |body| body.clone()).await;
        assert_eq!(seen.body["regarding"]["name"], object, "{}", seen.body);
        seen.body
    }

    /// The same Event again: counted in a series on the first one rather than created anew.
    async fn event_repeated(&mut self, object: &str) -> Value {
        let seen = self
            .expect(Method::PATCH, &format!("{EVENTS}/"), |body| body.clone())
            .await;
        assert_eq!(seen.body["regarding"]["name"], object, "{}", seen.body);
        seen.body
    }

    /// Nothing more is asked of the API server.
    async fn silent(&mut self) {
        let more = tokio::time::timeout(Duration::from_millis(300), self.0.next_request()).await;
        if let Ok(Some((request, _))) = more {
            panic!("unexpected request {} {}", request.method(), request.uri());
        }
    }
}

fn name<K: Resource>(object: &K) -> String {
    object.meta().name.clone().unwrap()
}

/// Runs a reconcile beside the scenario the API server plays.
async fn reconcile_with<T>(
    fixture: &mut Fixture,
    queue: Queue,
    scenario: impl AsyncFnOnce(&mut ApiServer) -> T,
) -> (Result<Action, ferromq::k8s::controller::Error>, T) {
    let reconcile = reconcile_queue(Arc::new(queue), fixture.ctx.clone());
    tokio::join!(reconcile, scenario(&mut fixture.api))
}

#[tokio::test]
async fn a_new_queue_gets_the_finalizer_before_anything_is_stored() {
    let orders = queue("orders", QueueKind::Pull, DeletionPolicy::Retain);
    let mut fixture = Fixture::new(std::slice::from_ref(&orders), &[]).await;
    let (result, ()) = reconcile_with(&mut fixture, orders.clone(), async |api| {
        api.finalizer_added(&orders).await;
        api.silent().await;
    })
    .await;
    assert_eq!(result.unwrap(), Action::await_change());
    assert!(matches!(
        fixture.store.queue_info("p", "orders").await,
        Err(StoreError::QueueNotFound)
    ));
}

#[tokio::test]
async fn a_finalized_queue_is_stored_with_its_subscriptions_and_its_status_applied() {
    let events = finalized(queue(
        "events",
        QueueKind::Multicast,
        DeletionPolicy::Retain,
    ));
    let audit = subscription("audit", "events");
    let mut fixture = Fixture::new(std::slice::from_ref(&events), &[audit]).await;
    let (result, status) = reconcile_with(&mut fixture, events.clone(), async |api| {
        let status = api.queue_status_applied(&events).await;
        api.silent().await;
        status
    })
    .await;
    assert_eq!(result.unwrap(), Action::requeue(Duration::from_secs(60)));

    let ready = &status.conditions[0];
    assert_eq!(
        (
            ready.type_.as_str(),
            ready.status.as_str(),
            ready.reason.as_str()
        ),
        ("Ready", "True", "Stored")
    );
    assert_eq!(ready.observed_generation, Some(3));
    assert_eq!(status.observed_generation, Some(3));
    assert_eq!((status.size, status.total_messages), (Some(0), Some(0)));
    assert_eq!(
        status.endpoint.as_deref(),
        Some("/3/projects/p/queues/events")
    );
    assert_eq!(status.subscribers, Some(1));

    let info = fixture.store.queue_info("p", "events").await.unwrap();
    assert_eq!(info.config.managed_by.as_deref(), Some("Queue p/events"));
    assert_eq!(info.config.push.unwrap().subscribers[0].name, "audit");
}

/// Declares `queue` in the store with one message in it.
async fn stored_with_a_message(fixture: &Fixture, queue: &Queue) {
    let manager = queue.manager();
    fixture
        .store
        .apply_queue(
            "p",
            &name(queue),
            &QueueSettings::default(),
            true,
            ChangedBy::Resource(&manager),
        )
        .await
        .unwrap();
    let message = NewMessage {
        body: "precious".into(),
        ..Default::default()
    };
    fixture
        .store
        .post("p", &name(queue), &[message])
        .await
        .unwrap();
}

#[tokio::test]
async fn deleting_a_queue_with_policy_delete_removes_it_and_then_the_finalizer() {
    let orders = deleted(finalized(queue(
        "orders",
        QueueKind::Pull,
        DeletionPolicy::Delete,
    )));
    let mut fixture = Fixture::new(std::slice::from_ref(&orders), &[]).await;
    stored_with_a_message(&fixture, &orders).await;
    let (result, event) = reconcile_with(&mut fixture, orders.clone(), async |api| {
        let event = api.event_published("orders").await;
        api.finalizer_removed(&orders).await;
        api.silent().await;
        event
    })
    .await;
    assert_eq!(result.unwrap(), Action::await_change());
    assert_eq!(
        (event["type"].as_str(), event["reason"].as_str()),
        (Some("Normal"), Some("Deleted"))
    );
    assert!(matches!(
        fixture.store.queue_info("p", "orders").await,
        Err(StoreError::QueueNotFound)
    ));
}

#[tokio::test]
async fn deleting_a_queue_with_policy_retain_keeps_it_and_its_messages_unmanaged() {
    let orders = deleted(finalized(queue(
        "orders",
        QueueKind::Pull,
        DeletionPolicy::Retain,
    )));
    let mut fixture = Fixture::new(std::slice::from_ref(&orders), &[]).await;
    stored_with_a_message(&fixture, &orders).await;
    let (result, event) = reconcile_with(&mut fixture, orders.clone(), async |api| {
        let event = api.event_published("orders").await;
        api.finalizer_removed(&orders).await;
        event
    })
    .await;
    assert_eq!(result.unwrap(), Action::await_change());
    assert_eq!(event["reason"], "Retained");
    let info = fixture.store.queue_info("p", "orders").await.unwrap();
    assert_eq!((info.size, info.config.managed_by), (1, None));
}

#[tokio::test]
async fn a_failed_apply_publishes_a_warning_writes_a_not_ready_status_and_backs_off() {
    let orders = finalized(queue("orders", QueueKind::Pull, DeletionPolicy::Delete));
    let mut fixture = Fixture::new(std::slice::from_ref(&orders), &[]).await;
    // Another resource already manages the stored queue.
    fixture
        .store
        .apply_queue(
            "p",
            "orders",
            &QueueSettings::default(),
            true,
            ChangedBy::Resource("Queue elsewhere/orders"),
        )
        .await
        .unwrap();
    let (result, status) = reconcile_with(&mut fixture, orders.clone(), async |api| {
        api.queue_status_applied(&orders).await
    })
    .await;
    let error = result.unwrap_err();
    assert!(
        error.to_string().contains("Queue elsewhere/orders"),
        "{error}"
    );
    let ready = &status.conditions[0];
    assert_eq!(
        (ready.status.as_str(), ready.reason.as_str()),
        ("False", "ManagedElsewhere")
    );

    // Each failure is one Warning Event (a repeat joins its series), and retries back off:
    // 5 s, then 10 s.
    let object = Arc::new(orders.clone());
    let first = error_policy(object.clone(), &error, fixture.ctx.clone());
    let event = fixture.api.event_published("orders").await;
    assert_eq!(
        (event["type"].as_str(), event["reason"].as_str()),
        (Some("Warning"), Some("ManagedElsewhere"))
    );
    let note = event["note"].as_str().unwrap_or_default();
    assert!(note.contains("Queue elsewhere/orders"), "{note}");
    let second = error_policy(object, &error, fixture.ctx.clone());
    let failed = fixture.api.event_repeated("orders").await;
    assert_eq!(failed["reason"], "ManagedElsewhere");
    assert_eq!(failed["series"]["count"], 2);
    assert_eq!(first, Action::requeue(Duration::from_secs(5)));
    assert_eq!(second, Action::requeue(Duration::from_secs(10)));
    // The stored queue was not touched.
    let info = fixture.store.queue_info("p", "orders").await.unwrap();
    assert_eq!(
        info.config.managed_by.as_deref(),
        Some("Queue elsewhere/orders")
    );
}

#[tokio::test]
async fn a_subscription_to_a_missing_queue_gets_a_not_ready_status() {
    let orphan = subscription("hook", "nowhere");
    let mut fixture = Fixture::new(&[], std::slice::from_ref(&orphan)).await;
    let reconcile = reconcile_subscription(Arc::new(orphan.clone()), fixture.ctx.clone());
    let (result, status) = tokio::join!(reconcile, async {
        let status = fixture.api.subscription_status_applied(&orphan).await;
        fixture.api.silent().await;
        status
    });
    assert_eq!(result.unwrap(), Action::requeue(Duration::from_secs(60)));
    let ready = &status.conditions[0];
    assert_eq!(
        (ready.status.as_str(), ready.reason.as_str()),
        ("False", "QueueNotFound")
    );
    assert_eq!(status.observed_generation, Some(1));
}

#[tokio::test]
async fn a_subscription_status_carries_its_delivery_counts_and_counts_alone_wait_a_minute() {
    let events = finalized(queue(
        "events",
        QueueKind::Multicast,
        DeletionPolicy::Retain,
    ));
    let hook = subscription("hook", "events");
    let mut fixture =
        Fixture::new(std::slice::from_ref(&events), std::slice::from_ref(&hook)).await;
    let answers = [
        ("hook", Answered::Delivered, 2),
        ("hook", Answered::Failed, 1),
        ("other", Answered::Accepted, 1),
    ];
    fixture
        .store
        .count_answers("p", "events", &answers)
        .await
        .unwrap();
    let reconcile = reconcile_subscription(Arc::new(hook.clone()), fixture.ctx.clone());
    let (result, status) = tokio::join!(reconcile, async {
        let status = fixture.api.subscription_status_applied(&hook).await;
        fixture.api.silent().await;
        status
    });
    assert!(result.is_ok());
    assert_eq!(
        (status.delivered, status.accepted, status.failed),
        (Some(2), Some(0), Some(1))
    );

    // New counts alone are not written again within a minute of the last write.
    fixture
        .store
        .count_answers("p", "events", &[("hook", Answered::Delivered, 1)])
        .await
        .unwrap();
    let mut seen = hook.clone();
    seen.status = Some(status);
    let reconcile = reconcile_subscription(Arc::new(seen), fixture.ctx.clone());
    let (result, ()) = tokio::join!(reconcile, fixture.api.silent());
    assert!(result.is_ok());
}

#[tokio::test]
async fn a_controller_for_tenant_namespaces_refuses_queues_in_other_projects() {
    let mut foreign = finalized(queue("orders", QueueKind::Pull, DeletionPolicy::Delete));
    foreign.spec.project = Some("someone-elses".into());
    let mut fixture = Fixture::new(std::slice::from_ref(&foreign), &[]).await;
    Arc::get_mut(&mut fixture.ctx).unwrap().no_project_override = true;
    let (result, status) = reconcile_with(&mut fixture, foreign.clone(), async |api| {
        api.queue_status_applied(&foreign).await
    })
    .await;
    assert!(result.is_err());
    let ready = &status.conditions[0];
    assert_eq!(
        (ready.status.as_str(), ready.reason.as_str()),
        ("False", "InvalidSpec")
    );
    assert!(
        ready.message.contains("FERROMQ_NO_PROJECT_OVERRIDE"),
        "{}",
        ready.message
    );
    let stored = fixture.store.queue_info("someone-elses", "orders").await;
    assert!(
        matches!(stored, Err(StoreError::QueueNotFound)),
        "{stored:?}"
    );
}

#[tokio::test]
async fn an_unchanged_status_is_not_written_again() {
    let orders = finalized(queue("orders", QueueKind::Pull, DeletionPolicy::Retain));
    let mut fixture = Fixture::new(std::slice::from_ref(&orders), &[]).await;
    let (_, status) = reconcile_with(&mut fixture, orders.clone(), async |api| {
        api.queue_status_applied(&orders).await
    })
    .await;
    let mut seen = orders.clone();
    seen.status = Some(status);
    let (result, ()) = reconcile_with(&mut fixture, seen, async |api| api.silent().await).await;
    assert!(result.is_ok());
}

#[tokio::test]
async fn store_outages_surface_as_errors_not_panics() {
    let orders = finalized(queue("orders", QueueKind::Pull, DeletionPolicy::Retain));
    let mut fixture = Fixture::new(std::slice::from_ref(&orders), &[]).await;
    drop(std::mem::replace(&mut fixture._redis, RedisServer::start()));
    let (result, _) = reconcile_with(&mut fixture, orders.clone(), async |api| {
        api.queue_status_applied(&orders).await
    })
    .await;
    assert!(
        matches!(&result, Err(e) if e.to_string().contains("store")),
        "{result:?}"
    );
}

#[tokio::test]
async fn health_readiness_and_metrics_endpoints_answer() {
    use prometheus_client::registry::Registry;
    let orders = finalized(queue("orders", QueueKind::Pull, DeletionPolicy::Retain));
    let mut registry = Registry::default();
    let metrics = Metrics::register(&mut registry);
    let mut fixture = Fixture::new(std::slice::from_ref(&orders), &[]).await;
    fixture.ctx = Arc::new(Context::new(
        fixture.ctx.client.clone(),
        fixture.store.clone(),
        fixture.ctx.queues.clone(),
        fixture.ctx.subscriptions.clone(),
        Reporter {
            controller: "ferromq-controller".into(),
            instance: None,
        },
        metrics,
    ));
    let (result, _) = reconcile_with(&mut fixture, orders.clone(), async |api| {
        api.queue_status_applied(&orders).await
    })
    .await;
    assert!(result.is_ok());

    let app = ferromq::k8s::operator::health_routes(fixture.store.clone(), Arc::new(registry));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    let http = common::http();
    let get = |path: &str| http.get(format!("{base}{path}")).send();
    assert_eq!(get("/healthz").await.unwrap().status(), 200);
    assert_eq!(get("/readyz").await.unwrap().status(), 200);
    let text = get("/metrics").await.unwrap().text().await.unwrap();
    assert!(
        text.contains(r#"ferromq_controller_reconciliations_total{kind="Queue",result="ok"} 1"#),
        "{text}"
    );
    // Every declared queue's gauges, read at its reconcile.
    assert!(
        text.contains(r#"ferromq_declared_queue_depth{project="p",queue="orders"} 0"#),
        "{text}"
    );
    assert!(
        text.contains(
            r#"ferromq_declared_queue_oldest_message_age_seconds{project="p",queue="orders"} 0"#
        ),
        "{text}"
    );
    drop(std::mem::replace(&mut fixture._redis, RedisServer::start()));
    assert_eq!(get("/readyz").await.unwrap().status(), 503);
}

#[tokio::test]
async fn a_leader_that_sees_another_holder_of_its_lease_stops() {
    let mut fixture = Fixture::new(&[], &[]).await;
    let leases: kube::Api<k8s_openapi::api::coordination::v1::Lease> =
        kube::Api::namespaced(fixture.ctx.client.clone(), "ops");
    let lapses =
        ferromq::k8s::operator::lease_lapses(leases, "ferromq-controller".into(), "me".into());
    let path = "/apis/coordination.k8s.io/v1/namespaces/ops/leases/ferromq-controller";
    let lease = |holder: &str| {
        let renewed = k8s_openapi::jiff::Timestamp::now().to_string();
        json!({"apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
               "metadata": {"name": "ferromq-controller", "namespace": "ops"},
               "spec": {"holderIdentity": holder, "leaseDurationSeconds": 15, "renewTime": renewed}})
    };
    let api = &mut fixture.api;
    let ended = tokio::time::timeout(Duration::from_secs(20), async {
        tokio::join!(lapses, async {
            // Ours and current: it keeps going; then another replica holds it.
            api.expect(Method::GET, path, |_| lease("me")).await;
            api.expect(Method::GET, path, |_| lease("me")).await;
            api.expect(Method::GET, path, |_| lease("someone-else"))
                .await;
        })
    })
    .await;
    assert!(ended.is_ok(), "the leader kept going under another holder");
}
