//! The CRDs against a real Kubernetes API server (`common::kube`: kube-apiserver and etcd on
//! loopback, built by `make kube-tools`; `make test` runs these): they apply with no warning,
//! every example applies, and every bad manifest is refused with the expected message and
//! field, by the server's own OpenAPI and CEL validation.

use common::kube::KubeApi;
use common::manifests::{bad_manifests, queue, subscription};
use serde_json::json;
use std::path::Path;

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

#[test]
#[ignore = "needs kube-apiserver and etcd (make kube-tools); make test runs it"]
fn crds_examples_and_bad_manifests_on_a_real_api_server() {
    let api = KubeApi::start_with_crds(&["shop"]);

    let mut examples = 0;
    for entry in std::fs::read_dir(root().join("examples")).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "yaml") {
            let text = std::fs::read_to_string(&path).unwrap();
            let (applied, warnings) = api
                .apply(&text)
                .unwrap_or_else(|e| panic!("{} refused: {e}", path.display()));
            assert!(warnings.trim().is_empty(), "{}: {warnings}", path.display());
            examples += applied.lines().filter(|l| l.ends_with(" created")).count();
        }
    }
    assert!(examples >= 6, "only {examples} example objects created");

    let mut refused = 0;
    for bad in bad_manifests() {
        let refusal = api
            .apply(&bad.manifest.to_string())
            .err()
            .unwrap_or_else(|| {
                panic!("{}: accepted by the API server", bad.what);
            });
        assert!(
            refusal.contains(bad.server_says) && refusal.contains(&format!("{}:", bad.field)),
            "{}: expected {:?} at {}, got: {refusal}",
            bad.what,
            bad.server_says,
            bad.field
        );
        refused += 1;
    }
    println!("{examples} example objects created; {refused} bad manifests refused");

    // Fields that cannot change, checked against the stored object (transition rules).
    let original = queue(json!({"type": "pull", "project": "billing"}));
    api.apply(&original.to_string()).expect("a Queue");
    let moved = queue(json!({"type": "pull", "project": "other"}));
    let refusal = api.apply(&moved.to_string()).expect_err("project changed");
    assert!(
        refusal.contains("spec.project cannot change") && refusal.contains("spec.project:"),
        "{refusal}"
    );
    let hook = subscription(json!({"queue": "events", "url": "http://example.test/a"}));
    api.apply(&hook.to_string()).expect("a Subscription");
    let elsewhere = subscription(json!({"queue": "orders", "url": "http://example.test/a"}));
    let refusal = api
        .apply(&elsewhere.to_string())
        .expect_err("queue changed");
    assert!(
        refusal.contains("spec.queue cannot change") && refusal.contains("spec.queue:"),
        "{refusal}"
    );
}
