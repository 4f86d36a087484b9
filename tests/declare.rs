//! From Queue and Subscription resources to the store (`ferromq::k8s::declare`), against a real
//! redis-server; REST calls on managed queues go through the real data plane.

use common::subscriber::{Answer, Subscriber};
use common::{RedisServer, TestServer, post_bodies, q, quiet, start_server};
use ferromq::k8s::declare::{self, Forgotten, NotDeclared};
use ferromq::k8s::resources::{
    DeadLetterSpec, DeletionPolicy, PushSpec, Queue, QueueKind, QueueSpec, Subscription,
    SubscriptionSpec,
};
use ferromq::model::{ChangedBy, DeadLetter, QueueSettings, QueueType};
use ferromq::store::StoreError;
use reqwest::StatusCode;
use serde_json::json;
use std::time::Duration;

/// Resources live in namespace `p`, the project the test client uses.
const NAMESPACE: &str = "p";

fn queue(name: &str, spec: QueueSpec) -> Queue {
    let mut queue = Queue::new(name, spec);
    queue.metadata.namespace = Some(NAMESPACE.into());
    queue.metadata.generation = Some(1);
    queue
}

fn push_queue(name: &str, kind: QueueKind) -> Queue {
    queue(
        name,
        QueueSpec {
            queue_type: kind,
            push: Some(PushSpec {
                retries: Some(2),
                retries_delay: Some(5),
                timeout: Some(7),
                ..Default::default()
            }),
            ..Default::default()
        },
    )
}

fn subscription(name: &str, queue: &str, url: &str) -> Subscription {
    let mut subscription = Subscription::new(
        name,
        SubscriptionSpec {
            queue: queue.into(),
            url: url.into(),
            ..Default::default()
        },
    );
    subscription.metadata.namespace = Some(NAMESPACE.into());
    subscription.metadata.generation = Some(1);
    subscription
}

#[tokio::test]
async fn applying_a_queue_spec_creates_a_managed_queue_with_its_settings() {
    let redis = RedisServer::start();
    let store = redis.store().await;
    let orders = queue(
        "orders",
        QueueSpec {
            message_timeout: Some(120),
            message_expiration: Some(3600),
            max_message_size: Some(4096),
            dead_letter: Some(DeadLetterSpec {
                queue_name: "orders-dead".into(),
                max_reservations: Some(4),
            }),
            ..Default::default()
        },
    );
    let info = declare::declare_queue(&store, &orders, &[]).await.unwrap();
    assert_eq!(
        info.config.dead_letter,
        Some(DeadLetter {
            queue: "orders-dead".into(),
            max_reservations: 4
        })
    );
    assert_eq!(info.project, "p");
    assert_eq!(info.config.queue_type, QueueType::Pull);
    assert_eq!(info.config.message_timeout, 120);
    assert_eq!(info.config.message_expiration, 3600);
    assert_eq!(info.config.max_message_size, 4096);
    assert_eq!(info.config.managed_by.as_deref(), Some("Queue p/orders"));

    let status = declare::queue_status(&orders, &Ok(info), &[]);
    let ready = &status.conditions[0];
    assert_eq!(
        (ready.type_.as_str(), ready.status.as_str()),
        ("Ready", "True")
    );
    assert_eq!(status.observed_generation, Some(1));
    assert_eq!(
        status.endpoint.as_deref(),
        Some("/3/projects/p/queues/orders")
    );
    assert_eq!((status.size, status.total_messages), (Some(0), Some(0)));
    assert_eq!(
        status.dead_letter.as_deref(),
        Some("/3/projects/p/queues/orders-dead after 4")
    );
}

#[tokio::test]
async fn changing_the_spec_changes_the_queue_and_a_removed_field_returns_to_its_default() {
    let redis = RedisServer::start();
    let store = redis.store().await;
    let mut orders = queue(
        "orders",
        QueueSpec {
            message_timeout: Some(120),
            ..Default::default()
        },
    );
    declare::declare_queue(&store, &orders, &[]).await.unwrap();
    orders.spec.message_timeout = None;
    orders.spec.message_expiration = Some(60);
    let info = declare::declare_queue(&store, &orders, &[]).await.unwrap();
    assert_eq!(info.config.message_timeout, 60, "back to the default");
    assert_eq!(info.config.message_expiration, 60);
}

