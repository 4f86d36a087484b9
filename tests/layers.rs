//! The modules of the crate form layers, and each imports only from the layers below it: the
//! store knows nothing of push delivery, the API or Kubernetes; push delivery nothing of the
//! API or Kubernetes; the API nothing of Kubernetes.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

/// The layers, lowest first. A module may use any module of a lower layer, and none of its own
/// layer or above.
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
    &["cli"],
];

fn layer_of(module: &str) -> usize {
    LAYERS
        .iter()
        .position(|layer| layer.contains(&module))
        .unwrap_or_else(|| panic!("module `{module}` is in no layer: add it to LAYERS"))
}

/// The names a path starting at `rest` reaches: `name...` or a group `{a, b::c, ...}`, whose
/// items each start with a name.
fn names_at(rest: &str) -> Vec<String> {
    let word = |s: &str| -> String {
        s.trim_start()
            .chars()
            .take_while(|c| c.is_alphanumeric() || *c == '_')
            .collect()
    };
    let Some(group) = rest.strip_prefix('{') else {
        return vec![word(rest)];
    };
    let mut names = Vec::new();
    let mut depth = 0;
    let mut item_start = 0;
    for (i, c) in group.char_indices() {
        match c {
            '{' => depth += 1,
            '}' if depth == 0 => {
                names.push(word(&group[item_start..i]));
                break;
            }
            '}' => depth -= 1,
            ',' if depth == 0 => {
                names.push(word(&group[item_start..i]));
                item_start = i + 1;
            }
            _ => {}
        }
    }
    names.retain(|n| !n.is_empty() && n != "self");
    names
}

/// The top-level modules a file of module `path` (`["store", "ops", "post"]`) names: through
/// `crate::`, or through as many `super::` as lead back to the crate root. Comments are
/// skipped, and so is a `mod tests` at the end of a file (its `super` is one level deeper).
fn crate_uses(source: &str, path: &[&str]) -> BTreeSet<String> {
    let code: String = source
        .lines()
        .take_while(|line| !line.trim_start().starts_with("mod tests"))
        .map(|line| line.split("//").next().unwrap_or(""))
        .collect::<Vec<_>>()
        .join("\n");
    assert!(
        !code.contains("crate as"),
        "`crate as` hides imports from this check: name modules through `crate::`"
    );
    let mut used = BTreeSet::new();
    for (at, _) in code.match_indices("crate::") {
        used.extend(names_at(&code[at + "crate::".len()..]));
    }
    let mut rest = code.as_str();
    while let Some(at) = rest.find("super::") {
        // Count the chain, and skip the middle of a chain already counted.
        let before = &rest[..at];
        let mut supers = 0;
        let mut after = &rest[at..];
        while let Some(next) = after.strip_prefix("super::") {
            supers += 1;
            after = next;
        }
        if supers == path.len() && !before.ends_with("::") {
            used.extend(names_at(after));
        }
        rest = after;
    }
    used
}

fn rust_files(dir: &Path, found: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, found);
        } else if path.extension().is_some_and(|e| e == "rs") {
            found.push(path);
        }
    }
}

/// The module path of a file under `src/`: `store/ops/post.rs` is `store::ops::post`,
/// `store/mod.rs` is `store`.
fn module_path(relative: &Path) -> Vec<String> {
    let mut path: Vec<String> = relative
        .with_extension("")
        .components()
        .map(|c| c.as_os_str().to_string_lossy().into_owned())
        .collect();
    if path.last().is_some_and(|last| last == "mod") {
        path.pop();
    }
    path
}

#[test]
fn no_module_imports_from_a_layer_above_it() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    let mut wrong = Vec::new();
    for file in files {
        let relative = file.strip_prefix(&src).unwrap();
        let path = module_path(relative);
        let module = path[0].as_str();
        // The binaries and the crate root sit above every layer.
        if ["lib", "main", "bin"].contains(&module) {
            continue;
        }
        let layer = layer_of(module);
        let source = std::fs::read_to_string(&file).unwrap();
        let path: Vec<&str> = path.iter().map(String::as_str).collect();
        for used in crate_uses(&source, &path) {
            if used != module && layer_of(&used) >= layer {
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
    let source = "use crate::store::Store;\n\
                  use crate::{self, model::{A, B}, push};\n\
                  use crate::{\n    api::X,\n    k8s,\n};\n\
                  // crate::serve in a comment is no import\n\
                  let x = crate::config::f();\n\
                  use super::super::super::tokens::Tokens;\n\
                  use super::super::ops::post;\n";
    let uses = crate_uses(source, &["store", "ops", "post"]);
    assert_eq!(
        uses.into_iter().collect::<Vec<_>>(),
        ["api", "config", "k8s", "model", "push", "store", "tokens"]
    );
    // From a top-level module's own file, one `super` is the crate root.
    let uses = crate_uses("use super::push::state;", &["store"]);
    assert_eq!(uses.into_iter().collect::<Vec<_>>(), ["push"]);
}

#[test]
#[should_panic(expected = "crate as")]
fn an_alias_of_the_crate_is_refused() {
    crate_uses("use crate as root;\nroot::api::f();", &["store"]);
}
