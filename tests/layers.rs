//! The modules of the crate form layers, and each imports only from the layers below it: the
//! store knows nothing of push delivery, the API or Kubernetes; push delivery nothing of the
//! API or Kubernetes; the API nothing of Kubernetes.

use std::collections::BTreeSet;
use std::path::Path;

/// The layers, lowest first. A module may use its own layer's modules only where named in
/// `SIDEWAYS`, and any module of a lower layer.
const LAYERS: &[&[&str]] = &[
    &["model", "metrics", "tls", "telemetry", "tokens"],
    &["settings", "listener"],
    &["store"],
    &["push"],
    &["api"],
    &["config"],
    &["serve"],
    &["k8s"],
    &["standalone"],
];

/// Uses within one layer that are allowed.
const SIDEWAYS: &[(&str, &str)] = &[];

fn layer_of(module: &str) -> usize {
    LAYERS
        .iter()
        .position(|layer| layer.contains(&module))
        .unwrap_or_else(|| panic!("module `{module}` is in no layer: add it to LAYERS"))
}

/// The top-level modules a piece of Rust source names through `crate::`.
fn crate_uses(source: &str) -> BTreeSet<String> {
    let mut used = BTreeSet::new();
    let mut rest = source;
    while let Some(at) = rest.find("crate::") {
        rest = &rest[at + "crate::".len()..];
        if let Some(group) = rest.strip_prefix('{') {
            // `use crate::{a, b::c, ...}`: the first name of each item at the top level.
            let mut depth = 0;
            let mut item_start = true;
            for (i, c) in group.char_indices() {
                match c {
                    '{' => depth += 1,
                    '}' if depth == 0 => {
                        rest = &group[i..];
                        break;
                    }
                    '}' => depth -= 1,
                    ',' if depth == 0 => item_start = true,
                    c if item_start && (c.is_alphanumeric() || c == '_') => {
                        let name: String = group[i..]
                            .chars()
                            .take_while(|c| c.is_alphanumeric() || *c == '_')
                            .collect();
                        used.insert(name);
                        item_start = false;
                    }
                    _ => {}
                }
            }
        } else {
            let name: String = rest
                .chars()
                .take_while(|c| c.is_alphanumeric() || *c == '_')
                .collect();
            used.insert(name);
        }
    }
    used
}

fn rust_files(dir: &Path, found: &mut Vec<std::path::PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, found);
        } else if path.extension().is_some_and(|e| e == "rs") {
            found.push(path);
        }
    }
}

#[test]
fn no_module_imports_from_a_layer_above_it() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    let mut wrong = Vec::new();
    for file in files {
        let relative = file.strip_prefix(&src).unwrap();
        let top = relative.components().next().unwrap().as_os_str();
        let module = top.to_str().unwrap().trim_end_matches(".rs");
        // The binaries and the crate root sit above every layer.
        if ["lib", "main", "bin"].contains(&module) {
            continue;
        }
        let layer = layer_of(module);
        let source = std::fs::read_to_string(&file).unwrap();
        for used in crate_uses(&source) {
            let allowed = used == module
                || layer_of(&used) < layer
                || SIDEWAYS.contains(&(module, used.as_str()));
            if !allowed {
                wrong.push(format!("{} uses crate::{used}", relative.display()));
            }
        }
    }
    assert!(
        wrong.is_empty(),
        "imports from above:\n{}",
        wrong.join("\n")
    );
}

#[test]
fn imports_are_read_in_every_form() {
    let uses = crate_uses(
        "use crate::store::Store;\nuse crate::{model::{A, B}, push};\nlet x = crate::api::f();",
    );
    assert_eq!(
        uses.into_iter().collect::<Vec<_>>(),
        ["api", "model", "push", "store"]
    );
}