#[tokio::test]
async fn subscriptions_merge_into_the_subscriber_list_by_name_and_invalid_ones_are_left_out() {
    let redis = RedisServer::start();
    let store = redis.store().await;
    let events = push_queue("events", QueueKind::Multicast);
    let mut elsewhere = subscription("zz-other-namespace", "events", "http://example.test/x");
    elsewhere.metadata.namespace = Some("other".into());
    let mut billing = subscription("b-billing", "events", "http://example.test/billing");
    (billing.spec.retries, billing.spec.retries_delay) = (Some(10), Some(30));
    let all = [
        billing,
        subscription("a-audit", "events", "ironmq:///audit"),
        subscription("c-bad", "events", "ftp://example.test/nope"),
        subscription("d-other-queue", "orders", "http://example.test/orders"),
        elsewhere,
    ];
    let mine = declare::subscriptions_of(&events, all.iter());
    let names: Vec<String> = mine
        .iter()
        .map(|s| s.metadata.name.clone().unwrap())
        .collect();
    assert_eq!(names, ["a-audit", "b-billing", "c-bad"]);

    let info = declare::declare_queue(&store, &events, &mine)
        .await
        .unwrap();
    let push = info.config.push.as_ref().unwrap();
    let stored: Vec<(&str, &str)> = push
        .subscribers
        .iter()
        .map(|s| (s.name.as_str(), s.url.as_str()))
        .collect();
    assert_eq!(
        stored,
        [
            ("a-audit", "ironmq:///audit"),
            ("b-billing", "http://example.test/billing")
        ]
    );
    assert_eq!((push.retries, push.retries_delay, push.timeout), (2, 5, 7));
    let own = |s: &ferromq::model::Subscriber| (s.retries, s.retries_delay);
    assert_eq!(own(&push.subscribers[0]), (None, None));
    assert_eq!(own(&push.subscribers[1]), (Some(10), Some(30)));
    let status = declare::queue_status(&events, &Ok(info), &mine);
    assert_eq!(status.subscribers, Some(2));

    let bad = declare::subscription_status(&all[2], Some(&events), None, declare::Circuit::Unknown);
    assert_eq!(bad.conditions[0].status, "False");
    assert_eq!(bad.conditions[0].reason, "InvalidSpec");
}

#[tokio::test]
async fn a_subscription_to_a_missing_or_pull_queue_is_not_ready() {
    let orphan = subscription("hook", "nowhere", "http://example.test/hook");
    let missing = declare::subscription_status(&orphan, None, None, declare::Circuit::Unknown);
    let condition = &missing.conditions[0];
    assert_eq!(
        (condition.status.as_str(), condition.reason.as_str()),
        ("False", "QueueNotFound")
    );
    assert!(
        condition.message.contains("nowhere"),
        "{}",
        condition.message
    );

    let pull = queue("nowhere", QueueSpec::default());
    let on_pull =
        declare::subscription_status(&orphan, Some(&pull), None, declare::Circuit::Unknown);
    assert_eq!(on_pull.conditions[0].reason, "PullQueue");

    let mut ready = push_queue("nowhere", QueueKind::Unicast);
    let redis = RedisServer::start();
    let store = redis.store().await;
    let mine = [&orphan];
    let outcome = declare::declare_queue(&store, &ready, &mine).await;
    ready.status = Some(declare::queue_status(
        &ready,
        &outcome.map_err(NotDeclared::from),
        &mine,
    ));
    let subscribed =
        declare::subscription_status(&orphan, Some(&ready), None, declare::Circuit::Unknown);
    assert_eq!(subscribed.conditions[0].status, "True");
    assert_eq!(subscribed.observed_generation, Some(1));
}

