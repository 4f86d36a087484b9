//! The web console in a real browser: tests/console/console.test.mjs drives Debian's Chromium
//! with playwright-core against a `ferromq standalone` process (which declares one managed
//! queue, `managed`, from a Queue manifest) and checks each page against the REST API. `make test` installs both (`make console-tools`) and runs this test. Screenshots
//! of each page go to the test's temp dir, and also to FERROMQ_SCREENSHOTS when it is set
//! (`make console-screenshots` refreshes those of the README, in docs/).

use common::{Standalone, TOKEN};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs Chromium and tests/console/node_modules: run through `make test`"]
async fn console_works_in_a_real_browser() {
    let dir = tempfile::tempdir().unwrap();
    let manifest = dir.path().join("managed.yaml");
    std::fs::write(
        &manifest,
        "apiVersion: ferromq.dev/v1alpha1\nkind: Queue\nmetadata:\n  name: managed\n  \
         namespace: console\nspec:\n  type: pull\n",
    )
    .unwrap();
    let server = Standalone::start(&[&manifest], &dir.path().join("data")).await;
    let shots = tempfile::tempdir().unwrap();
    let script = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/console/console.test.mjs"
    );
    let output = tokio::process::Command::new("node")
        .arg(script)
        .env("FERROMQ_URL", &server.client.base)
        .env("FERROMQ_TOKEN", TOKEN)
        .env("FERROMQ_PROJECT", "console")
        .env("FERROMQ_MANAGED_QUEUE", "managed")
        .env("SCREENSHOT_DIR", shots.path())
        .output()
        .await
        .expect("node runs");
    let report = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    println!("{report}");
    assert!(
        output.status.success(),
        "the console test failed:\n{report}"
    );
    assert!(report.contains(" 0 failed"), "no summary:\n{report}");
    let taken: Vec<_> = std::fs::read_dir(shots.path())
        .unwrap()
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|name| name.ends_with(".png"))
        .collect();
    assert!(taken.len() >= 9, "a screenshot of each page: {taken:?}");
    if let Some(to) = std::env::var_os("FERROMQ_SCREENSHOTS") {
        for name in taken {
            std::fs::copy(
                shots.path().join(&name),
                std::path::Path::new(&to).join(&name),
            )
            .unwrap();
        }
    }
}
