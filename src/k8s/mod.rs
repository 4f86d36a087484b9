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

use kube::CustomResourceExt;

/// The CRDs as one YAML stream, as `ferromq crdgen` prints them and `crds/` holds them.
pub fn crd_yaml() -> Result<String, serde_saphyr::ser::Error> {
    let mut out = String::new();
    for crd in [resources::Queue::crd(), resources::Subscription::crd()] {
        out.push_str("---\n");
        out.push_str(&serde_saphyr::to_string(&crd)?);
    }
    Ok(out)
}