#[test]
fn a_subscription_with_a_circuit_breaker_shows_whether_it_is_paused() {
    let events = push_queue("events", QueueKind::Multicast);
    let plain = subscription("hook", "events", "http://example.test/hook");
    let closed =
        declare::subscription_status(&plain, Some(&events), None, declare::Circuit::Closed);
    assert_eq!(
        closed.conditions.len(),
        1,
        "no breaker, no Delivering condition"
    );

    let mut guarded = plain.clone();
    guarded.spec.pause_after_failures = Some(3);
    let open = declare::subscription_status(
        &guarded,
        Some(&events),
        None,
        declare::Circuit::Open {
            probe_at: 1_700_000_000_000,
        },
    );
    let delivering = &open.conditions[1];
    assert_eq!(
        (
            delivering.type_.as_str(),
            delivering.status.as_str(),
            delivering.reason.as_str()
        ),
        (declare::DELIVERING, "False", "CircuitOpen")
    );
    assert!(
        delivering.message.contains("3 failed deliveries")
            && delivering.message.contains("2023-11-14T22:13:20"),
        "{}",
        delivering.message
    );
    // Unknown keeps the last condition seen; closed turns it back to True.
    guarded.status = Some(open);
    let kept =
        declare::subscription_status(&guarded, Some(&events), None, declare::Circuit::Unknown);
    assert_eq!(kept.conditions[1].reason, "CircuitOpen");
    let resumed =
        declare::subscription_status(&guarded, Some(&events), None, declare::Circuit::Closed);
    assert_eq!(
        (
            resumed.conditions[1].status.as_str(),
            resumed.conditions[1].reason.as_str()
        ),
        ("True", "CircuitClosed")
    );
}

#[tokio::test]
async fn a_managed_queue_refuses_rest_configuration_changes_with_409_but_passes_messages() {
    let running = start_server().await;
    let client = &running.client;
    let store = running.redis.store().await;
    let events = push_queue("events", QueueKind::Multicast);
    let sub = subscription("audit", "events", "ironmq:///audit");
    declare::declare_queue(&store, &events, &[&sub])
        .await
        .unwrap();

    let refused = [
        client
            .put(&q("events"), json!({"queue": {"message_timeout": 300}}))
            .await,
        client
            .patch(&q("events"), json!({"queue": {"type": "pull"}}))
            .await,
        client
            .post(
                &format!("{}/subscribers", q("events")),
                json!({"subscribers": [{"name": "x", "url": "http://example.test/x"}]}),
            )
            .await,
        client
            .delete(
                &format!("{}/subscribers", q("events")),
                Some(json!({"subscribers": [{"name": "audit"}]})),
            )
            .await,
        client.delete(&q("events"), None).await,
    ];
    for (status, body) in refused {
        assert_eq!(status, StatusCode::CONFLICT, "{body}");
        assert!(
            body["msg"].as_str().unwrap().contains("Queue p/events"),
            "{body}"
        );
    }
    let (status, body) = client.get(&q("events")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["queue"]["managed_by"], "Queue p/events");
    assert_eq!(body["queue"]["message_timeout"], 60);

    // Messages flow: the push to the audit queue happens.
    let (status, _) = client.put(&q("audit"), json!({})).await;
    assert_eq!(status, StatusCode::OK);
    post_bodies(client, "events", &["hello"]).await;
    let got = common::reserve_within(client, "audit", Duration::from_secs(5)).await;
    assert_eq!(got[0]["body"], "hello");
}

#[tokio::test]
async fn deleting_the_resource_honours_its_deletion_policy() {
    let running = start_server().await;
    let client = &running.client;
    let store = running.redis.store().await;

    let mut kept = queue("kept", QueueSpec::default());
    kept.spec.deletion_policy = DeletionPolicy::Retain;
    declare::declare_queue(&store, &kept, &[]).await.unwrap();
    post_bodies(client, "kept", &["stays"]).await;
    assert_eq!(
        declare::forget_queue(&store, &kept).await.unwrap(),
        Forgotten::Retained
    );
    let info = store.queue_info("p", "kept").await.unwrap();
    assert_eq!((info.size, info.config.managed_by), (1, None));
    let (status, body) = client
        .patch(&q("kept"), json!({"queue": {"message_timeout": 300}}))
        .await;
    assert_eq!(status, StatusCode::OK, "unmanaged again: {body}");

    let mut gone = queue("gone", QueueSpec::default());
    gone.spec.deletion_policy = DeletionPolicy::Delete;
    declare::declare_queue(&store, &gone, &[]).await.unwrap();
    post_bodies(client, "gone", &["goes"]).await;
    assert_eq!(
        declare::forget_queue(&store, &gone).await.unwrap(),
        Forgotten::Deleted
    );
    assert!(matches!(
        store.queue_info("p", "gone").await,
        Err(StoreError::QueueNotFound)
    ));
    assert_eq!(
        declare::forget_queue(&store, &gone).await.unwrap(),
        Forgotten::NotOurs,
        "deleting twice is harmless"
    );
}

