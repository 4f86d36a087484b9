//! Queue and Subscription manifests read from YAML files, for standalone mode. Each is checked
//! as `kubectl apply` and the API server would check it (the CRD's schema, no unknown fields,
//! its CEL rules) and as the store would (settings ranges, deliverable subscribers), so that a
//! bad file is reported by name before anything is stored.

use super::declare;
use super::resources::{Queue, Subscription};
use crate::model::ChangedBy;
use kube::core::cel::Validator;
use kube::{CustomResourceExt, ResourceExt};
use serde_json::Value;
use std::path::{Path, PathBuf};

/// The resources found in some files, and the file each came from (same order).
#[derive(Debug, Default)]
pub struct Manifests {
    pub queues: Vec<Queue>,
    pub subscriptions: Vec<Subscription>,
    pub queue_files: Vec<PathBuf>,
    pub subscription_files: Vec<PathBuf>,
}

impl Manifests {
    /// The file a Queue came from, for messages.
    pub fn file_of(&self, queue: &Queue) -> String {
        self.queues
            .iter()
            .position(|q| std::ptr::eq(q, queue))
            .and_then(|i| self.queue_files.get(i))
            .map(|f| f.display().to_string())
            .unwrap_or_default()
    }
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
            read_into(&mut manifests, &text, namespace, &file)
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

/// Adds the resources of one YAML stream (from `file`), each checked in full.
pub fn read_into(
    manifests: &mut Manifests,
    text: &str,
    namespace: &str,
    file: &Path,
) -> Result<(), String> {
    let documents: Vec<Value> = serde_saphyr::from_multiple(text).map_err(|e| e.to_string())?;
    for (index, document) in documents.into_iter().enumerate() {
        if document.is_null() {
            continue;
        }
        if !document.is_object() {
            return Err(format!(
                "document {index} is not a resource (a mapping with apiVersion and kind)"
            ));
        }
        let api_version = document["apiVersion"].as_str().unwrap_or_default();
        let kind = document["kind"].as_str().unwrap_or_default().to_string();
        if api_version != "ferromq.dev/v1alpha1" {
            // A typo in our own group would otherwise drop the resource, and release its queue.
            if api_version.starts_with("ferromq.dev") {
                return Err(format!(
                    "document {index}: apiVersion {api_version:?} is not served: use ferromq.dev/v1alpha1"
                ));
            }
            tracing::warn!(
                api_version,
                kind,
                "skipping a document that is not a ferromq resource"
            );
            continue;
        }
        let name = document["metadata"]["name"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        let what = format!("{kind} {name:?} (document {index})");
        match kind.as_str() {
            "Queue" => {
                let mut queue: Queue = checked(document, &what)?;
                in_namespace(&mut queue, namespace);
                crate::model::check_queue_name(&name)
                    .and_then(|()| crate::model::check_project(&queue.project()))
                    .map_err(|e| format!("{what}: {e}"))?;
                let settings = declare::settings_of(&queue, &[]);
                let manager = queue.manager();
                crate::settings::apply(None, &settings, &name, ChangedBy::Resource(&manager))
                    .map_err(|e| format!("{what}: {}", e.0))?;
                let twin = manifests.queues.iter().position(|q| {
                    same(q, &queue) || (q.project() == queue.project() && q.name_any() == name)
                });
                if let Some(i) = twin {
                    return Err(format!(
                        "{what}: queue {name:?} of project {} is declared twice (also in {})",
                        queue.project(),
                        manifests.queue_files[i].display()
                    ));
                }
                manifests.queues.push(queue);
                manifests.queue_files.push(file.to_path_buf());
            }
            "Subscription" => {
                let mut subscription: Subscription = checked(document, &what)?;
                in_namespace(&mut subscription, namespace);
                declare::subscriber_of(&subscription).map_err(|e| format!("{what}: {e}"))?;
                let twin = manifests
                    .subscriptions
                    .iter()
                    .position(|s| same(s, &subscription));
                if let Some(i) = twin {
                    return Err(format!(
                        "{what}: declared twice (also in {})",
                        manifests.subscription_files[i].display()
                    ));
                }
                manifests.subscriptions.push(subscription);
                manifests.subscription_files.push(file.to_path_buf());
            }
            other => return Err(format!("document {index}: unknown ferromq kind {other:?}")),
        }
    }
    Ok(())
}

fn same<K: ResourceExt>(a: &K, b: &K) -> bool {
    a.namespace() == b.namespace() && a.name_any() == b.name_any()
}

fn in_namespace<K: ResourceExt>(resource: &mut K, namespace: &str) {
    if resource.namespace().is_none() {
        resource.meta_mut().namespace = Some(namespace.to_string());
    }
}

/// The resource a document declares, if the API server would take it: a name, the CRD's
/// JSON schema (types, ranges, enums, patterns, sizes), no field the schema does not know
/// (`kubectl apply` refuses those), and the CRD's CEL rules.
fn checked<K>(mut document: Value, what: &str) -> Result<K, String>
where
    K: CustomResourceExt + serde::de::DeserializeOwned,
{
    if document["metadata"]["name"]
        .as_str()
        .is_none_or(str::is_empty)
    {
        return Err(format!("{what}: metadata.name is required"));
    }
    // The schema's `nullable` fields: a null is the same as leaving the field out.
    drop_nulls(&mut document);
    let crd = K::crd();
    let schema = crd.spec.versions[0]
        .schema
        .as_ref()
        .and_then(|s| s.open_api_v3_schema.as_ref())
        .and_then(|s| serde_json::to_value(s).ok())
        .ok_or_else(|| format!("{what}: the CRD has no schema"))?;
    let mut problems = Vec::new();
    if let Some(fields) = document.as_object() {
        for (field, value) in fields {
            match field.as_str() {
                "apiVersion" | "kind" | "metadata" => {}
                _ => match schema["properties"].get(field) {
                    Some(below) => unknown_fields(below, value, field, &mut problems),
                    None => problems.push(format!("{field}: unknown field")),
                },
            }
        }
    }
    let validator =
        jsonschema::validator_for(&schema).map_err(|e| format!("{what}: the CRD schema: {e}"))?;
    problems.extend(validator.iter_errors(&document).map(|e| {
        match dotted(&e.instance_path().to_string()) {
            at if at.is_empty() => e.to_string(),
            at => format!("{at}: {e}"),
        }
    }));
    if problems.is_empty()
        && let Err(errors) = Validator::new().validate(&schema, &document, None)
    {
        problems.extend(errors.iter().map(|e| e.to_string()));
    }
    if !problems.is_empty() {
        return Err(format!("{what}: {}", problems.join("; ")));
    }
    serde_path_to_error::deserialize(document).map_err(|e| format!("{what}: {e}"))
}

/// `/spec/push/retries` as `spec.push.retries`.
fn dotted(pointer: &str) -> String {
    pointer.trim_start_matches('/').replace('/', ".")
}

fn drop_nulls(value: &mut Value) {
    match value {
        Value::Object(fields) => {
            fields.retain(|_, v| !v.is_null());
            fields.values_mut().for_each(drop_nulls);
        }
        Value::Array(items) => items.iter_mut().for_each(drop_nulls),
        _ => {}
    }
}

/// Fields of `value` that its structural `schema` does not declare.
fn unknown_fields(schema: &Value, value: &Value, at: &str, problems: &mut Vec<String>) {
    if schema["x-kubernetes-preserve-unknown-fields"] == Value::Bool(true) {
        return;
    }
    match value {
        Value::Object(fields) => {
            if let Some(known) = schema["properties"].as_object() {
                for (field, below) in fields {
                    let path = format!("{at}.{field}");
                    match known.get(field) {
                        Some(schema) => unknown_fields(schema, below, &path, problems),
                        None => problems.push(format!("{path}: unknown field")),
                    }
                }
            } else if schema["additionalProperties"].is_object() {
                for (field, below) in fields {
                    let path = format!("{at}.{field}");
                    unknown_fields(&schema["additionalProperties"], below, &path, problems);
                }
            }
        }
        Value::Array(items) => {
            for (i, item) in items.iter().enumerate() {
                unknown_fields(&schema["items"], item, &format!("{at}[{i}]"), problems);
            }
        }
        _ => {}
    }
}
