//! Kubernetes: the `Queue` and `Subscription` custom resources, the plain logic that declares
//! them in the store (shared by the controller and standalone mode), and the controller.
//!
//! * `resources`: the CRD types, their schema rules and status.
//! * `declare`: from resources to the store, and the status that follows. No Kubernetes API.
//! * `manifests`: Queue and Subscription manifests read from YAML files (standalone mode).
//! * `controller`: the kube-rs controllers: watches, finalizers, status, events.
//! * `operator`: the `ferromq controller` job: leader election, health and metrics endpoints.

pub mod controller;
pub mod declare;
pub mod manifests;
pub mod operator;
pub mod resources;

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::CustomResourceExt;

/// The CRDs as one YAML stream, as `ferromq crdgen` prints them and `crds/` holds them.
pub fn crd_yaml() -> Result<String, serde_saphyr::ser::Error> {
    let mut out = String::new();
    for crd in crds() {
        out.push_str("---\n");
        out.push_str(&serde_saphyr::to_string(&crd)?);
    }
    Ok(out)
}

/// The CRDs as the API server takes them: it knows the integer formats int32 and int64 only,
/// and warns about the `uint32` and `uint64` the schema generator writes for unsigned fields
/// (their `minimum: 0` stays).
pub fn crds() -> Vec<CustomResourceDefinition> {
    [resources::Queue::crd(), resources::Subscription::crd()]
        .into_iter()
        .map(|crd| {
            let mut json = serde_json::to_value(crd).expect("a CRD is JSON");
            drop_unsigned_formats(&mut json);
            serde_json::from_value(json).expect("still a CRD")
        })
        .collect()
}

fn drop_unsigned_formats(node: &mut serde_json::Value) {
    match node {
        serde_json::Value::Object(map) => {
            if map
                .get("format")
                .is_some_and(|f| f == "uint32" || f == "uint64")
            {
                map.remove("format");
            }
            map.values_mut().for_each(drop_unsigned_formats);
        }
        serde_json::Value::Array(items) => items.iter_mut().for_each(drop_unsigned_formats),
        _ => {}
    }
}
