//! `ferromq controller` processes against a real Kubernetes API server (`common::kube`, built by
//! `make kube-tools`; `make test` runs this), authenticated as the chart's ServiceAccount with
//! exactly the chart's roles (rendered by `helm template`, applied, and a token minted for the
//! account): a permission the code needs and the chart lacks fails here. Two controllers elect a
//! leader through the Lease; Queues and Subscriptions become Ready and their status follows the
//! spec; the leader's death hands the Lease over; a flushed Redis is repaired; a Subscription's
//! circuit breaker shows in its status and Events; deleting a Queue runs its finalizer and
//! leaves an Event.

use common::kube::{Killed, KubeApi, helm_path};
use common::manifests::{queue, subscription};
use common::subscriber::{Answer, Subscriber};
use common::{RedisServer, ServerProcess, free_port};
use reqwest::StatusCode;
use serde_json::{Value, json};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const LEASE: &str = "ferromq-controller";
/// The Queue `events` of namespace (project) `shop` over REST.
const QUEUE_PATH: &str = "/3/projects/shop/queues/events";

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// The chart's ServiceAccounts and roles, as `helm template` renders them with default values.
fn chart_rbac() -> Vec<Value> {
    let out = Command::new(helm_path())
        .args(["template", "ferromq"])
        .arg(root().join("charts/ferromq"))
        .args(["--namespace", "ferromq"])
        .output()
        .expect("helm (make chart-tools)");
    assert!(out.status.success(), "{out:?}");
    let text = String::from_utf8(out.stdout).unwrap();
    let kinds = [
        "ServiceAccount",
        "ClusterRole",
        "ClusterRoleBinding",
        "Role",
        "RoleBinding",
    ];
    let objects: Vec<Value> = serde_saphyr::from_multiple::<Value>(&text)
        .unwrap()
        .into_iter()
        .filter(|o| kinds.iter().any(|k| o["kind"] == *k))
        .collect();
    assert!(objects.len() >= 5, "RBAC objects rendered: {objects:?}");
    objects
}

/// `ferromq controller` named `name`, as the chart runs it (leader election on).
fn controller(kubeconfig: &Path, redis: &RedisServer, name: &str) -> Killed {
    let child = Command::new(env!("CARGO_BIN_EXE_ferromq"))
        .arg("controller")
        .env("KUBECONFIG", kubeconfig)
        .env("REDIS_URL", redis.url())
        .env("POD_NAMESPACE", "ferromq")
        .env("POD_NAME", name)
        .env("FERROMQ_LEASE_NAME", LEASE)
        .env(
            "FERROMQ_HEALTH_LISTEN",
            format!("127.0.0.1:{}", free_port()),
        )
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    Killed(child)
}

/// `kubectl get -o json` of one object, as the admin.
fn get(api: &KubeApi, args: &[&str]) -> Option<Value> {
    let mut all = vec!["get", "-o", "json"];
    all.extend_from_slice(args);
    let out = api.kubectl(&all);
    out.status
        .success()
        .then(|| serde_json::from_slice(&out.stdout).unwrap())
}

fn wait_for(what: &str, limit: Duration, mut check: impl FnMut() -> bool) -> Duration {
    let start = Instant::now();
    while !check() {
        assert!(start.elapsed() < limit, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(250));
    }
    start.elapsed()
}

/// Ready, with the status describing the current generation.
fn ready(object: &Value) -> bool {
    let status = &object["status"];
    status["observedGeneration"] == object["metadata"]["generation"]
        && status["conditions"].as_array().is_some_and(|c| {
            c.iter()
                .any(|c| c["type"] == "Ready" && c["status"] == "True")
        })
}