#[tokio::test]
async fn a_queue_another_resource_manages_is_neither_taken_over_nor_deleted() {
    let redis = RedisServer::start();
    let store = redis.store().await;
    let first = queue("shared", QueueSpec::default());
    declare::declare_queue(&store, &first, &[]).await.unwrap();

    // Same project through spec.project, from another namespace.
    let mut second = queue(
        "shared",
        QueueSpec {
            project: Some("p".into()),
            deletion_policy: DeletionPolicy::Delete,
            ..Default::default()
        },
    );
    second.metadata.namespace = Some("other".into());
    let outcome = declare::declare_queue(&store, &second, &[]).await;
    assert!(
        matches!(&outcome, Err(StoreError::Managed { by }) if by == "Queue p/shared"),
        "{outcome:?}"
    );
    let status = declare::queue_status(&second, &outcome.map_err(NotDeclared::from), &[]);
    assert_eq!(status.conditions[0].reason, "ManagedElsewhere");
    assert_eq!(
        declare::forget_queue(&store, &second).await.unwrap(),
        Forgotten::NotOurs
    );
    assert!(store.queue_info("p", "shared").await.is_ok());
}

#[tokio::test]
async fn a_queue_made_over_rest_is_taken_over_only_when_the_queue_asks_to_adopt_it() {
    let running = start_server().await;
    let client = &running.client;
    let store = running.redis.store().await;
    let (status, _) = client
        .put(&q("legacy"), json!({"queue": {"message_timeout": 60}}))
        .await;
    assert_eq!(status, StatusCode::OK);
    post_bodies(client, "legacy", &["kept"]).await;

    let mut legacy = queue(
        "legacy",
        QueueSpec {
            deletion_policy: DeletionPolicy::Delete,
            message_timeout: Some(120),
            ..Default::default()
        },
    );
    let outcome = declare::declare_queue(&store, &legacy, &[]).await;
    assert!(
        matches!(outcome, Err(StoreError::NotAdopted)),
        "{outcome:?}"
    );
    let status = declare::queue_status(&legacy, &outcome.map_err(NotDeclared::from), &[]);
    let ready = &status.conditions[0];
    assert_eq!(
        (ready.status.as_str(), ready.reason.as_str()),
        ("False", "QueueExists")
    );
    assert!(
        ready.message.contains(declare::ADOPT_ANNOTATION),
        "{}",
        ready.message
    );
    // Refused, so deleting the resource leaves the queue and its message alone.
    assert_eq!(
        declare::forget_queue(&store, &legacy).await.unwrap(),
        Forgotten::NotOurs
    );
    let info = store.queue_info("p", "legacy").await.unwrap();
    assert_eq!(
        (
            info.size,
            info.config.managed_by,
            info.config.message_timeout
        ),
        (1, None, 60)
    );

    legacy
        .metadata
        .annotations
        .get_or_insert_default()
        .insert(declare::ADOPT_ANNOTATION.into(), "true".into());
    let info = declare::declare_queue(&store, &legacy, &[]).await.unwrap();
    assert_eq!(info.config.managed_by.as_deref(), Some("Queue p/legacy"));
    assert_eq!((info.size, info.config.message_timeout), (1, 120));
}

