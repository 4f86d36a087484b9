//! Queue and Subscription manifests read from YAML files, for standalone mode: the same
//! resources `kubectl apply` takes, checked against the same CEL rules the API server runs.

use super::resources::{Queue, Subscription};
use kube::core::cel::Validator;
use kube::{CustomResourceExt, ResourceExt};
use serde_json::Value;
use std::path::{Path, PathBuf};

/// The resources found in some files.
#[derive(Debug, Default)]
pub struct Manifests {
    pub queues: Vec<Queue>,
    pub subscriptions: Vec<Subscription>,
}

/// Reads every `.yaml`/`.yml` file of each path (a file, or a directory, not recursed into).
/// Resources without a namespace are put in `namespace`. Documents of other kinds are skipped
/// with a warning, so a directory may also hold other manifests.
pub fn load(paths: &[PathBuf], namespace: &str) -> Result<Manifests, String> {
    let mut manifests = Manifests::default();
    for path in paths {
        for file in yaml_files(path)? {
            let text = std::fs::read_to_string(&file)
                .map_err(|e| format!("cannot read {}: {e}", file.display()))?;
            read_into(&mut manifests, &text, namespace)
                .map_err(|e| format!("{}: {e}", file.display()))?;
        }
    }
    Ok(manifests)
}

fn yaml_files(path: &Path) -> Result<Vec<PathBuf>, String> {
    if !path.is_dir() {
        return Ok(vec![path.to_path_buf()]);
    }
    let entries =
        std::fs::read_dir(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    let mut files: Vec<PathBuf> = entries
        .filter_map(|entry| entry.ok().map(|e| e.path()))
        .filter(|p| {
            p.is_file()
                && p.extension()
                    .is_some_and(|ext| ext == "yaml" || ext == "yml")
        })
        .collect();
    files.sort();
    Ok(files)
}

/// Adds the resources of one YAML stream.
pub fn read_into(manifests: &mut Manifests, text: &str, namespace: &str) -> Result<(), String> {
    let documents: Vec<Value> = serde_saphyr::from_multiple(text).map_err(|e| e.to_string())?;
    for (index, document) in documents.into_iter().enumerate() {
        if document.is_null() {
            continue;
        }
        let api_version = document["apiVersion"].as_str().unwrap_or_default();
        let kind = document["kind"].as_str().unwrap_or_default();
        if api_version != "ferromq.dev/v1alpha1" {
            tracing::warn!(
                api_version,
                kind,
                "skipping a document that is not a ferromq resource"
            );
            continue;
        }
        match kind {
            "Queue" => {
                let mut queue: Queue = parse(document, index)?;
                in_namespace(&mut queue, namespace);
                check_rules::<Queue>(&queue, &format!("Queue {}", queue.name_any()))?;
                manifests.queues.push(queue);
            }
            "Subscription" => {
                let mut subscription: Subscription = parse(document, index)?;
                in_namespace(&mut subscription, namespace);
                let what = format!("Subscription {}", subscription.name_any());
                check_rules::<Subscription>(&subscription, &what)?;
                manifests.subscriptions.push(subscription);
            }
            other => return Err(format!("document {index}: unknown ferromq kind {other:?}")),
        }
    }
    Ok(())
}

fn parse<K: serde::de::DeserializeOwned>(document: Value, index: usize) -> Result<K, String> {
    let resource: K =
        serde_path_to_error::deserialize(document).map_err(|e| format!("document {index}: {e}"))?;
    Ok(resource)
}

fn in_namespace<K: ResourceExt>(resource: &mut K, namespace: &str) {
    if resource.namespace().is_none() {
        resource.meta_mut().namespace = Some(namespace.to_string());
    }
}

/// The `x-kubernetes-validations` rules of the CRD, evaluated as the API server would.
fn check_rules<K: CustomResourceExt + ResourceExt + serde::Serialize>(
    resource: &K,
    what: &str,
) -> Result<(), String> {
    if resource
        .meta()
        .name
        .as_deref()
        .unwrap_or_default()
        .is_empty()
    {
        return Err(format!("{what}: metadata.name is required"));
    }
    let crd = K::crd();
    let schema = crd.spec.versions[0]
        .schema
        .as_ref()
        .and_then(|s| s.open_api_v3_schema.as_ref())
        .and_then(|s| serde_json::to_value(s).ok())
        .ok_or_else(|| format!("{what}: the CRD has no schema"))?;
    let object = serde_json::to_value(resource).map_err(|e| format!("{what}: {e}"))?;
    Validator::new()
        .validate(&schema, &object, None)
        .map_err(|errors| {
            let messages: Vec<String> = errors.iter().map(|e| e.to_string()).collect();
            format!("{what}: {}", messages.join("; "))
        })
}
