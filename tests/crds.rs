//! The generated CRDs: identical to the files in `crds/`, structural as the API server requires,
//! and their schemas (JSON schema and CEL rules) accept the examples and refuse bad manifests.

use common::manifests::{bad_manifests, queue, subscription};
use ferromq::k8s::crd_yaml;
use ferromq::k8s::resources::{Queue, Subscription};
use kube::CustomResourceExt;
use kube::core::cel::Validator;
use serde_json::{Value, json};
use std::path::Path;

const CRD_FILE: &str = "crds/ferromq.dev.yaml";

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn schema_of<K: CustomResourceExt>() -> Value {
    let crd = K::crd();
    serde_json::to_value(
        crd.spec.versions[0]
            .schema
            .as_ref()
            .and_then(|s| s.open_api_v3_schema.as_ref())
            .expect("an openAPIV3Schema"),
    )
    .unwrap()
}

/// Every problem the API server and `kubectl apply` would report for `object`.
fn problems(object: &Value) -> Vec<String> {
    let schema = match object["kind"].as_str() {
        Some("Queue") => schema_of::<Queue>(),
        Some("Subscription") => schema_of::<Subscription>(),
        other => panic!("not a ferromq kind: {other:?}"),
    };
    let mut found: Vec<String> = jsonschema::validator_for(&schema)
        .expect("a valid JSON schema")
        .iter_errors(object)
        .map(|e| format!("{}: {e}", e.instance_path()))
        .collect();
    if let Err(errors) = Validator::new().validate(&schema, object, None) {
        found.extend(errors.iter().map(|e| e.to_string()));
    }
    found
}

fn documents(path: &Path) -> Vec<Value> {
    let text = std::fs::read_to_string(path).unwrap();
    serde_saphyr::from_multiple::<Value>(&text)
        .unwrap()
        .into_iter()
        .filter(|d| !d.is_null())
        .collect()
}

#[test]
fn generated_crds_match_the_files_in_crds() {
    let generated = crd_yaml().unwrap();
    let committed = std::fs::read_to_string(root().join(CRD_FILE)).unwrap();
    assert!(
        generated == committed,
        "{CRD_FILE} differs from the code: run `cargo run -- crdgen > {CRD_FILE}`"
    );
}

/// The API server refuses a CRD whose schema is not structural: every node typed (or
/// explicitly open), no `anyOf`/`oneOf`/`allOf` carrying types, no `$ref`, `nullable` rather
/// than a `null` type.
fn assert_structural(schema: &Value, at: &str) {
    let node = schema
        .as_object()
        .unwrap_or_else(|| panic!("{at}: not an object"));
    assert!(!node.contains_key("$ref"), "{at}: $ref");
    let open = node.get("x-kubernetes-preserve-unknown-fields") == Some(&json!(true))
        || node.get("x-kubernetes-int-or-string") == Some(&json!(true));
    match node.get("type") {
        Some(Value::String(t)) => assert_ne!(t, "null", "{at}: type null"),
        Some(other) => panic!("{at}: type must be one string, not {other}"),
        None => assert!(open, "{at}: no type"),
    }
    for combinator in ["anyOf", "oneOf", "allOf"] {
        if let Some(Value::Array(branches)) = node.get(combinator) {
            for branch in branches {
                assert!(
                    branch.get("type").is_none() && branch.get("properties").is_none(),
                    "{at}: {combinator} may only restrict, not declare types: {branch}"
                );
            }
        }
    }
    if let Some(Value::Object(properties)) = node.get("properties") {
        for (name, property) in properties {
            assert_structural(property, &format!("{at}.{name}"));
        }
    }
    if let Some(items) = node.get("items") {
        assert_structural(items, &format!("{at}[]"));
    }
    if let Some(Value::Object(_)) = node.get("additionalProperties") {
        assert_structural(&node["additionalProperties"], &format!("{at}{{}}"));
    }
}

#[test]
fn crd_schemas_are_structural() {
    assert_structural(&schema_of::<Queue>(), "Queue");
    assert_structural(&schema_of::<Subscription>(), "Subscription");
}

#[test]
fn the_crds_carry_printer_columns_short_names_and_the_status_subresource() {
    let queue = serde_json::to_value(Queue::crd()).unwrap();
    assert_eq!(queue["spec"]["names"]["shortNames"], json!(["mq"]));
    assert_eq!(queue["spec"]["names"]["categories"], json!(["ferromq"]));
    assert_eq!(queue["spec"]["scope"], "Namespaced");
    let version = &queue["spec"]["versions"][0];
    assert_eq!(version["name"], "v1alpha1");
    assert_eq!(version["subresources"]["status"], json!({}));
    let columns: Vec<&str> = version["additionalPrinterColumns"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    assert_eq!(columns, ["Type", "Size", "Ready", "Age"]);
    let subscription = serde_json::to_value(Subscription::crd()).unwrap();
    assert_eq!(
        subscription["spec"]["names"]["categories"],
        json!(["ferromq"])
    );
}

#[test]
fn the_example_manifests_are_valid() {
    let mut checked = 0;
    for entry in std::fs::read_dir(root().join("examples")).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_none_or(|e| e != "yaml") {
            continue;
        }
        for document in documents(&path) {
            let found = problems(&document);
            assert!(
                found.is_empty(),
                "{}: {found:?}\n{document}",
                path.display()
            );
            checked += 1;
        }
    }
    assert!(checked >= 6, "only {checked} example documents");
}

#[test]
fn bad_manifests_are_refused_with_a_reason() {
    for bad in bad_manifests() {
        let found = problems(&bad.manifest);
        assert!(
            found.iter().any(|p| p.contains(bad.says)),
            "{}: expected a problem mentioning {:?}, got {found:?}",
            bad.what,
            bad.says
        );
    }
}

#[test]
fn fields_that_cannot_change_are_refused_on_update() {
    let schema = schema_of::<Subscription>();
    let old = subscription(json!({"queue": "events", "url": "http://example.test/a"}));
    let moved = subscription(json!({"queue": "orders", "url": "http://example.test/a"}));
    let errors = Validator::new()
        .validate(&schema, &moved, Some(&old))
        .expect_err("spec.queue is immutable");
    assert!(
        errors
            .iter()
            .any(|e| e.to_string().contains("spec.queue cannot change"))
    );
    let new_url = subscription(json!({"queue": "events", "url": "http://example.test/b"}));
    assert!(
        Validator::new()
            .validate(&schema, &new_url, Some(&old))
            .is_ok()
    );

    let schema = schema_of::<Queue>();
    let old = queue(json!({"type": "pull"}));
    let moved = queue(json!({"type": "pull", "project": "other"}));
    let errors = Validator::new()
        .validate(&schema, &moved, Some(&old))
        .expect_err("spec.project is immutable");
    assert!(
        errors
            .iter()
            .any(|e| e.to_string().contains("spec.project cannot change"))
    );
}