#[tokio::test]
async fn a_queue_the_store_lost_is_recreated_by_the_next_apply() {
    let redis = RedisServer::start();
    let store = redis.store().await;
    let orders = queue("orders", QueueSpec::default());
    declare::declare_queue(&store, &orders, &[]).await.unwrap();
    let _: () = redis::cmd("FLUSHALL")
        .query(&mut redis.connection())
        .unwrap();
    assert!(store.queue_info("p", "orders").await.is_err());
    let info = declare::declare_queue(&store, &orders, &[]).await.unwrap();
    assert_eq!(info.config.managed_by.as_deref(), Some("Queue p/orders"));

    // Lost again, and a producer's post makes it anew before the next reconcile: a queue a
    // post made on the fly is the resource's to take, with the message.
    let _: () = redis::cmd("FLUSHALL")
        .query(&mut redis.connection())
        .unwrap();
    let server = TestServer::start(&redis).await;
    post_bodies(&server.client(), "orders", &["early"]).await;
    let info = declare::declare_queue(&store, &orders, &[]).await.unwrap();
    assert_eq!(info.config.managed_by.as_deref(), Some("Queue p/orders"));
    assert_eq!(info.size, 1);
}

#[tokio::test]
async fn a_resource_takes_back_the_queue_it_released() {
    let running = start_server().await;
    let client = &running.client;
    let store = running.redis.store().await;
    let orders = queue("orders", QueueSpec::default());
    declare::declare_queue(&store, &orders, &[]).await.unwrap();
    assert_eq!(
        declare::forget_queue(&store, &orders).await.unwrap(),
        Forgotten::Retained
    );
    // Used over REST meanwhile, then declared again by the same resource: no adoption needed.
    let (status, _) = client
        .patch(&q("orders"), json!({"queue": {"message_timeout": 300}}))
        .await;
    assert_eq!(status, StatusCode::OK);
    let info = declare::declare_queue(&store, &orders, &[]).await.unwrap();
    assert_eq!(info.config.managed_by.as_deref(), Some("Queue p/orders"));
    assert_eq!(info.config.message_timeout, 60, "the spec's settings again");

    // Another resource may not take it without asking.
    declare::forget_queue(&store, &orders).await.unwrap();
    let mut other = queue(
        "orders",
        QueueSpec {
            project: Some("p".into()),
            ..Default::default()
        },
    );
    other.metadata.namespace = Some("elsewhere".into());
    let outcome = declare::declare_queue(&store, &other, &[]).await;
    assert!(
        matches!(outcome, Err(StoreError::NotAdopted)),
        "{outcome:?}"
    );
}

#[tokio::test]
async fn a_push_queue_without_subscriptions_keeps_its_messages_until_one_arrives() {
    let running = start_server().await;
    let client = &running.client;
    let store = running.redis.store().await;
    let events = push_queue("events", QueueKind::Multicast);
    let outcome = declare::declare_queue(&store, &events, &[]).await;
    let status = declare::queue_status(&events, &outcome.map_err(NotDeclared::from), &[]);
    assert_eq!(status.conditions[0].reason, "NoSubscriptions");

    post_bodies(client, "events", &["wait for me"]).await;
    // Nothing delivers it: it stays for 2 s.
    let size = async || store.queue_info("p", "events").await.unwrap().size;
    quiet(Duration::from_secs(2), || async { size().await == 1 }).await;
    assert_eq!(size().await, 1);

    let hook = Subscriber::start(Answer::Always(200)).await;
    let sub = subscription("hook", "events", &hook.url);
    declare::declare_queue(&store, &events, &[&sub])
        .await
        .unwrap();
    assert!(hook.wait_for(1, Duration::from_secs(10)).await);
    assert_eq!(hook.received()[0].body, "wait for me");
}

#[tokio::test]
async fn rest_and_resources_share_one_settings_path_and_its_rules() {
    let redis = RedisServer::start();
    let store = redis.store().await;
    let out_of_range = QueueSettings {
        message_timeout: Some(5),
        ..Default::default()
    };
    for by in [ChangedBy::Api, ChangedBy::Resource("Queue p/x")] {
        let refused = store.apply_queue("p", "x", &out_of_range, true, by).await;
        assert!(
            matches!(refused, Err(StoreError::Invalid(_))),
            "{refused:?}"
        );
    }
    let mut own_error_queue = push_queue("loop", QueueKind::Unicast);
    own_error_queue.spec.push.as_mut().unwrap().error_queue = Some("loop".into());
    let refused = declare::declare_queue(&store, &own_error_queue, &[]).await;
    assert!(
        matches!(refused, Err(StoreError::Invalid(_))),
        "{refused:?}"
    );
}