fn holder(api: &KubeApi) -> Option<String> {
    get(api, &["lease", LEASE, "-n", "ferromq"])?["spec"]["holderIdentity"]
        .as_str()
        .map(String::from)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs kube-apiserver and etcd (make kube-tools); make test runs it"]
async fn controllers_with_the_charts_rbac_on_a_real_api_server() {
    let api = KubeApi::start_with_crds(&["shop", "ferromq"]);
    for object in chart_rbac() {
        api.apply(&object.to_string())
            .unwrap_or_else(|e| panic!("{}: {e}", object["metadata"]["name"]));
    }
    let token = api.kubectl(&[
        "create",
        "token",
        "ferromq-controller",
        "-n",
        "ferromq",
        "--duration=1h",
    ]);
    assert!(token.status.success(), "{token:?}");
    let kubeconfig = api.kubeconfig_for(
        "controller",
        String::from_utf8(token.stdout).unwrap().trim(),
    );
    let redis = RedisServer::start();
    let data_plane = ServerProcess::start(&redis).await;
    let rest = data_plane.client();
    let mut controllers = vec![
        ("a", controller(&kubeconfig, &redis, "a")),
        ("b", controller(&kubeconfig, &redis, "b")),
    ];

    // A Queue and a Subscription become Ready; the stored queue has the spec.
    let events =
        queue(json!({"type": "multicast", "messageTimeout": 90, "deletionPolicy": "Delete"}));
    api.apply(&events.to_string()).unwrap();
    let hook = subscription(json!({"queue": "events", "url": "http://example.test/hook"}));
    api.apply(&hook.to_string()).unwrap();
    let took = wait_for(
        "the Queue and Subscription Ready",
        Duration::from_secs(60),
        || {
            get(&api, &["queue", "events", "-n", "shop"]).is_some_and(|q| ready(&q))
                && get(&api, &["subscription", "hook", "-n", "shop"]).is_some_and(|s| ready(&s))
        },
    );
    println!("Queue and Subscription Ready in {took:?}");
    let leader = holder(&api).expect("a controller holds the Lease");
    let (status, info) = rest.get(QUEUE_PATH).await;
    assert_eq!(status, StatusCode::OK, "{info}");
    assert_eq!(info["queue"]["message_timeout"], 90);
    assert_eq!(
        info["queue"]["push"]["subscribers"][0]["url"],
        "http://example.test/hook"
    );

    // The leader dies: the other takes the Lease and follows a spec change.
    let at = controllers
        .iter()
        .position(|(name, _)| *name == leader)
        .unwrap();
    drop(controllers.remove(at));
    let took = wait_for(
        "another controller to take the Lease",
        Duration::from_secs(40),
        || holder(&api).is_some_and(|h| h != leader),
    );
    println!("Lease taken over {took:?} after the leader {leader} was killed");
    let changed =
        queue(json!({"type": "multicast", "messageTimeout": 120, "deletionPolicy": "Delete"}));
    api.apply(&changed.to_string()).unwrap();
    wait_for(
        "status of the new generation",
        Duration::from_secs(60),
        || {
            get(&api, &["queue", "events", "-n", "shop"])
                .is_some_and(|q| q["metadata"]["generation"] == 2 && ready(&q))
        },
    );
    let (_, info) = rest.get(QUEUE_PATH).await;
    assert_eq!(info["queue"]["message_timeout"], 120);

    // Redis loses everything: the periodic reconcile declares the queue again.
    let _: () = redis::cmd("FLUSHALL")
        .query(
            &mut redis::Client::open(redis.url())
                .unwrap()
                .get_connection()
                .unwrap(),
        )
        .unwrap();
    let started = Instant::now();
    loop {
        let (status, info) = rest.get(QUEUE_PATH).await;
        if status == StatusCode::OK {
            assert_eq!(info["queue"]["message_timeout"], 120);
            assert_eq!(
                info["queue"]["push"]["subscribers"]
                    .as_array()
                    .map(Vec::len),
                Some(1)
            );
            break;
        }
        // Repaired by the periodic reconcile, once a minute.
        assert!(
            started.elapsed() < Duration::from_secs(150),
            "drift not repaired: {info}"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    println!("flushed queue declared again after {:?}", started.elapsed());

    // A Subscription whose subscriber keeps failing is paused by its circuit breaker: its
    // status says so (Delivering False, CircuitOpen) and an Event records it; once it answers
    // again, a probe resumes it (Delivering True, CircuitClosed) and another Event says so.
    let failing = Subscriber::start(Answer::switch(500)).await;
    let mut guarded = subscription(json!({
        "queue": "events", "url": failing.url, "pauseAfterFailures": 2, "probeInterval": 2,
    }));
    guarded["metadata"]["name"] = json!("guarded");
    api.apply(&guarded.to_string()).unwrap();
    wait_for(
        "the guarded Subscription Ready",
        Duration::from_secs(60),
        || get(&api, &["subscription", "guarded", "-n", "shop"]).is_some_and(|s| ready(&s)),
    );
    let delivering = |reason: &str| {
        get(&api, &["subscription", "guarded", "-n", "shop"]).is_some_and(|s| {
            s["status"]["conditions"].as_array().is_some_and(|c| {
                c.iter()
                    .any(|c| c["type"] == "Delivering" && c["reason"] == reason)
            })
        })
    };
    // The queue takes the subscriber in at its next reconcile; post until it is pushed to.
    let started = Instant::now();
    while failing.count() < 2 {
        assert!(
            started.elapsed() < Duration::from_secs(90),
            "never pushed to"
        );
        let message = json!({"messages": [{"body": "m"}, {"body": "n"}]});
        rest.post(&format!("{QUEUE_PATH}/messages"), message).await;
        tokio::time::sleep(Duration::from_secs(2)).await;
    }
    let poke = |n: u32| {
        // Any change to the resource reconciles it at once.
        let poked = api.kubectl(&[
            "annotate",
            "--overwrite",
            "subscription",
            "guarded",
            "-n",
            "shop",
            &format!("test/poke={n}"),
        ]);
        assert!(poked.status.success(), "{poked:?}");
    };
    let mut pokes = 0;
    wait_for(
        "Delivering False, CircuitOpen",
        Duration::from_secs(60),
        || {
            pokes += 1;
            poke(pokes);
            delivering("CircuitOpen")
        },
    );
    failing.set_status(200);
    let (before, started) = (failing.count(), Instant::now());
    while !delivering("CircuitClosed") {
        if started.elapsed() > Duration::from_secs(60) {
            let store = redis.store().await;
            let open = store.open_circuits("shop", "events").await;
            let status = get(&api, &["subscription", "guarded", "-n", "shop"]);
            panic!(
                "not resumed: {} pushes before the switch, {} after; open: {open:?}; {}",
                before,
                failing.count() - before,
                status.map(|s| s["status"].clone()).unwrap_or_default()
            );
        }
        pokes += 1;
        poke(pokes);
        tokio::time::sleep(Duration::from_millis(1000)).await;
    }
    let subscription_event = |list: &Value, reason: &str| {
        list["items"].as_array().unwrap().iter().any(|e| {
            e["reason"] == reason
                && e["regarding"]["kind"] == "Subscription"
                && e["regarding"]["name"] == "guarded"
        })
    };
    wait_for("the breaker's Events", Duration::from_secs(20), || {
        get(&api, &["events.events.k8s.io", "-n", "shop"]).is_some_and(|list| {
            subscription_event(&list, "CircuitOpened") && subscription_event(&list, "CircuitClosed")
        })
    });
    let deleted = api.kubectl(&["delete", "subscription", "guarded", "-n", "shop"]);
    assert!(deleted.status.success(), "{deleted:?}");

    // Deleting a Queue runs its finalizer, as its deletionPolicy says, and leaves an Event:
    // Delete removes the stored queue, Retain keeps it (unmanaged).
    let mut kept = queue(json!({"type": "pull", "deletionPolicy": "Retain"}));
    kept["metadata"]["name"] = json!("kept");
    api.apply(&kept.to_string()).unwrap();
    wait_for("the Retain Queue Ready", Duration::from_secs(60), || {
        get(&api, &["queue", "kept", "-n", "shop"]).is_some_and(|q| ready(&q))
    });
    for (kind, name) in [
        ("subscription", "hook"),
        ("queue", "events"),
        ("queue", "kept"),
    ] {
        let deleted = api.kubectl(&["delete", kind, name, "-n", "shop", "--timeout=60s"]);
        assert!(deleted.status.success(), "{deleted:?}");
    }
    let (status, _) = rest.get(QUEUE_PATH).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _) = rest.get("/3/projects/shop/queues/kept").await;
    assert_eq!(
        status,
        StatusCode::OK,
        "a retained queue stays in the store"
    );
    let event = |list: &Value, reason: &str, name: &str| {
        list["items"].as_array().unwrap().iter().any(|e| {
            e["reason"] == reason
                && e["regarding"]["kind"] == "Queue"
                && e["regarding"]["name"] == name
        })
    };
    wait_for("the finalizers' Events", Duration::from_secs(20), || {
        get(&api, &["events.events.k8s.io", "-n", "shop"]).is_some_and(|list| {
            event(&list, "Deleted", "events") && event(&list, "Retained", "kept")
        })
    });
}
